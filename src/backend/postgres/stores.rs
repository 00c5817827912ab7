//! Each store of the backend, on the database's tables.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::Object;
use tokio_postgres::GenericClient;
use tokio_postgres::types::Type;

use super::crypto::{self, DataKey};
use super::journal::{PgJournal, Spool};
use super::locks::PgLocks;
use super::{Database, KnownRecipients, KnownRevision, lock_key, unavailable};
use crate::backend::RunRecord;
use crate::backend::ScheduleState;
use crate::backend::outbox::{Attempt, Delivery, Retry, Status};
use crate::backend::{
    Backend, Change, Changed, Fence, Held, JobRefused, JobStore, JobView, KeyIndex, KeyStore,
    LogName, LogStore, Options, RecipientChange, ScheduleStore, SecretStore,
};
use crate::backend::{
    ConnectionKey, ConnectionState, ConnectionStore, Observation, Observed, Outbox, Subscriber,
};
use crate::secrets::document::{ApiKey, HISTORY_LIMIT, PastVersion};
use crate::secrets::{Document, Error, Identities, SecretValue};

/// The stores of one environment in a database; `state_dir` keeps the
/// answers that wait for the database ([`super::journal::Spool`]).
pub async fn backend(
    database: Database,
    state_dir: &std::path::Path,
    env: &str,
    options: &Options,
) -> Backend {
    let known = KnownRevision::new();
    let recipients = KnownRecipients::default();
    let secrets = Arc::new(PgSecrets {
        db: database.clone(),
        env: env.to_string(),
        keys: Mutex::new(HashMap::new()),
        cache: Mutex::new(None),
        api_keys: Mutex::new(None),
        known: known.clone(),
        recipients: recipients.clone(),
    });
    let spool = Arc::new(Spool::new(state_dir, env));
    let journal = PgJournal::new(
        database.clone(),
        env,
        spool.clone(),
        known.clone(),
        recipients,
    );
    // Known from the start, so that an answer can be sealed even when the
    // database goes away before the first one comes (and the environment
    // known to exist without asking again).
    let _ = journal.recipients().await;
    let bounded_by = database.clone();
    super::deadline::bounded(
        Backend {
            env: env.to_string(),
            keys: secrets.clone(),
            secrets: secrets.clone(),
            locks: Arc::new(PgLocks::new(database.clone(), env, spool)),
            schedules: Arc::new(PgSchedules {
                db: database.clone(),
                env: env.to_string(),
            }),
            logs: Arc::new(PgLogs {
                db: database.clone(),
                env: env.to_string(),
                audit: super::audit::GroupCommit::new(database.clone(), env, known),
                keep_records: options.log_keep_records,
                keep_days: options.log_keep_days,
            }),
            jobs: Arc::new(PgJobs {
                db: database.clone(),
                env: env.to_string(),
                max: options.max_jobs.max(1),
            }),
            journal: Arc::new(journal),
            connections: Arc::new(PgConnections {
                db: database.clone(),
                env: env.to_string(),
            }),
            accounts: Arc::new(super::accounts::PgAccounts::new(
                database.clone(),
                env,
                secrets.clone(),
            )),
            outbox: Arc::new(PgOutbox {
                db: database.clone(),
                env: env.to_string(),
            }),
            consent_sessions: Arc::new(super::consent_sessions::PgConsentSessions::new(
                database.clone(),
                env,
            )),
            description: format!("PostgreSQL at {}", database.shown),
        },
        &bounded_by,
    )
}

/// The secrets of an environment.
pub struct PgSecrets {
    db: Database,
    env: String,
    /// Data keys opened so far, by id.
    keys: Mutex<HashMap<i32, DataKey>>,
    /// The document as of a revision of the environment.
    cache: Mutex<Option<(i64, Arc<Document>)>>,
    /// The key index as of a revision.
    api_keys: Mutex<Option<(i64, KeyIndex)>>,
    /// The newest revision heard of: the caches are current for a read
    /// `as_known` while they are at it.
    known: KnownRevision,
    /// The recipients, read along with the revision.
    recipients: KnownRecipients,
}

/// A row of `svc_secrets` or `svc_secret_history`, before opening.
struct Sealed {
    version: i64,
    key_id: i32,
    sealed: Vec<u8>,
    updated_at: Option<DateTime<Utc>>,
    updated_by: Option<String>,
    expires_at: Option<DateTime<Utc>>,
}

impl Sealed {
    /// The six columns `version, key_id, sealed, updated_at, updated_by,
    /// expires_at` of `row`, in that order from column `first`.
    fn read(row: &tokio_postgres::Row, first: usize) -> Sealed {
        Sealed {
            version: row.get(first),
            key_id: row.get(first + 1),
            sealed: row.get::<_, Option<Vec<u8>>>(first + 2).unwrap_or_default(),
            updated_at: row.get(first + 3),
            updated_by: row.get(first + 4),
            expires_at: row.get(first + 5),
        }
    }
}

impl PgSecrets {
    fn missing(&self) -> Error {
        Error::StoreMissing {
            env: self.env.clone(),
            path: self.db.shown.clone().into(),
        }
    }

    /// The environment's revision, and its current data key and recipients.
    async fn environment(&self, client: &impl GenericClient) -> Result<(i64, i32, String), Error> {
        let row = client
            .query_opt(
                "SELECT revision, current_key, recipients FROM svc_environments WHERE name = $1",
                &[&self.env],
            )
            .await
            .map_err(unavailable)?
            .ok_or_else(|| self.missing())?;
        Ok((row.get(0), row.get(1), row.get(2)))
    }

    /// The environment's revision, by a statement prepared once per
    /// session: what every read and every authenticated request asks. The
    /// recipients come along, for the journal to seal answers to.
    async fn revision_now(&self, client: &Object) -> Result<i64, Error> {
        let statement = client
            .prepare_cached("SELECT revision, recipients FROM svc_environments WHERE name = $1")
            .await
            .map_err(unavailable)?;
        let row = client
            .query_opt(&statement, &[&self.env])
            .await
            .map_err(unavailable)?
            .ok_or_else(|| self.missing())?;
        let revision = row.get(0);
        self.known.heard(revision);
        self.recipients.heard(revision, row.get::<_, &str>(1));
        Ok(revision)
    }

