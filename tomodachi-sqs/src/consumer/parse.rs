//! From an SQS message to a [`Message`] with its [`SqsContext`] (tomodachi's receive loop).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_sqs::types::MessageSystemAttributeName;
use bytes::Bytes;
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use tomodachi_core::{Attributes, Message};

use crate::SqsContext;
use crate::attributes::{decode, from_sqs};
use crate::naming::topic_from_arn;

use super::scan::Members;

/// tomodachi's drain marker payload: deleted, never handled.
pub(super) const DRAIN_MESSAGE_PAYLOAD: &str =
    "__TOMODACHI_DRAIN__cdab4416-1727-4603-87c9-0ff8dddf1f22__";

/// What one received SQS message turned out to be.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// A message for the handler.
    Handle(Message),
    /// An empty payload (`Message` empty or null, or tomodachi's drain marker): delete it
    /// silently, as tomodachi.
    Empty,
    /// The body is not a JSON object, or has no `Message`: tomodachi's warning, then
    /// delete.
    Unsupported,
}

/// What the consumer reads from a body: `Message` unescaped once (a JSON value that is
/// not a string is kept as its text). A member given twice counts with its last value,
/// as Python's `json.loads` reads it.
#[derive(Default)]
struct Body<'a> {
    kind: Option<Cow<'a, str>>,
    topic_arn: Option<Cow<'a, str>>,
    message_id: Option<Cow<'a, str>>,
    timestamp: Option<Cow<'a, str>>,
    /// Whether the body has a `Message` member at all (`null` included).
    has_message: bool,
    message: Option<Cow<'a, str>>,
    message_attributes: Attributes,
}

#[derive(Deserialize)]
struct BodyAttribute<'a> {
    #[serde(
        rename = "Type",
        alias = "DataType",
        alias = "dataType",
        alias = "type",
        borrow
    )]
    kind: Cow<'a, str>,
    #[serde(
        rename = "Value",
        alias = "StringValue",
        alias = "stringValue",
        alias = "value",
        alias = "BinaryValue",
        alias = "binaryValue",
        borrow
    )]
    value: Cow<'a, str>,
}

/// The notification's `MessageAttributes`, decoded as they are read (unknown types and
/// bad values are left out, as tomodachi does).
fn decoded_attributes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Attributes, D::Error> {
    struct Decoded;

    impl<'de> Visitor<'de> for Decoded {
        type Value = Attributes;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map of message attributes")
        }

        fn visit_unit<E>(self) -> Result<Attributes, E> {
            Ok(Attributes::default())
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Attributes, A::Error> {
            let mut attributes = Attributes::default();
            while let Some((name, attribute)) =
                map.next_entry::<Cow<'de, str>, BodyAttribute<'de>>()?
            {
                if let Some(value) = decode(&attribute.kind, &attribute.value) {
                    attributes.0.insert(name.into_owned(), value);
                }
            }
            Ok(attributes)
        }
    }

    deserializer.deserialize_any(Decoded)
}

/// The attributes as a value of their own, for [`Members::value`].
#[derive(Deserialize)]
struct DecodedAttributes(#[serde(deserialize_with = "decoded_attributes")] Attributes);

/// The body read in one pass with [`Members`], for the usual body whose known members are
/// strings; `None` leaves the body to [`serde_body`].
fn fast_body(raw: &str) -> Option<Body<'_>> {
    let mut members = Members::of(raw)?;
    let mut body = Body::default();
    while let Some(key) = members.next_key()? {
        // A repeated member overwrites the earlier one (the last wins, as in Python).
        let field = match key {
            "Type" => &mut body.kind,
            "TopicArn" => &mut body.topic_arn,
            "MessageId" => &mut body.message_id,
            "Timestamp" => &mut body.timestamp,
            "Message" => {
                body.has_message = true;
                &mut body.message
            }
            "MessageAttributes" => {
                body.message_attributes = members.value::<DecodedAttributes>()?.0;
                continue;
            }
            _ => {
                members.skip_value()?;
                continue;
            }
        };
        *field = members.string_or_null()?;
    }
    Some(body)
}

