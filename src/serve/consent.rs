//! Hosted consent: an app connects its customer's account without a
//! terminal. With `--public-url`, `svc serve`
//!
//! 1. makes a connect session for a caller that holds `grant connect
//!    CLIENT` (`POST /api/connect/sessions`): a single-use link, valid ten
//!    minutes, whose token is kept only as its SHA-256;
//! 2. sends the customer's browser that opens the link to the provider's
//!    authorization page (`GET /connect/TOKEN`), with PKCE, a `state` and,
//!    for OpenID Connect, a `nonce`, and a cookie that binds the browser to
//!    the session;
//! 3. takes the provider's redirect (`GET /connect/callback`): checks the
//!    cookie, the state, the issuer (RFC 9207) and the provider's answer,
//!    exchanges the code as the client authenticates, checks the nonce,
//!    and stores the tokens through [`crate::oauth::consent::Target`], the
//!    path `svc authorize` takes (journal first, the account's run locks,
//!    one atomic update, the connection recorded healthy). Then the browser
//!    goes back to the app's `return_to`, or gets a small page.
//!
//! The sessions live in the backend ([`crate::backend::ConsentSessions`]),
//! so each step may reach another replica. Log lines and audit records
//! name a session by the first digits of its token's hash; no token, code,
//! state or verifier is ever logged or shown.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::App;
use super::api::{ApiError, authenticate, read_body, store_unavailable};
use crate::backend::connection::ConnectionKey;
use crate::backend::consent_sessions::{self, Claim, ConsentSession};
use crate::net::http::Http;
use crate::oauth::client::{Credentials, Endpoints};
use crate::oauth::code_flow;
use crate::oauth::consent::{StoreFailure, Target, token_changes};
use crate::secrets::api_keys::hash;
use crate::syntax::ast::OAuthClientDecl;

/// Where the provider sends the browser back, under the public URL.
pub const CALLBACK_PATH: &str = "/connect/callback";

/// The cookie of a session: this and the first digits of its state's hash.
const COOKIE_PREFIX: &str = "svc_connect_";

/// The length of a link's token: 32 random bytes, base64url.
const TOKEN_LENGTH: usize = 43;

/// Hosted consent, on when `svc serve` was given a public URL.
pub struct Hosted {
    /// The public URL's origin, without a trailing slash.
    origin: String,
    /// Whether the browser reaches the server over https (the cookie is
    /// `Secure` then).
    secure: bool,
    /// How long a session is valid.
    pub lifetime: chrono::TimeDelta,
    http: Http,
}

impl Hosted {
    pub fn new(public_url: &url::Url) -> Hosted {
        Hosted {
            origin: public_url.origin().ascii_serialization(),
            secure: public_url.scheme() == "https",
            lifetime: consent_sessions::LIFETIME,
            http: Http::default(),
        }
    }

    /// The redirect URI to register with the provider.
    pub fn redirect_uri(&self) -> String {
        format!("{}{CALLBACK_PATH}", self.origin)
    }

    fn link(&self, token: &str) -> String {
        format!("{}/connect/{token}", self.origin)
    }
}

/// A public URL for `--public-url`: `https://`, or `http://` to a
/// loopback host (a test, a machine's own browser); an origin, with no
/// path, query, fragment or user.
pub fn public_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text.trim()).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(host)) => host.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(format!(
                "`{text}` is plain http to a host that is not loopback: codes and cookies would travel in the clear"
            ));
        }
        other => return Err(format!("`{text}` is a `{other}` URL, not https")),
    }
    if url.host().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
        || url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(format!(
            "`{text}` is not an origin: give scheme, host and port only, such as https://svc.example.com"
        ));
    }
    Ok(url)
}

/// The answer while hosted consent is off.
fn off() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "hosted_consent_off",
        "hosted consent is off: start `svc serve` with `--public-url https://HOST` (or \
         SVC_PUBLIC_URL), the URL your customers' browsers reach this server at",
    )
}

