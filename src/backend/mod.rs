//! Storage: everything svc keeps between runs, behind one seam.
//!
//! An environment's state is its secrets (versioned, with history and
//! recipients), the API keys of `svc serve`, the locks that keep two runs
//! of an endpoint (and two replicas' schedule fires) apart, the schedules'
//! state, the endpoint, schedule and audit logs, the asynchronous jobs,
//! and the recovery journal. Each is a trait here; [`files`] keeps them in
//! files beside the project (the default, as svc always did), and
//! [`postgres`] in a PostgreSQL database that several `svc serve`
//! replicas share. `run`, `schedule`, `serve` and the commands ask a
//! [`Backend`] and never build a path from an environment name.

pub mod accounts;
pub mod connection;
pub mod consent_sessions;
pub mod files;
pub mod jobs;
pub mod outbox;
pub mod postgres;
pub mod record;
pub mod run_key;
pub mod schedule_state;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::secrets::document::ApiKey;
use crate::secrets::journal::{Entry, Listed};
use crate::secrets::{Document, Error, Identities, SecretValue};

/// Where an environment's state is kept.
#[derive(Debug, Clone)]
pub enum Spec {
    /// Files: the store in `secrets_dir`, logs in `log_dir`, schedule state
    /// and the journal in `state_dir`.
    Files {
        secrets_dir: PathBuf,
        log_dir: PathBuf,
        state_dir: PathBuf,
    },
    /// A PostgreSQL database, by URL (`postgres://` or `postgresql://`),
    /// and the state directory where answers wait for the database when it
    /// cannot be reached (the recovery journal's local spool).
    Postgres { url: String, state_dir: PathBuf },
}

impl Spec {
    /// A backend named on the command line, in `SVC_BACKEND` or in
    /// svc.toml: `files`, or a PostgreSQL URL.
    pub fn parse(text: &str, files: impl FnOnce() -> Spec) -> Result<Spec, Error> {
        let text = text.trim();
        if text.is_empty() || text == "files" {
            return Ok(files());
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            let state_dir = match files() {
                Spec::Files { state_dir, .. } | Spec::Postgres { state_dir, .. } => state_dir,
            };
            return Ok(Spec::Postgres {
                url: text.to_string(),
                state_dir,
            });
        }
        Err(Error::Invalid(format!(
            "`{}` is not a backend: use `files`, or a URL such as postgres://user:password@host:5432/db",
            crate::net::http::display_url_text(text)
        )))
    }
}

/// A count of the changes made to an environment's shared state
/// (PostgreSQL): every write raises it, so a replica's cached copy is as new
/// as the revision it was read at.
pub type Revision = i64;

/// How current a read of the shared state must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAt {
    /// As the backend has it now: a database is asked every time.
    Now,
    /// As of the newest revision this process has heard of, from its
    /// caches: for a read that confirms itself afterwards (an audited read
    /// of `svc serve`), or whose answer does not hand out a value.
    Known,
}

/// One environment's state, in whichever backend holds it.
#[derive(Clone)]
pub struct Backend {
    pub env: String,
    pub secrets: Arc<dyn SecretStore>,
    pub keys: Arc<dyn KeyStore>,
    pub locks: Arc<dyn Locks>,
    pub schedules: Arc<dyn ScheduleStore>,
    pub logs: Arc<dyn LogStore>,
    pub jobs: Arc<dyn JobStore>,
    pub journal: Arc<dyn JournalStore>,
    pub connections: Arc<dyn ConnectionStore>,
    /// The values of per-account secrets, by connection.
    pub accounts: Arc<dyn AccountSecrets>,
    /// Events waiting for their receivers, written with the connection
    /// changes that make them.
    pub outbox: Arc<dyn Outbox>,
    /// The hosted consents of `svc serve` in progress.
    pub consent_sessions: Arc<dyn ConsentSessions>,
    /// What it is, for messages: `files in secrets/` or `postgres://host/db`.
    pub description: String,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Backend({}, {})", self.env, self.description)
    }
}

