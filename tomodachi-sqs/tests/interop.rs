//! Wire compatibility with Python tomodachi (from its venv), through moto.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tomodachi_core::{
    AttributeValue, Data, Handler, JsonEnvelope, Metadata, Shutdown, Source, State,
};
use tomodachi_sqs::{
    AwsClients, Error, PublishOptions, SendOptions, SnsPublisher, SqsConsumer, SqsContext,
    SqsSender, Subscription,
};

use support::*;

fn venv() -> String {
    let venv = std::env::var("TOMODACHI_TEST_PYTHON_VENV")
        .unwrap_or_else(|_| "/root/.cache/tomodachi-rs/venv-tomodachi".into());
    assert!(
        std::path::Path::new(&format!("{venv}/bin/tomodachi")).exists(),
        "Python tomodachi is not installed in {venv} (set TOMODACHI_TEST_PYTHON_VENV; scripts/test-env.sh installs it)"
    );
    venv
}

fn python_dir() -> String {
    format!("{}/tests/python", env!("CARGO_MANIFEST_DIR"))
}

/// Runs `publish.py` and returns the message id it printed.
async fn python_publish(mode: &str, target: &str, data: &Value, attributes: &Value) -> String {
    let output = within(
        60,
        "python publish.py",
        Command::new(format!("{}/bin/python", venv()))
            .arg(format!("{}/publish.py", python_dir()))
            .args([mode, target, &data.to_string(), &attributes.to_string()])
            .env("TOMODACHI_TEST_MOTO_URL", require_moto())
            .output(),
    )
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "publish.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// A running Python service and its stdout lines.
struct PythonService {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
}

impl PythonService {
    async fn start(env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(format!("{}/bin/tomodachi", venv()));
        command
            .args(["run", "--production", "--logger", "json", "service.py"])
            .current_dir(python_dir())
            .env("TOMODACHI_TEST_MOTO_URL", require_moto())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, mut lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let _ = sender.send(line);
            }
        });
        loop {
            let line = within(60, "the Python service to start", lines.recv())
                .await
                .expect("the Python service exited before it started");
            if line == "STARTED" {
                break;
            }
        }
        Self { child, lines }
    }

    async fn next_json(&mut self) -> Value {
        loop {
            let line = within(30, "the Python handler", self.lines.recv())
                .await
                .expect("the Python service exited without handling the message");
            if let Ok(value) = serde_json::from_str::<Value>(&line) {
                return value;
            }
        }
    }

    async fn wait(mut self) {
        let status = within(30, "the Python service to exit", self.child.wait())
            .await
            .unwrap();
        assert!(status.success(), "the Python service failed: {status}");
    }
}

type Received = (SqsContext, String, Value);

async fn on_message(
    State(sender): State<mpsc::UnboundedSender<Received>>,
    context: SqsContext,
    Metadata(metadata): Metadata,
    Data(data): Data<Value>,
) {
    let _ = sender.send((context, metadata.service_name.clone(), data));
}

async fn start_rust(
    clients: &AwsClients,
    subscription: Subscription,
) -> (
    Shutdown,
    tokio::task::JoinHandle<Result<(), Error>>,
    mpsc::UnboundedReceiver<Received>,
) {
    let (sender, received) = mpsc::unbounded_channel();
    let consumer = SqsConsumer::new(
        clients.clone(),
        options(),
        subscription
            .envelope(JsonEnvelope)
            .wait_time(Duration::from_secs(1)),
        identity("rust-consumer"),
    );
    let shutdown = Shutdown::new();
    let running = consumer
        .start(on_message.with_state(sender), shutdown.clone())
        .await
        .unwrap();
    (shutdown, tokio::spawn(running), received)
}

fn python_attributes() -> Value {
    json!({"s": "x", "n": 2, "f": 1.5, "b": true, "none": null, "l": [1, "a"], "bytes_x": "abc"})
}

fn assert_python_attributes(attributes: &tomodachi_core::Attributes) {
    assert_eq!(attributes.get("s"), Some(&"x".into()));
    assert_eq!(attributes.get("n"), Some(&2_i64.into()));
    assert_eq!(
        attributes.get("f"),
        Some(&AttributeValue::Number(
            serde_json::Number::from_f64(1.5).unwrap()
        ))
    );
    assert_eq!(
        attributes.get("b"),
        Some(&AttributeValue::Json(json!(true)))
    );
    assert_eq!(
        attributes.get("none"),
        Some(&AttributeValue::Json(Value::Null))
    );
    assert_eq!(
        attributes.get("l"),
        Some(&AttributeValue::Json(json!([1, "a"])))
    );
    assert_eq!(
        attributes.get("bytes_x"),
        Some(&AttributeValue::Binary(bytes::Bytes::from_static(b"abc")))
    );
}

