//! Transport-agnostic telemetry: what a tracing/metrics layer needs to know about a
//! delivery, and about a publish so trace context crosses the broker.
//!
//! Transports know nothing of OpenTelemetry. Instead:
//!
//! - every message transport puts a [`Delivery`] into the context of each [`Message`] it
//!   builds: the messaging system, the destination, the topic or routing key, the message
//!   id, the handler's name and the W3C trace context as received ([`Carrier`]). A layer
//!   (such as `tomodachi-otel`'s) reads it to name its span, set its attributes and find
//!   its parent.
//! - every publisher is a `tower::Service` whose request implements [`PublishRequest`]: a
//!   layer on it (such as `tomodachi-otel`'s `PublishTraceLayer`) reads [`Publish`] to name
//!   a PRODUCER span and calls [`PublishRequest::inject`] to send `traceparent`/`tracestate`
//!   along. Without such a layer nothing is added.
//!
//! [`Message`]: crate::Message
//!
//! ```
//! use tomodachi_core::telemetry::{self, Delivery};
//! use tomodachi_core::Message;
//!
//! // consume side (a transport)
//! let delivery = Delivery::new(telemetry::RABBITMQ, "amq.topic", "on_order")
//!     .routing("order.paid")
//!     .traceparent(Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()));
//! let message = Message::new("{}").with_context(delivery);
//! assert_eq!(message.context::<Delivery>().unwrap().carrier.get("traceparent").map(|s| s.len()), Some(55));
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

// These names are the vocabulary a transport and a telemetry layer share, not a list of
// the transports allowed: `tomodachi-otel` adds the attributes OpenTelemetry's semantic
// conventions define for `aws_sqs` and `rabbitmq` and makes `schedule` spans INTERNAL; a
// transport written elsewhere passes its own `messaging.system` value and gets the generic
// attributes. They stay here, in the one crate both sides depend on, rather than in each
// transport crate (tomodachi-otel would have to repeat them as literals).

/// `messaging.system` of AWS SNS+SQS consumers and publishers.
pub const AWS_SQS: &str = "aws_sqs";
/// `messaging.system` of SNS publishes.
pub const AWS_SNS: &str = "aws_sns";
/// `messaging.system` of AMQP consumers and publishers.
pub const RABBITMQ: &str = "rabbitmq";
/// The system of scheduled functions (not a messaging system: their spans are INTERNAL).
pub const SCHEDULE: &str = "schedule";

/// The W3C trace context of a delivery, as received (header or message attribute values).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Carrier {
    /// The `traceparent` value.
    pub traceparent: Option<String>,
    /// The `tracestate` value.
    pub tracestate: Option<String>,
}

impl Carrier {
    /// The value of `key` (`traceparent` or `tracestate`, case-insensitive).
    pub fn get(&self, key: &str) -> Option<&str> {
        if key.eq_ignore_ascii_case("traceparent") {
            self.traceparent.as_deref()
        } else if key.eq_ignore_ascii_case("tracestate") {
            self.tracestate.as_deref()
        } else {
            None
        }
    }

    /// The keys a propagator may read.
    pub const KEYS: [&'static str; 2] = ["traceparent", "tracestate"];

    /// Is there no trace context?
    pub fn is_empty(&self) -> bool {
        self.traceparent.is_none() && self.tracestate.is_none()
    }
}

/// What a telemetry layer needs to know about one delivery; a transport puts it into the
/// context of each message it builds (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// [`AWS_SQS`], [`RABBITMQ`], [`SCHEDULE`] or another transport's name.
    pub system: &'static str,
    /// `messaging.operation`: `"process"`.
    pub operation: &'static str,
    /// The queue (SQS, unprefixed), the exchange (AMQP) or empty (schedule).
    pub destination: Arc<str>,
    /// The SNS topic (unprefixed) or the AMQP routing key, if there is one.
    pub routing: Option<Arc<str>>,
    /// The broker's message id (SNS message id, else SQS message id; AMQP message id).
    pub message_id: Option<Arc<str>>,
    /// The handler's name (`code.function`).
    pub handler: Arc<str>,
    /// The trace context as received.
    pub carrier: Carrier,
    /// More attributes of this transport (for a schedule: `function.trigger`,
    /// `function.time`, `function.interval`).
    pub attributes: Vec<(&'static str, Arc<str>)>,
}

impl Delivery {
    /// A delivery from `system` at `destination`, handled by `handler`, operation `"process"`.
    pub fn new(
        system: &'static str,
        destination: impl Into<Arc<str>>,
        handler: impl Into<Arc<str>>,
    ) -> Self {
        Self {
            system,
            operation: "process",
            destination: destination.into(),
            routing: None,
            message_id: None,
            handler: handler.into(),
            carrier: Carrier::default(),
            attributes: Vec::new(),
        }
    }

