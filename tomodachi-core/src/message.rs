//! The request of every message transport.

use bytes::Bytes;
use http::Extensions;

/// A message from a transport: its body plus typed context.
///
/// The *context* is what the transport knows about the delivery (an SQS receipt handle,
/// an AMQP routing key, the invocation time of a schedule, the envelope's metadata). It is
/// set when the message is built and is read-only to layers and handlers.
///
/// The *extensions* belong to the user: layers put their own values there (tomodachi's
/// "custom keywords") and handlers read them with [`Extension`](crate::Extension).
///
/// ```
/// use tomodachi_core::Message;
///
/// #[derive(Clone)]
/// struct Delivery { routing_key: String }
///
/// let mut message = Message::new("hello").with_context(Delivery { routing_key: "a.b".into() });
/// message.extensions_mut().insert(42_u32);
///
/// assert_eq!(message.body().as_ref(), b"hello");
/// assert_eq!(message.context::<Delivery>().unwrap().routing_key, "a.b");
/// assert_eq!(message.extensions().get::<u32>(), Some(&42));
/// ```
#[derive(Debug, Default)]
pub struct Message {
    parts: Parts,
    body: Bytes,
}

/// A message without its body: what context extractors read.
#[derive(Debug, Default)]
pub struct Parts {
    context: Extensions,
    extensions: Extensions,
}

impl Message {
    /// A message with this body and no context.
    pub fn new(body: impl Into<Bytes>) -> Self {
        Self {
            parts: Parts::default(),
            body: body.into(),
        }
    }

    /// Adds a transport context value. Transports and envelopes call this when they build
    /// or open a message; a value of the same type is replaced.
    #[must_use]
    pub fn with_context<T: Clone + Send + Sync + 'static>(mut self, context: T) -> Self {
        self.parts.context.insert(context);
        self
    }

    /// Adds a transport context value in place (see [`Message::with_context`]).
    pub fn insert_context<T: Clone + Send + Sync + 'static>(&mut self, context: T) {
        self.parts.context.insert(context);
    }

    /// The transport context value of type `T`, if the transport set one.
    pub fn context<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.parts.context.get::<T>()
    }

    /// The body: the payload as received, or the envelope's data once an envelope opened it.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Replaces the body (envelopes do this when they open a message).
    pub fn set_body(&mut self, body: impl Into<Bytes>) {
        self.body = body.into();
    }

    /// The user's extensions.
    pub fn extensions(&self) -> &Extensions {
        &self.parts.extensions
    }

    /// The user's extensions, mutable: layers add their values here.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.parts.extensions
    }

    /// The parts (context and extensions) of the message.
    pub fn parts(&self) -> &Parts {
        &self.parts
    }

    /// Splits the message into its parts and its body.
    pub fn into_parts(self) -> (Parts, Bytes) {
        (self.parts, self.body)
    }

    /// Puts a message back together.
    pub fn from_parts(parts: Parts, body: Bytes) -> Self {
        Self { parts, body }
    }
}

impl Parts {
    /// The transport context value of type `T`.
    pub fn context<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.context.get::<T>()
    }

    /// Takes the context value of type `T` out (for body extractors, which own the parts).
    #[cfg_attr(not(feature = "protobuf"), allow(dead_code))]
    pub(crate) fn take_context<T: Send + Sync + 'static>(&mut self) -> Option<T> {
        self.context.remove::<T>()
    }

    /// The user's extensions.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// The user's extensions, mutable.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }
}
