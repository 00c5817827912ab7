//! The files backend's recovery journal: one age file per kept answer in
//! `STATE_DIR/ENV/journal/`, named `RUN_ID-SEQ-STATUS-ENDPOINT.age`.

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use zeroize::Zeroizing;

use crate::secrets::journal::{Entry, Listed, entry_name, parse_entry, past_bounds};
use crate::secrets::keys::{Identities, RecipientsFile};
use crate::secrets::{Error, atomic};

/// Where an environment's journal lives under a state directory.
pub fn dir(state_dir: &Path, env: &str) -> PathBuf {
    state_dir.join(env).join("journal")
}

/// The journal of one environment.
#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
    /// The store's recipients file; `None` for a spool, whose answers come
    /// sealed already.
    recipients: Option<PathBuf>,
}

impl Journal {
    /// The journal in `dir`, encrypted to the keys of `recipients` (the
    /// store's recipients file).
    pub fn new(dir: impl Into<PathBuf>, recipients: impl Into<PathBuf>) -> Journal {
        Journal {
            dir: dir.into(),
            recipients: Some(recipients.into()),
        }
    }

    /// Answers sealed elsewhere, kept in `dir` until they go on.
    pub fn sealed_in(dir: impl Into<PathBuf>) -> Journal {
        Journal {
            dir: dir.into(),
            recipients: None,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Keeps an answer, durably, then drops what is past the bounds.
    /// Returns how many older answers the bounds dropped.
    pub fn record(&self, entry: &Entry) -> Result<usize, Error> {
        let Some(recipients) = &self.recipients else {
            return Err(Error::Invalid(
                "this journal keeps sealed answers only (a bug in svc)".into(),
            ));
        };
        let recipients = RecipientsFile::read(recipients)?;
        let keys = recipients.recipients()?;
        let encryptor = age::Encryptor::with_recipients(keys.iter().map(|(_, r)| r.as_dyn()))
            .map_err(|e| Error::Invalid(format!("cannot encrypt to these recipients: {e}")))?;
        let json = Zeroizing::new(
            serde_json::to_vec(entry)
                .map_err(|e| Error::Invalid(format!("cannot encode the answer: {e}")))?,
        );
        self.write(&entry_name(entry), |file| {
            let mut writer = encryptor.wrap_output(file)?;
            writer.write_all(&json)?;
            writer.finish()?;
            Ok(())
        })?;
        Ok(self.prune(Utc::now()))
    }

    /// Keeps an answer that is sealed already (an age file's bytes) under
    /// its name, durably.
    pub fn keep_sealed(&self, name: &str, sealed: &[u8]) -> Result<(), Error> {
        self.write(name, |file| file.write_all(sealed))
    }

    /// The sealed bytes of a kept answer, as they are on disk.
    pub fn sealed(&self, listed: &Listed) -> Result<Vec<u8>, Error> {
        let path = Path::new(&listed.handle);
        crate::secrets::atomic::read_bounded(path, crate::secrets::journal::MAX_ENTRY_BYTES)
            .map_err(|e| Error::io("read", path, e))
    }

    /// Forgets one kept answer.
    pub fn forget(&self, listed: &Listed) -> Result<(), Error> {
        remove(Path::new(&listed.handle))
    }

    fn write(
        &self,
        name: &str,
        fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
    ) -> Result<(), Error> {
        atomic::create_private_dir(&self.dir).map_err(|e| Error::io("create", &self.dir, e))?;
        let path = self.dir.join(format!("{name}.age"));
        atomic::write_file_with(&path, fill).map_err(|e| Error::io("write", &path, e))
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
        let plaintext = crate::secrets::age_file::decrypt(
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
    use crate::secrets::journal::{FORMAT, MAX_AGE, MAX_ENTRIES};

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
            identity: "nightly".into(),
            based_on: Default::default(),
            params: Default::default(),
            answer_by: None,
            rotating: true,
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
