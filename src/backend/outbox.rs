//! The outbox: events waiting to reach the `notify` receivers.
//!
//! An event is written in the same update as the connection change that
//! makes it (files: the same `connections.json`; PostgreSQL: the same
//! transaction), so a change is never kept without its events nor the
//! other way round. `svc serve` delivers them: it claims due deliveries
//! for a lease (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so one replica
//! sends each), sends, and settles each: delivered, or retried later with
//! exponential backoff, or given up once it has failed for 24 hours.
//!
//! Each delivery keeps one id, sent as `webhook-id` on every attempt, so
//! a receiver that got an event whose settlement was lost (the sender
//! died after sending) recognizes the second copy.

use std::collections::BTreeSet;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::connection::{ConnectionKey, ConnectionState};
use crate::check::notify::Event;
use crate::secrets::Error;
use crate::syntax::ast::Program;

/// A receiver and the events it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    /// The name of its `notify`.
    pub notify: String,
    pub events: BTreeSet<Event>,
}

/// The receivers a program declares.
pub fn subscribers(program: &Program) -> Vec<Subscriber> {
    let mut seen = BTreeSet::new();
    program
        .notifies
        .iter()
        .filter(|notify| seen.insert(notify.name.as_str()))
        .map(|notify| Subscriber {
            notify: notify.name.text.clone(),
            events: notify
                .events
                .iter()
                .filter_map(|e| Event::from_name(e.as_str()))
                .collect(),
        })
        .collect()
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not yet delivered; tried again at `next_attempt_at`.
    Pending,
    Delivered,
    /// Given up after [`GIVE_UP_AFTER`]; `svc notify retry ID` sends it again.
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Delivered => "delivered",
            Status::Failed => "failed",
        }
    }
}

/// One event for one receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// `msg_` and 32 hex digits: the `webhook-id` of every attempt.
    pub id: String,
    /// The `notify` it goes to.
    pub notify: String,
    /// `connection.needs_reconsent`, ...
    pub event: String,
    pub client: String,
    pub connection_id: String,
    /// The JSON body, exactly as signed and sent.
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub status: Status,
    #[serde(default)]
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub delivered_at: Option<DateTime<Utc>>,
    /// Claimed by a sender until then.
    #[serde(default)]
    pub lease_until: Option<DateTime<Utc>>,
    /// Which claim holds it: only that sender's attempt is recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_token: Option<String>,
}

/// How long a delivery is retried before it is given up.
pub const GIVE_UP_AFTER: TimeDelta = TimeDelta::hours(24);

/// Delivered and failed deliveries are kept this long, for `svc notify
/// list`, then pruned.
pub const KEEP_SETTLED: TimeDelta = TimeDelta::days(7);

/// The wait before attempt `attempts + 1`: 2 s, doubling, at most an hour.
pub fn backoff(attempts: u32) -> TimeDelta {
    let seconds = 2i64.saturating_mul(1i64 << attempts.saturating_sub(1).min(12));
    TimeDelta::seconds(seconds.min(3600))
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Delivered,
    /// The receiver answered something other than 2xx, or did not answer;
    /// the error names which, never a secret. Tried again later.
    Failed(String),
    /// It cannot be sent at all (its `notify` is no longer declared):
    /// given up at once.
    Undeliverable(String),
}

/// What asking to send a delivery again came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retry {
    /// Claimed for the caller, due now.
    Claimed(Box<Delivery>),
    /// A sender holds it right now.
    Busy,
    /// No delivery has that id.
    Unknown,
}

impl Delivery {
    /// The deliveries an observation's events make: one per event per
    /// receiver that asked for it.
    pub fn for_events(
        env: &str,
        key: &ConnectionKey,
        state: &ConnectionState,
        events: &[Event],
        subscribers: &[Subscriber],
        at: DateTime<Utc>,
    ) -> Vec<Delivery> {
        let error_code = state
            .last_error
            .as_ref()
            .filter(|_| state.state != super::connection::Health::Healthy)
            .map(|e| e.code.as_str());
        let mut out = Vec::new();
        for event in events {
            // The expiry the warning was made for: recorded with the
            // connection, or read from the store.
            let expires = state
                .expiring_noticed_for
                .filter(|_| *event == Event::RefreshTokenExpiring);
            let said = Said {
                state: state.state.as_str(),
                error_code,
                refresh_token_expires_at: expires,
            };
            out.extend(deliveries(env, key, *event, &said, subscribers, at));
        }
        out
    }

    /// The deliveries of `connection.deleted`: the connection as it was
    /// last known, its state now `deleted`.
    pub fn for_deletion(
        env: &str,
        key: &ConnectionKey,
        subscribers: &[Subscriber],
        at: DateTime<Utc>,
    ) -> Vec<Delivery> {
        let said = Said {
            state: "deleted",
            error_code: None,
            refresh_token_expires_at: None,
        };
        deliveries(env, key, Event::Deleted, &said, subscribers, at)
    }

