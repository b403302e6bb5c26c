//! The service of the fault drills (`tests/drills.rs`): one handler on AMQP or SNS+SQS,
//! built on the facade like a user's service, that reports every message it handles.
//!
//! | variable | meaning |
//! |---|---|
//! | `DRILL_TRANSPORT` | `amqp` or `sqs` |
//! | `DRILL_NAME` | service name, routing key / queue name of this drill (unique per run) |
//! | `DRILL_DLQ` | dead-letter queue: SQS `dead_letter(DRILL_DLQ, 3)`; AMQP rejects to it |
//! | `DRILL_WORK_MS` | how long each handler works (default 0) |
//! | `DRILL_VISIBILITY` | SQS visibility timeout in seconds (default 30) |
//!
//! Messages are JSON-enveloped `{"n": <number>, "fail": "<how>"}`; `fail` is `error` or
//! `panic` (on the first delivery only), `poison` (always: SQS retries it until the
//! redrive policy moves it, AMQP rejects it to the dead-letter queue), anything else
//! succeeds. Each success prints `handled <n> <delivery>` on stdout before the handler
//! returns, `<delivery>` being SQS's receive count or, on AMQP, 1 or 2 (redelivered).

use std::time::Duration;

use serde::Deserialize;
use tomodachi::{Data, JsonEnvelope, Outcome, Service};

#[derive(Deserialize)]
struct Work {
    n: u64,
    #[serde(default)]
    fail: String,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

fn work_time() -> Duration {
    Duration::from_millis(
        var("DRILL_WORK_MS")
            .and_then(|ms| ms.parse().ok())
            .unwrap_or(0),
    )
}

/// What the handler does with `work` on its `delivery`-th delivery.
async fn handle(work: Work, delivery: u32, poison: Outcome) -> Result<Outcome, String> {
    let first = delivery <= 1;
    match work.fail.as_str() {
        "error" if first => return Err(format!("drill error for {}", work.n)),
        "panic" if first => panic!("drill panic for {}", work.n),
        "poison" => return Ok(poison),
        _ => {}
    }
    let pause = work_time();
    if !pause.is_zero() {
        tokio::time::sleep(pause).await;
    }
    println!("handled {} {delivery}", work.n);
    Ok(Outcome::Ack)
}

async fn on_amqp(
    tomodachi::amqp::Redelivered(redelivered): tomodachi::amqp::Redelivered,
    Data(work): Data<Work>,
) -> Result<Outcome, String> {
    handle(work, 1 + u32::from(redelivered), Outcome::Reject).await
}

async fn on_sqs(
    tomodachi::sqs::ApproximateReceiveCount(count): tomodachi::sqs::ApproximateReceiveCount,
    Data(work): Data<Work>,
) -> Result<Outcome, String> {
    handle(work, count.unwrap_or(1), Outcome::Retry { delay: None }).await
}

#[tokio::main]
async fn main() -> tomodachi::Exit {
    let Some(name) = var("DRILL_NAME") else {
        eprintln!("drill: DRILL_NAME is not set");
        return tomodachi::Exit::FAILURE;
    };
    let service = Service::new(&*name).envelope(JsonEnvelope);
    let service = match var("DRILL_TRANSPORT").as_deref() {
        Some("amqp") => {
            let mut binding = tomodachi::amqp::Binding::routing_key(&*name).queue_name(&*name);
            if let Some(dlq) = var("DRILL_DLQ") {
                binding = binding
                    .dead_letter_exchange("")
                    .dead_letter_routing_key(dlq);
            }
            service.amqp(binding, on_amqp)
        }
        Some("sqs") => {
            let visibility = var("DRILL_VISIBILITY")
                .and_then(|seconds| seconds.parse().ok())
                .unwrap_or(30);
            // A topic of the same name (queue attributes such as the visibility timeout
            // and the redrive policy are set with the topic subscription); the drills
            // send straight to the queue.
            let mut subscription = tomodachi::sqs::Subscription::topic(&*name)
                .queue(&*name)
                .visibility_timeout(visibility);
            if let Some(dlq) = var("DRILL_DLQ") {
                subscription = subscription.dead_letter(dlq, 3);
            }
            service.sqs(subscription, on_sqs)
        }
        other => {
            eprintln!("drill: DRILL_TRANSPORT must be amqp or sqs, not {other:?}");
            return tomodachi::Exit::FAILURE;
        }
    };
    service.run().await
}
