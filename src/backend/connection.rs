//! Connections: the token set that one `oauth_client`'s `stores` names, in
//! one environment, and whether it still works.
//!
//! A connection's state changes only by an [`Observation`] — a refresh
//! that succeeded or failed, a person's authorization, a revocation — and
//! [`ConnectionState::observe`] is the one place that decides the next
//! state. The backends store the result (files: `connections.json` beside
//! the schedules' state; PostgreSQL: `svc_connections`), applying each
//! observation atomically so replicas agree.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::check::notify::Event;

/// The id of the one connection a client holds per environment.
pub const DEFAULT_ID: &str = "default";

/// A connection: a client and a connection id, within an environment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ConnectionKey {
    pub client: String,
    pub connection_id: String,
}

impl ConnectionKey {
    /// The one connection of a client.
    pub fn default_of(client: &str) -> ConnectionKey {
        ConnectionKey {
            client: client.to_string(),
            connection_id: DEFAULT_ID.to_string(),
        }
    }
}

impl std::fmt::Display for ConnectionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.client, self.connection_id)
    }
}

/// Whether a connection works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Its last refresh succeeded (or nothing has failed yet).
    #[default]
    Healthy,
    /// Its last refresh failed for a reason that may pass: no answer, 429,
    /// 5xx, a body that is not JSON. Runs go on.
    Degraded,
    /// The provider no longer accepts its refresh token (`invalid_grant`,
    /// or the token's recorded expiry passed): a person must consent again.
    NeedsReconsent,
    /// The provider refuses the client itself (`invalid_client`,
    /// `unauthorized_client`, `unsupported_grant_type`, `invalid_scope`).
    Misconfigured,
    /// Its tokens were revoked and cleared (`svc connection revoke`).
    Revoked,
}

impl Health {
    pub const ALL: [Health; 5] = [
        Health::Healthy,
        Health::Degraded,
        Health::NeedsReconsent,
        Health::Misconfigured,
        Health::Revoked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::NeedsReconsent => "needs_reconsent",
            Health::Misconfigured => "misconfigured",
            Health::Revoked => "revoked",
        }
    }

    /// Whether only a person can bring it back: runs that refresh it are
    /// not started (schedules skip them, reads answer 409, `svc run`
    /// exits 4).
    pub fn needs_person(self) -> bool {
        matches!(
            self,
            Health::NeedsReconsent | Health::Misconfigured | Health::Revoked
        )
    }
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a failed refresh is sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// The refresh token is dead.
    Terminal,
    /// The client is refused.
    Misconfigured,
    /// It may work next time.
    Transient,
}

/// The last failure, as a connection remembers it: codes and the
/// provider's description, never a token value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastError {
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// What is known of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ConnectionState {
    pub state: Health,
    /// When it entered `state`.
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
    #[serde(default)]
    pub consecutive_failures: u32,
    #[serde(default)]
    pub last_success_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_failure_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_error: Option<LastError>,
    /// When the provider said, or the client declares, that the refresh
    /// token expires.
    #[serde(default)]
    pub refresh_token_expires_at: Option<DateTime<Utc>>,
    /// The refresh token expiry that `connection.refresh_token_expiring`
    /// was sent for: once per expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiring_noticed_for: Option<DateTime<Utc>>,
    /// A connected account's tags (`key=value`, at most 16): set when it
    /// is connected and by `PATCH`/`svc connection tag`; never changed by
    /// an observation.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tags: std::collections::BTreeMap<String, String>,
}

/// Something that happened to a connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// A run refreshed it. `refresh_token_expires_at`: the new refresh
    /// token's expiry when the answer or the client says (`None` keeps
    /// what was known).
    Refreshed {
        refresh_token_expires_at: Option<DateTime<Utc>>,
    },
    /// A run that refreshes it failed.
    Failed {
        class: FailureClass,
        error: LastError,
    },
    /// A person authorized it again (`svc authorize`).
    Authorized {
        refresh_token_expires_at: Option<DateTime<Utc>>,
    },
    /// Its tokens were revoked and cleared.
    Revoked,
    /// A look at its refresh token's expiry: expiring when it is within
    /// `within` of now (and not past). The recorded expiry counts, or
    /// else `stored_expiry`, the store's for the refresh token's secret.
    ExpiryChecked {
        within: chrono::TimeDelta,
        stored_expiry: Option<DateTime<Utc>>,
    },
}

/// What an observation did.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub state: ConnectionState,
    /// When the state changed.
    pub transition: Option<Transition>,
    /// The events it makes, in order.
    pub events: Vec<Event>,
}

/// A change of state an observation made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// `None`: the connection was not known before.
    pub from: Option<Health>,
    pub to: Health,
}

