//! Token revocation (RFC 7009): telling the authorization server that a
//! token is no longer wanted, authenticated as the client is at its token
//! endpoint.

use super::client::Credentials;
use super::error::{Code, Error};
use super::tokens::ErrorAnswer;
use crate::net::http::{self, Http};
use crate::redact::Redactor;

/// Which token is revoked: RFC 7009 §2.1's `token_type_hint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    RefreshToken,
    AccessToken,
}

impl Hint {
    pub fn as_str(self) -> &'static str {
        match self {
            Hint::RefreshToken => "refresh_token",
            Hint::AccessToken => "access_token",
        }
    }

    /// In a sentence: "the refresh token".
    pub fn noun(self) -> &'static str {
        match self {
            Hint::RefreshToken => "the refresh token",
            Hint::AccessToken => "the access token",
        }
    }
}

/// Revokes `token` at `endpoint`: the answer when the server took it (200;
/// RFC 7009 §2.2 answers 200 for a token already invalid too), else what
/// it said. `token` must be in `redactor` already.
pub async fn revoke(
    http: &Http,
    endpoint: &url::Url,
    credentials: &Credentials,
    token: &str,
    hint: Hint,
    redactor: &Redactor,
) -> Result<http::Response, Error> {
    let form = vec![
        ("token".to_string(), token.to_string()),
        ("token_type_hint".to_string(), hint.as_str().to_string()),
    ];
    let response = super::post_form(http, endpoint, form, credentials, redactor)
        .await
        .map_err(|e| {
            let mut error = Error::new(
                Code::RevocationFailed,
                format!("revoking {} got no answer: {}", hint.noun(), e.message),
            );
            error.help = e.help;
            error
        })?;
    if response.status.is_success() {
        return Ok(response);
    }
    Err(refused(hint, &response, redactor))
}

/// What a refusal of the revocation endpoint says, and what to do.
fn refused(hint: Hint, response: &http::Response, redactor: &Redactor) -> Error {
    let status = http::status_text(response.status);
    let answer = ErrorAnswer::parse(&response.body);
    let said = match &answer {
        Some(answer) => format!(": {}", answer.describe(redactor)),
        None => ", without an OAuth error".to_string(),
    };
    let help = match answer.as_ref().map(|a| a.error.as_str()) {
        Some("invalid_client") => {
            "the server does not accept the client's credentials there: check `client_auth` \
             and the client's registration"
        }
        Some("unsupported_token_type") => {
            "the server does not revoke this kind of token: revoke the grant in the provider's \
             console"
        }
        _ if response.status.as_u16() == 503 || response.status.as_u16() == 429 => {
            "the server is busy: try again later"
        }
        _ => {
            "check `revocation_url` (or the issuer's `revocation_endpoint`), or revoke the \
              grant in the provider's console"
        }
    };
    Error::new(
        Code::RevocationFailed,
        format!("revoking {} was refused ({status}){said}", hint.noun()),
    )
    .help(help)
}
