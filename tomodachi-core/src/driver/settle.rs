//! The transport's side of an outcome.

use std::future::Future;
use std::time::Duration;

use crate::Outcome;

/// Carries out an [`Outcome`] on the broker, the broker's way: the only thing a message
/// source tells the [`Driver`](super::Driver) about its broker.
///
/// A source builds one settler per message (usually the receipt handle or delivery tag and
/// a client), hands it to [`Ready::dispatch`](super::Ready::dispatch) with the message, and
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
pub(crate) async fn settle<T: Settle>(settler: T, outcome: Outcome) {
    match outcome {
        Outcome::Ack => settler.ack().await,
        Outcome::Retry { delay } => settler.retry(delay).await,
        Outcome::Reject => settler.reject().await,
    }
}
