//! Settings read from the environment, the resource, and [`install`]: the providers,
//! exporters and propagator a service runs with.

use std::net::SocketAddr;

use opentelemetry::trace::TraceContextExt;
use opentelemetry::{Key, KeyValue, global};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;

use crate::Telemetry;

/// An exporter named in `OTEL_TRACES_EXPORTER` / `OTEL_METRICS_EXPORTER` /
/// `OTEL_LOGS_EXPORTER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Exporter {
    /// OTLP over gRPC (`OTEL_EXPORTER_OTLP_*` are read by `opentelemetry-otlp`).
    Otlp,
    /// The Prometheus scrape endpoint (metrics only).
    Prometheus,
    /// Spans, metrics or log records printed on stdout.
    Console,
    /// Nothing is exported.
    None,
}

impl Exporter {
    fn parse(value: &str) -> Result<Self, Error> {
        match value.trim().to_ascii_lowercase().as_str() {
            "otlp" => Ok(Self::Otlp),
            "prometheus" => Ok(Self::Prometheus),
            "console" => Ok(Self::Console),
            "none" | "" => Ok(Self::None),
            other => Err(Error::UnknownExporter(other.to_owned())),
        }
    }
}

/// Settings of the Prometheus scrape endpoint (tomodachi's
/// `OTEL_PYTHON_TOMODACHI_PROMETHEUS_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrometheusSettings {
    /// Host name or address to listen on (`localhost`).
    pub address: String,
    /// Port (9464).
    pub port: u16,
    /// Emit `otel_scope_info` and scope labels (true).
    pub include_scope_info: bool,
    /// Emit `target_info` (true).
    pub include_target_info: bool,
    /// Keep exemplars (trace and span id of a sampled span, per histogram bucket) and serve
    /// them to scrapers that ask for OpenMetrics (false, as in tomodachi).
    pub exemplars_enabled: bool,
    /// Prefix of every metric name (`""`; a `_` is added).
    pub namespace_prefix: String,
}

impl Default for PrometheusSettings {
    fn default() -> Self {
        Self {
            address: "localhost".to_owned(),
            port: 9464,
            include_scope_info: true,
            include_target_info: true,
            exemplars_enabled: false,
            namespace_prefix: String::new(),
        }
    }
}

/// Everything [`install`] needs, usually from [`Settings::from_env`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The service's name (`service.name` unless `OTEL_SERVICE_NAME` or
    /// `OTEL_RESOURCE_ATTRIBUTES` sets it, or it is the generic `service`/`app`).
    pub service_name: String,
    /// The service's uuid (`service.instance.id`).
    pub service_uuid: String,
    /// `OTEL_TRACES_EXPORTER` (default `none`, as Python tomodachi's distro sets it).
    pub traces: Exporter,
    /// `OTEL_METRICS_EXPORTER` (default `none`, as in tomodachi).
    pub metrics: Exporter,
    /// `OTEL_LOGS_EXPORTER` (default `none`, as in tomodachi): where `tracing` events of the
    /// service's own code go as OpenTelemetry log records.
    pub logs: Exporter,
    /// The scrape endpoint, when `metrics` is [`Exporter::Prometheus`].
    pub prometheus: PrometheusSettings,
    /// Regular expressions of URL paths to leave unrecorded.
    pub excluded_urls: Vec<String>,
}

/// A setting could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An exporter name that is not `otlp`, `prometheus`, `console` or `none`.
    #[error("unknown OpenTelemetry exporter {0:?} (expected otlp, prometheus, console or none)")]
    UnknownExporter(String),
    /// An exporter that was not compiled in (a cargo feature of tomodachi-otel is off).
    #[error("the {0} exporter is not compiled in (enable the `{0}` feature of tomodachi-otel)")]
    NotCompiled(&'static str),
    /// A variable has a value that does not parse.
    #[error("invalid value {value:?} of {name}")]
    InvalidValue {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
    },
    /// An excluded-URL pattern is not a valid regular expression.
    #[error("invalid excluded-URL pattern: {0}")]
    ExcludedUrls(#[from] regex::Error),
    /// An exporter failed to build.
    #[error("building the {what} exporter failed: {message}")]
    Exporter {
        /// Which exporter.
        what: &'static str,
        /// Why.
        message: String,
    },
    /// The Prometheus endpoint could not listen.
    #[error("the Prometheus endpoint could not listen on {address}: {source}")]
    Listen {
        /// Where.
        address: String,
        /// Why.
        source: std::io::Error,
    },
}

fn first(lookup: &dyn Fn(&str) -> Option<String>, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|name| lookup(name).filter(|v| !v.trim().is_empty()))
}

