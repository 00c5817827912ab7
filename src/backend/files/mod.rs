//! The files backend: state in files beside the project, as svc always
//! kept it. `SECRETS_DIR/ENV.age` and `ENV.recipients` (the store, with
//! the API keys inside it), `SECRETS_DIR/.ENV.ENDPOINT.run.lock` (run
//! locks), `STATE_DIR/ENV/schedules.json` and `.scheduler.lock`,
//! `STATE_DIR/ENV/connections.json` and `connect_sessions.json`,
//! `STATE_DIR/ENV/journal/`, and `LOG_DIR/ENV/*.jsonl`. Locks are `flock`s:
//! they hold among processes that see the same filesystem. Async jobs live
//! in the memory of the one `svc serve`.

pub mod connections;
pub mod consent_sessions;
pub mod journal;
mod json_file;
pub mod log;
pub mod state;
pub mod store;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::jobs::Jobs;
use super::{
    Backend, Change, Changed, Held, JobRefused, JobStore, JobView, JournalStore, KeyIndex,
    KeyStore, LockFailure, Locks, LogName, LogStore, Options, RecipientChange, Revision,
    ScheduleStore, SecretStore,
};
use crate::backend::RunRecord;
use crate::backend::ScheduleState;
use crate::redact::Redactor;
use crate::secrets::atomic::{Lock, LockError};
use crate::secrets::document::ApiKey;
use crate::secrets::journal::{Entry, Listed};
use crate::secrets::{Document, Error, Identities, RecipientsFile};
use journal::Journal;
use state::StateFile;
use store::Store;

/// Opens the files of one environment.
pub fn open(
    secrets_dir: &Path,
    log_dir: &Path,
    state_dir: &Path,
    env: &str,
    options: &Options,
) -> Backend {
    let store = Store::new(secrets_dir, env)
        .expect("the environment name was checked")
        .with_lock_timeout(options.lock_timeout);
    let connections = Arc::new(connections::FileConnections::new(
        state_dir,
        env,
        options.lock_timeout,
    ));
    let secrets = Arc::new(FileSecrets {
        store: store.clone(),
        cache: Mutex::new(None),
        keys: Mutex::new(None),
        connections: connections.clone(),
    });
    Backend {
        env: env.to_string(),
        keys: secrets.clone(),
        accounts: secrets.clone(),
        secrets,
        locks: Arc::new(FileLocks {
            secrets_dir: secrets_dir.to_path_buf(),
            leader_lock: StateFile::new(state_dir, env).scheduler_lock_path(),
            env: env.to_string(),
            leader: Mutex::new(false),
        }),
        schedules: Arc::new(FileSchedules {
            file: StateFile::new(state_dir, env),
            states: Mutex::new(None),
        }),
        logs: Arc::new(FileLogs {
            log_dir: log_dir.to_path_buf(),
            env: env.to_string(),
        }),
        connections: connections.clone(),
        outbox: connections,
        consent_sessions: Arc::new(consent_sessions::FileConsentSessions::new(
            state_dir,
            env,
            options.lock_timeout,
        )),
        jobs: Arc::new(MemoryJobs(Jobs::new(options.max_jobs))),
        journal: Arc::new(FileJournal(Journal::new(
            journal::dir(state_dir, env),
            store.recipients_path(),
        ))),
        description: format!("files in `{}`", secrets_dir.display()),
    }
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| Error::Invalid("a file task stopped unexpectedly".into()))?
}

/// What identifies one version of the store file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    inode: u64,
    len: u64,
    modified: Option<std::time::SystemTime>,
}

fn stamp(path: &Path, env: &str) -> Result<Stamp, Error> {
    let meta = std::fs::metadata(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::StoreMissing {
                env: env.to_string(),
                path: path.to_path_buf(),
            }
        } else {
            Error::io("read", path, e)
        }
    })?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Ok(Stamp {
        inode,
        len: meta.len(),
        modified: meta.modified().ok(),
    })
}

/// The age-encrypted store, and its last decrypted document, kept while
/// the file does not change (one `stat` a read: a writer renames a new
/// file over it, so the inode changes).
pub struct FileSecrets {
    store: Store,
    cache: Mutex<Option<(Stamp, Arc<Document>)>>,
    /// The key index and the document it was last found in (held weakly:
    /// an old document, secrets and all, is not kept alive for it).
    keys: Mutex<Option<(Weak<Document>, KeyIndex)>>,
    /// Where an import records the accounts it creates.
    connections: Arc<connections::FileConnections>,
}

