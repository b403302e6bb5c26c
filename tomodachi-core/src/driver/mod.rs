//! The one per-message pipeline every message source shares.
//!
//! A message source (SNS+SQS, AMQP, a schedule, an in-memory queue, one written outside
//! this repository) does only what is specific to its broker:
//!
//! 1. wait until the [`Driver`] says the service is [`ready`](Driver::ready),
//! 2. take one unit of work from the broker and build a [`Message`] with its context,
//! 3. [`dispatch`](Ready::dispatch) it with a [`Settle`]r that acks, retries or rejects
//!    it the broker's way,
//! 4. on shutdown, stop taking work and [`drain`](Driver::drain).
//!
//! The driver owns everything between, the same for every source:
//!
//! - **Readiness.** [`Driver::ready`] awaits the service's `poll_ready` (so
//!   `ConcurrencyLimitLayer` is prefetch control), cut short by shutdown.
//! - **A `poll_ready` error** (or a panic in `poll_ready`) means, as tower says, that
//!   the service can take no more work. The policy is the same on every source: the driver
//!   returns [`ServiceFailed`] (it does not log it); the source stops taking work, drains
//!   what is in flight and fails with it (the facade logs `uncaught exception: …` on
//!   `exception`, once, and stops the process with exit code 1). A service that is only
//!   busy must answer `Pending`, not an error.
//! - **Errors and panics** of the service (its call or its future) are classified once,
//!   into an [`Outcome`], by the source's [`Classify`] ([`RetryOnFailure`] unless the
//!   source is given another), with one record: `uncaught exception: …` on logger
//!   `exception`, with the `handler` and `outcome` fields (and the fields of the span the
//!   source runs the message in). Nothing else in the workspace catches a message
//!   handler's panic.
//!   While telemetry is on, the message carries a [`Completion`] in its context that
//!   hears the outcome, so the telemetry layer's span records what the driver decided.
//! - **In flight and drain.** Every dispatched message runs as a task counted in the
//!   transport's [`TaskStats`](crate::stats::TaskStats); [`Driver::drain`] waits for them
//!   (within the grace, if one is set), logging tomodachi's `awaiting running tasks`
//!   (with `task_count`), and reports how many were left.
//!
//! Envelopes are not the driver's business: [`EnvelopeLayer`](crate::EnvelopeLayer) opens
//! them, as a layer of the service.
//!
//! ```
//! use std::time::Duration;
//! use tomodachi_core::driver::{Driver, Settle};
//! use tomodachi_core::stats::{TaskStats, Transport};
//! use tomodachi_core::{Message, Outcome, Shutdown};
//!
//! static STATS: TaskStats = TaskStats::new();
//! static TRANSPORT: Transport = Transport::new("numbers", &STATS);
//!
//! /// Prints what becomes of each message.
//! struct Print(u32);
//!
//! impl Settle for Print {
//!     async fn ack(self) { println!("{} done", self.0) }
//!     async fn retry(self, _delay: Option<Duration>) { println!("{} again", self.0) }
//!     async fn reject(self) { println!("{} dead-lettered", self.0) }
//! }
//!
//! async fn on_number(message: Message) -> Result<Outcome, std::io::Error> {
//!     Ok(if message.body().is_empty() { Outcome::Reject } else { Outcome::Ack })
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tomodachi_core::driver::ServiceFailed> {
//! let shutdown = Shutdown::new();
//! let mut driver = Driver::new(TRANSPORT, tower::service_fn(on_number), shutdown.clone())
//!     .handler("on_number");
//! for n in 0..3 {
//!     let Some(ready) = driver.ready().await? else { break };
//!     ready.dispatch(Message::new(n.to_string()), Print(n), tracing::Span::none());
//! }
//! shutdown.trigger();
//! assert_eq!(driver.drain().await.left, 0);
//! # Ok(()) }
//! ```

mod completion;
mod future;

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio_util::task::TaskTracker;
use tower_service::Service;
use tracing::Instrument as _;

pub use completion::{Completed, Completion};
pub use future::OutcomeFuture;

use crate::stats::Transport;
use crate::{BoxError, Classify, Message, Outcome, RetryOnFailure, Shutdown};

/// The service failed its `poll_ready`: it can take no more work (see the
/// [module docs](self) for the policy).
#[derive(Debug, thiserror::Error)]
#[error("the service failed and can take no more work: {0}")]
pub struct ServiceFailed(#[source] pub BoxError);

/// What every message task of one driver shares.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    classifier: Arc<dyn Classify>,
    handler: Arc<str>,
}

type Notice = Box<dyn Fn(DrainNotice) + Send + Sync>;

/// Drives a `tower::Service<Message, Response = Outcome>` for one message source (see the
/// [module docs](self)).
pub struct Driver<S> {
    service: S,
    shutdown: Shutdown,
    transport: Transport,
    shared: Arc<Shared>,
    tracker: TaskTracker,
    grace: Option<Duration>,
    notice: Option<Notice>,
}

impl<S> std::fmt::Debug for Driver<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("transport", &self.transport)
            .field("handler", &self.shared.handler)
            .field("in_flight", &self.tracker.len())
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}

