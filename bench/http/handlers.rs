//! The handlers and the port argument of the axum servers of `bench/http`
//! (`tomodachi_service.rs` has the same handlers through the facade).

use tomodachi::http::axum::body::Bytes;
use tomodachi::http::axum::http::header::{CONTENT_TYPE, HeaderName};

/// GET /hello.
pub(crate) async fn hello() -> &'static str {
    "hello"
}

/// POST /echo: the request body back, as JSON.
pub(crate) async fn echo(body: Bytes) -> ([(HeaderName, &'static str); 1], Bytes) {
    ([(CONTENT_TYPE, "application/json")], body)
}

/// The port of the command line's first argument (default 9700).
pub(crate) fn port() -> Result<u16, std::num::ParseIntError> {
    std::env::args()
        .nth(1)
        .map_or(Ok(9700), |port| port.parse())
}
