//! What a person's consent brings, stored: the one path for `svc
//! authorize` (loopback or device) and for the hosted consent of `svc
//! serve`, for a client's one connection or a connected account.
//!
//! The answer is kept in the recovery journal first; then the run locks of
//! every endpoint that updates the client's tokens are taken (for a
//! connected account, that account's own), so no refresh in flight stores
//! tokens from the old refresh token over the new ones; then every token
//! is written in one atomic update, and the connection is recorded
//! `healthy` (with `connection.created` or `connection.recovered`).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use zeroize::Zeroizing;

use super::tokens::Tokens;
use super::{Code, Error};
use crate::backend::connection::{ConnectionKey, Observation, Transition};
use crate::backend::{Backend, Change, Changed, Held, LockFailure};
use crate::net::http;
use crate::program::Script;
use crate::secrets::{Identities, SecretValue, journal};
use crate::syntax::ast::*;

/// The connection a consent is for.
pub struct Target<'a> {
    pub script: &'a Script,
    pub client: &'a OAuthClientDecl,
    pub backend: &'a Backend,
    pub keys: &'a Identities,
    pub key: ConnectionKey,
}

/// Why the tokens were not stored.
#[derive(Debug)]
pub enum StoreFailure {
    /// A run of this endpoint held its lock past the timeout.
    Busy(String, Duration),
    /// The locks or the store failed; `kept` names the run whose answer
    /// the recovery journal kept.
    Store {
        error: crate::secrets::Error,
        kept: Option<String>,
    },
}

/// A time-ordered, unique id for a journal entry.
pub fn run_id() -> String {
    let millis = Utc::now().timestamp_millis().max(0) as u64;
    format!("{millis:013x}{:08x}", fastrand::u32(..))
}

/// The update of every secret the client stores from a token answer; an
/// error, and nothing to store, when the answer lacks one of the tokens.
pub fn token_changes(client: &OAuthClientDecl, tokens: &Tokens) -> Result<Vec<Change>, Error> {
    let now = crate::secrets::document::now();
    let mut changes = Vec::new();
    for store in client.stores.iter().flat_map(|s| &s.entries) {
        let Some(field) = store.field else { continue };
        let Some(value) = tokens.get(field) else {
            let help = match field {
                TokenField::RefreshToken => {
                    "ask for offline access: add `offline_access` to `scopes` (OpenID Connect), \
                     or the provider's own parameter to `authorize_url` (Google: \
                     `?access_type=offline&prompt=consent`)"
                }
                TokenField::IdToken => "add `openid` to `scopes`",
                TokenField::AccessToken => "check the client's grant types at the provider",
            };
            return Err(Error::new(
                Code::MissingToken,
                format!(
                    "the token response has no `{}` for `{}`; nothing was stored",
                    field.name(),
                    store.secret.text
                ),
            )
            .help(help));
        };
        changes.push(Change::Set {
            name: store.secret.text.clone(),
            value: SecretValue::new(value),
            expires_at: tokens.expires_at(field, now),
            expect: None,
        });
    }
    Ok(changes)
}