/// How a backend is opened beyond its spec.
#[derive(Debug, Clone)]
pub struct Options {
    /// Asynchronous jobs kept at most.
    pub max_jobs: usize,
    /// How long a writer waits for another.
    pub lock_timeout: Duration,
    /// A database keeps at most this many records per log...
    pub log_keep_records: usize,
    /// ...for at most this many days (files rotate by size instead).
    pub log_keep_days: u32,
    /// The command will take a run lock soon (a run of an endpoint that
    /// updates secrets): a backend whose locks need a database session of
    /// their own starts opening it while it opens.
    pub locks_soon: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_jobs: 1000,
            lock_timeout: crate::backend::files::store::DEFAULT_LOCK_TIMEOUT,
            log_keep_records: 10_000,
            log_keep_days: 90,
            locks_soon: false,
        }
    }
}

impl Backend {
    /// Opens an environment's state. The files backend opens nothing yet;
    /// PostgreSQL connects, and creates or migrates its schema.
    pub async fn open(spec: &Spec, env: &str, options: &Options) -> Result<Backend, Error> {
        crate::secrets::validate_environment(env)?;
        match spec {
            Spec::Files {
                secrets_dir,
                log_dir,
                state_dir,
            } => Ok(files::open(secrets_dir, log_dir, state_dir, env, options)),
            Spec::Postgres { url, state_dir } => postgres::open(url, state_dir, env, options).await,
        }
    }

    /// Records what happened to a connection, with the events it makes
    /// for `subscribers` in the same update, logging the transition it
    /// made, if any; a failure to record is logged, not returned: it must
    /// not fail the run or the authorization that observed it.
    pub async fn observe_connection(
        &self,
        key: &ConnectionKey,
        observation: &Observation,
        subscribers: &[Subscriber],
    ) -> Option<Transition> {
        let observed = self
            .connections
            .observe(key, observation, subscribers, Utc::now())
            .await;
        if let Ok(observed) = &observed {
            for event in &observed.events {
                tracing::debug!("connection `{key}` in `{}`: {event}", self.env);
            }
        }
        match observed.map(|o| o.transition) {
            Ok(Some(transition)) => {
                let from = transition.from.map_or("new", Health::as_str);
                if transition.to.needs_person() {
                    tracing::warn!(
                        "connection `{key}` in `{}`: {from} -> {}",
                        self.env,
                        transition.to
                    );
                } else if transition.is_recovery() {
                    tracing::info!(
                        "connection `{key}` in `{}` recovered: {from} -> {}",
                        self.env,
                        transition.to
                    );
                } else {
                    tracing::info!(
                        "connection `{key}` in `{}`: {from} -> {}",
                        self.env,
                        transition.to
                    );
                }
                Some(transition)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!("cannot record the state of connection `{key}`: {e}");
                None
            }
        }
    }

    /// The values a connection's tokens are kept in: a connected
    /// account's own (`per_account`), or the shared store's for the one
    /// connection of a client.
    pub async fn connection_values(
        &self,
        identities: &Identities,
        key: &ConnectionKey,
        per_account: bool,
    ) -> Result<Arc<Document>, Error> {
        if per_account {
            self.accounts.document(identities, key).await
        } else {
            self.secrets.document(identities).await
        }
    }

    /// Applies changes to where a connection's tokens are kept, in one
    /// atomic write, committed only while every lock in `locks` is held.
    #[allow(clippy::too_many_arguments)]
    pub async fn apply_to_connection(
        &self,
        identities: &Identities,
        key: &ConnectionKey,
        per_account: bool,
        changes: Vec<Change>,
        by: &str,
        at: DateTime<Utc>,
        locks: &[&dyn Held],
    ) -> Result<Vec<Changed>, Error> {
        if per_account {
            self.accounts
                .apply(identities, key, changes, by, at, locks)
                .await
        } else {
            let (changed, _) = self
                .secrets
                .apply_fenced(identities, changes, by, at, locks)
                .await?;
            Ok(changed)
        }
    }

    /// Whether several processes on several hosts may share it.
    pub fn is_shared(&self) -> bool {
        self.locks.shared()
    }

    /// The state directory, which holds the schedules' state and the
    /// recovery journal (files), or the journal's local spool (PostgreSQL).
    pub fn state_dir(spec: &Spec) -> &std::path::Path {
        match spec {
            Spec::Files { state_dir, .. } | Spec::Postgres { state_dir, .. } => state_dir,
        }
    }
}

