//! A publisher and a subscriber with a filter policy and a dead-letter queue.
//!
//! The subscriber only receives `order-events` whose `event` attribute is `paid`; an order
//! it cannot handle is retried, and after three receives it lands in `orders-dlq`.
//!
//! ```sh
//! moto_server -H 127.0.0.1 -p 4566 &
//! cargo run -p tomodachi-sqs --example filter_and_dead_letter
//! ```
#![allow(missing_docs)]

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tomodachi_core::{
    BoxError, Data, HandlerWithoutStateExt, JsonEnvelope, ServiceIdentity, Shutdown, Source,
};
use tomodachi_sqs::{
    ApproximateReceiveCount, AwsClients, AwsEndpointUrlsOptions, AwsSnsSqsOptions, PublishOptions,
    SnsPublisher, SqsConsumer, Subscription,
};

#[derive(Debug, Serialize, Deserialize)]
struct Order {
    id: u64,
    amount: f64,
}

#[derive(Debug, thiserror::Error)]
#[error("order {0} cannot be handled")]
struct Unhandled(u64);

async fn on_paid(
    ApproximateReceiveCount(count): ApproximateReceiveCount,
    Data(order): Data<Order>,
) -> Result<(), Unhandled> {
    println!(
        "paid order {} ({}), delivery {count:?}",
        order.id, order.amount
    );
    if order.amount < 0.0 {
        // Retried; after three receives SQS moves it to the dead-letter queue.
        return Err(Unhandled(order.id));
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let url =
        std::env::var("TOMODACHI_TEST_MOTO_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".into());
    let options = AwsSnsSqsOptions {
        region_name: Some("us-east-1".into()),
        aws_access_key_id: Some("testing".into()),
        aws_secret_access_key: Some("testing".into()),
        ..AwsSnsSqsOptions::default()
    };
    let endpoints = AwsEndpointUrlsOptions {
        sns: Some(url.clone()),
        sqs: Some(url),
        sts: None,
    };
    let clients = AwsClients::from_options(&options, &endpoints).await?;

    let subscription = Subscription::topic("order-events")
        .queue("paid-orders")
        .envelope(JsonEnvelope)
        .filter_policy(serde_json::json!({"event": ["paid"]}))
        .visibility_timeout(2)
        .dead_letter("orders-dlq", 3);
    let consumer = SqsConsumer::new(
        clients.clone(),
        options.clone(),
        subscription,
        ServiceIdentity::with_random_uuid("subscriber"),
    );
    let shutdown = Shutdown::new();
    shutdown.listen_for_signals()?;
    let running = tokio::spawn(
        consumer
            .start(on_paid.into_service(), shutdown.clone())
            .await?,
    );

    let publisher = SnsPublisher::new(
        clients,
        options,
        ServiceIdentity::with_random_uuid("publisher"),
    );
    for (id, event, amount) in [(1, "created", 10.0), (2, "paid", 10.0), (3, "paid", -1.0)] {
        publisher
            .publish_with(
                &Order { id, amount },
                "order-events",
                PublishOptions::new().attribute("event", event),
            )
            .await?;
    }
    println!("published; stopping in 10 s (or on ctrl+c)");
    tokio::select! {
        () = tokio::time::sleep(Duration::from_secs(10)) => shutdown.trigger(),
        () = shutdown.triggered() => {}
    }
    running.await??;
    Ok(())
}
