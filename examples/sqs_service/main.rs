//! tomodachi's "aws-example" on the facade: the JSON envelope, topic `example-topic`
//! consumed from queue `example-queue`, and every received `data` republished unchanged on
//! topic `another-example-topic`.
//!
//! ```text
//! TOMODACHI_AWS_ENDPOINT_URLS_SNS=http://127.0.0.1:4566 \
//! TOMODACHI_AWS_ENDPOINT_URLS_SQS=http://127.0.0.1:4566 \
//! TOMODACHI_AWS_SNS_SQS_REGION_NAME=us-east-1 \
//! TOMODACHI_AWS_SNS_SQS_AWS_ACCESS_KEY_ID=testing \
//! TOMODACHI_AWS_SNS_SQS_AWS_SECRET_ACCESS_KEY=testing \
//! cargo run --example sqs_service
//! ```
//!
//! Without the endpoint variables it talks to AWS with the default credential chain. The
//! handler publishes with an [`SnsPublisher`] made from the same options (what
//! `aws_sns_sqs_publish(self, ...)` does in Python), with the service's name and uuid.

use serde_json::value::RawValue;
use tomodachi::sqs::{AwsClients, SnsPublisher, Subscription, Topic};
use tomodachi::{Data, JsonEnvelope, Options, Service, ServiceIdentity, State};

/// Republishes the data as it came (byte for byte) on `another-example-topic`. A failed
/// publish is an error: the message is kept and retried.
async fn republish(
    State(publisher): State<SnsPublisher>,
    Topic(topic): Topic,
    Data(data): Data<Box<RawValue>>,
) -> Result<(), tomodachi::sqs::Error> {
    tracing::info!(topic, "received, republishing on another-example-topic");
    publisher.publish(&data, "another-example-topic").await?;
    Ok(())
}

#[tokio::main]
async fn main() -> tomodachi::Exit {
    // Invalid TOMODACHI_* variables are reported (exit code 1) when the service runs.
    let options = Options::from_env().unwrap_or_default();
    let identity = ServiceIdentity::with_random_uuid("aws-example");
    let clients =
        match AwsClients::from_options(&options.aws_sns_sqs, &options.aws_endpoint_urls).await {
            Ok(clients) => clients,
            Err(error) => {
                eprintln!("aws-example: {error}");
                return tomodachi::Exit::FAILURE;
            }
        };
    let publisher = SnsPublisher::new(clients, options.aws_sns_sqs.clone(), identity.clone())
        .envelope(JsonEnvelope);
    Service::new(&*identity.name)
        .uuid(&*identity.uuid)
        .envelope(JsonEnvelope)
        .options(options)
        .state(publisher)
        .sqs(
            Subscription::topic("example-topic").queue("example-queue"),
            republish,
        )
        .run()
        .await
}
