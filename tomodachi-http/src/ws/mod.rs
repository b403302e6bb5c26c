//! WebSockets on axum's, tracked for shutdown and logged as tomodachi does.
//!
//! [`WebSocketUpgrade`] is axum's extractor plus what tomodachi adds: an id per socket,
//! `websocket_state` open/closed records, a Close frame (1001 "going away") when the
//! service shuts down, and the server's drain waits for the socket's task. Use
//! [`on_upgrade`](WebSocketUpgrade::on_upgrade) to drive the [`WebSocket`] yourself, or
//! [`on_session`](WebSocketUpgrade::on_session) for tomodachi's contract: a callback per
//! text frame and one on close.
//!
//! A plain `GET` (no upgrade) of a websocket route is refused by axum's extractor (400 or
//! 426), where aiohttp answered 200 with an empty body.
//!
//! ```
//! use axum::response::Response;
//! use tomodachi_http::ws::{WebSocketUpgrade, WsSender};
//!
//! async fn echo(ws: WebSocketUpgrade) -> Response {
//!     ws.on_session(|sender: WsSender| {
//!         move |text: String| {
//!             let sender = sender.clone();
//!             async move {
//!                 let _ = sender.send_text(text);
//!             }
//!         }
//!     })
//! }
//! # let _: axum::routing::MethodRouter = axum::routing::get(echo);
//! ```

//!
//! Needs the `ws` feature; without it this module holds nothing public.

use tomodachi_core::{Shutdown, TaskTracker};

#[cfg(feature = "ws")]
mod socket;
#[cfg(feature = "ws")]
pub use socket::*;

/// What the server gives each request so sockets can be tracked and closed on shutdown.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "ws"), allow(dead_code))]
pub(crate) struct WsRegistry {
    pub(crate) tracker: TaskTracker,
    pub(crate) shutdown: Shutdown,
    pub(crate) log: bool,
}
