use std::io;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

use super::*;

/// A writer appending to a shared buffer.
#[derive(Clone, Default)]
pub(super) struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    pub(super) fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("lock").clone()).expect("utf-8")
    }
}

impl io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// A clock stopped at the time of a Python tomodachi record.
struct Fixed;

impl FormatTime for Fixed {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        w.write_str("2026-11-28T11:02:59.614453Z")
    }
}

fn json_capture(f: impl FnOnce()) -> String {
    let capture = Capture::default();
    let layer = tracing_subscriber::fmt::layer()
        .fmt_fields(TomodachiFields)
        .event_format(JsonFormat::new().with_timer(Fixed))
        .with_writer(capture.clone());
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
    capture.text()
}

fn console_capture(color: bool, f: impl FnOnce()) -> String {
    let capture = Capture::default();
    let layer = tracing_subscriber::fmt::layer()
        .fmt_fields(TomodachiFields)
        .event_format(ConsoleFormat::new().with_color(color).with_timer(Fixed))
        .with_writer(capture.clone());
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
    capture.text()
}

fn handler_record() {
    let span = tracing::info_span!(
        "handler",
        logger = "tomodachi.http.handler",
        handler = "h",
        r#type = "tomodachi.http"
    );
    let _guard = span.enter();
    tracing::info!(
        target: "my_service",
        event_ = "e",
        class_ = "c",
        n = 1,
        f = 1.5,
        b = true,
        "hello wörld"
    );
}

#[test]
fn json_matches_python_tomodachi_byte_for_byte() {
    // Python tomodachi 0.29: get_logger("tomodachi.http.handler").bind(handler="h",
    // type="tomodachi.http").info("hello wörld", event_="e", class_="c", n=1, f=1.5, b=True)
    assert_eq!(
        json_capture(handler_record),
        concat!(
            r#"{"timestamp": "2026-11-28T11:02:59.614453Z", "logger": "tomodachi.http.handler", "level": "info", "message": "hello w\u00f6rld", "handler": "h", "type": "tomodachi.http", "event": "e", "class": "c", "n": 1, "f": 1.5, "b": true}"#,
            "\n"
        )
    );
}

#[test]
fn json_logger_is_the_target_and_levels_are_lowercase_python_names() {
    let out = json_capture(|| {
        tracing::warn!(target: "my.logger", "warn");
        tracing::error!(target: "tomodachi.lifecycle", "e");
        tracing::debug!(target: "x", "d");
        tracing::trace!(target: "x", "t");
    });
    assert_eq!(
        out,
        concat!(
            r#"{"timestamp": "2026-11-28T11:02:59.614453Z", "logger": "my.logger", "level": "warning", "message": "warn"}"#,
            "\n",
            r#"{"timestamp": "2026-11-28T11:02:59.614453Z", "logger": "tomodachi.lifecycle", "level": "error", "message": "e"}"#,
            "\n",
            r#"{"timestamp": "2026-11-28T11:02:59.614453Z", "logger": "x", "level": "debug", "message": "d"}"#,
            "\n",
            r#"{"timestamp": "2026-11-28T11:02:59.614453Z", "logger": "x", "level": "trace", "message": "t"}"#,
            "\n",
        )
    );
}

#[test]
fn json_context_order_nesting_recording_and_duplicates() {
    let out = json_capture(|| {
        let outer = tracing::info_span!("outer", a = 1, k = "outer", later = tracing::field::Empty);
        let _o = outer.enter();
        let inner = tracing::info_span!("inner", b = 2, k = "inner");
        let _i = inner.enter();
        outer.record("later", "set");
        tracing::info!(target: "t", c = 3, k = "event", "m");
    });
    let value: serde_json::Value = serde_json::from_str(out.trim_end()).expect("one JSON line");
    let keys: Vec<&str> = value
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    // serde_json's map sorts keys; check order on the text instead.
    assert_eq!(keys.len(), 9);
    assert!(out.ends_with(
        "\"message\": \"m\", \"a\": 1, \"k\": \"event\", \"later\": \"set\", \"b\": 2, \"c\": 3}\n"
    ), "{out}");
    assert_eq!(out.lines().count(), 1);
}

