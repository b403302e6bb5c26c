use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::Envelope;
use crate::{Message, Outcome};

/// Opens every message with an [`Envelope`] before the inner service sees it.
///
/// A message that does not open is not passed on: its outcome is `on_error`
/// ([`Outcome::Reject`] by default: it can never be handled, so it goes to the dead-letter
/// queue where there is one), with Python tomodachi's record: `uncaught exception: …` on
/// the `exception` logger (ERROR), with the `outcome` and the body's first 1000 characters
/// (`message_body`). Every transport opens envelopes only here, so the record and the
/// outcome are the same on all of them, with or without a tracing layer around it.
///
/// ```
/// use tomodachi_core::{EnvelopeLayer, JsonEnvelope, Outcome};
/// use tower_layer::Layer;
///
/// let layer = EnvelopeLayer::new(JsonEnvelope).on_error(Outcome::Ack);
/// # let _ = layer;
/// ```
#[derive(Debug, Clone)]
pub struct EnvelopeLayer<E> {
    envelope: E,
    on_error: Outcome,
}

impl<E> EnvelopeLayer<E> {
    /// Opens messages with `envelope`.
    pub const fn new(envelope: E) -> Self {
        Self {
            envelope,
            on_error: Outcome::Reject,
        }
    }

    /// The outcome of a message that does not open.
    #[must_use]
    pub const fn on_error(mut self, outcome: Outcome) -> Self {
        self.on_error = outcome;
        self
    }
}

impl<E: Clone, S> Layer<S> for EnvelopeLayer<E> {
    type Service = EnvelopeService<E, S>;

    fn layer(&self, inner: S) -> Self::Service {
        EnvelopeService {
            inner,
            envelope: self.envelope.clone(),
            on_error: self.on_error,
        }
    }
}

/// The service of [`EnvelopeLayer`].
#[derive(Debug, Clone)]
pub struct EnvelopeService<E, S> {
    inner: S,
    envelope: E,
    on_error: Outcome,
}

impl<E, S> EnvelopeService<E, S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutable.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<E, S> Service<Message> for EnvelopeService<E, S>
where
    E: Envelope,
    S: Service<Message, Response = Outcome>,
{
    type Response = Outcome;
    type Error = S::Error;
    type Future = EnvelopeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut message: Message) -> Self::Future {
        match self.envelope.open(&mut message) {
            Ok(()) => EnvelopeFuture {
                kind: Kind::Inner {
                    future: self.inner.call(message),
                },
            },
            Err(error) => {
                let body = String::from_utf8_lossy(message.body());
                let message_body: String = body.chars().take(1000).collect();
                tracing::error!(
                    target: "exception",
                    outcome = self.on_error.as_str(),
                    message_body,
                    "uncaught exception: {error}"
                );
                EnvelopeFuture {
                    kind: Kind::Ready {
                        outcome: self.on_error,
                    },
                }
            }
        }
    }
}

pin_project! {
    /// The response future of [`EnvelopeService`].
    #[derive(Debug)]
    pub struct EnvelopeFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = EnvelopeProj]
    #[derive(Debug)]
    enum Kind<F> {
        Inner { #[pin] future: F },
        Ready { outcome: Outcome },
    }
}

impl<F, Error> Future for EnvelopeFuture<F>
where
    F: Future<Output = Result<Outcome, Error>>,
{
    type Output = Result<Outcome, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            EnvelopeProj::Inner { future } => future.poll(cx),
            EnvelopeProj::Ready { outcome } => Poll::Ready(Ok(*outcome)),
        }
    }
}
