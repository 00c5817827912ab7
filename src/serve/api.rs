//! The HTTP handlers.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;
use http_body_util::BodyExt;
use serde_json::{Value, json};

use super::App;
use crate::backend::{JobRefused, LogName, ReadAt};
use crate::backend::{Outcome, Trigger};
use crate::run::RunRequest;
use crate::schedule::connections::{self, Sources};
use crate::secrets::api_keys::{self, Rejection};
use crate::syntax::ast::IdentityKind;

/// An error answer: `{"error": {"code", "message"}}`.
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    allow: Option<String>,
    /// More fields of the error object (a failed refresh's run).
    pub(super) details: Option<serde_json::Map<String, Value>>,
}

impl ApiError {
    pub(super) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            allow: None,
            details: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if let (Some(details), Value::Object(object)) = (self.details, &mut error) {
            object.extend(details);
        }
        let mut response = (self.status, Json(json!({ "error": error }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"svc\""),
            );
        }
        if let Some(allow) = self.allow
            && let Ok(value) = HeaderValue::from_str(&allow)
        {
            response.headers_mut().insert(header::ALLOW, value);
        }
        response.extensions_mut().insert(Refused(self.code));
        response
    }
}

/// The code of an answer that refused a request, for the server's log.
#[derive(Clone, Copy)]
pub struct Refused(pub &'static str);

/// Writes a log line for each refused request: method, path (not the
/// query: it may carry parameters; nor a connect link's token), status and
/// code.
pub async fn log_refusals(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let method = request.method().clone();
    let path = super::consent::shown_path(request.uri().path()).to_string();
    let response = next.run(request).await;
    if let Some(Refused(code)) = response.extensions().get::<Refused>().copied() {
        tracing::warn!(
            method = %method,
            path = %path,
            status = response.status().as_u16(),
            code,
            "refused"
        );
    }
    response
}

/// The environment's store, read as `at` says, or 503 when it cannot be
/// read.
async fn store_document(app: &App, at: ReadAt) -> Result<Arc<crate::secrets::Document>, ApiError> {
    app.engine
        .store_document_at(at)
        .await
        .map(|(document, _)| document)
        .map_err(store_unavailable)
}

/// A store that cannot be read, told to HTTP callers with a code and no
/// local path; the details (the store's path, the OS error) go to stderr.
pub(super) fn store_unavailable(error: crate::secrets::Error) -> ApiError {
    tracing::error!("{}: {error}", error.code());
    let code = if matches!(error, crate::secrets::Error::Unavailable { .. }) {
        "backend_unavailable"
    } else {
        "store_unavailable"
    };
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        code,
        format!(
            "the secret store cannot be read ({}); the server's log says why",
            error.code()
        ),
    )
}

/// A finished run as HTTP callers see it, its store failure (if any) told
/// to the server's stderr first.
fn answered_record(record: crate::backend::RunRecord) -> crate::backend::RunRecord {
    if let Some(error) = &record.error
        && error.diagnostic.starts_with("svc::store::")
    {
        tracing::error!(
            "run {} of `{}`: {}: {}",
            record.id,
            record.endpoint,
            error.diagnostic,
            error.message
        );
    }
    public_record(record)
}

/// A run record as HTTP callers see it: a store failure keeps its code and
/// loses its message and help, which name local files; the server's stderr
/// (and the endpoint log) keep them.
fn public_record(mut record: crate::backend::RunRecord) -> crate::backend::RunRecord {
    if let Some(error) = &mut record.error
        && error.diagnostic.starts_with("svc::store::")
    {
        error.message = format!(
            "the secret store failed ({}); the server's log says why",
            error.diagnostic
        );
        error.help = None;
    }
    record
}

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Caller {
    pub identity: String,
    pub key_id: String,
    /// The connected accounts the key may reach (all, unless limited).
    pub reach: crate::backend::Reach,
}

/// Authenticates the `Authorization: Bearer` key against the store as it
/// is now.
pub async fn authenticate(app: &App, headers: &HeaderMap) -> Result<Caller, ApiError> {
    authenticate_at(app, headers, ReadAt::Now).await
}