/// A request's path as a log line may show it: a connect link's token
/// (`/connect/TOKEN...`) is left out.
pub fn shown_path(path: &str) -> &str {
    match path.strip_prefix("/connect/") {
        Some(rest) if !rest.is_empty() && rest != "callback" => "/connect/...",
        _ => path,
    }
}

// ---- POST /api/connect/sessions ------------------------------------------------

/// `POST /api/connect/sessions`: a single-use consent link for one
/// connection of a `per_account` client.
pub async fn create_session(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Some(hosted) = app.consent.as_ref() else {
        return Err(off());
    };
    let caller = authenticate(&app, &headers).await?;
    let body = read_body(&app.limits, &headers, body).await?;
    let asked = Asked::parse(&body)?;
    let Some(client) = app.script.client(&asked.client) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_client",
            format!("no oauth_client is called `{}`", asked.client),
        ));
    };
    if !client.per_account {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_per_account",
            format!(
                "oauth_client `{}` holds one connection, not one per account: connect it with \
                 `svc authorize`, or declare it `per_account`",
                asked.client
            ),
        ));
    }
    let identity = app
        .script
        .identity(&caller.identity)
        .expect("authenticate checks it exists");
    if !app.script.can_connect(identity, &asked.client) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "`{}` may not connect accounts of `{}`; grant `connect {}` to one of its roles",
                caller.identity, asked.client, asked.client
            ),
        ));
    }
    if let Err(problem) = crate::backend::accounts::check_id(&asked.connection_id) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_connection_id",
            problem,
        ));
    }
    let return_to = match &asked.return_to {
        Some(text) => Some(allowed_return_to(client, text)?),
        None => None,
    };
    let key = ConnectionKey {
        client: asked.client.clone(),
        connection_id: asked.connection_id.clone(),
    };
    within_reach(&app, &caller, &key, asked.tags.as_ref()).await?;

    // The provider's authorization URL, made now: a client that cannot be
    // used says so to the app, not to its customer.
    let (document, redactor) = app
        .engine
        .store_document()
        .await
        .map_err(store_unavailable)?;
    let mut redactor = (*redactor).clone();
    let env = app.engine.env();
    let unusable = |error: crate::oauth::Error| {
        let status = match error.code {
            crate::oauth::Code::Discovery | crate::oauth::Code::Request => StatusCode::BAD_GATEWAY,
            _ => StatusCode::CONFLICT,
        };
        tracing::warn!(
            client = asked.client.as_str(),
            code = error.code.as_str(),
            "cannot start a hosted consent: {}",
            error.message
        );
        let code = if status == StatusCode::BAD_GATEWAY {
            "discovery_failed"
        } else {
            "client_unusable"
        };
        let mut message = error.message;
        if let Some(help) = error.help {
            message.push_str(&format!("; {help}"));
        }
        ApiError::new(status, code, message)
    };
    let credentials =
        Credentials::resolve(client, &document, env, &mut redactor).map_err(unusable)?;
    let endpoints = Endpoints::resolve(
        client,
        &document,
        env,
        &hosted.http,
        &mut redactor,
        &mut Default::default(),
    )
    .await
    .map_err(unusable)?;
    let scopes = client.scopes.as_ref().map(|s| s.value.as_str());
    let authorization = code_flow::Authorization::new(scopes).map_err(unusable)?;
    let redirect_uri = hosted.redirect_uri();
    let authorize_url = authorization
        .url(&endpoints, &credentials.client_id, scopes, &redirect_uri)
        .map_err(unusable)?;
    let token = crate::oauth::random_token(32).map_err(unusable)?;

    let now = crate::secrets::document::now();
    let expires_at = now + hosted.lifetime;
    let session = ConsentSession {
        token_hash: hash(&token),
        client: asked.client.clone(),
        connection_id: asked.connection_id.clone(),
        tags: asked.tags,
        return_to: return_to.map(|u| u.to_string()),
        identity: caller.identity.clone(),
        key_id: caller.key_id.clone(),
        created_at: now,
        expires_at,
        state: authorization.state.clone(),
        verifier: authorization.verifier.to_string(),
        nonce: authorization.nonce.clone(),
        redirect_uri,
        authorize_url: authorize_url.to_string(),
        token_url: endpoints.token.to_string(),
        issuer: endpoints.issuer.clone(),
        browser: None,
        opened_at: None,
        used_at: None,
    };
    app.engine
        .backend
        .consent_sessions
        .create(&session, now)
        .await
        .map_err(store_unavailable)?;
    // Recorded before the link leaves, or it does not leave.
    if app
        .record_audit(&audit_line(&session, "connect_session_created", None))
        .await
        .is_err()
    {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "audit_unavailable",
            "the connect session cannot be recorded in the audit log, so it is refused; the \
             server's log says why",
        ));
    }
    tracing::info!(
        env,
        client = session.client.as_str(),
        connection_id = session.connection_id.as_str(),
        identity = session.identity.as_str(),
        session = session.short_id(),
        expires_at = %rfc3339(expires_at),
        "connect session created"
    );
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "url": hosted.link(&token),
            "expires_at": rfc3339(expires_at),
        })),
    )
        .into_response())
}

