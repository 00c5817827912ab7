//! Keys: the identities that decrypt a store and the recipients it is
//! encrypted to, in the file formats of `age` and `age-keygen`.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::Error;

/// A recipient: a public key a store is encrypted to.
#[derive(Clone)]
pub enum Recipient {
    X25519(age::x25519::Recipient),
    Ssh(age::ssh::Recipient),
}

impl Recipient {
    /// Parses one public key as `age` writes it: `age1...`, `ssh-ed25519 ...`
    /// or `ssh-rsa ...`.
    pub fn parse(text: &str) -> Result<Recipient, String> {
        let text = text.trim();
        if text.starts_with("age1") {
            return age::x25519::Recipient::from_str(text)
                .map(Recipient::X25519)
                .map_err(|e| format!("not a valid age public key: {e}"));
        }
        if text.starts_with("ssh-") {
            return age::ssh::Recipient::from_str(text)
                .map(Recipient::Ssh)
                .map_err(|_| {
                    "not a supported SSH public key (ssh-ed25519 or ssh-rsa)".to_string()
                });
        }
        if text.starts_with("AGE-SECRET-KEY-") {
            return Err(
                "this is a private key; give its public key (`age-keygen -y KEY_FILE`)".to_string(),
            );
        }
        Err("not a public key: expected `age1...`, `ssh-ed25519 ...` or `ssh-rsa ...`".to_string())
    }

    pub fn as_dyn(&self) -> &dyn age::Recipient {
        match self {
            Recipient::X25519(r) => r,
            Recipient::Ssh(r) => r,
        }
    }
}

/// A recipients file: one public key per line, `#` comments, as age's `-R`.
/// The lines are kept as written so that editing the file keeps comments.
pub struct RecipientsFile {
    pub path: PathBuf,
    pub lines: Vec<String>,
}

impl RecipientsFile {
    pub fn read(path: &Path) -> Result<RecipientsFile, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                Error::RecipientsMissing {
                    path: path.to_path_buf(),
                }
            } else {
                Error::io("read", path, source)
            }
        })?;
        let file = RecipientsFile {
            path: path.to_path_buf(),
            lines: text.lines().map(str::to_owned).collect(),
        };
        file.recipients()?;
        Ok(file)
    }

    /// The keys of the file; every non-comment line must be one.
    pub fn recipients(&self) -> Result<Vec<(String, Recipient)>, Error> {
        let mut out = Vec::new();
        for (number, line) in self.lines.iter().enumerate() {
            let key = line.trim();
            if key.is_empty() || key.starts_with('#') {
                continue;
            }
            let recipient = Recipient::parse(key).map_err(|problem| Error::RecipientInvalid {
                path: self.path.clone(),
                line: number + 1,
                problem,
            })?;
            out.push((key.to_string(), recipient));
        }
        if out.is_empty() {
            return Err(Error::NoRecipients {
                path: self.path.clone(),
            });
        }
        Ok(out)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.lines.iter().any(|l| same_key(l, key))
    }

    pub fn text(&self) -> String {
        let mut text = self.lines.join("\n");
        text.push('\n');
        text
    }
}

/// Whether a recipients line holds this key. SSH keys are compared without
/// their trailing comment.
pub fn same_key(line: &str, key: &str) -> bool {
    let essential = |s: &str| s.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    let line = line.trim();
    !line.starts_with('#') && !line.is_empty() && essential(line) == essential(key)
}

/// The identities a command decrypts with, and a short name for them.
#[derive(Clone)]
pub struct Identities {
    /// Shared: a copy for a blocking task or another thread is cheap.
    keys: std::sync::Arc<Vec<Box<dyn age::Identity + Send + Sync>>>,
    /// Who writes, for `updated_by`: the public key when it is known.
    pub label: String,
    pub files: Vec<PathBuf>,
    /// The public key of each identity (`age1...`), or `ssh key FILE` for
    /// an SSH key, in the order they were read.
    public: Vec<String>,
}