    /// Whether a sender may claim it at `now`.
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.status == Status::Pending
            && self.next_attempt_at <= now
            && self.lease_until.is_none_or(|until| until <= now)
    }

    /// Whether it can be pruned at `now`.
    pub fn is_stale(&self, now: DateTime<Utc>) -> bool {
        let settled_at = match self.status {
            Status::Pending => return false,
            Status::Delivered => self.delivered_at.unwrap_or(self.created_at),
            Status::Failed => self.next_attempt_at,
        };
        settled_at
            .checked_add_signed(KEEP_SETTLED)
            .is_some_and(|until| until <= now)
    }

    /// Claims it for a sender until `until`, with a token of its own.
    pub fn claim(&mut self, until: DateTime<Utc>) {
        self.lease_until = Some(until);
        self.lease_token = Some(new_id());
    }

    /// Whether the claim `token` still holds it: a sender whose lease ran
    /// out (and another took it over) has its attempt ignored, so a late
    /// failure never undoes another's delivery.
    pub fn is_held_by(&self, token: &str) -> bool {
        self.status == Status::Pending && self.lease_token.as_deref() == Some(token)
    }

    /// Records an attempt made at `now`.
    pub fn settle(&mut self, attempt: Attempt, now: DateTime<Utc>) {
        self.attempts = self.attempts.saturating_add(1);
        self.lease_until = None;
        self.lease_token = None;
        match attempt {
            Attempt::Delivered => {
                self.status = Status::Delivered;
                self.delivered_at = Some(now);
                self.last_error = None;
            }
            Attempt::Undeliverable(error) => {
                self.last_error = Some(error);
                self.status = Status::Failed;
                self.next_attempt_at = now;
            }
            Attempt::Failed(error) => {
                self.last_error = Some(error);
                let next = now.checked_add_signed(backoff(self.attempts));
                let give_up = self.created_at.checked_add_signed(GIVE_UP_AFTER);
                match (next, give_up) {
                    (Some(next), Some(give_up)) if next <= give_up => {
                        self.next_attempt_at = next;
                    }
                    _ => {
                        self.status = Status::Failed;
                        self.next_attempt_at = now;
                    }
                }
            }
        }
    }

    /// Whether a sender's claim on it is live at `now`.
    pub fn is_claimed(&self, now: DateTime<Utc>) -> bool {
        self.status == Status::Pending && self.lease_until.is_some_and(|until| until > now)
    }

    /// Makes it due now again (`svc notify retry`), with 24 hours more,
    /// and claims it for the caller until `until`.
    pub fn retry(&mut self, now: DateTime<Utc>, until: DateTime<Utc>) {
        self.status = Status::Pending;
        self.next_attempt_at = now;
        self.created_at = now;
        self.claim(until);
    }
}

/// What an event says of its connection's state: never a token, a
/// secret or the provider's description.
struct Said<'a> {
    state: &'a str,
    error_code: Option<&'a str>,
    /// Only in `connection.refresh_token_expiring`.
    refresh_token_expires_at: Option<DateTime<Utc>>,
}

/// One event's delivery to each receiver that asked for it, with one body.
fn deliveries(
    env: &str,
    key: &ConnectionKey,
    event: Event,
    said: &Said<'_>,
    subscribers: &[Subscriber],
    at: DateTime<Utc>,
) -> Vec<Delivery> {
    let wanted: Vec<&Subscriber> = subscribers
        .iter()
        .filter(|s| s.events.contains(&event))
        .collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    let mut data = serde_json::json!({
        "environment": env,
        "client": key.client,
        "connection_id": key.connection_id,
        "state": said.state,
        "error_code": said.error_code,
    });
    if let Some(expires) = said.refresh_token_expires_at {
        data["refresh_token_expires_at"] =
            serde_json::Value::String(expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    }
    let body = serde_json::json!({
        "type": event.as_str(),
        "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": data,
    })
    .to_string();
    wanted
        .into_iter()
        .map(|subscriber| Delivery {
            id: new_id(),
            notify: subscriber.notify.clone(),
            event: event.as_str().to_string(),
            client: key.client.clone(),
            connection_id: key.connection_id.clone(),
            body: body.clone(),
            created_at: at,
            status: Status::Pending,
            attempts: 0,
            next_attempt_at: at,
            last_error: None,
            delivered_at: None,
            lease_until: None,
            lease_token: None,
        })
        .collect()
}

fn new_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    let mut id = String::from("msg_");
    for byte in bytes {
        id.push_str(&format!("{byte:02x}"));
    }
    id
}

