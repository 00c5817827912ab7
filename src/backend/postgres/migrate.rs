//! `svc backend migrate`: one environment from files into a database.
//!
//! The store (every secret with its version and history), its recipients,
//! the API keys, the schedule state and the logs are copied. A second run
//! copies only what changed: a secret the database holds at the same
//! version is left alone, one it holds newer is refused without `--force`,
//! log records already there (by run id) are skipped.

use std::collections::BTreeMap;
use std::path::Path;

use super::crypto;
use super::{Database, unavailable};
use crate::backend::RunRecord;
use crate::backend::files::state::StateFile;
use crate::backend::files::store::Store;
use crate::secrets::{Document, Error, Identities, RecipientsFile};

/// What a migration did.
#[derive(Debug, Default)]
pub struct Report {
    pub secrets_copied: usize,
    pub secrets_unchanged: usize,
    pub keys: usize,
    pub schedules: usize,
    pub log_records: usize,
    pub audit_lines: usize,
}

/// Copies an environment from the files backend's directories.
pub async fn from_files(
    secrets_dir: &Path,
    log_dir: &Path,
    state_dir: &Path,
    env: &str,
    url: &str,
    identities: &Identities,
    force: bool,
) -> Result<Report, Error> {
    let store = Store::new(secrets_dir, env)?;
    let document = store.read(identities)?;
    let recipients = RecipientsFile::read(&store.recipients_path())?.text();
    let database = Database::connect(url)?;
    database.migrate().await?;
    let backend =
        super::stores::backend(database.clone(), state_dir, env, &Default::default()).await;
    if !backend.secrets.exists().await? {
        backend.secrets.init(&recipients).await?;
    }
    let mut report = Report::default();
    copy_secrets(&database, env, identities, &document, force, &mut report).await?;
    let client = database.client().await?;
    for (id, key) in &document.api_keys {
        client
            .execute(
                "INSERT INTO svc_api_keys (env, id, identity, name, hash, created_at, expires_at, revoked_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (env, id) DO UPDATE SET \
                 revoked_at = COALESCE(svc_api_keys.revoked_at, EXCLUDED.revoked_at)",
                &[&env, id, &key.identity, &key.name, &key.hash, &key.created_at, &key.expires_at, &key.revoked_at],
            )
            .await
            .map_err(unavailable)?;
        report.keys += 1;
    }
    // Schedule state: the later of the two for each schedule.
    let states = StateFile::new(state_dir, env)
        .load()
        .map_err(|e| Error::io("read", state_dir, e))?;
    let stored = backend.schedules.load().await?;
    let mut newer = BTreeMap::new();
    for (name, state) in states {
        let theirs = stored.get(&name).and_then(|s| s.last_run_at);
        if theirs.is_none() || state.last_run_at > theirs {
            newer.insert(name, state);
        }
    }
    report.schedules = newer.len();
    backend.schedules.save(&newer).await?;
    // Logs: every record once, by run id.
    let env_logs = log_dir.join(env);
    if let Ok(entries) = std::fs::read_dir(&env_logs) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "audit.jsonl" {
                report.audit_lines += copy_audit(&client, env, &entry.path()).await?;
                continue;
            }
            let Some(stem) = name.strip_suffix(".jsonl") else {
                continue;
            };
            let log = match stem.strip_prefix("schedule.") {
                Some(schedule) => format!("schedule:{schedule}"),
                None => format!("endpoint:{stem}"),
            };
            let records = crate::backend::files::log::read_last(&entry.path(), usize::MAX)
                .map_err(|e| Error::io("read", &entry.path(), e))?;
            report.log_records += copy_records(&client, env, &log, &records).await?;
        }
    }
    // Bump the revision: every replica's cache reads the copy.
    client
        .execute(
            "UPDATE svc_environments SET revision = revision + 1 WHERE name = $1",
            &[&env],
        )
        .await
        .map_err(unavailable)?;
    Ok(report)
}

