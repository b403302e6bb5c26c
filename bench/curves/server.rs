//! The server of `bench/curves/run.sh`: GET /hello, POST /echo and a WebSocket echo on
//! /ws, either through the tomodachi facade or as bare axum with the same handlers.
//!
//! ```text
//! TOMODACHI_HTTP_HOST=127.0.0.1 TOMODACHI_HTTP_PORT=19811 TOMODACHI_HTTP_KEEPALIVE_TIMEOUT=300 \
//!     bench_curves_server tomodachi --production --logger json 2>> access.log
//! bench_curves_server axum 19812
//! ```
//!
//! `tomodachi` is a facade service with production defaults (access log and WebSocket
//! state records on); `axum` is `axum::serve` with hyper's defaults and no logging. The
//! WebSocket handler of both answers each text frame with the same text.

use tomodachi::http::HttpRouter;
use tomodachi::http::axum::body::Bytes;
use tomodachi::http::axum::extract::ws as axum_ws;
use tomodachi::http::axum::http::header::{CONTENT_TYPE, HeaderName};
use tomodachi::http::axum::response::Response;
use tomodachi::http::axum::routing::{get, post};
use tomodachi::http::axum::{self, Router};
use tomodachi::http::ws::{WebSocketUpgrade, WsSender};
use tomodachi::{Exit, Process, Service};

/// GET /hello.
async fn hello() -> &'static str {
    "hello"
}

/// POST /echo: the request body back, as JSON.
async fn echo(body: Bytes) -> ([(HeaderName, &'static str); 1], Bytes) {
    ([(CONTENT_TYPE, "application/json")], body)
}

/// GET /ws through tomodachi: a session echoing each text frame.
async fn ws_tomodachi(ws: WebSocketUpgrade) -> Response {
    ws.on_session(|sender: WsSender| {
        move |text: String| {
            let sender = sender.clone();
            async move {
                let _ = sender.send_text(text);
            }
        }
    })
}

/// GET /ws on bare axum: the same echo, driving the socket directly.
async fn ws_axum(ws: axum_ws::WebSocketUpgrade) -> Response {
    ws.on_upgrade(|mut socket| async move {
        while let Some(Ok(message)) = socket.recv().await {
            if let axum_ws::Message::Text(text) = message
                && socket.send(axum_ws::Message::Text(text)).await.is_err()
            {
                break;
            }
        }
    })
}

#[tokio::main]
async fn main() -> Result<Exit, Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("tomodachi") => {
            let router = HttpRouter::new()
                .route("/hello", get(hello))
                .route("/echo", post(echo))
                .route("/ws", get(ws_tomodachi));
            let service = Service::new("curves-bench").http(router);
            // The remaining arguments are tomodachi's own flags.
            let args = std::iter::once("bench_curves_server".to_owned()).chain(args);
            Ok(Process::new().args(args).service(service).run().await)
        }
        Some("axum") => {
            let port: u16 = args.next().as_deref().unwrap_or("19812").parse()?;
            let router = Router::new()
                .route("/hello", get(hello))
                .route("/echo", post(echo))
                .route("/ws", get(ws_axum));
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
            axum::serve(listener, router).await?;
            Ok(Exit::from(0))
        }
        _ => Err("usage: bench_curves_server tomodachi [tomodachi flags] | axum [port]".into()),
    }
}
