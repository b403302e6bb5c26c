//! The AMQP source: consumes one binding's queue and drives a service with its messages.

mod acks;
mod delivery;
mod session;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tomodachi_core::driver::Driver;
use tomodachi_core::{
    BoxError, EnvelopeLayer, HealthReporter, Message, Outcome, ServiceIdentity, Shutdown, Source,
};
use tower::util::Either;
use tower::{Layer, Service};

use self::session::Session;
use crate::{AmqpConnection, AmqpOptions, AmqpPublisher, Binding, Error, ResolvedBinding};

/// Consumes the queue of one [`Binding`] and calls a `tower::Service<Message>` for each
/// delivery: tomodachi's `@amqp` handler.
///
/// * **Setup** ([`Source::start`]): connect, declare the exchange (unless it is the
///   broker's `amq.*`) and the durable queue (`x-expires` from `queue_ttl`), bind, set qos
///   (`queue_prefetch_count` per consumer, `global_prefetch_count` per channel), consume.
///   The queue name is logged. A non-competing queue that already has a consumer fails
///   with [`Error::TooManyConsumers`].
/// * **Each delivery** becomes a [`Message`] with an [`AmqpContext`](crate::AmqpContext);
///   the source awaits the service's readiness before it takes the next one, and runs
///   handlers concurrently (bounded by the prefetch). The outcome settles it:
///   [`Outcome::Ack`] → ack (coalesced: one `basic.ack` with `multiple` for the run of
///   completed deliveries at the front of the channel, per
///   [`AckOptions`](crate::AckOptions)), [`Outcome::Retry`] → nack with requeue (after the delay),
///   [`Outcome::Reject`] → nack without requeue (to the queue's dead-letter exchange, if
///   any). A service error or a panic is classified by the binding's
///   [`on_failure`](Binding::on_failure) (default: a retry) in core's
///   [`Driver`](tomodachi_core::driver::Driver), logged on `exception`, as on every source;
///   a service that fails its `poll_ready` stops the consumer with
///   [`Error::Service`].
/// * **Broker drops**: the connection recovers by itself and consumption resumes; a
///   settle that fails because its channel died is logged (the broker redelivers). If
///   recovery gives up, the consumer reconnects with back-off until shutdown.
/// * **Shutdown**: cancel the consumer, let in-flight handlers finish and settle them,
///   ack the completions still waiting for their batch, close the channel (and the connection, if the consumer opened it). Deliveries not
///   started go back to the queue; nothing is rejected because of shutdown.
///
/// ```no_run
/// use tomodachi_amqp::{AmqpOptions, Binding, Consumer, Headers};
/// use tomodachi_core::{Data, Handler, Shutdown, ServiceIdentity, Source};
///
/// async fn on_order(Headers(headers): Headers, Data(order): Data<serde_json::Value>) {
///     println!("{order} ({} headers)", headers.len());
/// }
///
/// # async fn run() -> Result<(), tomodachi_amqp::Error> {
/// let shutdown = Shutdown::new();
/// let identity = ServiceIdentity::with_random_uuid("orders");
/// Consumer::new(AmqpOptions::default(), Binding::routing_key("order.*"), identity)
///     .serve(on_order.with_state(()), shutdown)
///     .await
/// # }
/// ```
#[derive(Debug)]
pub struct Consumer {
    connection: AmqpConnection,
    owns_connection: bool,
    binding: Binding,
    resolved: ResolvedBinding,
    publisher: Option<AmqpPublisher>,
    drain_timeout: Option<Duration>,
    health: HealthReporter,
}

impl Consumer {
    /// A consumer of `binding` on its own connection to the broker of `options`.
    ///
    /// `identity` is the service's name and uuid (the uuid names non-competing queues).
    pub fn new(options: AmqpOptions, binding: Binding, identity: ServiceIdentity) -> Self {
        let mut consumer = Self::with_connection(AmqpConnection::new(options), binding, identity);
        consumer.owns_connection = true;
        consumer
    }

