//! A provider emulator: one small OAuth 2.0 server on 127.0.0.1 that
//! behaves as each profile of svc's catalog says — the client
//! authentication it accepts, the parameters and scopes it needs before it
//! issues a refresh token, PKCE where required, rotation, the fields its
//! answers carry or leave out, and its failure shape. Every profile lives
//! under `/NAME/`: `/NAME/authorize`, `/NAME/token`, and, for the test,
//! `/NAME/revoke_all` (a user removing the app) and `/NAME/stats`.
//!
//! It is built from the same profile data svc is, so what it checks is
//! what the profile claims; the profile's citations are what tie both to
//! the provider.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use serde_json::{Value, json};
use svc::providers::{self, AuthMethod, Pkce, Profile, Rotation};

/// The client every profile's emulator knows.
pub const CLIENT_ID: &str = "emulated-client";
pub const CLIENT_SECRET: &str = "emulated-secret-9d2f7c";

#[derive(Default)]
struct Provider {
    codes: HashMap<String, Code>,
    /// Refresh tokens issued, and whether each may still be used.
    refresh_tokens: HashMap<String, bool>,
    access_tokens: Vec<String>,
    refreshes: u64,
    /// Spent refresh tokens presented again.
    reused: u64,
    revoked: bool,
    issued: u64,
}

struct Code {
    redirect_uri: String,
    challenge: Option<String>,
    offline: bool,
}

type Shared = Arc<Mutex<HashMap<String, Provider>>>;

/// The emulator, serving every profile of the catalog until dropped.
pub struct Emulator {
    pub port: u16,
    _runtime: tokio::runtime::Runtime,
}

impl Emulator {
    pub fn start() -> Emulator {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let state: Shared = Arc::default();
        let app = Router::new()
            .route("/{profile}/authorize", get(authorize))
            .route("/{profile}/token", post(token))
            .route("/{profile}/revoke_all", post(revoke_all))
            .route("/{profile}/stats", get(stats))
            .with_state(state);
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        runtime.spawn(async move { axum::serve(listener, app).await });
        Emulator {
            port,
            _runtime: runtime,
        }
    }

    pub fn url(&self, profile: &str, path: &str) -> String {
        format!("http://127.0.0.1:{}/{profile}/{path}", self.port)
    }

    pub fn stats(&self, profile: &str) -> Value {
        let (status, _, body) = super::http_request("GET", &self.url(profile, "stats"), None);
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    pub fn revoke_all(&self, profile: &str) {
        let (status, _, body) =
            super::http_request("POST", &self.url(profile, "revoke_all"), Some(""));
        assert_eq!(status, 200, "{body}");
    }
}

fn unknown() -> Response {
    (StatusCode::NOT_FOUND, "no such profile").into_response()
}

fn refuse(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

async fn authorize(
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    State(state): State<Shared>,
) -> Response {
    let Some(profile) = providers::get(&name) else {
        return unknown();
    };
    let Some(authorization) = &profile.authorization else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "unsupported_response_type",
            "no code flow",
        );
    };
    let param = |k: &str| query.get(k).map(String::as_str);
    if param("response_type") != Some("code") || param("client_id") != Some(CLIENT_ID) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "response_type or client_id",
        );
    }
    let Some(redirect_uri) = param("redirect_uri") else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "no redirect_uri",
        );
    };
    for (key, value) in &authorization.params {
        if param(key) != Some(value) {
            return refuse(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("{key}={value} is required"),
            );
        }
    }
    let challenge = match (param("code_challenge"), param("code_challenge_method")) {
        (Some(c), Some("S256")) => Some(c.to_string()),
        _ if authorization.pkce == Some(Pkce::Required) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "PKCE is required",
            );
        }
        _ => None,
    };
    let separator = authorization.scope_separator.as_deref().unwrap_or(" ");
    let scopes: Vec<&str> = param("scope")
        .unwrap_or("")
        .split(|c: char| c.is_whitespace() || separator.contains(c))
        .collect();
    let offline = authorization
        .offline_scopes
        .iter()
        .all(|s| scopes.contains(&s.as_str()));
    let code = format!("code-{}", fastrand::u64(..));
    state.lock().unwrap().entry(name).or_default().codes.insert(
        code.clone(),
        Code {
            redirect_uri: redirect_uri.to_string(),
            challenge,
            offline,
        },
    );
    let mut location = url::Url::parse(redirect_uri).unwrap();
    location.query_pairs_mut().append_pair("code", &code);
    if let Some(s) = param("state") {
        location.query_pairs_mut().append_pair("state", s);
    }
    (StatusCode::FOUND, [("location", location.to_string())], "").into_response()
}

/// How the client authenticated, if it did as it should.
fn client_auth(headers: &HeaderMap, form: &HashMap<String, String>) -> Result<AuthMethod, ()> {
    if let Some(header) = headers.get("authorization").and_then(|h| h.to_str().ok()) {
        let encoded = header.strip_prefix("Basic ").ok_or(())?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| ())?;
        let decoded = String::from_utf8(decoded).map_err(|_| ())?;
        // RFC 6749 §2.3.1: both form-urlencoded before they are joined.
        return (decoded == format!("{CLIENT_ID}:{CLIENT_SECRET}"))
            .then_some(AuthMethod::ClientSecretBasic)
            .ok_or(());
    }
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return Err(());
    }
    match form.get("client_secret") {
        Some(secret) if secret == CLIENT_SECRET => Ok(AuthMethod::ClientSecretPost),
        Some(_) => Err(()),
        None => Ok(AuthMethod::None),
    }
}

