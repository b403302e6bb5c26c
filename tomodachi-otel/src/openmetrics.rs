//! The OpenMetrics text format (what a scraper gets when it sends
//! `Accept: application/openmetrics-text`), with exemplars on histogram buckets. The
//! `prometheus` crate only writes the older text format.

use std::fmt::Write;
use std::time::UNIX_EPOCH;

use prometheus::proto::{LabelPair, Metric, MetricFamily, MetricType};

use crate::series::{BucketExemplars, Exemplar};

/// The content type of [`encode`]'s output.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Does this `Accept` header ask for OpenMetrics?
pub(crate) fn accepts(accept: Option<&str>) -> bool {
    accept.is_some_and(|accept| {
        accept.split(',').any(|range| {
            range
                .split(';')
                .next()
                .is_some_and(|media| media.trim() == "application/openmetrics-text")
        })
    })
}

/// Writes `families` as OpenMetrics text; `exemplars(family, metric)` gives the exemplars
/// of a histogram series' buckets, if any (asked once per series).
pub(crate) fn encode(
    families: &[MetricFamily],
    exemplars: &dyn Fn(&MetricFamily, &Metric) -> Option<BucketExemplars>,
) -> String {
    let mut out = String::new();
    for family in families {
        let name = family.name();
        let kind = family.get_field_type();
        let (family_name, kind_name) = match kind {
            MetricType::COUNTER => (name.strip_suffix("_total").unwrap_or(name), "counter"),
            MetricType::GAUGE if matches!(name, "target_info" | "otel_scope_info") => {
                (name.strip_suffix("_info").unwrap_or(name), "info")
            }
            MetricType::GAUGE => (name, "gauge"),
            MetricType::HISTOGRAM => (name, "histogram"),
            MetricType::SUMMARY => (name, "summary"),
            MetricType::UNTYPED => (name, "unknown"),
        };
        let _ = writeln!(out, "# TYPE {family_name} {kind_name}");
        if !family.help().is_empty() {
            let _ = writeln!(out, "# HELP {family_name} {}", escape(family.help()));
        }
        for metric in family.get_metric() {
            let labels = metric.get_label();
            match kind {
                MetricType::COUNTER => {
                    sample(&mut out, family_name, "_total", labels, None);
                    value(&mut out, metric.get_counter().get_value());
                }
                MetricType::GAUGE if kind_name == "info" => {
                    sample(&mut out, family_name, "_info", labels, None);
                    out.push_str(" 1\n");
                }
                MetricType::GAUGE => {
                    sample(&mut out, family_name, "", labels, None);
                    value(&mut out, metric.get_gauge().get_value());
                }
                MetricType::HISTOGRAM => {
                    let histogram = metric.get_histogram();
                    let found = exemplars(family, metric);
                    let exemplar = |le| found.as_ref().and_then(|all| all.bucket(le));
                    let mut inf_written = false;
                    for bucket in histogram.get_bucket() {
                        let le = bucket.upper_bound();
                        inf_written |= le == f64::INFINITY;
                        bucket_line(
                            &mut out,
                            family_name,
                            labels,
                            le,
                            bucket.cumulative_count(),
                            exemplar(le),
                        );
                    }
                    if !inf_written {
                        bucket_line(
                            &mut out,
                            family_name,
                            labels,
                            f64::INFINITY,
                            histogram.get_sample_count(),
                            exemplar(f64::INFINITY),
                        );
                    }
                    sample(&mut out, family_name, "_count", labels, None);
                    let _ = writeln!(out, " {}", histogram.get_sample_count());
                    sample(&mut out, family_name, "_sum", labels, None);
                    value(&mut out, histogram.get_sample_sum());
                }
                // The OpenTelemetry exporter makes no summaries or untyped metrics.
                MetricType::SUMMARY | MetricType::UNTYPED => {}
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

fn bucket_line(
    out: &mut String,
    name: &str,
    labels: &[LabelPair],
    le: f64,
    count: u64,
    exemplar: Option<Exemplar>,
) {
    sample(out, name, "_bucket", labels, Some(le));
    let _ = write!(out, " {count}");
    if let Some(exemplar) = exemplar {
        let seconds = exemplar
            .time
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let _ = write!(
            out,
            " # {{trace_id=\"{}\",span_id=\"{}\"}} {} {seconds:.3}",
            exemplar.trace_id,
            exemplar.span_id,
            float(exemplar.value)
        );
    }
    out.push('\n');
}

/// `name` + `suffix` + `{labels}` (and `le` for a bucket).
fn sample(out: &mut String, name: &str, suffix: &str, labels: &[LabelPair], le: Option<f64>) {
    out.push_str(name);
    out.push_str(suffix);
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for label in labels {
        if !first {
            out.push(',');
        }
        first = false;
        let _ = write!(out, "{}=\"{}\"", label.name(), escape(label.value()));
    }
    if let Some(le) = le {
        if !first {
            out.push(',');
        }
        let _ = write!(out, "le=\"{}\"", float(le));
    }
    out.push('}');
}

fn value(out: &mut String, value: f64) {
    let _ = writeln!(out, " {}", float(value));
}

fn float(value: f64) -> String {
    if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else if value.is_nan() {
        "NaN".to_owned()
    } else {
        value.to_string()
    }
}

/// Label values and help text: `\`, `"` and newlines escaped.
fn escape(text: &str) -> String {
    text.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_is_asked_for_by_media_type_only() {
        assert!(accepts(Some(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
        )));
        assert!(accepts(Some("text/plain, application/openmetrics-text")));
        assert!(!accepts(Some("text/plain;version=0.0.4")));
        assert!(!accepts(Some("*/*")));
        assert!(!accepts(None));
    }

    #[test]
    fn label_values_and_floats_are_written_as_openmetrics_wants() {
        assert_eq!(escape("a\"b\\c\nd"), r#"a\"b\\c\nd"#);
        assert_eq!(float(f64::INFINITY), "+Inf");
        assert_eq!(float(0.005), "0.005");
        assert_eq!(float(3.0), "3");
    }
}