/// Authenticates against the key index read as `at` says. A key refused by
/// an index read as known is asked of the store as it is now: a key added
/// on another replica a moment ago is not refused for this one's cache.
async fn authenticate_at(app: &App, headers: &HeaderMap, at: ReadAt) -> Result<Caller, ApiError> {
    let unauthorized = |rejection: Rejection| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            rejection.message(),
        )
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(|| unauthorized(Rejection::Missing))?;
    let identities = app
        .engine
        .keys
        .as_ref()
        .ok_or_else(|| store_unavailable(app.engine.no_identity()))?;
    let keys = &app.engine.backend.keys;
    let keys_in_store = match at {
        ReadAt::Now => keys.keys(identities).await,
        ReadAt::Known => keys.keys_as_known(identities).await,
    }
    .map_err(store_unavailable)?;
    let (id, key) = match api_keys::verify(&keys_in_store, token, Utc::now()) {
        Ok(found) => found,
        Err(_) if at == ReadAt::Known => {
            return Box::pin(authenticate_at(app, headers, ReadAt::Now)).await;
        }
        Err(rejection) => return Err(unauthorized(rejection)),
    };
    if app.script.identity(&key.identity).is_none() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "unknown_identity",
            format!(
                "the key belongs to `{}`, which the program does not declare",
                key.identity
            ),
        ));
    }
    super::connections::mark_authenticated();
    Ok(Caller {
        identity: key.identity.clone(),
        key_id: id.to_string(),
        reach: crate::backend::Reach {
            prefix: key.connection_prefix.clone(),
            tags: key.connection_tags.clone(),
        },
    })
}

/// `/healthz`: 200 while the schedules run, stand by or are off on
/// purpose; 503 when they should run and cannot.
/// Whether the backend answers within a second or two.
async fn backend_answers(app: &App) -> Result<(), String> {
    match tokio::time::timeout(
        std::time::Duration::from_secs(2),
        app.engine.backend.secrets.ping(),
    )
    .await
    {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => {
            tracing::warn!("the backend does not answer: {error}");
            Err(error.code().to_string())
        }
        Err(_) => Err("no answer within 2s".into()),
    }
}

/// Liveness: the server answers; it says `degraded` when the backend does
/// not (runs fail until it is back), and 503 when the schedules cannot run.
pub async fn healthz(State(app): State<Arc<App>>) -> Response {
    let status = if app.health.ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut document = app.health.document(app.schedules.save_failing());
    match backend_answers(&app).await {
        Ok(()) => document["backend"] = json!({"state": "ok"}),
        Err(problem) => {
            document["backend"] = json!({"state": "unavailable", "problem": problem});
            if status == StatusCode::OK {
                document["status"] = json!("degraded");
            }
        }
    }
    if app.audit_ready().await {
        document["audit"] = json!({"state": "ok"});
    } else {
        document["audit"] = json!({"state": "unavailable"});
        if status == StatusCode::OK {
            document["status"] = json!("degraded");
        }
    }
    (status, Json(document)).into_response()
}

/// Readiness: 200 when the backend answers, so a load balancer sends no
/// request to a replica that cannot run it.
pub async fn readyz(State(app): State<Arc<App>>) -> Response {
    let unavailable = |code: &str, problem: String| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "error": {"code": code, "message": problem}})),
        )
            .into_response()
    };
    if let Err(problem) = backend_answers(&app).await {
        return unavailable("backend_unavailable", problem);
    }
    // Reads are refused while they cannot be audited: this replica is of
    // no use to a load balancer then.
    if !app.audit_ready().await {
        return unavailable(
            "audit_unavailable",
            "the audit log cannot be written; the server's log says why".into(),
        );
    }
    (StatusCode::OK, Json(json!({"status": "ready"}))).into_response()
}

pub async fn explorer() -> impl IntoResponse {
    (
        [(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'",
        )],
        Html(include_str!("explorer.html")),
    )
}

