use std::ops::Deref;

use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::{FromMessage, Rejection};
use crate::Message;

/// The message's data, deserialized from JSON.
///
/// With an envelope it is the envelope's `data`; without one, the whole body. A payload
/// that does not deserialize into `T` is [rejected](Rejection::invalid_data).
///
/// ```
/// use serde::Deserialize;
/// use tomodachi_core::{Data, FromMessage, Message};
///
/// #[derive(Deserialize)]
/// struct Order { id: u64 }
///
/// let Data(order) = Data::<Order>::from_message(Message::new(r#"{"id": 7}"#), &()).unwrap();
/// assert_eq!(order.id, 7);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Data<T>(pub T);

impl<T, S> FromMessage<S> for Data<T>
where
    T: DeserializeOwned,
{
    type Rejection = Rejection;

    fn from_message(message: Message, _state: &S) -> Result<Self, Rejection> {
        // One UTF-8 check of the whole body, then the `&str` reader: serde_json's byte
        // reader would check every string on its own, which costs more.
        let text = std::str::from_utf8(message.body()).map_err(Rejection::invalid_data)?;
        serde_json::from_str(text)
            .map(Data)
            .map_err(Rejection::invalid_data)
    }
}

impl<T> Deref for Data<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// The message's body as bytes, untouched (the envelope's data when an envelope opened it).
///
/// ```
/// use tomodachi_core::{FromMessage, Message, Raw};
///
/// let raw = Raw::from_message(Message::new("plain text"), &()).unwrap();
/// assert_eq!(raw.as_str(), Some("plain text"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Raw(pub Bytes);

impl Raw {
    /// The body as UTF-8 text, if it is.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
}

impl<S> FromMessage<S> for Raw {
    type Rejection = std::convert::Infallible;

    fn from_message(message: Message, _state: &S) -> Result<Self, Self::Rejection> {
        let (_, body) = message.into_parts();
        Ok(Raw(body))
    }
}

impl Deref for Raw {
    type Target = Bytes;

    fn deref(&self) -> &Bytes {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_that_is_not_utf8_is_rejected() {
        let message = Message::new(Bytes::from_static(b"\"\xff\""));
        let rejection = Data::<String>::from_message(message, &()).unwrap_err();
        assert!(
            rejection.to_string().contains("invalid message data"),
            "{rejection}"
        );
    }
}