impl Identities {
    /// Reads identity files: age identity files as `age-keygen` writes them,
    /// or unencrypted OpenSSH private keys.
    pub fn read(paths: &[PathBuf]) -> Result<Identities, Error> {
        let mut keys: Vec<Box<dyn age::Identity + Send + Sync>> = Vec::new();
        let mut labels = Vec::new();
        let mut public = Vec::new();
        for path in paths {
            let bytes = zeroize::Zeroizing::new(std::fs::read(path).map_err(|source| {
                Error::IdentityUnreadable {
                    path: path.clone(),
                    source,
                }
            })?);
            let is_ssh = bytes.starts_with(b"-----BEGIN");
            if is_ssh {
                let identity = age::ssh::Identity::from_buffer(BufReader::new(&bytes[..]), None)
                    .map_err(|_| Error::IdentityInvalid {
                        path: path.clone(),
                        problem: "not an OpenSSH private key svc can read (ed25519 or RSA)".into(),
                    })?;
                match identity {
                    age::ssh::Identity::Unencrypted(_) => {}
                    age::ssh::Identity::Encrypted(_) => {
                        return Err(Error::IdentityInvalid {
                            path: path.clone(),
                            problem: "the SSH key is protected by a passphrase, which svc cannot ask for; \
                                      use an age identity (`age-keygen -o key.txt`)"
                                .into(),
                        });
                    }
                    age::ssh::Identity::Unsupported(_) => {
                        return Err(Error::IdentityInvalid {
                            path: path.clone(),
                            problem: "this kind of SSH key is not supported; use ed25519 or RSA"
                                .into(),
                        });
                    }
                }
                labels.push(format!("ssh key {}", file_name(path)));
                public.push(format!("ssh key {}", file_name(path)));
                keys.push(Box::new(identity));
                continue;
            }
            let text = std::str::from_utf8(&bytes).map_err(|_| Error::IdentityInvalid {
                path: path.clone(),
                problem: "not a text file".into(),
            })?;
            let mut found = 0;
            for (number, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let identity =
                    age::x25519::Identity::from_str(line).map_err(|_| Error::IdentityInvalid {
                        path: path.clone(),
                        // Never the line itself: it may be a damaged key.
                        problem: format!(
                            "line {} is not an age identity (AGE-SECRET-KEY-1...)",
                            number + 1
                        ),
                    })?;
                labels.push(short_key(&identity.to_public().to_string()));
                public.push(identity.to_public().to_string());
                keys.push(Box::new(identity));
                found += 1;
            }
            if found == 0 {
                return Err(Error::IdentityInvalid {
                    path: path.clone(),
                    problem: "the file holds no identity".into(),
                });
            }
        }
        if keys.is_empty() {
            return Err(Error::NoIdentity {
                tried: Vec::new(),
                recipients: Vec::new(),
            });
        }
        let user = std::env::var("USER").ok().filter(|u| !u.is_empty());
        let keys_label = labels.first().cloned().unwrap_or_default();
        let label = match user {
            Some(user) => format!("{user} ({keys_label})"),
            None => keys_label,
        };
        Ok(Identities {
            keys: std::sync::Arc::new(keys),
            label,
            files: paths.to_vec(),
            public,
        })
    }

    /// The public key of each identity (`ssh key FILE` for an SSH key).
    pub fn public_keys(&self) -> &[String] {
        &self.public
    }

    pub fn iter(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.keys.iter().map(|k| k.as_ref() as &dyn age::Identity)
    }

