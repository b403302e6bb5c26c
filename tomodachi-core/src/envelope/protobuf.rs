use std::fmt;
use std::io::Write;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use prost::Message as _;
use serde_json::value::RawValue;

use super::{Envelope, EnvelopeError, EnvelopeMetadata, ServiceIdentity};
use crate::Message;
use crate::extract::proto::Decoded;

const PROTOCOL_VERSION: &str = "tomodachi-protobuf-base--1.0.0";
/// Python compresses a serialized message longer than this many bytes.
const COMPRESS_ABOVE: usize = 60_000;
const PROTO: &str = "proto";
const GZIP_PROTO: &str = "gzip_proto";
const BASE64_PROTO: &str = "base64";
const BASE64_GZIP_PROTO: &str = "base64_gzip_proto";
const RAW: &str = "raw";

/// tomodachi's `SNSSQSMessage` (`tomodachi/envelope/protobuf/sns_sqs_message.proto`).
#[derive(Clone, PartialEq, prost::Message)]
struct SnsSqsMessage {
    #[prost(message, optional, tag = "1")]
    service: Option<WireService>,
    #[prost(message, optional, tag = "2")]
    metadata: Option<WireMetadata>,
    #[prost(bytes = "bytes", tag = "3")]
    data: Bytes,
}

#[derive(Clone, PartialEq, prost::Message)]
struct WireService {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    uuid: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct WireMetadata {
    #[prost(string, tag = "1")]
    message_uuid: String,
    #[prost(string, tag = "2")]
    protocol_version: String,
    #[prost(double, tag = "3")]
    timestamp: f64,
    #[prost(string, tag = "4")]
    topic: String,
    #[prost(string, tag = "5")]
    data_encoding: String,
}

type Decode = dyn Fn(&mut Message) -> Result<(), EnvelopeError> + Send + Sync;

/// Python tomodachi's `ProtobufBase` envelope: the base64 of a protobuf `SNSSQSMessage`
/// whose `data` is the user's own protobuf message.
///
/// Sealing writes `data_encoding` `"proto"`, or `"gzip_proto"` (zlib) when the serialized
/// message is longer than 60 000 bytes. Opening also accepts the older `"base64"`,
/// `"base64_gzip_proto"` and `"raw"`, and leaves the serialized user message as the body,
/// for [`Proto<T>`](crate::Proto) (or [`Raw`](crate::Raw)) to take.
///
/// [`proto`](Self::proto) is tomodachi's `proto_class`: the envelope decodes the message as
/// that type, so a message that does not decode is a malformed envelope (the envelope
/// layer's record and outcome; the handler is not run).
/// [`validator`](Self::validator) is tomodachi's `validator`.
///
/// Publish a protobuf message with [`Proto(message)`](crate::Proto) through a publisher
/// sealing with this envelope, or seal it yourself with [`seal_proto`](Self::seal_proto).
///
/// ```
/// use tomodachi_core::{Envelope, EnvelopeMetadata, Message, ProtobufEnvelope, ServiceIdentity};
///
/// #[derive(Clone, PartialEq, prost::Message)]
/// struct Person {
///     #[prost(string, tag = "1")]
///     id: String,
///     #[prost(string, tag = "2")]
///     name: String,
/// }
///
/// let person = Person { id: "7".into(), name: "Ada".into() };
/// let sender = ServiceIdentity::new("people", "b1c0");
/// let payload = ProtobufEnvelope::new().seal_proto(&sender, "person-created", &person);
///
/// let envelope = ProtobufEnvelope::new().validator(|person: &Person| {
///     if person.name.is_empty() { Err("a person has a name") } else { Ok(()) }
/// });
/// let mut message = Message::new(payload);
/// envelope.open(&mut message).unwrap();
/// assert_eq!(message.context::<EnvelopeMetadata>().unwrap().data_encoding, "proto");
///
/// let nameless = ProtobufEnvelope::new().seal_proto(&sender, "t", &Person::default());
/// assert!(envelope.open(&mut Message::new(nameless)).is_err());
/// ```
#[derive(Clone, Default)]
pub struct ProtobufEnvelope {
    decode: Option<(Arc<Decode>, &'static str)>,
}

impl fmt::Debug for ProtobufEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtobufEnvelope")
            .field("proto", &self.decode.as_ref().map(|(_, name)| name))
            .finish()
    }
}

