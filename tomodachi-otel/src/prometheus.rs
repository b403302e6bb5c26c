//! The Prometheus scrape endpoint (`OTEL_METRICS_EXPORTER=prometheus`).

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use opentelemetry_prometheus::PrometheusExporter;
use prometheus::proto::LabelPair;
use prometheus::{Encoder, Registry, TextEncoder};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::Telemetry;
use crate::config::{Error, PrometheusSettings};
use crate::openmetrics;
use crate::series::BucketExemplars;

/// The OpenTelemetry metric reader backed by a fresh registry, configured by `settings`.
pub(crate) fn reader(
    settings: &PrometheusSettings,
) -> Result<(PrometheusExporter, Registry), Error> {
    let registry = Registry::new();
    let mut builder = opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        .scope_info_enabled(settings.include_scope_info);
    if !settings.include_target_info {
        builder = builder.without_target_info();
    }
    if !settings.namespace_prefix.is_empty() {
        builder = builder.with_namespace(settings.namespace_prefix.clone());
    }
    let exporter = builder.build().map_err(|e| Error::Exporter {
        what: "Prometheus",
        message: e.to_string(),
    })?;
    Ok((exporter, registry))
}

/// The exposition of `registry`: OpenMetrics, with the exemplars `telemetry` kept, when
/// `accept` asks for it, else the Prometheus text format.
pub(crate) fn render(
    registry: &Registry,
    telemetry: &Telemetry,
    accept: Option<&str>,
) -> Result<(String, Vec<u8>), prometheus::Error> {
    let families = registry.gather();
    if openmetrics::accepts(accept) {
        let body = openmetrics::encode(&families, &|family, metric| {
            telemetry.exemplars(family.name(), metric.get_label())
        });
        return Ok((openmetrics::CONTENT_TYPE.to_owned(), body.into_bytes()));
    }
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    encoder.encode(&families, &mut body)?;
    Ok((encoder.format_type().to_owned(), body))
}

impl Telemetry {
    /// The exemplars of the histogram series that the Prometheus family `family`
    /// (`{namespace}_{name}_seconds`) exposes with `labels`.
    fn exemplars(&self, family: &str, labels: &[LabelPair]) -> Option<BucketExemplars> {
        let mut found = None;
        self.histograms(&mut |name, histogram| {
            let Some(exemplars) = &histogram.exemplars else {
                return;
            };
            if found.is_some() || !is_family_of(family, name) {
                return;
            }
            let own = labels
                .iter()
                .filter(|l| !l.name().starts_with("otel_scope_"))
                .count();
            let matches = own == histogram.attributes.len()
                && histogram.attributes.iter().all(|kv| {
                    let value = kv.value.to_string();
                    labels
                        .iter()
                        .any(|l| l.value() == value && is_label_of(l.name(), kv.key.as_str()))
                });
            if matches {
                found = Some(exemplars.all());
            }
        });
        found
    }
}

/// Is `family` the Prometheus name of the seconds histogram `instrument`
/// (`http.server.duration` → `[namespace_]http_server_duration_seconds`)?
fn is_family_of(family: &str, instrument: &str) -> bool {
    let Some(stem) = family.strip_suffix("_seconds") else {
        return false;
    };
    stem.len() >= instrument.len()
        && is_label_of(&stem[stem.len() - instrument.len()..], instrument)
        && (stem.len() == instrument.len()
            || stem.as_bytes()[stem.len() - instrument.len() - 1] == b'_')
}

/// Is `label` the Prometheus form of the attribute key `key` (`.` and others → `_`)?
fn is_label_of(label: &str, key: &str) -> bool {
    label.len() == key.len()
        && label
            .bytes()
            .zip(key.bytes())
            .all(|(l, k)| l == k || (l == b'_' && !(k.is_ascii_alphanumeric() || k == b':')))
}

/// A running scrape endpoint: answers every GET with the registry's exposition.
#[derive(Debug)]
pub(crate) struct PrometheusServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
}