/// The outbox of one environment.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Claims up to `limit` due deliveries until `now + lease`: no other
    /// sender gets them meanwhile. Prunes settled ones past keeping.
    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease: TimeDelta,
        limit: usize,
    ) -> Result<Vec<Delivery>, Error>;

    /// Records an attempt at a delivery claimed with `lease_token`;
    /// nothing when that claim no longer holds it. Returns whether it was
    /// recorded.
    async fn settle(
        &self,
        id: &str,
        lease_token: &str,
        attempt: Attempt,
        now: DateTime<Utc>,
    ) -> Result<bool, Error>;

    /// Every delivery kept, oldest first.
    async fn list(&self) -> Result<Vec<Delivery>, Error>;

    /// Makes a delivery due now again, and claims it until `now + lease`
    /// for the caller, who sends it — unless a sender holds it now.
    async fn retry(&self, id: &str, now: DateTime<Utc>, lease: TimeDelta) -> Result<Retry, Error>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::connection::{Health, LastError};

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn delivery() -> Delivery {
        let state = ConnectionState {
            state: Health::NeedsReconsent,
            last_error: Some(LastError {
                code: "invalid_grant".into(),
                description: Some("revoked".into()),
            }),
            ..ConnectionState::default()
        };
        let subscribers = [
            Subscriber {
                notify: "ops".into(),
                events: [Event::NeedsReconsent].into(),
            },
            Subscriber {
                notify: "audit".into(),
                events: [Event::Recovered].into(),
            },
        ];
        let mut out = Delivery::for_events(
            "prod",
            &ConnectionKey::default_of("google"),
            &state,
            &[Event::NeedsReconsent],
            &subscribers,
            at(0),
        );
        assert_eq!(out.len(), 1, "only the receiver that asked gets it");
        out.remove(0)
    }

    #[test]
    fn the_body_names_the_connection_and_its_error_code() {
        let d = delivery();
        assert!(d.id.starts_with("msg_") && d.id.len() == 36);
        let body: serde_json::Value = serde_json::from_str(&d.body).unwrap();
        assert_eq!(body["type"], "connection.needs_reconsent");
        assert_eq!(body["data"]["environment"], "prod");
        assert_eq!(body["data"]["client"], "google");
        assert_eq!(body["data"]["connection_id"], "default");
        assert_eq!(body["data"]["state"], "needs_reconsent");
        assert_eq!(body["data"]["error_code"], "invalid_grant");
        assert!(!d.body.contains("revoked"), "descriptions stay home");
    }

    #[test]
    fn an_expiring_event_names_the_expiry_it_warns_of() {
        let expires = at(86_400);
        let state = ConnectionState {
            expiring_noticed_for: Some(expires),
            ..ConnectionState::default()
        };
        let subscribers = [Subscriber {
            notify: "ops".into(),
            events: [Event::RefreshTokenExpiring].into(),
        }];
        let out = Delivery::for_events(
            "prod",
            &ConnectionKey::default_of("google"),
            &state,
            &[Event::RefreshTokenExpiring],
            &subscribers,
            at(0),
        );
        let body: serde_json::Value = serde_json::from_str(&out[0].body).unwrap();
        assert_eq!(
            body["data"]["refresh_token_expires_at"],
            "2027-01-16T08:00:00Z"
        );
    }

    #[test]
    fn failed_attempts_back_off_then_give_up_after_a_day() {
        let mut d = delivery();
        assert!(d.is_due(at(0)));
        d.settle(Attempt::Failed("503".into()), at(0));
        assert_eq!((d.status, d.next_attempt_at), (Status::Pending, at(2)));
        assert!(!d.is_due(at(1)) && d.is_due(at(2)));
        d.settle(Attempt::Failed("503".into()), at(2));
        assert_eq!(d.next_attempt_at, at(6));
        let mut now = at(6);
        while d.status == Status::Pending {
            d.settle(Attempt::Failed("connection refused".into()), now);
            now = d.next_attempt_at;
        }
        assert_eq!(d.status, Status::Failed);
        assert!(now <= at(86_400), "gave up within the day");
        assert!(d.attempts > 20 && d.attempts < 40, "{}", d.attempts);
        d.retry(at(100_000), at(100_060));
        assert!(d.is_claimed(at(100_001)) && !d.is_due(at(100_001)));
        let token = d.lease_token.clone().unwrap();
        assert!(d.is_held_by(&token) && !d.is_held_by("another"));
        d.settle(Attempt::Delivered, at(100_001));
        assert!(
            !d.is_held_by(&token),
            "a settled delivery is held by no one"
        );
        assert_eq!(d.status, Status::Delivered);
        assert!(!d.is_stale(at(100_001)) && d.is_stale(at(100_001 + 7 * 86_400)));
        // A receiver no longer declared: given up at once.
        let mut gone = delivery();
        gone.settle(Attempt::Undeliverable("no notify".into()), at(5));
        assert_eq!((gone.status, gone.attempts), (Status::Failed, 1));
    }
}
