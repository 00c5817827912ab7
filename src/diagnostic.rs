//! Diagnostics of the syntax and check phases, with stable codes.
//!
//! A [`Diagnostic`] is plain data: a code, a severity, a message, labelled
//! spans, a help line, and the fixes that would resolve it (each one a set
//! of text edits, and whether it is safe to apply without review).
//! [`crate::report`] turns it into output; `svc check --fix` and the
//! language server's quick fixes apply the fixes as they are: nothing ever
//! reads a fix back out of the help text.

use serde::Serialize;

use crate::source::Span;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Error,
}

macro_rules! codes {
    ($($variant:ident => $code:literal, $severity:ident, $summary:literal;)*) => {
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

            /// One sentence on what the rule catches.
            pub fn summary(self) -> &'static str {
                match self {
                    $(Code::$variant => $summary,)*
                }
            }
        }
    };
}

codes! {
    Syntax => "svc::syntax::unexpected", Error, "The file does not follow the grammar.";
    InvalidEscape => "svc::syntax::invalid_escape", Error, "A string holds an escape svc does not know.";
    TooDeep => "svc::syntax::too_deep", Error, "Blocks or expressions are nested too deeply.";
    DuplicateProperty => "svc::property::duplicate", Error, "A property is given twice in one block.";
    MissingProperty => "svc::property::missing", Error, "A block lacks a property it needs.";
    ConflictingProperty => "svc::property::conflict", Error, "Two properties exclude each other.";
    DuplicateName => "svc::name::duplicate", Error, "A name is declared twice.";
    UnknownVariable => "svc::name::unknown_variable", Error, "A variable is used but not declared.";
    UnknownSecret => "svc::name::unknown_secret", Error, "A secret is used but not declared.";
    UnknownAction => "svc::name::unknown_action", Error, "An endpoint processes an action that does not exist.";
    UnknownRole => "svc::name::unknown_role", Error, "An identity has a role that is not declared.";
    UnknownIdentity => "svc::name::unknown_identity", Error, "A service account is named but not declared.";
    UnknownService => "svc::name::unknown_service", Error, "A service is named but not declared.";
    UnknownEndpoint => "svc::name::unknown_endpoint", Error, "An endpoint is named but not declared.";
    UnknownFunction => "svc::name::unknown_function", Error, "A function svc does not know is called.";
    UnknownClient => "svc::name::unknown_client", Error, "An oauth_client is named (by a request's authentication, a `read_status` or `connect` grant, or `for_each_connection`) but not declared.";
    UnknownArgument => "svc::name::unknown_argument", Error, "A construct is given an argument it does not take.";
    UnknownTokenField => "svc::name::unknown_token_field", Error, "An oauth_client stores a token field svc does not know.";
    UnknownErrorField => "svc::name::unknown_error_field", Error, "error.FIELD is used outside catch, or the field does not exist.";
    NotAServiceAccount => "svc::name::not_a_service_account", Error, "A user is named where a service account is needed.";
    UnknownType => "svc::type::unknown", Error, "A variable has a type svc does not know.";
    TypeMismatch => "svc::type::mismatch", Error, "A value has the wrong type for where it is used.";
    UndeclaredMappingTarget => "svc::type::undeclared_mapping_target", Error, "A result mapping writes a variable that is not declared.";
    WrongArguments => "svc::type::wrong_arguments", Error, "A function is called with the wrong number of arguments.";
    InvalidDuration => "svc::value::invalid_duration", Error, "A duration is malformed or out of range.";
    InvalidNumber => "svc::value::invalid_number", Error, "A number is out of range.";
    InvalidJsonPath => "svc::value::invalid_jsonpath", Error, "A JSONPath is not valid RFC 9535.";
    InvalidCron => "svc::value::invalid_cron", Error, "A cron expression is not valid.";
    InvalidTimeZone => "svc::value::invalid_time_zone", Error, "A time zone is not an IANA name.";
    InvalidUrl => "svc::value::invalid_url", Error, "A URL is not valid.";
    InvalidMethod => "svc::value::invalid_method", Error, "An HTTP method is not supported.";
    InvalidStatus => "svc::value::invalid_status", Error, "An HTTP status is out of range.";
    InvalidHeader => "svc::value::invalid_header", Error, "A header name is not valid.";
    InvalidAlgorithm => "svc::value::invalid_algorithm", Error, "A JWT signing algorithm svc does not support.";
    InvalidScope => "svc::value::invalid_scope", Error, "An OAuth scope holds characters RFC 6749 does not allow.";
    InsecureUrl => "svc::value::insecure_url", Error, "An authorization server URL is plain http to a host that is not loopback.";
    NotConstant => "svc::client::not_constant", Error, "An oauth_client value uses something other than literals and secrets.";
    SecretUndeclared => "svc::secret::undeclared", Error, "update_secret of a secret that is not declared.";
    SecretNotEnvironmentSpecific => "svc::secret::not_environment_specific", Error, "update_secret of a secret shared by every environment.";
    SecretLocked => "svc::secret::locked", Error, "update_secret of a locked secret.";
    RefresherDoesNotUpdate => "svc::secret::refresher_does_not_update", Error, "A secret's refreshed_by endpoint never updates it.";
    MissingUpdateGrant => "svc::permission::missing_update_grant", Error, "An identity that can run an endpoint may not update a secret it updates.";
    NoAuthorizer => "svc::permission::no_authorizer", Warning, "No user or service account may store the tokens of an oauth_client.";
    MissingRunGrant => "svc::permission::missing_run_grant", Error, "An identity runs an endpoint it has no run grant for.";
    ScheduleMethod => "svc::schedule::method_not_allowed", Error, "A schedule's endpoint does not allow GET.";
    RunServiceCycle => "svc::run_service::cycle", Error, "Endpoints call each other in a cycle.";
    SecretWithoutValue => "svc::store::missing_value", Error, "A secret the program reads has no value in the environment.";
    UnguardedSecretUpdate => "svc::secret::unguarded_update", Warning, "A secret may be updated with an empty value.";
    PlainHttpSecret => "svc::secret::plain_http", Warning, "A secret is sent over plain http to a host that is not loopback.";
    CrossOriginRedirect => "svc::secret::cross_origin_redirect", Warning, "A request that carries a secret follows redirects to other origins.";
    UnlockedSigningKey => "svc::secret::unlocked_signing_key", Warning, "A private key that signs JWTs is held in a secret that is not locked.";
    RetrySpendsRotatingSecret => "svc::run::retry_spends_rotating_secret", Warning, "A request that presents a secret the run then replaces is retried.";
    UnusedVariable => "svc::unused::variable", Warning, "A variable is never read.";
    UnusedAction => "svc::unused::action", Warning, "An action is never processed.";
    UnusedSecret => "svc::unused::secret", Warning, "A secret is never used.";
    UnusedRole => "svc::unused::role", Warning, "A role is given to nobody.";
    NeverAssigned => "svc::variable::never_assigned", Warning, "A variable is read but never given a value.";
    UnreachableCode => "svc::flow::unreachable", Warning, "Statements that never run.";
    BreakOutsideLoop => "svc::flow::break_outside_loop", Error, "`break` outside a `foreach` or `while` loop.";
    LoopVariable => "svc::name::loop_variable", Error, "A loop variable takes the name of a variable in scope, or is assigned.";
    InvalidLoopBound => "svc::value::invalid_loop_bound", Error, "A `while` bound is 0 or more than 10,000.";
    UnknownRunField => "svc::name::unknown_run_field", Error, "`run.FIELD` outside a hook, or a field other than `id`, `endpoint`, `environment`.";
    HookUpdatesSecret => "svc::secret::updated_in_hook", Error, "A failure or recovery hook updates a secret.";
    UnknownParam => "svc::name::unknown_param", Error, "A parameter the endpoint's `params` does not declare.";
    MissingParam => "svc::param::missing", Error, "A schedule or `run_service` does not give a required parameter.";
    InvalidParam => "svc::param::invalid", Error, "A parameter declaration with a type or default svc cannot use.";
    SecretInResponse => "svc::secret::in_response", Error, "A response would show a secret the endpoint does not `reveals`.";
    MissingReadGrant => "svc::permission::missing_read_grant", Error, "An identity that may run an endpoint may not read a secret its response reveals.";
    NoResponse => "svc::run_service::no_response", Error, "`run_service ... into VAR` of an endpoint that declares no `response`.";
    UnknownEvent => "svc::notify::unknown_event", Error, "A notify lists an event svc does not send.";
    UnlockedWebhookSecret => "svc::notify::unlocked_signing_secret", Error, "A notify signs with a secret that is not locked.";
    KeepAliveWithoutRunner => "svc::client::keep_alive_without_runner", Error, "keep_alive on an oauth_client with no endpoint a service account may run to refresh it.";
    IdleRefreshToken => "svc::client::idle_refresh_token", Warning, "A stored refresh token is refreshed by no schedule, refresh on read or keep_alive.";
    UnknownConnectionField => "svc::name::unknown_connection_field", Error, "`connection.FIELD` outside a per-account endpoint, or a field other than `id` and `tags.KEY`.";
    ReservedParam => "svc::param::reserved", Error, "An endpoint declares a parameter named `connection`, which `svc serve` reserves.";
    InvalidConcurrency => "svc::value::invalid_concurrency", Error, "A schedule's `concurrency` is 0 or more than 256.";
    InvalidReturnTo => "svc::client::invalid_return_to", Error, "A `return_to` URL is not https (or http to loopback), or has a query or fragment.";
    StoreNotPerAccount => "svc::account::store_not_per_account", Error, "A `per_account` oauth_client stores a secret not declared `per_account`.";
    NotStoredPerAccount => "svc::account::not_stored_per_account", Error, "A `per_account` secret is not stored by a `per_account` oauth_client.";
    PerAccountLocked => "svc::account::locked", Error, "A secret is both `per_account` and `locked`.";
    OutsideConnection => "svc::account::outside_connection", Error, "A per-account secret or endpoint is reached where no connection is given.";
    TwoClients => "svc::account::two_clients", Error, "An endpoint reaches the per-account secrets of two oauth_clients.";
    InvalidForEachConnection => "svc::account::invalid_for_each_connection", Error, "`for_each_connection` names a client that is not `per_account`, or the endpoint is not one of its per-account endpoints.";
    NeedlessConnection => "svc::account::needless_connection", Error, "`for_connection` on a run of an endpoint that is not per-account.";
    UnknownProvider => "svc::provider::unknown", Error, "`provider NAME` names no profile of the catalog (`svc provider list`).";
    UnknownProviderParameter => "svc::provider::unknown_parameter", Error, "A `provider` argument the profile has no parameter for.";
    MissingProviderParameter => "svc::provider::missing_parameter", Error, "A parameter the profile needs (one without a default) is not given.";
    ProviderUrlDiffers => "svc::provider::url_differs", Warning, "A URL the client states is not the one its provider profile documents.";
    ClientAuthNotAccepted => "svc::provider::client_auth_not_accepted", Error, "The client authenticates in a way its provider's token endpoint does not accept.";
    OfflineScopeMissing => "svc::provider::offline_scope_missing", Error, "The client stores a refresh token but does not ask for the scope without which its provider issues none.";
    RotatedTokenNotStored => "svc::provider::rotated_token_not_stored", Error, "A written-out refresh for a provider that rotates refresh tokens does not store the new one.";
    GrantNotOffered => "svc::provider::grant_not_offered", Error, "`refresh_tokens` or `client_credentials` for a provider whose profile has no such grant.";
    GrantWithoutStore => "svc::token_grant::missing_store", Error, "`refresh_tokens` or `client_credentials` of a client that does not store the tokens it needs.";
    WrittenOutGrant => "svc::token_grant::written_out", Warning, "A refresh written out by hand that `refresh_tokens client(NAME)` would do in one statement.";
    SkippedFile => "svc::source::skipped", Warning, "A .svc entry of a directory is not a regular file, and was not read.";
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

/// One replacement in a file: the text of `span` becomes `text` (an empty
/// span inserts).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Edit {
    pub span: Span,
    pub text: String,
}

