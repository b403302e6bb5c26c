//! Baseline of `bench/build/run.sh`: a bare SQS consumer. It long-polls the queue given as its
//! argument, prints each body and deletes the message.

use aws_sdk_sqs::Client;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let queue_url = std::env::args()
        .nth(1)
        .ok_or("usage: bench-build-sqs <queue-url>")?;
    let config = aws_config::load_from_env().await;
    let client = Client::new(&config);
    loop {
        let received = client
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(20)
            .send()
            .await?;
        for message in received.messages() {
            println!("{}", message.body().unwrap_or_default());
            if let Some(receipt_handle) = message.receipt_handle() {
                client
                    .delete_message()
                    .queue_url(&queue_url)
                    .receipt_handle(receipt_handle)
                    .send()
                    .await?;
            }
        }
    }
}
