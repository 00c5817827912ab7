//! `svc backend`: the PostgreSQL backend's status, and migration into it.

use std::process::ExitCode;

use super::context::Context;
use super::{block_on, store_error, usage_error};
use crate::backend::{Spec, postgres};
use crate::commands::cli::BackendCommand;
use crate::exit;
use crate::output::outln;
use crate::project::Dir;

pub fn run(command: BackendCommand) -> ExitCode {
    let context = match Context::find(&[]) {
        Ok(context) => context,
        Err(code) => return code,
    };
    match command {
        BackendCommand::Status { backend } => {
            let named = backend.or_else(|| {
                context
                    .project
                    .as_ref()
                    .and_then(|p| p.setting(None, |s| s.backend.as_ref()))
            });
            let Some(url) = named.filter(|b| b != "files") else {
                return usage_error(
                    "svc::backend::files",
                    "the files backend has no status to show: it is the files in the project",
                    Some("give a database with `--backend postgres://...` or SVC_BACKEND"),
                );
            };
            if let Err(error) = Spec::parse(&url, || Spec::Postgres {
                url: String::new(),
                state_dir: Default::default(),
            }) {
                return store_error(&error);
            }
            match block_on(postgres::status(&url)) {
                Ok((shown, version, environments)) => {
                    outln!("backend: PostgreSQL at {shown}");
                    outln!("schema version: {version}");
                    if environments.is_empty() {
                        outln!(
                            "environments: none yet (`svc secret init --env ENV --backend URL ...`)"
                        );
                    }
                    for (name, secrets, keys) in environments {
                        outln!("environment {name}: {secrets} secret(s), {keys} live API key(s)");
                    }
                    exit::code(exit::SUCCESS)
                }
                Err(error) => store_error(&error),
            }
        }
        BackendCommand::Migrate {
            store,
            to,
            force,
            log_dir,
            state_dir,
        } => {
            if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
                return usage_error(
                    "svc::backend::bad_url",
                    "`--to` takes a PostgreSQL URL",
                    Some("such as postgres://user:password@host:5432/db"),
                );
            }
            // The source is the files of the project, whatever --backend says.
            let mut files = store.clone();
            files.backend = Some("files".into());
            let place = match context.place_with(
                &files,
                log_dir.as_deref(),
                state_dir.as_deref(),
                &Default::default(),
            ) {
                Ok(place) => place,
                Err(code) => return code,
            };
            let identities = match place.identities() {
                Ok(identities) => identities,
                Err(error) => return store_error(&error),
            };
            let env = place.env.clone();
            let migrated = block_on(postgres::migrate::from_files(
                &context.dir(store.secrets_dir.as_deref(), &env, Dir::Secrets),
                &context.dir(log_dir.as_deref(), &env, Dir::Logs),
                &context.dir(state_dir.as_deref(), &env, Dir::State),
                &env,
                &to,
                &identities,
                force,
            ));
            match migrated {
                Ok(report) => {
                    outln!(
                        "migrated `{env}` to {}: {} secret(s) copied, {} already there, {} API key(s), {} schedule state(s), {} log record(s), {} audit line(s)",
                        crate::net::http::display_url_text(&to),
                        report.secrets_copied,
                        report.secrets_unchanged,
                        report.keys,
                        report.schedules,
                        report.log_records,
                        report.audit_lines
                    );
                    exit::code(exit::SUCCESS)
                }
                Err(error) => store_error(&error),
            }
        }
    }
}
