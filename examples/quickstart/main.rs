//! The quickstart: tomodachi's "sleepy sheep counter" with a heartbeat and lifecycle
//! hooks. No broker needed.
//!
//! ```text
//! cargo run -p tomodachi-examples --example quickstart
//! curl -X POST localhost:9700/sheep   # waits up to a second, then the new count
//! curl localhost:9700/sheep           # the count
//! ```
//!
//! It logs `heartbeat` every second until SIGINT/SIGTERM, then stops gracefully
//! (in-flight POSTs finish first). `TOMODACHI_HTTP_PORT` changes the port.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tomodachi::prelude::*;

/// The service's state: the sheep counted so far and the heartbeats.
#[derive(Clone, Default)]
struct Counter {
    sheep: Arc<AtomicU64>,
    beats: Arc<AtomicU64>,
}

/// POST /sheep: pretend to wait for a slow sheep database, then count one more.
async fn add_to_sheep_count(State(counter): State<Counter>) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    tokio::time::sleep(Duration::from_nanos(u64::from(nanos % 1_000_000_000))).await;
    (counter.sheep.fetch_add(1, Ordering::SeqCst) + 1).to_string()
}

/// GET /sheep: the count.
async fn return_sheep_count(State(counter): State<Counter>) -> String {
    counter.sheep.load(Ordering::SeqCst).to_string()
}

async fn heartbeat(State(counter): State<Counter>, time: InvocationTime) {
    let beats = counter.beats.fetch_add(1, Ordering::Relaxed) + 1;
    tracing::info!(beats, invocation_time = %time.to_tomodachi_string(), "heartbeat");
}

#[tokio::main]
async fn main() -> Exit {
    let routes =
        HttpRouter::new().route("/sheep", get(return_sheep_count).post(add_to_sheep_count));
    tomodachi::Service::new("sleepy-sheep-counter")
        .state(Counter::default())
        .http(routes)
        .schedule(Schedule::heartbeat(), heartbeat)
        .on_start(|_| async { tracing::info!("on_start: nothing to connect to") })
        .on_started(|_| async { tracing::info!("on_started: counting sheep") })
        .on_stopping(|counter: Counter| async move {
            tracing::info!(
                sheep = counter.sheep.load(Ordering::SeqCst),
                "on_stopping: finishing up"
            );
        })
        .on_stop(|_| async { tracing::info!("on_stop: bye") })
        .run()
        .await
}
