//! Fault drills: a real service on the facade (`tests/bin/drill.rs`) against the real
//! RabbitMQ and moto, N numbered messages, and a fault while they flow. Every drill counts
//! what was handled, lost and handled twice; zero lost is the assertion everywhere, and
//! duplicates are held to the bound the transport can promise.
//!
//! Run by `.ci/run` (not by a plain `cargo test`: minutes of broker traffic):
//!
//! ```text
//! source scripts/test-env.sh
//! cargo test -p tomodachi-tests --test drills -- --nocapture --test-threads 1
//! ```
//!
//! `DRILLS=sigterm,kill` runs only those drills (names: errors, drop, outage, sigterm,
//! kill, poison, bomb). Each transport's drill prints its table (and writes it to `$CARGO_TARGET_TMPDIR`);
//! RELIABILITY.md at the repository root holds the latest one.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::json;
use tomodachi::ServiceIdentity;
use tomodachi_tests::child::{Child, Line, Stream, command, record};
use tomodachi_tests::{expect_reachable, moto_url};

#[path = "../tomodachi-amqp/tests/support/rabbitmqctl.rs"]
mod broker;

const DRILL: &str = env!("CARGO_BIN_EXE_drill");
/// AMQP prefetch of the drill service: the most a connection drop or kill may redeliver.
const PREFETCH: usize = 20;
/// SQS messages one receive may bring (the most a kill may leave to be redelivered).
const SQS_BATCH: usize = 10;
/// How long a drill waits for its messages before it counts the rest as lost.
const SETTLE: Duration = Duration::from_secs(120);
/// How long a stopped service may take to exit (an SQS long poll is 20 s).
const EXIT: Duration = Duration::from_secs(60);

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos:x}", std::process::id())
}

#[derive(Clone, Copy, PartialEq)]
enum Transport {
    Amqp,
    Sqs,
}

/// One drill's service: its name (= queue, routing key), dead-letter queue and settings.
struct Drill {
    transport: Transport,
    name: String,
    dlq: Option<String>,
    work_ms: u64,
    visibility: u32,
    /// More variables for the service.
    env: Vec<(&'static str, String)>,
}

impl Drill {
    fn new(transport: Transport, name: &str) -> Self {
        Self {
            transport,
            name: unique(name),
            dlq: None,
            work_ms: 0,
            visibility: 30,
            env: Vec::new(),
        }
    }