    /// A data key, opened with the identities (and kept open).
    pub(super) async fn data_key(
        &self,
        client: &impl GenericClient,
        identities: &Identities,
        id: i32,
    ) -> Result<DataKey, Error> {
        if let Some(key) = self.keys.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
            return Ok(key.clone());
        }
        let row = client
            .query_typed_opt(
                "SELECT wrapped FROM svc_data_keys WHERE env = $1 AND id = $2",
                &[(&self.env, Type::TEXT), (&id, Type::INT4)],
            )
            .await
            .map_err(unavailable)?
            .ok_or_else(|| Error::Corrupted {
                path: self.db.shown.clone().into(),
                problem: format!("data key {id} of `{}` is missing", self.env),
            })?;
        let wrapped: Vec<u8> = row.get(0);
        let key = crypto::unwrap(&wrapped, identities, &self.env)?;
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, key.clone());
        Ok(key)
    }

    async fn open_value(
        &self,
        client: &impl GenericClient,
        identities: &Identities,
        name: &str,
        row: &Sealed,
    ) -> Result<SecretValue, Error> {
        let key = self.data_key(client, identities, row.key_id).await?;
        let plaintext = crypto::open(&key, &self.env, name, row.version, &row.sealed)?;
        let text = String::from_utf8(plaintext.to_vec()).map_err(|_| Error::Corrupted {
            path: self.db.shown.clone().into(),
            problem: format!("the value of `{name}` is not text"),
        })?;
        Ok(SecretValue::new(text))
    }

    /// The document, refreshed with the rows that changed since the cached
    /// revision (all of them the first time).
    async fn refreshed(&self, identities: &Identities) -> Result<Arc<Document>, Error> {
        let client = self.db.client().await?;
        let cached = self.cache.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let since = cached.as_ref().map_or(-1, |(seen, _)| *seen);
        // The revision, and the rows changed since the cached one, in one
        // statement (one snapshot, prepared once per session): when nothing
        // changed, its one row holds the revision alone.
        let statement = client
            .prepare_cached(
                "SELECT e.revision, e.recipients, s.name, s.version, s.key_id, s.sealed, \
                        s.updated_at, s.updated_by, s.expires_at, s.removed, s.revision \
                 FROM svc_environments e \
                 LEFT JOIN svc_secrets s ON s.env = e.name AND s.revision > $2 \
                 WHERE e.name = $1",
            )
            .await
            .map_err(unavailable)?;
        let rows = client
            .query(&statement, &[&self.env, &since])
            .await
            .map_err(unavailable)?;
        let first = rows.first().ok_or_else(|| self.missing())?;
        let revision: i64 = first.get(0);
        self.known.heard(revision);
        self.recipients.heard(revision, first.get::<_, &str>(1));
        if let Some((seen, document)) = &cached
            && *seen == revision
        {
            return Ok(document.clone());
        }
        let mut document = match &cached {
            Some((_, document)) => (**document).clone(),
            None => Document::new(&self.env),
        };
        let mut newest = revision;
        for row in rows {
            // The one row of an environment where nothing changed.
            let Some(name) = row.get::<_, Option<String>>(2) else {
                continue;
            };
            let removed: bool = row.get(9);
            newest = newest.max(row.get::<_, i64>(10));
            if removed {
                document.secrets.remove(&name);
                continue;
            }
            let sealed = Sealed::read(&row, 3);
            let value = self
                .open_value(&**client, identities, &name, &sealed)
                .await?;
            document.secrets.insert(
                name,
                crate::secrets::Entry {
                    value,
                    version: sealed.version as u64,
                    updated_at: sealed.updated_at,
                    updated_by: sealed.updated_by,
                    expires_at: sealed.expires_at,
                    history: Vec::new(),
                },
            );
        }
        let document = Arc::new(document);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        // Two reads may refresh at once: the cache never goes back to the
        // older of their answers.
        if let Some((have, newer)) = &*cache
            && *have > newest
        {
            return Ok(newer.clone());
        }
        *cache = Some((newest, document.clone()));
        Ok(document)
    }

    /// The history of one secret, newest first.
    async fn history(
        &self,
        client: &impl GenericClient,
        identities: &Identities,
        name: &str,
    ) -> Result<Vec<PastVersion>, Error> {
        let rows = client
            .query(
                "SELECT version, key_id, sealed, updated_at, updated_by, expires_at \
                 FROM svc_secret_history WHERE env = $1 AND name = $2 ORDER BY version DESC",
                &[&self.env, &name],
            )
            .await
            .map_err(unavailable)?;
        let mut out = Vec::new();
        for row in rows {
            let sealed = Sealed::read(&row, 0);
            out.push(PastVersion {
                value: self.open_value(client, identities, name, &sealed).await?,
                version: sealed.version as u64,
                updated_at: sealed.updated_at,
                updated_by: sealed.updated_by,
                expires_at: sealed.expires_at,
            });
        }
        Ok(out)
    }

    /// The whole store with every history: what `export` writes.
    async fn full_document(&self, identities: &Identities) -> Result<Document, Error> {
        let mut document = (*self.refreshed(identities).await?).clone();
        let client = self.db.client().await?;
        let names: Vec<String> = document.secrets.keys().cloned().collect();
        for name in names {
            let history = self.history(&**client, identities, &name).await?;
            if let Some(entry) = document.secrets.get_mut(&name) {
                entry.history = history;
            }
        }
        document.api_keys = (*self.keys(identities).await?).clone();
        Ok(document)
    }
}

/// A secret's current row, as a write or `svc backend migrate` stores it.
pub(super) struct CurrentRow<'a> {
    pub name: &'a str,
    pub version: i64,
    pub key_id: i32,
    pub sealed: &'a [u8],
    pub updated_at: Option<DateTime<Utc>>,
    pub updated_by: Option<&'a str>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revision: i64,
}

/// Writes a secret's current row, in place of the one there (a removed
/// secret's too).
pub(super) async fn upsert_secret(
    transaction: &tokio_postgres::Transaction<'_>,
    env: &str,
    row: &CurrentRow<'_>,
) -> Result<u64, Error> {
    transaction
        .execute_typed(
            "INSERT INTO svc_secrets \
             (env, name, version, key_id, sealed, updated_at, updated_by, expires_at, removed, revision) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, false, $9) \
             ON CONFLICT (env, name) DO UPDATE SET version = $3, key_id = $4, sealed = $5, \
             updated_at = $6, updated_by = $7, expires_at = $8, removed = false, revision = $9",
            &[
                (&env, Type::TEXT),
                (&row.name, Type::TEXT),
                (&row.version, Type::INT8),
                (&row.key_id, Type::INT4),
                (&row.sealed, Type::BYTEA),
                (&row.updated_at, Type::TIMESTAMPTZ),
                (&row.updated_by, Type::TEXT),
                (&row.expires_at, Type::TIMESTAMPTZ),
                (&row.revision, Type::INT8),
            ],
        )
        .await
        .map_err(unavailable)
}

