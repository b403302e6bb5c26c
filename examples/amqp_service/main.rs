//! tomodachi's "amqp-example": every message on routing key `example.topic` (exchange
//! `amq.topic`) is published again, data unchanged, on `example.response`. Messages are
//! JSON-enveloped both ways (tomodachi's `JsonBase`), so Python tomodachi services can be
//! on either side.
//!
//! ```text
//! cargo run --example amqp_service
//! ```
//!
//! The broker is `amqp://guest:guest@127.0.0.1:5672/` unless the `TOMODACHI_AMQP_*`
//! variables say otherwise (`TOMODACHI_AMQP_HOST`, `_PORT`, `_LOGIN`, `_PASSWORD`,
//! `_VIRTUALHOST`, `_SSL`, `_QOS_QUEUE_PREFETCH_COUNT`, ...). SIGINT/SIGTERM stop it
//! gracefully: handlers in flight finish, their messages are acked, exit code 0.
//!
//! A handler that fails (here: the broker refuses or does not confirm the publish) has its
//! message requeued and delivered again; it is never acked without being forwarded.

use serde_json::value::RawValue;
use tomodachi::amqp::{self, AmqpPublisher, Binding, RoutingKey};
use tomodachi::{Data, JsonEnvelope, MessageUuid, Service};

/// Forwards the received data to `example.response`; returns once the broker confirmed.
///
/// `RawValue` keeps the data as it came, byte for byte (`Data<serde_json::Value>` would
/// parse it and sort its keys); the publisher seals it in a new envelope from this service.
async fn example_func(
    RoutingKey(routing_key): RoutingKey,
    MessageUuid(message_uuid): MessageUuid,
    publisher: AmqpPublisher,
    Data(data): Data<Box<RawValue>>,
) -> Result<(), amqp::Error> {
    tracing::info!(%routing_key, %message_uuid, data = data.get(), "received, forwarding to example.response");
    publisher.publish(&data, "example.response").await
}

#[tokio::main]
async fn main() -> tomodachi::Exit {
    Service::new("amqp-example")
        .envelope(JsonEnvelope)
        .amqp(Binding::routing_key("example.topic"), example_func)
        .run()
        .await
}
