//! Publishing to SNS topics (Python tomodachi's `aws_sns_sqs_publish`).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use serde::Serialize;
use tomodachi_core::publish::{BoxPublishService, PublishLayers};
use tomodachi_core::telemetry::{self, Publish, PublishRequest};
use tomodachi_core::{
    AttributeValue, BoxError, FromMessageParts, JsonEnvelope, Parts, Rejection, ServiceIdentity,
    SharedEnvelope, to_python_json,
};
use tower::util::Oneshot;
use tower::{Layer, Service, ServiceExt};

use crate::attributes::{inject, to_sns};
use crate::outgoing::{deduplication_id, message_id};
use crate::setup::{create_topic, lookup_topic};
use crate::{AwsClients, AwsSnsSqsOptions, Error, LazyAwsClients};

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

/// One SNS publish: a request to a publisher's `tower::Service`.
///
/// [`SnsPublisher::publish`] builds it (data sealed, FIFO deduplication id chosen, so a
/// retry sends the same message); layers on the publisher see it, and a producer-span
/// layer adds `traceparent` to its message attributes through [`PublishRequest`].
#[derive(Debug, Clone)]
pub struct SnsPublish {
    topic: String,
    message: String,
    attributes: Vec<(String, AttributeValue)>,
    group_id: Option<String>,
    deduplication_id: Option<String>,
}

impl SnsPublish {
    /// A publish of `message` (sent as it is) to `topic`, with the attributes and FIFO ids
    /// of `options` (a FIFO message without a deduplication id gets a new uuid4).
    pub fn new(
        topic: impl Into<String>,
        message: impl Into<String>,
        options: PublishOptions,
    ) -> Self {
        let deduplication_id =
            deduplication_id(options.group_id.as_ref(), options.deduplication_id.as_ref());
        Self {
            topic: topic.into(),
            message: message.into(),
            attributes: options.attributes,
            group_id: options.group_id,
            deduplication_id,
        }
    }

    /// The topic, without its prefix.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The message, sealed.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The message attributes.
    pub fn attributes(&self) -> &[(String, AttributeValue)] {
        &self.attributes
    }

    /// The FIFO message group, if any.
    pub fn group_id(&self) -> Option<&str> {
        self.group_id.as_deref()
    }

    /// The FIFO deduplication id, if any.
    pub fn deduplication_id(&self) -> Option<&str> {
        self.deduplication_id.as_deref()
    }
}

impl PublishRequest for SnsPublish {
    fn publish(&self) -> Publish<'_> {
        Publish::new(telemetry::AWS_SNS, &self.topic)
    }

    fn inject(&mut self, key: &str, value: &str) {
        inject(&mut self.attributes, key, value);
    }
}

/// Publishes data to SNS topics, sealed with the service's envelope (JSON by default).
///
/// The topic's ARN is looked up once per topic and cached. A publish is a request
/// ([`SnsPublish`]) to a `tower::Service`: the publisher is one, and
/// [`SnsPublisher::layer`] wraps it in any tower layer (`tower::retry`, `tower::timeout`,
/// `ConcurrencyLimitLayer`, `tomodachi-otel`'s `PublishTraceLayer`) while `publish` stays
/// one line. Transient AWS errors are tried again (three tries) under the layers.
///
/// ```no_run
/// # async fn demo(clients: tomodachi_sqs::AwsClients) -> Result<(), tomodachi_sqs::Error> {
/// use std::time::Duration;
///
/// use tomodachi_core::ServiceIdentity;
/// use tomodachi_sqs::{AwsSnsSqsOptions, SnsPublisher};
/// use tower::timeout::TimeoutLayer;
///
/// let publisher = SnsPublisher::new(clients, AwsSnsSqsOptions::default(), ServiceIdentity::with_random_uuid("orders"))
///     .layer(TimeoutLayer::new(Duration::from_secs(10)));
/// let message_id = publisher.publish(&serde_json::json!({"order": 7}), "order-paid").await?;
/// # let _ = message_id;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SnsPublisher {
    inner: Arc<Inner>,
}

/// What a publisher's clones share (one `Arc`: a clone per handler call is cheap).
#[derive(Clone)]
struct Inner {
    topics: Topics,
    layers: PublishLayers<SnsPublish, String, Error>,
    service: BoxPublishService<SnsPublish, String, Error>,
    identity: ServiceIdentity,
    envelope: SharedEnvelope,
}

impl fmt::Debug for SnsPublisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnsPublisher")
            .field("clients", &self.inner.topics.clients)
            .field("identity", &self.inner.identity)
            .field("envelope", &self.inner.envelope)
            .field("mode", &self.inner.topics.mode)
            .field("layers", &self.inner.layers)
            .finish_non_exhaustive()
    }
}

impl SnsPublisher {
    /// A publisher for the service `identity`, with the JSON envelope.
    pub fn new(clients: AwsClients, options: AwsSnsSqsOptions, identity: ServiceIdentity) -> Self {
        Self::with_clients(LazyAwsClients::ready(clients, options), identity)
    }

    /// A publisher on shared (possibly not yet made) clients, with the JSON envelope.
    pub fn with_clients(clients: LazyAwsClients, identity: ServiceIdentity) -> Self {
        let topics = Topics {
            clients,
            mode: TopicMode::default(),
            arns: Arc::default(),
        };
        let layers = PublishLayers::new(Error::Layer);
        Self {
            inner: Arc::new(Inner {
                service: layers.apply(topics.clone()),
                topics,
                layers,
                identity,
                envelope: Arc::new(JsonEnvelope),
            }),
        }
    }

