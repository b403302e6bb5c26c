//! Message attributes on the wire, encoded and decoded as Python tomodachi does.
//!
//! | value | SNS/SQS type | value on the wire |
//! |---|---|---|
//! | [`AttributeValue::String`] | `String` | the string |
//! | [`AttributeValue::Number`] | `Number` | Python's `str()` of the number (`3`, `1.5`, `1e+16`) |
//! | [`AttributeValue::Binary`] | `Binary` | the bytes (base64 inside an SNS notification body) |
//! | [`AttributeValue::Json`] (booleans, null, lists) | `String.Array` | `json.dumps` of the value |

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;
use tomodachi_core::{AttributeValue, Attributes, to_python_json};

/// The `(DataType, string value)` of an attribute; `None` as string value for `Binary`.
fn wire(value: &AttributeValue) -> (&'static str, Option<String>) {
    match value {
        AttributeValue::String(text) => ("String", Some(text.clone())),
        AttributeValue::Number(number) => ("Number", Some(python_json(number))),
        AttributeValue::Binary(_) => ("Binary", None),
        AttributeValue::Json(json) => ("String.Array", Some(python_json(json))),
    }
}

fn python_json<T: Serialize + ?Sized>(value: &T) -> String {
    to_python_json(value)
        .map(|raw| raw.get().to_owned())
        .unwrap_or_else(|_| "null".to_owned())
}

/// Adds `key: value` (trace context a layer injects) to `attributes`, replacing a
/// same-named one.
pub(crate) fn inject(attributes: &mut Vec<(String, AttributeValue)>, key: &str, value: &str) {
    attributes.retain(|(name, _)| name != key);
    attributes.push((key.to_owned(), AttributeValue::String(value.to_owned())));
}

/// SQS `MessageAttributeValue` of an attribute.
pub(crate) fn to_sqs(value: &AttributeValue) -> aws_sdk_sqs::types::MessageAttributeValue {
    let (data_type, string_value) = wire(value);
    let mut builder = aws_sdk_sqs::types::MessageAttributeValue::builder().data_type(data_type);
    builder = match value {
        AttributeValue::Binary(bytes) => {
            builder.binary_value(aws_sdk_sqs::primitives::Blob::new(bytes.to_vec()))
        }
        _ => builder.set_string_value(string_value),
    };
    #[allow(clippy::expect_used)]
    builder
        .build()
        .expect("data_type is always set on SQS message attribute values")
}

/// SNS `MessageAttributeValue` of an attribute.
#[cfg(feature = "sns")]
pub(crate) fn to_sns(value: &AttributeValue) -> aws_sdk_sns::types::MessageAttributeValue {
    let (data_type, string_value) = wire(value);
    let mut builder = aws_sdk_sns::types::MessageAttributeValue::builder().data_type(data_type);
    builder = match value {
        AttributeValue::Binary(bytes) => {
            builder.binary_value(aws_sdk_sns::primitives::Blob::new(bytes.to_vec()))
        }
        _ => builder.set_string_value(string_value),
    };
    #[allow(clippy::expect_used)]
    builder
        .build()
        .expect("data_type is always set on SNS message attribute values")
}

/// One attribute as an SNS notification body carries it (`{"Type": …, "Value": …}`).
#[derive(Debug, Serialize)]
pub(crate) struct BodyAttribute {
    #[serde(rename = "Type")]
    kind: &'static str,
    #[serde(rename = "Value")]
    value: String,
}

/// An attribute in the `MessageAttributes` of tomodachi's `sqs_send_message` body.
pub(crate) fn to_body(value: &AttributeValue) -> BodyAttribute {
    let (kind, string_value) = wire(value);
    let value = match value {
        AttributeValue::Binary(bytes) => BASE64.encode(bytes),
        _ => string_value.unwrap_or_default(),
    };
    BodyAttribute { kind, value }
}

