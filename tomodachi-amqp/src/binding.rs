//! What a consumer subscribes to: a routing key on an exchange, through a queue.

use std::sync::Arc;

use tomodachi_core::{
    Classify, Envelope, RetryOnFailure, ServiceIdentity, SharedClassifier, SharedEnvelope,
};

use crate::AmqpOptions;
use crate::naming::{auto_queue_name, wire_routing_key};

/// The type of an exchange a binding declares.
///
/// tomodachi declares every exchange but `amq.topic` as a durable `topic` exchange; that is
/// the default here too. Exchanges whose name starts with `amq.` are the broker's own and
/// are never declared (only checked to exist).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ExchangeKind {
    /// Routing keys with `*` and `#` wildcards.
    #[default]
    Topic,
    /// Exact routing keys.
    Direct,
    /// Every bound queue gets every message.
    Fanout,
}

impl ExchangeKind {
    pub(crate) fn to_lapin(self) -> lapin::ExchangeKind {
        match self {
            Self::Topic => lapin::ExchangeKind::Topic,
            Self::Direct => lapin::ExchangeKind::Direct,
            Self::Fanout => lapin::ExchangeKind::Fanout,
        }
    }
}

/// A subscription: tomodachi's `@amqp(routing_key, exchange_name=, competing=, queue_name=)`.
///
/// * `exchange_name`: default `options.amqp.exchange_name` (`amq.topic`); others are
///   declared durable (as `topic` unless [`Binding::exchange_kind`] says otherwise).
/// * `competing` (default **true**): every instance of the service shares one queue and each
///   message is handled once. Non-competing: one queue per handler and instance, every
///   instance gets every message, and a second consumer on that queue is a startup error.
/// * `queue_name`: an explicit queue (prefixed with `options.amqp.queue_name_prefix`);
///   without it the name is derived as tomodachi does (see [`auto_queue_name`]).
///
/// ```
/// use tomodachi_amqp::{AmqpOptions, Binding};
/// use tomodachi_core::ServiceIdentity;
///
/// let binding = Binding::routing_key("order.*").handler_name("on_order");
/// let identity = ServiceIdentity::new("orders", "2d4e3a08-4c3b-4b6f-8a3a-0c0f6b7a0d11");
/// let resolved = binding.resolve(&AmqpOptions::default(), &identity);
/// assert_eq!(resolved.exchange, "amq.topic");
/// assert_eq!(resolved.wire_routing_key, "order.*");
/// assert_eq!(resolved.queue_name.len(), 64); // sha256 of the encoded routing key
/// ```
///
/// [`auto_queue_name`]: crate::auto_queue_name
#[derive(Debug, Clone)]
pub struct Binding {
    routing_key: String,
    exchange_name: Option<String>,
    exchange_kind: ExchangeKind,
    competing: bool,
    queue_name: Option<String>,
    handler_name: String,
    dead_letter_exchange: Option<String>,
    dead_letter_routing_key: Option<String>,
    envelope: Option<SharedEnvelope>,
    classifier: SharedClassifier,
}

impl Binding {
    /// Subscribes to `routing_key` (`*` matches one word, `#` zero or more) on the default
    /// exchange, competing, with an auto-generated queue name.
    pub fn routing_key(routing_key: impl Into<String>) -> Self {
        Self {
            routing_key: routing_key.into(),
            exchange_name: None,
            exchange_kind: ExchangeKind::Topic,
            competing: true,
            queue_name: None,
            handler_name: "handler".to_owned(),
            dead_letter_exchange: None,
            dead_letter_routing_key: None,
            envelope: None,
            classifier: Arc::new(RetryOnFailure),
        }
    }

    /// Binds on this exchange instead of `options.amqp.exchange_name`.
    #[must_use]
    pub fn exchange(mut self, exchange_name: impl Into<String>) -> Self {
        self.exchange_name = Some(exchange_name.into());
        self
    }

    /// The type the exchange is declared with (default [`ExchangeKind::Topic`]).
    #[must_use]
    pub fn exchange_kind(mut self, kind: ExchangeKind) -> Self {
        self.exchange_kind = kind;
        self
    }

    /// Competing (default) or non-competing consumer.
    #[must_use]
    pub fn competing(mut self, competing: bool) -> Self {
        self.competing = competing;
        self
    }

