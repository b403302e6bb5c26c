//! The `sqs` feature alone (queues, no SNS): a scheduled handler sends with the service's
//! own `SqsSender` to a queue that the service's SQS handler consumes (tomodachi's
//! `sqs_send_message` and `@aws_sns_sqs(queue_name=…)` without a topic). Needs moto at
//! 127.0.0.1:4566 (`TOMODACHI_TEST_MOTO_URL`).
#![cfg(all(feature = "schedule", feature = "sqs"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tomodachi::sqs::{AwsEndpointUrlsOptions, AwsSnsSqsOptions, SqsSender, Subscription};
use tomodachi::{
    Data, EnvelopeMetadata, JsonEnvelope, Metadata, Options, Process, Schedule, Service, State,
};

#[derive(Clone)]
struct App {
    queue: String,
    seen: mpsc::UnboundedSender<(EnvelopeMetadata, Value)>,
}

/// Sends once a second with the sender the facade hands it.
async fn tick(State(app): State<App>, sqs: SqsSender) -> Result<(), tomodachi::core::BoxError> {
    sqs.send(&json!({"via": "sqs"}), &app.queue).await?;
    Ok(())
}

async fn on_message(State(app): State<App>, Metadata(meta): Metadata, Data(data): Data<Value>) {
    let _ = app.seen.send((meta, data));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_without_a_topic_gets_what_the_services_sender_sends() {
    let url =
        std::env::var("TOMODACHI_TEST_MOTO_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let id = format!("{}-{nanos}", std::process::id());
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let app = App {
        queue: format!("queue-only-{id}"),
        seen: seen_tx,
    };
    let service = Service::new("queue-test")
        .uuid(format!("uuid-{id}"))
        .state(app.clone())
        .envelope(JsonEnvelope)
        .options(
            Options::new()
                .aws_sns_sqs(AwsSnsSqsOptions {
                    region_name: Some("us-east-1".into()),
                    aws_access_key_id: Some("testing".into()),
                    aws_secret_access_key: Some("testing".into()),
                    ..AwsSnsSqsOptions::default()
                })
                .aws_endpoint_urls(AwsEndpointUrlsOptions {
                    sqs: Some(url),
                    ..AwsEndpointUrlsOptions::default()
                }),
        )
        .schedule(Schedule::heartbeat(), tick)
        .sqs(
            Subscription::new()
                .queue(&app.queue)
                .wait_time(Duration::from_secs(1)),
            on_message,
        );
    let process = Process::new()
        .service(service)
        .without_signals()
        .without_logging()
        .args(["queue-test"]);
    let shutdown = process.shutdown();
    let client = async move {
        let seen = tokio::time::timeout(Duration::from_secs(30), seen_rx.recv())
            .await
            .expect("the sent message was handled")
            .unwrap();
        shutdown.trigger();
        seen
    };
    let (_exit, (meta, data)) = tokio::time::timeout(Duration::from_secs(90), async {
        tokio::join!(process.run(), client)
    })
    .await
    .expect("process stopped");

    assert_eq!(data, json!({"via": "sqs"}));
    assert_eq!(meta.service_name, "queue-test", "{meta:?}");
    assert_eq!(meta.service_uuid, format!("uuid-{id}"), "{meta:?}");
    assert_eq!(meta.topic, "", "{meta:?}");
}
