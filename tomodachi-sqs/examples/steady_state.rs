//! API calls and service CPU per consumed message at steady state, for tomodachi-sqs and
//! for Python tomodachi, through moto.
//!
//! ```sh
//! bash bench/sqs/run.sh 1000      # against moto served with keep-alive (waitress), port 4570
//! moto_server -H 127.0.0.1 -p 4566 &
//! cargo run --release -p tomodachi-sqs --example steady_state -- 300   # moto's own server
//! ```
//!
//! Both consumers start on a queue already holding N enveloped SNS notifications, published
//! by a separate process (this example run as `steady_state fill <topic> <n>`). CPU is the
//! consuming process's CPU time (user + system, all threads, nanosecond clocks:
//! `/proc/self/task/*/schedstat` here, `time.process_time()` in Python) from the first to
//! the N-th handled message, divided by N − 1: the same window for both, after the first
//! batch's warm-up.
//!
//! Against `bench/sqs/moto_keepalive.py` (which answers `GET /__bench/counts`), the TCP
//! connections the server accepted and the HTTP requests it answered are reported for each
//! consumer's window too: how well the client reuses connections, and the API calls per
//! message of Python tomodachi, which has no interceptor here.
#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_sqs::config::{ConfigBag, Intercept, RuntimeComponents};
use tokio::io::{AsyncBufReadExt, BufReader};
use tomodachi_core::{JsonEnvelope, Message, Outcome, ServiceIdentity, Shutdown, Source};
use tomodachi_sqs::{
    AwsClients, AwsEndpointUrlsOptions, AwsSnsSqsOptions, SnsPublisher, SqsConsumer, Subscription,
};

#[derive(Debug, Clone, Default)]
struct CallCounter(Arc<Mutex<HashMap<String, usize>>>);

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_sqs::error::BoxError> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("")
            .rsplit('.')
            .next()
            .unwrap_or("")
            .to_owned();
        *self.0.lock().unwrap().entry(target).or_default() += 1;
        Ok(())
    }
}