/// Whether the session a fence names still holds its advisory lock (a
/// `bigint` key shows in `pg_locks` as its high and low halves).
pub(super) async fn still_held(
    transaction: &tokio_postgres::Transaction<'_>,
    fence: &Fence,
) -> Result<bool, Error> {
    let key = fence.key as u64;
    let (high, low) = ((key >> 32) as u32, key as u32);
    let row = transaction
        .query_typed_one(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND pid = $1 AND classid = $2 AND objid = $3 AND objsubid = 1)",
            &[
                (&fence.session, Type::INT4),
                (&high, Type::OID),
                (&low, Type::OID),
            ],
        )
        .await
        .map_err(unavailable)?;
    Ok(row.get(0))
}

/// Bumps an environment's revision in a transaction (locking its row:
/// writers of one environment take turns); returns it and the current key.
async fn bump(
    transaction: &tokio_postgres::Transaction<'_>,
    env: &str,
    missing: impl FnOnce() -> Error,
) -> Result<(i64, i32, String), Error> {
    let row = transaction
        .query_typed_opt(
            "UPDATE svc_environments SET revision = revision + 1 WHERE name = $1 \
             RETURNING revision, current_key, recipients",
            &[(&env, Type::TEXT)],
        )
        .await
        .map_err(unavailable)?
        .ok_or_else(missing)?;
    Ok((row.get(0), row.get(1), row.get(2)))
}

#[async_trait]
impl SecretStore for PgSecrets {
    fn describe(&self) -> String {
        format!("the `{}` store in {}", self.env, self.db.shown)
    }

    async fn ping(&self) -> Result<(), Error> {
        let client = self.db.client().await?;
        client.simple_query("SELECT 1").await.map_err(unavailable)?;
        Ok(())
    }

    async fn exists(&self) -> Result<bool, Error> {
        if self.recipients.last().is_some() {
            return Ok(true);
        }
        let client = self.db.client().await?;
        let row = client
            .query_opt(
                "SELECT 1 FROM svc_environments WHERE name = $1",
                &[&self.env],
            )
            .await
            .map_err(unavailable)?;
        Ok(row.is_some())
    }

    async fn init(&self, recipients: &str) -> Result<(), Error> {
        let key = crypto::new_key()?;
        let wrapped = crypto::wrap(&key, recipients)?;
        let mut client = self.db.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        let inserted = transaction
            .execute(
                "INSERT INTO svc_environments (name, recipients, current_key) VALUES ($1, $2, 1) \
                 ON CONFLICT (name) DO NOTHING",
                &[&self.env, &recipients],
            )
            .await
            .map_err(unavailable)?;
        if inserted == 0 {
            return Err(Error::StoreExists {
                env: self.env.clone(),
                path: self.db.shown.clone().into(),
            });
        }
        transaction
            .execute(
                "INSERT INTO svc_data_keys (env, id, wrapped) VALUES ($1, 1, $2)",
                &[&self.env, &wrapped],
            )
            .await
            .map_err(unavailable)?;
        transaction.commit().await.map_err(unavailable)?;
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(1, key);
        Ok(())
    }

    async fn document(&self, identities: &Identities) -> Result<Arc<Document>, Error> {
        self.refreshed(identities).await
    }

    async fn apply(
        &self,
        identities: &Identities,
        changes: Vec<Change>,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<(Vec<Changed>, Option<Arc<Document>>), Error> {
        self.apply_fenced(identities, changes, by, at, &[]).await
    }

    async fn apply_fenced(
        &self,
        identities: &Identities,
        changes: Vec<Change>,
        by: &str,
        at: DateTime<Utc>,
        locks: &[&dyn Held],
    ) -> Result<(Vec<Changed>, Option<Arc<Document>>), Error> {
        let mut fences = Vec::new();
        for lock in locks {
            match lock.fence() {
                Some(fence) if !lock.lost() => fences.push(fence),
                _ => return Err(Error::LockLost),
            }
        }
        let mut client = self.db.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        let (revision, current_key, _) = bump(&transaction, &self.env, || self.missing()).await?;
        let key = self
            .data_key(&*transaction, identities, current_key)
            .await?;
        let mut current = self.current_rows(&transaction, &changes).await?;
        let mut done = Vec::new();
        for change in changes {
            done.push(
                self.apply_one(
                    &transaction,
                    identities,
                    &key,
                    current_key,
                    revision,
                    &mut current,
                    change,
                    by,
                    at,
                )
                .await?,
            );
        }
        // Last, after the row locks that order this write among others: a
        // run that took a lock after this one lost it bumped nothing yet.
        for fence in &fences {
            if !still_held(&transaction, fence).await? {
                return Err(Error::LockLost);
            }
        }
        transaction.commit().await.map_err(unavailable)?;
        self.known.heard(revision);
        Ok((done, None))
    }

    async fn document_as_known(&self, identities: &Identities) -> Result<Arc<Document>, Error> {
        let cached = self.cache.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match cached {
            Some((seen, document)) if self.known.is_covered_by(seen) => Ok(document),
            _ => self.refreshed(identities).await,
        }
    }

    fn cached_revision(&self) -> Option<i64> {
        let document = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map_or(-1, |(seen, _)| *seen);
        let keys = self
            .api_keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map_or(-1, |(seen, _)| *seen);
        Some(document.min(keys))
    }

    fn cached_document(&self) -> Option<Arc<Document>> {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|(_, document)| document.clone())
    }

    async fn entry(
        &self,
        identities: &Identities,
        name: &str,
    ) -> Result<Option<crate::secrets::Entry>, Error> {
        let document = self.refreshed(identities).await?;
        let Some(entry) = document.get(name) else {
            return Ok(None);
        };
        let mut entry = entry.clone();
        let client = self.db.client().await?;
        entry.history = self.history(&**client, identities, name).await?;
        Ok(Some(entry))
    }

    async fn recipients(&self) -> Result<Vec<String>, Error> {
        let client = self.db.client().await?;
        let (_, _, recipients) = self.environment(&**client).await?;
        Ok(recipients.lines().map(str::to_owned).collect())
    }

