//! The `tracing` bridge: `tracing` spans a handler opens become OpenTelemetry spans, children
//! of the transport's span (tracing-opentelemetry), and `tracing` events become
//! OpenTelemetry log records (`OTEL_LOGS_EXPORTER`, opentelemetry-appender-tracing).
//!
//! A service installs its logger before it knows whether telemetry is on, so
//! [`tracing_layer`] is added to the subscriber up front and stays idle (its filter lets
//! nothing through) until [`Telemetry::bridge_tracing`] gives it a tracer and, if logs are
//! exported, a logger. tomodachi's own spans and events (its loggers `tomodachi…` and
//! `exception`, and its crates' module paths) are left out:
//! the transports' spans are made by the layers already, and their log lines would repeat
//! as span events.

use std::sync::{Arc, LazyLock, OnceLock};

use opentelemetry::global::{BoxedSpan, BoxedTracer};
use opentelemetry::logs::{Logger, LoggerProvider, Severity};
use opentelemetry::trace::noop::NoopTracer;
use opentelemetry::trace::{SpanBuilder, Tracer};
use opentelemetry::{Context, InstrumentationScope};
use opentelemetry_sdk::logs::{SdkLogRecord, SdkLogger, SdkLoggerProvider};
use tracing::subscriber::Interest;
use tracing::{Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{DynFilterFn, Filtered};
use tracing_subscriber::registry::LookupSpan;

use crate::Telemetry;

static TRACER: OnceLock<Arc<BoxedTracer>> = OnceLock::new();
static LOGGER: OnceLock<SdkLogger> = OnceLock::new();

/// Is this callsite one of the user's (not tomodachi's own)?
fn is_users(metadata: &Metadata<'_>) -> bool {
    !is_tomodachis(metadata.target())
}

/// tomodachi's own targets: its loggers (`tomodachi`, `tomodachi.…`, `exception`) and the
/// module paths of its crates. A user crate named `tomodachi_orders` is the user's.
fn is_tomodachis(target: &str) -> bool {
    const CRATES: [&str; 7] = [
        "tomodachi",
        "tomodachi_core",
        "tomodachi_http",
        "tomodachi_amqp",
        "tomodachi_sqs",
        "tomodachi_schedule",
        "tomodachi_otel",
    ];
    target == "exception"
        || target.starts_with("tomodachi.")
        || CRATES.iter().any(|name| {
            target
                .strip_prefix(name)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })
}

/// The layer to add to a `tracing` subscriber: idle until [`Telemetry::bridge_tracing`],
/// then user spans become OpenTelemetry spans and, when a logger provider was given, user
/// events become log records.
pub fn tracing_layer<S>() -> impl Layer<S> + Send + Sync + 'static
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync + 'static,
{
    // tomodachi's own callsites are never seen (decided once per callsite); the user's are
    // checked per span or event, so that the layers wake up when telemetry is bridged.
    let users = |metadata: &Metadata<'_>| {
        if is_users(metadata) {
            Interest::sometimes()
        } else {
            Interest::never()
        }
    };
    let spans: Filtered<_, _, S> = tracing_opentelemetry::layer()
        .with_tracer(BridgeTracer)
        .with_filter(
            DynFilterFn::new(|metadata, _| TRACER.get().is_some() && is_users(metadata))
                .with_callsite_filter(users),
        );
    let logs = opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(
        &BridgeLoggerProvider,
    )
    .with_filter(
        DynFilterFn::new(|metadata, _| {
            metadata.is_event() && LOGGER.get().is_some() && is_users(metadata)
        })
        .with_callsite_filter(users),
    );
    spans.and_then(logs)
}

impl Telemetry {
    /// Turns on the [`tracing_layer`] of this process with this telemetry's tracer and, if
    /// given, `logs` for `tracing` events (once per process: later calls change nothing).
    pub fn bridge_tracing(&self, logs: Option<&SdkLoggerProvider>) {
        let _ = TRACER.set(Arc::clone(&self.inner.tracer));
        if let Some(provider) = logs {
            let _ = LOGGER.set(
                provider.logger_with_scope(
                    InstrumentationScope::builder(crate::SCOPE)
                        .with_version(env!("CARGO_PKG_VERSION"))
                        .build(),
                ),
            );
        }
    }
}

/// The tracer given by [`Telemetry::bridge_tracing`], else a no-op one.
#[derive(Debug, Clone, Copy)]
struct BridgeTracer;

static NOOP_TRACER: LazyLock<BoxedTracer> =
    LazyLock::new(|| BoxedTracer::new(Box::new(NoopTracer::new())));

impl Tracer for BridgeTracer {
    type Span = BoxedSpan;

    fn build_with_context(&self, builder: SpanBuilder, parent_cx: &Context) -> BoxedSpan {
        match TRACER.get() {
            Some(tracer) => tracer.build_with_context(builder, parent_cx),
            None => NOOP_TRACER.build_with_context(builder, parent_cx),
        }
    }
}

/// Hands out [`BridgeLogger`]s.
#[derive(Debug, Clone, Copy)]
struct BridgeLoggerProvider;

impl LoggerProvider for BridgeLoggerProvider {
    type Logger = BridgeLogger;

    fn logger_with_scope(&self, _scope: InstrumentationScope) -> BridgeLogger {
        BridgeLogger
    }
}

/// The logger given by [`Telemetry::bridge_tracing`], else one that emits nowhere.
#[derive(Debug, Clone, Copy)]
struct BridgeLogger;

static NOWHERE: LazyLock<(SdkLoggerProvider, SdkLogger)> = LazyLock::new(|| {
    let provider = SdkLoggerProvider::builder().build();
    let logger = provider.logger("");
    (provider, logger)
});

impl BridgeLogger {
    fn get() -> &'static SdkLogger {
        LOGGER.get().unwrap_or(&NOWHERE.1)
    }
}

impl Logger for BridgeLogger {
    type LogRecord = SdkLogRecord;

    fn create_log_record(&self) -> SdkLogRecord {
        Self::get().create_log_record()
    }

    fn emit(&self, record: SdkLogRecord) {
        Self::get().emit(record);
    }

    fn event_enabled(&self, level: Severity, target: &str, name: Option<&str>) -> bool {
        LOGGER
            .get()
            .is_some_and(|logger| logger.event_enabled(level, target, name))
    }
}

#[cfg(test)]
mod tests {
    use super::is_tomodachis;

    #[test]
    fn own_targets_are_tomodachis_loggers_and_crates_only() {
        for own in [
            "tomodachi",
            "tomodachi.http.response",
            "exception",
            "tomodachi_core::handler::future",
            "tomodachi_sqs",
        ] {
            assert!(is_tomodachis(own), "{own}");
        }
        for users in [
            "tomodachi_orders::handlers",
            "tomodachix",
            "my_service",
            "orders",
        ] {
            assert!(!is_tomodachis(users), "{users}");
        }
    }
}
