//! Envelopes: how a message's data is wrapped on the wire.
//!
//! An [`Envelope`] opens incoming messages (through [`EnvelopeLayer`]) and seals outgoing
//! ones (publishers call [`Envelope::seal`]). `JsonEnvelope` (feature `envelopes`) is Python
//! tomodachi's `JsonBase`, byte for byte; [`RawEnvelope`] is no envelope at all;
//! `ProtobufEnvelope` (feature `protobuf`) is Python's `ProtobufBase`.

mod inflate;
#[cfg(feature = "envelopes")]
mod json;
mod layer;
#[cfg(feature = "protobuf")]
mod protobuf;
mod python_json;
mod raw;

use std::fmt;
use std::sync::Arc;

use serde_json::value::RawValue;

#[cfg(feature = "envelopes")]
pub use inflate::inflate_capped;
pub use inflate::{DEFAULT_MAX_INFLATED_SIZE, max_inflated_size, set_max_inflated_size};
#[cfg(feature = "envelopes")]
pub use json::JsonEnvelope;
pub use layer::{EnvelopeFuture, EnvelopeLayer, EnvelopeService};
#[cfg(feature = "protobuf")]
pub use protobuf::ProtobufEnvelope;
#[cfg(feature = "envelopes")]
pub(crate) use python_json::to_python_string;
pub use python_json::{PythonFormatter, to_python_json};
pub use raw::RawEnvelope;

use crate::Message;

/// Who sends a message: the service's name and its uuid (random per process unless set).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceIdentity {
    /// The service's name.
    pub name: Arc<str>,
    /// The service's uuid.
    pub uuid: Arc<str>,
}

impl ServiceIdentity {
    /// An identity with this name and uuid.
    pub fn new(name: impl Into<Arc<str>>, uuid: impl Into<Arc<str>>) -> Self {
        Self {
            name: name.into(),
            uuid: uuid.into(),
        }
    }

    /// An identity with this name and a new random uuid (as Python tomodachi does).
    pub fn with_random_uuid(name: impl Into<Arc<str>>) -> Self {
        Self::new(name, uuid::Uuid::new_v4().to_string())
    }
}

/// What an envelope said about a message (Python's parsed `metadata` and `service`).
#[derive(Debug, Clone, PartialEq)]
pub struct EnvelopeMetadata {
    /// Name of the sending service.
    pub service_name: String,
    /// Uuid of the sending service.
    pub service_uuid: String,
    /// `"<service uuid>.<uuid4>"`.
    pub message_uuid: String,
    /// The envelope's protocol version.
    pub protocol_version: String,
    /// Seconds since the epoch when the message was sealed.
    pub timestamp: f64,
    /// The topic (or routing key) the sender published to, without prefix.
    pub topic: String,
    /// How `data` was encoded (`"raw"`, `"base64_gzip_json"`; `"proto"`, `"gzip_proto"`).
    pub data_encoding: String,
}

/// Why a message could not be opened or sealed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The body is not a valid envelope.
    #[error("malformed envelope: {0}")]
    Malformed(#[source] serde_json::Error),
    /// The compressed data could not be decoded.
    #[error("undecodable {encoding} data: {reason}")]
    Undecodable {
        /// The envelope's `data_encoding`.
        encoding: String,
        /// What went wrong.
        reason: String,
    },
    /// The compressed data inflates to more than [`max_inflated_size`] (a decompression
    /// bomb, or a cap set too low).
    #[error("{encoding} data inflates to more than {limit} bytes (envelope.max_inflated_size)")]
    TooLarge {
        /// The envelope's `data_encoding`.
        encoding: String,
        /// The cap, in bytes.
        limit: usize,
    },
    /// The data could not be serialized.
    #[error("unserializable data: {0}")]
    Serialize(#[source] serde_json::Error),
    /// The data decoded but its validator rejected it (tomodachi's `validator`).
    #[error("invalid message: {0}")]
    Invalid(String),
}

/// A wire format for message data.
///
/// `open` runs on every incoming message (see [`EnvelopeLayer`]): it replaces the body with
/// the envelope's data and adds [`EnvelopeMetadata`] to the context. `seal` builds the
/// payload publishers send; `data` should be JSON written by [`to_python_json`].
pub trait Envelope: fmt::Debug + Send + Sync + 'static {
    /// Opens `message` in place.
    fn open(&self, message: &mut Message) -> Result<(), EnvelopeError>;

    /// Seals `data` sent by `sender` to `topic` into a payload.
    fn seal(
        &self,
        sender: &ServiceIdentity,
        topic: &str,
        data: &RawValue,
    ) -> Result<String, EnvelopeError>;
}

impl<E: Envelope + ?Sized> Envelope for Arc<E> {
    fn open(&self, message: &mut Message) -> Result<(), EnvelopeError> {
        (**self).open(message)
    }

    fn seal(
        &self,
        sender: &ServiceIdentity,
        topic: &str,
        data: &RawValue,
    ) -> Result<String, EnvelopeError> {
        (**self).seal(sender, topic, data)
    }
}

impl<E: Envelope + ?Sized> Envelope for Box<E> {
    fn open(&self, message: &mut Message) -> Result<(), EnvelopeError> {
        (**self).open(message)
    }

    fn seal(
        &self,
        sender: &ServiceIdentity,
        topic: &str,
        data: &RawValue,
    ) -> Result<String, EnvelopeError> {
        (**self).seal(sender, topic, data)
    }
}

/// An envelope chosen at run time.
pub type SharedEnvelope = Arc<dyn Envelope>;

/// `envelope` as a [`SharedEnvelope`]: a shared one as it is, any other in a new `Arc`.
/// Every envelope setter takes `impl Envelope` and keeps it with this, so `JsonEnvelope`
/// and the service's shared envelope go to the same method.
///
/// ```
/// use std::sync::Arc;
/// use tomodachi_core::envelope::{SharedEnvelope, shared};
/// use tomodachi_core::JsonEnvelope;
///
/// let one: SharedEnvelope = Arc::new(JsonEnvelope);
/// assert!(Arc::ptr_eq(&shared(one.clone()), &one));
/// ```
pub fn shared<E: Envelope>(envelope: E) -> SharedEnvelope {
    let any: &dyn std::any::Any = &envelope;
    match any.downcast_ref::<SharedEnvelope>() {
        Some(shared) => shared.clone(),
        None => Arc::new(envelope),
    }
}
