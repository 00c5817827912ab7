//! Diagnostics of the syntax and check phases, with stable codes.
//!
//! A [`Diagnostic`] is plain data: a code, a severity, a message, labelled
//! spans and a help line. [`crate::report`] turns it into output.

use serde::Serialize;

use crate::source::Span;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Error,
}

macro_rules! codes {
    ($($variant:ident => $code:literal, $severity:ident;)*) => {
        /// Every diagnostic code svc can report. The strings are stable: users
        /// match on them in CI, and `docs/language.md` documents each one.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code {
            $($variant,)*
        }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $code,)*
                }
            }

            pub fn severity(self) -> Severity {
                match self {
                    $(Code::$variant => Severity::$severity,)*
                }
            }
        }
    };
}

codes! {
    Syntax => "svc::syntax::unexpected", Error;
    InvalidEscape => "svc::syntax::invalid_escape", Error;
    TooDeep => "svc::syntax::too_deep", Error;
    DuplicateProperty => "svc::property::duplicate", Error;
    MissingProperty => "svc::property::missing", Error;
    ConflictingProperty => "svc::property::conflict", Error;
    DuplicateName => "svc::name::duplicate", Error;
    UnknownVariable => "svc::name::unknown_variable", Error;
    UnknownSecret => "svc::name::unknown_secret", Error;
    UnknownAction => "svc::name::unknown_action", Error;
    UnknownRole => "svc::name::unknown_role", Error;
    UnknownIdentity => "svc::name::unknown_identity", Error;
    UnknownService => "svc::name::unknown_service", Error;
    UnknownEndpoint => "svc::name::unknown_endpoint", Error;
    UnknownFunction => "svc::name::unknown_function", Error;
    UnknownErrorField => "svc::name::unknown_error_field", Error;
    NotAServiceAccount => "svc::name::not_a_service_account", Error;
    UnknownType => "svc::type::unknown", Error;
    TypeMismatch => "svc::type::mismatch", Error;
    UndeclaredMappingTarget => "svc::type::undeclared_mapping_target", Error;
    WrongArguments => "svc::type::wrong_arguments", Error;
    InvalidDuration => "svc::value::invalid_duration", Error;
    InvalidNumber => "svc::value::invalid_number", Error;
    InvalidJsonPath => "svc::value::invalid_jsonpath", Error;
    InvalidCron => "svc::value::invalid_cron", Error;
    InvalidTimeZone => "svc::value::invalid_time_zone", Error;
    InvalidUrl => "svc::value::invalid_url", Error;
    InvalidMethod => "svc::value::invalid_method", Error;
    InvalidStatus => "svc::value::invalid_status", Error;
    InvalidHeader => "svc::value::invalid_header", Error;
    SecretUndeclared => "svc::secret::undeclared", Error;
    SecretNotEnvironmentSpecific => "svc::secret::not_environment_specific", Error;
    SecretLocked => "svc::secret::locked", Error;
    MissingUpdateGrant => "svc::permission::missing_update_grant", Error;
    MissingRunGrant => "svc::permission::missing_run_grant", Error;
    ScheduleMethod => "svc::schedule::method_not_allowed", Error;
    RunServiceCycle => "svc::run_service::cycle", Error;
    SecretWithoutValue => "svc::store::missing_value", Error;
    UnguardedSecretUpdate => "svc::secret::unguarded_update", Warning;
    PlainHttpSecret => "svc::secret::plain_http", Warning;
    UnusedVariable => "svc::unused::variable", Warning;
    UnusedAction => "svc::unused::action", Warning;
    UnusedSecret => "svc::unused::secret", Warning;
    UnusedRole => "svc::unused::role", Warning;
    NeverAssigned => "svc::variable::never_assigned", Warning;
    UnreachableCode => "svc::flow::unreachable", Warning;
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A span with a short explanation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    /// The first label is the primary one: where the problem is.
    pub labels: Vec<Label>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: code.severity(),
            message: message.into(),
            labels: Vec::new(),
            help: None,
        }
    }

    pub fn label(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            message: message.into(),
        });
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn primary_span(&self) -> Option<Span> {
        self.labels.first().map(|l| l.span)
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Sorts diagnostics by file and position, errors before warnings at the
/// same place, so output is stable whatever order the checks ran in.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by_key(|d| {
        let span = d.primary_span().unwrap_or_default();
        (span.file, span.start, std::cmp::Reverse(d.severity), d.code)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_namespaced() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            assert!(code.as_str().starts_with("svc::"), "{}", code.as_str());
            assert!(
                seen.insert(code.as_str()),
                "duplicate code {}",
                code.as_str()
            );
        }
    }
}
