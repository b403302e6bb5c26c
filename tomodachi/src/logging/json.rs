//! The `json` log format: one line per record, laid out as Python tomodachi's JSON logger
//! writes it.

use std::fmt::{self, Write as _};

use serde_json::Value;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent};
use tracing_subscriber::registry::LookupSpan;

use super::TomodachiTime;
use super::fields::{LogRecord, TomodachiFields};

/// The `json` format: `{"timestamp": .., "logger": .., "level": .., "message": .., <context>}`
/// on one line, written with Python `json.dumps`'s separators and ASCII escapes.
///
/// `logger` is the event's target, or a `logger` field of the event or an enclosing span;
/// `level` is lowercase (`warning` for `WARN`); the context is the fields of the enclosing
/// spans (outermost first) followed by the event's own, with `event_` renamed `event` and
/// `class_` renamed `class`. An error recorded as `error = &err as &dyn Error` becomes
/// `exception` (its `Debug`) and `exc_message` (its `Display`).
///
/// Use it with [`TomodachiFields`] as the field formatter:
///
/// ```
/// use tomodachi::logging::{JsonFormat, TomodachiFields};
///
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let subscriber = tracing_subscriber::registry().with(
///     tracing_subscriber::fmt::layer()
///         .fmt_fields(TomodachiFields)
///         .event_format(JsonFormat::new())
///         .with_writer(std::io::stderr),
/// );
/// tracing::subscriber::with_default(subscriber, || tracing::info!("hello"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct JsonFormat<T = TomodachiTime> {
    timer: T,
}

impl JsonFormat {
    /// The format with tomodachi's timestamps (`YYYY-MM-DDTHH:MM:SS.ffffffZ`, UTC).
    pub const fn new() -> Self {
        Self {
            timer: TomodachiTime,
        }
    }
}

impl<T> JsonFormat<T> {
    /// Uses another clock or timestamp layout for `timestamp`.
    pub fn with_timer<T2: FormatTime>(self, timer: T2) -> JsonFormat<T2> {
        JsonFormat { timer }
    }
}

impl<S, T> FormatEvent<S, TomodachiFields> for JsonFormat<T>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    T: FormatTime,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, TomodachiFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let record = LogRecord::collect(ctx, event);
        // An access log record is about 400 bytes: one allocation for most records.
        let mut line = String::with_capacity(512);
        line.push_str("{\"timestamp\": \"");
        let start = line.len();
        self.timer.format_time(&mut Writer::new(&mut line))?;
        if line[start..].chars().any(needs_escape) {
            let timestamp = line.split_off(start - 1);
            write_str(&mut line, &timestamp[1..]);
        } else {
            line.push('"');
        }
        line.push_str(", \"logger\": ");
        write_str(&mut line, &record.logger);
        line.push_str(", \"level\": ");
        write_str(&mut line, record.level);
        line.push_str(", \"message\": ");
        write_str(&mut line, &record.message);
        for (key, value) in &record.context {
            line.push_str(", ");
            write_str(&mut line, key);
            line.push_str(": ");
            write_value(&mut line, value);
        }
        line.push_str("}\n");
        writer.write_str(&line)
    }
}

/// Writes `value` as Python's `json.dumps` does by default: `", "` and `": "` separators,
/// every character outside printable ASCII escaped as `\uXXXX`.
pub(crate) fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str(out, key);
                out.push_str(": ");
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

/// Whether `write_str` writes `c` as an escape.
fn needs_escape(c: char) -> bool {
    !matches!(c, ' '..='~') || c == '"' || c == '\\'
}

/// Writes a JSON string with Python's `ensure_ascii` escapes.
pub(crate) fn write_str(out: &mut String, s: &str) {
    out.push('"');
    let mut rest = s;
    // Runs of printable ASCII are copied at once; the byte found is the first byte of a
    // character (ASCII, or the lead byte of a multi-byte one).
    while let Some(at) = rest
        .bytes()
        .position(|b| !(b' '..=b'~').contains(&b) || b == b'"' || b == b'\\')
    {
        out.push_str(&rest[..at]);
        let Some(c) = rest[at..].chars().next() else {
            break;
        };
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
        rest = &rest[at + c.len_utf8()..];
    }
    out.push_str(rest);
    out.push('"');
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn py(value: &Value) -> String {
        let mut out = String::new();
        write_value(&mut out, value);
        out
    }

    #[test]
    fn python_json_dumps_layout() {
        assert_eq!(
            py(&json!({"a": [1, "b", null, true, 1.5], "c": {}})),
            r#"{"a": [1, "b", null, true, 1.5], "c": {}}"#
        );
        assert_eq!(py(&json!([])), "[]");
    }

    #[test]
    fn python_ascii_escapes() {
        assert_eq!(py(&json!("hello wörld")), r#""hello w\u00f6rld""#);
        assert_eq!(py(&json!("🙂")), r#""\ud83d\ude42""#);
        assert_eq!(
            py(&json!("a\"b\\c\n\t\r\u{8}\u{c}")),
            r#""a\"b\\c\n\t\r\b\f""#
        );
        assert_eq!(py(&json!("\u{1}\u{7f}")), r#""\u0001\u007f""#);
        // The output is valid JSON that decodes to the input.
        let s = "x\u{1}ö🙂\"";
        assert_eq!(serde_json::from_str::<String>(&py(&json!(s))).unwrap(), s);
    }
}
