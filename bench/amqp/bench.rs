//! The Rust side of `bench/amqp/run.sh`: fills a queue with enveloped messages (measuring
//! publish throughput with publisher confirms) and drains it (measuring consume + ack
//! throughput and the process's CPU time per message).
//!
//! ```text
//! bench_amqp fill <queue> <count> <tomodachi-serial|tomodachi-concurrent|tomodachi-batch|lapin-confirm-each|lapin-confirms>
//! bench_amqp consume <queue> <count> <tomodachi|tomodachi-ack-each|tomodachi-otel|lapin-serial|lapin-spawn>
//! ```
//!
//! Each run prints one JSON line on stdout: `{"case", "messages", "seconds", "rate",
//! "cpu_us_per_msg"}` (`cpu_us_per_msg` only for `consume`).
//!
//! - `fill` declares `<queue>` as the consumers do (durable, `x-expires` =
//!   `TOMODACHI_AMQP_QUEUE_TTL` s, default 300), binds it to `amq.topic` with routing key
//!   `bench.amqp`, purges it and publishes `<count>` JSON-enveloped messages there:
//!   `tomodachi-serial` awaits each publish of an `AmqpPublisher` (each confirmed before the
//!   next, as a handler does), `tomodachi-concurrent` keeps 100 publishes in flight,
//!   `tomodachi-batch` calls `AmqpPublisher::publish_many` with 100 messages at a time
//!   (published back to back, confirms awaited together), `lapin-confirm-each` is bare
//!   lapin's publish-and-wait-confirm loop (each publish's confirm awaited before the
//!   next), `lapin-confirms` is bare lapin in confirm mode, every publish pipelined, then
//!   `wait_for_confirms`. The clock runs from the first publish to the last confirm (the
//!   connection and channel are set up before).
//! - `consume` drains `<queue>`: `tomodachi` is a facade service (`Service` +
//!   `.amqp(Binding, handler)`, JSON envelope, `Data<Event>` handler, the `TOMODACHI_AMQP_*`
//!   options, default prefetch 100 per consumer / 400 per channel, acks coalesced by 32);
//!   `tomodachi-ack-each` is that service acking each delivery alone
//!   (`amqp.ack.batch_size = 1`, as before coalescing); `tomodachi-otel` is the
//!   same service instrumented (`Process::opentelemetry`: a CONSUMER span per message,
//!   batch-exported to a sink that drops it, metrics aggregated); `lapin-serial` is bare
//!   lapin as in lapin's README (each ack awaited before the next delivery), `lapin-spawn`
//!   acks each delivery in a task of its own (deliveries handled concurrently, as the
//!   tomodachi consumer does); both with the same prefetch and no parsing. The clock and
//!   the CPU counter run from the first message handled to the last (connection set-up
//!   and process start excluded); CPU is the sum over the process's threads of
//!   `/proc/self/task/*/schedstat` (nanoseconds on a CPU).
//!
//! Every case runs in a task on the runtime's worker threads (two on two cores), as the
//! facade's consumers do; run from `main`'s own future, the bare lapin loops would pay a
//! cross-thread wake-up per delivery and lose about a third of their throughput.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../otel_sink.rs"]
mod otel_sink;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueBindOptions, QueueDeclareOptions, QueuePurgeOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde::{Deserialize, Serialize};
use tomodachi::amqp::{AmqpPublisher, Binding};
use tomodachi::{Data, Envelope, JsonEnvelope, Options, Process, Service, ServiceIdentity, State};

const ROUTING_KEY: &str = "bench.amqp";

/// The data of every message: `{"n": 1, "text": "..."}` (about 450 bytes enveloped).
#[derive(Debug, Serialize, Deserialize)]
struct Event {
    n: u64,
    text: String,
}

impl Event {
    fn new(n: u64) -> Self {
        Event {
            n,
            text: "a payload of a typical size for an event".to_owned(),
        }
    }
}

fn options() -> Options {
    let mut options = Options::from_env().expect("valid TOMODACHI_* variables");
    if std::env::var_os("TOMODACHI_AMQP_QUEUE_TTL").is_none() {
        options.amqp.queue_ttl = 300;
    }
    options
}

fn amqp_url(options: &Options) -> String {
    let amqp = &options.amqp;
    let vhost = if amqp.virtualhost == "/" {
        "%2f"
    } else {
        amqp.virtualhost.trim_start_matches('/')
    };
    format!(
        "amqp://{}:{}@{}:{}/{vhost}",
        amqp.login, amqp.password, amqp.host, amqp.port
    )
}

/// CPU time of this process so far: the sum of its threads' time on a CPU.
fn cpu_time() -> Duration {
    let mut nanos = 0_u64;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            nanos += stat
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Duration::from_nanos(nanos)
}

/// Counts handled messages; clocks the first and the last.
#[derive(Debug)]
struct Meter {
    target: u64,
    count: AtomicU64,
    first: OnceLock<(Instant, Duration)>,
    last: OnceLock<(Instant, Duration)>,
}

