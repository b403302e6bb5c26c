//! Infrastructure setup against moto: redrive removal, wildcard topics, idempotency,
//! startup errors, re-creation of a deleted queue, topic lookup modes.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::convert::Infallible;
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;
use tomodachi_core::{Message, Outcome, Shutdown, Source};
use tomodachi_sqs::{
    Error, SnsPublisher, SqsConsumer, SqsContext, SqsSender, Subscription, TopicMode,
};
use tower::service_fn;

use support::*;

fn consumer(clients: &tomodachi_sqs::AwsClients, subscription: Subscription) -> SqsConsumer {
    SqsConsumer::new(
        clients.clone(),
        options(),
        subscription.wait_time(Duration::from_secs(1)),
        identity("setup"),
    )
}

#[tokio::test]
async fn redrive_policy_is_removed_without_a_dead_letter_queue() {
    let clients = clients().await;
    let topic = unique("redrive");
    let queue = unique("redrive-q");
    let url = consumer(
        &clients,
        Subscription::topic(&topic)
            .queue(&queue)
            .dead_letter(unique("redrive-dlq"), 4),
    )
    .setup()
    .await
    .unwrap();
    let redrive: serde_json::Value =
        serde_json::from_str(&queue_attributes(&clients, &url).await["RedrivePolicy"]).unwrap();
    assert_eq!(redrive["maxReceiveCount"], json!(4));

    consumer(
        &clients,
        Subscription::topic(&topic).queue(&queue).no_dead_letter(),
    )
    .setup()
    .await
    .unwrap();
    let attributes = queue_attributes(&clients, &url).await;
    let removed = attributes
        .get("RedrivePolicy")
        .is_none_or(|policy| policy.is_empty() || policy == "{}");
    assert!(removed, "RedrivePolicy still set: {attributes:?}");
}

#[tokio::test]
async fn setup_is_idempotent_on_restart() {
    let (clients, counter) = counted_clients().await;
    let subscription = Subscription::topic(unique("idem"))
        .queue(unique("idem-q"))
        .visibility_timeout(9)
        .dead_letter(unique("idem-dlq"), 2)
        .filter_policy(json!({"kind": ["a"]}));
    consumer(&clients, subscription.clone())
        .setup()
        .await
        .unwrap();
    assert_eq!(counter.get("CreateQueue"), 2);
    assert_eq!(counter.get("SetQueueAttributes"), 1);
    consumer(&clients, subscription).setup().await.unwrap();
    assert_eq!(
        counter.get("CreateQueue"),
        2,
        "queues are found, not created"
    );
    assert_eq!(counter.get("SetQueueAttributes"), 1, "nothing to change");
}

#[tokio::test]
async fn auto_queue_names_follow_tomodachi() {
    let clients = clients().await;
    let topic = unique("auto");
    let url = consumer(&clients, Subscription::topic(&topic))
        .setup()
        .await
        .unwrap();
    let expected = tomodachi_sqs::naming::auto_queue_name(&topic, "handler", "", true, "", false);
    assert!(url.ends_with(&format!("/{expected}")), "{url}");
}

#[tokio::test]
async fn wildcard_topics_subscribe_every_match() {
    let clients = clients().await;
    let base = unique("wild");
    let publisher = SnsPublisher::new(clients.clone(), options(), identity("publisher"));
    for suffix in ["paid", "sent"] {
        publisher
            .topic_arn(&format!("{base}-{suffix}"), false)
            .await
            .unwrap();
    }
    let (sender, mut topics) = mpsc::unbounded_channel();
    let service = service_fn(move |message: Message| {
        let sender = sender.clone();
        async move {
            let topic = message.context::<SqsContext>().unwrap().topic.clone();
            sender.send(topic).unwrap();
            Ok::<_, Infallible>(Outcome::Ack)
        }
    });
    let shutdown = Shutdown::new();
    let running = consumer(
        &clients,
        Subscription::topic(format!("{base}-*")).queue(unique("wild-q")),
    )
    .start(service, shutdown.clone())
    .await
    .unwrap();
    let running = tokio::spawn(running);
    for suffix in ["paid", "sent"] {
        publisher
            .publish(&json!(suffix), &format!("{base}-{suffix}"))
            .await
            .unwrap();
    }
    let mut seen = vec![
        within(20, "first", topics.recv()).await.unwrap(),
        within(20, "second", topics.recv()).await.unwrap(),
    ];
    seen.sort();
    assert_eq!(seen, [format!("{base}-paid"), format!("{base}-sent")]);
    shutdown.trigger();
    within(30, "drain", running).await.unwrap().unwrap();
}