    /// A consumer of `binding` on a shared connection (not closed by this consumer).
    pub fn with_connection(
        connection: AmqpConnection,
        binding: Binding,
        identity: ServiceIdentity,
    ) -> Self {
        let resolved = binding.resolve(connection.options(), &identity);
        Self {
            connection,
            owns_connection: false,
            binding,
            resolved,
            publisher: None,
            drain_timeout: None,
            health: HealthReporter::default(),
        }
    }

    /// Puts `publisher` into every message's context, so handlers can take an
    /// [`AmqpPublisher`] argument.
    #[must_use]
    pub fn publisher(mut self, publisher: AmqpPublisher) -> Self {
        self.publisher = Some(publisher);
        self
    }

    /// How long shutdown waits for in-flight handlers (default: until they finish).
    /// Handlers still running after it are abandoned unsettled: the broker redelivers
    /// their messages.
    #[must_use]
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = Some(timeout);
        self
    }

    /// Reports the consumer's health to `reporter`: ready once it consumes, degraded
    /// (with the reason) while the connection is lost or it is subscribing again,
    /// draining on shutdown, stopped once drained.
    #[must_use]
    pub fn health(mut self, reporter: HealthReporter) -> Self {
        self.health = reporter;
        self
    }

    /// The names as they go on the wire (queue, exchange, binding key).
    pub fn resolved(&self) -> &ResolvedBinding {
        &self.resolved
    }

    /// The connection the consumer uses.
    pub fn connection(&self) -> &AmqpConnection {
        &self.connection
    }
}

/// The work of a started [`Consumer`]: consumes until shutdown, then drains.
pub type Running = Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'static>>;

impl<S> Source<S> for Consumer
where
    S: Service<Message, Response = Outcome> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Error = Error;
    type Running = Running;

    async fn start(self, service: S, shutdown: Shutdown) -> Result<Running, Error> {
        let session = Session::open(&self.connection, &self.resolved, true).await?;
        self.health.ready();
        tracing::info!(
            target: "tomodachi.amqp",
            queue_name = %self.resolved.queue_name,
            routing_key = %self.resolved.routing_key,
            exchange_name = %self.resolved.exchange,
            competing = self.resolved.competing,
            "consuming from queue [amqp] \"{}\"",
            self.resolved.queue_name
        );
        let service = match self.binding.envelope_ref() {
            Some(envelope) => Either::Left(EnvelopeLayer::new(envelope.clone()).layer(service)),
            None => Either::Right(service),
        };
        Ok(Box::pin(run(self, service, session, shutdown)))
    }
}

/// Waits for shutdown or `future`; `None` on shutdown.
async fn unless_shutdown<F: Future>(shutdown: &Shutdown, future: F) -> Option<F::Output> {
    tokio::select! {
        biased;
        () = shutdown.triggered() => None,
        output = future => Some(output),
    }
}

