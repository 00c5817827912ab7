//! The recovery journal: every response to a request that sent a secret,
//! kept encrypted until the run that received it has made its updates
//! durable.
//!
//! A provider that rotates refresh tokens sends the new one once. If the
//! run then fails (a malformed field in the same answer, a full disk, a
//! crash) the new token would be lost and the stored one is already spent.
//! So the answer is written here first, encrypted to the store's
//! recipients, before anything reads it; a run that succeeds removes it
//! (and the older answers of its endpoint, which it made obsolete); a
//! failed one leaves it for `svc run ... --replay` or `svc secret recover`.
//!
//! One file per answer, `DIR/RUN_ID-SEQ-STATUS-ENDPOINT.age`: the name
//! says which run, which answer of it, its status and endpoint (none of
//! them secret), so listing needs no key. The journal is bounded: answers
//! older than [`MAX_AGE`] go, and beyond [`MAX_ENTRIES`] or [`MAX_BYTES`]
//! the oldest go first.

use std::path::Path;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::Error;

/// Answers kept at most, per environment.
pub const MAX_ENTRIES: usize = 256;
/// Bytes of encrypted answers kept at most, per environment.
pub const MAX_BYTES: u64 = 64 * 1024 * 1024;
/// The largest kept answer, sealed: a body is at most 10 MiB
/// (`net::http::MAX_BODY`), a third more in base64.
pub const MAX_ENTRY_BYTES: u64 = 16 * 1024 * 1024;
/// How long an answer is kept.
pub const MAX_AGE: chrono::TimeDelta = chrono::TimeDelta::days(30);

pub const FORMAT: u32 = 1;

/// The status of a send: the request is going out, its answer is to come.
/// Kept before a request that presents a rotating secret leaves a run that
/// holds a database lock, so that a run taking the lock after this one lost
/// it waits for the answer instead of sending the same secret.
pub const SENT: u16 = 0;
/// The status of a send that got no answer: the request failed before one
/// came (refused, reset, timed out).
pub const NO_ANSWER: u16 = 1;

/// One kept answer, decrypted.
#[derive(Clone, Serialize, Deserialize)]
pub struct Entry {
    pub format: u32,
    pub run_id: String,
    /// The endpoint of the run, as `SERVICE.ENDPOINT`.
    pub endpoint: String,
    pub environment: String,
    /// The answer's place among the run's kept answers, from 0.
    pub sequence: u32,
    pub received_at: DateTime<Utc>,
    pub method: String,
    /// The URL requested, as sent (it may hold a secret in its query).
    pub url: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    #[serde(with = "base64_body")]
    pub body: Zeroizing<Vec<u8>>,
    /// Who the run ran as: settling the answer replays it as them.
    #[serde(default)]
    pub identity: String,
    /// The versions of the secrets the run's endpoint may update, as the
    /// run read them under its lock. A later write to any of them makes
    /// the answer obsolete: it is never applied over a newer value.
    #[serde(default)]
    pub based_on: std::collections::BTreeMap<String, u64>,
    /// The parameters the run was given, for the same replay.
    #[serde(default)]
    pub params: std::collections::BTreeMap<String, serde_json::Value>,
    /// For a send ([`SENT`]): when its answer is due at the latest.
    #[serde(default)]
    pub answer_by: Option<DateTime<Utc>>,
    /// The request presented a secret its run replaces (a refresh token):
    /// its answer carries the successor, which the next run must store
    /// before it presents anything. (Entries written before svc said so
    /// are taken to.)
    #[serde(default = "presumed_rotating")]
    pub rotating: bool,
}

fn presumed_rotating() -> bool {
    true
}

// An answer holds secrets: `Debug` says only what it is.
impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Entry({} #{} {} {} bytes)",
            self.run_id,
            self.sequence,
            self.status,
            self.body.len()
        )
    }
}

mod base64_body {
    use super::*;

    pub fn serialize<S: serde::Serializer>(
        body: &Zeroizing<Vec<u8>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let text = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&**body));
        serializer.serialize_str(&text)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Zeroizing<Vec<u8>>, D::Error> {
        let text = Zeroizing::new(String::deserialize(deserializer)?);
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map(Zeroizing::new)
            .map_err(|_| serde::de::Error::custom("the body is not base64"))
    }
}

/// A kept answer as its file name tells it, without decrypting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub run_id: String,
    pub sequence: u32,
    pub status: u16,
    pub endpoint: String,
    /// Where it is kept: a file's path, or a database row's key.
    pub handle: String,
    pub bytes: u64,
}

impl Listed {
    /// When the run started, from its id.
    pub fn run_started(&self) -> Option<DateTime<Utc>> {
        run_started(&self.run_id)
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A send whose answer is still to come.
    pub fn is_sent(&self) -> bool {
        self.status == SENT
    }

    /// The name of the send this answer (or lack of one) concludes.
    pub fn sent_name(&self) -> String {
        format!(
            "{}-{:03}-{SENT}-{}",
            self.run_id, self.sequence, self.endpoint
        )
    }

    /// From a name `RUN_ID-SEQ-STATUS-ENDPOINT` (a file's, without `.age`).
    pub fn parse_name(name: &str, handle: String, bytes: u64) -> Option<Listed> {
        let mut parts = name.splitn(4, '-');
        let run_id = parts.next()?.to_string();
        let sequence = parts.next()?.parse().ok()?;
        let status = parts.next()?.parse().ok()?;
        let endpoint = parts.next()?.to_string();
        if run_id.is_empty() || !run_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(Listed {
            run_id,
            sequence,
            status,
            endpoint,
            handle,
            bytes,
        })
    }
}

/// The start of a run from its id: milliseconds since 1970, in hex, first.
pub fn run_started(run_id: &str) -> Option<DateTime<Utc>> {
    let millis = i64::from_str_radix(run_id.get(..13)?, 16).ok()?;
    DateTime::from_timestamp_millis(millis)
}

/// An entry from its decrypted JSON.
pub fn parse_entry(source: &Path, plaintext: &[u8]) -> Result<Entry, Error> {
    serde_json::from_slice(plaintext).map_err(|_| Error::InvalidDocument {
        path: source.to_path_buf(),
        problem: "it is not a recovery journal entry".into(),
    })
}

/// The name an entry is kept under: `RUN_ID-SEQ-STATUS-ENDPOINT`.
pub fn entry_name(entry: &Entry) -> String {
    format!(
        "{}-{:03}-{}-{}",
        entry.run_id, entry.sequence, entry.status, entry.endpoint
    )
}

/// The bounds on kept answers: the ones to drop from a list (oldest
/// first): too old, then the oldest beyond the count and size limits.
pub fn past_bounds(listed: &[Listed], now: DateTime<Utc>) -> Vec<&Listed> {
    let oldest_kept = now.checked_sub_signed(MAX_AGE);
    let mut drop = Vec::new();
    let mut kept = Vec::new();
    for l in listed {
        let expired = match (l.run_started(), oldest_kept) {
            (Some(started), Some(limit)) => started < limit,
            _ => false,
        };
        if expired {
            drop.push(l);
        } else {
            kept.push(l);
        }
    }
    let mut bytes: u64 = kept.iter().map(|l| l.bytes).sum();
    let mut count = kept.len();
    for l in kept {
        if count <= MAX_ENTRIES && bytes <= MAX_BYTES {
            break;
        }
        drop.push(l);
        count -= 1;
        bytes = bytes.saturating_sub(l.bytes);
    }
    drop
}
