//! What the transport knows about a delivery, and one extractor per field.

use std::collections::BTreeMap;
use std::ops::Deref;

use lapin::types::{AMQPValue, FieldTable};
use tomodachi_core::{FromMessageParts, Parts, Rejection};

use crate::naming::decode_routing_key;

/// A header or table value, as plain Rust types.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AmqpValue {
    /// A boolean.
    Bool(bool),
    /// Any AMQP integer type.
    Int(i64),
    /// A float or double.
    Float(f64),
    /// A string (long or short) that is valid UTF-8.
    String(String),
    /// A byte array, or a long string that is not UTF-8.
    Bytes(Vec<u8>),
    /// A timestamp (seconds since the epoch).
    Timestamp(u64),
    /// A decimal: `value / 10^scale`.
    Decimal {
        /// Digits after the point.
        scale: u8,
        /// The unscaled value.
        value: u32,
    },
    /// An array.
    Array(Vec<AmqpValue>),
    /// A nested table.
    Table(AmqpTable),
    /// No value.
    Void,
}

/// A table of header values, by name.
pub type AmqpTable = BTreeMap<String, AmqpValue>;

impl AmqpValue {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub(crate) fn from_lapin(value: &AMQPValue) -> Self {
        match value {
            AMQPValue::Boolean(b) => Self::Bool(*b),
            AMQPValue::ShortShortInt(i) => Self::Int(i64::from(*i)),
            AMQPValue::ShortShortUInt(i) => Self::Int(i64::from(*i)),
            AMQPValue::ShortInt(i) => Self::Int(i64::from(*i)),
            AMQPValue::ShortUInt(i) => Self::Int(i64::from(*i)),
            AMQPValue::LongInt(i) => Self::Int(i64::from(*i)),
            AMQPValue::LongUInt(i) => Self::Int(i64::from(*i)),
            AMQPValue::LongLongInt(i) => Self::Int(*i),
            AMQPValue::Float(f) => Self::Float(f64::from(*f)),
            AMQPValue::Double(f) => Self::Float(*f),
            AMQPValue::DecimalValue(d) => Self::Decimal {
                scale: d.scale,
                value: d.value,
            },
            AMQPValue::ShortString(s) => Self::String(s.as_str().to_owned()),
            AMQPValue::LongString(s) => match std::str::from_utf8(s.as_bytes()) {
                Ok(text) => Self::String(text.to_owned()),
                Err(_) => Self::Bytes(s.as_bytes().to_vec()),
            },
            AMQPValue::FieldArray(a) => {
                Self::Array(a.as_slice().iter().map(Self::from_lapin).collect())
            }
            AMQPValue::Timestamp(t) => Self::Timestamp(*t),
            AMQPValue::FieldTable(t) => Self::Table(table_from_lapin(t)),
            AMQPValue::ByteArray(b) => Self::Bytes(b.as_slice().to_vec()),
            AMQPValue::Void => Self::Void,
        }
    }

    pub(crate) fn to_lapin(&self) -> AMQPValue {
        match self {
            Self::Bool(b) => AMQPValue::Boolean(*b),
            Self::Int(i) => AMQPValue::LongLongInt(*i),
            Self::Float(f) => AMQPValue::Double(*f),
            Self::String(s) => AMQPValue::LongString(s.as_str().into()),
            Self::Bytes(b) => AMQPValue::ByteArray(b.as_slice().into()),
            Self::Timestamp(t) => AMQPValue::Timestamp(*t),
            Self::Decimal { scale, value } => AMQPValue::DecimalValue(lapin::types::DecimalValue {
                scale: *scale,
                value: *value,
            }),
            Self::Array(a) => {
                AMQPValue::FieldArray(a.iter().map(Self::to_lapin).collect::<Vec<_>>().into())
            }
            Self::Table(t) => AMQPValue::FieldTable(table_to_lapin(t)),
            Self::Void => AMQPValue::Void,
        }
    }
}

