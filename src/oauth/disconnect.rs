//! A connection ended: its tokens revoked at the provider (RFC 7009),
//! then cleared from where they are kept in one update, and the connection
//! marked `revoked` — or forgotten, with `connection.deleted`. The one path
//! for `svc connection revoke|delete` and `DELETE /api/connections/...`.
//!
//! The order is the one that never loses the means to revoke: the refresh
//! token first (revoking it ends the grant at most providers), then the
//! access token, and only then the store. When the provider refuses the
//! refresh token, or does not answer, nothing is cleared: the tokens would
//! still work at the provider, and svc would no longer hold them to try
//! again. Once the refresh token is revoked, the connection is dead
//! whatever happens to the access token, so a refusal of that one still
//! clears the store, and says that the access token may live until it
//! expires.
//!
//! Like an authorization, it holds the run locks of every endpoint that
//! updates the client's tokens (no refresh in flight stores tokens just
//! revoked), audits the reads of the tokens it sends, and keeps the
//! provider's answers in the recovery journal until the store update is
//! durable.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::Utc;
use zeroize::Zeroizing;

use super::client::{Credentials, Endpoints};
use super::consent::Target;
use super::revocation::{self, Hint};
use crate::backend::connection::{ConnectionKey, Observation};
use crate::backend::{Change, LockFailure};
use crate::net::http::{self, Http};
use crate::redact::Redactor;
use crate::secrets::journal;
use crate::syntax::ast::TokenField;

/// Why nothing (or not everything) was done: a stable code, what
/// happened, and what to do. Already redacted.
#[derive(Debug)]
pub struct Failure {
    pub code: &'static str,
    pub message: String,
    pub help: Option<String>,
    /// The request was wrong (exit 2, HTTP 4xx), not the world.
    pub usage: bool,
}

impl Failure {
    fn oauth(error: super::Error) -> Failure {
        let usage = matches!(
            error.code,
            super::Code::MissingValue | super::Code::InvalidUrl
        );
        Failure {
            code: error.code.as_str(),
            message: error.message,
            help: error.help,
            usage,
        }
    }

    fn store(error: &crate::secrets::Error, redactor: &Redactor, what: &str) -> Failure {
        Failure {
            code: error.code(),
            message: redactor.redact(&format!("{what}: {error}")),
            help: error.help(),
            usage: false,
        }
    }
}

/// What was done.
#[derive(Debug)]
pub struct Done {
    pub key: ConnectionKey,
    /// The revocation endpoint, when the client has one and the provider
    /// was asked.
    pub endpoint: Option<url::Url>,
    /// The tokens the provider revoked, in order.
    pub revoked: Vec<Hint>,
    /// The secrets removed from the store.
    pub cleared: Vec<String>,
    /// Why the provider was not asked, when it was not.
    pub not_asked: Option<&'static str>,
    /// The access token's refusal, after the refresh token was revoked.
    pub partial: Option<super::Error>,
}

/// One revocation, from the locks to the connection's new state.
pub struct Disconnect<'a> {
    pub target: Target<'a>,
    /// Clear the tokens without asking the provider.
    pub local_only: bool,
    /// Forget the connection afterwards (`connection.deleted`).
    pub delete: bool,
    pub lock_timeout: Duration,
    /// Who, for the store's record: `KEY (svc connection revoke CLIENT)`.
    pub by: String,
    /// Records the reads of the tokens sent to the provider, before they
    /// leave; a read that cannot be recorded is not made.
    pub audit: Audit<'a>,
}

/// An audit of token reads, by secret name.
pub type Audit<'a> = &'a (
        dyn Fn(
    Vec<String>,
) -> Pin<Box<dyn Future<Output = Result<(), crate::secrets::Error>> + Send + 'a>>
            + Sync
    );

