//! The tomodachi-rs server of `bench/http/run.sh`: GET /hello and POST /echo through the
//! facade, as a user would write it. Run it with production defaults:
//!
//! ```text
//! TOMODACHI_HTTP_HOST=127.0.0.1 TOMODACHI_HTTP_PORT=19801 \
//!     bench_http_tomodachi --production --logger json 2>> access.log
//! ```
//!
//! `TOMODACHI_HTTP_KEEPALIVE_TIMEOUT=5` turns keep-alive on.

use tomodachi::Service;
use tomodachi::http::HttpRouter;
use tomodachi::http::axum::body::Bytes;
use tomodachi::http::axum::http::header::{CONTENT_TYPE, HeaderName};
use tomodachi::http::axum::routing::{get, post};

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
    Service::new("http-bench").http(router).run().await
}
