//! [`HttpTraceLayer`]: a SERVER span and tomodachi's HTTP metrics around each request.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context as TaskContext, Poll, ready};
use std::time::Instant;

use http::{Extensions, Request, Response};
use opentelemetry::trace::{SpanBuilder, SpanKind, Status, TraceContextExt};
use opentelemetry::{Context, KeyValue, StringValue};
use pin_project_lite::pin_project;
use tomodachi_core::telemetry::HttpRoute;
use tower_layer::Layer;
use tower_service::Service;

use crate::Telemetry;
use crate::propagation::TRACEPARENT;
use crate::series::{ActiveRequests, Histogram, RequestSeries};
use crate::telemetry::{METHODS, Route};

/// Reads the matched route of a request from its extensions.
pub type RouteFn = fn(&Extensions) -> Option<&str>;

fn core_route(extensions: &Extensions) -> Option<&str> {
    extensions.get::<HttpRoute>().map(HttpRoute::as_str)
}

/// Traces and measures HTTP requests: a SERVER span `"{METHOD} {route}"` (`"{METHOD}"`
/// when no route matched) whose parent comes from the `traceparent`/`tracestate` headers,
/// status ERROR for 5xx and 499, and tomodachi's `http.server.duration` and
/// `http.server.active_requests` instruments. Paths matching the excluded-URL patterns pass
/// through unrecorded.
///
/// The route is read from the request's extensions ([`HttpRoute`] by default, or what
/// [`HttpTraceLayer::route_from`] reads, such as axum's `MatchedPath`), else from an
/// [`HttpRoute`] in the response's extensions. With axum, add the layer with
/// `Router::layer` so it runs after routing and sees `MatchedPath`:
///
/// ```ignore
/// router.layer(telemetry.http_layer().route_from(|ext| ext.get::<MatchedPath>().map(MatchedPath::as_str)))
/// ```
#[derive(Debug, Clone)]
pub struct HttpTraceLayer {
    telemetry: Telemetry,
    route: RouteFn,
}

impl HttpTraceLayer {
    /// The layer recording to `telemetry`.
    pub fn new(telemetry: Telemetry) -> Self {
        Self {
            telemetry,
            route: core_route,
        }
    }

    /// Reads the matched route with `route` instead of from [`HttpRoute`].
    #[must_use]
    pub fn route_from(mut self, route: RouteFn) -> Self {
        self.route = route;
        self
    }
}

impl<S> Layer<S> for HttpTraceLayer {
    type Service = HttpTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpTrace {
            inner,
            telemetry: self.telemetry.clone(),
            route: self.route,
        }
    }
}

/// The service of [`HttpTraceLayer`].
#[derive(Debug, Clone)]
pub struct HttpTrace<S> {
    inner: S,
    telemetry: Telemetry,
    route: RouteFn,
}

impl<S> HttpTrace<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutable.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

thread_local! {
    /// The latest `url.path`, `server.address` and `user_agent.original` made on this
    /// thread: the requests of a keep-alive connection repeat them, so a span usually shares
    /// them instead of copying each into a `String` of its own.
    static LATEST: RefCell<[Option<Arc<str>>; 3]> = const { RefCell::new([None, None, None]) };
}

const PATH: usize = 0;
const ADDRESS: usize = 1;
const AGENT: usize = 2;

/// `value` as an attribute value, shared with the previous request's on this thread if equal.
fn latest(slot: usize, value: &str) -> StringValue {
    LATEST
        .try_with(|latest| {
            let mut latest = latest.try_borrow_mut().ok()?;
            let slot = latest.get_mut(slot)?;
            match slot {
                Some(found) if **found == *value => Some(StringValue::from(Arc::clone(found))),
                _ => {
                    let shared: Arc<str> = Arc::from(value);
                    *slot = Some(Arc::clone(&shared));
                    Some(StringValue::from(shared))
                }
            }
        })
        .ok()
        .flatten()
        .unwrap_or_else(|| StringValue::from(value.to_owned()))
}

fn split_host(host: &str) -> (&str, Option<i64>) {
    match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(']') || host.starts_with('[') => match port.parse() {
            Ok(port) => (name, Some(port)),
            Err(_) => (host, None),
        },
        _ => (host, None),
    }
}

