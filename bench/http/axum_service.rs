//! The baseline server of `bench/http/run.sh`: bare axum with the same handlers as
//! `tomodachi_service.rs` (no access log, no options, hyper's keep-alive on).
//!
//! `bench_http_axum 19802` serves on 127.0.0.1:19802. With `BENCH_TOMODACHI_HEADERS=1`
//! (`run.sh`'s server `axum+headers`) every response also carries the three headers a
//! tomodachi service sends with keep-alive (`Server: tomodachi`, `Connection: keep-alive`,
//! `Keep-Alive: timeout=5`), set by tower-http's `SetResponseHeaderLayer`: what that wire
//! behaviour costs by itself (keep-alive only: a client that asks to close gets them too).

use tomodachi::http::axum::extract::Request;
use tomodachi::http::axum::http::HeaderValue;
use tomodachi::http::axum::http::header::{CONNECTION, HeaderName, SERVER};
use tomodachi::http::axum::routing::{get, post};
use tomodachi::http::axum::{self, Router, ServiceExt};
use tower::ServiceBuilder;
use tower_http::set_header::SetResponseHeaderLayer;

#[path = "handlers.rs"]
mod handlers;

use handlers::{echo, hello};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = handlers::port()?;
    let router = Router::new()
        .route("/hello", get(hello))
        .route("/echo", post(echo));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    if std::env::var_os("BENCH_TOMODACHI_HEADERS").is_none() {
        axum::serve(listener, router).await?;
        return Ok(());
    }
    // Around the router (as tomodachi's layers are), not per route: a route layer boxes.
    let set = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
    };
    let app = ServiceBuilder::new()
        .layer(set(SERVER, "tomodachi"))
        .layer(set(CONNECTION, "keep-alive"))
        .layer(set(HeaderName::from_static("keep-alive"), "timeout=5"))
        .service(router);
    axum::serve(listener, ServiceExt::<Request>::into_make_service(app)).await?;
    Ok(())
}
