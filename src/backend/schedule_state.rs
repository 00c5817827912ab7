//! What is remembered of each schedule (where: the backend's business).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::backend::Outcome;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScheduleState {
    #[serde(default)]
    pub last_run_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_outcome: Option<Outcome>,
    #[serde(default)]
    pub last_run_id: Option<String>,
    #[serde(default)]
    pub last_success_at: Option<DateTime<Utc>>,
    /// Failed runs since the last success.
    #[serde(default)]
    pub failures: u32,
    /// When it was due next, as last computed (for people and `schedule list`).
    #[serde(default)]
    pub next_run_at: Option<DateTime<Utc>>,
    /// Why the last fire was skipped (its connection needs a person).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_skip_reason: Option<String>,
}

impl ScheduleState {
    /// Records a finished run.
    pub fn finished(&mut self, at: DateTime<Utc>, outcome: Outcome, id: &str) {
        self.last_run_at = Some(at);
        self.last_outcome = Some(outcome);
        self.last_run_id = Some(id.to_string());
        self.last_skip_reason = None;
        if outcome == Outcome::Success {
            self.last_success_at = Some(at);
            self.failures = 0;
        } else {
            self.failures = self.failures.saturating_add(1);
        }
    }

    /// A fire that was not started, and why: no run, no outcome, and not
    /// a failure, so no retry comes sooner and no `on_failure` runs.
    pub fn skipped(&mut self, at: DateTime<Utc>, reason: String) {
        self.last_run_at = Some(at);
        self.last_outcome = None;
        self.last_run_id = None;
        self.last_skip_reason = Some(reason);
    }
}