/// `http.request.method`, as its index in [`METHODS`]: the known methods as themselves,
/// others as `_OTHER` (as the semantic conventions ask, so a client cannot grow the metrics
/// without bound).
fn method_index(method: &http::Method) -> usize {
    use http::Method;
    match *method {
        Method::GET => 0,
        Method::POST => 1,
        Method::PUT => 2,
        Method::DELETE => 3,
        Method::PATCH => 4,
        Method::HEAD => 5,
        Method::OPTIONS => 6,
        Method::CONNECT => 7,
        Method::TRACE => 8,
        _ => 9,
    }
}

impl<S, B, ResB> Service<Request<B>> for HttpTrace<S>
where
    S: Service<Request<B>, Response = Response<ResB>>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = HttpTraceFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if self.telemetry.is_excluded(request.uri().path()) {
            return HttpTraceFuture {
                inner: self.inner.call(request),
                record: None,
            };
        }
        // One pass over the headers instead of a lookup (a hash) for each one read; the
        // first value of a header counts, as with `HeaderMap::get`.
        let (mut host, mut agent, mut traceparent) = (None, None, false);
        for (name, value) in request.headers() {
            if *name == http::header::HOST {
                host = host.or(Some(value));
            } else if *name == http::header::USER_AGENT {
                agent = agent.or(Some(value));
            } else if *name == TRACEPARENT {
                traceparent = true;
            }
        }
        let parent = if traceparent {
            self.telemetry.extract_headers(request.headers())
        } else {
            Context::current()
        };
        let method_index = method_index(request.method());
        let method = METHODS[method_index];
        let route = (self.route)(request.extensions()).map(|r| self.telemetry.route(r));
        let scheme = match request.uri().scheme_str() {
            Some("https") => "https",
            _ => "http",
        };
        let version = match request.version() {
            http::Version::HTTP_10 => "1.0",
            http::Version::HTTP_2 => "2",
            http::Version::HTTP_3 => "3",
            _ => "1.1",
        };
        let name = match &route {
            Some(route) => route.span_name(method_index),
            None => method,
        };
        let mut attributes = Vec::with_capacity(10);
        attributes.extend([
            KeyValue::new("http.request.method", method),
            KeyValue::new("url.scheme", scheme),
            KeyValue::new("url.path", latest(PATH, request.uri().path())),
            KeyValue::new("network.protocol.name", "http"),
            KeyValue::new("network.protocol.version", version),
        ]);
        if let Some(query) = request.uri().query() {
            attributes.push(KeyValue::new("url.query", query.to_owned()));
        }
        if let Some(route) = &route {
            attributes.push(KeyValue::new("http.route", Arc::clone(&route.pattern)));
        }
        let host = host
            .and_then(|h| h.to_str().ok())
            .or_else(|| request.uri().host());
        if let Some(host) = host {
            let (name, port) = split_host(host);
            attributes.push(KeyValue::new("server.address", latest(ADDRESS, name)));
            attributes.push(KeyValue::new(
                "server.port",
                port.unwrap_or(if scheme == "https" { 443 } else { 80 }),
            ));
        }
        if let Some(agent) = agent.and_then(|h| h.to_str().ok()) {
            attributes.push(KeyValue::new("user_agent.original", latest(AGENT, agent)));
        }
        let cx = self.telemetry.start_span(
            SpanBuilder::from_name(name)
                .with_kind(SpanKind::Server)
                .with_attributes(attributes),
            &parent,
        );
        let active = self
            .telemetry
            .inner
            .http
            .active(method_index, scheme, || ActiveRequests {
                method,
                scheme,
                attributes: Box::new([
                    KeyValue::new("http.request.method", method),
                    KeyValue::new("url.scheme", scheme),
                ]),
                active: AtomicI64::new(0),
            });
        active.active.fetch_add(1, Relaxed);
        let inner = {
            let _guard = cx.clone().attach();
            self.inner.call(request)
        };
        HttpTraceFuture {
            inner,
            record: Some(Record {
                cx,
                telemetry: self.telemetry.clone(),
                route,
                method_index,
                active,
                version,
                start: Instant::now(),
            }),
        }
    }
}

struct Record {
    cx: Context,
    telemetry: Telemetry,
    route: Option<Arc<Route>>,
    method_index: usize,
    active: Arc<ActiveRequests>,
    version: &'static str,
    start: Instant,
}