impl Meter {
    fn new(target: u64) -> Arc<Self> {
        Arc::new(Meter {
            target,
            count: AtomicU64::new(0),
            first: OnceLock::new(),
            last: OnceLock::new(),
        })
    }

    /// One more message handled; true for the last one.
    fn hit(&self) -> bool {
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        if n == 1 {
            let _ = self.first.set((Instant::now(), cpu_time()));
        }
        if n == self.target {
            let _ = self.last.set((Instant::now(), cpu_time()));
            return true;
        }
        false
    }

    /// The result line: the rate over the `target - 1` intervals between first and last.
    fn report(&self, case: &str) -> String {
        let ((t0, cpu0), (t1, cpu1)) = (
            self.first.get().expect("no message handled"),
            self.last.get().expect("not every message handled"),
        );
        let seconds = (*t1 - *t0).as_secs_f64();
        let intervals = (self.target - 1).max(1) as f64;
        serde_json::json!({
            "case": case,
            "messages": self.target,
            "seconds": seconds,
            "rate": intervals / seconds,
            "cpu_us_per_msg": (*cpu1 - *cpu0).as_secs_f64() * 1e6 / intervals,
        })
        .to_string()
    }
}

async fn channel(url: &str) -> (Connection, Channel) {
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("RabbitMQ (TOMODACHI_AMQP_HOST/PORT, default 127.0.0.1:5672)");
    let channel = connection.create_channel().await.unwrap();
    (connection, channel)
}

