//! Log lines on standard error: `tracing` events, one line each.
//!
//! `svc serve` writes one line per run, per schedule fire and per refused
//! request, for people (`human`: time, level, message, then `key=value`
//! fields) or for log shippers (`json`: one object a line with `time`,
//! `level`, `message` and the fields). Other commands write only warnings
//! and errors, as `warning: ...`. Events carry names, codes, statuses and
//! times, never a secret value: the run records they come from are
//! redacted before they are logged.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `2026-11-30T12:00:00.123Z INFO run endpoint=hubspot.refresh ...`
    Human,
    /// `{"time":"...","level":"info","message":"run","endpoint":...}`
    Json,
    /// `warning: ...`, for commands run by a person.
    Command,
}

/// Sends `tracing` events to standard error, in a format. Only the first
/// call takes effect.
pub fn init(format: Format) {
    let max = match format {
        Format::Command => Level::WARN,
        Format::Human | Format::Json => Level::INFO,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(max)
        .with_writer(std::io::stderr)
        .event_format(Lines { format })
        .try_init();
}

struct Lines {
    format: Format,
}

/// An event's fields, in the order written.
#[derive(Default)]
struct Fields {
    message: String,
    pairs: Vec<(&'static str, serde_json::Value)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, serde_json::Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, serde_json::Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, serde_json::Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, serde_json::Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, serde_json::Value::from(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, serde_json::Value::from(format!("{value:?}")));
    }
}

impl Fields {
    fn put(&mut self, field: &Field, value: serde_json::Value) {
        if field.name() == "message" {
            self.message = match value {
                serde_json::Value::String(text) => text,
                other => other.to_string(),
            };
        } else {
            self.pairs.push((field.name(), value));
        }
    }
}

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = *event.metadata().level();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        match self.format {
            Format::Json => {
                // Written by hand to keep the order: time, level, message,
                // then the fields as the event gave them.
                let string = |text: &str| serde_json::Value::from(text).to_string();
                write!(
                    writer,
                    "{{\"time\":{},\"level\":{},\"message\":{}",
                    string(&now),
                    string(&level.as_str().to_lowercase()),
                    string(&fields.message)
                )?;
                for (name, value) in &fields.pairs {
                    write!(writer, ",{}:{value}", string(name))?;
                }
                writeln!(writer, "}}")
            }
            Format::Human => {
                write!(writer, "{now} {:<5} {}", level.as_str(), fields.message)?;
                for (name, value) in &fields.pairs {
                    write!(writer, " {name}={}", human_value(value))?;
                }
                writeln!(writer)
            }
            Format::Command => {
                let prefix = match level {
                    Level::ERROR => "error",
                    Level::WARN => "warning",
                    _ => "note",
                };
                write!(writer, "{prefix}: {}", fields.message)?;
                for (name, value) in &fields.pairs {
                    write!(writer, " {name}={}", human_value(value))?;
                }
                writeln!(writer)
            }
        }
    }
}

/// A field's value as people read it: bare unless it holds a space or a
/// quote.
fn human_value(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) if !text.is_empty() && !text.contains([' ', '"', '=']) => {
            text.clone()
        }
        other => other.to_string(),
    }
}
