//! The load side of `bench/curves/run.sh`: each subcommand prints one JSON line on stdout.
//!
//! ```text
//! bench_curves hold <http|ws> <port> <n> <seconds>   open n connections, hold them
//! bench_curves post <port> <bytes> <requests> <connections>
//! bench_curves envelope <bytes>
//! bench_curves consume <amqp|sqs> <concurrency> <messages>
//! ```
//!
//! - `hold http` opens `n` TCP connections to 127.0.0.1:`port`, sends one keep-alive
//!   `GET /hello` on each and reads its 200 (so each is a served keep-alive connection
//!   waiting for its next request); `hold ws` upgrades each to a WebSocket on `/ws` and
//!   exchanges one text frame. 64 connections are opened at a time. It then prints
//!   `{"held": n}` and keeps them open, idle, for `seconds`.
//! - `post` sends `requests` keep-alive `POST /echo` requests with a JSON body of exactly
//!   `bytes` bytes over `connections` connections (one request at a time on each) and checks
//!   every echo's length. The server's CPU is read by the script (`/proc/<pid>/stat`).
//! - `envelope` times, on this thread's CPU clock (`/proc/thread-self/schedstat`), the JSON
//!   envelope's `seal` and `open` (tomodachi-core's `JsonEnvelope`, which compresses data of
//!   60 000 characters or more) of a JSON document of `bytes` bytes, and as the baseline
//!   serde_json alone: serializing the same data from its Rust type and parsing it back.
//! - `consume amqp` fills a queue with `messages` enveloped messages (bare lapin, pipelined
//!   publisher confirms), then drains it with a tomodachi facade service whose handler
//!   sleeps 10 ms (`tokio::time::sleep`), prefetch (per consumer and per channel) =
//!   `concurrency`. `consume sqs` publishes `messages` to an SNS topic (moto, delivered to
//!   the subscribed queue) and drains the queue with tomodachi-sqs's `SqsConsumer`,
//!   `max_in_flight(concurrency)`, the same handler. The rate is over the intervals between
//!   the first and the last handled message; `ideal` is `concurrency / 10 ms`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tomodachi::State;
use tomodachi::{
    Data, Envelope, JsonEnvelope, Message, Options, Process, Service, ServiceIdentity,
};

type Result<T, E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

const USAGE: &str = "usage: bench_curves hold <http|ws> <port> <n> <seconds>
       bench_curves post <port> <bytes> <requests> <connections>
       bench_curves envelope <bytes>
       bench_curves consume <amqp|sqs> <concurrency> <messages>";

