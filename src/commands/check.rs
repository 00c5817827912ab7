//! `svc check`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::CheckArgs;
use crate::exit;
use crate::program;
use crate::report::{self, Style};

pub fn run(args: CheckArgs) -> ExitCode {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths
    };
    let checked = match program::load(&paths) {
        Ok(checked) => checked,
        Err(error) => {
            eprintln!("error: {error}");
            return exit::code(exit::USAGE);
        }
    };
    let style = Style::for_stderr();
    let analysis = &checked.analysis;
    if !analysis.diagnostics.is_empty() {
        eprint!(
            "{}",
            report::render_all(&analysis.diagnostics, &checked.sources, style)
        );
        eprintln!();
    }
    let errors = analysis.errors();
    let warnings = analysis.warnings();
    eprintln!(
        "{}",
        report::summary(errors, warnings, checked.sources.len())
    );
    if errors > 0 || (args.deny_warnings && warnings > 0) {
        exit::code(exit::FAILURE)
    } else {
        exit::code(exit::SUCCESS)
    }
}
