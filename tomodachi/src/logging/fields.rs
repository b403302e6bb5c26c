//! Field collection shared by the console and JSON formats: span fields are stored as
//! `name\tjson` lines, event fields are visited directly, and both are merged into one
//! ordered record the way Python tomodachi merges a bound logger's context with the keyword
//! arguments of a call.

use std::fmt;

use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Field formatter of the tomodachi log formats: keeps span fields as typed values, so
/// [`JsonFormat`](super::JsonFormat) and [`ConsoleFormat`](super::ConsoleFormat) can put
/// them in each record's context.
///
/// Use it with `fmt::Layer::fmt_fields` beside one of those formats.
#[derive(Debug, Clone, Copy, Default)]
pub struct TomodachiFields;

impl<'writer> FormatFields<'writer> for TomodachiFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut visitor = Collect::default();
        fields.record(&mut visitor);
        let mut first = true;
        for (name, value) in visitor.fields {
            if !first {
                writer.write_char('\n')?;
            }
            first = false;
            write_line(&mut writer, &name, &value)?;
        }
        Ok(())
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        if !current.fields.is_empty() {
            current.fields.push('\n');
        }
        self.format_fields(current.as_writer(), fields)
    }
}

fn write_line(writer: &mut Writer<'_>, name: &str, value: &Value) -> fmt::Result {
    for c in name.chars() {
        writer.write_char(if c == '\t' || c == '\n' { ' ' } else { c })?;
    }
    writer.write_char('\t')?;
    // Compact JSON never contains a raw newline, so one line holds one field.
    writer.write_str(&value.to_string())
}

fn read_lines(stored: &str, into: &mut Vec<(String, Value)>) {
    for line in stored.split('\n') {
        if let Some((name, json)) = line.split_once('\t') {
            let value =
                serde_json::from_str(json).unwrap_or_else(|_| Value::String(json.to_owned()));
            into.push((name.to_owned(), value));
        }
    }
}

/// Field names that hold an error recorded as `&dyn Error`: rendered as tomodachi's
/// `exception` and `exc_message` keys.
const EXCEPTION_KEYS: [&str; 3] = ["exception", "exc", "error"];

/// Visits fields into `(name, value)` pairs, `message` apart.
#[derive(Default)]
struct Collect {
    message: Option<String>,
    fields: Vec<(String, Value)>,
}

impl Collect {
    fn push(&mut self, field: &Field, value: Value) {
        let name = field.name();
        if name == "message" {
            self.message = Some(match value {
                Value::String(s) => s,
                other => other.to_string(),
            });
            return;
        }
        self.fields.push((key_name(name).to_owned(), value));
    }
}

/// tomodachi's key renames (`event_` → `event`, `class_` → `class`), and raw identifiers
/// (`r#type` → `type`).
fn key_name(name: &str) -> &str {
    let name = name.strip_prefix("r#").unwrap_or(name);
    match name {
        "event_" => "event",
        "class_" => "class",
        other => other,
    }
}

impl Visit for Collect {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let value = serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number);
        self.push(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, Value::from(value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        let value =
            i64::try_from(value).map_or_else(|_| Value::String(value.to_string()), Value::from);
        self.push(field, value);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        let value =
            u64::try_from(value).map_or_else(|_| Value::String(value.to_string()), Value::from);
        self.push(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, Value::Bool(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, Value::String(value.to_owned()));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if EXCEPTION_KEYS.contains(&field.name()) {
            self.fields
                .push(("exception".to_owned(), Value::String(format!("{value:?}"))));
            self.fields
                .push(("exc_message".to_owned(), Value::String(value.to_string())));
        } else {
            self.push(field, Value::String(value.to_string()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, Value::String(format!("{value:?}")));
    }
}

/// One log record, as the formats render it.
pub(crate) struct LogRecord {
    pub(crate) logger: String,
    pub(crate) level: &'static str,
    pub(crate) message: String,
    /// Context in insertion order: span fields from the outermost span in, then the
    /// event's fields; a repeated key keeps its first position and takes the later value.
    pub(crate) context: Vec<(String, Value)>,
}

/// tomodachi's (Python logging's) name of a level.
pub(crate) fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warning",
        Level::ERROR => "error",
    }
}

impl LogRecord {
    pub(crate) fn collect<S, N>(ctx: &FmtContext<'_, S, N>, event: &Event<'_>) -> Self
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        N: for<'w> FormatFields<'w> + 'static,
    {
        let mut raw = Vec::new();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(stored) = extensions.get::<FormattedFields<TomodachiFields>>() {
                    read_lines(&stored.fields, &mut raw);
                }
            }
        }
        let mut visitor = Collect::default();
        event.record(&mut visitor);
        raw.extend(visitor.fields);

        let mut logger = None;
        let mut context: Vec<(String, Value)> = Vec::with_capacity(raw.len());
        for (name, value) in raw {
            if name == "logger" {
                // A `logger` field names the record's logger, as in tomodachi's bound
                // loggers (`tomodachi.http.handler`); the innermost one wins.
                logger = Some(match value {
                    Value::String(s) => s,
                    other => other.to_string(),
                });
                continue;
            }
            match context.iter_mut().find(|(k, _)| *k == name) {
                Some(slot) => slot.1 = value,
                None => context.push((name, value)),
            }
        }
        // A record made inside an OpenTelemetry span carries its ids.
        #[cfg(feature = "otel")]
        if let Some((trace_id, span_id)) = tomodachi_otel::current_trace_ids() {
            context.push(("trace_id".to_owned(), Value::String(trace_id)));
            context.push(("span_id".to_owned(), Value::String(span_id)));
        }
        let metadata = event.metadata();
        Self {
            logger: logger.unwrap_or_else(|| metadata.target().to_owned()),
            level: level_name(metadata.level()),
            message: visitor.message.unwrap_or_default(),
            context,
        }
    }
}
