//! Wire compatibility of `ProtobufEnvelope` with Python tomodachi's `ProtobufBase`, over
//! SNS+SQS (moto) and AMQP (RabbitMQ), both ways, plain (`proto`) and compressed
//! (`gzip_proto`, a message over 60 000 bytes).
//!
//! Python's side is `tests/python/protobuf_publish.py` and `protobuf_service.py`, with the
//! test message built in `protobuf_person.py` (the same `Person` as below).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use tomodachi::amqp::{AmqpOptions, AmqpPublisher, Binding, Consumer};
use tomodachi::sqs::{
    AwsClients, AwsEndpointUrlsOptions, AwsSnsSqsOptions, SnsPublisher, SqsConsumer, Subscription,
};
use tomodachi::{
    EnvelopeMetadata, Handler, Metadata, Proto, ProtobufEnvelope, ServiceIdentity, Shutdown, State,
};
use tomodachi_core::Source;
use tomodachi_tests::child::{Child, Line, Stream, command};
use tomodachi_tests::{amqp_url, moto_url, python};

/// `tomodachi_rs_test.Person` (see `tests/python/protobuf_person.py`).
#[derive(Clone, PartialEq, prost::Message)]
struct Person {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(string, tag = "3")]
    notes: String,
}

/// Notes of each message sent: a small one (`proto`) and one Python and Rust compress.
const SIZES: [(usize, &str); 2] = [(12, "proto"), (70_000, "gzip_proto")];

const TIMEOUT: Duration = Duration::from_secs(30);

