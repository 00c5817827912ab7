//! One module per command.

pub mod authorize;
pub mod backend;
pub mod check;
pub mod compile;
pub mod complete;
pub mod context;
pub mod doctor;
pub mod exec;
pub mod fmt;
pub mod init;
pub mod key;
pub mod logs;
pub mod run;
pub mod schedule;
pub mod secret;
pub mod serve;

use std::process::ExitCode;

use crate::exit;
use crate::program::CheckedProgram;
use crate::report::{self, Style};
use crate::secrets;

/// The one runtime of a command: backends connect and run on it, so
/// every wait for one goes through [`block_on`].
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| {
                eprintln!("error: cannot start svc's runtime: {e}");
                std::process::exit(i32::from(exit::USAGE))
            })
    })
}

/// Waits for a future on the command's runtime.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    runtime().block_on(future)
}

/// Prints a store error in the shape of a diagnostic and returns its exit
/// code: 2 when the user must change how svc is called, 1 otherwise.
pub fn store_error(error: &secrets::Error) -> ExitCode {
    eprint!(
        "{}",
        report::render_error(
            error.code(),
            &error.to_string(),
            error.help().as_deref(),
            Style::for_stderr()
        )
    );
    let usage = matches!(
        error,
        secrets::Error::NoIdentity { .. }
            | secrets::Error::WrongIdentity { .. }
            | secrets::Error::IdentityUnreadable { .. }
            | secrets::Error::IdentityInvalid { .. }
            | secrets::Error::StoreMissing { .. }
            | secrets::Error::StoreExists { .. }
            | secrets::Error::InvalidEnvironment { .. }
            | secrets::Error::RecipientsMissing { .. }
            | secrets::Error::RecipientInvalid { .. }
            | secrets::Error::NoRecipients { .. }
            | secrets::Error::SecretMissing { .. }
            | secrets::Error::Invalid(_)
    );
    exit::code(if usage { exit::USAGE } else { exit::FAILURE })
}

/// Prints a usage error that has no better home.
pub fn usage_error(code: &'static str, message: &str, help: Option<&str>) -> ExitCode {
    eprint!(
        "{}",
        report::render_error(code, message, help, Style::for_stderr())
    );
    exit::code(exit::USAGE)
}

/// Prints the warnings about files a directory walk did not read: a
/// command that runs a program should say that part of it was left out.
pub fn skipped_files(checked: &CheckedProgram) {
    let warnings: Vec<_> = checked
        .sources
        .skipped
        .iter()
        .map(crate::program::skipped_warning)
        .collect();
    if !warnings.is_empty() {
        eprint!(
            "{}",
            report::render_all(&warnings, &checked.sources, Style::for_stderr())
        );
    }
}

/// Prints the errors of a program that a command refuses to go on with
/// (its warnings are for `svc check`), then what follows from them.
pub fn program_errors(checked: &CheckedProgram, consequence: &str) {
    let errors: Vec<_> = checked
        .analysis
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .cloned()
        .collect();
    eprint!(
        "{}",
        report::render_all(&errors, &checked.sources, Style::for_stderr())
    );
    eprintln!(
        "\n{}; {consequence}",
        report::summary(errors.len(), 0, checked.sources.len())
    );
}
