//! Per-transport task counters, for the execution context.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The transports tomodachi counts tasks of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// HTTP and WebSockets.
    Http,
    /// AWS SNS+SQS.
    AwsSnsSqs,
    /// AMQP.
    Amqp,
    /// Scheduled functions.
    Schedule,
}

impl Transport {
    /// Every transport.
    pub const ALL: [Transport; 4] = [Self::Http, Self::AwsSnsSqs, Self::Amqp, Self::Schedule];

    /// tomodachi's name in the execution context (`http`, `aws_sns_sqs`, `amqp`,
    /// `scheduled_functions`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::AwsSnsSqs => "aws_sns_sqs",
            Self::Amqp => "amqp",
            Self::Schedule => "scheduled_functions",
        }
    }

    /// The process-wide counters of this transport.
    pub fn stats(self) -> &'static TaskStats {
        static STATS: [TaskStats; 4] = [
            TaskStats::new(),
            TaskStats::new(),
            TaskStats::new(),
            TaskStats::new(),
        ];
        &STATS[self as usize]
    }
}

/// Whether a transport is enabled, and how many tasks it runs and has run.
#[derive(Debug)]
pub struct TaskStats {
    enabled: AtomicBool,
    current: AtomicU64,
    total: AtomicU64,
}

impl TaskStats {
    const fn new() -> Self {
        Self {
            enabled: AtomicBool::new(false),
            current: AtomicU64::new(0),
            total: AtomicU64::new(0),
        }
    }

    /// Marks the transport enabled (a source of it started).
    pub fn enable(&self) {
        self.enabled.store(true, Ordering::Relaxed);
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
