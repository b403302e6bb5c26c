//! Three replicas of the example (three processes) against the real RabbitMQ and moto's
//! DynamoDB: over 30 one-second ticks each tick runs exactly once; then the replica that
//! runs the job is killed (SIGKILL, or for RabbitMQ its lease connection closed by name) and
//! the test counts the ticks lost and measures the takeover (kill to the next run
//! elsewhere). The figures are printed as `FIGURE ...` lines (BENCHMARKS.md has them).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

const REPLICAS: usize = 3;
const TICKS: i64 = 30;
const TIMEOUT: Duration = Duration::from_secs(60);

/// A record one replica logged, with when the test read it.
#[derive(Debug)]
struct Event {
    replica: usize,
    at: Instant,
    record: Value,
}

struct Replicas {
    children: Vec<Child>,
    events: mpsc::UnboundedReceiver<Event>,
    /// Runs seen: invocation time (epoch seconds) → replicas that ran it.
    runs: BTreeMap<i64, Vec<usize>>,
    /// The lease connection name of each replica (RabbitMQ only), from "took the lease".
    connections: BTreeMap<usize, String>,
}

fn epoch_seconds(text: &str) -> i64 {
    // `YYYY-MM-DDTHH:MM:SSZ`: seconds since the epoch, enough for differences.
    let digits: Vec<i64> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .map(|part| part.parse().unwrap())
        .collect();
    let [year, month, day, hour, minute, second] = digits[..] else {
        panic!("not a tomodachi timestamp: {text}");
    };
    // Days from a civil date (Howard Hinnant's algorithm).
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + hour * 3600 + minute * 60 + second
}

impl Replicas {
    fn start(env: &[(&str, &str)]) -> Self {
        let (sender, events) = mpsc::unbounded_channel();
        let children = (0..REPLICAS)
            .map(|replica| {
                let mut child = Command::new(env!("CARGO_BIN_EXE_schedule_replicas"))
                    .args(["--logger", "json"])
                    .envs(env.iter().copied())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .kill_on_drop(true)
                    .spawn()
                    .unwrap();
                let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
                let sender = sender.clone();
                tokio::spawn(async move {
                    while let Ok(Some(line)) = lines.next_line().await {
                        let record = serde_json::from_str(&line).unwrap_or(Value::String(line));
                        let _ = sender.send(Event {
                            replica,
                            at: Instant::now(),
                            record,
                        });
                    }
                });
                child
            })
            .collect();
        Self {
            children,
            events,
            runs: BTreeMap::new(),
            connections: BTreeMap::new(),
        }
    }

