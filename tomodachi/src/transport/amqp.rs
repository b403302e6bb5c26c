//! AMQP handlers on the service builder.

use tomodachi_amqp::{Binding, Consumer};
use tomodachi_core::{BoxError, Handler, Message, Outcome, Source};

use crate::Service;
use crate::service::boxed;

impl<S> Service<S>
where
    S: Clone + Send + Sync + 'static,
{
    /// Calls `handler` for each message on `binding` (tomodachi's `@amqp`).
    ///
    /// The service's handlers share one connection (from `options.amqp`), named
    /// `"<service name> (<uuid>)"` (the `connection_name` client property). Messages are
    /// opened with the binding's envelope, else the service's; handlers may take the
    /// AMQP context extractors and the service's publishers (`AmqpPublisher`, ...).
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
        self.amqp_service(named(binding, name), service)
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
            let connection = crate::publishers::amqp_connection(&context);
            let service = context.wrap(service, envelope.as_ref());
            let consumer = Consumer::with_connection(connection, binding, context.identity.clone());
            let health = context.reporter(format!("amqp:{}", consumer.resolved().queue_name));
            let work = consumer
                .health(health.clone())
                .start(service, context.shutdown.clone())
                .await?;
            Ok(context.running(health, work))
        })
    }
}

/// `binding` named after the handler function unless named already: tomodachi's
/// non-competing queue name hashes the function's name.
fn named(binding: Binding, function: &str) -> Binding {
    if binding.handler_name_ref() == "handler" {
        binding.handler_name(function)
    } else {
        binding
    }
}

#[cfg(test)]
mod tests {
    use tomodachi_amqp::{AmqpOptions, Binding, auto_queue_name};
    use tomodachi_core::{HandlerService, ServiceIdentity};

    async fn on_event() {}

    /// The name `.amqp()` gives a binding of `on_event`, as `Service::amqp` takes it.
    fn function_name<H: tomodachi_core::Handler<T, ()>, T>(handler: H) -> &'static str {
        let service: HandlerService<H, T, ()> = handler.with_state(());
        service.name()
    }

    #[test]
    fn a_non_competing_queue_hashes_the_function_name() {
        let identity = ServiceIdentity::new("svc", "0c7d2f5e-9b1a-4c3e-8f00-1a2b3c4d5e6f");
        let binding = Binding::routing_key("example.topic").competing(false);
        let name = function_name(on_event);
        assert_eq!(name, "on_event");
        let resolved = super::named(binding, name).resolve(&AmqpOptions::default(), &identity);
        // tomodachi: sha256(encode_routing_key(rk) + function name + service uuid), the
        // digest from Python's hashlib
        assert_eq!(
            resolved.queue_name,
            auto_queue_name("example.topic", false, "on_event", &identity.uuid, "")
        );
        assert_eq!(
            resolved.queue_name,
            "469877debc64f420c5d47599317d5c9fccba57fb1ec53814acfa625646c89c6e"
        );
        let named_by_user = super::named(
            Binding::routing_key("example.topic")
                .competing(false)
                .handler_name("mine"),
            name,
        );
        assert_eq!(named_by_user.handler_name_ref(), "mine");
    }
}