impl FileSecrets {
    fn cached(&self, document: Arc<Document>) {
        if let Ok(stamp) = stamp(&self.store.path(), self.store.env()) {
            *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = Some((stamp, document));
        }
    }

    fn read_now(&self, identities: &Identities) -> Result<Arc<Document>, Error> {
        let now = stamp(&self.store.path(), self.store.env())?;
        let mut cached = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((seen, document)) = cached.as_ref()
            && *seen == now
        {
            return Ok(document.clone());
        }
        let document = Arc::new(self.store.read(identities)?);
        *cached = Some((now, document.clone()));
        Ok(document)
    }

    /// The key index of a document: the last one while the document is the
    /// same, or a new document holds the same keys (a secret was written);
    /// else a new index, built once for this version of the table.
    fn key_index(&self, document: &Arc<Document>) -> KeyIndex {
        let mut index = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((found_in, keys)) = index.as_mut() {
            if std::ptr::eq(found_in.as_ptr(), Arc::as_ptr(document)) {
                return keys.clone();
            }
            if **keys == document.api_keys {
                *found_in = Arc::downgrade(document);
                return keys.clone();
            }
        }
        let keys = Arc::new(document.api_keys.clone());
        *index = Some((Arc::downgrade(document), keys.clone()));
        keys
    }
}

#[async_trait]
impl SecretStore for FileSecrets {
    fn describe(&self) -> String {
        format!("`{}`", self.store.path().display())
    }

    async fn exists(&self) -> Result<bool, Error> {
        Ok(self.store.exists())
    }

    async fn init(&self, recipients: &str) -> Result<(), Error> {
        let store = self.store.clone();
        let recipients = recipients.to_string();
        blocking(move || store.init(&recipients)).await
    }

    async fn document(&self, identities: &Identities) -> Result<Arc<Document>, Error> {
        // A stat and, when the file changed, a decryption: short enough for
        // the async threads (the server's hot path reads the cached one).
        self.read_now(identities)
    }

    async fn apply(
        &self,
        identities: &Identities,
        changes: Vec<Change>,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<(Vec<Changed>, Option<Arc<Document>>), Error> {
        let store = self.store.clone();
        let keys = identities.clone();
        let by = by.to_string();
        let env = store.env().to_string();
        let (changed, document) = blocking(move || {
            store.update(&keys, |doc| {
                let mut done = Vec::new();
                for change in changes {
                    done.push(super::apply_to_document(doc, change, &by, at, &env)?);
                }
                Ok(done)
            })
        })
        .await?;
        let document = Arc::new(document);
        self.cached(document.clone());
        Ok((changed, Some(document)))
    }

    fn cached_document(&self) -> Option<Arc<Document>> {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|(_, document)| document.clone())
    }

    async fn recipients(&self) -> Result<Vec<String>, Error> {
        Ok(RecipientsFile::read(&self.store.recipients_path())?.lines)
    }

    async fn change_recipients(
        &self,
        identities: &Identities,
        change: RecipientChange,
    ) -> Result<Vec<String>, Error> {
        let store = self.store.clone();
        let keys = identities.clone();
        blocking(move || {
            store.change_recipients(&keys, |file| {
                file.lines = super::edit_recipients(&file.lines, &change)?;
                Ok(file.lines.clone())
            })
        })
        .await
    }

    async fn export(&self, _identities: &Identities) -> Result<Vec<u8>, Error> {
        let path = self.store.path();
        std::fs::read(&path).map_err(|e| Error::io("read", &path, e))
    }
}

/// The values of per-account secrets live in the store's document too,
/// under `accounts`: one file, one lock, for small numbers of connections.
#[async_trait]
impl crate::backend::AccountSecrets for FileSecrets {
    async fn account(
        &self,
        identities: &Identities,
        key: &crate::backend::ConnectionKey,
    ) -> Result<Option<(crate::backend::ConnectionState, Arc<Document>)>, Error> {
        use crate::backend::ConnectionStore;
        let Some(state) = self.connections.load_one(key).await? else {
            return Ok(None);
        };
        let values = crate::backend::AccountSecrets::document(self, identities, key).await?;
        Ok(Some((state, values)))
    }

