//! Keeps a message invisible while its handler runs longer than the visibility timeout.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Interval, MissedTickBehavior};
use tomodachi_core::Message;
use tower_layer::Layer;
use tower_service::Service;

use crate::SqsContext;
use crate::error::aws;

/// Extends the visibility of every SQS message while its handler runs: every `interval`
/// (default half the timeout) it sets the message's visibility timeout to `timeout` again,
/// so a handler that outlives the queue's visibility timeout is not redelivered meanwhile.
///
/// Messages without an [`SqsContext`] pass through untouched.
///
/// ```no_run
/// # fn demo(clients: tomodachi_sqs::AwsClients) {
/// use std::time::Duration;
/// use tomodachi_sqs::VisibilityHeartbeatLayer;
///
/// let layer = VisibilityHeartbeatLayer::new(clients.sqs().clone(), Duration::from_secs(30));
/// # let _ = layer;
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct VisibilityHeartbeatLayer {
    sqs: aws_sdk_sqs::Client,
    timeout: Duration,
    interval: Duration,
}

impl VisibilityHeartbeatLayer {
    /// Extends to `timeout` every `timeout / 2`.
    pub fn new(sqs: aws_sdk_sqs::Client, timeout: Duration) -> Self {
        let timeout = timeout.max(Duration::from_secs(1));
        Self {
            sqs,
            timeout,
            interval: timeout / 2,
        }
    }

    /// Extends every `interval` instead.
    #[must_use]
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(100));
        self
    }
}

impl<S> Layer<S> for VisibilityHeartbeatLayer {
    type Service = VisibilityHeartbeat<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VisibilityHeartbeat {
            inner,
            config: Arc::new(self.clone()),
        }
    }
}

/// The service of [`VisibilityHeartbeatLayer`].
#[derive(Debug, Clone)]
pub struct VisibilityHeartbeat<S> {
    inner: S,
    config: Arc<VisibilityHeartbeatLayer>,
}

impl<S> VisibilityHeartbeat<S> {
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

impl<S> Service<Message> for VisibilityHeartbeat<S>
where
    S: Service<Message>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = HeartbeatFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, message: Message) -> Self::Future {
        let beat = message.context::<SqsContext>().map(|context| {
            let start = tokio::time::Instant::now() + self.config.interval;
            let mut ticks = tokio::time::interval_at(start, self.config.interval);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            Beat {
                ticks,
                queue_url: context.queue_url.clone(),
                receipt_handle: context.receipt_handle.clone(),
                config: self.config.clone(),
            }
        });
        HeartbeatFuture {
            inner: self.inner.call(message),
            beat,
        }
    }
}

#[derive(Debug)]
struct Beat {
    ticks: Interval,
    queue_url: Arc<str>,
    receipt_handle: String,
    config: Arc<VisibilityHeartbeatLayer>,
}

pin_project! {
    /// The future of [`VisibilityHeartbeat`].
    #[derive(Debug)]
    pub struct HeartbeatFuture<F> {
        #[pin]
        inner: F,
        beat: Option<Beat>,
    }
}

impl<F: Future> Future for HeartbeatFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.inner.poll(cx) {
            return Poll::Ready(output);
        }
        if let Some(beat) = this.beat.as_mut() {
            while beat.ticks.poll_tick(cx).is_ready() {
                let request = beat
                    .config
                    .sqs
                    .change_message_visibility()
                    .queue_url(&*beat.queue_url)
                    .receipt_handle(&beat.receipt_handle)
                    .visibility_timeout(beat.config.timeout.as_secs().min(43_200) as i32);
                tokio::spawn(async move {
                    if let Err(error) = request.send().await {
                        let error = aws("ChangeMessageVisibility", error);
                        tracing::warn!(target: "tomodachi.awssnssqs", "Unable to extend message visibility [sqs] on AWS ({})", error.short());
                    }
                });
            }
        }
        Poll::Pending
    }
}
