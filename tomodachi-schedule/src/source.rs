//! The runtime: a [`Source`] that calls a service at every due time of a [`Schedule`].

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use tokio::sync::Notify;
use tomodachi_core::driver::{Driver, Settle};
use tomodachi_core::{BoxError, Message, Outcome, Shutdown, Source};
use tower_service::Service;

use crate::{Error, Overlap, Schedule, ScheduleContext};

/// tracing target of the scheduler loop's records (tomodachi's `tomodachi.scheduler` logger).
pub const LOG_TARGET: &str = "tomodachi.scheduler";
/// tracing target of the span around each run (tomodachi's `tomodachi.schedule.handler`
/// logger); the span has the fields `handler` and `type = "tomodachi.schedule"`.
pub const HANDLER_LOG_TARGET: &str = "tomodachi.schedule.handler";

/// Longest single sleep: the wall clock is read again at least this often, so a clock change
/// (NTP step, suspend) is noticed.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// A [`Source`] that calls a `tower::Service<Message>` at every due time of a [`Schedule`].
///
/// Each run gets a [`Message`] with an empty body and a [`ScheduleContext`] (read it with the
/// [`InvocationTime`](crate::InvocationTime) and [`Interval`](crate::Interval) extractors).
/// Before each run the source awaits the service's readiness. Runs are spawned, so a slow run
/// does not delay the next tick; what happens when a tick comes due while runs are still
/// going is the schedule's [`Overlap`] policy. A failing run (an `Err` from the service or
/// a panic) is logged by core's [`Driver`](tomodachi_core::driver::Driver), as on every
/// source, and the schedule goes on; a service that fails its `poll_ready` stops the
/// schedule with [`Error::Service`].
///
/// On shutdown no new run starts; running ones are awaited without limit, with tomodachi's
/// warnings "awaiting task to complete" after 2 s and "still awaiting task to finish" every
/// 10 s after that.
#[derive(Clone)]
pub struct ScheduleSource {
    schedule: Schedule,
    name: Arc<str>,
    #[cfg(any(test, feature = "test-util"))]
    start_time: Option<DateTime<Utc>>,
}

impl fmt::Debug for ScheduleSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScheduleSource")
            .field("schedule", &self.schedule)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ScheduleSource {
    /// A source running `schedule`.
    pub fn new(schedule: Schedule) -> Self {
        Self {
            schedule,
            name: Arc::from("scheduled"),
            #[cfg(any(test, feature = "test-util"))]
            start_time: None,
        }
    }

    /// Names the handler in log records (tomodachi's `handler` field; default `"scheduled"`).
    #[must_use]
    pub fn named(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// The handler's name in log records.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// Pretends the wall clock reads `start` when the source starts, and measures time from
    /// then on with tokio's clock, so a test with `tokio::time::pause()` drives the schedule
    /// with `tokio::time::advance`.
    #[cfg(any(test, feature = "test-util"))]
    #[must_use]
    pub fn with_start_time(mut self, start: DateTime<Utc>) -> Self {
        self.start_time = Some(start);
        self
    }
}

impl From<Schedule> for ScheduleSource {
    fn from(schedule: Schedule) -> Self {
        ScheduleSource::new(schedule)
    }
}

/// The running schedule returned by [`ScheduleSource::start`](Source::start): resolves once
/// shutdown has been triggered and every run has finished.
///
/// The schedule is computed from the moment this future is first polled, so a runtime that
/// polls it only after its "started" hooks (as tomodachi starts its loops after
/// `_started_service`) gets the first tick counted from there.
pub struct Running {
    inner: Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>,
}

impl fmt::Debug for Running {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Running").finish_non_exhaustive()
    }
}

impl Future for Running {
    type Output = Result<(), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<S> Source<S> for ScheduleSource
where
    S: Service<Message, Response = Outcome> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Error = Error;
    type Running = Running;