impl From<&str> for AmqpValue {
    fn from(value: &str) -> Self {
        Self::String(value.to_owned())
    }
}

impl From<String> for AmqpValue {
    fn from(value: String) -> Self {
        Self::String(value)
    }
}

impl From<i64> for AmqpValue {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<bool> for AmqpValue {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

pub(crate) fn table_from_lapin(table: &FieldTable) -> AmqpTable {
    table
        .inner()
        .iter()
        .map(|(key, value)| (key.as_str().to_owned(), AmqpValue::from_lapin(value)))
        .collect()
}

/// Keys longer than 255 bytes cannot be sent and are skipped.
pub(crate) fn table_to_lapin(table: &AmqpTable) -> FieldTable {
    let mut out = FieldTable::default();
    for (key, value) in table {
        if let Ok(key) = lapin::types::ShortString::try_new(key.as_str()) {
            out.insert(key, value.to_lapin());
        }
    }
    out
}

/// The headers as core's [`Attributes`](tomodachi_core::Attributes), so handlers read
/// them with the same extractor on every transport: strings, bytes and numbers as such,
/// the rest as JSON.
pub(crate) fn attributes_from_headers(headers: &AmqpTable) -> tomodachi_core::Attributes {
    use tomodachi_core::AttributeValue;
    fn json(value: &AmqpValue) -> serde_json::Value {
        use serde_json::Value;
        match value {
            AmqpValue::Bool(b) => Value::Bool(*b),
            AmqpValue::Int(i) => Value::from(*i),
            AmqpValue::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
            }
            AmqpValue::String(s) => Value::from(s.as_str()),
            AmqpValue::Bytes(b) => Value::from(String::from_utf8_lossy(b).into_owned()),
            AmqpValue::Timestamp(t) => Value::from(*t),
            AmqpValue::Decimal { scale, value } => {
                let value = f64::from(*value) / 10_f64.powi(i32::from(*scale));
                serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number)
            }
            AmqpValue::Array(items) => items.iter().map(json).collect(),
            AmqpValue::Table(table) => table.iter().map(|(k, v)| (k.clone(), json(v))).collect(),
            AmqpValue::Void => Value::Null,
        }
    }
    let attribute = |value: &AmqpValue| match value {
        AmqpValue::String(s) => AttributeValue::String(s.clone()),
        AmqpValue::Bytes(b) => AttributeValue::Binary(b.clone().into()),
        other => match json(other) {
            serde_json::Value::Number(n) => AttributeValue::Number(n),
            value => AttributeValue::Json(value),
        },
    };
    tomodachi_core::Attributes(
        headers
            .iter()
            .map(|(name, value)| (name.clone(), attribute(value)))
            .collect(),
    )
}

/// The AMQP basic properties of a delivery (headers are in [`AmqpContext::headers`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AmqpProperties {
    /// `content-type`.
    pub content_type: Option<String>,
    /// `content-encoding`.
    pub content_encoding: Option<String>,
    /// `delivery-mode` (2 = persistent).
    pub delivery_mode: Option<u8>,
    /// `priority`.
    pub priority: Option<u8>,
    /// `correlation-id`.
    pub correlation_id: Option<String>,
    /// `reply-to`.
    pub reply_to: Option<String>,
    /// `expiration`.
    pub expiration: Option<String>,
    /// `message-id`.
    pub message_id: Option<String>,
    /// `timestamp` (seconds since the epoch).
    pub timestamp: Option<u64>,
    /// `type`.
    pub kind: Option<String>,
    /// `user-id`.
    pub user_id: Option<String>,
    /// `app-id`.
    pub app_id: Option<String>,
    /// `cluster-id`.
    pub cluster_id: Option<String>,
}

