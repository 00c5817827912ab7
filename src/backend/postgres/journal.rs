//! The recovery journal on PostgreSQL, and the local spool that keeps its
//! answers while the database cannot be reached.
//!
//! An answer that carries a rotated refresh token exists once: the
//! provider will not send it again, and the token it replaces is spent. So
//! it must be durable the moment it arrives, whether or not the database
//! is up. [`PgJournal::record`] seals it with age to the environment's
//! recipients and writes it first to the spool, a directory of this host
//! (`STATE_DIR/ENV/journal-spool/`, one fsynced file an answer), then into
//! `svc_journal`; the spool's file goes once the row is committed. When the
//! database does not answer, the answer stays in the spool and `record`
//! still succeeds: it is kept. The spool goes into the database
//! ([`Spool::flush`]) before this process takes a run lock, every few
//! seconds in `svc serve`, and when `svc secret recover` lists the journal:
//! so once this host reaches the database again, every replica's admission
//! sees the answer before anyone sends the secret it replaces.
//!
//! Sends ([`journal::SENT`]) are the exception: they go to the database
//! only, because they are for other replicas to see; a send that cannot be
//! recorded is not made.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use tokio_postgres::GenericClient;
use tokio_postgres::types::Type;

use super::{Database, KnownRecipients, KnownRevision, crypto, unavailable};
use crate::backend::JournalStore;
use crate::backend::files::journal::Journal;
use crate::secrets::journal::{self, Entry, Listed};
use crate::secrets::{Error, Identities};

/// Answers sealed and kept on this host until the database has them.
pub(super) struct Spool {
    files: Journal,
    env: String,
    /// One flush at a time in this process.
    flushing: tokio::sync::Mutex<()>,
}

impl Spool {
    pub(super) fn new(state_dir: &Path, env: &str) -> Spool {
        Spool {
            files: Journal::sealed_in(state_dir.join(env).join("journal-spool")),
            env: env.to_string(),
            flushing: tokio::sync::Mutex::new(()),
        }
    }

    fn dir(&self) -> &Path {
        self.files.dir()
    }

    /// Copies every spooled answer into the database, then forgets it
    /// here. Returns how many went; fails (keeping the rest) when the
    /// database does not take one.
    pub(super) async fn flush(&self, db: &Database) -> Result<usize, Error> {
        if !self.dir().exists() {
            return Ok(0);
        }
        let _one = self.flushing.lock().await;
        let listed = self.files.list()?;
        let mut copied = 0;
        for answer in &listed {
            // A file that cannot be read must not hold back the others,
            // nor every run lock after it: it is said, and left there.
            let sealed = match self.files.sealed(answer) {
                Ok(sealed) => sealed,
                Err(error) => {
                    tracing::error!(
                        "{}: a kept answer cannot be read, and stays where it is: {error}",
                        error.code()
                    );
                    continue;
                }
            };
            let name = Path::new(&answer.handle)
                .file_stem()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            db.within(insert(db, &self.env, &name, answer, &sealed, None, false))
                .await?;
            self.files.forget(answer)?;
            copied += 1;
        }
        if copied > 0 {
            tracing::info!(
                "copied {copied} answer(s) kept in `{}` into the database's recovery journal",
                self.dir().display()
            );
        }
        Ok(copied)
    }
}

/// Keeps a sealed entry if the environment's recipients are still the
/// ones it was sealed to ($4); answers the environment's revision and
/// recipients either way. (A change of recipients that commits while this
/// runs is one the entry was sealed before, as when it is read first.)
const KEEP_IF_SEALED_TO: &str = "WITH env AS (SELECT revision, recipients FROM svc_environments WHERE name = $1), \
     kept AS (INSERT INTO svc_journal (env, name, sealed) SELECT $1, $2, $3 FROM env \
              WHERE env.recipients = $4 ON CONFLICT DO NOTHING) \
     SELECT revision, recipients FROM env";

/// The error of an environment the database has no row of.
fn store_missing(db: &Database, env: &str) -> Error {
    Error::StoreMissing {
        env: env.to_string(),
        path: db.shown.clone().into(),
    }
}

