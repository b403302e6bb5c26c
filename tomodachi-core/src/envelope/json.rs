use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{Envelope, EnvelopeError, EnvelopeMetadata, ServiceIdentity, to_python_string};
use crate::Message;

const PROTOCOL_VERSION: &str = "tomodachi-json-base--1.0.0";
const COMPATIBLE_PROTOCOL_VERSIONS: [&str; 1] = ["json_base-wip"];
const COMPRESS_AT: usize = 60_000;
const RAW: &str = "raw";
const BASE64_GZIP_JSON: &str = "base64_gzip_json";

/// Python tomodachi's `JsonBase` envelope, byte for byte.
///
/// Sealed messages look like this (Python's `json.dumps` layout):
///
/// ```text
/// {"service": {"name": "orders", "uuid": "…"}, "metadata": {"message_uuid": "<uuid>.<uuid4>",
///  "protocol_version": "tomodachi-json-base--1.0.0", "compatible_protocol_versions": ["json_base-wip"],
///  "timestamp": 1732790000.123456, "topic": "order-paid", "data_encoding": "raw"}, "data": …}
/// ```
///
/// Once the JSON of `data` reaches 60 000 characters, `data` is the base64 of its zlib
/// compression and `data_encoding` is `"base64_gzip_json"`.
///
/// ```
/// use tomodachi_core::{to_python_json, Envelope, EnvelopeMetadata, JsonEnvelope, Message, ServiceIdentity};
///
/// let sender = ServiceIdentity::new("orders", "b1c0");
/// let data = to_python_json(&serde_json::json!({"id": 1})).unwrap();
/// let payload = JsonEnvelope.seal(&sender, "order-paid", &data).unwrap();
///
/// let mut message = Message::new(payload);
/// JsonEnvelope.open(&mut message).unwrap();
/// assert_eq!(message.body().as_ref(), br#"{"id": 1}"#);
/// let metadata = message.context::<EnvelopeMetadata>().unwrap();
/// assert_eq!(metadata.topic, "order-paid");
/// assert!(metadata.message_uuid.starts_with("b1c0."));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonEnvelope;

#[derive(Serialize)]
struct SealedMessage<'a> {
    service: SealedService<'a>,
    metadata: SealedMetadata<'a>,
    data: &'a RawValue,
}

#[derive(Serialize)]
struct SealedService<'a> {
    name: &'a str,
    uuid: &'a str,
}

#[derive(Serialize)]
struct SealedMetadata<'a> {
    message_uuid: String,
    protocol_version: &'static str,
    compatible_protocol_versions: [&'static str; 1],
    timestamp: f64,
    topic: &'a str,
    data_encoding: &'static str,
}

#[derive(Deserialize)]
struct WireMessage<'a> {
    service: WireService,
    metadata: WireMetadata,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct WireService {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    uuid: Option<String>,
}

#[derive(Deserialize)]
struct WireMetadata {
    message_uuid: String,
    #[serde(default)]
    protocol_version: Option<String>,
    #[serde(default)]
    timestamp: Option<f64>,
    #[serde(default)]
    topic: Option<String>,
    data_encoding: String,
}

impl Envelope for JsonEnvelope {
    fn open(&self, message: &mut Message) -> Result<(), EnvelopeError> {
        let body = message.body().clone();
        // One UTF-8 check of the whole body, then the `&str` reader (cheaper than the
        // byte reader's check of every string).
        let text = std::str::from_utf8(&body)
            .map_err(|e| EnvelopeError::Malformed(serde::de::Error::custom(e)))?;
        let wire: WireMessage<'_> = serde_json::from_str(text).map_err(EnvelopeError::Malformed)?;
        let data = match (wire.metadata.data_encoding.as_str(), wire.data) {
            (_, None) => bytes::Bytes::from_static(b"null"),
            (RAW, Some(data)) => body.slice_ref(data.get().as_bytes()),
            (BASE64_GZIP_JSON, Some(data)) => decompress(data)?,
            // Python tomodachi hands the handler `None` for encodings it does not know.
            (_, Some(_)) => bytes::Bytes::from_static(b"null"),
        };
        let metadata = EnvelopeMetadata {
            service_name: wire.service.name.unwrap_or_default(),
            service_uuid: wire.service.uuid.unwrap_or_default(),
            message_uuid: wire.metadata.message_uuid,
            protocol_version: wire.metadata.protocol_version.unwrap_or_default(),
            timestamp: wire.metadata.timestamp.unwrap_or_default(),
            topic: wire.metadata.topic.unwrap_or_default(),
            data_encoding: wire.metadata.data_encoding,
        };
        message.set_body(data);
        message.insert_context(metadata);
        Ok(())
    }

