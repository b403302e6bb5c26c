#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod bridge;
mod config;
mod http;
mod message;
#[cfg(feature = "prometheus")]
mod openmetrics;
#[cfg(feature = "prometheus")]
mod prometheus;
mod propagation;
mod publish;
mod series;
mod telemetry;

pub use bridge::tracing_layer;
pub use config::{
    Error, Exporter, HexTraceIds, Installed, PrometheusSettings, Settings, current_hex_trace_ids,
    current_trace_ids, install,
};
pub use http::{HttpTrace, HttpTraceFuture, HttpTraceLayer, RouteFn};
pub use message::{MessageTrace, MessageTraceFuture, MessageTraceLayer};
pub use publish::{PublishTrace, PublishTraceFuture, PublishTraceLayer};
pub use telemetry::{SCOPE, Telemetry};

pub use opentelemetry;
pub use opentelemetry_sdk;
