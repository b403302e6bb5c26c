//! What becomes of a message once its handler is done.

use std::time::Duration;

/// The outcome of handling one message.
///
/// | outcome | SNS+SQS | AMQP | schedule |
/// |---|---|---|---|
/// | [`Ack`](Outcome::Ack) | delete | ack | done |
/// | [`Retry`](Outcome::Retry) | keep (visibility set to `delay`) | nack, requeue | logged |
/// | [`Reject`](Outcome::Reject) | dead-letter queue | nack, no requeue (to the DLX) | logged |
///
/// A handler error or panic becomes an outcome through a
/// [classifier](crate::Classify); the default is [`Outcome::retry`]: no message is lost.
///
/// ```
/// use std::time::Duration;
/// use tomodachi_core::Outcome;
///
/// assert!(Outcome::ack().is_ack());
/// assert_eq!(Outcome::retry_after(Duration::from_secs(5)).delay(), Some(Duration::from_secs(5)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Handled: remove the message from its queue.
    Ack,
    /// Not handled now: deliver it again, after `delay` where the transport supports it.
    Retry {
        /// How long to wait before the next delivery.
        delay: Option<Duration>,
    },
    /// Never handle it: dead-letter it and do not redeliver.
    Reject,
}

impl Outcome {
    /// [`Outcome::Ack`].
    pub const fn ack() -> Self {
        Self::Ack
    }

    /// [`Outcome::Retry`] without a delay.
    pub const fn retry() -> Self {
        Self::Retry { delay: None }
    }

    /// [`Outcome::Retry`] after `delay`.
    pub const fn retry_after(delay: Duration) -> Self {
        Self::Retry { delay: Some(delay) }
    }

    /// [`Outcome::Reject`].
    pub const fn reject() -> Self {
        Self::Reject
    }

    /// Is it [`Outcome::Ack`]?
    pub const fn is_ack(&self) -> bool {
        matches!(self, Self::Ack)
    }

    /// Is it [`Outcome::Retry`]?
    pub const fn is_retry(&self) -> bool {
        matches!(self, Self::Retry { .. })
    }

    /// Is it [`Outcome::Reject`]?
    pub const fn is_reject(&self) -> bool {
        matches!(self, Self::Reject)
    }

    /// The retry delay, if any.
    pub const fn delay(&self) -> Option<Duration> {
        match self {
            Self::Retry { delay } => *delay,
            _ => None,
        }
    }

    /// A short name: `"ack"`, `"retry"` or `"reject"` (for logs and metrics).
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Ack => "ack",
            Self::Retry { .. } => "retry",
            Self::Reject => "reject",
        }
    }
}

/// What a handler may return: `()`, [`Outcome`], or a `Result` of them.
///
/// `Err` is a handler failure; the [classifier](crate::Classify) turns it into an outcome.
pub trait IntoOutcome {
    /// Converts into an outcome, or the error a classifier must judge.
    fn into_outcome(self) -> Result<Outcome, crate::BoxError>;
}

impl IntoOutcome for () {
    fn into_outcome(self) -> Result<Outcome, crate::BoxError> {
        Ok(Outcome::Ack)
    }
}

impl IntoOutcome for Outcome {
    fn into_outcome(self) -> Result<Outcome, crate::BoxError> {
        Ok(self)
    }
}

impl<T, E> IntoOutcome for Result<T, E>
where
    T: IntoOutcome,
    E: Into<crate::BoxError>,
{
    fn into_outcome(self) -> Result<Outcome, crate::BoxError> {
        match self {
            Ok(value) => value.into_outcome(),
            Err(error) => Err(error.into()),
        }
    }
}
