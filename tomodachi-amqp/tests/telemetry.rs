//! Telemetry wiring against the real broker: the publisher calls the installed publish hook
//! and sends what it injects as headers; the consumer puts a `Delivery` with that trace
//! context into each message. (Own test binary: the hook is process-wide.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::convert::Infallible;
use std::fmt;
use std::sync::Mutex;

use serde_json::json;
use support::*;
use tokio::sync::mpsc;
use tomodachi_amqp::{AmqpPublisher, Binding, Consumer};
use tomodachi_core::telemetry::{self, Delivery, FinishPublish, Publish, PublishHook, PublishSpan};
use tomodachi_core::{JsonEnvelope, Message, Outcome, Shutdown, Source};

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
        inject("tracestate", "k=v");
        PublishSpan::new(Finished(format!(
            "{} {} {}",
            publish.system,
            publish.exchange.unwrap_or_default(),
            publish.destination
        )))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_injects_and_consumer_delivers_the_trace_context() {
    logs();
    telemetry::set_publish_hook(Hook).unwrap();
    let exchange = unique("otel");
    let binding = Binding::routing_key("traced.event")
        .exchange(&exchange)
        .envelope(JsonEnvelope)
        .handler_name("on_traced");
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
    let running = within(
        15,
        "consumer setup",
        Consumer::new(options(), binding, identity("consumer")).start(service, shutdown.clone()),
    )
    .await
    .unwrap();
    let task = tokio::spawn(running);

    let publisher = AmqpPublisher::new(options(), identity("sender")).exchange(&exchange);
    publisher
        .publish(&json!({"n": 1}), "traced.event")
        .await
        .unwrap();

    let delivery = within(10, "delivery", rx.recv()).await.unwrap();
    assert_eq!(delivery.system, telemetry::RABBITMQ);
    assert_eq!(&*delivery.destination, exchange);
    assert_eq!(delivery.routing.as_deref(), Some("traced.event"));
    assert_eq!(&*delivery.handler, "on_traced");
    assert_eq!(delivery.carrier.traceparent.as_deref(), Some(TRACEPARENT));
    assert_eq!(delivery.carrier.tracestate.as_deref(), Some("k=v"));
    assert_eq!(
        PUBLISHES.lock().unwrap().clone(),
        [format!("rabbitmq {exchange} traced.event ok")]
    );

    shutdown.trigger();
    within(15, "consumer drain", task).await.unwrap().unwrap();
    publisher.close().await;
    delete_exchange(&exchange).await;
}