/// What became of an entry offered to the journal.
enum Inserted {
    /// Kept; with the journal as of that transaction when it was asked for.
    Kept(Vec<Listed>),
    /// Not kept: the environment's recipients are no longer the ones it
    /// was sealed to. These are.
    Resealing { revision: i64, recipients: String },
}

/// Keeps `sealed` under `name`; with `sealed_to`, only while those are
/// still the environment's recipients: when they are not, returns the
/// environment's revision and recipients instead.
async fn keep_if_sealed_to(
    client: &impl GenericClient,
    db: &Database,
    env: &str,
    name: &str,
    sealed: &[u8],
    sealed_to: Option<&str>,
) -> Result<Option<(i64, String)>, Error> {
    let Some(recipients) = sealed_to else {
        client
            .execute_typed(
                "INSERT INTO svc_journal (env, name, sealed) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[(&env, Type::TEXT), (&name, Type::TEXT), (&sealed, Type::BYTEA)],
            )
            .await
            .map_err(unavailable)?;
        return Ok(None);
    };
    let row = client
        .query_typed_opt(
            KEEP_IF_SEALED_TO,
            &[
                (&env, Type::TEXT),
                (&name, Type::TEXT),
                (&sealed, Type::BYTEA),
                (&recipients, Type::TEXT),
            ],
        )
        .await
        .map_err(unavailable)?
        .ok_or_else(|| store_missing(db, env))?;
    let now: String = row.get(1);
    Ok((now != recipients).then(|| (row.get(0), now)))
}

/// Inserts a sealed answer (checked against the recipients it was sealed
/// to, when given); an answer (or the lack of one) concludes its send,
/// which goes in the same transaction. With `listing`, returns the
/// journal as of that transaction, for its bounds. The statements go out
/// together (pipelined): one wait for the database.
async fn insert(
    db: &Database,
    env: &str,
    name: &str,
    listed: &Listed,
    sealed: &[u8],
    sealed_to: Option<&str>,
    listing: bool,
) -> Result<Inserted, Error> {
    let mut client = db.client().await?;
    let transaction = client.transaction().await.map_err(unavailable)?;
    let keep = keep_if_sealed_to(&*transaction, db, env, name, sealed, sealed_to);
    let conclude = async {
        if listed.is_sent() {
            return Ok(0);
        }
        transaction
            .execute_typed(
                "DELETE FROM svc_journal WHERE env = $1 AND name = $2",
                &[(&env, Type::TEXT), (&listed.sent_name(), Type::TEXT)],
            )
            .await
            .map_err(unavailable)
    };
    let list = async {
        if !listing {
            return Ok(Vec::new());
        }
        list_in(&*transaction, env).await
    };
    let (changed, _, listed) = tokio::try_join!(keep, conclude, list)?;
    if let Some((revision, recipients)) = changed {
        // Dropped: the transaction rolls back, the send stays open.
        return Ok(Inserted::Resealing {
            revision,
            recipients,
        });
    }
    transaction.commit().await.map_err(unavailable)?;
    Ok(Inserted::Kept(listed))
}

/// The journal's entries, by name.
async fn list_in(client: &impl GenericClient, env: &str) -> Result<Vec<Listed>, Error> {
    let rows = client
        .query_typed(
            "SELECT name, octet_length(sealed) FROM svc_journal WHERE env = $1 ORDER BY name",
            &[(&env, Type::TEXT)],
        )
        .await
        .map_err(unavailable)?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let name: String = r.get(0);
            let bytes: i32 = r.get(1);
            Listed::parse_name(&name, name.clone(), bytes.max(0) as u64)
        })
        .collect())
}

/// The recovery journal in `svc_journal`, with its spool.
pub(super) struct PgJournal {
    db: Database,
    env: String,
    spool: Arc<Spool>,
    /// The newest revision of the environment heard of.
    known: KnownRevision,
    /// The environment's recipients as last read: answers are sealed to
    /// them while no newer revision was heard of, and when the database
    /// cannot tell.
    recipients: KnownRecipients,
}

impl PgJournal {
    pub(super) fn new(
        db: Database,
        env: &str,
        spool: Arc<Spool>,
        known: KnownRevision,
        recipients: KnownRecipients,
    ) -> PgJournal {
        PgJournal {
            db,
            env: env.to_string(),
            spool,
            known,
            recipients,
        }
    }