    /// The identity files, for messages: `key.txt, other.txt`.
    pub fn describe_files(&self) -> String {
        self.files
            .iter()
            .map(|p| format!("`{}`", p.display()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Writes a new X25519 identity as `age-keygen` does (mode 0600, never
/// over an existing file) and returns its public key.
pub fn write_new_identity(path: &Path) -> Result<String, Error> {
    use age::secrecy::ExposeSecret;
    use std::io::Write;
    let identity = age::x25519::Identity::generate();
    let public = identity.to_public().to_string();
    let text = zeroize::Zeroizing::new(format!(
        "# created: {}\n# public key: {public}\n{}\n",
        super::document::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        identity.to_string().expose_secret()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| Error::io("create", path, e))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io("write", path, e))?;
    Ok(public)
}

/// `age1abcdefgh…wxyz`: enough to tell keys apart in a listing.
pub fn short_key(key: &str) -> String {
    if key.len() <= 20 {
        return key.to_string();
    }
    format!("{}…{}", &key[..12], &key[key.len() - 6..])
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The identity files named by `--identity` or, failing that, `SVC_IDENTITY`
/// (several paths separated by `:`).
pub fn identity_paths(flags: &[PathBuf]) -> Vec<PathBuf> {
    if !flags.is_empty() {
        return flags.to_vec();
    }
    match std::env::var_os("SVC_IDENTITY") {
        Some(value) => std::env::split_paths(&value)
            .filter(|p| !p.as_os_str().is_empty())
            .collect(),
        None => Vec::new(),
    }
}

/// Where identities may come from, besides `SVC_IDENTITY` and the
/// user's default file.
pub struct IdentitySources<'a> {
    /// `--identity FILE`, repeatable.
    pub flags: &'a [PathBuf],
    /// The project file's `identity` for the environment.
    pub project: &'a [PathBuf],
    /// The project file, to name it in messages.
    pub project_file: Option<&'a Path>,
}

/// The identity files to decrypt with, from the first source that has
/// any: `--identity`, `SVC_IDENTITY`, the project file, then the user's
/// `$XDG_CONFIG_HOME/svc/identity.txt` (the one `svc init` makes) when it
/// exists. With none, what was tried, one line each.
pub fn find_identities(sources: &IdentitySources<'_>) -> Result<FoundIdentities, Vec<String>> {
    let found = |paths: Vec<PathBuf>, source: &'static str| Ok(FoundIdentities { paths, source });
    if !sources.flags.is_empty() {
        return found(sources.flags.to_vec(), "--identity");
    }
    let mut tried = vec!["`--identity FILE`: not given".to_string()];
    let from_env = identity_paths(&[]);
    if !from_env.is_empty() {
        return found(from_env, "SVC_IDENTITY");
    }
    tried.push("SVC_IDENTITY: not set".into());
    if !sources.project.is_empty() {
        return found(sources.project.to_vec(), "`identity` in svc.toml");
    }
    tried.push(match sources.project_file {
        Some(file) => format!("`identity` in `{}`: not set", file.display()),
        None => "a project file (svc.toml): none found".into(),
    });
    match default_identity_path() {
        Some(path) if path.is_file() => return found(vec![path], "the user's default identity"),
        Some(path) => tried.push(format!("`{}`: does not exist", path.display())),
        None => tried.push("a default identity: no home directory".into()),
    }
    Err(tried)
}

/// Identity files found, and where they were named.
#[derive(Debug, Clone)]
pub struct FoundIdentities {
    pub paths: Vec<PathBuf>,
    /// `--identity`, `SVC_IDENTITY`, `identity` in svc.toml, or the user's default.
    pub source: &'static str,
}

/// The user's own identity, as `svc init` makes it:
/// `$XDG_CONFIG_HOME/svc/identity.txt`, or `~/.config/svc/identity.txt`.
pub fn default_identity_path() -> Option<PathBuf> {
    let config = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?).join(".config"),
    };
    Some(config.join("svc").join("identity.txt"))
}

/// The public keys a store is encrypted to, as its recipients file lists
/// them (empty when there is no such file).
pub fn store_recipients(recipients_path: &Path) -> Vec<String> {
    RecipientsFile::read(recipients_path)
        .and_then(|file| file.recipients())
        .map(|keys| keys.into_iter().map(|(text, _)| text).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_recipients_and_rejects_private_keys() {
        let identity = age::x25519::Identity::generate();
        let public = identity.to_public().to_string();
        assert!(Recipient::parse(&public).is_ok());
        let private = identity.to_string();
        let error = Recipient::parse(private.expose_secret_for_test())
            .err()
            .unwrap();
        assert!(error.contains("private key"));
        assert!(Recipient::parse("hello").is_err());
    }

    trait ExposeForTest {
        fn expose_secret_for_test(&self) -> &str;
    }
    impl ExposeForTest for age::secrecy::SecretString {
        fn expose_secret_for_test(&self) -> &str {
            use age::secrecy::ExposeSecret;
            self.expose_secret()
        }
    }

    #[test]
    fn ssh_keys_match_without_their_comment() {
        assert!(same_key(
            "ssh-ed25519 AAAAC3Nza alice@host",
            "ssh-ed25519 AAAAC3Nza"
        ));
        assert!(!same_key(
            "# ssh-ed25519 AAAAC3Nza",
            "ssh-ed25519 AAAAC3Nza"
        ));
        assert!(same_key("  age1xyz  ", "age1xyz"));
    }
}