    async fn document(
        &self,
        identities: &Identities,
        key: &crate::backend::ConnectionKey,
    ) -> Result<Arc<Document>, Error> {
        let store = self.read_now(identities)?;
        let mut document = Document::new(self.store.env());
        if let Some(values) = store
            .accounts
            .get(&key.client)
            .and_then(|c| c.get(&key.connection_id))
        {
            document.secrets = values.clone();
        }
        Ok(Arc::new(document))
    }

    async fn apply(
        &self,
        identities: &Identities,
        key: &crate::backend::ConnectionKey,
        changes: Vec<Change>,
        by: &str,
        at: DateTime<Utc>,
        locks: &[&dyn Held],
    ) -> Result<Vec<Changed>, Error> {
        if locks.iter().any(|l| l.lost()) {
            return Err(Error::LockLost);
        }
        let store = self.store.clone();
        let keys = identities.clone();
        let (by, key) = (by.to_string(), key.clone());
        let env = store.env().to_string();
        let (changed, document) = blocking(move || {
            store.update(&keys, |doc| {
                let mut values = Document::new(&env);
                values.secrets = doc
                    .accounts
                    .get_mut(&key.client)
                    .and_then(|c| c.remove(&key.connection_id))
                    .unwrap_or_default();
                let mut done = Vec::new();
                for change in changes {
                    done.push(super::apply_to_document(
                        &mut values,
                        change,
                        &by,
                        at,
                        &env,
                    )?);
                }
                if !values.secrets.is_empty() {
                    doc.accounts
                        .entry(key.client.clone())
                        .or_default()
                        .insert(key.connection_id.clone(), values.secrets);
                }
                Ok(done)
            })
        })
        .await?;
        self.cached(Arc::new(document));
        Ok(changed)
    }

    async fn import(
        &self,
        identities: &Identities,
        client: &str,
        accounts: &[crate::backend::accounts::Imported],
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<bool>, Error> {
        use crate::backend::ConnectionStore;
        // The values of the accounts not known yet, then the accounts.
        let mut absent = Vec::new();
        for account in accounts {
            let key = crate::backend::ConnectionKey {
                client: client.to_string(),
                connection_id: account.connection_id.clone(),
            };
            if self.connections.load_one(&key).await?.is_none() {
                absent.push(account);
            }
        }
        let store = self.store.clone();
        let keys = identities.clone();
        let (client_name, by) = (client.to_string(), by.to_string());
        let env = store.env().to_string();
        let writes: Vec<(String, Vec<Change>)> = absent
            .iter()
            .map(|account| {
                let changes = account
                    .values
                    .iter()
                    .map(|(name, value, expires_at)| Change::Set {
                        name: name.clone(),
                        value: value.clone(),
                        expires_at: *expires_at,
                        expect: None,
                    })
                    .collect();
                (account.connection_id.clone(), changes)
            })
            .collect();
        let ((), document) = blocking(move || {
            store.update(&keys, |doc| {
                for (id, changes) in writes {
                    let mut values = Document::new(&env);
                    for change in changes {
                        super::apply_to_document(&mut values, change, &by, at, &env)?;
                    }
                    doc.accounts
                        .entry(client_name.clone())
                        .or_default()
                        .insert(id, values.secrets);
                }
                Ok(())
            })
        })
        .await?;
        self.cached(Arc::new(document));
        let created = self
            .connections
            .create_absent(
                absent
                    .iter()
                    .map(|account| {
                        (
                            crate::backend::ConnectionKey {
                                client: client.to_string(),
                                connection_id: account.connection_id.clone(),
                            },
                            crate::backend::accounts::imported_state(&account.tags, at),
                        )
                    })
                    .collect(),
            )
            .await?;
        let mut made = created.into_iter();
        let absent_ids: Vec<&str> = absent.iter().map(|a| a.connection_id.as_str()).collect();
        Ok(accounts
            .iter()
            .map(|account| {
                absent_ids.contains(&account.connection_id.as_str()) && made.next().unwrap_or(false)
            })
            .collect())
    }

    async fn forget(
        &self,
        identities: &Identities,
        key: &crate::backend::ConnectionKey,
    ) -> Result<(), Error> {
        let store = self.store.clone();
        let keys = identities.clone();
        let key = key.clone();
        let ((), document) = blocking(move || {
            store.update(&keys, |doc| {
                if let Some(client) = doc.accounts.get_mut(&key.client) {
                    client.remove(&key.connection_id);
                    if client.is_empty() {
                        doc.accounts.remove(&key.client);
                    }
                }
                Ok(())
            })
        })
        .await?;
        self.cached(Arc::new(document));
        Ok(())
    }
}

/// The API keys of the files backend live in the store's document.
#[async_trait]
impl KeyStore for FileSecrets {
    async fn keys(&self, identities: &Identities) -> Result<KeyIndex, Error> {
        // A stat, and a new index only when the file changed its keys.
        Ok(self.key_index(&self.read_now(identities)?))
    }

