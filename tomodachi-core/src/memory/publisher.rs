//! Publishing to the in-memory broker, sealed like every publisher's messages.

use std::sync::Arc;

use serde::Serialize;

use super::Broker;
use crate::{Attributes, Envelope, EnvelopeError, JsonEnvelope, ServiceIdentity, SharedEnvelope};

/// Why a publish failed: the data could not be serialized or sealed.
#[derive(Debug, thiserror::Error)]
#[error("unable to publish to {topic}: {source}")]
pub struct PublishError {
    topic: String,
    #[source]
    source: EnvelopeError,
}

/// Publishes to a [`Broker`]'s topics as the service `identity`, sealing each message with
/// its envelope (the JSON envelope unless told otherwise), as `SnsPublisher` and
/// `AmqpPublisher` do. Handlers take it as state or an extension.
///
/// ```
/// use tomodachi_core::memory::{Broker, MemoryPublisher};
/// use tomodachi_core::ServiceIdentity;
///
/// let broker = Broker::new();
/// let audit = broker.queue("audit");
/// broker.subscribe("order-paid", &audit);
///
/// let publisher = MemoryPublisher::new(&broker, ServiceIdentity::new("orders", "o1"));
/// publisher.publish(&serde_json::json!({"order": 7}), "order-paid").unwrap();
/// assert!(std::str::from_utf8(&audit.bodies()[0]).unwrap().contains(r#""data": {"order": 7}"#));
/// ```
#[derive(Debug, Clone)]
pub struct MemoryPublisher {
    broker: Broker,
    identity: ServiceIdentity,
    envelope: SharedEnvelope,
}

impl MemoryPublisher {
    /// A publisher to `broker` for the service `identity`, with the JSON envelope.
    pub fn new(broker: &Broker, identity: ServiceIdentity) -> Self {
        Self {
            broker: broker.clone(),
            identity,
            envelope: Arc::new(JsonEnvelope),
        }
    }

    /// Seals messages with this envelope instead (`RawEnvelope` for none).
    #[must_use]
    pub fn envelope(mut self, envelope: impl Envelope) -> Self {
        self.envelope = crate::envelope::shared(envelope);
        self
    }

    /// Publishes `data` to `topic`; returns how many queues got it.
    pub fn publish<T: Serialize + ?Sized>(
        &self,
        data: &T,
        topic: &str,
    ) -> Result<usize, PublishError> {
        self.publish_with(data, topic, Attributes::default())
    }

    /// Publishes `data` to `topic` with message `attributes`.
    pub fn publish_with<T: Serialize + ?Sized>(
        &self,
        data: &T,
        topic: &str,
        attributes: Attributes,
    ) -> Result<usize, PublishError> {
        let sealed = crate::to_python_json(data)
            .map_err(EnvelopeError::Serialize)
            .and_then(|data| self.envelope.seal(&self.identity, topic, &data))
            .map_err(|source| PublishError {
                topic: topic.to_owned(),
                source,
            })?;
        Ok(self.broker.publish_with(topic, sealed, attributes))
    }
}
