//! Liveness and readiness probes, derived from what the sources report.
//!
//! Every source of a running service reports its state to the process's
//! [`Health`](tomodachi_core::Health) registry; these endpoints read it (see
//! [`HealthOptions`] and the [shutdown page](crate::docs::shutdown)).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, join_all};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tomodachi_core::health::Phase;
use tomodachi_core::{BoxError, Health, Shutdown};

/// `health.*`: the liveness and readiness endpoints (`TOMODACHI_HEALTH_*`).
///
/// By default `GET /health/live` and `GET /health/ready` answer on the service's HTTP
/// server, when it has one (a route of the service's own on the same path wins). Set
/// `port` to serve them on a listener of their own instead: for a service without HTTP,
/// or to answer probes all through the drain (the HTTP server stops accepting
/// connections once shutdown reaches it).
///
/// ```
/// use tomodachi::options::Options;
///
/// let mut options = Options::default();
/// assert_eq!(options.health.ready_path, "/health/ready");
/// options.apply_env([("TOMODACHI_HEALTH_PORT", "9701")])?;
/// assert_eq!(options.health.port, Some(9701));
/// # Ok::<(), tomodachi::options::OptionsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthOptions {
    /// Serve the endpoints at all.
    pub enabled: bool,
    /// Path of the liveness endpoint: 200 unless the process is wedged.
    pub live_path: String,
    /// Path of the readiness endpoint: 200 once started with every source ready and
    /// every check passing; 503 while starting, while a source is degraded or a check
    /// fails, and from the moment shutdown starts.
    pub ready_path: String,
    /// Serve the endpoints on a listener of their own on this port (0: any free port),
    /// not on the service's HTTP server. Unset: on the HTTP server, if there is one.
    /// Needs the `http` feature.
    pub port: Option<u16>,
    /// Address the listener of `port` binds.
    pub host: String,
    /// Write probe requests to the access log.
    pub access_log: bool,
    /// Liveness fails when the runtime has not run its heartbeat task (due every second)
    /// for this many seconds: its worker threads are blocked or its timers stopped.
    pub liveness_timeout_seconds: u64,
}

impl Default for HealthOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            live_path: "/health/live".to_owned(),
            ready_path: "/health/ready".to_owned(),
            port: None,
            host: "0.0.0.0".to_owned(),
            access_log: false,
            liveness_timeout_seconds: 10,
        }
    }
}

/// How often the heartbeat task runs.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(1);

/// A user's readiness check after type erasure.
pub(crate) type CheckFn = Arc<dyn Fn() -> BoxFuture<'static, Result<(), BoxError>> + Send + Sync>;

// Served by the `http` feature's endpoints only.
#[cfg_attr(not(feature = "http"), allow(dead_code))]
/// What the endpoints read: the registry, the process's shutdown, the users' checks.
#[derive(Clone)]
pub(crate) struct Probes {
    health: Health,
    stop: Shutdown,
    checks: Arc<[(String, CheckFn)]>,
}

// Served by the `http` feature's endpoints only.
#[cfg_attr(not(feature = "http"), allow(dead_code))]
/// A probe's answer: status code and JSON body.
pub(crate) struct Answer {
    pub(crate) ready: bool,
    pub(crate) body: Value,
}

// Served by the `http` feature's endpoints only.
#[cfg_attr(not(feature = "http"), allow(dead_code))]
impl Probes {
    pub(crate) fn new(health: Health, stop: Shutdown, checks: Vec<(String, CheckFn)>) -> Self {
        Self {
            health,
            stop,
            checks: checks.into(),
        }
    }

    /// Live unless the heartbeat is older than `timeout`.
    pub(crate) fn live(&self, timeout: Duration) -> Answer {
        let since = self.health.since_heartbeat();
        let live = since < timeout;
        Answer {
            ready: live,
            body: json!({
                "status": if live { "live" } else { "wedged" },
                "heartbeat_seconds": since.as_millis() as f64 / 1000.0,
            }),
        }
    }

    /// Ready when started, not stopping, every source ready and every check passing.
    pub(crate) async fn ready(&self) -> Answer {
        let snapshot = self.health.snapshot();
        let stopping = self.stop.is_triggered();
        let running = snapshot.phase() == Phase::Running && !stopping;
        // Checks run only when their answer matters.
        let checks = if running {
            join_all(self.checks.iter().map(|(name, check)| async move {
                let result = AssertUnwindSafe(check())
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|_| Err("the check panicked".into()));
                (name.clone(), result)
            }))
            .await
        } else {
            Vec::new()
        };
        let checks_pass = checks.iter().all(|(_, result)| result.is_ok());
        let ready = running && snapshot.is_ready() && checks_pass;
        let mut body = serde_json::to_value(&snapshot).unwrap_or_else(|_| json!({}));
        if stopping {
            body["phase"] = json!("stopping");
        }
        body["status"] = json!(if ready { "ready" } else { "not_ready" });
        let checks: serde_json::Map<String, Value> = checks
            .into_iter()
            .map(|(name, result)| {
                let entry = match result {
                    Ok(()) => json!({ "state": "ok" }),
                    Err(error) => json!({ "state": "failing", "reason": error.to_string() }),
                };
                (name, entry)
            })
            .collect();
        body["checks"] = Value::Object(checks);
        Answer { ready, body }
    }
}