async fn run<S>(
    consumer: Consumer,
    service: S,
    session: Session,
    shutdown: Shutdown,
) -> Result<(), Error>
where
    S: Service<Message, Response = Outcome> + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    let handler: Arc<str> = Arc::from(consumer.binding.handler_name_ref());
    let mut driver = Driver::new(crate::TRANSPORT, service, shutdown.clone())
        .handler(handler.clone())
        .classifier(consumer.binding.classifier_ref().clone())
        .drain_grace(consumer.drain_timeout);
    let mut result = Ok(());
    let mut session = Some(session);
    consumer
        .connection
        .report_health(consumer.health.clone(), shutdown.clone())
        .await;
    while let Some(current) = session.as_mut() {
        let ready = match driver.ready().await {
            Ok(Some(ready)) => ready,
            Ok(None) => break,
            Err(failed) => {
                result = Err(Error::Service(failed.0.to_string()));
                break;
            }
        };
        let Some(next) = unless_shutdown(&shutdown, current.consumer.next()).await else {
            break;
        };
        match next {
            Some(Ok(delivery)) if !delivery.acker.usable() => {
                // Buffered from a channel that has died since: it cannot be settled and
                // the broker redelivers it, so do not run it now.
                tracing::debug!(
                    target: "tomodachi.amqp",
                    delivery_tag = delivery.delivery_tag,
                    "skipping a delivery of a closed channel (it will be redelivered)"
                );
            }
            Some(Ok(delivery)) => {
                let (message, acker, delivery_tag) = delivery::into_message(
                    delivery,
                    &consumer.resolved,
                    consumer.publisher.as_ref(),
                    &handler,
                );
                let settler = delivery::Settler {
                    acker,
                    delivery_tag,
                    shutdown: shutdown.clone(),
                    ticket: current.acks.as_ref().map(|acks| acks.open(delivery_tag)),
                };
                let span = tracing::info_span!(
                    target: "tomodachi.amqp.handler",
                    "handler",
                    handler = &*handler,
                    r#type = "tomodachi.amqp",
                );
                ready.dispatch(message, settler, span);
            }
            Some(Err(error)) => {
                tracing::warn!(
                    target: "tomodachi.amqp",
                    %error,
                    queue_name = %consumer.resolved.queue_name,
                    "consumer interrupted [amqp]: waiting for the connection to recover"
                );
                consumer
                    .health
                    .degraded(format!("connection lost, recovering: {error}"));
                if let Some(acks) = &current.acks {
                    acks.reset();
                }
                let recovered =
                    unless_shutdown(&shutdown, current.channel.wait_for_recovery(error)).await;
                match recovered {
                    None => break,
                    Some(Ok(())) => {
                        tracing::info!(
                            target: "tomodachi.amqp",
                            queue_name = %consumer.resolved.queue_name,
                            "consumer recovered [amqp]"
                        );
                        consumer.health.ready();
                    }
                    Some(Err(error)) => {
                        tracing::warn!(target: "tomodachi.amqp", %error, "recovery failed [amqp]: reconnecting");
                        current.close().await;
                        session = reconnect(&consumer, &shutdown).await;
                    }
                }
            }
            None => {
                if shutdown.is_triggered() {
                    break;
                }
                tracing::warn!(
                    target: "tomodachi.amqp",
                    queue_name = %consumer.resolved.queue_name,
                    "consumer cancelled by the broker [amqp]: subscribing again"
                );
                consumer
                    .health
                    .degraded("consumer cancelled by the broker: subscribing again");
                current.close().await;
                session = reconnect(&consumer, &shutdown).await;
            }
        }
    }

    tracing::debug!(target: "tomodachi.amqp", queue_name = %consumer.resolved.queue_name, "draining amqp consumer");
    consumer.health.draining();
    if let Some(session) = &session {
        session.cancel().await;
    }
    driver.drain().await;
    if let Some(session) = &session {
        session.close().await;
    }
    if consumer.owns_connection {
        consumer.connection.close().await;
    }
    consumer.health.stopped();
    result
}

/// Subscribes again with back-off (1 s doubling to 30 s) until it works or shutdown.
async fn reconnect(consumer: &Consumer, shutdown: &Shutdown) -> Option<Session> {
    let mut backoff = Duration::from_secs(1);
    loop {
        match unless_shutdown(
            shutdown,
            Session::open(&consumer.connection, &consumer.resolved, false),
        )
        .await?
        {
            Ok(session) => {
                tracing::info!(
                    target: "tomodachi.amqp",
                    queue_name = %consumer.resolved.queue_name,
                    "consuming from queue [amqp] \"{}\" again",
                    consumer.resolved.queue_name
                );
                consumer.health.ready();
                consumer
                    .connection
                    .report_health(consumer.health.clone(), shutdown.clone())
                    .await;
                return Some(session);
            }
            Err(error) => {
                tracing::warn!(target: "tomodachi.amqp", %error, retry_in = ?backoff, "unable to subscribe again [amqp]");
                consumer
                    .health
                    .degraded(format!("unable to subscribe again: {error}"));
                unless_shutdown(shutdown, tokio::time::sleep(backoff)).await?;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}