    /// Starts the service and waits until it has started.
    async fn start(&self) -> Child {
        let mut command = command(DRILL);
        command
            .args(["--logger", "json"])
            .env("DRILL_NAME", &self.name)
            .env("DRILL_WORK_MS", self.work_ms.to_string())
            .env("DRILL_VISIBILITY", self.visibility.to_string())
            .env(
                "TOMODACHI_AMQP_QOS_QUEUE_PREFETCH_COUNT",
                PREFETCH.to_string(),
            );
        if let Some(dlq) = &self.dlq {
            command.env("DRILL_DLQ", dlq);
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        match self.transport {
            Transport::Amqp => {
                command.env("DRILL_TRANSPORT", "amqp");
            }
            Transport::Sqs => {
                let url = moto_url();
                command
                    .env("DRILL_TRANSPORT", "sqs")
                    .env("TOMODACHI_AWS_ENDPOINT_URLS_SQS", &url)
                    .env("TOMODACHI_AWS_ENDPOINT_URLS_SNS", &url)
                    .env("TOMODACHI_AWS_SNS_SQS_REGION_NAME", "us-east-1")
                    .env("TOMODACHI_AWS_SNS_SQS_AWS_ACCESS_KEY_ID", "testing")
                    .env("TOMODACHI_AWS_SNS_SQS_AWS_SECRET_ACCESS_KEY", "testing");
            }
        }
        let mut child = Child::spawn(&mut command);
        child
            .wait_for(
                "the drill service's start",
                record("tomodachi.lifecycle", "started service successfully"),
            )
            .await;
        child
    }
}

/// Whether the drill `name` runs: all of them unless `DRILLS` (comma-separated names:
/// errors, drop, outage, sigterm, kill, poison, bomb) picks some.
fn selected(name: &str) -> bool {
    std::env::var("DRILLS").map_or(true, |names| names.split(',').any(|n| n.trim() == name))
}

fn is_handled(line: &Line) -> bool {
    line.stream == Stream::Stdout && line.text.starts_with("handled ")
}

/// Every `handled <n> <delivery>` line of these processes: n → its deliveries.
fn tally(children: &[Child]) -> BTreeMap<u64, Vec<u32>> {
    let mut handled: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    for line in children.iter().flat_map(Child::lines) {
        if !is_handled(line) {
            continue;
        }
        let mut words = line.text.split(' ').skip(1);
        let n = words.next().and_then(|n| n.parse().ok());
        let delivery = words.next().and_then(|d| d.parse().ok());
        if let (Some(n), Some(delivery)) = (n, delivery) {
            handled.entry(n).or_default().push(delivery);
        }
    }
    handled
}

/// Waits (at most `limit`) until `done` holds for the tally of `children`, reading the
/// output of the last (running) one.
async fn until(
    children: &mut [Child],
    limit: Duration,
    done: impl Fn(&BTreeMap<u64, Vec<u32>>) -> bool,
) {
    let deadline = Instant::now() + limit;
    loop {
        if done(&tally(children)) {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(current) = children.last_mut() else {
            return;
        };
        if left.is_zero() || current.wait_for_within(left, is_handled).await.is_none() {
            return;
        }
    }
}

/// Waits until `count` more messages have been handled than now.
async fn more(children: &mut [Child], count: usize) {
    let now: usize = tally(children).values().map(Vec::len).sum();
    until(children, SETTLE, |t| {
        t.values().map(Vec::len).sum::<usize>() >= now + count
    })
    .await;
}

/// Waits until every message of `sent` has been handled.
async fn all(children: &mut [Child], sent: &BTreeSet<u64>) {
    until(children, SETTLE, |t| sent.iter().all(|n| t.contains_key(n))).await;
}

/// SIGTERM, then the exit (code 0).
async fn stop(child: &mut Child) {
    child.signal("TERM");
    let status = child.wait_exit(EXIT).await;
    assert_eq!(status.code(), Some(0), "{}", child.output());
}

/// SIGKILL, then the exit.
async fn kill(child: &mut Child) {
    child.signal("KILL");
    child.wait_exit(EXIT).await;
}

/// Whether some JSON record of these processes has a message starting with `prefix`.
fn logged(children: &[Child], prefix: &str) -> bool {
    children
        .iter()
        .flat_map(Child::lines)
        .any(|line| line.message().is_some_and(|m| m.starts_with(prefix)))
}

/// One line of the table.
struct Row {
    drill: &'static str,
    sent: usize,
    handled: usize,
    lost: usize,
    duplicates: usize,
    bound: String,
    within_bound: bool,
    note: String,
}

impl Row {
    fn new(
        drill: &'static str,
        sent: &BTreeSet<u64>,
        handled: &BTreeMap<u64, Vec<u32>>,
        bound: Option<usize>,
    ) -> Self {
        let lost = sent.iter().filter(|n| !handled.contains_key(n)).count();
        let duplicates = handled.values().map(|d| d.len() - 1).sum();
        Self {
            drill,
            sent: sent.len(),
            handled: sent.iter().filter(|n| handled.contains_key(n)).count(),
            lost,
            duplicates,
            bound: bound.map_or_else(|| "at-least-once".to_owned(), |b| format!("≤ {b}")),
            within_bound: bound.is_none_or(|b| duplicates <= b),
            note: String::new(),
        }
    }

    fn note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }
}

/// Prints the table, writes it next to the test's build output, then fails on any loss,
/// any duplicate over its bound and any failed check (`checks`: what, whether it held).
fn report(transport: &str, rows: &[Row], checks: &[(String, bool)]) {
    let mut table = format!(
        "| {transport} drill | sent | handled | lost | duplicates | duplicate bound | notes |\n|---|---:|---:|---:|---:|---|---|\n"
    );
    for row in rows {
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.drill, row.sent, row.handled, row.lost, row.duplicates, row.bound, row.note
        );
    }
    println!("\n{table}");
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("drills-{}.md", transport.to_lowercase()));
    let _ = std::fs::write(&path, &table);
    println!("(written to {})", path.display());
    for row in rows {
        assert_eq!(row.lost, 0, "{}: messages lost\n{table}", row.drill);
        assert!(
            row.within_bound,
            "{}: more duplicates than {}\n{table}",
            row.drill, row.bound
        );
    }
    for (what, held) in checks {
        assert!(held, "{what}\n{table}");
    }
}

