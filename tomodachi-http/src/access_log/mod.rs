//! The access log: one record per request on `tomodachi.http.response`.

mod file;
mod ignore;
mod record;

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::{Buf as _, Bytes};
use http::header::{AUTHORIZATION, CONTENT_LENGTH, USER_AGENT};
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;
use tracing::Level;

use crate::RealIp;
use crate::regex_route::decode_path;
use crate::response::Unhandled;

pub use file::AccessLogFile;
pub(crate) use ignore::IgnoreLogging;
pub use ignore::{IgnoreLoggingFuture, IgnoreLoggingLayer, IgnoreLoggingService};
use record::ip_text;
pub use record::{AccessField, AccessLogWriter, AccessRecord};
pub(crate) use record::{Seconds, basic_auth_user, version_str};

/// Logs one record per request on `tomodachi.http.response` (info, no message field:
/// the facade's formats write tomodachi's empty message) with
/// tomodachi's fields: `status_code`, `remote_ip`, `auth_user` (Basic auth login, if
/// any), `request_method`, `request_path`, `request_query_string` (if any),
/// `http_version`, `response_content_length`, `request_content_length` (the
/// `Content-Length`, else the bytes read, if any), `request_content_read_length` (the
/// bytes of the body the handler read, if any), `user_agent`, `handler_elapsed_time`
/// (not on responses no handler made: the router's 404 and 405, the body limit's 413) and
/// `request_time` (`"0.00063s"`).
///
/// A request whose client disconnects before the response is logged with status 499.
/// Python tomodachi lets the handler finish and adds `replaced_status_code` (and
/// `replaced_response_content_length`) with the status it would have sent; here the
/// handler's future is dropped with the connection, so there is no status to report and
/// those fields never appear.
/// WebSocket upgrades are logged by the socket instead (open and closed records).
/// Routes with an [`IgnoreLoggingLayer`] are skipped.
///
/// Records go to `tracing` unless [`with_writer`](AccessLogLayer::with_writer) gives them
/// another [`AccessLogWriter`] (the facade's logger does so when it owns the subscriber:
/// the same line, without `tracing`'s per-field dispatch).
///
/// ```
/// use tomodachi_http::AccessLogLayer;
/// use tower::ServiceBuilder;
///
/// let stack = ServiceBuilder::new().layer(AccessLogLayer::new());
/// ```
#[derive(Debug, Clone)]
pub struct AccessLogLayer {
    outputs: Arc<Outputs>,
}

/// Where a layer's records go.
#[derive(Clone)]
struct Outputs {
    tracing: bool,
    writer: Option<Arc<dyn AccessLogWriter>>,
    file: Option<AccessLogFile>,
}

impl fmt::Debug for Outputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outputs")
            .field("tracing", &self.tracing)
            .field("writer", &self.writer.as_ref().map(|_| "AccessLogWriter"))
            .field("file", &self.file)
            .finish()
    }
}

impl Default for AccessLogLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl AccessLogLayer {
    /// Logs through `tracing`.
    pub fn new() -> Self {
        Self {
            outputs: Arc::new(Outputs {
                tracing: true,
                writer: None,
                file: None,
            }),
        }
    }

    /// Also appends JSON records to `file`.
    #[must_use]
    pub fn with_file(mut self, file: AccessLogFile) -> Self {
        Arc::make_mut(&mut self.outputs).file = Some(file);
        self
    }

    /// Writes the records with `writer` instead of through `tracing` (a file given with
    /// [`with_file`](AccessLogLayer::with_file) still gets them too). WebSocket
    /// open/closed records are not request records: they stay on `tracing`.
    #[must_use]
    pub fn with_writer(mut self, writer: Arc<dyn AccessLogWriter>) -> Self {
        let outputs = Arc::make_mut(&mut self.outputs);
        outputs.tracing = false;
        outputs.writer = Some(writer);
        self
    }
}

impl<S> Layer<S> for AccessLogLayer {
    type Service = AccessLogService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AccessLogService {
            inner,
            outputs: self.outputs.clone(),
        }
    }
}

/// The service of [`AccessLogLayer`].
#[derive(Debug, Clone)]
pub struct AccessLogService<S> {
    inner: S,
    outputs: Arc<Outputs>,
}

impl<S> AccessLogService<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
    /// The wrapped service.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }
    /// The wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for AccessLogService<S>
where
    S: Service<Request<Body>, Response = Response<ResB>>,
    ReqB: http_body::Body<Data = Bytes> + Send + 'static,
    ReqB::Error: Into<axum::BoxError>,
    ResB: http_body::Body,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = AccessLogFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let remote_ip = req.extensions().get::<RealIp>().map(|ip| ip.0).or_else(|| {
            req.extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip())
        });
        // One pass over the headers (a request has few) instead of a hashed lookup each.
        let (mut user_agent, mut authorization, mut content_length) = (None, None, None);
        for (name, value) in req.headers() {
            if *name == USER_AGENT {
                user_agent = user_agent.or(Some(value));
            } else if *name == AUTHORIZATION {
                authorization = authorization.or(Some(value));
            } else if *name == CONTENT_LENGTH {
                content_length = content_length.or(Some(value));
            }
        }
        let mut request = RequestInfo {
            start: Instant::now(),
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            user_agent: user_agent.cloned(),
            authorization: authorization.cloned(),
            request_content_length: content_length
                .and_then(|value| value.to_str().ok()?.parse().ok())
                .filter(|length| *length > 0),
            read: None,
            remote_ip,
            outputs: self.outputs.clone(),
        };
        // Only a request with a body has its reads counted (an `Arc` per request).
        let req = if req.body().is_end_stream() {
            req.map(Body::new)
        } else {
            let read = Arc::new(AtomicU64::new(0));
            request.read = Some(read.clone());
            req.map(|inner| Body::new(CountingBody { inner, read }))
        };
        AccessLogFuture {
            inner: self.inner.call(req),
            request: Some(request),
        }
    }
}

