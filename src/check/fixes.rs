//! Fixes that need the text around a node, not only its span: a grant
//! added where a role's other grants are, a declaration on a line of its
//! own, a statement wrapped in `if has_value(...)` at its indentation.
//!
//! Each builder returns `None` when the file's text is unknown (an editor's
//! file that no longer parses) or laid out in a way the fix cannot follow:
//! no fix is better than a wrong edit.

use super::symbols::Symbols;
use crate::diagnostic::{Diagnostic, Edit, Fix};
use crate::source::{BOM, Span, Texts};
use crate::syntax::ast::*;

/// The texts a program's spans point into.
#[derive(Clone, Copy)]
pub struct Layout<'t> {
    texts: &'t dyn Texts,
}

impl<'t> Layout<'t> {
    pub fn new(texts: &'t dyn Texts) -> Layout<'t> {
        Layout { texts }
    }

    fn text(&self, span: Span) -> Option<&'t str> {
        let text = self.texts.text(span.file)?;
        (span.end() <= text.len()).then_some(text)
    }

    /// The whitespace before a span on its line, when only whitespace is.
    fn indent(&self, span: Span) -> Option<&'t str> {
        let text = self.text(span)?;
        let start = span.start as usize;
        let line = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let indent = &text[line..start];
        indent.trim().is_empty().then_some(indent)
    }

    /// `grant G` added to a role, before its `}`: on a line of its own,
    /// indented as the role's last grant, when the `}` has its own line.
    pub fn add_grant(&self, role: &RoleDecl, grant: &str) -> Option<Fix> {
        let text = self.text(role.span)?;
        let close = role.span.end().checked_sub(1)?;
        if text.as_bytes().get(close) != Some(&b'}') {
            return None;
        }
        let line_start = text[..close].rfind('\n').map_or(0, |i| i + 1);
        let (at, insert) = if text[line_start..close].trim().is_empty() {
            let indent = role
                .grants
                .last()
                .and_then(|g| self.indent(g.span))
                .unwrap_or("  ");
            (line_start, format!("{indent}grant {grant}\n"))
        } else {
            (close, format!("grant {grant} "))
        };
        Some(Fix::new(
            format!("Add `grant {grant}` to role `{}`", role.name.text),
            // It widens what an identity may do: a person decides.
            false,
            vec![insertion(role.span, at, insert)],
        ))
    }

    /// `grant G` added to the first role of `identity` that exists.
    pub fn grant_to(
        &self,
        symbols: &Symbols<'_>,
        identity: &IdentityDecl,
        grant: &str,
    ) -> Option<Fix> {
        let role = identity
            .roles
            .iter()
            .find_map(|r| symbols.roles.get(r.as_str()).copied())?;
        self.add_grant(role, grant)
    }

    /// `secret NAME { environment_specific }` declared in the file of
    /// `near`: after the file's last secret, or at its top.
    pub fn declare_secret(
        &self,
        program_secrets: &[&SecretDecl],
        near: Span,
        name: &str,
    ) -> Option<Fix> {
        let text = self.text(near)?;
        let declaration = format!("secret {name} {{ environment_specific }}\n");
        let last = program_secrets
            .iter()
            .filter(|s| s.span.file == near.file)
            .max_by_key(|s| s.span.end());
        let (at, insert) = match last {
            Some(secret) => {
                let end = text[secret.span.end()..]
                    .find('\n')
                    .map_or(text.len(), |i| secret.span.end() + i + 1);
                let insert = if end == text.len() && !text.ends_with('\n') {
                    format!("\n{declaration}")
                } else {
                    declaration
                };
                (end, insert)
            }
            // After a byte-order mark, which must stay first.
            None => (
                if text.starts_with(BOM) {
                    BOM.len_utf8()
                } else {
                    0
                },
                format!("{declaration}\n"),
            ),
        };
        Some(Fix::new(
            format!("Declare `secret {name} {{ environment_specific }}`"),
            false,
            vec![insertion(near, at, insert)],
        ))
    }

    /// A statement put inside `if has_value(VALUE) { ... }`, indented one
    /// step more.
    pub fn guard(&self, statement: Span, value: &str) -> Option<Fix> {
        let text = self.text(statement)?;
        let indent = self.indent(statement)?;
        let body = text[statement.range()].replace('\n', "\n  ");
        let wrapped = format!("if has_value({value}) {{\n{indent}  {body}\n{indent}}}");
        Some(Fix::replace(
            format!("Update only if `{value}` has a value"),
            // It changes nothing but what an empty value would have done.
            true,
            statement,
            wrapped,
        ))
    }

    /// A declaration removed with its line, when nothing else is on it.
    pub fn remove_line(&self, span: Span, title: String, safe: bool) -> Option<Fix> {
        let text = self.text(span)?;
        let start = span.start as usize;
        let line = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let end = text[span.end()..]
            .find('\n')
            .map_or(text.len(), |i| span.end() + i + 1);
        let alone = text[line..start].trim().is_empty() && text[span.end()..end].trim().is_empty();
        if !alone {
            return None;
        }
        Some(Fix::replace(
            title,
            safe,
            Span {
                start: line as u32,
                len: (end - line) as u32,
                ..span
            },
            "",
        ))
    }

    /// A word removed with the space before it (a method listed twice).
    pub fn remove_word(&self, span: Span, title: String, safe: bool) -> Option<Fix> {
        let text = self.text(span)?;
        let start = span.start as usize;
        let spaces = text[..start].len() - text[..start].trim_end_matches([' ', '\t']).len();
        Some(Fix::replace(
            title,
            safe,
            Span {
                start: (start - spaces) as u32,
                len: span.len + spaces as u32,
                ..span
            },
            "",
        ))
    }

    /// A word added to a declaration's block, after its last word:
    /// `secret S { environment_specific }` → `{ environment_specific locked }`.
    pub fn add_word(
        &self,
        declaration: Span,
        word: &str,
        title: String,
        safe: bool,
    ) -> Option<Fix> {
        let text = self.text(declaration)?;
        let close = declaration.end().checked_sub(1)?;
        if text.as_bytes().get(close) != Some(&b'}') {
            return None;
        }
        let before = text[..close].trim_end();
        let edit = if before.ends_with('{') {
            // `{}` or `{ }`: the word, between single spaces.
            Edit {
                span: Span {
                    start: before.len() as u32,
                    len: (close - before.len()) as u32,
                    ..declaration
                },
                text: format!(" {word} "),
            }
        } else {
            insertion(declaration, before.len(), format!(" {word}"))
        };
        Some(Fix::new(title, safe, vec![edit]))
    }

    /// A method added to an endpoint's `methods`, after the last one.
    pub fn add_method(&self, endpoint: &EndpointDecl, method: &str) -> Option<Fix> {
        let last = endpoint.methods.last()?;
        self.text(last.span)?;
        Some(Fix::new(
            format!("Allow `{method}` on `{}`", endpoint.name.text),
            false,
            vec![insertion(last.span, last.span.end(), format!(" {method}"))],
        ))
    }

    /// Statements removed, from the start of the first one's line to the
    /// end of the last one's.
    pub fn remove_statements(&self, span: Span, title: String) -> Option<Fix> {
        let text = self.text(span)?;
        let start = span.start as usize;
        let line = text[..start].rfind('\n').map_or(0, |i| i + 1);
        if !text[line..start].trim().is_empty() {
            return None;
        }
        let end = text[span.end()..]
            .find('\n')
            .map_or(text.len(), |i| span.end() + i + 1);
        if !text[span.end()..end].trim().is_empty() {
            return None;
        }
        Some(Fix::replace(
            title,
            false,
            Span {
                start: line as u32,
                len: (end - line) as u32,
                ..span
            },
            "",
        ))
    }
}

