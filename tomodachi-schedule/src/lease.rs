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
/// the due time): a run the lease gives to another replica is not run here (outcome ack,
/// a `debug` record); a lease that cannot reach its engine skips the run with a warning on
/// `tomodachi.scheduler`, so a replica cut off from the engine never runs the job on its
/// own. Messages that are not scheduled runs pass through untouched, so the layer may wrap
/// every handler of a service.
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
        let due = std::time::SystemTime::from(tick.invocation_time);
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

    #[tokio::test]
    async fn messages_that_are_not_ticks_pass_through() {
        assert_eq!(runs(Fixed(Some(false)), Message::new("x")).await, 1);
    }
}
