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
        let (at, insert) = if before.ends_with('{') {
            (close, format!(" {word} "))
        } else {
            (before.len(), format!(" {word}"))
        };
        Some(Fix::new(
            title,
            safe,
            vec![insertion(declaration, at, insert)],
        ))
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