impl Record {
    fn finish(self, status: Option<u16>, response_extensions: Option<&Extensions>) {
        let span = self.cx.span();
        let (method, scheme) = (self.active.method, self.active.scheme);
        let mut route = self.route;
        if route.is_none()
            && let Some(found) = response_extensions.and_then(core_route)
        {
            let found = self.telemetry.route(found);
            span.update_name(found.span_name(self.method_index));
            span.set_attribute(KeyValue::new("http.route", Arc::clone(&found.pattern)));
            route = Some(found);
        }
        match status {
            Some(code) => {
                span.set_attribute(KeyValue::new("http.response.status_code", i64::from(code)));
                if code >= 500 || code == 499 {
                    span.set_status(Status::error(""));
                }
            }
            None => span.set_status(Status::error("request failed")),
        }
        let elapsed = self.start.elapsed().as_secs_f64();
        self.active.active.fetch_sub(1, Relaxed);
        let version = self.version;
        let route = route.as_ref().map(|r| &r.pattern);
        let http = &self.telemetry.inner.http;
        let series = http.series.get_or_insert(
            |s| {
                s.status == status
                    && s.method == method
                    && match (&s.route, route) {
                        (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
                        (a, b) => a.is_none() && b.is_none(),
                    }
                    && s.scheme == scheme
                    && s.version == version
            },
            || {
                let mut attributes = vec![
                    KeyValue::new("http.request.method", method),
                    KeyValue::new("url.scheme", scheme),
                    KeyValue::new("network.protocol.version", version),
                ];
                if let Some(route) = &route {
                    attributes.push(KeyValue::new("http.route", Arc::clone(route)));
                }
                if let Some(code) = status {
                    attributes.push(KeyValue::new("http.response.status_code", i64::from(code)));
                }
                RequestSeries {
                    method,
                    scheme,
                    version,
                    route: route.cloned(),
                    status,
                    histogram: Histogram::new(&http.duration, attributes, self.telemetry.exemplars),
                }
            },
        );
        series.histogram.record(elapsed, span.span_context());
        span.end();
    }
}

pin_project! {
    /// The response future of [`HttpTrace`].
    pub struct HttpTraceFuture<F> {
        #[pin]
        inner: F,
        record: Option<Record>,
    }

    impl<F> PinnedDrop for HttpTraceFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            // The client went away before the response: nginx's 499.
            if let Some(record) = this.project().record.take() {
                record.finish(Some(499), None);
            }
        }
    }
}

impl<F> std::fmt::Debug for HttpTraceFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTraceFuture").finish_non_exhaustive()
    }
}

impl<F, ResB, E> Future for HttpTraceFuture<F>
where
    F: Future<Output = Result<Response<ResB>, E>>,
{
    type Output = Result<Response<ResB>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _guard = this.record.as_ref().map(|r| r.cx.clone().attach());
            ready!(this.inner.poll(cx))
        };
        if let Some(record) = this.record.take() {
            match &result {
                Ok(response) => record.finish(
                    Some(response.status().as_u16()),
                    Some(response.extensions()),
                ),
                Err(_) => record.finish(None, None),
            }
        }
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_host_reads_the_port_after_the_last_colon() {
        let cases = [
            ("shop.example:8080", ("shop.example", Some(8080))),
            ("shop.example", ("shop.example", None)),
            ("shop.example:", ("shop.example:", None)),
            ("shop.example:x1", ("shop.example:x1", None)),
            ("shop.example:+80", ("shop.example", Some(80))),
            ("shop.example:-1", ("shop.example", Some(-1))),
            ("shop.example:123456", ("shop.example", Some(123_456))),
            (
                "shop.example:99999999999999999999",
                ("shop.example:99999999999999999999", None),
            ),
            ("127.0.0.1:19902", ("127.0.0.1", Some(19902))),
            ("[::1]:8080", ("[::1]", Some(8080))),
            ("[::1]", ("[::1]", None)),
            ("::1", (":", Some(1))),
            ("é:80", ("é", Some(80))),
            (":80", ("", Some(80))),
            ("", ("", None)),
        ];
        for (host, expected) in cases {
            assert_eq!(split_host(host), expected, "{host}");
        }
    }

    #[test]
    fn latest_values_are_shared_when_equal() {
        let a = latest(PATH, "/items/1");
        let b = latest(PATH, "/items/1");
        let c = latest(PATH, "/items/2");
        let d = latest(ADDRESS, "/items/2");
        assert_eq!(a.as_str(), "/items/1");
        assert_eq!(b.as_str(), "/items/1");
        assert_eq!(c.as_str(), "/items/2");
        assert_eq!(d.as_str(), "/items/2");
        assert!(std::ptr::eq(a.as_str(), b.as_str()), "shared");
        assert!(
            !std::ptr::eq(c.as_str(), d.as_str()),
            "one slot per attribute"
        );
    }
}