/// The body of `POST /api/connect/sessions`.
struct Asked {
    client: String,
    connection_id: String,
    tags: Option<BTreeMap<String, String>>,
    return_to: Option<String>,
}

impl Asked {
    fn parse(body: &[u8]) -> Result<Asked, ApiError> {
        let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_body", message);
        let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(body) else {
            return Err(bad(
                "the body must be a JSON object: {\"client\": ..., \"connection_id\": ...}".into(),
            ));
        };
        let mut text = |name: &str, required: bool| match fields.remove(name) {
            Some(Value::String(text)) => Ok(Some(text)),
            None | Some(Value::Null) if !required => Ok(None),
            None | Some(Value::Null) => Err(bad(format!("`{name}` is missing"))),
            Some(_) => Err(bad(format!("`{name}` must be a string"))),
        };
        let client = text("client", true)?.unwrap_or_default();
        let connection_id = text("connection_id", true)?.unwrap_or_default();
        let return_to = text("return_to", false)?;
        let invalid_tags =
            |message: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid_tags", message);
        let tags = match fields.remove("tags") {
            None | Some(Value::Null) => None,
            Some(Value::Object(object)) => {
                let mut tags = BTreeMap::new();
                for (key, value) in object {
                    let Value::String(value) = value else {
                        return Err(invalid_tags(format!(
                            "the value of tag `{key}` must be a string"
                        )));
                    };
                    tags.insert(key, value);
                }
                if let Some(problem) = crate::backend::accounts::invalid_tags(&tags) {
                    return Err(invalid_tags(problem));
                }
                Some(tags)
            }
            Some(_) => {
                return Err(invalid_tags(
                    "`tags` must be an object of strings: {\"plan\": \"pro\"}".into(),
                ));
            }
        };
        if let Some(unknown) = fields.keys().next() {
            return Err(bad(format!(
                "unknown field `{unknown}`: a session takes `client`, `connection_id`, `tags` and `return_to`"
            )));
        }
        Ok(Asked {
            client,
            connection_id,
            tags,
            return_to,
        })
    }
}

