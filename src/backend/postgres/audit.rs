//! The audit log on PostgreSQL, with group commit: every read that hands
//! out a secret waits until its line is durable, and the lines of reads
//! that come together are written in one statement and one commit.
//!
//! The first caller to find no write in flight writes what has queued up
//! (its own line first) on a task of its own, then what queued meanwhile,
//! until nothing waits; the others only queue and wait for the write that
//! takes their line. A line is never answered before its commit, and a
//! failed write fails each of its callers: the fail-closed audit holds.
//!
//! The statement that writes a group also reads the environment's revision
//! as of its snapshot, taken after every line of the group was queued: a
//! reader learns the revision at no cost, and a read made from this
//! replica's caches that is older reads again before its value leaves
//! (`serve::api::read_secret`). Replicas then agree without a statement per
//! read: a value committed before a read began is the value it returns.

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::{Database, KnownRevision, unavailable};
use crate::secrets::Error;

/// The most lines one statement writes.
const MAX_BATCH: usize = 256;

/// A line's answer: the environment's revision at its commit, or why it
/// was not written.
type Waiter = oneshot::Sender<Result<i64, Failure>>;

/// Why a group was not written: the database did not answer (an outage of
/// the backend), or it answered with a refusal (the audit's own failure:
/// a privilege taken away, a table that takes no row).
#[derive(Clone)]
enum Failure {
    Outage(String),
    Refused(String),
}

#[derive(Default)]
struct Queue {
    lines: Vec<(serde_json::Value, Waiter)>,
    writing: bool,
}

/// The writer's turn; if its task is cancelled (its runtime ends), the
/// turn goes, and the lines still queued fail instead of waiting for a
/// writer that will not come.
struct Writing {
    queue: Arc<Mutex<Queue>>,
    armed: bool,
}

impl Drop for Writing {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        queue.writing = false;
        for (_, waiter) in queue.lines.drain(..) {
            let _ = waiter.send(Err(Failure::Outage("the audit writer stopped".into())));
        }
    }
}

/// The audit lines of one environment, written in groups.
#[derive(Clone)]
pub struct GroupCommit {
    db: Database,
    env: String,
    queue: Arc<Mutex<Queue>>,
    /// The newest revision heard of, which each commit raises.
    known: KnownRevision,
}

impl GroupCommit {
    pub fn new(db: Database, env: &str, known: KnownRevision) -> GroupCommit {
        GroupCommit {
            db,
            env: env.to_string(),
            queue: Arc::default(),
            known,
        }
    }

    /// Appends a line; returns once it is durable, with the environment's
    /// revision as of its commit.
    pub async fn append(&self, line: &serde_json::Value) -> Result<i64, Error> {
        let (sender, answer) = oneshot::channel();
        let lead = {
            let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            queue.lines.push((line.clone(), sender));
            !std::mem::replace(&mut queue.writing, true)
        };
        if lead {
            // On a task of its own: a caller that goes away (a client that
            // hung up) does not leave the others waiting.
            let writer = self.clone();
            tokio::spawn(async move { writer.write_all().await });
        }
        match answer.await {
            Ok(Ok(revision)) => Ok(revision),
            Ok(Err(Failure::Outage(problem))) => Err(Error::Unavailable { problem, fix: None }),
            Ok(Err(Failure::Refused(problem))) => Err(Error::AuditUnavailable { problem }),
            Err(_) => Err(Error::Unavailable {
                problem: "the audit writer stopped".into(),
                fix: None,
            }),
        }
    }

    /// Writes what is queued, a group at a time, until nothing is.
    async fn write_all(&self) {
        let mut writing = Writing {
            queue: self.queue.clone(),
            armed: true,
        };
        loop {
            let group: Vec<(serde_json::Value, Waiter)> = {
                let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                if queue.lines.is_empty() {
                    // Under the same lock as the look: the next line
                    // finds no writer, and becomes one.
                    queue.writing = false;
                    writing.armed = false;
                    return;
                }
                let take = queue.lines.len().min(MAX_BATCH);
                queue.lines.drain(..take).collect()
            };
            let (lines, waiters): (Vec<_>, Vec<_>) = group.into_iter().unzip();
            let result = self.write(&lines).await;
            for waiter in waiters {
                let _ = waiter.send(result.clone());
            }
        }
    }

    async fn write(&self, lines: &[serde_json::Value]) -> Result<i64, Failure> {
        // The server's refusal of the statement (a privilege taken away, a
        // table that takes no row) is the audit's failure; a server that
        // is going away, out of resources or cancelling is an outage
        // (SQLSTATE classes 08, 53, 57, 58, XX), as is no answer at all.
        let refused = |error: tokio_postgres::Error| {
            let outage = error.as_db_error().is_none_or(|db| {
                matches!(&db.code().code()[..2], "08" | "53" | "57" | "58" | "XX")
            });
            let problem = unavailable(error).to_string();
            if outage {
                Failure::Outage(problem)
            } else {
                Failure::Refused(problem)
            }
        };
        let client = self
            .db
            .client()
            .await
            .map_err(|e| Failure::Outage(e.to_string()))?;
        let statement = client
            .prepare_cached(
                "WITH written AS (INSERT INTO svc_audit (env, line) \
                 SELECT $1, line FROM unnest($2::jsonb[]) AS line) \
                 SELECT revision FROM svc_environments WHERE name = $1",
            )
            .await
            .map_err(refused)?;
        let row = client
            .query_opt(&statement, &[&self.env, &lines])
            .await
            .map_err(refused)?
            .ok_or_else(|| {
                Failure::Refused(format!(
                    "the environment `{}` is not in the database",
                    self.env
                ))
            })?;
        let revision: i64 = row.get(0);
        self.known.heard(revision);
        Ok(revision)
    }
}