impl Transition {
    /// A return to `healthy` from another state.
    pub fn is_recovery(&self) -> bool {
        self.to == Health::Healthy && self.from.is_some_and(|from| from != Health::Healthy)
    }
}

impl ConnectionState {
    /// The state after `observation` at `at`, the transition when the
    /// state changed, and the events to send. `current` is `None` for a
    /// connection not seen before.
    pub fn observe(
        current: Option<&ConnectionState>,
        observation: &Observation,
        at: DateTime<Utc>,
    ) -> Observed {
        let mut next = current.cloned().unwrap_or_default();
        let mut events = Vec::new();
        let to = match observation {
            Observation::Refreshed {
                refresh_token_expires_at,
            }
            | Observation::Authorized {
                refresh_token_expires_at,
            } => {
                next.consecutive_failures = 0;
                next.last_success_at = Some(at);
                if refresh_token_expires_at.is_some() {
                    next.refresh_token_expires_at = *refresh_token_expires_at;
                }
                Health::Healthy
            }
            Observation::Failed { class, error } => {
                next.consecutive_failures = next.consecutive_failures.saturating_add(1);
                next.last_failure_at = Some(at);
                next.last_error = Some(error.clone());
                let expired = next.refresh_token_expires_at.is_some_and(|e| e <= at);
                match class {
                    FailureClass::Terminal => Health::NeedsReconsent,
                    _ if expired => Health::NeedsReconsent,
                    FailureClass::Misconfigured => Health::Misconfigured,
                    // A flaky provider does not revive a dead token: a
                    // connection that needs a person keeps needing one.
                    FailureClass::Transient if next.state.needs_person() => next.state,
                    FailureClass::Transient => Health::Degraded,
                }
            }
            Observation::Revoked => {
                next.refresh_token_expires_at = None;
                Health::Revoked
            }
            Observation::ExpiryChecked {
                within,
                stored_expiry,
            } => {
                // An expiry already past is no warning: the next refresh
                // says whether the token still works.
                if let Some(expires) = next.refresh_token_expires_at.or(*stored_expiry)
                    && expires > at
                    && !next.state.needs_person()
                    && next.expiring_noticed_for != Some(expires)
                    && at
                        .checked_add_signed(*within)
                        .is_none_or(|edge| expires <= edge)
                {
                    next.expiring_noticed_for = Some(expires);
                    events.push(Event::RefreshTokenExpiring);
                }
                next.state
            }
        };
        let from = current.map(|c| c.state);
        let changed = from != Some(to);
        if changed || next.since.is_none() {
            next.since = Some(at);
        }
        next.state = to;
        let transition = changed.then_some(Transition { from, to });
        if let Some(transition) = transition {
            events.splice(0..0, transition.events());
        }
        Observed {
            state: next,
            transition,
            events,
        }
    }
}

