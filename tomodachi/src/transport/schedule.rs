//! Scheduled handlers on the service builder.

use tomodachi_core::{Handler, Source, Transport};
use tomodachi_schedule::{Schedule, ScheduleSource};

use crate::Service;

impl<S> Service<S>
where
    S: Clone + Send + Sync + 'static,
{
    /// Runs `handler` on `schedule` (tomodachi's `@schedule`, `@heartbeat`, `@minutely` …).
    ///
    /// The handler's extractors may include `InvocationTime` and `Interval` and the
    /// service's `State`. An invalid schedule stops the service at startup (exit code 1).
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
        self.register(Transport::Schedule, move |context| async move {
            schedule.validate()?;
            let service = context.wrap(service, None);
            let health = context.reporter(format!("schedule:{name}"));
            let work = ScheduleSource::new(schedule)
                .named(name)
                .start(service, context.shutdown.clone())
                .await?;
            Ok(context.running(health, work))
        })
    }
}