impl<S> Driver<S> {
    /// A driver of `service` for a source of `transport`, stopping at `shutdown`. Marks the
    /// transport enabled.
    pub fn new(transport: Transport, service: S, shutdown: Shutdown) -> Self {
        transport.enable();
        Self {
            service,
            shutdown,
            transport,
            shared: Arc::new(Shared {
                classifier: Arc::new(RetryOnFailure),
                handler: Arc::from("handler"),
            }),
            tracker: TaskTracker::new(),
            grace: None,
            notice: None,
        }
    }

    /// Names the handler in the driver's records (default `"handler"`).
    #[must_use]
    pub fn handler(mut self, name: impl Into<Arc<str>>) -> Self {
        self.shared_mut().handler = name.into();
        self
    }

    /// Decides the outcome of a failed call (default [`RetryOnFailure`]).
    #[must_use]
    pub fn classifier(mut self, classifier: impl Classify) -> Self {
        self.shared_mut().classifier = Arc::new(classifier);
        self
    }

    /// How long [`drain`](Driver::drain) waits for the messages in flight (default: until
    /// they finish). What is still running after it is left running unsettled by the
    /// source, and is redelivered by the broker.
    #[must_use]
    pub fn drain_grace(mut self, grace: Option<Duration>) -> Self {
        self.grace = grace;
        self
    }

    /// Replaces the drain's `awaiting running tasks` records with the transport's own (a
    /// schedule names each running task, as tomodachi's scheduler does).
    #[must_use]
    pub fn drain_notice(mut self, notice: impl Fn(DrainNotice) + Send + Sync + 'static) -> Self {
        self.notice = Some(Box::new(notice));
        self
    }

    fn shared_mut(&mut self) -> &mut Shared {
        Arc::make_mut(&mut self.shared)
    }

    /// The handler's name.
    pub fn handler_name(&self) -> &Arc<str> {
        &self.shared.handler
    }

    /// The shutdown the driver watches.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Messages dispatched and not settled yet.
    pub fn in_flight(&self) -> usize {
        self.tracker.len()
    }

    /// The service.
    pub fn get_ref(&self) -> &S {
        &self.service
    }
}

impl<S> Driver<S>
where
    S: Service<Message, Response = Outcome>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    /// Waits until the service can take a message. `Ok(None)` once shutdown has started
    /// (the source stops taking work); [`ServiceFailed`] if the service failed (not logged:
    /// the source's caller logs what it fails with; see the [module docs](self)).
    pub async fn ready(&mut self) -> Result<Option<Ready<'_, S>>, ServiceFailed> {
        if self.shutdown.is_triggered() {
            return Ok(None);
        }
        let service = &mut self.service;
        let mut poll_ready = std::future::poll_fn(|cx: &mut Context<'_>| poll_ready(service, cx));
        // Ready at once (the usual case): no shutdown future to set up.
        let now = futures_util::poll!(&mut poll_ready);
        let ready = match now {
            Poll::Ready(ready) => ready,
            Poll::Pending => tokio::select! {
                biased;
                () = self.shutdown.triggered() => return Ok(None),
                ready = &mut poll_ready => ready,
            },
        };
        match ready {
            Ok(()) => Ok(Some(Ready { driver: self })),
            Err(error) => Err(ServiceFailed(error)),
        }
    }

    /// As [`ready`](Self::ready), for work a source received before shutdown started
    /// and holds now (an SQS receive in flight at the signal): `Some` if the service is
    /// ready at once, shutdown or not; `None` if it is not (the source releases the work).
    pub async fn ready_now(&mut self) -> Result<Option<Ready<'_, S>>, ServiceFailed> {
        let service = &mut self.service;
        let mut poll_ready = std::future::poll_fn(|cx: &mut Context<'_>| poll_ready(service, cx));
        match futures_util::poll!(&mut poll_ready) {
            Poll::Pending => Ok(None),
            Poll::Ready(Ok(())) => Ok(Some(Ready { driver: self })),
            Poll::Ready(Err(error)) => {
                tracing::error!(
                    target: "exception",
                    handler = &*self.shared.handler,
                    transport = self.transport.as_str(),
                    "uncaught exception: the service failed and can take no more work: {error}"
                );
                Err(ServiceFailed(error))
            }
        }
    }

    /// Settles a message the source decided about without calling the service (an SQS
    /// body that is not a notification, say), tracked in flight like the others.
    pub fn settle<T: Settle>(&self, settler: T, outcome: Outcome) {
        self.tracker.spawn(settle(settler, outcome));
    }

    /// Stops taking work and waits for the messages in flight to be handled and settled,
    /// within the [grace](Driver::drain_grace). Logs `awaiting running tasks` (on
    /// `tomodachi.shutdown`, with `transport` and `task_count`) after 2 s and
    /// `still awaiting running tasks` every 10 s after that, and a warning for what is
    /// left when the grace runs out.
    pub async fn drain(self) -> Drained {
        let Driver {
            tracker,
            transport,
            grace,
            notice,
            ..
        } = self;
        let name = transport.as_str();
        let finished =
            crate::shutdown::drain_with(&tracker, grace, |notice_of: DrainNotice| match &notice {
                Some(notice) => notice(notice_of),
                None => notice_of.log(name),
            })
            .await;
        let left = if finished { 0 } else { tracker.len() };
        if left > 0 {
            tracing::warn!(
                target: "tomodachi.shutdown",
                transport = name,
                task_count = left,
                "handlers still running after the drain grace: their messages will be redelivered"
            );
        }
        Drained { left }
    }
}

