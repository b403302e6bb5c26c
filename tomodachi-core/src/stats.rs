//! Per-transport task counters, for the execution context.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A transport's name and its task counters: any crate can define one.
///
/// A transport crate owns one `static` of it (tomodachi's four are `http`, `aws_sns_sqs`,
/// `amqp` and `scheduled_functions`, the names of its execution context); its sources
/// [`enable`](Transport::enable) it when they start and count their tasks with its
/// [`stats`](Transport::stats) (the [`Driver`](crate::driver::Driver) does both for
/// message sources). Two transports are equal when their names are.
///
/// ```
/// use tomodachi_core::stats::{TaskStats, Transport};
///
/// static STATS: TaskStats = TaskStats::new();
/// /// The transport of an in-house queue.
/// pub static TRANSPORT: Transport = Transport::new("in_house_queue", &STATS);
///
/// TRANSPORT.enable();
/// let task = TRANSPORT.stats().task();
/// assert_eq!(TRANSPORT.stats().current(), 1);
/// drop(task);
/// assert!(tomodachi_core::stats::transports().contains(&TRANSPORT));
/// ```
#[derive(Clone, Copy)]
pub struct Transport {
    name: &'static str,
    stats: &'static TaskStats,
}

impl Transport {
    /// A transport called `name` (its name in the execution context) counting into `stats`.
    pub const fn new(name: &'static str, stats: &'static TaskStats) -> Self {
        Self { name, stats }
    }

    /// The transport's name in the execution context.
    pub const fn as_str(self) -> &'static str {
        self.name
    }

    /// The process-wide counters of this transport.
    pub const fn stats(self) -> &'static TaskStats {
        self.stats
    }

    /// Marks the transport enabled (a source of it started) and lists it in
    /// [`transports`].
    pub fn enable(self) {
        if !self.stats.enabled.swap(true, Ordering::Relaxed) {
            let mut enabled = ENABLED
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if !enabled.contains(&self) {
                enabled.push(self);
            }
        }
    }
}

impl PartialEq for Transport {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Transport {}

impl std::hash::Hash for Transport {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Transport").field(&self.name).finish()
    }
}

static ENABLED: Mutex<Vec<Transport>> = Mutex::new(Vec::new());

/// The transports enabled in this process so far, in the order they were first enabled.
pub fn transports() -> Vec<Transport> {
    ENABLED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone()
}

/// Whether a transport is enabled, and how many tasks it runs and has run.
#[derive(Debug)]
pub struct TaskStats {
    enabled: AtomicBool,
    current: AtomicU64,
    total: AtomicU64,
}

impl TaskStats {
    /// Counters at zero, for a transport's `static`.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Self {
            enabled: AtomicBool::new(false),
            current: AtomicU64::new(0),
            total: AtomicU64::new(0),
        }
    }

    /// Is the transport enabled?
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Tasks running now.
    pub fn current(&self) -> u64 {
        self.current.load(Ordering::Relaxed)
    }

    /// Tasks started since the process began.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Counts a task as started; it counts as finished when the guard drops.
    pub fn task(&'static self) -> TaskGuard {
        self.current.fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
        TaskGuard { stats: self }
    }
}

/// Counts a running task until dropped; see [`TaskStats::task`].
#[derive(Debug)]
pub struct TaskGuard {
    stats: &'static TaskStats,
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.stats.current.fetch_sub(1, Ordering::Relaxed);
    }
}
