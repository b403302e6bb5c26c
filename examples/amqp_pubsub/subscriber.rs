//! The subscribing half of an AMQP pub/sub pair: logs every message `amqp_publisher`
//! sends on `example.pubsub.new-message`, with the sender's service name from the envelope.
//!
//! ```text
//! cargo run -p tomodachi-examples --example amqp_subscriber --features amqp
//! ```
//!
//! Its queue is tomodachi's competing queue for that routing key, so several subscribers
//! (Rust or Python tomodachi with `@amqp("example.pubsub.new-message")`) share the work.
//! `TOMODACHI_AMQP_*` variables choose the broker.

use serde::Deserialize;
use tomodachi::amqp::{Binding, Redelivered};
use tomodachi::{Data, JsonEnvelope, Metadata, Service};

/// The message `amqp_publisher` sends.
#[derive(Debug, Deserialize)]
struct NewMessage {
    id: String,
    n: u64,
}

async fn new_message(
    Metadata(metadata): Metadata,
    Redelivered(redelivered): Redelivered,
    Data(message): Data<NewMessage>,
) {
    tracing::info!(
        id = %message.id,
        n = message.n,
        sender = %metadata.service_name,
        topic = %metadata.topic,
        redelivered,
        "received"
    );
}

#[tokio::main]
async fn main() -> tomodachi::Exit {
    Service::new("amqp-pubsub-subscriber")
        .envelope(JsonEnvelope)
        .amqp(
            Binding::routing_key("example.pubsub.new-message"),
            new_message,
        )
        .on_started(|_| async {
            tracing::info!("subscribing to messages on routing key 'example.pubsub.new-message'");
        })
        .run()
        .await
}
