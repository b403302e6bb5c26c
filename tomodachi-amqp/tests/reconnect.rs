//! Broker-side connection closes during consumption and publishing.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashSet;
use std::time::Duration;

use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use serde_json::json;
use support::*;
use tokio::sync::mpsc;
use tomodachi_amqp::{AmqpConnection, AmqpOptions, AmqpPublisher, Binding, Consumer, Error};
use tomodachi_core::{Handler, JsonEnvelope, Raw, Shutdown, Source, State};
use tower::Layer;

async fn count(State(tx): State<mpsc::UnboundedSender<u32>>, Raw(body): Raw) {
    // simulated work: ~1000 msgs/s with 10 at a time, so the close lands mid-stream
    tokio::time::sleep(Duration::from_millis(10)).await;
    let n: u32 = std::str::from_utf8(&body).unwrap().parse().unwrap();
    let _ = tx.send(n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_resumes_after_its_connection_is_closed_and_loses_nothing() {
    logs();
    const TOTAL: u32 = 5_000;
    let key = unique("reconnect");
    let name = unique("tomodachi-amqp-test-consumer");
    let connection = AmqpConnection::new(options()).with_name(&name);
    let consumer = Consumer::with_connection(
        connection.clone(),
        Binding::routing_key(&key),
        identity("rc"),
    );
    let (tx, mut rx) = mpsc::unbounded_channel();
    let service = tower::limit::ConcurrencyLimitLayer::new(10).layer(count.with_state(tx));
    let shutdown = Shutdown::new();
    let running = within(15, "setup", consumer.start(service, shutdown.clone()))
        .await
        .unwrap();
    let task = tokio::spawn(running);
    let pid = only_pid(&name).await;

    let (_conn, channel) = raw().await;
    for n in 0..TOTAL {
        channel
            .basic_publish(
                "amq.topic".into(),
                key.as_str().into(),
                BasicPublishOptions::default(),
                n.to_string().as_bytes(),
                BasicProperties::default(),
            )
            .await
            .unwrap();
    }
    channel.wait_for_confirms().await.unwrap();

    let mut seen = HashSet::new();
    let mut handled = 0_u32;
    within(30, "1000 messages before the close", async {
        while seen.len() < 1_000 {
            seen.insert(rx.recv().await.unwrap());
            handled += 1;
        }
    })
    .await;
    close_connection(&pid).await;
    while let Ok(n) = rx.try_recv() {
        seen.insert(n);
        handled += 1;
    }
    let at_close = seen.len();
    within(120, "every message after the close", async {
        while seen.len() < TOTAL as usize {
            seen.insert(rx.recv().await.unwrap());
            handled += 1;
        }
    })
    .await;
    assert!(
        at_close < TOTAL as usize,
        "the close happened mid-stream ({at_close} seen)"
    );
    let new_pid = only_pid(&name).await;
    assert_ne!(new_pid, pid, "the consumer reconnected by itself");

    shutdown.trigger();
    within(30, "drain", task).await.unwrap().unwrap();
    connection.close().await;
    eprintln!("handled {handled} deliveries for {TOTAL} messages (closed at {at_close})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_during_an_outage_waits_for_recovery() {
    logs();
    let key = unique("pub-outage");
    let (rec, mut rx) = recorder();
    let consumer = Consumer::new(
        options(),
        Binding::routing_key(&key).envelope(JsonEnvelope),
        identity("c"),
    );
    let shutdown = Shutdown::new();
    let running = within(
        15,
        "setup",
        consumer.start(record.with_state(rec), shutdown.clone()),
    )
    .await
    .unwrap();
    let task = tokio::spawn(running);

    let name = unique("tomodachi-amqp-test-publisher");
    let connection = AmqpConnection::new(options()).with_name(&name);
    let publisher = AmqpPublisher::with_connection(connection.clone(), identity("p"));
    publisher.publish(&json!("before"), &key).await.unwrap();
    let pid = only_pid(&name).await;
    close_connection(&pid).await;
    within(
        60,
        "publish after the close",
        publisher.publish(&json!("after"), &key),
    )
    .await
    .unwrap();

    let seen = take(&mut rx, 2, 15).await;
    let mut data: Vec<_> = seen
        .iter()
        .map(|s| s.data.as_str().unwrap().to_owned())
        .collect();
    data.sort_unstable();
    assert_eq!(data, ["after", "before"]);
    shutdown.trigger();
    within(15, "drain", task).await.unwrap().unwrap();
    publisher.close().await;
    connection.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_without_a_broker_fails_clearly_after_its_timeout() {
    // a port nothing listens on
    let options = AmqpOptions {
        port: 1,
        ..AmqpOptions::default()
    };
    let publisher =
        AmqpPublisher::new(options, identity("p")).publish_timeout(Duration::from_secs(1));
    let error = within(
        10,
        "the publish to fail",
        publisher.publish(&json!(1), "nowhere"),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, Error::PublishTimeout { .. }), "{error}");
    assert!(
        error.to_string().contains("not confirmed within"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_to_a_missing_exchange_fails_at_once() {
    let publisher = AmqpPublisher::new(options(), identity("p"));
    let missing = unique("no-such-exchange");
    let error = within(
        10,
        "the publish to fail",
        publisher.publish_with(
            &json!(1),
            "x",
            tomodachi_amqp::PublishOptions::new().exchange(&missing),
        ),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, Error::Publish { .. }), "{error}");
    // and the publisher still works afterwards
    publisher
        .publish(&json!(2), &unique("after"))
        .await
        .unwrap();
    publisher.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_setup_fails_clearly_without_a_broker() {
    let options = AmqpOptions {
        port: 1,
        ..AmqpOptions::default()
    };
    let (rec, _rx) = recorder();
    let consumer = Consumer::new(options, Binding::routing_key("x"), identity("c"));
    let error = within(
        10,
        "setup to fail",
        consumer.start(record.with_state(rec), Shutdown::new()),
    )
    .await
    .err()
    .unwrap();
    assert!(matches!(error, Error::Connect { .. }), "{error}");
    assert!(
        error
            .to_string()
            .starts_with("unable to connect [amqp] to 127.0.0.1:1"),
        "{error}"
    );
    // The broker client's own error is kept as the source, not flattened into text.
    let source = std::error::Error::source(&error).expect("the connection error as source");
    assert!(error.to_string().contains(&source.to_string()), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_subscribes_again_when_the_broker_cancels_it() {
    logs();
    let key = unique("cancelled");
    let (rec, mut rx) = recorder();
    let consumer = Consumer::new(
        options(),
        Binding::routing_key(&key).envelope(JsonEnvelope),
        identity("c"),
    );
    let queue = consumer.resolved().queue_name.clone();
    let shutdown = Shutdown::new();
    let running = within(
        15,
        "setup",
        consumer.start(record.with_state(rec), shutdown.clone()),
    )
    .await
    .unwrap();
    let task = tokio::spawn(running);

    // Deleting the queue makes the broker cancel the consumer.
    let (_conn, channel) = raw().await;
    channel
        .queue_delete(
            queue.as_str().into(),
            lapin::options::QueueDeleteOptions::default(),
        )
        .await
        .unwrap();
    // Until the consumer has declared and bound its queue again, messages are unroutable:
    // keep publishing until one arrives.
    let publisher = AmqpPublisher::new(options(), identity("p"));
    within(30, "a message after the re-subscription", async {
        let mut n = 0;
        loop {
            publisher.publish(&json!(n), &key).await.unwrap();
            n += 1;
            tokio::select! {
                Some(_) = rx.recv() => break,
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    })
    .await;
    assert_eq!(ready_count(&channel, &queue).await, 0);
    shutdown.trigger();
    within(15, "drain", task).await.unwrap().unwrap();
    publisher.close().await;
}