/// A ready service: the one message it may take now. Dropping it takes none.
pub struct Ready<'a, S> {
    driver: &'a mut Driver<S>,
}

impl<S> std::fmt::Debug for Ready<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Ready").field(&self.driver).finish()
    }
}

impl<S> Ready<'_, S>
where
    S: Service<Message, Response = Outcome>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    /// Calls the service with `message` and returns its outcome (errors and panics
    /// classified and logged), without settling or tracking it: [`dispatch`](Ready::dispatch)
    /// less the task and the settler, for test harnesses and benchmarks.
    pub fn call(self, mut message: Message) -> OutcomeFuture<S::Future> {
        let driver = self.driver;
        let service = &mut driver.service;
        let completion = completion(&mut message);
        OutcomeFuture::new(|| service.call(message), driver.shared.clone(), completion)
    }

    /// Calls the service with `message` (inside `span`) and runs the rest as a task: the
    /// outcome (errors and panics classified), then `settler` with it.
    pub fn dispatch<T: Settle>(self, mut message: Message, settler: T, span: tracing::Span) {
        let driver = self.driver;
        let service = &mut driver.service;
        let completion = completion(&mut message);
        let future = span.in_scope(|| {
            OutcomeFuture::new(|| service.call(message), driver.shared.clone(), completion)
        });
        let task = driver.transport.stats().task();
        driver.tracker.spawn(
            async move {
                let outcome = future.await;
                settle(settler, outcome).await;
                drop(task);
            }
            .instrument(span),
        );
    }
}

/// A [`Completion`] in the message's context while telemetry is on (only the telemetry
/// layer waits for one).
fn completion(message: &mut Message) -> Option<Completion> {
    crate::telemetry::enabled().then(|| {
        let completion = Completion::default();
        message.insert_context(completion.clone());
        completion
    })
}

/// `service.poll_ready`, its error boxed at once (nothing of `S::Error` lives across an
/// await) and a panic of it an error too: a layer that panics in `poll_ready` fails the
/// service as an error would, instead of unwinding through the source's loop.
fn poll_ready<S>(service: &mut S, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>>
where
    S: Service<Message>,
    S::Error: Into<BoxError>,
{
    match crate::panic::catch_unwind(std::panic::AssertUnwindSafe(|| service.poll_ready(cx))) {
        Ok(poll) => poll.map_err(Into::into),
        Err(panic) => {
            let message = crate::panic::message(&*panic);
            let error = match crate::panic::location() {
                Some(location) => format!("poll_ready panicked at {location}: {message}"),
                None => format!("poll_ready panicked: {message}"),
            };
            Poll::Ready(Err(error.into()))
        }
    }
}

/// What [`Driver::drain`] left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Drained {
    /// Messages still in flight when the grace ran out (0 if every one was settled).
    pub left: usize,
}