/// One client connection and what it has read past the last response.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(port: u16) -> Result<Self> {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(1024),
        })
    }

    /// Reads more into the buffer; an error at end of stream.
    async fn fill(&mut self) -> Result<()> {
        let mut chunk = [0_u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err("connection closed by the server".into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Reads one response head; returns its status, its `Content-Length` (0 without one),
    /// and whether it asks to close. The head is consumed from the buffer.
    async fn head(&mut self) -> Result<(u16, usize, bool)> {
        let end = loop {
            if let Some(at) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            self.fill().await?;
        };
        let head = std::str::from_utf8(&self.buf[..end])?.to_ascii_lowercase();
        self.buf.drain(..end);
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .ok_or("no status line")?
            .parse()?;
        let (mut length, mut close) = (0, false);
        for line in lines {
            if let Some(value) = line.strip_prefix("content-length:") {
                length = value.trim().parse()?;
            } else if let Some(value) = line.strip_prefix("connection:") {
                close = value.trim() == "close";
            }
        }
        Ok((status, length, close))
    }

    /// Reads one whole response; returns its status and body length.
    async fn response(&mut self) -> Result<(u16, usize)> {
        let (status, length, close) = self.head().await?;
        if close {
            return Err("the server closes the connection (keep-alive off?)".into());
        }
        while self.buf.len() < length {
            self.fill().await?;
        }
        self.buf.drain(..length);
        Ok((status, length))
    }
}

/// A connection that has served one GET /hello, or a WebSocket that has echoed one frame.
async fn held(kind: &str, port: u16) -> Result<Conn> {
    let mut conn = Conn::open(port).await?;
    if kind == "ws" {
        conn.stream
            .write_all(
                b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            )
            .await?;
        let (status, _, _) = conn.head().await?;
        if status != 101 {
            return Err(format!("websocket upgrade answered {status}").into());
        }
        // A masked text frame "ping" (mask 0); the echo comes back unmasked: 81 04 "ping".
        conn.stream
            .write_all(&[0x81, 0x84, 0, 0, 0, 0, b'p', b'i', b'n', b'g'])
            .await?;
        while conn.buf.len() < 6 {
            conn.fill().await?;
        }
        if conn.buf[..6] != [0x81, 0x04, b'p', b'i', b'n', b'g'] {
            return Err("no echo of the websocket frame".into());
        }
        conn.buf.clear();
    } else {
        conn.stream
            .write_all(b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await?;
        let (status, _) = conn.response().await?;
        if status != 200 {
            return Err(format!("GET /hello answered {status}").into());
        }
    }
    conn.buf.shrink_to_fit();
    Ok(conn)
}

async fn hold(kind: &str, port: u16, n: usize, seconds: u64) -> Result<String> {
    let started = Instant::now();
    let conns: Vec<Conn> = futures_util::stream::iter(0..n)
        .map(|_| held(kind, port))
        .buffer_unordered(64)
        .try_collect()
        .await?;
    println!(
        "{}",
        serde_json::json!({"held": conns.len(), "kind": kind, "open_seconds": started.elapsed().as_secs_f64()})
    );
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    drop(conns);
    Ok(String::new())
}

/// One record of the generated JSON documents.
#[derive(Debug, Serialize, Deserialize)]
struct Item {
    id: u64,
    name: String,
    counted: bool,
}

/// A JSON array of `Item`s whose Python-layout JSON is exactly `bytes` long (the last
/// name padded), with names from a fixed pseudo-random sequence (compressible as real
/// records are, not as a run of one byte is).
fn document(bytes: usize) -> Vec<Item> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut items = Vec::new();
    // `[` `]`, and `, ` between items: the Python layout's length, kept item by item.
    let mut length = 2;
    loop {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let item = Item {
            id: items.len() as u64,
            name: format!("sheep-{:012x}", state & 0xffff_ffff_ffff),
            counted: state.is_multiple_of(2),
        };
        let more = tomodachi::to_python_json(&item).unwrap().get().len()
            + if items.is_empty() { 0 } else { 2 };
        if length + more > bytes {
            break;
        }
        length += more;
        items.push(item);
    }
    if let Some(last) = items.last_mut() {
        last.name.push_str(&"x".repeat(bytes - length));
    }
    let len = tomodachi::to_python_json(&items).unwrap().get().len();
    assert_eq!(len, bytes, "document size");
    items
}

async fn post(port: u16, bytes: usize, requests: usize, connections: usize) -> Result<String> {
    let body = tomodachi::to_python_json(&document(bytes))?;
    let body = body.get();
    let mut request =
        format!("POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {bytes}\r\n\r\n")
            .into_bytes();
    request.extend_from_slice(body.as_bytes());
    let request: Arc<[u8]> = request.into();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..connections {
        let share = requests / connections + usize::from(c < requests % connections);
        let request = request.clone();
        tasks.spawn(async move {
            let mut conn = Conn::open(port).await?;
            for _ in 0..share {
                conn.stream.write_all(&request).await?;
                let (status, length) = conn.response().await?;
                if status != 200 || length != bytes {
                    return Err(format!("echo answered {status} with {length} bytes").into());
                }
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(serde_json::json!({
        "bytes": bytes, "requests": requests, "connections": connections,
        "seconds": seconds, "rate": requests as f64 / seconds,
    })
    .to_string())
}

/// CPU time of the calling thread (scheduler nanoseconds).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let nanos = stat
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(nanos)
}

/// Microseconds of this thread's CPU per call of `f`, over `iterations` after a tenth as
/// many warm-up calls.
fn per_call(iterations: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..iterations / 10 + 1 {
        f();
    }
    let before = thread_cpu();
    for _ in 0..iterations {
        f();
    }
    (thread_cpu() - before).as_secs_f64() * 1e6 / iterations as f64
}

fn envelope(bytes: usize) -> Result<String> {
    let items = document(bytes);
    let data = tomodachi::to_python_json(&items)?;
    let sender = ServiceIdentity::new("curves", "0b8b8f4e-0000-4000-8000-000000000001");
    let sealed = JsonEnvelope.seal(&sender, "curves", &data)?;
    let mut opened = Message::new(sealed.clone().into_bytes());
    JsonEnvelope.open(&mut opened)?;
    assert_eq!(opened.body().as_ref(), data.get().as_bytes(), "round trip");
    let encoding = opened
        .context::<tomodachi::EnvelopeMetadata>()
        .map(|m| m.data_encoding.clone())
        .unwrap_or_default();
    let plain = data.get();
    // About 50 MB through each case, at least 30 calls.
    let iterations = (50_000_000 / bytes).max(30);
    let seal = per_call(iterations, || {
        std::hint::black_box(JsonEnvelope.seal(&sender, "curves", &data).unwrap());
    });
    let open = per_call(iterations, || {
        let mut message = Message::new(sealed.clone().into_bytes());
        JsonEnvelope.open(&mut message).unwrap();
        std::hint::black_box(message);
    });
    let serialize = per_call(iterations, || {
        std::hint::black_box(serde_json::to_string(&items).unwrap());
    });
    let parse = per_call(iterations, || {
        std::hint::black_box(serde_json::from_str::<Vec<Item>>(plain).unwrap());
    });
    Ok(serde_json::json!({
        "bytes": bytes, "sealed_bytes": sealed.len(), "data_encoding": encoding,
        "iterations": iterations,
        "seal_us": seal, "open_us": open,
        "serde_serialize_us": serialize, "serde_parse_us": parse,
    })
    .to_string())
}

/// Counts handled messages; clocks the first and the last; wakes `done` at the target.
#[derive(Debug)]
struct Meter {
    target: u64,
    count: AtomicU64,
    first: std::sync::OnceLock<Instant>,
    last: std::sync::OnceLock<Instant>,
    done: Notify,
}

impl Meter {
    fn hit(&self) {
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        if n == 1 {
            let _ = self.first.set(Instant::now());
        }
        if n == self.target {
            let _ = self.last.set(Instant::now());
            self.done.notify_one();
        }
    }
}

/// The handler of both consumers: 10 ms of waiting (an I/O-bound handler).
async fn sleepy(State(meter): State<Arc<Meter>>, Data(_data): Data<serde_json::Value>) {
    tokio::time::sleep(Duration::from_millis(10)).await;
    meter.hit();
}

/// `name` with this run's process id and clock: a queue or topic of its own.
fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or_default();
    format!("{name}-{}-{nanos}", std::process::id())
}

async fn fill_amqp(options: &Options, queue: &str, routing_key: &str, count: u64) -> Result<()> {
    use lapin::options::{
        BasicPublishOptions, ConfirmSelectOptions, QueueBindOptions, QueueDeclareOptions,
    };
    use lapin::types::{AMQPValue, FieldTable};
    let amqp = &options.amqp;
    let url = format!(
        "amqp://{}:{}@{}:{}/%2f",
        amqp.login, amqp.password, amqp.host, amqp.port
    );
    let connection =
        lapin::Connection::connect(&url, lapin::ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    // Declared as the consumer declares it (durable, x-expires from queue_ttl).
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-expires".into(),
        AMQPValue::LongInt(i32::try_from(amqp.queue_ttl * 1000)?),
    );
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(queue.into(), durable, arguments)
        .await?;
    channel
        .queue_bind(
            queue.into(),
            amqp.exchange_name.as_str().into(),
            routing_key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let identity = ServiceIdentity::with_random_uuid("curves-filler");
    for n in 0..count {
        let data = tomodachi::to_python_json(&serde_json::json!({"n": n}))?;
        let payload = JsonEnvelope.seal(&identity, routing_key, &data)?;
        // Confirms are collected below, all at once.
        let _confirm = channel
            .basic_publish(
                amqp.exchange_name.as_str().into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                payload.as_bytes(),
                lapin::BasicProperties::default(),
            )
            .await?;
    }
    channel.wait_for_confirms().await?;
    connection.close(200, "OK".into()).await?;
    Ok(())
}

async fn consume_amqp(meter: Arc<Meter>, concurrency: u16) -> Result<()> {
    let mut options = Options::from_env()?;
    options.amqp.queue_ttl = 300;
    options.amqp.qos.queue_prefetch_count = concurrency;
    options.amqp.qos.global_prefetch_count = concurrency;
    let queue = unique("curves-amqp");
    let routing_key = unique("curves.amqp");
    fill_amqp(&options, &queue, &routing_key, meter.target).await?;
    let service = Service::new("curves-amqp")
        .envelope(JsonEnvelope)
        .options(options)
        .state(meter.clone())
        .amqp(
            tomodachi::amqp::Binding::routing_key(routing_key).queue_name(queue),
            sleepy,
        );
    let process = Process::new()
        .args(["bench_curves", "--production", "--log-level", "warning"])
        .service(service);
    let running = tokio::spawn(process.run());
    meter.done.notified().await;
    tomodachi::exit(0);
    let exit = running.await?;
    if exit.code() != 0 {
        return Err(format!("the service exited with {}", exit.code()).into());
    }
    Ok(())
}

#[cfg(feature = "sqs")]
async fn consume_sqs(meter: Arc<Meter>, concurrency: usize) -> Result<()> {
    use tomodachi::sqs::{
        AwsClients, AwsEndpointUrlsOptions, AwsSnsSqsOptions, SnsPublisher, SqsConsumer,
        Subscription,
    };
    use tomodachi::{Handler as _, Source as _};
    let url =
        std::env::var("TOMODACHI_TEST_MOTO_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".into());
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
    let clients = AwsClients::from_options(&options, &endpoints).await?;
    let topic = unique("curves-sqs");
    let consumer = SqsConsumer::new(
        clients.clone(),
        options.clone(),
        Subscription::topic(&topic)
            .queue(unique("curves-sqs-q"))
            .envelope(JsonEnvelope)
            .max_in_flight(concurrency),
        ServiceIdentity::with_random_uuid("curves-sqs"),
    );
    consumer.setup().await?;
    let publisher = SnsPublisher::new(
        clients,
        options,
        ServiceIdentity::with_random_uuid("curves-filler"),
    );
    futures_util::stream::iter(0..meter.target)
        .map(|n| {
            let (publisher, topic) = (&publisher, &topic);
            async move { publisher.publish(&serde_json::json!({"n": n}), topic).await }
        })
        .buffer_unordered(16)
        .try_for_each(|_| std::future::ready(Ok(())))
        .await?;
    let shutdown = tomodachi::Shutdown::new();
    let running = consumer
        .start(sleepy.with_state(meter.clone()), shutdown.clone())
        .await?;
    let running = tokio::spawn(running);
    meter.done.notified().await;
    shutdown.trigger();
    running.await??;
    Ok(())
}

async fn consume(broker: &str, concurrency: u16, messages: u64) -> Result<String> {
    let meter = Arc::new(Meter {
        target: messages.max(2),
        count: AtomicU64::new(0),
        first: std::sync::OnceLock::new(),
        last: std::sync::OnceLock::new(),
        done: Notify::new(),
    });
    match broker {
        "amqp" => consume_amqp(meter.clone(), concurrency).await?,
        #[cfg(feature = "sqs")]
        "sqs" => consume_sqs(meter.clone(), usize::from(concurrency)).await?,
        #[cfg(not(feature = "sqs"))]
        "sqs" => return Err("built without the `sqs` feature (bench/curves/run.sh build)".into()),
        other => return Err(format!("unknown broker {other:?}").into()),
    }
    let (first, last) = (
        meter.first.get().ok_or("none")?,
        meter.last.get().ok_or("none")?,
    );
    let seconds = (*last - *first).as_secs_f64();
    Ok(serde_json::json!({
        "broker": broker, "concurrency": concurrency, "messages": meter.target,
        "seconds": seconds, "rate": (meter.target - 1) as f64 / seconds,
        "ideal": f64::from(concurrency) / 0.010,
    })
    .to_string())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let line = match args.as_slice() {
        ["hold", kind @ ("http" | "ws"), port, n, seconds] => {
            hold(kind, port.parse()?, n.parse()?, seconds.parse()?).await?
        }
        ["post", port, bytes, requests, connections] => {
            post(
                port.parse()?,
                bytes.parse()?,
                requests.parse()?,
                connections.parse()?,
            )
            .await?
        }
        ["envelope", bytes] => envelope(bytes.parse()?)?,
        ["consume", broker, concurrency, messages] => {
            consume(broker, concurrency.parse()?, messages.parse()?).await?
        }
        _ => return Err(USAGE.into()),
    };
    if !line.is_empty() {
        println!("{line}");
    }
    Ok(())
}