/// Decodes one attribute from its type and string value (Python's
/// `transform_message_attributes_from_response`); `None` for unknown types or bad values.
pub(crate) fn decode(kind: &str, value: &str) -> Option<AttributeValue> {
    match kind {
        "String" => Some(AttributeValue::String(value.to_owned())),
        "Number" => {
            let number = if value.contains('.') {
                serde_json::Number::from_f64(value.trim().parse::<f64>().ok()?)?
            } else if let Ok(int) = value.trim().parse::<i64>() {
                int.into()
            } else if let Ok(int) = value.trim().parse::<u64>() {
                int.into()
            } else {
                serde_json::Number::from_f64(value.trim().parse::<f64>().ok()?)?
            };
            Some(AttributeValue::Number(number))
        }
        "Binary" => BASE64
            .decode(value.as_bytes())
            .ok()
            .map(|bytes| AttributeValue::Binary(bytes.into())),
        "String.Array" => serde_json::from_str(value).ok().map(AttributeValue::Json),
        _ => None,
    }
}

/// Decodes the attributes of an SQS message.
pub(crate) fn from_sqs(
    attributes: &std::collections::HashMap<String, aws_sdk_sqs::types::MessageAttributeValue>,
) -> Attributes {
    let mut decoded = BTreeMap::new();
    for (name, value) in attributes {
        let kind = value.data_type();
        let parsed = match (kind, value.binary_value(), value.string_value()) {
            ("Binary", Some(blob), _) => Some(AttributeValue::Binary(
                bytes::Bytes::copy_from_slice(blob.as_ref()),
            )),
            (_, _, Some(text)) => decode(kind, text),
            _ => None,
        };
        if let Some(parsed) = parsed {
            decoded.insert(name.clone(), parsed);
        }
    }
    Attributes(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values computed with Python tomodachi 0.29
    // (`transform_message_attributes_to_botocore` and `..._to_message_body_metadata`).
    #[test]
    fn encoding_matches_python() {
        let cases: Vec<(AttributeValue, &str, Option<&str>)> = vec![
            ("x".into(), "String", Some("x")),
            (3_i64.into(), "Number", Some("3")),
            (
                AttributeValue::Number(serde_json::Number::from_f64(1.5).unwrap()),
                "Number",
                Some("1.5"),
            ),
            (
                AttributeValue::Number(serde_json::Number::from_f64(1e16).unwrap()),
                "Number",
                Some("1e+16"),
            ),
            (true.into(), "String.Array", Some("true")),
            (
                AttributeValue::Json(serde_json::Value::Null),
                "String.Array",
                Some("null"),
            ),
            (
                AttributeValue::Json(serde_json::json!([1, "a", null, true])),
                "String.Array",
                Some("[1, \"a\", null, true]"),
            ),
            (
                AttributeValue::Binary(bytes::Bytes::from_static(b"\x00\x01")),
                "Binary",
                None,
            ),
        ];
        for (value, kind, text) in cases {
            let (wire_kind, wire_text) = wire(&value);
            assert_eq!(wire_kind, kind, "{value:?}");
            assert_eq!(wire_text.as_deref(), text, "{value:?}");
        }
        let body = to_body(&AttributeValue::Binary(bytes::Bytes::from_static(
            b"\x00\x01",
        )));
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"Type":"Binary","Value":"AAE="}"#
        );
    }

    #[test]
    fn decoding_matches_python() {
        assert_eq!(decode("Number", "3"), Some(3_i64.into()));
        assert_eq!(
            decode("Number", "3.50"),
            Some(AttributeValue::Number(
                serde_json::Number::from_f64(3.5).unwrap()
            ))
        );
        assert_eq!(
            decode("String.Array", "[1, \"x\"]"),
            Some(AttributeValue::Json(serde_json::json!([1, "x"])))
        );
        assert_eq!(
            decode("Binary", "AAE="),
            Some(AttributeValue::Binary(bytes::Bytes::from_static(
                b"\x00\x01"
            )))
        );
        assert_eq!(decode("String", "s"), Some("s".into()));
        assert_eq!(decode("Custom", "s"), None);
    }
}
