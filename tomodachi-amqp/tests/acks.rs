//! Coalesced acks against the real broker: out-of-order completion, nacks and rejects in
//! the middle of a batch, the flush on shutdown, `batch_size = 1`.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use lapin::options::BasicConsumeOptions;
use lapin::types::FieldTable;
use support::rabbitmqctl::messages_unacknowledged;
use support::*;
use tokio::sync::{Notify, mpsc};
use tomodachi_amqp::{AckOptions, AmqpConnection, AmqpContext, AmqpOptions, Binding, Consumer};
use tomodachi_core::{Message, Outcome};

fn with_acks(batch_size: u16, max_delay_ms: u64) -> AmqpOptions {
    AmqpOptions {
        ack: AckOptions {
            batch_size,
            max_delay_ms,
        },
        ..options()
    }
}

/// What the handler saw: (body, redelivered).
type Log = mpsc::UnboundedReceiver<(String, bool)>;

/// A service that logs each delivery and answers with `outcome(body, times seen)`; the
/// body `"slow"` waits for `release` the first time.
fn service(
    outcome: fn(&str, usize) -> Outcome,
    release: Arc<Notify>,
) -> (
    impl tower::Service<
        Message,
        Response = Outcome,
        Error = Infallible,
        Future = impl Future + Send + 'static,
    > + Clone
    + Send
    + 'static,
    Log,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let seen = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
    let service = tower::service_fn(move |message: Message| {
        let body = String::from_utf8_lossy(message.body()).into_owned();
        let redelivered = message.context::<AmqpContext>().unwrap().redelivered;
        let times = {
            let mut seen = seen.lock().unwrap();
            let times = seen.entry(body.clone()).or_default();
            *times += 1;
            *times
        };
        let (tx, release) = (tx.clone(), release.clone());
        async move {
            if body == "slow" && times == 1 {
                release.notified().await;
            }
            let _ = tx.send((body.clone(), redelivered));
            Ok::<_, Infallible>(outcome(&body, times))
        }
    });
    (service, rx)
}

fn ack_all(_: &str, _: usize) -> Outcome {
    Outcome::Ack
}

/// Waits until the broker counts `n` unacked deliveries in `queue`.
async fn until_unacked(queue: &str, n: u64) {
    within(60, &format!("{n} unacked in {queue}"), async {
        while messages_unacknowledged(queue).await != n {}
    })
    .await;
}

async fn publish_all(channel: &lapin::Channel, key: &str, bodies: &[&str]) {
    for body in bodies {
        publish_raw(channel, "amq.topic", key, body.as_bytes()).await;
    }
}

async fn take_log(log: &mut Log, n: usize) -> Vec<(String, bool)> {
    within(30, &format!("{n} deliveries"), async {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            out.push(log.recv().await.unwrap());
        }
        out
    })
    .await
}

/// A slow first delivery and fast later ones: the fast ones are acked (singly, behind the
/// unfinished one), the slow one is not. When the connection dies, only the slow one
/// comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_completion_acks_nothing_unfinished() {
    logs();
    let key = unique("acks-order");
    let name = unique("tomodachi-amqp-acks");
    let connection = AmqpConnection::new(with_acks(8, 20)).with_name(&name);
    let consumer = Consumer::with_connection(
        connection.clone(),
        Binding::routing_key(&key),
        identity("ao"),
    );
    let queue = consumer.resolved().queue_name.clone();
    let release = Arc::new(Notify::new());
    let (service, mut log) = service(ack_all, release.clone());
    let (shutdown, task) = start(consumer, service).await;

    let (_conn, channel) = raw().await;
    let fast: Vec<String> = (1..=20).map(|n| n.to_string()).collect();
    let mut bodies = vec!["slow"];
    bodies.extend(fast.iter().map(String::as_str));
    publish_all(&channel, &key, &bodies).await;
    let done = take_log(&mut log, 20).await;
    assert!(done.iter().all(|(body, _)| body != "slow"));
    until_unacked(&queue, 1).await;

    // The connection dies with the slow handler still running.
    close_connection(&only_pid(&name).await).await;
    release.notify_one();
    // The first run finishes (its ack goes nowhere: the channel closed) and the slow one
    // is delivered again, in either order.
    let mut slow = take_log(&mut log, 2).await;
    slow.sort();
    assert_eq!(
        slow,
        vec![("slow".to_owned(), false), ("slow".to_owned(), true)],
        "the unfinished delivery came back, and only it"
    );
    until_unacked(&queue, 0).await;
    assert_eq!(ready_count(&channel, &queue).await, 0);
    stop(shutdown, task).await;
    connection.close().await;
    assert!(
        log.try_recv().is_err(),
        "no finished delivery was delivered again"
    );
}

