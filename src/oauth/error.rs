//! What can stop `svc authorize`, or an OAuth step of a run, with a stable
//! code for each.

/// Declares the codes: variant, code, summary.
macro_rules! codes {
    ($($variant:ident => $code:literal, $summary:literal;)*) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

            /// One sentence on when it happens.
            pub fn summary(self) -> &'static str {
                match self {
                    $(Code::$variant => $summary,)*
                }
            }
        }
    };
}

codes! {
    UnknownClient => "svc::authorize::unknown_client", "The program declares no oauth_client of that name.";
    NothingToStore => "svc::authorize::nothing_to_store", "The oauth_client has no `stores` block.";
    ConnectionRequired => "svc::authorize::connection", "The oauth_client is `per_account` and `--connection ID` is missing or not an id (or a tag is not `KEY=VALUE`), or a single-connection client was given another id than `default`.";
    Unsupported => "svc::authorize::unsupported", "The client cannot do the flow asked for (no authorization or device endpoint).";
    BadListen => "svc::authorize::bad_listen", "`--listen` is not a loopback address, or cannot be bound.";
    NoIdentity => "svc::authorize::no_identity", "`--as` is missing: svc authorize runs as a user or service account.";
    UnknownIdentity => "svc::authorize::unknown_identity", "`--as` names no user or service account of the program.";
    PermissionDenied => "svc::authorize::permission_denied", "The identity lacks `update_secret` on a secret the client stores.";
    StoreFailed => "svc::authorize::store_failed", "The tokens could not be written to the store (they are kept in the recovery journal).";
    MissingValue => "svc::oauth::missing_value", "A secret the client reads has no value in the environment.";
    InvalidUrl => "svc::oauth::invalid_url", "A client URL is not a valid URL, or is plain http to a host that is not loopback.";
    Discovery => "svc::oauth::discovery_failed", "The issuer's discovery document cannot be fetched or is not valid.";
    BadKey => "svc::oauth::bad_key", "A signing key cannot be read, or cannot sign with the algorithm asked for.";
    StateMismatch => "svc::authorize::state_mismatch", "The redirect carried the `state` sent, but another issuer (`iss`) than the one expected.";
    AccessDenied => "svc::authorize::access_denied", "The person (or the server) refused the authorization.";
    AuthorizationError => "svc::authorize::authorization_error", "The authorization server redirected back with an error.";
    ExchangeFailed => "svc::authorize::exchange_failed", "The token endpoint refused the code, device code or request.";
    BadResponse => "svc::oauth::bad_response", "A token or device response is not the JSON OAuth 2.0 describes.";
    NonceMismatch => "svc::authorize::nonce_mismatch", "The ID token does not carry the nonce sent.";
    MissingToken => "svc::authorize::missing_token", "The token response lacks a token the client stores.";
    Timeout => "svc::authorize::timeout", "Nobody completed the authorization in time.";
    ExpiredToken => "svc::authorize::expired_token", "The device code expired before the person approved it.";
    Request => "svc::oauth::request_failed", "A request to the authorization server got no answer.";
    NoRandomness => "svc::oauth::no_randomness", "The system's random number source failed.";
    RevocationFailed => "svc::oauth::revocation_failed", "The revocation endpoint refused a token, or got no answer.";
}

/// An OAuth failure. The message and help are already redacted.
#[derive(Debug, Clone)]
pub struct Error {
    pub code: Code,
    pub message: String,
    pub help: Option<String>,
}

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
            help: None,
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Error {
        self.help = Some(help.into());
        self
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_one_row_in_docs_authorize() {
        let docs = include_str!("../../docs/authorize.md");
        for code in Code::ALL {
            let row = format!("| `{}` |", code.as_str());
            assert_eq!(
                docs.matches(&row).count(),
                1,
                "docs/authorize.md has no row (or two) for {}",
                code.as_str()
            );
        }
        // And no row for a code that does not exist.
        let rows = docs.lines().filter(|l| l.starts_with("| `svc::")).count();
        assert_eq!(rows, Code::ALL.len());
    }

    #[test]
    fn codes_are_distinct_and_namespaced() {
        let mut seen = std::collections::BTreeSet::new();
        for code in Code::ALL {
            let name = code.as_str();
            assert!(
                name.starts_with("svc::authorize::") || name.starts_with("svc::oauth::"),
                "{name}"
            );
            assert!(seen.insert(name), "{name} twice");
            assert!(code.summary().ends_with('.'), "{name}");
        }
    }
}
