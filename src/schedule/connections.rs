//! Connections as people and other programs see them: the state recorded
//! in the backend, the tokens' expiries as the store has them, the next
//! schedule that refreshes each one and the command that re-consents.
//! One shape for `svc connection show --json`, `GET /api/connections`,
//! `/metrics` and `svc doctor`: none of them shows a token value.
//!
//! It lives with the schedules because the next refresh is a schedule's
//! question; the command line and `svc serve` both sit above.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::Schedule;
use crate::backend::ScheduleState;
use crate::backend::connection::{ConnectionKey, ConnectionState, DEFAULT_ID};
use crate::program::Script;
use crate::secrets::Document;
use crate::syntax::ast::{OAuthClientDecl, TokenField};

/// How soon a refresh token's expiry is worth a warning (`svc doctor`).
pub const EXPIRY_WARNING: Duration = Duration::days(7);

/// A connection as `svc connection show --json` prints it and
/// `GET /api/connections` answers it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectionStatus {
    pub client: String,
    pub connection_id: String,
    pub environment: String,
    /// Whether a run or `svc authorize` has recorded anything yet.
    pub observed: bool,
    /// As recorded; the refresh token's expiry, when none was recorded,
    /// as the store has it.
    #[serde(flatten)]
    pub state: ConnectionState,
    pub access_token_expires_at: Option<DateTime<Utc>>,
    pub next_refresh_at: Option<DateTime<Utc>>,
    pub next_refresh_by: Option<String>,
    pub reconsent_command: String,
}

impl ConnectionStatus {
    pub fn key(&self) -> ConnectionKey {
        ConnectionKey {
            client: self.client.clone(),
            connection_id: self.connection_id.clone(),
        }
    }

    /// Whether its refresh token expires within `within` of `now` (or has).
    pub fn refresh_token_expires_within(&self, within: Duration, now: DateTime<Utc>) -> bool {
        self.state
            .refresh_token_expires_at
            .is_some_and(|at| at <= now + within)
    }
}

/// What the statuses are made from.
pub struct Sources<'a> {
    pub script: &'a Script,
    pub environment: &'a str,
    /// The recorded states (`ConnectionStore::load`).
    pub states: &'a BTreeMap<ConnectionKey, ConnectionState>,
    /// The store, for the tokens' expiries; `None` when it cannot be read.
    pub document: Option<&'a Document>,
    /// The schedules' saved states, for the next refresh.
    pub schedules: &'a BTreeMap<String, ScheduleState>,
    pub now: DateTime<Utc>,
}

/// The `oauth_client`s that hold one connection each: those with
/// `stores` that are not `per_account` (whose connections are the
/// accounts connected, listed from the backend).
pub fn clients(script: &Script) -> impl Iterator<Item = &OAuthClientDecl> {
    all_clients(script).filter(|c| !c.per_account)
}

/// Every `oauth_client` that holds connections: those with `stores`.
pub fn all_clients(script: &Script) -> impl Iterator<Item = &OAuthClientDecl> {
    script
        .program()
        .oauth_clients
        .iter()
        .filter(|c| c.stores.is_some())
}

/// Whether `client`/`connection_id` names the one connection of a
/// single-connection client of the program.
pub fn exists(script: &Script, client: &str, connection_id: &str) -> bool {
    connection_id == DEFAULT_ID && clients(script).any(|c| c.name.as_str() == client)
}

/// A connected account of a `per_account` client as it is recorded;
/// `values`, its tokens, when they were read (for their expiries).
pub fn account_status(
    sources: &Sources<'_>,
    client: &OAuthClientDecl,
    key: &ConnectionKey,
    state: &ConnectionState,
    values: Option<&Document>,
) -> ConnectionStatus {
    let accounts = Sources {
        document: values,
        ..*sources
    };
    let mut status = status_of(&accounts, client, key.clone(), Some(state));
    status.reconsent_command = sources.script.reconsent_command_for(
        &key.client,
        Some(&key.connection_id),
        sources.environment,
        None,
    );
    status
}

/// Every connection of the program, in the order its clients are declared.
pub fn statuses(sources: &Sources<'_>) -> Vec<ConnectionStatus> {
    clients(sources.script)
        .map(|client| status(sources, client))
        .collect()
}

fn status(sources: &Sources<'_>, client: &OAuthClientDecl) -> ConnectionStatus {
    let key = ConnectionKey::default_of(client.name.as_str());
    status_of(sources, client, key.clone(), sources.states.get(&key))
}

