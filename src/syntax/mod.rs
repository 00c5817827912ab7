//! Syntax: from source text to an AST with spans.
//!
//! This module knows nothing of the network, the disk or secrets.

pub mod ast;
mod build;
pub mod comments;
mod descent;
pub mod duration;
pub mod incremental;
pub mod parser;
pub mod spans;
mod split;
pub mod tree;

use crate::diagnostic::Diagnostic;
use crate::source::{BOM, FileId, SourceMap};

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

/// Parses one file, one declaration at a time. A large file is cut at
/// lines that start a declaration and its parts are parsed on several
/// threads; if any part does not parse, the whole file is parsed again in
/// one piece, so errors are found and reported exactly as they would be.
///
/// A byte-order mark at the start is skipped; spans stay offsets into `text`.
pub fn parse_file(file: FileId, text: &str) -> (ast::Program, Vec<Diagnostic>) {
    let start = if text.starts_with(BOM) {
        BOM.len_utf8()
    } else {
        0
    };
    if text.len() >= split::PARALLEL_FROM {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        let mut cuts = split::cuts(text, threads);
        // Every cut is at the start of a line, after the mark.
        cuts[0] = start;
        if cuts.len() > 2
            && let Some(parsed) = parse_parts(file, text, &cuts)
        {
            return parsed;
        }
    }
    parse_whole(file, text, start)
}

fn parse_whole(file: FileId, text: &str, start: usize) -> (ast::Program, Vec<Diagnostic>) {
    let parsed = parse_declarations(file, start, |offset| {
        parser::parse_next_item(file, text, offset)
    });
    parsed.unwrap_or_else(|(error, mut diagnostics)| {
        diagnostics.push(*error);
        (ast::Program::default(), diagnostics)
    })
}

/// Builds the declarations of a file from offset `start` on, each parsed
/// by `parse_next` at its offset; stops at the first syntax error with what
/// `parse_next` said and what the builder found until then.
fn parse_declarations<'t, E>(
    file: FileId,
    start: usize,
    parse_next: impl Fn(usize) -> Result<tree::Tree<'t>, E>,
) -> Result<(ast::Program, Vec<Diagnostic>), (E, Vec<Diagnostic>)> {
    let mut program = ast::Program::default();
    let (diagnostics, end) = each_declaration(file, start, parse_next, |item, _| {
        program.push(item);
    });
    match end {
        Ok(()) => Ok((program, diagnostics)),
        Err(error) => Err((error, diagnostics)),
    }
}

/// Parses and builds the declarations of a file from offset `start` on,
/// giving each to `found` with the stretch of text it was read from (its
/// leading blanks and comments, then the declaration) and what building it
/// reported; stops at the end of the text, or at the first syntax error.
/// Returns every declaration's reports, and how it stopped.
pub(crate) fn each_declaration<'t, E>(
    file: FileId,
    start: usize,
    mut parse_next: impl FnMut(usize) -> Result<tree::Tree<'t>, E>,
    mut found: impl FnMut(ast::Item, incremental::Extent),
) -> (Vec<Diagnostic>, Result<(), E>) {
    let mut builder = build::Builder::new(file);
    let mut offset = start;
    loop {
        let tree = match parse_next(offset) {
            Ok(tree) => tree,
            Err(error) => return (builder.diagnostics, Err(error)),
        };
        let next = tree.root().expect("grammar: next_item");
        let consumed = next.as_span().end();
        let reported = builder.diagnostics.len();
        match builder.item(next, offset) {
            Some(item) => {
                let extent = incremental::Extent {
                    kind: item.kind(),
                    start: offset,
                    end: offset + consumed,
                    diagnostics: builder.diagnostics[reported..].to_vec(),
                };
                found(item, extent);
            }
            None => return (builder.diagnostics, Ok(())),
        }
        offset += consumed;
    }
}