    /// Sets the topic or routing key.
    #[must_use]
    pub fn routing(mut self, routing: impl Into<Arc<str>>) -> Self {
        self.routing = Some(routing.into());
        self
    }

    /// Sets the message id.
    #[must_use]
    pub fn message_id(mut self, id: Option<impl Into<Arc<str>>>) -> Self {
        self.message_id = id.map(Into::into);
        self
    }

    /// Sets the received `traceparent`.
    #[must_use]
    pub fn traceparent(mut self, value: Option<String>) -> Self {
        self.carrier.traceparent = value;
        self
    }

    /// Sets the received `tracestate`.
    #[must_use]
    pub fn tracestate(mut self, value: Option<String>) -> Self {
        self.carrier.tracestate = value;
        self
    }

    /// Adds a transport-specific attribute.
    #[must_use]
    pub fn attribute(mut self, key: &'static str, value: impl Into<Arc<str>>) -> Self {
        self.attributes.push((key, value.into()));
        self
    }
}

/// The route pattern that matched an HTTP request (`/items/{id}`, or a tomodachi regex
/// pattern without `^`/`$`): an HTTP source or router puts it into the request's (or the
/// response's) extensions so a tracing layer can name its span `"{METHOD} {route}"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute(pub Arc<str>);

impl HttpRoute {
    /// The pattern.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a publisher is about to send ([`PublishRequest::publish`]).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Publish<'a> {
    /// [`AWS_SNS`], [`AWS_SQS`] or [`RABBITMQ`].
    pub system: &'static str,
    /// The topic (unprefixed), queue name or routing key: the span is `"{destination} publish"`.
    pub destination: &'a str,
    /// The exchange (AMQP), if any.
    pub exchange: Option<&'a str>,
    /// The envelope's message uuid, if the publisher knows it.
    pub message_id: Option<&'a str>,
}

impl<'a> Publish<'a> {
    /// A publish by `system` to `destination`.
    pub const fn new(system: &'static str, destination: &'a str) -> Self {
        Self {
            system,
            destination,
            exchange: None,
            message_id: None,
        }
    }

    /// Sets the exchange.
    #[must_use]
    pub const fn exchange(mut self, exchange: &'a str) -> Self {
        self.exchange = Some(exchange);
        self
    }

    /// Sets the message id.
    #[must_use]
    pub const fn message_id(mut self, id: &'a str) -> Self {
        self.message_id = Some(id);
        self
    }
}

/// A request to a publisher `tower::Service` (an SNS publish, an SQS send, an AMQP
/// publish), as a producer-span layer sees it: what goes where, and a way to send trace
/// context along (a message attribute or a header).
///
/// Transports implement it for their publish requests; a telemetry layer (such as
/// `tomodachi-otel`'s `PublishTraceLayer`) is generic over it, so it knows no broker.
///
/// ```
/// use tomodachi_core::telemetry::{self, Publish, PublishRequest};
///
/// struct Send { queue: String, headers: Vec<(String, String)> }
///
/// impl PublishRequest for Send {
///     fn publish(&self) -> Publish<'_> {
///         Publish::new(telemetry::AWS_SQS, &self.queue)
///     }
///     fn inject(&mut self, key: &str, value: &str) {
///         self.headers.push((key.to_owned(), value.to_owned()));
///     }
/// }
///
/// let mut request = Send { queue: "orders".into(), headers: Vec::new() };
/// assert_eq!(request.publish().destination, "orders");
/// request.inject("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
/// assert_eq!(request.headers.len(), 1);
/// ```
pub trait PublishRequest {
    /// What is published where (system, destination, exchange).
    fn publish(&self) -> Publish<'_>;

    /// Sends `key: value` along with the message (never called with an empty value:
    /// SNS/SQS refuse those). A value of the same key is replaced.
    fn inject(&mut self, key: &str, value: &str);
}

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns on [`Delivery`] contexts: transports check [`enabled`] and build a [`Delivery`]
/// per message only when telemetry is on (a telemetry crate calls it when it installs).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Should transports put a [`Delivery`] into each message's context?
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carrier_lookup_is_case_insensitive() {
        let delivery = Delivery::new(AWS_SQS, "queue", "handler")
            .routing("topic")
            .traceparent(Some("tp".into()))
            .tracestate(Some("ts".into()))
            .message_id(Some("id"))
            .attribute("x", "y");
        assert_eq!(delivery.carrier.get("TraceParent"), Some("tp"));
        assert_eq!(delivery.carrier.get("tracestate"), Some("ts"));
        assert_eq!(delivery.carrier.get("baggage"), None);
        assert_eq!(delivery.operation, "process");
        assert_eq!(delivery.attributes, vec![("x", Arc::from("y"))]);
        assert!(Carrier::default().is_empty());
    }
}
