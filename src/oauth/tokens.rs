//! Token endpoint answers (RFC 6749 §5): the tokens, or the error.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::error::{Code, Error};
use crate::net::http;
use crate::redact::Redactor;
use crate::syntax::ast::TokenField;

/// A successful token response. Tokens are zeroed when dropped and never
/// shown by `Debug`.
pub struct Tokens {
    pub access_token: Option<Zeroizing<String>>,
    pub refresh_token: Option<Zeroizing<String>>,
    pub id_token: Option<Zeroizing<String>>,
    pub token_type: Option<String>,
    /// Seconds the access token lives.
    pub expires_in: Option<f64>,
    /// Seconds the refresh token lives, where the server says (Keycloak's
    /// `refresh_expires_in`, Microsoft's and GitHub's `refresh_token_expires_in`).
    pub refresh_expires_in: Option<f64>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Tokens(access: {}, refresh: {}, id: {})",
            self.access_token.is_some(),
            self.refresh_token.is_some(),
            self.id_token.is_some()
        )
    }
}

#[derive(Deserialize)]
struct Raw {
    access_token: Option<String>,
    refresh_token: Option<String>,
    id_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<serde_json::Value>,
    refresh_expires_in: Option<serde_json::Value>,
    refresh_token_expires_in: Option<serde_json::Value>,
    x_refresh_token_expires_in: Option<serde_json::Value>,
}

/// A token's lifetime in seconds ([`super::seconds::parse`]); one of more
/// than 300 years, or not a number of seconds, says nothing.
fn seconds(value: Option<serde_json::Value>) -> Option<f64> {
    super::seconds::parse(&value?).filter(|seconds| *seconds < 1e10)
}

impl Tokens {
    /// Reads a 2xx token response.
    pub fn parse(body: &[u8]) -> Result<Tokens, Error> {
        let raw: Raw = serde_json::from_slice(body).map_err(|e| {
            Error::new(
                Code::BadResponse,
                format!(
                    "the token response is not a JSON object of tokens ({})",
                    json_problem(&e)
                ),
            )
            .help("check `token_url`: it is the server's token endpoint")
        })?;
        let keep = |t: Option<String>| t.filter(|t| !t.trim().is_empty()).map(Zeroizing::new);
        Ok(Tokens {
            access_token: keep(raw.access_token),
            refresh_token: keep(raw.refresh_token),
            id_token: keep(raw.id_token),
            token_type: raw.token_type,
            expires_in: seconds(raw.expires_in),
            refresh_expires_in: seconds(raw.refresh_expires_in)
                .or_else(|| seconds(raw.refresh_token_expires_in))
                .or_else(|| seconds(raw.x_refresh_token_expires_in)),
        })
    }

    pub fn get(&self, field: TokenField) -> Option<&str> {
        match field {
            TokenField::AccessToken => self.access_token.as_deref().map(String::as_str),
            TokenField::RefreshToken => self.refresh_token.as_deref().map(String::as_str),
            TokenField::IdToken => self.id_token.as_deref().map(String::as_str),
        }
    }

    /// When a token expires, if the answer says: `expires_in` for the
    /// access token, the refresh token's own lifetime, the ID token's `exp`.
    pub fn expires_at(&self, field: TokenField, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let after = |seconds: f64| {
            now.checked_add_signed(chrono::TimeDelta::try_milliseconds(
                (seconds * 1000.0) as i64,
            )?)
        };
        match field {
            TokenField::AccessToken => self.expires_in.and_then(after),
            TokenField::RefreshToken => self.refresh_expires_in.and_then(after),
            TokenField::IdToken => {
                let exp = claims(self.id_token.as_deref()?)?.get("exp")?.as_i64()?;
                DateTime::from_timestamp(exp, 0)
            }
        }
    }

    /// Every token, for the redactor.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        [&self.access_token, &self.refresh_token, &self.id_token]
            .into_iter()
            .flatten()
            .map(|t| t.as_str())
    }
}

/// When a connection's new refresh token expires: as the token answer
/// said (`answered`), else `at` plus the client's `refresh_token_ttl`, else
/// unknown. The one rule for refreshes and `svc authorize` alike.
pub fn refresh_token_expires_at(
    client: Option<&crate::syntax::ast::OAuthClientDecl>,
    answered: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    answered.or_else(|| {
        let ttl = client?.refresh_token_ttl.as_ref()?.value?;
        at.checked_add_signed(chrono::TimeDelta::from_std(ttl).ok()?)
    })
}

/// The claims of a JWT, decoded without checking its signature: the ID
/// token came straight from the token endpoint over TLS (OpenID Connect
/// Core §3.1.3.7), and svc reads only `nonce` and `exp` from it.
pub fn claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        serde_json::Value::Object(map) => Some(map),
        _ => None,
    }
}

/// An RFC 6749 §5.2 error answer. A description that is not a string is
/// left out, not a reason to drop the error.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ErrorAnswer {
    pub error: String,
    #[serde(default, deserialize_with = "text_or_none")]
    pub error_description: Option<String>,
}

fn text_or_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(text) => Some(text),
        _ => None,
    })
}

impl ErrorAnswer {
    pub fn parse(body: &[u8]) -> Option<ErrorAnswer> {
        serde_json::from_slice::<ErrorAnswer>(body)
            .ok()
            .filter(|e| !e.error.is_empty())
    }

