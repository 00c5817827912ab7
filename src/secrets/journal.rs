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

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::keys::{Identities, RecipientsFile};
use super::{Error, atomic};

/// Answers kept at most, per environment.
pub const MAX_ENTRIES: usize = 256;
/// Bytes of encrypted answers kept at most, per environment.
pub const MAX_BYTES: u64 = 64 * 1024 * 1024;
/// How long an answer is kept.
pub const MAX_AGE: chrono::TimeDelta = chrono::TimeDelta::days(30);

pub const FORMAT: u32 = 1;

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

/// Where an environment's journal lives under a state directory.
pub fn dir(state_dir: &Path, env: &str) -> PathBuf {
    state_dir.join(env).join("journal")
}

/// The journal of one environment.
#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
    recipients: PathBuf,
}

impl Journal {
    /// The journal in `dir`, encrypted to the keys of `recipients` (the
    /// store's recipients file).
    pub fn new(dir: impl Into<PathBuf>, recipients: impl Into<PathBuf>) -> Journal {
        Journal {
            dir: dir.into(),
            recipients: recipients.into(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Keeps an answer, durably, then drops what is past the bounds.
    /// Returns how many older answers the bounds dropped.
    pub fn record(&self, entry: &Entry) -> Result<usize, Error> {
        let recipients = RecipientsFile::read(&self.recipients)?;
        let keys = recipients.recipients()?;
        let encryptor = age::Encryptor::with_recipients(keys.iter().map(|(_, r)| r.as_dyn()))
            .map_err(|e| Error::Invalid(format!("cannot encrypt to these recipients: {e}")))?;
        atomic::create_private_dir(&self.dir).map_err(|e| Error::io("create", &self.dir, e))?;
        let name = format!("{}.age", entry_name(entry));
        let path = self.dir.join(name);
        let json = Zeroizing::new(
            serde_json::to_vec(entry)
                .map_err(|e| Error::Invalid(format!("cannot encode the answer: {e}")))?,
        );
        atomic::write_file_with(&path, |file| {
            let mut writer = encryptor.wrap_output(file)?;
            writer.write_all(&json)?;
            writer.finish()?;
            Ok(())
        })
        .map_err(|e| Error::io("write", &path, e))?;
        Ok(self.prune(Utc::now()))
    }

    /// Every kept answer, oldest first. A journal that does not exist is empty.
    pub fn list(&self) -> Result<Vec<Listed>, Error> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("read", &self.dir, e)),
        };
        let mut out: Vec<Listed> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| {
                let bytes = e.metadata().map_or(0, |m| m.len());
                let path = e.path();
                let name = path
                    .file_name()?
                    .to_str()?
                    .strip_suffix(".age")?
                    .to_string();
                Listed::parse_name(&name, path.to_string_lossy().into_owned(), bytes)
            })
            .collect();
        out.sort_by(|a, b| (&a.run_id, a.sequence).cmp(&(&b.run_id, b.sequence)));
        Ok(out)
    }

    /// Decrypts one kept answer.
    pub fn read(&self, listed: &Listed, identities: &Identities) -> Result<Entry, Error> {
        let path = Path::new(&listed.handle);
        let file = std::fs::File::open(path).map_err(|e| Error::io("read", path, e))?;
        let plaintext = super::store::decrypt(
            path,
            BufReader::new(file),
            listed.bytes as usize,
            identities,
        )?;
        parse_entry(path, &plaintext)
    }

    /// The answers of the latest run of `endpoint` that kept a successful
    /// one: the run `--replay` uses.
    pub fn latest_recoverable(&self, endpoint: &str) -> Result<Vec<Listed>, Error> {
        let listed = self.list()?;
        let run = listed
            .iter()
            .rev()
            .find(|l| l.endpoint == endpoint && l.is_success())
            .map(|l| l.run_id.clone());
        Ok(match run {
            Some(run) => listed.into_iter().filter(|l| l.run_id == run).collect(),
            None => Vec::new(),
        })
    }

    /// Forgets the answers of `run_id`, and those of earlier runs of the
    /// same endpoint: a run that succeeded made them obsolete.
    pub fn settled(&self, endpoint: &str, run_id: &str) -> Result<usize, Error> {
        let mut removed = 0;
        for listed in self.list()? {
            if listed.endpoint == endpoint && listed.run_id.as_str() <= run_id {
                remove(Path::new(&listed.handle))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Forgets the answers of one run.
    pub fn discard(&self, run_id: &str) -> Result<usize, Error> {
        let mut removed = 0;
        for listed in self.list()? {
            if listed.run_id == run_id {
                remove(Path::new(&listed.handle))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Drops answers past the bounds: too old, then the oldest beyond the
    /// count and size limits. Returns how many were dropped.
    fn prune(&self, now: DateTime<Utc>) -> usize {
        let Ok(listed) = self.list() else {
            return 0;
        };
        past_bounds(&listed, now)
            .into_iter()
            .filter(|l| remove(Path::new(&l.handle)).is_ok())
            .count()
    }
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

fn remove(path: &Path) -> Result<(), Error> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Journal, Identities) {
        let dir = tempfile::tempdir().unwrap();
        let identity = age::x25519::Identity::generate();
        let key_path = dir.path().join("key.txt");
        std::fs::write(
            &key_path,
            format!(
                "{}\n",
                age::secrecy::ExposeSecret::expose_secret(&identity.to_string())
            ),
        )
        .unwrap();
        let recipients = dir.path().join("dev.recipients");
        std::fs::write(&recipients, format!("{}\n", identity.to_public())).unwrap();
        let journal = Journal::new(dir.path().join("journal"), recipients);
        let identities = Identities::read(&[key_path]).unwrap();
        (dir, journal, identities)
    }

    fn entry(run_id: &str, sequence: u32, status: u16, body: &str) -> Entry {
        Entry {
            format: FORMAT,
            run_id: run_id.into(),
            endpoint: "api.refresh".into(),
            environment: "dev".into(),
            sequence,
            received_at: Utc::now(),
            method: "POST".into(),
            url: "http://127.0.0.1:1/token".into(),
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Zeroizing::new(body.as_bytes().to_vec()),
        }
    }

    fn run_id(millis: i64) -> String {
        format!("{millis:013x}{:08x}", 7)
    }

    #[test]
    fn keeps_answers_encrypted_and_reads_them_back() {
        let (_dir, journal, identities) = setup();
        let now = Utc::now().timestamp_millis();
        journal
            .record(&entry(
                &run_id(now),
                0,
                200,
                r#"{"refresh_token":"rt-new-Q9"}"#,
            ))
            .unwrap();
        let listed = journal.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (
                listed[0].sequence,
                listed[0].status,
                listed[0].endpoint.as_str()
            ),
            (0, 200, "api.refresh")
        );
        let on_disk = std::fs::read(&listed[0].handle).unwrap();
        assert!(!String::from_utf8_lossy(&on_disk).contains("rt-new-Q9"));
        let read = journal.read(&listed[0], &identities).unwrap();
        assert_eq!(&**read.body, br#"{"refresh_token":"rt-new-Q9"}"#);
        assert!(!format!("{read:?}").contains("rt-new-Q9"));
    }

    #[test]
    fn the_latest_run_with_a_success_is_the_one_to_replay() {
        let (_dir, journal, _) = setup();
        let now = Utc::now().timestamp_millis();
        let (first, second) = (run_id(now - 2000), run_id(now - 1000));
        journal.record(&entry(&first, 0, 200, "{}")).unwrap();
        journal.record(&entry(&second, 0, 400, "{}")).unwrap();
        let picked = journal.latest_recoverable("api.refresh").unwrap();
        assert_eq!(picked.len(), 1);
        assert_eq!(picked[0].run_id, first);
        // A later success makes every earlier answer obsolete.
        assert_eq!(journal.settled("api.refresh", &run_id(now)).unwrap(), 2);
        assert!(journal.list().unwrap().is_empty());
    }

    #[test]
    fn old_and_surplus_answers_are_dropped_oldest_first() {
        let (_dir, journal, _) = setup();
        let now = Utc::now();
        let old = now - MAX_AGE - chrono::TimeDelta::days(1);
        journal
            .record(&entry(&run_id(old.timestamp_millis()), 0, 200, "{}"))
            .unwrap();
        assert!(journal.list().unwrap().is_empty(), "expired answers go");
        for i in 0..(MAX_ENTRIES as i64 + 3) {
            journal
                .record(&entry(&run_id(now.timestamp_millis() + i), 0, 200, "{}"))
                .unwrap();
        }
        let listed = journal.list().unwrap();
        assert_eq!(listed.len(), MAX_ENTRIES);
        assert_eq!(listed[0].run_id, run_id(now.timestamp_millis() + 3));
    }
}
