//! Run locks and fire claims on PostgreSQL: session-level advisory locks,
//! every lock of a process on one database session of its own.
//!
//! **One session, outside the pool.** A lock lives as long as the session
//! that took it. When each held lock kept a pooled connection, a run held
//! one and then waited for a second to do its work: forty runs of forty
//! endpoints took the pool's connections and waited on each other until
//! the pool's timeout. One session holds any number of advisory locks, so
//! locks take no pooled connection, and runs take pooled connections only
//! while they work. In this process, runs of one endpoint queue on a local
//! mutex first: a session's advisory locks are re-entrant, so the local
//! mutex is what keeps two runs of this process apart.
//!
//! **A session can end while the process lives**: the database restarts or
//! fails over, an administrator terminates it (`pg_terminate_backend`), the
//! network is cut, or `idle_session_timeout` closes it. So:
//! - the session turns `idle_session_timeout` off for itself and sends a
//!   heartbeat, so it never idles out;
//! - every lock taken on a session that ended is lost ([`Held::lost`]), and
//!   the next lock opens a new session;
//! - a write under locks checks in its own transaction that each lock is
//!   still held by the session that took it ([`Fence`], checked by
//!   `stores::PgSecrets::apply_fenced`): a lost lock is never written under,
//!   whichever way it was lost and whether or not this process noticed.
//!
//! Before its first run lock after a start or an outage, a process copies
//! the answers its local spool kept into the database's journal
//! ([`super::journal::Spool::flush`]), so that every replica's admission
//! sees them before anyone sends the secret they replace.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::journal::Spool;
use super::{CALL_DEADLINE, Database, Session, lock_key, unavailable};
use crate::backend::{Fence, Held, LockFailure, Locks};
use crate::secrets::Error;

/// How often an idle lock session proves it is there.
const HEARTBEAT: Duration = Duration::from_secs(10);

/// How many local mutexes are kept before the unused ones go.
const LOCAL_PRUNE_AT: usize = 4096;

impl Session {
    /// One statement on the session, within the database's deadline.
    async fn ask(&self, db: &Database, sql: &str, key: i64) -> Result<bool, Error> {
        db.within(async {
            let row = self
                .client
                .query_one(sql, &[&key])
                .await
                .map_err(unavailable)?;
            Ok(row.get::<_, bool>(0))
        })
        .await
    }
}

/// Session-level advisory locks, all on one session.
pub(super) struct PgLocks {
    db: Database,
    env: String,
    /// Its mutex is held while the session opens: two callers never open two.
    session: tokio::sync::Mutex<Option<Arc<Session>>>,
    /// One holder per lock key in this process.
    local: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
    /// Answers kept while the database could not be reached.
    spool: Arc<Spool>,
}

impl PgLocks {
    pub(super) fn new(db: Database, env: &str, spool: Arc<Spool>) -> PgLocks {
        PgLocks {
            db,
            env: env.to_string(),
            session: tokio::sync::Mutex::new(None),
            local: Mutex::new(HashMap::new()),
            spool,
        }
    }

    /// The lock session, opened anew when there is none or it ended.
    async fn session(&self) -> Result<Arc<Session>, Error> {
        let mut current = self.session.lock().await;
        if let Some(session) = current.as_ref()
            && session.alive()
        {
            return Ok(session.clone());
        }
        // A session that the server does not close for idling.
        let session = Arc::new(self.db.session().await?);
        heartbeat(Arc::downgrade(&session), self.db.progress.clone());
        *current = Some(session.clone());
        Ok(session)
    }

    /// The local mutex of a lock key.
    fn local(&self, key: i64) -> Arc<tokio::sync::Mutex<()>> {
        let mut local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        // One a lock key ever used would grow with the connected accounts:
        // those nobody holds or waits for go, now and then.
        if local.len() >= LOCAL_PRUNE_AT {
            local.retain(|_, mutex| Arc::strong_count(mutex) > 1);
        }
        local.entry(key).or_default().clone()
    }

