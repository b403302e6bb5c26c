//! tomodachi's "amqp-example": each message's data on `example.topic` is published again, byte
//! for byte, on `example.response`; if the broker refuses, the message is requeued, not lost.

use serde_json::value::RawValue;
use tomodachi::amqp::{self, AmqpPublisher, Binding, RoutingKey};
use tomodachi::{Data, JsonEnvelope, MessageUuid, Service};

async fn forward(
    RoutingKey(routing_key): RoutingKey,
    MessageUuid(message_uuid): MessageUuid,
    amqp: AmqpPublisher,
    Data(data): Data<Box<RawValue>>,
) -> Result<(), amqp::Error> {
    tracing::info!(%routing_key, %message_uuid, "received, forwarding to example.response");
    amqp.publish(&data, "example.response").await
}

#[tokio::main]
async fn main() -> tomodachi::Exit {
    Service::new("amqp-example")
        .envelope(JsonEnvelope)
        .amqp(Binding::routing_key("example.topic"), forward)
        .run()
        .await
}