fn flag(
    lookup: &dyn Fn(&str) -> Option<String>,
    names: &[&'static str],
    default: bool,
) -> Result<bool, Error> {
    match first(lookup, names) {
        None => Ok(default),
        Some(value) => match value.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" | "none" => Ok(false),
            _ => Err(Error::InvalidValue {
                name: names[0],
                value,
            }),
        },
    }
}

impl Settings {
    /// Settings from the process environment.
    ///
    /// # Errors
    /// A variable names an unknown exporter or does not parse.
    pub fn from_env(service_name: &str, service_uuid: &str) -> Result<Self, Error> {
        Self::from_lookup(service_name, service_uuid, &|name| std::env::var(name).ok())
    }

    /// Settings from `lookup` (the environment, or a map in tests).
    ///
    /// # Errors
    /// A variable names an unknown exporter or does not parse.
    pub fn from_lookup(
        service_name: &str,
        service_uuid: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        let exporter = |name: &str| -> Result<Exporter, Error> {
            match lookup(name) {
                // The first of a comma-separated list.
                Some(value) => Exporter::parse(value.split(',').next().unwrap_or_default()),
                // Python tomodachi's distro defaults every signal to `none`.
                None => Ok(Exporter::None),
            }
        };
        let port = match first(
            lookup,
            &[
                "TOMODACHI_PROMETHEUS_PORT",
                "OTEL_PYTHON_TOMODACHI_PROMETHEUS_PORT",
            ],
        ) {
            None => 9464,
            Some(value) => value.trim().parse().map_err(|_| Error::InvalidValue {
                name: "TOMODACHI_PROMETHEUS_PORT",
                value,
            })?,
        };
        let prometheus = PrometheusSettings {
            address: first(
                lookup,
                &[
                    "TOMODACHI_PROMETHEUS_ADDRESS",
                    "OTEL_PYTHON_TOMODACHI_PROMETHEUS_ADDRESS",
                ],
            )
            .unwrap_or_else(|| "localhost".to_owned()),
            port,
            include_scope_info: flag(
                lookup,
                &[
                    "TOMODACHI_PROMETHEUS_INCLUDE_SCOPE_INFO",
                    "OTEL_PYTHON_TOMODACHI_PROMETHEUS_INCLUDE_SCOPE_INFO",
                ],
                true,
            )?,
            include_target_info: flag(
                lookup,
                &[
                    "TOMODACHI_PROMETHEUS_INCLUDE_TARGET_INFO",
                    "OTEL_PYTHON_TOMODACHI_PROMETHEUS_INCLUDE_TARGET_INFO",
                ],
                true,
            )?,
            exemplars_enabled: flag(
                lookup,
                &[
                    "TOMODACHI_PROMETHEUS_EXEMPLARS_ENABLED",
                    "OTEL_PYTHON_TOMODACHI_PROMETHEUS_EXEMPLARS_ENABLED",
                ],
                false,
            )?,
            namespace_prefix: first(
                lookup,
                &[
                    "TOMODACHI_PROMETHEUS_NAMESPACE_PREFIX",
                    "OTEL_PYTHON_TOMODACHI_PROMETHEUS_NAMESPACE_PREFIX",
                ],
            )
            .unwrap_or_default(),
        };
        let mut excluded_urls = Vec::new();
        let own = first(
            lookup,
            &[
                "TOMODACHI_OTEL_EXCLUDED_URLS",
                "OTEL_PYTHON_TOMODACHI_EXCLUDED_URLS",
                "OTEL_PYTHON_EXCLUDED_URLS",
            ],
        );
        for list in [own, lookup("OTEL_PYTHON_AIOHTTP_EXCLUDED_URLS")]
            .into_iter()
            .flatten()
        {
            excluded_urls.extend(
                list.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned),
            );
        }
        Ok(Self {
            service_name: service_name.to_owned(),
            service_uuid: service_uuid.to_owned(),
            traces: exporter("OTEL_TRACES_EXPORTER")?,
            metrics: exporter("OTEL_METRICS_EXPORTER")?,
            logs: exporter("OTEL_LOGS_EXPORTER")?,
            prometheus,
            excluded_urls,
        })
    }

    /// The resource: the SDK's (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`), with
    /// `service.name` = the service's name unless the environment set one or the name is
    /// the generic `service`/`app`, and `service.instance.id` = the service's uuid.
    pub fn resource(&self) -> Resource {
        let detected = Resource::builder().build();
        let name_set = detected
            .get(&Key::from_static_str("service.name"))
            .is_some_and(|v| !v.as_str().starts_with("unknown_service"));
        let mut builder = Resource::builder();
        if !name_set && !matches!(self.service_name.as_str(), "service" | "app" | "") {
            builder = builder.with_service_name(self.service_name.clone());
        }
        builder
            .with_attribute(KeyValue::new(
                "service.instance.id",
                self.service_uuid.clone(),
            ))
            .build()
    }
}