    /// Checks the schedule (an invalid interval, timestamp or time zone fails startup).
    async fn start(self, service: S, shutdown: Shutdown) -> Result<Running, Error> {
        self.schedule.validate()?;
        #[cfg(any(test, feature = "test-util"))]
        let clock = match self.start_time {
            Some(wall) => Clock::Virtual {
                wall,
                instant: tokio::time::Instant::now(),
            },
            None => Clock::System,
        };
        #[cfg(not(any(test, feature = "test-util")))]
        let clock = Clock::System;
        let runs = Arc::new(Runs::default());
        let notice_runs = runs.clone();
        let notice_name = self.name.clone();
        let driver = Driver::new(crate::TRANSPORT, service, shutdown.clone())
            .handler(self.name.clone())
            .drain_notice(move |notice| notice_runs.log_awaiting(&notice_name, notice.first));
        let runner = Runner {
            schedule: self.schedule,
            name: self.name,
            clock,
            runs,
            next_id: 0,
        };
        Ok(Running {
            inner: Box::pin(runner.run(driver, shutdown)),
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum Clock {
    System,
    #[cfg(any(test, feature = "test-util"))]
    Virtual {
        wall: DateTime<Utc>,
        instant: tokio::time::Instant,
    },
}

impl Clock {
    fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            #[cfg(any(test, feature = "test-util"))]
            Clock::Virtual { wall, instant } => {
                let elapsed =
                    chrono::Duration::from_std(instant.elapsed()).unwrap_or(chrono::Duration::MAX);
                *wall + elapsed
            }
        }
    }
}

struct Runner {
    schedule: Schedule,
    name: Arc<str>,
    clock: Clock,
    runs: Arc<Runs>,
    next_id: u64,
}

/// The runs going now, by their task names (`handler/started at`).
#[derive(Debug, Default)]
struct Runs {
    names: Mutex<BTreeMap<u64, String>>,
    finished: Notify,
}

impl Runs {
    fn names(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, String>> {
        self.names
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn len(&self) -> usize {
        self.names().len()
    }

    /// Waits until no run is going; `false` if shutdown came first.
    async fn until_idle(&self, shutdown: &Shutdown) -> bool {
        loop {
            let finished = self.finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            if self.len() == 0 {
                return true;
            }
            tokio::select! {
                biased;
                () = shutdown.triggered() => return false,
                () = finished => {}
            }
        }
    }

    /// tomodachi's drain records, one per running task.
    fn log_awaiting(&self, handler: &str, first: bool) {
        let names: Vec<String> = self.names().values().cloned().collect();
        for task_name in names {
            if first {
                tracing::warn!(target: LOG_TARGET, handler, task_name = %task_name, "awaiting task to complete");
            } else {
                tracing::warn!(target: LOG_TARGET, handler, task_name = %task_name, "still awaiting task to finish");
            }
        }
    }
}

/// One run: settling it only records that it finished (a timer has no broker).
struct RunDone {
    runs: Arc<Runs>,
    id: u64,
}

impl RunDone {
    fn finished(&self, outcome: Outcome) {
        tracing::debug!(
            target: HANDLER_LOG_TARGET,
            outcome = outcome.as_str(),
            "scheduled function finished"
        );
    }
}

impl Drop for RunDone {
    fn drop(&mut self) {
        self.runs.names().remove(&self.id);
        self.runs.finished.notify_waiters();
    }
}

impl Settle for RunDone {
    async fn ack(self) {
        self.finished(Outcome::Ack);
    }

    async fn retry(self, delay: Option<Duration>) {
        self.finished(Outcome::Retry { delay });
    }

    async fn reject(self) {
        self.finished(Outcome::Reject);
    }
}

enum Step {
    Run,
    Skip,
    Stop,
}

impl Runner {
    async fn run<S>(mut self, mut driver: Driver<S>, shutdown: Shutdown) -> Result<(), Error>
    where
        S: Service<Message, Response = Outcome> + Send + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
    {
        let start = self.clock.now();
        let mut due = if self.schedule.runs_immediately() {
            DateTime::from_timestamp(start.timestamp(), 0)
        } else {
            self.schedule.next_after(start)
        };
        tracing::debug!(
            target: LOG_TARGET,
            handler = &*self.name,
            interval = %self.schedule.interval_value(),
            next_run = ?due.map(|at| at.to_rfc3339_opts(SecondsFormat::Secs, true)),
            "scheduled function loop started"
        );

        let mut result = Ok(());
        while let Some(at) = due {
            if !self.wait_until(at, &shutdown).await {
                break;
            }
            match self.admit(at, &shutdown).await {
                Step::Stop => break,
                Step::Skip => {}
                Step::Run => match driver.ready().await {
                    Ok(Some(ready)) => self.spawn_run(at, ready),
                    Ok(None) => break,
                    Err(failed) => {
                        result = Err(Error::Service(failed.0.to_string()));
                        break;
                    }
                },
            }
            due = self.schedule.next_after(at.max(self.clock.now()));
        }
        if due.is_none() && !shutdown.is_triggered() {
            tracing::debug!(
                target: LOG_TARGET,
                handler = &*self.name,
                "schedule has no further runs"
            );
            if self.runs.until_idle(&shutdown).await {
                shutdown.triggered().await;
            }
        }
        driver.drain().await;
        result
    }

    /// Sleeps until the wall clock reaches `at`. `false` if shutdown came first.
    async fn wait_until(&mut self, at: DateTime<Utc>, shutdown: &Shutdown) -> bool {
        loop {
            if shutdown.is_triggered() {
                return false;
            }
            let now = self.clock.now();
            if now >= at {
                return true;
            }
            let wait = (at - now).to_std().unwrap_or_default().min(MAX_SLEEP);
            tokio::select! {
                biased;
                () = shutdown.triggered() => return false,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Applies the overlap policy to the tick due at `at`.
    async fn admit(&mut self, at: DateTime<Utc>, shutdown: &Shutdown) -> Step {
        let running = self.runs.len();
        match self.schedule.overlap_policy() {
            Overlap::Skip if running > 0 => {
                tracing::warn!(
                    target: LOG_TARGET,
                    handler = &*self.name,
                    invocation_time = %format_invocation_time(at),
                    task_count = running,
                    "skipped scheduled run: the previous run is still going"
                );
                Step::Skip
            }
            Overlap::Allow(limit) if running >= limit.max(1) => {
                tracing::warn!(
                    target: LOG_TARGET,
                    handler = &*self.name,
                    invocation_time = %format_invocation_time(at),
                    task_count = running,
                    task_limit = limit.max(1),
                    "too many scheduled tasks for function in scheduled function loop"
                );
                Step::Skip
            }
            Overlap::Queue => {
                if self.runs.until_idle(shutdown).await {
                    Step::Run
                } else {
                    Step::Stop
                }
            }
            Overlap::Skip | Overlap::Allow(_) => Step::Run,
        }
    }

    fn spawn_run<S>(&mut self, at: DateTime<Utc>, ready: tomodachi_core::driver::Ready<'_, S>)
    where
        S: Service<Message, Response = Outcome> + Send + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
    {
        let context = ScheduleContext::new(
            at,
            self.schedule.interval_value().clone(),
            self.name.clone(),
        );
        let invocation_time = format_invocation_time(at);
        let mut message = Message::new(Bytes::new());
        if tomodachi_core::telemetry::enabled() {
            use tomodachi_core::telemetry::{Delivery, SCHEDULE};
            message.insert_context(
                Delivery::new(SCHEDULE, "", self.name.clone())
                    .attribute("function.trigger", "timer")
                    .attribute("function.time", invocation_time.as_str())
                    .attribute("function.interval", context.interval.to_string()),
            );
        }
        message.insert_context(context);
        let span = tracing::info_span!(
            target: HANDLER_LOG_TARGET,
            "scheduled function",
            handler = &*self.name,
            "type" = "tomodachi.schedule",
            invocation_time = %invocation_time,
        );
        let id = self.next_id;
        self.next_id += 1;
        let started = self
            .clock
            .now()
            .to_rfc3339_opts(SecondsFormat::Micros, true);
        self.runs
            .names()
            .insert(id, format!("{}/{started}", self.name));
        let done = RunDone {
            runs: self.runs.clone(),
            id,
        };
        ready.dispatch(message, done, span);
    }
}

fn format_invocation_time(at: DateTime<Utc>) -> String {
    crate::InvocationTime(at).to_tomodachi_string()
}
