//! The instrumented tomodachi-rs server of `bench/http/run.sh` (server `tomodachi+otel`):
//! the handlers of `tomodachi_service.rs` in a process instrumented with
//! `Process::opentelemetry`: a SERVER span per request, batch-exported to a sink that drops
//! it, and `http.server.*` metrics aggregated. Same command line and variables as
//! `bench_http_tomodachi`.

#[path = "../otel_sink.rs"]
mod otel_sink;

use tomodachi::http::HttpRouter;
use tomodachi::http::axum::body::Bytes;
use tomodachi::http::axum::http::header::{CONTENT_TYPE, HeaderName};
use tomodachi::http::axum::routing::{get, post};
use tomodachi::{Process, Service};

/// GET /hello.
async fn hello() -> &'static str {
    "hello"
}

/// POST /echo: the request body back, as JSON.
async fn echo(body: Bytes) -> ([(HeaderName, &'static str); 1], Bytes) {
    ([(CONTENT_TYPE, "application/json")], body)
}

#[tokio::main]
async fn main() -> tomodachi::Exit {
    let router = HttpRouter::new()
        .route("/hello", get(hello))
        .route("/echo", post(echo));
    let (tracer_provider, meter_provider, telemetry) = otel_sink::telemetry();
    let exit = Process::new()
        .service(Service::new("http-bench").http(router))
        .opentelemetry(telemetry)
        .run()
        .await;
    let _ = tracer_provider.shutdown();
    let _ = meter_provider.shutdown();
    exit
}
