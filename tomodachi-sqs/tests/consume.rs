//! The consumer against moto: context, attributes, filter policies, outcomes, batching,
//! FIFO order, dead-lettering, shutdown and the visibility heartbeat.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tomodachi_core::{AttributeValue, Handler, JsonEnvelope, Message, Outcome, Shutdown, Source};
use tomodachi_sqs::{
    Error, PublishOptions, SnsPublisher, SqsConsumer, SqsContext, Subscription,
    VisibilityHeartbeatLayer,
};
use tower::{Layer, service_fn};

use support::*;

type Running = tokio::task::JoinHandle<Result<(), Error>>;

async fn start<S>(consumer: SqsConsumer, service: S) -> (Shutdown, Running)
where
    SqsConsumer: Source<S, Error = Error>,
{
    let shutdown = Shutdown::new();
    let running = consumer.start(service, shutdown.clone()).await.unwrap();
    (shutdown, tokio::spawn(running))
}

async fn stop(shutdown: Shutdown, running: Running) {
    shutdown.trigger();
    within(30, "the consumer to drain", running)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn context_and_every_attribute_type_round_trip() {
    let clients = clients().await;
    let topic = unique("ctx");
    let subscription = Subscription::topic(&topic)
        .queue(unique("ctx-q"))
        .envelope(JsonEnvelope);
    let (sender, mut received) = mpsc::unbounded_channel();
    let (shutdown, running) = start(
        consumer(&clients, subscription),
        on_message.with_state(sender),
    )
    .await;

    let publisher = SnsPublisher::new(clients.clone(), options(), identity("publisher"));
    let message_id = publisher
        .publish_with(
            &json!({"order": 7, "name": "å"}),
            &topic,
            PublishOptions::new()
                .attribute("string", "text")
                .attribute("int", 42_i64)
                .attribute(
                    "float",
                    AttributeValue::Number(serde_json::Number::from_f64(1.5).unwrap()),
                )
                .attribute("bool", true)
                .attribute("null", AttributeValue::Json(Value::Null))
                .attribute("list", AttributeValue::Json(json!([1, "a", null])))
                .attribute("bytes", bytes::Bytes::from_static(b"\x00\xff")),
        )
        .await
        .unwrap();

    let (context, data) = within(20, "the message", received.recv()).await.unwrap();
    assert_eq!(data, json!({"order": 7, "name": "å"}));
    assert_eq!(context.topic, topic);
    assert_eq!(context.sns_message_id, message_id);
    assert!(!context.sqs_message_id.is_empty());
    assert_eq!(context.message_type.as_deref(), Some("Notification"));
    assert_eq!(context.approximate_receive_count, Some(1));
    assert!(context.message_timestamp.ends_with('Z'));
    let attributes = &context.message_attributes;
    assert_eq!(attributes.get("string"), Some(&"text".into()));
    assert_eq!(attributes.get("int"), Some(&42_i64.into()));
    assert_eq!(
        attributes.get("float"),
        Some(&AttributeValue::Number(
            serde_json::Number::from_f64(1.5).unwrap()
        ))
    );
    assert_eq!(
        attributes.get("bool"),
        Some(&AttributeValue::Json(json!(true)))
    );
    assert_eq!(
        attributes.get("null"),
        Some(&AttributeValue::Json(Value::Null))
    );
    assert_eq!(
        attributes.get("list"),
        Some(&AttributeValue::Json(json!([1, "a", null])))
    );
    assert_eq!(
        attributes.get("bytes"),
        Some(&AttributeValue::Binary(bytes::Bytes::from_static(
            b"\x00\xff"
        )))
    );
    stop(shutdown, running).await;
}

#[tokio::test]
async fn filter_policy_keeps_and_drops_by_attribute() {
    let clients = clients().await;
    let topic = unique("filter");
    let queue = unique("filter-q");
    let subscription = Subscription::topic(&topic)
        .queue(&queue)
        .envelope(JsonEnvelope)
        .filter_policy(json!({"event": ["keep"]}));
    let (sender, mut received) = mpsc::unbounded_channel();
    let (shutdown, running) = start(
        consumer(&clients, subscription),
        on_message.with_state(sender),
    )
    .await;
    let publisher = SnsPublisher::new(clients.clone(), options(), identity("publisher"));
    for event in ["drop", "keep"] {
        publisher
            .publish_with(
                &json!({"event": event}),
                &topic,
                PublishOptions::new().attribute("event", event),
            )
            .await
            .unwrap();
    }
    let (_, data) = within(20, "the kept message", received.recv())
        .await
        .unwrap();
    assert_eq!(data, json!({"event": "keep"}));
    stop(shutdown, running).await;
    let url = queue_url(&clients, &queue).await;
    assert!(receive_all(&clients, &url, 1).await.is_empty());
    assert!(received.try_recv().is_err(), "the dropped message arrived");
}

/// A handler that fails (error or panic) on the first delivery and records receive counts.
async fn redelivered_after_failure(panic: bool) {
    let clients = clients().await;
    let topic = unique("retry");
    let subscription = Subscription::topic(&topic)
        .queue(unique("retry-q"))
        .visibility_timeout(1);
    let (sender, mut counts) = mpsc::unbounded_channel();
    let service = service_fn(move |message: Message| {
        let sender = sender.clone();
        async move {
            let count = message
                .context::<SqsContext>()
                .unwrap()
                .approximate_receive_count;
            sender.send(count).unwrap();
            if count == Some(1) {
                if panic {
                    panic!("first delivery fails");
                }
                return Err::<Outcome, std::io::Error>(std::io::Error::other(
                    "first delivery fails",
                ));
            }
            Ok(Outcome::Ack)
        }
    });
    let (shutdown, running) = start(consumer(&clients, subscription), service).await;
    SnsPublisher::new(clients.clone(), options(), identity("publisher"))
        .publish(&json!("work"), &topic)
        .await
        .unwrap();
    assert_eq!(
        within(20, "first delivery", counts.recv()).await,
        Some(Some(1))
    );
    assert_eq!(within(20, "redelivery", counts.recv()).await, Some(Some(2)));
    stop(shutdown, running).await;
}

#[tokio::test]
async fn handler_error_is_redelivered_with_receive_count_2() {
    redelivered_after_failure(false).await;
}

#[tokio::test]
async fn handler_panic_is_redelivered_with_receive_count_2() {
    redelivered_after_failure(true).await;
}

#[tokio::test]
async fn acks_are_deleted_with_delete_message_batch() {
    let (clients, counter) = counted_clients().await;
    let queue = unique("batch-q");
    let subscription = Subscription::new().queue(&queue);
    let url = consumer(&clients, subscription.clone())
        .setup()
        .await
        .unwrap();
    let sender = tomodachi_sqs::SqsSender::new(clients.clone(), options(), identity("sender"));
    for index in 0..10 {
        sender.send(&json!(index), &url).await.unwrap();
    }
    let handled = Arc::new(AtomicUsize::new(0));
    let (done_tx, mut done) = mpsc::unbounded_channel();
    let service = {
        let handled = handled.clone();
        service_fn(move |_message: Message| {
            let handled = handled.clone();
            let done_tx = done_tx.clone();
            async move {
                if handled.fetch_add(1, Ordering::SeqCst) + 1 == 10 {
                    let _ = done_tx.send(());
                }
                Ok::<_, Infallible>(Outcome::Ack)
            }
        })
    };
    let (shutdown, running) = start(consumer(&clients, subscription), service).await;
    within(20, "ten messages", done.recv()).await.unwrap();
    stop(shutdown, running).await;
    assert_eq!(counter.get("DeleteMessage"), 0);
    let batches = counter.get("DeleteMessageBatch");
    let receives = counter.get("ReceiveMessage");
    assert!(
        (1..=5).contains(&batches),
        "{batches} DeleteMessageBatch calls"
    );
    eprintln!("10 messages: {receives} ReceiveMessage, {batches} DeleteMessageBatch");
    let attributes = queue_attributes(&clients, &url).await;
    assert_eq!(attributes["ApproximateNumberOfMessages"], "0");
    assert_eq!(attributes["ApproximateNumberOfMessagesNotVisible"], "0");
}

#[tokio::test]
async fn unsupported_body_is_logged_and_deleted() {
    let logs = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let written = Arc::new(tokio::sync::Notify::new());
    let writer = {
        let (logs, written) = (logs.clone(), written.clone());
        move || LogWriter(logs.clone(), written.clone())
    };
    let subscriber = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let clients = clients().await;
    let queue = unique("nonjson-q");
    let subscription = Subscription::new().queue(&queue);
    let url = consumer(&clients, subscription.clone())
        .setup()
        .await
        .unwrap();
    clients
        .sqs()
        .send_message()
        .queue_url(&url)
        .message_body("not json at all")
        .send()
        .await
        .unwrap();
    let called = Arc::new(AtomicUsize::new(0));
    let service = {
        let called = called.clone();
        service_fn(move |_message: Message| {
            called.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, Infallible>(Outcome::Ack) }
        })
    };
    let (shutdown, running) = start(consumer(&clients, subscription), service).await;
    within(20, "the warning", async {
        loop {
            if String::from_utf8_lossy(&logs.lock().unwrap())
                .contains("unsupported format of message body")
            {
                break;
            }
            written.notified().await;
        }
    })
    .await;
    stop(shutdown, running).await;
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(text.contains("message_body=not json at all"), "{text}");
    assert_eq!(called.load(Ordering::SeqCst), 0);
    let attributes = queue_attributes(&clients, &url).await;
    assert_eq!(attributes["ApproximateNumberOfMessages"], "0");
    assert_eq!(attributes["ApproximateNumberOfMessagesNotVisible"], "0");
}