/// CPU seconds (user + system) of every thread of this process, from the scheduler's
/// nanosecond accounting (`/proc/self/stat` counts in 10 ms ticks, too coarse here).
fn cpu_seconds() -> f64 {
    let nanos: u64 = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| {
            let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
            stat.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum();
    nanos as f64 / 1e9
}

/// The endpoint's accepted TCP connections and answered requests, when it is
/// `bench/sqs/moto_keepalive.py` (`None` against another server).
fn server_counts(url: &str) -> Option<(u64, u64)> {
    use std::io::{Read as _, Write as _};
    let address = url.strip_prefix("http://")?.trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream
        .write_all(b"GET /__bench/counts HTTP/1.0\r\nHost: bench\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return None;
    }
    let counts: serde_json::Value = serde_json::from_str(body).ok()?;
    Some((
        counts.get("connections")?.as_u64()?,
        counts.get("requests")?.as_u64()?,
    ))
}

/// "N TCP connections, M requests" between two `server_counts` (the later query's own
/// connection not counted).
fn connections_between(before: Option<(u64, u64)>, after: Option<(u64, u64)>) -> String {
    match (before, after) {
        (Some((c0, r0)), Some((c1, r1))) => {
            format!(
                "; server: {} TCP connections, {} requests",
                c1 - c0 - 1,
                r1 - r0
            )
        }
        _ => String::new(),
    }
}

fn options() -> AwsSnsSqsOptions {
    AwsSnsSqsOptions {
        region_name: Some("us-east-1".into()),
        aws_access_key_id: Some("testing".into()),
        aws_secret_access_key: Some("testing".into()),
        ..AwsSnsSqsOptions::default()
    }
}

fn unique(name: &str) -> String {
    format!(
        "{name}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// Publishes `count` messages to `topic` from another process, so that publishing costs
/// the measured process nothing.
async fn fill(topic: &str, count: usize) {
    let status = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["fill", topic, &count.to_string()])
        .status()
        .await
        .unwrap();
    assert!(status.success(), "the filler failed");
}

/// `steady_state fill <topic> <n>`: the filler process.
async fn run_fill(clients: &AwsClients, topic: &str, count: usize) {
    let publisher = SnsPublisher::new(
        clients.clone(),
        options(),
        ServiceIdentity::with_random_uuid("filler"),
    );
    let payload = serde_json::json!({"order": 1, "note": "x".repeat(200)});
    for _ in 0..count {
        publisher.publish(&payload, topic).await.unwrap();
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url =
        std::env::var("TOMODACHI_TEST_MOTO_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".into());
    let endpoints = AwsEndpointUrlsOptions {
        sns: Some(url.clone()),
        sqs: Some(url.clone()),
        sts: None,
    };
    let config = tomodachi_sqs::sdk_config(&options()).await.unwrap();
    if let [command, topic, count] = args.as_slice()
        && command == "fill"
    {
        let clients = AwsClients::from_sdk_config(&config, &endpoints);
        run_fill(&clients, topic, count.parse().unwrap()).await;
        return;
    }
    let count: usize = args
        .first()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300)
        .max(2);
    let counter = CallCounter::default();
    let base = AwsClients::from_sdk_config(&config, &endpoints);
    let sqs = aws_sdk_sqs::config::Builder::from(&config)
        .endpoint_url(&url)
        .interceptor(counter.clone())
        .build();
    let clients = AwsClients::new(
        aws_sdk_sqs::Client::from_conf(sqs),
        base.sns().clone(),
        base.sts().clone(),
    );

    // tomodachi-sqs
    let topic = unique("steady-rs");
    let consumer = SqsConsumer::new(
        clients.clone(),
        options(),
        Subscription::topic(&topic)
            .queue(unique("steady-rs-q"))
            .envelope(JsonEnvelope),
        ServiceIdentity::with_random_uuid("rust"),
    );
    consumer.setup().await.unwrap();
    fill(&topic, count).await;

    // The floor: CPU of one bare SDK call against moto.
    let queue_url = consumer.setup().await.unwrap();
    let calls = 200;
    let mut start = cpu_seconds();
    let mut server_before = None;
    for call in 0..calls + 20 {
        if call == 20 {
            server_before = server_counts(&url);
            start = cpu_seconds();
        }
        base.sqs()
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout)
            .send()
            .await
            .unwrap();
    }
    let cpu = cpu_seconds() - start;
    println!(
        "bare aws-sdk-sqs call (GetQueueAttributes): {:.3} ms CPU per call{}",
        cpu * 1000.0 / f64::from(calls),
        connections_between(server_before, server_counts(&url)),
    );

    let handled = Arc::new(AtomicUsize::new(0));
    let first = Arc::new(Mutex::new(None::<(f64, Instant)>));
    let (done_tx, done) = tokio::sync::oneshot::channel::<(f64, Instant)>();
    let done_tx = Arc::new(Mutex::new(Some(done_tx)));
    let service = {
        let handled = handled.clone();
        let first = first.clone();
        tower::service_fn(move |_message: Message| {
            match handled.fetch_add(1, Ordering::SeqCst) + 1 {
                1 => *first.lock().unwrap() = Some((cpu_seconds(), Instant::now())),
                n if n == count => {
                    if let Some(tx) = done_tx.lock().unwrap().take() {
                        let _ = tx.send((cpu_seconds(), Instant::now()));
                    }
                }
                _ => {}
            }
            async { Ok::<_, Infallible>(Outcome::Ack) }
        })
    };
    let shutdown = Shutdown::new();
    let server_before = server_counts(&url);
    let running = consumer.start(service, shutdown.clone()).await.unwrap();
    let before: HashMap<String, usize> = counter.0.lock().unwrap().clone();
    let running = tokio::spawn(running);
    let (cpu_end, ended) = done.await.unwrap();
    let (cpu_start, started) = first.lock().unwrap().unwrap();
    shutdown.trigger();
    running.await.unwrap().unwrap();
    let server = connections_between(server_before, server_counts(&url));
    let after = counter.0.lock().unwrap().clone();
    let calls: HashMap<&str, usize> = after
        .iter()
        .map(|(name, n)| (name.as_str(), n - before.get(name).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    let total: usize = calls.values().sum();
    println!(
        "tomodachi-sqs: {count} messages in {:.2} s ({:.0} msgs/s); API calls {calls:?} = {:.3} per message; CPU {:.3} ms per message{server}",
        (ended - started).as_secs_f64(),
        (count - 1) as f64 / (ended - started).as_secs_f64(),
        total as f64 / count as f64,
        (cpu_end - cpu_start) * 1000.0 / (count - 1) as f64,
    );

    // Python tomodachi
    if std::env::var_os("STEADY_SKIP_PYTHON").is_some() {
        return;
    }
    let venv = std::env::var("TOMODACHI_TEST_PYTHON_VENV")
        .unwrap_or_else(|_| "/root/.cache/tomodachi-rs/venv-tomodachi".into());
    let dir = format!("{}/tests/python", env!("CARGO_MANIFEST_DIR"));
    let topic = unique("steady-py");
    let queue = unique("steady-py-q");
    let run_python = |extra: &[(&str, String)]| {
        let mut command = tokio::process::Command::new(format!("{venv}/bin/tomodachi"));
        command
            .args(["run", "--production", "--logger", "json", "service.py"])
            .current_dir(&dir)
            .env("TOMODACHI_TEST_MOTO_URL", &url)
            .env("PY_TOPIC", &topic)
            .env("PY_QUEUE", &queue)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        for (key, value) in extra {
            command.env(key, value);
        }
        command.spawn().unwrap()
    };
    run_python(&[("PY_SETUP_ONLY", "1".into())])
        .wait()
        .await
        .unwrap();
    fill(&topic, count).await;
    let mut child = run_python(&[("PY_COUNT", count.to_string())]);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut first = None;
    let result = tokio::time::timeout(Duration::from_secs(600), async {
        while let Ok(Some(line)) = lines.next_line().await {
            let mut parts = line.split_whitespace();
            match parts.next() {
                Some("STARTED") => {}
                Some(tag @ ("CPU-FIRST" | "CPU-LAST")) => {
                    let cpu: f64 = parts.next().unwrap().parse().unwrap();
                    if tag == "CPU-FIRST" {
                        first = Some((cpu, Instant::now(), server_counts(&url)));
                    } else {
                        let (first_cpu, first_at, server_first) = first.take().unwrap();
                        let elapsed = first_at.elapsed();
                        let server_last = server_counts(&url);
                        return Some((cpu - first_cpu, elapsed, server_first, server_last));
                    }
                }
                _ => {}
            }
        }
        None
    })
    .await;
    match result {
        Ok(Some((cpu, elapsed, server_first, server_last))) => {
            let per_message = match (server_first, server_last) {
                (Some((_, r0)), Some((_, r1))) => {
                    format!(
                        " = {:.3} per message",
                        (r1 - r0) as f64 / (count - 1) as f64
                    )
                }
                _ => String::new(),
            };
            println!(
                "Python tomodachi: {count} messages in {:.2} s ({:.0} msgs/s); API calls 1 ReceiveMessage per batch + 1 DeleteMessage per message (>= 1.1 per message){per_message}; CPU {:.3} ms per message (first to last message){}",
                elapsed.as_secs_f64(),
                (count - 1) as f64 / elapsed.as_secs_f64(),
                cpu * 1000.0 / (count - 1) as f64,
                connections_between(server_first, server_last),
            );
        }
        _ => println!("Python tomodachi: did not finish"),
    }
    let _ = child.wait().await;
}
