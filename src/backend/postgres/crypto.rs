//! Envelope encryption of the values the database holds.
//!
//! Each environment has data keys (32 random bytes); the one named by
//! `current_key` seals new values with ChaCha20-Poly1305 under a random
//! nonce, bound to the environment, secret name and version (so a sealed
//! value cannot be moved to another row). Each data key is stored wrapped
//! with age to every recipient of the environment, so only an identity
//! that opens the files backend's store opens these. Removing a recipient
//! makes a new data key: what is written after, that key cannot read.

use std::io::{Read, Write};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use zeroize::Zeroizing;

use crate::secrets::keys::RecipientsFile;
use crate::secrets::{Error, Identities};

/// A data key, in the clear only in memory.
pub type DataKey = Zeroizing<[u8; 32]>;

/// A fresh data key from the operating system's randomness.
pub fn new_key() -> Result<DataKey, Error> {
    let mut key = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut *key)
        .map_err(|e| Error::Invalid(format!("no randomness from the operating system: {e}")))?;
    Ok(key)
}

/// The recipients of a list's text, as a recipients file reads them.
fn recipients(lines: &str) -> Result<RecipientsFile, Error> {
    let file = RecipientsFile {
        path: "the environment's recipients".into(),
        lines: lines.lines().map(str::to_owned).collect(),
    };
    file.recipients()?;
    Ok(file)
}

/// Encrypts bytes with age to the recipients of a list.
pub fn age_encrypt(plaintext: &[u8], recipients_text: &str) -> Result<Vec<u8>, Error> {
    let file = recipients(recipients_text)?;
    let keys = file.recipients()?;
    let encryptor = age::Encryptor::with_recipients(keys.iter().map(|(_, r)| r.as_dyn()))
        .map_err(|e| Error::Invalid(format!("cannot encrypt to these recipients: {e}")))?;
    let mut out = Vec::new();
    let mut writer = encryptor
        .wrap_output(&mut out)
        .map_err(|e| Error::Invalid(format!("cannot encrypt: {e}")))?;
    writer
        .write_all(plaintext)
        .and_then(|()| writer.finish().map(drop))
        .map_err(|e| Error::Invalid(format!("cannot encrypt: {e}")))?;
    Ok(out)
}

/// Decrypts an age file with the identities given.
pub fn age_decrypt(
    ciphertext: &[u8],
    identities: &Identities,
    what: &str,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let source = std::path::PathBuf::from(what);
    let decryptor = age::Decryptor::new(ciphertext).map_err(|e| Error::Corrupted {
        path: source.clone(),
        problem: e.to_string(),
    })?;
    let mut reader = decryptor.decrypt(identities.iter()).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys => Error::WrongIdentity {
            path: source.clone(),
            identities: identities.describe_files(),
        },
        other => Error::Corrupted {
            path: source.clone(),
            problem: other.to_string(),
        },
    })?;
    let mut plaintext = Zeroizing::new(Vec::new());
    reader
        .read_to_end(&mut plaintext)
        .map_err(|_| Error::Corrupted {
            path: source,
            problem: "it fails authentication: truncated or modified".into(),
        })?;
    Ok(plaintext)
}

/// A data key wrapped for the recipients of a list.
pub fn wrap(key: &DataKey, recipients_text: &str) -> Result<Vec<u8>, Error> {
    age_encrypt(&key[..], recipients_text)
}

/// A wrapped data key opened with the identities given.
pub fn unwrap(wrapped: &[u8], identities: &Identities, env: &str) -> Result<DataKey, Error> {
    let plaintext = age_decrypt(wrapped, identities, &format!("the data key of `{env}`"))?;
    let bytes: [u8; 32] = plaintext
        .as_slice()
        .try_into()
        .map_err(|_| Error::Corrupted {
            path: format!("the data key of `{env}`").into(),
            problem: "it is not 32 bytes".into(),
        })?;
    Ok(Zeroizing::new(bytes))
}

/// What a sealed value is bound to.
fn binding(env: &str, name: &str, version: i64) -> Vec<u8> {
    format!("svc/1\0{env}\0{name}\0{version}").into_bytes()
}

/// Seals a value: nonce, then ciphertext and tag.
pub fn seal(
    key: &DataKey,
    env: &str,
    name: &str,
    version: i64,
    value: &[u8],
) -> Result<Vec<u8>, Error> {
    let cipher = ChaCha20Poly1305::new((&key[..]).into());
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce)
        .map_err(|e| Error::Invalid(format!("no randomness from the operating system: {e}")))?;
    let aad = binding(env, name, version);
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: value,
                aad: &aad,
            },
        )
        .map_err(|_| Error::Invalid("cannot seal a value".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Opens a sealed value.
pub fn open(
    key: &DataKey,
    env: &str,
    name: &str,
    version: i64,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let damaged = || Error::Corrupted {
        path: format!("secret `{name}` (version {version}) of `{env}` in the database").into(),
        problem: "its value fails authentication: modified, or moved from another row".into(),
    };
    if sealed.len() < 12 + 16 {
        return Err(damaged());
    }
    let cipher = ChaCha20Poly1305::new((&key[..]).into());
    let aad = binding(env, name, version);
    cipher
        .decrypt(
            Nonce::from_slice(&sealed[..12]),
            Payload {
                msg: &sealed[12..],
                aad: &aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| damaged())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_in_its_own_row() {
        let key = new_key().unwrap();
        let sealed = seal(&key, "dev", "TOKEN", 3, b"s3cret").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"s3cret"));
        assert_eq!(
            &**open(&key, "dev", "TOKEN", 3, &sealed).unwrap(),
            b"s3cret"
        );
        assert!(open(&key, "dev", "TOKEN", 4, &sealed).is_err());
        assert!(open(&key, "dev", "OTHER", 3, &sealed).is_err());
        assert!(open(&key, "prod", "TOKEN", 3, &sealed).is_err());
        let other = new_key().unwrap();
        assert!(open(&other, "dev", "TOKEN", 3, &sealed).is_err());
    }
}
