//! A scheduled job that runs once per tick however many replicas run: start this twice
//! (or more) and each second's `ran the job` record comes from one of them.
//!
//! ```text
//! cargo run -p tomodachi-example-schedule-replicas            # RabbitMQ lease (127.0.0.1:5672)
//! LEASE=dynamodb cargo run -p tomodachi-example-schedule-replicas   # DynamoDB lease
//! ```
//!
//! Stop or kill the replica that runs the job and another one takes over. The broker and
//! AWS settings come from the `TOMODACHI_*` variables (`TOMODACHI_AMQP_HOST`,
//! `TOMODACHI_AWS_SNS_SQS_REGION_NAME`, ...); `LEASE_NAME` names the lease (default
//! `schedule-replicas`), `LEASE_DYNAMODB_TABLE` the table (default `tomodachi-leases`),
//! `LEASE_DYNAMODB_URL` a DynamoDB endpoint such as moto's.

use std::env;
use std::sync::Arc;

use tomodachi::amqp::AmqpLease;
use tomodachi::core::Lease;
use tomodachi::schedule::LeaseLayer;
use tomodachi::sqs::DynamoDbLease;
use tomodachi::{InvocationTime, Options, Schedule, Service};

async fn job(at: InvocationTime) {
    tracing::info!(invocation_time = %at, "ran the job");
}

#[tokio::main]
async fn main() -> tomodachi::Exit {
    let options = Options::from_env().unwrap_or_default();
    let name = env::var("LEASE_NAME").unwrap_or_else(|_| "schedule-replicas".into());
    let (lease, amqp): (Arc<dyn Lease>, Option<AmqpLease>) = if env::var("LEASE").as_deref()
        == Ok("dynamodb")
    {
        let table = env::var("LEASE_DYNAMODB_TABLE").unwrap_or_else(|_| "tomodachi-leases".into());
        let url = env::var("LEASE_DYNAMODB_URL").ok();
        let lease =
            match DynamoDbLease::from_options(&options.aws_sns_sqs, url.as_deref(), table, &name)
                .await
            {
                Ok(lease) => lease,
                Err(error) => {
                    eprintln!("no DynamoDB lease: {error}");
                    return tomodachi::Exit::from(1);
                }
            };
        if let Err(error) = lease.create_table().await {
            eprintln!("no DynamoDB lease table: {error}");
            return tomodachi::Exit::from(1);
        }
        (Arc::new(lease), None)
    } else {
        let lease = AmqpLease::new(options.amqp.clone(), &name).start();
        (Arc::new(lease.clone()), Some(lease))
    };
    Service::new("schedule-replicas")
        .layer(LeaseLayer::new(lease))
        .schedule(Schedule::every("1 second"), job)
        .on_stopping(|_| async move {
            if let Some(lease) = amqp {
                lease.release().await;
            }
        })
        .run()
        .await
}