/// A drain's periodic notice: the transport is still waiting for `task_count` messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DrainNotice {
    /// The first notice (after 2 s), or a later one (every 10 s).
    pub first: bool,
    /// Messages in flight.
    pub task_count: usize,
}

impl DrainNotice {
    /// tomodachi's records: `awaiting running tasks`, then `still awaiting running tasks`.
    pub fn log(self, transport: &str) {
        if self.first {
            tracing::warn!(target: "tomodachi.shutdown", transport, task_count = self.task_count, "awaiting running tasks");
        } else {
            tracing::warn!(target: "tomodachi.shutdown", transport, task_count = self.task_count, "still awaiting running tasks");
        }
    }
}

/// Carries out an [`Outcome`] on the broker, the broker's way: the only thing a message
/// source tells the [`Driver`] about its broker.
///
/// A source builds one settler per message (usually the receipt handle or delivery tag and
/// a client), hands it to [`Ready::dispatch`](Ready::dispatch) with the message, and
/// the driver calls exactly one of these methods once the service has answered. A settle
/// that fails is the transport's to log: the broker then redelivers the message.
///
/// ```
/// use std::time::Duration;
/// use tomodachi_core::driver::Settle;
///
/// /// Settles nothing: a timer has no broker.
/// struct Tick;
///
/// impl Settle for Tick {
///     async fn ack(self) {}
///     async fn retry(self, _delay: Option<Duration>) {}
///     async fn reject(self) {}
/// }
/// ```
pub trait Settle: Send + 'static {
    /// The message was handled: remove it (SQS delete, AMQP ack).
    fn ack(self) -> impl Future<Output = ()> + Send;

    /// Deliver it again, after `delay` where the broker can (SQS visibility, AMQP nack
    /// with requeue).
    fn retry(self, delay: Option<Duration>) -> impl Future<Output = ()> + Send;

    /// Never deliver it again: dead-letter it (SQS dead-letter queue, AMQP nack without
    /// requeue).
    fn reject(self) -> impl Future<Output = ()> + Send;
}

/// Calls the method of `settler` that `outcome` asks for.
async fn settle<T: Settle>(settler: T, outcome: Outcome) {
    match outcome {
        Outcome::Ack => settler.ack().await,
        Outcome::Retry { delay } => settler.retry(delay).await,
        Outcome::Reject => settler.reject().await,
    }
}

