//! Shared helpers for the schedule source tests: a recording handler and a log capture.

#![allow(dead_code, unreachable_pub)]

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use tokio::time::Instant;

/// 2024-05-01T12:00:00.400Z: a wall-clock start between two whole seconds.
pub fn start_wall() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0)
        .single()
        .expect("valid")
        + chrono::Duration::milliseconds(400)
}

/// What the recording handler saw.
#[derive(Debug, Default)]
pub struct Record {
    /// (invocation time in tomodachi format, interval, tokio ms since `origin` when started)
    pub runs: Mutex<Vec<(String, String, u64)>>,
    pub running: AtomicUsize,
    pub max_running: AtomicUsize,
    pub origin: Mutex<Option<Instant>>,
    pub run_for: Mutex<Duration>,
}

impl Record {
    pub fn new(run_for: Duration) -> Arc<Self> {
        let record = Arc::new(Record::default());
        *record.origin.lock().expect("lock") = Some(Instant::now());
        *record.run_for.lock().expect("lock") = run_for;
        record
    }

    pub fn invocations(&self) -> Vec<String> {
        self.runs
            .lock()
            .expect("lock")
            .iter()
            .map(|(at, _, _)| at.clone())
            .collect()
    }

    pub fn started_ms(&self) -> Vec<u64> {
        self.runs
            .lock()
            .expect("lock")
            .iter()
            .map(|(_, _, ms)| *ms)
            .collect()
    }

    pub fn max_running(&self) -> usize {
        self.max_running.load(Ordering::SeqCst)
    }

    /// Called by the handler: records, runs for `run_for` (tokio time).
    pub async fn run(&self, at: String, interval: String) {
        let origin = self
            .origin
            .lock()
            .expect("lock")
            .unwrap_or_else(Instant::now);
        let ms = origin.elapsed().as_millis() as u64;
        self.runs.lock().expect("lock").push((at, interval, ms));
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        let run_for = *self.run_for.lock().expect("lock");
        tokio::time::sleep(run_for).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Collects formatted log lines of the current thread.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Installs a thread-local subscriber writing here; keep the guard alive.
    pub fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .without_time()
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        (logs, guard)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }

    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|line| line.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}

impl io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
