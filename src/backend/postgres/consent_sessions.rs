//! Connect sessions in `svc_connect_sessions`: a row per session, found by
//! its token's hash or by its state. Each step reads the row `FOR UPDATE`,
//! applies the one rule of [`ConsentSession::open`] or
//! [`ConsentSession::finish`], and writes it back in the same
//! transaction: of two replicas that get the same link or callback, the
//! second waits for the first and finds the session used.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::stores::stored;
use super::{Database, unavailable};
use crate::backend::consent_sessions::{Claim, ConsentSession, ConsentSessions, Verdict};
use crate::secrets::Error;

pub struct PgConsentSessions {
    db: Database,
    env: String,
}

impl PgConsentSessions {
    pub fn new(db: Database, env: &str) -> PgConsentSessions {
        PgConsentSessions {
            db,
            env: env.to_string(),
        }
    }

    /// Applies a step to the session of the row `column` = `value` finds.
    async fn claim(
        &self,
        column: &str,
        value: &str,
        step: impl FnOnce(&mut ConsentSession) -> Verdict + Send,
    ) -> Result<Claim, Error> {
        let mut client = self.db.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        let row = transaction
            .query_opt(
                &format!(
                    "SELECT session FROM svc_connect_sessions WHERE env = $1 AND {column} = $2 FOR UPDATE"
                ),
                &[&self.env, &value],
            )
            .await
            .map_err(unavailable)?;
        let Some(row) = row else {
            return Ok(Claim::Unknown);
        };
        let mut session: ConsentSession = stored(row.get(0), "a connect session")?;
        let before = session.clone();
        let verdict = step(&mut session);
        if session != before {
            let value =
                serde_json::to_value(&session).map_err(|e| Error::Invalid(e.to_string()))?;
            transaction
                .execute(
                    "UPDATE svc_connect_sessions SET session = $3 WHERE env = $1 AND token_hash = $2",
                    &[&self.env, &session.token_hash, &value],
                )
                .await
                .map_err(unavailable)?;
        }
        transaction.commit().await.map_err(unavailable)?;
        Ok(verdict.claim(session))
    }
}

#[async_trait]
impl ConsentSessions for PgConsentSessions {
    fn describe(&self) -> String {
        format!(
            "the connect sessions of `{}` in {}",
            self.env, self.db.shown
        )
    }

    async fn create(&self, session: &ConsentSession, now: DateTime<Utc>) -> Result<(), Error> {
        let value = serde_json::to_value(session).map_err(|e| Error::Invalid(e.to_string()))?;
        let stale_before = now
            .checked_sub_signed(crate::backend::consent_sessions::KEPT_EXPIRED)
            .unwrap_or(now);
        let client = self.db.client().await?;
        client
            .execute(
                "DELETE FROM svc_connect_sessions WHERE env = $1 AND expires_at < $2",
                &[&self.env, &stale_before],
            )
            .await
            .map_err(unavailable)?;
        client
            .execute(
                "INSERT INTO svc_connect_sessions (env, token_hash, state, expires_at, session) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &self.env,
                    &session.token_hash,
                    &session.state,
                    &session.expires_at,
                    &value,
                ],
            )
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn open(
        &self,
        token_hash: &str,
        browser: &str,
        now: DateTime<Utc>,
    ) -> Result<Claim, Error> {
        self.claim("token_hash", token_hash, |s| s.open(browser, now))
            .await
    }

    async fn finish(&self, state: &str, now: DateTime<Utc>) -> Result<Claim, Error> {
        self.claim("state", state, |s| s.finish(now)).await
    }
}
