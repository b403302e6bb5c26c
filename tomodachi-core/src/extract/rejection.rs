use std::borrow::Cow;
use std::convert::Infallible;
use std::fmt;

use crate::Outcome;

/// Why an extractor could not produce its value, and what to do with the message.
///
/// A rejection is never a panic: the handler is not called, the reason is logged and the
/// rejection's outcome is the message's outcome.
///
/// | rejection | outcome | why |
/// |---|---|---|
/// | [`Rejection::invalid_data`] | [`Outcome::Reject`] | the payload can never be read by this handler |
/// | [`Rejection::missing_context`] | [`Outcome::Retry`] | a wiring mistake: keep the message for the fixed deploy |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    outcome: Outcome,
    reason: Cow<'static, str>,
}

impl Rejection {
    /// A rejection with this outcome and reason.
    pub fn new(outcome: Outcome, reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            outcome,
            reason: reason.into(),
        }
    }

    /// The payload does not deserialize into the handler's type: [`Outcome::Reject`].
    pub fn invalid_data(reason: impl fmt::Display) -> Self {
        Self::new(Outcome::Reject, format!("invalid message data: {reason}"))
    }

    /// The message lacks a context value of type `T` (the handler is bound to the
    /// wrong transport, or a layer is missing): [`Outcome::Retry`].
    pub fn missing_context<T>() -> Self {
        Self::new(
            Outcome::retry(),
            format!(
                "missing message context `{}`: is the handler bound to the right transport?",
                std::any::type_name::<T>()
            ),
        )
    }

    /// The outcome of the message.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// Why extraction failed.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Rejection {}

impl From<Infallible> for Rejection {
    fn from(never: Infallible) -> Self {
        match never {}
    }
}
