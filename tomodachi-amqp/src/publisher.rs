//! Publishing: tomodachi's `amqp_publish(service, data, routing_key, exchange_name)`, with
//! publisher confirms so a message published during an outage is never lost silently.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation};
use serde::Serialize;
use tokio::sync::Mutex;
use tomodachi_core::publish::{BoxPublishService, PublishLayers};
use tomodachi_core::telemetry::{self, Publish, PublishRequest};
use tomodachi_core::{
    BoxError, Envelope, FromMessageParts, JsonEnvelope, Parts, Rejection, ServiceIdentity,
    SharedEnvelope, to_python_json,
};
use tower::util::Oneshot;
use tower::{Layer, Service, ServiceExt};

use crate::context::{AmqpTable, AmqpValue, table_to_lapin};
use crate::error::short;
use crate::naming::wire_routing_key;
use crate::{AmqpConnection, AmqpOptions, Error};

/// Per-publish settings beyond data and routing key.
///
/// ```
/// use tomodachi_amqp::PublishOptions;
///
/// let options = PublishOptions::new()
///     .exchange("events")
///     .header("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
///     .persistent(true);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Default)]
pub struct PublishOptions {
    exchange: Option<String>,
    routing_key_prefix: Option<String>,
    persistent: Option<bool>,
    headers: AmqpTable,
}

impl PublishOptions {
    /// No overrides.
    pub fn new() -> Self {
        Self::default()
    }

    /// Publishes to this exchange instead of the publisher's.
    #[must_use]
    pub fn exchange(mut self, exchange: impl Into<String>) -> Self {
        self.exchange = Some(exchange.into());
        self
    }

    /// Uses this routing-key prefix instead of `options.amqp.routing_key_prefix`
    /// (tomodachi's `routing_key_prefix=`; `""` for none).
    #[must_use]
    pub fn routing_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.routing_key_prefix = Some(prefix.into());
        self
    }

    /// Persistent (delivery mode 2) or not, instead of the publisher's default.
    #[must_use]
    pub fn persistent(mut self, persistent: bool) -> Self {
        self.persistent = Some(persistent);
        self
    }

    /// Adds a message header (e.g. `traceparent`).
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<AmqpValue>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// The headers to send, mutable (for layers that inject trace context).
    pub fn headers_mut(&mut self) -> &mut AmqpTable {
        &mut self.headers
    }
}

/// One publish: a request to a publisher's `tower::Service`.
///
/// [`AmqpPublisher::publish`] builds it (data sealed, exchange chosen); layers on the
/// publisher see it, and a producer-span layer adds `traceparent` to its headers through
/// [`PublishRequest`].
///
/// ```
/// use tomodachi_amqp::{AmqpPublish, PublishOptions};
///
/// let publish = AmqpPublish::new("amq.topic", "order.paid", r#"{"order": 7}"#, PublishOptions::new());
/// assert_eq!(publish.routing_key(), "order.paid");
/// ```
#[derive(Debug, Clone)]
pub struct AmqpPublish {
    exchange: String,
    routing_key: String,
    payload: Bytes,
    options: PublishOptions,
}

impl AmqpPublish {
    /// A publish of `payload` (sent as it is) to `exchange` with `routing_key` (prefixed
    /// on the wire as [`PublishOptions::routing_key_prefix`] says).
    pub fn new(
        exchange: impl Into<String>,
        routing_key: impl Into<String>,
        payload: impl Into<Bytes>,
        options: PublishOptions,
    ) -> Self {
        Self {
            exchange: exchange.into(),
            routing_key: routing_key.into(),
            payload: payload.into(),
            options,
        }
    }

    /// The exchange.
    pub fn exchange(&self) -> &str {
        &self.exchange
    }

    /// The routing key, without its prefix.
    pub fn routing_key(&self) -> &str {
        &self.routing_key
    }

    /// The payload, sealed.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// The per-message options (headers, persistence, prefix).
    pub fn options(&self) -> &PublishOptions {
        &self.options
    }

    /// The per-message options, mutable.
    pub fn options_mut(&mut self) -> &mut PublishOptions {
        &mut self.options
    }
}

impl PublishRequest for AmqpPublish {
    fn publish(&self) -> Publish<'_> {
        Publish::new(telemetry::RABBITMQ, &self.routing_key).exchange(&self.exchange)
    }

    fn inject(&mut self, key: &str, value: &str) {
        self.options
            .headers
            .insert(key.to_owned(), AmqpValue::String(value.to_owned()));
    }
}