impl PrometheusServer {
    pub(crate) async fn start(
        settings: &PrometheusSettings,
        registry: Registry,
        telemetry: Telemetry,
    ) -> Result<Self, Error> {
        let address = format!("{}:{}", settings.address, settings.port);
        let listener = TcpListener::bind(&address)
            .await
            .map_err(|source| Error::Listen {
                address: address.clone(),
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| Error::Listen {
            address: address.clone(),
            source,
        })?;
        let (stop, mut stopped) = watch::channel(false);
        tracing::info!(target: "tomodachi.opentelemetry", address = %local_addr, "serving Prometheus metrics");
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => continue,
                    },
                    _ = stopped.changed() => break,
                };
                let registry = registry.clone();
                let telemetry = telemetry.clone();
                tokio::spawn(async move {
                    let service =
                        service_fn(move |request: hyper::Request<Incoming>| {
                            let accept = request
                                .headers()
                                .get(http::header::ACCEPT)
                                .and_then(|v| v.to_str().ok());
                            let response = match render(&registry, &telemetry, accept) {
                                Ok((content_type, body)) => hyper::Response::builder()
                                    .header(http::header::CONTENT_TYPE, content_type)
                                    .body(Full::new(Bytes::from(body))),
                                Err(error) => hyper::Response::builder()
                                    .status(http::StatusCode::INTERNAL_SERVER_ERROR)
                                    .body(Full::new(Bytes::from(error.to_string()))),
                            };
                            async move {
                                Ok::<_, Infallible>(response.unwrap_or_else(|_| {
                                    hyper::Response::new(Full::new(Bytes::new()))
                                }))
                            }
                        });
                    // A client that goes away mid-response is no error of ours.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { local_addr, stop })
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub(crate) fn stop(self) {
        let _ = self.stop.send(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::KeyValue;
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::metrics::SdkMeterProvider;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use std::io::Write;
    use std::process::{Command, Stdio};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const OPENMETRICS: Option<&str> = Some("application/openmetrics-text; version=1.0.0");

    struct Setup {
        _meter_provider: SdkMeterProvider,
        registry: Registry,
        telemetry: Telemetry,
    }

    fn setup(settings: &PrometheusSettings) -> Setup {
        let (reader, registry) = reader(settings).unwrap();
        let meter_provider = SdkMeterProvider::builder()
            .with_reader(reader)
            .with_resource(
                Resource::builder_empty()
                    .with_service_name("orders")
                    .with_attribute(KeyValue::new("service.instance.id", "u-1"))
                    .build(),
            )
            .build();
        let telemetry = Telemetry::new(&SdkTracerProvider::default(), &meter_provider)
            .with_exemplars(settings.exemplars_enabled);
        Setup {
            _meter_provider: meter_provider,
            registry,
            telemetry,
        }
    }

    async fn some_requests(telemetry: &Telemetry) {
        use tower::{Layer, ServiceExt, service_fn};
        for _ in 0..3 {
            let service = service_fn(|_r: http::Request<()>| async {
                Ok::<_, Infallible>(http::Response::new(()))
            });
            let mut request = http::Request::get("/health").body(()).unwrap();
            request
                .extensions_mut()
                .insert(tomodachi_core::telemetry::HttpRoute("/health".into()));
            telemetry
                .http_layer()
                .layer(service)
                .oneshot(request)
                .await
                .unwrap();
        }
        let handler = service_fn(|_m: tomodachi_core::Message| async {
            Ok::<_, Infallible>(tomodachi_core::Outcome::Ack)
        });
        let message = tomodachi_core::Message::new("{}").with_context(
            tomodachi_core::telemetry::Delivery::new(
                tomodachi_core::telemetry::RABBITMQ,
                "amq.topic",
                "on_order",
            )
            .routing("order.paid"),
        );
        telemetry
            .message_layer()
            .layer(handler)
            .oneshot(message)
            .await
            .unwrap();
    }

    /// `promtool` from `$PROMTOOL` or the PATH (Debian package `prometheus`; scripts/test-env.sh
    /// installs it). Missing, the test fails: the format check is part of the suite.
    fn promtool(args: &[&str], stdin: &[u8]) -> (bool, String) {
        let promtool = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".to_owned());
        let mut child = Command::new(&promtool)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {promtool:?} ({e}): install the `prometheus` package (scripts/test-env.sh does) or set PROMTOOL")
            });
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let output = child.wait_with_output().unwrap();
        let messages = String::from_utf8_lossy(&output.stderr).to_string()
            + &String::from_utf8_lossy(&output.stdout);
        (output.status.success(), messages)
    }

    /// `promtool check metrics`: the Prometheus text format, linted.
    fn promtool_check(text: &[u8]) {
        let (ok, messages) = promtool(&["check", "metrics"], text);
        assert!(ok, "promtool check metrics: {messages}");
    }

    /// promtool's OpenMetrics parser (`tsdb create-blocks-from openmetrics`, which needs a
    /// timestamp on every sample, so one is added before any exemplar).
    fn promtool_openmetrics(text: &str) {
        let mut stamped = String::new();
        for line in text.lines() {
            if line.starts_with('#') {
                stamped.push_str(line);
            } else if let Some((sample, exemplar)) = line.split_once(" # ") {
                stamped.push_str(&format!("{sample} 1700000000 # {exemplar}"));
            } else {
                stamped.push_str(&format!("{line} 1700000000"));
            }
            stamped.push('\n');
        }
        static RUN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let run = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("tomodachi-otel-om-{}-{run}", std::process::id()));
        let input = dir.with_extension("txt");
        std::fs::write(&input, stamped).unwrap();
        let (ok, messages) = promtool(
            &[
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                input.to_str().unwrap(),
                dir.to_str().unwrap(),
            ],
            b"",
        );
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(&input);
        assert!(ok, "promtool's OpenMetrics parser: {messages}\n{text}");
    }

    /// The value of the sample line `name{…labels…}` holding every one of `labels`.
    fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
            .find(|l| labels.iter().all(|label| l.contains(label)))
            .and_then(|l| {
                let end = l.find(" # ").unwrap_or(l.len());
                l[..end].rsplit(' ').next()?.parse().ok()
            })
    }

