//! What the transport knows about a message: tomodachi's twelve keyword values.

use std::sync::Arc;

use tomodachi_core::{Attributes, FromMessageParts, Parts, Rejection};

/// The SQS context of a message: Python tomodachi's `@aws_sns_sqs` keyword values,
/// computed as tomodachi computes them.
///
/// Every field is also its own extractor ([`Topic`], [`QueueUrl`], …); take the whole
/// context with `SqsContext` itself.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SqsContext {
    /// The queue's URL.
    pub queue_url: Arc<str>,
    /// The receipt handle of this delivery.
    pub receipt_handle: String,
    /// `ApproximateReceiveCount` (1 on the first delivery).
    pub approximate_receive_count: Option<u32>,
    /// The topic, from the notification's `TopicArn` (decoded, without `topic_prefix`);
    /// `""` when the message is not an SNS notification.
    pub topic: String,
    /// The SNS message id of a notification, else `""`.
    pub sns_message_id: String,
    /// The SQS message id.
    pub sqs_message_id: String,
    /// The body's `Type` (`"Notification"`, `"Message"` from `sqs_send_message`).
    pub message_type: Option<String>,
    /// The SQS message body as received.
    pub raw_message_body: Arc<str>,
    /// The body's `Timestamp`, or `""`.
    pub message_timestamp: String,
    /// The message attributes (SQS attributes if present, else the notification's).
    pub message_attributes: Attributes,
    /// `MessageDeduplicationId` (FIFO queues).
    pub message_deduplication_id: Option<String>,
    /// `MessageGroupId` (FIFO queues).
    pub message_group_id: Option<String>,
}

impl<S> FromMessageParts<S> for SqsContext {
    type Rejection = Rejection;

    fn from_message_parts(parts: &Parts, _state: &S) -> Result<Self, Rejection> {
        parts
            .context::<SqsContext>()
            .cloned()
            .ok_or_else(Rejection::missing_context::<SqsContext>)
    }
}

/// Builds an [`SqsContext`] for a handler's unit test (the `test-util` feature): every
/// field starts as a first delivery of a message sent straight to a queue would have it.
///
/// ```
/// use tomodachi_sqs::{SqsContext, Topic};
///
/// let message = SqsContext::builder()
///     .topic("order-paid")
///     .approximate_receive_count(2)
///     .attribute("event", "paid")
///     .message(r#"{"order": 7}"#);
/// assert_eq!(message.context::<SqsContext>().unwrap().topic, "order-paid");
/// ```
#[cfg(feature = "test-util")]
#[derive(Debug, Clone)]
pub struct SqsContextBuilder {
    context: SqsContext,
}

#[cfg(feature = "test-util")]
impl SqsContext {
    /// A builder of a context (see [`SqsContextBuilder`]).
    pub fn builder() -> SqsContextBuilder {
        SqsContextBuilder {
            context: SqsContext {
                queue_url: "http://127.0.0.1:4566/123456789012/queue".into(),
                receipt_handle: "receipt-handle".into(),
                approximate_receive_count: Some(1),
                topic: String::new(),
                sns_message_id: String::new(),
                sqs_message_id: "sqs-message-id".into(),
                message_type: None,
                raw_message_body: "".into(),
                message_timestamp: String::new(),
                message_attributes: Attributes::default(),
                message_deduplication_id: None,
                message_group_id: None,
            },
        }
    }
}

