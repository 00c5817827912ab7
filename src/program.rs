//! Loading a program: files, then syntax, then check.

use std::path::PathBuf;

use crate::check::{self, Analysis};
use crate::diagnostic::{self, Code};
use crate::source::{self, LoadError, SourceMap};
use crate::syntax::{self, ast::Program};

/// A program with everything the checker found in it.
#[derive(Debug)]
pub struct CheckedProgram {
    pub sources: SourceMap,
    pub program: Program,
    pub analysis: Analysis,
}

impl CheckedProgram {
    pub fn has_errors(&self) -> bool {
        self.analysis.errors() > 0
    }
}

/// Loads, parses and checks the files and directories given.
pub fn load(paths: &[PathBuf]) -> Result<CheckedProgram, LoadError> {
    let sources = source::load(paths)?;
    Ok(check_sources(sources))
}

/// Parses and checks sources already in memory.
pub fn check_sources(sources: SourceMap) -> CheckedProgram {
    let (program, mut parse_diagnostics) = syntax::parse_program(&sources);
    // After a syntax error the program is missing whatever the broken file
    // declared; checking it would only report follow-on noise.
    let syntax_failed = parse_diagnostics.iter().any(|d| d.code == Code::Syntax);
    let mut analysis = if syntax_failed {
        Analysis::default()
    } else {
        check::check(&program)
    };
    analysis.diagnostics.append(&mut parse_diagnostics);
    diagnostic::sort(&mut analysis.diagnostics);
    CheckedProgram {
        sources,
        program,
        analysis,
    }
}