/// Runs one message through `service` as a driver would (readiness, the call, errors and
/// panics classified by `classifier` and logged) and returns its outcome, without a
/// source or a settler: for tests and harnesses.
///
/// ```
/// use tomodachi_core::{driver, DropOnFailure, HandlerWithoutStateExt as _, Message, Outcome};
///
/// async fn fails() -> Result<(), std::io::Error> {
///     Err(std::io::Error::other("database unavailable"))
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let outcome = driver::oneshot(fails.into_service(), Message::new(""), DropOnFailure).await;
/// assert_eq!(outcome.unwrap(), Outcome::Ack);
/// # }
/// ```
pub async fn oneshot<S>(
    mut service: S,
    mut message: Message,
    classifier: impl Classify,
) -> Result<Outcome, ServiceFailed>
where
    S: Service<Message, Response = Outcome>,
    S::Error: Into<BoxError>,
{
    let shared = Arc::new(Shared {
        classifier: Arc::new(classifier),
        handler: Arc::from("handler"),
    });
    std::future::poll_fn(|cx| poll_ready(&mut service, cx))
        .await
        .map_err(ServiceFailed)?;
    let completion = completion(&mut message);
    Ok(OutcomeFuture::new(|| service.call(message), shared, completion).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::TaskStats;
    use std::sync::Mutex;

    static STATS: TaskStats = TaskStats::new();
    static TEST: Transport = Transport::new("driver_test", &STATS);

    /// Records what the driver settled.
    #[derive(Clone, Default)]
    struct Record(Arc<Mutex<Vec<(String, Outcome)>>>);

    struct Settler(String, Record);

    impl Settle for Settler {
        async fn ack(self) {
            self.1.0.lock().unwrap().push((self.0, Outcome::Ack));
        }
        async fn retry(self, delay: Option<Duration>) {
            self.1
                .0
                .lock()
                .unwrap()
                .push((self.0, Outcome::Retry { delay }));
        }
        async fn reject(self) {
            self.1.0.lock().unwrap().push((self.0, Outcome::Reject));
        }
    }

    async fn by_body(message: Message) -> Result<Outcome, std::io::Error> {
        match message.body().as_ref() {
            b"ok" => Ok(Outcome::Ack),
            b"bad" => Ok(Outcome::Reject),
            b"error" => Err(std::io::Error::other("database unavailable")),
            b"slow" => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(Outcome::Ack)
            }
            _ => panic!("no such body"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn outcomes_errors_and_panics_are_settled_and_drained() {
        let record = Record::default();
        let shutdown = Shutdown::new();
        let mut driver = Driver::new(TEST, tower::service_fn(by_body), shutdown.clone())
            .handler("by_body")
            .drain_grace(Some(Duration::from_secs(60)));
        for body in ["ok", "bad", "error", "panic", "slow"] {
            let ready = driver.ready().await.unwrap().unwrap();
            ready.dispatch(
                Message::new(body),
                Settler(body.into(), record.clone()),
                tracing::Span::none(),
            );
        }
        shutdown.trigger();
        assert!(
            driver.ready().await.unwrap().is_none(),
            "no work after shutdown"
        );
        assert_eq!(driver.drain().await, Drained { left: 0 });
        let mut settled = record.0.lock().unwrap().clone();
        settled.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            settled,
            [
                ("bad".to_owned(), Outcome::Reject),
                ("error".to_owned(), Outcome::retry()),
                ("ok".to_owned(), Outcome::Ack),
                ("panic".to_owned(), Outcome::retry()),
                ("slow".to_owned(), Outcome::Ack),
            ]
        );
        assert_eq!(TEST.stats().current(), 0);
        assert!(crate::stats::transports().contains(&TEST));
    }

    #[tokio::test(start_paused = true)]
    async fn the_grace_leaves_slow_messages_unsettled() {
        let record = Record::default();
        let shutdown = Shutdown::new();
        let mut driver = Driver::new(TEST, tower::service_fn(by_body), shutdown.clone())
            .drain_grace(Some(Duration::from_secs(5)));
        let ready = driver.ready().await.unwrap().unwrap();
        ready.dispatch(
            Message::new("slow"),
            Settler("slow".into(), record.clone()),
            tracing::Span::none(),
        );
        shutdown.trigger();
        assert_eq!(driver.drain().await, Drained { left: 1 });
        assert!(record.0.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_failed_service_ends_readiness() {
        #[derive(Clone)]
        struct Broken;
        impl Service<Message> for Broken {
            type Response = Outcome;
            type Error = std::io::Error;
            type Future = std::future::Ready<Result<Outcome, std::io::Error>>;
            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
                Poll::Ready(Err(std::io::Error::other("worker gone")))
            }
            fn call(&mut self, _: Message) -> Self::Future {
                std::future::ready(Ok(Outcome::Ack))
            }
        }
        let mut driver = Driver::new(TEST, Broken, Shutdown::new());
        let error = driver.ready().await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "the service failed and can take no more work: worker gone"
        );
    }

    /// A layer that panics in `poll_ready` fails the service (the source stops, drains
    /// and fails, the process exits 1); the panic does not unwind through the source.
    #[tokio::test]
    async fn a_panic_in_poll_ready_fails_the_service() {
        #[derive(Clone)]
        struct Panics;
        impl Service<Message> for Panics {
            type Response = Outcome;
            type Error = std::io::Error;
            type Future = std::future::Ready<Result<Outcome, std::io::Error>>;
            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
                panic!("semaphore gone")
            }
            fn call(&mut self, _: Message) -> Self::Future {
                std::future::ready(Ok(Outcome::Ack))
            }
        }
        let mut driver = Driver::new(TEST, Panics, Shutdown::new());
        let error = driver.ready().await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "the service failed and can take no more work: poll_ready panicked: semaphore gone"
        );
        let error = oneshot(Panics, Message::new(""), RetryOnFailure)
            .await
            .unwrap_err();
        assert!(error.to_string().ends_with("semaphore gone"), "{error}");
    }

    #[tokio::test]
    async fn classifiers_decide_failures() {
        let service = tower::service_fn(by_body);
        assert_eq!(
            oneshot(service, Message::new("error"), crate::DropOnFailure)
                .await
                .unwrap(),
            Outcome::Ack
        );
        let reject_panics =
            crate::classify_fn(|failure: &crate::HandlerFailure<'_>| match failure {
                crate::HandlerFailure::Panic(text) if text.contains("no such") => Outcome::Reject,
                _ => Outcome::retry(),
            });
        assert_eq!(
            oneshot(service, Message::new("?"), reject_panics)
                .await
                .unwrap(),
            Outcome::Reject
        );
    }
}