/// An insertion at a byte offset of the file of `span`.
fn insertion(span: Span, at: usize, text: String) -> Edit {
    Edit {
        span: Span {
            start: at as u32,
            len: 0,
            ..span
        },
        text,
    }
}

/// How an identity that lacks a grant gets it.
pub trait WithGrant {
    /// The help that says so, and the fix that adds the grant to the first
    /// role of `identity` that exists.
    fn with_grant(
        self,
        symbols: &Symbols<'_>,
        layout: Layout<'_>,
        identity: &IdentityDecl,
        grant: &str,
    ) -> Diagnostic;
}

impl WithGrant for Diagnostic {
    fn with_grant(
        self,
        symbols: &Symbols<'_>,
        layout: Layout<'_>,
        identity: &IdentityDecl,
        grant: &str,
    ) -> Diagnostic {
        let role = identity
            .roles
            .iter()
            .find_map(|r| symbols.roles.get(r.as_str()).copied());
        match role {
            Some(role) => self
                .help(format!(
                    "add `grant {grant}` to role `{}`, which `{}` has",
                    role.name.text, identity.name.text
                ))
                .fix(layout.add_grant(role, grant)),
            None => self.help(format!(
                "give `{}` a role with `grant {grant}` (`roles ...` in its declaration)",
                identity.name.text
            )),
        }
    }
}