    async fn add(&self, identities: &Identities, id: &str, key: ApiKey) -> Result<(), Error> {
        let store = self.store.clone();
        let keys = identities.clone();
        let id = id.to_string();
        let ((), document) = blocking(move || {
            store.update(&keys, |doc| {
                doc.api_keys.insert(id, key);
                Ok(())
            })
        })
        .await?;
        self.cached(Arc::new(document));
        Ok(())
    }

    async fn revoke(
        &self,
        identities: &Identities,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), Error> {
        let store = self.store.clone();
        let keys = identities.clone();
        let id = id.to_string();
        let ((), document) = blocking(move || {
            store.update(&keys, |doc| {
                revoke_in(&mut doc.api_keys, &id, at)?;
                Ok(())
            })
        })
        .await?;
        self.cached(Arc::new(document));
        Ok(())
    }
}

/// Revokes a key in a table of keys.
pub fn revoke_in(
    keys: &mut BTreeMap<String, ApiKey>,
    id: &str,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    match keys.get_mut(id) {
        None => Err(Error::Invalid(format!(
            "no key `{id}`; `svc key list` shows the keys"
        ))),
        Some(key) if key.revoked_at.is_some() => {
            Err(Error::Invalid(format!("key `{id}` is already revoked")))
        }
        Some(key) => {
            key.revoked_at = Some(at);
            Ok(())
        }
    }
}

struct FileLock(#[allow(dead_code)] Lock);

impl Held for FileLock {}

/// Held while this process leads the schedules.
struct Leading;

impl Held for Leading {}

/// `flock`s in the secrets and state directories.
struct FileLocks {
    secrets_dir: PathBuf,
    leader_lock: PathBuf,
    env: String,
    /// Whether this process holds the scheduler lock (files: one process
    /// runs every fire).
    leader: Mutex<bool>,
}

fn lock_error(path: &Path, error: LockError) -> LockFailure {
    match error {
        LockError::TimedOut => LockFailure::TimedOut,
        LockError::Io(e) => LockFailure::Failed(Error::io("lock", path, e)),
    }
}

#[async_trait]
impl Locks for FileLocks {
    fn shared(&self) -> bool {
        false
    }

    async fn run_lock(
        &self,
        endpoint: &str,
        timeout: Duration,
    ) -> Result<Box<dyn Held>, LockFailure> {
        crate::secrets::atomic::create_private_dir(&self.secrets_dir)
            .map_err(|e| LockFailure::Failed(Error::io("create", &self.secrets_dir, e)))?;
        let path = self
            .secrets_dir
            .join(format!(".{}.{endpoint}.run.lock", self.env));
        let attempt = path.clone();
        let acquired = tokio::task::spawn_blocking(move || Lock::acquire(&attempt, timeout))
            .await
            .map_err(|_| LockFailure::Failed(Error::Invalid("the lock task failed".into())))?;
        match acquired {
            Ok(lock) => Ok(Box::new(FileLock(lock))),
            Err(e) => Err(lock_error(&path, e)),
        }
    }

    async fn schedule_leader(&self) -> Result<Option<Box<dyn Held>>, Error> {
        if let Some(dir) = self.leader_lock.parent() {
            let _ = crate::secrets::atomic::create_private_dir(dir);
        }
        let path = self.leader_lock.clone();
        let attempt = path.clone();
        let acquired = tokio::task::spawn_blocking(move || Lock::acquire(&attempt, Duration::ZERO))
            .await
            .map_err(|_| Error::Invalid("the lock task failed".into()))?;
        match acquired {
            Ok(lock) => {
                *self.leader.lock().unwrap_or_else(|p| p.into_inner()) = true;
                Ok(Some(Box::new(FileLock(lock))))
            }
            Err(LockError::TimedOut) => Ok(None),
            Err(e) => match lock_error(&path, e) {
                LockFailure::Failed(error) => Err(error),
                LockFailure::TimedOut => Ok(None),
            },
        }
    }

    async fn claim_fire(&self, _schedule: &str) -> Result<Option<Box<dyn Held>>, Error> {
        // The leader runs every fire; another process runs none.
        let leading = *self.leader.lock().unwrap_or_else(|p| p.into_inner());
        Ok(leading.then(|| Box::new(Leading) as Box<dyn Held>))
    }
}

/// `STATE_DIR/ENV/schedules.json`, written whole.
struct FileSchedules {
    file: StateFile,
    /// The states as last loaded or saved: saving one schedule rewrites
    /// the file with the others as they were.
    states: Mutex<Option<BTreeMap<String, ScheduleState>>>,
}

#[async_trait]
impl ScheduleStore for FileSchedules {
    fn describe(&self) -> String {
        format!("`{}`", self.file.path.display())
    }

    async fn load(&self) -> Result<BTreeMap<String, ScheduleState>, Error> {
        let states = self
            .file
            .load()
            .map_err(|e| Error::io("read", &self.file.path, e))?;
        *self.states.lock().unwrap_or_else(|p| p.into_inner()) = Some(states.clone());
        Ok(states)
    }

    async fn load_one(&self, schedule: &str) -> Result<Option<ScheduleState>, Error> {
        // One process runs the schedules: what it saved is what is stored.
        let known = self
            .states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|s| s.get(schedule).cloned());
        match known {
            Some(state) => Ok(state),
            None => Ok(self.load().await?.get(schedule).cloned()),
        }
    }

    async fn save(&self, states: &BTreeMap<String, ScheduleState>) -> Result<(), Error> {
        let all = {
            let mut known = self.states.lock().unwrap_or_else(|p| p.into_inner());
            let all = known.get_or_insert_with(BTreeMap::new);
            for (name, state) in states {
                all.insert(name.clone(), state.clone());
            }
            all.clone()
        };
        let file = self.file.clone();
        blocking(move || {
            file.save(&all)
                .map_err(|e| Error::io("write", &file.path, e))
        })
        .await
    }
}

/// JSON lines in `LOG_DIR/ENV/`.
struct FileLogs {
    log_dir: PathBuf,
    env: String,
}

impl FileLogs {
    fn path(&self, log: LogName<'_>) -> PathBuf {
        match log {
            LogName::Endpoint(endpoint) => log::path(&self.log_dir, &self.env, endpoint),
            LogName::Schedule(schedule) => self
                .log_dir
                .join(&self.env)
                .join(format!("schedule.{schedule}.jsonl")),
        }
    }
}

#[async_trait]
impl LogStore for FileLogs {
    fn describe(&self, log: LogName<'_>) -> String {
        format!("`{}`", self.path(log).display())
    }

