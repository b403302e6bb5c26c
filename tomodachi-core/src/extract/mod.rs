//! Extractors: how a handler's arguments are taken from a [`Message`].
//!
//! There are two kinds, as in axum:
//!
//! - **context extractors** ([`FromMessageParts`]) read the message's context and
//!   extensions; a handler may take any number of them, in any position;
//! - **one body extractor** ([`FromMessage`]) consumes the message; it must be the last
//!   argument. [`Data<T>`] and [`Raw`] are body extractors.
//!
//! Extractors are synchronous: everything they read is already in the message.
//! When one fails, the handler is not called and its [`Rejection`] decides the outcome.

mod body;
mod context;
#[cfg(feature = "protobuf")]
pub(crate) mod proto;
mod rejection;

use crate::Message;
pub use crate::message::Parts;
pub use body::{Data, Raw};
pub use context::{Attributes, Extension, FromRef, MessageUuid, Metadata, State};
#[cfg(feature = "protobuf")]
pub use proto::Proto;
pub use rejection::Rejection;

/// A value taken from a message's parts (context and extensions).
///
/// ```
/// use tomodachi_core::{FromMessageParts, Parts, Rejection};
///
/// #[derive(Clone)]
/// struct Delivery { attempt: u32 }
///
/// /// The delivery attempt, read from the transport's context.
/// struct Attempt(u32);
///
/// impl<S> FromMessageParts<S> for Attempt {
///     type Rejection = Rejection;
///     fn from_message_parts(parts: &Parts, _state: &S) -> Result<Self, Rejection> {
///         parts
///             .context::<Delivery>()
///             .map(|d| Attempt(d.attempt))
///             .ok_or_else(Rejection::missing_context::<Delivery>)
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a message extractor",
    label = "not a tomodachi extractor",
    note = "a handler's arguments are extractors: `Data<T>` or `Raw` (last), `State<T>`, `Extension<T>`, `Attributes`, `Metadata`, `MessageUuid`, a transport's context fields, or your own `FromMessageParts`",
    note = "see https://docs.rs/tomodachi-core/latest/tomodachi_core/extract/index.html"
)]
pub trait FromMessageParts<S>: Sized {
    /// Why extraction failed.
    type Rejection: Into<Rejection>;

    /// Takes the value from the parts.
    fn from_message_parts(parts: &Parts, state: &S) -> Result<Self, Self::Rejection>;
}

/// A value made from the whole message; the last argument of a handler.
///
/// Every [`FromMessageParts`] is also a `FromMessage` (the marker `M` keeps the two
/// implementations apart, as in axum).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a message extractor",
    label = "not a tomodachi extractor",
    note = "a handler's arguments are extractors: `Data<T>` or `Raw` (last), `State<T>`, `Extension<T>`, `Attributes`, `Metadata`, `MessageUuid`, a transport's context fields, or your own `FromMessageParts`",
    note = "see https://docs.rs/tomodachi-core/latest/tomodachi_core/extract/index.html"
)]
pub trait FromMessage<S, M = private::ViaMessage>: Sized {
    /// Why extraction failed.
    type Rejection: Into<Rejection>;

    /// Takes the value from the message.
    fn from_message(message: Message, state: &S) -> Result<Self, Self::Rejection>;
}

impl<S, T> FromMessage<S, private::ViaParts> for T
where
    T: FromMessageParts<S>,
{
    type Rejection = <T as FromMessageParts<S>>::Rejection;

    fn from_message(message: Message, state: &S) -> Result<Self, Self::Rejection> {
        T::from_message_parts(message.parts(), state)
    }
}

impl<S> FromMessage<S> for Message {
    type Rejection = std::convert::Infallible;

    fn from_message(message: Message, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(message)
    }
}

/// What `Option<Self>` means as an extractor (axum's `OptionalFromRequestParts`): the
/// extractor decides what "absent" is (`None`) and which failures still reject the
/// message, instead of every rejection becoming `None`.
///
/// [`Extension`], [`Metadata`] and [`MessageUuid`] implement it (absent is `None`). For
/// any extractor, `Result<T, T::Rejection>` hands the handler the rejection itself.
///
/// ```
/// use tomodachi_core::{FromMessageParts, Message, MessageUuid};
///
/// let message = Message::new("");
/// let uuid = Option::<MessageUuid>::from_message_parts(message.parts(), &()).unwrap();
/// assert!(uuid.is_none());
/// ```
#[diagnostic::on_unimplemented(
    message = "`Option<{Self}>` is not a message extractor",
    label = "`{Self}` does not say what absent means",
    note = "implement `OptionalFromMessageParts` for it, or take `Result<{Self}, Rejection>`"
)]
pub trait OptionalFromMessageParts<S>: Sized {
    /// Why extraction failed (when absence is not the reason).
    type Rejection: Into<Rejection>;

    /// Takes the value from the parts: `Ok(None)` when it is absent.
    fn from_message_parts(parts: &Parts, state: &S) -> Result<Option<Self>, Self::Rejection>;
}

#[diagnostic::do_not_recommend]
impl<S, T> FromMessageParts<S> for Option<T>
where
    T: OptionalFromMessageParts<S>,
{
    type Rejection = T::Rejection;

    fn from_message_parts(parts: &Parts, state: &S) -> Result<Self, Self::Rejection> {
        T::from_message_parts(parts, state)
    }
}

/// The extractor's result, rejection included: the handler decides.
impl<S, T> FromMessageParts<S> for Result<T, T::Rejection>
where
    T: FromMessageParts<S>,
{
    type Rejection = std::convert::Infallible;

    fn from_message_parts(parts: &Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(T::from_message_parts(parts, state))
    }
}

pub(crate) mod private {
    /// Marker of extractors that consume the message.
    #[derive(Debug, Clone, Copy)]
    pub enum ViaMessage {}

    /// Marker of context extractors used in the last position.
    #[derive(Debug, Clone, Copy)]
    pub enum ViaParts {}
}
