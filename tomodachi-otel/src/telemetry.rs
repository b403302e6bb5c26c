//! The [`Telemetry`] handle: a tracer, tomodachi's instruments and the settings every layer
//! shares.

use std::fmt;
use std::sync::Arc;

use std::sync::atomic::Ordering::Relaxed;

use opentelemetry::InstrumentationScope;
use opentelemetry::global::{self, BoxedTracer};
use opentelemetry::metrics::{
    Histogram, Meter, MeterProvider, ObservableCounter, ObservableUpDownCounter,
};
use opentelemetry::trace::{Tracer, TracerProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use regex::Regex;
use tomodachi_core::telemetry::{AWS_SQS, RABBITMQ, SCHEDULE};

use crate::http::HttpTraceLayer;
use crate::message::MessageTraceLayer;
use crate::publish::OtelPublishHook;
use crate::series::{
    ActiveRequests, DURATION_BUCKETS, Histogram as Series, MessageSeries, Registry, RequestSeries,
};

/// The instrumentation scope name of every span and instrument: `"tomodachi"`.
pub const SCOPE: &str = "tomodachi";

/// A tracer, tomodachi's metric instruments and the excluded-URL patterns: what the layers
/// and the publish hook share. Cheap to clone.
///
/// Build it from any tracer and meter provider (the in-memory ones in tests, the ones
/// [`crate::install`] builds from `OTEL_*` in a service), then take its layers:
/// [`Telemetry::message_layer`], [`Telemetry::http_layer`] and its publish hook,
/// [`Telemetry::publish_hook`].
#[derive(Clone)]
pub struct Telemetry {
    pub(crate) inner: Arc<Inner>,
    excluded_urls: Option<Regex>,
    /// Keep an exemplar per histogram bucket (see [`Telemetry::with_exemplars`]).
    pub(crate) exemplars: bool,
}

pub(crate) struct Inner {
    pub(crate) tracer: Arc<BoxedTracer>,
    pub(crate) propagator: TraceContextPropagator,
    pub(crate) http: HttpInstruments,
    pub(crate) sqs: MessageInstruments,
    pub(crate) rabbitmq: MessageInstruments,
    pub(crate) schedule: MessageInstruments,
}

pub(crate) struct HttpInstruments {
    pub(crate) duration: Histogram<f64>,
    pub(crate) duration_name: &'static str,
    pub(crate) active: Arc<Registry<ActiveRequests>>,
    pub(crate) series: Registry<RequestSeries>,
    pub(crate) routes: Registry<Arc<str>>,
    _active: ObservableUpDownCounter<i64>,
}

pub(crate) struct MessageInstruments {
    pub(crate) duration: Histogram<f64>,
    pub(crate) duration_name: &'static str,
    pub(crate) series: Arc<Registry<MessageSeries>>,
    _active: ObservableUpDownCounter<i64>,
    _handled: ObservableCounter<u64>,
}

impl MessageInstruments {
    fn new(meter: &Meter, names: [&'static str; 3], unit: &'static str) -> Self {
        let [duration_name, active, handled] = names;
        let series = Arc::new(Registry::<MessageSeries>::default());
        let observed = Arc::clone(&series);
        let active = meter
            .i64_observable_up_down_counter(active)
            .with_unit(unit)
            .with_description("Deliveries being handled now")
            .with_callback(move |observer| {
                observed.for_each(|s| observer.observe(s.active.load(Relaxed), &s.attributes));
            })
            .build();
        let observed = Arc::clone(&series);
        let handled = meter
            .u64_observable_counter(handled)
            .with_unit(unit)
            .with_description("Deliveries handled, by outcome (ack, retry, reject)")
            .with_callback(move |observer| {
                observed.for_each(|s| {
                    for (count, attributes) in s.handled.iter().zip(&s.outcome_attributes) {
                        observer.observe(count.load(Relaxed), attributes);
                    }
                });
            })
            .build();
        Self {
            duration: meter
                .f64_histogram(duration_name)
                .with_unit("s")
                .with_description("Duration of handling one delivery")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            duration_name,
            series,
            _active: active,
            _handled: handled,
        }
    }
}

impl Telemetry {
    /// Telemetry recording to these providers, with scope `"tomodachi"`.
    pub fn new<T, M>(tracer_provider: &T, meter_provider: &M) -> Self
    where
        T: TracerProvider,
        T::Tracer: Tracer + Send + Sync + 'static,
        <T::Tracer as Tracer>::Span: Send + Sync + 'static,
        M: MeterProvider,
    {
        let tracer = BoxedTracer::new(Box::new(tracer_provider.tracer_with_scope(scope())));
        Self::from_parts(tracer, meter_provider.meter_with_scope(scope()))
    }

    /// Telemetry recording to the global providers (`opentelemetry::global`).
    pub fn global() -> Self {
        Self::from_parts(
            global::tracer_with_scope(scope()),
            global::meter_with_scope(scope()),
        )
    }

    fn from_parts(tracer: BoxedTracer, meter: Meter) -> Self {
        let active = Arc::new(Registry::<ActiveRequests>::default());
        let observed = Arc::clone(&active);
        let http = HttpInstruments {
            duration: meter
                .f64_histogram("http.server.duration")
                .with_unit("s")
                .with_description("Duration of HTTP server requests")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            duration_name: "http.server.duration",
            _active: meter
                .i64_observable_up_down_counter("http.server.active_requests")
                .with_unit("{request}")
                .with_description("HTTP server requests being handled now")
                .with_callback(move |observer| {
                    observed.for_each(|a| observer.observe(a.active.load(Relaxed), &a.attributes));
                })
                .build(),
            active,
            series: Registry::default(),
            routes: Registry::default(),
        };
        Self {
            inner: Arc::new(Inner {
                tracer: Arc::new(tracer),
                propagator: TraceContextPropagator::new(),
                http,
                sqs: MessageInstruments::new(
                    &meter,
                    [
                        "messaging.aws_sqs.duration",
                        "messaging.aws_sqs.active_tasks",
                        "messaging.aws_sqs.handled",
                    ],
                    "{message}",
                ),
                rabbitmq: MessageInstruments::new(
                    &meter,
                    [
                        "messaging.rabbitmq.duration",
                        "messaging.rabbitmq.active_tasks",
                        "messaging.rabbitmq.handled",
                    ],
                    "{message}",
                ),
                schedule: MessageInstruments::new(
                    &meter,
                    [
                        "function.duration",
                        "function.active_tasks",
                        "function.handled",
                    ],
                    "{task}",
                ),
            }),
            excluded_urls: None,
            exemplars: false,
        }
    }

    /// Requests whose path matches any of these regular expressions (searched, not
    /// anchored, as tomodachi does) get no span and no metrics.
    ///
    /// # Errors
    /// A pattern is not a valid regular expression.
    pub fn with_excluded_urls<I, P>(self, patterns: I) -> Result<Self, regex::Error>
    where
        I: IntoIterator<Item = P>,
        P: AsRef<str>,
    {
        let joined: Vec<String> = patterns
            .into_iter()
            .map(|p| p.as_ref().trim().to_owned())
            .filter(|p| !p.is_empty())
            .map(|p| format!("(?:{p})"))
            .collect();
        let excluded = if joined.is_empty() {
            None
        } else {
            Some(Regex::new(&joined.join("|"))?)
        };
        Ok(Self {
            excluded_urls: excluded,
            ..self
        })
    }

    /// Keeps, per bucket of each duration histogram series, the trace and span id of the
    /// latest sampled span that recorded a measurement there: the exemplars the Prometheus
    /// endpoint serves to an OpenMetrics scraper. Call it before taking layers.
    #[must_use]
    pub fn with_exemplars(self, enabled: bool) -> Self {
        Self {
            exemplars: enabled,
            ..self
        }
    }

    /// Is this path excluded from instrumentation?
    pub fn is_excluded(&self, path: &str) -> bool {
        self.excluded_urls
            .as_ref()
            .is_some_and(|re| re.is_match(path))
    }

    /// The layer tracing and measuring message handlers (SQS, AMQP, schedules).
    pub fn message_layer(&self) -> MessageTraceLayer {
        MessageTraceLayer::new(self.clone())
    }

    /// The layer tracing and measuring HTTP requests.
    pub fn http_layer(&self) -> HttpTraceLayer {
        HttpTraceLayer::new(self.clone())
    }

    /// The publish hook that opens PRODUCER spans and injects `traceparent`; install it
    /// with [`tomodachi_core::telemetry::set_publish_hook`].
    pub fn publish_hook(&self) -> OtelPublishHook {
        OtelPublishHook::new(self.clone())
    }

    /// The route pattern `route`, shared (one allocation per route for the process).
    pub(crate) fn route(&self, route: &str) -> Arc<str> {
        Arc::clone(
            &self
                .inner
                .http
                .routes
                .get_or_insert(|r| **r == *route, || Arc::from(route)),
        )
    }

    /// Calls `f` with each duration histogram series and its instrument's name.
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub(crate) fn histograms(&self, f: &mut dyn FnMut(&'static str, &Series)) {
        let http = &self.inner.http;
        http.series
            .for_each(|s| f(http.duration_name, &s.histogram));
        for instruments in [&self.inner.sqs, &self.inner.rabbitmq, &self.inner.schedule] {
            instruments.series.for_each(|s| {
                for histogram in &s.duration {
                    f(instruments.duration_name, histogram);
                }
            });
        }
    }

    pub(crate) fn instruments(&self, system: &str) -> Option<&MessageInstruments> {
        match system {
            AWS_SQS => Some(&self.inner.sqs),
            RABBITMQ => Some(&self.inner.rabbitmq),
            SCHEDULE => Some(&self.inner.schedule),
            _ => None,
        }
    }
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telemetry")
            .field("excluded_urls", &self.excluded_urls)
            .finish_non_exhaustive()
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope::builder(SCOPE)
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}