/// A way to resolve a diagnostic: edits made together.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Fix {
    /// What it does, as an editor's menu says it: "Add `grant ...` to role `r`".
    pub title: String,
    /// Whether it can be applied without review (`svc check --fix`): it
    /// keeps what the program means. A fix that guesses (a misspelt name)
    /// or widens what the program may do (a grant) is not.
    pub safe: bool,
    /// Non-overlapping, in any order.
    pub edits: Vec<Edit>,
}

impl Fix {
    pub fn new(title: impl Into<String>, safe: bool, edits: Vec<Edit>) -> Fix {
        Fix {
            title: title.into(),
            safe,
            edits,
        }
    }

    /// One replacement.
    pub fn replace(
        title: impl Into<String>,
        safe: bool,
        span: Span,
        text: impl Into<String>,
    ) -> Fix {
        Fix::new(
            title,
            safe,
            vec![Edit {
                span,
                text: text.into(),
            }],
        )
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    /// The first label is the primary one: where the problem is.
    pub labels: Vec<Label>,
    pub help: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fixes: Vec<Fix>,
}

impl Diagnostic {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: code.severity(),
            message: message.into(),
            labels: Vec::new(),
            help: None,
            fixes: Vec::new(),
        }
    }

    /// A way to resolve it; `None` (a fix the layout of the file does not
    /// allow) adds nothing.
    pub fn fix(mut self, fix: impl Into<Option<Fix>>) -> Self {
        self.fixes.extend(fix.into());
        self
    }

    /// For a name that was written where nothing declares it: when one of
    /// `candidates` is close, the help asks "did you mean `x`?" and a fix
    /// writes `x` over the name (`at`, the span of `written` alone); else
    /// the help is `fallback`.
    pub fn suggest<'a>(
        mut self,
        written: &str,
        at: impl Into<Option<Span>>,
        candidates: impl IntoIterator<Item = &'a str>,
        fallback: impl Into<String>,
    ) -> Self {
        match crate::suggest::closest(written, candidates) {
            Some(candidate) => {
                self.help = Some(format!("did you mean `{candidate}`?"));
                // A guess: the editor offers it, `--fix` applies it only
                // when told to apply unsafe fixes.
                if let Some(at) = at.into() {
                    self.fixes.push(Fix::replace(
                        format!("Change `{written}` to `{candidate}`"),
                        false,
                        at,
                        candidate,
                    ));
                }
            }
            None => self.help = Some(fallback.into()),
        }
        self
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
