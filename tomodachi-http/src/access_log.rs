//! The access log: one record per request on `tomodachi.http.response`.

use std::fmt::{self, Write as _};
use std::fs::File;
use std::future::Future;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use base64::Engine as _;
use bytes::{Buf as _, Bytes};
use http::header::{AUTHORIZATION, CONTENT_LENGTH, USER_AGENT};
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;
use tracing::Level;

use crate::RealIp;
use crate::regex_route::decode_path;

/// Hides a route's access log records: all of them, or those of some statuses
/// (tomodachi's `ignore_logging=True` / `ignore_logging=[200, 404]`).
///
/// Put it on a route (`get(handler).layer(IgnoreLoggingLayer::all())`); it marks the
/// route's responses and the [`AccessLogLayer`] skips them.
///
/// ```
/// use axum::routing::get;
/// use tomodachi_http::{HttpRouter, IgnoreLoggingLayer};
///
/// let router: HttpRouter = HttpRouter::new()
///     .route("/health", get(|| async { "ok" }).layer(IgnoreLoggingLayer::all()))
///     .route("/items", get(|| async { "[]" }).layer(IgnoreLoggingLayer::statuses([200])));
/// ```
#[derive(Debug, Clone)]
pub struct IgnoreLoggingLayer {
    ignore: IgnoreLogging,
}

/// What a route's responses hide from the access log (see [`IgnoreLoggingLayer`]).
#[derive(Debug, Clone)]
pub(crate) enum IgnoreLogging {
    All,
    Statuses(Arc<[u16]>),
}

impl IgnoreLoggingLayer {
    /// Hides every record of the route (500s too, as tomodachi).
    pub fn all() -> Self {
        Self {
            ignore: IgnoreLogging::All,
        }
    }

    /// Hides the records with these status codes.
    pub fn statuses(statuses: impl IntoIterator<Item = u16>) -> Self {
        Self {
            ignore: IgnoreLogging::Statuses(statuses.into_iter().collect()),
        }
    }
}

impl<S> Layer<S> for IgnoreLoggingLayer {
    type Service = IgnoreLoggingService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        IgnoreLoggingService {
            inner,
            ignore: self.ignore.clone(),
        }
    }
}

/// The service of [`IgnoreLoggingLayer`].
#[derive(Debug, Clone)]
pub struct IgnoreLoggingService<S> {
    inner: S,
    ignore: IgnoreLogging,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for IgnoreLoggingService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = IgnoreLoggingFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        IgnoreLoggingFuture {
            inner: self.inner.call(req),
            ignore: Some(self.ignore.clone()),
        }
    }
}

pin_project! {
    /// Response future of [`IgnoreLoggingService`].
    pub struct IgnoreLoggingFuture<F> {
        #[pin]
        inner: F,
        ignore: Option<IgnoreLogging>,
    }
}

impl<F, B, E> Future for IgnoreLoggingFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        if let Some(ignore) = this.ignore.take() {
            response.extensions_mut().insert(ignore);
        }
        Poll::Ready(Ok(response))
    }
}

/// Appends tomodachi's JSON access log records to a file (`access_log = "path"`).
#[derive(Debug, Clone)]
pub struct AccessLogFile {
    file: Arc<Mutex<File>>,
}

