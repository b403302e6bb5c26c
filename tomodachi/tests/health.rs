//! The health endpoints of a service run in the test's process: a user's readiness check,
//! a user's own route on a probe's path. (Readiness during shutdown: tests/kubernetes.rs
//! of the workspace's tests crate.)
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use support::{free_port, until_ready_is};
use tomodachi::http::HttpRouter;
use tomodachi::http::axum::routing::get;
use tomodachi::{Exit, Process, Service};

#[derive(Clone, Default)]
struct Db {
    up: Arc<AtomicBool>,
}

impl Db {
    async fn ping(&self) -> Result<(), std::io::Error> {
        if self.up.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(std::io::Error::other("database unreachable"))
        }
    }
}

async fn own_live() -> &'static str {
    "the service's own"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_check_and_the_services_own_route_drive_the_probes() {
    let port = free_port();
    let db = Db::default();
    let service = Service::new("health-checks")
        .state(db.clone())
        .http(HttpRouter::new().route("/health/live", get(own_live)))
        .health_check("database", |db: Db| async move { db.ping().await })
        .configure(|options| {
            options.http.host = "127.0.0.1".into();
            options.http.port = port;
        });
    let process = Process::new()
        .without_signals()
        .without_logging()
        .args(["health"])
        .env(Vec::<(String, String)>::new())
        .service(service);
    let shutdown = process.shutdown();
    let running = tokio::spawn(process.run());

    // Started, every source ready, but the check fails: 503 naming it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let failing = loop {
        if let Ok((status, body)) = support::try_probe(port, "/health/ready").await
            && body["phase"] == "running"
        {
            assert_eq!(status, 503, "{body}");
            break body;
        }
        assert!(std::time::Instant::now() < deadline, "never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(failing["status"], "not_ready", "{failing}");
    assert_eq!(failing["sources"]["http"]["state"], "ready", "{failing}");
    assert_eq!(
        failing["checks"]["database"]["state"], "failing",
        "{failing}"
    );
    assert_eq!(
        failing["checks"]["database"]["reason"], "database unreachable",
        "{failing}"
    );

    db.up.store(true, Ordering::SeqCst);
    let ready = until_ready_is(port, 200, "the check passes").await;
    assert_eq!(ready["checks"]["database"]["state"], "ok", "{ready}");

    // The service's own /health/live wins over the built-in one.
    let live = tomodachi_live_body(port).await;
    assert_eq!(live, "the service's own");

    shutdown.trigger();
    let exit = tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exit, Exit::SUCCESS);
}

async fn tomodachi_live_body(port: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap()
}