/// A change to a store, applied with others in one atomic write.
#[derive(Debug, Clone)]
pub enum Change {
    /// A new value; with `expect`, only if the current version is that
    /// (compare-and-swap; `Some(0)`: only if the secret does not exist).
    Set {
        name: String,
        value: SecretValue,
        expires_at: Option<DateTime<Utc>>,
        expect: Option<u64>,
    },
    Remove {
        name: String,
    },
    /// An earlier value made current again, as a new version.
    Rollback {
        name: String,
        to: Option<u64>,
    },
}

impl Change {
    /// The secret it changes.
    pub fn name(&self) -> &str {
        match self {
            Change::Set { name, .. } | Change::Remove { name } | Change::Rollback { name, .. } => {
                name
            }
        }
    }
}

/// What a change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    /// The new version.
    Set(u64),
    Removed,
    /// The version restored and the new version.
    RolledBack {
        restored: u64,
        version: u64,
    },
}

/// A change of who may decrypt a store.
#[derive(Debug, Clone)]
pub enum RecipientChange {
    Add(String),
    Remove(String),
}

/// The secrets of one environment.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// Where it is, for messages.
    fn describe(&self) -> String;

    async fn exists(&self) -> Result<bool, Error>;

    /// Creates an empty store encrypted to the public keys of `recipients`
    /// (the text of a recipients file). Fails if the store exists.
    async fn init(&self, recipients: &str) -> Result<(), Error>;

    /// The current document, decrypted; shared while it does not change.
    async fn document(&self, identities: &Identities) -> Result<Arc<Document>, Error>;

    /// Applies changes in one atomic, durable write. Nothing is written
    /// when one fails. Returns what each did, and the new document when it
    /// comes at no cost (files; a database lets the next read fetch it).
    async fn apply(
        &self,
        identities: &Identities,
        changes: Vec<Change>,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<(Vec<Changed>, Option<Arc<Document>>), Error>;

    /// As [`SecretStore::apply`], for a run that holds locks: nothing is
    /// written unless every lock is still held when the write commits
    /// ([`Error::LockLost`] otherwise). A backend whose locks cannot be
    /// lost while their holder lives checks only that none is known lost.
    async fn apply_fenced(
        &self,
        identities: &Identities,
        changes: Vec<Change>,
        by: &str,
        at: DateTime<Utc>,
        locks: &[&dyn Held],
    ) -> Result<(Vec<Changed>, Option<Arc<Document>>), Error> {
        if locks.iter().any(|l| l.lost()) {
            return Err(Error::LockLost);
        }
        self.apply(identities, changes, by, at).await
    }

    /// The document as last read, without asking the backend: for what
    /// must never wait on a database (`/metrics`). `None` before a read.
    fn cached_document(&self) -> Option<Arc<Document>> {
        None
    }

    /// The document as of the newest revision this process has heard of:
    /// the backend is asked only when the cached copy is older. A read that
    /// hands out a value from it confirms it afterwards against the
    /// revision its audit line's commit returns ([`LogStore::audit`]);
    /// [`SecretStore::document`] asks the backend every time.
    async fn document_as_known(&self, identities: &Identities) -> Result<Arc<Document>, Error> {
        self.document(identities).await
    }

    /// The oldest revision among the cached document and key index: what a
    /// read `as_known` may lag behind. `None` where every read is current
    /// (files).
    fn cached_revision(&self) -> Option<Revision> {
        None
    }

    /// One secret with its history (`None` when it has no value).
    async fn entry(
        &self,
        identities: &Identities,
        name: &str,
    ) -> Result<Option<crate::secrets::Entry>, Error> {
        Ok(self.document(identities).await?.get(name).cloned())
    }

    /// Whether the backend answers (a database may be down).
    async fn ping(&self) -> Result<(), Error> {
        Ok(())
    }

    /// The lines of the recipients list (`#` comments kept).
    async fn recipients(&self) -> Result<Vec<String>, Error>;

    /// Changes who can decrypt; what is stored is re-encrypted so that a
    /// removed key cannot read what is written after. Returns the new list.
    async fn change_recipients(
        &self,
        identities: &Identities,
        change: RecipientChange,
    ) -> Result<Vec<String>, Error>;

    /// The whole store as an age file, the format of the files backend.
    async fn export(&self, identities: &Identities) -> Result<Vec<u8>, Error>;
}

