//! `HttpServer`: binds, serves connections with the options, drains on shutdown.

mod connection;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use futures_util::future::BoxFuture;
use http::{HeaderValue, Request};
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;
use tomodachi_core::{Shutdown, Source, TaskTracker};
use tower::ServiceBuilder;
use tower_service::Service;

use crate::access_log::{AccessLogFile, AccessLogLayer, AccessLogWriter};
use crate::client_max_size::ClientMaxSizeLayer;
use crate::guard::GuardLayer;
use crate::options::{AccessLog, HttpOptions, OptionError};
use crate::real_ip::RealIpLayer;
use crate::router::HttpRouter;
use crate::ws::WsRegistry;

/// Why the HTTP server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An option has a value the server cannot run with.
    #[error(transparent)]
    Option(#[from] OptionError),
    /// The address could not be bound (in use, not permitted, unknown host).
    #[error("unable to bind service [http] to {url}: {source}")]
    Bind {
        /// `http://host:port/` as tomodachi shows it.
        url: String,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// The `access_log` file could not be opened.
    #[error("unable to use file for access log ({path}): {source}")]
    AccessLogFile {
        /// The path of the `access_log` option.
        path: String,
        /// The file error.
        #[source]
        source: io::Error,
    },
}

/// What the options resolve to, once, at startup.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// `Keep-Alive: timeout=T[, max=M]` when keep-alive is on.
    keep_alive: Option<HeaderValue>,
    max_keepalive_requests: Option<u64>,
    max_keepalive_time: Option<Duration>,
    header_read_timeout: Duration,
    server_header: Option<HeaderValue>,
    content_type: Option<HeaderValue>,
    content_type_base: String,
    grace: Duration,
    /// The option as given, for the shutdown's log record (tomodachi shows it so).
    grace_period_seconds: u64,
    client_max_size: u64,
    access_log: Option<AccessLogLayer>,
    /// What every request's extensions start with (see [`request_extensions`]).
    extensions: http::Extensions,
    /// Only with trusted proxies: else [`RealIp`](crate::RealIp) is the peer's address.
    real_ip: Option<RealIpLayer>,
}

/// How long a client may take to send a request's headers when keep-alive is off.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

impl Config {
    fn from_options(options: &HttpOptions) -> Result<Self, Error> {
        options.validate()?;
        let keepalive_timeout = options.effective_keepalive_timeout();
        let max_keepalive_requests = options.max_keepalive_requests.filter(|n| *n > 0);
        let keep_alive = (keepalive_timeout > 0).then(|| {
            let value = match max_keepalive_requests {
                Some(max) => format!("timeout={keepalive_timeout}, max={max}"),
                None => format!("timeout={keepalive_timeout}"),
            };
            HeaderValue::try_from(value).unwrap_or(HeaderValue::from_static("timeout=5"))
        });
        let content_type = options.default_content_type();
        let content_type_base = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let header = |name: &'static str, value: &str| {
            HeaderValue::try_from(value).map_err(|_| {
                OptionError::new(name, format!("Bad value for http option {name}: {value}"))
            })
        };
        let access_log = match &options.access_log {
            AccessLog::Enabled(false) => None,
            AccessLog::Enabled(true) => Some(AccessLogLayer::new()),
            AccessLog::File(path) => {
                let file = AccessLogFile::open(path).map_err(|source| {
                    tracing::warn!(target: "tomodachi.http", "Unable to use file for access log - invalid path (\"{path}\")");
                    Error::AccessLogFile {
                        path: path.clone(),
                        source,
                    }
                })?;
                tracing::info!(target: "tomodachi.http", file_path = path.as_str(), "logging requests to file");
                Some(AccessLogLayer::new().with_file(file))
            }
        };
        Ok(Self {
            keep_alive,
            max_keepalive_requests,
            max_keepalive_time: options
                .max_keepalive_time
                .filter(|t| *t > 0)
                .map(Duration::from_secs),
            header_read_timeout: if keepalive_timeout > 0 {
                Duration::from_secs(keepalive_timeout)
            } else {
                HEADER_READ_TIMEOUT
            },
            server_header: (!options.server_header.is_empty())
                .then(|| header("server_header", &options.server_header))
                .transpose()?,
            content_type: (!content_type.is_empty())
                .then(|| header("content_type", &content_type))
                .transpose()?,
            content_type_base,
            grace: Duration::from_secs(options.termination_grace_period_seconds.max(2)),
            grace_period_seconds: options.termination_grace_period_seconds,
            client_max_size: options.client_max_size_bytes()?,
            access_log,
            extensions: request_extensions(http::Extensions::new()),
            real_ip: Some(RealIpLayer::from_options(options)?).filter(RealIpLayer::trusts_any),
        })
    }
}