    fn seal(
        &self,
        sender: &ServiceIdentity,
        topic: &str,
        data: &RawValue,
    ) -> Result<String, EnvelopeError> {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs_f64())
            .unwrap_or_default();
        let compressed;
        let (data, data_encoding) = if data.get().len() >= COMPRESS_AT {
            compressed = compress(data.get())?;
            (&*compressed, BASE64_GZIP_JSON)
        } else {
            (data, RAW)
        };
        let message = SealedMessage {
            service: SealedService {
                name: &sender.name,
                uuid: &sender.uuid,
            },
            metadata: SealedMetadata {
                message_uuid: format!("{}.{}", sender.uuid, uuid::Uuid::new_v4()),
                protocol_version: PROTOCOL_VERSION,
                compatible_protocol_versions: COMPATIBLE_PROTOCOL_VERSIONS,
                timestamp,
                topic,
                data_encoding,
            },
            data,
        };
        to_python_string(&message).map_err(EnvelopeError::Serialize)
    }
}

fn compress(json: &str) -> Result<Box<RawValue>, EnvelopeError> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let compressed = encoder
        .write_all(json.as_bytes())
        .and_then(|()| encoder.finish())
        .map_err(|e| EnvelopeError::Undecodable {
            encoding: BASE64_GZIP_JSON.to_owned(),
            reason: e.to_string(),
        })?;
    let text = format!("\"{}\"", BASE64.encode(compressed));
    RawValue::from_string(text).map_err(EnvelopeError::Serialize)
}

fn decompress(data: &RawValue) -> Result<bytes::Bytes, EnvelopeError> {
    let undecodable = |reason: String| EnvelopeError::Undecodable {
        encoding: BASE64_GZIP_JSON.to_owned(),
        reason,
    };
    let text: &str = serde_json::from_str(data.get()).map_err(|e| undecodable(e.to_string()))?;
    let compressed = BASE64
        .decode(text)
        .map_err(|e| undecodable(e.to_string()))?;
    Ok(super::inflate_capped(&compressed, BASE64_GZIP_JSON)?.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::to_python_json;

    fn sender() -> ServiceIdentity {
        ServiceIdentity::new("service-a", "0b8b8f4e-0000-4000-8000-000000000001")
    }

    #[test]
    fn seals_in_python_layout() {
        let data = to_python_json(&serde_json::json!({"key": "välue"})).unwrap();
        let sealed = JsonEnvelope.seal(&sender(), "topic-a", &data).unwrap();
        let prefix = r#"{"service": {"name": "service-a", "uuid": "0b8b8f4e-0000-4000-8000-000000000001"}, "metadata": {"message_uuid": "0b8b8f4e-0000-4000-8000-000000000001."#;
        assert!(sealed.starts_with(prefix), "{sealed}");
        let rest = &sealed[prefix.len() + 36..];
        assert!(
            rest.starts_with(r#"", "protocol_version": "tomodachi-json-base--1.0.0", "compatible_protocol_versions": ["json_base-wip"], "timestamp": "#),
            "{rest}"
        );
        assert!(
            rest.ends_with(
                r#", "topic": "topic-a", "data_encoding": "raw"}, "data": {"key": "v\u00e4lue"}}"#
            ),
            "{rest}"
        );
    }

    #[test]
    fn compresses_from_sixty_thousand_characters() {
        let just_below = "x".repeat(60_000 - 3);
        let at = "x".repeat(60_000 - 2);
        for (text, expected) in [(just_below, RAW), (at, BASE64_GZIP_JSON)] {
            let data = to_python_json(&text).unwrap();
            let sealed = JsonEnvelope.seal(&sender(), "t", &data).unwrap();
            let mut message = Message::new(sealed);
            JsonEnvelope.open(&mut message).unwrap();
            let metadata = message.context::<EnvelopeMetadata>().unwrap();
            assert_eq!(metadata.data_encoding, expected);
            assert_eq!(message.body().as_ref(), data.get().as_bytes());
        }
    }

    #[test]
    fn compressed_data_is_zlib_in_base64() {
        let data = to_python_json(&"y".repeat(70_000)).unwrap();
        let sealed = JsonEnvelope.seal(&sender(), "t", &data).unwrap();
        assert!(
            sealed.contains(r#""data": "eJ"#),
            "zlib streams start with eJ in base64"
        );
    }

    #[test]
    fn malformed_envelopes_are_errors() {
        for body in [
            &b"not json"[..],
            br#"{"service": {}}"#,
            br#"{"metadata": {"message_uuid": "x"}}"#,
            b"\xff\xfe",
            // Invalid UTF-8 inside a string of an otherwise valid envelope.
            b"{\"service\": {\"name\": \"a\", \"uuid\": \"b\"}, \"metadata\": {\"message_uuid\": \"b.c\", \"data_encoding\": \"raw\"}, \"data\": \"\xff\"}",
        ] {
            let mut message = Message::new(bytes::Bytes::copy_from_slice(body));
            assert!(JsonEnvelope.open(&mut message).is_err());
        }
    }

    #[test]
    fn bad_compressed_data_is_an_error() {
        let body = r#"{"service": {"name": "a", "uuid": "b"}, "metadata": {"message_uuid": "b.c", "protocol_version": "tomodachi-json-base--1.0.0", "timestamp": 1.0, "topic": "t", "data_encoding": "base64_gzip_json"}, "data": "!!!"}"#;
        let mut message = Message::new(body);
        assert!(matches!(
            JsonEnvelope.open(&mut message),
            Err(EnvelopeError::Undecodable { .. })
        ));
    }
}
