//! The WebSocket extractor, socket and session (feature `ws`).

use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{self as axum_ws, rejection::WebSocketUpgradeRejection};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::response::Response;
use bytes::Bytes;
use futures_util::SinkExt;
use http::header::{AUTHORIZATION, USER_AGENT};
use http::request::Parts;
use tokio::sync::mpsc;
use tomodachi_core::Shutdown;
use tomodachi_core::panic::CatchUnwind;

pub use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, close_code};

use super::WsRegistry;
use crate::RealIp;
use crate::access_log::{Seconds, basic_auth_user};
use crate::regex_route::decode_path;

#[derive(Debug)]
struct WsInfo {
    id: String,
    remote_ip: String,
    auth_user: Option<String>,
    path: String,
    query: Option<String>,
    user_agent: String,
    log: bool,
}

impl WsInfo {
    fn log_state(&self, target_open: bool, state: &str, total: Option<Duration>) {
        if !self.log {
            return;
        }
        let total_request_time = total.map(|t| Seconds(t).to_string());
        if target_open {
            tracing::info!(
                target: "tomodachi.http.websocket",
                websocket_state = state,
                remote_ip = self.remote_ip.as_str(),
                auth_user = self.auth_user.as_deref(),
                request_path = self.path.as_str(),
                request_query_string = self.query.as_deref(),
                websocket_id = self.id.as_str(),
                user_agent = self.user_agent.as_str(),
                ""
            );
        } else {
            tracing::info!(
                target: "tomodachi.http.response",
                websocket_state = state,
                remote_ip = self.remote_ip.as_str(),
                auth_user = self.auth_user.as_deref(),
                request_path = self.path.as_str(),
                request_query_string = self.query.as_deref(),
                websocket_id = self.id.as_str(),
                user_agent = self.user_agent.as_str(),
                total_request_time = total_request_time.as_deref(),
                ""
            );
        }
    }
}

/// The read buffer of a socket, allocated (and zeroed) when it opens: tungstenite's default
/// is 128 KiB, which made an idle socket cost about 135 KB of RSS (bench/curves); the buffer
/// grows for larger frames. Raise it with [`WebSocketUpgrade::map`] for sockets that read a
/// lot (`.map(|upgrade| upgrade.read_buffer_size(128 * 1024))`).
const READ_BUFFER_SIZE: usize = 4 * 1024;

/// Extracts a WebSocket upgrade (axum's, see [`axum::extract::ws::WebSocketUpgrade`]),
/// with tomodachi's tracking and logging; see the [module docs](crate::ws). Its read buffer
/// starts at 4 KiB (axum's: 128 KiB), so that idle sockets stay cheap.
#[derive(Debug)]
pub struct WebSocketUpgrade {
    inner: axum_ws::WebSocketUpgrade,
    info: Arc<WsInfo>,
    registry: Option<Arc<WsRegistry>>,
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = WebSocketUpgradeRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let inner = axum_ws::WebSocketUpgrade::from_request_parts(parts, state)
            .await?
            .read_buffer_size(READ_BUFFER_SIZE);
        let registry = parts.extensions.get::<Arc<WsRegistry>>().cloned();
        let remote_ip = parts
            .extensions
            .get::<RealIp>()
            .map(|ip| ip.0)
            .or_else(|| {
                parts
                    .extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|info| info.0.ip())
            })
            .map(|ip| ip.to_string())
            .unwrap_or_default();
        let info = WsInfo {
            id: uuid::Uuid::new_v4().to_string(),
            remote_ip,
            auth_user: parts.headers.get(AUTHORIZATION).and_then(basic_auth_user),
            path: decode_path(parts.uri.path()).into_owned(),
            query: parts
                .uri
                .query()
                .filter(|q| !q.is_empty())
                .map(str::to_owned),
            user_agent: parts
                .headers
                .get(USER_AGENT)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            log: registry.as_ref().is_none_or(|registry| registry.log),
        };
        Ok(Self {
            inner,
            info: Arc::new(info),
            registry,
        })
    }
}

impl WebSocketUpgrade {
    /// This socket's id (`websocket_id` in the log records).
    pub fn id(&self) -> &str {
        &self.info.id
    }

    /// Configures axum's upgrade (protocols, message sizes...).
    pub fn map(
        mut self,
        configure: impl FnOnce(axum_ws::WebSocketUpgrade) -> axum_ws::WebSocketUpgrade,
    ) -> Self {
        self.inner = configure(self.inner);
        self
    }

    /// Answers the upgrade and runs `callback` with the socket once it is open. The
    /// server's drain waits for it; a panic in it is logged (`websocket_state` "error").
    pub fn on_upgrade<F, Fut>(self, callback: F) -> Response
    where
        F: FnOnce(WebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let token = self
            .registry
            .as_ref()
            .map(|registry| registry.tracker.token());
        let shutdown = self.registry.map(|registry| registry.shutdown.clone());
        let info = self.info;
        self.inner.on_upgrade(move |socket| async move {
            let _token = token;
            let _task = crate::TRANSPORT.stats().task();
            let start = Instant::now();
            info.log_state(true, "open", None);
            let socket = WebSocket {
                inner: socket,
                shutdown,
                id: Arc::from(info.id.as_str()),
                done: false,
            };
            match CatchUnwind::new(AssertUnwindSafe(callback(socket))).await {
                Ok(()) => info.log_state(false, "closed", Some(start.elapsed())),
                Err(panic) => {
                    log_panic(Err(panic));
                    info.log_state(true, "error", None);
                }
            }
        })
    }

