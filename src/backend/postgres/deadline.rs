//! A deadline on every call to the database.
//!
//! A database that stops answering without closing its connections (a
//! paused server, a network that drops packets) would hold every request
//! that reads a secret, and every connection slot of `svc serve`, for as
//! long as it lasts. So each store of the PostgreSQL backend is wrapped
//! here: a call fails as unavailable (503 `backend_unavailable` to an HTTP
//! caller) once the database has answered nothing for [`super::STALL`]
//! (4 s), or after [`LONGEST_CALL`] in any case; the server's
//! `statement_timeout` ends what the client gave up on. A busy database
//! that answers other calls meanwhile is not a stalled one: its callers
//! wait their turn for a connection instead of failing. The journal and the
//! locks bound their own calls the same way (`journal`, `locks`): a journal
//! write must not be cut off after its answer reached the local spool, and
//! a lock waits for as long as its caller says.
//!
//! Every method is forwarded, those with a default body included, so that
//! the wrapped store's own version of each is the one that runs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Database, LONGEST_CALL, Progress};
use crate::backend::RunRecord;
use crate::backend::ScheduleState;
use crate::backend::consent_sessions::{Claim, ConsentSession, ConsentSessions};
use crate::backend::outbox::{Attempt, Delivery, Retry};
use crate::backend::{
    Backend, Change, Changed, Held, JobRefused, JobStore, JobView, KeyIndex, KeyStore, LogName,
    LogStore, RecipientChange, Revision, ScheduleStore, SecretStore,
};
use crate::backend::{
    ConnectionKey, ConnectionState, ConnectionStore, Observation, Observed, Outbox, Subscriber,
};
use crate::secrets::document::ApiKey;
use crate::secrets::{Document, Error, Identities};

/// Calls that touch every secret (re-wrapping every data key, exporting
/// the whole history) may take this much longer while the database works.
const BULK: u32 = 20;

/// The backend with a deadline on each store's calls.
pub fn bounded(backend: Backend, db: &Database) -> Backend {
    let deadline = Deadline {
        progress: db.progress.clone(),
        shown: db.shown.clone(),
    };
    Backend {
        secrets: Arc::new(Bounded(backend.secrets, deadline.clone())),
        keys: Arc::new(Bounded(backend.keys, deadline.clone())),
        schedules: Arc::new(Bounded(backend.schedules, deadline.clone())),
        connections: Arc::new(Bounded(backend.connections, deadline.clone())),
        accounts: Arc::new(Bounded(backend.accounts, deadline.clone())),
        outbox: Arc::new(Bounded(backend.outbox, deadline.clone())),
        consent_sessions: Arc::new(Bounded(backend.consent_sessions, deadline.clone())),
        logs: Arc::new(Bounded(backend.logs, deadline.clone())),
        jobs: Arc::new(Bounded(backend.jobs, deadline)),
        ..backend
    }
}

#[derive(Clone)]
struct Deadline {
    progress: Progress,
    shown: String,
}

struct Bounded<T: ?Sized>(Arc<T>, Deadline);

impl<T: ?Sized> Bounded<T> {
    async fn within<R>(
        &self,
        longest: Duration,
        call: impl std::future::Future<Output = Result<R, Error>>,
    ) -> Result<R, Error> {
        self.1.progress.bound(&self.1.shown, longest, call).await
    }
}

#[async_trait]
impl SecretStore for Bounded<dyn SecretStore> {
    fn describe(&self) -> String {
        self.0.describe()
    }

    async fn exists(&self) -> Result<bool, Error> {
        self.within(LONGEST_CALL, self.0.exists()).await
    }

    async fn init(&self, recipients: &str) -> Result<(), Error> {
        self.within(LONGEST_CALL, self.0.init(recipients)).await
    }

    async fn document(&self, identities: &Identities) -> Result<Arc<Document>, Error> {
        self.within(LONGEST_CALL, self.0.document(identities)).await
    }

