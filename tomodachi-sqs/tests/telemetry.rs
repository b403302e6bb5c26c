//! Telemetry wiring against moto: `SnsPublisher` calls the installed publish hook and sends
//! what it injects as message attributes; the consumer puts a `Delivery` with that trace
//! context into each message. (Own test binary: the hook is process-wide.)
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::convert::Infallible;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;
use tomodachi_core::telemetry::{self, Delivery, FinishPublish, Publish, PublishHook, PublishSpan};
use tomodachi_core::{JsonEnvelope, Message, Outcome, Shutdown, Source};
use tomodachi_sqs::{SnsPublisher, SqsConsumer, Subscription};

use support::*;

const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

static PUBLISHES: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[derive(Debug)]
struct Hook;

struct Finished(String);

impl FinishPublish for Finished {
    fn finish(self: Box<Self>, error: Option<&dyn fmt::Display>) {
        let state = if error.is_some() { "failed" } else { "ok" };
        PUBLISHES
            .lock()
            .unwrap()
            .push(format!("{} {state}", self.0));
    }
}

impl PublishHook for Hook {
    fn start(&self, publish: &Publish<'_>, inject: &mut dyn FnMut(&str, &str)) -> PublishSpan {
        inject("traceparent", TRACEPARENT);
        PublishSpan::new(Finished(format!(
            "{} {}",
            publish.system, publish.destination
        )))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_injects_and_consumer_delivers_the_trace_context() {
    telemetry::set_publish_hook(Hook).unwrap();
    let clients = clients().await;
    let topic = unique("otel");
    let queue = unique("otel-q");
    let subscription = Subscription::topic(&topic)
        .queue(&queue)
        .envelope(JsonEnvelope)
        .handler_name("on_traced")
        .wait_time(Duration::from_secs(1));
    let (tx, mut rx) = mpsc::unbounded_channel::<Delivery>();
    let service = tower::service_fn(move |message: Message| {
        let tx = tx.clone();
        async move {
            let delivery = message.context::<Delivery>().cloned().expect("a Delivery");
            tx.send(delivery).unwrap();
            Ok::<_, Infallible>(Outcome::Ack)
        }
    });
    let shutdown = Shutdown::new();
    let running = SqsConsumer::new(
        clients.clone(),
        options(),
        subscription,
        identity("consumer"),
    )
    .start(service, shutdown.clone())
    .await
    .unwrap();
    let running = tokio::spawn(running);

    let publisher = SnsPublisher::new(clients.clone(), options(), identity("publisher"));
    let message_id = publisher.publish(&json!({"n": 1}), &topic).await.unwrap();

    let delivery = within(30, "the delivery", rx.recv()).await.unwrap();
    assert_eq!(delivery.system, telemetry::AWS_SQS);
    assert_eq!(&*delivery.destination, queue);
    assert_eq!(delivery.routing.as_deref(), Some(topic.as_str()));
    assert_eq!(delivery.message_id.as_deref(), Some(message_id.as_str()));
    assert_eq!(&*delivery.handler, "on_traced");
    assert_eq!(delivery.carrier.traceparent.as_deref(), Some(TRACEPARENT));
    assert_eq!(
        PUBLISHES.lock().unwrap().clone(),
        [format!("aws_sns {topic} ok")]
    );

    shutdown.trigger();
    within(30, "the consumer to drain", running)
        .await
        .unwrap()
        .unwrap();
}
