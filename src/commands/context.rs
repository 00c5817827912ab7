//! Where a command works: the project (its `svc.toml`), the environment,
//! the program, and the directories and identities of that environment.
//!
//! Every command that needs the secrets, logs or state asks here, so they
//! are found the same way from any working directory: the command-line
//! flag, its `SVC_*` variable, the project file (the environment's table,
//! then the top level), then the default, beside the project file or, with
//! no project file, in the current directory.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::OnceLock;

use super::usage_error;
use crate::backend::{Backend, Options, Spec};
use crate::commands::cli::StoreArgs;
use crate::project::{self, Dir, Project};
use crate::secrets::{self, Identities, keys};

/// `--project` (or `SVC_PROJECT`), set once by the command line.
static PROJECT_FLAG: OnceLock<Option<PathBuf>> = OnceLock::new();

pub fn set_project_flag(path: Option<PathBuf>) {
    let _ = PROJECT_FLAG.set(path);
}

/// The project a command works in, if any.
pub struct Context {
    pub project: Option<Project>,
}

impl Context {
    /// Finds the project: `--project`, else walking up from the first
    /// program path given, else from the current directory.
    pub fn find(program_paths: &[PathBuf]) -> Result<Context, ExitCode> {
        let flag = PROJECT_FLAG.get().cloned().flatten();
        let found = match &flag {
            Some(path) => {
                let file = if path.is_dir() {
                    path.join(project::FILE_NAME)
                } else {
                    path.clone()
                };
                if !file.is_file() {
                    return Err(usage_error(
                        "svc::project::missing",
                        &format!("there is no project file at `{}`", file.display()),
                        Some(
                            "`--project` (or SVC_PROJECT) names a directory holding svc.toml, or the file; `svc init DIR` writes one",
                        ),
                    ));
                }
                project::load(&file).map(Some)
            }
            None => {
                let start = program_paths
                    .iter()
                    .find(|p| p.as_os_str() != "-")
                    .cloned()
                    .unwrap_or_else(|| PathBuf::from("."));
                project::find(&start)
            }
        };
        match found {
            Ok(project) => Ok(Context { project }),
            Err(error) => Err(usage_error(
                error.code(),
                &error.to_string(),
                Some(&error.help()),
            )),
        }
    }

    /// The program's paths: those given, else the project file's, else the
    /// project's directory. With neither a path nor a project file, a
    /// command that needs a program refuses at once: loading every `.svc`
    /// file below a directory that is no project reads unrelated files.
    pub fn program(&self, given: &[PathBuf]) -> Result<Vec<PathBuf>, ExitCode> {
        if !given.is_empty() {
            return Ok(given.to_vec());
        }
        match &self.project {
            Some(project) if !project.file.program.is_empty() => Ok(project.program()),
            Some(project) => Ok(vec![project.root.clone()]),
            None => Err(no_project()),
        }
    }

    /// The paths a command that reads files (not a program) works on:
    /// those given, else the project's program, else the current directory.
    pub fn files(&self, given: &[PathBuf]) -> Vec<PathBuf> {
        if self.project.is_none() && given.is_empty() {
            return vec![PathBuf::from(".")];
        }
        self.program(given).unwrap_or_default()
    }

