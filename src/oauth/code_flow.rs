//! The authorization code grant with PKCE (RFC 6749 §4.1, RFC 7636) for
//! a program on the user's machine: the browser comes back to a listener
//! on a loopback address (RFC 8252 §7.3), which waits for the one redirect
//! that carries its `state`, and tells the person they can close the tab.
//! Any process on the machine can connect to it: a request without the
//! state is turned away and ends nothing, and a connection that sends no
//! request is closed soon, or at once when a new one needs its place.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use sha2::Digest as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use super::client::{Credentials, Endpoints};
use super::error::{Code, Error};
use super::tokens::{self, Tokens};
use crate::net::http::{self, Http};
use crate::redact::Redactor;

/// The path the browser is sent back to.
pub const CALLBACK_PATH: &str = "/callback";

/// An authorization started: the URL for the person, and what the
/// redirect must bring back.
pub struct Pending {
    /// The URL to open: it carries the client id, the redirect URI, the
    /// scopes, the `state` and the PKCE challenge, nothing secret.
    pub url: url::Url,
    pub redirect_uri: String,
    listener: TcpListener,
    authorization: Authorization,
}

/// What one authorization request carries that its redirect and its code
/// exchange must match: a random `state`, a PKCE verifier, and a `nonce`
/// when `openid` is asked. Made fresh for each request; the loopback flow
/// keeps it in memory, the hosted consent of `svc serve` in its backend.
pub struct Authorization {
    pub state: String,
    pub verifier: Zeroizing<String>,
    pub nonce: Option<String>,
}

impl Authorization {
    /// Fresh values for a request asking for `scopes`.
    pub fn new(scopes: Option<&str>) -> Result<Authorization, Error> {
        let openid = scopes.is_some_and(|s| s.split_whitespace().any(|s| s == "openid"));
        Ok(Authorization {
            state: super::random_token(16)?,
            verifier: Zeroizing::new(super::random_token(32)?),
            nonce: if openid {
                Some(super::random_token(16)?)
            } else {
                None
            },
        })
    }

    /// The authorization URL (RFC 6749 §4.1.1): the client's authorization
    /// endpoint with `response_type=code`, the client id, `redirect_uri`,
    /// the scopes (and `prompt=consent` when `offline_access` is asked),
    /// the state, the S256 challenge and the nonce.
    pub fn url(
        &self,
        endpoints: &Endpoints,
        client_id: &str,
        scopes: Option<&str>,
        redirect_uri: &str,
    ) -> Result<url::Url, Error> {
        let mut url = authorization_endpoint(endpoints)?.clone();
        let given: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", client_id)
                .append_pair("redirect_uri", redirect_uri);
            if let Some(scopes) = scopes {
                let scopes = scopes.split_whitespace().collect::<Vec<_>>().join(" ");
                query.append_pair("scope", &scopes);
                // OpenID Connect Core §11: `offline_access` is only honoured
                // with consent asked for.
                if scopes.split(' ').any(|s| s == "offline_access")
                    && !given.iter().any(|k| k == "prompt")
                {
                    query.append_pair("prompt", "consent");
                }
            }
            // The provider's own (Google's `access_type=offline`), unless
            // the URL or the code above already says.
            let mut sent: Vec<String> = url_keys(&given, scopes);
            for (name, value) in &endpoints.authorize_params {
                if !sent.contains(name) {
                    query.append_pair(name, value);
                    sent.push(name.clone());
                }
            }
            query
                .append_pair("state", &self.state)
                .append_pair("code_challenge", &challenge(&self.verifier))
                .append_pair("code_challenge_method", "S256");
            if let Some(nonce) = &self.nonce {
                query.append_pair("nonce", nonce);
            }
        }
        Ok(url)
    }
}

/// The parameters an authorization URL already has: its own query's, and
/// `prompt` when `offline_access` made the flow ask for consent.
fn url_keys(given: &[String], scopes: Option<&str>) -> Vec<String> {
    let mut keys = given.to_vec();
    if scopes.is_some_and(|s| s.split_whitespace().any(|s| s == "offline_access")) {
        keys.push("prompt".into());
    }
    keys
}

/// The client's authorization endpoint, or why the code flow cannot run.
fn authorization_endpoint(endpoints: &Endpoints) -> Result<&url::Url, Error> {
    endpoints.authorize.as_ref().ok_or_else(|| {
        Error::new(
            Code::Unsupported,
            "the client has no authorization endpoint",
        )
        .help("add `authorize_url` (or an `issuer` whose discovery names one), or use `--device`")
    })
}

