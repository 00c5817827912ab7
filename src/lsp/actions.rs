//! Formatting, and quick fixes: the fixes the checker attached to each
//! diagnostic, as they are (nothing here reads a help line).

use std::collections::HashMap;

use lsp_server::ErrorCode;
use lsp_types::*;

use super::text::Encoding;
use super::workspace::View;
use super::{Context, Refusal, diagnostics};
use crate::diagnostic::Fix;

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
    let mut out: Vec<CodeAction> = Vec::new();
    for diagnostic in &found {
        let Some(span) = diagnostic.primary_span() else {
            continue;
        };
        let overlaps = (span.start as usize) <= wanted.end && wanted.start <= span.end();
        if !overlaps || diagnostic.fixes.is_empty() {
            continue;
        }
        let shown = diagnostics::to_lsp(diagnostic, view.files, encoding, None);
        for fix in &diagnostic.fixes {
            let Some(edit) = workspace_edit(view, fix, encoding) else {
                continue;
            };
            // The same fix for several diagnostics (one grant that two
            // runs need) is offered once, for all of them.
            if let Some(same) = out
                .iter_mut()
                .find(|a| a.title == fix.title && a.edit.as_ref() == Some(&edit))
            {
                if let (Some(list), Some(d)) = (&mut same.diagnostics, shown.clone()) {
                    list.push(d);
                }
                continue;
            }
            out.push(CodeAction {
                title: fix.title.clone(),
                kind: Some(CodeActionKind::QUICKFIX),
                diagnostics: shown.clone().map(|d| vec![d]),
                edit: Some(edit),
                is_preferred: Some(fix.safe),
                ..Default::default()
            });
        }
    }
    Ok(Some(
        out.into_iter()
            .map(CodeActionOrCommand::CodeAction)
            .collect(),
    ))
}

/// A fix as the editor applies it; `None` when one of its files is not
/// the text the program was checked from.
fn workspace_edit(view: View, fix: &Fix, encoding: Encoding) -> Option<WorkspaceEdit> {
    let mut changes: HashMap<Uri, Vec<TextEdit>> = HashMap::new();
    for edit in &fix.edits {
        let document = view.files.get(edit.span.file.0 as usize)?;
        if !document.is_current() || edit.span.end() > document.text.len() {
            return None;
        }
        let range = document
            .lines
            .range(&document.text, edit.span.range(), encoding);
        changes
            .entry(document.uri.clone())
            .or_default()
            .push(TextEdit::new(range, edit.text.clone()));
    }
    Some(WorkspaceEdit::new(changes))
}