/// The fixes of `diagnostics` to apply in one round: for each diagnostic
/// its first fix that is safe (any, with `unsafe_too`) whose edits
/// overlap none chosen before, by file. The same edits wanted by two
/// diagnostics (one grant two runs need) are made once. What is left out
/// (an overlap) is found again when the result is checked again.
pub fn choose(
    diagnostics: &[Diagnostic],
    unsafe_too: bool,
) -> std::collections::BTreeMap<crate::source::FileId, Vec<Edit>> {
    let mut chosen: Vec<&Fix> = Vec::new();
    let mut edits: Vec<&Edit> = Vec::new();
    for diagnostic in diagnostics {
        let fix = diagnostic.fixes.iter().find(|fix| {
            (fix.safe || unsafe_too)
                && (chosen.iter().any(|c| c.edits == fix.edits)
                    || !fix
                        .edits
                        .iter()
                        .any(|e| edits.iter().any(|taken| overlap(e.span, taken.span))))
        });
        let Some(fix) = fix else {
            continue;
        };
        if chosen.iter().any(|c| c.edits == fix.edits) {
            continue;
        }
        chosen.push(fix);
        edits.extend(&fix.edits);
    }
    let mut by_file: std::collections::BTreeMap<_, Vec<Edit>> = Default::default();
    for edit in edits {
        by_file
            .entry(edit.span.file)
            .or_default()
            .push(edit.clone());
    }
    by_file
}

/// Whether two edits of one file conflict: their ranges share a byte, an
/// insertion falls inside a replacement, or both insert at one place
/// (their order would be a guess). Edits that only meet do not.
fn overlap(a: Span, b: Span) -> bool {
    if a.file != b.file {
        return false;
    }
    let (a0, a1, b0, b1) = (a.start as usize, a.end(), b.start as usize, b.end());
    match (a.len == 0, b.len == 0) {
        (true, true) => a0 == b0,
        (true, false) => b0 < a0 && a0 < b1,
        (false, true) => a0 < b0 && b0 < a1,
        (false, false) => a0 < b1 && b0 < a1,
    }
}

/// A text with non-overlapping edits made, in any order given.
pub fn apply(text: &str, edits: &[Edit]) -> String {
    let mut sorted: Vec<&Edit> = edits.iter().collect();
    sorted.sort_by_key(|e| (e.span.start, e.span.len));
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for edit in sorted {
        let start = edit.span.start as usize;
        if start < at || edit.span.end() > text.len() {
            continue;
        }
        out.push_str(&text[at..start]);
        out.push_str(&edit.text);
        at = edit.span.end();
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::FileId;

    fn edit(start: u32, len: u32, text: &str) -> Edit {
        Edit {
            span: Span {
                file: FileId(0),
                start,
                len,
            },
            text: text.into(),
        }
    }

    #[test]
    fn edits_are_made_in_place_whatever_their_order() {
        let text = "grant run a.b\n";
        let edits = [edit(10, 1, "x"), edit(0, 0, "// "), edit(14, 0, "end\n")];
        assert_eq!(apply(text, &edits), "// grant run x.b\nend\n");
    }

    #[test]
    fn overlapping_fixes_wait_for_the_next_round_and_twins_are_made_once() {
        use crate::diagnostic::{Code, Diagnostic};
        let fix = |e: Edit| Fix::new("f", true, vec![e]);
        let diagnostics = vec![
            Diagnostic::new(Code::UnusedVariable, "a").fix(fix(edit(0, 5, ""))),
            Diagnostic::new(Code::UnusedVariable, "b").fix(fix(edit(3, 4, "x"))),
            Diagnostic::new(Code::UnusedVariable, "c").fix(fix(edit(0, 5, ""))),
            Diagnostic::new(Code::UnusedVariable, "d").fix(Fix::new(
                "u",
                false,
                vec![edit(9, 1, "")],
            )),
        ];
        let chosen = choose(&diagnostics, false);
        assert_eq!(chosen[&FileId(0)], vec![edit(0, 5, "")]);
        let chosen = choose(&diagnostics, true);
        assert_eq!(chosen[&FileId(0)], vec![edit(0, 5, ""), edit(9, 1, "")]);
    }
}