impl Disconnect<'_> {
    pub async fn run(&self) -> Result<Done, Failure> {
        let target = &self.target;
        let backend = target.backend;
        let env = backend.env.as_str();
        let client = target.client;
        let client_name = client.name.text.as_str();
        let key = target.key.clone();
        let per_account = client.per_account;
        let keys = target.keys;
        if per_account {
            match backend.connections.load_one(&key).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Err(Failure {
                        code: "svc::connection::unknown",
                        message: format!(
                            "`{client_name}` has no connection `{}`",
                            key.connection_id
                        ),
                        help: Some(format!(
                            "`svc connection list --client {client_name}` shows its connections"
                        )),
                        usage: true,
                    });
                }
                Err(e) => {
                    return Err(Failure::store(
                        &e,
                        &Redactor::default(),
                        "the connection cannot be read",
                    ));
                }
            }
        }
        // No refresh may run meanwhile: it would present a token being
        // revoked, or store new ones after the store is cleared.
        let held =
            target
                .lock_updaters(self.lock_timeout)
                .await
                .map_err(|(endpoint, failure)| match failure {
                    LockFailure::TimedOut => Failure {
                        code: "svc::connection::busy",
                        message: format!(
                            "a run of `{endpoint}` did not finish within {}; nothing was revoked",
                            crate::syntax::duration::format(self.lock_timeout)
                        ),
                        help: Some("try again when it is done, or raise `--lock-timeout`".into()),
                        usage: false,
                    },
                    LockFailure::Failed(error) => Failure::store(
                        &error,
                        &Redactor::default(),
                        "the run locks cannot be taken",
                    ),
                })?;
        let document =
            backend.secrets.document(keys).await.map_err(|e| {
                Failure::store(&e, &Redactor::default(), "the store cannot be read")
            })?;
        // The tokens: the store's, or the connected account's own.
        let values = if per_account {
            backend
                .connection_values(keys, &key, true)
                .await
                .map_err(|e| Failure::store(&e, &Redactor::default(), "the store cannot be read"))?
        } else {
            document.clone()
        };
        let mut redactor = Redactor::of(
            document
                .secrets
                .values()
                .chain(values.secrets.values())
                .map(|entry| entry.value.expose()),
        );
        // The tokens to revoke, refresh token first.
        let mut tokens: Vec<(Hint, &str, Zeroizing<String>)> = Vec::new();
        for (hint, field) in [
            (Hint::RefreshToken, TokenField::RefreshToken),
            (Hint::AccessToken, TokenField::AccessToken),
        ] {
            let Some(secret) = client.store_of(field) else {
                continue;
            };
            let Some(entry) = values.get(secret.as_str()) else {
                continue;
            };
            let value = entry.value.expose().trim();
            if !value.is_empty() {
                tokens.push((hint, secret.as_str(), Zeroizing::new(value.to_string())));
            }
        }
        let mut done = Done {
            key: key.clone(),
            endpoint: None,
            revoked: Vec::new(),
            cleared: Vec::new(),
            not_asked: None,
            partial: None,
        };
        let run_id = super::consent::run_id();
        let journal_key = crate::backend::run_key::join(
            &format!("revoke.{client_name}"),
            per_account.then_some(key.connection_id.as_str()),
        );
        let mut journaled = false;
        if tokens.is_empty() {
            done.not_asked = Some("no token is stored, so there is nothing to send");
        } else if self.local_only {
            done.not_asked = Some("`--local-only`");
        } else {
            let http = Http::default();
            let credentials = Credentials::resolve(client, &document, env, &mut redactor)
                .map_err(Failure::oauth)?;
            let endpoints = Endpoints::resolve(
                client,
                &document,
                env,
                &http,
                &mut redactor,
                &mut Default::default(),
            )
            .await
            .map_err(Failure::oauth)?;
            match endpoints.revocation {
                None => {
                    done.not_asked = Some(if client.issuer.is_some() {
                        "the client has no `revocation_url`, and its issuer's discovery document \
                         names no `revocation_endpoint`"
                    } else {
                        "the client has no `revocation_url` (nor an `issuer` whose discovery names \
                         a `revocation_endpoint`)"
                    });
                }
                Some(endpoint) => {
                    // The tokens leave the store: recorded first, as every
                    // read is.
                    let names: Vec<&str> = tokens.iter().map(|(_, name, _)| *name).collect();
                    (self.audit)(names.iter().map(|n| n.to_string()).collect())
                        .await
                        .map_err(|e| {
                            Failure::store(&e, &redactor, "nothing was sent or cleared")
                        })?;
                    done.endpoint = Some(endpoint.clone());
                    for (index, (hint, _, token)) in tokens.iter().enumerate() {
                        match revocation::revoke(
                            &http,
                            &endpoint,
                            &credentials,
                            token,
                            *hint,
                            &redactor,
                        )
                        .await
                        {
                            Ok(response) => {
                                done.revoked.push(*hint);
                                journaled |= self
                                    .journal(&run_id, &journal_key, index, &endpoint, &response)
                                    .await;
                            }
                            // Nothing revoked yet: keep everything, so that
                            // svc can try again.
                            Err(error) if done.revoked.is_empty() => {
                                let mut failure = Failure::oauth(error);
                                failure.message = format!(
                                    "{}; nothing was cleared: the tokens are still stored, and \
                                     still valid at the provider",
                                    failure.message
                                );
                                failure.help = Some(format!(
                                    "{}; then run `svc connection revoke` again, or clear them \
                                     without the provider with `--local-only`",
                                    failure.help.unwrap_or_default()
                                ));
                                return Err(failure);
                            }
                            Err(mut error) => {
                                error.message = format!(
                                    "{}; the refresh token was revoked and the store is cleared, \
                                     but {} may stay valid until it expires",
                                    error.message,
                                    hint.noun()
                                );
                                // svc no longer holds it to try again.
                                error.help = Some(
                                    "to end it sooner, revoke the grant in the provider's console"
                                        .into(),
                                );
                                done.partial = Some(error);
                            }
                        }
                    }
                }
            }
        }
        // Every secret the client stores goes, in one update.
        let changes: Vec<Change> = client
            .stores
            .iter()
            .flat_map(|s| &s.entries)
            .filter(|s| values.get(s.secret.as_str()).is_some())
            .map(|s| Change::Remove {
                name: s.secret.text.clone(),
            })
            .collect();
        done.cleared = changes.iter().map(|c| c.name().to_string()).collect();
        if !changes.is_empty() {
            let by = &self.by;
            let now = crate::secrets::document::now();
            let locks: Vec<&dyn crate::backend::Held> = held.iter().map(|h| h.as_ref()).collect();
            crate::backend::through_outages(|| {
                backend.apply_to_connection(
                    keys,
                    &key,
                    per_account,
                    changes.clone(),
                    by,
                    now,
                    &locks,
                )
            })
            .await
            .map_err(|error| {
                let mut failure = Failure::store(
                    &error,
                    &redactor,
                    &if done.revoked.is_empty() {
                        "the tokens cannot be cleared".to_string()
                    } else {
                        "the tokens were revoked at the provider, but cannot be cleared from the store"
                            .to_string()
                    },
                );
                failure.help = Some(format!(
                    "{}; then run `svc connection revoke` again (revoking a token already \
                     revoked is harmless)",
                    failure.help.unwrap_or_else(|| "fix the store".into())
                ));
                failure
            })?;
        }
        if journaled && let Err(e) = backend.journal.settled(&journal_key, &run_id).await {
            tracing::warn!("cannot prune the recovery journal: {e}");
        }
        let subscribers = crate::backend::outbox::subscribers(target.script.program());
        if self.delete {
            // The tokens are gone; what is left is the record, and the
            // event that says so, written together.
            backend
                .connections
                .delete(&key, &subscribers, Utc::now())
                .await
                .map_err(|e| {
                    Failure::store(
                        &e,
                        &redactor,
                        "the tokens were cleared, but the connection's record cannot be removed",
                    )
                })?;
        } else {
            backend
                .observe_connection(&key, &Observation::Revoked, &subscribers)
                .await;
        }
        Ok(done)
    }

    /// Keeps a revocation answer in the recovery journal, as `svc
    /// authorize` keeps its token answer, until the store is cleared.
    /// Whether it was kept.
    async fn journal(
        &self,
        run_id: &str,
        journal_key: &str,
        sequence: usize,
        endpoint: &url::Url,
        response: &http::Response,
    ) -> bool {
        let entry = journal::Entry {
            format: journal::FORMAT,
            run_id: run_id.to_string(),
            endpoint: journal_key.to_string(),
            environment: self.target.backend.env.clone(),
            sequence: sequence as u32,
            received_at: Utc::now(),
            method: "POST".into(),
            url: endpoint.to_string(),
            status: response.status.as_u16(),
            headers: Vec::new(),
            body: Zeroizing::new(response.body.clone()),
            identity: String::new(),
            based_on: Default::default(),
            params: Default::default(),
            answer_by: None,
            // The answer carries no token to store.
            rotating: false,
        };
        crate::backend::through_outages(|| self.target.backend.journal.record(&entry))
            .await
            .is_ok()
    }
}
