//! What a scheduled run knows: its context and the handler extractors reading it.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tomodachi_core::{FromMessageParts, Parts, Rejection};

use crate::Interval;

/// The transport context of a scheduled run, attached to its (empty) [`Message`].
///
/// Handlers usually take [`InvocationTime`] or [`Interval`] instead; this extractor gives
/// everything at once.
///
/// [`Message`]: tomodachi_core::Message
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScheduleContext {
    /// The due time of this run (a whole second), not the moment it started.
    pub invocation_time: DateTime<Utc>,
    /// The schedule's interval as configured.
    pub interval: Interval,
    /// The handler's name in log records.
    pub handler: Arc<str>,
}

impl ScheduleContext {
    /// A context for a run due at `invocation_time` (for tests and custom sources).
    pub fn new(
        invocation_time: DateTime<Utc>,
        interval: Interval,
        handler: impl Into<Arc<str>>,
    ) -> Self {
        Self {
            invocation_time,
            interval,
            handler: handler.into(),
        }
    }
}

fn context(parts: &Parts) -> Result<&ScheduleContext, Rejection> {
    parts
        .context::<ScheduleContext>()
        .ok_or_else(Rejection::missing_context::<ScheduleContext>)
}

impl<S> FromMessageParts<S> for ScheduleContext {
    type Rejection = Rejection;

    fn from_message_parts(parts: &Parts, _state: &S) -> Result<Self, Rejection> {
        context(parts).cloned()
    }
}

/// Extractor: the due time of this run (tomodachi's `invocation_time` keyword).
///
/// [`Display`](fmt::Display) and [`InvocationTime::to_tomodachi_string`] give tomodachi's
/// format, `YYYY-MM-DDTHH:MM:SSZ`; the field (and `Deref`) give the chrono value.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use tomodachi_schedule::InvocationTime;
///
/// let at = InvocationTime(Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 5).unwrap());
/// assert_eq!(at.to_string(), "2024-05-01T12:00:05Z");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InvocationTime(pub DateTime<Utc>);

impl InvocationTime {
    /// tomodachi's format: `YYYY-MM-DDTHH:MM:SSZ`.
    pub fn to_tomodachi_string(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for InvocationTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%dT%H:%M:%SZ"))
    }
}

impl Deref for InvocationTime {
    type Target = DateTime<Utc>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<S> FromMessageParts<S> for InvocationTime {
    type Rejection = Rejection;

    fn from_message_parts(parts: &Parts, _state: &S) -> Result<Self, Rejection> {
        context(parts).map(|ctx| InvocationTime(ctx.invocation_time))
    }
}

/// Extractor: the schedule's interval as configured (tomodachi's `interval` keyword).
impl<S> FromMessageParts<S> for Interval {
    type Rejection = Rejection;

    fn from_message_parts(parts: &Parts, _state: &S) -> Result<Self, Rejection> {
        context(parts).map(|ctx| ctx.interval.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use tomodachi_core::{Message, Outcome};

    fn parts_with_context() -> Parts {
        let at = Utc
            .with_ymd_and_hms(2024, 5, 1, 12, 0, 5)
            .single()
            .expect("valid");
        let message = Message::new(bytes::Bytes::new()).with_context(ScheduleContext::new(
            at,
            Interval::Text(Arc::from("5m")),
            "sweep",
        ));
        message.into_parts().0
    }

    #[test]
    fn extractors_read_the_context() {
        let parts = parts_with_context();
        let at = InvocationTime::from_message_parts(&parts, &()).expect("present");
        assert_eq!(at.to_tomodachi_string(), "2024-05-01T12:00:05Z");
        assert_eq!(at.0.timestamp(), 1_714_564_805);
        let interval = Interval::from_message_parts(&parts, &()).expect("present");
        assert_eq!(interval, Interval::Text(Arc::from("5m")));
        let ctx = ScheduleContext::from_message_parts(&parts, &()).expect("present");
        assert_eq!(&*ctx.handler, "sweep");
    }

    #[test]
    fn missing_context_is_a_rejection() {
        let (parts, _) = Message::new("x").into_parts();
        let rejection = InvocationTime::from_message_parts(&parts, &()).expect_err("missing");
        assert_eq!(rejection.outcome(), Outcome::retry());
        assert!(rejection.reason().contains("ScheduleContext"));
        assert!(Interval::from_message_parts(&parts, &()).is_err());
    }
}
