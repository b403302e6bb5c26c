//! Per-status error handlers (tomodachi's `@http_error(status_code=N)`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::response::Response;
use axum::routing::MethodRouter;
use futures_util::future::BoxFuture;
use http::StatusCode;
use http::request::Parts;
use tomodachi_core::panic::CatchUnwind;
use tower::ServiceExt;
use tower_layer::Layer;
use tower_service::Service;

use crate::guard::on_panic;
use crate::response::{Raised, raised_default};

/// The status an error handler runs for (tomodachi's `status_code` keyword).
///
/// ```
/// use tomodachi_http::ErrorStatus;
///
/// async fn on_error(ErrorStatus(status): ErrorStatus) -> String {
///     format!("error {}", status.as_u16())
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorStatus(pub StatusCode);

impl<S: Send + Sync> FromRequestParts<S> for ErrorStatus {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<ErrorStatus>().copied().ok_or((
            StatusCode::INTERNAL_SERVER_ERROR,
            "ErrorStatus is only available to error handlers",
        ))
    }
}

pub(crate) type Handlers = Arc<HashMap<StatusCode, MethodRouter>>;

/// Runs the registered error handler when the inner service raised an error response.
#[derive(Debug, Clone)]
pub(crate) struct ErrorHandlerLayer {
    handlers: Handlers,
}

impl ErrorHandlerLayer {
    pub(crate) fn new(handlers: Handlers) -> Self {
        Self { handlers }
    }
}

impl<S> Layer<S> for ErrorHandlerLayer {
    type Service = ErrorHandlerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ErrorHandlerService {
            inner,
            handlers: self.handlers.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ErrorHandlerService<S> {
    inner: S,
    handlers: Handlers,
}

impl<S> Service<Request> for ErrorHandlerService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let copy = copy_parts(&req);
        let handlers = self.handlers.clone();
        let future = self.inner.call(req);
        Box::pin(async move {
            let Ok(response) = future.await;
            if response.extensions().get::<Raised>().is_none() {
                return Ok(response);
            }
            let status = response.status();
            let Some(handler) = handlers.get(&status) else {
                return Ok(response);
            };
            let extensions = response.extensions().clone();
            let allow = response.headers().get(http::header::ALLOW).cloned();
            let mut replaced = match run(handler, &copy, status).await {
                Some(replaced) => replaced,
                None => match handlers.get(&StatusCode::INTERNAL_SERVER_ERROR) {
                    Some(fallback) if status != StatusCode::INTERNAL_SERVER_ERROR => {
                        match run(fallback, &copy, StatusCode::INTERNAL_SERVER_ERROR).await {
                            Some(replaced) => replaced,
                            None => raised_default(StatusCode::INTERNAL_SERVER_ERROR),
                        }
                    }
                    _ => raised_default(StatusCode::INTERNAL_SERVER_ERROR),
                },
            };
            // A 405 keeps telling the client which methods the path takes.
            if let Some(allow) = allow
                && replaced.status() == StatusCode::METHOD_NOT_ALLOWED
            {
                replaced
                    .headers_mut()
                    .entry(http::header::ALLOW)
                    .or_insert(allow);
            }
            // Keep what layers below attached (ignore_logging, timings) unless replaced.
            let mut merged = extensions;
            merged.extend(std::mem::take(replaced.extensions_mut()));
            merged.remove::<Raised>();
            *replaced.extensions_mut() = merged;
            Ok(replaced)
        })
    }
}

/// Runs `handler` for `status`; `None` when it panicked (logged).
async fn run(handler: &MethodRouter, copy: &Parts, status: StatusCode) -> Option<Response> {
    let mut parts = copy.clone();
    parts.extensions.insert(ErrorStatus(status));
    let request = Request::from_parts(parts, Body::empty());
    let handler = handler.clone();
    let outcome = CatchUnwind::new(AssertUnwindSafe(
        async move { handler.oneshot(request).await },
    ))
    .await;
    match outcome {
        Ok(Ok(mut response)) => {
            if response.status() == StatusCode::OK {
                *response.status_mut() = status;
            }
            Some(response)
        }
        Err(panic) => {
            on_panic(&*panic);
            None
        }
    }
}

fn copy_parts(req: &Request) -> Parts {
    let mut copy = Request::new(());
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    *copy.extensions_mut() = req.extensions().clone();
    copy.into_parts().0
}