// ---------------------------------------------------------------------------------------
// AMQP

mod amqp {
    use super::*;
    use lapin::options::{BasicGetOptions, QueueDeclareOptions, QueueDeleteOptions};
    use lapin::types::FieldTable;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use tokio::net::{TcpListener, TcpStream};
    use tomodachi::amqp::{AmqpOptions, AmqpPublisher};

    fn publisher() -> AmqpPublisher {
        AmqpPublisher::new(
            AmqpOptions::default(),
            ServiceIdentity::with_random_uuid("drill-publisher"),
        )
        .envelope(tomodachi::JsonEnvelope)
    }

    /// Publishes messages `range` (`fail` picks each one's failure) to the drill.
    pub(super) async fn publish(
        drill: &Drill,
        range: std::ops::Range<u64>,
        fail: impl Fn(u64) -> &'static str,
    ) -> BTreeSet<u64> {
        let publisher = publisher();
        let numbers: Vec<u64> = range.collect();
        for chunk in numbers.chunks(100) {
            let sends = chunk.iter().map(|&n| {
                let publisher = &publisher;
                let body = json!({"n": n, "fail": fail(n)});
                async move { publisher.publish(&body, &drill.name).await }
            });
            for result in join_all(sends).await {
                result.unwrap();
            }
        }
        publisher.close().await;
        numbers.into_iter().collect()
    }

    /// The broker's pids of the connections of the drill's service `name` (the facade
    /// names them "<name> (<uuid>)").
    async fn connection_pids(name: &str) -> Vec<String> {
        broker::connection_pids_with_prefix(&format!("{name} (")).await
    }

    pub(super) async fn errors_and_panics() -> Row {
        let drill = Drill::new(Transport::Amqp, "drill-amqp-errors");
        let mut children = vec![drill.start().await];
        let sent = publish(&drill, 0..300, |n| match n {
            n if n % 7 == 0 => "error",
            n if n % 11 == 0 => "panic",
            _ => "",
        })
        .await;
        all(&mut children, &sent).await;
        stop(&mut children[0]).await;
        let handled = tally(&children);
        Row::new(
            "handler errors (1 in 7) and panics (1 in 11)",
            &sent,
            &handled,
            Some(0),
        )
        .note("each failed once, then handled on redelivery")
    }

    pub(super) async fn connection_closed(checks: &mut Vec<(String, bool)>) -> Row {
        let drill = Drill::new(Transport::Amqp, "drill-amqp-drop");
        let mut children = vec![drill.start().await];
        let pids = connection_pids(&drill.name).await;
        checks.push((
            format!("one connection named \"{} (<uuid>)\": {pids:?}", drill.name),
            pids.len() == 1,
        ));
        let sent = publish(&drill, 0..3000, |_| "").await;
        more(&mut children, 500).await;
        for pid in &pids {
            broker::close_connection(pid, "closed by the fault drill").await;
        }
        all(&mut children, &sent).await;
        stop(&mut children[0]).await;
        let lost = logged(&children, "connection to the broker lost [amqp]");
        // The broker's close reason, in lapin's own record of the close.
        let reason = children
            .iter()
            .flat_map(Child::lines)
            .any(|line| line.record.is_some() && line.text.contains("closed by the fault drill"));
        let recovered = logged(&children, "connection to the broker recovered [amqp] after");
        println!("\nAMQP drop drill, the connection's records:");
        for line in children.iter().flat_map(Child::lines) {
            let ours = line.logger() == Some("tomodachi.amqp")
                && line.message().is_some_and(|m| m.contains("the broker"));
            if ours || (line.record.is_some() && line.text.contains("closed by the fault drill")) {
                println!("  {}", line.text);
            }
        }
        checks.push(("the drop is logged (warning)".into(), lost));
        checks.push((
            "the drop's record carries the broker's reason".into(),
            reason,
        ));
        checks.push(("the recovery is logged with its time".into(), recovered));
        let handled = tally(&children);
        Row::new(
            "connection closed mid-stream (by name)",
            &sent,
            &handled,
            Some(PREFETCH),
        )
        .note(format!(
            "drop logged: {lost}; broker's reason logged: {reason}; recovery logged with its time: {recovered}"
        ))
    }