/// Publishes messages to the broker, sealed in the service's envelope.
///
/// Cheap to clone; every clone shares one channel (in confirm mode) on one connection.
/// A publish returns once the broker confirmed it. While the connection is down or
/// recovering a publish waits and retries, up to [`AmqpPublisher::publish_timeout`]
/// (30 s by default), then fails with [`Error::PublishTimeout`]: it never vanishes.
///
/// As in tomodachi, the payload has no content type and is not persistent unless asked
/// ([`AmqpPublisher::persistent`]); the routing key is prefixed with
/// `routing_key_prefix` and encoded; the envelope's topic is the un-prefixed key.
///
/// A publish is a request ([`AmqpPublish`]) to a `tower::Service`: the publisher is one,
/// and [`AmqpPublisher::layer`] wraps it in any tower layer (`tower::retry`,
/// `tower::timeout`, `ConcurrencyLimitLayer`, `tomodachi-otel`'s `PublishTraceLayer`)
/// while `publish` stays one line.
///
/// In handlers, take it as an argument when the consumer was given one with
/// [`Consumer::publisher`](crate::Consumer::publisher) (the `tomodachi` facade gives every
/// handler the service's), or from the state ([`State`](tomodachi_core::State) with
/// [`FromRef`](tomodachi_core::FromRef)).
///
/// ```no_run
/// use std::time::Duration;
///
/// use tomodachi_amqp::{AmqpOptions, AmqpPublisher};
/// use tomodachi_core::ServiceIdentity;
/// use tower::limit::ConcurrencyLimitLayer;
///
/// # async fn run() -> Result<(), tomodachi_amqp::Error> {
/// let publisher = AmqpPublisher::new(AmqpOptions::default(), ServiceIdentity::with_random_uuid("orders"))
///     .layer(ConcurrencyLimitLayer::new(64));
/// publisher.publish(&serde_json::json!({"order": 7}), "order.paid").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AmqpPublisher {
    inner: Arc<Inner>,
}

/// What a publisher's clones share (one `Arc`: a clone per handler call is cheap).
#[derive(Clone)]
struct Inner {
    broker: Broker,
    layers: PublishLayers<AmqpPublish, (), Error>,
    service: BoxPublishService<AmqpPublish, (), Error>,
    identity: ServiceIdentity,
    envelope: SharedEnvelope,
    exchange: String,
    persistent: bool,
}

impl fmt::Debug for AmqpPublisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpPublisher")
            .field("connection", &self.inner.broker.connection)
            .field("identity", &self.inner.identity)
            .field("envelope", &self.inner.envelope)
            .field("exchange", &self.inner.exchange)
            .field("persistent", &self.inner.persistent)
            .field("publish_timeout", &self.inner.broker.publish_timeout)
            .field("layers", &self.inner.layers)
            .finish_non_exhaustive()
    }
}

impl AmqpPublisher {
    /// A publisher on its own connection to the broker of `options`, sealing with
    /// [`JsonEnvelope`] as `identity`.
    pub fn new(options: AmqpOptions, identity: ServiceIdentity) -> Self {
        Self::with_connection(AmqpConnection::new(options), identity)
    }

    /// A publisher on a shared connection.
    pub fn with_connection(connection: AmqpConnection, identity: ServiceIdentity) -> Self {
        let exchange = match connection.options().exchange_name.as_str() {
            "" => "amq.topic".to_owned(),
            name => name.to_owned(),
        };
        let broker = Broker {
            connection,
            publish_timeout: Duration::from_secs(30),
            channel: Arc::new(Mutex::new(None)),
        };
        let layers = PublishLayers::new(Error::Layer);
        Self {
            inner: Arc::new(Inner {
                service: layers.apply(broker.clone()),
                broker,
                layers,
                identity,
                envelope: Arc::new(JsonEnvelope),
                exchange,
                persistent: false,
            }),
        }
    }

