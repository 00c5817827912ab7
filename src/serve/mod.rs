//! Serve: endpoints over HTTP for other apps, the API explorer, metrics,
//! and the scheduler, in one long-running process per environment.

pub mod api;
pub mod connections;
pub mod connections_api;
pub mod consent;
mod framing;
pub mod health;
pub mod keep_alive;
pub mod metrics;
pub mod scheduler;

use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get, post};
use serde_json::{Value, json};
use tokio_util::task::TaskTracker;

use crate::program::Script;
use crate::run::Engine;

pub use scheduler::Schedules;

/// The limits `svc serve` was given (its flags).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Asynchronous jobs kept at once (running and finished).
    pub max_jobs: usize,
    /// The largest request body read.
    pub max_body_bytes: usize,
    /// How long reading a request body may take.
    pub body_timeout: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_jobs: crate::backend::jobs::DEFAULT_MAX_JOBS,
            max_body_bytes: 1 << 20,
            body_timeout: std::time::Duration::from_secs(30),
        }
    }
}

/// Everything the handlers and the scheduler share.
pub struct App {
    pub script: Arc<Script>,
    pub engine: Engine,
    pub limits: Limits,
    pub metrics: metrics::Metrics,
    /// Runs started by requests and schedules, waited for at shutdown.
    pub tracker: TaskTracker,
    pub schedules: Schedules,
    /// Whether the schedules run, for `/healthz` and `/metrics`.
    pub health: health::Health,
    pub openapi: Value,
    /// When the server started: overdue schedule runs count their lateness from here.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// The last audit record could not be written: reads are refused, and
    /// `/readyz` fails, until one can.
    audit_failing: std::sync::atomic::AtomicBool,
    /// A scrape's read of the store runs behind it (`api::metrics`): one at a time.
    pub metrics_reading: std::sync::atomic::AtomicBool,
    /// Hosted consent (`--public-url`); `None`: off.
    pub consent: Option<consent::Hosted>,
}

impl App {
    pub fn new(engine: Engine, schedules: Schedules, limits: Limits) -> App {
        let script = engine.script.clone();
        App {
            openapi: crate::compile::openapi::document(&script.checked),
            script,
            engine,
            limits,
            metrics: metrics::Metrics::default(),
            tracker: TaskTracker::new(),
            schedules,
            health: health::Health::default(),
            started_at: chrono::Utc::now(),
            audit_failing: std::sync::atomic::AtomicBool::new(false),
            metrics_reading: std::sync::atomic::AtomicBool::new(false),
            consent: None,
        }
    }

    /// A run ended: counted in the metrics, and one line in the server's
    /// log (from the redacted record: names, codes and times only).
    pub fn finished(&self, record: &crate::backend::RunRecord, http_status: Option<u16>) {
        self.metrics.record(record);
        let trigger = record.trigger.describe();
        let error = record.error.as_ref().map(|e| e.diagnostic.as_str());
        let outcome = match record.outcome {
            crate::backend::Outcome::Success => "success",
            crate::backend::Outcome::Failed => "failed",
            crate::backend::Outcome::Denied => "denied",
        };
        macro_rules! line {
            ($level:ident) => {
                tracing::$level!(
                    env = record.environment.as_str(),
                    endpoint = record.endpoint.as_str(),
                    trigger = trigger.as_str(),
                    identity = record.identity.as_str(),
                    outcome,
                    status = http_status,
                    duration_ms = record.duration_ms,
                    run_id = record.id.as_str(),
                    error,
                    "run"
                )
            };
        }
        match record.outcome {
            crate::backend::Outcome::Success => line!(info),
            _ => line!(warn),
        }
    }

    /// Records who read (or was refused) which secret, in the audit log of
    /// the environment. An error means the record was not written: a read
    /// that would hand out a value must then be refused (as Vault does).
    /// On a shared backend it returns the environment's revision as of the
    /// record's commit ([`crate::backend::LogStore::audit`]).
    pub async fn audit(
        &self,
        caller: &api::Caller,
        secret: &str,
        action: &str,
    ) -> Result<Option<crate::backend::Revision>, crate::secrets::Error> {
        self.audit_in(caller, secret, action, None).await
    }

