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
    /// The connections a run of the endpoint refreshes.
    pub fn connections_refreshed(&self, service: &str, endpoint: &str) -> &[ConnectionKey] {
        self.connections
            .get(&format!("{service}.{endpoint}"))
            .map_or(&[], Vec::as_slice)
    }

    /// The refusal of a run whose connection needs a person, unless the
    /// request forces it.
    pub(super) async fn connection_refusal(
        &self,
        request: &RunRequest,
    ) -> Result<Option<Refusal>, secrets::Error> {
        // A replay sends nothing new: its kept answers may be what saves
        // the connection.
        if request.force || request.replay.is_some() {
            return Ok(None);
        }
        for key in self.connections_refreshed(&request.service, &request.endpoint) {
            let Some(state) = self.backend.connections.load_one(key).await? else {
                continue;
            };
            if state.state.needs_person() {
                return Ok(Some(self.needs_person(request, key, state.state)));
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
    ) {
        if request.dry_run {
            return;
        }
        let failed = match error {
            None => None,
            Some(error) => match failure(error) {
                Some(observation) => Some(observation),
                None => return,
            },
        };
        let now = Utc::now();
        for key in self.connections_refreshed(&request.service, &request.endpoint) {
            // Each client may declare its own `refresh_token_ttl`.
            let observation = failed.clone().unwrap_or_else(|| Observation::Refreshed {
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

/// What a run's error says about its connection, if anything.
fn failure(error: &RunError) -> Option<Observation> {
    let (class, code, description) = match &error.kind {
        ErrorKind::WebRequest { .. } => match &error.provider {
            Some(provider) => (
                crate::oauth::failure::classify(
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
