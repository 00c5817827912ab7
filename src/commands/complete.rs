//! Shell completion from the project: the values of `--as`, `--env`,
//! `SERVICE.ENDPOINT`, secret and client names are what the project's
//! program and `svc.toml` declare, not file names.
//!
//! clap_complete's dynamic completion calls these when the shell asks
//! (`COMPLETE=bash svc -- svc run --as ""`, from the script `svc
//! completions bash` prints). The shell's current directory (or
//! `SVC_PROJECT`) finds the project, as the command being completed
//! would. They read the program's names and never open a store.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::PathBuf;

use clap_complete::engine::{CompletionCandidate, PathCompleter, ValueCompleter};

use crate::program::{self, CheckedProgram};
use crate::project::{self, Dir, Project};

/// The project of the command being completed, if any.
fn project() -> Option<Project> {
    match std::env::var_os("SVC_PROJECT").filter(|p| !p.is_empty()) {
        Some(path) => {
            let path = PathBuf::from(path);
            let file = if path.is_dir() {
                path.join(project::FILE_NAME)
            } else {
                path
            };
            project::load(&file).ok()
        }
        None => project::find(std::path::Path::new(".")).ok().flatten(),
    }
}

/// The project's program, parsed and checked (its names are what count,
/// errors or not).
fn program() -> Option<CheckedProgram> {
    let project = project()?;
    let paths = if project.file.program.is_empty() {
        vec![project.root.clone()]
    } else {
        project.program()
    };
    program::load(&paths).ok()
}

fn described(name: &str, description: Option<&str>) -> CompletionCandidate {
    CompletionCandidate::new(name).help(description.map(|d| d.to_string().into()))
}

/// `--as`: the users and service accounts of the project's program.
pub fn identities() -> Vec<CompletionCandidate> {
    let Some(checked) = program() else {
        return Vec::new();
    };
    checked
        .program
        .identities
        .iter()
        .map(|i| {
            let kind = i.kind.keyword();
            let help = match &i.description {
                Some(d) => format!("{kind}: {}", d.value),
                None => kind.to_string(),
            };
            described(i.name.as_str(), Some(&help))
        })
        .collect()
}

/// `--env`: the environments svc.toml names and those with a store in a
/// secrets directory of the project (or `secrets` here, without one).
pub fn environments() -> Vec<CompletionCandidate> {
    let project = project();
    let mut names = BTreeSet::new();
    let mut dirs = vec![project::dir(None, project.as_ref(), None, Dir::Secrets)];
    if let Some(project) = &project {
        names.extend(project.file.environment.iter().cloned());
        for env in project.file.environments.keys() {
            names.insert(env.clone());
            dirs.push(project::dir(None, Some(project), Some(env), Dir::Secrets));
        }
    }
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if let Some(env) = name.to_str().and_then(|n| n.strip_suffix(".age"))
                && crate::secrets::validate_environment(env).is_ok()
            {
                names.insert(env.to_string());
            }
        }
    }
    names.into_iter().map(CompletionCandidate::new).collect()
}

/// `SERVICE.ENDPOINT`: the endpoints of the project's program.
pub fn endpoints() -> Vec<CompletionCandidate> {
    let Some(checked) = program() else {
        return Vec::new();
    };
    checked
        .program
        .services
        .iter()
        .flat_map(|s| {
            s.endpoints.iter().map(move |e| {
                described(
                    &format!("{}.{}", s.name.text, e.name.text),
                    e.description.as_ref().map(|d| d.value.as_str()),
                )
            })
        })
        .collect()
}

/// Secret names: those the project's program declares.
pub fn secrets() -> Vec<CompletionCandidate> {
    let Some(checked) = program() else {
        return Vec::new();
    };
    checked
        .program
        .secrets
        .iter()
        .map(|s| {
            described(
                s.name.as_str(),
                s.description.as_ref().map(|d| d.value.as_str()),
            )
        })
        .collect()
}

/// `CLIENT` of `svc authorize`: the program's `oauth_client`s.
pub fn clients() -> Vec<CompletionCandidate> {
    let Some(checked) = program() else {
        return Vec::new();
    };
    checked
        .program
        .oauth_clients
        .iter()
        .map(|c| {
            described(
                c.name.as_str(),
                c.description.as_ref().map(|d| d.value.as_str()),
            )
        })
        .collect()
}

/// Those of `candidates` that start with what was typed.
fn starting_with(
    current: &OsStr,
    candidates: Vec<CompletionCandidate>,
) -> Vec<CompletionCandidate> {
    let typed = current.to_string_lossy();
    candidates
        .into_iter()
        .filter(|c| c.get_value().to_string_lossy().starts_with(typed.as_ref()))
        .collect()
}

/// `[PATH] SERVICE.ENDPOINT` of `svc run`: the endpoints, and paths for
/// the program given by path.
pub fn path_or_endpoint(current: &OsStr) -> Vec<CompletionCandidate> {
    let mut found = starting_with(current, endpoints());
    found.extend(PathCompleter::any().complete(current));
    found
}

/// `[PATH] CLIENT` of `svc authorize`: the clients, and paths.
pub fn path_or_client(current: &OsStr) -> Vec<CompletionCandidate> {
    let mut found = starting_with(current, clients());
    found.extend(PathCompleter::any().complete(current));
    found
}