/// A check as the service builder takes it, erased.
pub(crate) fn check_fn<S, F, Fut, R>(state: S, check: F) -> CheckFn
where
    S: Clone + Send + Sync + 'static,
    F: Fn(S) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: crate::HookResult,
{
    Arc::new(move || {
        let future = check(state.clone());
        Box::pin(async move { future.await.into_hook_result() })
    })
}

#[cfg(feature = "http")]
mod endpoints {
    use std::net::SocketAddr;

    use tomodachi_http::axum::Router;
    use tomodachi_http::axum::http::{StatusCode, header};
    use tomodachi_http::axum::response::{IntoResponse, Response};
    use tomodachi_http::axum::routing::{MethodRouter, get};
    use tomodachi_http::{AccessLogLayer, HttpRouter, IgnoreLoggingLayer};

    use super::*;
    use crate::service::Running;

    fn respond(answer: Answer) -> Response {
        let status = if answer.ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            answer.body.to_string(),
        )
            .into_response()
    }

    impl Probes {
        fn live_route(&self, options: &HealthOptions) -> MethodRouter {
            let probes = self.clone();
            let timeout = Duration::from_secs(options.liveness_timeout_seconds);
            get(move || std::future::ready(respond(probes.live(timeout))))
        }

        fn ready_route(&self) -> MethodRouter {
            let probes = self.clone();
            get(move || {
                let probes = probes.clone();
                async move { respond(probes.ready().await) }
            })
        }

        /// `router` with the endpoints as fallback routes (the service's own routes on
        /// the same paths win, with a notice).
        pub(crate) fn add_to(
            &self,
            router: HttpRouter,
            options: &HealthOptions,
            service: &str,
        ) -> HttpRouter {
            let mut router = router;
            for (path, route) in [
                (&options.live_path, self.live_route(options)),
                (&options.ready_path, self.ready_route()),
            ] {
                if router.has_route(path) {
                    tracing::info!(target: "tomodachi.health", service, path = path.as_str(), "the service's own route answers {path}: not adding the built-in probe there");
                    continue;
                }
                let route = if options.access_log {
                    route
                } else {
                    route.layer(IgnoreLoggingLayer::all())
                };
                router = router.fallback_route(path, route);
            }
            router
        }

        /// Binds the listener of `options.port` and returns its work: serve until
        /// `shutdown`.
        pub(crate) async fn listen(
            &self,
            options: &HealthOptions,
            port: u16,
            shutdown: Shutdown,
        ) -> Result<Running, BoxError> {
            let host = if options.host.is_empty() {
                "0.0.0.0"
            } else {
                options.host.as_str()
            };
            let listener = tokio::net::TcpListener::bind((host, port))
                .await
                .map_err(|error| {
                    format!("unable to bind the health probes to {host}:{port}: {error}")
                })?;
            let local = listener.local_addr()?;
            let mut router = Router::new()
                .route(&options.live_path, self.live_route(options))
                .route(&options.ready_path, self.ready_route());
            if options.access_log {
                let mut layer = AccessLogLayer::new();
                if let Some(writer) = crate::logging::access::writer() {
                    layer = layer.with_writer(writer);
                }
                router = router.layer(layer);
            }
            tracing::info!(
                target: "tomodachi.health",
                listen_host = host,
                listen_port = local.port(),
                live_path = options.live_path.as_str(),
                ready_path = options.ready_path.as_str(),
                "accepting health probes"
            );
            let serve = tomodachi_http::axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown.triggered());
            Ok(Box::pin(async move { serve.await.map_err(Into::into) }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn live_until_the_heartbeat_is_older_than_the_timeout() {
        let health = Health::new();
        let probes = Probes::new(health.clone(), Shutdown::new(), Vec::new());
        health.beat();
        let live = probes.live(Duration::from_secs(10));
        assert!(live.ready);
        assert_eq!(live.body["status"], "live");
        tokio::time::advance(Duration::from_secs(11)).await;
        let wedged = probes.live(Duration::from_secs(10));
        assert!(!wedged.ready);
        assert_eq!(wedged.body["status"], "wedged");
        assert_eq!(wedged.body["heartbeat_seconds"], 11.0);
    }

    #[tokio::test]
    async fn ready_only_while_running_and_not_stopping() {
        let health = Health::new();
        let stop = Shutdown::new();
        let probes = Probes::new(health.clone(), stop.clone(), Vec::new());
        health.reporter("http").ready();
        let starting = probes.ready().await;
        assert!(!starting.ready);
        assert_eq!(starting.body["phase"], "starting");
        health.set_phase(Phase::Running);
        assert!(probes.ready().await.ready);
        stop.trigger();
        let stopping = probes.ready().await;
        assert!(!stopping.ready, "503 the moment shutdown starts");
        assert_eq!(stopping.body["phase"], "stopping");
        assert_eq!(stopping.body["status"], "not_ready");
    }
}
