//! RabbitMQ as a fixture: a queue bound to `amq.topic` by a unique routing key.

use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use tomodachi::amqp::{AmqpOptions, Binding, Consumer};
use tomodachi::core::{DropOnFailure, ServiceIdentity, Source as _};
use tomodachi::{BoxMessageService, Shutdown};

use crate::suite::{Consume, Fixture, Queue, Running};

/// The broker at `TOMODACHI_TEST_AMQP_URL` (127.0.0.1:5672).
#[derive(Debug, Default)]
pub(crate) struct RabbitMq;

/// A queue of the test, and a channel to publish and count with.
pub(crate) struct AmqpQueue {
    routing_key: String,
    queue_name: String,
    _connection: Connection,
    channel: Channel,
}

impl std::fmt::Debug for AmqpQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpQueue")
            .field("queue_name", &self.queue_name)
            .finish_non_exhaustive()
    }
}

fn options() -> AmqpOptions {
    AmqpOptions {
        // The test's queues expire two minutes after their last consumer.
        queue_ttl: 120,
        ..AmqpOptions::default()
    }
}

impl Fixture for RabbitMq {
    type Queue = AmqpQueue;

    fn patience(&self) -> Duration {
        Duration::from_secs(20)
    }

    fn watch_for(&self) -> Duration {
        Duration::from_secs(1)
    }

    async fn queue(&self) -> AmqpQueue {
        let url = tomodachi_tests::amqp_url();
        tomodachi_tests::expect_reachable("127.0.0.1:5672", "RabbitMQ").await;
        let connection = Connection::connect(&url, ConnectionProperties::default())
            .await
            .unwrap_or_else(|error| panic!("RabbitMQ at {url} refused the test: {error}"));
        let channel = connection.create_channel().await.expect("a channel");
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("publisher confirms");
        let name = crate::unique("conformance-amqp");
        AmqpQueue {
            routing_key: name.clone(),
            queue_name: name,
            _connection: connection,
            channel,
        }
    }
}

impl Queue for AmqpQueue {
    async fn consume(&self, service: BoxMessageService, consume: Consume) -> Running {
        let mut binding = Binding::routing_key(&self.routing_key).queue_name(&self.queue_name);
        if consume.drop_on_failure {
            binding = binding.on_failure(DropOnFailure);
        }
        let consumer = Consumer::new(
            options(),
            binding,
            ServiceIdentity::with_random_uuid("conformance"),
        );
        let shutdown = Shutdown::new();
        let work = consumer
            .start(service, shutdown.clone())
            .await
            .expect("the AMQP consumer starts");
        Running {
            shutdown,
            task: tokio::spawn(async move { work.await.map_err(Into::into) }),
        }
    }

    async fn send(&self, body: &str, attributes: &[(&str, &str)]) {
        let mut headers = FieldTable::default();
        for (name, value) in attributes {
            headers.insert(
                ShortString::from(*name),
                AMQPValue::LongString(LongString::from(*value)),
            );
        }
        self.channel
            .basic_publish(
                "amq.topic".into(),
                self.routing_key.as_str().into(),
                BasicPublishOptions::default(),
                body.as_bytes(),
                BasicProperties::default().with_headers(headers),
            )
            .await
            .expect("publish")
            .await
            .expect("the broker confirms the publish");
    }

    async fn left(&self) -> usize {
        // Unacknowledged deliveries go back to the queue when the consumer's channel
        // closes: wait until the queue has no consumer, then count.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let declared = self
                .channel
                .queue_declare(
                    self.queue_name.as_str().into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                .expect("the test queue exists");
            if declared.consumer_count() == 0 || tokio::time::Instant::now() > deadline {
                return declared.message_count() as usize;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn dead_lettered(&self) -> Option<usize> {
        // No dead-letter exchange: a rejected message is dropped by the broker.
        None
    }
}
