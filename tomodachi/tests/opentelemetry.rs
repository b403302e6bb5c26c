//! `TOMODACHI_OPENTELEMETRY_INSTRUMENT=1` with the Prometheus exporter: after a few
//! requests the scrape endpoint serves tomodachi's HTTP series and `target_info`, with no
//! code change in the service.
#![cfg(all(feature = "otel", feature = "http"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tomodachi::http::HttpRouter;
use tomodachi::http::axum::routing::get;
use tomodachi::options::HttpOptions;
use tomodachi::{Options, Process, Service};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn get_text(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instrumented_http_service_serves_prometheus_series() {
    let http_port = free_port();
    let metrics_port = free_port();
    let (started_tx, started_rx) = oneshot::channel::<()>();
    let service = Service::new("otel-http")
        .options(Options::new().http(HttpOptions {
            host: "127.0.0.1".to_owned(),
            port: http_port,
            ..HttpOptions::default()
        }))
        .http(
            HttpRouter::new()
                .route("/items/{id}", get(|| async { "item" }))
                .regex_route(r"^/health/?$", get(|| async { "ok" })),
        )
        .on_started(move |_| async move {
            let _ = started_tx.send(());
        });
    let process = Process::new()
        .service(service)
        .without_signals()
        .without_logging()
        .args(["otel-http"])
        .env([
            ("TOMODACHI_OPENTELEMETRY_INSTRUMENT", "1".to_owned()),
            ("OTEL_TRACES_EXPORTER", "none".to_owned()),
            ("OTEL_METRICS_EXPORTER", "prometheus".to_owned()),
            ("TOMODACHI_PROMETHEUS_ADDRESS", "127.0.0.1".to_owned()),
            ("TOMODACHI_PROMETHEUS_PORT", metrics_port.to_string()),
        ]);
    let shutdown = process.shutdown();
    // `Process::run` is not `Send`: run it beside the client on this task.
    let client = async move {
        tokio::time::timeout(Duration::from_secs(20), started_rx)
            .await
            .expect("service started")
            .unwrap();
        for path in ["/items/1", "/items/2", "/health", "/missing"] {
            let response = get_text(http_port, path).await;
            assert!(response.starts_with("HTTP/1.1"), "{response}");
        }
        let scrape = get_text(metrics_port, "/metrics").await;
        shutdown.trigger();
        scrape
    };
    let (exit, scrape) = tokio::time::timeout(Duration::from_secs(40), async {
        tokio::join!(process.run(), client)
    })
    .await
    .expect("process stopped");

    assert!(scrape.starts_with("HTTP/1.1 200"), "{scrape}");
    let count = |route: &str| {
        scrape
            .lines()
            .find(|l| {
                l.starts_with("http_server_duration_seconds_count{")
                    && l.contains(&format!("http_route=\"{route}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .map(str::to_owned)
    };
    assert_eq!(count("/items/{id}").as_deref(), Some("2"), "{scrape}");
    assert_eq!(count("/health/?").as_deref(), Some("1"), "{scrape}");
    assert!(scrape.contains("target_info{"), "{scrape}");
    assert!(scrape.contains("service_name=\"otel-http\""), "{scrape}");
    assert_eq!(exit, tomodachi::Exit::SUCCESS);
}
