//! `svc compile`.

use std::process::ExitCode;

use crate::commands::cli::{CompileArgs, Emit};
use crate::compile;
use crate::exit;
use crate::output::outln;
use crate::program;

pub fn run(args: CompileArgs) -> ExitCode {
    let given: Vec<_> = args.path.iter().cloned().collect();
    let paths = match super::context::Context::find(&given).and_then(|c| c.program(&given)) {
        Ok(paths) => paths,
        Err(code) => return code,
    };
    let checked = match program::load(&paths) {
        Ok(checked) => checked,
        Err(error) => {
            eprintln!("error: {error}");
            return exit::code(exit::USAGE);
        }
    };
    super::skipped_files(&checked);
    if checked.has_errors() {
        super::program_errors(&checked, "a program with errors is not compiled");
        return exit::code(exit::FAILURE);
    }
    let text = match args.emit {
        Emit::Ast => {
            serde_json::to_string_pretty(&compile::ast(&checked)).expect("the AST serializes")
        }
        Emit::Openapi => serde_json::to_string_pretty(&compile::openapi(&checked))
            .expect("a document serializes"),
        Emit::Dot => compile::dot(&checked.program, &checked.analysis)
            .trim_end()
            .to_string(),
    };
    outln!("{text}");
    exit::code(exit::SUCCESS)
}
