use std::fmt;
use std::marker::PhantomData;
use std::task::{Context, Poll};

use tower_service::Service;

use super::{Handler, HandlerFuture};
use crate::{BoxError, Message, Outcome};

/// A [`Handler`] with its state, as a `tower::Service<Message>`.
///
/// It is always ready. An extractor's rejection is an [`Outcome`] (logged with the
/// handler's name); the handler's `Err` is the service's error, and a panic unwinds: the
/// [driver](crate::driver) of the source classifies both, once, with the source's
/// [`Classify`](crate::Classify).
pub struct HandlerService<H, T, S> {
    handler: H,
    state: S,
    name: &'static str,
    _marker: PhantomData<fn() -> T>,
}

impl<H: Handler<T, S>, T, S> HandlerService<H, T, S> {
    pub(crate) fn new(handler: H, state: S) -> Self {
        Self {
            handler,
            state,
            name: H::name(),
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
pub(crate) fn short_name(full: &'static str) -> &'static str {
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

impl<H: Clone, T, S: Clone> Clone for HandlerService<H, T, S> {
    fn clone(&self) -> Self {
        Self {
            handler: self.handler.clone(),
            state: self.state.clone(),
            name: self.name,
            _marker: PhantomData,
        }
    }
}

impl<H, T, S> fmt::Debug for HandlerService<H, T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerService")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<H, T, S> Service<Message> for HandlerService<H, T, S>
where
    H: Handler<T, S>,
    S: Clone + Send + Sync + 'static,
{
    type Response = Outcome;
    type Error = BoxError;
    type Future = HandlerFuture<H::Future>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, message: Message) -> Self::Future {
        let future = self.handler.clone().call(message, self.state.clone());
        HandlerFuture::new(future, self.name)
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
