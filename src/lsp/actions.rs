//! Formatting, and quick fixes for the diagnostics that say how to fix
//! them: a missing grant, a missing secret, a misspelt name, an update
//! that is not guarded by `has_value`.

use std::collections::HashMap;

use lsp_server::ErrorCode;
use lsp_types::*;

use super::navigate::is_identifier;
use super::text::Encoding;
use super::workspace::View;
use super::{Context, Refusal, diagnostics};
use crate::diagnostic::{Code, Diagnostic};
use crate::source::{FileId, Span};
use crate::syntax::ast::*;

pub fn format(
    context: &mut Context,
    params: DocumentFormattingParams,
) -> Result<Option<Vec<TextEdit>>, Refusal> {
    let (index, file) = context.locate(&params.text_document.uri)?;
    let encoding = context.encoding;
    let view = context.workspace.projects[index].view();
    let document = view.document(file);
    let formatted = crate::format::format(&document.text).map_err(|_| {
        Refusal::new(
            ErrorCode::RequestFailed,
            "the file has syntax errors: fix them first, formatting would lose what was written",
        )
    })?;
    if formatted == document.text {
        return Ok(Some(Vec::new()));
    }
    let whole = document
        .lines
        .range(&document.text, 0..document.text.len(), encoding);
    Ok(Some(vec![TextEdit::new(whole, formatted)]))
}

pub fn code_actions(
    context: &mut Context,
    params: CodeActionParams,
) -> Result<Option<CodeActionResponse>, Refusal> {
    let (index, file) = context.locate(&params.text_document.uri)?;
    let encoding = context.encoding;
    let project = &mut context.workspace.projects[index];
    let found = project.diagnostics().swap_remove(file.0 as usize);
    let view = project.view();
    let document = view.document(file);
    let wanted = document.lines.bytes(&document.text, params.range, encoding);
    let mut out = Vec::new();
    for diagnostic in &found {
        let Some(span) = diagnostic.primary_span() else {
            continue;
        };
        let overlaps = (span.start as usize) <= wanted.end && wanted.start <= span.end();
        if !overlaps {
            continue;
        }
        let fixes = Fixer { view, encoding }.fixes(diagnostic, span);
        if fixes.is_empty() {
            continue;
        }
        let shown = diagnostics::to_lsp(diagnostic, view.files, encoding, None);
        for (title, changes) in fixes {
            out.push(CodeActionOrCommand::CodeAction(CodeAction {
                title,
                kind: Some(CodeActionKind::QUICKFIX),
                diagnostics: shown.clone().map(|d| vec![d]),
                edit: Some(WorkspaceEdit::new(changes)),
                is_preferred: Some(true),
                ..Default::default()
            }));
        }
    }
    Ok(Some(out))
}

type Changes = HashMap<Uri, Vec<TextEdit>>;

struct Fixer<'p> {
    view: View<'p>,
    encoding: Encoding,
}