fn status_of(
    sources: &Sources<'_>,
    client: &OAuthClientDecl,
    key: ConnectionKey,
    recorded: Option<&ConnectionState>,
) -> ConnectionStatus {
    let stored = |field: TokenField| {
        let store = client
            .stores
            .as_ref()?
            .entries
            .iter()
            .find(|s| s.field == Some(field))?;
        sources.document?.get(store.secret.as_str())?.expires_at
    };
    let observed = recorded.is_some();
    let mut state = recorded.cloned().unwrap_or_default();
    state.refresh_token_expires_at = state
        .refresh_token_expires_at
        .or_else(|| stored(TokenField::RefreshToken));
    let next_refresh = next_refresh(sources, client);
    ConnectionStatus {
        reconsent_command: sources
            .script
            .reconsent_command(&key.client, sources.environment, None),
        client: key.client,
        connection_id: key.connection_id,
        environment: sources.environment.to_string(),
        observed,
        state,
        access_token_expires_at: stored(TokenField::AccessToken),
        next_refresh_at: next_refresh.as_ref().map(|(at, _)| *at),
        next_refresh_by: next_refresh.map(|(_, schedule)| schedule),
    }
}

/// When a schedule next refreshes the client's connection, and which.
fn next_refresh(
    sources: &Sources<'_>,
    client: &OAuthClientDecl,
) -> Option<(DateTime<Utc>, String)> {
    let script = sources.script;
    Schedule::all(script)
        .into_iter()
        .filter(|s| s.enabled)
        .filter(|s| {
            script
                .clients_storing(&script.secrets_updated(&s.service, &s.endpoint))
                .iter()
                .any(|c| c.name.as_str() == client.name.as_str())
        })
        .filter_map(|s| {
            let state = sources.schedules.get(&s.name).cloned().unwrap_or_default();
            let expires_at = s
                .before_expiry
                .as_ref()
                .and_then(|(secret, _)| sources.document?.get(secret)?.expires_at);
            let next = *s.upcoming(&state, expires_at, sources.now, 1).first()?;
            Some((next.max(sources.now), s.name.clone()))
        })
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::connection::{Health, LastError};

    const PROGRAM: &str = r#"
secret RT { environment_specific }
secret AT { environment_specific }
oauth_client app {
  authorize_url "https://idp.example.com/authorize"
  token_url "https://idp.example.com/token"
  client_id "svc"
  client_auth none
  stores { refresh_token = RT  access_token = AT }
}
oauth_client plain {
  token_url "https://idp.example.com/token"
  client_id "svc"
  client_auth none
}
role keeper { grant update_secret RT grant update_secret AT grant read_status app }
user ops { roles keeper }
"#;

    fn script() -> Script {
        let mut sources = crate::source::SourceMap::new();
        sources.add(crate::source::SourceFile::new(
            "app.svc",
            std::path::Path::new("app.svc"),
            PROGRAM,
        ));
        let checked = crate::program::check_sources(sources);
        assert_eq!(checked.analysis.errors(), 0);
        Script::new(checked).unwrap_or_else(|_| panic!("the program has errors"))
    }

    #[test]
    fn a_status_is_the_recorded_state_with_its_command_and_no_token() {
        let script = script();
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let recorded = ConnectionState {
            state: Health::NeedsReconsent,
            since: Some(now),
            consecutive_failures: 2,
            last_error: Some(LastError {
                code: "invalid_grant".into(),
                description: None,
            }),
            refresh_token_expires_at: Some(now + Duration::days(3)),
            ..ConnectionState::default()
        };
        let states = BTreeMap::from([(ConnectionKey::default_of("app"), recorded.clone())]);
        let schedules = BTreeMap::new();
        let all = statuses(&Sources {
            script: &script,
            environment: "prod",
            states: &states,
            document: None,
            schedules: &schedules,
            now,
        });
        // `plain` stores nothing: it holds no connection.
        assert_eq!(all.len(), 1);
        let status = &all[0];
        assert_eq!(status.state, recorded);
        assert!(status.observed);
        assert_eq!(
            status.reconsent_command,
            "svc authorize app.svc app --env prod --as ops"
        );
        assert!(status.refresh_token_expires_within(EXPIRY_WARNING, now));
        assert!(!status.refresh_token_expires_within(Duration::days(1), now));
        let json = serde_json::to_value(status).unwrap();
        for field in [
            "client",
            "connection_id",
            "environment",
            "state",
            "since",
            "consecutive_failures",
            "last_error",
            "refresh_token_expires_at",
            "reconsent_command",
        ] {
            assert!(json.get(field).is_some(), "{field} missing: {json}");
        }
        assert_eq!(json["state"], "needs_reconsent");
        assert!(exists(&script, "app", "default"));
        assert!(!exists(&script, "app", "other"));
        assert!(!exists(&script, "plain", "default"));
    }
}