    async fn change_recipients(
        &self,
        identities: &Identities,
        change: RecipientChange,
    ) -> Result<Vec<String>, Error> {
        let mut client = self.db.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        let (revision, current_key, recipients) =
            bump(&transaction, &self.env, || self.missing()).await?;
        let lines: Vec<String> = recipients.lines().map(str::to_owned).collect();
        let lines = super::super::edit_recipients(&lines, &change)?;
        let text = format!("{}\n", lines.join("\n"));
        // Every data key, wrapped again for the new list.
        let ids: Vec<i32> = transaction
            .query("SELECT id FROM svc_data_keys WHERE env = $1", &[&self.env])
            .await
            .map_err(unavailable)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for id in &ids {
            let key = self.data_key(&*transaction, identities, *id).await?;
            let wrapped = crypto::wrap(&key, &text)?;
            transaction
                .execute(
                    "UPDATE svc_data_keys SET wrapped = $3 WHERE env = $1 AND id = $2",
                    &[&self.env, id, &wrapped],
                )
                .await
                .map_err(unavailable)?;
        }
        let mut new_current = current_key;
        if matches!(change, RecipientChange::Remove(_)) {
            // What is written from now on, the removed key never had.
            let key = crypto::new_key()?;
            new_current = ids.iter().copied().max().unwrap_or(0) + 1;
            transaction
                .execute(
                    "INSERT INTO svc_data_keys (env, id, wrapped) VALUES ($1, $2, $3)",
                    &[&self.env, &new_current, &crypto::wrap(&key, &text)?],
                )
                .await
                .map_err(unavailable)?;
            self.keys
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(new_current, key);
        }
        transaction
            .execute(
                "UPDATE svc_environments SET recipients = $2, current_key = $3 WHERE name = $1",
                &[&self.env, &text, &new_current],
            )
            .await
            .map_err(unavailable)?;
        transaction.commit().await.map_err(unavailable)?;
        // What this process seals to from now on.
        self.known.heard(revision);
        self.recipients.heard(revision, &text);
        Ok(lines)
    }

    async fn export(&self, identities: &Identities) -> Result<Vec<u8>, Error> {
        let document = self.full_document(identities).await?;
        let recipients = self.recipients().await?.join("\n");
        let json = zeroize::Zeroizing::new(
            serde_json::to_vec(&document).map_err(|e| Error::Invalid(e.to_string()))?,
        );
        let mut with_newline = zeroize::Zeroizing::new(json.to_vec());
        with_newline.push(b'\n');
        crypto::age_encrypt(&with_newline, &recipients)
    }
}

/// The current rows of the secrets a write changes, locked until it
/// commits; `None` for a secret that has none (or was removed).
type CurrentRows = HashMap<String, Option<Sealed>>;

impl PgSecrets {
    /// The rows of every secret `changes` name, in one statement.
    async fn current_rows(
        &self,
        transaction: &tokio_postgres::Transaction<'_>,
        changes: &[Change],
    ) -> Result<CurrentRows, Error> {
        let names: Vec<&str> = changes.iter().map(Change::name).collect();
        let mut current: CurrentRows = names.iter().map(|n| (n.to_string(), None)).collect();
        let rows = transaction
            .query_typed(
                "SELECT name, version, key_id, sealed, updated_at, updated_by, expires_at, removed \
                 FROM svc_secrets WHERE env = $1 AND name = ANY($2) FOR UPDATE",
                &[(&self.env, Type::TEXT), (&names, Type::TEXT_ARRAY)],
            )
            .await
            .map_err(unavailable)?;
        for r in rows {
            if r.get::<_, bool>(7) {
                continue;
            }
            current.insert(r.get(0), Some(Sealed::read(&r, 1)));
        }
        Ok(current)
    }

