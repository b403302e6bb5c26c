//! [`LeaseLayer`]: a scheduled job runs on one replica only.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tomodachi_core::{Lease, Message, Outcome};
use tower::Layer;
use tower_service::Service;

use crate::ScheduleContext;

/// Runs a scheduled tick only where the [`Lease`] says so: one replica per tick.
///
/// Before each scheduled run, the lease is asked to claim the tick (the handler's name and
/// the tick's time): a run the lease gives to another replica is not run here (outcome ack,
/// a `debug` record); a lease that cannot reach its engine skips the run with a warning on
/// `tomodachi.scheduler`, so a replica cut off from the engine never runs the job on its
/// own. Messages that are not scheduled runs pass through untouched, so the layer may wrap
/// every handler of a service.
///
/// The tick's time is its due time, except for interval schedules of more than a second
/// (`Schedule::interval(30)`, `"5 minutes"`): they count from each replica's start (as
/// tomodachi's do), so replicas started at different moments have different due times.
/// Their ticks are claimed by the start of the epoch-aligned window of one period that
/// holds the due time: each window holds exactly one due time of every replica, so each
/// window runs once, on the replica whose tick comes first. Cron expressions, interval
/// words (`"minutely"`, `"1 second"`) and timestamps have the same due times everywhere.
///
/// ```
/// use tomodachi_schedule::LeaseLayer;
/// # #[derive(Debug)] struct MyLease;
/// # impl tomodachi_core::Lease for MyLease {
/// #     fn claim<'a>(&'a self, _: &'a str, _: std::time::SystemTime)
/// #         -> futures_util::future::BoxFuture<'a, Result<bool, tomodachi_core::BoxError>> {
/// #         Box::pin(async { Ok(true) })
/// #     }
/// # }
///
/// let layer = LeaseLayer::new(std::sync::Arc::new(MyLease));
/// # let _ = layer;
/// ```
#[derive(Debug, Clone)]
pub struct LeaseLayer<L> {
    lease: L,
}

impl<L> LeaseLayer<L> {
    /// Asks `lease` before every scheduled run.
    pub const fn new(lease: L) -> Self {
        Self { lease }
    }
}

impl<L: Clone, S> Layer<S> for LeaseLayer<L> {
    type Service = LeaseService<L, S>;

    fn layer(&self, inner: S) -> Self::Service {
        LeaseService {
            inner,
            lease: self.lease.clone(),
        }
    }
}

/// The service of [`LeaseLayer`].
#[derive(Debug, Clone)]
pub struct LeaseService<L, S> {
    inner: S,
    lease: L,
}

impl<L, S> LeaseService<L, S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutable.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<L, S> Service<Message> for LeaseService<L, S>
where
    L: Lease + Clone,
    S: Service<Message, Response = Outcome> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Outcome;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Outcome, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, message: Message) -> Self::Future {
        let Some(tick) = message.context::<ScheduleContext>() else {
            return Box::pin(self.inner.call(message));
        };
        let job = tick.handler.clone();
        let due = claimed_time(tick);
        // The ready service goes with the run; a clone stays for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let lease = self.lease.clone();
        Box::pin(async move {
            match lease.claim(&job, due).await {
                Ok(true) => inner.call(message).await,
                Ok(false) => {
                    tracing::debug!(target: crate::LOG_TARGET, handler = &*job, "scheduled run left to the replica holding the lease");
                    Ok(Outcome::Ack)
                }
                Err(error) => {
                    tracing::warn!(target: crate::LOG_TARGET, handler = &*job, "skipped scheduled run: the lease cannot tell who runs it ({error})");
                    Ok(Outcome::Ack)
                }
            }
        })
    }
}

/// The time a tick is claimed by: its due time, or for an interval schedule of more than a
/// second, the start of the epoch-aligned window of one period holding the due time.
fn claimed_time(tick: &ScheduleContext) -> std::time::SystemTime {
    let due = tick.invocation_time.timestamp();
    let window = match tick.interval.period() {
        Some(period @ 2..) => i64::try_from(period).ok(),
        _ => None,
    };
    let claimed = window.map_or(due, |period| due.div_euclid(period) * period);
    chrono::DateTime::from_timestamp(claimed, 0)
        .map_or_else(|| tick.invocation_time.into(), Into::into)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::SystemTime;

    use chrono::{TimeZone, Utc};
    use futures_util::future::BoxFuture;
    use tomodachi_core::{BoxError, Handler};
    use tower::ServiceExt;

    use super::*;
    use crate::Interval;

    /// Answers every claim with `answer`; `None` is an unreachable engine.
    #[derive(Debug, Clone)]
    struct Fixed(Option<bool>);

    impl Lease for Fixed {
        fn claim<'a>(&'a self, _: &'a str, _: SystemTime) -> BoxFuture<'a, Result<bool, BoxError>> {
            let answer = self.0;
            Box::pin(async move { answer.ok_or_else(|| "engine unreachable".into()) })
        }
    }

    fn tick() -> Message {
        let at = Utc.with_ymd_and_hms(2026, 12, 7, 1, 0, 0).unwrap();
        Message::new("").with_context(ScheduleContext::new(at, Interval::Seconds(1), "job"))
    }

    async fn runs(lease: Fixed, message: Message) -> usize {
        let count = Arc::new(AtomicUsize::new(0));
        let handler = |tomodachi_core::State(count): tomodachi_core::State<Arc<AtomicUsize>>| async move {
            count.fetch_add(1, Ordering::SeqCst);
        };
        let service = LeaseLayer::new(lease).layer(handler.with_state(count.clone()));
        assert_eq!(service.oneshot(message).await.ok(), Some(Outcome::Ack));
        count.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn a_tick_runs_only_where_the_lease_says() {
        assert_eq!(runs(Fixed(Some(true)), tick()).await, 1);
        assert_eq!(runs(Fixed(Some(false)), tick()).await, 0);
    }

    #[tokio::test]
    async fn a_lease_that_cannot_reach_its_engine_runs_nothing() {
        assert_eq!(runs(Fixed(None), tick()).await, 0);
    }

    #[test]
    fn replicas_started_apart_claim_one_window_of_an_interval_schedule() {
        let at = |second| Utc.with_ymd_and_hms(2026, 12, 7, 1, 0, second).unwrap();
        let claimed = |second, interval| {
            let context = ScheduleContext::new(at(second), interval, "job");
            claimed_time(&context)
        };
        // Every 30 s: due at :07 on one replica and :21 on another, one window (:00).
        let thirty = Interval::Seconds(30);
        assert_eq!(claimed(7, thirty.clone()), SystemTime::from(at(0)));
        assert_eq!(claimed(21, thirty.clone()), SystemTime::from(at(0)));
        assert_eq!(claimed(37, thirty), SystemTime::from(at(30)));
        assert_eq!(
            claimed(59, Interval::Text("20 seconds".into())),
            SystemTime::from(at(40))
        );
        // Every second, cron and timestamps: the due time itself.
        assert_eq!(claimed(7, Interval::Seconds(1)), SystemTime::from(at(7)));
        assert_eq!(
            claimed(7, Interval::Text("* * * * *".into())),
            SystemTime::from(at(7))
        );
    }

    #[tokio::test]
    async fn messages_that_are_not_ticks_pass_through() {
        assert_eq!(runs(Fixed(Some(false)), Message::new("x")).await, 1);
    }
}