impl Transition {
    /// The events a transition makes: `connection.created` for a
    /// connection not seen before, then the one of the state it entered
    /// (`connection.recovered` for a return to `healthy`).
    pub fn events(&self) -> Vec<Event> {
        let mut out = Vec::new();
        if self.from.is_none() {
            out.push(Event::Created);
        }
        let entered = match self.to {
            Health::Healthy if self.is_recovery() => Some(Event::Recovered),
            Health::Healthy => None,
            Health::Degraded => Some(Event::Degraded),
            Health::NeedsReconsent => Some(Event::NeedsReconsent),
            Health::Misconfigured => Some(Event::Misconfigured),
            Health::Revoked => Some(Event::Revoked),
        };
        out.extend(entered);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn failed(class: FailureClass) -> Observation {
        Observation::Failed {
            class,
            error: LastError {
                code: "invalid_grant".into(),
                description: None,
            },
        }
    }

    #[test]
    fn each_class_of_failure_leads_to_its_state_and_a_success_recovers() {
        let Observed {
            state: healthy,
            transition: t,
            ..
        } = ConnectionState::observe(
            None,
            &Observation::Refreshed {
                refresh_token_expires_at: None,
            },
            at(0),
        );
        assert_eq!(t.unwrap().from, None);
        let Observed {
            state: degraded,
            transition: t,
            ..
        } = ConnectionState::observe(Some(&healthy), &failed(FailureClass::Transient), at(1));
        assert_eq!(degraded.state, Health::Degraded);
        assert!(!t.unwrap().is_recovery());
        // A second failure of the same kind is no transition.
        let Observed {
            state: still,
            transition: t,
            ..
        } = ConnectionState::observe(Some(&degraded), &failed(FailureClass::Transient), at(2));
        assert_eq!(
            (still.consecutive_failures, t, still.since),
            (2, None, Some(at(1)))
        );
        let Observed {
            state: dead,
            transition: t,
            ..
        } = ConnectionState::observe(Some(&still), &failed(FailureClass::Terminal), at(3));
        assert_eq!(
            (dead.state, t.unwrap().from),
            (Health::NeedsReconsent, Some(Health::Degraded))
        );
        // A flaky provider does not hide that a person is needed.
        let Observed {
            state: dead,
            transition: t,
            ..
        } = ConnectionState::observe(Some(&dead), &failed(FailureClass::Transient), at(4));
        assert_eq!((dead.state, t), (Health::NeedsReconsent, None));
        let Observed {
            state: back,
            transition: t,
            ..
        } = ConnectionState::observe(
            Some(&dead),
            &Observation::Authorized {
                refresh_token_expires_at: Some(at(100)),
            },
            at(5),
        );
        assert!(t.unwrap().is_recovery());
        assert_eq!(back.consecutive_failures, 0);
        assert_eq!(back.refresh_token_expires_at, Some(at(100)));
        let Observed {
            state: wrong,
            transition: _,
            ..
        } = ConnectionState::observe(Some(&back), &failed(FailureClass::Misconfigured), at(6));
        assert_eq!(wrong.state, Health::Misconfigured);
    }

    #[test]
    fn a_failure_after_the_refresh_token_expired_needs_a_person() {
        let known = ConnectionState {
            refresh_token_expires_at: Some(at(10)),
            ..ConnectionState::default()
        };
        let Observed {
            state: before,
            transition: _,
            ..
        } = ConnectionState::observe(Some(&known), &failed(FailureClass::Transient), at(9));
        assert_eq!(before.state, Health::Degraded);
        let Observed {
            state: after,
            transition: _,
            ..
        } = ConnectionState::observe(Some(&known), &failed(FailureClass::Transient), at(10));
        assert_eq!(after.state, Health::NeedsReconsent);
    }

    #[test]
    fn each_transition_makes_its_event_once() {
        let refreshed = Observation::Refreshed {
            refresh_token_expires_at: None,
        };
        let first = ConnectionState::observe(None, &refreshed, at(0));
        assert_eq!(first.events, [Event::Created]);
        let again = ConnectionState::observe(Some(&first.state), &refreshed, at(1));
        assert!(again.events.is_empty());
        let dead =
            ConnectionState::observe(Some(&again.state), &failed(FailureClass::Terminal), at(2));
        assert_eq!(dead.events, [Event::NeedsReconsent]);
        let still =
            ConnectionState::observe(Some(&dead.state), &failed(FailureClass::Terminal), at(3));
        assert!(still.events.is_empty());
        let back = ConnectionState::observe(Some(&still.state), &refreshed, at(4));
        assert_eq!(back.events, [Event::Recovered]);
        let new_and_dead = ConnectionState::observe(None, &failed(FailureClass::Terminal), at(5));
        assert_eq!(new_and_dead.events, [Event::Created, Event::NeedsReconsent]);
    }

    #[test]
    fn an_expiring_refresh_token_is_noticed_once_per_expiry() {
        let within = Observation::ExpiryChecked {
            within: chrono::TimeDelta::days(7),
            stored_expiry: None,
        };
        let known = ConnectionState {
            refresh_token_expires_at: Some(at(10 * 86_400)),
            ..ConnectionState::default()
        };
        let early = ConnectionState::observe(Some(&known), &within, at(0));
        assert!(early.events.is_empty());
        let due = ConnectionState::observe(Some(&early.state), &within, at(3 * 86_400));
        assert_eq!(due.events, [Event::RefreshTokenExpiring]);
        let twice = ConnectionState::observe(Some(&due.state), &within, at(4 * 86_400));
        assert!(twice.events.is_empty());
        // A new refresh token with a new expiry is noticed again.
        let renewed = ConnectionState::observe(
            Some(&twice.state),
            &Observation::Refreshed {
                refresh_token_expires_at: Some(at(11 * 86_400)),
            },
            at(5 * 86_400),
        );
        let again = ConnectionState::observe(Some(&renewed.state), &within, at(5 * 86_400));
        assert_eq!(again.events, [Event::RefreshTokenExpiring]);
        // A connection that needs a person is not said to be expiring.
        let dead = ConnectionState {
            state: Health::NeedsReconsent,
            ..known.clone()
        };
        let quiet = ConnectionState::observe(Some(&dead), &within, at(9 * 86_400));
        assert!(quiet.events.is_empty());
        // Past its expiry: no warning. Known only from the store: one.
        let past = ConnectionState::observe(Some(&known), &within, at(11 * 86_400));
        assert!(past.events.is_empty());
        let from_store = ConnectionState::observe(
            Some(&ConnectionState::default()),
            &Observation::ExpiryChecked {
                within: chrono::TimeDelta::days(7),
                stored_expiry: Some(at(10 * 86_400)),
            },
            at(5 * 86_400),
        );
        assert_eq!(from_store.events, [Event::RefreshTokenExpiring]);
    }
}
