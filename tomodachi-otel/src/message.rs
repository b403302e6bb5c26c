//! [`MessageTraceLayer`]: a span and metrics around each message handler.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, ready};
use std::time::Instant;

use opentelemetry::trace::{SpanBuilder, SpanKind, Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use pin_project_lite::pin_project;
use tomodachi_core::telemetry::{AWS_SQS, Delivery, RABBITMQ, SCHEDULE};
use tomodachi_core::{BoxError, Message, Outcome};
use tower_layer::Layer;
use tower_service::Service;

use crate::Telemetry;
use crate::series::{MessageSeries, OUTCOMES};

/// Traces and measures message handlers: for each [`Message`] carrying a
/// [`Delivery`] it opens a span (CONSUMER `"{topic} process"` for SQS,
/// `"{routing_key} process"` for AMQP, INTERNAL `"{function}"` for a schedule) whose parent
/// is the trace context the delivery carried, runs the handler inside it, and records
/// tomodachi's duration and active-task instruments plus a per-outcome counter.
///
/// Messages without a [`Delivery`] pass through untouched. Transports add one only when
/// telemetry is on: [`crate::install`] turns it on; without it, call
/// [`tomodachi_core::telemetry::enable`] once.
#[derive(Debug, Clone)]
pub struct MessageTraceLayer {
    telemetry: Telemetry,
}

impl MessageTraceLayer {
    /// The layer recording to `telemetry`.
    pub fn new(telemetry: Telemetry) -> Self {
        Self { telemetry }
    }
}

impl<S> Layer<S> for MessageTraceLayer {
    type Service = MessageTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MessageTrace {
            inner,
            telemetry: self.telemetry.clone(),
        }
    }
}

/// The service of [`MessageTraceLayer`].
#[derive(Debug, Clone)]
pub struct MessageTrace<S> {
    inner: S,
    telemetry: Telemetry,
}

impl<S> MessageTrace<S> {
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

/// The span name and attributes tomodachi gives a delivery.
pub(crate) fn span_of(delivery: &Delivery) -> (String, SpanKind, Vec<KeyValue>) {
    let mut attributes = Vec::with_capacity(9 + delivery.attributes.len());
    let handler = || KeyValue::new("code.function", Arc::clone(&delivery.handler));
    let (name, kind) = if delivery.system == SCHEDULE {
        attributes.push(handler());
        (delivery.handler.to_string(), SpanKind::Internal)
    } else {
        let target = delivery.routing.as_deref().unwrap_or(&delivery.destination);
        let name = [target, " ", delivery.operation].concat();
        attributes.push(KeyValue::new("messaging.system", delivery.system));
        attributes.push(KeyValue::new("messaging.operation", delivery.operation));
        attributes.push(KeyValue::new(
            "messaging.destination.name",
            Arc::clone(&delivery.destination),
        ));
        match delivery.system {
            AWS_SQS => {
                attributes.push(KeyValue::new("messaging.destination.kind", "queue"));
                let (publish, kind) = match &delivery.routing {
                    Some(topic) => (topic, "topic"),
                    None => (&delivery.destination, "queue"),
                };
                attributes.push(KeyValue::new(
                    "messaging.destination_publish.name",
                    Arc::clone(publish),
                ));
                attributes.push(KeyValue::new("messaging.destination_publish.kind", kind));
            }
            RABBITMQ => {
                if let Some(key) = &delivery.routing {
                    attributes.push(KeyValue::new(
                        "messaging.rabbitmq.destination.routing_key",
                        Arc::clone(key),
                    ));
                }
            }
            _ => {}
        }
        if let Some(id) = &delivery.message_id {
            attributes.push(KeyValue::new("messaging.message.id", Arc::clone(id)));
        }
        attributes.push(handler());
        (name, SpanKind::Consumer)
    };
    for (key, value) in &delivery.attributes {
        attributes.push(KeyValue::new(*key, Arc::clone(value)));
    }
    (name, kind, attributes)
}

/// Low-cardinality attributes of the metrics of a delivery.
fn metric_attributes(delivery: &Delivery) -> Vec<KeyValue> {
    let handler = KeyValue::new("code.function", Arc::clone(&delivery.handler));
    if delivery.system == SCHEDULE {
        vec![handler]
    } else {
        vec![
            KeyValue::new("messaging.system", delivery.system),
            KeyValue::new("messaging.operation", delivery.operation),
            KeyValue::new(
                "messaging.destination.name",
                Arc::clone(&delivery.destination),
            ),
            handler,
        ]
    }
}

impl<S> Service<Message> for MessageTrace<S>
where
    S: Service<Message, Response = Outcome>,
    S::Error: Into<BoxError>,
{
    type Response = Outcome;
    type Error = BoxError;
    type Future = MessageTraceFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, message: Message) -> Self::Future {
        let Some(delivery) = message.context::<Delivery>() else {
            return MessageTraceFuture {
                inner: self.inner.call(message),
                record: None,
            };
        };
        let parent = self.telemetry.extract_carrier(&delivery.carrier);
        let (name, kind, attributes) = span_of(delivery);
        let cx = self.telemetry.start_span(
            SpanBuilder::from_name(name)
                .with_kind(kind)
                .with_attributes(attributes),
            &parent,
        );
        let series = self
            .telemetry
            .instruments(delivery.system)
            .map(|instruments| {
                let series = instruments.series.get_or_insert(
                    |s| s.is(delivery.system, &delivery.destination, &delivery.handler),
                    || {
                        MessageSeries::new(
                            &instruments.duration,
                            delivery.system,
                            Arc::clone(&delivery.destination),
                            Arc::clone(&delivery.handler),
                            metric_attributes(delivery),
                            self.telemetry.exemplars,
                        )
                    },
                );
                series.started();
                series
            });
        let inner = {
            let _guard = cx.clone().attach();
            self.inner.call(message)
        };
        MessageTraceFuture {
            inner,
            record: Some(Record {
                cx,
                series,
                start: Instant::now(),
            }),
        }
    }
}

