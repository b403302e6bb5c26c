//! The execution context: what is running in this process.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tomodachi_core::stats::{self, Transport};

/// The Python tomodachi release whose wire formats and behaviour this crate matches.
pub const TOMODACHI_COMPATIBLE_VERSION: &str = "0.29.0";

/// A snapshot of the process (tomodachi's `get_execution_context()`).
#[derive(Debug, Clone, Serialize)]
pub struct ExecutionContext {
    /// This crate's version.
    pub tomodachi_version: &'static str,
    /// The Python tomodachi version it is compatible with.
    pub tomodachi_compatible_version: &'static str,
    /// `std::env::consts::OS`/`ARCH`.
    pub system_platform: String,
    /// The process id.
    pub process_id: u32,
    /// Seconds since the epoch when the process first asked (about its start).
    pub init_timestamp: f64,
    /// The working directory.
    pub cwd: String,
    /// Per transport (`http`, `aws_sns_sqs`, `amqp`, `scheduled_functions`).
    pub transports: Vec<TransportContext>,
}

/// Task counts of one transport.
#[derive(Debug, Clone, Serialize)]
pub struct TransportContext {
    /// tomodachi's name of the transport.
    pub name: &'static str,
    /// Whether a handler of it is running.
    pub enabled: bool,
    /// Tasks running now.
    pub current_tasks: u64,
    /// Tasks started so far.
    pub total_tasks: u64,
}

static INIT_TIMESTAMP: OnceLock<f64> = OnceLock::new();

pub(crate) fn mark_init() -> f64 {
    *INIT_TIMESTAMP.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs_f64())
            .unwrap_or_default()
    })
}

/// What is running in this process now.
///
/// ```
/// let context = tomodachi::execution_context();
/// assert_eq!(context.process_id, std::process::id());
/// assert_eq!(context.transports.len(), 4);
/// ```
pub fn execution_context() -> ExecutionContext {
    ExecutionContext {
        tomodachi_version: env!("CARGO_PKG_VERSION"),
        tomodachi_compatible_version: TOMODACHI_COMPATIBLE_VERSION,
        system_platform: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
        process_id: std::process::id(),
        init_timestamp: mark_init(),
        cwd: std::env::current_dir()
            .map(|dir| dir.display().to_string())
            .unwrap_or_default(),
        transports: transports(),
    }
}

/// tomodachi's four transports (enabled or not), then any other transport enabled.
fn transports() -> Vec<TransportContext> {
    const TOMODACHI: [&str; 4] = ["http", "aws_sns_sqs", "amqp", "scheduled_functions"];
    let enabled = stats::transports();
    let context = |transport: &Transport| {
        let stats = transport.stats();
        TransportContext {
            name: transport.as_str(),
            enabled: stats.enabled(),
            current_tasks: stats.current(),
            total_tasks: stats.total(),
        }
    };
    let mut transports: Vec<TransportContext> = TOMODACHI
        .iter()
        .map(|name| match enabled.iter().find(|t| t.as_str() == *name) {
            Some(transport) => context(transport),
            None => TransportContext {
                name,
                enabled: false,
                current_tasks: 0,
                total_tasks: 0,
            },
        })
        .collect();
    transports.extend(
        enabled
            .iter()
            .filter(|t| !TOMODACHI.contains(&t.as_str()))
            .map(context),
    );
    transports
}
