//! Field collection shared by the console and JSON formats: span fields are stored as
//! `name\tjson` lines, event fields are visited directly, and both are merged into one
//! ordered record the way Python tomodachi merges a bound logger's context with the keyword
//! arguments of a call.
//!
//! A record is collected into a [`Record`] that each thread reuses: names are the fields'
//! `&'static str` names and text values are appended to one string, so a record costs no
//! allocation once the thread's buffers have grown to fit it.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::ops::Range;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use super::json::{write_str, write_u64};

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
        // Spans are rarer than events: a fresh record keeps this apart from `with_record`.
        let mut record = Record::default();
        fields.record(&mut record);
        let mut line = String::new();
        if let Some(logger) = &record.logger {
            push_line(
                &mut line,
                "logger",
                &Value::Str(logger.clone()),
                &record.text,
            );
        }
        for (name, value) in &record.entries {
            push_line(&mut line, record.name(name), value, &record.text);
        }
        writer.write_str(&line)
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut more = String::new();
        self.format_fields(Writer::new(&mut more), fields)?;
        if !current.fields.is_empty() && !more.is_empty() {
            current.fields.push('\n');
        }
        current.fields.push_str(&more);
        Ok(())
    }
}

/// Appends `name\tjson` (a newline first unless `out` is empty). Compact JSON with ASCII
/// escapes never contains a raw newline or tab, so one line holds one field.
fn push_line(out: &mut String, name: &str, value: &Value, text: &str) {
    if !out.is_empty() {
        out.push('\n');
    }
    out.extend(
        name.chars()
            .map(|c| if c == '\t' || c == '\n' { ' ' } else { c }),
    );
    out.push('\t');
    value.write_json(out, text);
}

/// A field's value; text lives in the record's `text`.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    /// Finite only (others are `Null`).
    F64(f64),
    Str(Range<usize>),
}

impl Value {
    /// Writes the value as JSON (Python's `json.dumps` layout for these scalars).
    pub(crate) fn write_json(&self, out: &mut String, text: &str) {
        match self {
            Self::Null => out.push_str("null"),
            Self::Bool(true) => out.push_str("true"),
            Self::Bool(false) => out.push_str("false"),
            Self::I64(n) => {
                if *n < 0 {
                    out.push('-');
                }
                write_u64(out, n.unsigned_abs());
            }
            Self::U64(n) => write_u64(out, *n),
            Self::F64(n) => match serde_json::Number::from_f64(*n) {
                Some(number) => {
                    let _ = write!(out, "{number}");
                }
                None => out.push_str("null"),
            },
            Self::Str(range) => write_str(out, &text[range.clone()]),
        }
    }

    /// Reads back a value written by [`Value::write_json`] (text appended to `text`).
    fn parse_json(json: &str, text: &mut String) -> Self {
        match json {
            "null" => return Self::Null,
            "true" => return Self::Bool(true),
            "false" => return Self::Bool(false),
            _ => {}
        }
        if json.starts_with('"') {
            if let Ok(s) = serde_json::from_str::<String>(json) {
                return Self::Str(push_text(text, &s));
            }
        } else if let Ok(n) = json.parse::<u64>() {
            return Self::U64(n);
        } else if let Ok(n) = json.parse::<i64>() {
            return Self::I64(n);
        } else if let Ok(n) = json.parse::<f64>() {
            return Self::F64(n);
        }
        Self::Str(push_text(text, json))
    }
}

fn push_text(text: &mut String, s: &str) -> Range<usize> {
    let start = text.len();
    text.push_str(s);
    start..text.len()
}

