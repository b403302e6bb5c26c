//! The `console` log format: `<ts> [level    ] message  [logger] key=value`.

use std::fmt::{self, Write as _};

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent};
use tracing_subscriber::registry::LookupSpan;

use super::TomodachiTime;
use super::fields::{TomodachiFields, Value, level_name, with_record};

const RESET: &str = "\x1b[0m";
const DIM: &str = "\x1b[2m";
const BRIGHT: &str = "\x1b[1m";
const BLUE: &str = "\x1b[34m";
const CYAN: &str = "\x1b[36m";
const MAGENTA: &str = "\x1b[35m";

/// Width the message is padded to when something follows it.
const MESSAGE_WIDTH: usize = 30;
/// Width of the level name (the longest tomodachi level is `exception`).
const LEVEL_WIDTH: usize = 9;

/// The `console` format, as Python tomodachi's console logger prints records:
///
/// ```text
/// 2026-11-28T11:02:59.614898Z [info     ] hello                          [tomodachi.http.handler] handler=h type=tomodachi.http
/// ```
///
/// Text values are written as they are (control characters escaped), other values as
/// compact JSON. Colours follow structlog's console renderer and are off unless enabled
/// with [`with_color`](ConsoleFormat::with_color); [`super::layer`] enables them when
/// stderr is a terminal and `NO_COLOR` is not set.
///
/// ```
/// use tomodachi::logging::{ConsoleFormat, TomodachiFields};
///
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let subscriber = tracing_subscriber::registry().with(
///     tracing_subscriber::fmt::layer()
///         .fmt_fields(TomodachiFields)
///         .event_format(ConsoleFormat::new().with_color(false))
///         .with_writer(std::io::stderr),
/// );
/// tracing::subscriber::with_default(subscriber, || tracing::info!("hello"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ConsoleFormat<T = TomodachiTime> {
    timer: T,
    color: bool,
}

impl ConsoleFormat {
    /// The format with tomodachi's timestamps, without colours.
    pub const fn new() -> Self {
        Self {
            timer: TomodachiTime,
            color: false,
        }
    }
}

impl<T> ConsoleFormat<T> {
    /// Turns ANSI colours on or off.
    #[must_use]
    pub fn with_color(mut self, color: bool) -> Self {
        self.color = color;
        self
    }

    /// Uses another clock or timestamp layout.
    pub fn with_timer<T2: FormatTime>(self, timer: T2) -> ConsoleFormat<T2> {
        ConsoleFormat {
            timer,
            color: self.color,
        }
    }
}

fn level_color(level: &str) -> &'static str {
    match level {
        "error" | "critical" | "exception" => "\x1b[31m",
        "warning" => "\x1b[33m",
        _ => "\x1b[32m",
    }
}

/// Writes text with control characters (and so terminal escapes) made visible.
fn push_sanitized(out: &mut String, s: &str) {
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
}

fn push_padded(out: &mut String, s: &str, width: usize) {
    let start = out.len();
    push_sanitized(out, s);
    let written = out[start..].chars().count();
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(written)));
}

impl<S, T> FormatEvent<S, TomodachiFields> for ConsoleFormat<T>
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
            record.collect(ctx, event);
            let metadata = event.metadata();
            let level = level_name(metadata.level());
            let (reset, dim, bright) = if self.color {
                (RESET, DIM, BRIGHT)
            } else {
                ("", "", "")
            };
            line.push_str(dim);
            self.timer.format_time(&mut Writer::new(&mut *line))?;
            let _ = write!(line, "{reset} [");
            if self.color {
                line.push_str(level_color(level));
                line.push_str(BRIGHT);
            }
            push_padded(line, level, LEVEL_WIDTH);
            let _ = write!(line, "{reset}] {bright}");
            // Python pads the message whenever the logger name follows, which is always.
            push_padded(line, record.message(), MESSAGE_WIDTH);
            let _ = write!(line, "{reset} [");
            if self.color {
                let _ = write!(line, "{RESET}{BRIGHT}{BLUE}");
            }
            push_sanitized(line, record.logger(metadata.target()));
            let _ = write!(line, "{reset}]{reset}");
            let mut json = String::new();
            for (key, value) in record.context() {
                line.push(' ');
                if self.color {
                    line.push_str(CYAN);
                }
                push_sanitized(line, key);
                let _ = write!(line, "{reset}=");
                if self.color {
                    line.push_str(MAGENTA);
                }
                match value {
                    Value::Str(range) => push_sanitized(line, &record.text()[range.clone()]),
                    other => {
                        json.clear();
                        other.write_json(&mut json, record.text());
                        push_sanitized(line, &json);
                    }
                }
                line.push_str(reset);
            }
            line.push('\n');
            writer.write_str(line)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn padding_counts_characters_and_escapes_controls() {
        let mut out = String::new();
        push_padded(&mut out, "wörld", 7);
        assert_eq!(out, "wörld  ");
        let mut out = String::new();
        push_padded(&mut out, "longer than width", 3);
        assert_eq!(out, "longer than width");
        let mut out = String::new();
        push_sanitized(&mut out, "a\x1b[31mb\n");
        assert_eq!(out, "a\\u{1b}[31mb\\n");
    }
}
