//! W3C trace context in and out of carriers: message [`Carrier`]s and HTTP headers.

use http::{HeaderMap, HeaderName};
use std::str::FromStr;

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
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

/// The common `traceparent` (version `00`, 55 characters, lowercase hex, flags 00–ff),
/// parsed without the propagator's allocations; anything else is left to the propagator,
/// so the rules stay W3C's and the SDK's.
fn traceparent_00(value: &str) -> Option<(TraceId, SpanId, TraceFlags)> {
    let bytes = value.as_bytes();
    if bytes.len() != 55 || !bytes.starts_with(b"00-") || bytes[35] != b'-' || bytes[52] != b'-' {
        return None;
    }
    fn hex(digits: &[u8]) -> Option<u128> {
        digits.iter().try_fold(0_u128, |value, digit| {
            let nibble = match digit {
                b'0'..=b'9' => digit - b'0',
                b'a'..=b'f' => digit - b'a' + 10,
                _ => return None,
            };
            Some(value << 4 | u128::from(nibble))
        })
    }
    let trace_id = TraceId::from(hex(&bytes[3..35])?);
    let span_id = SpanId::from(u64::try_from(hex(&bytes[36..52])?).ok()?);
    let flags = u8::try_from(hex(&bytes[53..55])?).ok()?;
    Some((
        trace_id,
        span_id,
        TraceFlags::new(flags) & TraceFlags::SAMPLED,
    ))
}

/// `current` with the remote span of `traceparent` (the common form, see
/// [`traceparent_00`]) and `tracestate` as parent; `None` to leave other forms to the
/// propagator.
fn remote_parent(
    current: &Context,
    traceparent: &str,
    tracestate: Option<&str>,
) -> Option<Context> {
    let (trace_id, span_id, flags) = traceparent_00(traceparent)?;
    let state = tracestate
        .and_then(|s| TraceState::from_str(s).ok())
        .unwrap_or_default();
    let remote = SpanContext::new(trace_id, span_id, flags, true, state);
    Some(if remote.is_valid() {
        current.with_remote_span_context(remote)
    } else {
        current.clone()
    })
}

pub(crate) static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

impl Telemetry {
    /// The parent context of a delivery: the remote span in `carrier` if it holds a valid
    /// `traceparent`, else the current context.
    pub fn extract_carrier(&self, carrier: &Carrier) -> Context {
        let current = Context::current();
        if carrier.is_empty() {
            return current;
        }
        if let Some(parent) = carrier.traceparent.as_deref().and_then(|traceparent| {
            remote_parent(&current, traceparent, carrier.tracestate.as_deref())
        }) {
            return parent;
        }
        self.inner
            .propagator
            .extract_with_context(&current, &CarrierExtractor(carrier))
    }

    /// The parent context of an HTTP request: from its `traceparent`/`tracestate` headers,
    /// else the current context.
    pub fn extract_headers(&self, headers: &HeaderMap) -> Context {
        let current = Context::current();
        let Some(traceparent) = headers.get(&TRACEPARENT) else {
            return current;
        };
        // As the propagator reads them: the first value of each header.
        let tracestate = headers.get(&TRACESTATE).and_then(|v| v.to_str().ok());
        if let Some(parent) = traceparent
            .to_str()
            .ok()
            .and_then(|traceparent| remote_parent(&current, traceparent, tracestate))
        {
            return parent;
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

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_sdk::metrics::SdkMeterProvider;
    use opentelemetry_sdk::trace::SdkTracerProvider;

    /// The fast path and the SDK's propagator agree on every shape of `traceparent`, from a
    /// carrier and from headers.
    #[test]
    fn fast_traceparent_agrees_with_the_propagator() {
        let telemetry = Telemetry::new(&SdkTracerProvider::default(), &SdkMeterProvider::default());
        let values = [
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-ff",
            "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333g-01",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
        ];
        for value in values {
            for state in [None, Some("a=1,b=2"), Some("not a state")] {
                let carrier = Carrier {
                    traceparent: Some(value.to_owned()),
                    tracestate: state.map(str::to_owned),
                };
                let fast = telemetry.extract_carrier(&carrier);
                let sdk = telemetry
                    .inner
                    .propagator
                    .extract_with_context(&Context::current(), &CarrierExtractor(&carrier));
                assert_eq!(
                    fast.span().span_context(),
                    sdk.span().span_context(),
                    "{value} {state:?}"
                );
                let mut headers = HeaderMap::new();
                headers.insert(&TRACEPARENT, value.parse().unwrap());
                if let Some(state) = state {
                    headers.insert(&TRACESTATE, state.parse().unwrap());
                }
                let fast = telemetry.extract_headers(&headers);
                let sdk = telemetry
                    .inner
                    .propagator
                    .extract_with_context(&Context::current(), &HeaderExtractor(&headers));
                assert_eq!(
                    fast.span().span_context(),
                    sdk.span().span_context(),
                    "headers {value} {state:?}"
                );
            }
        }
    }
}
