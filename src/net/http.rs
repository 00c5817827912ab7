//! Sending a `web_request`: reqwest with rustls, timeouts, a capped body,
//! redirects only when asked, and retries of transient failures with
//! jittered exponential backoff that honours `Retry-After`.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, LOCATION, RETRY_AFTER};

use crate::redact::Redactor;

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
    pub headers: Vec<Header>,
    pub body: Body,
    /// The body holds a secret value.
    pub body_secret: bool,
    pub auth: Option<Auth>,
    pub timeout: Duration,
    /// How many redirects to follow.
    pub redirects: usize,
    /// Follow redirects to another scheme, host or port, without the body,
    /// the credentials or the headers that hold secrets.
    pub cross_origin: bool,
    pub attempts: u32,
    pub max_time: Duration,
    /// The request presents a secret its run replaces: send it again only
    /// when it surely never reached the server, or the server answered 429
    /// or 503 (it did not take it).
    pub once: bool,
}

pub struct Header {
    pub name: String,
    pub value: String,
    /// The value holds a secret.
    pub secret: bool,
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
    /// Credentials in the form body: fixed fields (a client id and
    /// secret), and an assertion signed afresh for each attempt, so that
    /// no two carry the same `jti` (RFC 7523 §3).
    Form {
        fields: Vec<(String, String)>,
        signed: Option<Signed>,
    },
}

/// A form field holding a JWT assertion, signed when the request is sent.
pub struct Signed {
    /// `client_assertion` or `assertion`.
    pub field: &'static str,
    pub assertion: std::sync::Arc<dyn Sign>,
}

/// What signs an assertion for each attempt (`oauth::assertion` does).
pub trait Sign: Send + Sync {
    fn sign(&self) -> Result<String, SignError>;
}

/// Why an assertion could not be signed.
#[derive(Debug, Clone)]
pub struct SignError {
    pub message: String,
    pub help: Option<String>,
}

/// A request that got no answer to return: nothing came back, or the
/// attempts ran out on transient answers.
#[derive(Debug, Clone)]
pub struct SendError {
    /// The last answer's status, when one came back.
    pub status: Option<u16>,
    /// Redacted.
    pub message: String,
    pub help: String,
}

impl Auth {
    /// The form fields this authentication adds, a fresh assertion included.
    fn form_fields(&self) -> Result<Vec<(String, String)>, Failure> {
        let Auth::Form { fields, signed } = self else {
            return Ok(Vec::new());
        };
        let mut out = fields.clone();
        if let Some(signed) = signed {
            let jwt = signed.assertion.sign().map_err(|e| Failure {
                reason: e.message,
                help: e.help.unwrap_or_else(|| "check the signing key".into()),
                transient: false,
                sent: false,
            })?;
            out.push((signed.field.to_string(), jwt));
        }
        Ok(out)
    }
}

impl Request {
    /// Whether anything the request sends holds a secret.
    fn carries_secret(&self) -> bool {
        self.auth.is_some() || self.body_secret || self.headers.iter().any(|h| h.secret)
    }
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

/// reqwest clients, one with TLS and one without, made on first use.
/// Loading the system's root certificates takes milliseconds, so a client
/// for plain `http://` (a token server on loopback, say) gets a TLS
/// configuration without them: it never makes a TLS connection. Neither
/// follows redirects: svc does, hop by hop, to decide what each hop may
/// carry.
#[derive(Default)]
pub struct Http {
    clients: RwLock<HashMap<bool, reqwest::Client>>,
}

impl Http {
    fn client(&self, tls: bool) -> Result<reqwest::Client, Failure> {
        if let Some(client) = self
            .clients
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&tls)
        {
            return Ok(client.clone());
        }
        let mut clients = self.clients.write().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = clients.get(&tls) {
            return Ok(client.clone());
        }
        install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("svc/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10));
        if !tls {
            let config = rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            builder = builder.tls_backend_preconfigured(config);
        }
        let client = builder.build().map_err(|e| Failure {
            reason: format!("cannot set up HTTP: {}", e.without_url()),
            help: "this is a bug in svc or its TLS setup".into(),
            transient: false,
            sent: false,
        })?;
        clients.insert(tls, client.clone());
        Ok(client)
    }