/// What [`install`] set up; [`Installed::shutdown`] flushes and stops it.
#[derive(Debug)]
pub struct Installed {
    /// The telemetry handle whose layers the service wraps its handlers in.
    pub telemetry: Telemetry,
    tracer_provider: SdkTracerProvider,
    meter_provider: SdkMeterProvider,
    logger_provider: Option<SdkLoggerProvider>,
    #[cfg(feature = "prometheus")]
    prometheus: Option<crate::prometheus::PrometheusServer>,
}

impl Installed {
    /// Where the Prometheus endpoint listens, if it runs.
    pub fn prometheus_address(&self) -> Option<SocketAddr> {
        #[cfg(feature = "prometheus")]
        {
            self.prometheus.as_ref().map(|p| p.local_addr())
        }
        #[cfg(not(feature = "prometheus"))]
        {
            None
        }
    }

    /// The logger provider, when `OTEL_LOGS_EXPORTER` names an exporter.
    pub fn logger_provider(&self) -> Option<&SdkLoggerProvider> {
        self.logger_provider.as_ref()
    }

    /// Flushes and shuts down the providers and stops the Prometheus endpoint. Blocks while
    /// exporting: call it from `spawn_blocking` (or outside the runtime).
    pub fn shutdown(self) {
        #[cfg(feature = "prometheus")]
        if let Some(server) = self.prometheus {
            server.stop();
        }
        if let Err(error) = self.tracer_provider.shutdown() {
            tracing::warn!(target: "tomodachi.opentelemetry", error = %error, "tracer provider shutdown failed");
        }
        if let Err(error) = self.meter_provider.shutdown() {
            tracing::warn!(target: "tomodachi.opentelemetry", error = %error, "meter provider shutdown failed");
        }
        if let Some(Err(error)) = self.logger_provider.map(|p| p.shutdown()) {
            tracing::warn!(target: "tomodachi.opentelemetry", error = %error, "logger provider shutdown failed");
        }
    }
}

