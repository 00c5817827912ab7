//! The project file, `svc.toml`: the defaults a team shares.
//!
//! ```toml
//! program     = "services"        # .svc files or directories, one or a list
//! environment = "dev"             # the default --env
//! secrets_dir = "secrets"         # where ENV.age and ENV.recipients live
//! log_dir     = "logs"
//! state_dir   = "state"
//! identity    = "keys/dev.txt"    # optional: an identity file (or a list)
//! backend     = "files"           # where state is kept; `files` for now
//!
//! [environments.prod]             # settings for one environment
//! secrets_dir = "/etc/svc/secrets"
//! identity    = "/etc/svc/prod-identity.txt"
//! ```
//!
//! A command finds it by walking up from the program path it was given
//! (or from the current directory), so it works from any directory below
//! the project, or given a path into it. Paths in the file are relative to
//! the file. Each setting comes from, first to last: the command-line flag,
//! its `SVC_*` variable, the environment's table, the file's top level,
//! the built-in default (relative to the project's directory, or to the
//! current directory when there is no project file).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The name of the project file.
pub const FILE_NAME: &str = "svc.toml";

/// The largest project file read.
const MAX_SIZE: u64 = 1024 * 1024;

/// A project file found, and where.
#[derive(Debug, Clone)]
pub struct Project {
    /// The directory holding `svc.toml`: paths in it are relative to this.
    pub root: PathBuf,
    /// The file itself.
    pub path: PathBuf,
    pub file: ProjectFile,
}

/// What `svc.toml` says.
#[derive(Debug, Clone, Default)]
pub struct ProjectFile {
    pub program: Vec<PathBuf>,
    pub environment: Option<String>,
    /// The settings at the top level: for every environment.
    pub settings: Settings,
    pub environments: BTreeMap<String, Settings>,
}

/// The file as written: the top level holds the settings too (serde's
/// `flatten` cannot be combined with `deny_unknown_fields`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Written {
    #[serde(default, deserialize_with = "one_or_many")]
    program: Vec<PathBuf>,
    environment: Option<String>,
    secrets_dir: Option<PathBuf>,
    log_dir: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    #[serde(default, deserialize_with = "one_or_many")]
    identity: Vec<PathBuf>,
    backend: Option<String>,
    listen: Option<String>,
    log_format: Option<String>,
    #[serde(default)]
    environments: BTreeMap<String, Settings>,
}

/// The settings that may differ per environment.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub secrets_dir: Option<PathBuf>,
    pub log_dir: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub identity: Vec<PathBuf>,
    pub backend: Option<String>,
    /// The address `svc serve` listens on.
    pub listen: Option<String>,
    /// `human` or `json`: how `svc serve` writes its log lines.
    pub log_format: Option<String>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<PathBuf>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(PathBuf),
        Many(Vec<PathBuf>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(path) => vec![path],
        OneOrMany::Many(paths) => paths,
    })
}

/// A project file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{}` is larger than 1 MiB", path.display())]
    TooLarge { path: PathBuf },
    #[error("`{}` is not a valid project file: {problem}", path.display())]
    Invalid { path: PathBuf, problem: String },
}

impl Error {
    pub fn code(&self) -> &'static str {
        match self {
            Error::Read { .. } | Error::TooLarge { .. } => "svc::project::unreadable",
            Error::Invalid { .. } => "svc::project::invalid",
        }
    }

    pub fn help(&self) -> String {
        match self {
            Error::Invalid { .. } => {
                "the keys are program, environment, secrets_dir, log_dir, state_dir, identity, \
                 backend, listen, log_format, and [environments.NAME] tables of the same \
                 settings; see docs/getting-started.md"
                    .into()
            }
            _ => "check the file's permissions, or remove it to use the current directory".into(),
        }
    }
}

/// Which directory of the project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Secrets,
    Logs,
    State,
}

impl Dir {
    fn default_name(self) -> &'static str {
        match self {
            Dir::Secrets => "secrets",
            Dir::Logs => "logs",
            Dir::State => "state",
        }
    }

    fn of(self, settings: &Settings) -> Option<&PathBuf> {
        match self {
            Dir::Secrets => settings.secrets_dir.as_ref(),
            Dir::Logs => settings.log_dir.as_ref(),
            Dir::State => settings.state_dir.as_ref(),
        }
    }
}

/// Finds the project file in `start` or the nearest directory above it.
/// `start` may be a file (a program path): its directory is searched.
pub fn find(start: &Path) -> Result<Option<Project>, Error> {
    let absolute = std::path::absolute(start).unwrap_or_else(|_| start.to_path_buf());
    let mut dir = if absolute.is_dir() {
        Some(absolute.as_path())
    } else {
        absolute.parent()
    };
    while let Some(current) = dir {
        let candidate = current.join(FILE_NAME);
        if candidate.is_file() {
            return load(&candidate).map(Some);
        }
        dir = current.parent();
    }
    Ok(None)
}