    /// One attempt at an advisory lock, with the local mutex held.
    async fn try_lock(
        &self,
        key: i64,
        local: tokio::sync::OwnedMutexGuard<()>,
    ) -> Result<Result<PgHeld, tokio::sync::OwnedMutexGuard<()>>, Error> {
        let session = self.session().await?;
        match session
            .ask(&self.db, "SELECT pg_try_advisory_lock($1)", key)
            .await
        {
            Ok(true) => Ok(Ok(PgHeld {
                db: self.db.clone(),
                session: Some(session),
                key,
                local: Some(local),
            })),
            Ok(false) => Ok(Err(local)),
            Err(error) => {
                // The attempt may still be taken when the server answers:
                // an unlock queued behind it on the session gives it back,
                // and this process takes the key again only after that.
                let queued = session.clone();
                tokio::spawn(async move {
                    let _local = local;
                    let _ = queued
                        .client
                        .query_one("SELECT pg_advisory_unlock($1)", &[&key])
                        .await;
                });
                Err(error)
            }
        }
    }
}

/// Proves the session alive while it is, and marks it ended when it does
/// not answer and its connection closed.
fn heartbeat(session: std::sync::Weak<Session>, progress: super::Progress) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(HEARTBEAT).await;
            let Some(session) = session.upgrade() else {
                return;
            };
            if !session.alive() {
                return;
            }
            let answered =
                tokio::time::timeout(CALL_DEADLINE, session.client.simple_query("SELECT 1")).await;
            if let Ok(Ok(_)) = answered {
                progress.answered();
            }
            if let Ok(Err(e)) = answered {
                tracing::warn!("the lock session failed its heartbeat: {e}");
                if session.client.is_closed() {
                    session.alive.store(false, Ordering::SeqCst);
                    return;
                }
            }
        }
    });
}

/// An advisory lock on the lock session; dropping it unlocks.
struct PgHeld {
    db: Database,
    session: Option<Arc<Session>>,
    key: i64,
    local: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Held for PgHeld {
    fn fence(&self) -> Option<Fence> {
        self.session.as_ref().map(|s| Fence {
            key: self.key,
            session: s.pid,
        })
    }

    fn lost(&self) -> bool {
        self.session.as_ref().is_none_or(|s| !s.alive())
    }
}

impl Drop for PgHeld {
    fn drop(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        if !session.alive() {
            return;
        }
        let key = self.key;
        // The local mutex is let go once the database let go of the key.
        let local = self.local.take();
        let db = self.db.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    let _local = local;
                    if !matches!(
                        session.ask(&db, "SELECT pg_advisory_unlock($1)", key).await,
                        Ok(true)
                    ) {
                        tracing::warn!("the advisory lock {key} was not held at its release");
                    }
                });
            }
            // No runtime to unlock on: the session ends with the process.
            Err(_) => drop(local),
        }
    }
}

/// Held by every process on a shared backend: fires are claimed one by one.
struct Sharing;

impl Held for Sharing {}

#[async_trait]
impl Locks for PgLocks {
    fn shared(&self) -> bool {
        true
    }

    async fn run_lock(
        &self,
        endpoint: &str,
        timeout: Duration,
    ) -> Result<Box<dyn Held>, LockFailure> {
        let started = Instant::now();
        // Answers this process kept while the database was away go in
        // first: whoever takes a lock next must see them.
        self.spool
            .flush(&self.db)
            .await
            .map_err(LockFailure::Failed)?;
        let key = lock_key(&format!("svc:run:{}:{endpoint}", self.env));
        let mut local = tokio::time::timeout(timeout, self.local(key).lock_owned())
            .await
            .map_err(|_| LockFailure::TimedOut)?;
        let mut pause = Duration::from_millis(5);
        loop {
            match self.try_lock(key, local).await {
                Ok(Ok(held)) => return Ok(Box::new(held)),
                Ok(Err(guard)) => local = guard,
                Err(error) => return Err(LockFailure::Failed(error)),
            }
            let waited = started.elapsed();
            if waited >= timeout {
                return Err(LockFailure::TimedOut);
            }
            tokio::time::sleep(pause.min(timeout - waited)).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    async fn schedule_leader(&self) -> Result<Option<Box<dyn Held>>, Error> {
        Ok(Some(Box::new(Sharing)))
    }

    async fn claim_fire(&self, schedule: &str) -> Result<Option<Box<dyn Held>>, Error> {
        let key = lock_key(&format!("svc:fire:{}:{schedule}", self.env));
        let Ok(local) = self.local(key).try_lock_owned() else {
            return Ok(None);
        };
        Ok(self
            .try_lock(key, local)
            .await?
            .ok()
            .map(|held| Box::new(held) as Box<dyn Held>))
    }
}
