//! Cost of the tracing layers per message and per request: a bare handler against the same
//! handler inside `MessageTraceLayer` / `HttpTraceLayer`, with a real SDK tracer provider
//! (sampling everything, batch span processor into a no-op exporter) and a meter provider
//! with a reader, so spans and measurements are really made.
//!
//! `cargo bench -p tomodachi-otel --bench layers`
//!
//! For instruction counts (repeatable on a loaded machine), `LAYERS_ITERATIONS=N` runs one
//! case N times and exits, under callgrind for instance:
//!
//! ```text
//! LAYERS_ITERATIONS=20000 valgrind --tool=callgrind target/release/deps/layers-* message/traced
//! ```

use std::convert::Infallible;
use std::hint::black_box;

use criterion::{Criterion, criterion_group};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tomodachi_core::telemetry::{Delivery, RABBITMQ};
use tomodachi_core::{Message, Outcome};
use tomodachi_otel::Telemetry;
use tower::{Layer, ServiceExt, service_fn};

/// Drops every batch: what an exporter costs is not the layer's cost.
#[derive(Debug)]
struct Discard;

impl SpanExporter for Discard {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        drop(batch);
        Ok(())
    }
}

fn message() -> Message {
    Message::new("{}").with_context(
        Delivery::new(RABBITMQ, "amq.topic", "on_order")
            .routing("order.paid")
            .message_id(Some("m-1"))
            .traceparent(Some(
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
            )),
    )
}

fn request() -> http::Request<()> {
    let mut request = http::Request::get("/items/42")
        .header("host", "localhost:9700")
        .body(())
        .expect("request");
    request
        .extensions_mut()
        .insert(tomodachi_core::telemetry::HttpRoute("/items/{id}".into()));
    request
}

fn layers(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let tracer_provider = SdkTracerProvider::builder()
        .with_batch_exporter(Discard)
        .build();
    let meter_provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(InMemoryMetricExporter::default()).build())
        .build();
    let telemetry = Telemetry::new(&tracer_provider, &meter_provider);

    let handler = service_fn(|_m: Message| async { Ok::<_, Infallible>(Outcome::Ack) });
    let traced = telemetry.message_layer().layer(handler);
    let mut group = c.benchmark_group("message");
    group.bench_function("bare", |b| {
        b.iter(|| runtime.block_on(handler.oneshot(black_box(message()))))
    });
    group.bench_function("traced", |b| {
        b.iter(|| runtime.block_on(traced.clone().oneshot(black_box(message()))))
    });
    group.finish();

    let endpoint =
        service_fn(|_r: http::Request<()>| async { Ok::<_, Infallible>(http::Response::new(())) });
    let traced = telemetry.http_layer().layer(endpoint);
    let mut group = c.benchmark_group("http");
    group.bench_function("bare", |b| {
        b.iter(|| runtime.block_on(endpoint.oneshot(black_box(request()))))
    });
    group.bench_function("traced", |b| {
        b.iter(|| runtime.block_on(traced.clone().oneshot(black_box(request()))))
    });
    group.finish();
    let _ = tracer_provider.shutdown();
}

/// `LAYERS_ITERATIONS=N layers <group>/<bare|traced>`: N runs of one case, no criterion.
fn fixed_iterations(iterations: u64, case: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let tracer_provider = SdkTracerProvider::builder()
        .with_batch_exporter(Discard)
        .build();
    let meter_provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(InMemoryMetricExporter::default()).build())
        .build();
    let telemetry = Telemetry::new(&tracer_provider, &meter_provider);
    let handler = service_fn(|_m: Message| async { Ok::<_, Infallible>(Outcome::Ack) });
    let endpoint =
        service_fn(|_r: http::Request<()>| async { Ok::<_, Infallible>(http::Response::new(())) });
    let message_traced = telemetry.message_layer().layer(handler);
    let http_traced = telemetry.http_layer().layer(endpoint);
    for _ in 0..iterations {
        match case {
            "message/bare" => drop(runtime.block_on(handler.oneshot(black_box(message())))),
            "message/traced" => {
                drop(runtime.block_on(message_traced.clone().oneshot(black_box(message()))))
            }
            "http/bare" => drop(runtime.block_on(endpoint.oneshot(black_box(request())))),
            "http/traced" => {
                drop(runtime.block_on(http_traced.clone().oneshot(black_box(request()))))
            }
            other => panic!("unknown case {other:?}"),
        }
    }
    let _ = tracer_provider.shutdown();
}

criterion_group!(benches, layers);

fn main() {
    if let Some(iterations) = std::env::var("LAYERS_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        let case = std::env::args()
            .skip(1)
            .find(|a| !a.starts_with('-'))
            .unwrap_or_else(|| "message/traced".to_owned());
        fixed_iterations(iterations, &case);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
