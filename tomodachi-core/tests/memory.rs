//! The in-memory transport through its source: competing consumers, publishing from a
//! handler, dead-lettering after the receive limit, the `Extension` layer.
#![cfg(feature = "test-util")]
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::{Arc, Mutex};

use tomodachi_core::memory::{Broker, MemoryContext, MemoryPublisher, MemorySource};
use tomodachi_core::{
    Data, EnvelopeLayer, Extension, Handler, HandlerWithoutStateExt as _, JsonEnvelope, Raw,
    ServiceIdentity, Shutdown, Source as _, State,
};
use tower::Layer as _;

type Seen = Arc<Mutex<Vec<(String, String)>>>;

async fn record(State((name, seen)): State<(&'static str, Seen)>, Raw(body): Raw) {
    let body = String::from_utf8_lossy(&body).into_owned();
    seen.lock().unwrap().push((name.to_owned(), body));
    tokio::task::yield_now().await;
}

#[tokio::test]
async fn competing_consumers_share_a_queue_and_each_message_is_handled_once() {
    let broker = Broker::new();
    let queue = broker.queue("work");
    let seen = Seen::default();
    let shutdown = Shutdown::new();
    let mut running = Vec::new();
    for name in ["a", "b"] {
        let service = record.with_state((name, seen.clone()));
        let source = MemorySource::new(&queue).handler_name(name);
        running.push(tokio::spawn(source.serve(service, shutdown.clone())));
    }
    for n in 0..20 {
        queue.send(n.to_string());
    }
    queue.settled(20).await;
    shutdown.trigger();
    for running in running {
        running.await.unwrap().unwrap();
    }
    let seen = seen.lock().unwrap();
    let mut bodies: Vec<u32> = seen.iter().map(|(_, body)| body.parse().unwrap()).collect();
    bodies.sort_unstable();
    assert_eq!(bodies, (0..20).collect::<Vec<_>>(), "each message once");
    assert!(queue.is_empty());
}

async fn forward(State(publisher): State<MemoryPublisher>, Data(order): Data<u64>) {
    publisher.publish(&(order * 10), "order-shipped").unwrap();
}

#[tokio::test]
async fn a_handler_publishes_to_subscribed_queues() {
    let broker = Broker::new();
    let (paid, shipped) = (broker.queue("paid"), broker.queue("shipped"));
    broker.subscribe("order-paid", &paid);
    broker.subscribe("order-shipped", &shipped);
    let publisher = MemoryPublisher::new(&broker, ServiceIdentity::new("orders", "o1"));
    publisher.publish(&7, "order-paid").unwrap();

    let service = EnvelopeLayer::new(JsonEnvelope).layer(forward.with_state(publisher));
    let shutdown = Shutdown::new();
    let running = tokio::spawn(MemorySource::new(&paid).serve(service, shutdown.clone()));
    paid.settled(1).await;
    shutdown.trigger();
    running.await.unwrap().unwrap();

    let delivery = shipped.try_receive().unwrap();
    let body = String::from_utf8(delivery.message().body().to_vec()).unwrap();
    assert!(body.contains(r#""data": 70"#), "{body}");
    assert!(body.contains(r#""topic": "order-shipped""#), "{body}");
}

async fn always_fails(context: MemoryContext) -> Result<(), std::io::Error> {
    Err(std::io::Error::other(format!(
        "receive {}",
        context.receive_count
    )))
}

#[tokio::test]
async fn a_message_that_keeps_failing_is_dead_lettered_after_the_receive_limit() {
    let broker = Broker::new();
    let dead = broker.queue("dead");
    let queue = broker.queue("work").dead_letter(&dead, 3);
    queue.send("poison");
    let shutdown = Shutdown::new();
    let running = tokio::spawn(
        MemorySource::new(&queue).serve(always_fails.into_service(), shutdown.clone()),
    );
    queue.settled(3).await;
    // The fourth receive moves it instead of delivering it.
    let delivery = dead.receive().await;
    assert_eq!(delivery.message().body().as_ref(), b"poison");
    delivery.ack();
    shutdown.trigger();
    running.await.unwrap().unwrap();
    assert!(queue.is_empty());
    assert_eq!(queue.settled_count(), 3);
}

#[derive(Clone)]
struct Tenant(&'static str);

async fn record_tenant(
    State(seen): State<Seen>,
    Extension(tenant): Extension<Tenant>,
    Raw(body): Raw,
) {
    let body = String::from_utf8_lossy(&body).into_owned();
    seen.lock().unwrap().push((tenant.0.to_owned(), body));
}

#[tokio::test]
async fn the_extension_layer_reaches_a_handler_fed_by_the_memory_source() {
    let broker = Broker::new();
    let queue = broker.queue("tenants");
    queue.send("order 1");
    let seen = Seen::default();
    let service = Extension(Tenant("acme")).layer(record_tenant.with_state(seen.clone()));
    let shutdown = Shutdown::new();
    let running = tokio::spawn(MemorySource::new(&queue).serve(service, shutdown.clone()));
    queue.settled(1).await;
    shutdown.trigger();
    running.await.unwrap().unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [("acme".to_owned(), "order 1".to_owned())]
    );
    assert!(queue.is_empty());
}
