//! Python tomodachi's README "aws-example", with tomodachi-sqs alone (no facade): the JSON
//! envelope, topic `example-topic` consumed from queue `example-queue`, every received
//! `data` republished unchanged on `another-example-topic`.
//!
//! ```sh
//! TOMODACHI_AWS_ENDPOINT_URLS_SNS=http://127.0.0.1:4566 \
//! TOMODACHI_AWS_ENDPOINT_URLS_SQS=http://127.0.0.1:4566 \
//! TOMODACHI_AWS_SNS_SQS_REGION_NAME=us-east-1 \
//! TOMODACHI_AWS_SNS_SQS_AWS_ACCESS_KEY_ID=testing \
//! TOMODACHI_AWS_SNS_SQS_AWS_SECRET_ACCESS_KEY=testing \
//! cargo run -p tomodachi-sqs --example aws_example
//! ```
#![allow(missing_docs)]

use serde_json::Value;
use tomodachi_core::{
    BoxError, Data, Handler, JsonEnvelope, ServiceIdentity, Shutdown, Source, State,
};
use tomodachi_sqs::{
    AwsClients, AwsEndpointUrlsOptions, AwsSnsSqsOptions, SnsPublisher, SqsConsumer, Subscription,
    Topic,
};

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

async fn republish(
    State(publisher): State<SnsPublisher>,
    Topic(topic): Topic,
    Data(data): Data<Value>,
) -> Result<(), tomodachi_sqs::Error> {
    tracing::info!(topic, "received, republishing on another-example-topic");
    publisher.publish(&data, "another-example-topic").await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt().init();
    let options = AwsSnsSqsOptions {
        region_name: env("TOMODACHI_AWS_SNS_SQS_REGION_NAME"),
        aws_access_key_id: env("TOMODACHI_AWS_SNS_SQS_AWS_ACCESS_KEY_ID"),
        aws_secret_access_key: env("TOMODACHI_AWS_SNS_SQS_AWS_SECRET_ACCESS_KEY"),
        ..AwsSnsSqsOptions::default()
    };
    let endpoints = AwsEndpointUrlsOptions {
        sns: env("TOMODACHI_AWS_ENDPOINT_URLS_SNS"),
        sqs: env("TOMODACHI_AWS_ENDPOINT_URLS_SQS"),
        sts: env("TOMODACHI_AWS_ENDPOINT_URLS_STS"),
    };
    let identity = ServiceIdentity::with_random_uuid("example");
    let clients = AwsClients::from_options(&options, &endpoints).await?;
    let publisher = SnsPublisher::new(clients.clone(), options.clone(), identity.clone());

    let subscription = Subscription::topic("example-topic")
        .queue("example-queue")
        .envelope(JsonEnvelope);
    let shutdown = Shutdown::new();
    shutdown.listen_for_signals()?;
    SqsConsumer::new(clients, options, subscription, identity)
        .serve(republish.with_state(publisher), shutdown)
        .await?;
    Ok(())
}
