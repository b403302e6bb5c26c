//! The in-memory queue as a message source, on core's driver.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tower_service::Service;

use super::{Delivery, Queue};
use crate::driver::{Driver, ServiceFailed, Settle};
use crate::stats::{TaskStats, Transport};
use crate::{
    BoxError, Classify, Message, Outcome, RetryOnFailure, SharedClassifier, Shutdown, Source,
};

static STATS: TaskStats = TaskStats::new();

/// The in-memory transport (`memory` in the execution context).
pub static TRANSPORT: Transport = Transport::new("memory", &STATS);

/// Consumes a [`Queue`]: one consumer of it (start several for competing consumers).
///
/// Waits for the service's readiness before it takes each message, hands it to core's
/// [`Driver`] and settles the outcome (see the [module docs](super)). On shutdown it
/// stops taking messages at once, lets the ones in flight finish and settle (within the
/// [grace](MemorySource::drain_grace)), and leaves the rest on the queue.
#[derive(Debug)]
pub struct MemorySource {
    queue: Queue,
    handler: Arc<str>,
    classifier: SharedClassifier,
    grace: Option<Duration>,
}

impl MemorySource {
    /// A consumer of `queue`.
    pub fn new(queue: &Queue) -> Self {
        Self {
            queue: queue.clone(),
            handler: Arc::from("handler"),
            classifier: Arc::new(RetryOnFailure),
            grace: None,
        }
    }

    /// Names the handler in the driver's records.
    #[must_use]
    pub fn handler_name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.handler = name.into();
        self
    }

    /// Decides the outcome of a failed call (default [`RetryOnFailure`]).
    #[must_use]
    pub fn on_failure(mut self, classifier: impl Classify) -> Self {
        self.classifier = Arc::new(classifier);
        self
    }

    /// How long the drain waits for messages in flight (default: until they finish).
    #[must_use]
    pub fn drain_grace(mut self, grace: Option<Duration>) -> Self {
        self.grace = grace;
        self
    }
}

impl<S> Source<S> for MemorySource
where
    S: Service<Message, Response = Outcome> + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Error = ServiceFailed;
    type Running = BoxFuture<'static, Result<(), ServiceFailed>>;

    async fn start(self, service: S, shutdown: Shutdown) -> Result<Self::Running, ServiceFailed> {
        let mut driver = Driver::new(TRANSPORT, service, shutdown.clone())
            .handler(self.handler)
            .classifier(self.classifier)
            .drain_grace(self.grace);
        let queue = self.queue;
        Ok(Box::pin(async move {
            let result = consume(&mut driver, &queue, &shutdown).await;
            driver.drain().await;
            result
        }))
    }
}

async fn consume<S>(
    driver: &mut Driver<S>,
    queue: &Queue,
    shutdown: &Shutdown,
) -> Result<(), ServiceFailed>
where
    S: Service<Message, Response = Outcome>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    while let Some(ready) = driver.ready().await? {
        let delivery = tokio::select! {
            biased;
            () = shutdown.triggered() => return Ok(()),
            delivery = queue.receive() => delivery,
        };
        let message = delivery.message();
        let span = tracing::info_span!("memory", queue = queue.name());
        ready.dispatch(message, Settler(delivery), span);
    }
    Ok(())
}

/// Settles a [`Delivery`].
struct Settler(Delivery);

impl Settle for Settler {
    async fn ack(self) {
        self.0.ack();
    }

    async fn retry(self, delay: Option<Duration>) {
        self.0.retry(delay);
    }

    async fn reject(self) {
        self.0.reject();
    }
}