    /// tomodachi's websocket contract: `make` gets a [`WsSender`] for the socket and
    /// returns the session; its [`on_receive`](WebSocketSession::on_receive) runs for each
    /// text frame, [`on_binary`](WebSocketSession::on_binary) for each binary frame, and
    /// [`on_close`](WebSocketSession::on_close) once the socket is closed (by the client,
    /// by [`WsSender::close`], or by shutdown). Pings are answered; a panic in a callback
    /// is logged and the socket goes on.
    pub fn on_session<F, H>(self, make: F) -> Response
    where
        F: FnOnce(WsSender) -> H + Send + 'static,
        H: WebSocketSession,
    {
        self.on_upgrade(move |mut socket| async move {
            let (tx, mut rx) = mpsc::unbounded_channel();
            let sender = WsSender {
                tx,
                id: socket.id.clone(),
            };
            let mut session = make(sender);
            loop {
                tokio::select! {
                    incoming = socket.recv() => match incoming {
                        Some(Ok(Message::Text(text))) => {
                            let call = AssertUnwindSafe(session.on_receive(text.to_string()));
                            log_panic(CatchUnwind::new(call).await);
                        }
                        Some(Ok(Message::Binary(data))) => {
                            log_panic(CatchUnwind::new(AssertUnwindSafe(session.on_binary(data))).await);
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                        Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                    },
                    Some(outgoing) = rx.recv() => {
                        let closing = matches!(outgoing, Message::Close(_));
                        if socket.send(outgoing).await.is_err() || closing {
                            break;
                        }
                    }
                }
            }
            log_panic(CatchUnwind::new(AssertUnwindSafe(session.on_close())).await);
        })
    }
}

fn log_panic(outcome: Result<(), Box<dyn std::any::Any + Send>>) {
    if let Err(panic) = outcome {
        let message = tomodachi_core::panic::message(&*panic);
        tracing::error!(
            target: "exception",
            location = tomodachi_core::panic::location(),
            "uncaught exception: {message}"
        );
    }
}

/// An open WebSocket (axum's), closed with 1001 "going away" when the service shuts down.
#[derive(Debug)]
pub struct WebSocket {
    inner: axum_ws::WebSocket,
    shutdown: Option<Shutdown>,
    id: Arc<str>,
    done: bool,
}

impl WebSocket {
    /// This socket's id (`websocket_id` in the log records).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The next message; `None` once the socket is closed. When the service shuts down
    /// it sends a Close frame (1001), waits up to a second for the client's, and returns
    /// `None`.
    pub async fn recv(&mut self) -> Option<Result<Message, axum::Error>> {
        if self.done {
            return None;
        }
        let message = match self.shutdown.clone() {
            None => self.inner.recv().await,
            Some(shutdown) => tokio::select! {
                message = self.inner.recv() => message,
                () = shutdown.triggered() => {
                    self.close_with(close_code::AWAY, "server shutting down").await;
                    return None;
                }
            },
        };
        if let Some(Ok(Message::Close(_))) = &message {
            // Send the reply tungstenite queued now: callers stop reading after a Close.
            self.done = true;
            let _ = self.inner.flush().await;
        }
        message
    }

    /// Sends a message.
    pub async fn send(&mut self, message: Message) -> Result<(), axum::Error> {
        self.inner.send(message).await
    }

    /// Sends a Close frame with `code` and `reason`, then waits up to a second for the
    /// client's Close.
    pub async fn close(mut self, code: u16, reason: &str) {
        self.close_with(code, reason).await;
    }

    async fn close_with(&mut self, code: u16, reason: &str) {
        self.done = true;
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from(reason),
        };
        if self.inner.send(Message::Close(Some(frame))).await.is_err() {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Some(Ok(message)) = self.inner.recv().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }

    /// axum's socket (no shutdown handling from here on).
    pub fn into_inner(self) -> axum_ws::WebSocket {
        self.inner
    }
}

/// Sends to a socket driven by [`WebSocketUpgrade::on_session`]; clone it freely (for
/// broadcasting from other tasks).
#[derive(Debug, Clone)]
pub struct WsSender {
    tx: mpsc::UnboundedSender<Message>,
    id: Arc<str>,
}

/// The socket is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("websocket is closed")]
pub struct SocketClosed;

impl WsSender {
    /// The socket's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Queues a text frame.
    pub fn send_text(&self, text: impl Into<String>) -> Result<(), SocketClosed> {
        self.send(Message::Text(text.into().into()))
    }

    /// Queues a binary frame.
    pub fn send_binary(&self, data: impl Into<Bytes>) -> Result<(), SocketClosed> {
        self.send(Message::Binary(data.into()))
    }

    /// Queues any message.
    pub fn send(&self, message: Message) -> Result<(), SocketClosed> {
        self.tx.send(message).map_err(|_| SocketClosed)
    }

    /// Closes the socket with `code` and `reason` (after what is queued).
    pub fn close(&self, code: u16, reason: &str) -> Result<(), SocketClosed> {
        self.send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from(reason),
        })))
    }
}

/// tomodachi's websocket callbacks (the `(receive, close)` a tomodachi handler returns).
///
/// Any `FnMut(String) -> impl Future<Output = ()>` is a session that only receives.
pub trait WebSocketSession: Send + 'static {
    /// A text frame arrived.
    fn on_receive(&mut self, text: String) -> impl Future<Output = ()> + Send;

    /// A binary frame arrived (tomodachi ignores them: so does the default).
    fn on_binary(&mut self, data: Bytes) -> impl Future<Output = ()> + Send {
        let _ = data;
        async {}
    }

    /// The socket is closed.
    fn on_close(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

impl<F, Fut> WebSocketSession for F
where
    F: FnMut(String) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    fn on_receive(&mut self, text: String) -> impl Future<Output = ()> + Send {
        self(text)
    }
}