/// Builds the tracer and meter providers `settings` ask for, makes them global, installs the
/// W3C trace-context propagator, turns on [`Delivery`](tomodachi_core::telemetry::Delivery)
/// contexts, and starts the Prometheus endpoint if
/// asked. Call it inside a tokio runtime (the batch exporters and the endpoint need one).
///
/// # Errors
/// An exporter is not compiled in or fails to build, the endpoint cannot listen, or an
/// excluded-URL pattern is invalid.
pub async fn install(settings: &Settings) -> Result<Installed, Error> {
    let resource = settings.resource();
    #[cfg_attr(not(any(feature = "otlp", feature = "console")), allow(unused_mut))]
    let mut tracer_builder = SdkTracerProvider::builder().with_resource(resource.clone());
    match settings.traces {
        Exporter::None => {}
        Exporter::Prometheus => {
            return Err(Error::UnknownExporter("prometheus (for traces)".to_owned()));
        }
        Exporter::Console => {
            #[cfg(feature = "console")]
            {
                tracer_builder = tracer_builder
                    .with_simple_exporter(opentelemetry_stdout::SpanExporter::default());
            }
            #[cfg(not(feature = "console"))]
            return Err(Error::NotCompiled("console"));
        }
        Exporter::Otlp => {
            #[cfg(feature = "otlp")]
            {
                let exporter = opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .build()
                    .map_err(|e| Error::Exporter {
                        what: "OTLP span",
                        message: e.to_string(),
                    })?;
                tracer_builder = tracer_builder.with_batch_exporter(exporter);
            }
            #[cfg(not(feature = "otlp"))]
            return Err(Error::NotCompiled("otlp"));
        }
    }
    let tracer_provider = tracer_builder.build();

    #[cfg_attr(not(all(feature = "otlp", feature = "prometheus")), allow(unused_mut))]
    let mut meter_builder = SdkMeterProvider::builder().with_resource(resource);
    #[cfg(feature = "prometheus")]
    let mut prometheus_listener = None;
    match settings.metrics {
        Exporter::None => {}
        Exporter::Console => {
            #[cfg(feature = "console")]
            {
                meter_builder = meter_builder
                    .with_periodic_exporter(opentelemetry_stdout::MetricExporter::default());
            }
            #[cfg(not(feature = "console"))]
            return Err(Error::NotCompiled("console"));
        }
        Exporter::Otlp => {
            #[cfg(feature = "otlp")]
            {
                let exporter = opentelemetry_otlp::MetricExporter::builder()
                    .with_tonic()
                    .build()
                    .map_err(|e| Error::Exporter {
                        what: "OTLP metric",
                        message: e.to_string(),
                    })?;
                meter_builder = meter_builder.with_periodic_exporter(exporter);
            }
            #[cfg(not(feature = "otlp"))]
            return Err(Error::NotCompiled("otlp"));
        }
        Exporter::Prometheus => {
            #[cfg(feature = "prometheus")]
            {
                let (reader, registry) = crate::prometheus::reader(&settings.prometheus)?;
                meter_builder = meter_builder.with_reader(reader);
                prometheus_listener = Some(registry);
            }
            #[cfg(not(feature = "prometheus"))]
            return Err(Error::NotCompiled("prometheus"));
        }
    }
    let meter_provider = meter_builder.build();
    let logger_provider = logger_provider(settings.logs, settings.resource())?;

    global::set_text_map_propagator(TraceContextPropagator::new());
    global::set_tracer_provider(tracer_provider.clone());
    global::set_meter_provider(meter_provider.clone());

    let telemetry = Telemetry::new(&tracer_provider, &meter_provider)
        .with_excluded_urls(&settings.excluded_urls)?
        .with_exemplars(
            settings.metrics == Exporter::Prometheus && settings.prometheus.exemplars_enabled,
        );
    tomodachi_core::telemetry::enable();

    #[cfg(feature = "prometheus")]
    let prometheus = match prometheus_listener {
        Some(registry) => Some(
            crate::prometheus::PrometheusServer::start(
                &settings.prometheus,
                registry,
                telemetry.clone(),
            )
            .await?,
        ),
        None => None,
    };

    Ok(Installed {
        telemetry,
        tracer_provider,
        meter_provider,
        logger_provider,
        #[cfg(feature = "prometheus")]
        prometheus,
    })
}

