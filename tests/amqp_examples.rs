//! The AMQP examples, built here as binaries from their sources, against the real broker
//! (RabbitMQ at 127.0.0.1:5672, or `TOMODACHI_TEST_AMQP_URL`):
//!
//! - `amqp_service` forwards the data of an enveloped message on `example.topic`, byte for
//!   byte, in a new envelope of its own on `example.response`, and stops with exit code 0 on
//!   SIGTERM;
//! - `amqp_publisher`'s scheduled messages reach `amqp_subscriber`.
//!
//! Each test gives its processes routing-key and queue-name prefixes of its own
//! (`TOMODACHI_AMQP_ROUTING_KEY_PREFIX`, `_QUEUE_NAME_PREFIX`: as in tomodachi, the
//! auto-generated queue name ignores the routing-key prefix), so their messages and queues
//! are theirs alone, and a queue TTL of a minute, so the queues go away. No step waits on a timer: each waits for a log
//! record or a delivery (bounded by a timeout).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::Value;
use serde_json::value::RawValue;
use tomodachi::{Envelope, JsonEnvelope, ServiceIdentity};
use tomodachi_tests::child::{Child, Line, command, record};
use tomodachi_tests::{amqp_url, expect_reachable};

const LIFECYCLE: &str = "tomodachi.lifecycle";

/// How long a message may take to come back before the test fails.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// A routing-key prefix no other run uses.
fn unique_prefix() -> String {
    format!("test-{}.", uuid::Uuid::new_v4().simple())
}

/// `command(program)` for the broker of the tests, with both prefixes, `--logger json`.
fn service(program: &str, prefix: &str) -> tokio::process::Command {
    let url = amqp_url();
    let (host, port) = broker_address(&url);
    let mut command = command(program);
    command
        .args(["--logger", "json"])
        .env("TOMODACHI_AMQP_HOST", host)
        .env("TOMODACHI_AMQP_PORT", port.to_string())
        .env("TOMODACHI_AMQP_ROUTING_KEY_PREFIX", prefix)
        .env("TOMODACHI_AMQP_QUEUE_NAME_PREFIX", prefix)
        .env("TOMODACHI_AMQP_QUEUE_TTL", "60");
    command
}

/// Host and port of an `amqp://user:pass@host:port/vhost` URL.
fn broker_address(url: &str) -> (String, u16) {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    match authority.rsplit_once(':') {
        Some((host, port)) => (host.to_owned(), port.parse().unwrap_or(5672)),
        None => (authority.to_owned(), 5672),
    }
}

/// A string field of a JSON log record.
fn field<'a>(line: &'a Line, key: &str) -> &'a str {
    line.record
        .as_ref()
        .and_then(|r| r.get(key))
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string field {key:?} in {line}"))
}

/// Stops `child` with SIGTERM; it must exit with code 0 within 10 s after logging
/// "terminated service".
async fn terminate(child: &mut Child) {
    child.signal("TERM");
    child
        .wait_for("terminated", record(LIFECYCLE, "terminated service"))
        .await;
    let status = child.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "output:\n{}", child.output());
}