    /// Consumes from this queue (prefixed with `options.amqp.queue_name_prefix`) instead
    /// of an auto-generated one.
    #[must_use]
    pub fn queue_name(mut self, queue_name: impl Into<String>) -> Self {
        self.queue_name = Some(queue_name.into());
        self
    }

    /// The handler's name, used in the non-competing queue-name formula as tomodachi uses
    /// the Python function's name (default `"handler"`). Give each non-competing binding
    /// of one service on the same routing key its own name.
    #[must_use]
    pub fn handler_name(mut self, name: impl Into<String>) -> Self {
        self.handler_name = name.into();
        self
    }

    /// Declares the queue with `x-dead-letter-exchange`: rejected messages
    /// ([`Outcome::Reject`](tomodachi_core::Outcome::Reject)) go there. Not a tomodachi
    /// option; a queue that already exists without it fails to declare.
    #[must_use]
    pub fn dead_letter_exchange(mut self, exchange: impl Into<String>) -> Self {
        self.dead_letter_exchange = Some(exchange.into());
        self
    }

    /// Declares the queue with `x-dead-letter-routing-key` (with
    /// [`Binding::dead_letter_exchange`]).
    #[must_use]
    pub fn dead_letter_routing_key(mut self, routing_key: impl Into<String>) -> Self {
        self.dead_letter_routing_key = Some(routing_key.into());
        self
    }

    /// Opens this binding's messages with `envelope` (tomodachi's per-decorator
    /// `message_envelope=`). The consumer then opens the envelope itself; a service-wide
    /// envelope layer must not be added for this binding. Use
    /// [`RawEnvelope`](tomodachi_core::RawEnvelope) for "no envelope".
    #[must_use]
    pub fn envelope(mut self, envelope: impl Envelope) -> Self {
        self.envelope = Some(tomodachi_core::envelope::shared(envelope));
        self
    }

    /// The routing key as given (without `routing_key_prefix`).
    pub fn routing_key_ref(&self) -> &str {
        &self.routing_key
    }

    /// Whether the consumer competes with other instances on one queue.
    pub fn is_competing(&self) -> bool {
        self.competing
    }

    /// The handler name of the non-competing queue-name formula.
    pub fn handler_name_ref(&self) -> &str {
        &self.handler_name
    }

    /// Takes the per-binding envelope out (the caller opens messages itself, with an
    /// [`EnvelopeLayer`](tomodachi_core::EnvelopeLayer) of its own).
    pub fn take_envelope(&mut self) -> Option<SharedEnvelope> {
        self.envelope.take()
    }

    /// Decides the outcome of a message whose handler failed (returned an error or
    /// panicked): [`RetryOnFailure`] (the default: nack with requeue),
    /// [`DropOnFailure`](tomodachi_core::DropOnFailure) (acked, as Python tomodachi does)
    /// or your own [`classify_fn`](tomodachi_core::classify_fn).
    #[must_use]
    pub fn on_failure(mut self, classifier: impl Classify) -> Self {
        self.classifier = Arc::new(classifier);
        self
    }

    /// The classifier of failed handlers (see [`Binding::on_failure`]).
    pub fn classifier_ref(&self) -> &SharedClassifier {
        &self.classifier
    }

    /// The per-binding envelope, if one was set with [`Binding::envelope`].
    pub fn envelope_ref(&self) -> Option<&SharedEnvelope> {
        self.envelope.as_ref()
    }

    /// Applies the options and the service's identity: the names as they go on the wire.
    pub fn resolve(&self, options: &AmqpOptions, identity: &ServiceIdentity) -> ResolvedBinding {
        let exchange = match &self.exchange_name {
            Some(name) if !name.is_empty() => name.clone(),
            _ if options.exchange_name.is_empty() => "amq.topic".to_owned(),
            _ => options.exchange_name.clone(),
        };
        let queue_name = match &self.queue_name {
            Some(name) => format!("{}{name}", options.queue_name_prefix),
            None => auto_queue_name(
                &self.routing_key,
                self.competing,
                &self.handler_name,
                &identity.uuid,
                &options.queue_name_prefix,
            ),
        };
        ResolvedBinding {
            declare_exchange: !exchange.starts_with("amq."),
            exchange,
            exchange_kind: self.exchange_kind,
            wire_routing_key: wire_routing_key(&options.routing_key_prefix, &self.routing_key),
            routing_key: self.routing_key.clone(),
            queue_name,
            competing: self.competing,
            expires_ms: options.queue_ttl.saturating_mul(1000),
            dead_letter_exchange: self.dead_letter_exchange.clone(),
            dead_letter_routing_key: self.dead_letter_routing_key.clone(),
        }
    }
}

