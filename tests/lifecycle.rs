//! The facade's process lifecycle, end to end: the `fixture` binary (tests/bin/fixture.rs)
//! runs as a real process with `--logger json`, gets real signals, and its records and exit
//! code are checked against Python tomodachi's (behaviour reference §9).

use std::time::{Duration, Instant};

use tokio::process::Command;
use tomodachi_tests::child::{Child, Line, Stream, command, message, record, run_to_end};

/// A generous bound for a graceful stop with nothing in flight.
const STOP_LIMIT: Duration = Duration::from_secs(10);

const LIFECYCLE: &str = "tomodachi.lifecycle";

/// The fixture in `mode`, logging JSON.
fn fixture(mode: &str) -> Command {
    let mut command = command(env!("CARGO_BIN_EXE_fixture"));
    command.env("FIXTURE", mode).args(["--logger", "json"]);
    command
}

/// A record of one of the fixture's hooks or handlers.
fn fixture_record(text: &'static str) -> impl Fn(&Line) -> bool {
    record("fixture", text)
}

/// `(logger, message)` of every record, in order.
fn messages(child: &Child) -> Vec<(String, String)> {
    child
        .records()
        .iter()
        .map(|line| {
            (
                line.logger().unwrap_or_default().to_owned(),
                line.message().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The records among `names` (`"logger: message"`), in the order they were written.
fn steps(child: &Child, names: &[&str]) -> Vec<String> {
    messages(child)
        .into_iter()
        .map(|(logger, message)| format!("{logger}: {message}"))
        .filter(|step| names.contains(&step.as_str()))
        .collect()
}

fn has(child: &Child, logger: &str, text: &str) -> bool {
    child
        .records()
        .iter()
        .any(|l| l.logger() == Some(logger) && l.message() == Some(text))
}

const ORDER: [&str; 10] = [
    "tomodachi.lifecycle: initializing service instance",
    "tomodachi.lifecycle: starting the service",
    "fixture: on_start",
    "tomodachi.lifecycle: enabled handler functions",
    "fixture: on_started",
    "tomodachi.lifecycle: started service successfully",
    "tomodachi.lifecycle: stopping service",
    "fixture: on_stopping",
    "fixture: on_stop",
    "tomodachi.lifecycle: terminated service",
];

#[tokio::test]
async fn lifecycle_records_come_in_tomodachis_order_with_their_states() {
    let mut child = Child::spawn(&mut fixture("lifecycle"));
    child
        .wait_for("started", record(LIFECYCLE, "started service successfully"))
        .await;
    child.signal("TERM");
    let status = child.wait_exit(STOP_LIMIT).await;
    assert_eq!(status.code(), Some(0), "{}", child.output());

    assert_eq!(steps(&child, &ORDER), ORDER, "{}", child.output());
    let states: Vec<_> = child
        .records()
        .iter()
        .filter(|l| l.logger() == Some(LIFECYCLE))
        .filter_map(|l| Some((l.message()?.to_owned(), l.field("state")?.to_owned())))
        .collect();
    let expected = [
        ("starting the service", "starting"),
        ("enabled handler functions", "initialized"),
        ("started service successfully", "ready"),
        ("stopping service", "stopping"),
        ("terminated service", "terminated"),
    ];
    assert_eq!(
        states,
        expected.map(|(m, s)| (m.to_owned(), s.to_owned())),
        "{}",
        child.output()
    );
    for line in child.records() {
        if line.logger() == Some(LIFECYCLE) {
            assert_eq!(line.field("service"), Some("fixture"), "{line}");
        }
    }
    let init = child
        .records()
        .into_iter()
        .find(|l| l.message() == Some("initializing service instance"))
        .cloned();
    let uuid = init.as_ref().and_then(|l| l.field("uuid")).unwrap_or("");
    assert_eq!(uuid.len(), 36, "a random uuid per process: {init:?}");
}

#[tokio::test]
async fn failing_on_start_exits_1_and_still_runs_the_stop_hooks() {
    let (status, child) = run_to_end(&mut fixture("fail_on_start"), STOP_LIMIT).await;
    assert_eq!(status.code(), Some(1), "{}", child.output());
    assert_eq!(
        steps(&child, &ORDER),
        [
            "tomodachi.lifecycle: initializing service instance",
            "tomodachi.lifecycle: starting the service",
            "fixture: on_start",
            "tomodachi.lifecycle: stopping service",
            "fixture: on_stopping",
            "fixture: on_stop",
            "tomodachi.lifecycle: terminated service",
        ],
        "{}",
        child.output()
    );
    let failed = child
        .records()
        .into_iter()
        .find(|l| l.message() == Some("failed to start service"))
        .cloned()
        .unwrap_or_else(|| panic!("no 'failed to start service':\n{}", child.output()));
    assert_eq!(failed.logger(), Some(LIFECYCLE));
    assert_eq!(failed.level(), Some("warning"));
    assert_eq!(failed.field("state"), Some("aborting"));
    assert!(
        has(
            &child,
            "exception",
            "uncaught exception: on_start failed on purpose"
        ),
        "{}",
        child.output()
    );
}

#[tokio::test]
async fn failing_on_started_exits_1_and_still_runs_the_stop_hooks() {
    let (status, child) = run_to_end(&mut fixture("fail_on_started"), STOP_LIMIT).await;
    assert_eq!(status.code(), Some(1), "{}", child.output());
    assert_eq!(
        steps(&child, &ORDER),
        [
            "tomodachi.lifecycle: initializing service instance",
            "tomodachi.lifecycle: starting the service",
            "fixture: on_start",
            "tomodachi.lifecycle: enabled handler functions",
            "fixture: on_started",
            "tomodachi.lifecycle: stopping service",
            "fixture: on_stopping",
            "fixture: on_stop",
            "tomodachi.lifecycle: terminated service",
        ],
        "{}",
        child.output()
    );
    assert!(
        has(&child, LIFECYCLE, "failed to start service"),
        "{}",
        child.output()
    );
    assert!(
        has(
            &child,
            "exception",
            "uncaught exception: on_started failed on purpose"
        ),
        "{}",
        child.output()
    );
}

/// The fixture in `mode` fails at startup with exit code 1, logging an exception whose
/// message contains `reason`; the stop hooks run, no handler is enabled.
async fn startup_fails_with(mode: &str, reason: &str) {
    let (status, child) = run_to_end(&mut fixture(mode), STOP_LIMIT).await;
    assert_eq!(status.code(), Some(1), "{}", child.output());
    let exception = child
        .records()
        .into_iter()
        .find(|l| l.logger() == Some("exception"))
        .cloned()
        .unwrap_or_else(|| panic!("no exception record:\n{}", child.output()));
    let text = exception.message().unwrap_or_default();
    assert!(
        text.starts_with("uncaught exception: ") && text.contains(reason),
        "{text:?} should name {reason:?}"
    );
    assert!(has(&child, LIFECYCLE, "failed to start service"));
    assert!(!has(&child, LIFECYCLE, "enabled handler functions"));
    assert!(!has(&child, "fixture", "on_started"));
    assert!(has(&child, "fixture", "on_stop"));
    assert!(has(&child, LIFECYCLE, "terminated service"));
}

#[tokio::test]
async fn invalid_interval_fails_startup_with_exit_1() {
    startup_fails_with("bad_interval", "Invalid interval: \"every 5 potatoes\"").await;
}

#[tokio::test]
async fn unknown_timezone_fails_startup_with_exit_1() {
    startup_fails_with("bad_timezone", "Unknown timezone: Mars/Olympus_Mons").await;
}

#[tokio::test]
async fn no_handlers_warns_and_exits_1() {
    let (status, child) = run_to_end(&mut fixture("no_handlers"), STOP_LIMIT).await;
    assert_eq!(status.code(), Some(1), "{}", child.output());
    let warning = child
        .records()
        .into_iter()
        .find(|l| l.message() == Some("no transport handlers defined"))
        .cloned()
        .unwrap_or_else(|| panic!("no warning:\n{}", child.output()));
    assert_eq!(warning.logger(), Some("tomodachi.init"));
    assert_eq!(warning.level(), Some("warning"));
}

#[tokio::test]
async fn hooks_without_handlers_keep_the_service_running() {
    // tomodachi runs a service that has lifecycle hooks and no handlers until stopped.
    let mut child = Child::spawn(&mut fixture("hooks_only"));
    child
        .wait_for("started", record(LIFECYCLE, "started service successfully"))
        .await;
    assert!(has(&child, "fixture", "on_start"));
    assert!(!has(
        &child,
        "tomodachi.init",
        "no transport handlers defined"
    ));
    child.signal("TERM");
    let status = child.wait_exit(STOP_LIMIT).await;
    assert_eq!(status.code(), Some(0), "{}", child.output());
    assert!(has(&child, LIFECYCLE, "terminated service"));
}

#[tokio::test]
async fn a_panic_is_one_json_record_with_its_location() {
    let mut child = Child::spawn(&mut fixture("panicking_handler"));
    child
        .wait_for("started", record(LIFECYCLE, "started service successfully"))
        .await;
    let handler = child
        .wait_for("the handler's panic", |line| {
            line.message() == Some("uncaught exception: handler panicked on purpose")
        })
        .await;
    child.signal("TERM");
    let status = child.wait_exit(STOP_LIMIT).await;
    assert_eq!(status.code(), Some(0), "{}", child.output());
    let thread = child
        .records()
        .into_iter()
        .find(|line| line.message() == Some("uncaught exception: uncaught on a thread"))
        .cloned()
        .unwrap_or_else(|| panic!("no record of the thread's panic:\n{}", child.output()));
    for (record, text) in [
        (&handler, "handler panicked"),
        (&thread, "uncaught on a thread"),
    ] {
        assert_eq!(record.logger(), Some("exception"), "{record}");
        assert_eq!(record.level(), Some("error"), "{record}");
        let location = record.field("location").unwrap_or_default();
        assert!(
            location.starts_with("tests/bin/fixture.rs:"),
            "{text}: location {location:?}"
        );
    }
    let panics = child
        .lines()
        .iter()
        .filter(|line| line.text.contains("panicked") || line.text.contains("uncaught on a thread"))
        .count();
    assert_eq!(panics, 2, "one line per panic:\n{}", child.output());
    let not_json: Vec<_> = child
        .lines()
        .iter()
        .filter(|line| line.stream == Stream::Stderr && line.record.is_none())
        .collect();
    assert!(
        not_json.is_empty(),
        "stderr lines that are not JSON: {not_json:?}"
    );
}

/// A handler service that fails its `poll_ready` stops the process with exit code 1 and
/// one `uncaught exception` record naming the failure (the driver and the facade both
/// logged it).
#[tokio::test]
async fn a_failed_service_exits_1_with_one_exception_record() {
    let (status, child) = run_to_end(&mut fixture("failed_service"), STOP_LIMIT).await;
    assert_eq!(status.code(), Some(1), "{}", child.output());
    let exceptions: Vec<_> = messages(&child)
        .into_iter()
        .filter(|(logger, _)| logger == "exception")
        .map(|(_, message)| message)
        .collect();
    assert_eq!(exceptions.len(), 1, "{}", child.output());
    assert!(
        exceptions[0].starts_with("uncaught exception: ") && exceptions[0].contains("worker gone"),
        "{exceptions:?}"
    );
    assert!(has(&child, LIFECYCLE, "terminated service"));
}

/// `signal` stops a started fixture gracefully: the signal is logged on
/// `tomodachi.signal` with `message`, the stop hooks run, exit code 0.
async fn signal_stops_gracefully(signal: &str, name: &str, text: &'static str) {
    let mut child = Child::spawn(&mut fixture("lifecycle"));
    child
        .wait_for("started", record(LIFECYCLE, "started service successfully"))
        .await;
    child.signal(signal);
    let logged = child
        .wait_for("the signal record", record("tomodachi.signal", text))
        .await;
    assert_eq!(logged.level(), Some("warning"));
    assert_eq!(logged.field("signal"), Some(name));
    let pid = logged.record.as_ref().and_then(|r| r.get("process_id"));
    assert_eq!(
        pid.and_then(serde_json::Value::as_u64),
        Some(u64::from(child.pid()))
    );
    child
        .wait_for("stopping", record(LIFECYCLE, "stopping service"))
        .await;
    child
        .wait_for("on_stopping", fixture_record("on_stopping"))
        .await;
    child.wait_for("on_stop", fixture_record("on_stop")).await;
    child
        .wait_for("terminated", record(LIFECYCLE, "terminated service"))
        .await;
    let status = child.wait_exit(STOP_LIMIT).await;
    assert_eq!(status.code(), Some(0), "{}", child.output());
}

#[tokio::test]
async fn sigterm_stops_gracefully_with_exit_0() {
    signal_stops_gracefully("TERM", "SIGTERM", "received termination signal").await;
}

#[tokio::test]
async fn sigint_stops_gracefully_with_exit_0() {
    signal_stops_gracefully("INT", "SIGINT", "interrupt signal <ctrl+c>").await;
}

#[tokio::test]
async fn a_second_signal_while_stopping_is_only_logged() {
    let mut child = Child::spawn(&mut fixture("slow_stopping"));
    child
        .wait_for("started", record(LIFECYCLE, "started service successfully"))
        .await;
    child.signal("TERM");
    child
        .wait_for("on_stopping", fixture_record("slow on_stopping waits"))
        .await;
    child.signal("INT");
    child
        .wait_for(
            "the second signal",
            record("tomodachi.signal", "interrupt signal <ctrl+c>"),
        )
        .await;
    let repeat = child
        .wait_for(
            "the repeat notice",
            message("already stopping: waiting for the service to terminate"),
        )
        .await;
    assert_eq!(repeat.logger(), Some("tomodachi.signal"));
    assert!(
        !has(&child, LIFECYCLE, "terminated service"),
        "the second signal cut the stop short:\n{}",
        child.output()
    );
    // The slow hook goes on to its end; the stop finishes as usual.
    child.send_line("go on").await;
    child
        .wait_for("on_stopping's end", fixture_record("slow on_stopping done"))
        .await;
    child.wait_for("on_stop", fixture_record("on_stop")).await;
    child
        .wait_for("terminated", record(LIFECYCLE, "terminated service"))
        .await;
    let status = child.wait_exit(STOP_LIMIT).await;
    assert_eq!(status.code(), Some(0), "{}", child.output());
}

#[tokio::test]
async fn exit_from_a_handler_stops_with_its_code() {
    let (status, child) = run_to_end(&mut fixture("exit_from_handler"), STOP_LIMIT).await;
    assert_eq!(status.code(), Some(3), "{}", child.output());
    let exit = child
        .records()
        .into_iter()
        .find(|l| l.message() == Some("tomodachi.exit [3] was called"))
        .cloned()
        .unwrap_or_else(|| panic!("no exit record:\n{}", child.output()));
    assert_eq!(exit.level(), Some("warning"));
    assert_eq!(
        steps(
            &child,
            &[
                "fixture: calling tomodachi::exit(3)",
                "tomodachi.lifecycle: stopping service",
                "tomodachi.lifecycle: terminated service",
            ]
        ),
        [
            "fixture: calling tomodachi::exit(3)",
            "tomodachi.lifecycle: stopping service",
            "tomodachi.lifecycle: terminated service",
        ],
        "{}",
        child.output()
    );
}

#[tokio::test]
async fn a_signal_during_startup_stops_within_a_second() {
    let mut child = Child::spawn(&mut fixture("slow_start"));
    child
        .wait_for(
            "the slow on_start",
            fixture_record("slow on_start sleeps 30 s"),
        )
        .await;
    let sent = Instant::now();
    child.signal("TERM");
    let status = child.wait_exit(Duration::from_secs(1)).await;
    let took = sent.elapsed();
    assert_eq!(status.code(), Some(0), "{}", child.output());
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(!has(&child, "fixture", "slow on_start done"));
    assert!(!has(&child, LIFECYCLE, "enabled handler functions"));
    assert!(!has(&child, LIFECYCLE, "started service successfully"));
    assert_eq!(
        steps(&child, &ORDER[6..]),
        ORDER[6..],
        "the stop hooks still run:\n{}",
        child.output()
    );
}

#[tokio::test]
async fn a_running_scheduled_handler_is_awaited_at_sigterm() {
    let mut child = Child::spawn(&mut fixture("running_handler"));
    child
        .wait_for("started", record(LIFECYCLE, "started service successfully"))
        .await;
    let run = child
        .wait_for("the run", fixture_record("scheduled run started"))
        .await;
    assert_eq!(run.field("handler"), Some("long_run"), "{run}");
    child.signal("TERM");
    child
        .wait_for("stopping", record(LIFECYCLE, "stopping service"))
        .await;
    // The run is still waiting for the test: the service must not be gone yet.
    child.send_line("finish").await;
    child
        .wait_for("the run's end", fixture_record("scheduled run finished"))
        .await;
    // `wait_for` looks only after the previous match: termination comes after the run.
    child
        .wait_for("terminated", record(LIFECYCLE, "terminated service"))
        .await;
    let status = child.wait_exit(STOP_LIMIT).await;
    assert_eq!(status.code(), Some(0), "{}", child.output());
}

#[tokio::test]
async fn several_services_in_one_process_start_and_stop() {
    let mut child = Child::spawn(&mut fixture("two_services"));
    let mut started = Vec::new();
    while started.len() < 2 {
        let line = child
            .wait_for("started", record(LIFECYCLE, "started service successfully"))
            .await;
        started.push(line.field("service").unwrap_or_default().to_owned());
    }
    started.sort();
    assert_eq!(started, ["alpha", "beta"]);
    child.signal("TERM");
    let status = child.wait_exit(STOP_LIMIT).await;
    assert_eq!(status.code(), Some(0), "{}", child.output());

    assert!(
        child
            .stdout()
            .contains("services               ⇢ alpha, beta"),
        "{}",
        child.stdout()
    );
    for service in ["alpha", "beta"] {
        let of_service = |logger: &str, text: &str| {
            child
                .records()
                .iter()
                .filter(|l| l.logger() == Some(logger) && l.message() == Some(text))
                .filter(|l| l.field("service") == Some(service))
                .count()
        };
        for hook in ["on_start", "on_started", "on_stopping", "on_stop"] {
            assert_eq!(of_service("fixture", hook), 1, "{service} {hook}");
        }
        for step in [
            "initializing service instance",
            "starting the service",
            "enabled handler functions",
            "started service successfully",
            "stopping service",
            "terminated service",
        ] {
            assert_eq!(of_service(LIFECYCLE, step), 1, "{service} {step}");
        }
    }
    // One process: every service is started before any stops.
    let order = messages(&child);
    let last_started = order
        .iter()
        .rposition(|(_, m)| m == "started service successfully");
    let first_stopping = order.iter().position(|(_, m)| m == "stopping service");
    assert!(last_started < first_stopping, "{}", child.output());
}

#[tokio::test]
async fn run_with_keeps_the_programs_own_command_line() {
    // Arguments tomodachi's command line would refuse (exit 2) are the program's own.
    let mut command = command(env!("CARGO_BIN_EXE_fixture"));
    command
        .env("FIXTURE", "own_command_line")
        .args(["--my-own-flag", "value"]);
    let mut child = Child::spawn(&mut command);
    child
        .wait_for("started", record(LIFECYCLE, "started service successfully"))
        .await;
    child.signal("TERM");
    let status = child.wait_exit(STOP_LIMIT).await;
    assert_eq!(status.code(), Some(0), "{}", child.output());
    assert!(has(&child, "fixture", "on_stop"));
}