async fn copy_secrets(
    database: &Database,
    env: &str,
    identities: &Identities,
    document: &Document,
    force: bool,
    report: &mut Report,
) -> Result<(), Error> {
    let mut client = database.client().await?;
    let transaction = client.transaction().await.map_err(unavailable)?;
    let row = transaction
        .query_one(
            "UPDATE svc_environments SET revision = revision + 1 WHERE name = $1 \
             RETURNING revision, current_key",
            &[&env],
        )
        .await
        .map_err(unavailable)?;
    let (revision, key_id): (i64, i32) = (row.get(0), row.get(1));
    let wrapped: Vec<u8> = transaction
        .query_one(
            "SELECT wrapped FROM svc_data_keys WHERE env = $1 AND id = $2",
            &[&env, &key_id],
        )
        .await
        .map_err(unavailable)?
        .get(0);
    let key = crypto::unwrap(&wrapped, identities, env)?;
    for (name, entry) in &document.secrets {
        let held: Option<(i64, bool)> = transaction
            .query_opt(
                "SELECT version, removed FROM svc_secrets WHERE env = $1 AND name = $2",
                &[&env, name],
            )
            .await
            .map_err(unavailable)?
            .map(|r| (r.get(0), r.get(1)));
        let version = entry.version as i64;
        match held {
            Some((theirs, false)) if theirs == version => {
                report.secrets_unchanged += 1;
                continue;
            }
            Some((theirs, false)) if theirs > version && !force => {
                return Err(Error::Invalid(format!(
                    "the database holds `{name}` at version {theirs}, newer than the files' {version}: \
                     nothing was copied; give --force to overwrite it"
                )));
            }
            _ => {}
        }
        let sealed = crypto::seal(&key, env, name, version, entry.value.expose().as_bytes())?;
        super::stores::upsert_secret(
            &transaction,
            env,
            &super::stores::CurrentRow {
                name,
                version,
                key_id,
                sealed: &sealed,
                updated_at: entry.updated_at,
                updated_by: entry.updated_by.as_deref(),
                expires_at: entry.expires_at,
                revision,
            },
        )
        .await?;
        transaction
            .execute(
                "DELETE FROM svc_secret_history WHERE env = $1 AND name = $2",
                &[&env, name],
            )
            .await
            .map_err(unavailable)?;
        for past in &entry.history {
            let past_version = past.version as i64;
            let sealed = crypto::seal(
                &key,
                env,
                name,
                past_version,
                past.value.expose().as_bytes(),
            )?;
            transaction
                .execute(
                    "INSERT INTO svc_secret_history \
                     (env, name, version, key_id, sealed, updated_at, updated_by, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
                    &[
                        &env,
                        name,
                        &past_version,
                        &key_id,
                        &sealed,
                        &past.updated_at,
                        &past.updated_by,
                        &past.expires_at,
                    ],
                )
                .await
                .map_err(unavailable)?;
        }
        report.secrets_copied += 1;
    }
    transaction.commit().await.map_err(unavailable)
}

async fn copy_records(
    client: &deadpool_postgres::Object,
    env: &str,
    log: &str,
    records: &[RunRecord],
) -> Result<usize, Error> {
    let mut copied = 0;
    for record in records {
        let value = serde_json::to_value(record).map_err(|e| Error::Invalid(e.to_string()))?;
        copied += client
            .execute(
                "INSERT INTO svc_logs (env, log, at, record) \
                 SELECT $1, $2, $3, $4 WHERE NOT EXISTS \
                 (SELECT 1 FROM svc_logs WHERE env = $1 AND log = $2 AND record->>'id' = $5)",
                &[&env, &log, &record.started_at, &value, &record.id],
            )
            .await
            .map_err(unavailable)? as usize;
    }
    Ok(copied)
}

async fn copy_audit(
    client: &deadpool_postgres::Object,
    env: &str,
    path: &Path,
) -> Result<usize, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    let mut copied = 0;
    for line in text.lines() {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        copied += client
            .execute(
                "INSERT INTO svc_audit (env, line) SELECT $1, $2 \
                 WHERE NOT EXISTS (SELECT 1 FROM svc_audit WHERE env = $1 AND line = $2)",
                &[&env, &value],
            )
            .await
            .map_err(unavailable)? as usize;
    }
    Ok(copied)
}
