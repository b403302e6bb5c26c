//! One shutdown coordinator for the whole process.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::Duration;

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Exit code not set yet.
const UNSET: i32 = i32::MIN;

/// The process's shutdown: a signal every source watches, and the exit code.
///
/// Cloning is cheap; every clone sees the same trigger. The order around it is the
/// facade's: signal or [`Shutdown::exit`] → `on_stopping` → every source drains →
/// `on_stop` → exit code.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use tomodachi_core::Shutdown;
///
/// let shutdown = Shutdown::new();
/// let watcher = shutdown.clone();
/// let task = tokio::spawn(async move { watcher.triggered().await; "stopped" });
/// shutdown.exit(3);
/// assert_eq!(task.await.unwrap(), "stopped");
/// assert_eq!(shutdown.exit_code(), Some(3));
/// # });
/// ```
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    state: Arc<State>,
}

#[derive(Debug)]
struct State {
    exit_code: AtomicI32,
    signals: AtomicU32,
}

impl Default for State {
    fn default() -> Self {
        Self {
            exit_code: AtomicI32::new(UNSET),
            signals: AtomicU32::new(0),
        }
    }
}

impl Shutdown {
    /// A shutdown not triggered yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the shutdown (idempotent).
    pub fn trigger(&self) {
        self.token.cancel();
    }

    /// Starts the shutdown with this exit code (tomodachi's `tomodachi.exit(code)`).
    /// The first code given wins.
    pub fn exit(&self, code: i32) {
        let _ =
            self.state
                .exit_code
                .compare_exchange(UNSET, code, Ordering::SeqCst, Ordering::SeqCst);
        tracing::warn!(target: "tomodachi.lifecycle", exit_code = code, "tomodachi.exit [{code}] was called");
        self.trigger();
    }

    /// Sets the exit code without starting the shutdown (the first code given wins).
    pub fn set_exit_code(&self, code: i32) {
        let _ =
            self.state
                .exit_code
                .compare_exchange(UNSET, code, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// The exit code given to [`Shutdown::exit`], if any.
    pub fn exit_code(&self) -> Option<i32> {
        match self.state.exit_code.load(Ordering::SeqCst) {
            UNSET => None,
            code => Some(code),
        }
    }

    /// Has the shutdown started?
    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once the shutdown has started (cancel-safe; resolves at once if it has).
    pub fn triggered(&self) -> WaitForCancellationFutureOwned {
        self.token.clone().cancelled_owned()
    }

    /// The underlying cancellation token (for `tokio_util` users).
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Listens for SIGINT and SIGTERM for the life of the process: the first one triggers
    /// the shutdown, later ones are only logged (on `tomodachi.signal`, as tomodachi).
    /// Returns an error if the signal handlers cannot be installed.
    pub fn listen_for_signals(&self) -> std::io::Result<tokio::task::JoinHandle<()>> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut interrupt = signal(SignalKind::interrupt())?;
            let mut terminate = signal(SignalKind::terminate())?;
            let shutdown = self.clone();
            Ok(tokio::spawn(async move {
                loop {
                    let name = tokio::select! {
                        Some(()) = interrupt.recv() => "SIGINT",
                        Some(()) = terminate.recv() => "SIGTERM",
                        else => break,
                    };
                    shutdown.on_signal(name);
                }
            }))
        }
        #[cfg(not(unix))]
        {
            let shutdown = self.clone();
            Ok(tokio::spawn(async move {
                while tokio::signal::ctrl_c().await.is_ok() {
                    shutdown.on_signal("SIGINT");
                }
            }))
        }
    }

    fn on_signal(&self, name: &'static str) {
        let process_id = std::process::id();
        let repeat = self.state.signals.fetch_add(1, Ordering::SeqCst) > 0;
        match name {
            "SIGINT" => {
                tracing::warn!(target: "tomodachi.signal", signal = name, process_id, "interrupt signal <ctrl+c>")
            }
            _ => {
                tracing::warn!(target: "tomodachi.signal", signal = name, process_id, "received termination signal")
            }
        }
        if repeat {
            tracing::warn!(target: "tomodachi.signal", signal = name, process_id, "already stopping: waiting for the service to terminate");
        }
        self.trigger();
    }
}

/// Waits for `tracker`'s tasks to finish, logging while it waits; gives up after `grace`
/// (if any). Returns whether every task finished.
///
/// The tracker is closed first: the tasks it tracks are all there will be.
/// Logs (on `tomodachi.shutdown`, with the `transport` and `task_count` fields)
/// "awaiting running tasks" after 2 s and "still awaiting running tasks" every 10 s after
/// that. Message sources drain through their [`Driver`](crate::driver::Driver).
pub async fn drain(
    tracker: &tokio_util::task::TaskTracker,
    transport: &'static str,
    grace: Option<Duration>,
) -> bool {
    drain_with(tracker, grace, |notice| notice.log(transport)).await
}

/// [`drain`] with the notices given to `notice`.
pub(crate) async fn drain_with(
    tracker: &tokio_util::task::TaskTracker,
    grace: Option<Duration>,
    notice: impl Fn(crate::driver::DrainNotice),
) -> bool {
    tracker.close();
    let wait = async {
        let finished = tracker.wait();
        tokio::pin!(finished);
        let mut first = true;
        loop {
            let after = if first {
                Duration::from_secs(2)
            } else {
                Duration::from_secs(10)
            };
            tokio::select! {
                () = &mut finished => return,
                () = tokio::time::sleep(after) => {
                    notice(crate::driver::DrainNotice { first, task_count: tracker.len() });
                    first = false;
                }
            }
        }
    };
    match grace {
        Some(grace) => tokio::time::timeout(grace, wait).await.is_ok(),
        None => {
            wait.await;
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn first_exit_code_wins_and_triggers() {
        let shutdown = Shutdown::new();
        assert!(!shutdown.is_triggered());
        assert_eq!(shutdown.exit_code(), None);
        shutdown.exit(4);
        shutdown.exit(5);
        assert!(shutdown.is_triggered());
        assert_eq!(shutdown.exit_code(), Some(4));
        shutdown.triggered().await;
    }

    #[tokio::test(start_paused = true)]
    async fn drain_waits_for_tasks_and_honours_grace() {
        let tracker = tokio_util::task::TaskTracker::new();
        tracker.spawn(tokio::time::sleep(Duration::from_secs(5)));
        assert!(drain(&tracker, "test", None).await);
        assert!(tracker.is_empty());

        let tracker = tokio_util::task::TaskTracker::new();
        tracker.spawn(tokio::time::sleep(Duration::from_secs(60)));
        assert!(!drain(&tracker, "test", Some(Duration::from_secs(3))).await);
    }
}
