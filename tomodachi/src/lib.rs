#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
// The crate's pages (README.md, docs/*.md) link items of every feature; with some features
// off those links have nothing to resolve to. docs.rs and CI document all features, where
// every link is checked.
#![cfg_attr(
    not(all(
        feature = "schedule",
        feature = "http",
        feature = "http-regex",
        feature = "websocket",
        feature = "http-static",
        feature = "amqp",
        feature = "sns",
        feature = "otel",
        feature = "test-util",
        feature = "protobuf",
        feature = "dynamodb"
    )),
    allow(rustdoc::broken_intra_doc_links)
)]

pub mod banner;
pub mod cli;
mod context;
pub mod docs {
    //! Longer topics.

    #[doc = include_str!("docs/shutdown.md")]
    pub mod shutdown {}
}
#[cfg(feature = "test-util")]
mod harness;
mod health;
#[cfg(feature = "otel")]
mod instrument;
mod lifecycle;
pub mod logging;
#[doc = include_str!("docs/middleware.md")]
pub mod middleware {}
pub mod options;
pub mod prelude;
mod process;
mod publishers;
mod service;
mod transport;

pub use cli::Settings;
pub use context::{
    ExecutionContext, TOMODACHI_COMPATIBLE_VERSION, TransportContext, execution_context,
};
pub use logging::{LogFormat, LogLevel};
pub use options::{EnvelopeOptions, HealthOptions, Options, OptionsError};
pub use process::{Exit, Process, exit};
pub use service::{BoxMessageService, HookResult, Service};

pub use tomodachi_core as core;
/// Python tomodachi's JSON envelope: with the message transports (`amqp`, `sqs`),
/// `test-util`, `protobuf`, or `envelopes` for a transport of your own.
#[cfg(feature = "envelopes")]
pub use tomodachi_core::JsonEnvelope;
pub use tomodachi_core::{
    AttributeValue, Attributes, BoxError, Classify, Data, DedupLayer, DropOnFailure, Envelope,
    EnvelopeLayer, EnvelopeMetadata, Extension, FromMessage, FromMessageParts, FromRef, Handler,
    HandlerTimeoutLayer, Message, MessageUuid, Metadata, OptionalFromMessageParts, Outcome, Raw,
    RawEnvelope, Rejection, RetryOnFailure, ServiceIdentity, Shutdown, Source, State, Transport,
    classify_fn, to_python_json,
};
#[cfg(feature = "protobuf")]
pub use tomodachi_core::{Proto, ProtobufEnvelope};

#[cfg(feature = "test-util")]
pub use tomodachi_core::memory;

#[cfg(feature = "schedule")]
pub use tomodachi_schedule::{self as schedule, Interval, InvocationTime, Overlap, Schedule};

#[cfg(feature = "http")]
pub use tomodachi_http as http;

#[cfg(feature = "amqp")]
pub use tomodachi_amqp as amqp;

#[cfg(feature = "sqs")]
pub use tomodachi_sqs as sqs;

#[cfg(feature = "otel")]
pub use tomodachi_otel as otel;
