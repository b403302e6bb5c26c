//! The [`Telemetry`] handle: a tracer, tomodachi's instruments and the settings every layer
//! shares.

use std::any::Any;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use std::sync::atomic::Ordering::Relaxed;

use opentelemetry::global::{self, BoxedTracer};
use opentelemetry::metrics::{
    Histogram, Meter, MeterProvider, ObservableCounter, ObservableUpDownCounter,
};
use opentelemetry::trace::{SpanBuilder, TraceContextExt};
use opentelemetry::trace::{Tracer, TracerProvider};
use opentelemetry::{Context, InstrumentationScope};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracer;
use regex::Regex;
use tomodachi_core::telemetry::{AWS_SQS, RABBITMQ, SCHEDULE};

use crate::http::HttpTraceLayer;
use crate::message::MessageTraceLayer;
use crate::publish::PublishTraceLayer;
use crate::series::{
    ActiveRequests, DURATION_BUCKETS, Histogram as Series, MessageSeries, Registry, RequestSeries,
};

/// The instrumentation scope name of every span and instrument: `"tomodachi"`.
pub const SCOPE: &str = "tomodachi";

/// A tracer, tomodachi's metric instruments and the excluded-URL patterns: what the layers
/// share. Cheap to clone.
///
/// Build it from any tracer and meter provider (the in-memory ones in tests, the ones
/// [`crate::install`] builds from `OTEL_*` in a service), then take its layers:
/// [`Telemetry::message_layer`], [`Telemetry::http_layer`] and, for publishers,
/// [`Telemetry::publish_layer`].
#[derive(Clone)]
pub struct Telemetry {
    pub(crate) inner: Arc<Inner>,
    /// Shared: cloning a `Regex` makes it a new cache pool.
    excluded_urls: Option<Arc<Regex>>,
    /// Keep an exemplar per histogram bucket (see [`Telemetry::with_exemplars`]).
    pub(crate) exemplars: bool,
}

pub(crate) struct Inner {
    pub(crate) tracer: Arc<BoxedTracer>,
    /// `tracer` when it is the SDK's.
    sdk_tracer: Option<SdkTracer>,
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
    /// The entries of `active` by method (index in [`METHODS`]) and scheme (http, https),
    /// found without a lock.
    active_by_method: [[OnceLock<Arc<ActiveRequests>>; 2]; METHODS.len()],
    pub(crate) series: Registry<RequestSeries>,
    pub(crate) routes: Registry<Route>,
    _active: ObservableUpDownCounter<i64>,
}

pub(crate) struct MessageInstruments {
    pub(crate) duration: Histogram<f64>,
    pub(crate) duration_name: &'static str,
    pub(crate) series: Arc<Registry<MessageSeries>>,
    _active: ObservableUpDownCounter<i64>,
    _handled: ObservableCounter<u64>,
}

impl HttpInstruments {
    /// The in-flight count of requests with method `METHODS[method]` and `scheme`, made by
    /// `make` the first time.
    pub(crate) fn active(
        &self,
        method: usize,
        scheme: &'static str,
        make: impl FnOnce() -> ActiveRequests,
    ) -> Arc<ActiveRequests> {
        let method = method.min(METHODS.len() - 1);
        let slot = &self.active_by_method[method][usize::from(scheme == "https")];
        Arc::clone(slot.get_or_init(|| {
            self.active
                .get_or_insert(|a| a.method == METHODS[method] && a.scheme == scheme, make)
        }))
    }
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
        let tracer = tracer_provider.tracer_with_scope(scope());
        // The SDK's own tracer is kept as itself too: its spans then need no box of their
        // own, nor a virtual call per span operation.
        let sdk = (&tracer as &dyn Any).downcast_ref::<SdkTracer>().cloned();
        let mut telemetry = Self::from_parts(
            BoxedTracer::new(Box::new(tracer)),
            meter_provider.meter_with_scope(scope()),
        );
        if let Some(inner) = Arc::get_mut(&mut telemetry.inner) {
            inner.sdk_tracer = sdk;
        }
        telemetry
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
            active_by_method: Default::default(),
            series: Registry::default(),
            routes: Registry::default(),
        };
        Self {
            inner: Arc::new(Inner {
                tracer: Arc::new(tracer),
                sdk_tracer: None,
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
            Some(Arc::new(Regex::new(&joined.join("|"))?))
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

    /// The layer around a publisher that opens PRODUCER spans and injects `traceparent`.
    pub fn publish_layer(&self) -> PublishTraceLayer {
        PublishTraceLayer::new(self.clone())
    }

    /// `parent` with a new span from `builder` as its active span.
    pub(crate) fn start_span(&self, builder: SpanBuilder, parent: &Context) -> Context {
        match &self.inner.sdk_tracer {
            Some(tracer) => parent.with_span(tracer.build_with_context(builder, parent)),
            None => parent.with_span(self.inner.tracer.build_with_context(builder, parent)),
        }
    }

    /// The route pattern `route`, shared (one allocation per route for the process).
    pub(crate) fn route(&self, route: &str) -> Arc<Route> {
        self.inner
            .http
            .routes
            .get_or_insert(|r| *r.pattern == *route, || Route::new(route))
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

/// A matched route pattern and its span names, `"{METHOD} {route}"`, made once per method.
#[derive(Debug)]
pub(crate) struct Route {
    pub(crate) pattern: Arc<str>,
    names: [OnceLock<&'static str>; METHODS.len()],
}

/// The values of `http.request.method`: the known methods, then `_OTHER`.
pub(crate) const METHODS: [&str; 10] = [
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE", "_OTHER",
];

impl Route {
    fn new(pattern: &str) -> Self {
        Self {
            pattern: Arc::from(pattern),
            names: Default::default(),
        }
    }

    /// The span name of a request with method `METHODS[method]` on this route.
    pub(crate) fn span_name(&self, method: usize) -> &'static str {
        let method = method.min(METHODS.len() - 1);
        self.names[method].get_or_init(|| intern([METHODS[method], " ", &self.pattern].concat()))
    }
}

/// `name`, kept for the rest of the process: a span name must be `'static` for the SDK to
/// take it without an allocation per span. Span names are made of route patterns, a set
/// the service defines, and each distinct name is kept once however many [`Telemetry`]
/// handles ask for it.
fn intern(name: String) -> &'static str {
    static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut names = NAMES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(found) = names.get(name.as_str()) {
        return found;
    }
    let name: &'static str = Box::leak(name.into_boxed_str());
    names.insert(name);
    name
}

fn scope() -> InstrumentationScope {
    InstrumentationScope::builder(SCOPE)
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}
