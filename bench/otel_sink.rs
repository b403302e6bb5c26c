//! The telemetry of the benchmarks' instrumented cases: a real SDK tracer provider
//! (everything sampled, batch span processor) whose exporter drops each batch, and a meter
//! provider with a reader, so spans are recorded, ended and handed to an exporter and
//! measurements aggregated, as in production; only the network export is left out.

use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::{ManualReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tomodachi::otel::{Telemetry, opentelemetry_sdk};

static EXPORTED: AtomicU64 = AtomicU64::new(0);

/// Counts and drops every batch.
#[derive(Debug)]
struct Discard;

impl SpanExporter for Discard {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        EXPORTED.fetch_add(batch.len() as u64, Ordering::Relaxed);
        drop(batch);
        Ok(())
    }
}

/// Spans handed to the exporter so far (all of them once the tracer provider is shut down).
#[allow(dead_code)]
pub(crate) fn exported() -> u64 {
    EXPORTED.load(Ordering::Relaxed)
}

/// The providers (keep them alive while the service runs) and the telemetry using them.
pub(crate) fn telemetry() -> (SdkTracerProvider, SdkMeterProvider, Telemetry) {
    let tracer_provider = SdkTracerProvider::builder()
        .with_batch_exporter(Discard)
        .build();
    let meter_provider = SdkMeterProvider::builder()
        .with_reader(ManualReader::builder().build())
        .build();
    let telemetry = Telemetry::new(&tracer_provider, &meter_provider);
    (tracer_provider, meter_provider, telemetry)
}