    /// The environment's recipients: as read at the newest revision heard
    /// of, else from the database when it answers, else as last read.
    pub(super) async fn recipients(&self) -> Result<String, Error> {
        if let Some(recipients) = self.recipients.current(&self.known) {
            return Ok(recipients);
        }
        let read = self
            .db
            .within(async {
                let client = self.db.client().await?;
                let row = client
                    .query_typed_opt(
                        "SELECT revision, recipients FROM svc_environments WHERE name = $1",
                        &[(&self.env, Type::TEXT)],
                    )
                    .await
                    .map_err(unavailable)?;
                Ok(row.map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1))))
            })
            .await;
        match read {
            Ok(Some((revision, recipients))) => {
                self.known.heard(revision);
                self.recipients.heard(revision, &recipients);
                Ok(recipients)
            }
            Ok(None) => Err(store_missing(&self.db, &self.env)),
            Err(error) => self.recipients.last().ok_or(error),
        }
    }

    /// The environment's recipients changed since an entry was sealed to
    /// the ones known: they are these now. An entry is sealed again a few
    /// times at most.
    fn resealing(&self, revision: i64, recipients: &str, times: &mut u32) -> Result<(), Error> {
        *times += 1;
        if *times > 3 {
            return Err(Error::Invalid(format!(
                "the recipients of `{}` changed {} times while an answer was being kept; \
                 try again when they stay put",
                self.env, *times
            )));
        }
        self.known.heard(revision);
        self.recipients.heard(revision, recipients);
        Ok(())
    }

    fn seal(entry: &Entry, recipients: &str) -> Result<Vec<u8>, Error> {
        let json = zeroize::Zeroizing::new(
            serde_json::to_vec(entry).map_err(|e| Error::Invalid(e.to_string()))?,
        );
        crypto::age_encrypt(&json, recipients)
    }

    /// Drops what is past the journal's bounds in `listed`.
    async fn prune(&self, listed: &[Listed]) -> Result<usize, Error> {
        let drop: Vec<&str> = journal::past_bounds(listed, Utc::now())
            .iter()
            .map(|l| l.handle.as_str())
            .collect();
        self.delete_named(&drop).await
    }

    /// Deletes the entries of these names, in one statement.
    async fn delete_named(&self, names: &[&str]) -> Result<usize, Error> {
        if names.is_empty() {
            return Ok(0);
        }
        self.db
            .within(async {
                let client = self.db.client().await?;
                let removed = client
                    .execute_typed(
                        "DELETE FROM svc_journal WHERE env = $1 AND name = ANY($2)",
                        &[(&self.env, Type::TEXT), (&names, Type::TEXT_ARRAY)],
                    )
                    .await
                    .map_err(unavailable)?;
                Ok(removed as usize)
            })
            .await
    }

    async fn list_database(&self) -> Result<Vec<Listed>, Error> {
        self.db
            .within(async {
                let client = self.db.client().await?;
                list_in(&**client, &self.env).await
            })
            .await
    }

    async fn delete_where(&self, sql: &str, value: &str) -> Result<usize, Error> {
        self.db
            .within(async {
                let client = self.db.client().await?;
                let removed = client
                    .execute(sql, &[&self.env, &value])
                    .await
                    .map_err(unavailable)?;
                Ok(removed as usize)
            })
            .await
    }
}

#[async_trait]
impl JournalStore for PgJournal {
    fn describe(&self) -> String {
        format!(
            "the recovery journal of `{}` in {} (and `{}` while it cannot be reached)",
            self.env,
            self.db.shown,
            self.spool.dir().display()
        )
    }