    /// Wraps the publisher's service in `layer` (any tower layer whose service answers an
    /// [`SnsPublish`] with the message id); the last layer added is the outermost. A
    /// layer's own error (a timeout) is an [`Error::Layer`].
    #[must_use]
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<BoxPublishService<SnsPublish, String, Error>> + Send + Sync + 'static,
        L::Service: Service<SnsPublish, Response = String> + Clone + Send + Sync + 'static,
        <L::Service as Service<SnsPublish>>::Error: Into<BoxError>,
        <L::Service as Service<SnsPublish>>::Future: Send + 'static,
    {
        let inner = Arc::make_mut(&mut self.inner);
        inner.layers.push(layer);
        inner.service = inner.layers.apply(inner.topics.clone());
        self
    }

    /// Seals messages with this envelope instead (`RawEnvelope` for none).
    #[must_use]
    pub fn envelope(mut self, envelope: impl tomodachi_core::Envelope) -> Self {
        Arc::make_mut(&mut self.inner).envelope = tomodachi_core::envelope::shared(envelope);
        self
    }

    /// Whether missing topics are created.
    #[must_use]
    pub fn topic_mode(mut self, mode: TopicMode) -> Self {
        let inner = Arc::make_mut(&mut self.inner);
        inner.topics.mode = mode;
        inner.service = inner.layers.apply(inner.topics.clone());
        self
    }

    /// The identity messages are sealed with.
    pub fn identity(&self) -> &ServiceIdentity {
        &self.inner.identity
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
        options: PublishOptions,
    ) -> Result<String, Error> {
        let data = to_python_json(data)?;
        let message = self
            .inner
            .envelope
            .seal(&self.inner.identity, topic, &data)?;
        self.inner
            .service
            .clone()
            .oneshot(SnsPublish::new(topic, message, options))
            .await
    }

    /// The topic's ARN: cached, else looked up, else created (in
    /// [`TopicMode::CreateIfMissing`]).
    pub async fn topic_arn(&self, topic: &str, fifo: bool) -> Result<String, Error> {
        self.inner.topics.arn(topic, fifo).await
    }
}

/// A handler argument, when a layer put the service's publisher into the message's
/// extensions (as the `tomodachi` facade does for every handler) or the transport into its
/// context.
impl<S> FromMessageParts<S> for SnsPublisher {
    type Rejection = Rejection;

    fn from_message_parts(parts: &Parts, _state: &S) -> Result<Self, Rejection> {
        parts
            .context::<SnsPublisher>()
            .or_else(|| parts.extensions().get::<SnsPublisher>())
            .cloned()
            .ok_or_else(Rejection::missing_context::<SnsPublisher>)
    }
}

/// The publisher as the `tower::Service` it wraps: a request is one [`SnsPublish`], sent
/// through the publisher's layers; the response is the SNS message id.
/// It is always ready: each call awaits the layers' readiness (a concurrency limit) on
/// its own clone of the stack.
impl Service<SnsPublish> for SnsPublisher {
    type Response = String;
    type Error = Error;
    type Future = Oneshot<BoxPublishService<SnsPublish, String, Error>, SnsPublish>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: SnsPublish) -> Self::Future {
        self.inner.service.clone().oneshot(request)
    }
}

/// The SNS call under the layers: the topic's ARN (cached), then `Publish`.
#[derive(Debug, Clone)]
struct Topics {
    clients: LazyAwsClients,
    mode: TopicMode,
    arns: Arc<Mutex<HashMap<(String, bool), String>>>,
}

impl Service<SnsPublish> for Topics {
    type Response = String;
    type Error = Error;
    type Future = BoxFuture<'static, Result<String, Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: SnsPublish) -> Self::Future {
        let topics = self.clone();
        Box::pin(async move { topics.publish(request).await })
    }
}

impl Topics {
    async fn publish(&self, request: SnsPublish) -> Result<String, Error> {
        let sent = self.send(&request).await;
        if let Err(error) = &sent {
            tracing::warn!(target: LOG, topic = request.topic, "Unable to publish message [sns] on AWS ({})", error.short());
        }
        sent
    }

    async fn send(&self, request: &SnsPublish) -> Result<String, Error> {
        let clients = self.clients.get().await?;
        let topic_arn = self.arn(&request.topic, request.group_id.is_some()).await?;
        let attributes: HashMap<String, aws_sdk_sns::types::MessageAttributeValue> = request
            .attributes
            .iter()
            .map(|(name, value)| (name.clone(), to_sns(value)))
            .collect();
        message_id(
            "Publish",
            || {
                clients
                    .sns()
                    .publish()
                    .topic_arn(&topic_arn)
                    .message(&request.message)
                    .set_message_attributes(Some(attributes.clone()))
                    .set_message_group_id(request.group_id.clone())
                    .set_message_deduplication_id(request.deduplication_id.clone())
                    .send()
            },
            |output| output.message_id(),
        )
        .await
    }

    async fn arn(&self, topic: &str, fifo: bool) -> Result<String, Error> {
        let key = (topic.to_owned(), fifo);
        if let Some(arn) = self.cached(&key) {
            return Ok(arn);
        }
        let clients = self.clients.get().await?;
        let options = self.clients.options();
        let arn = match lookup_topic(clients, options, topic, fifo).await? {
            Some(arn) => arn,
            None if self.mode == TopicMode::CreateIfMissing => {
                create_topic(clients, options, topic, fifo, false).await?
            }
            None => {
                return Err(Error::TopicDoesNotExist {
                    topic: topic.to_owned(),
                });
            }
        };
        if let Ok(mut arns) = self.arns.lock() {
            arns.insert(key, arn.clone());
        }
        Ok(arn)
    }

    fn cached(&self, key: &(String, bool)) -> Option<String> {
        self.arns
            .lock()
            .ok()
            .and_then(|arns| arns.get(key).cloned())
    }
}
