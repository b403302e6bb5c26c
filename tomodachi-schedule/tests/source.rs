//! The schedule source, driven by tokio's paused clock.

mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use support::{Logs, Record, start_wall};
use tokio::task::JoinHandle;
use tomodachi_core::{Handler, Message, Outcome, Shutdown, Source, State};
use tomodachi_schedule::{
    Error, Interval, InvocationTime, Overlap, Schedule, ScheduleContext, ScheduleSource,
};
use tower::Layer;
use tower::limit::ConcurrencyLimitLayer;

async fn record(State(record): State<Arc<Record>>, at: InvocationTime, interval: Interval) {
    record.run(at.to_string(), interval.to_string()).await;
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Starts `schedule` with the recording handler at [`start_wall`].
async fn start(
    schedule: Schedule,
    run_for: Duration,
) -> (Arc<Record>, Shutdown, JoinHandle<Result<(), Error>>) {
    let record_state = Record::new(run_for);
    let shutdown = Shutdown::new();
    let running = ScheduleSource::new(schedule)
        .named("sweep")
        .with_start_time(start_wall())
        .start(record.with_state(record_state.clone()), shutdown.clone())
        .await
        .expect("valid schedule");
    (record_state, shutdown, tokio::spawn(running))
}

async fn stop(shutdown: Shutdown, running: JoinHandle<Result<(), Error>>) {
    shutdown.trigger();
    running.await.expect("no panic").expect("drained");
}

#[tokio::test(start_paused = true)]
async fn heartbeat_fires_on_whole_seconds_with_invocation_time_and_interval() {
    let (record, shutdown, running) = start(Schedule::heartbeat(), Duration::ZERO).await;
    sleep_ms(3000).await;
    assert_eq!(
        record.invocations(),
        [
            "2024-05-01T12:00:01Z",
            "2024-05-01T12:00:02Z",
            "2024-05-01T12:00:03Z"
        ]
    );
    // Started 0.4 s past a whole second: the first run is 0.6 s later, then every second.
    assert_eq!(record.started_ms(), [600, 1600, 2600]);
    let intervals: Vec<String> = record
        .runs
        .lock()
        .expect("lock")
        .iter()
        .map(|(_, interval, _)| interval.clone())
        .collect();
    assert_eq!(intervals, ["1", "1", "1"]);
    stop(shutdown, running).await;
}

#[tokio::test(start_paused = true)]
async fn interval_string_is_passed_as_configured() {
    let (record, shutdown, running) = start(Schedule::every("2 seconds"), Duration::ZERO).await;
    sleep_ms(4000).await;
    let runs = record.runs.lock().expect("lock").clone();
    assert_eq!(
        runs,
        [
            (
                "2024-05-01T12:00:02Z".to_owned(),
                "2 seconds".to_owned(),
                1600
            ),
            (
                "2024-05-01T12:00:04Z".to_owned(),
                "2 seconds".to_owned(),
                3600
            ),
        ]
    );
    stop(shutdown, running).await;
}

#[tokio::test(start_paused = true)]
async fn immediately_runs_once_at_start() {
    let (record, shutdown, running) =
        start(Schedule::interval(10).immediately(), Duration::ZERO).await;
    sleep_ms(10_000).await;
    assert_eq!(
        record.invocations(),
        ["2024-05-01T12:00:00Z", "2024-05-01T12:00:10Z"]
    );
    assert_eq!(record.started_ms(), [0, 9600]);
    stop(shutdown, running).await;
}

#[tokio::test(start_paused = true)]
async fn skip_policy_skips_and_logs_ticks_while_running() {
    let (logs, _guard) = Logs::capture();
    let (record, shutdown, running) = start(
        Schedule::heartbeat().overlap(Overlap::Skip),
        Duration::from_millis(2500),
    )
    .await;
    sleep_ms(6000).await;
    assert_eq!(
        record.invocations(),
        ["2024-05-01T12:00:01Z", "2024-05-01T12:00:04Z"]
    );
    assert_eq!(record.max_running(), 1);
    let skipped = logs.lines_with("skipped scheduled run");
    assert_eq!(skipped.len(), 4, "{}", logs.text());
    assert!(skipped[0].contains("tomodachi.scheduler"), "{}", skipped[0]);
    assert!(
        skipped[0].contains("2024-05-01T12:00:02Z"),
        "{}",
        skipped[0]
    );
    stop(shutdown, running).await;
}

#[tokio::test(start_paused = true)]
async fn allow_policy_overlaps_up_to_its_bound() {
    let (logs, _guard) = Logs::capture();
    let (record, shutdown, running) = start(
        Schedule::heartbeat().overlap(Overlap::Allow(2)),
        Duration::from_millis(3500),
    )
    .await;
    sleep_ms(6000).await;
    assert_eq!(
        record.invocations(),
        [
            "2024-05-01T12:00:01Z",
            "2024-05-01T12:00:02Z",
            "2024-05-01T12:00:05Z",
            "2024-05-01T12:00:06Z"
        ]
    );
    assert_eq!(record.max_running(), 2);
    let too_many =
        logs.lines_with("too many scheduled tasks for function in scheduled function loop");
    assert_eq!(too_many.len(), 2, "{}", logs.text());
    assert!(too_many[0].contains("task_limit=2"), "{}", too_many[0]);
    stop(shutdown, running).await;
}

#[tokio::test(start_paused = true)]
async fn queue_policy_runs_a_due_tick_after_the_previous_run() {
    let (record, shutdown, running) = start(
        Schedule::heartbeat().overlap(Overlap::Queue),
        Duration::from_millis(2500),
    )
    .await;
    sleep_ms(6000).await;
    assert_eq!(
        record.invocations(),
        [
            "2024-05-01T12:00:01Z",
            "2024-05-01T12:00:02Z",
            "2024-05-01T12:00:04Z"
        ]
    );
    // Each queued tick starts the moment the previous run ends; runs never overlap.
    assert_eq!(record.started_ms(), [600, 3100, 5600]);
    assert_eq!(record.max_running(), 1);
    stop(shutdown, running).await;
}

#[tokio::test(start_paused = true)]
async fn readiness_is_awaited_before_each_run() {
    let record_state = Record::new(Duration::from_millis(2500));
    let shutdown = Shutdown::new();
    let service = ConcurrencyLimitLayer::new(1).layer(record.with_state(record_state.clone()));
    let running = ScheduleSource::new(Schedule::heartbeat().overlap(Overlap::Allow(5)))
        .with_start_time(start_wall())
        .start(service, shutdown.clone())
        .await
        .expect("valid");
    let running = tokio::spawn(running);
    sleep_ms(6000).await;
    // Allow(5) would overlap, but the service admits one call at a time.
    assert_eq!(record_state.max_running(), 1);
    assert_eq!(record_state.started_ms(), [600, 3100, 5600]);
    assert_eq!(
        record_state.invocations(),
        [
            "2024-05-01T12:00:01Z",
            "2024-05-01T12:00:02Z",
            "2024-05-01T12:00:04Z"
        ]
    );
    stop(shutdown, running).await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_new_runs_and_awaits_running_ones_with_warnings() {
    let (logs, _guard) = Logs::capture();
    let (record, shutdown, running) = start(Schedule::heartbeat(), Duration::from_secs(25)).await;
    sleep_ms(1000).await;
    shutdown.trigger();
    sleep_ms(24_000).await; // t = 25.0 s; the run ends at 25.6 s
    assert!(!running.is_finished(), "the running run must be awaited");
    let awaiting = logs.lines_with("awaiting task to complete");
    assert_eq!(awaiting.len(), 1, "{}", logs.text());
    assert!(
        awaiting[0].contains("sweep/2024-05-01T12:00:01.000000Z"),
        "{}",
        awaiting[0]
    );
    assert_eq!(logs.lines_with("still awaiting task to finish").len(), 2);
    sleep_ms(1000).await;
    assert!(running.is_finished());
    running.await.expect("no panic").expect("drained");
    assert_eq!(record.invocations(), ["2024-05-01T12:00:01Z"]);
}

#[tokio::test(start_paused = true)]
async fn shutdown_without_running_tasks_returns_at_once() {
    let (logs, _guard) = Logs::capture();
    let (record, shutdown, running) = start(Schedule::heartbeat(), Duration::ZERO).await;
    sleep_ms(1000).await;
    shutdown.trigger();
    running.await.expect("no panic").expect("drained");
    assert_eq!(record.invocations(), ["2024-05-01T12:00:01Z"]);
    assert!(logs.lines_with("awaiting task").is_empty());
}

#[tokio::test(start_paused = true)]
async fn cron_in_a_zone_runs_through_spring_forward() {
    let record_state = Record::new(Duration::ZERO);
    let shutdown = Shutdown::new();
    // Stockholm moves from 02:00 CET to 03:00 CEST at 01:00 UTC on 2024-03-31.
    let wall = Utc
        .with_ymd_and_hms(2024, 3, 31, 0, 30, 0)
        .single()
        .expect("valid");
    let running = ScheduleSource::new(Schedule::hourly().timezone("Europe/Stockholm"))
        .with_start_time(wall)
        .start(record.with_state(record_state.clone()), shutdown.clone())
        .await
        .expect("valid");
    let running = tokio::spawn(running);
    sleep_ms(9_001_000).await; // until 03:00:01 UTC
    assert_eq!(
        record_state.invocations(),
        [
            "2024-03-31T01:00:00Z",
            "2024-03-31T02:00:00Z",
            "2024-03-31T03:00:00Z"
        ]
    );
    assert_eq!(record_state.started_ms(), [1_800_000, 5_400_000, 9_000_000]);
    stop(shutdown, running).await;
}

#[tokio::test(start_paused = true)]
async fn past_timestamp_never_runs_and_waits_for_shutdown() {
    let (record, shutdown, running) =
        start(Schedule::timestamp("2020-01-01 00:00"), Duration::ZERO).await;
    sleep_ms(3600 * 1000).await;
    assert!(!running.is_finished());
    assert!(record.invocations().is_empty());
    stop(shutdown, running).await;
}

#[tokio::test(start_paused = true)]
async fn failures_are_logged_and_the_schedule_goes_on() {
    let (logs, _guard) = Logs::capture();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let service = tower::service_fn(move |message: Message| {
        let call = counter.fetch_add(1, Ordering::SeqCst);
        assert!(message.body().is_empty());
        assert!(message.context::<ScheduleContext>().is_some());
        async move {
            match call {
                0 => Err::<Outcome, std::io::Error>(std::io::Error::other("boom")),
                1 => panic!("handler panicked"),
                _ => Ok(Outcome::Ack),
            }
        }
    });
    let shutdown = Shutdown::new();
    let running = ScheduleSource::new(Schedule::heartbeat())
        .named("flaky")
        .with_start_time(start_wall())
        .start(service, shutdown.clone())
        .await
        .expect("valid");
    let running = tokio::spawn(running);
    sleep_ms(3000).await;
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let exceptions = logs.lines_with("uncaught exception");
    assert_eq!(exceptions.len(), 2, "{}", logs.text());
    assert!(exceptions[0].contains("uncaught exception: boom"));
    assert!(exceptions[0].contains("exception"));
    assert!(exceptions[0].contains("flaky"));
    assert!(exceptions[1].contains("panicked"));
    stop(shutdown, running).await;
}

#[tokio::test(start_paused = true)]
async fn handler_records_carry_handler_and_type_fields() {
    async fn chatty(at: InvocationTime) {
        tracing::info!(%at, "sweeping");
    }
    let (logs, _guard) = Logs::capture();
    let shutdown = Shutdown::new();
    let running = ScheduleSource::new(Schedule::heartbeat())
        .named("sweep")
        .with_start_time(start_wall())
        .start(chatty.with_state(()), shutdown.clone())
        .await
        .expect("valid");
    let running = tokio::spawn(running);
    sleep_ms(1000).await;
    let lines = logs.lines_with("sweeping");
    assert_eq!(lines.len(), 1, "{}", logs.text());
    let line = &lines[0];
    assert!(
        line.contains("handler=\"sweep\"") || line.contains("handler=sweep"),
        "{line}"
    );
    assert!(line.contains("tomodachi.schedule"), "{line}");
    assert!(line.contains("2024-05-01T12:00:01Z"), "{line}");
    stop(shutdown, running).await;
}

#[tokio::test(start_paused = true)]
async fn runs_count_in_the_execution_context() {
    let stats = tomodachi_schedule::TRANSPORT.stats();
    let before = stats.total();
    let (_record, shutdown, running) = start(Schedule::heartbeat(), Duration::ZERO).await;
    assert!(stats.enabled());
    sleep_ms(2000).await;
    // Other tests run in parallel and share the process-wide counters.
    assert!(stats.total() >= before + 2);
    stop(shutdown, running).await;
}

#[tokio::test]
async fn invalid_schedules_fail_start() {
    let service =
        tower::service_fn(|_message: Message| async { Ok::<_, Infallible>(Outcome::Ack) });
    for (schedule, expected) in [
        (Schedule::every("every 5 minutes"), "Invalid interval"),
        (Schedule::interval(0), "Invalid interval"),
        (Schedule::cron("61 * * * *"), "Invalid interval"),
        (Schedule::timestamp("24:61"), "Invalid timestamp"),
        (
            Schedule::hourly().timezone("Nowhere/Town"),
            "Unknown timezone: Nowhere/Town",
        ),
    ] {
        let error = ScheduleSource::new(schedule)
            .start(service, Shutdown::new())
            .await
            .expect_err("invalid schedule");
        assert!(error.to_string().starts_with(expected), "{error}");
    }
}

/// A service that can take no more work: its `poll_ready` fails.
#[derive(Clone)]
struct Unready;

impl tower::Service<Message> for Unready {
    type Response = Outcome;
    type Error = std::io::Error;
    type Future = std::future::Ready<Result<Outcome, std::io::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Err(std::io::Error::other("worker gone")))
    }

    fn call(&mut self, _: Message) -> Self::Future {
        std::future::ready(Ok(Outcome::Ack))
    }
}

/// The one `poll_ready` policy of every source (core's driver): the schedule stops at its
/// first tick and fails with the service's error, instead of skipping ticks forever.
#[tokio::test(start_paused = true)]
async fn a_service_that_fails_readiness_stops_the_schedule() {
    let running = ScheduleSource::new(Schedule::heartbeat())
        .named("sweep")
        .with_start_time(start_wall())
        .start(Unready, Shutdown::new())
        .await
        .expect("valid schedule");
    let result = tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("the schedule stopped by itself");
    assert_eq!(result, Err(Error::Service("worker gone".into())));
}
