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
use prometheus::{Encoder, Registry, TextEncoder};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{Error, PrometheusSettings};

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
    if settings.exemplars_enabled {
        tracing::warn!(
            target: "tomodachi.opentelemetry",
            "Prometheus exemplars are not supported by the Rust exporter yet; serving metrics without them"
        );
    }
    let exporter = builder.build().map_err(|e| Error::Exporter {
        what: "Prometheus",
        message: e.to_string(),
    })?;
    Ok((exporter, registry))
}

/// The text exposition of `registry`.
pub(crate) fn render(registry: &Registry) -> Result<(String, Vec<u8>), prometheus::Error> {
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    encoder.encode(&registry.gather(), &mut body)?;
    Ok((encoder.format_type().to_owned(), body))
}

/// A running scrape endpoint: answers every GET with the registry's text exposition.
#[derive(Debug)]
pub(crate) struct PrometheusServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
}

impl PrometheusServer {
    pub(crate) async fn start(
        settings: &PrometheusSettings,
        registry: Registry,
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
                tokio::spawn(async move {
                    let service =
                        service_fn(move |_request: hyper::Request<Incoming>| {
                            let response = match render(&registry) {
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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn provider(settings: &PrometheusSettings) -> (SdkMeterProvider, Registry) {
        let (reader, registry) = reader(settings).unwrap();
        let provider = SdkMeterProvider::builder()
            .with_reader(reader)
            .with_resource(
                Resource::builder_empty()
                    .with_service_name("orders")
                    .with_attribute(KeyValue::new("service.instance.id", "u-1"))
                    .build(),
            )
            .build();
        (provider, registry)
    }

    async fn some_requests(provider: &SdkMeterProvider) {
        use tower::{Layer, ServiceExt, service_fn};
        let telemetry = crate::Telemetry::new(&SdkTracerProvider::default(), provider);
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
    }

    /// `promtool check metrics`, when promtool is installed (the `prometheus` package).
    fn promtool_check(text: &[u8]) {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let promtool = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".to_owned());
        let Ok(mut child) = Command::new(&promtool)
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        else {
            eprintln!("promtool not found; skipping `promtool check metrics`");
            return;
        };
        child.stdin.take().unwrap().write_all(text).unwrap();
        let output = child.wait_with_output().unwrap();
        let messages = String::from_utf8_lossy(&output.stderr).to_string()
            + &String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "promtool check metrics: {messages}"
        );
    }

    #[tokio::test]
    async fn exposition_has_tomodachi_series_and_target_info() {
        let (provider, registry) = provider(&PrometheusSettings::default());
        some_requests(&provider).await;
        let (content_type, body) = render(&registry).unwrap();
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        assert!(
            text.contains("# TYPE http_server_duration_seconds histogram"),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with("http_server_duration_seconds_count{")
                    && l.contains("http_route=\"/health\"")
                    && l.ends_with(" 3")),
            "{text}"
        );
        assert!(text.contains("http_server_active_requests"), "{text}");
        assert!(text.contains("target_info{"), "{text}");
        assert!(text.contains("service_name=\"orders\""), "{text}");
        assert!(text.contains("otel_scope_name=\"tomodachi\""), "{text}");
        promtool_check(&body);
    }

    #[tokio::test]
    async fn switches_drop_target_info_and_scope_and_add_a_namespace() {
        let settings = PrometheusSettings {
            include_target_info: false,
            include_scope_info: false,
            namespace_prefix: "shop".to_owned(),
            ..PrometheusSettings::default()
        };
        let (provider, registry) = provider(&settings);
        some_requests(&provider).await;
        let text = String::from_utf8(render(&registry).unwrap().1).unwrap();
        assert!(!text.contains("target_info"), "{text}");
        assert!(!text.contains("otel_scope_name"), "{text}");
        assert!(
            text.contains("shop_http_server_duration_seconds_count"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn endpoint_serves_the_exposition_over_http() {
        let settings = PrometheusSettings {
            address: "127.0.0.1".to_owned(),
            port: 0,
            ..PrometheusSettings::default()
        };
        let (provider, registry) = provider(&settings);
        some_requests(&provider).await;
        let server = PrometheusServer::start(&settings, registry).await.unwrap();
        let mut stream = tokio::net::TcpStream::connect(server.local_addr())
            .await
            .unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        assert!(
            response.contains("http_server_duration_seconds_bucket"),
            "{response}"
        );
        server.stop();
    }
}
