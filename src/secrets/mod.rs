//! Secrets: one age-encrypted JSON document per environment.
//!
//! `secrets/ENV.age` holds the values, encrypted to the public keys listed
//! in `secrets/ENV.recipients`. Writers take a cross-process lock, re-read
//! the store inside it, and replace the file atomically, so concurrent
//! writers never lose each other's updates and a crash never leaves a
//! broken store. Values live in zeroizing types and no error, log or
//! `Debug` output ever contains one.

pub mod age_file;
pub mod api_keys;
pub mod atomic;
pub mod document;
pub mod journal;
pub mod keys;
pub mod timestamp;
pub mod value;

use std::path::{Path, PathBuf};

pub use document::{Document, Entry, NewValue};
pub use keys::{Identities, Recipient, RecipientsFile};
pub use value::SecretValue;

/// Everything that can go wrong with a store. No variant carries a value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no identity to decrypt the secret store")]
    NoIdentity {
        /// Where svc looked, one line each.
        tried: Vec<String>,
        /// The public keys the store is encrypted to, if it exists.
        recipients: Vec<String>,
    },
    #[error("cannot read identity file `{}`: {source}", path.display())]
    IdentityUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("identity file `{}` cannot be used: {problem}", path.display())]
    IdentityInvalid { path: PathBuf, problem: String },
    #[error("none of the identities given ({identities}) can decrypt `{}`", path.display())]
    WrongIdentity { path: PathBuf, identities: String },
    #[error("`{}` is damaged and cannot be decrypted ({problem})", path.display())]
    Corrupted { path: PathBuf, problem: String },
    #[error("`{}` does not hold a valid svc secret document: {problem}", path.display())]
    InvalidDocument { path: PathBuf, problem: String },
    #[error("there is no secret store for environment `{env}` (`{}`)", path.display())]
    StoreMissing { env: String, path: PathBuf },
    #[error("the secret store for environment `{env}` already exists (`{}`)", path.display())]
    StoreExists { env: String, path: PathBuf },
    #[error("`{name}` is not a valid environment name")]
    InvalidEnvironment { name: String },
    #[error("recipients file `{}` does not exist", path.display())]
    RecipientsMissing { path: PathBuf },
    #[error("recipients file `{}`, line {line}: {problem}", path.display())]
    RecipientInvalid {
        path: PathBuf,
        line: usize,
        problem: String,
    },
    #[error("recipients file `{}` lists no public key", path.display())]
    NoRecipients { path: PathBuf },
    #[error("no secret `{name}` in environment `{env}`")]
    SecretMissing { name: String, env: String },
    #[error("timed out after {seconds}s waiting for another svc process to finish writing `{}`", path.display())]
    LockTimeout { path: PathBuf, seconds: u64 },
    #[error("`{}` is a symbolic link; svc does not read or write a store file through a link", path.display())]
    Symlink { path: PathBuf },
    #[error("cannot {action} `{}`: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("`{name}` changed meanwhile: version {found}, not the {expected} expected")]
    Conflict {
        name: String,
        expected: u64,
        found: u64,
    },
    #[error("the backend is unavailable: {problem}")]
    Unavailable {
        problem: String,
        /// How to fix the cause the server named (a database that does
        /// not exist, a password refused), when it named one.
        fix: Option<String>,
    },
    #[error("the run lost its lock before its write could be committed; nothing was written")]
    LockLost,
    #[error("the read cannot be recorded in the audit log, so no value is given: {problem}")]
    AuditUnavailable { problem: String },
}

