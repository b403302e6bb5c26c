//! AMQP handlers on the service builder.

use tomodachi_amqp::{AmqpConnection, AmqpPublisher, Binding, Consumer};
use tomodachi_core::{BoxError, Handler, Message, Outcome, Source};

use crate::Service;
use crate::service::{boxed, running};

impl<S> Service<S>
where
    S: Clone + Send + Sync + 'static,
{
    /// Calls `handler` for each message on `binding` (tomodachi's `@amqp`).
    ///
    /// The service's handlers share one connection (from `options.amqp`). Messages are
    /// opened with the binding's envelope, else the service's; handlers may take the
    /// AMQP context extractors and an `AmqpPublisher`.
    ///
    /// ```no_run
    /// use tomodachi::amqp::{Binding, RoutingKey};
    /// use tomodachi::{Data, JsonEnvelope, Service};
    ///
    /// async fn on_event(RoutingKey(key): RoutingKey, Data(data): Data<serde_json::Value>) {
    ///     tracing::info!(%key, %data, "received");
    /// }
    ///
    /// # async fn run() -> tomodachi::Exit {
    /// Service::new("amqp-example")
    ///     .envelope(JsonEnvelope)
    ///     .amqp(Binding::routing_key("example.topic"), on_event)
    ///     .run()
    ///     .await
    /// # }
    /// ```
    #[must_use]
    pub fn amqp<H, T>(self, binding: Binding, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        let (service, name) = self.message_handler(handler);
        // The function's name: tomodachi's non-competing queue name hashes it.
        let binding = if binding.get_handler_name() == "handler" {
            binding.handler_name(name)
        } else {
            binding
        };
        self.amqp_service(binding, service)
    }

    /// Drives `service` (any `tower::Service<Message, Response = Outcome>`) with each
    /// message on `binding`: [`amqp`](Service::amqp) without the handler conversion. The
    /// service's layers, envelope and telemetry wrap it as they wrap handlers; give a
    /// non-competing binding a [`handler_name`](Binding::handler_name), its queue name
    /// hashes it.
    ///
    /// ```no_run
    /// use tomodachi::amqp::Binding;
    /// use tomodachi::{BoxError, Message, Outcome, Service};
    ///
    /// # async fn run() -> tomodachi::Exit {
    /// let echo = tower::service_fn(|message: Message| async move {
    ///     tracing::info!(bytes = message.body().len(), "received");
    ///     Ok::<_, BoxError>(Outcome::Ack)
    /// });
    /// Service::new("amqp-example")
    ///     .amqp_service(Binding::routing_key("example.topic").handler_name("echo"), echo)
    ///     .run()
    ///     .await
    /// # }
    /// ```
    #[must_use]
    pub fn amqp_service<T>(self, binding: Binding, service: T) -> Self
    where
        T: tower::Service<Message, Response = Outcome> + Clone + Send + Sync + 'static,
        T::Error: Into<BoxError>,
        T::Future: Send + 'static,
    {
        let service = boxed(service);
        self.register(tomodachi_amqp::TRANSPORT, move |context| async move {
            let mut binding = binding;
            let envelope = binding.take_envelope().or_else(|| context.envelope.clone());
            let options = context.options.amqp.clone();
            let connection = context.shared(|| AmqpConnection::new(options));
            let mut publisher =
                AmqpPublisher::with_connection(connection.clone(), context.identity.clone());
            if let Some(envelope) = &context.envelope {
                publisher = publisher.envelope(envelope.clone());
            }
            let service = context.wrap(service, envelope.as_ref());
            let work = Consumer::with_connection(connection, binding, context.identity.clone())
                .publisher(publisher)
                .start(service, context.shutdown.clone())
                .await?;
            Ok(running(work))
        })
    }
}
