//! One message pipeline on every transport. A message whose envelope does not open gets
//! the same record (Python's `uncaught exception: …` on logger `exception`, ERROR) and the
//! same outcome (reject) on AMQP and on SNS+SQS, with and without OpenTelemetry, and the
//! good message after it is handled; instrumented, it also has its CONSUMER span (status
//! ERROR, outcome `reject`): the span wraps the envelope. A handler that panics is one record, a retry, and the
//! process goes on. Needs RabbitMQ at 127.0.0.1:5672 and moto at
//! 127.0.0.1:4566 (`TOMODACHI_TEST_MOTO_URL`). (Own test binary: it installs a global
//! `tracing` subscriber, and OpenTelemetry is installed once per process.)
#![cfg(all(feature = "otel", feature = "amqp", feature = "sns"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
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
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt as _};

/// A record: logger, level, message, the `outcome` field and the names of its spans.
#[derive(Debug, Clone, PartialEq)]
struct Record {
    target: String,
    level: tracing::Level,
    message: String,
    outcome: Option<String>,
    spans: Vec<String>,
}

#[derive(Debug, Clone, Default)]
struct Records(Arc<Mutex<Vec<Record>>>);

#[derive(Default)]
struct Fields {
    message: String,
    outcome: Option<String>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "outcome" => self.outcome = Some(format!("{value:?}").trim_matches('"').to_owned()),
            _ => {}
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_owned(),
            "outcome" => self.outcome = Some(value.to_owned()),
            _ => {}
        }
    }
}

