//! The `tracing` bridge: a user's `tracing` span inside a handler becomes an OpenTelemetry
//! span, child of the transport's span, and a user's `tracing` event becomes a log record
//! carrying that trace. (Own test binary: the bridge is set once per process.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;

use opentelemetry::logs::AnyValue;
use opentelemetry::trace::SpanKind;
use opentelemetry_sdk::logs::{InMemoryLogExporter, SdkLoggerProvider};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tomodachi_core::telemetry::{Delivery, RABBITMQ};
use tomodachi_core::{Message, Outcome};
use tomodachi_otel::Telemetry;
use tower::{Layer, ServiceExt, service_fn};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

fn message() -> Message {
    Message::new("{}").with_context(
        Delivery::new(RABBITMQ, "amq.topic", "on_order")
            .routing("order.paid")
            .traceparent(Some(
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
            )),
    )
}

/// A handler that does its work in a `tracing` span of its own and logs in it.
async fn handler(_message: Message) -> Result<Outcome, Infallible> {
    async {
        tracing::info!(order = 1, "charging the card");
    }
    .instrument(tracing::info_span!("charge card"))
    .await;
    Ok(Outcome::Ack)
}

#[tokio::test]
async fn user_spans_are_children_of_the_transport_span_and_events_are_log_records() {
    let spans = InMemorySpanExporter::default();
    let tracer_provider = SdkTracerProvider::builder()
        .with_simple_exporter(spans.clone())
        .build();
    let logs = InMemoryLogExporter::default();
    let logger_provider = SdkLoggerProvider::builder()
        .with_simple_exporter(logs.clone())
        .build();
    let telemetry = Telemetry::new(&tracer_provider, &SdkMeterProvider::default());
    let subscriber = tracing_subscriber::registry().with(tomodachi_otel::tracing_layer());
    let _default = tracing::subscriber::set_default(subscriber);

    // Before the bridge is on, the layer is idle.
    let traced = telemetry.message_layer().layer(service_fn(handler));
    traced.clone().oneshot(message()).await.unwrap();
    let before = spans.get_finished_spans().unwrap();
    assert_eq!(before.len(), 1, "only the transport's span: {before:#?}");
    assert!(logs.get_emitted_logs().unwrap().is_empty());
    spans.reset();

    telemetry.bridge_tracing(Some(&logger_provider));
    traced.oneshot(message()).await.unwrap();
    // tomodachi's own events (target `tomodachi…`) are not bridged.
    tracing::info!(target: "tomodachi.test", "not a user record");

    let finished = spans.get_finished_spans().unwrap();
    let consumer = finished
        .iter()
        .find(|s| s.span_kind == SpanKind::Consumer)
        .unwrap_or_else(|| panic!("{finished:#?}"));
    let user = finished
        .iter()
        .find(|s| s.name == "charge card")
        .unwrap_or_else(|| panic!("the user span was not exported: {finished:#?}"));
    assert_eq!(
        user.span_context.trace_id(),
        consumer.span_context.trace_id()
    );
    assert_eq!(
        user.parent_span_id,
        consumer.span_context.span_id(),
        "the user span is a child of the consumer span"
    );
    assert_eq!(finished.len(), 2, "{finished:#?}");

    let emitted = logs.get_emitted_logs().unwrap();
    assert_eq!(emitted.len(), 1, "{emitted:#?}");
    let record = &emitted[0].record;
    assert_eq!(
        record.body(),
        Some(&AnyValue::from("charging the card".to_owned()))
    );
    let trace = record
        .trace_context()
        .expect("the record carries its trace");
    assert_eq!(trace.trace_id, consumer.span_context.trace_id());
    assert_eq!(trace.span_id, user.span_context.span_id());
    let _ = tracer_provider.shutdown();
    let _ = logger_provider.shutdown();
}
