//! The access log written by the process's own JSON logger: the same line the `json`
//! format writes for a `tomodachi.http.response` record, put together from the
//! [`AccessRecord`] without `tracing`'s per-field dispatch (the record is written once per
//! request, and through `tracing` it cost more than the rest of a small request).

use std::cell::RefCell;
use std::io::Write as _;
use std::sync::{Arc, OnceLock};

use tomodachi_http::{AccessLogWriter, AccessRecord};
use tracing::level_filters::STATIC_MAX_LEVEL;
use tracing::{Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

use super::TomodachiTime;
use super::json::{write_str, write_u64};
use super::writer::RecordWriter;

/// The writer of the logger [`super::init`] installed, when it writes JSON.
static JSON_LOGGER: OnceLock<Arc<JsonAccessLog>> = OnceLock::new();

/// Remembers that [`super::init`] installed the `json` format (with [`DirectAccessLog`])
/// at `level` as the global subscriber: the HTTP servers of the process write their
/// access log with it.
pub(super) fn installed_json(level: LevelFilter) {
    let _ = JSON_LOGGER.set(Arc::new(JsonAccessLog { level }));
}

/// The access log writer of the process's logger, when [`super::init`] installed the `json`
/// format (else records go through `tracing`, to whatever subscriber is installed).
pub(crate) fn writer() -> Option<Arc<dyn AccessLogWriter>> {
    JSON_LOGGER
        .get()
        .map(|logger| Arc::clone(logger) as Arc<dyn AccessLogWriter>)
}

/// Marks the subscriber [`super::init`] builds: the access log is written directly only
/// while it is the current one (a scoped subscriber, such as a test's, gets the records
/// through `tracing`).
#[derive(Debug, Clone, Copy)]
pub(super) struct DirectAccessLog;

impl<S: Subscriber> Layer<S> for DirectAccessLog {}

/// Writes access log records as the `json` format on the buffered stderr does.
#[derive(Debug)]
pub(crate) struct JsonAccessLog {
    /// The level of the subscriber [`super::init`] installed.
    level: LevelFilter,
}

impl AccessLogWriter for JsonAccessLog {
    /// Whether `tracing` would take an `info` record (the subscriber's level and the
    /// compile-time maximum level allow it) and the current subscriber is the one
    /// [`super::init`] installed. (Cheaper than `tracing::enabled!`, which asks every
    /// layer's filter.)
    fn enabled(&self) -> bool {
        Level::INFO <= self.level
            && Level::INFO <= STATIC_MAX_LEVEL
            && tracing::dispatcher::get_default(|current| current.is::<DirectAccessLog>())
    }

    fn write(&self, record: &AccessRecord<'_>) {
        thread_local! {
            static LINE: RefCell<String> = RefCell::new(String::with_capacity(512));
        }
        // `try_with`: a record written while the thread's locals are torn down is dropped.
        let _ = LINE.try_with(|line| {
            let mut fresh = String::new();
            let mut borrowed = line.try_borrow_mut();
            let line = borrowed.as_deref_mut().unwrap_or(&mut fresh);
            line.clear();
            write_line(line, record);
            let _ = RecordWriter::buffered().write(line.as_bytes());
            // Don't keep a huge record's buffer for the rest of the thread's life.
            if line.capacity() > 64 * 1024 {
                *line = String::new();
            }
        });
    }
}

/// The `json` format's line for `record` (`logger` `tomodachi.http.response`, `info`, an
/// empty message), its fields in [`AccessRecord::for_each_field`]'s order; written field
/// by field with the keys' JSON as constants (this runs once per request).
pub(crate) fn write_line(line: &mut String, record: &AccessRecord<'_>) {
    line.push_str("{\"timestamp\": \"");
    let _ = TomodachiTime.format_time(&mut Writer::new(line));
    line.push_str(concat!(
        "\", \"logger\": \"tomodachi.http.response\", \"level\": \"info\", ",
        "\"message\": \"\", \"status_code\": "
    ));
    write_u64(line, u64::from(record.status_code));
    // An address, a method (an HTTP token), a version and durations never need escapes.
    line.push_str(", \"remote_ip\": \"");
    line.push_str(record.remote_ip);
    line.push('"');
    if let Some(user) = record.auth_user {
        line.push_str(", \"auth_user\": ");
        write_str(line, user);
    }
    line.push_str(", \"request_method\": \"");
    line.push_str(record.request_method);
    line.push_str("\", \"request_path\": ");
    write_str(line, record.request_path);
    if let Some(query) = record.request_query_string {
        line.push_str(", \"request_query_string\": ");
        write_str(line, query);
    }
    line.push_str(", \"http_version\": \"");
    line.push_str(record.http_version);
    line.push('"');
    if let Some(length) = record.response_content_length {
        line.push_str(", \"response_content_length\": ");
        write_u64(line, length);
    }
    if let Some(length) = record.request_content_length {
        line.push_str(", \"request_content_length\": ");
        write_u64(line, length);
    }
    if let Some(length) = record.request_content_read_length {
        line.push_str(", \"request_content_read_length\": ");
        write_u64(line, length);
    }
    line.push_str(", \"user_agent\": ");
    write_str(line, record.user_agent);
    if let Some(elapsed) = record.handler_elapsed_time {
        line.push_str(", \"handler_elapsed_time\": \"");
        line.push_str(elapsed);
        line.push('"');
    }
    line.push_str(", \"request_time\": \"");
    line.push_str(record.request_time);
    line.push('"');
    // As for any record made inside an OpenTelemetry span.
    #[cfg(feature = "otel")]
    if let Some(ids) = tomodachi_otel::current_hex_trace_ids() {
        line.push_str(", \"trace_id\": \"");
        line.push_str(ids.trace_id());
        line.push_str("\", \"span_id\": \"");
        line.push_str(ids.span_id());
        line.push('"');
    }
    line.push_str("}\n");
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Mutex;

    use tomodachi_http::AccessLogLayer;
    use tomodachi_http::axum::Router;
    use tomodachi_http::axum::body::{Body, Bytes};
    use tomodachi_http::axum::http::Request;
    use tomodachi_http::axum::routing::{get, post};
    use tower::ServiceExt as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;
    use crate::logging::tests::Capture;
    use crate::logging::{LogFormat, layer_with_writer};

    /// Keeps the lines [`write_line`] makes.
    #[derive(Default)]
    struct Lines(Mutex<String>);

    impl AccessLogWriter for Lines {
        fn write(&self, record: &AccessRecord<'_>) {
            write_line(&mut self.0.lock().unwrap(), record);
        }
    }

    /// Timestamps and durations differ between two records of one request.
    fn without_times(lines: &str) -> Vec<String> {
        lines
            .lines()
            .map(|line| {
                let mut line = line.to_owned();
                for key in ["timestamp", "handler_elapsed_time", "request_time"] {
                    let field = format!("\"{key}\": \"");
                    if let Some(at) = line.find(&field) {
                        let start = at + field.len();
                        let end = start + line[start..].find('"').unwrap();
                        line.replace_range(start..end, "T");
                    }
                }
                line
            })
            .collect()
    }

    #[tokio::test]
    async fn the_json_logger_writes_the_access_record_as_the_json_format_does() {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::registry().with(layer_with_writer(
            LogFormat::Json,
            capture.clone(),
            false,
        ));
        let _default = tracing::subscriber::set_default(subscriber);
        let lines = Arc::new(Lines::default());
        let app = Router::new()
            .route("/hello", get(|| async { "hello" }))
            .route("/echo", post(|body: Bytes| async move { body }))
            .route("/never", get(std::future::pending::<&'static str>))
            // Both layers see each request: one through `tracing`, one written directly.
            .layer(AccessLogLayer::new())
            .layer(AccessLogLayer::new().with_writer(lines.clone()));
        let requests = [
            Request::get("/hello?x=1&y=%C3%B6")
                .header("user-agent", "curl/8 \"quoted\"")
                .header("authorization", "Basic dXNlcjpwYXNz")
                .body(Body::empty()),
            Request::post("/echo")
                .header("content-length", "11")
                .body(Body::from("hello world")),
            Request::get("/m%C3%B6%22/missing").body(Body::empty()),
        ];
        for request in requests {
            let response = app.clone().oneshot(request.unwrap()).await.unwrap();
            assert!(response.status().is_success() || response.status() == 404);
        }
        // A client that goes away before the response: 499, no handler time.
        let gone = app
            .clone()
            .oneshot(Request::get("/never").body(Body::empty()).unwrap());
        assert!(futures_util::FutureExt::now_or_never(gone).is_none());
        // Inside an OpenTelemetry span (as when a layer inside the access log attached one).
        #[cfg(feature = "otel")]
        {
            use tomodachi_otel::opentelemetry::Context;
            use tomodachi_otel::opentelemetry::trace::{
                SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
            };
            let span = SpanContext::new(
                TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
                SpanId::from_hex("00f067aa0ba902b7").unwrap(),
                TraceFlags::SAMPLED,
                true,
                TraceState::NONE,
            );
            let _guard = Context::new().with_remote_span_context(span).attach();
            let request = Request::get("/hello").body(Body::empty()).unwrap();
            app.clone().oneshot(request).await.unwrap();
        }
        let through_tracing = without_times(&capture.text());
        let direct = without_times(&lines.0.lock().unwrap());
        assert_eq!(
            direct.len(),
            4 + usize::from(cfg!(feature = "otel")),
            "{direct:?}"
        );
        assert_eq!(direct, through_tracing);
        assert!(
            direct[0].contains(r#""auth_user": "user""#),
            "{}",
            direct[0]
        );
        assert!(direct[0].contains(r#""request_query_string": "x=1&y=%C3%B6""#));
        assert!(direct[0].contains(r#""user_agent": "curl/8 \"quoted\"""#));
        assert!(
            direct[1]
                .contains(r#""request_content_length": 11, "request_content_read_length": 11"#)
        );
        assert!(direct[2].contains(r#""status_code": 404"#));
        assert!(
            direct[2].contains(r#""request_path": "/m\u00f6\"/missing""#),
            "{}",
            direct[2]
        );
        assert!(direct[3].contains(r#""status_code": 499"#), "{}", direct[3]);
        assert!(!direct[3].contains("handler_elapsed_time"), "{}", direct[3]);
        #[cfg(feature = "otel")]
        assert!(
            direct[4].ends_with(
                r#", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"}"#
            ),
            "{}",
            direct[4]
        );
        for line in direct {
            let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(parsed["logger"], "tomodachi.http.response");
            assert_eq!(parsed["message"], "");
        }
    }

    #[test]
    fn records_are_written_directly_only_under_inits_subscriber_and_its_level() {
        let enabled = |level: LevelFilter, subscriber: tracing::Dispatch| {
            tracing::dispatcher::with_default(&subscriber, || JsonAccessLog { level }.enabled())
        };
        let marked =
            || tracing::Dispatch::new(tracing_subscriber::registry().with(DirectAccessLog));
        assert!(enabled(LevelFilter::INFO, marked()));
        assert!(enabled(LevelFilter::DEBUG, marked()));
        assert!(!enabled(LevelFilter::WARN, marked()));
        assert!(!enabled(LevelFilter::OFF, marked()));
        // Another subscriber (a test's, say) gets the records through `tracing`.
        let other = tracing::Dispatch::new(tracing_subscriber::registry());
        assert!(!enabled(LevelFilter::INFO, other));
    }
}
