//! The baseline server of `bench/http/run.sh`: bare axum with the same handlers as
//! `tomodachi_service.rs` (no access log, no options, hyper's keep-alive on).
//!
//! `bench_http_axum 19802` serves on 127.0.0.1:19802.

use tomodachi::http::axum::body::Bytes;
use tomodachi::http::axum::http::header::{CONTENT_TYPE, HeaderName};
use tomodachi::http::axum::routing::{get, post};
use tomodachi::http::axum::{self, Router};

/// GET /hello.
async fn hello() -> &'static str {
    "hello"
}

/// POST /echo: the request body back, as JSON.
async fn echo(body: Bytes) -> ([(HeaderName, &'static str); 1], Bytes) {
    ([(CONTENT_TYPE, "application/json")], body)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::args().nth(1) {
        Some(port) => port.parse()?,
        None => 9700,
    };
    let router = Router::new()
        .route("/hello", get(hello))
        .route("/echo", post(echo));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, router).await?;
    Ok(())
}