/// A field's name: a field's own, or one read back from a span's stored fields.
#[derive(Debug, Clone)]
pub(crate) enum Name {
    Static(&'static str),
    Text(Range<usize>),
}

/// Field names that hold an error recorded as `&dyn Error`: rendered as tomodachi's
/// `exception` and `exc_message` keys.
const EXCEPTION_KEYS: [&str; 3] = ["exception", "exc", "error"];

/// tomodachi's key renames (`event_` → `event`, `class_` → `class`), and raw identifiers
/// (`r#type` → `type`).
fn key_name(name: &'static str) -> &'static str {
    let name = name.strip_prefix("r#").unwrap_or(name);
    match name {
        "event_" => "event",
        "class_" => "class",
        other => other,
    }
}

/// One log record, as the formats render it.
#[derive(Debug, Default)]
pub(crate) struct Record {
    /// Text of the values, messages and read-back names.
    text: String,
    /// Context in insertion order: span fields from the outermost span in, then the
    /// event's fields; a repeated key keeps its first position and takes the later value.
    entries: Vec<(Name, Value)>,
    message: Option<Range<usize>>,
    logger: Option<Range<usize>>,
    /// The lengths (mod 64) of the entries' names, a bit each.
    lengths: u64,
    /// Whether the context is written straight to `tail` as JSON (see `collect_json`).
    direct: bool,
    /// The names written to `tail`.
    direct_names: Vec<&'static str>,
    /// A name came twice while writing straight to `tail`: collect again instead.
    direct_failed: bool,
    /// The JSON context (`, "name": value` each) written while visiting.
    tail: String,
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

thread_local! {
    static SCRATCH: RefCell<(Record, String)> = RefCell::default();
}

/// Runs `f` with this thread's record and line buffer, both empty (fresh ones when a
/// record is formatted while another is, such as from a `Debug` impl that logs).
pub(crate) fn with_record<R>(f: impl FnOnce(&mut Record, &mut String) -> R) -> R {
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => {
            let (record, line) = &mut *scratch;
            record.clear();
            line.clear();
            let result = f(record, line);
            // Don't keep a huge record's buffers for the rest of the thread's life.
            if record.text.capacity() > 64 * 1024 || line.capacity() > 64 * 1024 {
                *scratch = Default::default();
            }
            result
        }
        Err(_) => f(&mut Record::default(), &mut String::new()),
    })
}

impl Record {
    fn clear(&mut self) {
        self.text.clear();
        self.entries.clear();
        self.message = None;
        self.logger = None;
        self.lengths = 0;
        self.direct = false;
        self.direct_names.clear();
        self.direct_failed = false;
        self.tail.clear();
    }

    /// Collects `event` for the JSON format. Without span fields (the access log, most
    /// records) its context is written straight to [`Record::tail`] as JSON while the
    /// fields are visited, and `true` is returned; else (or when a name comes twice) the
    /// record is collected as [`Record::collect`] does and the context is read with
    /// [`Record::context`].
    pub(crate) fn collect_json<S, N>(
        &mut self,
        ctx: &FmtContext<'_, S, N>,
        event: &Event<'_>,
    ) -> bool
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        N: for<'w> FormatFields<'w> + 'static,
    {
        let span_fields = ctx.event_scope().is_some_and(|scope| {
            scope.from_root().any(|span| {
                span.extensions()
                    .get::<FormattedFields<TomodachiFields>>()
                    .is_some_and(|stored| !stored.fields.is_empty())
            })
        });
        if !span_fields {
            self.direct = true;
            event.record(self);
            #[cfg(feature = "otel")]
            if let Some(ids) = tomodachi_otel::current_hex_trace_ids() {
                let trace_id = push_text(&mut self.text, ids.trace_id());
                self.insert(Name::Static("trace_id"), Value::Str(trace_id));
                let span_id = push_text(&mut self.text, ids.span_id());
                self.insert(Name::Static("span_id"), Value::Str(span_id));
            }
            if !self.direct_failed {
                return true;
            }
            self.clear();
        }
        self.collect(ctx, event);
        false
    }

    /// The context written by [`Record::collect_json`].
    pub(crate) fn tail(&self) -> &str {
        &self.tail
    }

    /// Collects the fields of `event` and its spans.
    pub(crate) fn collect<S, N>(&mut self, ctx: &FmtContext<'_, S, N>, event: &Event<'_>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        N: for<'w> FormatFields<'w> + 'static,
    {
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(stored) = extensions.get::<FormattedFields<TomodachiFields>>() {
                    self.read_lines(&stored.fields);
                }
            }
        }
        event.record(self);
        // A record made inside an OpenTelemetry span carries its ids.
        #[cfg(feature = "otel")]
        if let Some(ids) = tomodachi_otel::current_hex_trace_ids() {
            let trace_id = push_text(&mut self.text, ids.trace_id());
            let span_id = push_text(&mut self.text, ids.span_id());
            self.insert(Name::Static("trace_id"), Value::Str(trace_id));
            self.insert(Name::Static("span_id"), Value::Str(span_id));
        }
    }

    fn read_lines(&mut self, stored: &str) {
        for line in stored.split('\n') {
            if let Some((name, json)) = line.split_once('\t') {
                let value = Value::parse_json(json, &mut self.text);
                if name == "logger" {
                    self.set_logger(value);
                } else {
                    let name = Name::Text(push_text(&mut self.text, name));
                    self.insert(name, value);
                }
            }
        }
    }