#[derive(Clone)]
struct LogWriter(Arc<std::sync::Mutex<Vec<u8>>>, Arc<tokio::sync::Notify>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        self.1.notify_one();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn fifo_keeps_order_per_group() {
    let clients = clients().await;
    let topic = unique("fifo");
    let subscription = Subscription::topic(&topic)
        .fifo(true)
        .envelope(JsonEnvelope);
    let (sender, mut received) = mpsc::unbounded_channel();
    let (shutdown, running) = start(
        consumer(&clients, subscription),
        on_message.with_state(sender),
    )
    .await;
    let publisher = SnsPublisher::new(clients.clone(), options(), identity("publisher"));
    for seq in 0..5 {
        for group in ["a", "b"] {
            publisher
                .publish_with(
                    &json!({"group": group, "seq": seq}),
                    &topic,
                    PublishOptions::new().group_id(group),
                )
                .await
                .unwrap();
        }
    }
    let mut last = std::collections::HashMap::new();
    for _ in 0..10 {
        let (context, data) = within(30, "FIFO messages", received.recv()).await.unwrap();
        let group = data["group"].as_str().unwrap().to_owned();
        assert_eq!(context.message_group_id.as_deref(), Some(group.as_str()));
        assert!(context.message_deduplication_id.is_some());
        let seq = data["seq"].as_i64().unwrap();
        let previous = last.insert(group.clone(), seq);
        assert_eq!(
            previous.map_or(0, |p| p + 1),
            seq,
            "group {group} out of order"
        );
    }
    stop(shutdown, running).await;
}

#[tokio::test]
async fn dead_lettered_after_max_receive_count() {
    let clients = clients().await;
    let topic = unique("dlq");
    let dlq = unique("dlq-dead");
    let subscription = Subscription::topic(&topic)
        .queue(unique("dlq-q"))
        .visibility_timeout(1)
        .dead_letter(&dlq, 2);
    let calls = Arc::new(AtomicUsize::new(0));
    let service = {
        let calls = calls.clone();
        service_fn(move |_message: Message| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<Outcome, std::io::Error>(std::io::Error::other("always fails")) }
        })
    };
    let (shutdown, running) = start(consumer(&clients, subscription), service).await;
    let dlq_url = queue_url(&clients, &dlq).await;
    let attributes = queue_attributes(&clients, &dlq_url).await;
    assert_eq!(attributes["MessageRetentionPeriod"], "1209600");
    SnsPublisher::new(clients.clone(), options(), identity("publisher"))
        .publish(&json!("poison"), &topic)
        .await
        .unwrap();
    let dead = within(30, "the dead letter", async {
        loop {
            let messages = receive_all(&clients, &dlq_url, 2).await;
            if !messages.is_empty() {
                return messages;
            }
        }
    })
    .await;
    assert_eq!(dead.len(), 1);
    stop(shutdown, running).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn reject_sends_to_the_dead_letter_queue_at_once() {
    let clients = clients().await;
    let queue = unique("reject-q");
    let dlq = unique("reject-dead");
    let subscription = Subscription::new().queue(&queue).dead_letter(&dlq, 5);
    let url = consumer(&clients, subscription.clone())
        .setup()
        .await
        .unwrap();
    let body = r#"{"Type": "Message", "Message": "bad"}"#;
    clients
        .sqs()
        .send_message()
        .queue_url(&url)
        .message_body(body)
        .send()
        .await
        .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let service = {
        let calls = calls.clone();
        service_fn(move |_message: Message| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, Infallible>(Outcome::Reject) }
        })
    };
    let (shutdown, running) = start(consumer(&clients, subscription), service).await;
    let dlq_url = queue_url(&clients, &dlq).await;
    let dead = within(20, "the rejected message", async {
        loop {
            let messages = receive_all(&clients, &dlq_url, 1).await;
            if !messages.is_empty() {
                return messages;
            }
        }
    })
    .await;
    assert_eq!(dead[0].body(), Some(body));
    stop(shutdown, running).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let attributes = queue_attributes(&clients, &url).await;
    assert_eq!(attributes["ApproximateNumberOfMessages"], "0");
    assert_eq!(attributes["ApproximateNumberOfMessagesNotVisible"], "0");
}

