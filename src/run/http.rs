//! Sending a `web_request`: reqwest with rustls, timeouts, a capped body,
//! redirects only when asked, and retries of transient failures with
//! jittered exponential backoff that honours `Retry-After`.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};

use super::error::{ErrorKind, RunError};
use super::redact::Redactor;

/// The default time one attempt may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The default number of attempts, the first included.
pub const DEFAULT_ATTEMPTS: u32 = 3;
/// The default time all attempts together may take.
pub const DEFAULT_MAX_TIME: Duration = Duration::from_secs(60);
/// The largest response body read.
pub const MAX_BODY: usize = 10 * 1024 * 1024;

const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// A request with every expression already evaluated.
pub struct Request {
    pub method: reqwest::Method,
    pub url: url::Url,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    pub auth: Option<Auth>,
    pub timeout: Duration,
    pub redirects: usize,
    pub attempts: u32,
    pub max_time: Duration,
}

pub enum Body {
    None,
    Form(Vec<(String, String)>),
    Json(serde_json::Value),
    Raw(String),
}

pub enum Auth {
    Basic(String, String),
    Bearer(String),
}

pub struct Response {
    pub status: reqwest::StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub attempts: u32,
    pub elapsed: Duration,
    /// Why each earlier attempt was retried.
    pub retries: Vec<Retried>,
}

pub struct Retried {
    pub reason: String,
    pub wait: Duration,
}

/// reqwest clients, one per redirect limit and need of TLS, made on first
/// use. Loading the system's root certificates takes milliseconds, so a
/// client for plain `http://` (a token server on loopback, say) gets a TLS
/// configuration without them: it never makes a TLS connection.
#[derive(Default)]
pub struct Http {
    clients: RwLock<HashMap<(usize, bool), reqwest::Client>>,
}

impl Http {
    fn client(&self, redirects: usize, tls: bool) -> Result<reqwest::Client, RunError> {
        // A redirect may lead from http to https: such clients get TLS.
        let tls = tls || redirects > 0;
        if let Some(client) = self
            .clients
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(redirects, tls))
        {
            return Ok(client.clone());
        }
        let mut clients = self.clients.write().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = clients.get(&(redirects, tls)) {
            return Ok(client.clone());
        }
        install_crypto_provider();
        let policy = if redirects == 0 {
            reqwest::redirect::Policy::none()
        } else {
            reqwest::redirect::Policy::limited(redirects)
        };
        let mut builder = reqwest::Client::builder()
            .redirect(policy)
            .user_agent(concat!("svc/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10));
        if !tls {
            let config = rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            builder = builder.tls_backend_preconfigured(config);
        }
        let client = builder.build().map_err(|e| {
            RunError::new(
                ErrorKind::Limit,
                format!("cannot set up HTTP: {}", e.without_url()),
            )
        })?;
        clients.insert((redirects, tls), client.clone());
        Ok(client)
    }

    /// Sends a request, retrying transient failures. A non-2xx answer that
    /// is not transient is returned as a response, for the caller to judge.
    pub async fn send(&self, request: &Request, redactor: &Redactor) -> Result<Response, RunError> {
        let client = self.client(request.redirects, request.url.scheme() == "https")?;
        let started = Instant::now();
        let mut retries = Vec::new();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let outcome = self.attempt(&client, request).await;
            let last_attempt = attempt >= request.attempts.max(1);
            let (reason, retry_after, status) = match outcome {
                Ok(mut response) if !is_transient(response.status) || last_attempt => {
                    response.attempts = attempt;
                    response.elapsed = started.elapsed();
                    response.retries = retries;
                    return Ok(response);
                }
                Ok(response) => (
                    format!("answered {}", status_text(response.status)),
                    retry_after(&response.headers),
                    Some(response.status.as_u16()),
                ),
                Err(failure) if failure.transient && !last_attempt => (failure.reason, None, None),
                Err(failure) => {
                    let tried = if attempt > 1 {
                        format!(" after {attempt} attempts")
                    } else {
                        String::new()
                    };
                    return Err(RunError::new(
                        ErrorKind::WebRequest { status: None },
                        redactor.redact(&format!(
                            "{} {} failed{tried}: {}",
                            request.method,
                            display_url(&request.url),
                            failure.reason
                        )),
                    )
                    .help(failure.help));
                }
            };
            let backoff = backoff(attempt);
            let wait = retry_after.map_or(backoff, |after| after.max(backoff));
            let remaining = request.max_time.saturating_sub(started.elapsed());
            if wait >= remaining {
                let why = match retry_after {
                    Some(after) => format!("the server asked to wait {}s", after.as_secs()),
                    None => "the next attempt would pass `max_time`".into(),
                };
                return Err(RunError::new(
                    ErrorKind::WebRequest { status },
                    redactor.redact(&format!(
                        "{} {} {reason}; giving up after {attempt} attempts: {why}",
                        request.method,
                        display_url(&request.url),
                    )),
                )
                .help("raise `retry { max_time ... }`, or try again later"));
            }
            retries.push(Retried { reason, wait });
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt(
        &self,
        client: &reqwest::Client,
        request: &Request,
    ) -> Result<Response, Failure> {
        let mut builder = client
            .request(request.method.clone(), request.url.clone())
            .timeout(request.timeout);
        let mut headers = HeaderMap::new();
        for (name, value) in &request.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Failure::fatal("an invalid header name"))?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                Failure::fatal(&format!(
                    "the value of header `{name}` is not valid in a header"
                ))
            })?;
            headers.append(name, value);
        }
        builder = builder.headers(headers);
        builder = match &request.auth {
            Some(Auth::Basic(user, password)) => builder.basic_auth(user, Some(password)),
            Some(Auth::Bearer(token)) => builder.bearer_auth(token),
            None => builder,
        };
        builder = match &request.body {
            Body::None => builder,
            Body::Form(fields) => builder.form(fields),
            Body::Json(value) => builder.json(value),
            Body::Raw(text) => builder.body(text.clone()),
        };
        let mut response = builder
            .send()
            .await
            .map_err(|e| Failure::from_reqwest(&e, request.timeout))?;
        let status = response.status();
        let headers = response.headers().clone();
        if let Some(length) = response.content_length()
            && length as usize > MAX_BODY
        {
            return Err(Failure::too_large());
        }
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_BODY {
                        return Err(Failure::too_large());
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(Failure::from_reqwest(&e, request.timeout)),
            }
        }
        Ok(Response {
            status,
            headers,
            body,
            attempts: 0,
            elapsed: Duration::ZERO,
            retries: Vec::new(),
        })
    }
}