    /// A TCP proxy to RabbitMQ whose connections can be cut and new ones refused: a broker
    /// outage for one service only (RabbitMQ is shared; it is never stopped).
    struct Proxy {
        port: u16,
        down: Arc<AtomicBool>,
        open: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    }

    impl Proxy {
        async fn start() -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let down = Arc::new(AtomicBool::new(false));
            let open: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
            let (down_, open_) = (down.clone(), open.clone());
            tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if down_.load(Ordering::SeqCst) {
                        continue; // dropped: the connection closes at once
                    }
                    let task = tokio::spawn(async move {
                        if let Ok(mut broker) = TcpStream::connect("127.0.0.1:5672").await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut broker).await;
                        }
                    });
                    open_.lock().unwrap().push(task.abort_handle());
                }
            });
            Self { port, down, open }
        }

        fn cut(&self) {
            self.down.store(true, Ordering::SeqCst);
            for connection in self.open.lock().unwrap().drain(..) {
                connection.abort();
            }
        }

        fn restore(&self) {
            self.down.store(false, Ordering::SeqCst);
        }
    }

    pub(super) async fn outage(checks: &mut Vec<(String, bool)>) -> Row {
        let proxy = Proxy::start().await;
        let mut drill = Drill::new(Transport::Amqp, "drill-amqp-outage");
        drill
            .env
            .push(("TOMODACHI_AMQP_PORT", proxy.port.to_string()));
        let mut children = vec![drill.start().await];
        let sent = publish(&drill, 0..3000, |_| "").await;
        more(&mut children, 500).await;
        proxy.cut();
        // The outage itself: how long the broker stays out of reach.
        tokio::time::sleep(Duration::from_secs(3)).await;
        proxy.restore();
        all(&mut children, &sent).await;
        stop(&mut children[0]).await;
        println!("\nAMQP outage drill (3 s), the connection's records:");
        for line in children.iter().flat_map(Child::lines) {
            if line.logger() == Some("tomodachi.amqp")
                && line.message().is_some_and(|m| m.contains("the broker"))
            {
                println!("  {}", line.text);
            }
        }
        let lost = logged(&children, "connection to the broker lost [amqp]");
        let retries = children
            .iter()
            .flat_map(Child::lines)
            .filter(|line| {
                line.message()
                    .is_some_and(|m| m.starts_with("reconnecting to the broker [amqp]"))
            })
            .count();
        let recovered = logged(&children, "connection to the broker recovered [amqp] after")
            || logged(&children, "consuming from queue [amqp]");
        checks.push(("the outage's drop is logged".into(), lost));
        checks.push((
            format!("the outage's retries are logged: {retries}"),
            retries >= 1,
        ));
        checks.push(("the recovery after the outage is logged".into(), recovered));
        let handled = tally(&children);
        Row::new(
            "broker out of reach for 3 s (proxy cut)",
            &sent,
            &handled,
            Some(PREFETCH),
        )
        .note(format!(
            "drop logged: {lost}; retries logged: {retries}; recovery logged: {recovered}"
        ))
    }

    pub(super) async fn sigterm_restarts() -> Row {
        let mut drill = Drill::new(Transport::Amqp, "drill-amqp-term");
        drill.work_ms = 2;
        let mut children = vec![drill.start().await];
        let sent = publish(&drill, 0..1500, |_| "").await;
        for _ in 0..5 {
            more(&mut children, 150).await;
            stop(children.last_mut().unwrap()).await;
            children.push(drill.start().await);
        }
        all(&mut children, &sent).await;
        stop(children.last_mut().unwrap()).await;
        let handled = tally(&children);
        Row::new("SIGTERM under load, restart (×5)", &sent, &handled, Some(0))
            .note("in-flight handlers drain and ack; unstarted deliveries requeue")
    }

    pub(super) async fn kill_restarts() -> Row {
        let mut drill = Drill::new(Transport::Amqp, "drill-amqp-kill");
        drill.work_ms = 2;
        let mut children = vec![drill.start().await];
        let sent = publish(&drill, 0..1000, |_| "").await;
        for _ in 0..3 {
            more(&mut children, 150).await;
            kill(children.last_mut().unwrap()).await;
            children.push(drill.start().await);
        }
        all(&mut children, &sent).await;
        stop(children.last_mut().unwrap()).await;
        let handled = tally(&children);
        Row::new(
            "kill -9 under load, restart (×3)",
            &sent,
            &handled,
            Some(3 * PREFETCH),
        )
        .note(format!(
            "bound: prefetch ({PREFETCH}) per kill: handlers in flight plus completions waiting for their coalesced ack (batch {})",
            PREFETCH / 2
        ))
    }

    pub(super) async fn poison(checks: &mut Vec<(String, bool)>) -> Row {
        let mut drill = Drill::new(Transport::Amqp, "drill-amqp-poison");
        let dlq = unique("drill-amqp-poison-dlq");
        let connection = lapin::Connection::connect(
            "amqp://guest:guest@127.0.0.1:5672/%2f",
            lapin::ConnectionProperties::default(),
        )
        .await
        .unwrap();
        let channel = connection.create_channel().await.unwrap();
        channel
            .queue_declare(
                dlq.as_str().into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        drill.dlq = Some(dlq.clone());
        let mut children = vec![drill.start().await];
        let sent = publish(&drill, 0..20, |n| if n == 7 { "poison" } else { "" }).await;
        let mut expected = sent.clone();
        expected.remove(&7);
        all(&mut children, &expected).await;
        let mut dead = None;
        for _ in 0..50 {
            dead = channel
                .basic_get(dlq.as_str().into(), BasicGetOptions { no_ack: true })
                .await
                .unwrap();
            if dead.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let in_dlq = dead.is_some_and(|m| String::from_utf8_lossy(&m.data).contains("\"n\": 7"));
        stop(&mut children[0]).await;
        let handled = tally(&children);
        checks.push((
            "the poison message is in the dead-letter queue".into(),
            in_dlq,
        ));
        checks.push((
            "the poison message was never reported handled".into(),
            !handled.contains_key(&7),
        ));
        let _ = channel
            .queue_delete(dlq.as_str().into(), QueueDeleteOptions::default())
            .await;
        let _ = connection.close(200, "OK".into()).await;
        Row::new(
            "poison message → dead-letter queue",
            &expected,
            &handled,
            Some(0),
        )
        .note(format!("poison in DLQ: {in_dlq}"))
    }

    /// A `base64_gzip_json` envelope whose data inflates to 1 GiB (1 MB compressed).
    fn bomb() -> Vec<u8> {
        use base64::Engine as _;
        use std::io::Write as _;
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        let spaces = vec![b' '; 1 << 20];
        for _ in 0..1024 {
            zlib.write_all(&spaces).unwrap();
        }
        let data = base64::engine::general_purpose::STANDARD.encode(zlib.finish().unwrap());
        format!(
            r#"{{"service": {{"name": "bomber", "uuid": "b"}}, "metadata": {{"message_uuid": "b.1", "protocol_version": "tomodachi-json-base--1.0.0", "compatible_protocol_versions": ["json_base-wip"], "timestamp": 1.0, "topic": "t", "data_encoding": "base64_gzip_json"}}, "data": "{data}"}}"#
        )
        .into_bytes()
    }

    fn vm_hwm_kib(pid: u32) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    pub(super) async fn decompression_bomb(checks: &mut Vec<(String, bool)>) -> Row {
        let drill = Drill::new(Transport::Amqp, "drill-amqp-bomb");
        let mut children = vec![drill.start().await];
        let bomb = bomb();
        let publisher = publisher();
        publisher
            .publish_payload(bomb.clone(), &drill.name, Default::default())
            .await
            .unwrap();
        publisher.close().await;
        let sent = publish(&drill, 1..2, |_| "").await;
        all(&mut children, &sent).await;
        let hwm = vm_hwm_kib(children[0].pid()).unwrap_or(u64::MAX);
        stop(&mut children[0]).await;
        let rejected = children.iter().flat_map(Child::lines).any(|line| {
            line.logger() == Some("exception") && line.text.contains("inflates to more than")
        });
        checks.push((
            "the 1 GiB-inflating message is rejected with a record".into(),
            rejected,
        ));
        checks.push((
            format!("peak RSS (VmHWM) under 100 MB: {} KiB", hwm),
            hwm < 100 * 1000,
        ));
        let handled = tally(&children);
        Row::new(
            "decompression bomb (1.4 MB → 1 GiB), then a message",
            &sent,
            &handled,
            Some(0),
        )
        .note(format!(
            "bomb ({} KB) rejected: {rejected}; service VmHWM {:.1} MB",
            bomb.len() / 1000,
            hwm as f64 / 1024.0
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_drills() {
    expect_reachable("127.0.0.1:5672", "RabbitMQ").await;
    let mut checks = Vec::new();
    let mut rows = Vec::new();
    if selected("errors") {
        rows.push(amqp::errors_and_panics().await);
    }
    if selected("drop") {
        rows.push(amqp::connection_closed(&mut checks).await);
    }
    if selected("outage") {
        rows.push(amqp::outage(&mut checks).await);
    }
    if selected("sigterm") {
        rows.push(amqp::sigterm_restarts().await);
    }
    if selected("kill") {
        rows.push(amqp::kill_restarts().await);
    }
    if selected("poison") {
        rows.push(amqp::poison(&mut checks).await);
    }
    if selected("bomb") {
        rows.push(amqp::decompression_bomb(&mut checks).await);
    }
    report("AMQP", &rows, &checks);
}

// ---------------------------------------------------------------------------------------
// SNS+SQS

mod sqs {
    use super::*;
    use aws_sdk_sqs::types::QueueAttributeName;
    use tomodachi::sqs::{AwsClients, AwsEndpointUrlsOptions, AwsSnsSqsOptions, SqsSender};

    fn options() -> AwsSnsSqsOptions {
        AwsSnsSqsOptions {
            region_name: Some("us-east-1".into()),
            aws_access_key_id: Some("testing".into()),
            aws_secret_access_key: Some("testing".into()),
            ..AwsSnsSqsOptions::default()
        }
    }

    pub(super) async fn clients() -> AwsClients {
        let url = moto_url();
        let endpoints = AwsEndpointUrlsOptions {
            sns: Some(url.clone()),
            sqs: Some(url),
            sts: None,
        };
        AwsClients::from_options(&options(), &endpoints)
            .await
            .unwrap()
    }

    /// Sends messages `range` (`fail` picks each one's failure) to the drill's queue.
    pub(super) async fn send(
        drill: &Drill,
        range: std::ops::Range<u64>,
        fail: impl Fn(u64) -> &'static str,
    ) -> BTreeSet<u64> {
        let sender = SqsSender::new(
            clients().await,
            options(),
            ServiceIdentity::with_random_uuid("drill-sender"),
        );
        let numbers: Vec<u64> = range.collect();
        for chunk in numbers.chunks(20) {
            let sends = chunk.iter().map(|&n| {
                let sender = &sender;
                let body = json!({"n": n, "fail": fail(n)});
                async move { sender.send(&body, &drill.name).await }
            });
            for result in join_all(sends).await {
                result.unwrap();
            }
        }
        numbers.into_iter().collect()
    }

    async fn queue_url(clients: &AwsClients, name: &str) -> String {
        clients
            .sqs()
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap()
    }

    /// Messages of the queue received but neither deleted nor visible again.
    async fn invisible(clients: &AwsClients, url: &str) -> u64 {
        let attributes = clients
            .sqs()
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap();
        attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
            .and_then(|v| v.parse().ok())
            .unwrap_or(u64::MAX)
    }

    pub(super) async fn errors_and_panics() -> Row {
        let mut drill = Drill::new(Transport::Sqs, "drill-sqs-errors");
        drill.visibility = 2;
        let mut children = vec![drill.start().await];
        let sent = send(&drill, 0..60, |n| match n {
            n if n % 7 == 0 => "error",
            n if n % 11 == 0 => "panic",
            _ => "",
        })
        .await;
        all(&mut children, &sent).await;
        stop(&mut children[0]).await;
        let handled = tally(&children);
        Row::new(
            "handler errors (1 in 7) and panics (1 in 11)",
            &sent,
            &handled,
            Some(0),
        )
        .note("each failed once, then handled after its visibility timeout (2 s)")
    }

    pub(super) async fn sigterm_restarts(checks: &mut Vec<(String, bool)>) -> Row {
        let clients = clients().await;
        let mut drill = Drill::new(Transport::Sqs, "drill-sqs-term");
        drill.work_ms = 100;
        let mut children = vec![drill.start().await];
        let url = queue_url(&clients, &drill.name).await;
        let sent = send(&drill, 0..200, |_| "").await;
        let mut left_invisible = Vec::new();
        let mut stop_times = Vec::new();
        for _ in 0..5 {
            more(&mut children, 20).await;
            let began = Instant::now();
            stop(children.last_mut().unwrap()).await;
            stop_times.push(began.elapsed());
            left_invisible.push(invisible(&clients, &url).await);
            children.push(drill.start().await);
        }
        all(&mut children, &sent).await;
        // The queue is idle now: the stop finds a long poll waiting (20 s).
        let began = Instant::now();
        stop(children.last_mut().unwrap()).await;
        let idle_stop = began.elapsed();
        let handled = tally(&children);
        let raised = handled
            .values()
            .filter(|deliveries| deliveries.iter().any(|&d| d > 1))
            .count();
        checks.push((
            format!("no message left invisible after a clean stop: {left_invisible:?}"),
            left_invisible.iter().all(|&n| n == 0),
        ));
        checks.push((
            format!(
                "no receive count raised by a stop: {raised} messages handled with a count > 1"
            ),
            raised == 0,
        ));
        let slowest = stop_times.iter().max().copied().unwrap_or_default();
        Row::new("SIGTERM under load, restart (×5)", &sent, &handled, Some(0)).note(format!(
            "invisible after each stop: {left_invisible:?}; receive counts raised: {raised}; slowest stop under load {:.1} s; stop when idle {:.1} s",
            slowest.as_secs_f64(),
            idle_stop.as_secs_f64()
        ))
    }

    pub(super) async fn kill_restarts() -> Row {
        let mut drill = Drill::new(Transport::Sqs, "drill-sqs-kill");
        drill.work_ms = 50;
        drill.visibility = 3;
        let mut children = vec![drill.start().await];
        let sent = send(&drill, 0..100, |_| "").await;
        for _ in 0..2 {
            more(&mut children, 20).await;
            kill(children.last_mut().unwrap()).await;
            children.push(drill.start().await);
        }
        all(&mut children, &sent).await;
        stop(children.last_mut().unwrap()).await;
        let handled = tally(&children);
        Row::new("kill -9 under load, restart (×2)", &sent, &handled, Some(2 * SQS_BATCH))
            .note(format!(
                "in-flight messages return after the visibility timeout (3 s); bound: one batch ({SQS_BATCH}) per kill"
            ))
    }

    pub(super) async fn poison(checks: &mut Vec<(String, bool)>) -> Row {
        let clients = clients().await;
        let mut drill = Drill::new(Transport::Sqs, "drill-sqs-poison");
        let dlq = unique("drill-sqs-poison-dlq");
        drill.dlq = Some(dlq.clone());
        drill.visibility = 2;
        let mut children = vec![drill.start().await];
        let sent = send(&drill, 0..10, |n| if n == 3 { "poison" } else { "" }).await;
        let mut expected = sent.clone();
        expected.remove(&3);
        all(&mut children, &expected).await;
        let dlq_url = queue_url(&clients, &dlq).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut in_dlq = false;
        while !in_dlq && Instant::now() < deadline {
            let received = clients
                .sqs()
                .receive_message()
                .queue_url(&dlq_url)
                .wait_time_seconds(2)
                .send()
                .await
                .unwrap();
            in_dlq = received
                .messages()
                .iter()
                .any(|m| m.body().is_some_and(|b| b.contains(r#"\"n\": 3"#)));
        }
        stop(&mut children[0]).await;
        let handled = tally(&children);
        checks.push((
            "the poison message reaches the dead-letter queue (max receive count 3)".into(),
            in_dlq,
        ));
        Row::new(
            "poison message → dead-letter queue",
            &expected,
            &handled,
            Some(0),
        )
        .note(format!("poison in DLQ after 3 receives: {in_dlq}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_drills() {
    let url = moto_url();
    expect_reachable(url.trim_start_matches("http://"), "moto").await;
    let mut checks = Vec::new();
    let mut rows = Vec::new();
    if selected("errors") {
        rows.push(sqs::errors_and_panics().await);
    }
    if selected("sigterm") {
        rows.push(sqs::sigterm_restarts(&mut checks).await);
    }
    if selected("kill") {
        rows.push(sqs::kill_restarts().await);
    }
    if selected("poison") {
        rows.push(sqs::poison(&mut checks).await);
    }
    report("SNS+SQS", &rows, &checks);
}
