//! Instrumented, the `tracing` spans a handler opens become OpenTelemetry spans, children of
//! the transport's span: the process's logger carries tomodachi-otel's bridge. (Own test
//! binary: the logger and OpenTelemetry are installed once per process.)
#![cfg(all(feature = "otel", feature = "http"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tomodachi::http::HttpRouter;
use tomodachi::http::axum::routing::get;
use tomodachi::options::HttpOptions;
use tomodachi::otel::Telemetry;
use tomodachi::otel::opentelemetry::trace::SpanKind;
use tomodachi::otel::opentelemetry_sdk::error::OTelSdkResult;
use tomodachi::otel::opentelemetry_sdk::metrics::SdkMeterProvider;
use tomodachi::otel::opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tomodachi::{Options, Process, Service};
use tracing::Instrument;

/// Keeps every span it is given.
#[derive(Debug, Clone, Default)]
struct Spans(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Spans {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

/// Looks the item up in a span of its own, as a user would.
async fn item() -> &'static str {
    async { "item" }
        .instrument(tracing::info_span!("load item", item = 1))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handlers_tracing_span_is_a_child_of_the_server_span() {
    let http_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spans = Spans::default();
    let tracer_provider = SdkTracerProvider::builder()
        .with_simple_exporter(spans.clone())
        .build();
    let telemetry = Telemetry::new(&tracer_provider, &SdkMeterProvider::default());
    let (started_tx, started_rx) = oneshot::channel::<()>();
    let service = Service::new("otel-tracing")
        .options(Options::new().http(HttpOptions {
            host: "127.0.0.1".to_owned(),
            port: http_port,
            ..HttpOptions::default()
        }))
        .http(HttpRouter::new().route("/items/{id}", get(item)))
        .on_started(move |_| async move {
            let _ = started_tx.send(());
        });
    // With the process's own logger (not `without_logging`): it carries the bridge.
    let process = Process::new()
        .service(service)
        .without_signals()
        .args(["otel-tracing", "--logger", "json"])
        .opentelemetry(telemetry);
    let shutdown = process.shutdown();
    let client = async move {
        tokio::time::timeout(Duration::from_secs(20), started_rx)
            .await
            .expect("service started")
            .unwrap();
        let mut stream = TcpStream::connect(("127.0.0.1", http_port)).await.unwrap();
        stream
            .write_all(b"GET /items/7 HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        shutdown.trigger();
    };
    let (_exit, ()) = tokio::time::timeout(Duration::from_secs(40), async {
        tokio::join!(process.run(), client)
    })
    .await
    .expect("process stopped");

    let spans = spans.0.lock().unwrap().clone();
    let server = spans
        .iter()
        .find(|s| s.span_kind == SpanKind::Server)
        .unwrap_or_else(|| panic!("{spans:#?}"));
    assert_eq!(server.name, "GET /items/{id}");
    let user = spans
        .iter()
        .find(|s| s.name == "load item")
        .unwrap_or_else(|| panic!("the handler's span was not exported: {spans:#?}"));
    assert_eq!(user.span_context.trace_id(), server.span_context.trace_id());
    assert_eq!(user.parent_span_id, server.span_context.span_id());
    assert!(
        spans
            .iter()
            .all(|s| !s.instrumentation_scope.name().is_empty()),
        "{spans:#?}"
    );
    assert_eq!(
        spans.len(),
        2,
        "tomodachi's own tracing spans are not bridged: {spans:#?}"
    );
    let _ = tracer_provider.shutdown();
}
