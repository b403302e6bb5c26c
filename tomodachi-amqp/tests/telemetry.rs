//! Telemetry wiring against the real broker: a layer on the publisher injects trace
//! context, which the publisher sends as headers; the consumer puts a `Delivery` with that
//! trace context into each message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::convert::Infallible;
use std::sync::Mutex;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use serde_json::json;
use support::*;
use tokio::sync::mpsc;
use tomodachi_amqp::{AmqpPublisher, Binding, Consumer};
use tomodachi_core::telemetry::{self, Delivery, PublishRequest};
use tomodachi_core::{JsonEnvelope, Message, Outcome, Shutdown, Source};
use tower::{Layer, Service};

const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

static PUBLISHES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A stand-in for a producer-span layer: injects trace context into each publish request
/// and records where it went and how it ended.
#[derive(Debug, Clone)]
struct Trace;

impl<S> Layer<S> for Trace {
    type Service = Traced<S>;

    fn layer(&self, inner: S) -> Traced<S> {
        Traced(inner)
    }
}

#[derive(Debug, Clone)]
struct Traced<S>(S);

impl<S, R> Service<R> for Traced<S>
where
    S: Service<R>,
    S::Future: Send + 'static,
    R: PublishRequest,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut request: R) -> Self::Future {
        let publish = request.publish();
        let name = format!(
            "{} {} {}",
            publish.system,
            publish.exchange.unwrap_or_default(),
            publish.destination
        );
        request.inject("traceparent", TRACEPARENT);
        request.inject("tracestate", "k=v");
        let sent = self.0.call(request);
        Box::pin(async move {
            let result = sent.await;
            let state = if result.is_ok() { "ok" } else { "failed" };
            PUBLISHES.lock().unwrap().push(format!("{name} {state}"));
            result
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_injects_and_consumer_delivers_the_trace_context() {
    logs();
    telemetry::enable();
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

    let publisher = AmqpPublisher::new(options(), identity("sender"))
        .exchange(&exchange)
        .layer(Trace);
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
