//! moto's SNS+SQS as a fixture: a topic, its queue (visibility 1 s) and a dead-letter queue.

use std::time::Duration;

use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_sqs::types::QueueAttributeName;
use tomodachi::core::{DropOnFailure, ServiceIdentity, Source as _};
use tomodachi::sqs::{
    AwsClients, AwsEndpointUrlsOptions, AwsSnsSqsOptions, SnsPublisher, SqsConsumer, Subscription,
};
use tomodachi::{BoxMessageService, Shutdown};

use crate::suite::{Consume, Fixture, Queue, Running};

/// moto at `TOMODACHI_TEST_MOTO_URL` (127.0.0.1:4566).
#[derive(Debug, Default)]
pub(crate) struct Moto;

/// A topic with its queue and dead-letter queue.
#[derive(Debug)]
pub(crate) struct SqsQueue {
    clients: AwsClients,
    topic: String,
    queue: String,
    dead_letter: String,
}

fn options() -> AwsSnsSqsOptions {
    AwsSnsSqsOptions {
        region_name: Some("us-east-1".into()),
        aws_access_key_id: Some("testing".into()),
        aws_secret_access_key: Some("testing".into()),
        ..AwsSnsSqsOptions::default()
    }
}

impl Fixture for Moto {
    type Queue = SqsQueue;

    fn patience(&self) -> Duration {
        Duration::from_secs(30)
    }

    fn watch_for(&self) -> Duration {
        // Past the queue's visibility timeout (1 s) and a receive (wait time 1 s).
        Duration::from_secs(3)
    }

    async fn queue(&self) -> SqsQueue {
        let url = tomodachi_tests::moto_url();
        let address = url.trim_start_matches("http://").trim_end_matches('/');
        tomodachi_tests::expect_reachable(address, "moto").await;
        let endpoints = AwsEndpointUrlsOptions {
            sns: Some(url.clone()),
            sqs: Some(url),
            sts: None,
        };
        let clients = AwsClients::from_options(&options(), &endpoints)
            .await
            .expect("AWS clients for moto");
        let name = crate::unique("conformance-sqs");
        SqsQueue {
            clients,
            topic: name.clone(),
            queue: format!("{name}-q"),
            dead_letter: format!("{name}-dlq"),
        }
    }
}

impl SqsQueue {
    async fn count(&self, queue: &str) -> usize {
        let url = self
            .clients
            .sqs()
            .get_queue_url()
            .queue_name(queue)
            .send()
            .await
            .expect("the test queue exists")
            .queue_url()
            .unwrap_or_default()
            .to_owned();
        let attributes = self
            .clients
            .sqs()
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .expect("queue attributes");
        let attributes = attributes.attributes().cloned().unwrap_or_default();
        [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            QueueAttributeName::ApproximateNumberOfMessagesDelayed,
        ]
        .iter()
        .filter_map(|name| attributes.get(name)?.parse::<usize>().ok())
        .sum()
    }
}

impl Queue for SqsQueue {
    async fn consume(&self, service: BoxMessageService, consume: Consume) -> Running {
        let mut subscription = Subscription::topic(&self.topic)
            .queue(&self.queue)
            .visibility_timeout(1)
            .dead_letter(&self.dead_letter, 10)
            .wait_time(Duration::from_secs(1));
        if consume.drop_on_failure {
            subscription = subscription.on_failure(DropOnFailure);
        }
        let consumer = SqsConsumer::new(
            self.clients.clone(),
            options(),
            subscription,
            ServiceIdentity::with_random_uuid("conformance"),
        );
        let shutdown = Shutdown::new();
        let work = consumer
            .start(service, shutdown.clone())
            .await
            .expect("the SQS consumer sets up its topic and queues");
        Running {
            shutdown,
            task: tokio::spawn(async move { work.await.map_err(Into::into) }),
        }
    }

    async fn send(&self, body: &str, attributes: &[(&str, &str)]) {
        let publisher = SnsPublisher::new(
            self.clients.clone(),
            options(),
            ServiceIdentity::with_random_uuid("conformance"),
        );
        let topic_arn = publisher
            .topic_arn(&self.topic, false)
            .await
            .expect("the test topic exists");
        let mut publish = self
            .clients
            .sns()
            .publish()
            .topic_arn(topic_arn)
            .message(body);
        for (name, value) in attributes {
            publish = publish.message_attributes(
                *name,
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(*value)
                    .build()
                    .expect("a string attribute"),
            );
        }
        publish.send().await.expect("publish to moto");
    }

    async fn left(&self) -> usize {
        self.count(&self.queue).await
    }

    async fn dead_lettered(&self) -> Option<usize> {
        Some(self.count(&self.dead_letter).await)
    }
}
