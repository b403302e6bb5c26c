//! The publisher as a `tower::Service` against the real broker: layers such as
//! `tower::retry` wrap a publish, and `publish` stays one line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::future::BoxFuture;
use lapin::ExchangeKind;
use lapin::options::{
    BasicGetOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use serde_json::json;
use support::*;
use tomodachi_amqp::{AmqpPublish, AmqpPublisher, Error};
use tower::retry::{Policy, RetryLayer};

/// Retries a publish the broker refused because its exchange is not there, once the
/// exchange and a queue bound to it have been declared (as a consuming service that starts
/// late would). Counts the tries.
#[derive(Clone)]
struct UntilTheExchangeExists {
    exchange: String,
    queue: String,
    tries: Arc<AtomicUsize>,
}

impl Policy<AmqpPublish, (), Error> for UntilTheExchangeExists {
    type Future = BoxFuture<'static, ()>;

    fn retry(
        &mut self,
        _request: &mut AmqpPublish,
        result: &mut Result<(), Error>,
    ) -> Option<Self::Future> {
        let tries = self.tries.fetch_add(1, Ordering::SeqCst) + 1;
        match result {
            Err(Error::Publish { .. }) if tries < 3 => {
                let (exchange, queue) = (self.exchange.clone(), self.queue.clone());
                Some(Box::pin(async move {
                    declare_and_bind(&exchange, &queue).await
                }))
            }
            _ => None,
        }
    }

    fn clone_request(&mut self, request: &AmqpPublish) -> Option<AmqpPublish> {
        Some(request.clone())
    }
}

async fn declare_and_bind(exchange: &str, queue: &str) {
    let (_connection, channel) = raw().await;
    channel
        .exchange_declare(
            exchange.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                auto_delete: false,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_layer_publishes_again_after_the_broker_refused_a_missing_exchange() {
    let exchange = unique("retry");
    let queue = unique("retry-q");
    let policy = UntilTheExchangeExists {
        exchange: exchange.clone(),
        queue: queue.clone(),
        tries: Arc::default(),
    };
    let publisher = AmqpPublisher::new(options(), identity("sender"))
        .exchange(&exchange)
        .layer(RetryLayer::new(policy.clone()));

    within(
        20,
        "the retried publish",
        publisher.publish(&json!({"order": 7}), "order.paid"),
    )
    .await
    .expect("published on the second try");

    // The first try was refused by the broker (NOT_FOUND), the second one went through.
    assert_eq!(policy.tries.load(Ordering::SeqCst), 2);
    let (_connection, channel) = raw().await;
    assert_eq!(ready_count(&channel, &queue).await, 1);
    let message = channel
        .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("the published message");
    let envelope: serde_json::Value = serde_json::from_slice(&message.delivery.data).unwrap();
    assert_eq!(envelope["data"], json!({"order": 7}));
    assert_eq!(envelope["metadata"]["topic"], "order.paid");

    let _ = channel
        .queue_delete(queue.as_str().into(), Default::default())
        .await;
    publisher.close().await;
    delete_exchange(&exchange).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_retry_layer_a_missing_exchange_fails_the_publish_once() {
    let exchange = unique("no-retry");
    let publisher = AmqpPublisher::new(options(), identity("sender")).exchange(&exchange);
    let error = within(
        20,
        "the refused publish",
        publisher.publish(&json!({"order": 7}), "order.paid"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&error, Error::Publish { exchange: e, .. } if *e == exchange),
        "{error}"
    );
    publisher.close().await;
}
