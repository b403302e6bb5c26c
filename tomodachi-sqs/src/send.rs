//! Sending straight to SQS queues (Python tomodachi's `sqs_send_message`).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::Serialize;
use serde_json::value::RawValue;
use tomodachi_core::publish::{BoxPublishService, PublishLayers};
use tomodachi_core::telemetry::{self, Publish, PublishRequest};
use tomodachi_core::{
    AttributeValue, BoxError, FromMessageParts, JsonEnvelope, Parts, Rejection, ServiceIdentity,
    SharedEnvelope, to_python_json,
};
use tower::util::Oneshot;
use tower::{Layer, Service, ServiceExt};

use crate::attributes::{BodyAttribute, inject, to_body, to_sqs};
use crate::error::aws;
use crate::outgoing::{deduplication_id, message_id};
use crate::setup::queue_url_from_arn;
use crate::{AwsClients, AwsSnsSqsOptions, Error, LazyAwsClients};

const LOG: &str = "tomodachi.awssnssqs";

/// Options of one send: attributes, FIFO ids, delay, prefix and body format.
#[derive(Debug, Clone, Default)]
pub struct SendOptions {
    attributes: Vec<(String, AttributeValue)>,
    group_id: Option<String>,
    deduplication_id: Option<String>,
    delay_seconds: Option<i32>,
    queue_name_prefix: Option<Option<String>>,
    raw_body: bool,
}

impl SendOptions {
    /// Defaults: tomodachi's body format, the options' queue name prefix.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a message attribute (tomodachi's encoding).
    #[must_use]
    pub fn attribute(mut self, name: impl Into<String>, value: impl Into<AttributeValue>) -> Self {
        self.attributes.push((name.into(), value.into()));
        self
    }

    /// FIFO: the message group (the queue's name must end with `.fifo`).
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

    /// `DelaySeconds` of the message.
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay_seconds = Some(delay.as_secs().min(900) as i32);
        self
    }

    /// Use this prefix instead of the options' `queue_name_prefix` (`None`: no prefix).
    #[must_use]
    pub fn queue_name_prefix(mut self, prefix: Option<String>) -> Self {
        self.queue_name_prefix = Some(prefix);
        self
    }

    /// Send the data verbatim as the body: no envelope, no SNS-style wrapping (Python's
    /// `message_body_formatter=None`). A JSON string is sent as its text.
    #[must_use]
    pub fn raw_body(mut self) -> Self {
        self.raw_body = true;
        self
    }
}

/// One SQS send: a request to a sender's `tower::Service`.
///
/// [`SqsSender::send`] builds it (data sealed, FIFO deduplication id chosen, so a retry
/// sends the same message); layers on the sender see it, and a producer-span layer adds
/// `traceparent` to its message attributes through [`PublishRequest`] (they are in the
/// body's `MessageAttributes` too, as tomodachi writes them).
#[derive(Debug, Clone)]
pub struct SqsSend {
    queue: String,
    message: String,
    attributes: Vec<(String, AttributeValue)>,
    group_id: Option<String>,
    deduplication_id: Option<String>,
    delay_seconds: Option<i32>,
    queue_name_prefix: Option<Option<String>>,
    raw_body: bool,
}

impl SqsSend {
    /// A send of `message` (sealed, or the raw body with [`SendOptions::raw_body`]) to
    /// `queue` (a name, a queue URL or an ARN) with `options`.
    pub fn new(queue: impl Into<String>, message: impl Into<String>, options: SendOptions) -> Self {
        let deduplication_id =
            deduplication_id(options.group_id.as_ref(), options.deduplication_id.as_ref());
        Self {
            queue: queue.into(),
            message: message.into(),
            attributes: options.attributes,
            group_id: options.group_id,
            deduplication_id,
            delay_seconds: options.delay_seconds,
            queue_name_prefix: options.queue_name_prefix,
            raw_body: options.raw_body,
        }
    }

    /// The queue as given (name, URL or ARN).
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// The message: sealed data, or the raw body.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The message attributes.
    pub fn attributes(&self) -> &[(String, AttributeValue)] {
        &self.attributes
    }
}

impl PublishRequest for SqsSend {
    fn publish(&self) -> Publish<'_> {
        Publish::new(telemetry::AWS_SQS, &self.queue)
    }

    fn inject(&mut self, key: &str, value: &str) {
        inject(&mut self.attributes, key, value);
    }
}

/// Sends data to SQS queues by name, URL or ARN, wrapped exactly as tomodachi's
/// `sqs_send_message` wraps it, so Python and Rust handlers read it alike.
///
/// The body is `{"Type": "Message", "QueueUrl": …, "Version": "0", "Message": <sealed data,
/// topic "">, "Timestamp": "…Z", "MessageAttributes": {…}}`.
///
/// A send is a request ([`SqsSend`]) to a `tower::Service`: the sender is one, and
/// [`SqsSender::layer`] wraps it in any tower layer while `send` stays one line.
#[derive(Clone)]
pub struct SqsSender {
    inner: Arc<Inner>,
}

