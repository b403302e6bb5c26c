//! tomodachi's "aws-example": the data of each message on topic `example-topic` (queue
//! `example-queue`) is published again, byte for byte, on `another-example-topic`. The AWS
//! options come from `TOMODACHI_AWS_*` (for moto: `TOMODACHI_AWS_ENDPOINT_URLS_SNS` and
//! `_SQS=http://127.0.0.1:4566`, a region and keys), else from the AWS default chain.

use serde_json::value::RawValue;
use tomodachi::sqs::{Error, SnsPublisher, Subscription};
use tomodachi::{Data, JsonEnvelope, Service};

/// A failed publish is an error: the message is kept and retried.
async fn republish(sns: SnsPublisher, Data(data): Data<Box<RawValue>>) -> Result<(), Error> {
    sns.publish(&data, "another-example-topic").await.map(drop)
}

#[tokio::main]
async fn main() -> tomodachi::Exit {
    let subscription = Subscription::topic("example-topic").queue("example-queue");
    Service::new("aws-example")
        .envelope(JsonEnvelope)
        .sqs(subscription, republish)
        .run()
        .await
}
