//! A service process for the end-to-end tests of the facade (`tests/lifecycle.rs`,
//! `tests/cli_env.rs`): `FIXTURE=<mode>` picks what it does.
//!
//! Every record the fixture writes itself has the logger (target) `fixture`, so the tests
//! can tell the hooks' and handlers' records from the facade's. Modes that "wait for the
//! test" read one line from stdin: the test writes it when it has seen what it waits for,
//! so no step depends on a sleep.
//!
//! | `FIXTURE` | what it does |
//! |---|---|
//! | `lifecycle` (default) | a daily schedule and the four hooks, each logging its name |
//! | `fail_on_start` | as `lifecycle`, `on_start` fails |
//! | `fail_on_started` | as `lifecycle`, `on_started` fails |
//! | `bad_interval` | as `lifecycle`, with `Schedule::every("every 5 potatoes")` |
//! | `bad_timezone` | as `lifecycle`, with a daily schedule in `Mars/Olympus_Mons` |
//! | `no_handlers` | neither handlers nor hooks |
//! | `hooks_only` | an `on_start` hook, no handlers |
//! | `panicking_handler` | a handler run at once panics; a thread panics uncaught |
//! | `slow_stopping` | as `lifecycle`; `on_stopping` waits for the test |
//! | `slow_start` | as `lifecycle`; `on_start` sleeps 30 s |
//! | `exit_from_handler` | a handler run at once calls `tomodachi::exit(3)` |
//! | `exit_after_start` | a handler run at once calls `tomodachi::exit(0)` |
//! | `running_handler` | a handler run at once logs, waits for the test, logs again |
//! | `two_services` | `Process` with services `alpha` and `beta` |
//! | `failed_service` | a schedule whose service fails its `poll_ready` ("worker gone") |
//! | `own_command_line` | as `lifecycle`, run with its own settings (JSON logs), any arguments |

use std::task::{Context, Poll};
use std::time::Duration;

use tomodachi::{BoxError, Exit, Message, Outcome, Process, Schedule, Service};

/// Reads one line from stdin: the test's go-ahead (EOF counts as one too).
///
/// The read runs on a thread of its own: a read blocked in tokio's stdin would keep the
/// runtime from shutting down.
async fn wait_for_test() {
    let (done, read) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        let _ = done.send(());
    });
    let _ = read.await;
}

async fn idle() {
    tracing::info!(target: "fixture", "scheduled run");
}

async fn exit_3() {
    tracing::info!(target: "fixture", "calling tomodachi::exit(3)");
    tomodachi::exit(3);
}

async fn exit_0() {
    tomodachi::exit(0);
}

async fn panicking() {
    panic!("handler panicked on purpose");
}

async fn long_run() {
    tracing::info!(target: "fixture", "scheduled run started");
    wait_for_test().await;
    tracing::info!(target: "fixture", "scheduled run finished");
}

/// A handler service that can take no more work: its `poll_ready` fails.
#[derive(Clone)]
struct WorkerGone;

impl tower_service::Service<Message> for WorkerGone {
    type Response = Outcome;
    type Error = BoxError;
    type Future = std::future::Ready<Result<Outcome, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Err("worker gone".into()))
    }

    fn call(&mut self, _: Message) -> Self::Future {
        std::future::ready(Ok(Outcome::Ack))
    }
}

/// A service `name` with `schedule` running `idle`, and the four hooks, each logging
/// `<hook>` (with a `service` field), the ones named in `failing` returning an error.
fn service(name: &'static str, schedule: Schedule, failing: &'static str) -> Service {
    let hook = move |hook: &'static str| async move {
        tracing::info!(target: "fixture", service = name, "{hook}");
        if hook == failing {
            Err(format!("{hook} failed on purpose"))
        } else {
            Ok(())
        }
    };
    Service::new(name)
        .schedule(schedule, idle)
        .on_start(move |()| hook("on_start"))
        .on_started(move |()| hook("on_started"))
        .on_stopping(move |()| hook("on_stopping"))
        .on_stop(move |()| hook("on_stop"))
}

#[tokio::main]
async fn main() -> Exit {
    let mode = std::env::var("FIXTURE").unwrap_or_else(|_| "lifecycle".to_owned());
    match mode.as_str() {
        "lifecycle" => service("fixture", Schedule::daily(), "").run().await,
        "fail_on_start" => {
            service("fixture", Schedule::daily(), "on_start")
                .run()
                .await
        }
        "fail_on_started" => {
            service("fixture", Schedule::daily(), "on_started")
                .run()
                .await
        }
        "bad_interval" => {
            service("fixture", Schedule::every("every 5 potatoes"), "")
                .run()
                .await
        }
        "bad_timezone" => {
            service(
                "fixture",
                Schedule::daily().timezone("Mars/Olympus_Mons"),
                "",
            )
            .run()
            .await
        }
        "no_handlers" => Service::new("fixture").run().await,
        "hooks_only" => {
            Service::new("fixture")
                .on_start(|()| async { tracing::info!(target: "fixture", "on_start") })
                .run()
                .await
        }
        "panicking_handler" => {
            Service::new("fixture")
                .schedule(Schedule::daily().immediately(), panicking)
                .on_started(|()| async {
                    let thread = std::thread::spawn(|| panic!("uncaught on a thread"));
                    let _ = thread.join();
                })
                .run()
                .await
        }
        "slow_stopping" => {
            service("fixture", Schedule::daily(), "")
                .on_stopping(|()| async {
                    tracing::info!(target: "fixture", "slow on_stopping waits");
                    wait_for_test().await;
                    tracing::info!(target: "fixture", "slow on_stopping done");
                })
                .run()
                .await
        }
        "slow_start" => {
            service("fixture", Schedule::daily(), "")
                .on_start(|()| async {
                    tracing::info!(target: "fixture", "slow on_start sleeps 30 s");
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    tracing::info!(target: "fixture", "slow on_start done");
                })
                .run()
                .await
        }
        "exit_from_handler" => {
            Service::new("fixture")
                .schedule(Schedule::daily().immediately(), exit_3)
                .run()
                .await
        }
        "exit_after_start" => {
            Service::new("fixture")
                .schedule(Schedule::daily().immediately(), exit_0)
                .run()
                .await
        }
        "running_handler" => {
            Service::new("fixture")
                .schedule(Schedule::daily().immediately(), long_run)
                .run()
                .await
        }
        "own_command_line" => {
            let settings = tomodachi::Settings {
                logger: tomodachi::LogFormat::Json,
                ..tomodachi::Settings::default()
            };
            service("fixture", Schedule::daily(), "")
                .run_with(settings)
                .await
        }
        "two_services" => {
            Process::new()
                .service(service("alpha", Schedule::daily(), ""))
                .service(service("beta", Schedule::daily(), ""))
                .run()
                .await
        }
        "failed_service" => {
            Service::new("fixture")
                .schedule_service(Schedule::daily().immediately(), WorkerGone)
                .run()
                .await
        }
        other => {
            eprintln!("fixture: unknown FIXTURE={other:?}");
            Exit::from(101)
        }
    }
}