    #[allow(clippy::too_many_arguments)]
    async fn apply_one(
        &self,
        transaction: &tokio_postgres::Transaction<'_>,
        identities: &Identities,
        key: &DataKey,
        key_id: i32,
        revision: i64,
        rows: &mut CurrentRows,
        change: Change,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<Changed, Error> {
        // Taken out while it changes; a new value goes back in, for a later
        // change of the same secret in this write.
        let mut current = |name: &str| rows.get_mut(name).and_then(Option::take);
        match change {
            Change::Set {
                name,
                value,
                expires_at,
                expect,
            } => {
                let old = current(&name);
                if let Some(expected) = expect {
                    let found = old.as_ref().map_or(0, |o| o.version as u64);
                    if found != expected {
                        return Err(Error::Conflict {
                            name,
                            expected,
                            found,
                        });
                    }
                }
                let written = self
                    .write(
                        transaction,
                        key,
                        key_id,
                        revision,
                        &name,
                        old,
                        value.expose(),
                        expires_at,
                        by,
                        at,
                    )
                    .await?;
                let version = written.version;
                rows.insert(name, Some(written));
                Ok(Changed::Set(version as u64))
            }
            Change::Remove { name } => {
                if current(&name).is_none() {
                    return Err(Error::SecretMissing {
                        name,
                        env: self.env.clone(),
                    });
                }
                transaction
                    .execute(
                        "DELETE FROM svc_secret_history WHERE env = $1 AND name = $2",
                        &[&self.env, &name],
                    )
                    .await
                    .map_err(unavailable)?;
                transaction
                    .execute(
                        "UPDATE svc_secrets SET removed = true, sealed = NULL, revision = $3 \
                         WHERE env = $1 AND name = $2",
                        &[&self.env, &name, &revision],
                    )
                    .await
                    .map_err(unavailable)?;
                Ok(Changed::Removed)
            }
            Change::Rollback { name, to } => {
                let Some(old) = current(&name) else {
                    return Err(Error::SecretMissing {
                        name,
                        env: self.env.clone(),
                    });
                };
                let history = self.history(transaction, identities, &name).await?;
                let past = match to {
                    None => history.first().ok_or_else(|| {
                        Error::Invalid(format!("`{name}` has no earlier version to roll back to"))
                    })?,
                    Some(v) if v == old.version as u64 => {
                        return Err(Error::Invalid(format!(
                            "version {v} of `{name}` is already current"
                        )));
                    }
                    Some(v) => history.iter().find(|p| p.version == v).ok_or_else(|| {
                        Error::Invalid(format!(
                            "`{name}` has no version {v}; earlier versions kept: {}",
                            if history.is_empty() {
                                "none".to_string()
                            } else {
                                history
                                    .iter()
                                    .map(|p| p.version.to_string())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            }
                        ))
                    })?,
                };
                let restored = past.version;
                let written = self
                    .write(
                        transaction,
                        key,
                        key_id,
                        revision,
                        &name,
                        Some(old),
                        past.value.expose(),
                        past.expires_at,
                        by,
                        at,
                    )
                    .await?;
                let version = written.version;
                rows.insert(name, Some(written));
                Ok(Changed::RolledBack {
                    restored,
                    version: version as u64,
                })
            }
        }
    }

    /// Writes a new current value, the old one going to the history (which
    /// keeps the last few). Returns the new row. Its three statements touch
    /// different rows and go out together (pipelined on the connection): one
    /// wait for the database instead of three.
    #[allow(clippy::too_many_arguments)]
    async fn write(
        &self,
        transaction: &tokio_postgres::Transaction<'_>,
        key: &DataKey,
        key_id: i32,
        revision: i64,
        name: &str,
        old: Option<Sealed>,
        value: &str,
        expires_at: Option<DateTime<Utc>>,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<Sealed, Error> {
        let version = old.as_ref().map_or(1, |old| old.version + 1);
        let sealed = crypto::seal(key, &self.env, name, version, value.as_bytes())?;
        let keep_history = async {
            match &old {
                Some(old) => transaction
                    .execute_typed(
                        "INSERT INTO svc_secret_history \
                         (env, name, version, key_id, sealed, updated_at, updated_by, expires_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
                        &[
                            (&self.env, Type::TEXT),
                            (&name, Type::TEXT),
                            (&old.version, Type::INT8),
                            (&old.key_id, Type::INT4),
                            (&old.sealed, Type::BYTEA),
                            (&old.updated_at, Type::TIMESTAMPTZ),
                            (&old.updated_by, Type::TEXT),
                            (&old.expires_at, Type::TIMESTAMPTZ),
                        ],
                    )
                    .await
                    .map_err(unavailable),
                // New, or set again after a removal: no history to keep.
                None => Ok(0),
            }
        };
        // Past the history's limit (the old value itself is within it); a
        // secret that is new, or set again after a removal, starts over.
        let keep_from = old
            .as_ref()
            .map_or(i64::MAX, |old| old.version + 1 - HISTORY_LIMIT as i64);
        let drop_history = async {
            transaction
                .execute_typed(
                    "DELETE FROM svc_secret_history WHERE env = $1 AND name = $2 AND version < $3",
                    &[
                        (&self.env, Type::TEXT),
                        (&name, Type::TEXT),
                        (&keep_from, Type::INT8),
                    ],
                )
                .await
                .map_err(unavailable)
        };
        let row = CurrentRow {
            name,
            version,
            key_id,
            sealed: &sealed,
            updated_at: Some(at),
            updated_by: Some(by),
            expires_at,
            revision,
        };
        let set = upsert_secret(transaction, &self.env, &row);
        tokio::try_join!(keep_history, drop_history, set)?;
        Ok(Sealed {
            version,
            key_id,
            sealed,
            updated_at: Some(at),
            updated_by: Some(by.to_string()),
            expires_at,
        })
    }
}

#[async_trait]
impl KeyStore for PgSecrets {
    async fn keys(&self, _identities: &Identities) -> Result<KeyIndex, Error> {
        let client = self.db.client().await?;
        let revision = self.revision_now(&client).await?;
        if let Some((seen, keys)) = self
            .api_keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            && *seen == revision
        {
            return Ok(keys.clone());
        }
        let rows = client
            .query(
                "SELECT id, identity, name, hash, created_at, expires_at, revoked_at, reach \
                 FROM svc_api_keys WHERE env = $1",
                &[&self.env],
            )
            .await
            .map_err(unavailable)?;
        let keys: BTreeMap<String, ApiKey> = rows
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    ApiKey {
                        identity: r.get(1),
                        name: r.get(2),
                        hash: r.get(3),
                        created_at: r.get(4),
                        expires_at: r.get(5),
                        revoked_at: r.get(6),
                        connection_prefix: r
                            .get::<_, Option<serde_json::Value>>(7)
                            .and_then(|v| v.get("prefix")?.as_str().map(str::to_string)),
                        connection_tags: r
                            .get::<_, Option<serde_json::Value>>(7)
                            .and_then(|v| serde_json::from_value(v.get("tags")?.clone()).ok())
                            .unwrap_or_default(),
                    },
                )
            })
            .collect();
        // The revision counts every change of the environment: when the
        // keys are the same (a secret was written), the index stays.
        let mut index = self.api_keys.lock().unwrap_or_else(|p| p.into_inner());
        let keys = match index.take() {
            // A read that refreshed at once with a newer answer keeps it.
            Some((have, newer)) if have > revision => {
                *index = Some((have, newer.clone()));
                return Ok(newer);
            }
            Some((_, built)) if *built == keys => built,
            _ => Arc::new(keys),
        };
        *index = Some((revision, keys.clone()));
        Ok(keys)
    }

    async fn keys_as_known(&self, identities: &Identities) -> Result<KeyIndex, Error> {
        if let Some((seen, keys)) = self
            .api_keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            && self.known.is_covered_by(*seen)
        {
            return Ok(keys.clone());
        }
        self.keys(identities).await
    }

    async fn add(&self, _identities: &Identities, id: &str, key: ApiKey) -> Result<(), Error> {
        let reach: Option<serde_json::Value> = (key.connection_prefix.is_some()
            || !key.connection_tags.is_empty())
        .then(|| serde_json::json!({"prefix": key.connection_prefix, "tags": key.connection_tags}));
        let mut client = self.db.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        bump(&transaction, &self.env, || self.missing()).await?;
        transaction
            .execute(
                "INSERT INTO svc_api_keys (env, id, identity, name, hash, created_at, expires_at, revoked_at, reach) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (env, id) DO UPDATE SET \
                 identity = $3, name = $4, hash = $5, created_at = $6, expires_at = $7, revoked_at = $8, reach = $9",
                &[
                    &self.env,
                    &id,
                    &key.identity,
                    &key.name,
                    &key.hash,
                    &key.created_at,
                    &key.expires_at,
                    &key.revoked_at,
                    &reach,
                ],
            )
            .await
            .map_err(unavailable)?;
        transaction.commit().await.map_err(unavailable)
    }

    async fn revoke(
        &self,
        identities: &Identities,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), Error> {
        let mut keys = (*self.keys(identities).await?).clone();
        crate::backend::files::revoke_in(&mut keys, id, at)?;
        let mut client = self.db.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        bump(&transaction, &self.env, || self.missing()).await?;
        transaction
            .execute(
                "UPDATE svc_api_keys SET revoked_at = $3 WHERE env = $1 AND id = $2",
                &[&self.env, &id, &at],
            )
            .await
            .map_err(unavailable)?;
        transaction.commit().await.map_err(unavailable)
    }
}

/// Schedule state, a row per schedule.
struct PgSchedules {
    db: Database,
    env: String,
}

/// A JSON column read back into what was written there; `what` names it
/// in the error.
pub(super) fn stored<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    what: &str,
) -> Result<T, Error> {
    serde_json::from_value(value)
        .map_err(|e| Error::Invalid(format!("{what} in the database: {e}")))
}

fn state_of(value: serde_json::Value) -> Result<ScheduleState, Error> {
    stored(value, "a schedule state")
}

#[async_trait]
impl ScheduleStore for PgSchedules {
    fn describe(&self) -> String {
        format!("the schedule state of `{}` in {}", self.env, self.db.shown)
    }

    async fn load(&self) -> Result<BTreeMap<String, ScheduleState>, Error> {
        let client = self.db.client().await?;
        let rows = client
            .query(
                "SELECT schedule, state FROM svc_schedule_state WHERE env = $1",
                &[&self.env],
            )
            .await
            .map_err(unavailable)?;
        rows.into_iter()
            .map(|r| Ok((r.get(0), state_of(r.get(1))?)))
            .collect()
    }

