//! W3C trace context in and out of carriers: message [`Carrier`]s and HTTP headers.

use http::HeaderMap;
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use tomodachi_core::telemetry::Carrier;

use crate::Telemetry;

struct CarrierExtractor<'a>(&'a Carrier);

impl Extractor for CarrierExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)
    }

    fn keys(&self) -> Vec<&str> {
        Carrier::KEYS
            .iter()
            .copied()
            .filter(|k| self.0.get(k).is_some())
            .collect()
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

pub(crate) struct FnInjector<'a>(pub(crate) &'a mut dyn FnMut(&str, &str));

impl opentelemetry::propagation::Injector for FnInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        // The W3C propagator writes an empty `tracestate`; SNS/SQS refuse empty attribute
        // values, and Python tomodachi sends none, so empty values are not passed on.
        if !value.is_empty() {
            (self.0)(key, &value);
        }
    }
}

impl Telemetry {
    /// The parent context of a delivery: the remote span in `carrier` if it holds a valid
    /// `traceparent`, else the current context.
    pub fn extract_carrier(&self, carrier: &Carrier) -> Context {
        let current = Context::current();
        if carrier.is_empty() {
            return current;
        }
        self.inner
            .propagator
            .extract_with_context(&current, &CarrierExtractor(carrier))
    }

    /// The parent context of an HTTP request: from its `traceparent`/`tracestate` headers,
    /// else the current context.
    pub fn extract_headers(&self, headers: &HeaderMap) -> Context {
        let current = Context::current();
        if !headers.contains_key("traceparent") {
            return current;
        }
        self.inner
            .propagator
            .extract_with_context(&current, &HeaderExtractor(headers))
    }

    /// Writes `cx`'s span as `traceparent`/`tracestate` through `inject`.
    pub fn inject_context(&self, cx: &Context, inject: &mut dyn FnMut(&str, &str)) {
        self.inner
            .propagator
            .inject_context(cx, &mut FnInjector(inject));
    }
}
