//! The command line: argument definitions and dispatch.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::commands;

#[derive(Parser, Debug)]
#[command(
    name = "svc",
    version,
    about = "Keep OAuth 2.0 access tokens fresh: declare secrets, roles, services and schedules in .svc files",
    long_about = "svc reads .svc files that declare secrets, roles, users and service accounts, \
                  and services whose endpoints refresh tokens. `svc check` lints them; the other \
                  commands run them and manage the encrypted secret store.",
    after_help = "Exit codes: 0 success, 1 check errors or a failed run, 2 usage or input errors, 3 permission denied."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check .svc files: syntax, names, types, permissions and secret rules
    #[command(
        long_about = "Parses and checks .svc files without running anything. A directory loads every \
                      .svc file below it as one program. With no path, the current directory.\n\n\
                      Exits 0 when there are no errors (warnings allowed), 1 when there are errors \
                      (or warnings with --deny-warnings), 2 when files cannot be read."
    )]
    Check(CheckArgs),
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Files or directories to check [default: .]
    pub paths: Vec<PathBuf>,
    /// Exit with 1 when there are warnings, not only errors
    #[arg(long)]
    pub deny_warnings: bool,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => commands::check::run(args),
    }
}