/// The HTTP source: serves an [`HttpRouter`] (or an axum `Router`) with the `http`
/// options, as Python tomodachi's HTTP transport does.
///
/// Per request it adds the `Server` header and the default `Content-Type`, refuses bodies
/// over `client_max_size` (413), resolves the client's [`RealIp`](crate::RealIp), writes
/// the access log, and rotates keep-alive connections (`Connection: close` on the
/// `max_keepalive_requests`-th response or after `max_keepalive_time`; always without
/// keep-alive). On shutdown it stops accepting at once, closes idle connections, lets
/// requests in flight finish within `termination_grace_period_seconds` (at least 2 s),
/// sends WebSockets a Close frame, then closes what is left.
///
/// ```no_run
/// use axum::routing::get;
/// use tomodachi_core::{Shutdown, Source};
/// use tomodachi_http::{HttpOptions, HttpRouter, HttpServer};
///
/// # async fn run() -> Result<(), tomodachi_http::Error> {
/// let router: HttpRouter = HttpRouter::new().route("/health", get(|| async { "ok" }));
/// let shutdown = Shutdown::new();
/// shutdown.listen_for_signals().expect("signal handlers");
/// HttpServer::new(HttpOptions::default()).serve(router, shutdown).await
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct HttpServer {
    options: HttpOptions,
    header_read_timeout: Option<Duration>,
    access_log_writer: Option<Writer>,
    extensions: http::Extensions,
}

/// An [`AccessLogWriter`] that shows in `Debug`.
#[derive(Clone)]
struct Writer(Arc<dyn AccessLogWriter>);

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessLogWriter")
    }
}

impl HttpServer {
    /// A server with these options.
    pub fn new(options: HttpOptions) -> Self {
        Self {
            options,
            header_read_timeout: None,
            access_log_writer: None,
            extensions: http::Extensions::new(),
        }
    }

    /// Writes the access log (when the `access_log` option is on) with `writer` instead of
    /// through `tracing` (see [`AccessLogLayer::with_writer`]). The facade's logger uses it
    /// when it owns the process's subscriber.
    #[must_use]
    pub fn access_log_writer(mut self, writer: Arc<dyn AccessLogWriter>) -> Self {
        self.access_log_writer = Some(Writer(writer));
        self
    }

    /// Puts a clone of each of `extensions` into every request's extensions (before the
    /// access log, the error handlers and the routes see it), as
    /// `Router::layer(Extension(..))` would without wrapping each route in a layer: one
    /// clone of the map per request. Handlers take them with axum's `Extension`. The
    /// facade hands the service's publishers to HTTP handlers so.
    #[must_use]
    pub fn request_extensions(mut self, extensions: http::Extensions) -> Self {
        self.extensions.extend(extensions);
        self
    }

    /// How long a client may take to send a request's headers before the connection is
    /// closed (slow clients cannot hold a connection). Default: `keepalive_timeout` when
    /// keep-alive is on (it is also how long an idle keep-alive connection stays open),
    /// else 30 s.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = Some(timeout);
        self
    }

    /// The options.
    pub fn options(&self) -> &HttpOptions {
        &self.options
    }

    /// Checks the options and binds the listening socket (tomodachi's startup step). A
    /// failure is logged on `tomodachi.http` as tomodachi does ("unable to bind service
    /// [http] to http://…").
    pub async fn bind(self) -> Result<BoundHttpServer, Error> {
        let mut config = Config::from_options(&self.options)?;
        if let Some(timeout) = self.header_read_timeout {
            config.header_read_timeout = timeout;
        }
        config.extensions = request_extensions(self.extensions);
        if let Some(Writer(writer)) = &self.access_log_writer {
            config.access_log = config
                .access_log
                .take()
                .map(|layer| layer.with_writer(writer.clone()));
        }
        let host = self.options.host.as_str();
        let port = self.options.port;
        let shown_host = if matches!(host, "0.0.0.0" | "127.0.0.1" | "") {
            "localhost"
        } else {
            host
        };
        let url = format!("http://{shown_host}:{port}/");
        let listener = match listen(host, port, self.options.reuse_port).await {
            Ok(listener) => listener,
            Err(source) => {
                tracing::warn!(
                    target: "tomodachi.http",
                    host,
                    port,
                    error_message = %source,
                    "unable to bind service [http] to {url}"
                );
                return Err(Error::Bind { url, source });
            }
        };
        let local_addr = listener.local_addr().map_err(|source| Error::Bind {
            url: url.clone(),
            source,
        })?;
        let listen_url = format!("http://{shown_host}:{}/", local_addr.port());
        tracing::info!(
            target: "tomodachi.http",
            listen_url = listen_url.as_str(),
            listen_host = host,
            listen_port = local_addr.port(),
            "accepting http requests"
        );
        Ok(BoundHttpServer {
            listener,
            local_addr,
            config,
        })
    }

    /// Binds and serves `router` until `shutdown`, then drains (see [`Source::serve`]).
    pub async fn serve<R>(self, router: R, shutdown: Shutdown) -> Result<(), Error>
    where
        R: Into<HttpRouter>,
    {
        self.bind().await?.serve(router, shutdown).await
    }
}