    async fn load_one(&self, schedule: &str) -> Result<Option<ScheduleState>, Error> {
        let client = self.db.client().await?;
        let row = client
            .query_opt(
                "SELECT state FROM svc_schedule_state WHERE env = $1 AND schedule = $2",
                &[&self.env, &schedule],
            )
            .await
            .map_err(unavailable)?;
        row.map(|r| state_of(r.get(0))).transpose()
    }

    async fn save(&self, states: &BTreeMap<String, ScheduleState>) -> Result<(), Error> {
        let client = self.db.client().await?;
        for (name, state) in states {
            let value = serde_json::to_value(state).map_err(|e| Error::Invalid(e.to_string()))?;
            client
                .execute(
                    "INSERT INTO svc_schedule_state (env, schedule, state) VALUES ($1, $2, $3) \
                     ON CONFLICT (env, schedule) DO UPDATE SET state = $3",
                    &[&self.env, name, &value],
                )
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }
}

/// Connection state, a row per connection.
struct PgConnections {
    db: Database,
    env: String,
}

fn connection_of(value: serde_json::Value) -> Result<ConnectionState, Error> {
    stored(value, "a connection state")
}

#[async_trait]
impl ConnectionStore for PgConnections {
    fn describe(&self) -> String {
        format!("the connections of `{}` in {}", self.env, self.db.shown)
    }

    async fn load(&self) -> Result<BTreeMap<ConnectionKey, ConnectionState>, Error> {
        let client = self.db.client().await?;
        let rows = client
            .query(
                "SELECT client, connection_id, state FROM svc_connections WHERE env = $1",
                &[&self.env],
            )
            .await
            .map_err(unavailable)?;
        rows.into_iter()
            .map(|r| {
                let key = ConnectionKey {
                    client: r.get(0),
                    connection_id: r.get(1),
                };
                Ok((key, connection_of(r.get(2))?))
            })
            .collect()
    }

    async fn load_one(&self, key: &ConnectionKey) -> Result<Option<ConnectionState>, Error> {
        let client = self.db.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT state FROM svc_connections WHERE env = $1 AND client = $2 AND connection_id = $3",
            )
            .await
            .map_err(unavailable)?;
        let row = client
            .query_opt(&statement, &[&self.env, &key.client, &key.connection_id])
            .await
            .map_err(unavailable)?;
        row.map(|r| connection_of(r.get(0))).transpose()
    }

    async fn observe(
        &self,
        key: &ConnectionKey,
        observation: &Observation,
        subscribers: &[Subscriber],
        at: DateTime<Utc>,
    ) -> Result<Observed, Error> {
        let mut client = self.db.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        // The row is locked from the read to the commit: two replicas that
        // observe at once see each other's result, and one transition once.
        let row = transaction
            .query_typed_opt(
                "SELECT state FROM svc_connections \
                 WHERE env = $1 AND client = $2 AND connection_id = $3 FOR UPDATE",
                &[
                    (&self.env, Type::TEXT),
                    (&key.client, Type::TEXT),
                    (&key.connection_id, Type::TEXT),
                ],
            )
            .await
            .map_err(unavailable)?;
        let current = row.map(|r| connection_of(r.get(0))).transpose()?;
        let observed = ConnectionState::observe(current.as_ref(), observation, at);
        if current.as_ref() == Some(&observed.state) {
            return Ok(observed);
        }
        let value =
            serde_json::to_value(&observed.state).map_err(|e| Error::Invalid(e.to_string()))?;
        if current.is_some() {
            // The row is locked: it is there until this commits.
            transaction
                .execute_typed(
                    "UPDATE svc_connections SET state = $4 \
                     WHERE env = $1 AND client = $2 AND connection_id = $3",
                    &[
                        (&self.env, Type::TEXT),
                        (&key.client, Type::TEXT),
                        (&key.connection_id, Type::TEXT),
                        (&value, Type::JSONB),
                    ],
                )
                .await
                .map_err(unavailable)?;
        } else {
            // A connection seen for the first time by two replicas at once:
            // the second insert waits for the first to commit and inserts
            // nothing; that replica then observes again, on top of the row.
            let inserted = transaction
                .execute(
                    "INSERT INTO svc_connections (env, client, connection_id, state) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (env, client, connection_id) DO NOTHING",
                    &[&self.env, &key.client, &key.connection_id, &value],
                )
                .await
                .map_err(unavailable)?;
            if inserted == 0 {
                drop(transaction);
                drop(client);
                return self.observe(key, observation, subscribers, at).await;
            }
        }
        // The events' deliveries commit with the change, or neither does.
        for delivery in Delivery::for_events(
            &self.env,
            key,
            &observed.state,
            &observed.events,
            subscribers,
            at,
        ) {
            save_delivery(&transaction, &self.env, &delivery).await?;
        }
        transaction.commit().await.map_err(unavailable)?;
        Ok(observed)
    }

