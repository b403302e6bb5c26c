//! Publishing from any handler. `POST /orders` publishes its JSON body on the SNS topic
//! `order-created` and answers with the SNS message id; every second a schedule publishes
//! a heartbeat on the AMQP routing key `example.heartbeat`. The publishers are the
//! service's own: its options, name, uuid, envelope, AWS clients and AMQP connection.
//!
//! ```text
//! cargo run -p tomodachi-examples --example publish --features amqp,sqs    # with TOMODACHI_AWS_* and TOMODACHI_AMQP_* as needed
//! curl -i -X POST localhost:9700/orders -d '{"order": 7}'
//! ```

use serde_json::{Value, json};
use tomodachi::amqp::{self, AmqpPublisher};
use tomodachi::http::HttpRouter;
use tomodachi::http::axum::http::StatusCode;
use tomodachi::http::axum::routing::post;
use tomodachi::http::axum::{Extension, Json};
use tomodachi::sqs::SnsPublisher;
use tomodachi::{JsonEnvelope, Schedule, Service};

/// An HTTP handler takes a publisher as an axum `Extension`.
async fn create_order(
    Extension(sns): Extension<SnsPublisher>,
    Json(order): Json<Value>,
) -> Result<String, StatusCode> {
    let message_id = sns
        .publish(&order, "order-created")
        .await
        .map_err(|error| {
            tracing::warn!(%error, "order not published");
            StatusCode::BAD_GATEWAY
        })?;
    Ok(message_id)
}

/// A scheduled handler (like a message handler) takes it as an argument.
async fn heartbeat(amqp: AmqpPublisher) -> Result<(), amqp::Error> {
    amqp.publish(&json!({"status": "alive"}), "example.heartbeat")
        .await
}

#[tokio::main]
async fn main() -> tomodachi::Exit {
    Service::new("publish-example")
        .envelope(JsonEnvelope)
        .http(HttpRouter::new().route("/orders", post(create_order)))
        .schedule(Schedule::heartbeat(), heartbeat)
        .run()
        .await
}
