//! Serve: endpoints over HTTP for other apps, the API explorer, metrics,
//! and the scheduler, in one long-running process per environment.

pub mod api;
pub mod connections;
mod framing;
pub mod health;
pub mod keys;
pub mod metrics;
pub mod openapi;
pub mod scheduler;

use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get};
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
}

impl App {
    pub fn new(engine: Engine, schedules: Schedules, limits: Limits) -> App {
        let script = engine.script.clone();
        App {
            openapi: openapi::document(script.program()),
            script,
            engine,
            limits,
            metrics: metrics::Metrics::default(),
            tracker: TaskTracker::new(),
            schedules,
            health: health::Health::default(),
            started_at: chrono::Utc::now(),
        }
    }

    /// A run ended: counted in the metrics, and one line in the server's
    /// log (from the redacted record: names, codes and times only).
    pub fn finished(&self, record: &crate::run::RunRecord, http_status: Option<u16>) {
        self.metrics.record(record);
        let trigger = record.trigger.describe();
        let error = record.error.as_ref().map(|e| e.diagnostic.as_str());
        let outcome = match record.outcome {
            crate::run::Outcome::Success => "success",
            crate::run::Outcome::Failed => "failed",
            crate::run::Outcome::Denied => "denied",
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
            crate::run::Outcome::Success => line!(info),
            _ => line!(warn),
        }
    }

    /// Appends to the audit log who read (or was denied) which secret,
    /// never the value.
    pub async fn audit(&self, caller: &api::Caller, secret: &str, action: &str) {
        let line = json!({
            "at": crate::secrets::document::now(),
            "identity": caller.identity,
            "key": caller.key_id,
            "secret": secret,
            "action": action,
        });
        if let Err(e) = self.engine.backend.logs.audit(&line).await {
            tracing::warn!("cannot write the audit log: {e}");
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
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn(api::log_refusals))
        .with_state(app)
}