    #[tokio::test]
    async fn exposition_has_tomodachi_series_and_target_info() {
        let s = setup(&PrometheusSettings::default());
        some_requests(&s.telemetry).await;
        let (content_type, body) = render(&s.registry, &s.telemetry, None).unwrap();
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        assert!(
            text.contains("# TYPE http_server_duration_seconds histogram"),
            "{text}"
        );
        let route = "http_route=\"/health\"";
        assert_eq!(
            sample(&text, "http_server_duration_seconds_count", &[route]),
            Some(3.0),
            "{text}"
        );
        assert_eq!(
            sample(
                &text,
                "http_server_duration_seconds_bucket",
                &[route, "le=\"+Inf\""]
            ),
            Some(3.0),
            "{text}"
        );
        assert_eq!(
            sample(
                &text,
                "http_server_active_requests",
                &["http_request_method=\"GET\""]
            ),
            Some(0.0),
            "{text}"
        );
        assert_eq!(
            sample(
                &text,
                "messaging_rabbitmq_handled_total",
                &["tomodachi_outcome=\"ack\"", "code_function=\"on_order\""]
            ),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            sample(
                &text,
                "target_info",
                &["service_name=\"orders\"", "service_instance_id=\"u-1\""]
            ),
            Some(1.0),
            "{text}"
        );
        assert!(text.contains("otel_scope_name=\"tomodachi\""), "{text}");
        assert!(
            !text.contains("trace_id"),
            "no exemplars in the text format: {text}"
        );
        promtool_check(&body);
    }