    /// The record's logger: a `logger` field (the innermost), else `target`.
    pub(crate) fn logger<'a>(&'a self, target: &'a str) -> &'a str {
        self.logger
            .as_ref()
            .map_or(target, |r| &self.text[r.clone()])
    }

    /// The record's message (empty without one).
    pub(crate) fn message(&self) -> &str {
        self.message.as_ref().map_or("", |r| &self.text[r.clone()])
    }

    /// The text the [`Value::Str`] ranges point into.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// The context, in order.
    pub(crate) fn context(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries
            .iter()
            .map(|(name, value)| (self.name(name), value))
    }

    fn name<'a>(&'a self, name: &'a Name) -> &'a str {
        match name {
            Name::Static(name) => name,
            Name::Text(range) => &self.text[range.clone()],
        }
    }

    fn insert(&mut self, name: Name, value: Value) {
        if self.direct {
            self.write_direct(name, value);
            return;
        }
        // A bit per name length (mod 64): a record's names rarely share a length, so most
        // new names need no comparison with the others.
        let bit = 1u64 << (self.name(&name).len() % 64);
        let seen = self.lengths & bit != 0;
        self.lengths |= bit;
        let key = self.name(&name);
        let existing = seen
            .then(|| self.entries.iter().position(|(k, _)| self.name(k) == key))
            .flatten();
        match existing {
            Some(at) => self.entries[at].1 = value,
            None => self.entries.push((name, value)),
        }
    }

    fn write_direct(&mut self, name: Name, value: Value) {
        let Name::Static(name) = name else {
            self.direct_failed = true;
            return;
        };
        let bit = 1u64 << (name.len() % 64);
        if self.lengths & bit != 0 && self.direct_names.contains(&name) {
            self.direct_failed = true;
            return;
        }
        self.lengths |= bit;
        self.direct_names.push(name);
        super::json::write_key(&mut self.tail, name);
        value.write_json(&mut self.tail, &self.text);
        // The value's text is written: its room can be reused.
        if let Value::Str(range) = value
            && range.end == self.text.len()
        {
            self.text.truncate(range.start);
        }
    }

    /// Renders a non-text value as text (a `logger` or `message` that is not a string).
    fn text_of(&mut self, value: Value) -> Range<usize> {
        match value {
            Value::Str(range) => range,
            other => {
                let mut json = String::new();
                other.write_json(&mut json, &self.text);
                push_text(&mut self.text, &json)
            }
        }
    }

    fn set_logger(&mut self, value: Value) {
        // A `logger` field names the record's logger, as in tomodachi's bound loggers
        // (`tomodachi.http.handler`); the innermost one wins.
        self.logger = Some(self.text_of(value));
    }

    fn push(&mut self, field: &Field, value: Value) {
        match field.name() {
            "message" => self.message = Some(self.text_of(value)),
            "logger" => self.set_logger(value),
            name => self.insert(Name::Static(key_name(name)), value),
        }
    }

    fn push_display(&mut self, field: &Field, value: impl fmt::Display) {
        let start = self.text.len();
        let _ = write!(self.text, "{value}");
        self.push(field, Value::Str(start..self.text.len()));
    }
}

impl Visit for Record {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let value = if value.is_finite() {
            Value::F64(value)
        } else {
            Value::Null
        };
        self.push(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, Value::I64(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, Value::U64(value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        match i64::try_from(value) {
            Ok(value) => self.push(field, Value::I64(value)),
            Err(_) => self.push_display(field, value),
        }
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        match u64::try_from(value) {
            Ok(value) => self.push(field, Value::U64(value)),
            Err(_) => self.push_display(field, value),
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, Value::Bool(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let range = push_text(&mut self.text, value);
        self.push(field, Value::Str(range));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if EXCEPTION_KEYS.contains(&field.name()) {
            let start = self.text.len();
            let _ = write!(self.text, "{value:?}");
            let debug = start..self.text.len();
            self.insert(Name::Static("exception"), Value::Str(debug));
            let start = self.text.len();
            let _ = write!(self.text, "{value}");
            let display = start..self.text.len();
            self.insert(Name::Static("exc_message"), Value::Str(display));
        } else {
            self.push_display(field, value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let start = self.text.len();
        let _ = write!(self.text, "{value:?}");
        self.push(field, Value::Str(start..self.text.len()));
    }
}