impl AmqpProperties {
    pub(crate) fn from_lapin(p: &lapin::BasicProperties) -> Self {
        let s = |v: &Option<lapin::types::ShortString>| v.as_ref().map(|s| s.as_str().to_owned());
        Self {
            content_type: s(p.content_type()),
            content_encoding: s(p.content_encoding()),
            delivery_mode: *p.delivery_mode(),
            priority: *p.priority(),
            correlation_id: s(p.correlation_id()),
            reply_to: s(p.reply_to()),
            expiration: s(p.expiration()),
            message_id: s(p.message_id()),
            timestamp: *p.timestamp(),
            kind: s(p.kind()),
            user_id: s(p.user_id()),
            app_id: s(p.app_id()),
            cluster_id: s(p.cluster_id()),
        }
    }
}

/// What the AMQP transport knows about a delivery; in every [`Message`]'s context.
///
/// Read it whole with [`Context<AmqpContext>`](AmqpContext) as an extractor, or one field at
/// a time with [`RoutingKey`], [`BoundRoutingKey`], [`Exchange`], [`QueueName`],
/// [`DeliveryTag`], [`Redelivered`], [`Headers`] and [`Properties`]. The envelope's
/// `message_uuid` is in core's envelope metadata once the envelope is opened.
///
/// [`Message`]: tomodachi_core::Message
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AmqpContext {
    /// The routing key the message was published with, as delivered (prefixed, encoded).
    pub routing_key: String,
    /// The binding's routing key without prefix: tomodachi's `routing_key` keyword (which
    /// may hold wildcards).
    pub bound_routing_key: String,
    /// The exchange the message was published to.
    pub exchange: String,
    /// The queue it was consumed from.
    pub queue_name: String,
    /// The delivery tag on the consumer's channel.
    pub delivery_tag: u64,
    /// Whether the broker delivered it before (a retry, or a consumer that went away).
    pub redelivered: bool,
    /// The message headers.
    pub headers: AmqpTable,
    /// The other message properties.
    pub properties: AmqpProperties,
}

impl AmqpContext {
    /// The delivered routing key decoded with tomodachi's `decode_routing_key`.
    pub fn decoded_routing_key(&self) -> String {
        decode_routing_key(&self.routing_key)
    }
}

/// Builds an [`AmqpContext`] for a handler's unit test (the `test-util` feature): every
/// field starts as a first delivery on `amq.topic` would have it.
///
/// ```
/// use tomodachi_amqp::{AmqpContext, RoutingKey};
///
/// let message = AmqpContext::builder()
///     .routing_key("order.paid")
///     .header("event", "paid")
///     .message(r#"{"order": 7}"#);
/// assert_eq!(message.context::<AmqpContext>().unwrap().routing_key, "order.paid");
/// ```
#[cfg(feature = "test-util")]
#[derive(Debug, Clone)]
pub struct AmqpContextBuilder {
    context: AmqpContext,
}

#[cfg(feature = "test-util")]
impl AmqpContext {
    /// A builder of a context (see [`AmqpContextBuilder`]).
    pub fn builder() -> AmqpContextBuilder {
        AmqpContextBuilder {
            context: AmqpContext {
                routing_key: String::new(),
                bound_routing_key: String::new(),
                exchange: "amq.topic".into(),
                queue_name: "queue".into(),
                delivery_tag: 1,
                redelivered: false,
                headers: AmqpTable::new(),
                properties: AmqpProperties::default(),
            },
        }
    }
}

#[cfg(feature = "test-util")]
impl AmqpContextBuilder {
    /// The routing key as delivered; also the bound routing key unless that is set.
    #[must_use]
    pub fn routing_key(mut self, routing_key: impl Into<String>) -> Self {
        self.context.routing_key = routing_key.into();
        if self.context.bound_routing_key.is_empty() {
            self.context.bound_routing_key = self.context.routing_key.clone();
        }
        self
    }

    /// The binding's routing key (tomodachi's `routing_key` keyword).
    #[must_use]
    pub fn bound_routing_key(mut self, routing_key: impl Into<String>) -> Self {
        self.context.bound_routing_key = routing_key.into();
        self
    }