#[tokio::test]
async fn startup_fails_with_tomodachis_messages() {
    let clients = clients().await;
    let error = consumer(&clients, Subscription::topic("bad.topic"))
        .setup()
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "Topic name (bad.topic) may only contain alphanumeric characters, hyphens (-), and underscores (_)."
    );
    let error = consumer(
        &clients,
        Subscription::topic(unique("t")).queue("q").competing(false),
    )
    .setup()
    .await
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "AWS SQS queue with predefined queue name must be competing"
    );
    let standard = unique("standard");
    consumer(&clients, Subscription::new().queue(&standard))
        .setup()
        .await
        .unwrap();
    let error = consumer(
        &clients,
        Subscription::new()
            .queue(format!("{standard}.fifo"))
            .fifo(false),
    )
    .setup()
    .await
    .unwrap_err();
    assert!(
        matches!(error, Error::Aws { .. } | Error::Setup(_)),
        "{error}"
    );
    let error = consumer(&clients, Subscription::new().queue(&standard).fifo(true))
        .setup()
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "AWS SQS queue configured as Standard, but the handler expected FIFO."
    );
}

#[tokio::test]
async fn a_deleted_queue_is_created_again() {
    let clients = clients().await;
    let queue = unique("deleted-q");
    let (sender, mut received) = mpsc::unbounded_channel();
    let service = service_fn(move |message: Message| {
        let sender = sender.clone();
        async move {
            sender.send(message.body().clone()).unwrap();
            Ok::<_, Infallible>(Outcome::Ack)
        }
    });
    let shutdown = Shutdown::new();
    let running = consumer(&clients, Subscription::new().queue(&queue))
        .start(service, shutdown.clone())
        .await
        .unwrap();
    let running = tokio::spawn(running);
    let url = queue_url(&clients, &queue).await;
    clients
        .sqs()
        .delete_queue()
        .queue_url(&url)
        .send()
        .await
        .unwrap();
    // The consumer sees NonExistentQueue and sets the queue up again; a send then arrives.
    let sqs_sender = SqsSender::new(clients.clone(), options(), identity("sender"));
    let body = within(30, "the re-created queue to deliver", async {
        loop {
            if sqs_sender.send(&json!("again"), &queue).await.is_ok()
                && let Some(body) = received.recv().await
            {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(String::from_utf8_lossy(&body).contains("again"));
    shutdown.trigger();
    within(30, "drain", running).await.unwrap().unwrap();
    // Its delete was sent before the consumer finished: nothing left to redeliver.
    let url = queue_url(&clients, &queue).await;
    let attributes = queue_attributes(&clients, &url).await;
    assert_eq!(attributes["ApproximateNumberOfMessages"], "0");
    assert_eq!(attributes["ApproximateNumberOfMessagesNotVisible"], "0");
}

#[tokio::test]
async fn lookup_only_publisher_does_not_create_topics() {
    let clients = clients().await;
    let topic = unique("lookup");
    let lookup = SnsPublisher::new(clients.clone(), options(), identity("p"))
        .topic_mode(TopicMode::LookupOnly);
    let error = lookup.publish(&json!(1), &topic).await.unwrap_err();
    assert!(matches!(error, Error::TopicDoesNotExist { .. }), "{error}");
    let create = SnsPublisher::new(clients.clone(), options(), identity("p"));
    let created = create.topic_arn(&topic, false).await.unwrap();
    assert_eq!(
        created,
        format!("arn:aws:sns:{REGION}:123456789012:{topic}")
    );
    assert_eq!(lookup.topic_arn(&topic, false).await.unwrap(), created);
    let missing = SqsSender::new(clients.clone(), options(), identity("p"))
        .send(&json!(1), &unique("nowhere"))
        .await
        .unwrap_err();
    assert_eq!(
        missing.to_string(),
        "Cannot send message to non-existent (AWS.SimpleQueueService.NonExistentQueue) SQS queue"
    );
}