impl<S> tracing_subscriber::Layer<S> for Records
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let spans = ctx
            .event_scope(event)
            .map(|scope| {
                scope
                    .from_root()
                    .map(|span| span.metadata().target().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        self.0.lock().unwrap().push(Record {
            target: event.metadata().target().to_owned(),
            level: *event.metadata().level(),
            message: fields.message,
            outcome: fields.outcome,
            spans,
        });
    }
}

/// Keeps every span it is given.
#[derive(Debug, Clone, Default)]
struct Spans(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Spans {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

/// The records of this test binary (one global subscriber).
fn records() -> &'static Records {
    static RECORDS: OnceLock<Records> = OnceLock::new();
    RECORDS.get_or_init(|| {
        let records = Records::default();
        tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(records.clone()),
        )
        .unwrap();
        records
    })
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

/// Runs a service with an AMQP and an SQS handler, sends each a message that does not open
/// and then a good one, waits for the good ones and stops. Returns the names of the AMQP
/// and the SQS consumer spans.
async fn bad_then_good(run: &str, telemetry: Option<Telemetry>) -> [String; 2] {
    let id = format!("{}-{run}", std::process::id());
    let exchange = format!("pipeline-envelope-{id}");
    let routing_key = "pipeline.envelope.order";
    let topic = format!("pipeline-envelope-{id}");
    let span_names = [format!("{routing_key} process"), format!("{topic} process")];
    let (aws_options, endpoints) = aws();
    let clients = AwsClients::from_options(&aws_options, &endpoints)
        .await
        .expect("moto must run at TOMODACHI_TEST_MOTO_URL (scripts/test-env.sh)");
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let (started_tx, started_rx) = oneshot::channel::<()>();
    let service = Service::new("pipeline-envelope")
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
    let mut process = Process::new()
        .service(service)
        .without_signals()
        .without_logging()
        .args(["pipeline-envelope"]);
    if let Some(telemetry) = telemetry {
        process = process.opentelemetry(telemetry);
    }
    let shutdown = process.shutdown();
    let client = async move {
        tokio::time::timeout(Duration::from_secs(20), started_rx)
            .await
            .expect("service started (RabbitMQ at 127.0.0.1:5672 and moto must run)")
            .unwrap();
        let identity = ServiceIdentity::new("pipeline-envelope-client", "u-1");
        let amqp = AmqpPublisher::new(AmqpOptions::default(), identity.clone()).exchange(&exchange);
        let sns = SnsPublisher::new(clients, aws_options, identity);
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
    span_names
}

/// The records of messages that did not open, by the span they were logged in.
fn envelope_records(records: &Records, since: usize) -> Vec<Record> {
    let mut found: Vec<Record> = records.0.lock().unwrap()[since..]
        .iter()
        .filter(|record| {
            record.message.contains("not a tomodachi envelope")
                || record.message.contains("malformed envelope")
        })
        .cloned()
        .collect();
    found.sort_by(|a, b| a.spans.cmp(&b.spans));
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_envelope_has_one_record_and_outcome_on_every_transport_with_or_without_telemetry() {
    let records = records();
    let since = records.0.lock().unwrap().len();
    let _ = bad_then_good("plain", None).await;
    let plain = envelope_records(records, since);
    let since = records.0.lock().unwrap().len();

    let spans = Spans::default();
    let tracer_provider = SdkTracerProvider::builder()
        .with_simple_exporter(spans.clone())
        .build();
    let telemetry = Telemetry::new(&tracer_provider, &SdkMeterProvider::default());
    let span_names = bad_then_good("instrumented", Some(telemetry)).await;
    let instrumented = envelope_records(records, since);

    // Instrumented, the consumer's span wraps the envelope: the message that did not open
    // has its CONSUMER span too, status ERROR and outcome reject.
    let spans = spans.0.lock().unwrap().clone();
    let outcome = |span: &SpanData| {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == "tomodachi.outcome")
            .map(|kv| kv.value.clone())
    };
    for name in span_names {
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

    for (run, found) in [("plain", &plain), ("instrumented", &instrumented)] {
        assert_eq!(
            found.len(),
            2,
            "one record per transport ({run}): {found:#?}"
        );
        let spans: Vec<&str> = found
            .iter()
            .map(|r| r.spans.first().map_or("", String::as_str))
            .collect();
        assert_eq!(
            spans,
            ["tomodachi.amqp.handler", "tomodachi.awssnssqs.handler"],
            "one on each transport ({run})"
        );
        for record in found.iter() {
            assert_eq!(record.target, "exception", "{record:#?}");
            assert_eq!(record.level, tracing::Level::ERROR, "{record:#?}");
            assert!(
                record
                    .message
                    .starts_with("uncaught exception: malformed envelope"),
                "{record:#?}"
            );
            assert_eq!(record.outcome.as_deref(), Some("reject"), "{record:#?}");
        }
        assert_eq!(
            found[0].message, found[1].message,
            "the same text on both transports ({run})"
        );
    }
    let strip = |found: &[Record]| -> Vec<(String, Option<String>, String)> {
        found
            .iter()
            .map(|r| (r.target.clone(), r.outcome.clone(), r.message.clone()))
            .collect()
    };
    assert_eq!(
        strip(&plain),
        strip(&instrumented),
        "the same records with and without telemetry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_one_record_and_a_retry_and_the_process_goes_on() {
    let records = records();
    let id = std::process::id();
    let routing_key = format!("pipeline.panic.{id}");
    let text = format!("panicked on the first delivery {id}");
    let calls = Arc::new(AtomicUsize::new(0));
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<usize>();
    let (started_tx, started_rx) = oneshot::channel::<()>();
    let panic_text = text.clone();
    let on_flaky = move |Data(_data): Data<serde_json::Value>| {
        let call = calls.fetch_add(1, Ordering::SeqCst);
        let seen = seen_tx.clone();
        let panic_text = panic_text.clone();
        async move {
            let _ = seen.send(call);
            assert!(call > 0, "{panic_text}");
        }
    };
    let service = Service::new("pipeline-panic")
        .envelope(JsonEnvelope)
        .amqp(Binding::routing_key(&routing_key), on_flaky)
        .on_started(move |_| async move {
            let _ = started_tx.send(());
        });
    let process = Process::new()
        .service(service)
        .without_signals()
        .without_logging()
        .args(["pipeline-panic"]);
    let shutdown = process.shutdown();
    let client = async move {
        tokio::time::timeout(Duration::from_secs(20), started_rx)
            .await
            .expect("service started (RabbitMQ at 127.0.0.1:5672 must run)")
            .unwrap();
        AmqpPublisher::new(
            AmqpOptions::default(),
            ServiceIdentity::new("pipeline-panic-client", "u-1"),
        )
        .envelope(JsonEnvelope)
        .publish(&json!({"n": 1}), &routing_key)
        .await
        .unwrap();
        for expected in [0, 1] {
            let call = tokio::time::timeout(Duration::from_secs(30), seen_rx.recv())
                .await
                .expect("delivered, then delivered again after the panic")
                .unwrap();
            assert_eq!(call, expected);
        }
        shutdown.trigger();
    };
    let (exit, ()) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(process.run(), client)
    })
    .await
    .expect("process stopped");
    assert_eq!(
        exit,
        tomodachi::Exit::SUCCESS,
        "the process went on and stopped cleanly"
    );
    let found: Vec<Record> = records
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|record| record.message.contains(&text))
        .cloned()
        .collect();
    assert_eq!(found.len(), 1, "one record for the panic: {found:#?}");
    assert_eq!(found[0].target, "exception");
    assert_eq!(found[0].level, tracing::Level::ERROR);
    assert_eq!(found[0].message, format!("uncaught exception: {text}"));
    assert_eq!(found[0].outcome.as_deref(), Some("retry"));
}
