//! SQS handlers (SNS+SQS with the `sns` feature) on the service builder.

use tomodachi_core::{BoxError, Handler, Message, Outcome, Source};
use tomodachi_sqs::{SqsConsumer, Subscription};

use crate::Service;
use crate::service::boxed;

impl<S> Service<S>
where
    S: Clone + Send + Sync + 'static,
{
    /// Calls `handler` for each message of `subscription` (tomodachi's `@aws_sns_sqs`).
    ///
    /// Queues (and with the `sns` feature topics, policies and the subscription) are set up
    /// at startup from `options.aws_sns_sqs` and `options.aws_endpoint_urls`; the service's
    /// handlers share one set of AWS clients (the one its `SqsSender` and `SnsPublisher`
    /// use). Messages are opened with the subscription's envelope, else the service's.
    ///
    /// A queue of its own (the `sqs` feature; `SqsSender` or anything else feeds it):
    ///
    /// ```no_run
    /// use tomodachi::sqs::{QueueUrl, Subscription};
    /// use tomodachi::{Data, JsonEnvelope, Service};
    ///
    /// async fn on_order(QueueUrl(queue): QueueUrl, Data(data): Data<serde_json::Value>) {
    ///     tracing::info!(%queue, %data, "received");
    /// }
    ///
    /// # async fn run() -> tomodachi::Exit {
    /// Service::new("orders")
    ///     .envelope(JsonEnvelope)
    ///     .sqs(Subscription::new().queue("orders"), on_order)
    ///     .run()
    ///     .await
    /// # }
    /// ```
    ///
    /// A queue subscribed to an SNS topic (the `sns` feature):
    ///
    /// ```no_run
    /// # #[cfg(feature = "sns")] {
    /// use tomodachi::sqs::{Subscription, Topic};
    /// use tomodachi::{Data, JsonEnvelope, Service};
    ///
    /// async fn on_event(Topic(topic): Topic, Data(data): Data<serde_json::Value>) {
    ///     tracing::info!(%topic, %data, "received");
    /// }
    ///
    /// # async fn run() -> tomodachi::Exit {
    /// Service::new("aws-example")
    ///     .envelope(JsonEnvelope)
    ///     .sqs(Subscription::topic("example-topic").queue("example-queue"), on_event)
    ///     .run()
    ///     .await
    /// # }
    /// # }
    /// ```
    #[must_use]
    pub fn sqs<H, T>(self, subscription: Subscription, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        let (service, name) = self.message_handler(handler);
        let subscription = if subscription.handler_name_ref() == "handler" {
            subscription.handler_name(name)
        } else {
            subscription
        };
        self.sqs_service(subscription, service)
    }

    /// Drives `service` (any `tower::Service<Message, Response = Outcome>`) with each
    /// message of `subscription`: [`sqs`](Service::sqs) without the handler conversion.
    /// The service's layers, envelope and telemetry wrap it as they wrap handlers.
    ///
    /// ```no_run
    /// use tomodachi::sqs::Subscription;
    /// use tomodachi::{BoxError, Message, Outcome, Service};
    ///
    /// # async fn run() -> tomodachi::Exit {
    /// let echo = tower::service_fn(|message: Message| async move {
    ///     tracing::info!(bytes = message.body().len(), "received");
    ///     Ok::<_, BoxError>(Outcome::Ack)
    /// });
    /// Service::new("aws-example")
    ///     .sqs_service(Subscription::new().queue("echo").handler_name("echo"), echo)
    ///     .run()
    ///     .await
    /// # }
    /// ```
    #[must_use]
    pub fn sqs_service<T>(self, subscription: Subscription, service: T) -> Self
    where
        T: tower::Service<Message, Response = Outcome> + Clone + Send + Sync + 'static,
        T::Error: Into<BoxError>,
        T::Future: Send + 'static,
    {
        let service = boxed(service);
        self.register(tomodachi_sqs::TRANSPORT, move |context| async move {
            let mut subscription = subscription;
            let envelope = subscription
                .take_envelope()
                .or_else(|| context.envelope.clone());
            let options = context.options.aws_sns_sqs.clone();
            let clients = crate::publishers::aws_clients(&context)
                .get()
                .await?
                .clone();
            let service = context.wrap(service, envelope.as_ref());
            let health = context.reporter(format!(
                "sqs:{}",
                subscription
                    .topic_name()
                    .unwrap_or(subscription.handler_name_ref())
            ));
            let work = SqsConsumer::new(clients, options, subscription, context.identity.clone())
                .health(health.clone())
                .start(service, context.shutdown.clone())
                .await?;
            Ok(context.running(health, work))
        })
    }
}