#[tokio::test]
async fn amqp_service_forwards_the_data_unchanged_on_example_response() {
    let url = amqp_url();
    let (host, port) = broker_address(&url);
    expect_reachable(&format!("{host}:{port}"), "RabbitMQ").await;
    let prefix = unique_prefix();

    // Our own queue on <prefix>example.response, bound before anything is published.
    let connection = Connection::connect(&url, ConnectionProperties::default())
        .await
        .expect("connect to RabbitMQ");
    let channel = connection.create_channel().await.unwrap();
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .queue_bind(
            queue.name().clone(),
            "amq.topic".into(),
            format!("{prefix}example.response").into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut responses = channel
        .basic_consume(
            queue.name().clone(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();

    let mut child = Child::spawn(&mut service(env!("CARGO_BIN_EXE_amqp_service"), &prefix));
    child
        .wait_for("started", record(LIFECYCLE, "started service successfully"))
        .await;

    // Key order, spacing, escapes and a float that a parse + print could change.
    let id = uuid::Uuid::new_v4().to_string();
    let data = format!(
        r#"{{"zeta": 1, "alpha": "\u53cb\u9054", "id": "{id}", "f": 1e-07, "nested": {{"b": [1, 2.50, null], "a": true}}}}"#
    );
    let sender = ServiceIdentity::with_random_uuid("amqp-examples-test");
    let raw = RawValue::from_string(data.clone()).unwrap();
    let payload = JsonEnvelope.seal(&sender, "example.topic", &raw).unwrap();
    channel
        .basic_publish(
            "amq.topic".into(),
            format!("{prefix}example.topic").into(),
            BasicPublishOptions::default(),
            payload.as_bytes(),
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();

    let delivery = tokio::time::timeout(DELIVERY_TIMEOUT, responses.next())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "nothing on {prefix}example.response within {DELIVERY_TIMEOUT:?}; output:\n{}",
                child.output()
            )
        })
        .expect("the consumer ended")
        .expect("a delivery");
    delivery.ack(BasicAckOptions::default()).await.unwrap();
    assert_eq!(
        delivery.routing_key.as_str(),
        format!("{prefix}example.response")
    );

    #[derive(serde::Deserialize)]
    struct Sealed<'a> {
        service: Value,
        metadata: Value,
        #[serde(borrow)]
        data: &'a RawValue,
    }
    let body = std::str::from_utf8(&delivery.data).expect("UTF-8 body");
    let sealed: Sealed<'_> = serde_json::from_str(body).expect("a JSON envelope");
    assert_eq!(sealed.data.get(), data, "the data was changed: {body}");
    assert_eq!(sealed.service["name"], "amqp-example", "{body}");
    assert_eq!(sealed.metadata["topic"], "example.response", "{body}");
    assert_eq!(sealed.metadata["data_encoding"], "raw", "{body}");
    let service_uuid = sealed.service["uuid"].as_str().expect("service uuid");
    let message_uuid = sealed.metadata["message_uuid"]
        .as_str()
        .expect("message uuid");
    assert!(
        message_uuid.starts_with(&format!("{service_uuid}.")),
        "{body}"
    );

    // The handler's record names the message it received.
    let received = child
        .wait_for(
            "the handler's record",
            record("amqp_service", "received, forwarding to example.response"),
        )
        .await;
    assert!(
        field(&received, "message_uuid").starts_with(&*sender.uuid),
        "{received}"
    );
    // As delivered: with the prefix.
    assert_eq!(
        field(&received, "routing_key"),
        format!("{prefix}example.topic"),
        "{received}"
    );

    terminate(&mut child).await;
    let _ = connection.close(200, "OK".into()).await;
}

#[tokio::test]
async fn amqp_publisher_messages_reach_amqp_subscriber() {
    let url = amqp_url();
    let (host, port) = broker_address(&url);
    expect_reachable(&format!("{host}:{port}"), "RabbitMQ").await;
    let prefix = unique_prefix();

    let mut subscriber = Child::spawn(&mut service(env!("CARGO_BIN_EXE_amqp_subscriber"), &prefix));
    subscriber
        .wait_for("started", record(LIFECYCLE, "started service successfully"))
        .await;
    let mut publisher = service(env!("CARGO_BIN_EXE_amqp_publisher"), &prefix);
    publisher.env("PUBLISH_INTERVAL", "1");
    let mut publisher = Child::spawn(&mut publisher);

    for n in 1..=2_u64 {
        let published = publisher
            .wait_for("a publish", record("amqp_publisher", "publishing"))
            .await;
        let data: Value = serde_json::from_str(field(&published, "data")).expect("data as JSON");
        assert_eq!(data["n"], n, "{published}");
        let id = data["id"].as_str().expect("an id").to_owned();
        let received = subscriber
            .wait_for("the message on the subscriber", |line: &Line| {
                line.logger() == Some("amqp_subscriber")
                    && line.message() == Some("received")
                    && line.field("id") == Some(id.as_str())
            })
            .await;
        assert_eq!(
            field(&received, "sender"),
            "amqp-pubsub-publisher",
            "{received}"
        );
        assert_eq!(
            field(&received, "topic"),
            "example.pubsub.new-message",
            "{received}"
        );
    }

    terminate(&mut publisher).await;
    assert!(
        publisher
            .records()
            .iter()
            .any(|line| line.message() == Some("publisher closed")),
        "output:\n{}",
        publisher.output()
    );
    terminate(&mut subscriber).await;
}