/// A nack (requeue) and a reject among acked deliveries: the multiple acks after them
/// neither fail the channel nor touch them; the requeued one comes back once, the
/// rejected one is dead-lettered, everything else is delivered once.
async fn nack_and_reject_in_the_middle(batch_size: u16) {
    logs();
    let key = unique("acks-nack");
    let (_conn, channel) = raw().await;
    let (dlx, dlq) = dead_letter_queue(&channel).await;
    fn outcome(body: &str, times: usize) -> Outcome {
        match (body, times) {
            ("retry", 1) => Outcome::Retry { delay: None },
            ("reject", _) => Outcome::Reject,
            _ => Outcome::Ack,
        }
    }
    let (service, mut log) = service(outcome, Arc::new(Notify::new()));
    let binding = Binding::routing_key(&key).dead_letter_exchange(&dlx);
    let consumer = Consumer::new(with_acks(batch_size, 10_000), binding, identity("an"));
    let queue = consumer.resolved().queue_name.clone();
    let (shutdown, task) = start(consumer, service).await;

    let bodies: Vec<String> = (0..40)
        .map(|n| match n {
            5 => "retry".to_owned(),
            9 => "reject".to_owned(),
            n => n.to_string(),
        })
        .collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    publish_all(&channel, &key, &refs).await;
    // 40 deliveries and the requeued one again.
    let seen = take_log(&mut log, 41).await;
    let redelivered: Vec<&str> = seen
        .iter()
        .filter(|(_, redelivered)| *redelivered)
        .map(|(body, _)| body.as_str())
        .collect();
    assert_eq!(redelivered, ["retry"], "only the requeued one came back");

    let mut dead = channel
        .basic_consume(
            dlq.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let delivery = within(10, "the rejected message", dead.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(delivery.data, b"reject");

    // The channel is still the one it was: more deliveries flow and are acked.
    publish_all(&channel, &key, &["after-1", "after-2"]).await;
    let after = take_log(&mut log, 2).await;
    assert!(after.iter().all(|(_, redelivered)| !redelivered));
    stop(shutdown, task).await;
    assert_eq!(
        ready_count(&channel, &queue).await,
        0,
        "everything was acked"
    );
    assert_eq!(
        ready_count(&channel, &dlq).await,
        0,
        "only one dead-lettered"
    );
    assert!(log.try_recv().is_err(), "nothing delivered twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_and_reject_in_the_middle_of_a_batch() {
    nack_and_reject_in_the_middle(8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_and_reject_in_the_middle_with_batch_size_one() {
    nack_and_reject_in_the_middle(1).await;
}

/// Completions waiting for their batch (a long delay, fewer than a batch) are acked when
/// the consumer stops: nothing comes back after a clean stop.
async fn flush_on_shutdown(batch_size: u16) {
    logs();
    let key = unique("acks-flush");
    let consumer = Consumer::new(
        with_acks(batch_size, 600_000),
        Binding::routing_key(&key),
        identity("af"),
    );
    let queue = consumer.resolved().queue_name.clone();
    let (service, mut log) = service(ack_all, Arc::new(Notify::new()));
    let (shutdown, task) = start(consumer, service).await;
    let (_conn, channel) = raw().await;
    publish_all(&channel, &key, &["1", "2", "3", "4", "5"]).await;
    take_log(&mut log, 5).await;
    stop(shutdown, task).await;
    assert_eq!(
        ready_count(&channel, &queue).await,
        0,
        "the waiting completions were acked before the channel closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_completions_are_acked_on_shutdown() {
    flush_on_shutdown(32).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_size_one_acks_each_delivery() {
    flush_on_shutdown(1).await;
}

/// Completions are acked after `max_delay_ms` though no batch fills up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_are_acked_after_the_delay() {
    logs();
    let key = unique("acks-delay");
    let consumer = Consumer::new(
        with_acks(32, 50),
        Binding::routing_key(&key),
        identity("ad"),
    );
    let queue = consumer.resolved().queue_name.clone();
    let (service, mut log) = service(ack_all, Arc::new(Notify::new()));
    let (shutdown, task) = start(consumer, service).await;
    let (_conn, channel) = raw().await;
    publish_all(&channel, &key, &["1", "2", "3"]).await;
    take_log(&mut log, 3).await;
    until_unacked(&queue, 0).await;
    stop(shutdown, task).await;
}