    /// Sends a request, retrying transient failures. A non-2xx answer that
    /// is not transient is returned as a response, for the caller to judge.
    pub async fn send(
        &self,
        request: &Request,
        redactor: &Redactor,
    ) -> Result<Response, SendError> {
        let started = Instant::now();
        let mut retries = Vec::new();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let outcome = self.attempt(request, redactor).await;
            let last_attempt = attempt >= request.attempts.max(1);
            let (reason, retry_after, status) = match outcome {
                Ok(mut response) if !retryable(request, response.status) || last_attempt => {
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
                Err(failure)
                    if failure.transient && !last_attempt && (!request.once || !failure.sent) =>
                {
                    (failure.reason, None, None)
                }
                Err(failure) => {
                    let tried = if attempt > 1 {
                        format!(" after {attempt} attempts")
                    } else {
                        String::new()
                    };
                    let mut help = failure.help;
                    if request.once && failure.transient && failure.sent && !last_attempt {
                        help = format!(
                            "{help}; svc did not send it again: it presents a secret that this run replaces, \
                             and the server may have taken it (a second presentation of a rotated refresh \
                             token can revoke the whole token family)"
                        );
                    }
                    return Err(SendError {
                        status: None,
                        message: redactor.redact(&format!(
                            "{} {} failed{tried}: {}",
                            request.method,
                            display_url(&request.url),
                            failure.reason
                        )),
                        help,
                    });
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
                return Err(SendError {
                    status,
                    message: redactor.redact(&format!(
                        "{} {} {reason}; giving up after {attempt} attempts: {why}",
                        request.method,
                        display_url(&request.url),
                    )),
                    help: "raise `retry { max_time ... }`, or try again later".into(),
                });
            }
            retries.push(Retried { reason, wait });
            tokio::time::sleep(wait).await;
        }
    }

    /// One attempt: the request, and the redirects it may follow.
    async fn attempt(&self, request: &Request, redactor: &Redactor) -> Result<Response, Failure> {
        let origin = request.url.origin();
        let mut url = request.url.clone();
        let mut method = request.method.clone();
        let mut with_body = true;
        let mut foreign = false;
        let mut hop = 0;
        loop {
            let client = self.client(url.scheme() == "https")?;
            let mut builder = client
                .request(method.clone(), url.clone())
                .timeout(request.timeout);
            let mut headers = HeaderMap::new();
            for header in &request.headers {
                if foreign && header.secret {
                    continue;
                }
                let name = HeaderName::from_bytes(header.name.as_bytes())
                    .map_err(|_| Failure::fatal("an invalid header name"))?;
                let value = HeaderValue::from_str(&header.value).map_err(|_| {
                    Failure::fatal(&format!(
                        "the value of header `{name}` is not valid in a header"
                    ))
                })?;
                headers.append(name, value);
            }
            builder = builder.headers(headers);
            builder = match (&request.auth, foreign) {
                (Some(Auth::Basic(user, password)), false) => {
                    builder.basic_auth(user, Some(password))
                }
                (Some(Auth::Bearer(token)), false) => builder.bearer_auth(token),
                _ => builder,
            };
            // Credentials in the form go only to the origin asked for, and
            // only with a body (a redirect may have turned it into a GET).
            let credentials = match (&request.auth, foreign, with_body) {
                (Some(auth), false, true) => auth.form_fields()?,
                _ => Vec::new(),
            };
            if with_body {
                builder = match &request.body {
                    Body::None if credentials.is_empty() => builder,
                    Body::None => builder.form(&credentials),
                    Body::Form(fields) => {
                        let mut all = fields.clone();
                        all.extend(credentials);
                        builder.form(&all)
                    }
                    Body::Json(_) | Body::Raw(_) if !credentials.is_empty() => {
                        return Err(Failure::fatal(
                            "client credentials go in a form body, and this body is not a form",
                        ));
                    }
                    Body::Json(value) => builder.json(value),
                    Body::Raw(text) => builder.body(text.clone()),
                };
            }
            // Past the first hop the request has reached a server: a
            // failure now is not one before sending.
            let sent = hop > 0;
            let mut response = builder
                .send()
                .await
                .map_err(|e| Failure::from_reqwest(&e, request.timeout, sent))?;
            let status = response.status();
            let location = (request.redirects > 0
                && status.is_redirection()
                && status != reqwest::StatusCode::NOT_MODIFIED)
                .then(|| response.headers().get(LOCATION).cloned())
                .flatten();
            if let Some(location) = location {
                if hop >= request.redirects {
                    return Err(Failure::after_send(
                        format!("more than {} redirects", request.redirects),
                        "raise `redirects`, or use the URL the server redirects to",
                    ));
                }
                let next = location
                    .to_str()
                    .ok()
                    .and_then(|l| url.join(l).ok())
                    .filter(|n| matches!(n.scheme(), "http" | "https"))
                    .ok_or_else(|| {
                        Failure::after_send(
                            "the server redirects to an address that is not an http(s) URL".into(),
                            "use the URL the server redirects to",
                        )
                    })?;
                // RFC 9110 §15.4: 303 becomes a GET; 301 and 302 turn a
                // POST into a GET, as every client does; 307 and 308
                // repeat the request as it was.
                let keeps_request = matches!(status.as_u16(), 307 | 308);
                if !keeps_request
                    && (status.as_u16() == 303 || method == reqwest::Method::POST)
                    && method != reqwest::Method::HEAD
                {
                    method = reqwest::Method::GET;
                    with_body = false;
                }
                if next.origin() != origin {
                    self.may_leave(request, redactor, &next, with_body)?;
                    foreign = true;
                }
                drop(response);
                url = next;
                hop += 1;
                continue;
            }
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
                    Err(e) => return Err(Failure::from_reqwest(&e, request.timeout, true)),
                }
            }
            return Ok(Response {
                status,
                headers,
                body,
                attempts: 0,
                elapsed: Duration::ZERO,
                retries: Vec::new(),
            });
        }
    }