    /// How a command line names the program, for help lines.
    pub fn program_hint(&self, given: &[PathBuf]) -> String {
        if given.is_empty() {
            // The project finds its program: no path is needed.
            return String::new();
        }
        given
            .iter()
            .map(|p| super::run::shell_word(&p.display().to_string()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The environment: `--env` or `SVC_ENV`, else the project's default.
    pub fn env(&self, given: Option<&str>) -> Result<String, ExitCode> {
        let env = given.map(str::to_owned).or_else(|| {
            self.project
                .as_ref()
                .and_then(|p| p.file.environment.clone())
        });
        let Some(env) = env else {
            return Err(usage_error(
                "svc::cli::no_environment",
                "which environment? `--env` is missing",
                Some("pass `--env dev`, set SVC_ENV, or set `environment = \"dev\"` in svc.toml"),
            ));
        };
        if let Err(error) = secrets::validate_environment(&env) {
            return Err(super::store_error(&error));
        }
        Ok(env)
    }

    pub fn dir(&self, given: Option<&Path>, env: &str, which: Dir) -> PathBuf {
        project::dir(given, self.project.as_ref(), Some(env), which)
    }

    /// The place of an environment, from a command's store arguments:
    /// its backend opened (files with the directories of the project).
    pub fn place(&self, args: &StoreArgs) -> Result<Place, ExitCode> {
        self.place_with(args, None, None, &Options::default())
    }

    /// As [`Context::place`], with the log and state directories given on
    /// the command line (for the files backend) and the backend's options.
    /// An environment that has no store and that svc.toml does not name is
    /// refused here, before anything runs: `--env prd` is a typo of `prod`.
    pub fn place_with(
        &self,
        args: &StoreArgs,
        log_dir: Option<&Path>,
        state_dir: Option<&Path>,
        options: &Options,
    ) -> Result<Place, ExitCode> {
        let place = self.open_place(args, log_dir, state_dir, options)?;
        if let Some(unknown) = place.unknown_environment() {
            return Err(usage_error(
                "svc::cli::unknown_environment",
                &unknown.message,
                Some(&unknown.help),
            ));
        }
        Ok(place)
    }

    /// As [`Context::place_with`], for an environment whose store may not
    /// exist yet (`svc secret`, which makes it or says it is missing).
    pub fn open_place(
        &self,
        args: &StoreArgs,
        log_dir: Option<&Path>,
        state_dir: Option<&Path>,
        options: &Options,
    ) -> Result<Place, ExitCode> {
        let env = self.env(args.env.as_deref())?;
        let spec = self.spec(args, &env, log_dir, state_dir)?;
        let backend = match super::block_on(Backend::open(&spec, &env, options)) {
            Ok(backend) => backend,
            Err(error) => return Err(super::store_error(&error)),
        };
        let named = self.named_environments();
        let mut environments = named.clone();
        if let Spec::Files { secrets_dir, .. } = &spec {
            environments.extend(stores_in(secrets_dir));
        }
        Ok(Place {
            named: named.contains(&env),
            environments: environments.into_iter().collect(),
            identity_flags: args.identities.clone(),
            project_identities: self
                .project
                .as_ref()
                .map(|p| p.identities(Some(&env)))
                .unwrap_or_default(),
            project_file: self.project.as_ref().map(|p| p.path.clone()),
            env,
            backend,
        })
    }

    /// The environments svc.toml names: its `environment` and its
    /// `[environments.NAME]` tables.
    fn named_environments(&self) -> std::collections::BTreeSet<String> {
        let Some(project) = &self.project else {
            return Default::default();
        };
        project
            .file
            .environment
            .iter()
            .chain(project.file.environments.keys())
            .cloned()
            .collect()
    }

    /// Where the environment's state is: `--backend` or `SVC_BACKEND`, the
    /// project file's `backend`, else files.
    pub fn spec(
        &self,
        args: &StoreArgs,
        env: &str,
        log_dir: Option<&Path>,
        state_dir: Option<&Path>,
    ) -> Result<Spec, ExitCode> {
        let files = || Spec::Files {
            secrets_dir: self.dir(args.secrets_dir.as_deref(), env, Dir::Secrets),
            log_dir: self.dir(log_dir, env, Dir::Logs),
            state_dir: self.dir(state_dir, env, Dir::State),
        };
        let named = args.backend.clone().or_else(|| {
            self.project
                .as_ref()
                .and_then(|p| p.setting(Some(env), |s| s.backend.as_ref()))
        });
        match named {
            None => Ok(files()),
            Some(text) => Spec::parse(&text, files).map_err(|e| super::store_error(&e)),
        }
    }
}

/// The refusal of a command that needs a program and was given no path,
/// where no project file is found.
fn no_project() -> ExitCode {
    let here = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|_| ".".into());
    usage_error(
        "svc::project::missing",
        &format!("no svc.toml in `{here}` or any parent directory"),
        Some("give the program's path, or run `svc init`"),
    )
}

/// The environments whose stores a files directory holds (`ENV.age`).
fn stores_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let env = name.strip_suffix(".age")?;
            secrets::validate_environment(env).ok()?;
            Some(env.to_string())
        })
        .collect()
}

