//! A service that works on SQS queues, without SNS: each order that arrives on the queue
//! `orders` is handled and an invoice request is sent on to the queue `invoices`, which
//! a second handler consumes.
//!
//! It needs only the facade's `sqs` feature (aws-sdk-sqs, no aws-sdk-sns):
//!
//! ```sh
//! cargo run -p tomodachi-examples --no-default-features --features sqs,rustls --example sqs_queue
//! ```
//!
//! The queues are created at startup if missing. Messages come from `SqsSender::send` in
//! another Rust service or `sqs_send_message` in a Python tomodachi one (both wrap the data
//! in tomodachi's JSON envelope). The AWS options come from `TOMODACHI_AWS_*` (for moto:
//! `TOMODACHI_AWS_ENDPOINT_URLS_SQS=http://127.0.0.1:4566`, a region and keys), else from
//! the AWS default chain.

use serde::{Deserialize, Serialize};
use tomodachi::sqs::{Error, SqsSender, Subscription};
use tomodachi::{Data, JsonEnvelope, Service};

/// What arrives on `orders`.
#[derive(Debug, Deserialize)]
struct Order {
    id: u64,
    amount: u64,
}

/// What is sent on to `invoices`.
#[derive(Debug, Serialize, Deserialize)]
struct InvoiceRequest {
    order: u64,
    amount: u64,
}

/// Handles one order. Returning an error keeps the message: SQS hands it out again after
/// its visibility timeout (and to the dead-letter queue after three tries).
async fn on_order(sender: SqsSender, Data(order): Data<Order>) -> Result<(), Error> {
    tracing::info!(order = order.id, amount = order.amount, "order received");
    let request = InvoiceRequest {
        order: order.id,
        amount: order.amount,
    };
    sender.send(&request, "invoices").await.map(drop)
}

/// Handles one invoice request.
async fn on_invoice_request(Data(request): Data<InvoiceRequest>) {
    tracing::info!(
        order = request.order,
        amount = request.amount,
        "invoice requested"
    );
}

#[tokio::main]
async fn main() -> tomodachi::Exit {
    // A queue without a topic: tomodachi's `@aws_sns_sqs(queue_name="orders")`.
    let orders = Subscription::new()
        .queue("orders")
        .dead_letter("orders-dlq", 3);
    let invoices = Subscription::new().queue("invoices");
    Service::new("orders")
        .envelope(JsonEnvelope)
        .sqs(orders, on_order)
        .sqs(invoices, on_invoice_request)
        .run()
        .await
}