/// What every request's extensions start with: `extensions`, in a map with room for the
/// ones added to every request (`ConnectInfo`, the body limit's, axum's URL parameters and
/// `MatchedPath`), so that none of their inserts grows the map (a rehash and a new table
/// per request). A clone keeps the map's table size.
fn request_extensions(mut extensions: http::Extensions) -> http::Extensions {
    #[derive(Clone, Copy)]
    struct Room<const N: u8>;
    extensions.insert(Room::<0>);
    extensions.insert(Room::<1>);
    extensions.insert(Room::<2>);
    extensions.insert(Room::<3>);
    extensions.remove::<Room<0>>();
    extensions.remove::<Room<1>>();
    extensions.remove::<Room<2>>();
    extensions.remove::<Room<3>>();
    extensions
}

async fn listen(host: &str, port: u16, reuse_port: bool) -> io::Result<TcpListener> {
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    let addr = tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::AddrNotAvailable, "no address for host"))?;
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    {
        socket.set_reuseaddr(true)?;
        if reuse_port {
            socket.set_reuseport(true)?;
        }
    }
    #[cfg(not(unix))]
    let _ = reuse_port;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// A server whose socket is bound: serve a router with it.
#[derive(Debug)]
pub struct BoundHttpServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    config: Config,
}

impl BoundHttpServer {
    /// The bound address (the actual port when the option was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves `router` until `shutdown` is triggered, then drains: resolves once every
    /// connection and WebSocket is closed (or the grace period is over).
    pub fn serve<R>(self, router: R, shutdown: Shutdown) -> BoxFuture<'static, Result<(), Error>>
    where
        R: Into<HttpRouter>,
    {
        let config = self.config;
        let (routes, error_handlers) = router.into().into_parts();
        let app = ServiceBuilder::new()
            .option_layer(config.real_ip.clone())
            .option_layer(config.access_log.clone())
            .option_layer(error_handlers)
            .layer(GuardLayer)
            .layer(ClientMaxSizeLayer::new(config.client_max_size))
            .service(routes);
        run(self.listener, app, config, shutdown)
    }
}

fn run<A>(
    listener: TcpListener,
    app: A,
    config: Config,
    shutdown: Shutdown,
) -> BoxFuture<'static, Result<(), Error>>
where
    A: Service<Request<Body>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    A::Future: Send + 'static,
{
    Box::pin(async move {
        crate::TRANSPORT.enable();
        let tracker = TaskTracker::new();
        let force = CancellationToken::new();
        let grace = config.grace;
        let grace_period_seconds = config.grace_period_seconds;
        let requests = Arc::new(AtomicU64::new(0));
        let shared = Arc::new(connection::Shared {
            app,
            ws: Arc::new(WsRegistry {
                tracker: tracker.clone(),
                shutdown: shutdown.clone(),
                log: config.access_log.is_some(),
            }),
            config,
            requests: requests.clone(),
        });
        loop {
            tokio::select! {
                biased;
                () = shutdown.triggered() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        tracker.spawn(connection::serve(stream, peer, shared.clone(), force.clone()));
                    }
                    Err(error) => {
                        if !is_connection_error(&error) {
                            // Out of file descriptors and the like: back off a little.
                            tracing::warn!(target: "tomodachi.http", error_message = %error, "error accepting http connection");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            }
        }
        // Stop accepting at once: new connections are refused from here on.
        drop(listener);
        let request_count = requests.load(Ordering::Acquire);
        if request_count > 0 {
            tracing::info!(
                target: "tomodachi.http",
                request_count,
                grace_period_seconds,
                "awaiting requests to complete"
            );
        }
        tracker.close();
        let finished = tokio::time::timeout(grace, tracker.wait()).await.is_ok();
        if !finished {
            let remaining_request_count = requests.load(Ordering::Acquire);
            if remaining_request_count > 0 {
                tracing::warn!(
                    target: "tomodachi.http",
                    remaining_request_count,
                    "all requests did not gracefully finish execution"
                );
            }
            tracing::warn!(
                target: "tomodachi.http",
                connection_count = tracker.len(),
                "forcefully closing open tcp connections"
            );
            force.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(1), tracker.wait()).await;
        }
        Ok(())
    })
}

fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

impl<R> Source<R> for HttpServer
where
    R: Into<HttpRouter> + Send + 'static,
{
    type Error = Error;
    type Running = BoxFuture<'static, Result<(), Error>>;

    async fn start(self, service: R, shutdown: Shutdown) -> Result<Self::Running, Error> {
        Ok(self.bind().await?.serve(service, shutdown))
    }
}

impl<R> Source<R> for BoundHttpServer
where
    R: Into<HttpRouter> + Send + 'static,
{
    type Error = Error;
    type Running = BoxFuture<'static, Result<(), Error>>;

    async fn start(self, service: R, shutdown: Shutdown) -> Result<Self::Running, Error> {
        Ok(self.serve(service, shutdown))
    }
}
