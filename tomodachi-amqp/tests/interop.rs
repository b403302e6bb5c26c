//! Wire interop with Python tomodachi (the venv of `.ci/run`) over the real broker.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::{Value, json};
use support::*;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tomodachi_amqp::{AmqpOptions, AmqpPublisher, Binding, Consumer, QosOptions, auto_queue_name};
use tomodachi_core::{Handler, JsonEnvelope, ServiceIdentity, Shutdown, Source};

const VENV: &str = "/root/.cache/tomodachi-rs/venv-tomodachi/bin";

fn venv_bin(name: &str) -> PathBuf {
    let path = Path::new(VENV).join(name);
    assert!(
        path.exists(),
        "{} is missing: Python tomodachi must be installed in {VENV} (`.ci/run` does) for the interop tests",
        path.display()
    );
    path
}

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python")
}

/// A running `tomodachi run tests/python/service.py`, killed on drop.
struct PythonService {
    _child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl PythonService {
    async fn start(env: &[(&str, &str)]) -> Self {
        let _ = options();
        let mut command = Command::new(venv_bin("tomodachi"));
        command
            .args(["run", "--production", "--loop", "asyncio", "service.py"])
            .current_dir(scripts())
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("start the Python tomodachi service");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut service = Self {
            _child: child,
            lines,
        };
        let ready = service.next_line(30, "the Python service to start").await;
        assert_eq!(ready, json!({"ready": true}));
        service
    }

    async fn next_line(&mut self, secs: u64, what: &str) -> Value {
        let line = within(secs, what, self.lines.next_line())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("the Python service exited while waiting for {what}"));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad line from Python {line:?}: {e}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_publish_reaches_a_rust_handler() {
    logs();
    let key = unique("py-to-rs");
    let (rec, mut rx) = recorder();
    let binding = Binding::routing_key(format!("{key}.*")).envelope(JsonEnvelope);
    let consumer = Consumer::new(options(), binding, identity("rust-consumer"));
    let shutdown = Shutdown::new();
    let running = within(
        15,
        "setup",
        consumer.start(record.with_state(rec), shutdown.clone()),
    )
    .await
    .unwrap();
    let task = tokio::spawn(running);

    let data = json!({"order": 7, "items": [1, 2.5, "x"], "text": "åäö \u{1f600}", "none": null});
    let output = Command::new(venv_bin("python"))
        .arg(scripts().join("publish.py"))
        .arg(format!("{key}.created"))
        .arg(data.to_string())
        .env("SERVICE_NAME", "python-publisher")
        .env("SERVICE_UUID", "8e0a7a4e-python-publisher")
        .output();
    let output = within(30, "publish.py", output).await.unwrap();
    assert!(output.status.success(), "publish.py failed: {output:?}");
    let sent: Value = serde_json::from_slice(&output.stdout).unwrap();

    let seen = take(&mut rx, 1, 15).await;
    assert_eq!(seen[0].data, data);
    assert_eq!(seen[0].message_uuid, sent["message_uuid"].as_str().unwrap());
    assert_eq!(seen[0].metadata.topic, format!("{key}.created"));
    assert_eq!(seen[0].metadata.service_name, "python-publisher");
    assert_eq!(seen[0].context.routing_key, format!("{key}.created"));
    shutdown.trigger();
    within(15, "drain", task).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_publish_reaches_a_python_handler() {
    logs();
    let key = unique("rs-to-py");
    let python_uuid = uuid::Uuid::new_v4().to_string();
    let mut python =
        PythonService::start(&[("ROUTING_KEY", &key), ("SERVICE_UUID", &python_uuid)]).await;

    // Python's default (non-competing) queue is where our naming says it is.
    let expected_queue = auto_queue_name(&key, false, "on_message", &python_uuid, "");
    let (_conn, channel) = raw().await;
    assert_eq!(ready_count(&channel, &expected_queue).await, 0);

    let sender = ServiceIdentity::with_random_uuid("rust-publisher");
    let publisher = AmqpPublisher::new(options(), sender.clone());
    let data = json!({"n": 1, "nested": {"list": [true, false]}, "text": "åäö"});
    publisher.publish(&data, &key).await.unwrap();

    let got = python.next_line(15, "the Python handler").await;
    assert_eq!(got["data"], data);
    assert_eq!(got["topic"], json!(key));
    assert_eq!(got["routing_key"], json!(key));
    let uuid = got["message_uuid"].as_str().unwrap();
    assert!(uuid.starts_with(&format!("{}.", sender.uuid)), "{uuid}");
    publisher.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_and_python_compete_on_one_queue() {
    logs();
    let key = unique("compete-py");
    let queue = unique("interop-queue");
    // Python declares the queue first (queue_ttl 120, prefetch 1); Rust declares it again
    // with the same arguments, which the broker accepts only if they are equivalent.
    let mut python = PythonService::start(&[
        ("ROUTING_KEY", &key),
        ("SERVICE_UUID", "python-competitor"),
        ("QUEUE_NAME", &queue),
        ("PREFETCH", "1"),
    ])
    .await;
    let options = AmqpOptions {
        qos: QosOptions {
            queue_prefetch_count: 1,
            global_prefetch_count: 400,
        },
        ..options()
    };
    let (rec, mut rx) = recorder();
    let binding = Binding::routing_key(&key)
        .queue_name(&queue)
        .envelope(JsonEnvelope);
    let consumer = Consumer::new(options.clone(), binding, identity("rust-competitor"));
    assert_eq!(consumer.resolved().queue_name, queue);
    let shutdown = Shutdown::new();
    let running = within(
        15,
        "setup",
        consumer.start(record.with_state(rec), shutdown.clone()),
    )
    .await
    .unwrap();
    let task = tokio::spawn(running);

    let publisher = AmqpPublisher::new(options, identity("sender"));
    const TOTAL: i64 = 60;
    for n in 0..TOTAL {
        publisher.publish(&json!(n), &key).await.unwrap();
    }
    let mut all = Vec::new();
    let (mut by_rust, mut by_python) = (0, 0);
    within(30, "every message by one of the two", async {
        while all.len() < TOTAL as usize {
            tokio::select! {
                Some(seen) = rx.recv() => { by_rust += 1; all.push(seen.data.as_i64().unwrap()); }
                line = python.next_line(30, "python") => { by_python += 1; all.push(line["data"].as_i64().unwrap()); }
            }
        }
    })
    .await;
    shutdown.trigger();
    within(15, "drain", task).await.unwrap().unwrap();
    let unique_count = all.iter().collect::<HashSet<_>>().len();
    assert_eq!(unique_count, TOTAL as usize);
    assert_eq!(all.len(), TOTAL as usize, "no message handled twice");
    assert!(
        by_rust > 0 && by_python > 0,
        "both took part (rust {by_rust}, python {by_python})"
    );
    publisher.close().await;
}
