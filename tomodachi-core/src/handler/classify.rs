use std::error::Error;
use std::fmt;

use crate::Outcome;

/// A handler failure a [`Classify`] judges.
#[derive(Debug, Clone, Copy)]
pub enum HandlerFailure<'a> {
    /// The handler returned `Err`.
    Error(&'a (dyn Error + Send + Sync + 'static)),
    /// The handler panicked, with this message.
    Panic(&'a str),
}

impl fmt::Display for HandlerFailure<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Error(error) => write!(f, "{error}"),
            Self::Panic(message) => write!(f, "panic: {message}"),
        }
    }
}

/// Decides the outcome of a failed handler (tower-http's `classify` idea): a message
/// source's [driver](crate::driver) asks it when the service returns an error or panics.
///
/// The default, [`RetryOnFailure`], loses nothing. [`DropOnFailure`] is Python tomodachi's
/// behaviour (the message is acknowledged and gone). [`classify_fn`] takes a closure.
///
/// ```
/// use tomodachi_core::{classify_fn, Classify, HandlerFailure, Outcome};
///
/// let classifier = classify_fn(|failure: &HandlerFailure<'_>| match failure {
///     HandlerFailure::Panic(_) => Outcome::Reject,
///     HandlerFailure::Error(_) => Outcome::retry(),
/// });
/// assert_eq!(classifier.classify(&HandlerFailure::Panic("boom")), Outcome::Reject);
/// ```
pub trait Classify: fmt::Debug + Send + Sync + 'static {
    /// The outcome of a message whose handler failed.
    fn classify(&self, failure: &HandlerFailure<'_>) -> Outcome;
}

impl<C: Classify + ?Sized> Classify for std::sync::Arc<C> {
    fn classify(&self, failure: &HandlerFailure<'_>) -> Outcome {
        (**self).classify(failure)
    }
}

impl<C: Classify + ?Sized> Classify for Box<C> {
    fn classify(&self, failure: &HandlerFailure<'_>) -> Outcome {
        (**self).classify(failure)
    }
}

/// A classifier chosen at run time (what sources keep in their configuration).
pub type SharedClassifier = std::sync::Arc<dyn Classify>;

/// Every failure is retried (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct RetryOnFailure;

impl Classify for RetryOnFailure {
    fn classify(&self, _failure: &HandlerFailure<'_>) -> Outcome {
        Outcome::retry()
    }
}

/// Every failure is acknowledged: the message is dropped (Python tomodachi's behaviour).
#[derive(Debug, Clone, Copy, Default)]
pub struct DropOnFailure;

impl Classify for DropOnFailure {
    fn classify(&self, _failure: &HandlerFailure<'_>) -> Outcome {
        Outcome::Ack
    }
}

/// A classifier made from a closure; see [`classify_fn`].
#[derive(Clone, Copy)]
pub struct ClassifyFn<F>(F);

impl<F> fmt::Debug for ClassifyFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClassifyFn").finish_non_exhaustive()
    }
}

/// A classifier made from a closure.
pub fn classify_fn<F>(f: F) -> ClassifyFn<F>
where
    F: Fn(&HandlerFailure<'_>) -> Outcome + Send + Sync + 'static,
{
    ClassifyFn(f)
}

impl<F> Classify for ClassifyFn<F>
where
    F: Fn(&HandlerFailure<'_>) -> Outcome + Send + Sync + 'static,
{
    fn classify(&self, failure: &HandlerFailure<'_>) -> Outcome {
        (self.0)(failure)
    }
}
