//! OpenTelemetry for tomodachi-rs: spans, metrics, a Prometheus endpoint and W3C trace
//! context that crosses the broker, as Python tomodachi's `--opentelemetry-instrument`.
//!
//! - [`MessageTraceLayer`] wraps message handlers (SQS, AMQP, schedules): one span per
//!   delivery, named and attributed as tomodachi does, whose parent is the `traceparent`
//!   the message carried (read from the [`Delivery`] the transport put in its context).
//! - [`HttpTraceLayer`] wraps an HTTP service: SERVER spans `"{METHOD} {route}"`.
//! - [`OtelPublishHook`] opens PRODUCER spans and injects `traceparent` into what
//!   publishers send, so one trace runs HTTP → publish → broker → consumer.
//! - [`install`] builds providers from `OTEL_*` (exporters `otlp`, `prometheus`, `console`, `none`)
//!   and starts the Prometheus scrape endpoint.
//!
//! Only `tomodachi-core` and `http` types are used: no transport crate is a dependency.
//!
//! [`Delivery`]: tomodachi_core::telemetry::Delivery

mod config;
mod http;
mod message;
#[cfg(feature = "prometheus")]
mod prometheus;
mod propagation;
mod publish;
mod telemetry;

pub use config::{
    Error, Exporter, Installed, PrometheusSettings, Settings, current_trace_ids, install,
};
pub use http::{HttpTrace, HttpTraceFuture, HttpTraceLayer, RouteFn};
pub use message::{MessageTrace, MessageTraceFuture, MessageTraceLayer};
pub use publish::OtelPublishHook;
pub use telemetry::{SCOPE, Telemetry};

pub use opentelemetry;
pub use opentelemetry_sdk;
