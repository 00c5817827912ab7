//! Connected accounts: the connections of a `per_account` oauth_client,
//! each with an id its caller chose, tags, and its own values of the
//! client's per-account secrets.
//!
//! The values of a connection are a small [`Document`] of their own, read
//! and written by [`AccountSecrets`] and never mixed into the
//! environment's shared document: the files backend keeps them in the same
//! age file under `accounts` (for small numbers, see docs/connections.md);
//! PostgreSQL keeps a row per (environment, client, connection, secret),
//! sealed like every value, written without touching the environment's
//! revision, so a refresh of one account never makes every replica
//! re-read the shared secrets.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use chrono::{DateTime, Utc};

use super::connection::{ConnectionKey, ConnectionState, Health};
use super::{Change, Changed, Held};
use crate::secrets::{Document, Error, Identities, SecretValue};

/// The most tags a connection has.
pub const MAX_TAGS: usize = 16;
/// The longest connection id.
pub const MAX_ID: usize = 128;
/// The longest tag value.
pub const MAX_TAG_VALUE: usize = 256;
/// The most connections one page of a listing holds.
pub const MAX_PAGE: usize = 1000;

/// Why a connection id is not one, or `None`: 1 to 128 of
/// `A-Z a-z 0-9 . _ : @ -`.
pub fn invalid_id(id: &str) -> Option<String> {
    if id.is_empty() || id.len() > MAX_ID {
        return Some(format!(
            "a connection id is 1 to {MAX_ID} characters, not {}",
            id.len()
        ));
    }
    let bad = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '@' | '-')));
    bad.map(|c| {
        format!(
            "a connection id holds only letters, digits and `. _ : @ -`, not {:?}",
            c.to_string()
        )
    })
}

/// A connection id, or why it is not one, as a refusal says it.
pub fn check_id(id: &str) -> Result<(), String> {
    match invalid_id(id) {
        Some(problem) => Err(format!(
            "`{}` is not a connection id: {problem}",
            id.escape_debug()
        )),
        None => Ok(()),
    }
}

/// What a refusal of a connection id says to do.
pub const ID_HELP: &str = "a connection id is the id your app knows the account by: 1 to 128 \
     letters, digits and `. _ : @ -`, such as `acme-42`";

/// Why a tag key is not one, or `None`: an identifier (so that
/// `connection.tags.KEY` reaches it), at most 64 characters.
pub fn invalid_tag_key(key: &str) -> Option<String> {
    let mut chars = key.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || key.len() > 64 || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Some(format!(
            "tag key `{}` is not an identifier of at most 64 characters (letters, digits, `_`)",
            key.escape_debug()
        ));
    }
    None
}

/// Why a set of tags is not one, or `None`.
pub fn invalid_tags(tags: &BTreeMap<String, String>) -> Option<String> {
    if tags.len() > MAX_TAGS {
        return Some(format!(
            "a connection has at most {MAX_TAGS} tags, not {}",
            tags.len()
        ));
    }
    for (key, value) in tags {
        if let Some(problem) = invalid_tag_key(key) {
            return Some(problem);
        }
        if value.is_empty() || value.len() > MAX_TAG_VALUE || value.chars().any(char::is_control) {
            return Some(format!(
                "the value of tag `{key}` is 1 to {MAX_TAG_VALUE} characters without control characters"
            ));
        }
    }
    None
}

/// `KEY=VALUE`, as the command line and `?tag=` give a tag.
pub fn parse_tag(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not a tag: write KEY=VALUE"))?;
    let tags = BTreeMap::from([(key.to_string(), value.to_string())]);
    match invalid_tags(&tags) {
        Some(problem) => Err(problem),
        None => Ok((key.to_string(), value.to_string())),
    }
}

/// Which connections a caller may reach: all, or those whose id starts
/// with a prefix and that carry every tag given (`svc key create
/// --connection-prefix`, `--connection-tag`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Reach {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl Reach {
    /// Whether it reaches every connection.
    pub fn is_all(&self) -> bool {
        self.prefix.is_none() && self.tags.is_empty()
    }

    /// Whether it reaches this connection (the one connection of a
    /// single-connection client only when it reaches all).
    pub fn reaches(&self, key: &ConnectionKey, state: &ConnectionState) -> bool {
        self.prefix
            .as_ref()
            .is_none_or(|p| key.connection_id.starts_with(p.as_str()))
            && self
                .tags
                .iter()
                .all(|(k, v)| state.tags.get(k).is_some_and(|have| have == v))
    }
}

/// What a listing of connections asks for: a page, in the order of
/// (client, id), after a cursor.
#[derive(Debug, Clone)]
pub struct ConnectionQuery {
    pub client: Option<String>,
    pub state: Option<Health>,
    /// Tags each connection must carry, and the id's prefix.
    pub reach: Reach,
    /// Only connections after this one.
    pub after: Option<ConnectionKey>,
    pub limit: usize,
}

impl Default for ConnectionQuery {
    fn default() -> ConnectionQuery {
        ConnectionQuery {
            client: None,
            state: None,
            reach: Reach::default(),
            after: None,
            limit: 100,
        }
    }
}

impl ConnectionQuery {
    /// Whether a connection belongs in the listing (ignoring the cursor).
    pub fn matches(&self, key: &ConnectionKey, state: &ConnectionState) -> bool {
        self.client.as_ref().is_none_or(|c| *c == key.client)
            && self.state.is_none_or(|s| s == state.state)
            && self.reach.reaches(key, state)
    }
}

/// One page of connections, and where the next starts (`None`: the last).
#[derive(Debug, Clone, Default)]
pub struct ConnectionPage {
    pub connections: Vec<(ConnectionKey, ConnectionState)>,
    pub next: Option<ConnectionKey>,
}

