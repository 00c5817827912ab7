//! One environment's store: `DIR/ENV.age`, `DIR/ENV.recipients`, and the
//! lock file `DIR/.ENV.lock` that serialises its writers.

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::secrets::age_file::decrypt;
use crate::secrets::atomic::{self, Lock};
use crate::secrets::document::{self, Document};
use crate::secrets::keys::{Identities, RecipientsFile};
use crate::secrets::{Error, validate_environment};

/// How long a writer waits for another by default.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
    env: String,
    lock_timeout: Duration,
}

impl Store {
    pub fn new(dir: impl Into<PathBuf>, env: &str) -> Result<Store, Error> {
        validate_environment(env)?;
        Ok(Store {
            dir: dir.into(),
            env: env.to_string(),
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
        })
    }

    pub fn with_lock_timeout(mut self, timeout: Duration) -> Store {
        self.lock_timeout = timeout;
        self
    }

    pub fn env(&self) -> &str {
        &self.env
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(format!("{}.age", self.env))
    }

    pub fn recipients_path(&self) -> PathBuf {
        self.dir.join(format!("{}.recipients", self.env))
    }

    fn lock_path(&self) -> PathBuf {
        self.dir.join(format!(".{}.lock", self.env))
    }

    pub fn exists(&self) -> bool {
        self.path().exists()
    }

    /// Creates an empty store encrypted to `recipients` (the text of a
    /// recipients file). Fails if the store exists.
    pub fn init(&self, recipients: &str) -> Result<(), Error> {
        atomic::create_private_dir(&self.dir).map_err(|e| Error::io("create", &self.dir, e))?;
        let _lock = self.lock()?;
        if self.exists() {
            return Err(Error::StoreExists {
                env: self.env.clone(),
                path: self.path(),
            });
        }
        let file = RecipientsFile {
            path: self.recipients_path(),
            lines: recipients.lines().map(str::to_owned).collect(),
        };
        file.recipients()?;
        atomic::write_file(&file.path, file.text().as_bytes())
            .map_err(|e| Error::io("write", &file.path, e))?;
        self.write_locked(&Document::new(&self.env), &file)
    }