pub async fn openapi(State(app): State<Arc<App>>) -> Json<Value> {
    Json(app.openapi.clone())
}

pub async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    // A scrape never waits on a database: it shows the store as last read,
    // and reads it again behind the answer for the next scrape. Files are
    // read here (a stat, and a decryption when they changed).
    // The connections' gauges, likewise: set behind the answer on a
    // database, before it with files.
    let document = if app.engine.backend.is_shared() {
        use std::sync::atomic::Ordering;
        if !app.metrics_reading.swap(true, Ordering::SeqCst) {
            let reader = app.clone();
            tokio::spawn(async move {
                let document = reader.engine.store_document().await.ok();
                set_connection_metrics(&reader, document.as_ref().map(|(d, _)| &**d)).await;
                reader.metrics_reading.store(false, Ordering::SeqCst);
            });
        }
        app.engine.backend.secrets.cached_document()
    } else {
        let document = store_document(&app, ReadAt::Now).await.ok();
        set_connection_metrics(&app, document.as_deref()).await;
        document
    };
    if let Some(document) = document {
        let now = Utc::now();
        for (name, entry) in &document.secrets {
            if let Some(expires_at) = entry.expires_at {
                app.metrics
                    .set_secret_expiry(name, (expires_at - now).num_milliseconds() as f64 / 1000.0);
            }
        }
    }
    app.metrics
        .set_scheduler_state(app.health.scheduler().name());
    for (name, next) in app.schedules.next_runs() {
        app.metrics
            .set_next_run(&name, next.timestamp_millis() as f64 / 1000.0);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.encode(),
    )
}

/// Reads the connections' states and sets their gauges; a store that
/// cannot be read leaves them as last set.
async fn set_connection_metrics(app: &App, document: Option<&crate::secrets::Document>) {
    let states = match app.engine.backend.connections.load().await {
        Ok(states) => states,
        Err(error) => {
            tracing::warn!(
                "{}: the connections' metrics keep their last values: {error}",
                error.code()
            );
            return;
        }
    };
    let schedules = app.schedules.snapshot();
    app.metrics
        .set_connections(&connections::statuses(&Sources {
            script: &app.script,
            environment: app.engine.env(),
            states: &states,
            document,
            schedules: &schedules,
            now: Utc::now(),
        }));
}

pub async fn catalog(State(app): State<Arc<App>>) -> Json<Value> {
    let program = app.script.program();
    let states = app.schedules.snapshot();
    let services: Vec<Value> = program
        .services
        .iter()
        .map(|service| {
            let endpoints: Vec<Value> = service
                .endpoints
                .iter()
                .map(|endpoint| {
                    let schedules: Vec<&str> = program
                        .schedules
                        .iter()
                        .filter(|s| {
                            s.endpoint.as_ref().is_some_and(|e| {
                                e.service.text == service.name.text && e.endpoint.text == endpoint.name.text
                            })
                        })
                        .map(|s| s.name.as_str())
                        .collect();
                    json!({
                        "name": endpoint.name.text,
                        "path": format!("/api/services/{}/{}", service.name.text, endpoint.name.text),
                        "description": endpoint.description.as_ref().map(|d| d.value.clone()),
                        "methods": endpoint.methods.iter().map(|m| m.text.clone()).collect::<Vec<_>>(),
                        "log": endpoint.log_enabled(),
                        "schedules": schedules,
                        // The declared contract, for the explorer's form;
                        // null when the endpoint takes any parameter.
                        "params": endpoint.params.as_ref().map(|params| {
                            params
                                .iter()
                                .map(|p| json!({
                                    "name": p.name.text,
                                    "type": p.type_name.text,
                                    "required": p.required(),
                                    "default": p.default.as_ref().and_then(crate::check::values::constant),
                                }))
                                .collect::<Vec<_>>()
                        }),
                        "response": endpoint.response.is_some(),
                    })
                })
                .collect();
            json!({"name": service.name.text, "endpoints": endpoints})
        })
        .collect();
    let schedules: Vec<Value> = app
        .schedules
        .specs()
        .iter()
        .map(|schedule| {
            let state = states.get(&schedule.name).cloned().unwrap_or_default();
            json!({
                "name": schedule.name,
                "endpoint": schedule.endpoint_key(),
                "service_account": schedule.account,
                "timing": schedule.describe(),
                "enabled": schedule.enabled,
                "next_run_at": state.next_run_at,
                "last_run_at": state.last_run_at,
                "last_outcome": state.last_outcome,
            })
        })
        .collect();
    Json(json!({"environment": app.engine.env(), "services": services, "schedules": schedules}))
}