    /// Reads records until `done` says so; returns the last run's (invocation time, replica, read at).
    async fn until(
        &mut self,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Option<(i64, usize, Instant)> {
        let mut last = None;
        tokio::time::timeout(TIMEOUT, async {
            while !done(self) {
                let event = self.events.recv().await.expect("every replica exited");
                let message = event.record["message"].as_str().unwrap_or_default();
                if message == "ran the job" {
                    let at = epoch_seconds(event.record["invocation_time"].as_str().unwrap());
                    self.runs.entry(at).or_default().push(event.replica);
                    last = Some((at, event.replica, event.at));
                } else if message == "took the lease" {
                    let name = event.record["connection"].as_str().unwrap().to_owned();
                    self.connections.insert(event.replica, name);
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("timed out; runs so far: {:?}", self.runs));
        last
    }

    /// The replica that ran the latest tick.
    fn runner(&self) -> usize {
        self.runs.values().next_back().unwrap()[0]
    }

    fn assert_once_each(&self, from: i64, to: i64) {
        for tick in from..=to {
            let ran = self.runs.get(&tick).map_or(0, Vec::len);
            assert!(ran <= 1, "tick {tick} ran {ran} times: {:?}", self.runs);
        }
    }
}

/// 30 ticks, each exactly once; then `kill` the runner; returns (ticks lost, takeover).
async fn thirty_ticks_then_kill(
    replicas: &mut Replicas,
    kill: impl AsyncFnOnce(&mut Replicas, usize),
) -> (i64, Duration) {
    replicas.until(|r| !r.runs.is_empty()).await;
    let first = *replicas.runs.keys().next().unwrap();
    replicas
        .until(|r| {
            r.runs
                .keys()
                .next_back()
                .is_some_and(|last| *last >= first + TICKS - 1)
        })
        .await;
    // Two more seconds for a late duplicate of the last ticks to show.
    let settle = Instant::now() + Duration::from_secs(2);
    let _ = tokio::time::timeout_at(settle.into(), replicas.until(|_| false)).await;
    for tick in first..first + TICKS {
        assert_eq!(
            replicas.runs.get(&tick).map(Vec::len),
            Some(1),
            "tick {tick} did not run exactly once: {:?}",
            replicas.runs
        );
    }

    let leader = replicas.runner();
    kill(replicas, leader).await;
    // From the moment the kill is done (closing a connection with rabbitmqctl takes seconds,
    // during which the leader still runs ticks); runs already logged count as before it.
    let killed_at = Instant::now();
    let _ = tokio::time::timeout(Duration::from_millis(50), replicas.until(|_| false)).await;
    let before = *replicas.runs.keys().next_back().unwrap();
    let (after, by, seen) = replicas
        .until(|r| {
            r.runs
                .keys()
                .next_back()
                .is_some_and(|last| *last > before && r.runs[last][0] != leader)
        })
        .await
        .unwrap();
    assert_ne!(by, leader);
    replicas
        .until(|r| {
            r.runs
                .keys()
                .next_back()
                .is_some_and(|last| *last >= after + 3)
        })
        .await;
    replicas.assert_once_each(first, after + 3);
    let lost = (before + 1..after)
        .filter(|tick| !replicas.runs.contains_key(tick))
        .count();
    eprintln!(
        "replica {leader} killed after tick {before}; runs (tick: replica) from then: {:?}",
        replicas.runs.range(before..).collect::<Vec<_>>()
    );
    (lost as i64, seen.saturating_duration_since(killed_at))
}

async fn sigkill(replicas: &mut Replicas, replica: usize) {
    replicas.children[replica].start_kill().unwrap();
    replicas.children[replica].wait().await.unwrap();
}

fn unique() -> String {
    format!("test-{}", uuid::Uuid::new_v4().simple())
}

fn amqp_env(name: &str) -> Vec<(&'static str, String)> {
    assert!(
        std::net::TcpStream::connect("127.0.0.1:5672").is_ok(),
        "RabbitMQ is not reachable at 127.0.0.1:5672: `source scripts/test-env.sh` starts it"
    );
    vec![("LEASE_NAME", name.to_owned())]
}

fn dynamodb_env(name: &str) -> Vec<(&'static str, String)> {
    // Not the moto on 4566: see the note on the DynamoDB test.
    let url = std::env::var("TOMODACHI_TEST_DYNAMODB_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:4567".into());
    assert!(
        std::net::TcpStream::connect(url.trim_start_matches("http://")).is_ok(),
        "the single-threaded moto for DynamoDB is not reachable at {url} \
         (TOMODACHI_TEST_DYNAMODB_URL): `source scripts/test-env.sh` starts it"
    );
    vec![
        ("LEASE", "dynamodb".into()),
        ("LEASE_NAME", name.to_owned()),
        ("LEASE_DYNAMODB_URL", url),
        ("LEASE_DYNAMODB_TABLE", "tomodachi-rs-test-leases".into()),
        ("TOMODACHI_AWS_SNS_SQS_REGION_NAME", "us-east-1".into()),
        ("TOMODACHI_AWS_SNS_SQS_AWS_ACCESS_KEY_ID", "testing".into()),
        (
            "TOMODACHI_AWS_SNS_SQS_AWS_SECRET_ACCESS_KEY",
            "testing".into(),
        ),
    ]
}

fn start(env: &[(&'static str, String)]) -> Replicas {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Replicas::start(&env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_lease_runs_each_tick_once_and_survives_a_killed_leader() {
    let mut replicas = start(&amqp_env(&unique()));
    let (lost, takeover) = thirty_ticks_then_kill(&mut replicas, sigkill).await;
    eprintln!("FIGURE rabbitmq sigkill: ticks lost {lost}, takeover {takeover:?}");
    assert!(lost <= 1, "{lost} ticks lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_lease_moves_when_the_leader_s_connection_is_closed() {
    let mut replicas = start(&amqp_env(&unique()));
    let close = async |replicas: &mut Replicas, leader: usize| {
        let name = replicas.connections[&leader].clone();
        close_connection(&name).await;
    };
    let (lost, takeover) = thirty_ticks_then_kill(&mut replicas, close).await;
    eprintln!("FIGURE rabbitmq closed connection: ticks lost {lost}, takeover {takeover:?}");
    assert!(lost <= 1, "{lost} ticks lost");
}

/// Closes the one connection named `name` (this test's own) with rabbitmqctl.
async fn close_connection(name: &str) {
    let rabbitmqctl = std::env::var("TOMODACHI_TEST_RABBITMQCTL")
        .ok()
        .filter(|path| !path.is_empty())
        .unwrap_or_else(|| "rabbitmqctl".into());
    let listed = Command::new(&rabbitmqctl)
        .args([
            "list_connections",
            "-q",
            "--no-table-headers",
            "pid",
            "client_properties",
        ])
        .output()
        .await
        .expect("rabbitmqctl (TOMODACHI_TEST_RABBITMQCTL) runs");
    let listed = String::from_utf8_lossy(&listed.stdout);
    let pid = listed
        .lines()
        .find(|line| line.contains(name))
        .and_then(|line| line.split_whitespace().next())
        .unwrap_or_else(|| panic!("no connection named {name} in:\n{listed}"));
    let closed = Command::new(&rabbitmqctl)
        .args(["close_connection", pid, "closed by the lease test"])
        .status()
        .await
        .unwrap();
    assert!(closed.success());
}

/// Against `TOMODACHI_TEST_DYNAMODB_URL`, a moto that serves one request at a time
/// (`scripts/test-env.sh` starts it on 127.0.0.1:4567), not the shared moto on 4566:
/// `moto_server` serves requests on threads and its DynamoDB backend checks a PutItem's
/// condition and writes the item with no lock in between, so there two replicas' concurrent
/// conditional writes of one tick's item can both succeed and the tick runs twice. Real
/// DynamoDB's conditional writes are atomic per item, which is what `DynamoDbLease` relies
/// on; one thread gives moto the same order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_lease_runs_each_tick_once_and_survives_a_killed_runner() {
    let mut replicas = start(&dynamodb_env(&unique()));
    let (lost, takeover) = thirty_ticks_then_kill(&mut replicas, sigkill).await;
    eprintln!("FIGURE dynamodb sigkill: ticks lost {lost}, takeover {takeover:?}");
    assert!(lost <= 1, "{lost} ticks lost");
}
