//! A handler time limit whose expiry is a retry, not an error.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::{Message, Outcome};

/// Gives each message `timeout` to be handled; past it the handler is cancelled and the
/// message is retried (logged on `tomodachi.handler`).
///
/// Unlike `tower::timeout::TimeoutLayer`, expiry is an [`Outcome`], not an error, so it
/// composes with sources without an error-handling layer.
///
/// ```
/// use std::time::Duration;
/// use tomodachi_core::HandlerTimeoutLayer;
///
/// let layer = HandlerTimeoutLayer::new(Duration::from_secs(30));
/// # let _ = layer;
/// ```
#[derive(Debug, Clone, Copy)]
pub struct HandlerTimeoutLayer {
    timeout: Duration,
}

impl HandlerTimeoutLayer {
    /// Limits handling to `timeout`.
    pub const fn new(timeout: Duration) -> Self {
        Self { timeout }
    }
}

impl<S> Layer<S> for HandlerTimeoutLayer {
    type Service = HandlerTimeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HandlerTimeout {
            inner,
            timeout: self.timeout,
        }
    }
}

/// The service of [`HandlerTimeoutLayer`].
#[derive(Debug, Clone)]
pub struct HandlerTimeout<S> {
    inner: S,
    timeout: Duration,
}

impl<S> HandlerTimeout<S> {
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

impl<S> Service<Message> for HandlerTimeout<S>
where
    S: Service<Message, Response = Outcome>,
{
    type Response = Outcome;
    type Error = S::Error;
    type Future = TimeoutFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, message: Message) -> Self::Future {
        TimeoutFuture {
            inner: tokio::time::timeout(self.timeout, self.inner.call(message)),
            timeout: self.timeout,
        }
    }
}

pin_project! {
    /// The response future of [`HandlerTimeout`].
    #[derive(Debug)]
    pub struct TimeoutFuture<F> {
        #[pin]
        inner: tokio::time::Timeout<F>,
        timeout: Duration,
    }
}

impl<F, E> Future for TimeoutFuture<F>
where
    F: Future<Output = Result<Outcome, E>>,
{
    type Output = Result<Outcome, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match ready!(this.inner.poll(cx)) {
            Ok(result) => Poll::Ready(result),
            Err(_elapsed) => {
                tracing::warn!(
                    target: "tomodachi.handler",
                    timeout = ?this.timeout,
                    "handler timed out: the message will be retried"
                );
                Poll::Ready(Ok(Outcome::retry()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[tokio::test(start_paused = true)]
    async fn slow_handlers_become_retries() {
        let slow = tower::service_fn(|_message: Message| async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok::<_, std::convert::Infallible>(Outcome::Ack)
        });
        let service = HandlerTimeoutLayer::new(Duration::from_secs(1)).layer(slow);
        assert_eq!(
            service.clone().oneshot(Message::new("")).await,
            Ok(Outcome::retry())
        );

        let generous =
            HandlerTimeoutLayer::new(Duration::from_secs(20)).layer(service.into_inner());
        assert_eq!(generous.oneshot(Message::new("")).await, Ok(Outcome::Ack));
    }
}