    async fn append(&self, log: LogName<'_>, record: &RunRecord) -> Result<(), Error> {
        let path = self.path(log);
        log::append_to(&path, record, &Redactor::default())
            .map_err(|e| Error::io("write", &path, e))
    }

    async fn read_last(&self, log: LogName<'_>, count: usize) -> Result<Vec<RunRecord>, Error> {
        let path = self.path(log);
        blocking(move || log::read_last(&path, count).map_err(|e| Error::io("read", &path, e)))
            .await
    }

    async fn any(&self) -> Result<bool, Error> {
        Ok(self.log_dir.join(&self.env).is_dir())
    }

    async fn audit(&self, line: &serde_json::Value) -> Result<Option<Revision>, Error> {
        let path = self.log_dir.join(&self.env).join("audit.jsonl");
        log::append_line(&path, format!("{line}\n").as_bytes())
            .map_err(|e| Error::io("write", &path, e))?;
        Ok(None)
    }
}

/// Jobs in this process's memory.
struct MemoryJobs(Jobs);

#[async_trait]
impl JobStore for MemoryJobs {
    async fn start(&self, id: &str, owner: &str, endpoint: &str) -> Result<(), JobRefused> {
        self.0
            .start(id, owner, endpoint)
            .map_err(|full| JobRefused::Full { max: full.max })
    }

