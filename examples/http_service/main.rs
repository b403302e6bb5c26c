//! tomodachi's "http-example": a regex route with a named group, a health check, and JSON
//! answers for 404 and 405.
//!
//! ```text
//! cargo run -p tomodachi-examples --example http_service --features http-regex
//! curl -i localhost:9700/resource/1234     # 200 id = 1234
//! curl -i localhost:9700/resource/1234/    # 200 id = 1234 (the regex allows a slash)
//! curl -i localhost:9700/health            # 200 {"status": "healthy"}
//! curl -i localhost:9700/nothing-here      # 404 {"error": "not-found"}
//! curl -i -X POST localhost:9700/health    # 405 {"error": "method-not-allowed"}
//! ```
//!
//! The port is 9700; `TOMODACHI_HTTP_PORT=9701` (or any `TOMODACHI_HTTP_*` option)
//! changes it. Stop it with Ctrl-C or SIGTERM: requests in flight finish first.

use tomodachi::Service;
use tomodachi::http::axum::http::StatusCode;
use tomodachi::http::axum::http::header::{CONTENT_TYPE, HeaderName};
use tomodachi::http::axum::routing::get;
use tomodachi::http::{Groups, HttpRouter};

/// The `Content-Type` of the JSON answers (the service's default is `text/plain`).
type Json = [(HeaderName, &'static str); 1];
const JSON: Json = [(CONTENT_TYPE, "application/json; charset=utf-8")];

/// `GET /resource/{id}`: the regex route's named group `id`.
async fn resource(groups: Groups) -> String {
    format!("id = {}", groups.get("id").unwrap_or_default())
}

/// `GET /health`.
async fn health() -> (Json, &'static str) {
    (JSON, r#"{"status": "healthy"}"#)
}

/// Any path no route matches (tomodachi's `@http_error(status_code=404)`). An error
/// handler's answer takes the status it handles unless it sets another one.
async fn not_found() -> (Json, &'static str) {
    (JSON, r#"{"error": "not-found"}"#)
}

/// A path that matches with another method (`@http_error(status_code=405)`).
async fn method_not_allowed() -> (Json, &'static str) {
    (JSON, r#"{"error": "method-not-allowed"}"#)
}

#[tokio::main]
async fn main() -> tomodachi::Exit {
    let router = HttpRouter::new()
        .regex_route(r"/resource/(?P<id>[^/]+?)/?", get(resource))
        .regex_route("/health", get(health))
        .http_error(StatusCode::NOT_FOUND, not_found)
        .http_error(StatusCode::METHOD_NOT_ALLOWED, method_not_allowed);
    Service::new("example").http(router).run().await
}