#[tokio::test]
async fn shutdown_releases_unstarted_and_finishes_in_flight() {
    let clients = clients().await;
    let queue = unique("shutdown-q");
    let subscription = Subscription::new().queue(&queue);
    let url = consumer(&clients, subscription.clone())
        .setup()
        .await
        .unwrap();
    let sender = tomodachi_sqs::SqsSender::new(clients.clone(), options(), identity("sender"));
    for index in 0..5 {
        sender.send(&json!(index), &url).await.unwrap();
    }
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let service = {
        let gate = gate.clone();
        service_fn(move |message: Message| {
            let started_tx = started_tx.clone();
            let gate = gate.clone();
            async move {
                let body = message
                    .context::<SqsContext>()
                    .unwrap()
                    .raw_message_body
                    .clone();
                started_tx.send(body).unwrap();
                let _permit = gate.acquire().await.unwrap();
                Ok::<_, Infallible>(Outcome::Ack)
            }
        })
    };
    let limited = tower::limit::ConcurrencyLimitLayer::new(2).layer(service);
    let (shutdown, running) = start(consumer(&clients, subscription), limited).await;
    let mut in_flight = Vec::new();
    for _ in 0..2 {
        in_flight.push(
            within(20, "two handlers to start", started.recv())
                .await
                .unwrap(),
        );
    }
    shutdown.trigger();
    // The three unstarted messages are visible again at once (the queue's visibility
    // timeout is 30 s), while two handlers still run.
    let released = within(20, "released messages", async {
        let mut seen = Vec::new();
        while seen.len() < 3 {
            for message in receive_all(&clients, &url, 1).await {
                clients
                    .sqs()
                    .change_message_visibility()
                    .queue_url(&url)
                    .receipt_handle(message.receipt_handle().unwrap())
                    .visibility_timeout(0)
                    .send()
                    .await
                    .unwrap();
                let body = message.body().unwrap().to_owned();
                if !seen.contains(&body) {
                    seen.push(body);
                }
            }
        }
        seen
    })
    .await;
    for body in &released {
        assert!(!in_flight.iter().any(|started| &**started == body));
    }
    gate.add_permits(10);
    within(30, "drain", running).await.unwrap().unwrap();
    assert!(
        started.try_recv().is_err(),
        "a released message was started"
    );
    let remaining = receive_all(&clients, &url, 1).await;
    assert_eq!(remaining.len(), 3, "in-flight ones deleted, none lost");
}