    /// Wraps the publisher's service in `layer` (any tower layer whose service answers an
    /// [`AmqpPublish`] with `()`); the last layer added is the outermost. A layer's own
    /// error (a timeout) is an [`Error::Layer`].
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use tomodachi_amqp::{AmqpOptions, AmqpPublisher};
    /// use tomodachi_core::ServiceIdentity;
    /// use tower::timeout::TimeoutLayer;
    ///
    /// let publisher = AmqpPublisher::new(AmqpOptions::default(), ServiceIdentity::with_random_uuid("orders"))
    ///     .layer(TimeoutLayer::new(Duration::from_secs(5)));
    /// # let _ = publisher;
    /// ```
    #[must_use]
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<BoxPublishService<AmqpPublish, (), Error>> + Send + Sync + 'static,
        L::Service: Service<AmqpPublish, Response = ()> + Clone + Send + Sync + 'static,
        <L::Service as Service<AmqpPublish>>::Error: Into<BoxError>,
        <L::Service as Service<AmqpPublish>>::Future: Send + 'static,
    {
        let inner = Arc::make_mut(&mut self.inner);
        inner.layers.push(layer);
        inner.service = inner.layers.apply(inner.broker.clone());
        self
    }

    /// Seals with `envelope` instead of [`JsonEnvelope`] ([`RawEnvelope`] sends the data
    /// itself).
    ///
    /// [`RawEnvelope`]: tomodachi_core::RawEnvelope
    #[must_use]
    pub fn envelope(mut self, envelope: impl Envelope) -> Self {
        Arc::make_mut(&mut self.inner).envelope = tomodachi_core::envelope::shared(envelope);
        self
    }

    /// Publishes to this exchange by default (instead of `options.amqp.exchange_name`).
    #[must_use]
    pub fn exchange(mut self, exchange: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.inner).exchange = exchange.into();
        self
    }

    /// Sends persistent messages (delivery mode 2) by default. tomodachi does not.
    #[must_use]
    pub fn persistent(mut self, persistent: bool) -> Self {
        Arc::make_mut(&mut self.inner).persistent = persistent;
        self
    }

    /// How long a publish may wait for the broker (outage, recovery, confirm).
    #[must_use]
    pub fn publish_timeout(mut self, timeout: Duration) -> Self {
        let inner = Arc::make_mut(&mut self.inner);
        inner.broker.publish_timeout = timeout;
        inner.service = inner.layers.apply(inner.broker.clone());
        self
    }

    /// The identity messages are sealed with.
    pub fn identity(&self) -> &ServiceIdentity {
        &self.inner.identity
    }

    /// The connection the publisher uses.
    pub fn connection(&self) -> &AmqpConnection {
        &self.inner.broker.connection
    }

    /// Seals `data` and publishes it with `routing_key` (prefixed with
    /// `routing_key_prefix`) to the publisher's exchange; returns once confirmed.
    ///
    /// # Errors
    ///
    /// [`Error::Seal`] if `data` cannot be serialized or sealed;
    /// [`Error::PublishTimeout`] if the broker did not confirm in time;
    /// [`Error::PublishNacked`] or [`Error::Publish`] if it refused the message;
    /// [`Error::Layer`] if a layer failed it.
    pub async fn publish<T: Serialize + ?Sized>(
        &self,
        data: &T,
        routing_key: &str,
    ) -> Result<(), Error> {
        self.publish_with(data, routing_key, PublishOptions::default())
            .await
    }

    /// [`AmqpPublisher::publish`] with per-message [`PublishOptions`].
    ///
    /// # Errors
    ///
    /// As [`AmqpPublisher::publish`].
    pub async fn publish_with<T: Serialize + ?Sized>(
        &self,
        data: &T,
        routing_key: &str,
        options: PublishOptions,
    ) -> Result<(), Error> {
        let request = self.request(data, routing_key, options)?;
        self.inner.service.clone().oneshot(request).await
    }

    /// Publishes every `(data, routing_key)` of `messages` at once and returns when the
    /// broker has confirmed them all: the publishes go out back to back on the channel
    /// (in order) and their confirms are awaited together, so a batch costs about one
    /// round trip instead of one per message. Each one goes through the publisher's
    /// layers, as [`publish`](AmqpPublisher::publish) does.
    ///
    /// The same as calling `publish` for each message concurrently, or as
    /// `tower::ServiceExt::call_all` with [`AmqpPublish`] requests on the publisher (a
    /// `tower::Service`): pick the one that fits the code around it.
    ///
    /// ```no_run
    /// # use tomodachi_amqp::{AmqpOptions, AmqpPublisher};
    /// # use tomodachi_core::ServiceIdentity;
    /// # async fn run(publisher: AmqpPublisher) -> Result<(), tomodachi_amqp::Error> {
    /// let orders = [7, 8, 9].map(|n| (serde_json::json!({"order": n}), "order.paid"));
    /// publisher.publish_many(orders).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// The first error of the batch, as [`AmqpPublisher::publish`] reports it, once every
    /// publish has finished: the others may have been published (publishing the batch
    /// again repeats them, as any at-least-once retry does).
    pub async fn publish_many<T, K, I>(&self, messages: I) -> Result<(), Error>
    where
        T: Serialize,
        K: AsRef<str>,
        I: IntoIterator<Item = (T, K)>,
    {
        let requests = messages
            .into_iter()
            .map(|(data, key)| self.request(&data, key.as_ref(), PublishOptions::default()))
            .collect::<Result<Vec<_>, _>>()?;
        let results = futures_util::future::join_all(
            requests
                .into_iter()
                .map(|request| self.inner.service.clone().oneshot(request)),
        )
        .await;
        results.into_iter().collect()
    }

    /// Seals `data` into the request of one publish.
    fn request<T: Serialize + ?Sized>(
        &self,
        data: &T,
        routing_key: &str,
        options: PublishOptions,
    ) -> Result<AmqpPublish, Error> {
        let seal_error = |source: tomodachi_core::BoxError| Error::Seal {
            routing_key: routing_key.to_owned(),
            source,
        };
        let raw = to_python_json(data).map_err(|e| seal_error(e.into()))?;
        let payload = self
            .inner
            .envelope
            .seal(&self.inner.identity, routing_key, &raw)
            .map_err(|e| seal_error(e.into()))?;
        Ok(self.payload_request(payload.into_bytes(), routing_key, options))
    }

    /// The request of one publish of an already sealed payload.
    fn payload_request(
        &self,
        payload: impl Into<Bytes>,
        routing_key: &str,
        mut options: PublishOptions,
    ) -> AmqpPublish {
        let exchange = match options.exchange.take() {
            Some(name) if !name.is_empty() => name,
            _ => self.inner.exchange.clone(),
        };
        options.persistent = Some(options.persistent.unwrap_or(self.inner.persistent));
        AmqpPublish::new(exchange, routing_key, payload, options)
    }

    /// Publishes an already sealed payload as it is (no envelope).
    ///
    /// # Errors
    ///
    /// As [`AmqpPublisher::publish`], without [`Error::Seal`].
    pub async fn publish_payload(
        &self,
        payload: impl Into<Bytes>,
        routing_key: &str,
        options: PublishOptions,
    ) -> Result<(), Error> {
        let request = self.payload_request(payload, routing_key, options);
        self.inner.service.clone().oneshot(request).await
    }

    /// Closes the publisher's channel (and nothing else). A later publish reopens it.
    pub async fn close(&self) {
        self.inner.broker.close().await;
    }
}