    async fn record(&self, entry: &Entry) -> Result<usize, Error> {
        let name = journal::entry_name(entry);
        let mut resealed = 0;
        loop {
            let recipients = self.recipients().await?;
            let sealed = Self::seal(entry, &recipients)?;
            // On this host first: kept, whatever the database does next. A
            // state directory that cannot be written leaves the database
            // alone to keep it (svc doctor checks that directory).
            let spool = self.spool.clone();
            let (spooled_name, spooled) = (name.clone(), sealed.clone());
            let local = tokio::task::spawn_blocking(move || {
                spool.files.keep_sealed(&spooled_name, &spooled)
            })
            .await
            .map_err(|_| Error::Invalid("a file task stopped unexpectedly".into()))
            .and_then(|written| written);
            if let Err(error) = &local {
                tracing::error!(
                    "{}: the answer of run {} cannot be kept on this host, only in the database: {error}",
                    error.code(),
                    entry.run_id
                );
            }
            let listed = Listed::parse_name(&name, name.clone(), sealed.len() as u64)
                .ok_or_else(|| Error::Invalid(format!("`{name}` is not a journal entry's name")))?;
            let inserted = self
                .db
                .within(insert(
                    &self.db,
                    &self.env,
                    &name,
                    &listed,
                    &sealed,
                    Some(&recipients),
                    true,
                ))
                .await;
            match inserted {
                Ok(Inserted::Kept(journal)) => {
                    if local.is_ok() {
                        let path = self.spool.dir().join(format!("{name}.age"));
                        let in_spool = Listed {
                            handle: path.to_string_lossy().into_owned(),
                            ..listed
                        };
                        self.spool.files.forget(&in_spool)?;
                    }
                    return self.prune(&journal).await;
                }
                Ok(Inserted::Resealing {
                    revision,
                    recipients,
                }) => {
                    self.resealing(revision, &recipients, &mut resealed)?;
                }
                Err(error) if local.is_ok() => {
                    tracing::warn!(
                        "the answer of run {} is kept in `{}` until the database answers again: {error}",
                        entry.run_id,
                        self.spool.dir().display()
                    );
                    return Ok(0);
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn sending(&self, entry: &Entry) -> Result<(), Error> {
        let name = journal::entry_name(entry);
        let mut resealed = 0;
        loop {
            let recipients = self.recipients().await?;
            let sealed = Self::seal(entry, &recipients)?;
            let changed = self
                .db
                .within(async {
                    let client = self.db.client().await?;
                    keep_if_sealed_to(
                        &**client,
                        &self.db,
                        &self.env,
                        &name,
                        &sealed,
                        Some(&recipients),
                    )
                    .await
                })
                .await?;
            match changed {
                None => return Ok(()),
                Some((revision, recipients)) => {
                    self.resealing(revision, &recipients, &mut resealed)?
                }
            }
        }
    }

    async fn list(&self) -> Result<Vec<Listed>, Error> {
        self.spool.flush(&self.db).await?;
        self.list_database().await
    }

    async fn read(&self, listed: &Listed, identities: &Identities) -> Result<Entry, Error> {
        let sealed: Vec<u8> = self
            .db
            .within(async {
                let client = self.db.client().await?;
                let row = client
                    .query_opt(
                        "SELECT sealed FROM svc_journal WHERE env = $1 AND name = $2",
                        &[&self.env, &listed.handle],
                    )
                    .await
                    .map_err(unavailable)?
                    .ok_or_else(|| {
                        Error::Invalid(format!("answer `{}` is no longer kept", listed.handle))
                    })?;
                Ok(row.get(0))
            })
            .await?;
        let what = format!("answer `{}` of the recovery journal", listed.handle);
        let plaintext = crypto::age_decrypt(&sealed, identities, &what)?;
        journal::parse_entry(Path::new(&what), &plaintext)
    }

    async fn settled(&self, endpoint: &str, run_id: &str) -> Result<usize, Error> {
        let listed = self.list_database().await?;
        let settled: Vec<&str> = listed
            .iter()
            .filter(|l| l.endpoint == endpoint && l.run_id.as_str() <= run_id)
            .map(|l| l.handle.as_str())
            .collect();
        self.delete_named(&settled).await
    }

    async fn discard(&self, run_id: &str) -> Result<usize, Error> {
        self.spool.flush(&self.db).await?;
        self.delete_where(
            "DELETE FROM svc_journal WHERE env = $1 AND name LIKE $2",
            &format!("{run_id}-%"),
        )
        .await
    }

    async fn flush(&self) -> Result<usize, Error> {
        self.spool.flush(&self.db).await
    }
}
