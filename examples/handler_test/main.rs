//! A handler and its unit test, without a broker.
//!
//! `Service::handle` runs one message through the service exactly as its SNS+SQS source
//! would (its layers, its envelope, errors and panics classified), and returns the outcome.
//!
//! ```text
//! cargo test -p tomodachi-examples --example handler_test
//! ```

use serde::Deserialize;
use tomodachi::sqs::{Subscription, Topic};
use tomodachi::{Data, JsonEnvelope, Service};

#[derive(Deserialize)]
struct Paid {
    order: u64,
}

async fn on_paid(Topic(topic): Topic, Data(paid): Data<Paid>) -> Result<(), std::io::Error> {
    if paid.order == 0 {
        return Err(std::io::Error::other("there is no order 0"));
    }
    tracing::info!(%topic, order = paid.order, "order paid");
    Ok(())
}

fn service() -> Service {
    Service::new("orders")
        .envelope(JsonEnvelope)
        .sqs(Subscription::topic("order-paid").queue("orders"), on_paid)
}

#[tokio::main]
async fn main() -> tomodachi::Exit {
    service().run().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tomodachi::Outcome;
    use tomodachi::sqs::SqsContext;

    #[tokio::test]
    async fn paid_orders_are_acked_and_unknown_ones_retried() {
        let service = service();
        let paid = |order: u64| {
            let context = SqsContext::builder().topic("order-paid").build();
            service
                .message(&serde_json::json!({ "order": order }), "order-paid")
                .with_context(context)
        };
        assert_eq!(service.handle(on_paid, paid(7)).await, Outcome::Ack);
        assert_eq!(service.handle(on_paid, paid(0)).await, Outcome::retry());
    }
}