impl Fixer<'_> {
    fn fixes(&self, diagnostic: &Diagnostic, span: Span) -> Vec<(String, Changes)> {
        let mut out = Vec::new();
        if let Some(fix) = self.did_you_mean(diagnostic, span) {
            out.push(fix);
        }
        let fix = match diagnostic.code {
            Code::MissingUpdateGrant | Code::MissingRunGrant | Code::MissingReadGrant => {
                self.add_grant(diagnostic)
            }
            Code::UnknownSecret | Code::SecretUndeclared => self.declare_secret(span),
            Code::UnguardedSecretUpdate => self.guard_update(diagnostic, span),
            _ => None,
        };
        out.extend(fix);
        out
    }

    fn edit(&self, file: FileId, bytes: std::ops::Range<usize>, text: String) -> Changes {
        let document = self.view.document(file);
        let range = document.lines.range(&document.text, bytes, self.encoding);
        HashMap::from([(document.uri.clone(), vec![TextEdit::new(range, text)])])
    }

    /// "did you mean `x`?": the name written becomes `x`.
    fn did_you_mean(&self, diagnostic: &Diagnostic, span: Span) -> Option<(String, Changes)> {
        let help = diagnostic.help.as_deref()?;
        let suggestion = crate::check::suggestion(help)?;
        let written = self.view.document(span.file).snippet(span);
        // The span may cover `service.endpoint`: the last name is replaced.
        let last = written.rsplit('.').next().unwrap_or(written);
        if !is_identifier(last) || last == suggestion {
            return None;
        }
        let start = span.end() - last.len();
        Some((
            format!("Change `{last}` to `{suggestion}`"),
            self.edit(span.file, start..span.end(), suggestion.to_string()),
        ))
    }

    /// "add `grant G` to role `R`": the grant is added to the role.
    fn add_grant(&self, diagnostic: &Diagnostic) -> Option<(String, Changes)> {
        let help = diagnostic.help.as_deref()?;
        let rest = help.strip_prefix("add `grant ")?;
        let (grant, rest) = rest.split_once("` to role `")?;
        let (role_name, _) = rest.split_once('`')?;
        let role = self
            .view
            .program
            .roles
            .iter()
            .find(|r| r.name.text == role_name)?;
        let document = self.view.document(role.span.file);
        if !document.is_current() {
            return None;
        }
        let text = &document.text;
        let close = role.span.end().checked_sub(1)?;
        if text.as_bytes().get(close) != Some(&b'}') {
            return None;
        }
        let line_start = text[..close].rfind('\n').map_or(0, |i| i + 1);
        let (at, insert) = if text[line_start..close].trim().is_empty() {
            // The `}` has its own line: a line before it, indented as the
            // last grant.
            let indent = role
                .grants
                .last()
                .map(|g| {
                    let start = g.span.start as usize;
                    let line = text[..start].rfind('\n').map_or(0, |i| i + 1);
                    text[line..start].to_string()
                })
                .filter(|i| i.trim().is_empty())
                .unwrap_or_else(|| "  ".to_string());
            (line_start, format!("{indent}grant {grant}\n"))
        } else {
            (close, format!("grant {grant} "))
        };
        Some((
            format!("Add `grant {grant}` to role `{role_name}`"),
            self.edit(role.span.file, at..at, insert),
        ))
    }

    /// A secret used but not declared is declared, after the file's last
    /// secret (or at its top).
    fn declare_secret(&self, span: Span) -> Option<(String, Changes)> {
        let document = self.view.document(span.file);
        let written = document.snippet(span);
        let name = written.rsplit('.').next().unwrap_or(written);
        if !is_identifier(name) {
            return None;
        }
        let program = &self.view.program;
        if program.secrets.iter().any(|s| s.name.text == name) {
            return None;
        }
        let last = program
            .secrets
            .iter()
            .filter(|s| s.span.file == span.file)
            .max_by_key(|s| s.span.end());
        let declaration = format!("secret {name} {{ environment_specific }}\n");
        let (at, insert) = match last {
            Some(secret) => {
                let end = document.text[secret.span.end()..]
                    .find('\n')
                    .map_or(document.text.len(), |i| secret.span.end() + i + 1);
                (end, declaration)
            }
            // After a byte-order mark, which must stay first.
            None => (
                if document.text.starts_with(crate::source::BOM) {
                    crate::source::BOM.len_utf8()
                } else {
                    0
                },
                format!("{declaration}\n"),
            ),
        };
        Some((
            format!("Declare `secret {name} {{ environment_specific }}`"),
            self.edit(span.file, at..at, insert),
        ))
    }

    /// An update whose value may be empty goes inside `if has_value(X)`.
    fn guard_update(&self, diagnostic: &Diagnostic, span: Span) -> Option<(String, Changes)> {
        let help = diagnostic.help.as_deref()?;
        let (_, rest) = help.split_once("if has_value(")?;
        let (value, _) = rest.split_once(')')?;
        let statement = self.update_statement(span)?;
        let document = self.view.document(span.file);
        let text = &document.text;
        let range = statement.range();
        let line_start = text[..range.start].rfind('\n').map_or(0, |i| i + 1);
        let indent = &text[line_start..range.start];
        if !indent.trim().is_empty() {
            return None;
        }
        let body = text[range.clone()].replace('\n', "\n  ");
        let wrapped = format!("if has_value({value}) {{\n{indent}  {body}\n{indent}}}");
        Some((
            format!("Update only if `{value}` has a value"),
            self.edit(span.file, range, wrapped),
        ))
    }

    /// The innermost `update_secret` statement that holds a span.
    fn update_statement(&self, span: Span) -> Option<Span> {
        let program = &self.view.program;
        let mut best: Option<Span> = None;
        let mut look = |block: &Block| {
            block.walk(&mut |statement| {
                let s = statement.span;
                let holds = s.file == span.file && s.start <= span.start && span.end() <= s.end();
                if holds
                    && matches!(statement.kind, StatementKind::UpdateSecrets { .. })
                    && best.is_none_or(|b| s.len < b.len)
                {
                    best = Some(s);
                }
            })
        };
        for service in &program.services {
            for action in &service.actions {
                look(&action.body);
            }
        }
        best
    }
}