pub async fn whoami(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let caller = authenticate(&app, &headers).await?;
    let identity = app
        .script
        .identity(&caller.identity)
        .expect("authenticate checks it exists");
    let program = app.script.program();
    let can_run: Vec<String> = program
        .services
        .iter()
        .flat_map(|s| s.endpoints.iter().map(move |e| (s, e)))
        .filter(|(s, e)| app.script.can_run(identity, &s.name.text, &e.name.text))
        .map(|(s, e)| format!("{}.{}", s.name.text, e.name.text))
        .collect();
    let can_read: Vec<String> = program
        .secrets
        .iter()
        .filter(|s| app.script.can_read_secret(identity, &s.name.text))
        .map(|s| s.name.text.clone())
        .collect();
    let can_read_status: Vec<String> = program
        .oauth_clients
        .iter()
        .filter(|c| app.script.can_read_status(identity, &c.name.text))
        .map(|c| c.name.text.clone())
        .collect();
    Ok(Json(json!({
        "identity": caller.identity,
        "kind": match identity.kind { IdentityKind::User => "user", IdentityKind::ServiceAccount => "service_account" },
        "key": caller.key_id,
        "roles": identity.roles.iter().map(|r| r.text.clone()).collect::<Vec<_>>(),
        "can_run": can_run,
        "can_read": can_read,
        "can_read_status": can_read_status,
    })))
}

