//! The device authorization grant (RFC 8628): svc shows a code and a URL,
//! the person approves on any device, and svc polls the token endpoint
//! until they have.

use std::time::Duration;

use serde::Deserialize;
use zeroize::Zeroizing;

use super::client::{Credentials, Endpoints};
use super::error::{Code, Error};
use super::seconds;
use super::tokens::{self, ErrorAnswer, Tokens};
use crate::net::http::{self, Http};
use crate::redact::Redactor;

/// The grant type of the polling requests.
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The longest a device code lives, whatever the server says (providers
/// give 5 to 30 minutes); `--timeout` ends the wait before anyway.
const MAX_CODE_LIFETIME: Duration = Duration::from_secs(86_400);

/// Between two polls: 5 seconds when the server does not say (§3.2),
/// never less than 1 second nor, as the server asks, more than a minute.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
const MIN_INTERVAL: Duration = Duration::from_secs(1);
const MAX_INTERVAL: Duration = Duration::from_secs(60);

/// What each `slow_down` adds (§3.5), up to 5 minutes between polls.
const SLOW_DOWN: Duration = Duration::from_secs(5);
const MAX_SLOWED_INTERVAL: Duration = Duration::from_secs(300);

/// What the device authorization endpoint answered.
pub struct Grant {
    device_code: Zeroizing<String>,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    /// How long the code lives, clamped to [`MAX_CODE_LIFETIME`].
    pub expires_in: Duration,
    interval: Duration,
}

#[derive(Deserialize)]
struct Raw {
    device_code: String,
    user_code: String,
    // Google spells it `verification_url`.
    #[serde(alias = "verification_url")]
    verification_uri: String,
    verification_uri_complete: Option<String>,
    // Seconds, read by `seconds::clamped`.
    expires_in: serde_json::Value,
    interval: Option<serde_json::Value>,
}

/// Asks for a device code (RFC 8628 §3.1).
pub async fn start(
    http: &Http,
    endpoints: &Endpoints,
    credentials: &Credentials,
    scopes: Option<&str>,
    redactor: &mut Redactor,
) -> Result<Grant, Error> {
    let Some(endpoint) = &endpoints.device else {
        return Err(Error::new(
            Code::Unsupported,
            "the client has no device authorization endpoint",
        )
        .help("add `device_authorization_url` (or an `issuer` whose discovery names one), or leave out `--device`"));
    };
    let mut form = Vec::new();
    if let Some(scopes) = scopes {
        form.push((
            "scope".to_string(),
            scopes.split_whitespace().collect::<Vec<_>>().join(" "),
        ));
    }
    let response = super::post_form(http, endpoint, form, credentials, redactor).await?;
    if !response.status.is_success() {
        return Err(tokens::refused(
            "the device authorization request",
            &response,
            redactor,
        ));
    }
    let raw: Raw = serde_json::from_slice(&response.body).map_err(|e| {
        Error::new(
            Code::BadResponse,
            format!(
                "the device authorization answer is not what RFC 8628 describes ({})",
                tokens::json_problem(&e)
            ),
        )
    })?;
    redactor.add(&raw.device_code);
    let not_seconds = |field: &str| {
        Error::new(
            Code::BadResponse,
            format!("the device authorization answer's `{field}` is not a number of seconds"),
        )
        .help(
            "RFC 8628 §3.2 asks for a whole number of seconds; the server's answer cannot be used",
        )
    };
    let expires_in = seconds::clamped(&raw.expires_in, MIN_INTERVAL, MAX_CODE_LIFETIME)
        .ok_or_else(|| not_seconds("expires_in"))?;
    let interval = match &raw.interval {
        None => DEFAULT_INTERVAL,
        Some(interval) => seconds::clamped(interval, MIN_INTERVAL, MAX_INTERVAL)
            .ok_or_else(|| not_seconds("interval"))?,
    };
    Ok(Grant {
        device_code: Zeroizing::new(raw.device_code),
        user_code: raw.user_code,
        verification_uri: raw.verification_uri,
        verification_uri_complete: raw.verification_uri_complete,
        expires_in,
        interval,
    })
}

/// Polls the token endpoint (§3.4, §3.5) until the person approved,
/// refused, the code expired, or `timeout` passed.
pub async fn poll(
    http: &Http,
    endpoints: &Endpoints,
    credentials: &Credentials,
    grant: &Grant,
    timeout: Duration,
    redactor: &mut Redactor,
) -> Result<(Tokens, http::Response), Error> {
    let started = tokio::time::Instant::now();
    let expires = seconds::after(started, grant.expires_in);
    let deadline = seconds::after(started, timeout).min(expires);
    let mut interval = grant.interval;
    loop {
        if seconds::after(tokio::time::Instant::now(), interval) > deadline {
            return Err(if deadline >= expires {
                Error::new(
                    Code::ExpiredToken,
                    "the device code expired before the authorization was approved",
                )
                .help("run `svc authorize --device` again for a new code")
            } else {
                Error::new(
                    Code::Timeout,
                    format!(
                        "nobody approved the authorization within {}",
                        crate::syntax::duration::format(timeout)
                    ),
                )
                .help("run it again; `--timeout` gives more time")
            });
        }
        tokio::time::sleep(interval).await;
        let form = vec![
            ("grant_type".to_string(), GRANT_TYPE.to_string()),
            ("device_code".to_string(), grant.device_code.to_string()),
        ];
        let response =
            super::post_form(http, &endpoints.token, form, credentials, redactor).await?;
        if response.status.is_success() {
            let tokens = Tokens::parse(&response.body)?;
            for value in tokens.values() {
                redactor.add(value);
            }
            return Ok((tokens, response));
        }
        let Some(answer) = ErrorAnswer::parse(&response.body) else {
            return Err(tokens::refused(
                "polling for the token",
                &response,
                redactor,
            ));
        };
        match answer.error.as_str() {
            "authorization_pending" => {}
            // §3.5: wait 5 seconds longer from now on.
            "slow_down" => {
                interval = interval.saturating_add(SLOW_DOWN).min(MAX_SLOWED_INTERVAL);
            }
            "expired_token" => {
                return Err(Error::new(
                    Code::ExpiredToken,
                    "the device code expired before the authorization was approved",
                )
                .help("run `svc authorize --device` again for a new code"));
            }
            "access_denied" => {
                return Err(Error::new(
                    Code::AccessDenied,
                    format!(
                        "the authorization was refused: {}",
                        answer.describe(redactor)
                    ),
                )
                .help("consent was refused; nothing was stored"));
            }
            _ => {
                return Err(tokens::refused(
                    "polling for the token",
                    &response,
                    redactor,
                ));
            }
        }
    }
}
