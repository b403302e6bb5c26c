#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod binding;
mod connection;
mod consumer;
mod context;
mod error;
mod lease;
mod naming;
mod options;
mod publisher;

pub use binding::{Binding, ExchangeKind, ResolvedBinding};
pub use connection::AmqpConnection;
pub use consumer::{Consumer, Running};
#[cfg(feature = "test-util")]
pub use context::AmqpContextBuilder;
pub use context::{
    AmqpContext, AmqpProperties, AmqpTable, AmqpValue, BoundRoutingKey, DeliveryTag, Exchange,
    Headers, Properties, QueueName, Redelivered, RoutingKey,
};
pub use error::Error;
pub use lease::AmqpLease;
pub use naming::{auto_queue_name, decode_routing_key, encode_routing_key, wire_routing_key};
pub use options::{AckOptions, AmqpOptions, QosOptions};
pub use publisher::{AmqpPublish, AmqpPublisher, PublishOptions};

/// What a user of this crate alone needs from `tomodachi-core` (all of it is [`core`]):
/// handlers, extractors, outcomes, the envelope, the source contract and the shutdown.
pub use tomodachi_core::{
    self as core, Attributes, BoxError, Data, Extension, Handler, HandlerWithoutStateExt,
    JsonEnvelope, Message, MessageUuid, Metadata, Outcome, Raw, ServiceIdentity, Shutdown, Source,
    State,
};
static STATS: tomodachi_core::stats::TaskStats = tomodachi_core::stats::TaskStats::new();

/// The AMQP transport (`amqp` in the execution context, with its task counters).
pub static TRANSPORT: tomodachi_core::Transport = tomodachi_core::Transport::new("amqp", &STATS);
