//! What can stop a run, with where in the script it happened.

use crate::backend::ErrorReport;
use crate::source::Span;

/// Why a run failed. Every message is already redacted.
#[derive(Debug, Clone)]
pub struct RunError {
    pub kind: ErrorKind,
    pub message: String,
    pub help: Option<String>,
    /// The node that failed.
    pub span: Option<Span>,
    /// The OAuth error of the answer that failed it, redacted: what it
    /// says about the connection it came from (`oauth::failure`).
    pub provider: Option<Box<crate::oauth::tokens::ErrorAnswer>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ErrorKind {
    /// A request failed: a non-2xx answer (`status`) or no answer at all.
    WebRequest { status: Option<u16> },
    /// `throw "code" "message"`.
    Thrown { code: String },
    /// A response value that does not fit its variable, or a body that is not JSON.
    Mapping,
    /// An expression that cannot be evaluated (`<` on text, ...).
    Type,
    /// The identity may not do this. Exit code 3.
    PermissionDenied,
    /// The secret store or a lock failed.
    Store { code: &'static str },
    /// Calls nested too deeply, or another limit.
    Limit,
    /// A replay whose kept answers do not fit the program.
    Replay,
    /// An OAuth step: discovery, a client's values, a signing key.
    OAuth { code: crate::oauth::Code },
    /// The recovery journal holds an answer this run would supersede, and
    /// it could not be stored first (`run::settle`).
    Unsettled,
}

impl RunError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> RunError {
        RunError {
            kind,
            message: message.into(),
            help: None,
            span: None,
            provider: None,
        }
    }

    pub fn at(mut self, span: Span) -> RunError {
        if self.span.is_none() {
            self.span = Some(span);
        }
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> RunError {
        self.help = Some(help.into());
        self
    }

    /// The code a `catch "code"` matches and `error.code` holds.
    pub fn code(&self) -> String {
        match &self.kind {
            ErrorKind::WebRequest { .. } => "web_request_error".into(),
            ErrorKind::Thrown { code } => code.clone(),
            ErrorKind::Mapping => "mapping_error".into(),
            ErrorKind::Type => "type_error".into(),
            ErrorKind::PermissionDenied => "permission_denied".into(),
            ErrorKind::Store { .. } => "store_error".into(),
            ErrorKind::Limit => "limit_exceeded".into(),
            ErrorKind::Replay => "replay_error".into(),
            ErrorKind::OAuth { .. } => "oauth_error".into(),
            ErrorKind::Unsettled => "unsettled_journal".into(),
        }
    }

    /// The stable diagnostic code for reports.
    pub fn diagnostic_code(&self) -> &'static str {
        match &self.kind {
            ErrorKind::WebRequest { .. } => "svc::run::web_request_error",
            ErrorKind::Thrown { .. } => "svc::run::thrown",
            ErrorKind::Mapping => "svc::run::mapping_error",
            ErrorKind::Type => "svc::run::type_error",
            ErrorKind::PermissionDenied => "svc::run::permission_denied",
            ErrorKind::Store { code } => code,
            ErrorKind::Limit => "svc::run::limit_exceeded",
            ErrorKind::Replay => "svc::run::replay_mismatch",
            ErrorKind::OAuth { code } => code.as_str(),
            ErrorKind::Unsettled => "svc::run::unsettled_journal",
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self.kind {
            ErrorKind::WebRequest { status } => status,
            _ => None,
        }
    }

    /// Whether `try`/`catch` may handle it. Permission and store failures
    /// are not the script's to recover from.
    pub fn catchable(&self) -> bool {
        !matches!(
            self.kind,
            ErrorKind::PermissionDenied
                | ErrorKind::Store { .. }
                | ErrorKind::Limit
                | ErrorKind::Replay
                | ErrorKind::Unsettled
        )
    }

    pub fn to_report(&self) -> ErrorReport {
        ErrorReport {
            code: self.code(),
            diagnostic: self.diagnostic_code().to_string(),
            message: self.message.clone(),
            status: self.status(),
            help: self.help.clone(),
        }
    }
}

impl From<crate::net::http::SendError> for RunError {
    fn from(error: crate::net::http::SendError) -> RunError {
        RunError::new(
            ErrorKind::WebRequest {
                status: error.status,
            },
            error.message,
        )
        .help(error.help)
    }
}

impl From<crate::oauth::Error> for RunError {
    fn from(error: crate::oauth::Error) -> RunError {
        RunError {
            kind: ErrorKind::OAuth { code: error.code },
            message: error.message,
            help: error.help,
            span: None,
            provider: None,
        }
    }
}