#[cfg(feature = "test-util")]
macro_rules! setters {
    ($($(#[$doc:meta])* $field:ident: $ty:ty $(=> $wrap:ident)?;)*) => {
        $(
            $(#[$doc])*
            #[must_use]
            pub fn $field(mut self, value: impl Into<$ty>) -> Self {
                self.context.$field = $($wrap)?(value.into());
                self
            }
        )*
    };
}

#[cfg(feature = "test-util")]
impl SqsContextBuilder {
    setters! {
        /// `queue_url`.
        queue_url: Arc<str>;
        /// `receipt_handle`.
        receipt_handle: String;
        /// `topic` (a notification's topic, without prefix).
        topic: String;
        /// `sns_message_id`.
        sns_message_id: String;
        /// `sqs_message_id`.
        sqs_message_id: String;
        /// `message_type` (`"Notification"` for a message published to a topic).
        message_type: String => Some;
        /// `raw_message_body` (the SQS body as received).
        raw_message_body: Arc<str>;
        /// `message_timestamp`.
        message_timestamp: String;
        /// `message_deduplication_id` (FIFO).
        message_deduplication_id: String => Some;
        /// `message_group_id` (FIFO).
        message_group_id: String => Some;
    }

    /// `approximate_receive_count` (1 on the first delivery).
    #[must_use]
    pub fn approximate_receive_count(mut self, count: u32) -> Self {
        self.context.approximate_receive_count = Some(count);
        self
    }

    /// Adds a message attribute (`message_attributes`, and core's `Attributes`).
    #[must_use]
    pub fn attribute(
        mut self,
        name: impl Into<String>,
        value: impl Into<tomodachi_core::AttributeValue>,
    ) -> Self {
        self.context
            .message_attributes
            .0
            .insert(name.into(), value.into());
        self
    }

    /// The context.
    pub fn build(self) -> SqsContext {
        self.context
    }

    /// A message with this body and context, as the consumer builds it (the context and
    /// the attributes, so `Attributes` reads them too).
    pub fn message(self, body: impl Into<bytes::Bytes>) -> tomodachi_core::Message {
        let attributes = self.context.message_attributes.clone();
        tomodachi_core::Message::new(body)
            .with_context(self.context)
            .with_context(attributes)
    }
}

macro_rules! field_extractor {
    ($(#[$doc:meta])* $name:ident($ty:ty) = |$ctx:ident| $value:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name(pub $ty);

        impl<S> FromMessageParts<S> for $name {
            type Rejection = Rejection;

            fn from_message_parts(parts: &Parts, _state: &S) -> Result<Self, Rejection> {
                let $ctx = parts
                    .context::<SqsContext>()
                    .ok_or_else(Rejection::missing_context::<SqsContext>)?;
                Ok($name($value))
            }
        }

        impl std::ops::Deref for $name {
            type Target = $ty;

            fn deref(&self) -> &$ty {
                &self.0
            }
        }
    };
}

field_extractor!(
    /// The queue's URL (`queue_url`).
    QueueUrl(Arc<str>) = |ctx| ctx.queue_url.clone()
);
field_extractor!(
    /// The receipt handle (`receipt_handle`).
    ReceiptHandle(String) = |ctx| ctx.receipt_handle.clone()
);
field_extractor!(
    /// `approximate_receive_count`.
    ApproximateReceiveCount(Option<u32>) = |ctx| ctx.approximate_receive_count
);
field_extractor!(
    /// The topic the message was published to, without prefix (`topic`); `""` if none.
    Topic(String) = |ctx| ctx.topic.clone()
);
field_extractor!(
    /// The SNS message id (`sns_message_id`); `""` if not a notification.
    SnsMessageId(String) = |ctx| ctx.sns_message_id.clone()
);
field_extractor!(
    /// The SQS message id (`sqs_message_id`).
    SqsMessageId(String) = |ctx| ctx.sqs_message_id.clone()
);
field_extractor!(
    /// The body's `Type` (`message_type`).
    MessageType(Option<String>) = |ctx| ctx.message_type.clone()
);
field_extractor!(
    /// The SQS body as received (`raw_message_body`).
    RawMessageBody(Arc<str>) = |ctx| ctx.raw_message_body.clone()
);
field_extractor!(
    /// The body's `Timestamp` (`message_timestamp`); `""` if none.
    MessageTimestamp(String) = |ctx| ctx.message_timestamp.clone()
);
field_extractor!(
    /// The decoded message attributes (`message_attributes`); the same map as
    /// [`tomodachi_core::Attributes`].
    MessageAttributes(Attributes) = |ctx| ctx.message_attributes.clone()
);
field_extractor!(
    /// `message_deduplication_id` (FIFO).
    MessageDeduplicationId(Option<String>) = |ctx| ctx.message_deduplication_id.clone()
);
field_extractor!(
    /// `message_group_id` (FIFO).
    MessageGroupId(Option<String>) = |ctx| ctx.message_group_id.clone()
);

#[cfg(test)]
mod tests {
    use super::*;
    use tomodachi_core::{Message, Outcome};

    #[test]
    fn extractors_read_the_context_and_reject_without_it() {
        let context = SqsContext {
            queue_url: "http://q".into(),
            receipt_handle: "rh".into(),
            approximate_receive_count: Some(2),
            topic: "t".into(),
            sns_message_id: "sns".into(),
            sqs_message_id: "sqs".into(),
            message_type: Some("Notification".into()),
            raw_message_body: "{}".into(),
            message_timestamp: "ts".into(),
            message_attributes: Attributes::default(),
            message_deduplication_id: None,
            message_group_id: Some("g".into()),
        };
        let message = Message::new("").with_context(context);
        let parts = message.parts();
        assert_eq!(Topic::from_message_parts(parts, &()).unwrap().0, "t");
        assert_eq!(
            ApproximateReceiveCount::from_message_parts(parts, &())
                .unwrap()
                .0,
            Some(2)
        );
        assert_eq!(
            MessageGroupId::from_message_parts(parts, &()).unwrap().0,
            Some("g".into())
        );
        let bare = Message::new("");
        let rejection = Topic::from_message_parts(bare.parts(), &()).unwrap_err();
        assert_eq!(rejection.outcome(), Outcome::retry());
    }
}
