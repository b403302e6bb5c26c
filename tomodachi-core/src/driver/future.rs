//! One service call, its errors and panics classified into an [`Outcome`].

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::{Completed, Completion, Shared};
use crate::panic::{self, CatchUnwind};
use crate::{BoxError, HandlerFailure, Outcome};

pin_project! {
    /// The outcome of one message: the service's answer, or its error or panic classified
    /// and logged (see [`Driver`](super::Driver)).
    pub struct OutcomeFuture<F> {
        #[pin]
        kind: Kind<F>,
        shared: Arc<Shared>,
        completion: Option<Completion>,
    }

    impl<F> PinnedDrop for OutcomeFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            // Completes before the service's future is dropped: no-op once completed.
            if let Some(completion) = this.project().completion.take() {
                completion.complete(Completed::Dropped);
            }
        }
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Running { #[pin] future: CatchUnwind<AssertUnwindSafe<F>> },
        Panicked { panic: Option<Box<dyn Any + Send>> },
    }
}

impl<F> std::fmt::Debug for OutcomeFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutcomeFuture").finish_non_exhaustive()
    }
}

impl<F: Future> OutcomeFuture<F> {
    /// Calls `call` (which starts the service call) and catches a panic of it or of the
    /// future it returns.
    /// `completion` (if telemetry put one in the message) hears the outcome.
    pub(super) fn new(
        call: impl FnOnce() -> F,
        shared: Arc<Shared>,
        completion: Option<Completion>,
    ) -> Self {
        let kind = match panic::catch_unwind(AssertUnwindSafe(call)) {
            Ok(future) => Kind::Running {
                future: CatchUnwind::new(AssertUnwindSafe(future)),
            },
            Err(panic) => Kind::Panicked { panic: Some(panic) },
        };
        Self {
            kind,
            shared,
            completion,
        }
    }
}

impl<F, E> Future for OutcomeFuture<F>
where
    F: Future<Output = Result<Outcome, E>>,
    E: Into<BoxError>,
{
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let this = self.project();
        let panic = match this.kind.project() {
            KindProj::Running { future } => match ready!(future.poll(cx)) {
                Ok(Ok(outcome)) => return Poll::Ready(complete(this.completion, outcome, None)),
                Ok(Err(error)) => {
                    let error: BoxError = error.into();
                    let outcome = this.shared.failed(HandlerFailure::Error(&*error));
                    let failure = this.completion.as_ref().map(|_| error.to_string());
                    return Poll::Ready(complete(this.completion, outcome, failure));
                }
                Err(panic) => panic,
            },
            KindProj::Panicked { panic } => match panic.take() {
                Some(panic) => panic,
                None => return Poll::Ready(Outcome::retry()),
            },
        };
        let text = panic::message(&*panic);
        let outcome = this.shared.failed(HandlerFailure::Panic(text));
        let failure = this.completion.as_ref().map(|_| text.to_owned());
        Poll::Ready(complete(this.completion, outcome, failure))
    }
}

/// Tells the completion (if any) what became of the message.
fn complete(
    completion: &mut Option<Completion>,
    outcome: Outcome,
    failure: Option<String>,
) -> Outcome {
    if let Some(completion) = completion.take() {
        completion.complete(Completed::Outcome { outcome, failure });
    }
    outcome
}

impl Shared {
    /// Classifies a failure and writes its one record: Python tomodachi's
    /// `uncaught exception: …` on the `exception` logger.
    pub(super) fn failed(&self, failure: HandlerFailure<'_>) -> Outcome {
        let outcome = self.classifier.classify(&failure);
        match failure {
            HandlerFailure::Error(error) => tracing::error!(
                target: "exception",
                handler = &*self.handler,
                outcome = outcome.as_str(),
                "uncaught exception: {error}"
            ),
            HandlerFailure::Panic(text) => tracing::error!(
                target: "exception",
                handler = &*self.handler,
                outcome = outcome.as_str(),
                exc_type = "panic",
                exc_message = text,
                location = panic::location(),
                "uncaught exception: {text}"
            ),
        }
        outcome
    }
}
