// The README's example subscribes to a topic and publishes to SNS: it is the crate's
// documentation (and a doctest) with the `sns` feature, as docs.rs builds it.
#![cfg_attr(feature = "sns", doc = include_str!("../README.md"))]
#![cfg_attr(
    not(feature = "sns"),
    doc = "The AWS SQS transport of tomodachi-rs, built without its `sns` feature: a consumer of \
           queues ([`SqsConsumer`] with [`Subscription::new`]) and [`SqsSender`]. With `sns`: \
           topics, subscriptions to them and `SnsPublisher` (see the README)."
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod attributes;
mod client;
mod error;
pub mod naming;
mod options;
#[cfg(feature = "sns")]
mod python_json;
mod setup;
mod subscription;

pub use client::{AwsClients, LazyAwsClients, sdk_config};
pub use error::Error;
pub use options::{AwsEndpointUrlsOptions, AwsSnsSqsOptions};
pub use subscription::Subscription;
mod consumer;
mod context;

pub use consumer::{Running, SqsConsumer, message_from_sqs};
#[cfg(feature = "test-util")]
pub use context::SqsContextBuilder;
pub use context::{
    ApproximateReceiveCount, MessageAttributes, MessageDeduplicationId, MessageGroupId,
    MessageTimestamp, MessageType, QueueUrl, RawMessageBody, ReceiptHandle, SnsMessageId,
    SqsContext, SqsMessageId, Topic,
};
mod heartbeat;
#[cfg(feature = "dynamodb")]
mod lease;
mod outgoing;
#[cfg(feature = "sns")]
mod publish;
mod send;

pub use heartbeat::{HeartbeatFuture, VisibilityHeartbeat, VisibilityHeartbeatLayer};
#[cfg(feature = "dynamodb")]
pub use lease::DynamoDbLease;
#[cfg(feature = "sns")]
#[cfg_attr(docsrs, doc(cfg(feature = "sns")))]
pub use publish::{PublishOptions, SnsPublish, SnsPublisher, TopicMode};
pub use send::{SendOptions, SqsSend, SqsSender};

/// What a user of this crate alone needs from `tomodachi-core` (all of it is [`core`]):
/// handlers, extractors, outcomes, the envelope, the source contract and the shutdown.
pub use tomodachi_core::{
    self as core, Attributes, BoxError, Data, Extension, Handler, HandlerWithoutStateExt,
    JsonEnvelope, Message, MessageUuid, Metadata, Outcome, Raw, ServiceIdentity, Shutdown, Source,
    State,
};
static STATS: tomodachi_core::stats::TaskStats = tomodachi_core::stats::TaskStats::new();

/// The AWS SNS+SQS transport (`aws_sns_sqs` in the execution context, with its task counters).
pub static TRANSPORT: tomodachi_core::Transport =
    tomodachi_core::Transport::new("aws_sns_sqs", &STATS);