async fn token(
    Path(name): Path<String>,
    State(state): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some(profile) = providers::get(&name) else {
        return unknown();
    };
    match client_auth(&headers, &form) {
        Ok(method) if profile.client_auth.methods.contains(&method) => {}
        _ => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication failed",
            );
        }
    }
    let mut all = state.lock().unwrap();
    let provider = all.entry(name).or_default();
    let field = |k: &str| form.get(k).map(String::as_str);
    let offline = match field("grant_type") {
        Some("authorization_code") => {
            let Some(code) = field("code").and_then(|c| provider.codes.remove(c)) else {
                return refuse(StatusCode::BAD_REQUEST, "invalid_grant", "unknown code");
            };
            if field("redirect_uri") != Some(code.redirect_uri.as_str()) {
                return refuse(StatusCode::BAD_REQUEST, "invalid_grant", "redirect_uri");
            }
            if let Some(challenge) = &code.challenge {
                let verifier = field("code_verifier").unwrap_or("");
                let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
                let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
                if &expected != challenge {
                    return refuse(StatusCode::BAD_REQUEST, "invalid_grant", "code_verifier");
                }
            }
            code.offline && profile.refresh.is_some()
        }
        Some("refresh_token") => {
            let Some(refresh) = &profile.refresh else {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    "no refresh",
                );
            };
            for (key, value) in &refresh.params {
                if field(key) != Some(value) {
                    return refuse(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        &format!("{key}={value} is required"),
                    );
                }
            }
            let presented = field("refresh_token").unwrap_or("").to_string();
            provider.refreshes += 1;
            let live = provider.refresh_tokens.get(&presented).copied();
            if live == Some(false) {
                provider.reused += 1;
            }
            if provider.revoked || live != Some(true) {
                return failure(profile);
            }
            let rotate = match refresh.rotation {
                Rotation::Always => true,
                // A new one every other refresh: both paths are taken.
                Rotation::Sometimes => provider.refreshes % 2 == 0,
                Rotation::Never => false,
            };
            let access = new_token(provider, "at");
            let mut answer = answer(profile, &access);
            if rotate {
                provider.refresh_tokens.insert(presented, false);
                let new = new_token(provider, "rt");
                provider.refresh_tokens.insert(new.clone(), true);
                answer["refresh_token"] = json!(new);
                refresh_expiry(profile, &mut answer);
            }
            provider.access_tokens.push(access);
            return Json(answer).into_response();
        }
        Some("client_credentials") if profile.client_credentials.is_some() => false,
        _ => return refuse(StatusCode::BAD_REQUEST, "unsupported_grant_type", "grant"),
    };
    let access = new_token(provider, "at");
    let mut answer = answer(profile, &access);
    if offline {
        let refresh = new_token(provider, "rt");
        provider.refresh_tokens.insert(refresh.clone(), true);
        answer["refresh_token"] = json!(refresh);
        refresh_expiry(profile, &mut answer);
    }
    provider.access_tokens.push(access);
    Json(answer).into_response()
}

fn new_token(provider: &mut Provider, kind: &str) -> String {
    provider.issued += 1;
    format!("{kind}-{}-{:016x}", provider.issued, fastrand::u64(..))
}

/// A successful answer, with the fields the profile says it carries.
fn answer(profile: &Profile, access: &str) -> Value {
    let mut answer = json!({"access_token": access, "token_type": "Bearer"});
    if profile.access_token.as_ref().is_none_or(|a| a.expires_in) {
        answer["expires_in"] = json!(3600);
    }
    // Slack's Web API: `ok` on every answer.
    if profile.failures.iter().any(|f| f.status == 200) {
        answer["ok"] = json!(true);
    }
    answer
}

fn refresh_expiry(profile: &Profile, answer: &mut Value) {
    if let Some(field) = profile
        .refresh
        .as_ref()
        .and_then(|r| r.refresh_token_expires_field.as_ref())
    {
        answer[field.as_str()] = json!(8_640_000);
    }
}

/// The profile's documented answer to a dead refresh token, or RFC 6749's.
fn failure(profile: &Profile) -> Response {
    let Some(shape) = profile
        .failures
        .iter()
        .find(|f| f.means == providers::FailureMeaning::Reconsent)
    else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "refresh token revoked",
        );
    };
    let mut body = json!({});
    body[shape.error_field.as_deref().unwrap_or("error")] = json!(shape.error);
    if let Some(description) = &shape.description {
        body["error_description"] = json!(format!(
            "{description}: the refresh token is no longer valid"
        ));
    }
    if shape.status == 200 {
        body["ok"] = json!(false);
    }
    (StatusCode::from_u16(shape.status).unwrap(), Json(body)).into_response()
}

async fn revoke_all(Path(name): Path<String>, State(state): State<Shared>) -> Response {
    state.lock().unwrap().entry(name).or_default().revoked = true;
    Json(json!({})).into_response()
}

async fn stats(Path(name): Path<String>, State(state): State<Shared>) -> Response {
    let mut all = state.lock().unwrap();
    let provider = all.entry(name).or_default();
    let live: Vec<&String> = provider
        .refresh_tokens
        .iter()
        .filter(|(_, live)| **live)
        .map(|(t, _)| t)
        .collect();
    Json(json!({
        "refreshes": provider.refreshes,
        "reused": provider.reused,
        "live_refresh_tokens": live,
        "last_access_token": provider.access_tokens.last(),
    }))
    .into_response()
}