/// A `return_to` the client allows: the scheme, host and port of one of
/// its `return_to` URLs, and a path under that URL's path (the path
/// itself, or below it). Its query is kept; a fragment is not allowed.
fn allowed_return_to(client: &OAuthClientDecl, text: &str) -> Result<url::Url, ApiError> {
    let not_allowed = |why: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "return_to_not_allowed",
            format!(
                "`{text}` is not a `return_to` of `{}`: {why}",
                client.name.text
            ),
        )
    };
    let url = url::Url::parse(text).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_return_to",
            format!("`{text}` is not a URL: {e}"),
        )
    })?;
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_return_to",
            format!("`{text}` has a fragment or a user: a `return_to` has neither"),
        ));
    }
    if client.return_to.is_empty() {
        return Err(not_allowed(
            "the client declares no `return_to`, so the browser ends on svc's own page",
        ));
    }
    let allowed = client.return_to.iter().any(|allowed| {
        let Ok(allowed) = url::Url::parse(&allowed.value) else {
            return false;
        };
        let prefix = allowed.path().trim_end_matches('/');
        let path = url.path();
        url.scheme() == allowed.scheme()
            && url.host() == allowed.host()
            && url.port_or_known_default() == allowed.port_or_known_default()
            && (prefix.is_empty()
                || path == prefix
                || path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/')))
    });
    if allowed {
        Ok(url)
    } else {
        Err(not_allowed(
            "its scheme, host and port must be one of the client's `return_to`, and its path \
             under that one's path",
        ))
    }
}

/// Refuses a session for a connection the caller's key does not reach
/// (`svc key create --connection-prefix`, `--connection-tag`): its id must
/// have the prefix, and the tags it will carry (the session's, or else the
/// ones it has) every tag of the key.
async fn within_reach(
    app: &App,
    caller: &super::api::Caller,
    key: &ConnectionKey,
    tags: Option<&BTreeMap<String, String>>,
) -> Result<(), ApiError> {
    let Some(identities) = app.engine.keys.as_ref() else {
        return Err(store_unavailable(app.engine.no_identity()));
    };
    let keys = app
        .engine
        .backend
        .keys
        .keys(identities)
        .await
        .map_err(store_unavailable)?;
    let Some(api_key) = keys.get(&caller.key_id) else {
        return Ok(());
    };
    let mut reach = crate::backend::Reach {
        prefix: api_key.connection_prefix.clone(),
        tags: api_key.connection_tags.clone(),
    };
    if reach.is_all() {
        return Ok(());
    }
    let mut state = match tags {
        Some(_) => None,
        None => app
            .engine
            .backend
            .connections
            .load_one(key)
            .await
            .map_err(store_unavailable)?,
    }
    .unwrap_or_default();
    if let Some(tags) = tags {
        state.tags = tags.clone();
    }
    if reach.reaches(key, &state) {
        return Ok(());
    }
    let prefix = reach
        .prefix
        .take()
        .map(|p| format!("ids starting with `{p}`"));
    let tags = (!reach.tags.is_empty()).then(|| {
        let tags: Vec<String> = reach.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("the tags {}", tags.join(", "))
    });
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!(
            "the key reaches only connections with {}; `{}` is not one",
            [prefix, tags]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" and "),
            key.connection_id
        ),
    ))
}

// ---- GET /connect/TOKEN -------------------------------------------------------------