/// `METHOD /api/services/SERVICE/ENDPOINT`: runs the endpoint as the caller.
pub async fn run_endpoint(
    State(app): State<Arc<App>>,
    Path((service, endpoint)): Path<(String, String)>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // The body is read only once the key and the method are checked: a
    // caller without a key never makes the server hold its body.
    let key = format!("{service}.{endpoint}");
    let Some(declared) = app.script.endpoint(&service, &endpoint) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_endpoint",
            format!("no endpoint `{key}`"),
        ));
    };
    let caller = authenticate(&app, &headers).await?;
    if !declared.allows(method.as_str()) {
        let allow: Vec<&str> = declared.methods.iter().map(|m| m.as_str()).collect();
        let mut error = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("`{key}` allows {}", allow.join(", ")),
        );
        error.allow = Some(allow.join(", "));
        return Err(error);
    }
    let mut params: BTreeMap<String, Value> = BTreeMap::new();
    let mut run_async = false;
    let mut connection = None;
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if name == "async" {
            run_async = matches!(value.as_ref(), "true" | "1" | "yes");
        } else if name == crate::check::accounts::RESERVED_PARAM {
            connection = Some(value.into_owned());
        } else {
            params.insert(name.into_owned(), Value::String(value.into_owned()));
        }
    }
    let body = read_body(&app.limits, &headers, body).await?;
    params.extend(body_params(&headers, &body)?);
    let request = RunRequest {
        service,
        endpoint,
        identity: caller.identity.clone(),
        method: method.as_str().to_string(),
        params,
        dry_run: false,
        trigger: Trigger::Http,
        due_at: None,
        replay: None,
        force: false,
        connection,
    };
    // A key limited to some connected accounts reaches no other: 404, as
    // for one that does not exist.
    if let (Some(id), false) = (&request.connection, caller.reach.is_all())
        && let Some(client) = app.engine.per_account_client(&key)
    {
        let account = crate::backend::ConnectionKey {
            client: client.to_string(),
            connection_id: id.clone(),
        };
        let state = app
            .engine
            .backend
            .connections
            .load_one(&account)
            .await
            .map_err(store_unavailable)?;
        if !state.is_some_and(|s| caller.reach.reaches(&account, &s)) {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_connection",
                format!("`{client}` has no connection `{id}`"),
            ));
        }
    }
    let updates_secrets = app
        .engine
        .updates_secrets(&request.service, &request.endpoint);
    let admitted = match app.engine.admit(request) {
        Ok(admitted) => admitted,
        Err(refusal) => {
            let denied = refusal.kind == crate::run::RefusalKind::Denied;
            let status = if denied {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::BAD_REQUEST
            };
            let code = if denied { "forbidden" } else { "bad_request" };
            let code = match refusal.code {
                "svc::run::invalid_param" => "invalid_param",
                "svc::run::connection_required" => "connection_required",
                "svc::run::not_per_account" => "not_per_account",
                "svc::connection::invalid_id" => "invalid_connection_id",
                _ => code,
            };
            let mut error = ApiError::new(status, code, refusal.message);
            if let Some(help) = refusal.help {
                let mut details = serde_json::Map::new();
                details.insert("help".into(), json!(help));
                error.details = Some(details);
            }
            return Err(error);
        }
    };
    // The server's store lacks a value the run would send: the caller
    // cannot fix that, the operator can (`svc secret set`).
    match app.engine.preflight(admitted.request()).await {
        Ok(None) => {}
        Ok(Some(refusal)) if matches!(refusal.kind, crate::run::RefusalKind::NeedsPerson(_)) => {
            return Err(needs_person(&refusal));
        }
        Ok(Some(refusal)) if refusal.kind == crate::run::RefusalKind::NotFound => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_connection",
                refusal.message,
            ));
        }
        Ok(Some(refusal)) => {
            tracing::warn!("{}: {}", refusal.code, refusal.message);
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "missing_value",
                refusal.message,
            ));
        }
        Err(error) => return Err(store_unavailable(error)),
    }
    if run_async {
        let id = format!(
            "{:016x}",
            getrandom::u64().unwrap_or_else(|_| fastrand::u64(..))
        );
        match app
            .engine
            .backend
            .jobs
            .start(&id, &caller.identity, &key)
            .await
        {
            Ok(()) => {}
            Err(JobRefused::Full { max }) => {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too_many_jobs",
                    format!(
                        "{max} asynchronous runs are still running, the most this server keeps; \
                         try again when one finishes, or run without `async`"
                    ),
                ));
            }
            Err(JobRefused::Failed(error)) => return Err(store_unavailable(error)),
        }
        let job_app = app.clone();
        let job_id = id.clone();
        app.tracker.spawn(async move {
            let finished = job_app.engine.run(admitted).await;
            job_app.finished(&finished.record, None);
            let record =
                serde_json::to_value(answered_record(finished.record)).unwrap_or(Value::Null);
            if let Err(e) = job_app.engine.backend.jobs.finish(&job_id, record).await {
                tracing::warn!("cannot record the end of job {job_id}: {e}");
            }
        });
        let url = format!("/api/jobs/{id}");
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({"job": id, "status": "running", "url": url})),
        )
            .into_response());
    }
    let finished = if updates_secrets {
        // A run the client abandons still finishes: it may be writing secrets.
        let run_app = app.clone();
        app.tracker
            .spawn(async move { run_app.engine.run(admitted).await })
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the run stopped unexpectedly",
                )
            })?
    } else {
        // Nothing to protect: run here, without waking another thread.
        app.engine.run(admitted).await
    };
    let status = match finished.record.outcome {
        Outcome::Success => StatusCode::OK,
        Outcome::Failed => failed_run_status(finished.record.error.as_ref()),
        Outcome::Denied => StatusCode::FORBIDDEN,
    };
    // An endpoint with a declared response answers it, with its status;
    // the run's record stays in the logs (the header names it).
    if let (Outcome::Success, Some(answer)) = (finished.record.outcome, &finished.answer) {
        let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
        app.finished(&finished.record, Some(status.as_u16()));
        let mut response = (status, Json(answer.body.clone())).into_response();
        if let Ok(id) = axum::http::HeaderValue::from_str(&finished.record.id) {
            response.headers_mut().insert("x-svc-run", id);
        }
        return Ok(response);
    }
    app.finished(&finished.record, Some(status.as_u16()));
    Ok((status, Json(answered_record(finished.record))).into_response())
}

