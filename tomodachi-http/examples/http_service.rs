//! tomodachi's "http-example": a regex route, a health check, JSON 404/405 handlers.
//!
//! `cargo run -p tomodachi-http --example http_service`, then
//! `curl -i localhost:9700/resource/1234`. `TOMODACHI_HTTP_PORT` overrides the port.

use axum::routing::get;
use http::StatusCode;
use tomodachi_core::Shutdown;
use tomodachi_http::{Groups, HttpOptions, HttpRouter, HttpServer};

async fn resource(groups: Groups) -> String {
    format!("id = {}", groups.get("id").unwrap_or_default())
}

async fn health() -> &'static str {
    r#"{"status": "healthy"}"#
}

async fn not_found() -> &'static str {
    r#"{"error": "not-found"}"#
}

async fn method_not_allowed() -> &'static str {
    r#"{"error": "method-not-allowed"}"#
}

fn router() -> HttpRouter {
    HttpRouter::new()
        .regex_route(r"/resource/(?P<id>[^/]+?)/?", get(resource))
        .regex_route("/health", get(health))
        .http_error(StatusCode::NOT_FOUND, not_found)
        .http_error(StatusCode::METHOD_NOT_ALLOWED, method_not_allowed)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_target(true).init();
    let mut options = HttpOptions::default();
    if let Ok(port) = std::env::var("TOMODACHI_HTTP_PORT") {
        options.port = port.parse()?;
    }
    let shutdown = Shutdown::new();
    shutdown.listen_for_signals()?;
    HttpServer::new(options).serve(router(), shutdown).await?;
    Ok(())
}