    /// The exchange.
    #[must_use]
    pub fn exchange(mut self, exchange: impl Into<String>) -> Self {
        self.context.exchange = exchange.into();
        self
    }

    /// The queue's name.
    #[must_use]
    pub fn queue_name(mut self, queue_name: impl Into<String>) -> Self {
        self.context.queue_name = queue_name.into();
        self
    }

    /// The delivery tag.
    #[must_use]
    pub fn delivery_tag(mut self, delivery_tag: u64) -> Self {
        self.context.delivery_tag = delivery_tag;
        self
    }

    /// Whether the message was delivered before.
    #[must_use]
    pub fn redelivered(mut self, redelivered: bool) -> Self {
        self.context.redelivered = redelivered;
        self
    }

    /// Adds a message header.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<AmqpValue>) -> Self {
        self.context.headers.insert(name.into(), value.into());
        self
    }

    /// The other message properties.
    #[must_use]
    pub fn properties(mut self, properties: AmqpProperties) -> Self {
        self.context.properties = properties;
        self
    }

    /// The context.
    pub fn build(self) -> AmqpContext {
        self.context
    }

    /// A message with this body and context, as the consumer builds it (the headers are
    /// its `Attributes` too).
    pub fn message(self, body: impl Into<bytes::Bytes>) -> tomodachi_core::Message {
        let attributes = attributes_from_headers(&self.context.headers);
        tomodachi_core::Message::new(body)
            .with_context(self.context)
            .with_context(attributes)
    }
}

impl<S> FromMessageParts<S> for AmqpContext {
    type Rejection = Rejection;

    fn from_message_parts(parts: &Parts, _state: &S) -> Result<Self, Rejection> {
        context(parts).cloned()
    }
}

fn context(parts: &Parts) -> Result<&AmqpContext, Rejection> {
    parts
        .context::<AmqpContext>()
        .ok_or_else(Rejection::missing_context::<AmqpContext>)
}

