//! `svc compile`.

use std::process::ExitCode;

use crate::cli::{CompileArgs, Emit};
use crate::compile;
use crate::exit;
use crate::program;
use crate::report::{self, Style};

pub fn run(args: CompileArgs) -> ExitCode {
    let checked = match program::load(std::slice::from_ref(&args.path)) {
        Ok(checked) => checked,
        Err(error) => {
            eprintln!("error: {error}");
            return exit::code(exit::USAGE);
        }
    };
    if checked.has_errors() {
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
            "\n{}; a program with errors is not compiled",
            report::summary(errors.len(), 0, checked.sources.len())
        );
        return exit::code(exit::FAILURE);
    }
    let text = match args.emit {
        Emit::Ast => {
            serde_json::to_string_pretty(&compile::ast(&checked)).expect("the AST serializes")
        }
        Emit::Openapi => serde_json::to_string_pretty(&compile::openapi(&checked))
            .expect("a document serializes"),
        Emit::Dot => compile::dot(&checked.program).trim_end().to_string(),
    };
    println!("{text}");
    exit::code(exit::SUCCESS)
}