#[tokio::test]
async fn python_publish_reaches_a_rust_handler() {
    let clients = clients().await;
    let topic = unique("py2rs");
    let (shutdown, running, mut received) = start_rust(
        &clients,
        Subscription::topic(&topic).queue(unique("py2rs-q")),
    )
    .await;
    let data = json!({"hello": "wörld", "n": [1, 2.5, null]});
    let message_id = python_publish("publish", &topic, &data, &python_attributes()).await;
    let (context, sender, got) = within(30, "the Python message", received.recv())
        .await
        .unwrap();
    assert_eq!(got, data);
    assert_eq!(sender, "python-publisher");
    assert_eq!(context.topic, topic);
    assert_eq!(context.sns_message_id, message_id);
    assert_python_attributes(&context.message_attributes);
    shutdown.trigger();
    within(30, "drain", running).await.unwrap().unwrap();
}

#[tokio::test]
async fn rust_publish_reaches_a_python_handler() {
    let clients = clients().await;
    let topic = unique("rs2py");
    let queue = unique("rs2py-q");
    let service = PythonService::start(&[("PY_TOPIC", &topic), ("PY_QUEUE", &queue)]).await;
    let mut service = service;
    let data = json!({"hello": "wörld", "n": [1, 2.5, null]});
    SnsPublisher::new(clients.clone(), options(), identity("rust-publisher"))
        .publish_with(
            &data,
            &topic,
            PublishOptions::new()
                .attribute("s", "x")
                .attribute("n", 2_i64)
                .attribute("b", true)
                .attribute("l", AttributeValue::Json(json!([1, "a"])))
                .attribute("bytes", bytes::Bytes::from_static(b"abc")),
        )
        .await
        .unwrap();
    let line = service.next_json().await;
    assert_eq!(line["data"], data);
    assert_eq!(line["topic"], json!(topic));
    assert_eq!(line["sender"], json!("rust-publisher"));
    assert_eq!(
        line["attributes"],
        json!({"s": "x", "n": 2, "b": true, "l": [1, "a"], "bytes": {"bytes": "616263"}})
    );
    service.wait().await;
}

#[tokio::test]
async fn python_sqs_send_message_reaches_a_rust_handler() {
    let clients = clients().await;
    let queue = unique("pysend-q");
    let (shutdown, running, mut received) =
        start_rust(&clients, Subscription::new().queue(&queue)).await;
    let data = json!({"queue": "message"});
    let message_id = python_publish("send", &queue, &data, &python_attributes()).await;
    let (context, sender, got) = within(30, "the Python message", received.recv())
        .await
        .unwrap();
    assert_eq!(got, data);
    assert_eq!(sender, "python-publisher");
    assert_eq!(context.topic, "");
    assert_eq!(context.sns_message_id, "");
    assert_eq!(context.sqs_message_id, message_id);
    assert_eq!(context.message_type.as_deref(), Some("Message"));
    assert_python_attributes(&context.message_attributes);
    shutdown.trigger();
    within(30, "drain", running).await.unwrap().unwrap();
}

#[tokio::test]
async fn rust_sqs_sender_reaches_a_python_handler() {
    let clients = clients().await;
    let queue = unique("rssend-q");
    let mut service = PythonService::start(&[("PY_QUEUE", &queue)]).await;
    let data = json!({"queue": "message", "list": [1, "two"]});
    SqsSender::new(clients.clone(), options(), identity("rust-sender"))
        .send_with(
            &data,
            &queue,
            SendOptions::new().attribute("s", "x").attribute("n", 2_i64),
        )
        .await
        .unwrap();
    let line = service.next_json().await;
    assert_eq!(line["data"], data);
    assert_eq!(line["topic"], json!(""));
    assert_eq!(line["sender"], json!("rust-sender"));
    assert_eq!(line["attributes"], json!({"s": "x", "n": 2}));
    service.wait().await;
}