#[test]
fn json_escapes_and_non_string_values() {
    let out = json_capture(|| {
        tracing::info!(
            target: "t",
            text = "line\n\"quoted\"",
            debug = ?vec![1, 2],
            display = %"shown",
            big = u64::MAX,
            neg = -5i64,
            "multi\nline"
        );
    });
    assert_eq!(
        out,
        concat!(
            r#"{"timestamp": "2026-11-28T11:02:59.614453Z", "logger": "t", "level": "info", "message": "multi\nline", "text": "line\n\"quoted\"", "debug": "[1, 2]", "display": "shown", "big": 18446744073709551615, "neg": -5}"#,
            "\n"
        )
    );
}

#[test]
fn json_errors_become_exception_fields() {
    let err = io::Error::new(io::ErrorKind::NotFound, "boom");
    let out = json_capture(|| {
        tracing::error!(
            target: "exception",
            error = &err as &(dyn std::error::Error + 'static),
            "uncaught exception: boom"
        );
    });
    assert_eq!(
        out,
        concat!(
            r#"{"timestamp": "2026-11-28T11:02:59.614453Z", "logger": "exception", "level": "error", "message": "uncaught exception: boom", "exception": "Custom { kind: NotFound, error: \"boom\" }", "exc_message": "boom"}"#,
            "\n"
        )
    );
}

#[test]
fn console_matches_python_tomodachi_layout() {
    let out = console_capture(false, || {
        let span = tracing::info_span!(
            "handler",
            logger = "tomodachi.http.handler",
            handler = "h",
            r#type = "tomodachi.http"
        );
        let _guard = span.enter();
        tracing::info!(n = 1, s = "str", "hello");
        drop(_guard);
        tracing::warn!(target: "my.logger", "a much longer message that is more than thirty chars");
        tracing::warn!(target: "my.logger", "short");
    });
    assert_eq!(
        out,
        concat!(
            "2026-11-28T11:02:59.614453Z [info     ] hello                          [tomodachi.http.handler] handler=h type=tomodachi.http n=1 s=str\n",
            "2026-11-28T11:02:59.614453Z [warning  ] a much longer message that is more than thirty chars [my.logger]\n",
            "2026-11-28T11:02:59.614453Z [warning  ] short                          [my.logger]\n",
        )
    );
}

#[test]
fn console_colours_match_structlog() {
    let out = console_capture(true, || {
        let span = tracing::info_span!("handler", logger = "tomodachi.http.handler", handler = "h");
        let _guard = span.enter();
        tracing::info!(n = 1, "hello");
    });
    assert_eq!(
        out,
        "\x1b[2m2026-11-28T11:02:59.614453Z\x1b[0m [\x1b[32m\x1b[1minfo     \x1b[0m] \x1b[1mhello                         \x1b[0m [\x1b[0m\x1b[1m\x1b[34mtomodachi.http.handler\x1b[0m]\x1b[0m \x1b[36mhandler\x1b[0m=\x1b[35mh\x1b[0m \x1b[36mn\x1b[0m=\x1b[35m1\x1b[0m\n"
    );
}

#[test]
fn console_escapes_terminal_control_sequences() {
    let out = console_capture(false, || {
        tracing::info!(target: "t", v = "\x1b[31mred", "a\nb");
    });
    assert_eq!(
        out,
        "2026-11-28T11:02:59.614453Z [info     ] a\\nb                           [t] v=\\u{1b}[31mred\n"
    );
}

#[test]
fn layer_with_writer_uses_tomodachi_timestamps_and_filters() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry()
        .with(LevelFilter::from(LogLevel::Warning))
        .with(layer_with_writer(LogFormat::Json, capture.clone(), false));
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(target: "t", "dropped");
        tracing::warn!(target: "t", "kept");
    });
    let out = capture.text();
    assert_eq!(out.lines().count(), 1, "{out}");
    let value: serde_json::Value = serde_json::from_str(out.trim_end()).expect("json");
    let ts = value["timestamp"].as_str().expect("timestamp");
    assert_eq!(ts.len(), "2026-11-28T11:02:59.614453Z".len());
    assert!(
        chrono::NaiveDateTime::parse_from_str(ts, "%Y-%m-%dT%H:%M:%S%.6fZ").is_ok(),
        "{ts}"
    );
    assert_eq!(value["message"], "kept");
}