    /// Whether a redirect may lead to `next`, another origin: never with
    /// a secret in the URL, and with other secrets only when the program
    /// opts in (`redirects N cross_origin`), which drops them.
    fn may_leave(
        &self,
        request: &Request,
        redactor: &Redactor,
        next: &url::Url,
        with_body: bool,
    ) -> Result<(), Failure> {
        let shown = redactor.redact(&display_url(next));
        if redactor.reveals(next.as_str()) {
            return Err(Failure::after_send(
                format!(
                    "the server redirects to another origin with a secret in the URL ({shown})"
                ),
                "svc does not follow it; check the request against the API's documentation",
            ));
        }
        if !request.carries_secret() {
            return Ok(());
        }
        if !request.cross_origin {
            return Err(Failure::after_send(
                format!(
                    "the server redirects to another origin ({shown}); this request carries secrets, \
                     which svc does not send there"
                ),
                "use the URL the server redirects to; or add `cross_origin` to `redirects` to follow \
                 it without the body, `auth` and secret headers",
            ));
        }
        if with_body && request.body_secret {
            return Err(Failure::after_send(
                format!(
                    "the server redirects to another origin ({shown}) and asks for the body again, \
                     which holds a secret"
                ),
                "use the URL the server redirects to",
            ));
        }
        Ok(())
    }
}

/// Whether an answer may be retried: 5xx and 429; only 429 and 503 for a
/// request that must reach the server at most once.
fn retryable(request: &Request, status: reqwest::StatusCode) -> bool {
    if request.once {
        matches!(status.as_u16(), 429 | 503)
    } else {
        is_transient(status)
    }
}

struct Failure {
    reason: String,
    help: String,
    transient: bool,
    /// The request may have reached the server.
    sent: bool,
}

impl Failure {
    fn fatal(reason: &str) -> Failure {
        Failure {
            reason: reason.to_string(),
            help: "check the request's headers".into(),
            transient: false,
            sent: false,
        }
    }

    fn after_send(reason: String, help: &str) -> Failure {
        Failure {
            reason,
            help: help.into(),
            transient: false,
            sent: true,
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
            sent: true,
        }
    }

    /// `sent`: an earlier hop of this attempt reached a server already.
    fn from_reqwest(error: &reqwest::Error, timeout: Duration, sent: bool) -> Failure {
        // A failed connection (its timeout included) sent nothing.
        if error.is_connect() {
            return Failure {
                reason: format!("cannot connect ({})", root_cause(error)),
                help: "check the URL's host and port, and that the server is up".into(),
                transient: true,
                sent,
            };
        }
        if error.is_timeout() {
            return Failure {
                reason: format!(
                    "no answer within {}",
                    crate::syntax::duration::format(timeout)
                ),
                help: "raise `timeout`, or check that the server is up".into(),
                transient: true,
                sent: true,
            };
        }
        // A connection reset or a broken body: the server may have the
        // request.
        Failure {
            reason: root_cause(error),
            help: "check the URL and the server".into(),
            transient: error.is_request() || error.is_body(),
            sent: true,
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

/// A URL given as text, for messages: without user and password, and
/// nothing at all when it does not parse (it may hold a password).
pub fn display_url_text(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(url) => display_url(&url),
        Err(_) => "the URL given".into(),
    }
}

static CRYPTO: std::sync::Once = std::sync::Once::new();

/// reqwest is built without a default crypto provider; use ring's, once.
pub fn install_crypto_provider() {
    CRYPTO.call_once(|| {
        // rustls 0.23.48 deprecates ring's provider because it has no
        // post-quantum key exchange; its replacement, aws-lc-rs, needs a C
        // and assembly toolchain (and cmake on some machines) to build. svc
        // keeps ring, knowingly, until rustls 0.24 makes the choice
        // explicit: the warning would only fail `clippy -D warnings` after
        // a `cargo update`.
        #[allow(deprecated)]
        let provider = rustls::crypto::ring::default_provider();
        // Another part of the process may have installed one first.
        let _ = provider.install_default();
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