/// `GET /connect/TOKEN`: the customer's browser opens its link, once.
/// A `HEAD` (a mail scanner, a link preview) does not use it up.
pub async fn open_link(
    State(app): State<Arc<App>>,
    Path(token): Path<String>,
    method: Method,
) -> Response {
    let Some(hosted) = app.consent.as_ref() else {
        return page(StatusCode::NOT_FOUND, Page::Off);
    };
    if method == Method::HEAD {
        let mut response = StatusCode::OK.into_response();
        private(response.headers_mut());
        return response;
    }
    let plausible = token.len() == TOKEN_LENGTH
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !plausible {
        refused("link", "unknown", None);
        return page(StatusCode::NOT_FOUND, Page::UnknownLink);
    }
    let browser = match crate::oauth::random_token(32) {
        Ok(browser) => browser,
        Err(error) => {
            tracing::error!("{}: {}", error.code.as_str(), error.message);
            return page(StatusCode::SERVICE_UNAVAILABLE, Page::Unavailable);
        }
    };
    let now = Utc::now();
    let claim = app
        .engine
        .backend
        .consent_sessions
        .open(&hash(&token), &hash(&browser), now)
        .await;
    let session = match claim {
        Err(error) => {
            tracing::error!(
                "{}: cannot open a connect session {}: {error}",
                error.code(),
                app.engine.backend.consent_sessions.describe()
            );
            return page(StatusCode::SERVICE_UNAVAILABLE, Page::Unavailable);
        }
        Ok(Claim::Unknown) => {
            refused("link", "unknown", None);
            return page(StatusCode::NOT_FOUND, Page::UnknownLink);
        }
        Ok(Claim::Used(session)) => {
            refused("link", "used", Some(&session));
            return page(StatusCode::GONE, Page::UsedLink);
        }
        Ok(Claim::Expired(session)) => {
            refused("link", "expired", Some(&session));
            return page(StatusCode::GONE, Page::ExpiredLink);
        }
        Ok(Claim::Claimed(session)) => session,
    };
    tracing::info!(
        env = app.engine.env(),
        client = session.client.as_str(),
        connection_id = session.connection_id.as_str(),
        session = session.short_id(),
        "connect link opened"
    );
    let max_age = (session.expires_at - now).num_seconds().max(1);
    let mut cookie = format!(
        "{}={browser}; Path=/connect; Max-Age={max_age}; HttpOnly; SameSite=Lax",
        cookie_name(&session.state)
    );
    if hosted.secure {
        cookie.push_str("; Secure");
    }
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&session.authorize_url) {
        headers.insert(header::LOCATION, location);
    }
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    private(headers);
    response
}

/// The name of a session's cookie: from its state, which the callback
/// brings, so several consents in one browser keep their own.
fn cookie_name(state: &str) -> String {
    format!("{COOKIE_PREFIX}{}", &hash(state)[..16])
}

// ---- GET /connect/callback ------------------------------------------------------

/// `GET /connect/callback`: the provider sends the browser back. The
/// session is used up, whatever comes of it.
pub async fn callback(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if app.consent.is_none() {
        return page(StatusCode::NOT_FOUND, Page::Off);
    }
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let Some(state) = pairs
        .iter()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.clone())
    else {
        refused("callback", "no_state", None);
        return page(StatusCode::BAD_REQUEST, Page::UnknownConsent);
    };
    let claim = app
        .engine
        .backend
        .consent_sessions
        .finish(&state, Utc::now())
        .await;
    let session = match claim {
        Err(error) => {
            tracing::error!(
                "{}: cannot finish a connect session {}: {error}",
                error.code(),
                app.engine.backend.consent_sessions.describe()
            );
            return page(StatusCode::SERVICE_UNAVAILABLE, Page::Unavailable);
        }
        Ok(Claim::Unknown) => {
            refused("callback", "unknown_state", None);
            return page(StatusCode::BAD_REQUEST, Page::UnknownConsent);
        }
        // Its first callback sent the browser back already: this one
        // (a reload, a replay) changes nothing.
        Ok(Claim::Used(session)) => {
            refused("callback", "used", Some(&session));
            return page(StatusCode::GONE, Page::UsedConsent);
        }
        Ok(Claim::Expired(session)) => {
            let failure = Failure::new("expired", "the session expired before the callback came");
            finished(&app, &session, Some(&failure)).await;
            return back(&session, Err(failure));
        }
        Ok(Claim::Claimed(session)) => session,
    };
    let cookie = cookie_value(&headers, &cookie_name(&session.state));
    // The exchange and the store go on if the browser goes away: the code
    // is spent, and the tokens must be kept.
    let task_app = app.clone();
    let task_session = session.clone();
    let outcome = app
        .tracker
        .spawn(async move { complete(&task_app, &task_session, &pairs, cookie).await })
        .await
        .unwrap_or_else(|_| Err(Failure::new("internal", "the consent stopped unexpectedly")));
    finished(&app, &session, outcome.as_ref().err()).await;
    back(&session, outcome)
}