macro_rules! context_extractor {
    ($(#[$doc:meta])* $name:ident($ty:ty) = |$ctx:ident| $value:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name(pub $ty);

        impl<S> FromMessageParts<S> for $name {
            type Rejection = Rejection;

            fn from_message_parts(parts: &Parts, _state: &S) -> Result<Self, Rejection> {
                let $ctx = context(parts)?;
                Ok($name($value))
            }
        }

        impl Deref for $name {
            type Target = $ty;

            fn deref(&self) -> &$ty {
                &self.0
            }
        }
    };
}

context_extractor!(
    /// The routing key as delivered (with `routing_key_prefix`, encoded).
    RoutingKey(String) = |ctx| ctx.routing_key.clone()
);
context_extractor!(
    /// The binding's routing key without prefix (tomodachi's `routing_key` keyword).
    BoundRoutingKey(String) = |ctx| ctx.bound_routing_key.clone()
);
context_extractor!(
    /// The exchange the message was published to (tomodachi's `exchange_name`).
    Exchange(String) = |ctx| ctx.exchange.clone()
);
context_extractor!(
    /// The queue the message was consumed from.
    QueueName(String) = |ctx| ctx.queue_name.clone()
);
context_extractor!(
    /// The delivery tag.
    DeliveryTag(u64) = |ctx| ctx.delivery_tag
);
context_extractor!(
    /// Whether the message was delivered before.
    Redelivered(bool) = |ctx| ctx.redelivered
);
context_extractor!(
    /// The message headers.
    Headers(AmqpTable) = |ctx| ctx.headers.clone()
);
context_extractor!(
    /// The message properties (tomodachi's `properties`).
    Properties(AmqpProperties) = |ctx| ctx.properties.clone()
);

#[cfg(test)]
mod tests {
    use tomodachi_core::{Message, Outcome};

    use super::*;

    fn message() -> Message {
        Message::new("{}").with_context(AmqpContext {
            routing_key: "dev.order.___c3a4_".into(),
            bound_routing_key: "order.*".into(),
            exchange: "amq.topic".into(),
            queue_name: "q".into(),
            delivery_tag: 7,
            redelivered: true,
            headers: [("traceparent".to_owned(), AmqpValue::from("00-abc"))].into(),
            properties: AmqpProperties::default(),
        })
    }

    #[test]
    fn headers_are_attributes() {
        let headers: AmqpTable = [
            ("s".to_owned(), AmqpValue::from("text")),
            ("i".to_owned(), AmqpValue::Int(7)),
            ("b".to_owned(), AmqpValue::Bool(true)),
            (
                "a".to_owned(),
                AmqpValue::Array(vec![AmqpValue::Int(1), AmqpValue::Void]),
            ),
        ]
        .into();
        let attributes = attributes_from_headers(&headers);
        assert_eq!(attributes.get("s"), Some(&"text".into()));
        assert_eq!(attributes.get("i"), Some(&7_i64.into()));
        assert_eq!(
            attributes.get("b"),
            Some(&tomodachi_core::AttributeValue::Json(serde_json::json!(
                true
            )))
        );
        assert_eq!(
            attributes.get("a"),
            Some(&tomodachi_core::AttributeValue::Json(serde_json::json!([
                1, null
            ])))
        );
    }

    #[test]
    fn extractors_read_the_context() {
        let message = message();
        let parts = message.parts();
        assert_eq!(
            RoutingKey::from_message_parts(parts, &()).unwrap().0,
            "dev.order.___c3a4_"
        );
        assert_eq!(
            BoundRoutingKey::from_message_parts(parts, &()).unwrap().0,
            "order.*"
        );
        assert_eq!(
            Exchange::from_message_parts(parts, &()).unwrap().0,
            "amq.topic"
        );
        assert_eq!(QueueName::from_message_parts(parts, &()).unwrap().0, "q");
        assert_eq!(DeliveryTag::from_message_parts(parts, &()).unwrap().0, 7);
        assert!(Redelivered::from_message_parts(parts, &()).unwrap().0);
        let headers = Headers::from_message_parts(parts, &()).unwrap();
        assert_eq!(headers["traceparent"].as_str(), Some("00-abc"));
        let ctx = AmqpContext::from_message_parts(parts, &()).unwrap();
        assert_eq!(ctx.decoded_routing_key(), "dev.order.ä");
    }

    #[test]
    fn missing_context_retries() {
        let message = Message::new("");
        let rejection = RoutingKey::from_message_parts(message.parts(), &()).unwrap_err();
        assert!(matches!(rejection.outcome(), Outcome::Retry { .. }));
    }

    #[test]
    fn values_round_trip_through_lapin() {
        let table: AmqpTable = [
            ("s".to_owned(), AmqpValue::from("x")),
            ("i".to_owned(), AmqpValue::Int(-3)),
            ("b".to_owned(), AmqpValue::Bool(true)),
            ("f".to_owned(), AmqpValue::Float(1.5)),
            ("t".to_owned(), AmqpValue::Timestamp(9)),
            ("bytes".to_owned(), AmqpValue::Bytes(vec![0xff, 0])),
            (
                "a".to_owned(),
                AmqpValue::Array(vec![AmqpValue::Int(1), AmqpValue::Void]),
            ),
            (
                "n".to_owned(),
                AmqpValue::Table(
                    [("k".to_owned(), AmqpValue::Decimal { scale: 2, value: 5 })].into(),
                ),
            ),
        ]
        .into();
        assert_eq!(table_from_lapin(&table_to_lapin(&table)), table);
        // a long string that is not UTF-8 reads as bytes
        let raw = AMQPValue::LongString(vec![0xff_u8].into());
        assert_eq!(AmqpValue::from_lapin(&raw), AmqpValue::Bytes(vec![0xff]));
    }
}