    async fn finish(&self, id: &str, record: serde_json::Value) -> Result<(), Error> {
        self.0.finish(id, record);
        Ok(())
    }

    async fn view(&self, id: &str, caller: &str) -> Result<Option<Result<JobView, ()>>, Error> {
        Ok(self.0.view(id, caller))
    }
}

/// The journal's files.
struct FileJournal(Journal);

#[async_trait]
impl JournalStore for FileJournal {
    fn describe(&self) -> String {
        format!("`{}`", self.0.dir().display())
    }

    async fn record(&self, entry: &Entry) -> Result<usize, Error> {
        let journal = self.0.clone();
        let entry = entry.clone();
        blocking(move || journal.record(&entry)).await
    }

    async fn list(&self) -> Result<Vec<Listed>, Error> {
        self.0.list()
    }

    async fn read(&self, listed: &Listed, identities: &Identities) -> Result<Entry, Error> {
        self.0.read(listed, identities)
    }

    async fn settled(&self, endpoint: &str, run_id: &str) -> Result<usize, Error> {
        self.0.settled(endpoint, run_id)
    }

    async fn discard(&self, run_id: &str) -> Result<usize, Error> {
        self.0.discard(run_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::SecretValue;

    /// A files backend with a new store of `keys` API keys.
    fn backend_with_keys(dir: &Path, keys: usize) -> (Backend, Identities, Vec<String>) {
        let identity = age::x25519::Identity::generate();
        let key_path = dir.join("key.txt");
        {
            use age::secrecy::ExposeSecret;
            std::fs::write(
                &key_path,
                format!("{}\n", identity.to_string().expose_secret()),
            )
            .unwrap();
        }
        let identities = Identities::read(&[key_path]).unwrap();
        let secrets_dir = dir.join("secrets");
        let store = Store::new(&secrets_dir, "dev").unwrap();
        store.init(&format!("{}\n", identity.to_public())).unwrap();
        let now = crate::secrets::document::now();
        let (ids, _) = store
            .update(&identities, |doc| {
                let mut ids = Vec::new();
                for _ in 0..keys {
                    let key = crate::secrets::api_keys::generate("bot", None, None, now).unwrap();
                    ids.push(key.id.clone());
                    doc.api_keys.insert(key.id, key.record);
                }
                Ok(ids)
            })
            .unwrap();
        let backend = open(&secrets_dir, dir, dir, "dev", &Options::default());
        (backend, identities, ids)
    }

    #[tokio::test]
    async fn the_key_index_is_shared_until_the_key_table_changes() {
        let dir = tempfile::tempdir().unwrap();
        let (backend, identities, ids) = backend_with_keys(dir.path(), 50);
        let first = backend.keys.keys(&identities).await.unwrap();
        assert_eq!(first.len(), 50);
        // Every request reads the same index: no copy of the table.
        let again = backend.keys.keys(&identities).await.unwrap();
        assert!(Arc::ptr_eq(&first, &again), "the key table was copied");
        // A secret written changes the document, not the key table.
        let set = Change::Set {
            name: "TOKEN".into(),
            value: SecretValue::new("v1".to_string()),
            expires_at: None,
            expect: None,
        };
        let now = crate::secrets::document::now();
        backend
            .secrets
            .apply(&identities, vec![set], "test", now)
            .await
            .unwrap();
        let after_secret = backend.keys.keys(&identities).await.unwrap();
        assert!(Arc::ptr_eq(&first, &after_secret), "rebuilt for a secret");
        // A key revoked here, or by another process: seen at once.
        backend
            .keys
            .revoke(&identities, &ids[0], now)
            .await
            .unwrap();
        let revoked = backend.keys.keys(&identities).await.unwrap();
        assert!(!Arc::ptr_eq(&first, &revoked));
        assert!(revoked[&ids[0]].revoked_at.is_some());
        assert!(
            first[&ids[0]].revoked_at.is_none(),
            "an index never changes"
        );
        let other = open(
            &dir.path().join("secrets"),
            dir.path(),
            dir.path(),
            "dev",
            &Options::default(),
        );
        other.keys.revoke(&identities, &ids[1], now).await.unwrap();
        let seen = backend.keys.keys(&identities).await.unwrap();
        assert!(seen[&ids[1]].revoked_at.is_some());
    }
}