/// Why a consent that found its session did not connect the account:
/// a stable code (the `error` of the redirect to `return_to`) and, for
/// the server's log only, what happened.
#[derive(Debug)]
struct Failure {
    code: &'static str,
    message: String,
}

impl Failure {
    fn new(code: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

/// The callback's checks, the exchange and the store.
async fn complete(
    app: &App,
    session: &ConsentSession,
    pairs: &[(String, String)],
    cookie: Option<String>,
) -> Result<(), Failure> {
    match (cookie, &session.browser) {
        (None, _) => {
            return Err(Failure::new(
                "missing_cookie",
                "the browser sent no cookie of this session: it did not open the link",
            ));
        }
        (Some(cookie), Some(expected)) if hash(&cookie) == *expected => {}
        _ => {
            return Err(Failure::new(
                "wrong_browser",
                "the browser's cookie is not the one of the browser that opened the link",
            ));
        }
    }
    let code = code_flow::redirect_code(pairs, session.issuer.as_deref()).map_err(|error| {
        let code = match error.code {
            crate::oauth::Code::AccessDenied => "access_denied",
            crate::oauth::Code::StateMismatch => "issuer_mismatch",
            _ => "authorization_error",
        };
        Failure::new(code, error.message)
    })?;
    let Some(client) = app.script.client(&session.client) else {
        return Err(Failure::new(
            "unknown_client",
            format!("the program no longer declares `{}`", session.client),
        ));
    };
    let Some(keys) = app.engine.keys.as_ref() else {
        return Err(Failure::new(
            "store_unavailable",
            app.engine.no_identity().to_string(),
        ));
    };
    let (document, redactor) =
        app.engine.store_document().await.map_err(|error| {
            Failure::new("store_unavailable", format!("{}: {error}", error.code()))
        })?;
    let mut redactor = (*redactor).clone();
    let failed = |code: &'static str| {
        move |error: crate::oauth::Error| {
            Failure::new(code, format!("{}: {}", error.code.as_str(), error.message))
        }
    };
    let credentials = Credentials::resolve(client, &document, app.engine.env(), &mut redactor)
        .map_err(failed("client_unusable"))?;
    let token_url = url::Url::parse(&session.token_url)
        .map_err(|e| Failure::new("client_unusable", format!("the token URL: {e}")))?;
    let http = &app.consent.as_ref().expect("hosted consent is on").http;
    let (tokens, response) = code_flow::exchange_code(
        http,
        &token_url,
        &credentials,
        &session.redirect_uri,
        &session.verifier,
        &code,
        &mut redactor,
    )
    .await
    .map_err(failed("exchange_failed"))?;
    code_flow::nonce_matches(&tokens, session.nonce.as_deref())
        .map_err(failed("nonce_mismatch"))?;
    let changes = token_changes(client, &tokens).map_err(failed("missing_token"))?;
    let target = Target {
        script: &app.script,
        client,
        backend: &app.engine.backend,
        keys,
        key: ConnectionKey {
            client: session.client.clone(),
            connection_id: session.connection_id.clone(),
        },
    };
    let by = format!(
        "{} (connect session {} of {})",
        session.identity,
        session.short_id(),
        session.client
    );
    target
        .store(&token_url, &response, changes, &by, app.engine.lock_timeout)
        .await
        .map_err(|failure| match failure {
            StoreFailure::Busy(key, timeout) => Failure::new(
                "busy",
                format!(
                    "a run of `{key}` did not finish within {}; nothing was stored",
                    crate::syntax::duration::format(timeout)
                ),
            ),
            StoreFailure::Store { error, kept } => Failure::new(
                "store_failed",
                format!(
                    "{}: {}{}",
                    error.code(),
                    redactor.redact(&error.to_string()),
                    kept.map(|run| format!(
                        "; the tokens are kept in the recovery journal as run {run}"
                    ))
                    .unwrap_or_default()
                ),
            ),
        })?;
    target.connected(&tokens, session.tags.clone()).await;
    Ok(())
}

/// The audit record and the log line of a consent's end.
async fn finished(app: &App, session: &ConsentSession, failure: Option<&Failure>) {
    let action = if failure.is_some() {
        "connect_session_failed"
    } else {
        "connect_session_completed"
    };
    let error = failure.map(|f| f.code);
    if let Err(e) = app.record_audit(&audit_line(session, action, error)).await {
        tracing::error!(
            session = session.short_id(),
            "the end of a connect session is not in the audit log: {e}"
        );
    }
    match failure {
        None => tracing::info!(
            env = app.engine.env(),
            client = session.client.as_str(),
            connection_id = session.connection_id.as_str(),
            identity = session.identity.as_str(),
            session = session.short_id(),
            "connect session completed: the account is connected"
        ),
        Some(failure) => tracing::warn!(
            env = app.engine.env(),
            client = session.client.as_str(),
            connection_id = session.connection_id.as_str(),
            identity = session.identity.as_str(),
            session = session.short_id(),
            error = failure.code,
            "connect session failed: {}",
            failure.message
        ),
    }
}

fn audit_line(session: &ConsentSession, action: &str, error: Option<&str>) -> Value {
    let mut line = json!({
        "at": crate::secrets::document::now(),
        "identity": session.identity,
        "key": session.key_id,
        "action": action,
        "client": session.client,
        "connection_id": session.connection_id,
        "session": session.short_id(),
        "via": "http",
    });
    if let Some(error) = error {
        line["error"] = json!(error);
    }
    line
}

/// Where the browser goes when the consent ends: back to the app's
/// `return_to` (303) with `connection_id` and `status` (and `error`)
/// added to its query, or a page of svc's own.
fn back(session: &ConsentSession, outcome: Result<(), Failure>) -> Response {
    let Some(return_to) = session
        .return_to
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
    else {
        return match outcome {
            Ok(()) => page(
                StatusCode::OK,
                Page::Connected(session.connection_id.clone()),
            ),
            Err(failure) => page(StatusCode::BAD_REQUEST, Page::Failed(failure.code)),
        };
    };
    let mut location = return_to;
    {
        let mut query = location.query_pairs_mut();
        query.append_pair("connection_id", &session.connection_id);
        match &outcome {
            Ok(()) => {
                query.append_pair("status", "connected");
            }
            Err(failure) => {
                query
                    .append_pair("status", "error")
                    .append_pair("error", failure.code);
            }
        }
    }
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(location.as_str()) {
        headers.insert(header::LOCATION, location);
    }
    clear_cookie(headers, session);
    private(headers);
    response
}

fn clear_cookie(headers: &mut HeaderMap, session: &ConsentSession) {
    let cookie = format!(
        "{}=; Path=/connect; Max-Age=0; HttpOnly; SameSite=Lax",
        cookie_name(&session.state)
    );
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        headers.append(header::SET_COOKIE, cookie);
    }
}

