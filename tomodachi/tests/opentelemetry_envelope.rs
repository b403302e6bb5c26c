//! Instrumented, an AMQP consumer's span wraps the opening of the envelope: a message whose
//! envelope does not open still gets its CONSUMER span, with status ERROR and outcome
//! `reject`. Needs RabbitMQ at 127.0.0.1:5672. (Own test binary: OpenTelemetry is installed
//! once per process.)
#![cfg(all(feature = "otel", feature = "amqp"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tomodachi::amqp::{AmqpOptions, AmqpPublisher, Binding};
use tomodachi::otel::Telemetry;
use tomodachi::otel::opentelemetry::Value;
use tomodachi::otel::opentelemetry::trace::{SpanKind, Status};
use tomodachi::otel::opentelemetry_sdk::error::OTelSdkResult;
use tomodachi::otel::opentelemetry_sdk::metrics::SdkMeterProvider;
use tomodachi::otel::opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tomodachi::{Data, JsonEnvelope, Process, RawEnvelope, Service, ServiceIdentity, State};

/// Keeps every span it is given.
#[derive(Debug, Clone, Default)]
struct Spans(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Spans {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

async fn on_order(
    State(seen): State<mpsc::UnboundedSender<u64>>,
    Data(data): Data<serde_json::Value>,
) {
    let _ = seen.send(data["n"].as_u64().unwrap_or_default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_does_not_open_gets_an_error_span() {
    let exchange = format!("otel-envelope-{}", std::process::id());
    let routing_key = "otel.envelope.order";
    let spans = Spans::default();
    let tracer_provider = SdkTracerProvider::builder()
        .with_simple_exporter(spans.clone())
        .build();
    let telemetry = Telemetry::new(&tracer_provider, &SdkMeterProvider::default());
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let (started_tx, started_rx) = oneshot::channel::<()>();
    let service = Service::new("otel-envelope")
        .state(seen_tx)
        .envelope(JsonEnvelope)
        .amqp(
            Binding::routing_key(routing_key).exchange(&exchange),
            on_order,
        )
        .on_started(move |_| async move {
            let _ = started_tx.send(());
        });
    let process = Process::new()
        .service(service)
        .without_signals()
        .without_logging()
        .args(["otel-envelope"])
        .opentelemetry(telemetry);
    let shutdown = process.shutdown();
    let client = async move {
        tokio::time::timeout(Duration::from_secs(20), started_rx)
            .await
            .expect("service started")
            .unwrap();
        let identity = ServiceIdentity::new("otel-envelope-client", "u-2");
        let raw = AmqpPublisher::new(AmqpOptions::default(), identity.clone())
            .exchange(&exchange)
            .envelope(RawEnvelope);
        raw.publish(&json!("not a tomodachi envelope"), routing_key)
            .await
            .unwrap();
        let enveloped = AmqpPublisher::new(AmqpOptions::default(), identity)
            .exchange(&exchange)
            .envelope(JsonEnvelope);
        enveloped
            .publish(&json!({"n": 2}), routing_key)
            .await
            .unwrap();
        let n = tokio::time::timeout(Duration::from_secs(20), seen_rx.recv())
            .await
            .expect("the enveloped message was handled")
            .unwrap();
        assert_eq!(n, 2, "only the enveloped message reaches the handler");
        shutdown.trigger();
    };
    let (_exit, ()) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(process.run(), client)
    })
    .await
    .expect("process stopped");

    let spans = spans.0.lock().unwrap().clone();
    let consumer: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.span_kind == SpanKind::Consumer && s.name == format!("{routing_key} process"))
        .collect();
    let outcome = |span: &SpanData| {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == "tomodachi.outcome")
            .map(|kv| kv.value.clone())
    };
    assert_eq!(consumer.len(), 2, "one span per message: {spans:#?}");
    let rejected = consumer
        .iter()
        .find(|s| outcome(s) == Some(Value::from("reject")))
        .unwrap_or_else(|| panic!("no span for the message that did not open: {consumer:#?}"));
    assert!(
        matches!(rejected.status, Status::Error { .. }),
        "{rejected:#?}"
    );
    let acked = consumer
        .iter()
        .find(|s| outcome(s) == Some(Value::from("ack")))
        .unwrap();
    assert_eq!(acked.status, Status::Unset);
    let _ = tracer_provider.shutdown();
}
