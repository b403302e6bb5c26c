#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod attributes;
pub mod driver;
pub mod envelope;
pub mod extract;
pub mod handler;
pub mod health;
pub mod layer;
pub mod lease;
#[cfg(feature = "test-util")]
pub mod memory;
mod message;
mod outcome;
pub mod panic;
pub mod publish;
pub mod shutdown;
mod source;
pub mod stats;
pub mod telemetry;

pub use attributes::AttributeValue;
#[cfg(feature = "envelopes")]
pub use envelope::JsonEnvelope;
#[cfg(feature = "protobuf")]
pub use envelope::ProtobufEnvelope;
pub use envelope::{
    Envelope, EnvelopeError, EnvelopeLayer, EnvelopeMetadata, RawEnvelope, ServiceIdentity,
    SharedEnvelope, to_python_json,
};
#[cfg(feature = "protobuf")]
pub use extract::Proto;
pub use extract::{
    Attributes, Data, Extension, FromMessage, FromMessageParts, FromRef, MessageUuid, Metadata,
    OptionalFromMessageParts, Parts, Raw, Rejection, State,
};
pub use handler::{
    Classify, DropOnFailure, Handler, HandlerFailure, HandlerService, HandlerWithoutStateExt,
    RetryOnFailure, SharedClassifier, classify_fn,
};
pub use health::{Health, HealthReporter};
pub use layer::dedup::DedupLayer;
pub use layer::timeout::HandlerTimeoutLayer;
pub use lease::Lease;
pub use message::Message;
pub use outcome::{IntoOutcome, Outcome};
pub use shutdown::Shutdown;
pub use source::Source;
pub use stats::Transport;
pub use tokio_util::task::TaskTracker;

/// A boxed error, as tower uses.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
