//! Connect sessions: the hosted consent of `svc serve`, from the link an
//! app hands its customer to the callback that stores the account's
//! tokens. A session lives in the backend, so that whichever replica the
//! customer's browser reaches serves each step.
//!
//! The link's token is never stored: only its SHA-256 (hex), which finds
//! the session when the link is opened. The callback finds it by its
//! `state`. Each step claims the session atomically (files: under the
//! file's lock; PostgreSQL: under the row's lock), so a link opened twice,
//! or a callback replayed, loses the race and is refused. What the session
//! keeps (the PKCE verifier, the state, the nonce) is worth nothing
//! without the code the provider gives the person's browser, and the code
//! is worth nothing without the verifier: it is kept here, never logged.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::secrets::Error;

/// How long a session's link is valid, from its creation: the person must
/// open it and come back from the provider within this time.
pub const LIFETIME: TimeDelta = TimeDelta::minutes(10);

/// How long an expired session is kept after its expiry, so that a late
/// callback still finds where to send the browser back; then it is pruned.
pub const KEPT_EXPIRED: TimeDelta = TimeDelta::hours(1);

/// One consent in progress.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentSession {
    /// Hex SHA-256 of the link's token.
    pub token_hash: String,
    pub client: String,
    pub connection_id: String,
    /// Tags the connection gets; `None`: it keeps the ones it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    /// Where the browser goes when the consent ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_to: Option<String>,
    /// The identity and API key that made it.
    pub identity: String,
    pub key_id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// What the authorization request sent, which its redirect and the
    /// code exchange must match.
    pub state: String,
    pub verifier: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub redirect_uri: String,
    /// Where the link sends the browser: the provider's authorization URL
    /// (nothing secret in it).
    pub authorize_url: String,
    /// Where the code is exchanged, and the issuer an `iss` must name.
    pub token_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Hex SHA-256 of the cookie set in the browser that opened the link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_at: Option<DateTime<Utc>>,
    /// When the callback came (whatever its outcome).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for ConsentSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ConsentSession({}/{}, {})",
            self.client,
            self.connection_id,
            self.short_id()
        )
    }
}

/// What claiming a session found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// No session has that token or state: never made, or pruned.
    Unknown,
    /// This caller claimed it.
    Claimed(ConsentSession),
    /// Claimed before: a link opened twice, a callback replayed.
    Used(ConsentSession),
    Expired(ConsentSession),
}

impl ConsentSession {
    /// A short id for log lines and audit records: the first 12 hex digits
    /// of the token's hash (not the token, which opens the link).
    pub fn short_id(&self) -> &str {
        self.token_hash.get(..12).unwrap_or(&self.token_hash)
    }

    /// The link is opened by a browser, which gets a cookie whose hash is
    /// `browser`: once, before the session expires.
    pub fn open(&mut self, browser: &str, now: DateTime<Utc>) -> Verdict {
        if self.opened_at.is_some() || self.used_at.is_some() {
            return Verdict::Used;
        }
        if now >= self.expires_at {
            return Verdict::Expired;
        }
        self.opened_at = Some(now);
        self.browser = Some(browser.to_string());
        Verdict::Claimed
    }

    /// The callback comes: it uses the session up, whatever comes of it.
    pub fn finish(&mut self, now: DateTime<Utc>) -> Verdict {
        if self.used_at.is_some() {
            return Verdict::Used;
        }
        self.used_at = Some(now);
        if now >= self.expires_at {
            Verdict::Expired
        } else {
            Verdict::Claimed
        }
    }

    /// Whether it is past keeping (expired longer than [`KEPT_EXPIRED`]).
    pub fn is_stale(&self, now: DateTime<Utc>) -> bool {
        self.expires_at
            .checked_add_signed(KEPT_EXPIRED)
            .is_none_or(|until| until < now)
    }
}

/// What a step did to a session, before it is written back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Claimed,
    Used,
    Expired,
}

impl Verdict {
    /// The claim, with the session as the step left it.
    pub fn claim(self, session: ConsentSession) -> Claim {
        match self {
            Verdict::Claimed => Claim::Claimed(session),
            Verdict::Used => Claim::Used(session),
            Verdict::Expired => Claim::Expired(session),
        }
    }
}

/// Where connect sessions are kept.
#[async_trait]
pub trait ConsentSessions: Send + Sync {
    fn describe(&self) -> String;

    /// Keeps a new session, and prunes the stale ones.
    async fn create(&self, session: &ConsentSession, now: DateTime<Utc>) -> Result<(), Error>;

    /// Opens the session whose token hashes to `token_hash`
    /// ([`ConsentSession::open`]), atomically.
    async fn open(
        &self,
        token_hash: &str,
        browser: &str,
        now: DateTime<Utc>,
    ) -> Result<Claim, Error>;

    /// Uses up the session of `state` ([`ConsentSession::finish`]),
    /// atomically.
    async fn finish(&self, state: &str, now: DateTime<Utc>) -> Result<Claim, Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn session() -> ConsentSession {
        ConsentSession {
            token_hash: "ab".repeat(32),
            client: "app".into(),
            connection_id: "acme-1".into(),
            tags: None,
            return_to: None,
            identity: "portal".into(),
            key_id: "0123456789ab".into(),
            created_at: at(0),
            expires_at: at(600),
            state: "state".into(),
            verifier: "verifier".into(),
            nonce: None,
            redirect_uri: "https://svc.example.com/connect/callback".into(),
            authorize_url: "https://idp.example.com/authorize?state=state".into(),
            token_url: "https://idp.example.com/token".into(),
            issuer: None,
            browser: None,
            opened_at: None,
            used_at: None,
        }
    }

    #[test]
    fn a_link_opens_once_and_a_callback_comes_once() {
        let mut s = session();
        assert_eq!(s.open("b1", at(10)), Verdict::Claimed);
        assert_eq!(s.browser.as_deref(), Some("b1"));
        assert_eq!(s.open("b2", at(11)), Verdict::Used);
        assert_eq!(
            s.browser.as_deref(),
            Some("b1"),
            "a second opener changes nothing"
        );
        assert_eq!(s.finish(at(20)), Verdict::Claimed);
        assert_eq!(s.finish(at(21)), Verdict::Used);
        let mut late = session();
        assert_eq!(late.open("b", at(600)), Verdict::Expired);
        assert_eq!(late.opened_at, None);
        assert_eq!(late.finish(at(601)), Verdict::Expired);
        assert_eq!(late.used_at, Some(at(601)), "used up all the same");
        assert!(!late.is_stale(at(600 + 3600)));
        assert!(late.is_stale(at(600 + 3601)));
        assert!(!format!("{late:?}").contains("verifier"));
    }
}