    #[tokio::test]
    async fn exemplars_only_for_an_openmetrics_scraper() {
        let s = setup(&PrometheusSettings {
            exemplars_enabled: true,
            ..PrometheusSettings::default()
        });
        some_requests(&s.telemetry).await;

        let (content_type, body) = render(&s.registry, &s.telemetry, None).unwrap();
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        assert!(!text.contains("trace_id"), "{text}");
        promtool_check(&body);

        let (content_type, body) = render(&s.registry, &s.telemetry, OPENMETRICS).unwrap();
        let text = String::from_utf8(body).unwrap();
        assert!(
            content_type.starts_with("application/openmetrics-text"),
            "{content_type}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(text.contains("# TYPE target info"), "{text}");
        assert!(
            text.contains("# TYPE messaging_rabbitmq_handled counter"),
            "{text}"
        );
        let with_exemplar = |name: &str| {
            text.lines()
                .filter(|l| l.starts_with(name) && l.contains(" # {trace_id=\""))
                .count()
        };
        // The three requests and the message ran in sampled spans: their buckets carry one.
        assert!(
            with_exemplar("http_server_duration_seconds_bucket{") >= 1,
            "{text}"
        );
        assert!(
            with_exemplar("messaging_rabbitmq_duration_seconds_bucket{") >= 1,
            "{text}"
        );
        let line = text
            .lines()
            .find(|l| l.contains(" # {trace_id=\""))
            .unwrap();
        let exemplar = line.split_once(" # ").unwrap().1;
        let trace_id = exemplar.split('"').nth(1).unwrap();
        let span_id = exemplar.split('"').nth(3).unwrap();
        assert_eq!(trace_id.len(), 32, "{line}");
        assert_eq!(span_id.len(), 16, "{line}");
        promtool_openmetrics(&text);
    }

    #[tokio::test]
    async fn no_exemplars_unless_enabled() {
        let s = setup(&PrometheusSettings::default());
        some_requests(&s.telemetry).await;
        let (_, body) = render(&s.registry, &s.telemetry, OPENMETRICS).unwrap();
        let text = String::from_utf8(body).unwrap();
        assert!(
            text.contains("http_server_duration_seconds_bucket{"),
            "{text}"
        );
        assert!(!text.contains("trace_id"), "{text}");
        promtool_openmetrics(&text);
    }

    #[tokio::test]
    async fn switches_drop_target_info_and_scope_and_add_a_namespace() {
        let settings = PrometheusSettings {
            include_target_info: false,
            include_scope_info: false,
            namespace_prefix: "shop".to_owned(),
            exemplars_enabled: true,
            ..PrometheusSettings::default()
        };
        let s = setup(&settings);
        some_requests(&s.telemetry).await;
        let text = String::from_utf8(render(&s.registry, &s.telemetry, None).unwrap().1).unwrap();
        assert!(!text.contains("target_info"), "{text}");
        assert!(!text.contains("otel_scope_name"), "{text}");
        assert!(
            text.contains("shop_http_server_duration_seconds_count"),
            "{text}"
        );
        let om =
            String::from_utf8(render(&s.registry, &s.telemetry, OPENMETRICS).unwrap().1).unwrap();
        assert!(
            om.lines().any(
                |l| l.starts_with("shop_http_server_duration_seconds_bucket{")
                    && l.contains("trace_id")
            ),
            "exemplars found under a namespace: {om}"
        );
        promtool_openmetrics(&om);
    }

    #[test]
    fn family_and_label_names_follow_the_exporter() {
        assert!(is_family_of(
            "http_server_duration_seconds",
            "http.server.duration"
        ));
        assert!(is_family_of(
            "shop_http_server_duration_seconds",
            "http.server.duration"
        ));
        assert!(!is_family_of(
            "xhttp_server_duration_seconds",
            "http.server.duration"
        ));
        assert!(!is_family_of(
            "http_server_duration",
            "http.server.duration"
        ));
        assert!(is_label_of("http_route", "http.route"));
        assert!(!is_label_of("http_route", "http.router"));
    }

    #[tokio::test]
    async fn endpoint_serves_the_exposition_over_http() {
        let settings = PrometheusSettings {
            address: "127.0.0.1".to_owned(),
            port: 0,
            exemplars_enabled: true,
            ..PrometheusSettings::default()
        };
        let s = setup(&settings);
        some_requests(&s.telemetry).await;
        let server = PrometheusServer::start(&settings, s.registry, s.telemetry)
            .await
            .unwrap();
        let address = server.local_addr();
        let get = |accept: &'static str| async move {
            let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
            stream
                .write_all(
                    format!(
                        "GET /metrics HTTP/1.1\r\nhost: x\r\n{accept}connection: close\r\n\r\n"
                    )
                    .as_bytes(),
                )
                .await
                .unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).await.unwrap();
            response
        };
        let plain = get("").await;
        assert!(plain.starts_with("HTTP/1.1 200 OK"), "{plain}");
        assert!(plain.contains("content-type: text/plain"), "{plain}");
        assert!(
            plain.contains("http_server_duration_seconds_bucket"),
            "{plain}"
        );
        assert!(!plain.contains("trace_id"), "{plain}");
        let om =
            get("accept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n").await;
        assert!(
            om.contains("content-type: application/openmetrics-text"),
            "{om}"
        );
        assert!(om.contains("trace_id"), "{om}");
        assert!(om.contains("# EOF"), "{om}");
        server.stop();
    }
}
