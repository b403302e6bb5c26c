//! Handlers' unit tests: one message through the layers production uses (the `test-util`
//! feature).
//!
//! For a test of a whole service without a broker, its handlers can consume an in-memory
//! queue ([`tomodachi::memory`](crate::memory)) through [`Service::source`]:
//!
//! ```
//! use tomodachi::core::HandlerWithoutStateExt as _;
//! use tomodachi::memory::{Broker, MemorySource, TRANSPORT};
//! use tomodachi::Service;
//!
//! async fn on_paid() {}
//!
//! let broker = Broker::new();
//! let orders = broker.queue("orders");
//! broker.subscribe("order-paid", &orders);
//! let service = Service::new("orders").source(TRANSPORT, MemorySource::new(&orders), on_paid.into_service());
//! # let _ = service;
//! ```

use serde::Serialize;
use tomodachi_core::{Classify, Handler, Message, Outcome, RetryOnFailure, ServiceIdentity};

use crate::Service;

impl<S> Service<S>
where
    S: Clone + Send + Sync + 'static,
{
    /// Runs one `message` through `handler` exactly as this service's sources would (the
    /// service's state and [layers](Service::layer), its envelope, the OpenTelemetry span
    /// when instrumented, and the driver that classifies errors and panics, retry by
    /// default) and returns the [`Outcome`], without a broker (the `test-util` feature).
    ///
    /// ```
    /// use tomodachi::{Data, JsonEnvelope, Message, Outcome, Service};
    ///
    /// async fn on_paid(Data(order): Data<u64>) -> Result<(), std::io::Error> {
    ///     if order == 0 { return Err(std::io::Error::other("no such order")) }
    ///     Ok(())
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let service = Service::new("orders").envelope(JsonEnvelope);
    /// assert_eq!(service.handle(on_paid, service.message(&7, "order-paid")).await, Outcome::Ack);
    /// assert_eq!(service.handle(on_paid, service.message(&0, "order-paid")).await, Outcome::retry());
    /// assert_eq!(service.handle(on_paid, Message::new("not an envelope")).await, Outcome::Reject);
    /// # }
    /// ```
    pub async fn handle<H, T>(&self, handler: H, message: Message) -> Outcome
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.handle_with(RetryOnFailure, handler, message).await
    }

    /// [`handle`](Service::handle) for a handler whose binding or subscription decides its
    /// failures with `classifier` (`.on_failure(DropOnFailure)`, say).
    ///
    /// ```
    /// use tomodachi::{DropOnFailure, Message, Outcome, Service};
    ///
    /// async fn fails() -> Result<(), std::io::Error> {
    ///     Err(std::io::Error::other("database unavailable"))
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let outcome = Service::new("orders").handle_with(DropOnFailure, fails, Message::new("")).await;
    /// assert_eq!(outcome, Outcome::Ack);
    /// # }
    /// ```
    pub async fn handle_with<H, T>(
        &self,
        classifier: impl Classify,
        handler: H,
        message: Message,
    ) -> Outcome
    where
        H: Handler<T, S>,
        T: 'static,
    {
        let (service, _name) = self.message_handler(handler);
        let service = crate::service::wrap(&self.layers, service, self.envelope.as_ref(), None);
        match tomodachi_core::driver::oneshot(service, message, classifier).await {
            Ok(outcome) => outcome,
            // A service that can take no work leaves the message with the broker.
            Err(_failed) => Outcome::retry(),
        }
    }

    /// A message carrying `data` published to `topic` by another service, sealed with
    /// this service's envelope (as JSON without one): what its handlers receive.
    ///
    /// # Panics
    ///
    /// If `data` does not serialize or the envelope cannot seal it (a test's mistake).
    pub fn message<T: Serialize + ?Sized>(&self, data: &T, topic: &str) -> Message {
        let data = match tomodachi_core::to_python_json(data) {
            Ok(data) => data,
            Err(error) => panic!("the test message's data does not serialize: {error}"),
        };
        let sender = ServiceIdentity::new("test-sender", "test-sender-uuid");
        match &self.envelope {
            Some(envelope) => match envelope.seal(&sender, topic, &data) {
                Ok(body) => Message::new(body),
                Err(error) => panic!("the envelope cannot seal the test message: {error}"),
            },
            None => Message::new(data.get().to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use tomodachi_core::{Extension, Message, Outcome, State};

    use crate::Service;

    #[derive(Clone)]
    struct Pool(&'static str);

    #[derive(Clone)]
    struct Tenant(&'static str);

    /// Acks only when it sees the service's state and the layer's extension.
    async fn on_order(State(pool): State<Pool>, Extension(tenant): Extension<Tenant>) -> Outcome {
        if pool.0 == "db" && tenant.0 == "acme" {
            Outcome::Ack
        } else {
            Outcome::Reject
        }
    }

    #[tokio::test]
    async fn a_handler_takes_the_state_and_the_extension_layer_s_value() {
        let service = Service::new("orders")
            .state(Pool("db"))
            .layer(Extension(Tenant("acme")));
        assert_eq!(
            service.handle(on_order, Message::new("")).await,
            Outcome::Ack
        );
    }

    #[tokio::test]
    async fn without_the_extension_layer_the_extractor_rejects_and_nothing_is_acked() {
        let service = Service::new("orders").state(Pool("db"));
        assert_ne!(
            service.handle(on_order, Message::new("")).await,
            Outcome::Ack
        );
    }
}
