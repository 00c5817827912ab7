//! The device authorization grant (RFC 8628): svc shows a code and a URL,
//! the person approves on any device, and svc polls the token endpoint
//! until they have.

use std::time::Duration;

use serde::Deserialize;
use zeroize::Zeroizing;

use super::client::{Credentials, Endpoints};
use super::error::{Code, Error};
use super::tokens::{self, ErrorAnswer, Tokens};
use crate::run::http::{self, Http};
use crate::run::redact::Redactor;

/// The grant type of the polling requests.
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// What the device authorization endpoint answered.
pub struct Grant {
    device_code: Zeroizing<String>,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub expires_in: u64,
    interval: u64,
}

#[derive(Deserialize)]
struct Raw {
    device_code: String,
    user_code: String,
    // Google spells it `verification_url`.
    #[serde(alias = "verification_url")]
    verification_uri: String,
    verification_uri_complete: Option<String>,
    expires_in: u64,
    interval: Option<u64>,
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
    Ok(Grant {
        device_code: Zeroizing::new(raw.device_code),
        user_code: raw.user_code,
        verification_uri: raw.verification_uri,
        verification_uri_complete: raw.verification_uri_complete,
        expires_in: raw.expires_in,
        // §3.2: 5 seconds when the server does not say.
        interval: raw.interval.unwrap_or(5).clamp(1, 60),
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
    let expires = started + Duration::from_secs(grant.expires_in);
    let deadline = (started + timeout).min(expires);
    let mut interval = Duration::from_secs(grant.interval);
    loop {
        if tokio::time::Instant::now() + interval > deadline {
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
            "slow_down" => interval += Duration::from_secs(5),
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