    async fn apply(
        &self,
        identities: &Identities,
        changes: Vec<Change>,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<(Vec<Changed>, Option<Arc<Document>>), Error> {
        self.within(LONGEST_CALL, self.0.apply(identities, changes, by, at))
            .await
    }

    async fn apply_fenced(
        &self,
        identities: &Identities,
        changes: Vec<Change>,
        by: &str,
        at: DateTime<Utc>,
        locks: &[&dyn Held],
    ) -> Result<(Vec<Changed>, Option<Arc<Document>>), Error> {
        self.within(
            LONGEST_CALL,
            self.0.apply_fenced(identities, changes, by, at, locks),
        )
        .await
    }

    fn cached_document(&self) -> Option<Arc<Document>> {
        self.0.cached_document()
    }

    async fn document_as_known(&self, identities: &Identities) -> Result<Arc<Document>, Error> {
        self.within(LONGEST_CALL, self.0.document_as_known(identities))
            .await
    }

    fn cached_revision(&self) -> Option<Revision> {
        self.0.cached_revision()
    }

    async fn entry(
        &self,
        identities: &Identities,
        name: &str,
    ) -> Result<Option<crate::secrets::Entry>, Error> {
        self.within(LONGEST_CALL, self.0.entry(identities, name))
            .await
    }

    async fn ping(&self) -> Result<(), Error> {
        self.within(LONGEST_CALL, self.0.ping()).await
    }

    async fn recipients(&self) -> Result<Vec<String>, Error> {
        self.within(LONGEST_CALL, self.0.recipients()).await
    }

    async fn change_recipients(
        &self,
        identities: &Identities,
        change: RecipientChange,
    ) -> Result<Vec<String>, Error> {
        self.within(
            LONGEST_CALL * BULK,
            self.0.change_recipients(identities, change),
        )
        .await
    }

    async fn export(&self, identities: &Identities) -> Result<Vec<u8>, Error> {
        self.within(LONGEST_CALL * BULK, self.0.export(identities))
            .await
    }
}

#[async_trait]
impl KeyStore for Bounded<dyn KeyStore> {
    async fn keys(&self, identities: &Identities) -> Result<KeyIndex, Error> {
        self.within(LONGEST_CALL, self.0.keys(identities)).await
    }

    async fn keys_as_known(&self, identities: &Identities) -> Result<KeyIndex, Error> {
        self.within(LONGEST_CALL, self.0.keys_as_known(identities))
            .await
    }

    async fn add(&self, identities: &Identities, id: &str, key: ApiKey) -> Result<(), Error> {
        self.within(LONGEST_CALL, self.0.add(identities, id, key))
            .await
    }

    async fn revoke(
        &self,
        identities: &Identities,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), Error> {
        self.within(LONGEST_CALL, self.0.revoke(identities, id, at))
            .await
    }
}

#[async_trait]
impl ScheduleStore for Bounded<dyn ScheduleStore> {
    fn describe(&self) -> String {
        self.0.describe()
    }

    async fn load(&self) -> Result<BTreeMap<String, ScheduleState>, Error> {
        self.within(LONGEST_CALL, self.0.load()).await
    }

    async fn load_one(&self, schedule: &str) -> Result<Option<ScheduleState>, Error> {
        self.within(LONGEST_CALL, self.0.load_one(schedule)).await
    }

    async fn save(&self, states: &BTreeMap<String, ScheduleState>) -> Result<(), Error> {
        self.within(LONGEST_CALL, self.0.save(states)).await
    }
}

#[async_trait]
impl crate::backend::AccountSecrets for Bounded<dyn crate::backend::AccountSecrets> {
    async fn account(
        &self,
        identities: &Identities,
        key: &ConnectionKey,
    ) -> Result<Option<(ConnectionState, Arc<Document>)>, Error> {
        self.within(LONGEST_CALL, self.0.account(identities, key))
            .await
    }

    async fn document(
        &self,
        identities: &Identities,
        key: &ConnectionKey,
    ) -> Result<Arc<Document>, Error> {
        self.within(LONGEST_CALL, self.0.document(identities, key))
            .await
    }

    async fn apply(
        &self,
        identities: &Identities,
        key: &ConnectionKey,
        changes: Vec<Change>,
        by: &str,
        at: DateTime<Utc>,
        locks: &[&dyn Held],
    ) -> Result<Vec<Changed>, Error> {
        self.within(
            LONGEST_CALL,
            self.0.apply(identities, key, changes, by, at, locks),
        )
        .await
    }

    async fn forget(&self, identities: &Identities, key: &ConnectionKey) -> Result<(), Error> {
        self.within(LONGEST_CALL, self.0.forget(identities, key))
            .await
    }

    async fn import(
        &self,
        identities: &Identities,
        client: &str,
        accounts: &[crate::backend::accounts::Imported],
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<bool>, Error> {
        self.within(
            LONGEST_CALL * BULK,
            self.0.import(identities, client, accounts, by, at),
        )
        .await
    }
}

#[async_trait]
impl ConnectionStore for Bounded<dyn ConnectionStore> {
    fn describe(&self) -> String {
        self.0.describe()
    }

    async fn load(&self) -> Result<BTreeMap<ConnectionKey, ConnectionState>, Error> {
        self.within(LONGEST_CALL, self.0.load()).await
    }