/// The PKCE S256 challenge of a verifier.
pub fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

/// Binds the redirect listener and builds the authorization URL.
pub async fn start(
    endpoints: &Endpoints,
    client_id: &str,
    scopes: Option<&str>,
    listen: Option<SocketAddr>,
) -> Result<Pending, Error> {
    authorization_endpoint(endpoints)?;
    let address = listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    if !address.ip().is_loopback() {
        return Err(Error::new(
            Code::BadListen,
            format!("`--listen {address}` is not a loopback address"),
        )
        .help("the redirect listener only listens on 127.0.0.1 or [::1] (RFC 8252 §8.3)"));
    }
    let listener = TcpListener::bind(address).await.map_err(|e| {
        Error::new(Code::BadListen, format!("cannot listen on {address}: {e}")).help(
            "pick a free port with `--listen 127.0.0.1:PORT`, or leave it out for any free port",
        )
    })?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::new(Code::BadListen, format!("cannot listen on {address}: {e}")))?;
    let redirect_uri = format!("http://{bound}{CALLBACK_PATH}");
    let authorization = Authorization::new(scopes)?;
    let url = authorization.url(endpoints, client_id, scopes, &redirect_uri)?;
    Ok(Pending {
        url,
        redirect_uri,
        listener,
        authorization,
    })
}

/// What the redirect brought.
type Outcome = Result<Zeroizing<String>, Error>;

/// How long a connection may take to send its request. A browser sends it
/// at once; one that sends nothing is closed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest a connection lives, its answer included.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections that have not sent their request yet, at most: a browser
/// opens a few. A new one closes the oldest of them, so idle connections
/// never keep the browser's redirect out.
const MAX_WAITING: usize = 32;

/// Waits for the redirect, at most `timeout`; returns the code. Requests
/// without the `state` svc sent are turned away, and svc keeps waiting:
/// any local process can reach the listener.
pub async fn wait(pending: &Pending, issuer: Option<&str>, timeout: Duration) -> Outcome {
    let (sender, mut outcomes) = mpsc::channel::<Outcome>(1);
    let expected = Arc::new(Expected {
        state: pending.authorization.state.clone(),
        issuer: issuer.map(str::to_owned),
        done: AtomicBool::new(false),
        turned_away: AtomicUsize::new(0),
        sender,
    });
    let mut connections = tokio::task::JoinSet::new();
    // The connections that have not sent a request yet, oldest first.
    let mut waiting: VecDeque<Waiting> = VecDeque::new();
    let deadline = super::seconds::after(tokio::time::Instant::now(), timeout);
    let outcome = loop {
        tokio::select! {
            accepted = pending.listener.accept() => {
                waiting.retain(Waiting::is_waiting);
                let Ok((stream, _)) = accepted else {
                    // Out of file descriptors, most likely: free one.
                    if !close_oldest(&mut waiting) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    continue;
                };
                if waiting.len() >= MAX_WAITING {
                    close_oldest(&mut waiting);
                }
                let phase = Arc::new(AtomicU8::new(WAITING));
                let task = connections.spawn(serve(stream, expected.clone(), phase.clone()));
                waiting.push_back(Waiting { task, phase });
            }
            Some(outcome) = outcomes.recv() => break outcome,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = tokio::time::sleep_until(deadline) => {
                let mut message = format!(
                    "nobody completed the authorization within {}",
                    crate::syntax::duration::format(timeout)
                );
                let turned_away = expected.turned_away.load(Ordering::Relaxed);
                if turned_away > 0 {
                    message.push_str(&format!(
                        "; the listener turned away {} without the `state` svc sent",
                        crate::report::plural(turned_away, "request")
                    ));
                }
                break Err(Error::new(Code::Timeout, message)
                .help("run `svc authorize` again, and open the URL it prints (not an older tab's); `--timeout` gives more time"));
            }
        }
    };
    // Close what asked nothing, and let the page that answered the
    // redirect reach the browser.
    while close_oldest(&mut waiting) {}
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
    outcome
}

/// A connection's phase: waiting for its request, asked (never closed to
/// make room then), or closed before it asked.
const WAITING: u8 = 0;
const ASKED: u8 = 1;
const CLOSED: u8 = 2;