/// The API keys of an environment by id (the `<id>` of a token
/// `svc_<id>_<secret>`), as of one version of the key table. A backend
/// builds it once when the table changes and hands the same one to every
/// request until it changes again: authenticating costs one lookup, not a
/// copy of the table.
pub type KeyIndex = Arc<BTreeMap<String, ApiKey>>;

/// The API keys of `svc serve` (only hashes are kept).
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// The current index: a key revoked or added is in it at once.
    async fn keys(&self, identities: &Identities) -> Result<KeyIndex, Error>;
    /// The index as of the newest revision this process has heard of, as
    /// [`SecretStore::document_as_known`] says.
    async fn keys_as_known(&self, identities: &Identities) -> Result<KeyIndex, Error> {
        self.keys(identities).await
    }
    async fn add(&self, identities: &Identities, id: &str, key: ApiKey) -> Result<(), Error>;
    /// Marks a key revoked; an error if it is unknown or revoked already.
    async fn revoke(
        &self,
        identities: &Identities,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), Error>;
}

/// A lock held until dropped.
pub trait Held: Send + Sync {
    /// What a write under this lock checks at its commit: that the lock is
    /// still held. `None` where a lock cannot be lost while its holder
    /// lives (a file lock).
    fn fence(&self) -> Option<Fence> {
        None
    }

    /// Whether the lock is known to be gone (its database session ended).
    /// `false` is no promise: [`Fence`] is what a write relies on.
    fn lost(&self) -> bool {
        false
    }
}

/// A database lock as a write checks it: the advisory lock's key and the
/// process id of the session that holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fence {
    pub key: i64,
    pub session: i32,
}

/// Why a lock was not taken.
#[derive(Debug)]
pub enum LockFailure {
    TimedOut,
    Failed(Error),
}

/// Locks that keep runs and schedule fires apart, in one process or many.
#[async_trait]
pub trait Locks: Send + Sync {
    /// Whether processes on other hosts see these locks.
    fn shared(&self) -> bool;

    /// The lock of (environment, endpoint), held by a run that can update
    /// secrets from before it reads one until it ends.
    async fn run_lock(
        &self,
        endpoint: &str,
        timeout: Duration,
    ) -> Result<Box<dyn Held>, LockFailure>;

    /// Leadership of the schedules, for a backend where one process runs
    /// them all (files): `Ok(Some)` when taken, `Ok(None)` when another
    /// has it. Backends that share fires among processes always grant it.
    async fn schedule_leader(&self) -> Result<Option<Box<dyn Held>>, Error>;

    /// The right to run one schedule's due fire: `None` when another
    /// process is running it. Held until the fire's state is saved.
    async fn claim_fire(&self, schedule: &str) -> Result<Option<Box<dyn Held>>, Error>;
}

/// What is remembered of each schedule.
#[async_trait]
pub trait ScheduleStore: Send + Sync {
    fn describe(&self) -> String;
    async fn load(&self) -> Result<BTreeMap<String, ScheduleState>, Error>;
    /// One schedule's state as stored now (another process may have run it).
    async fn load_one(&self, schedule: &str) -> Result<Option<ScheduleState>, Error>;
    /// Saves the states given; others are left as they are.
    async fn save(&self, states: &BTreeMap<String, ScheduleState>) -> Result<(), Error>;
}

/// What is known of each connection (see [`connection`]).
#[async_trait]
pub trait ConnectionStore: Send + Sync {
    fn describe(&self) -> String;
    /// Every connection seen in this environment.
    async fn load(&self) -> Result<BTreeMap<ConnectionKey, ConnectionState>, Error>;
    async fn load_one(&self, key: &ConnectionKey) -> Result<Option<ConnectionState>, Error>;
    /// Applies an observation atomically: what another process observed
    /// meanwhile is read under the same lock, so replicas agree on each
    /// transition and see it once. The deliveries of its events to
    /// `subscribers` are written to the outbox in the same update.
    async fn observe(
        &self,
        key: &ConnectionKey,
        observation: &Observation,
        subscribers: &[Subscriber],
        at: DateTime<Utc>,
    ) -> Result<Observed, Error>;

    /// A page of connections, in the order of (client, id).
    async fn page(&self, query: &ConnectionQuery) -> Result<ConnectionPage, Error>;

