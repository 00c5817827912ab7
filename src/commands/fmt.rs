//! `svc fmt`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use crate::commands::cli::FmtArgs;
use crate::exit;
use crate::format;
use crate::output::outln;
use crate::report::{self, Style};
use crate::source::{self, SourceFile, SourceMap};

pub fn run(args: FmtArgs) -> ExitCode {
    if args.paths.len() == 1 && args.paths[0] == Path::new("-") {
        return stdin(args.check);
    }
    let paths = match super::context::Context::find(&args.paths) {
        Ok(context) => context.files(&args.paths),
        Err(code) => return code,
    };
    let found = match source::find(&paths) {
        Ok(found) => found,
        Err(error) => {
            eprintln!("error: {error}");
            return exit::code(exit::USAGE);
        }
    };
    let skipped: Vec<_> = found
        .skipped
        .iter()
        .map(crate::program::skipped_warning)
        .collect();
    if !skipped.is_empty() {
        eprint!(
            "{}",
            report::render_all(&skipped, &SourceMap::new(), Style::for_stderr())
        );
    }
    let mut unformatted = 0;
    let mut failed = false;
    for path in &found.files {
        let text = match source::read(path) {
            Ok(text) => text,
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
                continue;
            }
        };
        let formatted = match format::format(&text) {
            Ok(formatted) => formatted,
            Err(diagnostics) => {
                print_errors(path, &text, &diagnostics);
                failed = true;
                continue;
            }
        };
        if formatted == text {
            continue;
        }
        unformatted += 1;
        if args.check {
            outln!("{}", path.display());
        } else if let Err(e) = replace(path, &formatted) {
            eprintln!("error: cannot write `{}`: {e}", path.display());
            failed = true;
        } else {
            eprintln!("formatted {}", path.display());
        }
    }
    if failed {
        return exit::code(exit::USAGE);
    }
    if args.check && unformatted > 0 {
        eprintln!(
            "{} not formatted; run `svc fmt` to format",
            report::plural(unformatted, "file")
        );
        return exit::code(exit::FAILURE);
    }
    exit::code(exit::SUCCESS)
}

fn stdin(check: bool) -> ExitCode {
    let text = match source::read_bounded(std::io::stdin().lock(), 0, Path::new("<stdin>")) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::code(exit::USAGE);
        }
    };
    match format::format(&text) {
        Ok(formatted) if check => exit::code(if formatted == text {
            exit::SUCCESS
        } else {
            exit::FAILURE
        }),
        Ok(formatted) => {
            crate::output::bytes(formatted.as_bytes());
            exit::code(exit::SUCCESS)
        }
        Err(diagnostics) => {
            print_errors(Path::new("<stdin>"), &text, &diagnostics);
            exit::code(exit::USAGE)
        }
    }
}

fn print_errors(path: &Path, text: &str, diagnostics: &[crate::diagnostic::Diagnostic]) {
    let mut sources = SourceMap::new();
    sources.add(SourceFile::new(path.display().to_string(), path, text));
    eprint!(
        "{}",
        report::render_all(diagnostics, &sources, Style::for_stderr())
    );
    eprintln!(
        "\n{} is not formatted: fix the errors first",
        path.display()
    );
}

/// Writes the file through a temporary file in the same directory, keeping
/// its permissions, so an interrupted write never leaves half a file.
pub fn replace(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let permissions = std::fs::metadata(path)?.permissions();
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    temp.write_all(text.as_bytes())?;
    temp.as_file().set_permissions(permissions)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
