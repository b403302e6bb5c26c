//! The service's publishers in a scheduled handler: `AmqpPublisher` and `SnsPublisher` are
//! its arguments, made from the service's options (broker, moto endpoints), its name and
//! uuid and its envelope, with nothing built by hand; the service's own AMQP and SNS+SQS
//! handlers receive what they publish. Needs RabbitMQ at 127.0.0.1:5672 and moto at
//! 127.0.0.1:4566 (`TOMODACHI_TEST_MOTO_URL`).
#![cfg(all(feature = "schedule", feature = "amqp", feature = "sns"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tomodachi::amqp::{AmqpPublisher, Binding};
use tomodachi::sqs::{AwsEndpointUrlsOptions, AwsSnsSqsOptions, SnsPublisher, Subscription};
use tomodachi::{
    Data, EnvelopeMetadata, JsonEnvelope, Metadata, Options, Process, Schedule, Service, State,
};

#[derive(Clone)]
struct App {
    routing_key: String,
    topic: String,
    seen: mpsc::UnboundedSender<(&'static str, EnvelopeMetadata, Value)>,
}

/// Publishes once a second on both transports, with the publishers the facade hands it.
async fn tick(
    State(app): State<App>,
    amqp: AmqpPublisher,
    sns: SnsPublisher,
) -> Result<(), tomodachi::core::BoxError> {
    amqp.publish(&json!({"via": "amqp"}), &app.routing_key)
        .await?;
    sns.publish(&json!({"via": "sns"}), &app.topic).await?;
    Ok(())
}

async fn on_amqp(State(app): State<App>, Metadata(meta): Metadata, Data(data): Data<Value>) {
    let _ = app.seen.send(("amqp", meta, data));
}

async fn on_sqs(State(app): State<App>, Metadata(meta): Metadata, Data(data): Data<Value>) {
    let _ = app.seen.send(("sqs", meta, data));
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
async fn a_scheduled_handler_publishes_with_the_services_own_publishers() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let id = format!("{}-{nanos}", std::process::id());
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let app = App {
        routing_key: format!("publishers.{id}"),
        topic: format!("publishers-{id}"),
        seen: seen_tx,
    };
    let (aws_options, endpoints) = aws();
    let service = Service::new("publishers-test")
        .uuid(format!("uuid-{id}"))
        .state(app.clone())
        .envelope(JsonEnvelope)
        .options(
            Options::new()
                .aws_sns_sqs(aws_options)
                .aws_endpoint_urls(endpoints),
        )
        .schedule(Schedule::heartbeat(), tick)
        .amqp(Binding::routing_key(&app.routing_key), on_amqp)
        .sqs(
            Subscription::topic(&app.topic)
                .queue(format!("{}-q", app.topic))
                .wait_time(Duration::from_secs(1)),
            on_sqs,
        );
    let process = Process::new()
        .service(service)
        .without_signals()
        .without_logging()
        .args(["publishers-test"]);
    let shutdown = process.shutdown();
    let client = async move {
        let mut seen: Vec<(&str, EnvelopeMetadata, Value)> = Vec::new();
        while !(seen.iter().any(|(via, ..)| *via == "amqp")
            && seen.iter().any(|(via, ..)| *via == "sqs"))
        {
            let next = tokio::time::timeout(Duration::from_secs(30), seen_rx.recv())
                .await
                .expect("the published messages were handled")
                .unwrap();
            seen.push(next);
        }
        shutdown.trigger();
        seen
    };
    let (_exit, seen) = tokio::time::timeout(Duration::from_secs(90), async {
        tokio::join!(process.run(), client)
    })
    .await
    .expect("process stopped");

    for via in ["amqp", "sqs"] {
        let (_, meta, data) = seen.iter().find(|(v, ..)| *v == via).unwrap();
        assert_eq!(meta.service_name, "publishers-test", "{via}: {meta:?}");
        assert_eq!(meta.service_uuid, format!("uuid-{id}"), "{via}: {meta:?}");
        let expected = if via == "amqp" { "amqp" } else { "sns" };
        assert_eq!(data["via"], expected, "{via}: {data}");
    }
    assert_eq!(
        seen.iter().find(|(v, ..)| *v == "sqs").unwrap().1.topic,
        app.topic
    );
}
