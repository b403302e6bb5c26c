//! `--opentelemetry-instrument`: OpenTelemetry for every handler of the process (the `otel`
//! feature).
//!
//! [`Process::run`](crate::Process::run) installs it (providers and exporters from `OTEL_*`,
//! the Prometheus endpoint, the `tracing` bridge) before the services start and flushes it
//! after they stop. The transports then wrap their handlers: message handlers in
//! `tomodachi_otel::MessageTraceLayer` (outermost, around the envelope), the HTTP router's
//! routes in `tomodachi_otel::HttpTraceLayer`, and the service's publishers in
//! `tomodachi_otel::PublishTraceLayer`.

use std::sync::OnceLock;

use tomodachi_core::ServiceIdentity;
use tomodachi_otel::{Installed, Settings, Telemetry};

static TELEMETRY: OnceLock<Telemetry> = OnceLock::new();

/// The process's telemetry, once installed.
pub(crate) fn telemetry() -> Option<&'static Telemetry> {
    TELEMETRY.get()
}

/// Installs OpenTelemetry for the service `identity` with settings from `env`.
pub(crate) async fn install(
    identity: &ServiceIdentity,
    env: &[(String, String)],
) -> Result<Installed, tomodachi_otel::Error> {
    let settings = Settings::from_lookup(&identity.name, &identity.uuid, &|name| {
        env.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    })?;
    let installed = tomodachi_otel::install(&settings).await?;
    installed
        .telemetry
        .bridge_tracing(installed.logger_provider());
    if TELEMETRY.set(installed.telemetry.clone()).is_err() {
        tracing::warn!(target: "tomodachi.opentelemetry", "OpenTelemetry was already installed in this process; keeping the first");
    }
    tracing::info!(
        target: "tomodachi.opentelemetry",
        traces = ?settings.traces,
        metrics = ?settings.metrics,
        logs = ?settings.logs,
        "opentelemetry instrumentation enabled"
    );
    Ok(installed)
}

/// Instruments with a [`Telemetry`] the program built itself ([`crate::Process::opentelemetry`]).
pub(crate) fn use_telemetry(telemetry: Option<Telemetry>) {
    let Some(telemetry) = telemetry else { return };
    telemetry.bridge_tracing(None);
    tomodachi_core::telemetry::enable();
    if TELEMETRY.set(telemetry).is_err() {
        tracing::warn!(target: "tomodachi.opentelemetry", "OpenTelemetry was already installed in this process; keeping the first");
    }
}

/// Flushes and stops what [`install`] started (blocking work, off the runtime's threads).
pub(crate) async fn shutdown(installed: Installed) {
    if let Err(error) = tokio::task::spawn_blocking(move || installed.shutdown()).await {
        tracing::warn!(target: "tomodachi.opentelemetry", %error, "flushing telemetry failed");
    }
}

/// The matched route of a request: a regex route's pattern, else axum's `MatchedPath`.
#[cfg(feature = "http")]
pub(crate) fn http_route(extensions: &tomodachi_http::axum::http::Extensions) -> Option<&str> {
    use tomodachi_core::telemetry::HttpRoute;
    use tomodachi_http::axum::extract::MatchedPath;
    extensions
        .get::<HttpRoute>()
        .map(HttpRoute::as_str)
        .or_else(|| extensions.get::<MatchedPath>().map(MatchedPath::as_str))
}