/// A connection that had not sent its request when last looked at.
struct Waiting {
    task: tokio::task::AbortHandle,
    phase: Arc<AtomicU8>,
}

impl Waiting {
    fn is_waiting(&self) -> bool {
        self.phase.load(Ordering::Acquire) == WAITING && !self.task.is_finished()
    }
}

/// Closes the oldest connection that still has not sent its request;
/// false when there is none.
fn close_oldest(waiting: &mut VecDeque<Waiting>) -> bool {
    while let Some(oldest) = waiting.pop_front() {
        if oldest
            .phase
            .compare_exchange(WAITING, CLOSED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            oldest.task.abort();
            return true;
        }
    }
    false
}

/// Serves one connection: one request, within [`REQUEST_TIMEOUT`] of the
/// connection, and its answer, within [`CONNECTION_TIMEOUT`].
async fn serve(stream: TcpStream, expected: Arc<Expected>, phase: Arc<AtomicU8>) {
    let service = hyper::service::service_fn(move |request| {
        let asked = phase
            .compare_exchange(WAITING, ASKED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        let expected = expected.clone();
        async move {
            Ok::<_, Infallible>(if asked {
                expected.answer(request).await
            } else {
                // Closed to make room an instant ago: nobody reads this.
                page(StatusCode::SERVICE_UNAVAILABLE, "Busy", "Try again.")
            })
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(REQUEST_TIMEOUT)
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service);
    let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
}

/// What the one redirect must carry, and where to report it.
struct Expected {
    state: String,
    issuer: Option<String>,
    /// Set once a redirect with the state was judged: later ones are
    /// turned away.
    done: AtomicBool,
    /// Requests to the callback without the state.
    turned_away: AtomicUsize,
    sender: mpsc::Sender<Outcome>,
}

impl Expected {
    async fn answer(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        if request.uri().path() != CALLBACK_PATH || request.method() != hyper::Method::GET {
            return page(
                StatusCode::NOT_FOUND,
                "Not found",
                "This is svc's redirect listener.",
            );
        }
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        // The state first: a request without it says nothing about this
        // authorization (an old tab, another process), so it ends nothing.
        if !self.carries_state(&pairs) {
            self.turned_away.fetch_add(1, Ordering::Relaxed);
            return page(
                StatusCode::BAD_REQUEST,
                "Not this authorization",
                "This request does not carry the state svc sent, so svc ignored it and keeps waiting. \
                 If you approved in an older tab, open the URL svc printed last.",
            );
        }
        if self.done.swap(true, Ordering::AcqRel) {
            return page(
                StatusCode::GONE,
                "Already done",
                "svc already received an answer for this authorization. You can close this tab.",
            );
        }
        let (outcome, response) = self.judge(&pairs);
        let _ = self.sender.send(outcome).await;
        response
    }

    /// Whether the request carries the state svc sent. The digests are
    /// compared, so the time a comparison takes says nothing about how
    /// much of a guess was right.
    fn carries_state(&self, pairs: &[(String, String)]) -> bool {
        pairs
            .iter()
            .find(|(k, _)| k == "state")
            .is_some_and(|(_, given)| {
                sha2::Sha256::digest(given) == sha2::Sha256::digest(&self.state)
            })
    }

    fn judge(&self, pairs: &[(String, String)]) -> (Outcome, Response<Full<Bytes>>) {
        match redirect_code(pairs, self.issuer.as_deref()) {
            Ok(code) => (
                Ok(code),
                page(
                    StatusCode::OK,
                    "Authorized",
                    "svc received the authorization and is storing the tokens. You can close this tab.",
                ),
            ),
            Err(error) => (
                Err(error),
                page(
                    StatusCode::BAD_REQUEST,
                    "Authorization failed",
                    "svc did not get the authorization. The terminal says why; you can close this tab.",
                ),
            ),
        }
    }
}

/// The code a redirect whose `state` was checked brings, or why it brings
/// none: another issuer than `issuer` answered (its `iss`, RFC 9207), the
/// server sent an `error` (`access_denied` when consent was refused), or
/// neither a code nor an error came.
pub fn redirect_code(
    pairs: &[(String, String)],
    issuer: Option<&str>,
) -> Result<Zeroizing<String>, Error> {
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    // The state is right (the caller checked it): another issuer means
    // the person was sent to another server (RFC 9207).
    if let (Some(expected), Some(iss)) = (issuer, get("iss"))
        && iss.trim_end_matches('/') != expected.trim_end_matches('/')
    {
        return Err(Error::new(
            Code::StateMismatch,
            format!(
                "the redirect comes from issuer `{}`, not `{expected}`",
                tokens::shorten(iss)
            ),
        )
        .help("another authorization server answered (RFC 9207); nothing was stored"));
    }
    if let Some(error) = get("error") {
        let description = get("error_description")
            .map(|d| format!(": {}", tokens::shorten(d)))
            .unwrap_or_default();
        let code = if error == "access_denied" {
            Code::AccessDenied
        } else {
            Code::AuthorizationError
        };
        return Err(Error::new(
            code,
            format!(
                "the authorization server answered `{}`{description}",
                tokens::shorten(error)
            ),
        )
        .help(if code == Code::AccessDenied {
            "consent was refused; nothing was stored"
        } else {
            "check the client's registration (redirect URI, scopes); nothing was stored"
        }));
    }
    match get("code").filter(|c| !c.is_empty()) {
        Some(code) => Ok(Zeroizing::new(code.to_string())),
        None => Err(Error::new(
            Code::AuthorizationError,
            "the redirect carries neither a code nor an error",
        )
        .help("nothing was stored")),
    }
}

/// A small page: no script, nothing cached, no referrer.
fn page(status: StatusCode, title: &str, text: &str) -> Response<Full<Bytes>> {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>svc: {title}</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em}}</style>\
         </head><body><h1>{title}</h1><p>{text}</p></body></html>"
    );
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in [
        ("content-type", "text/html; charset=utf-8"),
        ("cache-control", "no-store"),
        ("referrer-policy", "no-referrer"),
        (
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'",
        ),
        ("x-content-type-options", "nosniff"),
        ("connection", "close"),
    ] {
        headers.insert(name, hyper::header::HeaderValue::from_static(value));
    }
    response
}

