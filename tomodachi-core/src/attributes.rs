//! Message attribute values shared by the transports.

use bytes::Bytes;

/// One decoded message attribute, as Python tomodachi decodes them.
///
/// SNS/SQS `String` → [`String`](AttributeValue::String), `Number` →
/// [`Number`](AttributeValue::Number), `Binary` → [`Binary`](AttributeValue::Binary),
/// `String.Array` → [`Json`](AttributeValue::Json) (tomodachi sends booleans and `None` as
/// `String.Array` JSON, so `true` arrives as `Json(true)`).
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    /// A string.
    String(String),
    /// A number (integer or float).
    Number(serde_json::Number),
    /// Bytes.
    Binary(Bytes),
    /// A JSON value (lists, booleans, null).
    Json(serde_json::Value),
}

impl AttributeValue {
    /// The string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(value) => Some(value),
            _ => None,
        }
    }
}

impl From<&str> for AttributeValue {
    fn from(value: &str) -> Self {
        Self::String(value.to_owned())
    }
}

impl From<String> for AttributeValue {
    fn from(value: String) -> Self {
        Self::String(value)
    }
}

impl From<i64> for AttributeValue {
    fn from(value: i64) -> Self {
        Self::Number(value.into())
    }
}

impl From<bool> for AttributeValue {
    fn from(value: bool) -> Self {
        Self::Json(value.into())
    }
}

impl From<Bytes> for AttributeValue {
    fn from(value: Bytes) -> Self {
        Self::Binary(value)
    }
}
