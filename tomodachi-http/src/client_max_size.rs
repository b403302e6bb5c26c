//! `client_max_size`: 413 before the handler runs.

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::response::Response;
use futures_util::future::Either;
use http::Extensions;
use http::StatusCode;
use http::header::CONTENT_LENGTH;
use http_body::Body as _;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::response::{Raised, raised, unhandled};

/// Refuses request bodies larger than a limit with tomodachi's 413 "Maximum request body
/// size N exceeded." before the handler is called.
///
/// A request with a body whose `Content-Length` is over the limit never reaches the inner
/// service (a request without a body, `Content-Length: 0` or none on a GET, passes as it is).
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

impl<S> Layer<S> for ClientMaxSizeLayer {
    type Service = ClientMaxSize<S>;

    fn layer(&self, inner: S) -> Self::Service {
        let as_usize = usize::try_from(self.limit).unwrap_or(usize::MAX);
        ClientMaxSize {
            inner,
            limit: self.limit,
            body_limit: Arc::new(body_limit_extensions(DefaultBodyLimit::max(as_usize))),
        }
    }
}

/// What axum's `limit` layer adds to a request (its body limit, read by the body
/// extractors), taken once: the layer inserts it as it calls its inner service.
fn body_limit_extensions(limit: DefaultBodyLimit) -> Extensions {
    /// Keeps the extensions of the request it is called with.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Extensions>>);

    impl Service<Request> for Capture {
        type Response = ();
        type Error = Infallible;
        type Future = Ready<Result<(), Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: Request) -> Self::Future {
            *self.0.lock().unwrap_or_else(PoisonError::into_inner) = req.into_parts().0.extensions;
            ready(Ok(()))
        }
    }

    let capture = Capture::default();
    // The extension is inserted by `call` itself; the future has nothing left to do.
    drop(
        limit
            .layer(capture.clone())
            .call(Request::new(Body::empty())),
    );
    std::mem::take(&mut *capture.0.lock().unwrap_or_else(PoisonError::into_inner))
}

/// The service of [`ClientMaxSizeLayer`].
#[derive(Debug, Clone)]
pub struct ClientMaxSize<S> {
    inner: S,
    limit: u64,
    /// axum's body limit, given to each request with a body (shared: the service is
    /// cloned for every request).
    body_limit: Arc<Extensions>,
}

impl<S> ClientMaxSize<S> {
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

impl<S> Service<Request> for ClientMaxSize<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, ClientMaxSizeFuture<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        // A request without a body has nothing to limit (and a GET needs no extension).
        if !req.body().is_end_stream() {
            let declared = req
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse::<u64>().ok());
            if declared.is_some_and(|length| length > self.limit) {
                return Either::Left(ready(Ok(too_large(self.limit))));
            }
            req.extensions_mut()
                .extend(Extensions::clone(&self.body_limit));
        }
        Either::Right(ClientMaxSizeFuture {
            inner: self.inner.call(req),
            limit: self.limit,
        })
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
    unhandled(raised(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("Maximum request body size {limit} exceeded."),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use axum::Router;
    use axum::body::Bytes;
    use axum::routing::{get, post};
    use tower::{ServiceBuilder, ServiceExt as _};

    use super::*;

    fn app(limit: u64) -> Router {
        Router::new()
            .route("/", get(|| async { "ok" }))
            .route(
                "/upload",
                post(|body: Bytes| async move { body.len().to_string() }),
            )
            .layer(ClientMaxSizeLayer::new(limit))
    }

    async fn send(app: Router, req: Request) -> (StatusCode, String) {
        let response = app.oneshot(req).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn the_limit_replaces_axums_default_for_bodies_and_bodyless_requests_pass() {
        // 2.5 MB is over axum's default limit (2 MB) and under ours (3 MB).
        let big = vec![b'x'; 2_500_000];
        let upload = |body: Vec<u8>| {
            Request::post("/upload")
                .header(CONTENT_LENGTH, body.len())
                .body(Body::from(body))
                .unwrap()
        };
        assert_eq!(
            send(app(3_000_000), upload(big.clone())).await,
            (StatusCode::OK, "2500000".to_owned())
        );
        // A body without a length is cut off while it is read, with tomodachi's message.
        let stream = futures_util::stream::iter([Ok::<_, Infallible>(Bytes::from(big))]);
        let chunked = Request::post("/upload")
            .body(Body::from_stream(stream))
            .unwrap();
        assert_eq!(
            send(app(1024), chunked).await,
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                "Maximum request body size 1024 exceeded.".to_owned()
            )
        );
        let get = Request::get("/").body(Body::empty()).unwrap();
        assert_eq!(
            send(app(1024), get).await,
            (StatusCode::OK, "ok".to_owned())
        );
    }

    #[tokio::test]
    async fn one_inner_service_is_made_ready_per_call() {
        // An inner service with one permit: a layer that readied two copies of it would
        // never become ready.
        let service = ServiceBuilder::new()
            .layer(ClientMaxSizeLayer::new(1024))
            .concurrency_limit(1)
            .service(app(1024));
        for _ in 0..2 {
            let req = Request::get("/").body(Body::empty()).unwrap();
            let response =
                tokio::time::timeout(Duration::from_secs(5), service.clone().oneshot(req))
                    .await
                    .expect("ready within 5 s")
                    .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
    }
}
