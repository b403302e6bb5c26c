//! Instrumented, a consumer's span wraps the opening of the envelope: a message whose
//! envelope does not open still gets its CONSUMER span, with status ERROR and outcome
//! `reject`, on AMQP and on SNS+SQS. Needs RabbitMQ at 127.0.0.1:5672 and moto at
//! 127.0.0.1:4566 (`TOMODACHI_TEST_MOTO_URL`). (Own test binary: OpenTelemetry is installed
//! once per process.)
#![cfg(all(feature = "otel", feature = "amqp", feature = "sqs"))]
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
use tomodachi::sqs::{
    AwsClients, AwsEndpointUrlsOptions, AwsSnsSqsOptions, SnsPublisher, Subscription,
};
use tomodachi::{
    Data, JsonEnvelope, Options, Process, RawEnvelope, Service, ServiceIdentity, State,
};

/// Keeps every span it is given.
#[derive(Debug, Clone, Default)]
struct Spans(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Spans {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

type Seen = mpsc::UnboundedSender<&'static str>;

async fn on_amqp(State(seen): State<Seen>, Data(_data): Data<serde_json::Value>) {
    let _ = seen.send("amqp");
}

async fn on_sqs(State(seen): State<Seen>, Data(_data): Data<serde_json::Value>) {
    let _ = seen.send("sqs");
}

fn aws() -> (AwsSnsSqsOptions, AwsEndpointUrlsOptions) {
    let url =
        std::env::var("TOMODACHI_TEST_MOTO_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".into());
    (
        AwsSnsSqsOptions {
            region_name: Some("us-east-1".into()),
            aws_access_key_id: Some("testing".into()),
            aws_secret_access_key: Some("testing".into()),
            ..AwsSnsSqsOptions::default()
        },
        AwsEndpointUrlsOptions {
            sns: Some(url.clone()),
            sqs: Some(url),
            sts: None,
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_does_not_open_gets_an_error_span() {
    let id = std::process::id();
    let exchange = format!("otel-envelope-{id}");
    let routing_key = "otel.envelope.order";
    let topic = format!("otel-envelope-{id}");
    let (aws_options, endpoints) = aws();
    let clients = AwsClients::from_options(&aws_options, &endpoints)
        .await
        .expect("moto reachable");
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
        .options(
            Options::new()
                .aws_sns_sqs(aws_options.clone())
                .aws_endpoint_urls(endpoints),
        )
        .amqp(
            Binding::routing_key(routing_key).exchange(&exchange),
            on_amqp,
        )
        .sqs(
            Subscription::topic(&topic)
                .queue(format!("{topic}-q"))
                .wait_time(Duration::from_secs(1)),
            on_sqs,
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
    let sqs_span = format!("{topic} process");
    let client = async move {
        tokio::time::timeout(Duration::from_secs(20), started_rx)
            .await
            .expect("service started")
            .unwrap();
        let identity = ServiceIdentity::new("otel-envelope-client", "u-2");
        let amqp = AmqpPublisher::new(AmqpOptions::default(), identity.clone()).exchange(&exchange);
        let sns = SnsPublisher::new(clients, aws_options, identity);
        // Not a tomodachi envelope, then a good one, on each transport.
        let bad = json!("not a tomodachi envelope");
        amqp.clone()
            .envelope(RawEnvelope)
            .publish(&bad, routing_key)
            .await
            .unwrap();
        amqp.envelope(JsonEnvelope)
            .publish(&json!({"n": 2}), routing_key)
            .await
            .unwrap();
        sns.clone()
            .envelope(Arc::new(RawEnvelope))
            .publish(&bad, &topic)
            .await
            .unwrap();
        sns.envelope(Arc::new(JsonEnvelope))
            .publish(&json!({"n": 2}), &topic)
            .await
            .unwrap();
        let mut handled = Vec::new();
        while handled.len() < 2 {
            let next = tokio::time::timeout(Duration::from_secs(30), seen_rx.recv())
                .await
                .expect("the enveloped messages were handled")
                .unwrap();
            handled.push(next);
        }
        handled.sort_unstable();
        assert_eq!(
            handled,
            ["amqp", "sqs"],
            "only enveloped messages reach the handlers"
        );
        shutdown.trigger();
    };
    let (_exit, ()) = tokio::time::timeout(Duration::from_secs(90), async {
        tokio::join!(process.run(), client)
    })
    .await
    .expect("process stopped");

    let spans = spans.0.lock().unwrap().clone();
    let outcome = |span: &SpanData| {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == "tomodachi.outcome")
            .map(|kv| kv.value.clone())
    };
    for name in [format!("{routing_key} process"), sqs_span] {
        let consumer: Vec<&SpanData> = spans
            .iter()
            .filter(|s| s.span_kind == SpanKind::Consumer && s.name == name)
            .collect();
        assert_eq!(
            consumer.len(),
            2,
            "one {name:?} span per message: {spans:#?}"
        );
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
    }
    let _ = tracer_provider.shutdown();
}
