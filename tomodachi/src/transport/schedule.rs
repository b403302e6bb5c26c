//! Scheduled handlers on the service builder.

use tomodachi_core::{BoxError, Handler, Message, Outcome, Source};
use tomodachi_schedule::{Schedule, ScheduleSource};

use futures_util::future::BoxFuture;

use crate::Service;
use crate::service::{BoxMessageService, RunContext, Running, boxed};

impl<S> Service<S>
where
    S: Clone + Send + Sync + 'static,
{
    /// Runs `handler` on `schedule` (tomodachi's `@schedule`, `@heartbeat`, `@minutely` …).
    ///
    /// The handler's extractors may include `InvocationTime` and `Interval` and the
    /// service's `State`. An invalid schedule stops the service at startup (exit code 1), as
    /// does a zone name without the `tz` feature.
    ///
    /// ```no_run
    /// use tomodachi::{InvocationTime, Schedule, Service};
    ///
    /// async fn sweep(time: InvocationTime) {
    ///     tracing::info!(at = %time.to_tomodachi_string(), "sweeping");
    /// }
    ///
    /// # async fn run() -> tomodachi::Exit {
    /// Service::new("sweeper")
    ///     .schedule(Schedule::cron("*/5 * * * *").timezone("Europe/Stockholm"), sweep)
    ///     .run()
    ///     .await
    /// # }
    /// ```
    #[must_use]
    pub fn schedule<H, T>(self, schedule: Schedule, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        let (service, name) = self.message_handler(handler);
        self.schedule_source(ScheduleSource::new(schedule).named(name), service)
    }

    /// Drives `service` (any `tower::Service<Message, Response = Outcome>`) on `schedule`:
    /// [`schedule`](Service::schedule) without the handler conversion. The service's layers
    /// and telemetry wrap it as they wrap handlers (no envelope: runs have no body).
    ///
    /// ```no_run
    /// use tomodachi::{BoxError, Message, Outcome, Schedule, Service};
    ///
    /// # async fn run() -> tomodachi::Exit {
    /// let tick = tower::service_fn(|_run: Message| async { Ok::<_, BoxError>(Outcome::Ack) });
    /// Service::new("ticker")
    ///     .schedule_service(Schedule::heartbeat(), tick)
    ///     .run()
    ///     .await
    /// # }
    /// ```
    #[must_use]
    pub fn schedule_service<T>(self, schedule: Schedule, service: T) -> Self
    where
        T: tower::Service<Message, Response = Outcome> + Clone + Send + Sync + 'static,
        T::Error: Into<BoxError>,
        T::Future: Send + 'static,
    {
        self.schedule_source(ScheduleSource::new(schedule), boxed(service))
    }

    fn schedule_source(self, source: ScheduleSource, service: BoxMessageService) -> Self {
        self.register_boxed(tomodachi_schedule::TRANSPORT, move |context| {
            start(source, service, context)
        })
    }
}

/// Starts a schedule: not generic, so compiled once in this crate.
#[inline(never)]
fn start(
    source: ScheduleSource,
    service: BoxMessageService,
    context: RunContext,
) -> BoxFuture<'static, Result<Running, BoxError>> {
    Box::pin(async move {
        source.schedule().validate()?;
        let service = context.wrap(service, None);
        let health = context.reporter(format!("schedule:{}", source.name()));
        let work = source.start(service, context.shutdown.clone()).await?;
        Ok(context.running(health, work))
    })
}
