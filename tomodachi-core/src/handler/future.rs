use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::{Classify, HandlerFailure};
use crate::panic::CatchUnwind;
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
    /// The response future of [`HandlerService`](super::HandlerService).
    pub struct HandlerFuture<F, C> {
        #[pin]
        kind: HandlerKind<F, C>,
    }
}

pin_project! {
    #[project = HandlerProj]
    enum HandlerKind<F, C> {
        Running {
            #[pin] future: CatchUnwind<AssertUnwindSafe<F>>,
            classifier: C,
            name: &'static str,
        },
        Ready { outcome: Outcome },
    }
}

impl<F, C> std::fmt::Debug for HandlerFuture<F, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandlerFuture").finish_non_exhaustive()
    }
}

impl<F, C> HandlerFuture<F, C> {
    pub(crate) fn running(
        future: CatchUnwind<AssertUnwindSafe<F>>,
        classifier: C,
        name: &'static str,
    ) -> Self {
        Self {
            kind: HandlerKind::Running {
                future,
                classifier,
                name,
            },
        }
    }

    pub(crate) fn ready(outcome: Outcome) -> Self {
        Self {
            kind: HandlerKind::Ready { outcome },
        }
    }
}

impl<F, C> Future for HandlerFuture<F, C>
where
    F: Future<Output = Result<Outcome, Failure>>,
    C: Classify,
{
    type Output = Result<Outcome, std::convert::Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            HandlerProj::Ready { outcome } => Poll::Ready(Ok(*outcome)),
            HandlerProj::Running {
                future,
                classifier,
                name,
            } => {
                let outcome = match ready!(future.poll(cx)) {
                    Ok(Ok(outcome)) => outcome,
                    Ok(Err(failure)) => settle_failure(failure, &*classifier, name),
                    Err(panic) => settle_panic(panic, &*classifier, name),
                };
                Poll::Ready(Ok(outcome))
            }
        }
    }
}

pub(crate) fn settle_failure<C: Classify>(failure: Failure, classifier: &C, name: &str) -> Outcome {
    match failure {
        Failure::Rejected(rejection) => {
            let outcome = rejection.outcome();
            tracing::warn!(
                target: "tomodachi.handler",
                handler = name,
                outcome = outcome.as_str(),
                reason = rejection.reason(),
                "message rejected before the handler was called"
            );
            outcome
        }
        Failure::Error(error) => {
            let outcome = classifier.classify(&HandlerFailure::Error(&*error));
            tracing::error!(
                target: "exception",
                handler = name,
                outcome = outcome.as_str(),
                "uncaught exception: {error}"
            );
            outcome
        }
    }
}

pub(crate) fn settle_panic<C: Classify>(
    panic: Box<dyn Any + Send>,
    classifier: &C,
    name: &str,
) -> Outcome {
    let message = crate::panic::message(&*panic);
    let outcome = classifier.classify(&HandlerFailure::Panic(message));
    tracing::error!(
        target: "exception",
        handler = name,
        outcome = outcome.as_str(),
        location = crate::panic::location(),
        "uncaught exception: panic: {message}"
    );
    outcome
}