/// The status of a failed run: 409 when the recovery journal holds an
/// answer that must be stored first (nothing was sent); 503 when the
/// backend was away or the run lost its lock (nothing was written, and
/// the caller may try again); 502 for anything else the run met.
pub fn failed_run_status(error: Option<&crate::backend::ErrorReport>) -> StatusCode {
    match error.map(|e| e.diagnostic.as_str()) {
        Some("svc::run::unsettled_journal") => StatusCode::CONFLICT,
        Some("svc::backend::unavailable" | "svc::run::lock_lost") => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        _ => StatusCode::BAD_GATEWAY,
    }
}

/// Reads a request body of at most `max_body_bytes` within `body_timeout`:
/// 413 when it is (or says it is) larger, 408 when it comes too slowly.
pub(super) async fn read_body(
    limits: &super::Limits,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, ApiError> {
    let max = limits.max_body_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body is larger than {max} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max as u64) {
        return Err(too_large());
    }
    let read = async {
        let mut body = body;
        let mut out = Vec::with_capacity(declared.map_or(0, |n| n as usize));
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_body",
                    "the body could not be read",
                )
            })?;
            if let Ok(data) = frame.into_data() {
                if out.len() + data.len() > max {
                    return Err(too_large());
                }
                out.extend_from_slice(&data);
            }
        }
        Ok(Bytes::from(out))
    };
    tokio::time::timeout(limits.body_timeout, read)
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "the body did not arrive within {}",
                    crate::syntax::duration::format(limits.body_timeout)
                ),
            ))
        })
}

/// The fields of a JSON object or form body, as parameters.
fn body_params(headers: &HeaderMap, body: &Bytes) -> Result<BTreeMap<String, Value>, ApiError> {
    if body.is_empty() {
        return Ok(BTreeMap::new());
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        return Ok(url::form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map.into_iter().collect()),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_body",
            "the body must be a JSON object or a form of parameters",
        )),
    }
}

pub async fn job(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let caller = authenticate(&app, &headers).await?;
    let view = app
        .engine
        .backend
        .jobs
        .view(&id, &caller.identity)
        .await
        .map_err(store_unavailable)?;
    match view {
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_job",
            format!("no job `{id}`"),
        )),
        Some(Err(())) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this job was started by someone else",
        )),
        Some(Ok(view)) => Ok(Json(serde_json::to_value(view).unwrap_or(Value::Null))),
    }
}

pub async fn endpoint_logs(
    State(app): State<Arc<App>>,
    Path((service, endpoint)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let caller = authenticate(&app, &headers).await?;
    let key = format!("{service}.{endpoint}");
    if app.script.endpoint(&service, &endpoint).is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_endpoint",
            format!("no endpoint `{key}`"),
        ));
    }
    let identity = app
        .script
        .identity(&caller.identity)
        .expect("authenticated");
    if !app.script.can_run(identity, &service, &endpoint) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "`{}` may not run `{key}`, so may not read its log",
                caller.identity
            ),
        ));
    }
    let count = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "n")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(20)
        .min(1000);
    // From the end of the log: memory holds the entries asked for, not
    // the log.
    let entries = app
        .engine
        .backend
        .logs
        .read_last(LogName::Endpoint(&key), count)
        .await
        .map_err(|e| {
            tracing::error!("cannot read the log of `{key}`: {e}");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "log_unreadable",
                "the endpoint's log cannot be read; the server's log says why",
            )
        })?;
    let entries: Vec<_> = entries.into_iter().map(public_record).collect();
    Ok(Json(json!({"endpoint": key, "entries": entries})))
}

