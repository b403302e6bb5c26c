//! Publishing: tomodachi's `amqp_publish(service, data, routing_key, exchange_name)`, with
//! publisher confirms so a message published during an outage is never lost silently.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation};
use serde::Serialize;
use tokio::sync::Mutex;
use tomodachi_core::{
    Envelope, FromMessageParts, JsonEnvelope, Parts, Rejection, ServiceIdentity, SharedEnvelope,
    telemetry, to_python_json,
};

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
/// In handlers, take it from the state ([`State`](tomodachi_core::State) with
/// [`FromRef`](tomodachi_core::FromRef)) or as an argument when the consumer was given one
/// with [`Consumer::publisher`](crate::Consumer::publisher).
///
/// ```no_run
/// use tomodachi_amqp::{AmqpOptions, AmqpPublisher};
/// use tomodachi_core::ServiceIdentity;
///
/// # async fn run() -> Result<(), tomodachi_amqp::Error> {
/// let publisher = AmqpPublisher::new(AmqpOptions::default(), ServiceIdentity::with_random_uuid("orders"));
/// publisher.publish(&serde_json::json!({"order": 7}), "order.paid").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AmqpPublisher {
    connection: AmqpConnection,
    identity: ServiceIdentity,
    envelope: SharedEnvelope,
    exchange: String,
    persistent: bool,
    publish_timeout: Duration,
    channel: Arc<Mutex<Option<Channel>>>,
}

impl fmt::Debug for AmqpPublisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpPublisher")
            .field("connection", &self.connection)
            .field("identity", &self.identity)
            .field("envelope", &self.envelope)
            .field("exchange", &self.exchange)
            .field("persistent", &self.persistent)
            .field("publish_timeout", &self.publish_timeout)
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
        Self {
            connection,
            identity,
            envelope: Arc::new(JsonEnvelope),
            exchange,
            persistent: false,
            publish_timeout: Duration::from_secs(30),
            channel: Arc::new(Mutex::new(None)),
        }
    }

    /// Seals with `envelope` instead of [`JsonEnvelope`] ([`RawEnvelope`] sends the data
    /// itself).
    ///
    /// [`RawEnvelope`]: tomodachi_core::RawEnvelope
    #[must_use]
    pub fn envelope(mut self, envelope: impl Envelope) -> Self {
        self.envelope = tomodachi_core::envelope::shared(envelope);
        self
    }

    /// Publishes to this exchange by default (instead of `options.amqp.exchange_name`).
    #[must_use]
    pub fn exchange(mut self, exchange: impl Into<String>) -> Self {
        self.exchange = exchange.into();
        self
    }

    /// Sends persistent messages (delivery mode 2) by default. tomodachi does not.
    #[must_use]
    pub fn persistent(mut self, persistent: bool) -> Self {
        self.persistent = persistent;
        self
    }

    /// How long a publish may wait for the broker (outage, recovery, confirm).
    #[must_use]
    pub fn publish_timeout(mut self, timeout: Duration) -> Self {
        self.publish_timeout = timeout;
        self
    }

    /// The identity messages are sealed with.
    pub fn identity(&self) -> &ServiceIdentity {
        &self.identity
    }

    /// The connection the publisher uses.
    pub fn connection(&self) -> &AmqpConnection {
        &self.connection
    }

    /// Seals `data` and publishes it with `routing_key` (prefixed with
    /// `routing_key_prefix`) to the publisher's exchange; returns once confirmed.
    ///
    /// # Errors
    ///
    /// [`Error::Seal`] if `data` cannot be serialized or sealed;
    /// [`Error::PublishTimeout`] if the broker did not confirm in time;
    /// [`Error::PublishNacked`] or [`Error::Publish`] if it refused the message.
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
        let seal_error = |source: tomodachi_core::BoxError| Error::Seal {
            routing_key: routing_key.to_owned(),
            source,
        };
        let raw = to_python_json(data).map_err(|e| seal_error(e.into()))?;
        let payload = self
            .envelope
            .seal(&self.identity, routing_key, &raw)
            .map_err(|e| seal_error(e.into()))?;
        self.publish_payload(payload.as_bytes(), routing_key, options)
            .await
    }

    /// Publishes an already sealed payload as it is (no envelope).
    ///
    /// # Errors
    ///
    /// As [`AmqpPublisher::publish`], without [`Error::Seal`].
    pub async fn publish_payload(
        &self,
        payload: &[u8],
        routing_key: &str,
        mut options: PublishOptions,
    ) -> Result<(), Error> {
        // Telemetry (a PRODUCER span and `traceparent` in the headers) when a hook is
        // installed; otherwise nothing is added.
        let exchange = options
            .exchange
            .as_deref()
            .filter(|name| !name.is_empty())
            .unwrap_or(self.exchange.as_str());
        let headers = &mut options.headers;
        let span = telemetry::start_publish(
            &telemetry::Publish::new(telemetry::RABBITMQ, routing_key).exchange(exchange),
            &mut |key, value| {
                headers.insert(key.to_owned(), AmqpValue::String(value.to_owned()));
            },
        );
        let result = self.send(payload, routing_key, options).await;
        span.finish(result.as_ref().err().map(|e| e as &dyn fmt::Display));
        result
    }

    async fn send(
        &self,
        payload: &[u8],
        routing_key: &str,
        options: PublishOptions,
    ) -> Result<(), Error> {
        let exchange_name = match options.exchange.as_deref() {
            Some(name) if !name.is_empty() => name,
            _ => self.exchange.as_str(),
        };
        let prefix = options
            .routing_key_prefix
            .as_deref()
            .unwrap_or(&self.connection.options().routing_key_prefix);
        let wire_key = wire_routing_key(prefix, routing_key);
        let exchange = short("exchange name", exchange_name)?;
        let key = short("routing key", &wire_key)?;
        let mut properties = BasicProperties::default();
        if options.persistent.unwrap_or(self.persistent) {
            properties = properties.with_delivery_mode(2);
        }
        if !options.headers.is_empty() {
            properties = properties.with_headers(table_to_lapin(&options.headers));
        }

        let started = Instant::now();
        let deadline = started + self.publish_timeout;
        let timeout = |reason: String| Error::PublishTimeout {
            exchange: exchange_name.to_owned(),
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
                        payload,
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
                        exchange: exchange_name.to_owned(),
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
                            exchange: exchange_name.to_owned(),
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
                exchange_name,
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

    /// Closes the publisher's channel (and nothing else). A later publish reopens it.
    pub async fn close(&self) {
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
/// ([`Consumer::publisher`](crate::Consumer::publisher)).
impl<S> FromMessageParts<S> for AmqpPublisher {
    type Rejection = Rejection;

    fn from_message_parts(parts: &Parts, _state: &S) -> Result<Self, Rejection> {
        parts
            .context::<AmqpPublisher>()
            .cloned()
            .ok_or_else(Rejection::missing_context::<AmqpPublisher>)
    }
}