impl ConnectionPage {
    /// A page from connections in order, one more than the limit asked
    /// when there are more.
    pub fn of(mut found: Vec<(ConnectionKey, ConnectionState)>, limit: usize) -> ConnectionPage {
        let next = if found.len() > limit {
            found.truncate(limit);
            found.last().map(|(key, _)| key.clone())
        } else {
            None
        };
        ConnectionPage {
            connections: found,
            next,
        }
    }
}

/// A cursor as callers see it: opaque (base64url of `CLIENT/ID`).
pub fn encode_cursor(key: &ConnectionKey) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{}/{}", key.client, key.connection_id))
}

/// The connection a cursor names, or `None` for one svc did not make.
pub fn decode_cursor(cursor: &str) -> Option<ConnectionKey> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (client, id) = text.split_once('/')?;
    if invalid_id(id).is_some() || client.is_empty() {
        return None;
    }
    Some(ConnectionKey {
        client: client.to_string(),
        connection_id: id.to_string(),
    })
}

/// A connected account brought in from elsewhere (`svc connection
/// import`): its id, tags, and the values of the client's secrets.
pub struct Imported {
    pub connection_id: String,
    pub tags: BTreeMap<String, String>,
    /// Secret, value, expiry.
    pub values: Vec<(String, SecretValue, Option<DateTime<Utc>>)>,
}

impl std::fmt::Debug for Imported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Imported({}, {} values)",
            self.connection_id,
            self.values.len()
        )
    }
}

/// The state an imported account starts in: healthy since now.
pub fn imported_state(tags: &BTreeMap<String, String>, at: DateTime<Utc>) -> ConnectionState {
    ConnectionState {
        state: Health::Healthy,
        since: Some(at),
        tags: tags.clone(),
        ..ConnectionState::default()
    }
}

/// The values of per-account secrets, one document per connection.
#[async_trait]
pub trait AccountSecrets: Send + Sync {
    /// A connection's values: an empty document when it has none.
    async fn document(
        &self,
        identities: &Identities,
        key: &ConnectionKey,
    ) -> Result<Arc<Document>, Error>;

    /// A connected account's state and values together (`None`: no such
    /// account): what a read of its token needs, in one statement on a
    /// database.
    async fn account(
        &self,
        identities: &Identities,
        key: &ConnectionKey,
    ) -> Result<Option<(ConnectionState, Arc<Document>)>, Error>;

    /// Applies changes to one connection's values in one atomic, durable
    /// write, committed only while every lock in `locks` is held
    /// ([`Error::LockLost`] otherwise).
    async fn apply(
        &self,
        identities: &Identities,
        key: &ConnectionKey,
        changes: Vec<Change>,
        by: &str,
        at: DateTime<Utc>,
        locks: &[&dyn Held],
    ) -> Result<Vec<Changed>, Error>;

    /// Forgets every value of a connection.
    async fn forget(&self, identities: &Identities, key: &ConnectionKey) -> Result<(), Error>;

    /// Creates connected accounts of `client` with their values, healthy,
    /// without events; an id that exists is left as it is. Says, for each,
    /// whether it was created. Values are written before the account, so
    /// an interrupted import leaves no account without its tokens.
    async fn import(
        &self,
        identities: &Identities,
        client: &str,
        accounts: &[Imported],
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<bool>, Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_tags_and_cursors() {
        assert_eq!(invalid_id("acme-42@eu:1.x_y"), None);
        assert!(invalid_id("").is_some());
        assert!(invalid_id(&"a".repeat(129)).is_some());
        assert!(invalid_id("a/b").is_some());
        assert!(invalid_id("a b").is_some());
        assert_eq!(parse_tag("plan=pro"), Ok(("plan".into(), "pro".into())));
        assert!(parse_tag("plan").is_err());
        assert!(parse_tag("9x=1").is_err());
        assert!(parse_tag("x=").is_err());
        let many: BTreeMap<String, String> =
            (0..17).map(|i| (format!("k{i}"), "v".into())).collect();
        assert!(invalid_tags(&many).is_some());
        let key = ConnectionKey {
            client: "hubspot_app".into(),
            connection_id: "acme-42@x".into(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&key)), Some(key));
        assert_eq!(decode_cursor("!!"), None);
    }

    #[test]
    fn a_reach_needs_the_prefix_and_every_tag() {
        let key = |id: &str| ConnectionKey {
            client: "c".into(),
            connection_id: id.into(),
        };
        let state = |tags: &[(&str, &str)]| ConnectionState {
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..ConnectionState::default()
        };
        let reach = Reach {
            prefix: Some("acme-".into()),
            tags: BTreeMap::from([("team".into(), "blue".into())]),
        };
        assert!(reach.reaches(&key("acme-1"), &state(&[("team", "blue"), ("x", "y")])));
        assert!(!reach.reaches(&key("acme-1"), &state(&[("team", "red")])));
        assert!(!reach.reaches(&key("other"), &state(&[("team", "blue")])));
        assert!(Reach::default().reaches(&key("other"), &state(&[])));
    }

    #[test]
    fn a_page_says_where_the_next_starts() {
        let found: Vec<_> = (0..3)
            .map(|i| {
                (
                    ConnectionKey {
                        client: "c".into(),
                        connection_id: format!("a{i}"),
                    },
                    ConnectionState::default(),
                )
            })
            .collect();
        let page = ConnectionPage::of(found.clone(), 2);
        assert_eq!(page.connections.len(), 2);
        assert_eq!(page.next.unwrap().connection_id, "a1");
        assert!(ConnectionPage::of(found, 3).next.is_none());
    }
}
