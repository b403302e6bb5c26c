//! Logging on `tracing`, in Python tomodachi's `console` and `json` layouts.
//!
//! [`init`] installs a global subscriber that writes to stderr in the chosen
//! [`LogFormat`] at the chosen [`LogLevel`]. [`layer`] and [`layer_with_writer`] build the
//! same output as a [`Layer`] to compose with other layers (or to capture in tests);
//! [`ConsoleFormat`], [`JsonFormat`] and [`TomodachiFields`] are the pieces, for use with
//! `tracing_subscriber::fmt::layer()` directly.
//!
//! Records take tomodachi's logger names from the event target
//! (`tracing::info!(target: "tomodachi.lifecycle", ...)`), or from a `logger` field of the
//! event or an enclosing span, and their context from the fields of the enclosing spans
//! followed by the event's own:
//!
//! ```
//! use tomodachi::logging::{layer_with_writer, LogFormat};
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! # #[derive(Clone, Default)] struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
//! # impl std::io::Write for Buf {
//! #     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> { self.0.lock().unwrap().extend_from_slice(b); Ok(b.len()) }
//! #     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
//! # }
//! let buf = Buf::default();
//! let writer = buf.clone();
//! let subscriber = tracing_subscriber::registry()
//!     .with(layer_with_writer(LogFormat::Json, move || writer.clone(), false));
//! tracing::subscriber::with_default(subscriber, || {
//!     let span = tracing::info_span!("handler", logger = "tomodachi.http.handler", handler = "hello", r#type = "tomodachi.http");
//!     let _guard = span.enter();
//!     tracing::info!(status = 200, "done");
//! });
//! let line = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
//! assert!(line.ends_with(r#""logger": "tomodachi.http.handler", "level": "info", "message": "done", "handler": "hello", "type": "tomodachi.http", "status": 200}
//! "#));
//! ```

use std::fmt;
use std::io::IsTerminal;
use std::str::FromStr;

use tracing::Subscriber;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

#[cfg(feature = "http")]
pub(crate) mod access;
mod console;
mod fields;
mod json;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
mod writer;

pub use console::ConsoleFormat;
pub use fields::TomodachiFields;
pub use json::JsonFormat;
pub use writer::{BUFFER_LIMIT, BUFFERED_TARGETS, BufferedStderr, FLUSH_INTERVAL, RecordWriter};

/// Which log formatter to use (`--logger`, `TOMODACHI_LOGGER`).
///
/// Parsed case-insensitively from `console`, `json`, `disabled`, and `python` (an alias of
/// `console`).
///
/// ```
/// use tomodachi::logging::LogFormat;
/// assert_eq!("JSON".parse::<LogFormat>().unwrap(), LogFormat::Json);
/// assert_eq!("python".parse::<LogFormat>().unwrap(), LogFormat::Console);
/// assert!("xml".parse::<LogFormat>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LogFormat {
    /// Human-readable lines (tomodachi's default).
    #[default]
    Console,
    /// One JSON object per line.
    Json,
    /// No log output.
    Disabled,
}

impl LogFormat {
    /// The tomodachi name of the format.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Console => "console",
            Self::Json => "json",
            Self::Disabled => "disabled",
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A log format name that is not one of tomodachi's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid logger '{0}' (expected 'json', 'console', 'python' or 'disabled')")]
pub struct ParseLogFormatError(pub String);

impl FromStr for LogFormat {
    type Err = ParseLogFormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "console" | "python" => Ok(Self::Console),
            "json" => Ok(Self::Json),
            "disabled" => Ok(Self::Disabled),
            _ => Err(ParseLogFormatError(s.to_owned())),
        }
    }
}

/// The minimum level of records written (`--log-level`, `TOMODACHI_LOG_LEVEL`).
///
/// Parsed case-insensitively from tomodachi's names (`debug`, `info`, `warning`, `error`,
/// `critical`, and Python's aliases `warn` and `fatal`), `trace`, or a Python logging
/// number (`10` debug, `20` info, `30` warning, `40` error, `50` critical; values between
/// round up to the next level, `0`–`5` mean trace). `tracing` has no level above `ERROR`,
/// so `critical` filters as `error`.
///
/// ```
/// use tomodachi::logging::LogLevel;
/// use tracing_subscriber::filter::LevelFilter;
///
/// assert_eq!("WARNING".parse::<LogLevel>().unwrap(), LogLevel::Warning);
/// assert_eq!("20".parse::<LogLevel>().unwrap(), LogLevel::Info);
/// assert_eq!(LevelFilter::from(LogLevel::Warning), LevelFilter::WARN);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum LogLevel {
    /// Everything, including `TRACE` events.
    Trace,
    /// `DEBUG` and above.
    Debug,
    /// `INFO` and above (tomodachi's default).
    #[default]
    Info,
    /// `WARN` and above.
    Warning,
    /// `ERROR` only.
    Error,
    /// Python's `CRITICAL`; `ERROR` only in `tracing`.
    Critical,
}