/// The value of the cookie `name` the browser sent.
fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A refused link or callback, in the server's log: which, why, and the
/// session when one was found (never the token or the state).
fn refused(what: &str, reason: &str, session: Option<&ConsentSession>) {
    tracing::warn!(
        client = session.map(|s| s.client.as_str()),
        connection_id = session.map(|s| s.connection_id.as_str()),
        session = session.map(ConsentSession::short_id),
        reason,
        "connect {what} refused"
    );
}

/// Headers of every answer to the browser: not cached, and no referrer
/// (the link and the callback carry what others must not see).
fn private(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

// ---- Pages ---------------------------------------------------------------------

/// What the customer's browser may be told.
enum Page {
    Off,
    Unavailable,
    UnknownLink,
    UsedLink,
    ExpiredLink,
    UnknownConsent,
    UsedConsent,
    Connected(String),
    Failed(&'static str),
}

impl Page {
    fn words(&self) -> (&'static str, String) {
        let ask = "Ask the app that sent you here for a new link.";
        match self {
            Page::Off => (
                "Not available",
                "This server does not connect accounts.".into(),
            ),
            Page::Unavailable => (
                "Try again later",
                "The server cannot take this request right now. Nothing was stored.".into(),
            ),
            Page::UnknownLink => (
                "Link not valid",
                format!("This link is not a valid connect link. {ask}"),
            ),
            Page::UsedLink => (
                "Link already used",
                format!("This link was opened before, and works only once. {ask}"),
            ),
            Page::ExpiredLink => ("Link expired", format!("This link has expired. {ask}")),
            Page::UnknownConsent => (
                "Not a known consent",
                format!("This answer belongs to no consent in progress. Nothing was stored. {ask}"),
            ),
            Page::UsedConsent => (
                "Already done",
                "This consent was already completed or refused. You can close this tab.".into(),
            ),
            Page::Connected(id) => (
                "Account connected",
                format!("The account `{id}` is connected. You can close this tab."),
            ),
            Page::Failed(code) => (
                "Account not connected",
                match *code {
                    "access_denied" => {
                        format!("Access was not allowed, so nothing was stored. {ask}")
                    }
                    "expired" => {
                        format!("The consent took too long and expired. Nothing was stored. {ask}")
                    }
                    "missing_cookie" | "wrong_browser" => format!(
                        "This consent was started in another browser, so nothing was stored. Open the link in the browser you use here. {ask}"
                    ),
                    _ => format!("The account could not be connected. {ask}"),
                },
            ),
        }
    }

    fn code(&self) -> &str {
        match self {
            Page::Failed(code) => code,
            _ => "",
        }
    }
}

/// A small page: no script, no external asset, nothing cached.
fn page(status: StatusCode, page: Page) -> Response {
    let (title, text) = page.words();
    let code = match page.code() {
        "" => String::new(),
        code => format!("Error: {code}"),
    };
    let body = include_str!("consent.html")
        .replace("{title}", &escape(title))
        .replace("{text}", &escape(&text))
        .replace("{code}", &escape(&code));
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    private(headers);
    response
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_url_is_an_https_origin_or_loopback_http() {
        assert!(public_url("https://svc.example.com").is_ok());
        assert!(public_url("https://svc.example.com:8443/").is_ok());
        assert!(public_url("http://127.0.0.1:8700").is_ok());
        assert!(public_url("http://localhost:8700").is_ok());
        assert!(public_url("http://[::1]:8700").is_ok());
        for bad in [
            "http://svc.example.com",
            "ftp://svc.example.com",
            "https://svc.example.com/svc",
            "https://svc.example.com/?x=1",
            "https://user@svc.example.com",
            "svc.example.com",
        ] {
            assert!(public_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_link_s_token_is_not_in_a_shown_path() {
        assert_eq!(shown_path("/connect/abc/"), "/connect/...");
        assert_eq!(shown_path("/connect/callback"), "/connect/callback");
        assert_eq!(shown_path("/api/whoami"), "/api/whoami");
    }

    #[test]
    fn a_cookie_is_found_by_its_name_only() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; svc_connect_x=2"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("svc_connect_y=3"));
        assert_eq!(
            cookie_value(&headers, "svc_connect_x").as_deref(),
            Some("2")
        );
        assert_eq!(
            cookie_value(&headers, "svc_connect_y").as_deref(),
            Some("3")
        );
        assert_eq!(cookie_value(&headers, "svc_connect"), None);
    }

    #[test]
    fn pages_escape_what_they_show_and_load_nothing() {
        assert_eq!(escape("<script>\"&"), "&lt;script&gt;&quot;&amp;");
        let response = page(StatusCode::OK, Page::Failed("access_denied"));
        assert_eq!(
            response.headers()[header::CONTENT_SECURITY_POLICY],
            "default-src 'none'; style-src 'unsafe-inline'"
        );
        let template = include_str!("consent.html");
        assert!(!template.contains("src=") && !template.contains("href="));
    }
}
