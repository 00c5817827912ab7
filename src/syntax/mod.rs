//! Syntax: from source text to an AST with spans.
//!
//! This module knows nothing of the network, the disk or secrets.

pub mod ast;
mod build;
pub mod duration;
pub mod parser;

use crate::diagnostic::Diagnostic;
use crate::source::{FileId, SourceMap};

/// Parses every file of the map into one program. A file with a syntax
/// error contributes nothing; the others are still parsed, so one run
/// reports the syntax errors of every file.
pub fn parse_program(sources: &SourceMap) -> (ast::Program, Vec<Diagnostic>) {
    let mut program = ast::Program::default();
    let mut diagnostics = Vec::new();
    for (id, file) in sources.files() {
        let (items, mut found) = parse_file(id, &file.text);
        program.items.extend(items.items);
        diagnostics.append(&mut found);
    }
    (program, diagnostics)
}

/// Parses one file.
pub fn parse_file(file: FileId, text: &str) -> (ast::Program, Vec<Diagnostic>) {
    match parser::parse(file, text) {
        Ok(mut pairs) => {
            let mut builder = build::Builder::new(file);
            let program = builder.program(pairs.next().expect("grammar: program"));
            (program, builder.diagnostics)
        }
        Err(diagnostic) => (ast::Program::default(), vec![*diagnostic]),
    }
}