pub async fn list_secrets(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authenticate(&app, &headers).await?;
    let document = store_document(&app, ReadAt::Now).await?;
    let now = Utc::now();
    let secrets: Vec<Value> = document
        .secrets
        .iter()
        .map(|(name, entry)| {
            json!({
                "name": name,
                "version": entry.version,
                "updated_at": entry.updated_at,
                "updated_by": entry.updated_by,
                "expires_at": entry.expires_at,
                "age_seconds": entry.updated_at.map(|t| (now - t).num_seconds()),
                "expires_in_seconds": entry.expires_at.map(|t| (t - now).num_seconds()),
            })
        })
        .collect();
    Ok(Json(json!({"secrets": secrets})))
}

/// `GET /api/secrets/NAME`: the value, if the caller may read it.
///
/// The hot path of every app that uses svc, so it asks a shared database
/// nothing before the value is found: the key and the value come from what
/// this replica knows ([`ReadAt::Known`]). The audit line, which must be
/// durable before the value leaves, comes back with the environment's
/// revision as of its commit; a read that used an older state reads again,
/// from the store as it is then. So a value committed before the read began
/// (on any replica) is never answered with an older one, and a key revoked
/// anywhere is refused at once.
pub async fn read_secret(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let read_from = app.engine.backend.secrets.cached_revision();
    let (caller, entry) = read_value(&app, &headers, &name, ReadAt::Known).await?;
    // Recorded before the value leaves, or it does not leave.
    let confirmed = app.audit(&caller, &name, "read").await.map_err(|error| {
        // A database that does not answer is the backend's outage, as for
        // any other call; a log that refuses the line (a full disk, a
        // revoked privilege) is the audit's.
        let code = if matches!(error, crate::secrets::Error::Unavailable { .. }) {
            "backend_unavailable"
        } else {
            "audit_unavailable"
        };
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            code,
            format!(
                "the read of `{name}` cannot be recorded in the audit log, so it is refused; the \
                 server's log says why"
            ),
        )
    })?;
    let entry = match (read_from, confirmed) {
        (Some(read_from), Some(confirmed)) if confirmed > read_from => {
            match read_value(&app, &headers, &name, ReadAt::Known).await {
                Ok((_, entry)) => entry,
                Err(refused) => {
                    // The line says a value was read; none left.
                    let _ = app.audit(&caller, &name, "read_withdrawn").await;
                    return Err(refused);
                }
            }
        }
        _ => entry,
    };
    let body = json!({
        "name": name,
        "value": entry.value.expose(),
        "version": entry.version,
        "updated_at": entry.updated_at,
        "expires_at": entry.expires_at,
    });
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// One read of a secret for `read_secret`, up to its audit: the caller, its
/// permission, and the value, as `at` says. A secret without a value in a
/// store read as known is looked up in the store as it is now: a value set
/// on another replica a moment ago is not refused for this one's cache.
async fn read_value(
    app: &Arc<App>,
    headers: &HeaderMap,
    name: &str,
    at: ReadAt,
) -> Result<(Caller, crate::secrets::Entry), ApiError> {
    let mut caller = authenticate_at(app, headers, at).await?;
    let identity = app
        .script
        .identity(&caller.identity)
        .expect("authenticated");
    if !app.script.can_read_secret(identity, name) {
        if at == ReadAt::Known {
            // A refusal is not confirmed by an audit line: the key is
            // checked as it is now first (a revoked key is a 401).
            return Box::pin(read_value(app, headers, name, ReadAt::Now)).await;
        }
        // Refused either way: a record that cannot be written changes nothing.
        let _ = app.audit(&caller, name, "denied").await;
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "`{}` may not read `{name}`; grant `read_secret {name}` to one of its roles",
                caller.identity
            ),
        ));
    }
    let mut entry = if app.engine.refresher(name).is_some() {
        let mut fresh = None;
        if at == ReadAt::Known {
            let cached = store_document(app, ReadAt::Known).await?.get(name).cloned();
            if app.engine.fresh_enough(name, None, cached.as_ref()) {
                // What the refresh task would answer: no task, no second look.
                fresh = Some(cached);
            } else {
                // A refresh is done before the audit line can confirm the
                // key: a key that would cause one is checked as it is now first.
                caller = authenticate_at(app, headers, ReadAt::Now).await?;
            }
        }
        match fresh {
            Some(cached) => cached,
            None => fresh_entry(app, &caller, name, None, at).await?,
        }
    } else {
        store_document(app, at).await?.get(name).cloned()
    };
    if entry.is_none() && at == ReadAt::Known {
        entry = store_document(app, ReadAt::Now).await?.get(name).cloned();
    }
    let Some(entry) = entry else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_value",
            format!("`{name}` has no value in this environment"),
        ));
    };
    Ok((caller, entry))
}