#[test]
fn console_layer_and_disabled_layer() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(layer_with_writer(
        LogFormat::Console,
        capture.clone(),
        false,
    ));
    tracing::subscriber::with_default(subscriber, || tracing::info!(target: "t", "x"));
    assert!(
        capture
            .text()
            .ends_with("Z [info     ] x                              [t]\n")
    );

    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(layer_with_writer(
        LogFormat::Disabled,
        capture.clone(),
        false,
    ));
    tracing::subscriber::with_default(subscriber, || tracing::error!("x"));
    assert_eq!(capture.text(), "");
}

#[test]
fn init_twice_is_an_error_not_a_panic() {
    // The only test installing a global subscriber.
    assert!(init(LogFormat::Disabled, LogLevel::Info).is_ok());
    let err = init(LogFormat::Json, LogLevel::Debug).unwrap_err();
    assert!(err.to_string().contains("already"));
}

#[test]
fn log_level_names_and_numbers() {
    for (text, level) in [
        ("debug", LogLevel::Debug),
        ("INFO", LogLevel::Info),
        ("Warning", LogLevel::Warning),
        ("warn", LogLevel::Warning),
        ("error", LogLevel::Error),
        ("critical", LogLevel::Critical),
        ("fatal", LogLevel::Critical),
        ("trace", LogLevel::Trace),
        ("0", LogLevel::Trace),
        ("10", LogLevel::Debug),
        ("15", LogLevel::Info),
        ("20", LogLevel::Info),
        ("30", LogLevel::Warning),
        ("40", LogLevel::Error),
        ("50", LogLevel::Critical),
    ] {
        assert_eq!(text.parse::<LogLevel>(), Ok(level), "{text}");
    }
    for bad in ["", "loud", "-1", "notset"] {
        let err = bad.parse::<LogLevel>().unwrap_err();
        assert!(err.to_string().contains("expected 'debug'"), "{err}");
    }
    assert_eq!(LevelFilter::from(LogLevel::Critical), LevelFilter::ERROR);
    assert_eq!(LevelFilter::from(LogLevel::Trace), LevelFilter::TRACE);
    assert_eq!(LogLevel::default(), LogLevel::Info);
    assert_eq!(LogLevel::Warning.to_string(), "warning");
}

#[test]
fn log_format_names() {
    assert_eq!("console".parse::<LogFormat>(), Ok(LogFormat::Console));
    assert_eq!("python".parse::<LogFormat>(), Ok(LogFormat::Console));
    assert_eq!("Json".parse::<LogFormat>(), Ok(LogFormat::Json));
    assert_eq!("disabled".parse::<LogFormat>(), Ok(LogFormat::Disabled));
    assert!("custom".parse::<LogFormat>().is_err());
    assert_eq!(LogFormat::default(), LogFormat::Console);
    assert_eq!(LogFormat::Json.to_string(), "json");
}

#[test]
fn colour_switches() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    assert!(colors_allowed(env(&[])));
    assert!(!colors_allowed(env(&[("NO_COLOR", "1")])));
    assert!(!colors_allowed(env(&[("NO_COLOR", "anything")])));
    assert!(colors_allowed(env(&[("NO_COLOR", "")])));
    assert!(!colors_allowed(env(&[("TOMODACHI_NO_COLOR", "true")])));
    assert!(colors_allowed(env(&[("TOMODACHI_NO_COLOR", "0")])));
    assert!(!colors_allowed(env(&[("CLICOLOR", "0")])));
    assert!(colors_allowed(env(&[("CLICOLOR", "1")])));
}