impl AccessLogFile {
    /// Opens (creates, appends to) `path`.
    pub fn open(path: impl AsRef<Path>) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self {
            file: Arc::new(Mutex::new(file)),
        })
    }

    /// Writes one JSON record: `timestamp`, `logger`, `level`, `message`, then `fields`.
    pub(crate) fn write(&self, level: &str, message: &str, fields: &[(&str, JsonValue<'_>)]) {
        let mut line = String::with_capacity(320);
        let timestamp = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ");
        let _ = write!(
            line,
            r#"{{"timestamp": "{timestamp}", "logger": "tomodachi.http.response", "level": "{level}", "message": {}"#,
            json_string(message)
        );
        for (key, value) in fields {
            let rendered = match value {
                JsonValue::Str(text) => json_string(text),
                JsonValue::Num(number) => number.to_string(),
            };
            let _ = write!(line, r#", "{key}": {rendered}"#);
        }
        line.push_str("}\n");
        if let Ok(mut file) = self.file.lock() {
            let _ = file.write_all(line.as_bytes());
        }
    }
}

pub(crate) enum JsonValue<'a> {
    Str(&'a str),
    Num(u64),
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

/// Logs one record per request on `tomodachi.http.response` (info, no message field:
/// the facade's formats write tomodachi's empty message) with
/// tomodachi's fields: `status_code`, `remote_ip`, `auth_user` (Basic auth login, if
/// any), `request_method`, `request_path`, `request_query_string` (if any),
/// `http_version`, `response_content_length`, `request_content_length` (the
/// `Content-Length`, else the bytes read, if any), `request_content_read_length` (the
/// bytes of the body the handler read, if any), `user_agent`, `handler_elapsed_time` and
/// `request_time` (`"0.00063s"`).
///
/// A request whose client disconnects before the response is logged with status 499.
/// Python tomodachi lets the handler finish and adds `replaced_status_code` (and
/// `replaced_response_content_length`) with the status it would have sent; here the
/// handler's future is dropped with the connection, so there is no status to report and
/// those fields never appear.
/// WebSocket upgrades are logged by the socket instead (open and closed records).
/// Routes with an [`IgnoreLoggingLayer`] are skipped.
#[derive(Debug, Clone, Default)]
pub struct AccessLogLayer {
    file: Option<AccessLogFile>,
}

impl AccessLogLayer {
    /// Logs through `tracing` only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also appends JSON records to `file`.
    pub fn with_file(mut self, file: AccessLogFile) -> Self {
        self.file = Some(file);
        self
    }
}

impl<S> Layer<S> for AccessLogLayer {
    type Service = AccessLogService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AccessLogService {
            inner,
            file: self.file.clone(),
        }
    }
}

/// The service of [`AccessLogLayer`].
#[derive(Debug, Clone)]
pub struct AccessLogService<S> {
    inner: S,
    file: Option<AccessLogFile>,
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
        let headers = req.headers();
        let mut request = RequestInfo {
            start: Instant::now(),
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            user_agent: headers.get(USER_AGENT).cloned(),
            authorization: headers.get(AUTHORIZATION).cloned(),
            request_content_length: headers
                .get(CONTENT_LENGTH)
                .and_then(|value| value.to_str().ok()?.parse().ok())
                .filter(|length| *length > 0),
            read: None,
            remote_ip,
            file: self.file.clone(),
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
    remote_ip: Option<IpAddr>,
    file: Option<AccessLogFile>,
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
        let handler_elapsed = Some(request.start.elapsed());
        request.log(ResponseInfo {
            status: status.as_u16(),
            content_length,
            handler_elapsed,
        });
        Poll::Ready(result)
    }
}

/// A duration as tomodachi's `"{0:.5f}s"`, rounded to 10 µs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seconds(pub(crate) Duration);

impl Seconds {
    /// The text, by hand (`{:05}` goes through the padding machinery): once per request.
    fn text(self) -> ShortText {
        let tens_of_micros = self
            .0
            .as_secs()
            .saturating_mul(100_000)
            .saturating_add(u64::from(self.0.subsec_nanos() + 5_000) / 10_000);
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut n = tens_of_micros;
        while n > 0 || at > digits.len() - 6 {
            at -= 1;
            // `n % 10` is a digit.
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        let (whole, fraction) = digits[at..].split_at(digits.len() - at - 5);
        let mut text = ShortText::default();
        text.push(whole);
        text.push(b".");
        text.push(fraction);
        text.push(b"s");
        text
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text().as_str())
    }
}

/// A client address as text, or `""` when it is unknown; IPv4 by hand (`Ipv4Addr`'s
/// `Display` formats each octet through the padding machinery).
fn ip_text(ip: Option<IpAddr>) -> ShortText {
    let mut text = ShortText::default();
    match ip {
        Some(IpAddr::V4(ip)) => {
            for (i, octet) in ip.octets().into_iter().enumerate() {
                if i > 0 {
                    text.push(b".");
                }
                let digits = [
                    b'0' + octet / 100,
                    b'0' + octet / 10 % 10,
                    b'0' + octet % 10,
                ];
                let skip = match octet {
                    0..=9 => 2,
                    10..=99 => 1,
                    _ => 0,
                };
                text.push(&digits[skip..]);
            }
        }
        Some(ip) => {
            let _ = write!(text, "{ip}");
        }
        None => {}
    }
    text
}

/// ASCII text of up to 48 bytes on the stack (an IPv6 address is at most 45).
#[derive(Debug, Clone, Copy)]
struct ShortText {
    bytes: [u8; 48],
    len: usize,
}

impl Default for ShortText {
    fn default() -> Self {
        Self {
            bytes: [0; 48],
            len: 0,
        }
    }
}

impl ShortText {
    /// Appends what fits of `ascii`.
    fn push(&mut self, ascii: &[u8]) {
        let n = ascii.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&ascii[..n]);
        self.len += n;
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

impl fmt::Write for ShortText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if s.len() > self.bytes.len() - self.len {
            return Err(fmt::Error);
        }
        self.push(s.as_bytes());
        Ok(())
    }
}

pub(crate) fn version_str(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// The login of a `Basic` `Authorization` header (tomodachi's `auth_user`).
pub(crate) fn basic_auth_user(value: &HeaderValue) -> Option<String> {
    let value = value.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (login, _) = decoded.split_once(':')?;
    Some(login.to_owned())
}

impl RequestInfo {
    fn log(self, response: ResponseInfo) {
        let to_tracing = tracing::enabled!(target: "tomodachi.http.response", Level::INFO);
        if !to_tracing && self.file.is_none() {
            return;
        }
        // Nothing happens between the response and this record: the time the service
        // took is both the handler's and the request's.
        let request_time = Seconds(
            response
                .handler_elapsed
                .unwrap_or_else(|| self.start.elapsed()),
        );
        let request_time = request_time.text();
        let handler_elapsed_time = response.handler_elapsed.map(|t| Seconds(t).text());
        let remote_ip = ip_text(self.remote_ip);
        let auth_user = self.authorization.as_ref().and_then(basic_auth_user);
        let path = decode_path(self.uri.path());
        let query = self.uri.query().filter(|query| !query.is_empty());
        let user_agent = self
            .user_agent
            .as_ref()
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let http_version = version_str(self.version);
        let read = self
            .read
            .as_ref()
            .map(|read| read.load(Ordering::Relaxed))
            .filter(|read| *read > 0);
        // tomodachi: the header's length, else what was read.
        let request_content_length = self.request_content_length.or(read);
        if to_tracing {
            tracing::info!(
                target: "tomodachi.http.response",
                status_code = response.status,
                remote_ip = remote_ip.as_str(),
                auth_user = auth_user.as_deref(),
                request_method = self.method.as_str(),
                request_path = &*path,
                request_query_string = query,
                http_version,
                response_content_length = response.content_length,
                request_content_length,
                request_content_read_length = read,
                user_agent,
                handler_elapsed_time = handler_elapsed_time.as_ref().map(ShortText::as_str),
                request_time = request_time.as_str(),
            );
        }
        if let Some(file) = &self.file {
            let mut fields = Vec::with_capacity(14);
            fields.push(("status_code", JsonValue::Num(u64::from(response.status))));
            fields.push(("remote_ip", JsonValue::Str(remote_ip.as_str())));
            if let Some(user) = &auth_user {
                fields.push(("auth_user", JsonValue::Str(user)));
            }
            fields.push(("request_method", JsonValue::Str(self.method.as_str())));
            fields.push(("request_path", JsonValue::Str(&path)));
            if let Some(query) = query {
                fields.push(("request_query_string", JsonValue::Str(query)));
            }
            fields.push(("http_version", JsonValue::Str(http_version)));
            if let Some(length) = response.content_length {
                fields.push(("response_content_length", JsonValue::Num(length)));
            }
            if let Some(length) = request_content_length {
                fields.push(("request_content_length", JsonValue::Num(length)));
            }
            if let Some(length) = read {
                fields.push(("request_content_read_length", JsonValue::Num(length)));
            }
            fields.push(("user_agent", JsonValue::Str(user_agent)));
            if let Some(elapsed) = &handler_elapsed_time {
                fields.push(("handler_elapsed_time", JsonValue::Str(elapsed.as_str())));
            }
            fields.push(("request_time", JsonValue::Str(request_time.as_str())));
            file.write("info", "", &fields);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_tomodachi() {
        assert_eq!(Seconds(Duration::from_micros(630)).to_string(), "0.00063s");
        assert_eq!(
            Seconds(Duration::from_nanos(1_234_565_001)).to_string(),
            "1.23457s"
        );
        assert_eq!(Seconds(Duration::ZERO).to_string(), "0.00000s");
        assert_eq!(Seconds(Duration::from_secs(12)).to_string(), "12.00000s");
        // Saturates instead of overflowing.
        assert!(Seconds(Duration::MAX).to_string().ends_with('s'));
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.255.9",
            "255.255.255.255",
            "::1",
        ] {
            assert_eq!(ip_text(Some(ip.parse().unwrap())).as_str(), ip);
        }
        let longest = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255";
        assert_eq!(
            ip_text(Some(longest.parse().unwrap())).as_str(),
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        );
        assert_eq!(ip_text(None).as_str(), "");
        assert_eq!(
            basic_auth_user(&HeaderValue::from_static("Basic dXNlcjpwYXNz")).as_deref(),
            Some("user")
        );
        assert_eq!(basic_auth_user(&HeaderValue::from_static("Bearer x")), None);
    }
}