    /// The error of an answer that names it in another field than
    /// `error`, as a provider profile says (HubSpot: `status`, with the
    /// description in `message`).
    pub fn parse_field(body: &[u8], field: &str) -> Option<ErrorAnswer> {
        let json: serde_json::Value = serde_json::from_slice(body).ok()?;
        let error = json.get(field)?.as_str().filter(|e| !e.is_empty())?;
        let description = ["error_description", "message"]
            .iter()
            .find_map(|d| json.get(*d)?.as_str().map(str::to_string));
        Some(ErrorAnswer {
            error: error.to_string(),
            error_description: description,
        })
    }

    /// `error`, and `error_description` when given; redacted, and cut
    /// short (the server wrote it, and it is shown in a terminal).
    pub fn describe(&self, redactor: &Redactor) -> String {
        let text = match &self.error_description {
            Some(description) if !description.is_empty() => {
                format!("`{}`: {}", self.error, description)
            }
            _ => format!("`{}`", self.error),
        };
        shorten(&redactor.redact(&text))
    }
}

/// The failure of a request to the token endpoint (or the device
/// authorization endpoint), from its answer.
pub fn refused(what: &str, response: &http::Response, redactor: &Redactor) -> Error {
    let status = http::status_text(response.status);
    match ErrorAnswer::parse(&response.body) {
        Some(answer) => Error::new(
            Code::ExchangeFailed,
            format!(
                "{what} was refused ({status}): {}",
                answer.describe(redactor)
            ),
        ),
        None => Error::new(
            Code::ExchangeFailed,
            format!("{what} was refused ({status}), without an OAuth error"),
        ),
    }
}

/// What is wrong with a JSON answer, in words that never quote it (serde's
/// messages do, and the answer may hold a token).
pub fn json_problem(error: &serde_json::Error) -> &'static str {
    match error.classify() {
        serde_json::error::Category::Syntax => "it is not JSON",
        serde_json::error::Category::Eof => "it is cut short",
        serde_json::error::Category::Data => "a field is missing or has the wrong type",
        serde_json::error::Category::Io => "it cannot be read",
    }
}

/// At most 300 characters, without what a terminal must not see
/// ([`crate::output::strip_controls`]).
pub fn shorten(text: &str) -> String {
    const MAX: usize = 300;
    let clean = crate::output::strip_controls(text);
    let mut short: String = clean.chars().take(MAX).collect();
    if clean.chars().nth(MAX).is_some() {
        short.push_str("...");
    }
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_says_when_the_refresh_token_expires_else_the_declared_ttl() {
        let (program, _) = crate::syntax::parse_file(
            crate::source::FileId::default(),
            "oauth_client a { refresh_token_ttl 90d }\noauth_client b { }",
        );
        let [with, without] = &program.oauth_clients[..] else {
            panic!("two clients")
        };
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let said = at + chrono::TimeDelta::hours(1);
        assert_eq!(
            refresh_token_expires_at(Some(with), Some(said), at),
            Some(said)
        );
        assert_eq!(
            refresh_token_expires_at(Some(with), None, at),
            Some(at + chrono::TimeDelta::days(90))
        );
        assert_eq!(refresh_token_expires_at(Some(without), None, at), None);
        assert_eq!(refresh_token_expires_at(None, None, at), None);
    }

    #[test]
    fn reads_tokens_and_lifetimes() {
        let tokens = Tokens::parse(
            br#"{"access_token":"at","refresh_token":"rt","expires_in":"3600","token_type":"Bearer","refresh_expires_in":86400}"#,
        )
        .unwrap();
        let now = Utc::now();
        assert_eq!(tokens.get(TokenField::AccessToken), Some("at"));
        assert_eq!(tokens.get(TokenField::RefreshToken), Some("rt"));
        assert_eq!(
            tokens.expires_at(TokenField::AccessToken, now),
            Some(now + chrono::TimeDelta::seconds(3600))
        );
        assert_eq!(
            tokens.expires_at(TokenField::RefreshToken, now),
            Some(now + chrono::TimeDelta::seconds(86400))
        );
        assert!(!format!("{tokens:?}").contains("rt\""));
    }

    #[test]
    fn blank_tokens_are_absent() {
        let tokens = Tokens::parse(br#"{"access_token":"  ","refresh_token":null}"#).unwrap();
        assert!(tokens.access_token.is_none());
        assert!(tokens.refresh_token.is_none());
    }

    #[test]
    fn id_token_expiry_comes_from_its_claims() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"exp":2000000000,"nonce":"n"}"#);
        let body = format!(r#"{{"id_token":"e30.{payload}.sig"}}"#);
        let tokens = Tokens::parse(body.as_bytes()).unwrap();
        assert_eq!(
            tokens.expires_at(TokenField::IdToken, Utc::now()),
            DateTime::from_timestamp(2_000_000_000, 0)
        );
    }

    #[test]
    fn error_answers_are_redacted_and_short() {
        let answer = ErrorAnswer::parse(
            br#"{"error":"invalid_grant","error_description":"code abc123 is spent"}"#,
        )
        .unwrap();
        let redactor = Redactor::of(["abc123"]);
        let text = answer.describe(&redactor);
        assert!(
            text.contains("invalid_grant") && !text.contains("abc123"),
            "{text}"
        );
        assert!(shorten(&"x".repeat(1000)).len() < 310);
        assert!(ErrorAnswer::parse(b"<html>").is_none());
        // A description that is not text does not lose the error.
        let odd =
            ErrorAnswer::parse(br#"{"error":"invalid_grant","error_description":42}"#).unwrap();
        assert_eq!(
            (odd.error.as_str(), odd.error_description),
            ("invalid_grant", None)
        );
        assert!(ErrorAnswer::parse(br#"{"error":7}"#).is_none());
    }
}
