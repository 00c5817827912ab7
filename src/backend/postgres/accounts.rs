//! The values of per-account secrets: a row per (environment, client,
//! connection, secret) in `svc_account_secrets`, sealed with the
//! environment's data key and bound to `CLIENT/CONNECTION/NAME` and the
//! version, so that a value cannot be moved to another account's row.
//!
//! A write takes the rows of its connection `FOR UPDATE` and leaves the
//! environment's revision alone: refreshing one account does not make
//! every replica re-read the shared secrets, and two accounts never wait
//! for each other.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::crypto;
use super::stores::{PgSecrets, still_held};
use super::{Database, unavailable};
use crate::backend::accounts::Imported;
use crate::backend::{AccountSecrets, Change, Changed, ConnectionKey, ConnectionState, Held};
use crate::secrets::document::Entry;
use crate::secrets::{Document, Error, Identities, SecretValue};

pub struct PgAccounts {
    db: Database,
    env: String,
    /// For the environment's data keys, opened once.
    secrets: Arc<PgSecrets>,
}

impl PgAccounts {
    pub fn new(db: Database, env: &str, secrets: Arc<PgSecrets>) -> PgAccounts {
        PgAccounts {
            db,
            env: env.to_string(),
            secrets,
        }
    }
}

impl PgAccounts {
    /// The environment's current data key, opened, and its id: held
    /// steady against a change of recipients until the transaction ends.
    async fn current_key(
        &self,
        client: &impl tokio_postgres::GenericClient,
        identities: &Identities,
    ) -> Result<(i32, crypto::DataKey), Error> {
        let current_key: i32 = client
            .query_opt(
                "SELECT current_key FROM svc_environments WHERE name = $1 FOR SHARE",
                &[&self.env],
            )
            .await
            .map_err(unavailable)?
            .ok_or_else(|| Error::StoreMissing {
                env: self.env.clone(),
                path: self.db.shown.clone().into(),
            })?
            .get(0);
        let data_key = self
            .secrets
            .data_key(client, identities, current_key)
            .await?;
        Ok((current_key, data_key))
    }
}

/// What a sealed account value is bound to, besides the environment and
/// the version.
fn bound_name(key: &ConnectionKey, name: &str) -> String {
    format!("{}/{}/{name}", key.client, key.connection_id)
}

/// A row, opened.
async fn open_row(
    secrets: &PgSecrets,
    client: &impl tokio_postgres::GenericClient,
    identities: &Identities,
    env: &str,
    key: &ConnectionKey,
    row: &tokio_postgres::Row,
) -> Result<(String, Entry), Error> {
    let name: String = row.get(0);
    let version: i64 = row.get(1);
    let key_id: i32 = row.get(2);
    let sealed: Vec<u8> = row.get(3);
    let data_key = secrets.data_key(client, identities, key_id).await?;
    let plaintext = crypto::open(&data_key, env, &bound_name(key, &name), version, &sealed)?;
    let text = String::from_utf8(plaintext.to_vec()).map_err(|_| Error::Corrupted {
        path: format!("`{name}` of connection `{key}`").into(),
        problem: "its value is not text".into(),
    })?;
    Ok((
        name,
        Entry {
            value: SecretValue::new(text),
            version: version as u64,
            updated_at: row.get(4),
            updated_by: row.get(5),
            expires_at: row.get(6),
            history: Vec::new(),
        },
    ))
}

const SELECT: &str = "SELECT name, version, key_id, sealed, updated_at, updated_by, expires_at \
     FROM svc_account_secrets WHERE env = $1 AND client = $2 AND connection_id = $3";

/// An account's state with each of its values, one row a value (one row
/// of nulls for an account without values).
const SELECT_ACCOUNT: &str = "SELECT a.name, a.version, a.key_id, a.sealed, a.updated_at, \
     a.updated_by, a.expires_at, c.state FROM svc_connections c LEFT JOIN svc_account_secrets a \
     ON a.env = c.env AND a.client = c.client AND a.connection_id = c.connection_id \
     WHERE c.env = $1 AND c.client = $2 AND c.connection_id = $3";

#[async_trait]
impl AccountSecrets for PgAccounts {
    async fn account(
        &self,
        identities: &Identities,
        key: &ConnectionKey,
    ) -> Result<Option<(ConnectionState, Arc<Document>)>, Error> {
        let client = self.db.client().await?;
        let statement = client
            .prepare_cached(SELECT_ACCOUNT)
            .await
            .map_err(unavailable)?;
        let rows = client
            .query(&statement, &[&self.env, &key.client, &key.connection_id])
            .await
            .map_err(unavailable)?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let state: ConnectionState =
            serde_json::from_value(first.get(7)).map_err(|e| Error::Corrupted {
                path: format!("connection `{key}`").into(),
                problem: format!("its state is not one: {e}"),
            })?;
        let mut document = Document::new(&self.env);
        for row in rows
            .iter()
            .filter(|r| r.get::<_, Option<String>>(0).is_some())
        {
            let (name, entry) =
                open_row(&self.secrets, &**client, identities, &self.env, key, row).await?;
            document.secrets.insert(name, entry);
        }
        Ok(Some((state, Arc::new(document))))
    }

