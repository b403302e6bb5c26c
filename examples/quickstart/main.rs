//! The quickstart: a service with a heartbeat and lifecycle hooks; no broker needed.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! It logs `heartbeat` every second until SIGINT/SIGTERM, then stops gracefully.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tomodachi::{InvocationTime, Schedule, Service, State};

/// Shared between the heartbeat and the hooks.
#[derive(Clone, Default)]
struct Beats(Arc<AtomicU64>);

async fn heartbeat(State(beats): State<Beats>, time: InvocationTime) {
    let count = beats.0.fetch_add(1, Ordering::Relaxed) + 1;
    tracing::info!(count, invocation_time = %time.to_tomodachi_string(), "heartbeat");
}

#[tokio::main]
async fn main() -> tomodachi::Exit {
    Service::new("quickstart")
        .state(Beats::default())
        .schedule(Schedule::heartbeat(), heartbeat)
        .on_start(|_| async { tracing::info!("on_start: nothing to connect to") })
        .on_started(|_| async { tracing::info!("on_started: ready for work") })
        .on_stopping(|beats: Beats| async move {
            tracing::info!(
                beats = beats.0.load(Ordering::Relaxed),
                "on_stopping: finishing up"
            );
        })
        .on_stop(|_| async { tracing::info!("on_stop: bye") })
        .run()
        .await
}
