//! [`IgnoreLoggingLayer`]: a route's responses that the access log skips.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

/// Hides a route's access log records: all of them, or those of some statuses
/// (tomodachi's `ignore_logging=True` / `ignore_logging=[200, 404]`).
///
/// Put it on a route (`get(handler).layer(IgnoreLoggingLayer::all())`); it marks the
/// route's responses and the [`AccessLogLayer`](super::AccessLogLayer) skips them.
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
