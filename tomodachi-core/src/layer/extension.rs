//! [`Extension`] as a layer: adds a value to every message's (or request's) extensions.

use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use crate::{Extension, Message};

/// `Extension(value)` is also a layer (as axum's): it inserts a clone of `value` into the
/// extensions of every message or HTTP request, so handlers take it with the
/// [`Extension`] extractor.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use tomodachi_core::{Extension, HandlerWithoutStateExt, Message, Outcome};
/// use tower::{Layer, ServiceExt};
///
/// #[derive(Clone)]
/// struct Pool(&'static str);
///
/// async fn handler(Extension(pool): Extension<Pool>) -> Outcome {
///     assert_eq!(pool.0, "db");
///     Outcome::Ack
/// }
///
/// let service = Extension(Pool("db")).layer(handler.into_service());
/// assert_eq!(service.oneshot(Message::new("")).await.unwrap(), Outcome::Ack);
/// # });
/// ```
impl<S, T: Clone> Layer<S> for Extension<T> {
    type Service = AddExtension<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        AddExtension {
            inner,
            value: self.0.clone(),
        }
    }
}

/// The service of the [`Extension`] layer.
#[derive(Debug, Clone)]
pub struct AddExtension<S, T> {
    inner: S,
    value: T,
}

impl<S, T> AddExtension<S, T> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutable.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, T> Service<Message> for AddExtension<S, T>
where
    S: Service<Message>,
    T: Clone + Send + Sync + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut message: Message) -> Self::Future {
        message.extensions_mut().insert(self.value.clone());
        self.inner.call(message)
    }
}

impl<S, T, B> Service<http::Request<B>> for AddExtension<S, T>
where
    S: Service<http::Request<B>>,
    T: Clone + Send + Sync + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        request.extensions_mut().insert(self.value.clone());
        self.inner.call(request)
    }
}