/// The logger provider `OTEL_LOGS_EXPORTER` asks for, if any.
// The `return`s are needed when an exporter's feature is off.
#[allow(clippy::needless_return)]
fn logger_provider(
    exporter: Exporter,
    resource: Resource,
) -> Result<Option<SdkLoggerProvider>, Error> {
    #[cfg_attr(
        not(any(feature = "otlp", feature = "console")),
        allow(unused_variables)
    )]
    let builder = SdkLoggerProvider::builder().with_resource(resource);
    match exporter {
        Exporter::None => Ok(None),
        Exporter::Prometheus => Err(Error::UnknownExporter("prometheus (for logs)".to_owned())),
        Exporter::Console => {
            #[cfg(feature = "console")]
            return Ok(Some(
                builder
                    .with_simple_exporter(opentelemetry_stdout::LogExporter::default())
                    .build(),
            ));
            #[cfg(not(feature = "console"))]
            Err(Error::NotCompiled("console"))
        }
        Exporter::Otlp => {
            #[cfg(feature = "otlp")]
            {
                let exporter = opentelemetry_otlp::LogExporter::builder()
                    .with_tonic()
                    .build()
                    .map_err(|e| Error::Exporter {
                        what: "OTLP log",
                        message: e.to_string(),
                    })?;
                return Ok(Some(builder.with_batch_exporter(exporter).build()));
            }
            #[cfg(not(feature = "otlp"))]
            Err(Error::NotCompiled("otlp"))
        }
    }
}

/// The trace and span ids (lowercase hex) of the current context, if a span is active:
/// what log formatters add to records as `trace_id` and `span_id`.
pub fn current_trace_ids() -> Option<(String, String)> {
    let cx = opentelemetry::Context::current();
    let span = cx.span();
    let context = span.span_context();
    context.is_valid().then(|| {
        (
            context.trace_id().to_string(),
            context.span_id().to_string(),
        )
    })
}

/// The trace and span ids of a span as lowercase hex, in place: what
/// [`current_hex_trace_ids`] returns, for a log formatter to copy without an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HexTraceIds {
    trace_id: [u8; 32],
    span_id: [u8; 16],
}

impl HexTraceIds {
    /// The ids of `context`, if it is valid.
    fn of(context: &opentelemetry::trace::SpanContext) -> Option<Self> {
        context.is_valid().then(|| {
            let mut ids = Self {
                trace_id: [0; 32],
                span_id: [0; 16],
            };
            hex(&context.trace_id().to_bytes(), &mut ids.trace_id);
            hex(&context.span_id().to_bytes(), &mut ids.span_id);
            ids
        })
    }

    /// The trace id: 32 lowercase hex digits.
    pub fn trace_id(&self) -> &str {
        std::str::from_utf8(&self.trace_id).unwrap_or_default()
    }

    /// The span id: 16 lowercase hex digits.
    pub fn span_id(&self) -> &str {
        std::str::from_utf8(&self.span_id).unwrap_or_default()
    }
}

fn hex(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (byte, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0xf)];
    }
}

