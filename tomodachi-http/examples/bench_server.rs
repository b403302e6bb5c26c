//! The server of `bench/http.sh`: GET /hello and POST /echo, served by tomodachi-http with
//! production defaults (access log on, JSON log records to a file) or by bare axum.
//!
//! `bench_server tomodachi|tomodachi-keepalive|tomodachi-keepalive-nolog|axum PORT [LOG_FILE]`

use std::sync::Mutex;

use axum::Router;
use axum::routing::{get, post};
use bytes::Bytes;
use tomodachi_core::Shutdown;
use tomodachi_http::{HttpOptions, HttpRouter, HttpServer};

async fn hello() -> &'static str {
    "hello"
}

async fn echo(body: Bytes) -> ([(http::HeaderName, &'static str); 1], Bytes) {
    ([(http::header::CONTENT_TYPE, "application/json")], body)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "tomodachi".to_owned());
    let port: u16 = args.next().unwrap_or_else(|| "9700".to_owned()).parse()?;
    let log_file = args.next().unwrap_or_else(|| "/dev/null".to_owned());

    if mode == "axum" {
        let router = Router::new()
            .route("/hello", get(hello))
            .route("/echo", post(echo));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        axum::serve(listener, router).await?;
        return Ok(());
    }

    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_file)?;
    tracing_subscriber::fmt()
        .json()
        .with_target(true)
        .with_writer(Mutex::new(file))
        .init();
    let options = HttpOptions {
        host: "127.0.0.1".into(),
        port,
        keepalive_timeout: if mode.contains("keepalive") { 5 } else { 0 },
        access_log: tomodachi_http::AccessLog::Enabled(!mode.contains("nolog")),
        ..HttpOptions::default()
    };
    let router = HttpRouter::new()
        .route("/hello", get(hello))
        .route("/echo", post(echo));
    let shutdown = Shutdown::new();
    shutdown.listen_for_signals()?;
    HttpServer::new(options).serve(router, shutdown).await?;
    Ok(())
}