impl ProtobufEnvelope {
    /// An envelope that opens any protobuf message (the handler's extractor decodes it).
    pub const fn new() -> Self {
        Self { decode: None }
    }

    /// Decodes every message as `T` when opening (tomodachi's `proto_class`): one that does
    /// not decode is a malformed envelope.
    #[must_use]
    pub fn proto<T>(self) -> Self
    where
        T: prost::Message + Default + Send + Sync + 'static,
    {
        self.validator(|_: &T| Ok::<(), std::convert::Infallible>(()))
    }

    /// Decodes every message as `T` (as [`proto`](Self::proto)) and runs `validate` on it
    /// (tomodachi's `validator`): an `Err` is a warning with its text on
    /// `tomodachi.envelope` (field `envelope = "ProtobufBase"`, as Python logs it), then
    /// the message is refused as a malformed envelope is, and the handler is not run.
    #[must_use]
    pub fn validator<T, E, F>(mut self, validate: F) -> Self
    where
        T: prost::Message + Default + Send + Sync + 'static,
        E: fmt::Display,
        F: Fn(&T) -> Result<(), E> + Send + Sync + 'static,
    {
        let decode = move |message: &mut Message| {
            let encoding = message
                .context::<EnvelopeMetadata>()
                .map(|metadata| metadata.data_encoding.as_str())
                .unwrap_or_default();
            if encoding == RAW {
                // Python hands `raw` data over as bytes, undecoded.
                return Ok(());
            }
            let value =
                T::decode(message.body().clone()).map_err(|e| EnvelopeError::Undecodable {
                    encoding: encoding.to_owned(),
                    reason: format!("not a {}: {e}", std::any::type_name::<T>()),
                })?;
            if let Err(error) = validate(&value) {
                let reason = error.to_string();
                tracing::warn!(target: "tomodachi.envelope", envelope = "ProtobufBase", "{reason}");
                return Err(EnvelopeError::Invalid(reason));
            }
            message.insert_context(Decoded(Arc::new(value)));
            Ok(())
        };
        self.decode = Some((Arc::new(decode), std::any::type_name::<T>()));
        self
    }

    /// Seals the protobuf message `data` sent by `sender` to `topic`: what Python's
    /// `ProtobufBase.build_message` sends.
    pub fn seal_proto(
        &self,
        sender: &ServiceIdentity,
        topic: &str,
        data: &impl prost::Message,
    ) -> String {
        seal_bytes(sender, topic, data.encode_to_vec())
    }
}

impl Envelope for ProtobufEnvelope {
    fn open(&self, message: &mut Message) -> Result<(), EnvelopeError> {
        let body = message.body().trim_ascii();
        let wire = BASE64.decode(body).map_err(malformed)?;
        let wire = SnsSqsMessage::decode(Bytes::from(wire)).map_err(malformed)?;
        let service = wire.service.unwrap_or_default();
        let metadata = wire.metadata.unwrap_or_default();
        let data = match metadata.data_encoding.as_str() {
            PROTO | RAW => wire.data,
            GZIP_PROTO => inflate(&wire.data, GZIP_PROTO)?,
            BASE64_PROTO => Bytes::from(unbase64(&wire.data, BASE64_PROTO)?),
            BASE64_GZIP_PROTO => {
                inflate(&unbase64(&wire.data, BASE64_GZIP_PROTO)?, BASE64_GZIP_PROTO)?
            }
            // Python hands the handler an empty message for encodings it does not know.
            _ => Bytes::new(),
        };
        message.set_body(data);
        message.insert_context(EnvelopeMetadata {
            service_name: service.name,
            service_uuid: service.uuid,
            message_uuid: metadata.message_uuid,
            protocol_version: metadata.protocol_version,
            timestamp: metadata.timestamp,
            topic: metadata.topic,
            data_encoding: metadata.data_encoding,
        });
        match &self.decode {
            Some((decode, _)) => decode(message),
            None => Ok(()),
        }
    }

    /// Seals data published as [`Proto(message)`](crate::Proto) (whose JSON is the base64
    /// of the serialized message); other data is an error.
    fn seal(
        &self,
        sender: &ServiceIdentity,
        topic: &str,
        data: &RawValue,
    ) -> Result<String, EnvelopeError> {
        let not_proto = |reason: String| {
            EnvelopeError::Serialize(serde::ser::Error::custom(format!(
                "ProtobufEnvelope seals protobuf messages, published as `Proto(message)`: {reason}"
            )))
        };
        let text: &str = serde_json::from_str(data.get()).map_err(|e| not_proto(e.to_string()))?;
        let serialized = BASE64.decode(text).map_err(|e| not_proto(e.to_string()))?;
        Ok(seal_bytes(sender, topic, serialized))
    }
}