    /// As [`App::audit`], of a connected account's value.
    pub async fn audit_in(
        &self,
        caller: &api::Caller,
        secret: &str,
        action: &str,
        account: Option<&crate::backend::ConnectionKey>,
    ) -> Result<Option<crate::backend::Revision>, crate::secrets::Error> {
        let mut line = json!({
            "at": crate::secrets::document::now(),
            "identity": caller.identity,
            "key": caller.key_id,
            "secret": secret,
            "action": action,
            "via": "http",
        });
        if let Some(key) = account {
            line["client"] = key.client.clone().into();
            line["connection_id"] = key.connection_id.clone().into();
        }
        self.record_audit(&line).await
    }

    async fn record_audit(
        &self,
        line: &Value,
    ) -> Result<Option<crate::backend::Revision>, crate::secrets::Error> {
        use std::sync::atomic::Ordering;
        match self.engine.backend.logs.audit(line).await {
            Ok(revision) => {
                if self.audit_failing.swap(false, Ordering::SeqCst) {
                    tracing::info!("the audit log takes records again: reads are served");
                }
                Ok(revision)
            }
            Err(error) => {
                self.audit_failing.store(true, Ordering::SeqCst);
                tracing::error!(
                    "{}: cannot write the audit log, so reads of secrets are refused: {error}",
                    error.code()
                );
                Err(error)
            }
        }
    }

    /// Whether the audit log takes records. While the last one failed, a
    /// probe record (no secret, no caller) is tried, so that `/readyz`
    /// comes back by itself once the disk or the database does.
    pub async fn audit_ready(&self) -> bool {
        if !self.audit_failing.load(std::sync::atomic::Ordering::SeqCst) {
            return true;
        }
        let probe = json!({
            "at": crate::secrets::document::now(),
            "action": "audit_probe",
        });
        self.record_audit(&probe).await.is_ok()
    }
}

/// How often `svc serve` copies the answers it kept while the database
/// could not be reached into the database's journal.
const SPOOL_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Copies the answers kept on this host while the database was away into
/// its recovery journal as soon as it answers again, so that every
/// replica's next run of the endpoint settles them (`run::settle`), not
/// only this one's.
pub async fn copy_spooled_answers(app: Arc<App>, shutdown: tokio_util::sync::CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(SPOOL_EVERY) => {}
        }
        if let Err(e) = app.engine.backend.journal.flush().await {
            tracing::debug!("the journal's spool waits for the database: {e}");
        }
    }
}

/// The HTTP routes.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/metrics", get(api::metrics))
        .route("/explorer", get(api::explorer))
        .route(
            "/favicon.ico",
            get(|| async { axum::http::StatusCode::NO_CONTENT }),
        )
        .route("/api/catalog", get(api::catalog))
        .route("/api/whoami", get(api::whoami))
        .route("/api/services/openapi.json", get(api::openapi))
        .route("/api/services/{service}/{endpoint}", any(api::run_endpoint))
        .route(
            "/api/services/{service}/{endpoint}/logs",
            get(api::endpoint_logs),
        )
        .route("/api/jobs/{id}", get(api::job))
        .route("/api/secrets", get(api::list_secrets))
        .route("/api/secrets/{name}", get(api::read_secret))
        .route("/api/connections", get(connections_api::list))
        .route(
            "/api/connections/{client}/{connection_id}",
            get(connections_api::show)
                .patch(connections_api::patch)
                .delete(connections_api::delete),
        )
        .route(
            "/api/connections/{client}/{connection_id}/secrets/{name}",
            get(connections_api::read_secret),
        )
        .route("/api/connect/sessions", post(consent::create_session))
        .route("/connect/callback", get(consent::callback))
        .route("/connect/{token}", get(consent::open_link))
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn(api::log_refusals))
        .with_state(app)
}