    /// Replaces a connection's tags; `false` when it is not known.
    async fn set_tags(
        &self,
        key: &ConnectionKey,
        tags: BTreeMap<String, String>,
    ) -> Result<bool, Error>;

    /// Forgets a connection, writing the deliveries of
    /// `connection.deleted` to `subscribers` in the same update. Returns
    /// whether it was known.
    async fn delete(
        &self,
        key: &ConnectionKey,
        subscribers: &[Subscriber],
        at: DateTime<Utc>,
    ) -> Result<bool, Error>;
}

/// Which log.
#[derive(Debug, Clone, Copy)]
pub enum LogName<'a> {
    Endpoint(&'a str),
    Schedule(&'a str),
}

/// Endpoint, schedule and audit logs.
#[async_trait]
pub trait LogStore: Send + Sync {
    fn describe(&self, log: LogName<'_>) -> String;
    /// Appends a record; it is redacted already.
    async fn append(&self, log: LogName<'_>, record: &RunRecord) -> Result<(), Error>;
    /// The last `count` records, oldest first.
    async fn read_last(&self, log: LogName<'_>, count: usize) -> Result<Vec<RunRecord>, Error>;
    /// Whether anything is logged for this environment at all.
    async fn any(&self) -> Result<bool, Error>;
    /// Appends a line to the audit log (who read which secret); returns
    /// once it is durable, with the environment's revision as of its commit
    /// where the state is shared (`None` on files): a read made from what
    /// this process knew is as new as that, or it reads again.
    async fn audit(&self, line: &serde_json::Value) -> Result<Option<Revision>, Error>;
}

/// What a caller may see of a job.
pub use accounts::{AccountSecrets, ConnectionPage, ConnectionQuery, Reach};
pub use connection::{ConnectionKey, ConnectionState, Health, Observation, Observed, Transition};
pub use consent_sessions::ConsentSessions;
pub use jobs::JobView;
pub use outbox::{Outbox, Subscriber};
pub use record::{ErrorReport, Outcome, RunRecord, Trigger};
pub use schedule_state::ScheduleState;

/// Why a job was not started.
#[derive(Debug)]
pub enum JobRefused {
    /// Every job kept is still running.
    Full {
        max: usize,
    },
    Failed(Error),
}

/// Asynchronous runs.
#[async_trait]
pub trait JobStore: Send + Sync {
    async fn start(&self, id: &str, owner: &str, endpoint: &str) -> Result<(), JobRefused>;
    async fn finish(&self, id: &str, record: serde_json::Value) -> Result<(), Error>;
    /// `None` if unknown; `Some(Err(()))` if it belongs to someone else.
    async fn view(&self, id: &str, caller: &str) -> Result<Option<Result<JobView, ()>>, Error>;
}

/// Answers to requests that sent a secret, kept until their run's updates
/// are durable (see `secrets::journal`).
#[async_trait]
pub trait JournalStore: Send + Sync {
    fn describe(&self) -> String;
    /// Keeps an answer durably; returns how many old ones the bounds
    /// dropped. It is kept when this returns `Ok`, even if the database
    /// of a shared backend could not take it yet (see [`JournalStore::flush`]).
    async fn record(&self, entry: &Entry) -> Result<usize, Error>;

    /// Records, where every process that may take the run's lock sees it,
    /// that a request presenting a rotating secret is about to leave (a
    /// [`crate::secrets::journal::SENT`] entry). A request whose send
    /// cannot be recorded is not sent. A backend whose locks cannot be lost
    /// while their holder lives (files) has no one to tell: nothing to do.
    async fn sending(&self, _entry: &Entry) -> Result<(), Error> {
        Ok(())
    }

    /// Copies the answers kept on this host while a shared backend could
    /// not be reached into it; returns how many. Nothing to do for files.
    async fn flush(&self) -> Result<usize, Error> {
        Ok(0)
    }
    async fn list(&self) -> Result<Vec<Listed>, Error>;
    async fn read(&self, listed: &Listed, identities: &Identities) -> Result<Entry, Error>;
    /// Forgets the answers of `run_id` and the older ones of its endpoint.
    async fn settled(&self, endpoint: &str, run_id: &str) -> Result<usize, Error>;
    /// Forgets the answers of one run.
    async fn discard(&self, run_id: &str) -> Result<usize, Error>;

    /// The answers of the latest run of `endpoint` that kept a success.
    async fn latest_recoverable(&self, endpoint: &str) -> Result<Vec<Listed>, Error> {
        let listed = self.list().await?;
        let run = listed
            .iter()
            .rev()
            .find(|l| l.endpoint == endpoint && l.is_success())
            .map(|l| l.run_id.clone());
        Ok(match run {
            Some(run) => listed.into_iter().filter(|l| l.run_id == run).collect(),
            None => Vec::new(),
        })
    }
}

/// How long a write that must not be lost (a rotated token, the answer
/// that carries it) is tried again while the backend is unreachable: a
/// database restart or a fail-over takes seconds.
const OUTAGE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs a backend write, trying again with backoff while the backend is
/// unavailable (only then: any other error is final).
pub async fn through_outages<T, F, Fut>(mut write: F) -> Result<T, crate::secrets::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, crate::secrets::Error>>,
{
    let started = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(100);
    loop {
        match write().await {
            Err(crate::secrets::Error::Unavailable { problem, .. })
                if started.elapsed() + pause < OUTAGE_PATIENCE =>
            {
                tracing::warn!("the backend is unavailable ({problem}); trying the write again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(2));
            }
            other => return other,
        }
    }
}

/// Applies one change to a document, as both backends define it.
pub fn apply_to_document(
    document: &mut Document,
    change: Change,
    by: &str,
    at: DateTime<Utc>,
    env: &str,
) -> Result<Changed, Error> {
    use crate::secrets::document::{NewValue, RollbackError};
    match change {
        Change::Set {
            name,
            value,
            expires_at,
            expect,
        } => {
            if let Some(expected) = expect {
                let found = document.get(&name).map_or(0, |e| e.version);
                if found != expected {
                    return Err(Error::Conflict {
                        name,
                        expected,
                        found,
                    });
                }
            }
            Ok(Changed::Set(document.set(
                &name,
                NewValue { value, expires_at },
                by,
                at,
            )))
        }
        Change::Remove { name } => match document.secrets.remove(&name) {
            Some(_) => Ok(Changed::Removed),
            None => Err(Error::SecretMissing {
                name,
                env: env.to_string(),
            }),
        },
        Change::Rollback { name, to } => document
            .rollback(&name, to, by, at)
            .map(|(restored, version)| Changed::RolledBack { restored, version })
            .map_err(|e| match e {
                RollbackError::NoSecret => Error::SecretMissing {
                    name: name.clone(),
                    env: env.to_string(),
                },
                RollbackError::NoHistory => {
                    Error::Invalid(format!("`{name}` has no earlier version to roll back to"))
                }
                RollbackError::AlreadyCurrent(v) => {
                    Error::Invalid(format!("version {v} of `{name}` is already current"))
                }
                RollbackError::UnknownVersion { version, available } => Error::Invalid(format!(
                    "`{name}` has no version {version}; earlier versions kept: {}",
                    if available.is_empty() {
                        "none".to_string()
                    } else {
                        available
                            .iter()
                            .map(u64::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                )),
            }),
    }
}

/// A recipients list after a change: one key more (not twice), or one
/// less (never the last).
pub fn edit_recipients(lines: &[String], change: &RecipientChange) -> Result<Vec<String>, Error> {
    use crate::secrets::keys::{Recipient, same_key, short_key};
    let mut lines = lines.to_vec();
    match change {
        RecipientChange::Add(key) => {
            Recipient::parse(key)
                .map_err(|problem| Error::Invalid(format!("`{key}`: {problem}")))?;
            if lines.iter().any(|l| same_key(l, key)) {
                return Err(Error::Invalid(format!(
                    "`{}` is already a recipient",
                    short_key(key)
                )));
            }
            lines.push(key.trim().to_string());
        }
        RecipientChange::Remove(key) => {
            let before = lines.len();
            lines.retain(|line| !same_key(line, key));
            if lines.len() == before {
                return Err(Error::Invalid(format!(
                    "`{}` is not a recipient",
                    short_key(key)
                )));
            }
            let left = lines
                .iter()
                .any(|l| !l.trim().is_empty() && !l.trim().starts_with('#'));
            if !left {
                return Err(Error::Invalid(
                    "this is the last recipient; a store needs at least one key that can decrypt it"
                        .into(),
                ));
            }
        }
    }
    Ok(lines)
}
