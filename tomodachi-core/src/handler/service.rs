use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::task::{Context, Poll};

use tower_service::Service;

use super::future::settle_panic;
use super::{Classify, Handler, HandlerFuture, RetryOnFailure};
use crate::panic::CatchUnwind;
use crate::{Message, Outcome};

/// A [`Handler`] with its state, as a `tower::Service<Message>`.
///
/// It is always ready and never fails: an extractor rejection, a handler `Err` and a
/// panic all become an [`Outcome`], logged with the handler's name (errors and panics on
/// the `exception` logger as `uncaught exception: …`). Replace the classifier with
/// [`HandlerService::classifier`].
pub struct HandlerService<H, T, S, C = RetryOnFailure> {
    handler: H,
    state: S,
    classifier: C,
    name: &'static str,
    _marker: PhantomData<fn() -> T>,
}

impl<H, T, S> HandlerService<H, T, S> {
    pub(crate) fn new(handler: H, state: S) -> Self {
        Self {
            handler,
            state,
            classifier: RetryOnFailure,
            name: short_name(std::any::type_name::<H>()),
            _marker: PhantomData,
        }
    }
}

impl<H, T, S, C> HandlerService<H, T, S, C> {
    /// Uses `classifier` to decide the outcome of failed calls.
    pub fn classifier<C2>(self, classifier: C2) -> HandlerService<H, T, S, C2> {
        HandlerService {
            handler: self.handler,
            state: self.state,
            classifier,
            name: self.name,
            _marker: PhantomData,
        }
    }

    /// Names the handler in log records (default: the function's name).
    #[must_use]
    pub fn named(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// The handler's name in log records.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The state.
    pub fn state(&self) -> &S {
        &self.state
    }
}

/// `path::to::handler` → `handler`; closures keep their parent: `parent::{{closure}}`.
fn short_name(full: &'static str) -> &'static str {
    let path = full.split('<').next().unwrap_or(full);
    let mut segments = path.rsplit("::");
    let last = segments.next().unwrap_or(path);
    if last.starts_with('{') {
        let parent_len = segments.next().map_or(0, |parent| parent.len() + 2);
        &path[path.len() - last.len() - parent_len..]
    } else {
        last
    }
}

impl<H: Clone, T, S: Clone, C: Clone> Clone for HandlerService<H, T, S, C> {
    fn clone(&self) -> Self {
        Self {
            handler: self.handler.clone(),
            state: self.state.clone(),
            classifier: self.classifier.clone(),
            name: self.name,
            _marker: PhantomData,
        }
    }
}

impl<H, T, S, C> fmt::Debug for HandlerService<H, T, S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerService")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<H, T, S, C> Service<Message> for HandlerService<H, T, S, C>
where
    H: Handler<T, S>,
    S: Clone + Send + Sync + 'static,
    C: Classify,
{
    type Response = Outcome;
    type Error = Infallible;
    type Future = HandlerFuture<H::Future, C>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, message: Message) -> Self::Future {
        let handler = self.handler.clone();
        let state = self.state.clone();
        match crate::panic::catch_unwind(AssertUnwindSafe(move || handler.call(message, state))) {
            Ok(future) => HandlerFuture::running(
                CatchUnwind::new(AssertUnwindSafe(future)),
                self.classifier.clone(),
                self.name,
            ),
            Err(panic) => HandlerFuture::ready(settle_panic(panic, &self.classifier, self.name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::short_name;

    #[test]
    fn short_names() {
        assert_eq!(short_name("my_crate::handlers::on_order"), "on_order");
        assert_eq!(
            short_name("my_crate::main::{{closure}}"),
            "main::{{closure}}"
        );
        assert_eq!(short_name("plain"), "plain");
    }
}