/// Reads a project file.
pub fn load(path: &Path) -> Result<Project, Error> {
    let read = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read)?.len();
    if size > MAX_SIZE {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(read)?;
    let written: Written = toml::from_str(&text).map_err(|e| Error::Invalid {
        path: path.to_path_buf(),
        problem: e.to_string().trim().replace('\n', " "),
    })?;
    let file = ProjectFile {
        program: written.program,
        environment: written.environment,
        settings: Settings {
            secrets_dir: written.secrets_dir,
            log_dir: written.log_dir,
            state_dir: written.state_dir,
            identity: written.identity,
            backend: written.backend,
            listen: written.listen,
            log_format: written.log_format,
        },
        environments: written.environments,
    };
    let root = path
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    Ok(Project {
        root,
        path: path.to_path_buf(),
        file,
    })
}

impl Project {
    /// A path from the file, made relative to the file's directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            return path.to_path_buf();
        }
        if let Ok(rest) = path.strip_prefix("~")
            && let Some(home) = std::env::var_os("HOME")
        {
            return PathBuf::from(home).join(rest);
        }
        self.root.join(path)
    }

    fn env_settings(&self, env: Option<&str>) -> Option<&Settings> {
        self.file.environments.get(env?)
    }

    /// The program's paths, if the file names them.
    pub fn program(&self) -> Vec<PathBuf> {
        self.file.program.iter().map(|p| self.resolve(p)).collect()
    }

    /// A directory for an environment, if the file sets it.
    pub fn dir(&self, dir: Dir, env: Option<&str>) -> Option<PathBuf> {
        let set = self
            .env_settings(env)
            .and_then(|s| dir.of(s))
            .or_else(|| dir.of(&self.file.settings))?;
        Some(self.resolve(set))
    }

    /// Identity files the file names for an environment.
    pub fn identities(&self, env: Option<&str>) -> Vec<PathBuf> {
        let own = self.env_settings(env).map(|s| &s.identity);
        let paths = match own {
            Some(paths) if !paths.is_empty() => paths,
            _ => &self.file.settings.identity,
        };
        paths.iter().map(|p| self.resolve(p)).collect()
    }

    /// A text setting for an environment (`backend`, `listen`, `log_format`).
    pub fn setting(
        &self,
        env: Option<&str>,
        pick: fn(&Settings) -> Option<&String>,
    ) -> Option<String> {
        self.env_settings(env)
            .and_then(pick)
            .or_else(|| pick(&self.file.settings))
            .cloned()
    }
}

/// Where a directory is: the flag or its `SVC_*` variable (as given), else
/// the project file, else the default, beside the project file if there
/// is one and in the current directory if not.
pub fn dir(
    given: Option<&Path>,
    project: Option<&Project>,
    env: Option<&str>,
    which: Dir,
) -> PathBuf {
    if let Some(given) = given {
        return given.to_path_buf();
    }
    match project {
        Some(project) => project
            .dir(which, env)
            .unwrap_or_else(|| project.root.join(which.default_name())),
        None => PathBuf::from(which.default_name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(text: &str) -> (tempfile::TempDir, Project) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), text).unwrap();
        std::fs::create_dir_all(dir.path().join("services/deep")).unwrap();
        let found = find(&dir.path().join("services/deep")).unwrap().unwrap();
        (dir, found)
    }

    #[test]
    fn is_found_from_below_and_resolves_paths_beside_itself() {
        let (dir, project) = project(
            r#"
program = "services"
environment = "dev"
state_dir = "var/state"

[environments.prod]
secrets_dir = "/etc/svc/secrets"
identity = ["keys/a.txt", "keys/b.txt"]
"#,
        );
        let root = std::path::absolute(dir.path()).unwrap();
        assert_eq!(project.root, root);
        assert_eq!(project.program(), vec![root.join("services")]);
        assert_eq!(project.file.environment.as_deref(), Some("dev"));
        // Per environment, then the top level, then the default beside the file.
        assert_eq!(
            super::dir(None, Some(&project), Some("prod"), Dir::Secrets),
            PathBuf::from("/etc/svc/secrets")
        );
        assert_eq!(
            super::dir(None, Some(&project), Some("dev"), Dir::Secrets),
            root.join("secrets")
        );
        assert_eq!(
            super::dir(None, Some(&project), Some("prod"), Dir::State),
            root.join("var/state")
        );
        assert_eq!(
            project.identities(Some("prod")),
            vec![root.join("keys/a.txt"), root.join("keys/b.txt")]
        );
        assert!(project.identities(Some("dev")).is_empty());
        // A flag wins, as given.
        assert_eq!(
            super::dir(
                Some(Path::new("x")),
                Some(&project),
                Some("prod"),
                Dir::Secrets
            ),
            PathBuf::from("x")
        );
        // No project: the current directory, as before.
        assert_eq!(
            super::dir(None, None, None, Dir::Logs),
            PathBuf::from("logs")
        );
    }

    #[test]
    fn unknown_keys_are_an_error_that_names_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, "secret_dir = \"s\"\n").unwrap();
        let error = load(&path).unwrap_err();
        assert_eq!(error.code(), "svc::project::invalid");
        assert!(error.to_string().contains("secret_dir"), "{error}");
    }

    #[test]
    fn no_file_up_to_the_root_is_no_project() {
        let dir = tempfile::tempdir().unwrap();
        // A temporary directory has no svc.toml above it (unless the
        // machine put one in /tmp, which it does not).
        assert!(find(dir.path()).unwrap().is_none());
    }
}
