use std::ops::Deref;

use super::{FromMessageParts, Parts, Rejection};
use crate::Outcome;
use crate::envelope::EnvelopeMetadata;

/// A value a layer put into the message's extensions (tomodachi's "custom keywords").
///
/// Missing → [`Outcome::Retry`]: the layer that should add it is not installed.
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

impl<T> Deref for Extension<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// The service's state, or a part of it (see [`FromRef`]).
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

impl<T> Deref for State<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// Takes a part of the state (axum's `FromRef`): `State<Part>` works for a state `S` with
/// `Part: FromRef<S>`. Every `Clone` type is `FromRef` of itself.
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

impl Deref for MessageUuid {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}
