//! `svc connection revoke`: a connection's tokens revoked at the provider
//! (RFC 7009), then cleared from the store in one update, and the
//! connection marked `revoked`, so that runs refreshing it stop (exit 4)
//! until a person authorizes again.
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
//! Like `svc authorize`, it holds the run locks of every endpoint that
//! updates the client's tokens (no refresh in flight stores tokens just
//! revoked), audits the reads of the tokens it sends, and keeps the
//! provider's answers in the recovery journal until the store update is
//! durable.

use std::process::ExitCode;
use std::sync::Arc;

use chrono::Utc;
use serde_json::json;
use zeroize::Zeroizing;

use super::authorize::{lock_updaters, run_id};
use super::context::Place;
use crate::backend::connection::{ConnectionKey, Observation};
use crate::backend::{Change, LockFailure};
use crate::commands::cli::RevokeArgs;
use crate::exit;
use crate::net::http::{self, Http};
use crate::oauth::client::{Credentials, Endpoints};
use crate::oauth::revocation::{self, Hint};
use crate::output::{outln, strip_controls};
use crate::program::Script;
use crate::redact::Redactor;
use crate::report::{self, Style};
use crate::secrets::{Identities, journal};
use crate::syntax::ast::{OAuthClientDecl, TokenField};

/// `svc connection revoke`, or with `delete`, `svc connection delete`
/// (which forgets the connection afterwards).
pub fn run(args: RevokeArgs, delete: bool) -> ExitCode {
    let options = crate::backend::Options {
        lock_timeout: args.lock_timeout,
        ..crate::backend::Options::default()
    };
    let (script, place) = match super::connection::open(&args.place, &options) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let client = match super::connection::find(&script, &args.client, &args.connection) {
        Ok(client) => client,
        Err(code) => return code,
    };
    let keys = match place.identities() {
        Ok(keys) => Arc::new(keys),
        Err(error) => return super::store_error(&error),
    };
    let revocation = Revocation {
        script: &script,
        client,
        place: &place,
        keys,
        args: &args,
        delete,
    };
    match super::block_on(revocation.run()) {
        Ok(done) => {
            done.print(&args, &place, &script, delete);
            if done.partial.is_some() {
                exit::code(exit::FAILURE)
            } else {
                exit::code(exit::SUCCESS)
            }
        }
        Err(failure) => failure.report(args.place.json),
    }
}

/// Why nothing (or not everything) was done: a stable code, what
/// happened, and what to do. Already redacted.
struct Failure {
    code: &'static str,
    message: String,
    help: Option<String>,
    status: u8,
}

impl Failure {
    fn oauth(error: crate::oauth::Error) -> Failure {
        let status = match error.code {
            crate::oauth::Code::MissingValue | crate::oauth::Code::InvalidUrl => exit::USAGE,
            _ => exit::FAILURE,
        };
        Failure {
            code: error.code.as_str(),
            message: error.message,
            help: error.help,
            status,
        }
    }

    fn store(error: &crate::secrets::Error, redactor: &Redactor, what: &str) -> Failure {
        Failure {
            code: error.code(),
            message: redactor.redact(&format!("{what}: {error}")),
            help: error.help(),
            status: exit::FAILURE,
        }
    }

    /// Prints it (the provider's words stripped of control characters) and
    /// returns the exit code.
    fn report(self, json: bool) -> ExitCode {
        let message = strip_controls(&self.message);
        let help = self.help.as_deref().map(strip_controls);
        if json {
            outln!(
                "{}",
                json!({"error": {"code": self.code, "message": message, "help": help}})
            );
        }
        eprint!(
            "{}",
            report::render_error(self.code, &message, help.as_deref(), Style::for_stderr())
        );
        exit::code(self.status)
    }
}

/// What was done.
struct Done {
    key: ConnectionKey,
    /// The revocation endpoint, when the client has one and the provider
    /// was asked.
    endpoint: Option<url::Url>,
    /// The tokens the provider revoked, in order.
    revoked: Vec<Hint>,
    /// The secrets removed from the store.
    cleared: Vec<String>,
    /// Why the provider was not asked, when it was not.
    not_asked: Option<&'static str>,
    /// The access token's refusal, after the refresh token was revoked.
    partial: Option<crate::oauth::Error>,
}

