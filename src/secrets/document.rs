//! The decrypted content of a store: a versioned JSON document.
//!
//! ```json
//! {
//!   "format": 1,
//!   "environment": "prod",
//!   "secrets": {
//!     "HUBSPOT_ACCESS_TOKEN": {
//!       "value": "...",
//!       "version": 3,
//!       "updated_at": "2026-11-28T21:22:31Z",
//!       "updated_by": "nightly (svc run hubspot.refresh)",
//!       "expires_at": "2026-11-28T21:52:31Z",
//!       "history": [
//!         { "value": "...", "version": 2, "updated_at": "...", "updated_by": "...", "expires_at": null }
//!       ]
//!     }
//!   }
//! }
//! ```
//!
//! Only `secrets` and each secret's `value` are required, so a document a
//! person writes by hand and encrypts with `age` loads too.

use std::collections::BTreeMap;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use super::value::SecretValue;

/// The document format this svc writes and reads.
pub const FORMAT: u32 = 1;
/// How many earlier values each secret keeps for rollback.
pub const HISTORY_LIMIT: usize = 5;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    #[serde(default = "default_format")]
    pub format: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default)]
    pub secrets: BTreeMap<String, Entry>,
    /// Hashes of API keys for `svc serve`, by key id. Never the keys.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub api_keys: BTreeMap<String, ApiKey>,
    /// The values of per-account secrets (files backend), by client, then
    /// connection id, then secret.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub accounts: BTreeMap<String, BTreeMap<String, BTreeMap<String, Entry>>>,
}

fn default_format() -> u32 {
    FORMAT
}

fn default_version() -> u64 {
    1
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub value: SecretValue,
    #[serde(default = "default_version")]
    pub version: u64,
    #[serde(default, with = "super::timestamp::optional")]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub updated_by: Option<String>,
    #[serde(default, with = "super::timestamp::optional")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<PastVersion>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PastVersion {
    pub value: SecretValue,
    pub version: u64,
    #[serde(default, with = "super::timestamp::optional")]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub updated_by: Option<String>,
    #[serde(default, with = "super::timestamp::optional")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// An API key of `svc serve`, as stored: only a hash of the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// The user or service account the key authenticates.
    pub identity: String,
    pub name: Option<String>,
    /// Hex SHA-256 of the key's secret part.
    pub hash: String,
    #[serde(with = "super::timestamp::required")]
    pub created_at: DateTime<Utc>,
    #[serde(default, with = "super::timestamp::optional")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default, with = "super::timestamp::optional")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// Limits the key to the connected accounts whose id starts with this
    /// (`svc key create --connection-prefix`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_prefix: Option<String>,
    /// Limits the key to the connected accounts with every one of these
    /// tags (`--connection-tag KEY=VALUE`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub connection_tags: BTreeMap<String, String>,
}

/// A new value for a secret.
pub struct NewValue {
    pub value: SecretValue,
    pub expires_at: Option<DateTime<Utc>>,
}

/// The current time, to the second, as stored.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

impl Document {
    pub fn new(environment: &str) -> Self {
        Document {
            format: FORMAT,
            environment: Some(environment.to_string()),
            secrets: BTreeMap::new(),
            api_keys: BTreeMap::new(),
            accounts: BTreeMap::new(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.secrets.get(name)
    }

    /// Sets a secret, keeping its current value in the history. Returns the
    /// new version.
    pub fn set(&mut self, name: &str, new: NewValue, by: &str, at: DateTime<Utc>) -> u64 {
        match self.secrets.get_mut(name) {
            Some(entry) => {
                let past = PastVersion {
                    value: new_value_swap(&mut entry.value, new.value),
                    version: entry.version,
                    updated_at: entry.updated_at,
                    updated_by: entry.updated_by.take(),
                    expires_at: entry.expires_at,
                };
                entry.history.insert(0, past);
                entry.history.truncate(HISTORY_LIMIT);
                entry.version += 1;
                entry.updated_at = Some(at);
                entry.updated_by = Some(by.to_string());
                entry.expires_at = new.expires_at;
                entry.version
            }
            None => {
                self.secrets.insert(
                    name.to_string(),
                    Entry {
                        value: new.value,
                        version: 1,
                        updated_at: Some(at),
                        updated_by: Some(by.to_string()),
                        expires_at: new.expires_at,
                        history: Vec::new(),
                    },
                );
                1
            }
        }
    }

    /// Makes an earlier value current again, as a new version. `to` is the
    /// version to restore; `None` means the one before the current.
    pub fn rollback(
        &mut self,
        name: &str,
        to: Option<u64>,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<(u64, u64), RollbackError> {
        let entry = self.secrets.get(name).ok_or(RollbackError::NoSecret)?;
        let past = match to {
            None => entry.history.first().ok_or(RollbackError::NoHistory)?,
            Some(version) if version == entry.version => {
                return Err(RollbackError::AlreadyCurrent(version));
            }
            Some(version) => entry
                .history
                .iter()
                .find(|p| p.version == version)
                .ok_or_else(|| RollbackError::UnknownVersion {
                    version,
                    available: entry.history.iter().map(|p| p.version).collect(),
                })?,
        };
        let restored = past.version;
        let new = NewValue {
            value: past.value.clone(),
            expires_at: past.expires_at,
        };
        let version = self.set(name, new, by, at);
        Ok((restored, version))
    }
}

fn new_value_swap(slot: &mut SecretValue, new: SecretValue) -> SecretValue {
    std::mem::replace(slot, new)
}

#[derive(Debug, PartialEq, Eq)]
pub enum RollbackError {
    NoSecret,
    NoHistory,
    AlreadyCurrent(u64),
    UnknownVersion { version: u64, available: Vec<u64> },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> NewValue {
        NewValue {
            value: SecretValue::new(text),
            expires_at: None,
        }
    }

    #[test]
    fn set_keeps_a_bounded_history() {
        let mut doc = Document::new("dev");
        for i in 1..=10 {
            assert_eq!(doc.set("A", value(&format!("v{i}")), "me", now()), i);
        }
        let entry = doc.get("A").unwrap();
        assert_eq!(entry.value.expose(), "v10");
        assert_eq!(entry.history.len(), HISTORY_LIMIT);
        assert_eq!(entry.history[0].version, 9);
        assert_eq!(entry.history[0].value.expose(), "v9");
    }

    #[test]
    fn rollback_restores_as_a_new_version() {
        let mut doc = Document::new("dev");
        doc.set("A", value("one"), "me", now());
        doc.set("A", value("two"), "me", now());
        doc.set("A", value("three"), "me", now());
        assert_eq!(doc.rollback("A", Some(1), "me", now()), Ok((1, 4)));
        assert_eq!(doc.get("A").unwrap().value.expose(), "one");
        assert_eq!(doc.rollback("A", None, "me", now()), Ok((3, 5)));
        assert_eq!(doc.get("A").unwrap().value.expose(), "three");
        assert_eq!(
            doc.rollback("A", Some(5), "me", now()),
            Err(RollbackError::AlreadyCurrent(5))
        );
        assert!(matches!(
            doc.rollback("A", Some(99), "me", now()),
            Err(RollbackError::UnknownVersion { .. })
        ));
        assert_eq!(
            doc.rollback("B", None, "me", now()),
            Err(RollbackError::NoSecret)
        );
    }

    #[test]
    fn a_minimal_hand_written_document_loads() {
        let doc: Document = serde_json::from_str(r#"{"secrets": {"A": {"value": "x"}}}"#).unwrap();
        assert_eq!(doc.format, FORMAT);
        assert_eq!(doc.get("A").unwrap().version, 1);
    }
}
