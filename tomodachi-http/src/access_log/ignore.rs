//! [`IgnoreLoggingLayer`]: a route's responses that the access log skips.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tomodachi_core::panic::catch_unwind;
use tower_layer::Layer;
use tower_service::Service;

use crate::response::raised_default;

/// Hides a route's access log records: all of them, or those of some statuses
/// (tomodachi's `ignore_logging=True` / `ignore_logging=[200, 404]`).
///
/// Put it on a route (`get(handler).layer(IgnoreLoggingLayer::all())`); it marks the
/// route's responses and the [`AccessLogLayer`](super::AccessLogLayer) skips them. A
/// panic of the route's handler becomes its (marked) 500 here, so it is hidden too.
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
    ResB: Default,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = IgnoreLoggingFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let inner = match catch_unwind(AssertUnwindSafe(|| self.inner.call(req))) {
            Ok(inner) => Some(inner),
            Err(panic) => {
                crate::guard::on_panic(&*panic);
                None
            }
        };
        IgnoreLoggingFuture {
            inner,
            ignore: Some(self.ignore.clone()),
        }
    }
}

pin_project! {
    /// Response future of [`IgnoreLoggingService`].
    pub struct IgnoreLoggingFuture<F> {
        // `None` when the call panicked.
        #[pin]
        inner: Option<F>,
        ignore: Option<IgnoreLogging>,
    }
}

impl<F, B, E> Future for IgnoreLoggingFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = match this.inner.as_pin_mut() {
            Some(inner) => match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
                Ok(poll) => ready!(poll)?,
                Err(panic) => empty(crate::guard::on_panic(&*panic)),
            },
            None => empty(raised_default(StatusCode::INTERNAL_SERVER_ERROR)),
        };
        if let Some(ignore) = this.ignore.take() {
            response.extensions_mut().insert(ignore);
        }
        Poll::Ready(Ok(response))
    }
}

/// The raised, empty 500 of a panic, with the route's body type.
fn empty<B: Default>(response: axum::response::Response) -> Response<B> {
    let (parts, _) = response.into_parts();
    Response::from_parts(parts, B::default())
}
