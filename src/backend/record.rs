//! The record of a run: what happened node by node, and how it ended. It is
//! printed as a trace, given as JSON with `--output json`, and appended to
//! the endpoint log. Every string in it is redacted when it is made.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::redact::Redactor;

/// The bounds of a record's trace: `run::trace` keeps to them, and the
/// `truncated` event names them.
pub mod bounds {
    /// The most events a run's trace keeps (a hook's trace keeps as many).
    pub const MAX_EVENTS: usize = 1_000;

    /// The most bytes of text (URLs, messages, shown values) a trace keeps.
    pub const MAX_BYTES: usize = 1 << 20;

    /// The first passes of each loop whose events are kept, with the last.
    pub const KEPT_PASSES: usize = 3;
}

/// A value as it may be shown: itself, or only its length when it is
/// sensitive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Shown {
    Redacted { redacted: bool, length: usize },
    Value { value: serde_json::Value },
}

impl Shown {
    pub fn redacted(length: usize) -> Shown {
        Shown::Redacted {
            redacted: true,
            length,
        }
    }

    fn human(&self) -> String {
        match self {
            Shown::Redacted { length, .. } => format!("*** ({length} characters, sensitive)"),
            Shown::Value { value } => value.to_string(),
        }
    }
}

/// One step of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Assign {
        depth: usize,
        name: String,
        value: Shown,
    },
    Request {
        depth: usize,
        method: String,
        url: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        duration_ms: u64,
        attempts: u32,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        dry_run: bool,
        /// The answer came from the recovery journal (`--replay`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        replayed: bool,
        /// Only for dry runs: what would be sent, secrets masked.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        headers: Vec<(String, String)>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
    },
    Retry {
        depth: usize,
        attempt: u32,
        reason: String,
        wait_ms: u64,
    },
    Mapped {
        depth: usize,
        name: String,
        value: Shown,
    },
    Branch {
        depth: usize,
        condition: String,
        taken: bool,
    },
    SecretUpdated {
        depth: usize,
        name: String,
        version: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        expires_at: Option<DateTime<Utc>>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        dry_run: bool,
    },
    RunService {
        depth: usize,
        endpoint: String,
        identity: String,
    },
    Log {
        depth: usize,
        message: String,
    },
    Sleep {
        depth: usize,
        ms: u64,
    },
    /// A `foreach` or `while` ended: how many passes its body made.
    Loop {
        depth: usize,
        kind: String,
        passes: usize,
    },
    Caught {
        depth: usize,
        code: String,
        message: String,
    },
    /// What became of an answer to a request that sent a secret.
    Journal {
        depth: usize,
        message: String,
    },
    /// The trace is bounded (`run::trace`): this many events were made and
    /// not kept. Always the last event, and only when some were left out.
    Truncated {
        omitted: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failed,
    Denied,
}

/// What started a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Cli,
    Http,
    Schedule {
        name: String,
    },
    /// A read of a secret that is `refreshed_by` the endpoint.
    Read {
        secret: String,
    },
    /// `keep_alive` on the client whose connection the endpoint refreshes.
    KeepAlive {
        client: String,
    },
}

impl Trigger {
    pub fn describe(&self) -> String {
        match self {
            Trigger::Cli => "cli".into(),
            Trigger::Http => "http".into(),
            Trigger::Schedule { name } => format!("schedule {name}"),
            Trigger::Read { secret } => format!("read of {secret}"),
            Trigger::KeepAlive { client } => format!("keep_alive of {client}"),
        }
    }
}

/// A finished run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: String,
    pub endpoint: String,
    pub environment: String,
    pub identity: String,
    pub method: String,
    pub trigger: Trigger,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    pub outcome: Outcome,
    /// For schedule runs: how late the run started, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    pub trace: Vec<Event>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReport>,
    /// The service variables at the end of the run.
    #[serde(default)]
    pub variables: BTreeMap<String, Shown>,
    /// The run whose kept answers this one replayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_of: Option<String>,
    /// The declared response (`status`, `body`), every secret masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<serde_json::Value>,
    /// The `on_failure` or `on_recovery` hooks this run set off.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<HookReport>,
}

