//! Asynchronous runs (`?async=true`): their state, kept for an hour.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

const KEEP: Duration = Duration::from_secs(3600);

#[derive(Clone, Serialize)]
pub struct JobView {
    pub job: String,
    pub status: &'static str,
    pub endpoint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<serde_json::Value>,
}

struct Job {
    owner: String,
    endpoint: String,
    record: Option<serde_json::Value>,
    created: Instant,
}

#[derive(Default)]
pub struct Jobs {
    jobs: Mutex<HashMap<String, Job>>,
}

impl Jobs {
    pub fn start(&self, id: &str, owner: &str, endpoint: &str) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.retain(|_, job| job.created.elapsed() < KEEP);
        jobs.insert(
            id.to_string(),
            Job {
                owner: owner.to_string(),
                endpoint: endpoint.to_string(),
                record: None,
                created: Instant::now(),
            },
        );
    }

    pub fn finish(&self, id: &str, record: serde_json::Value) {
        if let Some(job) = self
            .jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(id)
        {
            job.record = Some(record);
        }
    }

    /// The job, if it exists; `Err(())` if it belongs to someone else.
    pub fn view(&self, id: &str, caller: &str) -> Option<Result<JobView, ()>> {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        let job = jobs.get(id)?;
        if job.owner != caller {
            return Some(Err(()));
        }
        Some(Ok(JobView {
            job: id.to_string(),
            status: if job.record.is_some() {
                "done"
            } else {
                "running"
            },
            endpoint: job.endpoint.clone(),
            record: job.record.clone(),
        }))
    }
}
