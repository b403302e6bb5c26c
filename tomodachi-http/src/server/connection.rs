//! One HTTP/1 connection: tomodachi's response headers, keep-alive rotation, drain.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::Response;
use http::header::{CONNECTION, CONTENT_TYPE, HeaderName, HeaderValue, SERVER, UPGRADE};
use http::{Request, StatusCode, Version};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use pin_project_lite::pin_project;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tower::util::Oneshot;
use tower_service::Service;

use super::Config;
use crate::response::DefaultCharset;
use crate::ws::WsRegistry;

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const CLOSE: HeaderValue = HeaderValue::from_static("close");
const KEEP_ALIVE_VALUE: HeaderValue = HeaderValue::from_static("keep-alive");

/// What every connection of a server shares.
#[derive(Debug)]
pub(crate) struct Shared<A> {
    pub(crate) app: A,
    pub(crate) config: Config,
    pub(crate) ws: Arc<WsRegistry>,
}

#[derive(Debug)]
struct ConnState {
    peer: SocketAddr,
    started: Instant,
    responses: AtomicU64,
}

#[derive(Debug)]
struct ConnService<A> {
    shared: Arc<Shared<A>>,
    conn: Arc<ConnState>,
}

impl<A> hyper::service::Service<Request<Incoming>> for ConnService<A>
where
    A: Service<Request<Body>, Response = Response, Error = Infallible> + Clone,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ConnFuture<Oneshot<A, Request<Body>>, A>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let mut req = req.map(Body::new);
        let version = req.version();
        let wants_keep_alive = wants_keep_alive(&req);
        req.extensions_mut().insert(ConnectInfo(self.conn.peer));
        // Only a WebSocket upgrade needs the registry (an extension costs an allocation).
        if req.headers().contains_key(UPGRADE) {
            req.extensions_mut().insert(self.shared.ws.clone());
        }
        ConnFuture {
            inner: self.shared.app.clone().oneshot(req),
            shared: self.shared.clone(),
            conn: self.conn.clone(),
            version,
            wants_keep_alive,
            _task: tomodachi_core::Transport::Http.stats().task(),
        }
    }
}

fn wants_keep_alive<B>(req: &Request<B>) -> bool {
    let connection = req.headers().get(CONNECTION).and_then(|v| v.to_str().ok());
    let has = |token: &str| {
        connection.is_some_and(|value| {
            value
                .split(',')
                .any(|item| item.trim().eq_ignore_ascii_case(token))
        })
    };
    match req.version() {
        Version::HTTP_11 => !has("close"),
        Version::HTTP_10 => has("keep-alive"),
        _ => false,
    }
}

pin_project! {
    struct ConnFuture<F, A> {
        #[pin]
        inner: F,
        shared: Arc<Shared<A>>,
        conn: Arc<ConnState>,
        version: Version,
        wants_keep_alive: bool,
        _task: tomodachi_core::stats::TaskGuard,
    }
}

impl<F, A> Future for ConnFuture<F, A>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(mut response) = ready!(this.inner.poll(cx));
        let config = &this.shared.config;
        let status = response.status();
        if let Some(server) = &config.server_header {
            response.headers_mut().insert(SERVER, server.clone());
        }
        let bodiless = status == StatusCode::SWITCHING_PROTOCOLS
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        if !bodiless && !response.headers().contains_key(CONTENT_TYPE) {
            let value = match response.extensions().get::<DefaultCharset>() {
                Some(DefaultCharset(charset)) => HeaderValue::try_from(format!(
                    "{}; charset={}",
                    config.content_type_base,
                    charset.to_str().unwrap_or("utf-8")
                ))
                .ok(),
                None => config.content_type.clone(),
            };
            if let Some(value) = value {
                response.headers_mut().insert(CONTENT_TYPE, value);
            }
        }
        if status != StatusCode::SWITCHING_PROTOCOLS
            && matches!(*this.version, Version::HTTP_10 | Version::HTTP_11)
        {
            let served = this.conn.responses.fetch_add(1, Ordering::Relaxed) + 1;
            let keep = config.keep_alive.is_some()
                && *this.wants_keep_alive
                && !this.shared.ws.shutdown.is_triggered()
                && config.max_keepalive_requests.is_none_or(|max| served < max)
                && config
                    .max_keepalive_time
                    .is_none_or(|max| this.conn.started.elapsed() <= max);
            match (&config.keep_alive, keep) {
                (Some(keep_alive), true) => {
                    response.headers_mut().insert(CONNECTION, KEEP_ALIVE_VALUE);
                    response
                        .headers_mut()
                        .insert(KEEP_ALIVE, keep_alive.clone());
                }
                _ => {
                    response.headers_mut().insert(CONNECTION, CLOSE);
                    response.headers_mut().remove(KEEP_ALIVE);
                }
            }
        }
        Poll::Ready(Ok(response))
    }
}

/// Serves one connection until it closes, the shutdown drains it, or `force` fires.
pub(crate) async fn serve<A>(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared<A>>,
    force: CancellationToken,
) where
    A: Service<Request<Body>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    A::Future: Send + 'static,
{
    let shutdown = shared.ws.shutdown.clone();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(shared.config.header_read_timeout);
    // Keep-alive stays on in hyper (it would append `close` to an upgrade's `Connection`):
    // each response's own `Connection: close` ends the connection instead.
    let service = ConnService {
        shared,
        conn: Arc::new(ConnState {
            peer,
            started: Instant::now(),
            responses: AtomicU64::new(0),
        }),
    };
    let connection = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        () = shutdown.triggered() => {}
    }
    // Idle keep-alive connections close now, in-flight requests finish first.
    connection.as_mut().graceful_shutdown();
    tokio::select! {
        _ = connection.as_mut() => {}
        () = force.cancelled() => {}
    }
}
