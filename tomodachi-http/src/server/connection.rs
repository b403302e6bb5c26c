//! One HTTP/1 connection: tomodachi's response headers, keep-alive rotation, drain.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker, ready};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::Response;
use futures_util::future::Either;
use http::header::{CONNECTION, CONTENT_TYPE, HeaderName, HeaderValue, SERVER, UPGRADE};
use http::{Request, StatusCode, Version};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use pin_project_lite::pin_project;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tower::util::Oneshot;
use tower_service::Service;

use super::Config;
use crate::response::{DefaultCharset, ExplicitContentType, OCTET_STREAM};
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
    /// The server's requests in flight (for the shutdown's `request_count`).
    pub(crate) requests: Arc<AtomicU64>,
}

#[derive(Debug)]
struct ConnState {
    peer: SocketAddr,
    /// The server's requests in flight.
    requests: Arc<AtomicU64>,
    started: Instant,
    responses: AtomicU64,
    /// Requests whose response future is alive (0 or 1: HTTP/1 serves one at a time).
    in_flight: AtomicU64,
    /// When the last response ended or the last write went out, in nanoseconds since
    /// `started`.
    idle_since: AtomicU64,
    /// Whether the last write waited for the socket (the client is reading slowly).
    writing: AtomicBool,
}

impl ConnState {
    fn new(peer: SocketAddr, requests: Arc<AtomicU64>) -> Self {
        Self {
            peer,
            requests,
            started: Instant::now(),
            responses: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            writing: AtomicBool::new(false),
        }
    }

    /// Counts from now: a response ended, or bytes of one went out.
    fn touch(&self) {
        let since = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.idle_since.store(since, Ordering::Release);
    }

    /// When the connection times out if no request head arrives first: `timeout` after
    /// the last response or write (or the connection's start); `None` while a request is
    /// served or a response is still being written.
    fn idle_deadline(&self, timeout: Duration) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 || self.writing.load(Ordering::Acquire) {
            return None;
        }
        let idle_since = Duration::from_nanos(self.idle_since.load(Ordering::Acquire));
        Some(self.started + idle_since + timeout)
    }
}

/// Marks a request in flight on its connection until its response has been sent (or
/// dropped).
#[derive(Debug)]
struct InFlight(Arc<ConnState>);

