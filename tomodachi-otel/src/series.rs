//! What the layers keep per attribute set, so the hot path builds no attributes and makes
//! one SDK measurement per message or request: the attribute sets, built once; the
//! active and per-outcome counts as atomics read by observable instruments at collection;
//! and, when enabled, one exemplar per histogram bucket.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::SystemTime;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{BoundHistogram, Histogram as Instrument};
use opentelemetry::trace::{SpanContext, SpanId, TraceId};

/// Bucket boundaries (seconds) of the duration histograms.
pub(crate) const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Series found by a linear scan: there are few (one per consumer, one per route and
/// status), and a scan of a handful of entries under a read lock beats hashing.
#[derive(Debug)]
pub(crate) struct Registry<T>(RwLock<Vec<Arc<T>>>);

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Self(RwLock::new(Vec::new()))
    }
}

impl<T> Registry<T> {
    /// The entry `matches` finds, else a new one from `make`.
    pub(crate) fn get_or_insert(
        &self,
        matches: impl Fn(&T) -> bool,
        make: impl FnOnce() -> T,
    ) -> Arc<T> {
        let entries = self.0.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = entries.iter().find(|e| matches(e)) {
            return Arc::clone(found);
        }
        drop(entries);
        let mut entries = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = entries.iter().find(|e| matches(e)) {
            return Arc::clone(found);
        }
        let entry = Arc::new(make());
        entries.push(Arc::clone(&entry));
        entry
    }

    /// Calls `f` with each entry.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&T)) {
        for entry in self.0.read().unwrap_or_else(PoisonError::into_inner).iter() {
            f(entry);
        }
    }
}

/// The sampled span a measurement was made in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Exemplar {
    pub(crate) value: f64,
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    pub(crate) time: SystemTime,
}

/// The latest exemplar of each bucket of one histogram series (`+Inf` last).
#[derive(Debug, Default)]
pub(crate) struct Exemplars(Mutex<[Option<Exemplar>; DURATION_BUCKETS.len() + 1]>);

impl Exemplars {
    /// Keeps `value` as its bucket's exemplar if `span` is sampled.
    pub(crate) fn offer(&self, value: f64, span: &SpanContext) {
        if !span.is_sampled() {
            return;
        }
        let bucket = DURATION_BUCKETS.partition_point(|bound| *bound < value);
        let exemplar = Exemplar {
            value,
            trace_id: span.trace_id(),
            span_id: span.span_id(),
            time: SystemTime::now(),
        };
        self.0.lock().unwrap_or_else(PoisonError::into_inner)[bucket] = Some(exemplar);
    }