struct Failure {
    reason: String,
    help: String,
    transient: bool,
}

impl Failure {
    fn fatal(reason: &str) -> Failure {
        Failure {
            reason: reason.to_string(),
            help: "check the request's headers".into(),
            transient: false,
        }
    }

    fn too_large() -> Failure {
        Failure {
            reason: format!(
                "the response body is larger than {} MiB",
                MAX_BODY / 1024 / 1024
            ),
            help: "a token endpoint answers with a small JSON document; is the URL right?".into(),
            transient: false,
        }
    }

    fn from_reqwest(error: &reqwest::Error, timeout: Duration) -> Failure {
        if error.is_timeout() {
            return Failure {
                reason: format!(
                    "no answer within {}",
                    crate::syntax::duration::format(timeout)
                ),
                help: "raise `timeout`, or check that the server is up".into(),
                transient: true,
            };
        }
        if error.is_connect() {
            return Failure {
                reason: format!("cannot connect ({})", root_cause(error)),
                help: "check the URL's host and port, and that the server is up".into(),
                transient: true,
            };
        }
        if error.is_redirect() {
            return Failure {
                reason: "too many redirects".into(),
                help: "raise `redirects`, or use the URL the server redirects to".into(),
                transient: false,
            };
        }
        Failure {
            reason: root_cause(error),
            help: "check the URL and the server".into(),
            transient: error.is_request() || error.is_body(),
        }
    }
}

/// The innermost cause of an error, without its URL (which may carry a
/// secret in its query).
fn root_cause(error: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = error;
    while let Some(next) = source.source() {
        source = next;
    }
    let text = source.to_string();
    if text.is_empty() {
        "request failed".into()
    } else {
        text
    }
}

fn is_transient(status: reqwest::StatusCode) -> bool {
    status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = date
        .signed_duration_since(chrono::Utc::now())
        .to_std()
        .unwrap_or(Duration::ZERO);
    Some(wait)
}

/// Exponential backoff with jitter: between half and all of 200 ms × 2^(n-1),
/// at most 10 s.
fn backoff(attempt: u32) -> Duration {
    let full = FIRST_BACKOFF
        .saturating_mul(1 << (attempt - 1).min(16))
        .min(MAX_BACKOFF);
    full.mul_f64(0.5 + fastrand::f64() * 0.5)
}

pub fn status_text(status: reqwest::StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// A URL for messages and traces: without user and password.
pub fn display_url(url: &url::Url) -> String {
    let mut shown = url.clone();
    if !shown.username().is_empty() {
        let _ = shown.set_username("***");
    }
    if shown.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    shown.to_string()
}

static CRYPTO: std::sync::Once = std::sync::Once::new();

/// reqwest is built without a default crypto provider; use ring's, once.
pub fn install_crypto_provider() {
    CRYPTO.call_once(|| {
        // Another part of the process may have installed one first.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_a_cap() {
        for attempt in 1..20 {
            let full = FIRST_BACKOFF
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(MAX_BACKOFF);
            let wait = backoff(attempt);
            assert!(
                wait >= full / 2 && wait <= full,
                "attempt {attempt}: {wait:?}"
            );
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        let later = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        let wait = retry_after(&headers).unwrap();
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
    }
}
