//! The server an axum user would write instead of tomodachi-http for the same job
//! (`run.sh`'s `axum+trace`): bare axum with the handlers of `tomodachi_service.rs`, an
//! access log of one JSON record per response, and tomodachi's three keep-alive response
//! headers.
//!
//! The access log is tower-http's `TraceLayer` as its documentation and axum's examples set
//! it up: a span per request with the method, URI and version (`DefaultMakeSpan` at info
//! level), and one event per response with the status and latency (`DefaultOnResponse` at
//! info level), formatted by tracing-subscriber's JSON formatter (with the request's span)
//! into tracing-appender's non-blocking writer (a worker thread writes to stderr), at info
//! level. The headers (`Server: tomodachi`, `Connection: keep-alive`,
//! `Keep-Alive: timeout=5`) are set by tower-http's `SetResponseHeaderLayer` as in
//! `bench_http_axum` with `BENCH_TOMODACHI_HEADERS=1`.
//!
//! `bench_http_axum_trace 19802 2>> access.log` serves on 127.0.0.1:19802.

use tomodachi::http::axum::http::HeaderValue;
use tomodachi::http::axum::http::header::{CONNECTION, HeaderName, SERVER};
use tomodachi::http::axum::routing::{get, post};
use tomodachi::http::axum::{self, Router};
use tower::ServiceBuilder;
use tower_http::LatencyUnit;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;
use tracing_subscriber::filter::LevelFilter;

#[path = "handlers.rs"]
mod handlers;

use handlers::{echo, hello};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = handlers::port()?;
    // Killed by a signal as the other servers: records still queued then are lost.
    let (writer, _guard) = tracing_appender::non_blocking(std::io::stderr());
    tracing_subscriber::fmt()
        .json()
        .with_writer(writer)
        .with_max_level(LevelFilter::INFO)
        .init();
    let set = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
    };
    // `Router::layer`, as axum's documentation and examples add middleware (it wraps each
    // route; `axum::serve` takes a service whose response body is axum's `Body`).
    let app = Router::new()
        .route("/hello", get(hello))
        .route("/echo", post(echo))
        .layer(
            ServiceBuilder::new()
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                        .on_response(
                            DefaultOnResponse::new()
                                .level(Level::INFO)
                                .latency_unit(LatencyUnit::Micros),
                        ),
                )
                .layer(set(SERVER, "tomodachi"))
                .layer(set(CONNECTION, "keep-alive"))
                .layer(set(HeaderName::from_static("keep-alive"), "timeout=5")),
        );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tracing::info!(port, "accepting http requests");
    axum::serve(listener, app).await?;
    Ok(())
}