    async fn page(
        &self,
        query: &crate::backend::ConnectionQuery,
    ) -> Result<crate::backend::ConnectionPage, Error> {
        let limit = query.limit.clamp(1, crate::backend::accounts::MAX_PAGE);
        let state = query.state.map(|s| s.as_str().to_string());
        let prefix = query.reach.prefix.as_ref().map(|p| {
            let escaped = p
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("{escaped}%")
        });
        let tags =
            serde_json::to_value(&query.reach.tags).map_err(|e| Error::Invalid(e.to_string()))?;
        let (after_client, after_id) = match &query.after {
            Some(key) => (Some(key.client.clone()), Some(key.connection_id.clone())),
            None => (None, None),
        };
        let fetch = (limit + 1) as i64;
        let client = self.db.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT client, connection_id, state FROM svc_connections \
                 WHERE env = $1 AND ($2::text IS NULL OR client = $2) \
                 AND ($3::text IS NULL OR state->>'state' = $3) \
                 AND ($4::text IS NULL OR connection_id LIKE $4) \
                 AND COALESCE(state->'tags', '{}'::jsonb) @> $5::jsonb \
                 AND ($6::text IS NULL OR (client, connection_id) > ($6, $7)) \
                 ORDER BY client, connection_id LIMIT $8",
            )
            .await
            .map_err(unavailable)?;
        let rows = client
            .query(
                &statement,
                &[
                    &self.env,
                    &query.client,
                    &state,
                    &prefix,
                    &tags,
                    &after_client,
                    &after_id,
                    &fetch,
                ],
            )
            .await
            .map_err(unavailable)?;
        let found = rows
            .into_iter()
            .map(|r| {
                let key = ConnectionKey {
                    client: r.get(0),
                    connection_id: r.get(1),
                };
                Ok((key, connection_of(r.get(2))?))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(crate::backend::ConnectionPage::of(found, limit))
    }

    async fn set_tags(
        &self,
        key: &ConnectionKey,
        tags: BTreeMap<String, String>,
    ) -> Result<bool, Error> {
        let tags = serde_json::to_value(&tags).map_err(|e| Error::Invalid(e.to_string()))?;
        let client = self.db.client().await?;
        let updated = client
            .execute(
                "UPDATE svc_connections SET state = jsonb_set(state, '{tags}', $4::jsonb) \
                 WHERE env = $1 AND client = $2 AND connection_id = $3",
                &[&self.env, &key.client, &key.connection_id, &tags],
            )
            .await
            .map_err(unavailable)?;
        Ok(updated > 0)
    }

    async fn delete(
        &self,
        key: &ConnectionKey,
        subscribers: &[Subscriber],
        at: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let mut client = self.db.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        let deleted = transaction
            .execute(
                "DELETE FROM svc_connections WHERE env = $1 AND client = $2 AND connection_id = $3",
                &[&self.env, &key.client, &key.connection_id],
            )
            .await
            .map_err(unavailable)?;
        // Its values go with it, in the same transaction.
        transaction
            .execute(
                "DELETE FROM svc_account_secrets WHERE env = $1 AND client = $2 AND connection_id = $3",
                &[&self.env, &key.client, &key.connection_id],
            )
            .await
            .map_err(unavailable)?;
        for delivery in Delivery::for_deletion(&self.env, key, subscribers, at) {
            save_delivery(&transaction, &self.env, &delivery).await?;
        }
        transaction.commit().await.map_err(unavailable)?;
        Ok(deleted > 0)
    }
}

/// The outbox, a row per delivery.
struct PgOutbox {
    db: Database,
    env: String,
}

fn delivery_of(value: serde_json::Value) -> Result<Delivery, Error> {
    stored(value, "a delivery")
}

fn settled_at(delivery: &Delivery) -> Option<DateTime<Utc>> {
    match delivery.status {
        Status::Pending => None,
        Status::Delivered => delivery.delivered_at,
        Status::Failed => Some(delivery.next_attempt_at),
    }
}

/// Writes a delivery as it is now: inserted, or updated in place.
async fn save_delivery(
    client: &impl deadpool_postgres::GenericClient,
    env: &str,
    delivery: &Delivery,
) -> Result<(), Error> {
    let value = serde_json::to_value(delivery).map_err(|e| Error::Invalid(e.to_string()))?;
    client
        .execute(
            "INSERT INTO svc_outbox (env, id, status, created_at, next_attempt_at, lease_until, settled_at, delivery) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (env, id) DO UPDATE SET status = $3, created_at = $4, next_attempt_at = $5, \
             lease_until = $6, settled_at = $7, delivery = $8",
            &[
                &env,
                &delivery.id,
                &delivery.status.as_str(),
                &delivery.created_at,
                &delivery.next_attempt_at,
                &delivery.lease_until,
                &settled_at(delivery),
                &value,
            ],
        )
        .await
        .map_err(unavailable)?;
    Ok(())
}

#[async_trait]
impl Outbox for PgOutbox {
    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease: chrono::TimeDelta,
        limit: usize,
    ) -> Result<Vec<Delivery>, Error> {
        let until = now.checked_add_signed(lease).unwrap_or(now);
        let keep_since = now
            .checked_sub_signed(crate::backend::outbox::KEEP_SETTLED)
            .unwrap_or(now);
        let mut client = self.db.client().await?;
        client
            .execute(
                "DELETE FROM svc_outbox WHERE env = $1 AND status <> 'pending' AND settled_at < $2",
                &[&self.env, &keep_since],
            )
            .await
            .map_err(unavailable)?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        // Rows another replica is claiming are skipped, not waited for:
        // each due delivery goes to one sender.
        let rows = transaction
            .query(
                "SELECT delivery FROM svc_outbox \
                 WHERE env = $1 AND status = 'pending' AND next_attempt_at <= $2 \
                 AND (lease_until IS NULL OR lease_until <= $2) \
                 ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED",
                &[&self.env, &now, &(limit.min(1000) as i64)],
            )
            .await
            .map_err(unavailable)?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            let mut delivery = delivery_of(row.get(0))?;
            delivery.claim(until);
            save_delivery(&transaction, &self.env, &delivery).await?;
            claimed.push(delivery);
        }
        transaction.commit().await.map_err(unavailable)?;
        Ok(claimed)
    }

    async fn settle(
        &self,
        id: &str,
        lease_token: &str,
        attempt: Attempt,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let mut client = self.db.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        let row = transaction
            .query_opt(
                "SELECT delivery FROM svc_outbox WHERE env = $1 AND id = $2 FOR UPDATE",
                &[&self.env, &id],
            )
            .await
            .map_err(unavailable)?;
        let mut settled = false;
        if let Some(row) = row {
            let mut delivery = delivery_of(row.get(0))?;
            // Another sender took it over when this one's lease ran out:
            // its outcome stands.
            if delivery.is_held_by(lease_token) {
                delivery.settle(attempt, now);
                save_delivery(&transaction, &self.env, &delivery).await?;
                settled = true;
            }
        }
        transaction.commit().await.map_err(unavailable)?;
        Ok(settled)
    }

    async fn list(&self) -> Result<Vec<Delivery>, Error> {
        let client = self.db.client().await?;
        let rows = client
            .query(
                "SELECT delivery FROM svc_outbox WHERE env = $1 ORDER BY created_at, id",
                &[&self.env],
            )
            .await
            .map_err(unavailable)?;
        rows.into_iter().map(|r| delivery_of(r.get(0))).collect()
    }

    async fn retry(
        &self,
        id: &str,
        now: DateTime<Utc>,
        lease: chrono::TimeDelta,
    ) -> Result<Retry, Error> {
        let until = now.checked_add_signed(lease).unwrap_or(now);
        let mut client = self.db.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        let row = transaction
            .query_opt(
                "SELECT delivery FROM svc_outbox WHERE env = $1 AND id = $2 FOR UPDATE",
                &[&self.env, &id],
            )
            .await
            .map_err(unavailable)?;
        let Some(row) = row else {
            return Ok(Retry::Unknown);
        };
        let mut delivery = delivery_of(row.get(0))?;
        if delivery.is_claimed(now) {
            return Ok(Retry::Busy);
        }
        delivery.retry(now, until);
        save_delivery(&transaction, &self.env, &delivery).await?;
        transaction.commit().await.map_err(unavailable)?;
        Ok(Retry::Claimed(Box::new(delivery)))
    }
}

/// Endpoint, schedule and audit logs, bounded by count and age.
struct PgLogs {
    db: Database,
    env: String,
    /// Audit lines, committed in groups.
    audit: super::audit::GroupCommit,
    keep_records: usize,
    keep_days: u32,
}