impl Target<'_> {
    /// The key journal entries and locks name this consent by.
    fn journal_key(&self, what: &str) -> String {
        crate::backend::run_key::join(
            &format!("{what}.{}", self.client.name.text),
            self.client
                .per_account
                .then_some(self.key.connection_id.as_str()),
        )
    }

    /// The run locks of every endpoint that updates a secret the client
    /// stores (a connected account's own run locks for a `per_account`
    /// client). On failure, the endpoint whose lock was not taken.
    pub async fn lock_updaters(
        &self,
        timeout: Duration,
    ) -> Result<Vec<Box<dyn Held>>, (String, LockFailure)> {
        let stored: Vec<&str> = self
            .client
            .stores
            .iter()
            .flat_map(|s| &s.entries)
            .map(|s| s.secret.as_str())
            .collect();
        let mut keys = std::collections::BTreeSet::new();
        let script = self.script;
        for service in &script.program().services {
            for endpoint in &service.endpoints {
                let Some(action) = script.endpoint_action(&service.name.text, &endpoint.name.text)
                else {
                    continue;
                };
                let mut updates = false;
                action.body.walk(&mut |statement| {
                    if let StatementKind::UpdateSecrets { updates: list, .. } = &statement.kind {
                        updates |= list.iter().any(|u| stored.contains(&u.secret.as_str()));
                    }
                });
                if updates {
                    let key = format!("{}.{}", service.name.text, endpoint.name.text);
                    let per_account = script
                        .per_account_client(&service.name.text, &endpoint.name.text)
                        .is_some();
                    keys.insert(crate::backend::run_key::join(
                        &key,
                        per_account.then_some(self.key.connection_id.as_str()),
                    ));
                }
            }
        }
        let mut held = Vec::new();
        for key in keys {
            match self.backend.locks.run_lock(&key, timeout).await {
                Ok(lock) => held.push(lock),
                Err(failure) => return Err((key, failure)),
            }
        }
        Ok(held)
    }

    /// Keeps the token answer in the recovery journal, takes the run
    /// locks, and writes every token in one update.
    pub async fn store(
        &self,
        token_url: &url::Url,
        response: &http::Response,
        changes: Vec<Change>,
        by: &str,
        lock_timeout: Duration,
    ) -> Result<Vec<Changed>, StoreFailure> {
        let backend = self.backend;
        let run_id = run_id();
        let key = self.journal_key("authorize");
        let entry = journal::Entry {
            format: journal::FORMAT,
            run_id: run_id.clone(),
            endpoint: key.clone(),
            environment: backend.env.clone(),
            sequence: 0,
            received_at: Utc::now(),
            method: "POST".into(),
            url: token_url.to_string(),
            status: response.status.as_u16(),
            headers: Vec::new(),
            body: Zeroizing::new(response.body.clone()),
            identity: String::new(),
            based_on: Default::default(),
            params: Default::default(),
            answer_by: None,
            rotating: true,
        };
        let journaled = crate::backend::through_outages(|| backend.journal.record(&entry))
            .await
            .is_ok();
        let held =
            self.lock_updaters(lock_timeout)
                .await
                .map_err(|(key, failure)| match failure {
                    LockFailure::TimedOut => StoreFailure::Busy(key, lock_timeout),
                    LockFailure::Failed(error) => StoreFailure::Store { error, kept: None },
                })?;
        let locks: Vec<&dyn Held> = held.iter().map(|h| h.as_ref()).collect();
        let now = crate::secrets::document::now();
        let written = crate::backend::through_outages(|| {
            backend.apply_to_connection(
                self.keys,
                &self.key,
                self.client.per_account,
                changes.clone(),
                by,
                now,
                &locks,
            )
        })
        .await;
        let changed = written.map_err(|error| StoreFailure::Store {
            error,
            kept: journaled.then(|| run_id.clone()),
        })?;
        if journaled && let Err(e) = backend.journal.settled(&key, &run_id).await {
            tracing::warn!("cannot prune the recovery journal: {e}");
        }
        Ok(changed)
    }

    /// Records that a person consented: the connection is `healthy`
    /// (created, or recovered); `tags`, when given, replace its tags.
    pub async fn connected(
        &self,
        tokens: &Tokens,
        tags: Option<BTreeMap<String, String>>,
    ) -> Option<Transition> {
        let now = crate::secrets::document::now();
        let observation = Observation::Authorized {
            refresh_token_expires_at: super::tokens::refresh_token_expires_at(
                Some(self.client),
                tokens.expires_at(TokenField::RefreshToken, now),
                now,
            ),
        };
        let transition = self
            .backend
            .observe_connection(
                &self.key,
                &observation,
                &crate::backend::outbox::subscribers(self.script.program()),
            )
            .await;
        if let Some(tags) = tags
            && let Err(e) = self.backend.connections.set_tags(&self.key, tags).await
        {
            tracing::warn!("cannot record the tags of connection `{}`: {e}", self.key);
        }
        transition
    }
}