impl Done {
    fn print(&self, args: &RevokeArgs, place: &Place, script: &Script, delete: bool) {
        let reconsent = script.reconsent_command(&self.key.client, &place.env, None);
        let endpoint = self.endpoint.as_ref().map(http::display_url);
        if args.place.json {
            let partial = self.partial.as_ref().map(|e| {
                json!({"code": e.code.as_str(), "message": strip_controls(&e.message), "help": e.help.as_deref().map(strip_controls)})
            });
            outln!(
                "{}",
                json!({
                    "client": self.key.client,
                    "connection_id": self.key.connection_id,
                    "environment": place.env,
                    "state": if delete { "deleted" } else { "revoked" },
                    "revocation_endpoint": endpoint,
                    "revoked": self.revoked.iter().map(|h| h.as_str()).collect::<Vec<_>>(),
                    "not_revoked_at_provider": self.not_asked,
                    "cleared": self.cleared,
                    "error": partial,
                    "reconsent_command": reconsent,
                })
            );
        } else {
            let client = &self.key.client;
            match (&endpoint, self.not_asked) {
                (_, Some(why)) => outln!(
                    "not revoked at the provider: {why}; the tokens stay valid there until they \
                     expire or are revoked in the provider's console"
                ),
                (Some(endpoint), None) => {
                    for hint in &self.revoked {
                        outln!("revoked {} of `{client}` at {endpoint}", hint.noun());
                    }
                }
                (None, None) => {}
            }
            let cleared = if self.cleared.is_empty() {
                "nothing to clear".to_string()
            } else {
                format!("cleared {}", self.cleared.join(", "))
            };
            if delete {
                outln!(
                    "{cleared} in `{}`; the connection `{}` is deleted",
                    place.env,
                    self.key
                );
            } else {
                outln!(
                    "{cleared} in `{}`; the connection `{}` is revoked",
                    place.env,
                    self.key
                );
                outln!("re-consent: {reconsent}");
            }
        }
        if let Some(error) = &self.partial {
            eprint!(
                "{}",
                report::render_error(
                    error.code.as_str(),
                    &strip_controls(&error.message),
                    error.help.as_deref().map(strip_controls).as_deref(),
                    Style::for_stderr()
                )
            );
        }
    }
}

/// One revocation, from the locks to the connection's new state.
struct Revocation<'a> {
    script: &'a Script,
    client: &'a OAuthClientDecl,
    place: &'a Place,
    keys: Arc<Identities>,
    args: &'a RevokeArgs,
    /// `svc connection delete`: forget the connection afterwards.
    delete: bool,
}

impl Revocation<'_> {
    async fn run(&self) -> Result<Done, Failure> {
        let env = self.place.env.as_str();
        let backend = &self.place.backend;
        let client_name = self.client.name.text.as_str();
        let key = ConnectionKey::default_of(client_name);
        // No refresh may run meanwhile: it would present a token being
        // revoked, or store new ones after the store is cleared.
        let _held = lock_updaters(self.script, self.client, self.place, self.args.lock_timeout)
            .await
            .map_err(|(endpoint, failure)| match failure {
                LockFailure::TimedOut => Failure {
                    code: "svc::connection::busy",
                    message: format!(
                        "a run of `{endpoint}` did not finish within {}; nothing was revoked",
                        crate::syntax::duration::format(self.args.lock_timeout)
                    ),
                    help: Some("try again when it is done, or raise `--lock-timeout`".into()),
                    status: exit::FAILURE,
                },
                LockFailure::Failed(error) => Failure::store(
                    &error,
                    &Redactor::default(),
                    "the run locks cannot be taken",
                ),
            })?;
        let document =
            backend.secrets.document(&self.keys).await.map_err(|e| {
                Failure::store(&e, &Redactor::default(), "the store cannot be read")
            })?;
        let mut redactor =
            Redactor::of(document.secrets.values().map(|entry| entry.value.expose()));
        // The tokens to revoke, refresh token first.
        let mut tokens: Vec<(Hint, &str, Zeroizing<String>)> = Vec::new();
        for (hint, field) in [
            (Hint::RefreshToken, TokenField::RefreshToken),
            (Hint::AccessToken, TokenField::AccessToken),
        ] {
            let Some(secret) = self.client.store_of(field) else {
                continue;
            };
            let Some(entry) = document.get(secret.as_str()) else {
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
        let run_id = run_id();
        let journal_key = format!("revoke.{client_name}");
        let mut journaled = false;
        if tokens.is_empty() {
            done.not_asked = Some("no token is stored, so there is nothing to send");
        } else if self.args.local_only {
            done.not_asked = Some("`--local-only`");
        } else {
            let http = Http::default();
            let credentials = Credentials::resolve(self.client, &document, env, &mut redactor)
                .map_err(Failure::oauth)?;
            let endpoints = Endpoints::resolve(
                self.client,
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
                    done.not_asked = Some(if self.client.issuer.is_some() {
                        "the client has no `revocation_url`, and its issuer's discovery document \
                         names no `revocation_endpoint`"
                    } else {
                        "the client has no `revocation_url` (nor an `issuer` whose discovery names \
                         a `revocation_endpoint`)"
                    });
                }
                Some(endpoint) => {
                    // The tokens leave the store: recorded first, as every
                    // read from the command line is.
                    let names: Vec<&str> = tokens.iter().map(|(_, name, _)| *name).collect();
                    super::secret::audit_reads(self.place, &self.keys, &names, "revoke")
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
        let changes: Vec<Change> = self
            .client
            .stores
            .iter()
            .flat_map(|s| &s.entries)
            .filter(|s| document.get(s.secret.as_str()).is_some())
            .map(|s| Change::Remove {
                name: s.secret.text.clone(),
            })
            .collect();
        done.cleared = changes
            .iter()
            .filter_map(|c| match c {
                Change::Remove { name } => Some(name.clone()),
                _ => None,
            })
            .collect();
        if !changes.is_empty() {
            let by = format!("{} (svc connection revoke {client_name})", self.keys.label);
            let now = crate::secrets::document::now();
            crate::run::through_outages(|| {
                backend
                    .secrets
                    .apply(&self.keys, changes.clone(), &by, now)
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
        let subscribers = crate::backend::outbox::subscribers(self.script.program());
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
            environment: self.place.env.clone(),
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
        crate::run::through_outages(|| self.place.backend.journal.record(&entry))
            .await
            .is_ok()
    }
}