impl LogLevel {
    /// The tomodachi name of the level.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
            Self::Critical => "critical",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<LogLevel> for LevelFilter {
    fn from(level: LogLevel) -> Self {
        match level {
            LogLevel::Trace => LevelFilter::TRACE,
            LogLevel::Debug => LevelFilter::DEBUG,
            LogLevel::Info => LevelFilter::INFO,
            LogLevel::Warning => LevelFilter::WARN,
            LogLevel::Error | LogLevel::Critical => LevelFilter::ERROR,
        }
    }
}

impl From<&LogLevel> for LogLevel {
    fn from(level: &LogLevel) -> Self {
        *level
    }
}

/// A log level that is neither a tomodachi level name nor a number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid log level '{0}' (expected 'debug', 'info', 'warning', 'error' or 'critical')")]
pub struct ParseLogLevelError(pub String);

impl FromStr for LogLevel {
    type Err = ParseLogLevelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim().to_ascii_lowercase();
        Ok(match text.as_str() {
            "trace" => Self::Trace,
            "debug" => Self::Debug,
            "info" => Self::Info,
            "warning" | "warn" => Self::Warning,
            "error" => Self::Error,
            "critical" | "fatal" => Self::Critical,
            number => match number.parse::<u32>() {
                Ok(0..=5) => Self::Trace,
                Ok(6..=10) => Self::Debug,
                Ok(11..=20) => Self::Info,
                Ok(21..=30) => Self::Warning,
                Ok(31..=40) => Self::Error,
                Ok(_) => Self::Critical,
                Err(_) => return Err(ParseLogLevelError(s.to_owned())),
            },
        })
    }
}

/// tomodachi's timestamps: UTC, microseconds, `Z` (`2026-11-28T11:02:59.614453Z`).
#[derive(Debug, Clone, Copy, Default)]
pub struct TomodachiTime;

impl FormatTime for TomodachiTime {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        use chrono::{Datelike, Timelike};
        thread_local! {
            /// The last second formatted, and its `YYYY-MM-DDTHH:MM:SS.`.
            static SECOND: std::cell::Cell<(i64, [u8; 20])> = const { std::cell::Cell::new((i64::MIN, [0; 20])) };
        }
        // By hand: chrono's `format` parses its pattern on every call, `write!` pads
        // through the formatting machinery; the date changes once a second.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let seconds = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let put = |out: &mut [u8], mut value: u32| {
            for byte in out.iter_mut().rev() {
                // `value % 10` is a digit.
                *byte = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        let (second, mut prefix) = SECOND.get();
        if second != seconds {
            let date = chrono::DateTime::from_timestamp(seconds, 0).unwrap_or_default();
            prefix = *b"0000-00-00T00:00:00.";
            put(&mut prefix[0..4], u32::try_from(date.year()).unwrap_or(0));
            put(&mut prefix[5..7], date.month());
            put(&mut prefix[8..10], date.day());
            put(&mut prefix[11..13], date.hour());
            put(&mut prefix[14..16], date.minute());
            put(&mut prefix[17..19], date.second());
            SECOND.set((seconds, prefix));
        }
        let mut out = [0u8; 27];
        out[..20].copy_from_slice(&prefix);
        put(&mut out[20..26], now.subsec_micros());
        out[26] = b'Z';
        w.write_str(std::str::from_utf8(&out).unwrap_or_default())
    }
}

/// A boxed layer of any subscriber that stores spans.
pub type BoxLayer<S> = Box<dyn Layer<S> + Send + Sync + 'static>;

/// The formatting layer of `format`, writing to stderr, coloured when [`color_enabled`].
///
/// The access log (the records written once per request) waits in a small buffer and is
/// written in batches, at most [`FLUSH_INTERVAL`] late, and before any other record: see
/// [`BufferedStderr`]. Add a level filter beside it (as [`init`] does); [`LogFormat::Disabled`] gives a layer
/// that writes nothing.
pub fn layer<S>(format: LogFormat) -> BoxLayer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let color = format == LogFormat::Console && color_enabled();
    layer_with_writer(format, BufferedStderr, color)
}

/// The formatting layer of `format`, writing each record with one write to `writer`.
///
/// `color` applies to [`LogFormat::Console`] only. Tests can pass a writer that appends to
/// a shared buffer.
pub fn layer_with_writer<S, W>(format: LogFormat, writer: W, color: bool) -> BoxLayer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let fmt = tracing_subscriber::fmt::layer()
        .fmt_fields(TomodachiFields)
        .with_writer(writer);
    match format {
        LogFormat::Console => Box::new(fmt.event_format(ConsoleFormat::new().with_color(color))),
        LogFormat::Json => Box::new(fmt.event_format(JsonFormat::new())),
        LogFormat::Disabled => Box::new(tracing_subscriber::layer::Identity::new()),
    }
}