/// The body read by serde_json; `None` if it is not a JSON object of the expected shape.
/// Members given twice count with their last value (serde_json's map keeps the last).
fn serde_body(raw: &str) -> Option<Body<'_>> {
    let members = serde_json::from_str::<HashMap<Cow<'_, str>, &RawValue>>(raw).ok()?;
    let text = |name: &str| -> Option<Option<Cow<'static, str>>> {
        match members.get(name) {
            None => Some(None),
            Some(value) => serde_json::from_str::<Option<String>>(value.get())
                .ok()
                .map(|text| text.map(Cow::Owned)),
        }
    };
    let message = match members.get("Message").map(|value| value.get()) {
        None | Some("null" | "false") => None,
        Some(text) => {
            Some(serde_json::from_str::<String>(text).map_or(Cow::Borrowed(text), Cow::Owned))
        }
    };
    let message_attributes = match members.get("MessageAttributes") {
        None => Attributes::default(),
        Some(value) => {
            serde_json::from_str::<DecodedAttributes>(value.get())
                .ok()?
                .0
        }
    };
    Some(Body {
        kind: text("Type")?,
        topic_arn: text("TopicArn")?,
        message_id: text("MessageId")?,
        timestamp: text("Timestamp")?,
        has_message: members.contains_key("Message"),
        message,
        message_attributes,
    })
}

