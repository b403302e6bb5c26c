//! [`MessageTraceLayer`]: a span and metrics around each message handler.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, ready};
use std::time::Instant;

use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use pin_project_lite::pin_project;
use tomodachi_core::telemetry::{AWS_SQS, Delivery, RABBITMQ, SCHEDULE};
use tomodachi_core::{BoxError, Message, Outcome};
use tower_layer::Layer;
use tower_service::Service;

use crate::Telemetry;
use crate::telemetry::MessageInstruments;

/// Traces and measures message handlers: for each [`Message`] carrying a
/// [`Delivery`] it opens a span (CONSUMER `"{topic} process"` for SQS,
/// `"{routing_key} process"` for AMQP, INTERNAL `"{function}"` for a schedule) whose parent
/// is the trace context the delivery carried, runs the handler inside it, and records
/// tomodachi's duration and active-task instruments plus a per-outcome counter.
///
/// Messages without a [`Delivery`] pass through untouched. Transports add one only when
/// telemetry is on: [`crate::install`] turns it on, and so does installing
/// [`Telemetry::publish_hook`]; without either, call
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
    let mut attributes = Vec::with_capacity(8 + delivery.attributes.len());
    let handler = delivery.handler.to_string();
    let (name, kind) = if delivery.system == SCHEDULE {
        attributes.push(KeyValue::new("code.function", handler.clone()));
        (handler, SpanKind::Internal)
    } else {
        let target = delivery.routing.as_deref().unwrap_or(&delivery.destination);
        let name = format!("{target} {}", delivery.operation);
        attributes.push(KeyValue::new("messaging.system", delivery.system));
        attributes.push(KeyValue::new("messaging.operation", delivery.operation));
        attributes.push(KeyValue::new(
            "messaging.destination.name",
            delivery.destination.to_string(),
        ));
        match delivery.system {
            AWS_SQS => {
                attributes.push(KeyValue::new("messaging.destination.kind", "queue"));
                let (publish, kind) = match &delivery.routing {
                    Some(topic) => (topic.to_string(), "topic"),
                    None => (delivery.destination.to_string(), "queue"),
                };
                attributes.push(KeyValue::new("messaging.destination_publish.name", publish));
                attributes.push(KeyValue::new("messaging.destination_publish.kind", kind));
            }
            RABBITMQ => {
                if let Some(key) = &delivery.routing {
                    attributes.push(KeyValue::new(
                        "messaging.rabbitmq.destination.routing_key",
                        key.to_string(),
                    ));
                }
            }
            _ => {}
        }
        if let Some(id) = &delivery.message_id {
            attributes.push(KeyValue::new("messaging.message.id", id.to_string()));
        }
        attributes.push(KeyValue::new("code.function", handler));
        (name, SpanKind::Consumer)
    };
    for (key, value) in &delivery.attributes {
        attributes.push(KeyValue::new(*key, value.to_string()));
    }
    (name, kind, attributes)
}

/// Low-cardinality attributes of the metrics of a delivery.
fn metric_attributes(delivery: &Delivery) -> Vec<KeyValue> {
    if delivery.system == SCHEDULE {
        vec![KeyValue::new("code.function", delivery.handler.to_string())]
    } else {
        vec![
            KeyValue::new("messaging.system", delivery.system),
            KeyValue::new("messaging.operation", delivery.operation),
            KeyValue::new(
                "messaging.destination.name",
                delivery.destination.to_string(),
            ),
            KeyValue::new("code.function", delivery.handler.to_string()),
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
        let span = self.telemetry.inner.tracer.build_with_context(
            opentelemetry::trace::SpanBuilder::from_name(name)
                .with_kind(kind)
                .with_attributes(attributes),
            &parent,
        );
        let cx = parent.with_span(span);
        let metrics = self.telemetry.clone();
        let attributes = metric_attributes(delivery);
        let system = delivery.system;
        if let Some(instruments) = metrics.instruments(system) {
            instruments.active.add(1, &attributes);
        }
        let inner = {
            let _guard = cx.clone().attach();
            self.inner.call(message)
        };
        MessageTraceFuture {
            inner,
            record: Some(Record {
                cx,
                telemetry: metrics,
                system,
                attributes,
                start: Instant::now(),
            }),
        }
    }
}

struct Record {
    cx: Context,
    telemetry: Telemetry,
    system: &'static str,
    attributes: Vec<KeyValue>,
    start: Instant,
}

impl Record {
    fn instruments(&self) -> Option<&MessageInstruments> {
        self.telemetry.instruments(self.system)
    }

    fn finish(mut self, result: Result<&Outcome, &BoxError>) {
        let span = self.cx.span();
        let (outcome, success) = match result {
            Ok(Outcome::Ack) => ("ack", true),
            Ok(Outcome::Retry { .. }) => ("retry", false),
            Ok(Outcome::Reject) => ("reject", false),
            Err(_) => ("retry", false),
        };
        span.set_attribute(KeyValue::new("tomodachi.outcome", outcome));
        match result {
            Ok(_) if success => {}
            Ok(_) => span.set_status(Status::error(outcome)),
            Err(error) => span.set_status(Status::error(error.to_string())),
        }
        span.end();
        let elapsed = self.start.elapsed().as_secs_f64();
        let attributes = std::mem::take(&mut self.attributes);
        if let Some(instruments) = self.instruments() {
            instruments.active.add(-1, &attributes);
            let mut with_success = attributes.clone();
            with_success.push(KeyValue::new("function.success", success));
            instruments.duration.record(elapsed, &with_success);
            let mut with_outcome = attributes;
            with_outcome.push(KeyValue::new("tomodachi.outcome", outcome));
            instruments.handled.add(1, &with_outcome);
        }
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