impl InFlight {
    fn start(conn: &Arc<ConnState>) -> Self {
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        conn.requests.fetch_add(1, Ordering::AcqRel);
        Self(conn.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.requests.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The connection's socket. hyper lets go of a response body once its last chunk is
/// queued, before the bytes are written: while a write waits for the socket the
/// connection is busy, not idle, so a response still going out to a slow reader is not
/// cut off by the idle timer (as with hyper's own header read timer, which starts only
/// when the next request head is read).
#[derive(Debug)]
struct ConnIo {
    inner: TokioIo<TcpStream>,
    conn: Arc<ConnState>,
}

impl ConnIo {
    fn wrote<T>(&self, written: &Poll<T>) {
        match written {
            Poll::Pending => self.conn.writing.store(true, Ordering::Release),
            Poll::Ready(_) => {
                if self.conn.writing.swap(false, Ordering::AcqRel) {
                    self.conn.touch();
                }
            }
        }
    }
}

impl hyper::rt::Read for ConnIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for ConnIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.wrote(&written);
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(&written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let flushed = Pin::new(&mut self.inner).poll_flush(cx);
        self.wrote(&flushed);
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
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
    type Response = Response<SendingBody>;
    type Error = Infallible;
    type Future = ConnFuture<Either<A::Future, Pin<Box<Oneshot<A, Request<Body>>>>>, A>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let mut req = req.map(Body::new);
        let version = req.version();
        // One pass over the headers (a request has few) instead of a hashed lookup each.
        let (mut connection, mut upgrade) = (None, false);
        for (name, value) in req.headers() {
            if *name == CONNECTION {
                connection = connection.or(Some(value));
            } else if *name == UPGRADE {
                upgrade = true;
            }
        }
        let wants_keep_alive = wants_keep_alive(version, connection);
        // Into a request without extensions (hyper's HTTP/1 adds none here): the clone's
        // map, sized for what the layers and the router add, is moved in.
        req.extensions_mut()
            .extend(self.shared.config.extensions.clone());
        req.extensions_mut().insert(ConnectInfo(self.conn.peer));
        // Only a WebSocket upgrade needs the registry (an extension costs an allocation).
        if upgrade {
            req.extensions_mut().insert(self.shared.ws.clone());
        }
        // tomodachi's layers and axum's router are always ready: call at once, without
        // `Oneshot` moving the service and request through its states; a stack that is
        // not ready is waited for as tower asks.
        let mut app = self.shared.app.clone();
        let inner = match app.poll_ready(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(())) => Either::Left(app.call(req)),
            // Boxed: the response future stays small for the path always taken.
            Poll::Pending => Either::Right(Box::pin(app.oneshot(req))),
        };
        ConnFuture {
            inner,
            shared: self.shared.clone(),
            conn: Some(InFlight::start(&self.conn)),
            version,
            wants_keep_alive,
            _task: crate::TRANSPORT.stats().task(),
        }
    }
}

/// Whether the client asks to keep the connection open (`Connection` holds its tokens).
fn wants_keep_alive(version: Version, connection: Option<&HeaderValue>) -> bool {
    let connection = connection.and_then(|v| v.to_str().ok());
    let has = |token: &str| {
        connection.is_some_and(|value| {
            value
                .split(',')
                .any(|item| item.trim().eq_ignore_ascii_case(token))
        })
    };
    match version {
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
        conn: Option<InFlight>,
        version: Version,
        wants_keep_alive: bool,
        _task: tomodachi_core::stats::TaskGuard,
    }
}

impl<F, A> Future for ConnFuture<F, A>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response<SendingBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(mut response) = ready!(this.inner.poll(cx));
        let Some(in_flight) = this.conn.take() else {
            return Poll::Pending;
        };
        let config = &this.shared.config;
        let status = response.status();
        if let Some(server) = &config.server_header {
            response.headers_mut().insert(SERVER, server.clone());
        }
        let bodiless = status == StatusCode::SWITCHING_PROTOCOLS
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        // No content type, or axum's for a bytes body: the `content_type` option's.
        let default_type = match response.headers().get(CONTENT_TYPE) {
            None => true,
            Some(value) => {
                *value == OCTET_STREAM
                    && response.extensions().get::<ExplicitContentType>().is_none()
            }
        };
        if !bodiless && default_type {
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
            let served = in_flight.0.responses.fetch_add(1, Ordering::Relaxed) + 1;
            let keep = config.keep_alive.is_some()
                && *this.wants_keep_alive
                && !this.shared.ws.shutdown.is_triggered()
                && config.max_keepalive_requests.is_none_or(|max| served < max)
                && config
                    .max_keepalive_time
                    .is_none_or(|max| in_flight.0.started.elapsed() <= max);
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
        Poll::Ready(Ok(response.map(|inner| SendingBody {
            inner,
            _in_flight: in_flight,
        })))
    }
}

pin_project! {
    /// A response body that keeps its request in flight until it has been sent.
    pub(crate) struct SendingBody {
        #[pin]
        inner: Body,
        _in_flight: InFlight,
    }
}

impl http_body::Body for SendingBody {
    type Data = <Body as http_body::Body>::Data;
    type Error = <Body as http_body::Body>::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
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
    // The connection's own token: its future is polled on every wake of the connection,
    // and a token's wait locks that token's waiter list each time (tokio's `Notified`).
    // The shared token would be one lock (and cache line) taken by every connection on
    // every worker; a child token is cancelled with the shutdown and locked by this task
    // alone.
    let stop = shared.ws.shutdown.token().child_token();
    let timeout = shared.config.header_read_timeout;
    // No hyper timer: its header read timeout arms a timer for every request. The
    // connection's own timer below fires at most once per `timeout`.
    let builder = http1::Builder::new();
    // Keep-alive stays on in hyper (it would append `close` to an upgrade's `Connection`):
    // each response's own `Connection: close` ends the connection instead.
    let conn = Arc::new(ConnState::new(peer, shared.requests.clone()));
    let service = ConnService {
        shared,
        conn: conn.clone(),
    };
    let io = ConnIo {
        inner: TokioIo::new(stream),
        conn: conn.clone(),
    };
    let connection = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(connection);
    let sleep = tokio::time::sleep(timeout);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            _ = connection.as_mut() => return,
            () = stop.cancelled() => break,
            () = sleep.as_mut() => {
                // A client that sends no complete request head within `timeout` of the
                // last response or write (or of connecting) is cut off: slow headers and
                // idle keep-alive connections alike (a response is in flight until its
                // body has been handed over, and busy while hyper still waits to write
                // it).
                let now = Instant::now();
                match conn.idle_deadline(timeout) {
                    Some(deadline) if deadline <= now => return,
                    Some(deadline) => sleep.as_mut().reset(deadline.into()),
                    None => sleep.as_mut().reset((now + timeout).into()),
                }
            }
        }
    }
    // Idle connections close now, requests in flight finish first.
    connection.as_mut().graceful_shutdown();
    tokio::select! {
        _ = connection.as_mut() => {}
        () = force.cancelled() => {}
    }
}
