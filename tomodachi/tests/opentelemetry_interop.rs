//! Interop: a Python tomodachi publisher run with `--opentelemetry-instrument` and a Rust
//! consumer with `TOMODACHI_OPENTELEMETRY_INSTRUMENT=1` share the trace id (through the
//! AMQP `traceparent` header). Needs RabbitMQ at 127.0.0.1:5672 and Python tomodachi with
//! its `opentelemetry` extras in `TOMODACHI_TEST_OTEL_VENV`
//! (default `/root/.cache/tomodachi-rs/venv-tomodachi-otel`).
#![cfg(all(feature = "otel", feature = "amqp"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::{mpsc, oneshot};
use tomodachi::amqp::{Binding, Headers};
use tomodachi::{Data, JsonEnvelope, Process, Service, State};

type Seen = mpsc::UnboundedSender<(Option<String>, Option<(String, String)>)>;

async fn on_message(
    State(seen): State<Seen>,
    Headers(headers): Headers,
    Data(_data): Data<serde_json::Value>,
) {
    let traceparent = headers
        .get("traceparent")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let _ = seen.send((traceparent, tomodachi::otel::current_trace_ids()));
}

fn venv_bin(name: &str) -> PathBuf {
    let venv = std::env::var("TOMODACHI_TEST_OTEL_VENV")
        .unwrap_or_else(|_| "/root/.cache/tomodachi-rs/venv-tomodachi-otel".to_owned());
    let path = Path::new(&venv).join("bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: install `tomodachi[opentelemetry]==0.29.0` into {venv} for this test",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_publisher_and_rust_consumer_share_the_trace_id() {
    let routing_key = format!("otel.interop.{}", std::process::id());
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let (started_tx, started_rx) = oneshot::channel::<()>();
    let service = Service::new("rust-otel-consumer")
        .state(seen_tx)
        .envelope(JsonEnvelope)
        .amqp(Binding::routing_key(&routing_key), on_message)
        .on_started(move |_| async move {
            let _ = started_tx.send(());
        });
    let process = Process::new()
        .service(service)
        .without_signals()
        .without_logging()
        .args(["rust-otel-consumer"])
        .env([
            ("TOMODACHI_OPENTELEMETRY_INSTRUMENT", "1"),
            ("OTEL_TRACES_EXPORTER", "none"),
            ("OTEL_METRICS_EXPORTER", "none"),
        ]);
    let shutdown = process.shutdown();
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python");
    let client = async move {
        tokio::time::timeout(Duration::from_secs(20), started_rx)
            .await
            .expect("service started")
            .unwrap();
        let mut python = Command::new(venv_bin("tomodachi"))
            .args([
                "run",
                "--production",
                "--loop",
                "asyncio",
                "--opentelemetry-instrument",
                "otel_publisher.py",
            ])
            .current_dir(&scripts)
            .env("ROUTING_KEY", &routing_key)
            .env("OTEL_TRACES_EXPORTER", "none")
            .env("OTEL_METRICS_EXPORTER", "none")
            .env("OTEL_LOGS_EXPORTER", "none")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start the Python tomodachi service");
        let mut lines = BufReader::new(python.stdout.take().unwrap()).lines();
        let published = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("the Python service published")
            .unwrap();
        assert_eq!(published.as_deref(), Some(r#"{"published": true}"#));
        let seen = tokio::time::timeout(Duration::from_secs(20), seen_rx.recv())
            .await
            .expect("the Rust handler ran")
            .unwrap();
        let _ = python.kill().await;
        shutdown.trigger();
        seen
    };
    let (_exit, (traceparent, ids)) = tokio::time::timeout(Duration::from_secs(120), async {
        tokio::join!(process.run(), client)
    })
    .await
    .expect("process stopped");

    let traceparent = traceparent.expect("Python tomodachi sent a traceparent header");
    let python_trace = traceparent.split('-').nth(1).expect("a W3C traceparent");
    let (rust_trace, _) = ids.expect("the Rust handler ran inside a span");
    assert_eq!(rust_trace, python_trace, "{traceparent}");
}
