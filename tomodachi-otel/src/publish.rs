//! [`PublishTraceLayer`]: a PRODUCER span around each publish, and `traceparent` sent along.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, ready};

use opentelemetry::trace::{SpanBuilder, SpanKind, Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use pin_project_lite::pin_project;
use tomodachi_core::telemetry::{Publish, PublishRequest, RABBITMQ};
use tower_layer::Layer;
use tower_service::Service;

use crate::Telemetry;

/// Traces publishes: wraps a publisher service (any `tower::Service` whose request is a
/// [`PublishRequest`]: `tomodachi_sqs`'s SNS publish and SQS send, `tomodachi_amqp`'s
/// publish) and, for each request, opens a PRODUCER span `"{destination} publish"` (child
/// of the current context: the HTTP request or message being handled), injects its
/// `traceparent`/`tracestate` into the request (message attributes or headers) and ends
/// the span when the publish does, with an error status if it failed.
///
/// Put it outside a retry layer for one span per publish, inside for one per try.
///
/// ```
/// use std::convert::Infallible;
///
/// use opentelemetry_sdk::metrics::SdkMeterProvider;
/// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
/// use tomodachi_core::telemetry::{self, Publish, PublishRequest};
/// use tomodachi_otel::Telemetry;
/// use tower::{Layer, ServiceExt, service_fn};
///
/// struct Send { queue: String, traceparent: Option<String> }
///
/// impl PublishRequest for Send {
///     fn publish(&self) -> Publish<'_> {
///         Publish::new(telemetry::AWS_SQS, &self.queue)
///     }
///     fn inject(&mut self, key: &str, value: &str) {
///         if key == "traceparent" {
///             self.traceparent = Some(value.to_owned());
///         }
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let spans = InMemorySpanExporter::default();
/// let provider = SdkTracerProvider::builder().with_simple_exporter(spans.clone()).build();
/// let telemetry = Telemetry::new(&provider, &SdkMeterProvider::default());
///
/// let sender = service_fn(|send: Send| async move { Ok::<_, Infallible>(send.traceparent) });
/// let request = Send { queue: "orders".into(), traceparent: None };
/// let sent = telemetry.publish_layer().layer(sender).oneshot(request).await.unwrap();
///
/// assert_eq!(sent.map(|value| value.len()), Some(55));
/// assert_eq!(spans.get_finished_spans().unwrap()[0].name, "orders publish");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct PublishTraceLayer {
    telemetry: Telemetry,
}

impl PublishTraceLayer {
    /// The layer recording to `telemetry`.
    pub fn new(telemetry: Telemetry) -> Self {
        Self { telemetry }
    }
}

impl<S> Layer<S> for PublishTraceLayer {
    type Service = PublishTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PublishTrace {
            inner,
            telemetry: self.telemetry.clone(),
        }
    }
}

/// The service of [`PublishTraceLayer`].
#[derive(Debug, Clone)]
pub struct PublishTrace<S> {
    inner: S,
    telemetry: Telemetry,
}

impl<S> PublishTrace<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutable.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// tomodachi's PRODUCER span of a publish.
fn span_of(publish: &Publish<'_>) -> SpanBuilder {
    let mut attributes = vec![
        KeyValue::new("messaging.system", publish.system),
        KeyValue::new("messaging.operation", "publish"),
    ];
    if publish.system == RABBITMQ {
        attributes.push(KeyValue::new(
            "messaging.destination.name",
            publish.exchange.unwrap_or_default().to_owned(),
        ));
        attributes.push(KeyValue::new(
            "messaging.rabbitmq.destination.routing_key",
            publish.destination.to_owned(),
        ));
    } else {
        attributes.push(KeyValue::new(
            "messaging.destination.name",
            publish.destination.to_owned(),
        ));
    }
    if let Some(id) = publish.message_id {
        attributes.push(KeyValue::new("messaging.message.id", id.to_owned()));
    }
    SpanBuilder::from_name(format!("{} publish", publish.destination))
        .with_kind(SpanKind::Producer)
        .with_attributes(attributes)
}

impl<S, R> Service<R> for PublishTrace<S>
where
    S: Service<R>,
    S::Error: fmt::Display,
    R: PublishRequest,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = PublishTraceFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: R) -> Self::Future {
        let span = self
            .telemetry
            .start_span(span_of(&request.publish()), &Context::current());
        self.telemetry
            .inject_context(&span, &mut |key, value| request.inject(key, value));
        PublishTraceFuture {
            inner: self.inner.call(request),
            span: Some(span),
        }
    }
}

pin_project! {
    /// The response future of [`PublishTrace`]: ends the span when the publish ends.
    pub struct PublishTraceFuture<F> {
        #[pin]
        inner: F,
        span: Option<Context>,
    }
}

impl<F> fmt::Debug for PublishTraceFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublishTraceFuture").finish_non_exhaustive()
    }
}

impl<F, T, E> Future for PublishTraceFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: fmt::Display,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        if let Some(span) = this.span.take() {
            let span = span.span();
            if let Err(error) = &result {
                span.set_status(Status::error(error.to_string()));
            }
            span.end();
        }
        Poll::Ready(result)
    }
}
