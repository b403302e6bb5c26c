//! Around the routed handler: a panic as a logged 500.

use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::extract::Request;
use axum::response::Response;
use http::StatusCode;
use pin_project_lite::pin_project;
use tomodachi_core::panic::catch_unwind;
use tower_layer::Layer;
use tower_service::Service;

use crate::response::raised_default;

/// Logs a handler's panic and answers with the raised, empty 500.
pub(crate) fn on_panic(panic: &(dyn Any + Send)) -> Response {
    let message = tomodachi_core::panic::message(panic);
    tracing::error!(
        target: "exception",
        exc_type = "panic",
        exc_message = message,
        location = tomodachi_core::panic::location(),
        "uncaught exception: {message}"
    );
    raised_default(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Turns the inner service's panics into a raised, empty 500.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct GuardLayer;

impl<S> Layer<S> for GuardLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Guard { inner }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Guard<S> {
    inner: S,
}

impl<S> Service<Request> for Guard<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = GuardFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        match catch_unwind(AssertUnwindSafe(|| self.inner.call(req))) {
            Ok(future) => GuardFuture {
                inner: Some(future),
                panicked: None,
            },
            Err(panic) => GuardFuture {
                inner: None,
                panicked: Some(on_panic(&*panic)),
            },
        }
    }
}

pin_project! {
    /// Response future of [`Guard`].
    pub(crate) struct GuardFuture<F> {
        #[pin]
        inner: Option<F>,
        panicked: Option<Response>,
    }
}

impl<F> Future for GuardFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some(response) = this.panicked.take() {
            return Poll::Ready(Ok(response));
        }
        let Some(inner) = this.inner.as_mut().as_pin_mut() else {
            return Poll::Ready(Ok(raised_default(StatusCode::INTERNAL_SERVER_ERROR)));
        };
        let polled = catch_unwind(AssertUnwindSafe(|| inner.poll(cx)));
        let response = match polled {
            Ok(poll) => {
                let Ok(response) = ready!(poll);
                // axum's own 405 (empty, `Allow` added above us) is a raised error too.
                crate::regex_route::mark_method_not_allowed(response)
            }
            Err(panic) => on_panic(&*panic),
        };
        this.inner.set(None);
        Poll::Ready(Ok(response))
    }
}