/// What a sender's clones share (one `Arc`: a clone per handler call is cheap).
#[derive(Clone)]
struct Inner {
    queues: Queues,
    layers: PublishLayers<SqsSend, String, Error>,
    service: BoxPublishService<SqsSend, String, Error>,
    identity: ServiceIdentity,
    envelope: SharedEnvelope,
}

impl fmt::Debug for SqsSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqsSender")
            .field("clients", &self.inner.queues.clients)
            .field("identity", &self.inner.identity)
            .field("envelope", &self.inner.envelope)
            .field("layers", &self.inner.layers)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "Type")]
    kind: &'static str,
    #[serde(rename = "QueueUrl")]
    queue_url: &'a str,
    #[serde(rename = "Version")]
    version: &'static str,
    #[serde(rename = "Message")]
    message: &'a str,
    #[serde(rename = "Timestamp")]
    timestamp: String,
    #[serde(rename = "MessageAttributes")]
    message_attributes: OrderedAttributes<'a>,
}

struct OrderedAttributes<'a>(Vec<(&'a str, BodyAttribute)>);

impl Serialize for OrderedAttributes<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl SqsSender {
    /// A sender for the service `identity`, with the JSON envelope.
    pub fn new(clients: AwsClients, options: AwsSnsSqsOptions, identity: ServiceIdentity) -> Self {
        Self::with_clients(LazyAwsClients::ready(clients, options), identity)
    }

    /// A sender on shared (possibly not yet made) clients, with the JSON envelope.
    pub fn with_clients(clients: LazyAwsClients, identity: ServiceIdentity) -> Self {
        let queues = Queues {
            clients,
            urls: Arc::default(),
        };
        let layers = PublishLayers::new(Error::Layer);
        Self {
            inner: Arc::new(Inner {
                service: layers.apply(queues.clone()),
                queues,
                layers,
                identity,
                envelope: Arc::new(JsonEnvelope),
            }),
        }
    }

    /// Wraps the sender's service in `layer` (any tower layer whose service answers an
    /// [`SqsSend`] with the message id); the last layer added is the outermost. A layer's
    /// own error (a timeout) is an [`Error::Layer`].
    #[must_use]
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<BoxPublishService<SqsSend, String, Error>> + Send + Sync + 'static,
        L::Service: Service<SqsSend, Response = String> + Clone + Send + Sync + 'static,
        <L::Service as Service<SqsSend>>::Error: Into<BoxError>,
        <L::Service as Service<SqsSend>>::Future: Send + 'static,
    {
        let inner = Arc::make_mut(&mut self.inner);
        inner.layers.push(layer);
        inner.service = inner.layers.apply(inner.queues.clone());
        self
    }

    /// Seals messages with this envelope instead (`RawEnvelope` for none).
    #[must_use]
    pub fn envelope(mut self, envelope: impl tomodachi_core::Envelope) -> Self {
        Arc::make_mut(&mut self.inner).envelope = tomodachi_core::envelope::shared(envelope);
        self
    }

    /// The identity messages are sealed with.
    pub fn identity(&self) -> &ServiceIdentity {
        &self.inner.identity
    }

    /// Sends `data` to `queue` (a name, a queue URL or an `arn:aws:sqs:` ARN); returns the
    /// SQS message id.
    pub async fn send<T: Serialize + ?Sized>(
        &self,
        data: &T,
        queue: &str,
    ) -> Result<String, Error> {
        self.send_with(data, queue, SendOptions::default()).await
    }

    /// Sends with attributes, FIFO ids, a delay or a raw body.
    pub async fn send_with<T: Serialize + ?Sized>(
        &self,
        data: &T,
        queue: &str,
        options: SendOptions,
    ) -> Result<String, Error> {
        let fifo_name = queue.ends_with(".fifo");
        if options.group_id.is_some() != fifo_name {
            let message = if fifo_name {
                "MessageGroupId, 'group_id', missing in 'send_message' call for implied FIFO queue"
            } else {
                "MessageGroupId, 'group_id', cannot be used with non-FIFO queue in 'send_message' call"
            };
            tracing::warn!(target: LOG, queue_name = queue, group_id = options.group_id.as_deref().unwrap_or(""), "Bad combination of SQS.SendMessage request parameter - FIFO related arguments ({message})");
            return Err(Error::Fifo(message.into()));
        }
        let data = to_python_json(data)?;
        let message = if options.raw_body {
            raw_text(&data)?
        } else {
            self.inner.envelope.seal(&self.inner.identity, "", &data)?
        };
        self.inner
            .service
            .clone()
            .oneshot(SqsSend::new(queue, message, options))
            .await
    }

    /// The queue's URL: verbatim for a URL, `GetQueueUrl` (cached) for a name or ARN.
    pub async fn queue_url(&self, queue: &str, options: &SendOptions) -> Result<String, Error> {
        self.inner
            .queues
            .url(queue, options.queue_name_prefix.as_ref())
            .await
    }
}

/// A handler argument, when a layer put the service's sender into the message's
/// extensions (as the `tomodachi` facade does for every handler) or the transport into its
/// context.
impl<S> FromMessageParts<S> for SqsSender {
    type Rejection = Rejection;