/// Declares, binds and purges `queue` as the consumers expect it.
async fn declare(channel: &Channel, queue: &str, ttl: u64) {
    let mut arguments = FieldTable::default();
    if ttl > 0 {
        let ms = i32::try_from(ttl * 1000).expect("queue_ttl fits x-expires");
        arguments.insert("x-expires".into(), AMQPValue::LongInt(ms));
    }
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(queue.into(), durable, arguments)
        .await
        .unwrap();
    channel
        .queue_bind(
            queue.into(),
            "amq.topic".into(),
            ROUTING_KEY.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .queue_purge(queue.into(), QueuePurgeOptions::default())
        .await
        .unwrap();
}

async fn fill(queue: &str, count: u64, mode: &str) -> String {
    let options = options();
    let url = amqp_url(&options);
    let (connection, channel) = channel(&url).await;
    declare(&channel, queue, options.amqp.queue_ttl).await;
    let identity = ServiceIdentity::with_random_uuid("bench-amqp-publisher");
    let elapsed = match mode {
        "tomodachi-serial" | "tomodachi-concurrent" | "tomodachi-batch" => {
            let publisher = AmqpPublisher::new(options.amqp.clone(), identity);
            // Connection and confirm channel up before the clock starts; nothing is bound here.
            publisher
                .publish(&Event::new(0), "bench.warm-up")
                .await
                .unwrap();
            let started = Instant::now();
            if mode == "tomodachi-serial" {
                for n in 1..=count {
                    publisher
                        .publish(&Event::new(n), ROUTING_KEY)
                        .await
                        .unwrap();
                }
            } else if mode == "tomodachi-batch" {
                let mut next = 1;
                while next <= count {
                    let last = (next + 99).min(count);
                    let batch = (next..=last).map(|n| (Event::new(n), ROUTING_KEY));
                    publisher.publish_many(batch).await.unwrap();
                    next = last + 1;
                }
            } else {
                futures_util::stream::iter(1..=count)
                    .map(|n| {
                        let publisher = &publisher;
                        async move { publisher.publish(&Event::new(n), ROUTING_KEY).await }
                    })
                    .buffer_unordered(100)
                    .for_each(|result| {
                        result.unwrap();
                        std::future::ready(())
                    })
                    .await;
            }
            let elapsed = started.elapsed();
            publisher.close().await;
            publisher.connection().close().await;
            elapsed
        }
        "lapin-confirm-each" | "lapin-confirms" => {
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .unwrap();
            let started = Instant::now();
            for n in 1..=count {
                let data = tomodachi::to_python_json(&Event::new(n)).unwrap();
                let payload = JsonEnvelope.seal(&identity, ROUTING_KEY, &data).unwrap();
                let confirm = channel
                    .basic_publish(
                        "amq.topic".into(),
                        ROUTING_KEY.into(),
                        BasicPublishOptions::default(),
                        payload.as_bytes(),
                        BasicProperties::default(),
                    )
                    .await
                    .unwrap();
                if mode == "lapin-confirm-each" {
                    assert!(confirm.await.unwrap().is_ack());
                }
                // lapin-confirms: collected below with the others.
            }
            let confirms = channel.wait_for_confirms().await.unwrap();
            assert!(
                confirms
                    .iter()
                    .all(|c| c.reply_code == 0 || c.reply_code == 200)
            );
            started.elapsed()
        }
        other => panic!("unknown fill mode {other:?}"),
    };
    let _ = connection.close(200, "OK".into()).await;
    let seconds = elapsed.as_secs_f64();
    serde_json::json!({
        "case": format!("publish {mode}"),
        "messages": count,
        "seconds": seconds,
        "rate": count as f64 / seconds,
    })
    .to_string()
}

/// The facade service's handler: a typed `Data` extractor, nothing else.
async fn on_event(State(meter): State<Arc<Meter>>, Data(event): Data<Event>) {
    std::hint::black_box(&event);
    if meter.hit() {
        tomodachi::exit(0);
    }
}

async fn consume_tomodachi(queue: &str, count: u64, case: &str) -> String {
    let instrumented = case == "tomodachi-otel";
    let mut options = options();
    if case == "tomodachi-ack-each" {
        options.amqp.ack.batch_size = 1;
    }
    let meter = Meter::new(count);
    let service = Service::new("bench-amqp-tomodachi")
        .envelope(JsonEnvelope)
        .options(options)
        .state(meter.clone())
        .amqp(
            Binding::routing_key(ROUTING_KEY).queue_name(queue),
            on_event,
        );
    let process = Process::new()
        .args(["bench_amqp", "--production"])
        .service(service);
    let (process, providers) = if instrumented {
        let (tracer_provider, meter_provider, telemetry) = otel_sink::telemetry();
        let process = process.opentelemetry(telemetry);
        (process, Some((tracer_provider, meter_provider)))
    } else {
        (process, None)
    };
    let exit = process.run().await;
    assert_eq!(exit.code(), 0, "the service failed");
    let report = meter.report(&format!("consume {case}"));
    let Some((tracer_provider, meter_provider)) = providers else {
        return report;
    };
    let _ = tracer_provider.shutdown();
    let _ = meter_provider.shutdown();
    // Proof that the spans were made and exported: one per message.
    let mut report: serde_json::Value = serde_json::from_str(&report).unwrap();
    report["spans_exported"] = otel_sink::exported().into();
    report.to_string()
}

async fn consume_lapin(queue: &str, count: u64, mode: &str) -> String {
    let options = options();
    let (connection, channel) = channel(&amqp_url(&options)).await;
    let qos = &options.amqp.qos;
    channel
        .basic_qos(qos.queue_prefetch_count, BasicQosOptions { global: false })
        .await
        .unwrap();
    channel
        .basic_qos(qos.global_prefetch_count, BasicQosOptions { global: true })
        .await
        .unwrap();
    let mut consumer = channel
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let meter = Meter::new(count);
    match mode {
        "lapin-serial" => {
            while let Some(delivery) = consumer.next().await {
                let delivery = delivery.unwrap();
                delivery.ack(BasicAckOptions::default()).await.unwrap();
                if meter.hit() {
                    break;
                }
            }
        }
        "lapin-spawn" => {
            let done = Arc::new(tokio::sync::Notify::new());
            let finished = done.notified();
            tokio::pin!(finished);
            loop {
                tokio::select! {
                    () = &mut finished => break,
                    delivery = consumer.next() => {
                        let delivery = delivery.expect("the consumer ended").unwrap();
                        let meter = meter.clone();
                        let done = done.clone();
                        tokio::spawn(async move {
                            delivery.ack(BasicAckOptions::default()).await.unwrap();
                            if meter.hit() {
                                done.notify_one();
                            }
                        });
                    }
                }
            }
        }
        other => panic!("unknown consume mode {other:?}"),
    }
    let _ = channel.close(200, "OK".into()).await;
    let _ = connection.close(200, "OK".into()).await;
    meter.report(&format!("consume {mode}"))
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: bench_amqp fill <queue> <count> <tomodachi-serial|tomodachi-concurrent|tomodachi-batch|lapin-confirm-each|lapin-confirms>\n       bench_amqp consume <queue> <count> <tomodachi|tomodachi-ack-each|tomodachi-otel|lapin-serial|lapin-spawn>";
    let [_, command, queue, count, mode] = args.as_slice() else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let Ok(count) = count.parse::<u64>() else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let line = match (command.as_str(), mode.as_str()) {
        // The facade spawns its consumers' work onto the worker threads itself (and the
        // future of `Process::run` is not `Send`).
        ("consume", case @ ("tomodachi" | "tomodachi-ack-each" | "tomodachi-otel")) => {
            consume_tomodachi(queue, count, case).await
        }
        ("fill" | "consume", _) => {
            // On a worker thread, as the facade's consumers are: `main`'s own future runs
            // outside the worker pool, where every wake-up and spawn crosses threads.
            let (command, queue, mode) = (command.clone(), queue.clone(), mode.clone());
            tokio::spawn(async move {
                if command == "fill" {
                    fill(&queue, count, &mode).await
                } else {
                    consume_lapin(&queue, count, &mode).await
                }
            })
            .await
            .expect("the benchmark panicked")
        }
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    println!("{line}");
}
