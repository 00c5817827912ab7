//! What `/healthz` and `/metrics` say about the server: whether the
//! schedules can run. The scheduler task reports its own state; a
//! supervisor notices when it panics or returns while the server runs.

use std::sync::Mutex;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// The scheduler's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchedulerState {
    /// The task has not reported yet.
    Starting,
    /// This process runs the schedules.
    Running,
    /// Another process holds the scheduler lock; this one takes over if it stops.
    Standby,
    /// Deliberately not running: `--no-schedules`, or no enabled schedule.
    Off { reason: &'static str },
    /// Schedules should run and cannot. `reason` says why without local
    /// paths (callers need no key); the server's stderr has the details.
    Failed { code: &'static str, reason: String },
}

impl SchedulerState {
    pub const NAMES: [&'static str; 5] = ["starting", "running", "standby", "off", "failed"];

    pub fn name(&self) -> &'static str {
        match self {
            SchedulerState::Starting => "starting",
            SchedulerState::Running => "running",
            SchedulerState::Standby => "standby",
            SchedulerState::Off { .. } => "off",
            SchedulerState::Failed { .. } => "failed",
        }
    }
}

pub struct Health {
    scheduler: Mutex<SchedulerState>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            scheduler: Mutex::new(SchedulerState::Starting),
        }
    }
}

impl Health {
    pub fn scheduler(&self) -> SchedulerState {
        self.scheduler
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_scheduler(&self, state: SchedulerState) {
        *self.scheduler.lock().unwrap_or_else(|p| p.into_inner()) = state;
    }

    /// Marks the scheduler failed unless it already said why it stopped;
    /// returns whether it did.
    fn scheduler_ended(&self, code: &'static str, reason: &str) -> bool {
        let mut state = self.scheduler.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(
            *state,
            SchedulerState::Off { .. } | SchedulerState::Failed { .. }
        ) {
            return false;
        }
        *state = SchedulerState::Failed {
            code,
            reason: reason.to_string(),
        };
        true
    }

    /// Whether the server is healthy: every state but `failed`.
    pub fn ok(&self) -> bool {
        !matches!(self.scheduler(), SchedulerState::Failed { .. })
    }

    /// The `/healthz` document.
    pub fn document(&self, state_file_failing: bool) -> Value {
        let scheduler = self.scheduler();
        let mut out = json!({"state": scheduler.name()});
        match &scheduler {
            SchedulerState::Off { reason } => out["reason"] = json!(reason),
            SchedulerState::Failed { code, reason } => {
                out["code"] = json!(code);
                out["reason"] = json!(reason);
            }
            _ => {}
        }
        if state_file_failing {
            out["state_file"] = json!("unwritable");
        }
        json!({
            "status": if self.ok() { "ok" } else { "unavailable" },
            "scheduler": out,
        })
    }
}

/// Waits for the scheduler task; if it panics, or returns while the server
/// is not shutting down and without having said why, health says so.
pub async fn supervise(
    health: &Health,
    task: tokio::task::JoinHandle<()>,
    shutdown: &CancellationToken,
) {
    match task.await {
        Ok(()) if shutdown.is_cancelled() => {}
        Ok(()) => {
            // A scheduler with nothing to run says so and stops: no error.
            if health.scheduler_ended(
                "scheduler_stopped",
                "the scheduler stopped unexpectedly; the server's log says why",
            ) {
                tracing::error!("the scheduler stopped unexpectedly; schedules do not run");
            }
        }
        Err(error) => {
            let why = match error.try_into_panic() {
                Ok(panic) => panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into()),
                Err(error) => error.to_string(),
            };
            tracing::error!("the scheduler stopped: {why}; schedules do not run");
            health.set_scheduler(SchedulerState::Failed {
                code: "scheduler_panicked",
                reason: "the scheduler stopped on an internal error; the server's log says why"
                    .into(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_or_returning_scheduler_fails_health() {
        let health = Health::default();
        let shutdown = CancellationToken::new();
        health.set_scheduler(SchedulerState::Running);
        let task = tokio::spawn(async { panic!("boom") });
        supervise(&health, task, &shutdown).await;
        assert!(!health.ok());
        let document = health.document(false);
        assert_eq!(document["scheduler"]["code"], "scheduler_panicked");
        assert_eq!(document["status"], "unavailable");

        let health = Health::default();
        health.set_scheduler(SchedulerState::Running);
        supervise(&health, tokio::spawn(async {}), &shutdown).await;
        assert_eq!(
            health.document(false)["scheduler"]["code"],
            "scheduler_stopped"
        );

        // A scheduler that said why it stopped keeps its reason.
        let health = Health::default();
        health.set_scheduler(SchedulerState::Off {
            reason: "no enabled schedules",
        });
        supervise(&health, tokio::spawn(async {}), &shutdown).await;
        assert!(health.ok());
        assert_eq!(health.document(false)["scheduler"]["state"], "off");

        // Stopping at shutdown is not a failure.
        let health = Health::default();
        health.set_scheduler(SchedulerState::Running);
        shutdown.cancel();
        supervise(&health, tokio::spawn(async {}), &shutdown).await;
        assert!(health.ok());
    }
}
