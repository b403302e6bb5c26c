//! The publishing half of an AMQP pub/sub pair (tomodachi's `pubsub_example`, on
//! RabbitMQ): every 5 seconds, starting at once, it publishes a fresh uuid on routing key
//! `example.pubsub.new-message`. Run `amqp_subscriber` next to it to see them arrive.
//!
//! ```text
//! cargo run -p tomodachi-examples --example amqp_subscriber --features amqp   # one shell
//! cargo run -p tomodachi-examples --example amqp_publisher --features amqp    # another
//! ```
//!
//! `TOMODACHI_AMQP_*` variables choose the broker (default `127.0.0.1:5672`, guest/guest)
//! and `PUBLISH_INTERVAL` the seconds between messages. The service has no AMQP handler,
//! so it makes its own [`AmqpPublisher`] (what `amqp_publish(self, ...)` does in Python)
//! from the same options, with the service's name, uuid and envelope, and closes it when
//! the service stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tomodachi::amqp::{self, AmqpPublisher};
use tomodachi::{JsonEnvelope, Options, Schedule, Service, ServiceIdentity, State};

/// The routing key the subscriber listens to.
const ROUTING_KEY: &str = "example.pubsub.new-message";

/// What the scheduled handler needs: the publisher and a count of messages sent.
#[derive(Clone)]
struct Sender {
    publisher: AmqpPublisher,
    sent: Arc<AtomicU64>,
}

/// Publishes `{"id": <uuid>, "n": <count>}` and waits for the broker's confirm. An error
/// is logged by the scheduler; the next tick tries again.
async fn send_message_interval(State(sender): State<Sender>) -> Result<(), amqp::Error> {
    let n = sender.sent.fetch_add(1, Ordering::Relaxed) + 1;
    let data = serde_json::json!({ "id": uuid::Uuid::new_v4().to_string(), "n": n });
    tracing::info!(%data, routing_key = ROUTING_KEY, "publishing");
    sender.publisher.publish(&data, ROUTING_KEY).await
}

#[tokio::main]
async fn main() -> tomodachi::Exit {
    // Invalid TOMODACHI_* variables are reported (exit code 1) when the service runs.
    let options = Options::from_env().unwrap_or_default();
    let interval = std::env::var("PUBLISH_INTERVAL")
        .ok()
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or(5);
    let identity = ServiceIdentity::with_random_uuid("amqp-pubsub-publisher");
    let sender = Sender {
        publisher: AmqpPublisher::new(options.amqp.clone(), identity.clone())
            .envelope(JsonEnvelope),
        sent: Arc::default(),
    };
    Service::new(&*identity.name)
        .uuid(&*identity.uuid)
        .envelope(JsonEnvelope)
        .options(options)
        .state(sender)
        .schedule(
            Schedule::interval(interval).immediately(),
            send_message_interval,
        )
        .on_stop(|sender: Sender| async move {
            sender.publisher.close().await;
            tracing::info!(
                sent = sender.sent.load(Ordering::Relaxed),
                "publisher closed"
            );
        })
        .run()
        .await
}