fn log_key(log: LogName<'_>) -> String {
    match log {
        LogName::Endpoint(endpoint) => format!("endpoint:{endpoint}"),
        LogName::Schedule(schedule) => format!("schedule:{schedule}"),
    }
}

/// One append in this many prunes the logs, on average.
const PRUNE_ONE_IN: u32 = 64;

impl PgLogs {
    /// Drops what is past the retention: older than the days kept, and
    /// beyond the records kept per log.
    async fn prune(&self, client: &Object, log: &str) -> Result<(), Error> {
        let days = f64::from(self.keep_days);
        client
            .execute(
                "DELETE FROM svc_logs WHERE env = $1 AND at < now() - make_interval(days => $2::float8::int)",
                &[&self.env, &days],
            )
            .await
            .map_err(unavailable)?;
        client
            .execute(
                "DELETE FROM svc_audit WHERE env = $1 AND at < now() - make_interval(days => $2::float8::int)",
                &[&self.env, &days],
            )
            .await
            .map_err(unavailable)?;
        let keep = self.keep_records as i64;
        client
            .execute(
                "DELETE FROM svc_logs WHERE env = $1 AND log = $2 AND id <= \
                 (SELECT id FROM svc_logs WHERE env = $1 AND log = $2 ORDER BY id DESC OFFSET $3 LIMIT 1)",
                &[&self.env, &log, &keep],
            )
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

#[async_trait]
impl LogStore for PgLogs {
    fn describe(&self, log: LogName<'_>) -> String {
        format!(
            "the log `{}` of `{}` in {}",
            log_key(log),
            self.env,
            self.db.shown
        )
    }

    async fn append(&self, log: LogName<'_>, record: &RunRecord) -> Result<(), Error> {
        let value = serde_json::to_value(record).map_err(|e| Error::Invalid(e.to_string()))?;
        let key = log_key(log);
        let client = self.db.client().await?;
        client
            .execute_typed(
                "INSERT INTO svc_logs (env, log, record) VALUES ($1, $2, $3)",
                &[
                    (&self.env, Type::TEXT),
                    (&key, Type::TEXT),
                    (&value, Type::JSONB),
                ],
            )
            .await
            .map_err(unavailable)?;
        // Pruning is cheap with the index, but not free: one append in 64
        // on average, drawn at random so that short processes (`svc run`,
        // one append each) share the work instead of each pruning first.
        if fastrand::u32(..PRUNE_ONE_IN) == 0 {
            self.prune(&client, &key).await?;
        }
        Ok(())
    }

    async fn read_last(&self, log: LogName<'_>, count: usize) -> Result<Vec<RunRecord>, Error> {
        let client = self.db.client().await?;
        let limit = count as i64;
        let rows = client
            .query(
                "SELECT record FROM svc_logs WHERE env = $1 AND log = $2 ORDER BY id DESC LIMIT $3",
                &[&self.env, &log_key(log), &limit],
            )
            .await
            .map_err(unavailable)?;
        let mut records: Vec<RunRecord> = rows
            .into_iter()
            .filter_map(|r| serde_json::from_value(r.get(0)).ok())
            .collect();
        records.reverse();
        Ok(records)
    }

    async fn any(&self) -> Result<bool, Error> {
        let client = self.db.client().await?;
        let row = client
            .query_opt(
                "SELECT 1 FROM svc_logs WHERE env = $1 LIMIT 1",
                &[&self.env],
            )
            .await
            .map_err(unavailable)?;
        Ok(row.is_some())
    }

    async fn audit(&self, line: &serde_json::Value) -> Result<Option<i64>, Error> {
        self.audit.append(line).await.map(Some)
    }
}

/// Asynchronous runs, seen by every replica.
struct PgJobs {
    db: Database,
    env: String,
    max: usize,
}

#[async_trait]
impl JobStore for PgJobs {
    async fn start(&self, id: &str, owner: &str, endpoint: &str) -> Result<(), JobRefused> {
        let failed = JobRefused::Failed;
        let mut client = self.db.client().await.map_err(failed)?;
        let transaction = client
            .transaction()
            .await
            .map_err(|e| JobRefused::Failed(unavailable(e)))?;
        let sql = |e| JobRefused::Failed(unavailable(e));
        // One writer at a time per environment's job table.
        transaction
            .execute(
                "SELECT pg_advisory_xact_lock($1)",
                &[&lock_key(&format!("svc:jobs:{}", self.env))],
            )
            .await
            .map_err(sql)?;
        transaction
            .execute(
                "DELETE FROM svc_jobs WHERE env = $1 AND finished_at < now() - interval '1 hour'",
                &[&self.env],
            )
            .await
            .map_err(sql)?;
        let kept: i64 = transaction
            .query_one("SELECT count(*) FROM svc_jobs WHERE env = $1", &[&self.env])
            .await
            .map_err(sql)?
            .get(0);
        if kept as usize >= self.max {
            let evicted = transaction
                .execute(
                    "DELETE FROM svc_jobs WHERE env = $1 AND id = \
                     (SELECT id FROM svc_jobs WHERE env = $1 AND finished_at IS NOT NULL \
                      ORDER BY finished_at LIMIT 1)",
                    &[&self.env],
                )
                .await
                .map_err(sql)?;
            if evicted == 0 {
                return Err(JobRefused::Full { max: self.max });
            }
        }
        transaction
            .execute(
                "INSERT INTO svc_jobs (env, id, owner, endpoint) VALUES ($1, $2, $3, $4)",
                &[&self.env, &id, &owner, &endpoint],
            )
            .await
            .map_err(sql)?;
        transaction.commit().await.map_err(sql)
    }

    async fn finish(&self, id: &str, record: serde_json::Value) -> Result<(), Error> {
        let client = self.db.client().await?;
        client
            .execute(
                "UPDATE svc_jobs SET finished_at = now(), record = $3 WHERE env = $1 AND id = $2",
                &[&self.env, &id, &record],
            )
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn view(&self, id: &str, caller: &str) -> Result<Option<Result<JobView, ()>>, Error> {
        let client = self.db.client().await?;
        let row = client
            .query_opt(
                "SELECT owner, endpoint, record FROM svc_jobs WHERE env = $1 AND id = $2",
                &[&self.env, &id],
            )
            .await
            .map_err(unavailable)?;
        Ok(row.map(|r| {
            let owner: String = r.get(0);
            if owner != caller {
                return Err(());
            }
            let record: Option<serde_json::Value> = r.get(2);
            Ok(JobView {
                job: id.to_string(),
                status: if record.is_some() { "done" } else { "running" },
                endpoint: r.get(1),
                record,
            })
        }))
    }
}