/// Why an environment is unknown, and what the user may have meant.
pub struct UnknownEnvironment {
    pub message: String,
    pub help: String,
    /// The known environment the name is closest to, if one is.
    pub meant: Option<String>,
}

/// An environment's store and where its identity may come from.
pub struct Place {
    pub env: String,
    pub backend: Backend,
    /// Whether svc.toml names the environment.
    named: bool,
    /// The environments known here: named in svc.toml, or with a store.
    environments: Vec<String>,
    identity_flags: Vec<PathBuf>,
    project_identities: Vec<PathBuf>,
    project_file: Option<PathBuf>,
}

impl Place {
    /// The environment, when it has no store and svc.toml does not name
    /// it: why, and the nearest known name (or how to make it).
    pub fn unknown_environment(&self) -> Option<UnknownEnvironment> {
        if self.named {
            return None;
        }
        // A backend that cannot say is let through: the command's own
        // read reports why.
        if super::block_on(self.backend.secrets.exists()).unwrap_or(true) {
            return None;
        }
        let env = &self.env;
        let where_named = match &self.project_file {
            Some(file) => format!("`{}` does not name it", file.display()),
            None => "there is no svc.toml to name it".to_string(),
        };
        let create = format!("`svc secret init --env {env}` creates its store");
        let fallback = if self.environments.is_empty() {
            create.clone()
        } else {
            format!(
                "the environments are: {}; {create}",
                self.environments.join(", ")
            )
        };
        let meant = crate::suggest::closest(env, self.environments.iter().map(String::as_str))
            .map(str::to_string);
        Some(UnknownEnvironment {
            message: format!(
                "environment `{env}` has no store ({}) and {where_named}",
                self.backend.secrets.describe()
            ),
            help: match &meant {
                Some(meant) => format!("did you mean `{meant}`?"),
                None => fallback,
            },
            meant,
        })
    }

    /// The identity files to open the store with, found in order: the
    /// `--identity` flags, `SVC_IDENTITY`, the project file's `identity`,
    /// the user's `$XDG_CONFIG_HOME/svc/identity.txt`.
    pub fn identity_paths(&self) -> Result<Vec<PathBuf>, secrets::Error> {
        self.find_identities().map(|found| found.paths)
    }

    /// The identity files, and which source named them.
    pub fn find_identities(&self) -> Result<keys::FoundIdentities, secrets::Error> {
        keys::find_identities(&keys::IdentitySources {
            flags: &self.identity_flags,
            project: &self.project_identities,
            project_file: self.project_file.as_deref(),
        })
        .map_err(|tried| secrets::Error::NoIdentity {
            tried,
            recipients: self.recipient_keys(),
        })
    }

    /// The public keys the store is encrypted to (none when it is not there).
    pub fn recipient_keys(&self) -> Vec<String> {
        super::block_on(self.backend.secrets.recipients())
            .map(|lines| {
                lines
                    .into_iter()
                    .map(|l| l.trim().to_string())
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The identities that open the store.
    pub fn identities(&self) -> Result<Identities, secrets::Error> {
        let paths = self.identity_paths()?;
        Identities::read(&paths)
    }

    /// The identities, or why there are none (a run may need none).
    pub fn identities_if_any(&self) -> Result<Option<Identities>, secrets::Error> {
        match self.identity_paths() {
            Ok(paths) => Identities::read(&paths).map(Some),
            Err(secrets::Error::NoIdentity { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Why no identity was found, if none was: for a run that found none
    /// and then needs one.
    pub fn missing_identity_if_none(&self) -> Result<(), secrets::Error> {
        self.identity_paths().map(|_| ())
    }
}
