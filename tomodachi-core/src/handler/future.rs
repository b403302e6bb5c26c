use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use crate::{BoxError, IntoOutcome, Outcome, Rejection};

/// Why a handler call produced no outcome of its own.
#[derive(Debug)]
pub enum Failure {
    /// An extractor rejected the message; the handler was not called.
    Rejected(Rejection),
    /// The handler returned an error.
    Error(BoxError),
}

pin_project! {
    /// The future of [`Handler::call`](super::Handler::call).
    #[derive(Debug)]
    pub struct CallFuture<Fut> {
        #[pin]
        kind: CallKind<Fut>,
    }
}

pin_project! {
    #[project = CallProj]
    #[derive(Debug)]
    enum CallKind<Fut> {
        Rejected { rejection: Option<Rejection> },
        Running { #[pin] future: Fut },
    }
}

impl<Fut> CallFuture<Fut> {
    pub(crate) fn rejected(rejection: Rejection) -> Self {
        Self {
            kind: CallKind::Rejected {
                rejection: Some(rejection),
            },
        }
    }

    pub(crate) fn running(future: Fut) -> Self {
        Self {
            kind: CallKind::Running { future },
        }
    }
}

impl<Fut> Future for CallFuture<Fut>
where
    Fut: Future,
    Fut::Output: IntoOutcome,
{
    type Output = Result<Outcome, Failure>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            CallProj::Rejected { rejection } => {
                Poll::Ready(Err(Failure::Rejected(rejection.take().unwrap_or_else(
                    || Rejection::new(Outcome::retry(), "polled after completion"),
                ))))
            }
            CallProj::Running { future } => Poll::Ready(
                ready!(future.poll(cx))
                    .into_outcome()
                    .map_err(Failure::Error),
            ),
        }
    }
}

pin_project! {
    /// The response future of [`HandlerService`](super::HandlerService): the handler's
    /// outcome, or its error for the [driver](crate::driver) to classify. An extractor's
    /// [`Rejection`] is its own outcome, logged here.
    pub struct HandlerFuture<F> {
        #[pin]
        future: F,
        name: &'static str,
    }
}

impl<F> std::fmt::Debug for HandlerFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandlerFuture")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<F> HandlerFuture<F> {
    pub(crate) fn new(future: F, name: &'static str) -> Self {
        Self { future, name }
    }
}

impl<F> Future for HandlerFuture<F>
where
    F: Future<Output = Result<Outcome, Failure>>,
{
    type Output = Result<Outcome, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        Poll::Ready(match ready!(this.future.poll(cx)) {
            Ok(outcome) => Ok(outcome),
            Err(Failure::Error(error)) => Err(error),
            Err(Failure::Rejected(rejection)) => {
                let outcome = rejection.outcome();
                tracing::warn!(
                    target: "tomodachi.handler",
                    handler = *this.name,
                    outcome = outcome.as_str(),
                    reason = rejection.reason(),
                    "message rejected before the handler was called"
                );
                Ok(outcome)
            }
        })
    }
}