    async fn load_one(&self, key: &ConnectionKey) -> Result<Option<ConnectionState>, Error> {
        self.within(LONGEST_CALL, self.0.load_one(key)).await
    }

    async fn page(
        &self,
        query: &crate::backend::ConnectionQuery,
    ) -> Result<crate::backend::ConnectionPage, Error> {
        self.within(LONGEST_CALL, self.0.page(query)).await
    }

    async fn set_tags(
        &self,
        key: &ConnectionKey,
        tags: BTreeMap<String, String>,
    ) -> Result<bool, Error> {
        self.within(LONGEST_CALL, self.0.set_tags(key, tags)).await
    }

    async fn observe(
        &self,
        key: &ConnectionKey,
        observation: &Observation,
        subscribers: &[Subscriber],
        at: DateTime<Utc>,
    ) -> Result<Observed, Error> {
        self.within(
            LONGEST_CALL,
            self.0.observe(key, observation, subscribers, at),
        )
        .await
    }

    async fn delete(
        &self,
        key: &ConnectionKey,
        subscribers: &[Subscriber],
        at: DateTime<Utc>,
    ) -> Result<bool, Error> {
        self.within(LONGEST_CALL, self.0.delete(key, subscribers, at))
            .await
    }
}

#[async_trait]
impl ConsentSessions for Bounded<dyn ConsentSessions> {
    fn describe(&self) -> String {
        self.0.describe()
    }

    async fn create(&self, session: &ConsentSession, now: DateTime<Utc>) -> Result<(), Error> {
        self.within(LONGEST_CALL, self.0.create(session, now)).await
    }

    async fn open(
        &self,
        token_hash: &str,
        browser: &str,
        now: DateTime<Utc>,
    ) -> Result<Claim, Error> {
        self.within(LONGEST_CALL, self.0.open(token_hash, browser, now))
            .await
    }

    async fn finish(&self, state: &str, now: DateTime<Utc>) -> Result<Claim, Error> {
        self.within(LONGEST_CALL, self.0.finish(state, now)).await
    }
}

#[async_trait]
impl Outbox for Bounded<dyn Outbox> {
    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease: chrono::TimeDelta,
        limit: usize,
    ) -> Result<Vec<Delivery>, Error> {
        self.within(LONGEST_CALL, self.0.claim(now, lease, limit))
            .await
    }

    async fn settle(
        &self,
        id: &str,
        lease_token: &str,
        attempt: Attempt,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        self.within(LONGEST_CALL, self.0.settle(id, lease_token, attempt, now))
            .await
    }

    async fn list(&self) -> Result<Vec<Delivery>, Error> {
        self.within(LONGEST_CALL, self.0.list()).await
    }

    async fn retry(
        &self,
        id: &str,
        now: DateTime<Utc>,
        lease: chrono::TimeDelta,
    ) -> Result<Retry, Error> {
        self.within(LONGEST_CALL, self.0.retry(id, now, lease))
            .await
    }
}

#[async_trait]
impl LogStore for Bounded<dyn LogStore> {
    fn describe(&self, log: LogName<'_>) -> String {
        self.0.describe(log)
    }

    async fn append(&self, log: LogName<'_>, record: &RunRecord) -> Result<(), Error> {
        self.within(LONGEST_CALL, self.0.append(log, record)).await
    }

    async fn read_last(&self, log: LogName<'_>, count: usize) -> Result<Vec<RunRecord>, Error> {
        self.within(LONGEST_CALL, self.0.read_last(log, count))
            .await
    }

    async fn any(&self) -> Result<bool, Error> {
        self.within(LONGEST_CALL, self.0.any()).await
    }

    async fn audit(&self, line: &serde_json::Value) -> Result<Option<Revision>, Error> {
        self.within(LONGEST_CALL, self.0.audit(line)).await
    }
}

#[async_trait]
impl JobStore for Bounded<dyn JobStore> {
    async fn start(&self, id: &str, owner: &str, endpoint: &str) -> Result<(), JobRefused> {
        // A refusal is an answer; only a call that got none fails here.
        let started = async { Ok(self.0.start(id, owner, endpoint).await) };
        match self.within(LONGEST_CALL, started).await {
            Ok(result) => result,
            Err(error) => Err(JobRefused::Failed(error)),
        }
    }

    async fn finish(&self, id: &str, record: serde_json::Value) -> Result<(), Error> {
        self.within(LONGEST_CALL, self.0.finish(id, record)).await
    }

    async fn view(&self, id: &str, caller: &str) -> Result<Option<Result<JobView, ()>>, Error> {
        self.within(LONGEST_CALL, self.0.view(id, caller)).await
    }
}