    async fn document(
        &self,
        identities: &Identities,
        key: &ConnectionKey,
    ) -> Result<Arc<Document>, Error> {
        let client = self.db.client().await?;
        let statement = client.prepare_cached(SELECT).await.map_err(unavailable)?;
        let rows = client
            .query(&statement, &[&self.env, &key.client, &key.connection_id])
            .await
            .map_err(unavailable)?;
        let mut document = Document::new(&self.env);
        for row in &rows {
            let (name, entry) =
                open_row(&self.secrets, &**client, identities, &self.env, key, row).await?;
            document.secrets.insert(name, entry);
        }
        Ok(Arc::new(document))
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
        let mut fences = Vec::new();
        for lock in locks {
            match lock.fence() {
                Some(fence) if !lock.lost() => fences.push(fence),
                _ => return Err(Error::LockLost),
            }
        }
        let mut client = self.db.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        let (current_key, data_key) = self.current_key(&*transaction, identities).await?;
        let rows = transaction
            .query(
                &format!("{SELECT} FOR UPDATE"),
                &[&self.env, &key.client, &key.connection_id],
            )
            .await
            .map_err(unavailable)?;
        let mut values = Document::new(&self.env);
        for row in &rows {
            let (name, entry) = open_row(
                &self.secrets,
                &*transaction,
                identities,
                &self.env,
                key,
                row,
            )
            .await?;
            values.secrets.insert(name, entry);
        }
        let before: std::collections::BTreeMap<String, u64> = values
            .secrets
            .iter()
            .map(|(name, entry)| (name.clone(), entry.version))
            .collect();
        let mut done = Vec::new();
        for change in changes {
            done.push(crate::backend::apply_to_document(
                &mut values,
                change,
                by,
                at,
                &self.env,
            )?);
        }
        for name in before.keys() {
            if !values.secrets.contains_key(name) {
                transaction
                    .execute(
                        "DELETE FROM svc_account_secrets \
                         WHERE env = $1 AND client = $2 AND connection_id = $3 AND name = $4",
                        &[&self.env, &key.client, &key.connection_id, name],
                    )
                    .await
                    .map_err(unavailable)?;
            }
        }
        for (name, entry) in &values.secrets {
            if before.get(name) == Some(&entry.version) {
                continue;
            }
            let version = entry.version as i64;
            let sealed = crypto::seal(
                &data_key,
                &self.env,
                &bound_name(key, name),
                version,
                entry.value.expose().as_bytes(),
            )?;
            transaction
                .execute(
                    "INSERT INTO svc_account_secrets \
                     (env, client, connection_id, name, version, key_id, sealed, updated_at, updated_by, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (env, client, connection_id, name) DO UPDATE SET version = $5, \
                     key_id = $6, sealed = $7, updated_at = $8, updated_by = $9, expires_at = $10",
                    &[
                        &self.env,
                        &key.client,
                        &key.connection_id,
                        name,
                        &version,
                        &current_key,
                        &sealed,
                        &entry.updated_at,
                        &entry.updated_by,
                        &entry.expires_at,
                    ],
                )
                .await
                .map_err(unavailable)?;
        }
        // Last, after the row locks that order this write among others.
        for fence in &fences {
            if !still_held(&transaction, fence).await? {
                return Err(Error::LockLost);
            }
        }
        transaction.commit().await.map_err(unavailable)?;
        Ok(done)
    }

    async fn import(
        &self,
        identities: &Identities,
        client: &str,
        accounts: &[Imported],
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<bool>, Error> {
        let mut db = self.db.client().await?;
        let transaction = db.transaction().await.map_err(unavailable)?;
        let (current_key, data_key) = self.current_key(&*transaction, identities).await?;
        let insert_value = transaction
            .prepare(
                "INSERT INTO svc_account_secrets \
                 (env, client, connection_id, name, version, key_id, sealed, updated_at, updated_by, expires_at) \
                 VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8, $9)",
            )
            .await
            .map_err(unavailable)?;
        let insert_connection = transaction
            .prepare(
                "INSERT INTO svc_connections (env, client, connection_id, state) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (env, client, connection_id) DO NOTHING",
            )
            .await
            .map_err(unavailable)?;
        let mut created = Vec::with_capacity(accounts.len());
        for account in accounts {
            let state =
                serde_json::to_value(crate::backend::accounts::imported_state(&account.tags, at))
                    .map_err(|e| Error::Invalid(e.to_string()))?;
            // One transaction: the values and the account appear together.
            let inserted = transaction
                .execute(
                    &insert_connection,
                    &[&self.env, &client, &account.connection_id, &state],
                )
                .await
                .map_err(unavailable)?;
            created.push(inserted > 0);
            if inserted == 0 {
                continue;
            }
            let key = ConnectionKey {
                client: client.to_string(),
                connection_id: account.connection_id.clone(),
            };
            // Leftovers of an account deleted on a backend that kept them.
            transaction
                .execute(
                    "DELETE FROM svc_account_secrets WHERE env = $1 AND client = $2 AND connection_id = $3",
                    &[&self.env, &client, &account.connection_id],
                )
                .await
                .map_err(unavailable)?;
            for (name, value, expires_at) in &account.values {
                let sealed = crypto::seal(
                    &data_key,
                    &self.env,
                    &bound_name(&key, name),
                    1,
                    value.expose().as_bytes(),
                )?;
                transaction
                    .execute(
                        &insert_value,
                        &[
                            &self.env,
                            &client,
                            &account.connection_id,
                            name,
                            &current_key,
                            &sealed,
                            &at,
                            &by,
                            expires_at,
                        ],
                    )
                    .await
                    .map_err(unavailable)?;
            }
        }
        transaction.commit().await.map_err(unavailable)?;
        Ok(created)
    }

    async fn forget(&self, _identities: &Identities, key: &ConnectionKey) -> Result<(), Error> {
        let client = self.db.client().await?;
        client
            .execute(
                "DELETE FROM svc_account_secrets WHERE env = $1 AND client = $2 AND connection_id = $3",
                &[&self.env, &key.client, &key.connection_id],
            )
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