/// A run refused because a connection it refreshes needs a person: 409,
/// with the connection's state as the code, and the command that fixes it.
fn needs_person(refusal: &crate::run::Refusal) -> ApiError {
    let code = match refusal.kind {
        crate::run::RefusalKind::NeedsPerson(state) => state.as_str(),
        _ => "conflict",
    };
    let mut error = ApiError::new(StatusCode::CONFLICT, code, refusal.message.clone());
    if let Some(help) = &refusal.help {
        let mut details = serde_json::Map::new();
        details.insert("help".into(), json!(help));
        error.details = Some(details);
    }
    error
}

/// A secret declared with `refreshed_by`, refreshed first when it expires
/// within `min_valid` (docs/serve.md). The refresh runs on a task of its
/// own: a reader that goes away does not stop a run that writes secrets.
pub(super) async fn fresh_entry(
    app: &Arc<App>,
    caller: &Caller,
    name: &str,
    account: Option<&crate::backend::ConnectionKey>,
    at: ReadAt,
) -> Result<Option<crate::secrets::Entry>, ApiError> {
    use crate::run::refresh::FreshError;
    let task_app = app.clone();
    let task_name = name.to_string();
    let task_account = account.cloned();
    let read = app
        .tracker
        .spawn(async move {
            task_app
                .engine
                .read_fresh_for(&task_name, task_account.as_ref(), at)
                .await
        })
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the refresh stopped unexpectedly",
            )
        })?;
    match read {
        Ok(fresh) => {
            if let Some(record) = &fresh.refreshed {
                app.finished(record, None);
            }
            Ok(fresh.entry)
        }
        Err(FreshError::Store(error)) => Err(store_unavailable(error)),
        Err(FreshError::NeedsPerson(refusal)) => {
            let _ = app.audit_in(caller, name, "refresh_refused", account).await;
            Err(needs_person(&refusal))
        }
        Err(FreshError::Failed {
            code,
            message,
            help,
            record,
        }) => {
            let _ = app.audit_in(caller, name, "refresh_failed", account).await;
            let mut details = serde_json::Map::new();
            let backend_down = code == "svc::backend::unavailable";
            let public_message = if code.starts_with("svc::store::") || backend_down {
                tracing::error!("refresh of `{name}`: {code}: {message}");
                format!("the refresh of `{name}` failed ({code}); the server's log says why")
            } else {
                message
            };
            details.insert("cause".into(), json!(code));
            if let Some(help) = help.filter(|_| !code.starts_with("svc::store::")) {
                details.insert("help".into(), json!(help));
            }
            if let Some(record) = record {
                app.finished(&record, None);
                details.insert("run".into(), json!(record.id));
            }
            // Nothing was refreshed: the caller may try again when the
            // backend is back, or once the journal is settled.
            let (status, api_code) = match code {
                "svc::run::unsettled_journal" => (StatusCode::CONFLICT, "unsettled_journal"),
                "svc::run::lock_lost" => (StatusCode::SERVICE_UNAVAILABLE, "refresh_failed"),
                _ if backend_down => (StatusCode::SERVICE_UNAVAILABLE, "refresh_failed"),
                _ => (StatusCode::BAD_GATEWAY, "refresh_failed"),
            };
            let mut error = ApiError::new(status, api_code, public_message);
            error.details = Some(details);
            Err(error)
        }
    }
}

pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such path; see /api/services/openapi.json",
    )
}
