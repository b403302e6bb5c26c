//! AMQP handlers on the service builder.

use tomodachi_amqp::{AmqpConnection, AmqpPublisher, Binding, Consumer};
use tomodachi_core::{Handler, Source, Transport};

use crate::Service;
use crate::service::running;

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
        self.register(Transport::Amqp, move |context| async move {
            let mut binding = binding;
            if binding.handler_name_ref().is_empty() {
                binding = binding.handler_name(name);
            }
            if binding.envelope_ref().is_none()
                && let Some(envelope) = &context.envelope
            {
                binding = binding.envelope(envelope.clone());
            }
            let options = context.options.amqp.clone();
            let connection = context.shared(|| AmqpConnection::new(options));
            let mut publisher =
                AmqpPublisher::with_connection(connection.clone(), context.identity.clone());
            if let Some(envelope) = &context.envelope {
                publisher = publisher.envelope(envelope.clone());
            }
            #[cfg(feature = "otel")]
            let envelope = crate::instrument::envelope_in_span(binding.envelope_ref());
            #[cfg(not(feature = "otel"))]
            let envelope = None;
            if envelope.is_some() {
                binding = binding.envelope(tomodachi_core::RawEnvelope);
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
