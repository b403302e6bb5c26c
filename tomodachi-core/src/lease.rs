//! Leases: which replica of a service runs a scheduled job.
//!
//! Run three replicas of a service with a schedule and every tick runs three times. A
//! [`Lease`] decides, tick by tick, whether this replica runs it, on an engine the service
//! already talks to (`tomodachi_amqp::AmqpLease`: RabbitMQ's single active consumer;
//! `tomodachi_sqs::DynamoDbLease`: a DynamoDB conditional write). The schedule's
//! `LeaseLayer` (in `tomodachi-schedule`) asks it before every run.
//!
//! Every lease promises at most one run per tick; a lease that cannot reach its engine
//! answers `Err`, and the run is skipped: a replica cut off from the engine stops running
//! the job instead of running it alone.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use futures_util::future::BoxFuture;

use crate::BoxError;

/// Decides whether this replica runs the tick of `job` due at `due`.
///
/// `Ok(true)`: run it here. `Ok(false)`: another replica runs it (or may have). `Err`: the
/// engine cannot tell; the run is skipped.
pub trait Lease: fmt::Debug + Send + Sync + 'static {
    /// Claims the run of `job` due at `due` (the schedule's due time, not the moment the
    /// tick fired, so replicas whose clocks differ claim the same tick).
    fn claim<'a>(&'a self, job: &'a str, due: SystemTime) -> BoxFuture<'a, Result<bool, BoxError>>;
}

impl<L: Lease + ?Sized> Lease for Arc<L> {
    fn claim<'a>(&'a self, job: &'a str, due: SystemTime) -> BoxFuture<'a, Result<bool, BoxError>> {
        (**self).claim(job, due)
    }
}
