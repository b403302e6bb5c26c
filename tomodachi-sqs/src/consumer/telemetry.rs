//! The [`Delivery`] of a received message, for tracing layers (only built when telemetry is
//! on).

use std::sync::Arc;

use tomodachi_core::telemetry::{AWS_SQS, Delivery};
use tomodachi_core::{AttributeValue, Attributes, Message};

use crate::SqsContext;

/// Adds the [`Delivery`] of `message` (queue `queue_name` without its prefix, handled by
/// `handler`): topic, SNS (else SQS) message id, and `traceparent`/`tracestate` from the
/// message attributes, as Python tomodachi sends them.
pub(super) fn insert_delivery(message: &mut Message, queue_name: &str, handler: &Arc<str>) {
    let Some(context) = message.context::<SqsContext>() else {
        return;
    };
    let attributes = message.context::<Attributes>();
    let attribute = |name: &str| {
        attributes
            .and_then(|a| a.0.get(name))
            .and_then(AttributeValue::as_str)
            .map(str::to_owned)
    };
    let id = if context.sns_message_id.is_empty() {
        &context.sqs_message_id
    } else {
        &context.sns_message_id
    };
    let mut delivery = Delivery::new(AWS_SQS, queue_name, handler.clone())
        .message_id((!id.is_empty()).then_some(id.as_str()))
        .traceparent(attribute("traceparent"))
        .tracestate(attribute("tracestate"));
    if !context.topic.is_empty() {
        delivery = delivery.routing(context.topic.as_str());
    }
    message.insert_context(delivery);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn delivery_from_context_and_attributes() {
        let context = SqsContext {
            queue_url: Arc::from("http://127.0.0.1:4566/123456789012/orders"),
            receipt_handle: String::new(),
            approximate_receive_count: None,
            topic: "order-paid".to_owned(),
            sns_message_id: "sns-1".to_owned(),
            sqs_message_id: "sqs-1".to_owned(),
            message_type: Some("Notification".to_owned()),
            raw_message_body: Arc::from("{}"),
            message_timestamp: String::new(),
            message_attributes: Attributes::default(),
            message_deduplication_id: None,
            message_group_id: None,
        };
        let attributes = Attributes(BTreeMap::from([(
            "traceparent".to_owned(),
            AttributeValue::String("00-abc".to_owned()),
        )]));
        let mut message = Message::new("{}")
            .with_context(context)
            .with_context(attributes);
        insert_delivery(&mut message, "orders", &Arc::from("on_paid"));
        let delivery = message.context::<Delivery>().unwrap();
        assert_eq!(delivery.system, AWS_SQS);
        assert_eq!(&*delivery.destination, "orders");
        assert_eq!(delivery.routing.as_deref(), Some("order-paid"));
        assert_eq!(delivery.message_id.as_deref(), Some("sns-1"));
        assert_eq!(&*delivery.handler, "on_paid");
        assert_eq!(delivery.carrier.traceparent.as_deref(), Some("00-abc"));
        assert_eq!(delivery.carrier.tracestate, None);
    }
}