/// Exchanges the code for tokens (RFC 6749 §4.1.3, RFC 7636 §4.5). The
/// answer is returned too, for the recovery journal.
pub async fn exchange(
    http: &Http,
    endpoints: &Endpoints,
    credentials: &Credentials,
    pending: &Pending,
    code: &str,
    redactor: &mut Redactor,
) -> Result<(Tokens, http::Response), Error> {
    exchange_code(
        http,
        &endpoints.token,
        credentials,
        &pending.redirect_uri,
        &pending.authorization.verifier,
        code,
        redactor,
    )
    .await
}

/// Exchanges a code at `token_url`, with the redirect URI and the PKCE
/// verifier its authorization request was made with.
pub async fn exchange_code(
    http: &Http,
    token_url: &url::Url,
    credentials: &Credentials,
    redirect_uri: &str,
    verifier: &str,
    code: &str,
    redactor: &mut Redactor,
) -> Result<(Tokens, http::Response), Error> {
    redactor.add(code);
    redactor.add(verifier);
    let form = vec![
        ("grant_type".to_string(), "authorization_code".to_string()),
        ("code".to_string(), code.to_string()),
        ("redirect_uri".to_string(), redirect_uri.to_string()),
        ("code_verifier".to_string(), verifier.to_string()),
    ];
    super::token_request(
        http,
        token_url,
        form,
        credentials,
        "the code exchange",
        redactor,
    )
    .await
}

/// Checks the ID token's `nonce` against the one sent.
pub fn check_nonce(tokens: &Tokens, pending: &Pending) -> Result<(), Error> {
    nonce_matches(tokens, pending.authorization.nonce.as_deref())
}

/// Checks the ID token's `nonce` against `nonce`, the one sent (when one
/// was, and an ID token came).
pub fn nonce_matches(tokens: &Tokens, nonce: Option<&str>) -> Result<(), Error> {
    let (Some(nonce), Some(id_token)) = (nonce, &tokens.id_token) else {
        return Ok(());
    };
    let claimed = tokens::claims(id_token)
        .and_then(|claims| claims.get("nonce")?.as_str().map(str::to_owned));
    if claimed.as_deref() == Some(nonce) {
        return Ok(());
    }
    Err(Error::new(
        Code::NonceMismatch,
        "the ID token does not carry the nonce svc sent",
    )
    .help("the token may belong to another authorization; nothing was stored"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