/// Queue attributes and subscription attributes that tomodachi's setup writes, with the
/// queue's own names replaced so two queues can be compared.
async fn snapshot(
    clients: &AwsClients,
    topic_arn: &str,
    queue: &str,
    dlq: &str,
) -> HashMap<String, String> {
    let url = queue_url(clients, queue).await;
    let attributes = queue_attributes(clients, &url).await;
    let dlq_url = queue_url(clients, dlq).await;
    let dlq_attributes = queue_attributes(clients, &dlq_url).await;
    let queue_arn = attributes["QueueArn"].clone();
    let normalise = |text: &str| text.replace(dlq, "<dlq>").replace(queue, "<queue>");
    let mut snapshot = HashMap::new();
    let mut policy: Value = serde_json::from_str(&attributes["Policy"]).unwrap();
    let sid = policy["Statement"][0]["Sid"].as_str().unwrap().to_owned();
    assert_eq!(sid.len(), 36 + 13, "uuid4 + milliseconds: {sid}");
    policy["Statement"][0]["Sid"] = json!("<sid>");
    snapshot.insert(
        "Policy (as sent)".into(),
        normalise(&attributes["Policy"].replace(&sid, "<sid>")),
    );
    snapshot.insert("Policy".into(), normalise(&policy.to_string()));
    for name in [
        "RedrivePolicy",
        "VisibilityTimeout",
        "MessageRetentionPeriod",
    ] {
        snapshot.insert(
            name.into(),
            normalise(attributes.get(name).map(String::as_str).unwrap_or("-")),
        );
    }
    snapshot.insert(
        "DLQ MessageRetentionPeriod".into(),
        dlq_attributes["MessageRetentionPeriod"].clone(),
    );
    let subscriptions = clients
        .sns()
        .list_subscriptions_by_topic()
        .topic_arn(topic_arn)
        .send()
        .await
        .unwrap();
    let subscription = subscriptions
        .subscriptions()
        .iter()
        .find(|subscription| subscription.endpoint() == Some(queue_arn.as_str()))
        .expect("the queue is subscribed");
    assert_eq!(subscription.protocol(), Some("sqs"));
    let attributes = clients
        .sns()
        .get_subscription_attributes()
        .subscription_arn(subscription.subscription_arn().unwrap())
        .send()
        .await
        .unwrap()
        .attributes()
        .cloned()
        .unwrap_or_default();
    for name in ["FilterPolicy", "RawMessageDelivery"] {
        snapshot.insert(
            format!("subscription {name}"),
            attributes.get(name).cloned().unwrap_or_else(|| "-".into()),
        );
    }
    snapshot
}

#[tokio::test]
async fn rust_and_python_set_up_identical_queues_and_subscriptions() {
    let clients = clients().await;
    let topic = unique("same");
    let (py_queue, py_dlq) = (unique("same-py"), unique("same-py-dlq"));
    let (rs_queue, rs_dlq) = (unique("same-rs"), unique("same-rs-dlq"));
    let filter = r#"{"event": ["created", "paid"], "amount": [{"numeric": [">", 5]}]}"#;
    PythonService::start(&[
        ("PY_TOPIC", &topic),
        ("PY_QUEUE", &py_queue),
        ("PY_FILTER", filter),
        ("PY_VISIBILITY", "7"),
        ("PY_DLQ", &py_dlq),
        ("PY_MAX_RECEIVE", "3"),
        ("PY_SETUP_ONLY", "1"),
    ])
    .await
    .wait()
    .await;
    let subscription = |queue: &str, dlq: &str| {
        Subscription::topic(&topic)
            .queue(queue)
            .filter_policy_json(filter)
            .visibility_timeout(7)
            .dead_letter(dlq, 3)
    };
    let rust = SqsConsumer::new(
        clients.clone(),
        options(),
        subscription(&rs_queue, &rs_dlq),
        identity("rust"),
    );
    rust.setup().await.unwrap();
    let topic_arn = format!("arn:aws:sns:{REGION}:123456789012:{topic}");
    let python = snapshot(&clients, &topic_arn, &py_queue, &py_dlq).await;
    let rust = snapshot(&clients, &topic_arn, &rs_queue, &rs_dlq).await;
    eprintln!("{rust:#?}");
    assert_eq!(rust, python);
    assert_eq!(rust["subscription RawMessageDelivery"], "false");
    assert_eq!(rust["DLQ MessageRetentionPeriod"], "1209600");

    // Setting Python's queue up again from Rust changes nothing: the two agree.
    let (counted, counter) = counted_clients().await;
    SqsConsumer::new(
        counted,
        options(),
        subscription(&py_queue, &py_dlq),
        identity("rust"),
    )
    .setup()
    .await
    .unwrap();
    assert_eq!(counter.get("SetQueueAttributes"), 0);
    assert_eq!(counter.get("CreateQueue"), 0);
}
