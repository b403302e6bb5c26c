use std::ops::Deref;

use super::{FromMessageParts, OptionalFromMessageParts, Parts, Rejection};
use crate::Outcome;
use crate::envelope::EnvelopeMetadata;

/// A value a layer put into the message's (or HTTP request's) extensions (tomodachi's
/// "custom keywords").
///
/// The same type in message, scheduled and HTTP handlers: with the `axum` feature (on
/// through `tomodachi-http`) it is also an axum extractor. Missing → [`Outcome::Retry`]
/// for a message (the layer that should add it is not installed), a 500 for a request.
///
/// ```
/// use tomodachi_core::{Extension, FromMessageParts, Message};
///
/// #[derive(Clone)]
/// struct User(&'static str);
///
/// let mut message = Message::new("");
/// message.extensions_mut().insert(User("ada"));
/// let Extension(user) = Extension::<User>::from_message_parts(message.parts(), &()).unwrap();
/// assert_eq!(user.0, "ada");
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Extension<T>(pub T);

impl<T, S> FromMessageParts<S> for Extension<T>
where
    T: Clone + Send + Sync + 'static,
{
    type Rejection = Rejection;

    fn from_message_parts(parts: &Parts, _state: &S) -> Result<Self, Rejection> {
        parts
            .extensions()
            .get::<T>()
            .cloned()
            .map(Extension)
            .ok_or_else(|| {
                Rejection::new(
                    Outcome::retry(),
                    format!(
                        "missing extension `{}`: is the layer that adds it installed?",
                        std::any::type_name::<T>()
                    ),
                )
            })
    }
}

/// `Option<Extension<T>>`: `None` when no layer inserted a `T`.
impl<T, S> OptionalFromMessageParts<S> for Extension<T>
where
    T: Clone + Send + Sync + 'static,
{
    type Rejection = std::convert::Infallible;

    fn from_message_parts(parts: &Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions().get::<T>().cloned().map(Extension))
    }
}

/// In an HTTP handler (feature `axum`): the request extension a layer inserted, or a 500
/// naming the missing type.
#[cfg(feature = "axum")]
impl<T, S> axum_core::extract::FromRequestParts<S> for Extension<T>
where
    T: Clone + Send + Sync + 'static,
    S: Send + Sync,
{
    type Rejection = (http::StatusCode, String);

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<T>()
            .cloned()
            .map(Extension)
            .ok_or_else(|| {
                (
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    format!(
                        "missing request extension `{}`: is the layer that adds it installed?",
                        std::any::type_name::<T>()
                    ),
                )
            })
    }
}

impl<T> Deref for Extension<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// The service's state, or a part of it (see [`FromRef`]).
///
/// The same type in message, scheduled and HTTP handlers: with the `axum` feature (on
/// through `tomodachi-http`) it is also an axum extractor, reading the router's state.
///
/// ```
/// use tomodachi_core::{FromMessageParts, Message, State};
///
/// #[derive(Clone)]
/// struct AppState { greeting: &'static str }
///
/// let state = AppState { greeting: "hi" };
/// let State(app) = State::<AppState>::from_message_parts(Message::new("").parts(), &state).unwrap();
/// assert_eq!(app.greeting, "hi");
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct State<T>(pub T);

impl<T, S> FromMessageParts<S> for State<T>
where
    T: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    fn from_message_parts(_parts: &Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(State(T::from_ref(state)))
    }
}

/// In an HTTP handler (feature `axum`): the router's state, or a part of it.
#[cfg(feature = "axum")]
impl<T, S> axum_core::extract::FromRequestParts<S> for State<T>
where
    T: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        _parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(State(T::from_ref(state)))
    }
}

impl<T> Deref for State<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// Takes a part of the state (axum's `FromRef`): `State<Part>` works for a state `S` with
/// `Part: FromRef<S>`. Every `Clone` type is `FromRef` of itself. [`State`] reads it in
/// HTTP handlers too (implement this trait, not axum's, for a part of the state).
pub trait FromRef<T> {
    /// Takes the part.
    fn from_ref(input: &T) -> Self;
}

impl<T: Clone> FromRef<T> for T {
    fn from_ref(input: &T) -> Self {
        input.clone()
    }
}

/// Message attributes (SNS/SQS message attributes, AMQP headers), decoded.
///
/// A message without attributes gives an empty map.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attributes(pub std::collections::BTreeMap<String, crate::AttributeValue>);

impl Attributes {
    /// The attribute called `name`.
    pub fn get(&self, name: &str) -> Option<&crate::AttributeValue> {
        self.0.get(name)
    }
}

impl<S> FromMessageParts<S> for Attributes {
    type Rejection = std::convert::Infallible;

    fn from_message_parts(parts: &Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.context::<Attributes>().cloned().unwrap_or_default())
    }
}

impl Deref for Attributes {
    type Target = std::collections::BTreeMap<String, crate::AttributeValue>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// The envelope's metadata (sender, message uuid, timestamp, topic).
///
/// Missing (no envelope opened the message) → [`Outcome::Retry`].
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata(pub EnvelopeMetadata);

impl<S> FromMessageParts<S> for Metadata {
    type Rejection = Rejection;

    fn from_message_parts(parts: &Parts, _state: &S) -> Result<Self, Rejection> {
        parts
            .context::<EnvelopeMetadata>()
            .cloned()
            .map(Metadata)
            .ok_or_else(Rejection::missing_context::<EnvelopeMetadata>)
    }
}

/// `Option<Metadata>`: `None` when no envelope opened the message.
impl<S> OptionalFromMessageParts<S> for Metadata {
    type Rejection = std::convert::Infallible;

    fn from_message_parts(parts: &Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.context::<EnvelopeMetadata>().cloned().map(Metadata))
    }
}

impl Deref for Metadata {
    type Target = EnvelopeMetadata;

    fn deref(&self) -> &EnvelopeMetadata {
        &self.0
    }
}

/// The envelope's `message_uuid` (`"<service uuid>.<uuid4>"`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageUuid(pub String);

impl<S> FromMessageParts<S> for MessageUuid {
    type Rejection = Rejection;

    fn from_message_parts(parts: &Parts, _state: &S) -> Result<Self, Rejection> {
        parts
            .context::<EnvelopeMetadata>()
            .map(|metadata| MessageUuid(metadata.message_uuid.clone()))
            .ok_or_else(Rejection::missing_context::<EnvelopeMetadata>)
    }
}

/// `Option<MessageUuid>`: `None` when no envelope opened the message.
impl<S> OptionalFromMessageParts<S> for MessageUuid {
    type Rejection = std::convert::Infallible;

    fn from_message_parts(parts: &Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts
            .context::<EnvelopeMetadata>()
            .map(|metadata| MessageUuid(metadata.message_uuid.clone())))
    }
}

impl Deref for MessageUuid {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}
