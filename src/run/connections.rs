//! Runs and the connections they refresh (`backend::connection`): a run
//! of an endpoint whose connection needs a person is not started, and the
//! end of every other run is observed, so the connection's state follows
//! what the provider last said.

use chrono::{DateTime, Utc};

use super::admission::{Refusal, RefusalKind};
use super::engine::{Engine, RunRequest};
use super::error::{ErrorKind, RunError};
use crate::backend::Health;
use crate::backend::connection::{ConnectionKey, FailureClass, LastError, Observation};
use crate::secrets;

impl Engine {
    /// The connections a run refreshes: the one connection of each
    /// single-connection client, and the run's own of a `per_account` one.
    pub fn connections_refreshed(&self, request: &RunRequest) -> Vec<ConnectionKey> {
        let key = format!("{}.{}", request.service, request.endpoint);
        let Some(clients) = self.connections.get(&key) else {
            return Vec::new();
        };
        clients
            .iter()
            .filter_map(
                |(client, per_account)| match (per_account, &request.connection) {
                    (false, _) => Some(ConnectionKey::default_of(client)),
                    (true, Some(id)) => Some(ConnectionKey {
                        client: client.clone(),
                        connection_id: id.clone(),
                    }),
                    (true, None) => None,
                },
            )
            .collect()
    }

    /// The connection a per-account run runs for.
    pub fn account_of(&self, request: &RunRequest) -> Option<ConnectionKey> {
        let key = format!("{}.{}", request.service, request.endpoint);
        let client = self.per_account.get(&key)?;
        Some(ConnectionKey {
            client: client.clone(),
            connection_id: request.connection.clone()?,
        })
    }

    /// The refusal of a run whose connection needs a person, unless the
    /// request forces it.
    pub(super) async fn connection_refusal(
        &self,
        request: &RunRequest,
    ) -> Result<Option<Refusal>, secrets::Error> {
        // The connection a per-account run names must exist.
        let account = match self.account_of(request) {
            Some(key) => match self.backend.connections.load_one(&key).await? {
                Some(state) => Some((key, state)),
                None => return Ok(Some(unknown_connection(&key))),
            },
            None => None,
        };
        // A replay sends nothing new: its kept answers may be what saves
        // the connection.
        if request.force || request.replay.is_some() {
            return Ok(None);
        }
        for key in self.connections_refreshed(request) {
            let state = match &account {
                Some((read, state)) if *read == key => Some(state.clone()),
                _ => self.backend.connections.load_one(&key).await?,
            };
            let Some(state) = state else {
                continue;
            };
            if state.state.needs_person() {
                return Ok(Some(self.needs_person(request, &key, state.state)));
            }
        }
        Ok(None)
    }

    fn needs_person(&self, request: &RunRequest, key: &ConnectionKey, state: Health) -> Refusal {
        let endpoint = format!("{}.{}", request.service, request.endpoint);
        let why = match state {
            Health::Revoked => "its tokens were revoked",
            Health::Misconfigured => "the provider refuses the client",
            _ => "the provider no longer accepts its refresh token",
        };
        let code = match state {
            Health::Revoked => "svc::connection::revoked",
            Health::Misconfigured => "svc::connection::misconfigured",
            _ => "svc::connection::needs_reconsent",
        };
        Refusal {
            code,
            message: format!(
                "`{endpoint}` refreshes the connection `{key}`, which is {state}: {why}; nothing was sent"
            ),
            help: Some(format!(
                "{}; then run again (`svc run --force` sends anyway)",
                self.script.reconsent_command(&key.client, self.env(), None)
            )),
            kind: RefusalKind::NeedsPerson(state),
        }
    }

    /// Records what a finished run says about the connections it
    /// refreshes. Failures that are not the provider's (permissions, the
    /// store, a lock) say nothing.
    pub(super) async fn observe_connections(
        &self,
        request: &RunRequest,
        error: Option<&RunError>,
        refresh_token_expires_at: Option<DateTime<Utc>>,
        named: &[ConnectionKey],
    ) {
        if request.dry_run {
            return;
        }
        if error.is_some_and(|e| failure(e, None).is_none()) {
            return;
        }
        let now = Utc::now();
        // And the accounts the run named (`for_connection`) for a callee
        // that refreshes them.
        let mut keys = self.connections_refreshed(request);
        for key in named {
            if !keys.contains(key) {
                keys.push(key.clone());
            }
        }
        for key in &keys {
            // Each client may declare its own `refresh_token_ttl`, and
            // its provider's profile knows its own failures.
            let profile = self
                .script
                .client(&key.client)
                .and_then(|c| c.provider.as_ref())
                .and_then(|p| crate::providers::get(&p.name.text));
            let failed = error.and_then(|e| failure(e, profile));
            let observation = failed.unwrap_or_else(|| Observation::Refreshed {
                refresh_token_expires_at: crate::oauth::tokens::refresh_token_expires_at(
                    self.script.client(&key.client),
                    refresh_token_expires_at,
                    now,
                ),
            });
            if let Some(transition) = self
                .backend
                .observe_connection(key, &observation, &self.subscribers)
                .await
                && transition.to.needs_person()
            {
                tracing::warn!(
                    "re-consent: {}",
                    self.script.reconsent_command(&key.client, self.env(), None)
                );
            }
        }
    }
}

/// The refusal of a run for a connection that does not exist: the same
/// whether it never did or the caller may not reach it.
pub fn unknown_connection(key: &ConnectionKey) -> Refusal {
    Refusal {
        code: "svc::connection::unknown",
        message: format!("`{}` has no connection `{}`", key.client, key.connection_id),
        help: Some(format!(
            "`svc connection list --client {}` shows its connections; an account is connected by \
             `svc authorize` or a hosted consent link",
            key.client
        )),
        kind: RefusalKind::NotFound,
    }
}

/// What a run's error says about its connection, if anything.
fn failure(error: &RunError, profile: Option<&crate::providers::Profile>) -> Option<Observation> {
    let (class, code, description) = match &error.kind {
        ErrorKind::WebRequest { .. } => match &error.provider {
            Some(provider) => (
                crate::oauth::failure::classify(
                    profile,
                    Some(&provider.error),
                    provider.error_description.as_deref(),
                ),
                provider.error.clone(),
                provider.error_description.clone(),
            ),
            None => (
                FailureClass::Transient,
                error.code(),
                Some(error.message.clone()),
            ),
        },
        // A body that is not JSON, or lacks what the mapping takes.
        ErrorKind::Mapping => (
            FailureClass::Transient,
            error.code(),
            Some(error.message.clone()),
        ),
        // The client's own values: a URL that is not one, a key that
        // cannot sign. Discovery and the rest may pass (a provider down).
        ErrorKind::OAuth { code } => {
            let class = match code {
                crate::oauth::error::Code::InvalidUrl | crate::oauth::error::Code::BadKey => {
                    FailureClass::Misconfigured
                }
                _ => FailureClass::Transient,
            };
            (
                class,
                code.as_str().to_string(),
                Some(error.message.clone()),
            )
        }
        _ => return None,
    };
    Some(Observation::Failed {
        class,
        error: LastError { code, description },
    })
}
