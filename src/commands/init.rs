//! `svc init`: a starter project.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

use super::{store_error, usage_error};
use crate::backend::files::store::Store;
use crate::commands::cli::InitArgs;
use crate::exit;
use crate::output::outln;
use crate::secrets::{Error, keys};

/// The starter program: a client_credentials refresh, ready to edit. It
/// checks clean as it is.
const STARTER: &str = include_str!("../../examples/starter/tokens.svc");

const GITIGNORE: &str = "\
# svc: keep private keys, logs and run state out of git.
# The encrypted stores (secrets/*.age) and their recipients are safe to commit.
/logs/
/state/
identity.txt
*.identity
key.txt
secrets/.*.lock
";

pub fn run(args: InitArgs) -> ExitCode {
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    if let Err(error) = crate::secrets::validate_environment(&args.env) {
        return store_error(&error);
    }
    let profile = match &args.provider {
        None => None,
        Some(name) => match super::provider::profile(name) {
            Ok(profile) => Some(profile),
            Err(refused) => return refused,
        },
    };
    let starter = match profile {
        Some(profile) => crate::providers::starter::program(profile),
        None => STARTER.to_string(),
    };
    let program = dir.join("tokens.svc");
    let project_file = dir.join(crate::project::FILE_NAME);
    let store = match Store::new(dir.join("secrets"), &args.env) {
        Ok(store) => store,
        Err(error) => return store_error(&error),
    };
    for existing in [&program, &store.path(), &project_file] {
        if existing.exists() {
            return usage_error(
                "svc::init::exists",
                &format!(
                    "`{}` already exists; svc init does not overwrite",
                    existing.display()
                ),
                Some("run it in a new directory, or pass one: `svc init DIR`"),
            );
        }
    }
    let (identity, public) = match identity(&args) {
        Ok(found) => found,
        Err(code) => return code,
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return usage_error(
            "svc::init::io",
            &format!("cannot create `{}`: {e}", dir.display()),
            None,
        );
    }
    if let Err(e) = std::fs::write(&program, &starter) {
        return usage_error(
            "svc::init::io",
            &format!("cannot write `{}`: {e}", program.display()),
            None,
        );
    }
    let identity_line = if keys::default_identity_path().as_deref() == Some(identity.as_path()) {
        "# identity  = \"~/.config/svc/identity.txt\"   # found there without being named\n"
            .to_string()
    } else {
        let absolute = std::path::absolute(&identity).unwrap_or_else(|_| identity.clone());
        format!(
            "identity    = \"{}\"   # yours: teammates set SVC_IDENTITY or their own\n",
            absolute.display()
        )
    };
    let project_text = format!(
        "# The svc project: defaults for every svc command run in this directory or\n\
         # below it (or given `--project DIR`). Paths are relative to this file.\n\
         # Flags and SVC_* variables override these. See docs/getting-started.md.\n\
         program     = \".\"   # every .svc file below this directory\n\
         environment = \"{}\"\n\
         secrets_dir = \"secrets\"\n\
         log_dir     = \"logs\"\n\
         state_dir   = \"state\"\n\
         {identity_line}\n\
         # Settings of one environment:\n\
         # [environments.prod]\n\
         # secrets_dir = \"/etc/svc/secrets\"\n\
         # listen      = \"127.0.0.1:8700\"\n",
        args.env
    );
    if let Err(e) = std::fs::write(&project_file, project_text) {
        return usage_error(
            "svc::init::io",
            &format!("cannot write `{}`: {e}", project_file.display()),
            None,
        );
    }
    let gitignore = dir.join(".gitignore");
    let new_gitignore = !gitignore.exists();
    if new_gitignore && let Err(e) = std::fs::write(&gitignore, GITIGNORE) {
        return usage_error(
            "svc::init::io",
            &format!("cannot write `{}`: {e}", gitignore.display()),
            None,
        );
    }
    let recipients = format!(
        "# Public keys that can decrypt {}.age, one per line.\n{public}\n",
        args.env
    );
    if let Err(error) = store.init(&recipients) {
        return store_error(&error);
    }
    let shown = |p: &Path| p.display().to_string();
    outln!("created {}", shown(&project_file));
    outln!("created {}", shown(&program));
    outln!(
        "created {} and {}, encrypted to {}",
        shown(&store.recipients_path()),
        shown(&store.path()),
        keys::short_key(&public)
    );
    if new_gitignore {
        outln!("created {}", shown(&gitignore));
    }
    outln!();
    let (from, project) = if dir == Path::new(".") {
        ("in this directory or below it", String::new())
    } else {
        (
            "in it, or from here with `--project`",
            format!(" --project {}", super::run::shell_word(&shown(&dir))),
        )
    };
    outln!(
        "next steps ({from}; svc.toml says the program and the `{}` environment):",
        args.env
    );
    outln!("  svc{project} check                     # the starter program checks clean");
    match profile {
        None => {
            outln!("  svc{project} secret set API_CLIENT_ID  # values come from stdin");
            outln!("  svc{project} secret set API_CLIENT_SECRET");
            outln!("  edit tokens.svc: the token endpoint's URL and scope");
            outln!("  svc{project} run api.refresh --as token_bot");
        }
        Some(profile) => {
            let upper = profile.name.to_uppercase();
            outln!("  svc{project} secret set {upper}_CLIENT_ID   # values come from stdin");
            if starter.contains(&format!("{upper}_CLIENT_SECRET")) {
                outln!("  svc{project} secret set {upper}_CLIENT_SECRET");
            }
            if !profile.parameters.is_empty() {
                outln!(
                    "  edit tokens.svc: the provider's parameters ({})",
                    profile
                        .parameters
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            if profile.authorization.is_some() {
                outln!(
                    "  svc{project} authorize {} --as ops     # connect an account",
                    profile.name
                );
            }
            if starter.contains("refresh_tokens") {
                outln!(
                    "  svc{project} run {}_tokens.refresh --as ops",
                    profile.name
                );
            } else if starter.contains("client_credentials") {
                outln!("  svc{project} run {}_tokens.token --as ops", profile.name);
            }
        }
    }
    outln!("  svc{project} serve                     # HTTP, explorer and schedules");
    outln!("  svc{project} doctor                    # what stands in the way, if anything");
    exit::code(exit::SUCCESS)
}

/// The identity to encrypt to, and its public key: the one given, the
/// user's default one, or a new one made with their consent.
fn identity(args: &InitArgs) -> Result<(PathBuf, String), ExitCode> {
    if let Some(path) = &args.identity {
        return public_key(path)
            .map(|key| (path.clone(), key))
            .map_err(|e| store_error(&e));
    }
    let Some(path) = keys::default_identity_path() else {
        return Err(usage_error(
            "svc::init::no_home",
            "there is no home directory to keep an identity in",
            Some("pass `--identity FILE`"),
        ));
    };
    if path.exists() {
        eprintln!("using the identity at {}", path.display());
        return public_key(&path)
            .map(|key| (path, key))
            .map_err(|e| store_error(&e));
    }
    let consent = args.yes
        || ask(&format!(
            "create a new age identity at {}? [Y/n] ",
            path.display()
        ));
    if !consent {
        return Err(usage_error(
            "svc::init::no_identity",
            "no identity to encrypt the store to",
            Some(&format!(
                "run again with --yes to create one at {}, or pass `--identity FILE` (age-keygen writes one)",
                path.display()
            )),
        ));
    }
    if let Some(parent) = path.parent()
        && let Err(e) = crate::secrets::atomic::create_private_dir(parent)
    {
        return Err(usage_error(
            "svc::init::io",
            &format!("cannot create `{}`: {e}", parent.display()),
            None,
        ));
    }
    let public = keys::write_new_identity(&path).map_err(|e| store_error(&e))?;
    eprintln!(
        "created a new age identity at {}; keep it private and backed up",
        path.display()
    );
    Ok((path, public))
}

/// Asks a yes/no question at a terminal; anywhere else, the answer is no.
fn ask(question: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "" | "y" | "yes"
    )
}

/// The public key of an age identity file (the first key in it), or of an
/// SSH key from the `.pub` file beside it.
fn public_key(path: &Path) -> Result<String, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::IdentityUnreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let text = zeroize::Zeroizing::new(text);
    for line in text.lines().map(str::trim) {
        if line.starts_with("AGE-SECRET-KEY-") {
            let identity =
                age::x25519::Identity::from_str(line).map_err(|_| Error::IdentityInvalid {
                    path: path.to_path_buf(),
                    problem: "it holds a damaged age identity".into(),
                })?;
            return Ok(identity.to_public().to_string());
        }
    }
    if text.starts_with("-----BEGIN") {
        let public = path.with_extension("pub");
        if let Ok(key) = std::fs::read_to_string(&public) {
            return Ok(key.trim().to_string());
        }
        return Err(Error::IdentityInvalid {
            path: path.to_path_buf(),
            problem: format!(
                "an SSH key needs its public key beside it, at `{}`",
                public.display()
            ),
        });
    }
    Err(Error::IdentityInvalid {
        path: path.to_path_buf(),
        problem: "no age identity (AGE-SECRET-KEY-1...) in it".into(),
    })
}
