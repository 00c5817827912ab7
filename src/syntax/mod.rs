//! Syntax: from source text to an AST with spans.
//!
//! This module knows nothing of the network, the disk or secrets.

pub mod ast;
mod build;
pub mod comments;
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
        program.append(items);
        diagnostics.append(&mut found);
    }
    (program, diagnostics)
}

/// Parses one file, one declaration at a time.
pub fn parse_file(file: FileId, text: &str) -> (ast::Program, Vec<Diagnostic>) {
    let mut builder = build::Builder::new(file);
    let mut program = ast::Program::default();
    let mut offset = 0;
    loop {
        let mut pairs = match parser::parse_next_item(file, text, offset) {
            Ok(pairs) => pairs,
            Err(diagnostic) => {
                builder.diagnostics.push(*diagnostic);
                return (ast::Program::default(), builder.diagnostics);
            }
        };
        let next = pairs.next().expect("grammar: next_item");
        let consumed = next.as_span().end();
        match builder.item(next, offset) {
            Some(item) => program.push(item),
            None => return (program, builder.diagnostics),
        }
        offset += consumed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_end_before_trailing_comments_and_whitespace() {
        let text = "service x {\n  action a {\n    if has_value(t) { update_secret A = t // keep it\n    } // done\n  }\n}\n";
        let (program, diagnostics) = parse_file(FileId(0), text);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let mut spans = Vec::new();
        program.services[0].actions[0]
            .body
            .walk(&mut |s| spans.push(&text[s.span.range()]));
        assert_eq!(
            spans,
            vec![
                "if has_value(t) { update_secret A = t // keep it\n    }",
                "update_secret A = t"
            ]
        );
    }
}
