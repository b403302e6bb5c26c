//! Consumer and publisher against the real broker: routing, competing, outcomes, prefetch,
//! shutdown.
#![allow(clippy::unwrap_used)]

mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::BasicConsumeOptions;
use lapin::types::FieldTable;
use serde_json::json;
use support::*;
use tokio::sync::mpsc;
use tomodachi_amqp::{
    AmqpContext, AmqpOptions, AmqpPublisher, Binding, Consumer, Error, ExchangeKind, Headers,
    Properties, PublishOptions, Redelivered,
};
use tomodachi_core::{Handler, JsonEnvelope, Message, Outcome, Shutdown, Source, State};
use tower::{Layer, Service};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_on_a_topic_exchange_with_wildcards() {
    logs();
    let exchange = unique("rt-topic");
    let (star, mut star_rx) = recorder();
    let (hash, mut hash_rx) = recorder();
    let one_word = Binding::routing_key("order.*.created")
        .exchange(&exchange)
        .envelope(JsonEnvelope);
    let any_words = Binding::routing_key("order.#")
        .exchange(&exchange)
        .envelope(JsonEnvelope);
    let (s1, t1) = start(
        Consumer::new(options(), one_word, identity("star")),
        record.with_state(star),
    )
    .await;
    let (s2, t2) = start(
        Consumer::new(options(), any_words, identity("hash")),
        record.with_state(hash),
    )
    .await;

    let sender = identity("sender");
    let publisher = AmqpPublisher::new(options(), sender.clone()).exchange(&exchange);
    publisher
        .publish(&json!({"n": 1}), "order.eu.deleted")
        .await
        .unwrap();
    publisher
        .publish(&json!({"n": 2}), "order.eu.created")
        .await
        .unwrap();
    publisher
        .publish(&json!({"n": 3}), "order.eu.x.created")
        .await
        .unwrap();

    // `*` matches one word: only n=2 (n=1 was published first and would have come first).
    let seen = take(&mut star_rx, 1, 10).await;
    assert_eq!(seen[0].data, json!({"n": 2}));
    let ctx = &seen[0].context;
    assert_eq!(ctx.routing_key, "order.eu.created");
    assert_eq!(ctx.bound_routing_key, "order.*.created");
    assert_eq!(ctx.exchange, exchange);
    assert!(!ctx.redelivered);
    assert!(
        seen[0]
            .message_uuid
            .starts_with(&format!("{}.", sender.uuid))
    );

    // `#` matches any number of words: all three (handled concurrently, in any order).
    let seen = take(&mut hash_rx, 3, 10).await;
    let mut ns: Vec<_> = seen.iter().map(|s| s.data["n"].as_i64().unwrap()).collect();
    ns.sort_unstable();
    assert_eq!(ns, [1, 2, 3]);

    stop(s1, t1).await;
    stop(s2, t2).await;
    assert!(
        star_rx.try_recv().is_err(),
        "`*` binding got a message it should not match"
    );
    publisher.close().await;
    delete_exchange(&exchange).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_on_direct_and_fanout_exchanges() {
    logs();
    let direct = unique("rt-direct");
    let fanout = unique("rt-fanout");
    let (d, mut d_rx) = recorder();
    let (f, mut f_rx) = recorder();
    let direct_binding = Binding::routing_key("exact.key")
        .exchange(&direct)
        .exchange_kind(ExchangeKind::Direct)
        .envelope(JsonEnvelope);
    let fanout_binding = Binding::routing_key("ignored")
        .exchange(&fanout)
        .exchange_kind(ExchangeKind::Fanout)
        .envelope(JsonEnvelope);
    let (s1, t1) = start(
        Consumer::new(options(), direct_binding, identity("d")),
        record.with_state(d),
    )
    .await;
    let (s2, t2) = start(
        Consumer::new(options(), fanout_binding, identity("f")),
        record.with_state(f),
    )
    .await;

    let publisher = AmqpPublisher::new(options(), identity("sender"));
    let to = |exchange: &str| PublishOptions::new().exchange(exchange);
    publisher
        .publish_with(&json!("other"), "exact.other", to(&direct))
        .await
        .unwrap();
    publisher
        .publish_with(&json!("exact"), "exact.key", to(&direct))
        .await
        .unwrap();
    publisher
        .publish_with(&json!("fan"), "whatever.key", to(&fanout))
        .await
        .unwrap();

    let seen = take(&mut d_rx, 1, 10).await;
    assert_eq!(seen[0].data, json!("exact"));
    let seen = take(&mut f_rx, 1, 10).await;
    assert_eq!(seen[0].data, json!("fan"));
    assert_eq!(seen[0].context.routing_key, "whatever.key");

    stop(s1, t1).await;
    stop(s2, t2).await;
    assert!(
        d_rx.try_recv().is_err(),
        "direct binding got a non-matching key"
    );
    publisher.close().await;
    delete_exchange(&direct).await;
    delete_exchange(&fanout).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_on_amq_topic_with_prefixes_headers_and_persistence() {
    logs();
    let key = unique("rtp");
    let options = AmqpOptions {
        routing_key_prefix: "pre.".into(),
        queue_name_prefix: "qp-".into(),
        ..options()
    };
    let (rec, mut rx) = recorder();
    let consumer = Consumer::new(
        options.clone(),
        Binding::routing_key(format!("{key}.*")),
        identity("p"),
    );
    assert!(consumer.resolved().queue_name.starts_with("qp-"));
    assert_eq!(consumer.resolved().wire_routing_key, format!("pre.{key}.*"));
    // the service-wide envelope as a layer this time
    let service = tomodachi_core::EnvelopeLayer::new(JsonEnvelope).layer(record.with_state(rec));
    let (shutdown, task) = start(consumer, service).await;

    let publisher = AmqpPublisher::new(options, identity("sender"));
    let extra = PublishOptions::new()
        .header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .persistent(true);
    publisher
        .publish_with(&json!({"k": "v"}), &format!("{key}.ä"), extra)
        .await
        .unwrap();

    let seen = take(&mut rx, 1, 10).await;
    let ctx = &seen[0].context;
    assert_eq!(ctx.exchange, "amq.topic");
    assert_eq!(ctx.routing_key, format!("pre.{key}.___c3a4_"));
    assert_eq!(ctx.decoded_routing_key(), format!("pre.{key}.ä"));
    assert_eq!(ctx.bound_routing_key, format!("{key}.*"));
    assert_eq!(
        seen[0].metadata.topic,
        format!("{key}.ä"),
        "the envelope's topic has no prefix"
    );
    assert_eq!(
        ctx.headers["traceparent"].as_str(),
        Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    );
    assert_eq!(ctx.properties.delivery_mode, Some(2));
    assert_eq!(
        ctx.properties.content_type, None,
        "tomodachi sends no content type"
    );
    stop(shutdown, task).await;
    publisher.close().await;
}

/// Records the delivery's context extractors one by one (no envelope).
async fn headers_and_properties(
    State(tx): State<mpsc::UnboundedSender<(bool, usize, Option<u8>)>>,
    Redelivered(redelivered): Redelivered,
    Headers(headers): Headers,
    Properties(properties): Properties,
) {
    let _ = tx.send((redelivered, headers.len(), properties.delivery_mode));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_extractors_without_envelope() {
    let key = unique("fx");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let consumer = Consumer::new(options(), Binding::routing_key(&key), identity("fx"));
    let (shutdown, task) = start(consumer, headers_and_properties.with_state(tx)).await;
    let (_conn, channel) = raw().await;
    publish_raw(&channel, "amq.topic", &key, b"not an envelope").await;
    let seen = within(10, "delivery", rx.recv()).await.unwrap();
    assert_eq!(seen, (false, 0, None));
    stop(shutdown, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn competing_consumers_share_one_queue() {
    logs();
    let key = unique("compete");
    let binding = Binding::routing_key(&key).envelope(JsonEnvelope);
    let (a, mut a_rx) = recorder();
    let (b, mut b_rx) = recorder();
    // prefetch 1: the broker hands messages out round robin
    let first = Consumer::new(options_with_prefetch(1), binding.clone(), identity("one"));
    let second = Consumer::new(options_with_prefetch(1), binding, identity("two"));
    assert_eq!(first.resolved().queue_name, second.resolved().queue_name);
    let (s1, t1) = start(first, record.with_state(a)).await;
    let (s2, t2) = start(second, record.with_state(b)).await;

    let publisher = AmqpPublisher::new(options(), identity("sender"));
    for n in 0..100 {
        publisher.publish(&json!(n), &key).await.unwrap();
    }
    let mut got: Vec<i64> = Vec::new();
    let (mut from_a, mut from_b) = (0, 0);
    within(20, "100 messages over two consumers", async {
        while got.len() < 100 {
            tokio::select! {
                Some(seen) = a_rx.recv() => { from_a += 1; got.push(seen.data.as_i64().unwrap()); }
                Some(seen) = b_rx.recv() => { from_b += 1; got.push(seen.data.as_i64().unwrap()); }
            }
        }
    })
    .await;
    stop(s1, t1).await;
    stop(s2, t2).await;
    assert!(
        a_rx.try_recv().is_err() && b_rx.try_recv().is_err(),
        "a message was handled twice"
    );
    got.sort_unstable();
    assert_eq!(
        got,
        (0..100).collect::<Vec<_>>(),
        "each message exactly once"
    );
    assert!(
        from_a > 0 && from_b > 0,
        "both consumers took part ({from_a}/{from_b})"
    );
    publisher.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_competing_consumers_each_get_every_message() {
    logs();
    let key = unique("fanout-like");
    let binding = Binding::routing_key(&key)
        .competing(false)
        .envelope(JsonEnvelope);
    let (a, mut a_rx) = recorder();
    let (b, mut b_rx) = recorder();
    let first = Consumer::new(options(), binding.clone(), identity("one"));
    let second = Consumer::new(options(), binding.clone(), identity("two"));
    assert_ne!(first.resolved().queue_name, second.resolved().queue_name);
    let (s1, t1) = start(first, record.with_state(a)).await;
    let (s2, t2) = start(second, record.with_state(b)).await;

    let publisher = AmqpPublisher::new(options(), identity("sender"));
    for n in 0..20 {
        publisher.publish(&json!(n), &key).await.unwrap();
    }
    for rx in [&mut a_rx, &mut b_rx] {
        let mut ns: Vec<_> = take(rx, 20, 10)
            .await
            .iter()
            .map(|s| s.data.as_i64().unwrap())
            .collect();
        ns.sort_unstable();
        assert_eq!(ns, (0..20).collect::<Vec<_>>());
    }
    stop(s1, t1).await;
    stop(s2, t2).await;
    publisher.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_competing_queue_with_a_consumer_fails_startup() {
    let key = unique("exclusive");
    let same = identity("same");
    let binding = Binding::routing_key(&key).competing(false);
    let (rec, _rx) = recorder();
    let (shutdown, task) = start(
        Consumer::new(options(), binding.clone(), same.clone()),
        record.with_state(rec.clone()),
    )
    .await;
    let second = Consumer::new(options(), binding, same);
    let error = within(
        10,
        "second setup",
        second.start(record.with_state(rec), Shutdown::new()),
    )
    .await
    .err()
    .expect("a second consumer on a non-competing queue must fail");
    assert!(matches!(error, Error::TooManyConsumers { .. }), "{error}");
    stop(shutdown, task).await;
}

#[derive(Clone)]
struct Flaky {
    calls: Arc<AtomicUsize>,
    tx: mpsc::UnboundedSender<(usize, bool)>,
}

async fn fails_once(
    State(flaky): State<Flaky>,
    Redelivered(redelivered): Redelivered,
) -> Result<(), std::io::Error> {
    let call = flaky.calls.fetch_add(1, Ordering::SeqCst);
    let _ = flaky.tx.send((call, redelivered));
    if call == 0 {
        Err(std::io::Error::other("first attempt fails"))
    } else {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_error_is_redelivered_then_succeeds() {
    logs();
    let key = unique("err");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let flaky = Flaky {
        calls: Arc::new(AtomicUsize::new(0)),
        tx,
    };
    let consumer = Consumer::new(options(), Binding::routing_key(&key), identity("err"));
    let queue = consumer.resolved().queue_name.clone();
    let (shutdown, task) = start(consumer, fails_once.with_state(flaky.clone())).await;
    let (_conn, channel) = raw().await;
    publish_raw(&channel, "amq.topic", &key, b"payload").await;

    assert_eq!(
        within(10, "first attempt", rx.recv()).await,
        Some((0, false))
    );
    assert_eq!(within(10, "redelivery", rx.recv()).await, Some((1, true)));
    stop(shutdown, task).await;
    assert_eq!(
        flaky.calls.load(Ordering::SeqCst),
        2,
        "acked after the success"
    );
    assert_eq!(ready_count(&channel, &queue).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_service_is_redelivered_then_succeeds() {
    logs();
    let key = unique("panic");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    // A bare tower service (no handler classifier): the source itself must catch the panic.
    let service = tower::service_fn(move |message: Message| {
        let call = counter.fetch_add(1, Ordering::SeqCst);
        let redelivered = message.context::<AmqpContext>().unwrap().redelivered;
        let _ = tx.send((call, redelivered));
        async move {
            assert!(call > 0, "first attempt panics");
            Ok::<_, Infallible>(Outcome::Ack)
        }
    });
    let consumer = Consumer::new(options(), Binding::routing_key(&key), identity("panic"));
    let queue = consumer.resolved().queue_name.clone();
    let (shutdown, task) = start(consumer, service).await;
    let (_conn, channel) = raw().await;
    publish_raw(&channel, "amq.topic", &key, b"payload").await;

    assert_eq!(
        within(10, "first attempt", rx.recv()).await,
        Some((0, false))
    );
    assert_eq!(within(10, "redelivery", rx.recv()).await, Some((1, true)));
    stop(shutdown, task).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(ready_count(&channel, &queue).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_message_lands_in_the_dead_letter_queue() {
    logs();
    let key = unique("reject");
    let (_conn, channel) = raw().await;
    let (dlx, dlq) = dead_letter_queue(&channel).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let service = tower::service_fn(move |_message: Message| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, Infallible>(Outcome::Reject) }
    });
    let binding = Binding::routing_key(&key).dead_letter_exchange(&dlx);
    let consumer = Consumer::new(options(), binding, identity("reject"));
    let queue = consumer.resolved().queue_name.clone();
    let (shutdown, task) = start(consumer, service).await;
    publish_raw(&channel, "amq.topic", &key, b"poison").await;

    let mut dead = channel
        .basic_consume(
            dlq.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let delivery = within(10, "the dead-lettered message", dead.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(delivery.data, b"poison");
    let headers = delivery.properties.headers().clone().unwrap_or_default();
    assert!(
        headers.contains_key("x-death"),
        "dead-lettered by the broker"
    );
    stop(shutdown, task).await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "a rejected message is not redelivered"
    );
    assert_eq!(ready_count(&channel, &queue).await, 0);
}

#[derive(Clone)]
struct Gauge {
    now: Arc<AtomicUsize>,
    max: Arc<AtomicUsize>,
    done: mpsc::UnboundedSender<()>,
}

async fn busy(State(gauge): State<Gauge>) {
    let now = gauge.now.fetch_add(1, Ordering::SeqCst) + 1;
    gauge.max.fetch_max(now, Ordering::SeqCst);
    // simulated work, long enough for the prefetch to fill up
    tokio::time::sleep(Duration::from_millis(40)).await;
    gauge.now.fetch_sub(1, Ordering::SeqCst);
    let _ = gauge.done.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_bounds_concurrent_handlers() {
    logs();
    let key = unique("prefetch");
    let (done, mut done_rx) = mpsc::unbounded_channel();
    let gauge = Gauge {
        now: Arc::new(AtomicUsize::new(0)),
        max: Arc::new(AtomicUsize::new(0)),
        done,
    };
    let consumer = Consumer::new(
        options_with_prefetch(3),
        Binding::routing_key(&key),
        identity("pf"),
    );
    let (shutdown, task) = start(consumer, busy.with_state(gauge.clone())).await;
    let (_conn, channel) = raw().await;
    for _ in 0..30 {
        publish_raw(&channel, "amq.topic", &key, b"work").await;
    }
    within(20, "30 handled", async {
        for _ in 0..30 {
            done_rx.recv().await.unwrap();
        }
    })
    .await;
    stop(shutdown, task).await;
    assert_eq!(
        gauge.max.load(Ordering::SeqCst),
        3,
        "never more than the prefetch at once, and up to it"
    );
}

#[derive(Clone)]
struct Slow {
    shutdown: Shutdown,
    started: mpsc::UnboundedSender<()>,
    finished: Arc<AtomicUsize>,
}

/// Starts, waits for the shutdown, then finishes some work.
async fn finishes_after_shutdown(State(slow): State<Slow>) {
    let _ = slow.started.send(());
    slow.shutdown.triggered().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    slow.finished.fetch_add(1, Ordering::SeqCst);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_handlers_and_acks_them() {
    logs();
    let key = unique("drain");
    let (_conn, channel) = raw().await;
    let (dlx, dlq) = dead_letter_queue(&channel).await;
    let shutdown = Shutdown::new();
    let (started, mut started_rx) = mpsc::unbounded_channel();
    let slow = Slow {
        shutdown: shutdown.clone(),
        started,
        finished: Arc::new(AtomicUsize::new(0)),
    };
    let binding = Binding::routing_key(&key).dead_letter_exchange(&dlx);
    let consumer = Consumer::new(options_with_prefetch(10), binding, identity("drain"));
    let queue = consumer.resolved().queue_name.clone();
    let running = within(
        15,
        "setup",
        consumer.start(
            finishes_after_shutdown.with_state(slow.clone()),
            shutdown.clone(),
        ),
    )
    .await
    .unwrap();
    let task = tokio::spawn(running);
    for _ in 0..5 {
        publish_raw(&channel, "amq.topic", &key, b"work").await;
    }
    within(10, "5 handlers started", async {
        for _ in 0..5 {
            started_rx.recv().await.unwrap();
        }
    })
    .await;
    shutdown.trigger();
    within(15, "drain", task).await.unwrap().unwrap();
    assert_eq!(
        slow.finished.load(Ordering::SeqCst),
        5,
        "in-flight handlers finished"
    );
    assert_eq!(ready_count(&channel, &queue).await, 0, "and were acked");
    assert_eq!(
        ready_count(&channel, &dlq).await,
        0,
        "nothing dead-lettered by shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_requeues_deliveries_not_started_and_respects_readiness() {
    logs();
    let key = unique("ready");
    let (_conn, channel) = raw().await;
    let (dlx, dlq) = dead_letter_queue(&channel).await;
    let shutdown = Shutdown::new();
    let (started, mut started_rx) = mpsc::unbounded_channel();
    let slow = Slow {
        shutdown: shutdown.clone(),
        started,
        finished: Arc::new(AtomicUsize::new(0)),
    };
    // prefetch 10, but the service takes only 2 at a time
    let service = tower::limit::ConcurrencyLimitLayer::new(2)
        .layer(finishes_after_shutdown.with_state(slow.clone()));
    let binding = Binding::routing_key(&key).dead_letter_exchange(&dlx);
    let consumer = Consumer::new(options_with_prefetch(10), binding, identity("ready"));
    let queue = consumer.resolved().queue_name.clone();
    let running = within(15, "setup", consumer.start(service, shutdown.clone()))
        .await
        .unwrap();
    let task = tokio::spawn(running);
    for _ in 0..10 {
        publish_raw(&channel, "amq.topic", &key, b"work").await;
    }
    within(10, "2 handlers started", async {
        for _ in 0..2 {
            started_rx.recv().await.unwrap();
        }
    })
    .await;
    shutdown.trigger();
    within(15, "drain", task).await.unwrap().unwrap();
    assert_eq!(
        slow.finished.load(Ordering::SeqCst),
        2,
        "only the service's capacity ran"
    );
    assert!(started_rx.try_recv().is_err());
    assert_eq!(
        ready_count(&channel, &queue).await,
        8,
        "the rest went back to the queue"
    );
    assert_eq!(
        ready_count(&channel, &dlq).await,
        0,
        "nothing dead-lettered by shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_envelope_is_rejected_and_the_consumer_keeps_running() {
    logs();
    let key = unique("bad-envelope");
    let (_conn, channel) = raw().await;
    let (dlx, dlq) = dead_letter_queue(&channel).await;
    let (rec, mut rx) = recorder();
    let binding = Binding::routing_key(&key)
        .envelope(JsonEnvelope)
        .dead_letter_exchange(&dlx);
    let consumer = Consumer::new(options(), binding, identity("bad"));
    let (shutdown, task) = start(consumer, record.with_state(rec)).await;
    publish_raw(&channel, "amq.topic", &key, b"{not an envelope").await;
    let publisher = AmqpPublisher::new(options(), identity("sender"));
    publisher.publish(&json!("good"), &key).await.unwrap();

    let seen = take(&mut rx, 1, 10).await;
    assert_eq!(seen[0].data, json!("good"));
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
    assert_eq!(delivery.data, b"{not an envelope");
    stop(shutdown, task).await;
    publisher.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_with_a_delay_requeues_after_the_delay() {
    logs();
    let key = unique("retry-delay");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let service = tower::service_fn(move |_message: Message| {
        let call = counter.fetch_add(1, Ordering::SeqCst);
        let _ = tx.send(std::time::Instant::now());
        async move {
            Ok::<_, Infallible>(if call == 0 {
                Outcome::retry_after(Duration::from_millis(300))
            } else {
                Outcome::Ack
            })
        }
    });
    let consumer = Consumer::new(options(), Binding::routing_key(&key), identity("delay"));
    let (shutdown, task) = start(consumer, service).await;
    let (_conn, channel) = raw().await;
    publish_raw(&channel, "amq.topic", &key, b"later").await;
    let first = within(10, "first attempt", rx.recv()).await.unwrap();
    let second = within(10, "the retry", rx.recv()).await.unwrap();
    assert!(
        second - first >= Duration::from_millis(300),
        "redelivered after {:?}",
        second - first
    );
    stop(shutdown, task).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// tomodachi's "amqp-example": republish each received `data` unchanged on `<key>.response`.
async fn relay(
    publisher: AmqpPublisher,
    tomodachi_amqp::BoundRoutingKey(key): tomodachi_amqp::BoundRoutingKey,
    tomodachi_core::Data(data): tomodachi_core::Data<serde_json::Value>,
) -> Result<(), Error> {
    publisher.publish(&data, &format!("{key}.response")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_publishes_with_the_publisher_argument() {
    logs();
    let key = unique("relay");
    let (rec, mut rx) = recorder();
    let responses = Consumer::new(
        options(),
        Binding::routing_key(format!("{key}.response")).envelope(JsonEnvelope),
        identity("responses"),
    );
    let (s1, t1) = start(responses, record.with_state(rec)).await;
    let relay_identity = identity("relay");
    let publisher = AmqpPublisher::new(options(), relay_identity.clone());
    let relay_consumer = Consumer::new(
        options(),
        Binding::routing_key(&key).envelope(JsonEnvelope),
        relay_identity.clone(),
    )
    .publisher(publisher.clone());
    let (s2, t2) = start(relay_consumer, relay.with_state(())).await;

    let outside = AmqpPublisher::new(options(), identity("outside"));
    outside
        .publish(&json!({"echo": [1, "two"]}), &key)
        .await
        .unwrap();
    let seen = take(&mut rx, 1, 10).await;
    assert_eq!(seen[0].data, json!({"echo": [1, "two"]}));
    assert_eq!(seen[0].metadata.service_name, "relay");
    assert_eq!(seen[0].metadata.topic, format!("{key}.response"));
    stop(s2, t2).await;
    stop(s1, t1).await;
    publisher.close().await;
    outside.close().await;
}

/// A service that can take no more work: its `poll_ready` fails.
#[derive(Clone)]
struct Unready;

impl Service<Message> for Unready {
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
/// fails with the service's error (the facade then exits 1), it does not spin on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_fails_readiness_stops_the_consumer() {
    logs();
    let key = unique("unready");
    let consumer = Consumer::new(options(), Binding::routing_key(&key), identity("unready"));
    let (_shutdown, task) = start(consumer, Unready).await;
    let result = within(10, "the consumer to stop by itself", task)
        .await
        .unwrap();
    assert!(
        matches!(&result, Err(Error::Service(reason)) if reason == "worker gone"),
        "{result:?}"
    );
}
