use std::ops::Deref;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Serialize, Serializer};

use super::{FromMessage, Rejection};
use crate::Message;

/// A protobuf message (a `prost` message type): the data a handler takes, and the data a
/// handler publishes, as axum's `Json<T>` is both.
///
/// As an extractor, `Proto<T>` is the message's data decoded as `T`: what
/// [`ProtobufEnvelope`](crate::ProtobufEnvelope) opened (decoded once, by the envelope,
/// when it was told [`proto::<T>()`](crate::ProtobufEnvelope::proto)), or else the body
/// itself. Data that does not decode is [rejected](Rejection::invalid_data).
///
/// To publish, pass `&Proto(message)` to a publisher that seals with
/// [`ProtobufEnvelope`](crate::ProtobufEnvelope). (Its JSON form, which is what other
/// envelopes would send, is the base64 of the serialized message.)
///
/// ```
/// use tomodachi_core::{FromMessage, Message, Proto};
///
/// #[derive(Clone, PartialEq, prost::Message)]
/// struct Person {
///     #[prost(string, tag = "2")]
///     name: String,
/// }
///
/// let body = prost::Message::encode_to_vec(&Person { name: "Ada".into() });
/// let Proto(person) = Proto::<Person>::from_message(Message::new(body), &()).unwrap();
/// assert_eq!(person.name, "Ada");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Proto<T>(pub T);

/// A message the envelope already decoded, in the message's context.
#[derive(Debug)]
pub(crate) struct Decoded<T>(pub(crate) Arc<T>);

impl<T> Clone for Decoded<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T, S> FromMessage<S> for Proto<T>
where
    T: prost::Message + Default + Clone + Send + Sync + 'static,
{
    type Rejection = Rejection;

    fn from_message(message: Message, _state: &S) -> Result<Self, Rejection> {
        let (mut parts, body) = message.into_parts();
        if let Some(Decoded(decoded)) = parts.take_context::<Decoded<T>>() {
            // The only reference unless someone cloned the context: no copy then.
            return Ok(Proto(Arc::unwrap_or_clone(decoded)));
        }
        T::decode(body).map(Proto).map_err(Rejection::invalid_data)
    }
}

impl<T: prost::Message> Serialize for Proto<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&BASE64.encode(self.0.encode_to_vec()))
    }
}

impl<T> Deref for Proto<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, PartialEq, prost::Message)]
    struct Count {
        #[prost(uint32, tag = "1")]
        n: u32,
    }

    #[test]
    fn data_that_does_not_decode_is_rejected() {
        // Field 1 as length-delimited where `Count` has a varint, cut short.
        let message = Message::new(bytes::Bytes::from_static(b"\x0a\x05"));
        let rejection = Proto::<Count>::from_message(message, &()).unwrap_err();
        assert_eq!(rejection.outcome(), crate::Outcome::Reject);
        assert!(
            rejection.reason().contains("invalid message data"),
            "{rejection}"
        );
    }

    #[test]
    fn a_value_the_envelope_decoded_is_taken_as_it_is() {
        let message = Message::new("not protobuf").with_context(Decoded(Arc::new(Count { n: 3 })));
        let Proto(count) = Proto::<Count>::from_message(message, &()).unwrap();
        assert_eq!(count.n, 3);
    }
}