    /// Decrypts and parses the store.
    pub fn read(&self, identities: &Identities) -> Result<Document, Error> {
        let path = self.path();
        // A linked store is refused before it is used, not at the first
        // write: by then a run may have spent a one-time refresh token.
        atomic::refuse_symlink(&path).map_err(|e| Error::io("read", &path, e))?;
        let file = std::fs::File::open(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::StoreMissing {
                    env: self.env.clone(),
                    path: path.clone(),
                }
            } else {
                Error::io("read", &path, e)
            }
        })?;
        let size = file.metadata().map_or(0, |m| m.len() as usize);
        let plaintext = decrypt(
            &path,
            BufReader::with_capacity(64 * 1024, file),
            size,
            identities,
        )?;
        parse(&path, &plaintext, &self.env)
    }

    /// Changes the store: takes the lock, reads the current document inside
    /// it, applies `change`, and writes the result atomically. If `change`
    /// fails, nothing is written. Returns what `change` returned and the
    /// document as written (callers cache it: no copy of it is made).
    pub fn update<T>(
        &self,
        identities: &Identities,
        change: impl FnOnce(&mut Document) -> Result<T, Error>,
    ) -> Result<(T, Document), Error> {
        self.require()?;
        let _lock = self.lock()?;
        let mut document = self.read(identities)?;
        let result = change(&mut document)?;
        let recipients = RecipientsFile::read(&self.recipients_path())?;
        self.write_locked(&document, &recipients)?;
        Ok((result, document))
    }

    /// Changes the recipients file and re-encrypts the store to the new
    /// recipients, in one locked step.
    pub fn change_recipients<T>(
        &self,
        identities: &Identities,
        change: impl FnOnce(&mut RecipientsFile) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.require()?;
        let _lock = self.lock()?;
        let document = self.read(identities)?;
        let mut recipients = RecipientsFile::read(&self.recipients_path())?;
        let result = change(&mut recipients)?;
        recipients.recipients()?;
        // The store first: if writing the recipients file then fails, the
        // store is still readable by the new set, and the old file only
        // lists keys that can no longer decrypt it.
        self.write_locked(&document, &recipients)?;
        atomic::write_file(&recipients.path, recipients.text().as_bytes())
            .map_err(|e| Error::io("write", &recipients.path, e))?;
        Ok(result)
    }

    /// A store that was never made is missing, before its lock is asked
    /// for: the lock's directory may not exist either.
    fn require(&self) -> Result<(), Error> {
        if self.path().symlink_metadata().is_ok() {
            return Ok(());
        }
        Err(Error::StoreMissing {
            env: self.env.clone(),
            path: self.path(),
        })
    }

    fn lock(&self) -> Result<Lock, Error> {
        let path = self.lock_path();
        Lock::acquire(&path, self.lock_timeout)
            .map_err(|e| e.into_error(&path, &self.path(), self.lock_timeout))
    }

    fn write_locked(&self, document: &Document, recipients: &RecipientsFile) -> Result<(), Error> {
        let path = self.path();
        let keys = recipients.recipients()?;
        let encryptor = age::Encryptor::with_recipients(keys.iter().map(|(_, r)| r.as_dyn()))
            .map_err(|e| Error::Invalid(format!("cannot encrypt to these recipients: {e}")))?;
        atomic::remove_stale_temp_files(&path);
        // The JSON goes through the encryption into the temporary file: the
        // plaintext never exists whole in memory, and no large buffer is
        // built, zeroed and freed.
        atomic::write_file_with(&path, |file| {
            // serde writes many small pieces: batch them before age, which
            // encrypts whole 64 KiB chunks into the file.
            let mut writer =
                std::io::BufWriter::with_capacity(64 * 1024, encryptor.wrap_output(file)?);
            serde_json::to_writer(&mut writer, document).map_err(std::io::Error::other)?;
            writer.write_all(b"\n")?;
            writer.into_inner().map_err(|e| e.into_error())?.finish()?;
            Ok(())
        })
        .map_err(|e| Error::io("write", &path, e))
    }
}

fn parse(path: &Path, plaintext: &[u8], env: &str) -> Result<Document, Error> {
    let invalid = |problem: String| Error::InvalidDocument {
        path: path.to_path_buf(),
        problem,
    };
    let document: Document = serde_json::from_slice(plaintext).map_err(|e| {
        let at = format!("line {}, column {}", e.line(), e.column());
        match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                invalid(format!("the JSON is not valid at {at}"))
            }
            _ => invalid(format!("{} at {at}", without_quoted_text(&e.to_string()))),
        }
    })?;
    if document.format > document::FORMAT {
        return Err(invalid(format!(
            "it has format {}, written by a newer svc (this one reads format {})",
            document.format,
            document::FORMAT
        )));
    }
    if let Some(stored) = &document.environment
        && stored != env
    {
        return Err(invalid(format!(
            "it holds environment `{stored}`, not `{env}`; was it copied from another environment?"
        )));
    }
    Ok(document)
}

/// serde's messages may quote a value from the document (`invalid type:
/// string "abc", expected u64`): keep what kind of value it was and what
/// was expected, never the value, and drop serde's own position suffix.
fn without_quoted_text(message: &str) -> String {
    let message = message.split(" at line ").next().unwrap_or(message);
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let (found, expected) = rest
                .split_once(", expected ")
                .unwrap_or((rest, "something else"));
            let kind = found.split(['`', '"']).next().unwrap_or(found).trim();
            return format!("found {kind} where {expected} was expected");
        }
    }
    let mut out = String::new();
    let mut quoted = false;
    for c in message.chars() {
        if c == '"' {
            if !quoted {
                out.push_str("\"…\"");
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_text_is_removed_from_messages() {
        assert_eq!(
            without_quoted_text("invalid type: string \"s3cr3t\", expected u64 at line 3 column 9"),
            "found string where u64 was expected"
        );
        assert_eq!(
            without_quoted_text("invalid type: integer `12345`, expected a string"),
            "found integer where a string was expected"
        );
        assert_eq!(
            without_quoted_text("unknown field `valu`"),
            "unknown field `valu`"
        );
    }
}
