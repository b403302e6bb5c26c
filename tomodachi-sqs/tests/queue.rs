//! Queues without topics against moto: what this crate does without its `sns` feature
//! (Python tomodachi's `@aws_sns_sqs` with a `queue_name` and no topic, fed by
//! `sqs_send_message`). Runs with and without `sns`.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use serde_json::json;
use tokio::sync::mpsc;
use tomodachi_core::{Handler, JsonEnvelope, Shutdown, Source};
use tomodachi_sqs::{SendOptions, SqsSender, Subscription};

use support::*;

#[tokio::test]
async fn sent_messages_are_consumed_from_a_queue_without_a_topic() {
    let clients = clients().await;
    let queue = unique("plain-q");
    let dlq = unique("plain-dlq");
    let subscription = Subscription::new()
        .queue(&queue)
        .dead_letter(&dlq, 3)
        .envelope(JsonEnvelope);
    let url = consumer(&clients, subscription.clone())
        .setup()
        .await
        .unwrap();

    // As in tomodachi: the dead-letter queue is created, but a queue without a topic gets
    // no redrive policy (nor a queue policy) from the setup.
    let dlq_url = queue_url(&clients, &dlq).await;
    assert!(dlq_url.ends_with(&dlq), "{dlq_url}");
    let attributes = queue_attributes(&clients, &url).await;
    assert!(!attributes.contains_key("RedrivePolicy"), "{attributes:?}");
    assert!(!attributes.contains_key("Policy"), "{attributes:?}");

    let (sender, mut received) = mpsc::unbounded_channel();
    let shutdown = Shutdown::new();
    let running = consumer(&clients, subscription)
        .start(on_message.with_state(sender), shutdown.clone())
        .await
        .unwrap();
    let running = tokio::spawn(running);

    let sqs = SqsSender::new(clients.clone(), options(), identity("sender"));
    let id = sqs
        .send_with(
            &json!({"order": 7}),
            &queue,
            SendOptions::new().attribute("kind", "paid"),
        )
        .await
        .unwrap();
    let (context, data) = within(20, "the sent message", received.recv())
        .await
        .unwrap();
    assert_eq!(data, json!({"order": 7}));
    assert_eq!(context.sqs_message_id, id);
    assert_eq!(context.topic, "");
    assert_eq!(context.message_type.as_deref(), Some("Message"));
    assert_eq!(&*context.queue_url, url);
    assert_eq!(
        context.message_attributes.get("kind"),
        Some(&tomodachi_core::AttributeValue::String("paid".into()))
    );

    shutdown.trigger();
    within(30, "the consumer to drain", running)
        .await
        .unwrap()
        .unwrap();
    let attributes = queue_attributes(&clients, &url).await;
    assert_eq!(attributes["ApproximateNumberOfMessages"], "0");
    assert_eq!(attributes["ApproximateNumberOfMessagesNotVisible"], "0");
}
