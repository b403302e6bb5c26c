//! The `json` log format: one line per record, laid out as Python tomodachi's JSON logger
//! writes it.

use std::fmt::{self, Write as _};

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent};
use tracing_subscriber::registry::LookupSpan;

use super::TomodachiTime;
use super::fields::{TomodachiFields, level_name, with_record};

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
        with_record(|record, line| {
            let direct = record.collect_json(ctx, event);
            let metadata = event.metadata();
            line.push_str("{\"timestamp\": \"");
            let start = line.len();
            self.timer.format_time(&mut Writer::new(&mut *line))?;
            if line[start..].chars().any(needs_escape) {
                let timestamp = line.split_off(start - 1);
                write_str(line, &timestamp[1..]);
            } else {
                line.push('"');
            }
            line.push_str(", \"logger\": ");
            write_str(line, record.logger(metadata.target()));
            line.push_str(", \"level\": ");
            write_str(line, level_name(metadata.level()));
            line.push_str(", \"message\": ");
            write_str(line, record.message());
            if direct {
                line.push_str(record.tail());
            } else {
                for (key, value) in record.context() {
                    write_key(line, key);
                    value.write_json(line, record.text());
                }
            }
            line.push_str("}\n");
            writer.write_str(line)
        })
    }
}

/// Writes `, "key": `.
pub(crate) fn write_key(out: &mut String, key: &str) {
    if plain_run(key.as_bytes()) == key.len() {
        out.push_str(", \"");
        out.push_str(key);
        out.push_str("\": ");
    } else {
        out.push_str(", ");
        write_str(out, key);
        out.push_str(": ");
    }
}

/// Writes `n` in decimal.
pub(crate) fn write_u64(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// Whether `write_str` writes `c` as an escape.
fn needs_escape(c: char) -> bool {
    !matches!(c, ' '..='~') || c == '"' || c == '\\'
}

/// The length of `s`'s leading run that `write_str` copies as it is: printable ASCII
/// other than `"` and `\\`. Eight bytes at a time while no byte of them stands out.
fn plain_run(s: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Sets the high bit of each byte of `x` that is zero (and maybe of a later one).
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut at = 0;
    while let Some(chunk) = s.get(at..at + 8) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        let x = u64::from_le_bytes(bytes);
        let special = (x & HIGH)
            | x.wrapping_sub(ONES * 0x20) & !x & HIGH
            | zero(x ^ (ONES * u64::from(b'"')))
            | zero(x ^ (ONES * u64::from(b'\\')))
            | zero(x ^ (ONES * 0x7f));
        if special != 0 {
            break;
        }
        at += 8;
    }
    at + s[at..]
        .iter()
        .position(|&b| !(b' '..=b'~').contains(&b) || b == b'"' || b == b'\\')
        .unwrap_or(s.len() - at)
}

/// Writes a JSON string with Python's `ensure_ascii` escapes.
pub(crate) fn write_str(out: &mut String, s: &str) {
    out.push('"');
    let mut rest = s;
    // Runs of printable ASCII are copied at once; the byte found is the first byte of a
    // character (ASCII, or the lead byte of a multi-byte one).
    loop {
        let at = plain_run(rest.as_bytes());
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
    out.push('"');
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn py(value: &str) -> String {
        let mut out = String::new();
        write_str(&mut out, value);
        out
    }

    #[test]
    fn python_ascii_escapes() {
        assert_eq!(py("hello wörld"), r#""hello w\u00f6rld""#);
        assert_eq!(py("🙂"), r#""\ud83d\ude42""#);
        assert_eq!(py("a\"b\\c\n\t\r\u{8}\u{c}"), r#""a\"b\\c\n\t\r\b\f""#);
        assert_eq!(py("\u{1}\u{7f}"), r#""\u0001\u007f""#);
        // The output is valid JSON that decodes to the input.
        let s = "x\u{1}ö🙂\"";
        assert_eq!(serde_json::from_str::<String>(&py(s)).unwrap(), s);
    }

    #[test]
    fn escapes_found_at_every_offset_of_long_strings() {
        for special in ['"', '\\', '\n', '\u{7f}', '\u{1f}', 'ö'] {
            for at in 0..20 {
                let mut s = "a".repeat(20);
                s.insert(at, special);
                let escaped = py(&s);
                assert_eq!(serde_json::from_str::<String>(&escaped).unwrap(), s);
                assert!(escaped.len() > s.len() + 2, "{escaped}");
            }
        }
        assert_eq!(py("~ !}{0123456789abcdef"), "\"~ !}{0123456789abcdef\"");
    }

    #[test]
    fn decimal_numbers() {
        for n in [0, 7, 10, 499, u64::MAX] {
            let mut out = String::new();
            write_u64(&mut out, n);
            assert_eq!(out, n.to_string());
        }
    }
}
