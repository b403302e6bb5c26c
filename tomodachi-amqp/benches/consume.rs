//! Consume + ack throughput against the real broker: a tomodachi-amqp handler with the JSON
//! envelope vs a bare lapin consumer with manual acks and the same prefetch, each draining
//! 20 000 pre-published enveloped messages. Also prints the process CPU time per message
//! of the consume phase.
//!
//! `cargo bench -p tomodachi-amqp --bench consume` (RabbitMQ at 127.0.0.1:5672).
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use tokio::sync::Notify;
use tomodachi_amqp::{AmqpOptions, Binding, Consumer};
use tomodachi_core::{
    Data, Envelope, Handler, JsonEnvelope, ServiceIdentity, Shutdown, Source, State, to_python_json,
};

const MESSAGES: u64 = 20_000;
const URI: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Process CPU time (user + system) so far.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    // after the command name: state is field 0, utime 11, stime 12 (clock ticks, 100 Hz)
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

async fn raw_channel() -> (Connection, Channel) {
    let connection = Connection::connect(URI, ConnectionProperties::default())
        .await
        .expect("RabbitMQ must run at 127.0.0.1:5672 for this benchmark");
    let channel = connection.create_channel().await.unwrap();
    (connection, channel)
}

/// Declares `queue` as the consumer will (durable, x-expires 120 s) and fills it with
/// enveloped messages.
async fn prepare(queue: &str) {
    let (connection, channel) = raw_channel().await;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-expires".into(),
        lapin::types::AMQPValue::LongInt(120_000),
    );
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            arguments,
        )
        .await
        .unwrap();
    let sender = ServiceIdentity::with_random_uuid("bench-sender");
    for n in 0..MESSAGES {
        let data = to_python_json(
            &serde_json::json!({"n": n, "text": "a payload of a typical size for an event"}),
        )
        .unwrap();
        let payload = JsonEnvelope.seal(&sender, "bench", &data).unwrap();
        channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                payload.as_bytes(),
                BasicProperties::default(),
            )
            .await
            .unwrap();
    }
    channel.wait_for_confirms().await.unwrap();
    connection.close(200, "OK".into()).await.unwrap();
}

async fn delete(queue: &str) {
    let (connection, channel) = raw_channel().await;
    let _ = channel
        .queue_delete(queue.into(), QueueDeleteOptions::default())
        .await;
    let _ = connection.close(200, "OK".into()).await;
}

#[derive(Clone)]
struct Counter {
    count: Arc<AtomicU64>,
    done: Arc<Notify>,
}

async fn handle(State(counter): State<Counter>, Data(_event): Data<serde_json::Value>) {
    if counter.count.fetch_add(1, Ordering::Relaxed) + 1 == MESSAGES {
        counter.done.notify_one();
    }
}

/// (a) tomodachi-amqp: JSON envelope, `Data<Value>` handler, per-message ack.
async fn tomodachi_once(cpu: &AtomicU64) -> Duration {
    let queue = format!("bench-tomodachi-{}", uuid::Uuid::new_v4().simple());
    prepare(&queue).await;
    let options = AmqpOptions {
        queue_ttl: 120,
        ..AmqpOptions::default()
    };
    let counter = Counter {
        count: Arc::new(AtomicU64::new(0)),
        done: Arc::new(Notify::new()),
    };
    let binding = Binding::routing_key("bench.none")
        .queue_name(&queue)
        .envelope(JsonEnvelope);
    let consumer = Consumer::new(options, binding, ServiceIdentity::with_random_uuid("bench"));
    let shutdown = Shutdown::new();
    let cpu_start = cpu_time();
    let started = Instant::now();
    let running = consumer
        .start(handle.with_state(counter.clone()), shutdown.clone())
        .await
        .unwrap();
    let task = tokio::spawn(running);
    counter.done.notified().await;
    shutdown.trigger();
    task.await.unwrap().unwrap();
    let elapsed = started.elapsed();
    cpu.fetch_add(
        (cpu_time() - cpu_start).as_micros() as u64,
        Ordering::Relaxed,
    );
    delete(&queue).await;
    elapsed
}

/// (b) bare lapin: same prefetch (100 per consumer, 400 per channel), ack each message.
async fn lapin_once(cpu: &AtomicU64) -> Duration {
    let queue = format!("bench-lapin-{}", uuid::Uuid::new_v4().simple());
    prepare(&queue).await;
    let cpu_start = cpu_time();
    let started = Instant::now();
    let (connection, channel) = raw_channel().await;
    channel
        .basic_qos(100, BasicQosOptions { global: false })
        .await
        .unwrap();
    channel
        .basic_qos(400, BasicQosOptions { global: true })
        .await
        .unwrap();
    let mut consumer = channel
        .basic_consume(
            queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut count = 0;
    while let Some(delivery) = consumer.next().await {
        let delivery = delivery.unwrap();
        delivery.ack(BasicAckOptions::default()).await.unwrap();
        count += 1;
        if count == MESSAGES {
            break;
        }
    }
    channel.close(200, "OK".into()).await.unwrap();
    let elapsed = started.elapsed();
    cpu.fetch_add(
        (cpu_time() - cpu_start).as_micros() as u64,
        Ordering::Relaxed,
    );
    connection.close(200, "OK".into()).await.unwrap();
    delete(&queue).await;
    elapsed
}

fn consume(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("amqp_consume_20k");
    group.throughput(Throughput::Elements(MESSAGES));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.warm_up_time(Duration::from_secs(1));

    for (name, tomodachi) in [("tomodachi_json_envelope", true), ("bare_lapin", false)] {
        let cpu = Arc::new(AtomicU64::new(0));
        let runs = Arc::new(AtomicU64::new(0));
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter_custom(|iters| {
                let cpu = Arc::clone(&cpu);
                let runs = Arc::clone(&runs);
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += if tomodachi {
                            tomodachi_once(&cpu).await
                        } else {
                            lapin_once(&cpu).await
                        };
                        runs.fetch_add(1, Ordering::Relaxed);
                    }
                    total
                }
            });
        });
        let runs = runs.load(Ordering::Relaxed).max(1);
        let per_message = cpu.load(Ordering::Relaxed) as f64 / (runs * MESSAGES) as f64;
        eprintln!("{name}: process CPU {per_message:.1} µs per message over {runs} runs");
    }
    group.finish();
}

criterion_group!(benches, consume);
criterion_main!(benches);