#[tokio::test]
async fn visibility_heartbeat_keeps_a_slow_message_invisible() {
    let clients = clients().await;
    let topic = unique("heartbeat");
    let subscription = Subscription::topic(&topic)
        .queue(unique("heartbeat-q"))
        .visibility_timeout(1);
    let calls = Arc::new(AtomicUsize::new(0));
    let (done_tx, mut done) = mpsc::unbounded_channel();
    let service = {
        let calls = calls.clone();
        service_fn(move |_message: Message| {
            let calls = calls.clone();
            let done_tx = done_tx.clone();
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                // Work for three visibility timeouts.
                tokio::time::sleep(Duration::from_secs(3)).await;
                let _ = done_tx.send(calls.load(Ordering::SeqCst));
                Ok::<_, Infallible>(Outcome::Ack)
            }
        })
    };
    let layer = VisibilityHeartbeatLayer::new(clients.sqs().clone(), Duration::from_secs(1))
        .interval(Duration::from_millis(300));
    let (shutdown, running) = start(consumer(&clients, subscription), layer.layer(service)).await;
    SnsPublisher::new(clients.clone(), options(), identity("publisher"))
        .publish(&json!("slow"), &topic)
        .await
        .unwrap();
    let calls_when_done = within(20, "the slow handler", done.recv()).await.unwrap();
    assert_eq!(calls_when_done, 1, "redelivered while the handler ran");
    stop(shutdown, running).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// A service that can take no more work: its `poll_ready` fails.
#[derive(Clone)]
struct Unready;

impl tower::Service<Message> for Unready {
    type Response = Outcome;
    type Error = std::io::Error;
    type Future = std::future::Ready<Result<Outcome, std::io::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Err(std::io::Error::other("worker gone")))
    }

    fn call(&mut self, _: Message) -> Self::Future {
        std::future::ready(Ok(Outcome::Ack))
    }
}

/// The one `poll_ready` policy of every source (core's driver): the consumer stops and
/// fails with the service's error (the facade then exits 1), as AMQP and schedules do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_fails_readiness_stops_the_consumer() {
    let clients = clients().await;
    let topic = unique("unready");
    let (_shutdown, running) = start(
        consumer(&clients, Subscription::topic(&topic).queue(&topic)),
        Unready,
    )
    .await;
    let result = within(10, "the consumer to stop by itself", running)
        .await
        .unwrap();
    assert!(
        matches!(&result, Err(Error::Service(reason)) if reason == "worker gone"),
        "{result:?}"
    );
}
