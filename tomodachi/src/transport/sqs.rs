//! SNS+SQS handlers on the service builder.

use std::sync::Arc;

use tokio::sync::OnceCell;
use tomodachi_core::{Handler, Source, Transport};
use tomodachi_sqs::{AwsClients, SqsConsumer, Subscription};

use crate::Service;
use crate::service::running;

impl<S> Service<S>
where
    S: Clone + Send + Sync + 'static,
{
    /// Calls `handler` for each message of `subscription` (tomodachi's `@aws_sns_sqs`).
    ///
    /// Topics, queues, policies and the subscription are set up at startup from
    /// `options.aws_sns_sqs` and `options.aws_endpoint_urls`; the service's handlers share
    /// one set of AWS clients. Messages are opened with the subscription's envelope, else
    /// the service's.
    ///
    /// ```no_run
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
    /// ```
    #[must_use]
    pub fn sqs<H, T>(self, subscription: Subscription, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        let (service, name) = self.message_handler(handler);
        self.register(Transport::AwsSnsSqs, move |context| async move {
            let mut subscription = subscription;
            if subscription.handler_name_ref() == "handler" {
                subscription = subscription.handler_name(name);
            }
            if subscription.envelope_ref().is_none()
                && let Some(envelope) = &context.envelope
            {
                subscription = subscription.envelope(envelope.clone());
            }
            let options = context.options.aws_sns_sqs.clone();
            let clients = context.shared(|| Arc::new(OnceCell::<AwsClients>::new()));
            let clients = clients
                .get_or_try_init(|| {
                    AwsClients::from_options(&options, &context.options.aws_endpoint_urls)
                })
                .await?
                .clone();
            #[cfg(feature = "otel")]
            let envelope = crate::instrument::envelope_in_span(subscription.envelope_ref());
            #[cfg(not(feature = "otel"))]
            let envelope = None;
            if envelope.is_some() {
                subscription = subscription.envelope(tomodachi_core::RawEnvelope);
            }
            let service = context.wrap(service, envelope.as_ref());
            let work = SqsConsumer::new(clients, options, subscription, context.identity.clone())
                .start(service, context.shutdown.clone())
                .await?;
            Ok(running(work))
        })
    }
}
