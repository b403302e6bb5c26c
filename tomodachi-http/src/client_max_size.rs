//! `client_max_size`: 413 before the handler runs.

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::extract::{DefaultBodyLimit, Request};
use axum::response::Response;
use futures_util::future::Either;
use http::StatusCode;
use http::header::CONTENT_LENGTH;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::response::{Raised, raised};

/// Refuses request bodies larger than a limit with tomodachi's 413 "Maximum request body
/// size N exceeded." before the handler is called.
///
/// A request whose `Content-Length` is over the limit never reaches the inner service.
/// A body without a length (chunked) is limited while it is read: axum's body extractors
/// (`Bytes`, `String`, `Json`, `Form`...) reject it with 413 before the handler body runs,
/// and this layer gives that rejection tomodachi's message. Either 413 goes through the
/// router's `http_error(413)` handler, if any.
#[derive(Debug, Clone, Copy)]
pub struct ClientMaxSizeLayer {
    limit: u64,
}

impl ClientMaxSizeLayer {
    /// Limits bodies to `limit` bytes.
    pub const fn new(limit: u64) -> Self {
        Self { limit }
    }
}

impl<S: Clone> Layer<S> for ClientMaxSizeLayer {
    type Service = ClientMaxSize<S>;

    fn layer(&self, inner: S) -> Self::Service {
        let as_usize = usize::try_from(self.limit).unwrap_or(usize::MAX);
        ClientMaxSize {
            limited: DefaultBodyLimit::max(as_usize).layer(inner.clone()),
            bodyless: inner,
            limit: self.limit,
        }
    }
}

/// The service of [`ClientMaxSizeLayer`].
#[derive(Debug, Clone)]
pub struct ClientMaxSize<S> {
    /// `inner` with axum's body limit set to `limit` (for requests with a body).
    limited: <DefaultBodyLimit as Layer<S>>::Service,
    /// `inner` as it is (a request without a body has nothing to limit: no extension).
    bodyless: S,
    limit: u64,
}

impl<S> ClientMaxSize<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.bodyless
    }
}

impl<S> Service<Request> for ClientMaxSize<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, ClientMaxSizeFuture<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        ready!(self.limited.poll_ready(cx))?;
        self.bodyless.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        use http_body::Body as _;
        if req.body().is_end_stream() {
            return Either::Right(ClientMaxSizeFuture {
                inner: self.bodyless.call(req),
                limit: self.limit,
            });
        }
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok());
        match declared {
            Some(length) if length > self.limit => Either::Left(ready(Ok(too_large(self.limit)))),
            _ => Either::Right(ClientMaxSizeFuture {
                inner: self.limited.call(req),
                limit: self.limit,
            }),
        }
    }
}

pin_project! {
    /// Response future of [`ClientMaxSize`]: an extractor's 413 gets tomodachi's message.
    pub struct ClientMaxSizeFuture<F> {
        #[pin]
        inner: F,
        limit: u64,
    }
}

impl<F> Future for ClientMaxSizeFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(response) = ready!(this.inner.poll(cx));
        if response.status() == StatusCode::PAYLOAD_TOO_LARGE
            && response.extensions().get::<Raised>().is_none()
        {
            return Poll::Ready(Ok(too_large(*this.limit)));
        }
        Poll::Ready(Ok(response))
    }
}

fn too_large(limit: u64) -> Response {
    raised(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("Maximum request body size {limit} exceeded."),
    )
}
