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
