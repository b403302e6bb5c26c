//! Shared helpers of the broker tests: the real RabbitMQ at 127.0.0.1:5672 (guest/guest).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::future::Future;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tomodachi_amqp::{AmqpContext, AmqpOptions, Consumer, Error, QosOptions};
use tomodachi_core::{
    BoxError, Data, EnvelopeMetadata, Message, MessageUuid, Metadata, Outcome, ServiceIdentity,
    Shutdown, Source, State,
};
use tower::Service;

pub mod rabbitmqctl;
pub use rabbitmqctl::connection_pids;

pub const BROKER_URI: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Options of the test broker; panics with a clear message if it cannot be reached.
pub fn options() -> AmqpOptions {
    let addr: SocketAddr = "127.0.0.1:5672".parse().unwrap();
    if let Err(error) = TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
        panic!(
            "RabbitMQ is not reachable at 127.0.0.1:5672 ({error}): start it (`.ci/run` does) \
             before running the tomodachi-amqp broker tests"
        );
    }
    AmqpOptions {
        // test queues expire two minutes after their last consumer
        queue_ttl: 120,
        ..AmqpOptions::default()
    }
}

/// Options with a small prefetch.
pub fn options_with_prefetch(queue: u16) -> AmqpOptions {
    AmqpOptions {
        qos: QosOptions {
            queue_prefetch_count: queue,
            global_prefetch_count: 400,
        },
        ..options()
    }
}

/// A name no other test (or run) uses.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

pub fn identity(name: &str) -> ServiceIdentity {
    ServiceIdentity::with_random_uuid(name)
}

/// Awaits `future`, panicking with `what` after `secs` seconds.
pub async fn within<F: Future>(secs: u64, what: &str, future: F) -> F::Output {
    match tokio::time::timeout(Duration::from_secs(secs), future).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {secs} s waiting for {what}"),
    }
}

/// A plain lapin connection and channel (publisher confirms on) for test fixtures.
pub async fn raw() -> (Connection, Channel) {
    let _ = options();
    let connection = Connection::connect(BROKER_URI, ConnectionProperties::default())
        .await
        .expect("connect to RabbitMQ");
    let channel = connection.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    (connection, channel)
}

/// Publishes `body` and waits for the broker's confirm.
pub async fn publish_raw(channel: &Channel, exchange: &str, routing_key: &str, body: &[u8]) {
    channel
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
}

/// Deletes a test exchange.
pub async fn delete_exchange(name: &str) {
    let (_connection, channel) = raw().await;
    let _ = channel
        .exchange_delete(
            name.into(),
            lapin::options::ExchangeDeleteOptions::default(),
        )
        .await;
}

/// Declares a fanout dead-letter exchange with one queue; returns (exchange, queue).
pub async fn dead_letter_queue(channel: &lapin::Channel) -> (String, String) {
    let dlx = unique("dlx");
    let dlq = unique("dlq");
    channel
        .exchange_declare(
            dlx.as_str().into(),
            lapin::ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                auto_delete: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .queue_declare(
            dlq.as_str().into(),
            QueueDeclareOptions {
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .queue_bind(
            dlq.as_str().into(),
            dlx.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    (dlx, dlq)
}

/// Ready (not unacked) messages in `queue`.
pub async fn ready_count(channel: &Channel, queue: &str) -> u32 {
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap()
        .message_count()
}

/// What a recording handler saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub data: serde_json::Value,
    pub message_uuid: String,
    pub metadata: EnvelopeMetadata,
    pub context: AmqpContext,
}

/// The state of [`record`]: where it sends what it saw.
#[derive(Clone)]
pub struct Recorder(pub mpsc::UnboundedSender<Seen>);

pub fn recorder() -> (Recorder, mpsc::UnboundedReceiver<Seen>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Recorder(tx), rx)
}

/// A handler that records every message (needs the JSON envelope opened).
pub async fn record(
    State(recorder): State<Recorder>,
    context: AmqpContext,
    MessageUuid(message_uuid): MessageUuid,
    Metadata(metadata): Metadata,
    Data(data): Data<serde_json::Value>,
) {
    let _ = recorder.0.send(Seen {
        data,
        message_uuid,
        metadata,
        context,
    });
}

/// Receives `n` records.
pub async fn take(rx: &mut mpsc::UnboundedReceiver<Seen>, n: usize, secs: u64) -> Vec<Seen> {
    within(secs, &format!("{n} messages"), async {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            out.push(rx.recv().await.expect("recorder closed"));
        }
        out
    })
    .await
}

/// Closes this test's connection (only it: other tests run at the same time).
pub async fn close_connection(pid: &str) {
    rabbitmqctl::close_connection(pid, "closed by the tomodachi-amqp reconnect test").await;
}

pub async fn only_pid(name: &str) -> String {
    let pids = within(30, "rabbitmqctl list_connections", connection_pids(name)).await;
    assert_eq!(pids.len(), 1, "one connection named {name}: {pids:?}");
    pids.into_iter().next().unwrap()
}

/// Starts `consumer` (setup must succeed) and runs it in the background.
pub async fn start<S>(consumer: Consumer, service: S) -> (Shutdown, JoinHandle<Result<(), Error>>)
where
    S: Service<Message, Response = Outcome> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    let shutdown = Shutdown::new();
    let running = within(
        15,
        "consumer setup",
        consumer.start(service, shutdown.clone()),
    )
    .await
    .expect("consumer setup");
    (shutdown, tokio::spawn(running))
}

pub async fn stop(shutdown: Shutdown, task: JoinHandle<Result<(), Error>>) {
    shutdown.trigger();
    within(15, "consumer drain", task).await.unwrap().unwrap();
}

/// Installs a log subscriber once (RUST_LOG controls it).
pub fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
