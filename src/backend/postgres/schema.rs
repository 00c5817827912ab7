//! The database schema, created and migrated by svc itself: versioned, one
//! migration after another, under an advisory lock so that replicas
//! starting together migrate once.

use tokio_postgres::Client;

use super::unavailable;
use crate::secrets::Error;

/// The schema this svc reads and writes.
pub const VERSION: i32 = 5;

/// Each migration, from version 0 to 1, 1 to 2, ...
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE svc_environments (
    name        text PRIMARY KEY,
    recipients  text NOT NULL,
    current_key integer NOT NULL,
    revision    bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE svc_data_keys (
    env        text NOT NULL REFERENCES svc_environments (name) ON DELETE CASCADE,
    id         integer NOT NULL,
    wrapped    bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (env, id)
);
CREATE TABLE svc_secrets (
    env        text NOT NULL REFERENCES svc_environments (name) ON DELETE CASCADE,
    name       text NOT NULL,
    version    bigint NOT NULL,
    key_id     integer NOT NULL,
    sealed     bytea,
    updated_at timestamptz,
    updated_by text,
    expires_at timestamptz,
    removed    boolean NOT NULL DEFAULT false,
    revision   bigint NOT NULL,
    PRIMARY KEY (env, name)
);
CREATE INDEX svc_secrets_revision ON svc_secrets (env, revision);
CREATE TABLE svc_secret_history (
    env        text NOT NULL,
    name       text NOT NULL,
    version    bigint NOT NULL,
    key_id     integer NOT NULL,
    sealed     bytea NOT NULL,
    updated_at timestamptz,
    updated_by text,
    expires_at timestamptz,
    PRIMARY KEY (env, name, version),
    FOREIGN KEY (env, name) REFERENCES svc_secrets (env, name) ON DELETE CASCADE
);
CREATE TABLE svc_api_keys (
    env        text NOT NULL REFERENCES svc_environments (name) ON DELETE CASCADE,
    id         text NOT NULL,
    identity   text NOT NULL,
    name       text,
    hash       text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz,
    revoked_at timestamptz,
    PRIMARY KEY (env, id)
);
CREATE TABLE svc_schedule_state (
    env      text NOT NULL,
    schedule text NOT NULL,
    state    jsonb NOT NULL,
    PRIMARY KEY (env, schedule)
);
CREATE TABLE svc_logs (
    id     bigserial PRIMARY KEY,
    env    text NOT NULL,
    log    text NOT NULL,
    at     timestamptz NOT NULL DEFAULT now(),
    record jsonb NOT NULL
);
CREATE INDEX svc_logs_by_log ON svc_logs (env, log, id);
CREATE TABLE svc_audit (
    id   bigserial PRIMARY KEY,
    env  text NOT NULL,
    at   timestamptz NOT NULL DEFAULT now(),
    line jsonb NOT NULL
);
CREATE TABLE svc_jobs (
    env         text NOT NULL,
    id          text NOT NULL,
    owner       text NOT NULL,
    endpoint    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    record      jsonb,
    PRIMARY KEY (env, id)
);
CREATE TABLE svc_journal (
    env        text NOT NULL,
    name       text NOT NULL,
    sealed     bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (env, name)
);
"#,
    r#"
CREATE TABLE svc_connections (
    env           text NOT NULL,
    client        text NOT NULL,
    connection_id text NOT NULL,
    state         jsonb NOT NULL,
    PRIMARY KEY (env, client, connection_id)
);
"#,
    r#"
CREATE TABLE svc_outbox (
    env             text NOT NULL,
    id              text NOT NULL,
    status          text NOT NULL,
    created_at      timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    lease_until     timestamptz,
    settled_at      timestamptz,
    delivery        jsonb NOT NULL,
    PRIMARY KEY (env, id)
);
CREATE INDEX svc_outbox_due ON svc_outbox (env, next_attempt_at) WHERE status = 'pending';
"#,
    r#"
CREATE TABLE svc_account_secrets (
    env           text NOT NULL,
    client        text NOT NULL,
    connection_id text NOT NULL,
    name          text NOT NULL,
    version       bigint NOT NULL,
    key_id        integer NOT NULL,
    sealed        bytea NOT NULL,
    updated_at    timestamptz,
    updated_by    text,
    expires_at    timestamptz,
    PRIMARY KEY (env, client, connection_id, name)
);
ALTER TABLE svc_api_keys ADD COLUMN reach jsonb;
"#,
    r#"
CREATE TABLE svc_connect_sessions (
    env        text NOT NULL,
    token_hash text NOT NULL,
    state      text NOT NULL,
    expires_at timestamptz NOT NULL,
    session    jsonb NOT NULL,
    PRIMARY KEY (env, token_hash)
);
CREATE UNIQUE INDEX svc_connect_sessions_state ON svc_connect_sessions (env, state);
CREATE INDEX svc_connect_sessions_expiry ON svc_connect_sessions (env, expires_at);
"#,
];

/// The advisory lock key that serialises migrations.
const MIGRATION_LOCK: i64 = 0x7376_635f_7363_6865; // "svc_sche"

/// Creates or migrates the schema; refuses a database a newer svc wrote.
///
/// Every process opens the database, most of them short (`svc run`, `svc
/// secret get`): a schema already current is found by one statement,
/// without the migration lock or any DDL. Only a database that is new or
/// behind takes the lock and migrates.
pub async fn migrate(client: &mut Client) -> Result<i32, Error> {
    // Asked as a simple query: one round trip, where a statement is
    // prepared first (every process that opens the database asks this).
    if let Ok(messages) = client.simple_query("SELECT version FROM svc_schema").await
        && messages.iter().any(|message| {
            matches!(message, tokio_postgres::SimpleQueryMessage::Row(row)
                if row.get(0) == Some(VERSION.to_string().as_str()))
        })
    {
        return Ok(VERSION);
    }
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(unavailable)?;
    let result = migrate_locked(client).await;
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    result
}

async fn migrate_locked(client: &mut Client) -> Result<i32, Error> {
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS svc_schema (version integer NOT NULL)")
        .await
        .map_err(unavailable)?;
    let row = client
        .query_opt("SELECT version FROM svc_schema", &[])
        .await
        .map_err(unavailable)?;
    let mut version: i32 = match row {
        Some(row) => row.get(0),
        None => {
            client
                .execute("INSERT INTO svc_schema (version) VALUES (0)", &[])
                .await
                .map_err(unavailable)?;
            0
        }
    };
    if version > VERSION {
        return Err(Error::Invalid(format!(
            "the database has svc schema version {version}, written by a newer svc (this one knows {VERSION})"
        )));
    }
    while version < VERSION {
        let step = MIGRATIONS[version as usize];
        let transaction = client.transaction().await.map_err(unavailable)?;
        transaction.batch_execute(step).await.map_err(unavailable)?;
        transaction
            .execute("UPDATE svc_schema SET version = $1", &[&(version + 1)])
            .await
            .map_err(unavailable)?;
        transaction.commit().await.map_err(unavailable)?;
        version += 1;
    }
    Ok(version)
}