fn person(n: usize, notes: usize) -> Person {
    Person {
        id: n.to_string(),
        name: format!("pérson \u{1f600} {n}"),
        notes: "n".repeat(notes),
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python")
}

async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(TIMEOUT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {TIMEOUT:?} waiting for {what}"))
}

/// Runs `protobuf_publish.py` to send `person` with Python tomodachi.
async fn python_publish(transport: &str, target: &str, person: &Person) {
    let output = command(python())
        .arg(scripts().join("protobuf_publish.py"))
        .args([transport, target, &person.id, &person.name])
        .arg(person.notes.len().to_string())
        .current_dir(scripts())
        .env("TOMODACHI_TEST_MOTO_URL", moto_url())
        .output();
    let output = within("protobuf_publish.py", output).await.unwrap();
    assert!(
        output.status.success(),
        "protobuf_publish.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Starts `protobuf_service.py` under `tomodachi run` and waits until it has started.
async fn python_service(transport: &str, topic: &str, queue: &str) -> Child {
    let tomodachi = python().with_file_name("tomodachi");
    let mut child = Child::spawn(
        command(tomodachi)
            .args(["run", "--production", "protobuf_service.py"])
            .current_dir(scripts())
            .env("PB_TRANSPORT", transport)
            .env("PB_TOPIC", topic)
            .env("PB_QUEUE", queue)
            .env("PB_COUNT", SIZES.len().to_string())
            .env("TOMODACHI_TEST_MOTO_URL", moto_url()),
    );
    child
        .wait_for("the Python service to start", |line| line.text == "STARTED")
        .await;
    child
}

/// The next person the Python service printed.
async fn python_received(child: &mut Child) -> Value {
    let is_json = |line: &Line| line.stream == Stream::Stdout && line.text.starts_with('{');
    let line = child.wait_for("a person handled by Python", is_json).await;
    serde_json::from_str(&line.text).unwrap()
}

fn assert_python_got(got: &Value, sent: &Person, encoding: &str, topic: &str) {
    assert_eq!(got["id"], sent.id.as_str());
    assert_eq!(got["name"], sent.name.as_str());
    assert_eq!(got["notes_len"], sent.notes.len());
    assert_eq!(got["data_encoding"], encoding);
    assert_eq!(got["protocol_version"], "tomodachi-protobuf-base--1.0.0");
    assert_eq!(got["topic"], topic);
    assert_eq!(got["sender"], "rust-publisher");
}

type Seen = (Person, EnvelopeMetadata);

async fn on_person(
    State(seen): State<mpsc::UnboundedSender<Seen>>,
    Metadata(metadata): Metadata,
    Proto(person): Proto<Person>,
) {
    let _ = seen.send((person, metadata));
}

/// Receives every size from Python and checks what the Rust handler saw.
async fn expect_from_python(
    seen: &mut mpsc::UnboundedReceiver<Seen>,
    topic: &str,
    sent: &[Person],
) {
    for ((notes, encoding), sent) in SIZES.iter().zip(sent) {
        let (person, metadata) = within("the Python message", seen.recv()).await.unwrap();
        assert_eq!(&person, sent, "{notes} bytes of notes");
        assert_eq!(metadata.data_encoding, *encoding);
        assert_eq!(metadata.protocol_version, "tomodachi-protobuf-base--1.0.0");
        assert_eq!(metadata.topic, topic);
        assert_eq!(metadata.service_name, "python-publisher");
        assert!(
            metadata
                .message_uuid
                .starts_with("11111111-2222-3333-4444-555555555555."),
            "{}",
            metadata.message_uuid
        );
    }
}

fn aws() -> (AwsSnsSqsOptions, AwsEndpointUrlsOptions) {
    let url = moto_url();
    let options = AwsSnsSqsOptions {
        region_name: Some("us-east-1".into()),
        aws_access_key_id: Some("testing".into()),
        aws_secret_access_key: Some("testing".into()),
        ..AwsSnsSqsOptions::default()
    };
    let endpoints = AwsEndpointUrlsOptions {
        sns: Some(url.clone()),
        sqs: Some(url),
        sts: None,
    };
    (options, endpoints)
}

fn amqp_options() -> AmqpOptions {
    let url = amqp_url();
    assert_eq!(
        url, "amqp://guest:guest@127.0.0.1:5672/%2f",
        "these tests (and Python's side) use RabbitMQ's defaults"
    );
    AmqpOptions {
        queue_ttl: 120,
        ..AmqpOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_publishes_to_a_rust_handler_over_sns_sqs() {
    let (options, endpoints) = aws();
    let clients = AwsClients::from_options(&options, &endpoints)
        .await
        .unwrap();
    let topic = unique("pb-py2rs");
    let (sender, mut seen) = mpsc::unbounded_channel();
    let subscription = Subscription::topic(&topic)
        .queue(unique("pb-py2rs-q"))
        .envelope(ProtobufEnvelope::new().proto::<Person>())
        .wait_time(Duration::from_secs(1));
    let consumer = SqsConsumer::new(
        clients,
        options,
        subscription,
        ServiceIdentity::with_random_uuid("rust-consumer"),
    );
    let shutdown = Shutdown::new();
    let running = within(
        "setup",
        consumer.start(on_person.with_state(sender), shutdown.clone()),
    )
    .await
    .unwrap();
    let running = tokio::spawn(running);

    let sent: Vec<Person> = SIZES
        .iter()
        .enumerate()
        .map(|(n, (notes, _))| person(n, *notes))
        .collect();
    for person in &sent {
        python_publish("sns", &topic, person).await;
    }
    expect_from_python(&mut seen, &topic, &sent).await;
    shutdown.trigger();
    within("drain", running).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_publishes_to_a_python_handler_over_sns_sqs() {
    let (options, endpoints) = aws();
    let clients = AwsClients::from_options(&options, &endpoints)
        .await
        .unwrap();
    let topic = unique("pb-rs2py");
    let mut python = python_service("sns", &topic, &unique("pb-rs2py-q")).await;
    let publisher = SnsPublisher::new(
        clients,
        options,
        ServiceIdentity::with_random_uuid("rust-publisher"),
    )
    .envelope(std::sync::Arc::new(ProtobufEnvelope::new()));
    for (n, (notes, encoding)) in SIZES.iter().enumerate() {
        let sent = person(n, *notes);
        publisher
            .publish(&Proto(sent.clone()), &topic)
            .await
            .unwrap();
        let got = python_received(&mut python).await;
        assert_python_got(&got, &sent, encoding, &topic);
    }
    assert!(python.wait_exit(TIMEOUT).await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_publishes_to_a_rust_handler_over_amqp() {
    let key = unique("pb-py2rs");
    let (sender, mut seen) = mpsc::unbounded_channel();
    let binding = Binding::routing_key(&key)
        .queue_name(unique("pb-py2rs-q"))
        .envelope(ProtobufEnvelope::new().proto::<Person>());
    let consumer = Consumer::new(
        amqp_options(),
        binding,
        ServiceIdentity::with_random_uuid("rust-consumer"),
    );
    let shutdown = Shutdown::new();
    let running = within(
        "setup",
        consumer.start(on_person.with_state(sender), shutdown.clone()),
    )
    .await
    .unwrap();
    let running = tokio::spawn(running);

    let sent: Vec<Person> = SIZES
        .iter()
        .enumerate()
        .map(|(n, (notes, _))| person(n, *notes))
        .collect();
    for person in &sent {
        python_publish("amqp", &key, person).await;
    }
    expect_from_python(&mut seen, &key, &sent).await;
    shutdown.trigger();
    within("drain", running).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_publishes_to_a_python_handler_over_amqp() {
    let key = unique("pb-rs2py");
    let mut python = python_service("amqp", &key, &unique("pb-rs2py-q")).await;
    let publisher = AmqpPublisher::new(
        amqp_options(),
        ServiceIdentity::with_random_uuid("rust-publisher"),
    )
    .envelope(ProtobufEnvelope::new());
    for (n, (notes, encoding)) in SIZES.iter().enumerate() {
        let sent = person(n, *notes);
        publisher.publish(&Proto(sent.clone()), &key).await.unwrap();
        let got = python_received(&mut python).await;
        assert_python_got(&got, &sent, encoding, &key);
    }
    assert!(python.wait_exit(TIMEOUT).await.success());
    publisher.close().await;
}
