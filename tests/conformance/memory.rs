//! The in-memory transport as a fixture, and a deliberately broken variant of it.

use std::time::Duration;

use tomodachi::core::{DropOnFailure, RetryOnFailure, Source as _};
use tomodachi::memory::{Broker, MemorySource};
use tomodachi::{AttributeValue, Attributes, BoxMessageService, Shutdown};

use crate::suite::{Consume, Fixture, Queue, Running};

/// Queues of one in-memory broker, each with a dead-letter queue.
#[derive(Debug, Default)]
pub(crate) struct Memory {
    broker: Broker,
    /// Acks failed messages whatever the rule asks (a broken source).
    pub(crate) acks_on_error: bool,
}

impl Memory {
    /// A source that acks every failed message: it breaks the retry rules.
    pub(crate) fn acking_on_error() -> Self {
        Self {
            broker: Broker::new(),
            acks_on_error: true,
        }
    }
}

/// One queue and its dead-letter queue.
#[derive(Debug)]
pub(crate) struct MemoryQueue {
    queue: tomodachi::memory::Queue,
    dead_letter: tomodachi::memory::Queue,
    acks_on_error: bool,
}

impl Fixture for Memory {
    type Queue = MemoryQueue;

    fn patience(&self) -> Duration {
        Duration::from_secs(5)
    }

    fn watch_for(&self) -> Duration {
        Duration::from_millis(300)
    }

    async fn queue(&self) -> MemoryQueue {
        let name = crate::unique("memory");
        let dead_letter = self.broker.queue(&format!("{name}-dlq"));
        MemoryQueue {
            queue: self.broker.queue(&name).dead_letter(&dead_letter, 10),
            dead_letter,
            acks_on_error: self.acks_on_error,
        }
    }
}

impl Queue for MemoryQueue {
    async fn consume(&self, service: BoxMessageService, consume: Consume) -> Running {
        let source = MemorySource::new(&self.queue);
        let source = if consume.drop_on_failure || self.acks_on_error {
            source.on_failure(DropOnFailure)
        } else {
            source.on_failure(RetryOnFailure)
        };
        let shutdown = Shutdown::new();
        let work = source
            .start(service, shutdown.clone())
            .await
            .expect("the in-memory source starts");
        Running {
            shutdown,
            task: tokio::spawn(async move { work.await.map_err(Into::into) }),
        }
    }

    async fn send(&self, body: &str, attributes: &[(&str, &str)]) {
        let attributes = Attributes(
            attributes
                .iter()
                .map(|(name, value)| ((*name).to_owned(), AttributeValue::from(*value)))
                .collect(),
        );
        self.queue.send_with(body.to_owned(), attributes);
    }

    async fn left(&self) -> usize {
        self.queue.len() + self.queue.in_flight()
    }

    async fn dead_lettered(&self) -> Option<usize> {
        Some(self.dead_letter.len())
    }
}
