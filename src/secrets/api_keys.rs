//! API keys of `svc serve`: `svc_<id>_<secret>`, of which only a SHA-256 of
//! the secret part is stored, in the environment's encrypted store.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use std::collections::BTreeMap;

#[cfg(test)]
use crate::secrets::Document;
use crate::secrets::document::ApiKey;

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A key just made: the token is shown once and never stored.
pub struct NewKey {
    pub id: String,
    pub token: zeroize::Zeroizing<String>,
    pub record: ApiKey,
}

/// Makes a key for an identity, from the operating system's randomness.
pub fn generate(
    identity: &str,
    name: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<NewKey, getrandom::Error> {
    let mut id_bytes = [0u8; 6];
    getrandom::fill(&mut id_bytes)?;
    let id: String = id_bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut secret_bytes = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut *secret_bytes)?;
    // 62 letters; the small bias of `% 62` on random bytes costs < 0.1 bit a character.
    let secret: zeroize::Zeroizing<String> = zeroize::Zeroizing::new(
        secret_bytes
            .iter()
            .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
            .collect(),
    );
    let token = zeroize::Zeroizing::new(format!("svc_{id}_{}", secret.as_str()));
    Ok(NewKey {
        id,
        record: ApiKey {
            identity: identity.to_string(),
            name,
            hash: hash(&secret),
            created_at: now,
            expires_at,
            revoked_at: None,
            connection_prefix: None,
            connection_tags: Default::default(),
        },
        token,
    })
}

pub fn hash(secret: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(secret.as_bytes());
    let mut out = String::with_capacity(digest.len() * 2);
    for byte in digest.iter() {
        out.push(HEX[usize::from(byte >> 4)] as char);
        out.push(HEX[usize::from(byte & 0xf)] as char);
    }
    out
}

/// Why a presented key does not authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Missing,
    Malformed,
    Unknown,
    Revoked,
    Expired,
}

impl Rejection {
    pub fn message(self) -> &'static str {
        match self {
            Rejection::Missing => "an `Authorization: Bearer KEY` header is required",
            Rejection::Malformed => "the key is not an svc key",
            Rejection::Unknown => "unknown key",
            Rejection::Revoked => "the key was revoked",
            Rejection::Expired => "the key has expired",
        }
    }
}

/// The key's id and identity, if the token is a live key of the store.
pub fn verify<'d>(
    keys: &'d BTreeMap<String, ApiKey>,
    token: &str,
    now: DateTime<Utc>,
) -> Result<(&'d str, &'d ApiKey), Rejection> {
    let rest = token.strip_prefix("svc_").ok_or(Rejection::Malformed)?;
    let (id, secret) = rest.split_once('_').ok_or(Rejection::Malformed)?;
    let (id, key) = keys.get_key_value(id).ok_or(Rejection::Unknown)?;
    if !constant_time_eq(hash(secret).as_bytes(), key.hash.as_bytes()) {
        return Err(Rejection::Unknown);
    }
    if key.revoked_at.is_some() {
        return Err(Rejection::Revoked);
    }
    if key.expires_at.is_some_and(|at| at <= now) {
        return Err(Rejection::Expired);
    }
    Ok((id.as_str(), key))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_verifies_until_revoked_or_expired() {
        let now = crate::secrets::document::now();
        let key = generate("nightly", Some("ci".into()), None, now).unwrap();
        assert!(key.token.starts_with(&format!("svc_{}_", key.id)));
        assert_eq!(key.token.len(), 4 + 12 + 1 + 32);
        let mut document = Document::new("dev");
        document.api_keys.insert(key.id.clone(), key.record.clone());
        let (id, record) = verify(&document.api_keys, &key.token, now).unwrap();
        assert_eq!((id, record.identity.as_str()), (key.id.as_str(), "nightly"));

        let wrong = format!("svc_{}_{}", key.id, "x".repeat(32));
        assert_eq!(
            verify(&document.api_keys, &wrong, now).unwrap_err(),
            Rejection::Unknown
        );
        assert_eq!(
            verify(&document.api_keys, "Bearer nope", now).unwrap_err(),
            Rejection::Malformed
        );

        document.api_keys.get_mut(&key.id).unwrap().expires_at = Some(now);
        assert_eq!(
            verify(&document.api_keys, &key.token, now).unwrap_err(),
            Rejection::Expired
        );
        document.api_keys.get_mut(&key.id).unwrap().revoked_at = Some(now);
        assert_eq!(
            verify(&document.api_keys, &key.token, now).unwrap_err(),
            Rejection::Revoked
        );
    }

    #[test]
    fn only_the_hash_is_kept() {
        let key = generate("nightly", None, None, crate::secrets::document::now()).unwrap();
        let stored = serde_json::to_string(&key.record).unwrap();
        let secret = key.token.rsplit('_').next().unwrap();
        assert!(!stored.contains(secret));
    }
}
