//! `svc exec`: run a command with secrets in its environment.

use std::process::ExitCode;

use super::context::Context;
use super::store_error;
use super::usage_error;
use crate::commands::cli::ExecArgs;
use crate::secrets::Error;

pub fn run(args: ExecArgs) -> ExitCode {
    let place = match Context::find(&[]).and_then(|c| c.place(&args.store)) {
        Ok(place) => place,
        Err(code) => return code,
    };
    let (identities, document) = match super::secret::open(&place).and_then(|identities| {
        let document = super::secret::document(&place, &identities)?;
        Ok((identities, document))
    }) {
        Ok(opened) => opened,
        Err(error) => return store_error(&error),
    };
    for name in &args.only {
        if document.get(name).is_none() {
            let missing = Error::SecretMissing {
                name: name.clone(),
                env: place.env.clone(),
            };
            let help = crate::suggest::did_you_mean(
                name,
                document.secrets.keys().map(String::as_str),
                missing.help().unwrap_or_default(),
            );
            return usage_error(missing.code(), &missing.to_string(), Some(&help));
        }
    }
    // Each secret handed to the command is a read, recorded before it.
    let handed: Vec<&str> = document
        .secrets
        .keys()
        .map(String::as_str)
        .filter(|name| args.only.is_empty() || args.only.iter().any(|o| o == name))
        .collect();
    if let Err(error) = super::secret::audit_cli_reads(&place, &identities, &handed, "exec") {
        return store_error(&error);
    }
    let (program, rest) = args.command.split_first().expect("clap requires a command");
    let mut command = std::process::Command::new(program);
    command.args(rest);
    for (name, entry) in &document.secrets {
        if args.only.is_empty() || args.only.contains(name) {
            command.env(name, entry.value.expose());
        }
    }
    drop(document);
    replace_process(command, &program.to_string_lossy())
}

#[cfg(unix)]
fn replace_process(mut command: std::process::Command, program: &str) -> ExitCode {
    use std::os::unix::process::CommandExt;
    // `exec` only returns on failure.
    let error = command.exec();
    usage_error(
        "svc::exec::failed",
        &format!("cannot run `{program}`: {error}"),
        Some("check the command after `--`; it is looked up in PATH"),
    )
}

#[cfg(not(unix))]
fn replace_process(mut command: std::process::Command, program: &str) -> ExitCode {
    match command.status() {
        Ok(status) => ExitCode::from(status.code().unwrap_or(1) as u8),
        Err(error) => usage_error(
            "svc::exec::failed",
            &format!("cannot run `{program}`: {error}"),
            Some("check the command after `--`; it is looked up in PATH"),
        ),
    }
}
