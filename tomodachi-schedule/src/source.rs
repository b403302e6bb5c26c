//! The runtime: a [`Source`] that calls a service at every due time of a [`Schedule`].

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use tokio::task::{Id, JoinError, JoinSet};
use tomodachi_core::{BoxError, Message, Outcome, Shutdown, Source, Transport};
use tower::ServiceExt;
use tower_service::Service;
use tracing::Instrument;

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
/// a panic) is logged and the schedule goes on.
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
        Transport::Schedule.stats().enable();
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
        let runner = Runner {
            schedule: self.schedule,
            name: self.name,
            clock,
            tasks: JoinSet::new(),
            task_names: HashMap::new(),
        };
        Ok(Running {
            inner: Box::pin(runner.run(service, shutdown)),
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
    tasks: JoinSet<()>,
    task_names: HashMap<Id, String>,
}

enum Step {
    Run,
    Skip,
    Stop,
}

impl Runner {
    async fn run<S>(mut self, mut service: S, shutdown: Shutdown) -> Result<(), Error>
    where
        S: Service<Message, Response = Outcome> + Clone + Send + 'static,
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

        while let Some(at) = due {
            if !self.wait_until(at, &shutdown).await {
                break;
            }
            match self.admit(at, &shutdown).await {
                Step::Stop => break,
                Step::Skip => {}
                Step::Run => {
                    tokio::select! {
                        biased;
                        () = shutdown.triggered() => break,
                        ready = service.ready() => match ready {
                            Ok(_) => self.spawn_run(at, &mut service),
                            Err(error) => {
                                let error: BoxError = error.into();
                                tracing::error!(
                                    target: "exception",
                                    handler = &*self.name,
                                    "uncaught exception: scheduled handler's service is not ready: {error}"
                                );
                            }
                        },
                    }
                }
            }
            due = self.schedule.next_after(at.max(self.clock.now()));
        }
        if due.is_none() && !shutdown.is_triggered() {
            tracing::debug!(
                target: LOG_TARGET,
                handler = &*self.name,
                "schedule has no further runs"
            );
            while !self.tasks.is_empty() {
                tokio::select! {
                    () = shutdown.triggered() => break,
                    Some(result) = self.tasks.join_next_with_id() => self.reap(result),
                }
            }
            shutdown.triggered().await;
        }
        self.drain().await;
        Ok(())
    }

    /// Sleeps until the wall clock reaches `at`, reaping finished runs meanwhile. `false` if
    /// shutdown came first.
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
            let sleep = tokio::time::sleep(wait);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    biased;
                    () = shutdown.triggered() => return false,
                    Some(result) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                        self.reap(result);
                    }
                    () = &mut sleep => break,
                }
            }
        }
    }

    /// Applies the overlap policy to the tick due at `at`.
    async fn admit(&mut self, at: DateTime<Utc>, shutdown: &Shutdown) -> Step {
        while let Some(result) = self.tasks.try_join_next_with_id() {
            self.reap(result);
        }
        let running = self.tasks.len();
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
                while !self.tasks.is_empty() {
                    tokio::select! {
                        biased;
                        () = shutdown.triggered() => return Step::Stop,
                        Some(result) = self.tasks.join_next_with_id() => self.reap(result),
                    }
                }
                Step::Run
            }
            Overlap::Skip | Overlap::Allow(_) => Step::Run,
        }
    }

    fn spawn_run<S>(&mut self, at: DateTime<Utc>, service: &mut S)
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
        let guard = Transport::Schedule.stats().task();
        let call = span.in_scope(|| service.call(message));
        let name = self.name.clone();
        let run = async move {
            let _guard = guard;
            match call.await {
                Ok(outcome) => {
                    tracing::debug!(
                        target: HANDLER_LOG_TARGET,
                        outcome = outcome.as_str(),
                        "scheduled function finished"
                    );
                }
                Err(error) => {
                    let error: BoxError = error.into();
                    tracing::error!(
                        target: "exception",
                        handler = &*name,
                        "uncaught exception: {error}"
                    );
                }
            }
        }
        .instrument(span);
        let id = self.tasks.spawn(run).id();
        let started = self
            .clock
            .now()
            .to_rfc3339_opts(SecondsFormat::Micros, true);
        self.task_names
            .insert(id, format!("{}/{started}", self.name));
    }

    fn reap(&mut self, result: Result<(Id, ()), JoinError>) {
        let id = match result {
            Ok((id, ())) => id,
            Err(error) => {
                if error.is_panic() {
                    tracing::error!(
                        target: "exception",
                        handler = &*self.name,
                        "uncaught exception: scheduled function panicked"
                    );
                }
                error.id()
            }
        };
        self.task_names.remove(&id);
    }

    /// Awaits the running tasks, logging while it waits (as tomodachi).
    async fn drain(&mut self) {
        let mut notice = tokio::time::Instant::now() + Duration::from_secs(2);
        let mut first = true;
        while !self.tasks.is_empty() {
            tokio::select! {
                Some(result) = self.tasks.join_next_with_id() => self.reap(result),
                () = tokio::time::sleep_until(notice) => {
                    let mut names: Vec<&String> = self.task_names.values().collect();
                    names.sort();
                    for task_name in names {
                        if first {
                            tracing::warn!(target: LOG_TARGET, handler = &*self.name, task_name = %task_name, "awaiting task to complete");
                        } else {
                            tracing::warn!(target: LOG_TARGET, handler = &*self.name, task_name = %task_name, "still awaiting task to finish");
                        }
                    }
                    first = false;
                    notice = tokio::time::Instant::now() + Duration::from_secs(10);
                }
            }
        }
    }
}

fn format_invocation_time(at: DateTime<Utc>) -> String {
    crate::InvocationTime(at).to_tomodachi_string()
}