/// A [`Binding`] with the options applied: what is declared and bound on the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResolvedBinding {
    /// The exchange bound on.
    pub exchange: String,
    /// Its type, when declared.
    pub exchange_kind: ExchangeKind,
    /// Whether the exchange is declared (every exchange not starting with `amq.`).
    pub declare_exchange: bool,
    /// The routing key as given, without prefix (tomodachi's `routing_key` keyword).
    pub routing_key: String,
    /// `encode_routing_key(routing_key_prefix + routing_key)`: the key bound with.
    pub wire_routing_key: String,
    /// The queue consumed from.
    pub queue_name: String,
    /// Competing consumer (non-competing refuses a queue that already has a consumer).
    pub competing: bool,
    /// `x-expires` in milliseconds; 0 = none.
    pub expires_ms: u64,
    /// `x-dead-letter-exchange`, if any.
    pub dead_letter_exchange: Option<String>,
    /// `x-dead-letter-routing-key`, if any.
    pub dead_letter_routing_key: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> ServiceIdentity {
        ServiceIdentity::new("svc", "2d4e3a08-4c3b-4b6f-8a3a-0c0f6b7a0d11")
    }

    #[test]
    fn defaults_follow_tomodachi_competing_formula() {
        let resolved =
            Binding::routing_key("example.topic").resolve(&AmqpOptions::default(), &identity());
        assert_eq!(resolved.exchange, "amq.topic");
        assert!(!resolved.declare_exchange);
        assert!(resolved.competing);
        assert_eq!(resolved.wire_routing_key, "example.topic");
        // Python tomodachi 0.29.0: get_queue_name(..., competing=True)
        assert_eq!(
            resolved.queue_name,
            "6db12a9d302beb382083af15edb16743a71606430dccfd286ab4dd577289d175"
        );
        assert_eq!(resolved.expires_ms, 86_400_000);
    }

    #[test]
    fn non_competing_uses_handler_and_uuid() {
        let options = AmqpOptions {
            queue_name_prefix: "pfx-".into(),
            routing_key_prefix: "dev.".into(),
            ..AmqpOptions::default()
        };
        let resolved = Binding::routing_key("example.topic")
            .competing(false)
            .resolve(&options, &identity());
        // Python tomodachi 0.29.0: get_queue_name(encode("example.topic"), "handler", uuid, False)
        assert_eq!(
            resolved.queue_name,
            "pfx-9e11c8be60e392882947a61a5cc798c1e7ceffe551add248d4d025bcd79a222d"
        );
        // the prefix goes into the binding key, not into the queue-name hash
        assert_eq!(resolved.wire_routing_key, "dev.example.topic");
        assert_eq!(resolved.routing_key, "example.topic");
    }

    #[test]
    fn explicit_queue_and_exchange() {
        let options = AmqpOptions {
            queue_name_prefix: "p.".into(),
            queue_ttl: 0,
            ..AmqpOptions::default()
        };
        let resolved = Binding::routing_key("a")
            .exchange("events")
            .queue_name("orders")
            .resolve(&options, &identity());
        assert_eq!(resolved.queue_name, "p.orders");
        assert_eq!(resolved.exchange, "events");
        assert!(resolved.declare_exchange);
        assert_eq!(resolved.expires_ms, 0);
    }

    #[test]
    fn options_exchange_is_the_default() {
        let options = AmqpOptions {
            exchange_name: "custom".into(),
            ..AmqpOptions::default()
        };
        let resolved = Binding::routing_key("a").resolve(&options, &identity());
        assert_eq!(resolved.exchange, "custom");
        let resolved = Binding::routing_key("a")
            .exchange("amq.direct")
            .resolve(&options, &identity());
        assert!(!resolved.declare_exchange);
    }
}