/// What a hook did: it never changes the outcome of the run it reports on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HookReport {
    /// `on_failure` or `on_recovery`.
    pub hook: String,
    /// Whose hook: `endpoint`, or `schedule NAME`.
    pub of: String,
    pub outcome: Outcome,
    pub trace: Vec<Event>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReport>,
}

impl RunRecord {
    /// Replaces known secret values in every free-text field: URLs, bodies,
    /// messages and shown values. Names (of endpoints, identities,
    /// variables, events) are not touched: they come from the program, and
    /// a short secret value must not mangle them.
    pub fn redact(&mut self, redactor: &Redactor) {
        if redactor.is_empty() {
            return;
        }
        let text = |s: &mut String| *s = redactor.redact(s);
        let shown = |v: &mut Shown| {
            if let Shown::Value { value } = v {
                redactor.redact_json(value);
            }
        };
        redact_trace(&mut self.trace, redactor);
        for hook in &mut self.hooks {
            hook.redact(redactor);
        }
        if let Some(error) = &mut self.error {
            text(&mut error.message);
            if let Some(help) = &mut error.help {
                text(help);
            }
        }
        self.variables.values_mut().for_each(shown);
    }
}

impl HookReport {
    pub fn redact(&mut self, redactor: &Redactor) {
        redact_trace(&mut self.trace, redactor);
        if let Some(error) = &mut self.error {
            error.message = redactor.redact(&error.message);
            if let Some(help) = &mut error.help {
                *help = redactor.redact(help);
            }
        }
    }
}

/// Redacts every text of a trace.
fn redact_trace(trace: &mut [Event], redactor: &Redactor) {
    let text = |s: &mut String| *s = redactor.redact(s);
    let shown = |v: &mut Shown| {
        if let Shown::Value { value } = v {
            redactor.redact_json(value);
        }
    };
    {
        for event in trace.iter_mut() {
            match event {
                Event::Assign { value, .. } | Event::Mapped { value, .. } => shown(value),
                Event::Request {
                    url, headers, body, ..
                } => {
                    text(url);
                    headers.iter_mut().for_each(|(_, v)| text(v));
                    if let Some(body) = body {
                        text(body);
                    }
                }
                Event::Retry { reason, .. } => text(reason),
                Event::Log { message, .. }
                | Event::Caught { message, .. }
                | Event::Journal { message, .. } => text(message),
                Event::Branch { .. }
                | Event::SecretUpdated { .. }
                | Event::RunService { .. }
                | Event::Sleep { .. }
                | Event::Loop { .. }
                | Event::Truncated { .. } => {}
            }
        }
    }
}

impl RunRecord {
    /// The trace as people read it.
    pub fn human(&self) -> String {
        let mut out = String::new();
        let dry = if self.dry_run {
            " (dry run: nothing is sent or changed)"
        } else {
            ""
        };
        // The method the endpoint was called with, said as such: the
        // requests it sends (`POST https://...` below) have their own.
        let _ = writeln!(
            out,
            "run {} as {} in {} via {}, called with {}{dry}",
            self.endpoint,
            self.identity,
            self.environment,
            self.trigger.describe(),
            self.method,
        );
        for event in &self.trace {
            render_event(&mut out, event);
        }
        match self.outcome {
            Outcome::Success => {
                let _ = writeln!(
                    out,
                    "ok: {} succeeded in {} ms",
                    self.endpoint, self.duration_ms
                );
            }
            Outcome::Failed | Outcome::Denied => {
                let _ = writeln!(
                    out,
                    "failed: {} after {} ms",
                    self.endpoint, self.duration_ms
                );
            }
        }
        for hook in &self.hooks {
            let _ = writeln!(out, "{} of {}:", hook.hook, hook.of);
            for event in &hook.trace {
                render_event(&mut out, event);
            }
            match &hook.error {
                None => {
                    let _ = writeln!(out, "  {} ok", hook.hook);
                }
                Some(error) => {
                    let _ = writeln!(
                        out,
                        "  {} failed: {} ({})",
                        hook.hook, error.message, error.code
                    );
                }
            }
        }
        out
    }
}