struct Record {
    cx: Context,
    series: Option<Arc<MessageSeries>>,
    start: Instant,
}

impl Record {
    fn finish(self, result: Result<&Outcome, &BoxError>) {
        let span = self.cx.span();
        let outcome = match result {
            Ok(Outcome::Ack) => 0,
            Ok(Outcome::Retry { .. }) | Err(_) => 1,
            Ok(Outcome::Reject) => 2,
        };
        span.set_attribute(KeyValue::new("tomodachi.outcome", OUTCOMES[outcome]));
        match result {
            Ok(_) if outcome == 0 => {}
            Ok(_) => span.set_status(Status::error(OUTCOMES[outcome])),
            Err(error) => span.set_status(Status::error(error.to_string())),
        }
        let elapsed = self.start.elapsed().as_secs_f64();
        if let Some(series) = &self.series {
            series.finished(outcome);
            series.duration[usize::from(outcome == 0)].record(elapsed, span.span_context());
        }
        span.end();
    }
}

pin_project! {
    /// The response future of [`MessageTrace`].
    pub struct MessageTraceFuture<F> {
        #[pin]
        inner: F,
        record: Option<Record>,
    }

    impl<F> PinnedDrop for MessageTraceFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            // Dropped before completion (a timeout, a shutdown): end the span anyway.
            if let Some(record) = this.project().record.take() {
                let error: BoxError = "handler future dropped before completion".into();
                record.finish(Err(&error));
            }
        }
    }
}

impl<F> std::fmt::Debug for MessageTraceFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageTraceFuture").finish_non_exhaustive()
    }
}

impl<F, E> Future for MessageTraceFuture<F>
where
    F: Future<Output = Result<Outcome, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Outcome, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _guard = this.record.as_ref().map(|r| r.cx.clone().attach());
            ready!(this.inner.poll(cx)).map_err(Into::into)
        };
        if let Some(record) = this.record.take() {
            record.finish(result.as_ref());
        }
        Poll::Ready(result)
    }
}