fn seal_bytes(sender: &ServiceIdentity, topic: &str, serialized: Vec<u8>) -> String {
    let (data, data_encoding) = if serialized.len() > COMPRESS_ABOVE {
        (deflate(&serialized), GZIP_PROTO)
    } else {
        (serialized, PROTO)
    };
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs_f64())
        .unwrap_or_default();
    let message = SnsSqsMessage {
        service: Some(WireService {
            name: sender.name.to_string(),
            uuid: sender.uuid.to_string(),
        }),
        metadata: Some(WireMetadata {
            message_uuid: format!("{}.{}", sender.uuid, uuid::Uuid::new_v4()),
            protocol_version: PROTOCOL_VERSION.to_owned(),
            timestamp,
            topic: topic.to_owned(),
            data_encoding: data_encoding.to_owned(),
        }),
        data: data.into(),
    };
    BASE64.encode(message.encode_to_vec())
}

fn malformed(error: impl fmt::Display) -> EnvelopeError {
    EnvelopeError::Malformed(serde::de::Error::custom(format!(
        "not a ProtobufBase message: {error}"
    )))
}

fn unbase64(data: &[u8], encoding: &str) -> Result<Vec<u8>, EnvelopeError> {
    BASE64
        .decode(data.trim_ascii())
        .map_err(|e| EnvelopeError::Undecodable {
            encoding: encoding.to_owned(),
            reason: e.to_string(),
        })
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a `Vec` cannot fail.
    let _ = encoder.write_all(data);
    encoder.finish().unwrap_or_default()
}