    fn from_message_parts(parts: &Parts, _state: &S) -> Result<Self, Rejection> {
        parts
            .context::<SqsSender>()
            .or_else(|| parts.extensions().get::<SqsSender>())
            .cloned()
            .ok_or_else(Rejection::missing_context::<SqsSender>)
    }
}

/// The sender as the `tower::Service` it wraps: a request is one [`SqsSend`], sent through
/// the sender's layers; the response is the SQS message id.
/// It is always ready: each call awaits the layers' readiness (a concurrency limit) on
/// its own clone of the stack.
impl Service<SqsSend> for SqsSender {
    type Response = String;
    type Error = Error;
    type Future = Oneshot<BoxPublishService<SqsSend, String, Error>, SqsSend>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: SqsSend) -> Self::Future {
        self.inner.service.clone().oneshot(request)
    }
}

/// The SQS call under the layers: the queue's URL (cached), the body, then `SendMessage`.
#[derive(Debug, Clone)]
struct Queues {
    clients: LazyAwsClients,
    urls: Arc<Mutex<HashMap<String, String>>>,
}

impl Service<SqsSend> for Queues {
    type Response = String;
    type Error = Error;
    type Future = BoxFuture<'static, Result<String, Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: SqsSend) -> Self::Future {
        let queues = self.clone();
        Box::pin(async move { queues.send(request).await })
    }
}

impl Queues {
    async fn send(&self, request: SqsSend) -> Result<String, Error> {
        let queue_url = self
            .url(&request.queue, request.queue_name_prefix.as_ref())
            .await?;
        let clients = self.clients.get().await?;
        let body = if request.raw_body {
            request.message.clone()
        } else {
            body(&request, &queue_url)?
        };
        let attributes: HashMap<String, aws_sdk_sqs::types::MessageAttributeValue> = request
            .attributes
            .iter()
            .map(|(name, value)| (name.clone(), to_sqs(value)))
            .collect();
        let sent = message_id(
            "SendMessage",
            || {
                clients
                    .sqs()
                    .send_message()
                    .queue_url(&queue_url)
                    .message_body(&body)
                    .set_message_attributes(Some(attributes.clone()))
                    .set_message_group_id(request.group_id.clone())
                    .set_message_deduplication_id(request.deduplication_id.clone())
                    .set_delay_seconds(request.delay_seconds)
                    .send()
            },
            |output| output.message_id(),
        )
        .await;
        if let Err(error) = &sent {
            tracing::warn!(target: LOG, queue_name = request.queue, "Unable to send message [sqs] on AWS ({})", error.short());
        }
        sent
    }

    /// The queue's URL: verbatim for a URL, `GetQueueUrl` (cached) for a name or ARN.
    async fn url(&self, queue: &str, prefix: Option<&Option<String>>) -> Result<String, Error> {
        if queue.starts_with("http://") || queue.starts_with("https://") {
            return Ok(queue.to_owned());
        }
        let name = if queue.starts_with("arn:aws:sqs:") {
            queue.to_owned()
        } else {
            let prefix = match prefix {
                Some(prefix) => prefix.clone().unwrap_or_default(),
                None => self.clients.options().queue_name_prefix.clone(),
            };
            format!("{prefix}{queue}")
        };
        if let Some(url) = self
            .urls
            .lock()
            .ok()
            .and_then(|urls| urls.get(&name).cloned())
        {
            return Ok(url);
        }
        let clients = self.clients.get().await?;
        let url = if name.starts_with("arn:aws:sqs:") {
            queue_url_from_arn(clients, &name).await?
        } else {
            match clients.sqs().get_queue_url().queue_name(&name).send().await {
                Ok(output) => output.queue_url().map(str::to_owned),
                Err(error) => {
                    let error = aws("GetQueueUrl", error);
                    if error.is_queue_missing() {
                        None
                    } else {
                        return Err(error);
                    }
                }
            }
        };
        let Some(url) = url else {
            tracing::warn!(target: LOG, queue_name = queue, "Cannot send message to non-existent (AWS.SimpleQueueService.NonExistentQueue) SQS queue");
            return Err(Error::QueueDoesNotExist {
                queue: queue.to_owned(),
            });
        };
        if let Ok(mut urls) = self.urls.lock() {
            urls.insert(name, url.clone());
        }
        Ok(url)
    }
}

/// tomodachi's `MessageBodyFormatter` output.
fn body(request: &SqsSend, queue_url: &str) -> Result<String, Error> {
    let body = Body {
        kind: "Message",
        queue_url,
        version: "0",
        message: &request.message,
        timestamp: chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string(),
        message_attributes: OrderedAttributes(
            request
                .attributes
                .iter()
                .map(|(name, value)| (name.as_str(), to_body(value)))
                .collect(),
        ),
    };
    Ok(to_python_json(&body)?.get().to_owned())
}

fn raw_text(data: &RawValue) -> Result<String, Error> {
    let json = data.get();
    if json.starts_with('"') {
        Ok(serde_json::from_str::<String>(json)?)
    } else {
        Ok(json.to_owned())
    }
}
