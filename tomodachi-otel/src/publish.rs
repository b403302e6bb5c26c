//! [`OtelPublishHook`]: PRODUCER spans and `traceparent` injection on every publish.

use std::fmt;

use opentelemetry::trace::{SpanBuilder, SpanKind, Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use tomodachi_core::telemetry::{FinishPublish, Publish, PublishHook, PublishSpan, RABBITMQ};

use crate::Telemetry;

/// The [`PublishHook`] of [`Telemetry`]: opens a PRODUCER span `"{destination} publish"`
/// (child of the current context: the HTTP request or message being handled) and injects
/// its `traceparent`/`tracestate`, which publishers send as message attributes or headers.
///
/// Install it once per process with [`tomodachi_core::telemetry::set_publish_hook`].
#[derive(Debug, Clone)]
pub struct OtelPublishHook {
    telemetry: Telemetry,
}

impl OtelPublishHook {
    /// The hook recording to `telemetry`.
    pub fn new(telemetry: Telemetry) -> Self {
        Self { telemetry }
    }
}

struct Producer(Context);

impl FinishPublish for Producer {
    fn finish(self: Box<Self>, error: Option<&dyn fmt::Display>) {
        let span = self.0.span();
        if let Some(error) = error {
            span.set_status(Status::error(error.to_string()));
        }
        span.end();
    }
}

impl PublishHook for OtelPublishHook {
    fn start(&self, publish: &Publish<'_>, inject: &mut dyn FnMut(&str, &str)) -> PublishSpan {
        let parent = Context::current();
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
        let cx = self.telemetry.start_span(
            SpanBuilder::from_name(format!("{} publish", publish.destination))
                .with_kind(SpanKind::Producer)
                .with_attributes(attributes),
            &parent,
        );
        self.telemetry.inject_context(&cx, inject);
        PublishSpan::new(Producer(cx))
    }
}