/// Parses one SQS message.
pub(crate) fn parse(
    message: &aws_sdk_sqs::types::Message,
    queue_url: &Arc<str>,
    topic_prefix: &str,
) -> Parsed {
    let raw = message.body().unwrap_or_default();
    let Some(mut body) = fast_body(raw).or_else(|| serde_body(raw)) else {
        return Parsed::Unsupported;
    };
    if !body.has_message {
        return Parsed::Unsupported;
    }
    let payload = match body.message.take() {
        None => return Parsed::Empty,
        Some(Cow::Owned(text)) => Bytes::from(text),
        Some(Cow::Borrowed(text)) => Bytes::copy_from_slice(text.as_bytes()),
    };
    let is_notification = body.kind.as_deref() == Some("Notification");
    let topic_arn = body.topic_arn.as_deref().filter(|arn| !arn.is_empty());
    let topic = match (is_notification, topic_arn) {
        (true, Some(arn)) => topic_from_arn(arn, topic_prefix),
        _ => String::new(),
    };
    if payload.is_empty() || payload == DRAIN_MESSAGE_PAYLOAD.as_bytes() {
        return Parsed::Empty;
    }

    let message_attributes = match message.message_attributes() {
        Some(attributes) => from_sqs(attributes),
        None => body.message_attributes,
    };
    let system = message.attributes();
    let system_value = |name: MessageSystemAttributeName| {
        system
            .and_then(|map| map.get(&name))
            .filter(|value| !value.is_empty())
            .cloned()
    };
    let context = SqsContext {
        queue_url: queue_url.clone(),
        receipt_handle: message.receipt_handle().unwrap_or_default().to_owned(),
        approximate_receive_count: system_value(
            MessageSystemAttributeName::ApproximateReceiveCount,
        )
        .and_then(|count| count.parse().ok())
        .filter(|count| *count != 0),
        topic,
        sns_message_id: match (is_notification, topic_arn) {
            (true, Some(_)) => body.message_id.as_deref().unwrap_or_default().to_owned(),
            _ => String::new(),
        },
        sqs_message_id: message.message_id().unwrap_or_default().to_owned(),
        message_type: body.kind.map(|kind| kind.into_owned()),
        raw_message_body: Arc::from(raw),
        message_timestamp: body.timestamp.map(|ts| ts.into_owned()).unwrap_or_default(),
        message_attributes: message_attributes.clone(),
        message_deduplication_id: system_value(MessageSystemAttributeName::MessageDeduplicationId),
        message_group_id: system_value(MessageSystemAttributeName::MessageGroupId),
    };
    Parsed::Handle(
        Message::new(payload)
            .with_context(context)
            .with_context(message_attributes),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqs_message(body: &str) -> aws_sdk_sqs::types::Message {
        aws_sdk_sqs::types::Message::builder()
            .body(body)
            .receipt_handle("rh")
            .message_id("sqs-id")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "2")
            .build()
    }

    #[test]
    fn notification_is_unwrapped_with_tomodachis_keywords() {
        let body = r#"{"Type": "Notification", "MessageId": "sns-id", "TopicArn": "arn:aws:sns:us-east-1:123456789012:dev-a___2e_b", "Message": "{\"x\": 1}", "Timestamp": "2026-01-01T00:00:00.000Z", "MessageAttributes": {"n": {"Type": "Number", "Value": "5"}, "b": {"Type": "Binary", "Value": "AAE="}}}"#;
        let queue_url: Arc<str> = "http://q".into();
        let Parsed::Handle(message) = parse(&sqs_message(body), &queue_url, "dev-") else {
            panic!("handled");
        };
        assert_eq!(message.body().as_ref(), br#"{"x": 1}"#);
        let context = message.context::<SqsContext>().unwrap();
        assert_eq!(context.topic, "a.b");
        assert_eq!(context.sns_message_id, "sns-id");
        assert_eq!(context.sqs_message_id, "sqs-id");
        assert_eq!(context.approximate_receive_count, Some(2));
        assert_eq!(context.message_timestamp, "2026-01-01T00:00:00.000Z");
        assert_eq!(context.message_type.as_deref(), Some("Notification"));
        assert_eq!(context.message_attributes.get("n"), Some(&5_i64.into()));
        assert_eq!(
            context.message_attributes.get("b"),
            Some(&tomodachi_core::AttributeValue::Binary(Bytes::from_static(
                b"\x00\x01"
            )))
        );
        assert_eq!(&*context.raw_message_body, body);
    }

    #[test]
    fn the_one_pass_read_agrees_with_serde_json() {
        let sns = "{\n  \"Type\" : \"Notification\",\n  \"MessageId\" : \"m\",\n  \"TopicArn\" : \"arn:aws:sns:us-east-1:123456789012:t\",\n  \"Subject\" : null,\n  \"Message\" : \"{\\\"a\\\": \\\"\\\\u00e9\\\\ud83d\\\\ude00\\\"}\",\n  \"Timestamp\" : \"2026-01-01T00:00:00.000Z\",\n  \"SignatureVersion\" : \"1\",\n  \"Signature\" : \"c2lnbmF0dXJl\",\n  \"MessageAttributes\" : {\"n\" : {\"Type\":\"Number\",\"Value\":\"5\"}, \"s\" : {\"Type\":\"String\",\"Value\":\"\\u00e9\"}}\n}";
        let sent = r#"{"Type": "Message", "QueueUrl": "http://q", "Version": "0", "Message": "\ud83d\ude00 plain", "Timestamp": "t", "MessageAttributes": {}}"#;
        for body in [
            sns,
            sent,
            "{}",
            r#"{"Message": null, "Other": [1, {"x": 2.5}]}"#,
            r#"{"Type": "a", "Type": "b", "Message": "1", "Message": "2"}"#,
        ] {
            let fast = fast_body(body).unwrap_or_else(|| panic!("one pass: {body}"));
            let serde = serde_body(body).unwrap();
            assert_eq!(fast.kind, serde.kind, "{body}");
            assert_eq!(fast.topic_arn, serde.topic_arn, "{body}");
            assert_eq!(fast.message_id, serde.message_id, "{body}");
            assert_eq!(fast.timestamp, serde.timestamp, "{body}");
            assert_eq!(fast.message, serde.message, "{body}");
            assert_eq!(fast.has_message, serde.has_message, "{body}");
            assert_eq!(fast.message_attributes, serde.message_attributes, "{body}");
        }
        assert_eq!(fast_body(sns).unwrap().message_attributes.len(), 2);
        // What the one pass leaves to serde_json.
        for body in [
            r#"{"Message": {"a": 1}}"#,
            r#"{"Message": "\ud800"}"#,
            r#"{"M\u0065ssage": "x"}"#,
            "[1]",
        ] {
            assert!(fast_body(body).is_none(), "{body}");
        }
    }

    #[test]
    fn the_last_of_a_repeated_member_counts() {
        let queue_url: Arc<str> = "http://q".into();
        for body in [
            r#"{"Message": "first", "Type": "Message", "Message": "last"}"#,
            // The same through serde_json (an escaped key is left to it).
            r#"{"Message": "first", "Type": "Message", "M\u0065ssage": "last"}"#,
            r#"{"Message": {"a": 1}, "Message": "last"}"#,
        ] {
            let Parsed::Handle(message) = parse(&sqs_message(body), &queue_url, "") else {
                panic!("handled: {body}");
            };
            assert_eq!(message.body().as_ref(), b"last", "{body}");
        }
    }

    #[test]
    fn unsupported_and_empty_bodies() {
        let queue_url: Arc<str> = "http://q".into();
        assert!(matches!(
            parse(&sqs_message("not json"), &queue_url, ""),
            Parsed::Unsupported
        ));
        assert!(matches!(
            parse(&sqs_message("[1, 2]"), &queue_url, ""),
            Parsed::Unsupported
        ));
        // No `Message` at all (a bare envelope sent with SendMessage): the warning.
        for body in [r#"{"Type": "Notification"}"#, "{}", r#"{"message": "x"}"#] {
            assert!(
                matches!(
                    parse(&sqs_message(body), &queue_url, ""),
                    Parsed::Unsupported
                ),
                "{body}"
            );
        }
        for body in [r#"{"Message": null}"#, r#"{"Message": false}"#] {
            assert!(
                matches!(parse(&sqs_message(body), &queue_url, ""), Parsed::Empty),
                "{body}"
            );
        }
        assert!(matches!(
            parse(&sqs_message(r#"{"Message": ""}"#), &queue_url, ""),
            Parsed::Empty
        ));
        let Parsed::Handle(message) = parse(
            &sqs_message(r#"{"Type": "Message", "Message": "hi"}"#),
            &queue_url,
            "",
        ) else {
            panic!("handled");
        };
        let context = message.context::<SqsContext>().unwrap();
        assert_eq!(context.topic, "");
        assert_eq!(context.sns_message_id, "");
        let Parsed::Handle(message) = parse(
            &sqs_message(r#"{"Type": "Message", "Message": {"a": [1, 2]}}"#),
            &queue_url,
            "",
        ) else {
            panic!("handled");
        };
        assert_eq!(message.body().as_ref(), br#"{"a": [1, 2]}"#);
        assert_eq!(
            message
                .context::<SqsContext>()
                .unwrap()
                .message_type
                .as_deref(),
            Some("Message")
        );
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::*;

        /// A JSON value as text: strings with escapes and any Unicode, numbers, literals,
        /// nested arrays and objects.
        fn value() -> impl Strategy<Value = String> {
            let leaf = prop_oneof![
                Just("null".to_owned()),
                Just("true".to_owned()),
                Just("false".to_owned()),
                any::<i32>().prop_map(|n| n.to_string()),
                ".{0,24}".prop_map(|text| serde_json::to_string(&text).unwrap()),
                // Escaped JSON inside a string, as SNS writes `Message`.
                ".{0,16}".prop_map(|text| {
                    let inner = serde_json::json!({"data": text, "n": [1, 2.5]}).to_string();
                    serde_json::to_string(&inner).unwrap()
                }),
                Just(r#""\ud83d\ude00 \u00e9 \n""#.to_owned()),
            ];
            leaf.prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4)
                        .prop_map(|items| format!("[{}]", items.join(", "))),
                    prop::collection::vec(("[a-z]{1,6}", inner), 0..4).prop_map(|members| {
                        let members: Vec<String> = members
                            .into_iter()
                            .map(|(k, v)| format!("\"{k}\": {v}"))
                            .collect();
                        format!("{{{}}}", members.join(", "))
                    }),
                ]
            })
        }

        /// A member of an SQS body: one of the keys the parser reads (sometimes escaped,
        /// sometimes twice) or another one.
        fn member() -> impl Strategy<Value = (String, String)> {
            let key = prop_oneof![
                Just("Type"),
                Just("TopicArn"),
                Just("MessageId"),
                Just("Timestamp"),
                Just("Message"),
                Just("M\\u0065ssage"),
                Just("MessageAttributes"),
                Just("Subject"),
            ];
            let attributes = Just(
                r#"{"n": {"Type": "Number", "Value": "5"}, "s": {"Type": "String", "Value": "\u00e9"}}"#
                    .to_owned(),
            );
            (key, prop_oneof![4 => value(), 1 => attributes])
                .prop_map(|(key, value)| (key.to_owned(), value))
        }

        fn sqs(body: &str) -> aws_sdk_sqs::types::Message {
            aws_sdk_sqs::types::Message::builder()
                .body(body)
                .receipt_handle("rh")
                .build()
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

            /// The one-pass reader and serde_json agree on every body both read, and the
            /// parser never panics.
            #[test]
            fn fast_and_serde_readers_agree(
                members in prop::collection::vec(member(), 0..7),
                spaced in any::<bool>(),
            ) {
                let separator = if spaced { ",\n  " } else { "," };
                let body = format!(
                    "{{{}}}",
                    members
                        .iter()
                        .map(|(k, v)| format!("\"{k}\":{}{v}", if spaced { " " } else { "" }))
                        .collect::<Vec<_>>()
                        .join(separator)
                );
                let serde = serde_body(&body);
                if let Some(fast) = fast_body(&body) {
                    let serde = serde.expect("serde_json reads what the one pass reads");
                    prop_assert_eq!(fast.kind, serde.kind);
                    prop_assert_eq!(fast.topic_arn, serde.topic_arn);
                    prop_assert_eq!(fast.message_id, serde.message_id);
                    prop_assert_eq!(fast.timestamp, serde.timestamp);
                    prop_assert_eq!(fast.has_message, serde.has_message);
                    prop_assert_eq!(fast.message, serde.message);
                    prop_assert_eq!(fast.message_attributes, serde.message_attributes);
                }
                let queue_url: Arc<str> = "http://q".into();
                let parsed = parse(&sqs(&body), &queue_url, "");
                let has_message = members
                    .iter()
                    .any(|(k, _)| k == "Message" || k == "M\\u0065ssage");
                if !has_message {
                    prop_assert!(matches!(parsed, Parsed::Unsupported));
                }
            }

            #[test]
            fn arbitrary_text_never_panics(body in ".{0,200}") {
                let queue_url: Arc<str> = "http://q".into();
                let _ = parse(&sqs(&body), &queue_url, "");
            }
        }
    }
}