fn render_event(out: &mut String, event: &Event) {
    let pad = |depth: &usize| "  ".repeat(depth + 1);
    let _ = match event {
        Event::Assign { depth, name, value } => {
            writeln!(out, "{}{name} = {}", pad(depth), value.human())
        }
        Event::Request {
            depth,
            method,
            url,
            status,
            duration_ms,
            attempts,
            dry_run,
            replayed,
            headers,
            body,
        } => {
            if *dry_run {
                let _ = match status {
                    Some(status) => writeln!(
                        out,
                        "{}would send {method} {url}; simulated answer {}",
                        pad(depth),
                        reqwest::StatusCode::from_u16(*status)
                            .map_or(status.to_string(), crate::net::http::status_text)
                    ),
                    None => writeln!(out, "{}would send {method} {url}", pad(depth)),
                };
                for (name, value) in headers {
                    let _ = writeln!(out, "{}  {name}: {value}", pad(depth));
                }
                match body {
                    Some(body) => writeln!(out, "{}  body: {body}", pad(depth)),
                    None => Ok(()),
                }
            } else {
                let status = status.map_or("no answer".to_string(), |s| {
                    reqwest::StatusCode::from_u16(s)
                        .map_or(s.to_string(), crate::net::http::status_text)
                });
                let tries = if *attempts > 1 {
                    format!(", {attempts} attempts")
                } else {
                    String::new()
                };
                if *replayed {
                    writeln!(
                        out,
                        "{}{method} {url} -> {status} (replayed from the recovery journal)",
                        pad(depth)
                    )
                } else {
                    writeln!(
                        out,
                        "{}{method} {url} -> {status} ({duration_ms} ms{tries})",
                        pad(depth)
                    )
                }
            }
        }
        Event::Retry {
            depth,
            attempt,
            reason,
            wait_ms,
        } => writeln!(
            out,
            "{}attempt {attempt} {reason}; retrying in {wait_ms} ms",
            pad(depth)
        ),
        Event::Mapped { depth, name, value } => {
            writeln!(out, "{}  {name} <- {}", pad(depth), value.human())
        }
        Event::Branch {
            depth,
            condition,
            taken,
        } => writeln!(
            out,
            "{}if {condition}: {}",
            pad(depth),
            if *taken { "true" } else { "false, skipped" }
        ),
        Event::SecretUpdated {
            depth,
            name,
            version,
            expires_at,
            dry_run,
        } => {
            let expires = expires_at.map_or(String::new(), |t| {
                format!(
                    ", expires {}",
                    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                )
            });
            if *dry_run {
                writeln!(out, "{}would update secret {name}{expires}", pad(depth))
            } else {
                writeln!(
                    out,
                    "{}updated secret {name} to version {version}{expires}",
                    pad(depth)
                )
            }
        }
        Event::RunService {
            depth,
            endpoint,
            identity,
        } => writeln!(out, "{}run_service {endpoint} as {identity}", pad(depth)),
        Event::Log { depth, message } => writeln!(out, "{}log: {message}", pad(depth)),
        Event::Sleep { depth, ms } => writeln!(out, "{}sleep {ms} ms", pad(depth)),
        Event::Loop {
            depth,
            kind,
            passes,
        } => writeln!(out, "{}{kind}: {passes} passes", pad(depth)),
        Event::Caught {
            depth,
            code,
            message,
        } => {
            writeln!(out, "{}caught {code}: {message}", pad(depth))
        }
        Event::Journal { depth, message } => writeln!(out, "{}  {message}", pad(depth)),
        Event::Truncated { omitted } => writeln!(
            out,
            "  ... and {omitted} more {} not kept (a trace keeps the first {} passes and the last of each loop, and at most {} events)",
            if *omitted == 1 { "event" } else { "events" },
            bounds::KEPT_PASSES,
            bounds::MAX_EVENTS
        ),
    };
}

/// An error as it appears in `--output json` and the endpoint log.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct ErrorReport {
    pub code: String,
    pub diagnostic: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}