/// `init` found a global subscriber already installed.
#[derive(Debug, thiserror::Error)]
#[error("logging is already initialized: {0}")]
pub struct InitError(#[source] tracing::subscriber::SetGlobalDefaultError);

/// Installs the global subscriber: `format` on stderr, records at `level` and above.
///
/// Fails (without panicking) when a global subscriber is already set, such as on a second
/// call. `level` is a [`LogLevel`] or a reference to one.
///
/// With [`LogFormat::Json`] it also replaces the panic hook: a panic is one JSON record on
/// `exception` with the panic's `location` (`file:line`), and Rust's default panic lines
/// are not written.
///
/// ```no_run
/// use tomodachi::logging::{init, LogFormat, LogLevel};
/// init(LogFormat::Json, LogLevel::Info)?;
/// assert!(init(LogFormat::Json, LogLevel::Info).is_err());
/// # Ok::<(), tomodachi::logging::InitError>(())
/// ```
pub fn init(format: LogFormat, level: impl Into<LogLevel>) -> Result<(), InitError> {
    let filter = match format {
        LogFormat::Disabled => LevelFilter::OFF,
        _ => LevelFilter::from(level.into()),
    };
    let subscriber = process_subscriber(format, filter);
    tracing::subscriber::set_global_default(subscriber).map_err(InitError)?;
    // The access log of the process's HTTP servers skips `tracing` for this logger.
    #[cfg(feature = "http")]
    if format == LogFormat::Json {
        access::installed_json(filter);
    }
    if format == LogFormat::Json {
        set_panic_hook();
    }
    Ok(())
}

/// With JSON logs a panic is one record on `exception` with its `location` (`file:line`):
/// Rust's default panic lines on stderr would break JSON log collection. A panic that a
/// transport catches (a handler's) is logged by the transport; any other by this hook.
fn set_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        if tomodachi_core::panic::report_to_catcher(info) {
            return;
        }
        let message = tomodachi_core::panic::message(info.payload());
        tracing::error!(
            target: "exception",
            exc_type = "panic",
            exc_message = message,
            location = tomodachi_core::panic::hook_location(info),
            "uncaught exception: {message}"
        );
    }));
}

/// The subscriber [`init`] installs: `format` on stderr at `filter`.
fn process_subscriber(
    format: LogFormat,
    filter: LevelFilter,
) -> impl Subscriber + Send + Sync + 'static {
    let subscriber = tracing_subscriber::registry()
        .with(filter)
        .with(layer(format));
    // Below the OpenTelemetry layer: outside it, a layer without a level hint would lift
    // the subscriber's level limit (the otel layer filters per layer), and every disabled
    // `debug!` would ask the whole stack.
    #[cfg(feature = "http")]
    let subscriber = subscriber.with(access::DirectAccessLog);
    // `--opentelemetry-instrument`: the service's own `tracing` spans and events go to
    // OpenTelemetry too, once telemetry is installed (idle until then).
    #[cfg(feature = "otel")]
    let subscriber = subscriber.with(tomodachi_otel::tracing_layer());
    subscriber
}

/// Whether console logs on stderr get colours: stderr is a terminal and colours are not
/// turned off by `NO_COLOR` (any non-empty value), `NOCOLOR`/`TOMODACHI_NO_COLOR`/
/// `TOMODACHI_NOCOLOR` (`1`/`true`) or `CLICOLOR`/`CLI_COLOR`/`CLICOLOR_FORCE`
/// (`0`/`false`).
pub fn color_enabled() -> bool {
    colors_allowed_by_env() && std::io::stderr().is_terminal()
}

/// Whether this process's environment allows colours (see [`color_enabled`]).
pub(crate) fn colors_allowed_by_env() -> bool {
    colors_allowed(|name| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()))
}

fn colors_allowed(var: impl Fn(&str) -> Option<String>) -> bool {
    let is = |name: &str, words: &[&str]| {
        var(name).is_some_and(|v| words.contains(&v.trim().to_ascii_lowercase().as_str()))
    };
    if var("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        return false;
    }
    let off_words = ["1", "true"];
    let zero_words = ["0", "false"];
    !(["NOCOLOR", "TOMODACHI_NO_COLOR", "TOMODACHI_NOCOLOR"]
        .iter()
        .any(|n| is(n, &off_words))
        || ["CLICOLOR", "CLI_COLOR", "CLICOLOR_FORCE"]
            .iter()
            .any(|n| is(n, &zero_words)))
}
