//! The contract of every transport: a source of work that drives a service.

use std::future::Future;

use crate::Shutdown;

/// A transport that takes work from the outside world and drives a service with it.
///
/// Running a source has two phases, so a service can fail its startup cleanly:
///
/// 1. [`start`](Source::start) sets the transport up (connects, declares queues, binds a
///    port). An error here aborts the service's startup (exit code 1).
/// 2. The returned [`Running`](Source::Running) future does the work until `shutdown` is
///    triggered, then stops taking new work, lets what is in flight finish (within the
///    transport's grace) and resolves.
///
/// Message sources await the service's readiness (`poll_ready`) before they take the next
/// unit of work, so `tower::limit::ConcurrencyLimitLayer` is prefetch control and
/// `tower::load_shed` works.
///
/// ```
/// use std::convert::Infallible;
/// use std::future::Ready;
/// use tomodachi_core::{Shutdown, Source};
///
/// /// A source that does nothing until shutdown.
/// struct Idle;
///
/// impl<S: Send + 'static> Source<S> for Idle {
///     type Error = Infallible;
///     type Running = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Infallible>> + Send>>;
///
///     async fn start(self, _service: S, shutdown: Shutdown) -> Result<Self::Running, Infallible> {
///         Ok(Box::pin(async move {
///             shutdown.triggered().await;
///             Ok(())
///         }))
///     }
/// }
/// ```
pub trait Source<S>: Send + Sized + 'static {
    /// Why the source failed.
    type Error: Into<crate::BoxError> + Send;

    /// The work after setup; resolves once drained.
    type Running: Future<Output = Result<(), Self::Error>> + Send + 'static;

    /// Sets the transport up and returns the work to run.
    fn start(
        self,
        service: S,
        shutdown: Shutdown,
    ) -> impl Future<Output = Result<Self::Running, Self::Error>> + Send;

    /// Starts and runs until shutdown and drain.
    fn serve(
        self,
        service: S,
        shutdown: Shutdown,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send
    where
        S: Send,
    {
        async move { self.start(service, shutdown).await?.await }
    }
}