    /// A copy of every bucket's exemplar (one lock, once per series and scrape).
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub(crate) fn all(&self) -> BucketExemplars {
        BucketExemplars(*self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The exemplar of the bucket with upper bound `le` (`f64::INFINITY` for `+Inf`).
    #[cfg(test)]
    pub(crate) fn bucket(&self, le: f64) -> Option<Exemplar> {
        self.all().bucket(le)
    }
}

/// A copy of one histogram series' exemplars, as a scrape reads them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BucketExemplars([Option<Exemplar>; DURATION_BUCKETS.len() + 1]);

impl BucketExemplars {
    /// The exemplar of the bucket with upper bound `le` (`f64::INFINITY` for `+Inf`).
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub(crate) fn bucket(&self, le: f64) -> Option<Exemplar> {
        let index = DURATION_BUCKETS
            .iter()
            .position(|bound| *bound == le)
            .unwrap_or(DURATION_BUCKETS.len());
        self.0[index]
    }
}

/// A histogram series: its attributes, the instrument bound to them (a measurement neither
/// sorts nor hashes the attributes again) and, when enabled, its exemplars.
#[derive(Debug)]
pub(crate) struct Histogram {
    /// Read by the Prometheus endpoint only (an exemplar goes with its series).
    #[cfg(feature = "prometheus")]
    pub(crate) attributes: Box<[KeyValue]>,
    bound: BoundHistogram<f64>,
    pub(crate) exemplars: Option<Exemplars>,
}

impl Histogram {
    pub(crate) fn new(
        instrument: &Instrument<f64>,
        attributes: Vec<KeyValue>,
        exemplars: bool,
    ) -> Self {
        Self {
            bound: instrument.bind(&attributes),
            #[cfg(feature = "prometheus")]
            attributes: attributes.into_boxed_slice(),
            exemplars: exemplars.then(Exemplars::default),
        }
    }

    /// Records `value` in this series, and as its bucket's exemplar if `span` is sampled and
    /// exemplars are kept.
    pub(crate) fn record(&self, value: f64, span: &SpanContext) {
        self.bound.record(value);
        if let Some(exemplars) = &self.exemplars {
            exemplars.offer(value, span);
        }
    }
}

/// The outcomes a message handler ends with, in `MessageSeries::handled` order.
pub(crate) const OUTCOMES: [&str; 3] = ["ack", "retry", "reject"];

/// One consumer's (or scheduled function's) series.
#[derive(Debug)]
pub(crate) struct MessageSeries {
    pub(crate) system: &'static str,
    pub(crate) destination: Arc<str>,
    pub(crate) handler: Arc<str>,
    /// Attributes of `active_tasks`.
    pub(crate) attributes: Box<[KeyValue]>,
    /// Attributes of `handled`, by outcome.
    pub(crate) outcome_attributes: [Box<[KeyValue]>; 3],
    /// The duration histogram's series, `function.success` false then true.
    pub(crate) duration: [Histogram; 2],
    pub(crate) active: AtomicI64,
    pub(crate) handled: [AtomicU64; 3],
}

impl MessageSeries {
    pub(crate) fn new(
        duration: &Instrument<f64>,
        system: &'static str,
        destination: Arc<str>,
        handler: Arc<str>,
        attributes: Vec<KeyValue>,
        exemplars: bool,
    ) -> Self {
        let with = |kv: KeyValue| {
            let mut all = attributes.clone();
            all.push(kv);
            all
        };
        Self {
            system,
            destination,
            handler,
            outcome_attributes: OUTCOMES
                .map(|outcome| with(KeyValue::new("tomodachi.outcome", outcome)).into()),
            duration: [false, true].map(|success| {
                Histogram::new(
                    duration,
                    with(KeyValue::new("function.success", success)),
                    exemplars,
                )
            }),
            attributes: attributes.into_boxed_slice(),
            active: AtomicI64::new(0),
            handled: Default::default(),
        }
    }

    pub(crate) fn is(&self, system: &str, destination: &Arc<str>, handler: &Arc<str>) -> bool {
        self.system == system
            && (Arc::ptr_eq(&self.destination, destination) || self.destination == *destination)
            && (Arc::ptr_eq(&self.handler, handler) || self.handler == *handler)
    }

    pub(crate) fn started(&self) {
        self.active.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn finished(&self, outcome: usize) {
        self.active.fetch_sub(1, Ordering::Relaxed);
        self.handled[outcome].fetch_add(1, Ordering::Relaxed);
    }
}

/// Requests in flight by method and scheme (`http.server.active_requests`).
#[derive(Debug)]
pub(crate) struct ActiveRequests {
    pub(crate) method: &'static str,
    pub(crate) scheme: &'static str,
    pub(crate) attributes: Box<[KeyValue]>,
    pub(crate) active: AtomicI64,
}

/// One `http.server.duration` series.
#[derive(Debug)]
pub(crate) struct RequestSeries {
    pub(crate) method: &'static str,
    pub(crate) scheme: &'static str,
    pub(crate) version: &'static str,
    pub(crate) route: Option<Arc<str>>,
    pub(crate) status: Option<u16>,
    pub(crate) histogram: Histogram,
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{TraceFlags, TraceState};

    fn span(sampled: bool) -> SpanContext {
        SpanContext::new(
            TraceId::from(7),
            SpanId::from(9),
            if sampled {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::default()
            },
            false,
            TraceState::default(),
        )
    }

    #[test]
    fn exemplars_land_in_their_bucket_and_only_from_sampled_spans() {
        let exemplars = Exemplars::default();
        exemplars.offer(0.003, &span(true));
        exemplars.offer(0.01, &span(true));
        exemplars.offer(60.0, &span(true));
        exemplars.offer(0.2, &span(false));
        assert_eq!(exemplars.bucket(0.005).map(|e| e.value), Some(0.003));
        assert_eq!(
            exemplars.bucket(0.01).map(|e| e.value),
            Some(0.01),
            "le is inclusive"
        );
        assert_eq!(exemplars.bucket(f64::INFINITY).map(|e| e.value), Some(60.0));
        assert_eq!(exemplars.bucket(0.25), None, "unsampled spans leave none");
        let found = exemplars.bucket(0.005).unwrap();
        assert_eq!(found.trace_id, TraceId::from(7));
        assert_eq!(found.span_id, SpanId::from(9));
    }

    #[test]
    fn registry_finds_or_makes_once() {
        let registry = Registry::<u32>::default();
        assert_eq!(*registry.get_or_insert(|v| *v == 1, || 1), 1);
        assert_eq!(*registry.get_or_insert(|v| *v == 1, || unreachable!()), 1);
        registry.get_or_insert(|v| *v == 2, || 2);
        let mut seen = Vec::new();
        registry.for_each(|v| seen.push(*v));
        assert_eq!(seen, [1, 2]);
    }
}