pin_project! {
    /// A request body that counts the bytes the handler read
    /// (`request_content_read_length`).
    struct CountingBody<B> {
        #[pin]
        inner: B,
        read: Arc<AtomicU64>,
    }
}

impl<B: http_body::Body> http_body::Body for CountingBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
        {
            this.read
                .fetch_add(data.remaining() as u64, Ordering::Relaxed);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

struct RequestInfo {
    start: Instant,
    method: Method,
    uri: Uri,
    version: Version,
    user_agent: Option<HeaderValue>,
    authorization: Option<HeaderValue>,
    request_content_length: Option<u64>,
    /// Bytes of the body the handler read, when the request has a body.
    read: Option<Arc<AtomicU64>>,
    remote_ip: Option<std::net::IpAddr>,
    outputs: Arc<Outputs>,
}

struct ResponseInfo {
    status: u16,
    content_length: Option<u64>,
    handler_elapsed: Option<Duration>,
}

pin_project! {
    /// Response future of [`AccessLogService`].
    pub struct AccessLogFuture<F> {
        #[pin]
        inner: F,
        request: Option<RequestInfo>,
    }

    impl<F> PinnedDrop for AccessLogFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            // Dropped before the response: the client went away (tomodachi's 499).
            if let Some(request) = this.project().request.take() {
                request.log(ResponseInfo { status: 499, content_length: None, handler_elapsed: None });
            }
        }
    }
}

impl<F, B, E> Future for AccessLogFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let Some(request) = this.request.take() else {
            return Poll::Ready(result);
        };
        let Ok(response) = &result else {
            request.log(ResponseInfo {
                status: 500,
                content_length: None,
                handler_elapsed: None,
            });
            return Poll::Ready(result);
        };
        let status = response.status();
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return Poll::Ready(result);
        }
        match response.extensions().get::<IgnoreLogging>() {
            Some(IgnoreLogging::All) => return Poll::Ready(result),
            Some(IgnoreLogging::Statuses(statuses)) if statuses.contains(&status.as_u16()) => {
                return Poll::Ready(result);
            }
            _ => {}
        }
        let content_length = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse().ok())
            .or_else(|| response.body().size_hint().exact());
        // No handler made the router's 404/405 or the body limit's 413: tomodachi leaves
        // `handler_elapsed_time` out of their records.
        let handler_elapsed = response
            .extensions()
            .get::<Unhandled>()
            .is_none()
            .then(|| request.start.elapsed());
        request.log(ResponseInfo {
            status: status.as_u16(),
            content_length,
            handler_elapsed,
        });
        Poll::Ready(result)
    }
}

impl RequestInfo {
    fn log(self, response: ResponseInfo) {
        let outputs = &*self.outputs;
        let to_tracing =
            outputs.tracing && tracing::enabled!(target: "tomodachi.http.response", Level::INFO);
        let writer = outputs.writer.as_deref().filter(|writer| writer.enabled());
        if !to_tracing && writer.is_none() && outputs.file.is_none() {
            return;
        }
        // Nothing happens between the response and this record: the time the service
        // took is both the handler's and the request's.
        let request_time = Seconds(
            response
                .handler_elapsed
                .unwrap_or_else(|| self.start.elapsed()),
        )
        .text();
        let request_time = request_time.as_str();
        let remote_ip = ip_text(self.remote_ip);
        let auth_user = self.authorization.as_ref().and_then(basic_auth_user);
        let path = decode_path(self.uri.path());
        let read = self
            .read
            .as_ref()
            .map(|read| read.load(Ordering::Relaxed))
            .filter(|read| *read > 0);
        let record = AccessRecord {
            status_code: response.status,
            remote_ip: remote_ip.as_str(),
            auth_user: auth_user.as_deref(),
            request_method: self.method.as_str(),
            request_path: &path,
            request_query_string: self.uri.query().filter(|query| !query.is_empty()),
            http_version: version_str(self.version),
            response_content_length: response.content_length,
            // tomodachi: the header's length, else what was read.
            request_content_length: self.request_content_length.or(read),
            request_content_read_length: read,
            user_agent: self
                .user_agent
                .as_ref()
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default(),
            handler_elapsed_time: response.handler_elapsed.is_some().then_some(request_time),
            request_time,
        };
        if to_tracing {
            tracing::info!(
                target: "tomodachi.http.response",
                status_code = record.status_code,
                remote_ip = record.remote_ip,
                auth_user = record.auth_user,
                request_method = record.request_method,
                request_path = record.request_path,
                request_query_string = record.request_query_string,
                http_version = record.http_version,
                response_content_length = record.response_content_length,
                request_content_length = record.request_content_length,
                request_content_read_length = record.request_content_read_length,
                user_agent = record.user_agent,
                handler_elapsed_time = record.handler_elapsed_time,
                request_time = record.request_time,
            );
        }
        if let Some(writer) = writer {
            writer.write(&record);
        }
        if let Some(file) = &outputs.file {
            file.write(&record);
        }
    }
}