/// zlib-inflates `compressed` within the process's cap (see
/// [`inflate_capped`](super::inflate_capped)): a decompression bomb stops there.
fn inflate(compressed: &[u8], encoding: &str) -> Result<Bytes, EnvelopeError> {
    super::inflate_capped(compressed, encoding).map(Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FromMessage, Proto, Raw};

    #[derive(Clone, PartialEq, prost::Message)]
    struct Person {
        #[prost(string, tag = "1")]
        id: String,
        #[prost(string, tag = "2")]
        name: String,
    }

    fn sender() -> ServiceIdentity {
        ServiceIdentity::new("service-a", "0b8b8f4e-0000-4000-8000-000000000001")
    }

    fn person(name: &str) -> Person {
        Person {
            id: "1".into(),
            name: name.into(),
        }
    }

    fn wire(payload: &str) -> SnsSqsMessage {
        SnsSqsMessage::decode(Bytes::from(BASE64.decode(payload).unwrap())).unwrap()
    }

    fn payload(encoding: &str, data: Vec<u8>) -> String {
        let message = SnsSqsMessage {
            service: Some(WireService {
                name: "py".into(),
                uuid: "u".into(),
            }),
            metadata: Some(WireMetadata {
                message_uuid: "u.m".into(),
                protocol_version: PROTOCOL_VERSION.into(),
                timestamp: 1.5,
                topic: "t".into(),
                data_encoding: encoding.into(),
            }),
            data: data.into(),
        };
        BASE64.encode(message.encode_to_vec())
    }

    #[test]
    fn seals_tomodachi_s_fields() {
        let sealed = ProtobufEnvelope::new().seal_proto(&sender(), "topic-a", &person("Ada"));
        let wire = wire(&sealed);
        let service = wire.service.unwrap();
        let metadata = wire.metadata.unwrap();
        assert_eq!(service.name, "service-a");
        assert_eq!(service.uuid, "0b8b8f4e-0000-4000-8000-000000000001");
        assert!(
            metadata
                .message_uuid
                .starts_with("0b8b8f4e-0000-4000-8000-000000000001.")
        );
        assert_eq!(metadata.message_uuid.len(), 36 + 1 + 36);
        assert_eq!(metadata.protocol_version, "tomodachi-protobuf-base--1.0.0");
        assert_eq!(metadata.topic, "topic-a");
        assert_eq!(metadata.data_encoding, "proto");
        assert!(metadata.timestamp > 1.7e9);
        assert_eq!(Person::decode(wire.data).unwrap(), person("Ada"));
    }

    #[test]
    fn compresses_above_sixty_thousand_bytes() {
        // A string field of n bytes serializes to 1 (tag) + 3 (length) + n bytes, after the id.
        let overhead = person("").encoded_len() + 4;
        for (size, expected) in [(60_000, PROTO), (60_001, GZIP_PROTO)] {
            let message = person(&"x".repeat(size - overhead));
            assert_eq!(message.encoded_len(), size);
            let sealed = ProtobufEnvelope::new().seal_proto(&sender(), "t", &message);
            assert_eq!(wire(&sealed).metadata.unwrap().data_encoding, expected);
            let mut opened = Message::new(sealed);
            ProtobufEnvelope::new()
                .proto::<Person>()
                .open(&mut opened)
                .unwrap();
            let Proto(got) = Proto::<Person>::from_message(opened, &()).unwrap();
            assert_eq!(got, message);
        }
    }

    #[test]
    fn opens_every_encoding_python_reads() {
        let ada = person("Ada").encode_to_vec();
        let cases = [
            ("proto", ada.clone()),
            ("gzip_proto", deflate(&ada)),
            ("base64", BASE64.encode(&ada).into_bytes()),
            (
                "base64_gzip_proto",
                BASE64.encode(deflate(&ada)).into_bytes(),
            ),
        ];
        for (encoding, data) in cases {
            let mut message = Message::new(payload(encoding, data));
            ProtobufEnvelope::new().open(&mut message).unwrap();
            let metadata = message.context::<EnvelopeMetadata>().unwrap().clone();
            assert_eq!(metadata.data_encoding, encoding);
            assert_eq!(metadata.message_uuid, "u.m");
            assert_eq!(metadata.timestamp, 1.5);
            let Proto(got) = Proto::<Person>::from_message(message, &()).unwrap();
            assert_eq!(got, person("Ada"), "{encoding}");
        }
        let mut message = Message::new(payload("raw", b"as is".to_vec()));
        ProtobufEnvelope::new()
            .proto::<Person>()
            .open(&mut message)
            .unwrap();
        assert_eq!(
            Raw::from_message(message, &()).unwrap().as_str(),
            Some("as is")
        );
    }

    #[test]
    fn malformed_and_undecodable_messages_are_errors() {
        let envelope = ProtobufEnvelope::new().proto::<Person>();
        // Not base64; a length-delimited field cut short.
        for body in ["not base64!", "CgU="] {
            let result = envelope.open(&mut Message::new(body));
            assert!(
                matches!(result, Err(EnvelopeError::Malformed(_))),
                "{body}: {result:?}"
            );
        }
        // Field 1 as a varint where Person has a string.
        let bad = payload("proto", vec![0x08, 0x01]);
        assert!(matches!(
            envelope.open(&mut Message::new(bad)),
            Err(EnvelopeError::Undecodable { .. })
        ));
        let bomb = payload(
            "gzip_proto",
            deflate(&vec![0; super::super::DEFAULT_MAX_INFLATED_SIZE + 1]),
        );
        let error = envelope.open(&mut Message::new(bomb)).unwrap_err();
        assert!(matches!(error, EnvelopeError::TooLarge { .. }), "{error}");
    }

    #[test]
    fn the_validator_rejects_with_its_reason() {
        let envelope = ProtobufEnvelope::new().validator(|p: &Person| {
            if p.name.is_empty() {
                Err("a person has a name")
            } else {
                Ok(())
            }
        });
        let nameless = payload("proto", person("").encode_to_vec());
        let error = envelope.open(&mut Message::new(nameless)).unwrap_err();
        assert_eq!(error.to_string(), "invalid message: a person has a name");
        let ada = payload("proto", person("Ada").encode_to_vec());
        envelope.open(&mut Message::new(ada)).unwrap();
    }

    #[test]
    fn seals_data_published_as_proto_and_nothing_else() {
        let data = crate::to_python_json(&Proto(person("Ada"))).unwrap();
        let sealed = ProtobufEnvelope::new().seal(&sender(), "t", &data).unwrap();
        assert_eq!(Person::decode(wire(&sealed).data).unwrap(), person("Ada"));
        let json = crate::to_python_json(&serde_json::json!({"a": 1})).unwrap();
        let error = ProtobufEnvelope::new()
            .seal(&sender(), "t", &json)
            .unwrap_err();
        assert!(error.to_string().contains("Proto(message)"), "{error}");
    }
}