/// Parses `text[cuts[i]..cuts[i + 1]]` for every i on its own thread, and
/// joins the results in order; `None` when a part has a syntax error.
fn parse_parts(
    file: FileId,
    text: &str,
    cuts: &[usize],
) -> Option<(ast::Program, Vec<Diagnostic>)> {
    let parts: Vec<Option<(ast::Program, Vec<Diagnostic>)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = cuts
            .windows(2)
            .skip(1)
            .map(|w| scope.spawn(move || parse_part(file, text, w[0], w[1])))
            .collect();
        let first = parse_part(file, text, cuts[0], cuts[1]);
        std::iter::once(first)
            .chain(handles.into_iter().map(|h| h.join().ok().flatten()))
            .collect()
    });
    let mut program = ast::Program::default();
    let mut diagnostics = Vec::new();
    for part in parts {
        let (items, mut found) = part?;
        program.append(items);
        diagnostics.append(&mut found);
    }
    Some((program, diagnostics))
}

/// Parses the declarations of `text[start..end]`, with spans in `text`.
fn parse_part(
    file: FileId,
    text: &str,
    start: usize,
    end: usize,
) -> Option<(ast::Program, Vec<Diagnostic>)> {
    let part = &text[..end];
    parse_declarations(file, start, |offset| {
        parser::try_parse_next_item(&part[offset..]).ok_or(())
    })
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A program of `n` services, large enough for `n` of some hundreds
    /// to be parsed in parts.
    fn many_services(n: usize, schedule_indent: &str) -> String {
        (0..n)
            .map(|i| {
                format!(
                    "// service {i}\nsecret S{i} {{ environment_specific }}\n\
                     role r{i} {{\n  grant run s{i}.refresh\n  grant update_secret S{i}\n}}\n\
                     service_account bot{i} {{ roles r{i} }}\n\
                     service s{i} {{\n  var token: string\n  action a {{\n    web_request {{\n\
                     \x20     method POST\n      url \"http://127.0.0.1:1/t?{{}}\"\n\
                     \x20     form {{ grant_type = \"client_credentials\" }}\n\
                     \x20     result_mapping {{ token = $['a}}\\n'].b }}\n    }}\n\
                     \x20   if has_value(token) {{ update_secret S{i} = \"${{token}}\" }}\n  }}\n\
                     \x20 endpoint refresh {{ methods POST process a }}\n}}\n\
                     schedule n{i} {{\n{schedule_indent}endpoint s{i}.refresh\n\
                     {schedule_indent}service_account bot{i}\n{schedule_indent}every 1h\n}}\n"
                )
            })
            .collect()
    }

    #[test]
    fn a_file_parsed_in_parts_gives_what_it_gives_in_one_piece() {
        for indent in ["  ", ""] {
            let text = many_services(1500, indent);
            assert!(text.len() > split::PARALLEL_FROM, "{}", text.len());
            assert!(split::cuts(&text, 4).len() > 3);
            let whole = parse_whole(FileId(3), &text, 0);
            assert!(whole.1.is_empty(), "{:?}", &whole.1[..1]);
            assert_eq!(whole.0.services.len(), 1500);
            assert_eq!(parse_file(FileId(3), &text), whole);
            let cuts = split::cuts(&text, 4);
            assert_eq!(
                parse_parts(FileId(3), &text, &cuts),
                Some(whole),
                "{indent:?}"
            );
        }
    }

    #[test]
    fn an_error_in_any_part_is_reported_as_in_one_piece() {
        let mut text = many_services(1500, "  ");
        let late = text.rfind("every 1h").unwrap();
        text.replace_range(late..late + 8, "every 1h }");
        let first_part = text.find("service s3 {").unwrap();
        text.insert_str(first_part, "duration ");
        let cuts = split::cuts(&text, 4);
        assert_eq!(parse_parts(FileId(0), &text, &cuts), None);
        let (program, diagnostics) = parse_file(FileId(0), &text);
        assert_eq!((program, diagnostics), parse_whole(FileId(0), &text, 0));
    }

    #[test]
    fn a_byte_order_mark_is_skipped_and_spans_index_the_text() {
        let text = "\u{feff}secret A { locked }\n";
        let (program, diagnostics) = parse_file(FileId(0), text);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        assert_eq!(&text[program.secrets[0].name.span.range()], "A");
        // Only at the start: elsewhere it is not whitespace.
        let (_, diagnostics) = parse_file(FileId(0), "secret A { }\n\u{feff}secret B { }\n");
        assert_eq!(diagnostics.len(), 1);
    }

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