/// The publisher as the `tower::Service` it wraps: a request is one [`AmqpPublish`], sent
/// through the publisher's layers.
/// It is always ready: each call awaits the layers' readiness (a concurrency limit) on
/// its own clone of the stack.
impl Service<AmqpPublish> for AmqpPublisher {
    type Response = ();
    type Error = Error;
    type Future = Oneshot<BoxPublishService<AmqpPublish, (), Error>, AmqpPublish>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: AmqpPublish) -> Self::Future {
        self.inner.service.clone().oneshot(request)
    }
}

/// The broker call under the layers: publish with confirms, waiting through outages.
#[derive(Clone)]
struct Broker {
    connection: AmqpConnection,
    publish_timeout: Duration,
    channel: Arc<Mutex<Option<Channel>>>,
}

impl Service<AmqpPublish> for Broker {
    type Response = ();
    type Error = Error;
    type Future = BoxFuture<'static, Result<(), Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: AmqpPublish) -> Self::Future {
        let broker = self.clone();
        Box::pin(async move { broker.send(request).await })
    }
}

impl Broker {
    async fn send(&self, request: AmqpPublish) -> Result<(), Error> {
        let AmqpPublish {
            exchange: exchange_name,
            routing_key,
            payload,
            options,
        } = request;
        let prefix = options
            .routing_key_prefix
            .as_deref()
            .unwrap_or(&self.connection.options().routing_key_prefix);
        let wire_key = wire_routing_key(prefix, &routing_key);
        let exchange = short("exchange name", &exchange_name)?;
        let key = short("routing key", &wire_key)?;
        let mut properties = BasicProperties::default();
        if options.persistent.unwrap_or(false) {
            properties = properties.with_delivery_mode(2);
        }
        if !options.headers.is_empty() {
            properties = properties.with_headers(table_to_lapin(&options.headers));
        }

        let started = Instant::now();
        let deadline = started + self.publish_timeout;
        let timeout = |reason: String| Error::PublishTimeout {
            exchange: exchange_name.clone(),
            routing_key: wire_key.clone(),
            waited: started.elapsed(),
            reason,
        };
        let mut backoff = Duration::from_millis(100);
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let attempt = async {
                let channel = self.channel().await.map_err(Attempt::Connect)?;
                let confirm = channel
                    .basic_publish(
                        exchange.clone(),
                        key.clone(),
                        BasicPublishOptions::default(),
                        &payload,
                        properties.clone(),
                    )
                    .await
                    .map_err(|e| Attempt::Lapin(channel.clone(), e))?;
                confirm.await.map_err(|e| Attempt::Lapin(channel, e))
            };
            let error = match tokio::time::timeout(remaining, attempt).await {
                Err(_) => return Err(timeout("no confirm from the broker".to_owned())),
                Ok(Ok(Confirmation::Nack(_))) => {
                    return Err(Error::PublishNacked {
                        exchange: exchange_name,
                        routing_key: wire_key,
                    });
                }
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(error)) => error,
            };
            let reason = match error {
                Attempt::Connect(error) => error.to_string(),
                Attempt::Lapin(channel, error) => {
                    let reason = error.to_string();
                    if error.is_amqp_soft_error() {
                        // e.g. NOT_FOUND: the exchange does not exist. Retrying cannot help.
                        self.forget(&channel).await;
                        return Err(Error::Publish {
                            exchange: exchange_name,
                            routing_key: wire_key,
                            source: Box::new(error),
                        });
                    }
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    match tokio::time::timeout(remaining, channel.wait_for_recovery(error)).await {
                        Err(_) => return Err(timeout(reason)),
                        Ok(Ok(())) => continue,
                        Ok(Err(_)) => self.forget(&channel).await,
                    }
                    reason
                }
            };
            tracing::warn!(
                target: "tomodachi.amqp",
                exchange_name = exchange_name.as_str(),
                routing_key = %wire_key,
                %reason,
                "publish failed [amqp]: retrying"
            );
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(timeout(reason));
            }
            tokio::time::sleep(backoff.min(remaining)).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// The confirm-mode channel, opened (and the connection with it) if needed.
    async fn channel(&self) -> Result<Channel, Error> {
        let mut slot = self.channel.lock().await;
        if let Some(channel) = slot.as_ref() {
            let status = channel.status();
            if status.connected() || status.reconnecting() {
                return Ok(channel.clone());
            }
        }
        let channel = self.connection.channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| Error::Channel {
                operation: "confirm.select",
                source: e.into(),
            })?;
        *slot = Some(channel.clone());
        Ok(channel)
    }

    async fn forget(&self, dead: &Channel) {
        let mut slot = self.channel.lock().await;
        if slot.as_ref().is_some_and(|c| c.id() == dead.id()) {
            *slot = None;
        }
    }

    async fn close(&self) {
        if let Some(channel) = self.channel.lock().await.take()
            && channel.status().connected()
        {
            let _ = channel.close(200, "OK".into()).await;
        }
    }
}

enum Attempt {
    Connect(Error),
    Lapin(Channel, lapin::Error),
}

/// A handler argument, when the consumer was given a publisher
/// ([`Consumer::publisher`](crate::Consumer::publisher)) or a layer put one into the
/// message's extensions (as the `tomodachi` facade does for every handler).
impl<S> FromMessageParts<S> for AmqpPublisher {
    type Rejection = Rejection;

    fn from_message_parts(parts: &Parts, _state: &S) -> Result<Self, Rejection> {
        parts
            .context::<AmqpPublisher>()
            .or_else(|| parts.extensions().get::<AmqpPublisher>())
            .cloned()
            .ok_or_else(Rejection::missing_context::<AmqpPublisher>)
    }
}