/// [`current_trace_ids`] without its two `String`s: the ids of the current span, if one
/// is active, as hex held in place.
pub fn current_hex_trace_ids() -> Option<HexTraceIds> {
    let cx = opentelemetry::Context::current();
    HexTraceIds::of(cx.span().span_context())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, Error> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup("orders", "uuid-1", &|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_match_tomodachi() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.traces, Exporter::None);
        assert_eq!(s.metrics, Exporter::None);
        assert_eq!(s.logs, Exporter::None);
        assert_eq!(s.prometheus, PrometheusSettings::default());
        assert_eq!(s.prometheus.address, "localhost");
        assert_eq!(s.prometheus.port, 9464);
        assert!(s.excluded_urls.is_empty());
    }

    #[test]
    fn exporters_and_prometheus_settings_from_either_name() {
        let s = settings(&[
            ("OTEL_TRACES_EXPORTER", "console"),
            ("OTEL_METRICS_EXPORTER", "prometheus,otlp"),
            ("OTEL_LOGS_EXPORTER", "otlp"),
            ("OTEL_PYTHON_TOMODACHI_PROMETHEUS_ADDRESS", "0.0.0.0"),
            ("TOMODACHI_PROMETHEUS_PORT", "9999"),
            ("OTEL_PYTHON_TOMODACHI_PROMETHEUS_PORT", "1111"),
            (
                "OTEL_PYTHON_TOMODACHI_PROMETHEUS_INCLUDE_TARGET_INFO",
                "false",
            ),
            ("TOMODACHI_PROMETHEUS_INCLUDE_SCOPE_INFO", "0"),
            ("TOMODACHI_PROMETHEUS_NAMESPACE_PREFIX", "shop"),
        ])
        .unwrap();
        assert_eq!(s.traces, Exporter::Console);
        assert_eq!(s.metrics, Exporter::Prometheus);
        assert_eq!(s.logs, Exporter::Otlp);
        assert_eq!(s.prometheus.address, "0.0.0.0");
        assert_eq!(s.prometheus.port, 9999, "TOMODACHI_ name wins");
        assert!(!s.prometheus.include_target_info);
        assert!(!s.prometheus.include_scope_info);
        assert_eq!(s.prometheus.namespace_prefix, "shop");
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(matches!(
            settings(&[("OTEL_TRACES_EXPORTER", "zipkin")]),
            Err(Error::UnknownExporter(name)) if name == "zipkin"
        ));
        assert!(matches!(
            settings(&[("TOMODACHI_PROMETHEUS_PORT", "http")]),
            Err(Error::InvalidValue { .. })
        ));
        assert!(matches!(
            settings(&[("TOMODACHI_PROMETHEUS_EXEMPLARS_ENABLED", "maybe")]),
            Err(Error::InvalidValue { .. })
        ));
    }

    #[test]
    fn excluded_urls_from_tomodachi_and_aiohttp_names() {
        let s = settings(&[
            ("OTEL_PYTHON_EXCLUDED_URLS", "ignored-when-tomodachi-set"),
            ("OTEL_PYTHON_TOMODACHI_EXCLUDED_URLS", "^/health, /metrics"),
            ("OTEL_PYTHON_AIOHTTP_EXCLUDED_URLS", "/ping"),
        ])
        .unwrap();
        assert_eq!(s.excluded_urls, ["^/health", "/metrics", "/ping"]);
        let s = settings(&[
            ("TOMODACHI_OTEL_EXCLUDED_URLS", "/a"),
            ("OTEL_PYTHON_TOMODACHI_EXCLUDED_URLS", "/b"),
        ])
        .unwrap();
        assert_eq!(s.excluded_urls, ["/a"]);
        let s = settings(&[("OTEL_PYTHON_EXCLUDED_URLS", "/fallback")]).unwrap();
        assert_eq!(s.excluded_urls, ["/fallback"]);
    }

    fn resource_value(resource: &Resource, key: &'static str) -> Option<String> {
        resource
            .get(&Key::from_static_str(key))
            .map(|v| v.as_str().into_owned())
    }

    // The resource reads OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES from the process
    // environment; this test expects them unset (as in CI).
    #[test]
    fn resource_names_the_service_unless_generic() {
        if std::env::var_os("OTEL_SERVICE_NAME").is_some()
            || std::env::var_os("OTEL_RESOURCE_ATTRIBUTES").is_some()
        {
            return;
        }
        let s = settings(&[]).unwrap();
        let resource = s.resource();
        assert_eq!(
            resource_value(&resource, "service.name").as_deref(),
            Some("orders")
        );
        assert_eq!(
            resource_value(&resource, "service.instance.id").as_deref(),
            Some("uuid-1")
        );
        for generic in ["service", "app"] {
            let s = Settings::from_lookup(generic, "u", &|_| None).unwrap();
            let name = resource_value(&s.resource(), "service.name").unwrap_or_default();
            assert!(name.starts_with("unknown_service"), "{name}");
        }
    }

    #[test]
    fn hex_trace_ids_are_the_ids_as_strings() {
        use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
        let context = SpanContext::new(
            TraceId::from(0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c),
            SpanId::from(0x00b7_ad6b_7169_2033),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        let ids = HexTraceIds::of(&context).unwrap();
        assert_eq!(ids.trace_id(), context.trace_id().to_string());
        assert_eq!(ids.span_id(), context.span_id().to_string());
        assert_eq!(ids.span_id(), "00b7ad6b71692033");
        assert_eq!(HexTraceIds::of(&SpanContext::empty_context()), None);
        assert_eq!(current_hex_trace_ids(), None);
    }
}
