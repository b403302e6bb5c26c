//! Publishing to SNS topics (Python tomodachi's `aws_sns_sqs_publish`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tomodachi_core::{
    AttributeValue, JsonEnvelope, ServiceIdentity, SharedEnvelope, telemetry, to_python_json,
};

use crate::attributes::to_sns;
use crate::outgoing::{deduplication_id, message_id};
use crate::setup::{create_topic, lookup_topic};
use crate::{AwsClients, AwsSnsSqsOptions, Error};

const LOG: &str = "tomodachi.awssnssqs";

/// What to do when a topic does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TopicMode {
    /// Look the topic up, create it if it is missing (tomodachi's behaviour).
    #[default]
    CreateIfMissing,
    /// Only look it up: publishing to a missing topic fails.
    LookupOnly,
}

/// Options of one publish: message attributes and FIFO ids.
///
/// ```
/// use tomodachi_sqs::PublishOptions;
///
/// let options = PublishOptions::new()
///     .attribute("event", "order.paid")
///     .attribute("amount", 42_i64)
///     .group_id("customer-7");
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Default)]
pub struct PublishOptions {
    pub(crate) attributes: Vec<(String, AttributeValue)>,
    pub(crate) group_id: Option<String>,
    pub(crate) deduplication_id: Option<String>,
}

impl PublishOptions {
    /// No attributes, not FIFO.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a message attribute (encoded as tomodachi encodes it: strings as `String`,
    /// numbers as `Number`, booleans, null and lists as `String.Array` JSON, bytes as
    /// `Binary`).
    #[must_use]
    pub fn attribute(mut self, name: impl Into<String>, value: impl Into<AttributeValue>) -> Self {
        self.attributes.push((name.into(), value.into()));
        self
    }

    /// FIFO: the message group (the topic's name gets `.fifo`).
    #[must_use]
    pub fn group_id(mut self, group_id: impl Into<String>) -> Self {
        self.group_id = Some(group_id.into());
        self
    }

    /// FIFO: the deduplication id (default: a new uuid4 per message).
    #[must_use]
    pub fn deduplication_id(mut self, deduplication_id: impl Into<String>) -> Self {
        self.deduplication_id = Some(deduplication_id.into());
        self
    }
}

/// Publishes data to SNS topics, sealed with the service's envelope (JSON by default).
///
/// The topic's ARN is looked up once per topic and cached.
///
/// ```no_run
/// # async fn demo(clients: tomodachi_sqs::AwsClients) -> Result<(), tomodachi_sqs::Error> {
/// use tomodachi_core::ServiceIdentity;
/// use tomodachi_sqs::{AwsSnsSqsOptions, SnsPublisher};
///
/// let publisher = SnsPublisher::new(clients, AwsSnsSqsOptions::default(), ServiceIdentity::with_random_uuid("orders"));
/// let message_id = publisher.publish(&serde_json::json!({"order": 7}), "order-paid").await?;
/// # let _ = message_id;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SnsPublisher {
    clients: AwsClients,
    options: Arc<AwsSnsSqsOptions>,
    identity: ServiceIdentity,
    envelope: SharedEnvelope,
    mode: TopicMode,
    topics: Arc<Mutex<HashMap<(String, bool), String>>>,
}

impl SnsPublisher {
    /// A publisher for the service `identity`, with the JSON envelope.
    pub fn new(clients: AwsClients, options: AwsSnsSqsOptions, identity: ServiceIdentity) -> Self {
        Self {
            clients,
            options: Arc::new(options),
            identity,
            envelope: Arc::new(JsonEnvelope),
            mode: TopicMode::default(),
            topics: Arc::default(),
        }
    }

    /// Seals messages with this envelope instead (`RawEnvelope` for none).
    #[must_use]
    pub fn envelope(mut self, envelope: impl tomodachi_core::Envelope) -> Self {
        self.envelope = tomodachi_core::envelope::shared(envelope);
        self
    }

    /// Whether missing topics are created.
    #[must_use]
    pub fn topic_mode(mut self, mode: TopicMode) -> Self {
        self.mode = mode;
        self
    }

    /// Publishes `data` to `topic`; returns the SNS message id.
    pub async fn publish<T: Serialize + ?Sized>(
        &self,
        data: &T,
        topic: &str,
    ) -> Result<String, Error> {
        self.publish_with(data, topic, PublishOptions::default())
            .await
    }

    /// Publishes `data` to `topic` with attributes or FIFO ids.
    pub async fn publish_with<T: Serialize + ?Sized>(
        &self,
        data: &T,
        topic: &str,
        mut options: PublishOptions,
    ) -> Result<String, Error> {
        // Telemetry: a PRODUCER span and `traceparent` as a message attribute when a hook
        // is installed; otherwise nothing is added.
        let span =
            crate::attributes::start_publish(telemetry::AWS_SNS, topic, &mut options.attributes);
        let result = self.publish_sealed(data, topic, options).await;
        span.finish(result.as_ref().err().map(|e| e as &dyn std::fmt::Display));
        result
    }

    async fn publish_sealed<T: Serialize + ?Sized>(
        &self,
        data: &T,
        topic: &str,
        options: PublishOptions,
    ) -> Result<String, Error> {
        let data = to_python_json(data)?;
        let payload = self.envelope.seal(&self.identity, topic, &data)?;
        let fifo = options.group_id.is_some();
        let topic_arn = self.topic_arn(topic, fifo).await?;

        let attributes: HashMap<String, aws_sdk_sns::types::MessageAttributeValue> = options
            .attributes
            .iter()
            .map(|(name, value)| (name.clone(), to_sns(value)))
            .collect();
        let deduplication_id =
            deduplication_id(options.group_id.as_ref(), options.deduplication_id.as_ref());
        let sent = message_id(
            "Publish",
            || {
                self.clients
                    .sns()
                    .publish()
                    .topic_arn(&topic_arn)
                    .message(&payload)
                    .set_message_attributes(Some(attributes.clone()))
                    .set_message_group_id(options.group_id.clone())
                    .set_message_deduplication_id(deduplication_id.clone())
                    .send()
            },
            |output| output.message_id(),
        )
        .await;
        if let Err(error) = &sent {
            tracing::warn!(target: LOG, topic, "Unable to publish message [sns] on AWS ({})", error.short());
        }
        sent
    }

    /// The topic's ARN: cached, else looked up, else created (in
    /// [`TopicMode::CreateIfMissing`]).
    pub async fn topic_arn(&self, topic: &str, fifo: bool) -> Result<String, Error> {
        let key = (topic.to_owned(), fifo);
        if let Some(arn) = self.cached(&key) {
            return Ok(arn);
        }
        let arn = match lookup_topic(&self.clients, &self.options, topic, fifo).await? {
            Some(arn) => arn,
            None if self.mode == TopicMode::CreateIfMissing => {
                create_topic(&self.clients, &self.options, topic, fifo, false).await?
            }
            None => {
                return Err(Error::TopicDoesNotExist {
                    topic: topic.to_owned(),
                });
            }
        };
        if let Ok(mut topics) = self.topics.lock() {
            topics.insert(key, arn.clone());
        }
        Ok(arn)
    }

    fn cached(&self, key: &(String, bool)) -> Option<String> {
        self.topics
            .lock()
            .ok()
            .and_then(|topics| topics.get(key).cloned())
    }
}