impl Error {
    /// An I/O failure; a refusal to write through a symbolic link becomes
    /// [`Error::Symlink`].
    pub fn io(action: &'static str, path: &Path, source: std::io::Error) -> Error {
        if let Some(refused) = source
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<atomic::SymlinkRefused>())
        {
            return Error::Symlink {
                path: refused.path.clone(),
            };
        }
        Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// A stable code, as diagnostics have.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NoIdentity { .. } => "svc::store::no_identity",
            Error::IdentityUnreadable { .. } | Error::IdentityInvalid { .. } => {
                "svc::store::bad_identity"
            }
            Error::WrongIdentity { .. } => "svc::store::wrong_identity",
            Error::Corrupted { .. } => "svc::store::corrupted",
            Error::InvalidDocument { .. } => "svc::store::invalid_document",
            Error::StoreMissing { .. } => "svc::store::missing",
            Error::StoreExists { .. } => "svc::store::exists",
            Error::InvalidEnvironment { .. } => "svc::store::invalid_environment",
            Error::RecipientsMissing { .. }
            | Error::RecipientInvalid { .. }
            | Error::NoRecipients { .. } => "svc::store::bad_recipients",
            Error::SecretMissing { .. } => "svc::store::no_such_secret",
            Error::LockTimeout { .. } => "svc::store::lock_timeout",
            Error::Symlink { .. } => "svc::store::symlink",
            Error::Io { .. } => "svc::store::io",
            Error::Invalid(_) => "svc::store::invalid",
            Error::Conflict { .. } => "svc::store::conflict",
            Error::Unavailable { .. } => "svc::backend::unavailable",
            Error::LockLost => "svc::run::lock_lost",
            Error::AuditUnavailable { .. } => "svc::audit::unavailable",
        }
    }

    /// How to fix it.
    pub fn help(&self) -> Option<String> {
        Some(match self {
            Error::NoIdentity { tried, recipients } => {
                let mut help = String::new();
                if !tried.is_empty() {
                    help.push_str(&format!("svc looked for one in: {}; ", tried.join("; ")));
                }
                if recipients.is_empty() {
                    help.push_str(
                        "pass `--identity FILE` or set `SVC_IDENTITY` to an age identity file (`svc init` \
                         or `svc secret keygen -o ~/.config/svc/identity.txt` makes one) or an \
                         unencrypted OpenSSH private key",
                    );
                } else {
                    help.push_str(&format!(
                        "the store is encrypted to {}: pass the identity of one of them with `--identity FILE`, \
                         `SVC_IDENTITY` or `identity` in svc.toml (`age-keygen -y FILE` prints a file's public key); \
                         a new key cannot open it",
                        recipients
                            .iter()
                            .map(|r| format!("`{r}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                help
            }
            Error::IdentityUnreadable { .. } => "check the path given to `--identity` or `SVC_IDENTITY`".into(),
            Error::IdentityInvalid { .. } => {
                "an identity file is what `age-keygen -o FILE` writes, or an OpenSSH private key".into()
            }
            Error::WrongIdentity { path, .. } => {
                let recipients_path = path.with_extension("recipients");
                let listed = keys::store_recipients(&recipients_path);
                let keys = if listed.is_empty() {
                    format!("the keys in `{}`", recipients_path.display())
                } else {
                    listed
                        .iter()
                        .map(|r| format!("`{r}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                format!(
                    "the store is encrypted to {keys}; use the identity of one of them (`age-keygen -y FILE` \
                     prints a file's public key), or ask someone who can decrypt it to add yours with \
                     `svc secret recipients add` (if the file was damaged, restore it from version control)"
                )
            }
            Error::Corrupted { .. } => "restore the file from version control or a backup; svc never \
                                        writes over a store it cannot decrypt"
                .into(),
            Error::InvalidDocument { .. } => "decrypt it with `age -d` and fix the JSON; see docs/secrets.md".into(),
            Error::StoreMissing { env, .. } => {
                format!(
                    "create it with `svc secret init --env {env}` (encrypted to your identity; \
                     `--recipient KEY` names others)"
                )
            }
            Error::StoreExists { .. } => "use `svc secret recipients add` to change who can decrypt it".into(),
            Error::InvalidEnvironment { .. } => {
                "environment names are letters, digits, `-` and `_`, such as `dev` or `prod`".into()
            }
            Error::RecipientsMissing { path } => format!(
                "write the public keys (one per line, `age1...` or `ssh-ed25519 ...`) to `{}`",
                path.display()
            ),
            Error::RecipientInvalid { .. } | Error::NoRecipients { .. } => {
                "a recipients file has one public key per line; lines starting with `#` are comments".into()
            }
            Error::SecretMissing { env, name } => {
                format!("`svc secret list --env {env}` shows the secrets; set it with `svc secret set {name} --env {env}`")
            }
            Error::LockTimeout { .. } => "another `svc` is still writing; try again, or look for a stuck process".into(),
            Error::Conflict { .. } => "another writer changed it first; read it again and retry".into(),
            Error::Unavailable { fix: Some(fix), .. } => fix.clone(),
            Error::Unavailable { fix: None, .. } => {
                "check that PostgreSQL runs at the URL's host and port, and that its user, password \
                 and database name are right"
                    .into()
            }
            Error::AuditUnavailable { .. } => "every read of a secret is recorded first: free space where \
                the audit log is written (LOG_DIR), or bring the database back, and read again"
                .into(),
            Error::LockLost => "the database ended the lock's session (a restart, a fail-over, or \
                                an administrator); the answer is kept in the recovery journal, and \
                                the next run of the endpoint applies it before it sends anything"
                .into(),
            Error::Symlink { path } => format!(
                "svc replaces store files by renaming a new file over them, which would turn the link \
                 into a regular file and leave its target stale: move the real file to `{}` \
                 (or point `--secrets-dir` at the directory that holds it)",
                path.display()
            ),
            _ => return None,
        })
    }
}

/// Environment names become file names: keep them to a safe alphabet.
pub fn validate_environment(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidEnvironment {
            name: name.to_string(),
        })
    }
}