#[cfg(feature = "otel")]
#[test]
fn records_inside_an_opentelemetry_span_carry_trace_and_span_ids() {
    use tomodachi_otel::opentelemetry::Context;
    use tomodachi_otel::opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    let span = SpanContext::new(
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex"),
        SpanId::from_hex("00f067aa0ba902b7").expect("hex"),
        TraceFlags::SAMPLED,
        true,
        TraceState::NONE,
    );
    let inside = json_capture(|| {
        let _guard = Context::new()
            .with_remote_span_context(span.clone())
            .attach();
        tracing::info!(target: "tomodachi.amqp.handler", "handled");
    });
    assert!(
        inside.ends_with(
            "\"message\": \"handled\", \"trace_id\": \"4bf92f3577b34da6a3ce929d0e0e4736\", \"span_id\": \"00f067aa0ba902b7\"}\n"
        ),
        "{inside}"
    );
    let outside = json_capture(|| tracing::info!(target: "tomodachi.amqp.handler", "handled"));
    assert!(!outside.contains("trace_id"), "{outside}");
    // A field of the same name, in a record inside a span with fields (the slower path),
    // gives one key: the span's id.
    let repeated = json_capture(|| {
        let _guard = Context::new().with_remote_span_context(span).attach();
        let scope = tracing::info_span!("scope", order = 7);
        let _entered = scope.enter();
        tracing::info!(target: "t", trace_id = "mine", "handled");
    });
    assert_eq!(repeated.matches("\"trace_id\"").count(), 1, "{repeated}");
    assert!(
        repeated.contains("\"trace_id\": \"4bf92f3577b34da6a3ce929d0e0e4736\""),
        "{repeated}"
    );
}

#[test]
fn tomodachi_time_is_a_valid_utc_timestamp_with_microseconds() {
    // The current time, in tomodachi's layout: also after the second (whose date part is
    // cached) has changed.
    let check = || {
        let before = chrono::Utc::now().naive_utc();
        let mut text = String::new();
        TomodachiTime
            .format_time(&mut Writer::new(&mut text))
            .unwrap();
        let after = chrono::Utc::now().naive_utc();
        let parsed = chrono::NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S%.6fZ")
            .unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(parsed.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(), text);
        let microsecond = chrono::TimeDelta::microseconds(1);
        assert!(
            before - microsecond <= parsed && parsed <= after,
            "{text} is not between {before} and {after}"
        );
    };
    check();
    check();
    // Into the next second (a wall-clock state to reach, not an event to wait for).
    let nanos = chrono::Utc::now().timestamp_subsec_nanos();
    std::thread::sleep(std::time::Duration::from_nanos(
        u64::from(1_000_000_000_u32.saturating_sub(nanos)) + 2_000_000,
    ));
    check();
}

#[test]
fn json_repeated_names_in_one_event_keep_the_first_place_and_the_last_value() {
    let out = json_capture(|| {
        tracing::info!(target: "t", a = 1, event_ = "x", b = 2, event = "y", a = 3, "m");
    });
    assert_eq!(
        out,
        concat!(
            r#"{"timestamp": "2026-11-28T11:02:59.614453Z", "logger": "t", "level": "info", "message": "m", "a": 3, "event": "y", "b": 2}"#,
            "\n"
        )
    );
}

#[test]
fn the_process_subscriber_keeps_its_level_limit() {
    use tracing::Subscriber as _;
    // A layer without a level hint outside one that filters per layer (OpenTelemetry's)
    // would lift the limit to TRACE: every disabled `debug!` would then ask every layer.
    for level in [LevelFilter::INFO, LevelFilter::WARN, LevelFilter::OFF] {
        let subscriber = process_subscriber(LogFormat::Json, level);
        assert_eq!(subscriber.max_level_hint(), Some(level));
        #[cfg(feature = "http")]
        assert!(tracing::Dispatch::new(subscriber).is::<access::DirectAccessLog>());
    }
}
