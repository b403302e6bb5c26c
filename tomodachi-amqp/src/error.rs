//! Errors of the AMQP transport.

use std::time::Duration;

use tomodachi_core::BoxError;

/// Why setting up, consuming or publishing failed.
///
/// The broker's own error is the `source` (boxed, so that no `lapin` type shows in the
/// public API): `std::error::Error::source` walks to it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The broker could not be reached or refused the connection.
    #[error("unable to connect [amqp] to {host}:{port} ({source})")]
    Connect {
        /// Broker host.
        host: String,
        /// Broker port.
        port: u16,
        /// The broker's (or the encoder's) error.
        #[source]
        source: BoxError,
    },
    /// Declaring the exchange failed (e.g. it exists with another type, or is reserved).
    #[error("unable to declare exchange [amqp] \"{exchange}\" ({source})")]
    DeclareExchange {
        /// The exchange.
        exchange: String,
        /// The broker's (or the encoder's) error.
        #[source]
        source: BoxError,
    },
    /// Declaring the queue failed (e.g. it exists with other arguments).
    #[error("unable to declare queue [amqp] \"{queue}\" ({source})")]
    DeclareQueue {
        /// The queue.
        queue: String,
        /// The broker's (or the encoder's) error.
        #[source]
        source: BoxError,
    },
    /// Binding the queue failed.
    #[error(
        "unable to bind queue [amqp] \"{queue}\" to \"{exchange}\" with \"{routing_key}\" ({source})"
    )]
    Bind {
        /// The queue.
        queue: String,
        /// The exchange.
        exchange: String,
        /// The routing key as bound (prefixed and encoded).
        routing_key: String,
        /// The broker's (or the encoder's) error.
        #[source]
        source: BoxError,
    },
    /// A non-competing queue already has a consumer (tomodachi's
    /// `AmqpTooManyConsumersException`).
    #[error("max consumers (1) for queue [amqp] \"{queue}\" has been reached")]
    TooManyConsumers {
        /// The queue.
        queue: String,
    },
    /// The handler service failed its `poll_ready` and can take no more work.
    #[error("the handler service failed: {0}")]
    Service(String),
    /// A name is longer than the 255 bytes AMQP allows.
    #[error("{what} \"{value}\" is longer than 255 bytes")]
    NameTooLong {
        /// Which name.
        what: &'static str,
        /// The name.
        value: String,
    },
    /// A channel operation (qos, consume, cancel, close) failed.
    #[error("amqp channel error during {operation}: {source}")]
    Channel {
        /// What was being done.
        operation: &'static str,
        /// The broker's (or the encoder's) error.
        #[source]
        source: BoxError,
    },
    /// The data could not be sealed into an envelope.
    #[error("unable to seal message for routing key \"{routing_key}\": {source}")]
    Seal {
        /// The routing key (un-prefixed).
        routing_key: String,
        /// The broker's (or the encoder's) error.
        #[source]
        source: BoxError,
    },
    /// A publish was not confirmed within the publisher's deadline (the broker is down
    /// or the connection is recovering).
    #[error(
        "publish to \"{exchange}\" with routing key \"{routing_key}\" not confirmed within {waited:?}: {reason}"
    )]
    PublishTimeout {
        /// The exchange.
        exchange: String,
        /// The routing key as sent.
        routing_key: String,
        /// How long the publisher tried.
        waited: Duration,
        /// The last error seen.
        reason: String,
    },
    /// The broker refused the message (a negative publisher confirm).
    #[error(
        "publish to \"{exchange}\" with routing key \"{routing_key}\" was nacked by the broker"
    )]
    PublishNacked {
        /// The exchange.
        exchange: String,
        /// The routing key as sent.
        routing_key: String,
    },
    /// A publish failed and cannot be retried (e.g. the exchange does not exist).
    #[error("publish to \"{exchange}\" with routing key \"{routing_key}\" failed: {source}")]
    Publish {
        /// The exchange.
        exchange: String,
        /// The routing key as sent.
        routing_key: String,
        /// The broker's (or the encoder's) error.
        #[source]
        source: BoxError,
    },
    /// A layer around the publisher failed the publish (e.g. a `tower::timeout` elapsed).
    #[error("publish failed in a layer around the publisher: {0}")]
    Layer(#[source] tomodachi_core::BoxError),
}

/// Checks the AMQP short-string limit of a name.
pub(crate) fn short(what: &'static str, value: &str) -> Result<lapin::types::ShortString, Error> {
    lapin::types::ShortString::try_new(value).map_err(|_| Error::NameTooLong {
        what,
        value: value.to_owned(),
    })
}
