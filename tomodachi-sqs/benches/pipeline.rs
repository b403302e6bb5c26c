//! The per-message pipeline of the consumer, without the network: SQS message → SNS
//! notification → context → core's driver → JSON envelope (`EnvelopeLayer`) → handler with
//! extractors → outcome.
//!
//! `cargo bench -p tomodachi-sqs --bench pipeline`
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Arc;

use aws_sdk_sqs::types::{Message as SqsMessage, MessageSystemAttributeName};
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt as _;
use serde::{Deserialize, Serialize};
use tomodachi_core::driver::Driver;
use tomodachi_core::{
    Data, Envelope, EnvelopeLayer, Handler, JsonEnvelope, Message, Outcome, ServiceIdentity,
    Shutdown, to_python_json,
};
use tomodachi_sqs::{ApproximateReceiveCount, MessageAttributes, Topic, message_from_sqs};
use tower::Layer as _;

#[derive(Debug, Serialize, Deserialize)]
struct Order {
    id: u64,
    customer: String,
    items: Vec<Item>,
    note: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Item {
    sku: String,
    quantity: u32,
    price: f64,
}

/// An order whose JSON is about 1 KB.
fn order() -> Order {
    Order {
        id: 1_234_567,
        customer: "customer-0042".into(),
        items: (0..12)
            .map(|i| Item {
                sku: format!("sku-{i:04}-abcdefgh"),
                quantity: i,
                price: 9.95 + f64::from(i),
            })
            .collect(),
        note: "ö".repeat(40),
    }
}

/// What SQS delivers for an SNS publish of the order (raw delivery off, as tomodachi).
fn sqs_message() -> SqsMessage {
    let sender = ServiceIdentity::new("bench", "7c0d9e2a-1c1b-4f43-9a5e-0b7c7d9e0a11");
    let data = to_python_json(&order()).unwrap();
    let sealed = JsonEnvelope.seal(&sender, "orders", &data).unwrap();
    let notification = serde_json::json!({
        "Type": "Notification",
        "MessageId": "0d4f6c1e-5a1b-4c55-9f1e-1f7a1f0b9c11",
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:orders",
        "Message": sealed,
        "Timestamp": "2026-11-28T12:00:00.000Z",
        "SignatureVersion": "1",
        "MessageAttributes": {
            "event": {"Type": "String", "Value": "order.paid"},
            "amount": {"Type": "Number", "Value": "42"},
        },
    });
    let body = notification.to_string();
    eprintln!(
        "SQS body: {} bytes (data {} bytes)",
        body.len(),
        data.get().len()
    );
    SqsMessage::builder()
        .body(body)
        .message_id("7a9e1c40-2f0c-4a53-8f57-2c0b1d1e3f22")
        .receipt_handle("AQEB".repeat(40))
        .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "1")
        .build()
}

async fn on_order(
    Topic(topic): Topic,
    ApproximateReceiveCount(count): ApproximateReceiveCount,
    MessageAttributes(attributes): MessageAttributes,
    Data(order): Data<Order>,
) -> Outcome {
    black_box((topic, count, attributes.len(), order.id));
    Outcome::Ack
}

/// CPU seconds (user + system) this process used, from `/proc/self/stat` (Linux).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn pipeline(c: &mut Criterion) {
    let message = sqs_message();
    let queue_url: Arc<str> = "https://sqs.eu-west-1.amazonaws.com/123456789012/orders".into();
    // What the consumer drives: the envelope as a layer, the handler, core's driver around
    // them (readiness, errors and panics classified), less the task and the delete.
    let service = EnvelopeLayer::new(JsonEnvelope).layer(on_order.with_state(()));
    let mut driver = Driver::new(tomodachi_sqs::TRANSPORT, service, Shutdown::new());
    let mut outcome_of = move |message: Message| -> Outcome {
        let ready = driver.ready().now_or_never().unwrap().unwrap().unwrap();
        ready.call(message).now_or_never().unwrap()
    };

    // CPU time per message, less disturbed than wall time on a shared machine
    // (`PIPELINE_ROUNDS=2000` for a short run under callgrind).
    let rounds: u32 = std::env::var("PIPELINE_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(200_000);
    if let Some(start) = cpu_seconds() {
        for _ in 0..rounds {
            let message = message_from_sqs(black_box(&message), &queue_url, "").unwrap();
            black_box(outcome_of(message));
        }
        let parsed = cpu_seconds();
        for _ in 0..rounds {
            black_box(message_from_sqs(black_box(&message), &queue_url, "").unwrap());
        }
        let baseline = cpu_seconds();
        for _ in 0..rounds {
            black_box(
                serde_json::from_str::<serde_json::Value>(black_box(message.body().unwrap()))
                    .unwrap(),
            );
        }
        if let (Some(parsed), Some(baseline), Some(value)) = (parsed, baseline, cpu_seconds()) {
            eprintln!(
                "parse only: {:.2} µs CPU; baseline serde_json::Value of the body: {:.2} µs CPU",
                (baseline - parsed) * 1e6 / f64::from(rounds),
                (value - baseline) * 1e6 / f64::from(rounds)
            );
        }
        if let Some(end) = parsed {
            eprintln!(
                "sqs_message_to_outcome_1kb: {:.2} µs CPU per message ({rounds} messages)",
                (end - start) * 1e6 / f64::from(rounds)
            );
        }
    }

    c.bench_function("sqs_message_to_outcome_1kb", |b| {
        b.iter(|| {
            let message = message_from_sqs(black_box(&message), &queue_url, "").unwrap();
            let outcome = outcome_of(message);
            assert!(outcome.is_ack());
            black_box(outcome)
        });
    });

    c.bench_function("sqs_message_parse_only_1kb", |b| {
        b.iter(|| black_box(message_from_sqs(black_box(&message), &queue_url, "").unwrap()));
    });
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
