//! One module per command.

pub mod authorize;
pub mod backend;
pub mod check;
pub mod cli;
pub mod compile;
pub mod complete;
pub mod connection;
pub mod context;
pub mod doctor;
pub mod exec;
pub mod fmt;
mod import;
pub mod init;
pub mod key;
pub mod logs;
pub mod notify;
pub mod provider;
pub mod revoke;
pub mod run;
pub mod schedule;
pub mod secret;
pub mod serve;

use std::process::ExitCode;

use crate::exit;
use crate::program::CheckedProgram;
use crate::report::{self, Style};
use crate::secrets;

/// Whether the command's runtime has a worker thread per core.
static WORKER_THREADS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Gives the command's runtime a worker thread per core, before its first
/// use: for `svc serve`, which answers many requests at once.
pub fn use_worker_threads() {
    WORKER_THREADS.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// The one runtime of a command: backends connect and run on it, so
/// every wait for one goes through [`block_on`]. Commands other than
/// `svc serve` wait for one thing after another: their runtime runs on
/// the thread that waits (tasks it spawned, such as a database
/// connection's, advance while it waits). With worker threads, each round
/// trip to the database hopped between threads twice, which cost a
/// one-shot `svc run` more than its statements did.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        let mut builder = if WORKER_THREADS.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::runtime::Builder::new_multi_thread()
        } else {
            tokio::runtime::Builder::new_current_thread()
        };
        builder.enable_all().build().unwrap_or_else(|e| {
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

/// `svc completions SHELL`: the script that registers svc's dynamic
/// completion, as `COMPLETE=SHELL svc` prints it.
fn completions(shell: clap_complete::Shell) -> ExitCode {
    use clap_complete::env::{Bash, Elvish, EnvCompleter, Fish, Powershell, Zsh};
    let completer: &dyn EnvCompleter = match shell {
        clap_complete::Shell::Bash => &Bash,
        clap_complete::Shell::Elvish => &Elvish,
        clap_complete::Shell::Fish => &Fish,
        clap_complete::Shell::PowerShell => &Powershell,
        clap_complete::Shell::Zsh => &Zsh,
        _ => {
            return usage_error(
                "svc::cli::unknown_shell",
                &format!("svc cannot complete for {shell}"),
                Some("the shells are bash, elvish, fish, powershell and zsh"),
            );
        }
    };
    let mut script = Vec::new();
    match completer.write_registration("COMPLETE", "svc", "svc", "svc", &mut script) {
        Ok(()) => {
            crate::output::bytes(&script);
            ExitCode::SUCCESS
        }
        Err(_) => ExitCode::from(crate::exit::FAILURE),
    }
}

pub fn main() -> ExitCode {
    // A shell asking for completions (COMPLETE=bash svc -- svc run --as ...):
    // answer and exit before anything else.
    clap_complete::CompleteEnv::with_factory(cli::command).complete();
    let cli = <cli::Cli as clap::Parser>::parse();
    context::set_project_flag(cli.project);
    // `svc serve` chooses its own log format; other commands write only
    // warnings and errors, for a person.
    if matches!(cli.command, cli::Command::Serve(_)) {
        use_worker_threads();
    } else {
        crate::logging::init(crate::logging::Format::Command);
    }
    match cli.command {
        cli::Command::Check(args) => check::run(args),
        cli::Command::Fmt(args) => fmt::run(args),
        cli::Command::Compile(args) => compile::run(args),
        cli::Command::Init(args) => init::run(args),
        cli::Command::Completions { shell } => completions(shell),
        cli::Command::Man => {
            let page = clap_mangen::Man::new(cli::command());
            match page.render(&mut crate::output::writer()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::from(crate::exit::FAILURE),
            }
        }
        cli::Command::Secret(command) => secret::run(command),
        cli::Command::Exec(args) => exec::run(args),
        cli::Command::Doctor(args) => doctor::run(args),
        cli::Command::Backend(command) => backend::run(command),
        cli::Command::Run(args) => run::run(args),
        cli::Command::Authorize(args) => authorize::run(args),
        cli::Command::Logs(args) => logs::run(args),
        cli::Command::Lsp => crate::lsp::run(),
        cli::Command::Serve(args) => serve::run(args),
        cli::Command::Key(command) => key::run(command),
        cli::Command::Schedule(command) => schedule::run(command),
        cli::Command::Connection(command) => connection::run(command),
        cli::Command::Provider(command) => provider::run(command),
        cli::Command::Notify(command) => notify::run(command),
    }
}
