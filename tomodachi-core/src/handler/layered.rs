//! [`Handler::layer`](super::Handler::layer): a handler wrapped in a tower layer.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::{Failure, Handler, HandlerService};
use crate::{BoxError, Message, Outcome};

/// A [`Handler`] with a layer around it; see [`Handler::layer`].
pub struct Layered<L, H, T, S> {
    layer: L,
    handler: H,
    _marker: PhantomData<fn() -> (T, S)>,
}

impl<L, H, T, S> Layered<L, H, T, S> {
    pub(super) fn new(layer: L, handler: H) -> Self {
        Self {
            layer,
            handler,
            _marker: PhantomData,
        }
    }
}

impl<L: Clone, H: Clone, T, S> Clone for Layered<L, H, T, S> {
    fn clone(&self) -> Self {
        Self::new(self.layer.clone(), self.handler.clone())
    }
}

impl<L, H, T, S> fmt::Debug for Layered<L, H, T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Layered").finish_non_exhaustive()
    }
}

impl<L, H, T, S> Handler<T, S> for Layered<L, H, T, S>
where
    L: Layer<HandlerService<H, T, S>> + Clone + Send + Sync + 'static,
    L::Service: Service<Message, Response = Outcome> + Send + 'static,
    <L::Service as Service<Message>>::Error: Into<BoxError>,
    <L::Service as Service<Message>>::Future: Send,
    H: Handler<T, S>,
    T: 'static,
    S: Clone + Send + Sync + 'static,
{
    type Future = LayeredFuture<L::Service>;

    fn call(self, message: Message, state: S) -> Self::Future {
        let service = self.layer.layer(self.handler.with_state(state));
        LayeredFuture {
            state: State::Ready {
                service: Some(service),
                message: Some(message),
            },
        }
    }

    fn name() -> &'static str {
        H::name()
    }
}

pin_project! {
    /// The future of a [`Layered`] handler: the layered service, readied, then called once.
    pub struct LayeredFuture<Svc: Service<Message>> {
        #[pin]
        state: State<Svc>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<Svc: Service<Message>> {
        Ready { service: Option<Svc>, message: Option<Message> },
        Called { #[pin] future: Svc::Future },
    }
}

impl<Svc: Service<Message>> fmt::Debug for LayeredFuture<Svc> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayeredFuture").finish_non_exhaustive()
    }
}

impl<Svc> Future for LayeredFuture<Svc>
where
    Svc: Service<Message, Response = Outcome>,
    Svc::Error: Into<BoxError>,
{
    type Output = Result<Outcome, Failure>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Ready { service, message } => {
                    let Some(inner) = service.as_mut() else {
                        return Poll::Ready(Err(Failure::Error("polled after completion".into())));
                    };
                    if let Err(error) = ready!(inner.poll_ready(cx)) {
                        return Poll::Ready(Err(Failure::Error(error.into())));
                    }
                    let message = message.take().unwrap_or_default();
                    let future = inner.call(message);
                    this.state.set(State::Called { future });
                }
                StateProj::Called { future } => {
                    return Poll::Ready(
                        ready!(future.poll(cx)).map_err(|e| Failure::Error(e.into())),
                    );
                }
            }
        }
    }
}
