//! Asynchronous runs (`?async=true`): their state, kept for an hour after
//! they finish, and at most `--max-jobs` at once. When the table is full
//! the oldest finished job makes room; when none has finished, a new
//! asynchronous run is refused.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

const KEEP: Duration = Duration::from_secs(3600);

/// How many jobs are kept unless `--max-jobs` says otherwise.
pub const DEFAULT_MAX_JOBS: usize = 1000;

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
}

#[derive(Default)]
struct Table {
    jobs: HashMap<String, Job>,
    /// Finished jobs, oldest first (they finish in this order, under the
    /// lock): the ones to expire and to evict, found without a scan.
    finished: VecDeque<(Instant, String)>,
}

impl Table {
    fn expire(&mut self, now: Instant) {
        while let Some((at, id)) = self.finished.front() {
            if now.duration_since(*at) < KEEP {
                break;
            }
            self.jobs.remove(id);
            self.finished.pop_front();
        }
    }
}

/// The table is full of running jobs.
#[derive(Debug, PartialEq, Eq)]
pub struct Full {
    pub max: usize,
}

pub struct Jobs {
    table: Mutex<Table>,
    max: usize,
}

impl Default for Jobs {
    fn default() -> Self {
        Jobs::new(DEFAULT_MAX_JOBS)
    }
}

impl Jobs {
    pub fn new(max: usize) -> Jobs {
        Jobs {
            table: Mutex::new(Table::default()),
            max: max.max(1),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a new running job, evicting the oldest finished one if the
    /// table is full; `Err(Full)` if every kept job is still running.
    pub fn start(&self, id: &str, owner: &str, endpoint: &str) -> Result<(), Full> {
        let mut table = self.table();
        table.expire(Instant::now());
        if table.jobs.len() >= self.max {
            let Some((_, oldest)) = table.finished.pop_front() else {
                return Err(Full { max: self.max });
            };
            table.jobs.remove(&oldest);
        }
        table.jobs.insert(
            id.to_string(),
            Job {
                owner: owner.to_string(),
                endpoint: endpoint.to_string(),
                record: None,
            },
        );
        Ok(())
    }

    pub fn finish(&self, id: &str, record: serde_json::Value) {
        let mut table = self.table();
        if let Some(job) = table.jobs.get_mut(id) {
            job.record = Some(record);
            table.finished.push_back((Instant::now(), id.to_string()));
        }
    }

    /// The job, if it exists; `Err(())` if it belongs to someone else.
    pub fn view(&self, id: &str, caller: &str) -> Option<Result<JobView, ()>> {
        let mut table = self.table();
        table.expire(Instant::now());
        let job = table.jobs.get(id)?;
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

    /// How many jobs are kept (running and finished).
    pub fn len(&self) -> usize {
        self.table().jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_finished_job_makes_room_and_running_ones_are_never_dropped() {
        let jobs = Jobs::new(3);
        for id in ["a", "b", "c"] {
            jobs.start(id, "bot", "app.slow").unwrap();
        }
        assert_eq!(jobs.start("d", "bot", "app.slow"), Err(Full { max: 3 }));
        jobs.finish("b", serde_json::json!({}));
        jobs.finish("a", serde_json::json!({}));
        // `b` finished first: it goes first.
        jobs.start("d", "bot", "app.slow").unwrap();
        assert!(jobs.view("b", "bot").is_none());
        assert!(jobs.view("a", "bot").is_some());
        jobs.start("e", "bot", "app.slow").unwrap();
        assert!(jobs.view("a", "bot").is_none());
        assert_eq!(jobs.start("f", "bot", "app.slow"), Err(Full { max: 3 }));
        assert_eq!(jobs.len(), 3);
        for id in ["c", "d", "e"] {
            assert_eq!(jobs.view(id, "bot").unwrap().unwrap().status, "running");
        }
        assert!(matches!(jobs.view("c", "viewer"), Some(Err(()))));
    }

    #[test]
    fn finished_jobs_expire_after_an_hour() {
        let jobs = Jobs::new(10);
        jobs.start("a", "bot", "app.slow").unwrap();
        jobs.finish("a", serde_json::json!({}));
        assert!(jobs.view("a", "bot").is_some());
        jobs.table()
            .expire(Instant::now() + KEEP + Duration::from_secs(1));
        assert!(jobs.view("a", "bot").is_none());
        assert!(jobs.is_empty());
    }
}
