//! Go to definition, find references, the symbol lists and rename: all
//! read the program's [`Names`](crate::check::model::Names), which the checker records.

use std::collections::HashMap;

use lsp_server::ErrorCode;
use lsp_types::*;

use super::workspace::View;
use super::{Context, Refusal};
use crate::check::model::{Declaration, Occurrence, Symbol};

/// The name under the cursor, with the program it is in. `None` when the
/// cursor is on no name, or the file does not parse now (its spans would
/// point into text that is gone).
pub fn name_at<'c>(
    context: &'c mut Context,
    at: &TextDocumentPositionParams,
) -> Result<Option<(View<'c>, Occurrence)>, Refusal> {
    let (index, file) = context.locate(&at.text_document.uri)?;
    let encoding = context.encoding;
    let view = context.workspace.projects[index].view();
    let document = view.document(file);
    if !document.is_current() {
        return Ok(None);
    }
    let offset = document.offset(at.position, encoding);
    let found = view.names().at(file, offset).cloned();
    Ok(found.map(|occurrence| (view, occurrence)))
}

pub fn definition(
    context: &mut Context,
    params: GotoDefinitionParams,
) -> Result<Option<GotoDefinitionResponse>, Refusal> {
    let encoding = context.encoding;
    let Some((view, occurrence)) = name_at(context, &params.text_document_position_params)? else {
        return Ok(None);
    };
    // A declaration in a file that does not parse now is where it was in
    // text that is gone: no answer beats a wrong place.
    let span = view
        .names()
        .declaration(&occurrence.symbol)
        .map(|d| d.name)
        .filter(|span| view.document(span.file).is_current());
    Ok(span.map(|span| GotoDefinitionResponse::Scalar(view.location(span, encoding))))
}

pub fn references(
    context: &mut Context,
    params: ReferenceParams,
) -> Result<Option<Vec<Location>>, Refusal> {
    let encoding = context.encoding;
    let Some((view, occurrence)) = name_at(context, &params.text_document_position)? else {
        return Ok(None);
    };
    let include_declaration = params.context.include_declaration;
    let names = &view.names();
    let declarations: Vec<_> = names
        .declarations
        .iter()
        .filter(|d| d.symbol == occurrence.symbol)
        .map(|d| d.name)
        .collect();
    let spans: Vec<_> = names
        .spans(&occurrence.symbol)
        .iter()
        .filter(|span| include_declaration || !declarations.contains(span))
        .copied()
        .collect();
    Ok(Some(
        spans
            .into_iter()
            .filter(|span| view.document(span.file).is_current())
            .map(|span| view.location(span, encoding))
            .collect(),
    ))
}

fn symbol_kind(symbol: &Symbol) -> SymbolKind {
    match symbol {
        Symbol::Secret(_) => SymbolKind::KEY,
        Symbol::Role(_) => SymbolKind::CLASS,
        Symbol::Identity(_) => SymbolKind::OBJECT,
        Symbol::Client(_) => SymbolKind::INTERFACE,
        Symbol::Service(_) => SymbolKind::MODULE,
        Symbol::Variable { .. } => SymbolKind::VARIABLE,
        Symbol::Action { .. } => SymbolKind::FUNCTION,
        Symbol::Endpoint { .. } => SymbolKind::METHOD,
        Symbol::Param { .. } => SymbolKind::TYPE_PARAMETER,
        Symbol::Schedule(_) => SymbolKind::EVENT,
    }
}

pub fn document_symbols(
    context: &mut Context,
    params: DocumentSymbolParams,
) -> Result<Option<DocumentSymbolResponse>, Refusal> {
    let (index, file) = context.locate(&params.text_document.uri)?;
    let encoding = context.encoding;
    let view = context.workspace.projects[index].view();
    if !view.document(file).is_current() {
        return Ok(None);
    }
    let names = &view.names();
    let in_file: Vec<&Declaration> = names
        .declarations
        .iter()
        .filter(|d| d.name.file == file)
        .collect();
    let document = view.document(file);
    #[allow(deprecated)]
    let symbol = |d: &Declaration, children: Option<Vec<DocumentSymbol>>| DocumentSymbol {
        name: d.symbol.name().to_string(),
        detail: Some(d.symbol.kind().to_string()),
        kind: symbol_kind(&d.symbol),
        tags: None,
        deprecated: None,
        range: document.range(d.whole, encoding),
        selection_range: document.range(d.name, encoding),
        children,
    };
    let children_of = |container: &str| -> Vec<&Declaration> {
        in_file
            .iter()
            .filter(|d| d.container.as_deref() == Some(container))
            .copied()
            .collect()
    };
    let mut top = Vec::new();
    for declaration in in_file.iter().filter(|d| d.container.is_none()) {
        let children = match &declaration.symbol {
            Symbol::Service(service) => Some(
                children_of(service)
                    .into_iter()
                    .map(|member| {
                        let params = match &member.symbol {
                            Symbol::Endpoint { service, name } => {
                                let list: Vec<_> = children_of(&format!("{service}.{name}"))
                                    .into_iter()
                                    .map(|p| symbol(p, None))
                                    .collect();
                                (!list.is_empty()).then_some(list)
                            }
                            _ => None,
                        };
                        symbol(member, params)
                    })
                    .collect(),
            ),
            _ => None,
        };
        top.push(symbol(declaration, children));
    }
    Ok(Some(DocumentSymbolResponse::Nested(top)))
}

/// Whether every character of the query appears in the name, in order,
/// ignoring case: `hsref` finds `hubspot_refresh`.
fn matches_query(name: &str, query: &str) -> bool {
    let mut wanted = query.chars().flat_map(char::to_lowercase).peekable();
    for c in name.chars().flat_map(char::to_lowercase) {
        if wanted.peek() == Some(&c) {
            wanted.next();
        }
    }
    wanted.peek().is_none()
}

pub fn workspace_symbols(
    context: &mut Context,
    params: WorkspaceSymbolParams,
) -> Result<Option<WorkspaceSymbolResponse>, Refusal> {
    let encoding = context.encoding;
    let mut found = Vec::new();
    for project in &mut context.workspace.projects {
        let view = project.view();
        for declaration in &view.names().declarations {
            let document = view.document(declaration.name.file);
            if !document.is_current()
                || !matches_query(&declaration.symbol.qualified(), &params.query)
            {
                continue;
            }
            #[allow(deprecated)]
            found.push(SymbolInformation {
                name: declaration.symbol.name().to_string(),
                kind: symbol_kind(&declaration.symbol),
                tags: None,
                deprecated: None,
                location: Location::new(
                    document.uri.clone(),
                    document.range(declaration.name, encoding),
                ),
                container_name: declaration.container.clone(),
            });
            if found.len() >= 1000 {
                return Ok(Some(WorkspaceSymbolResponse::Flat(found)));
            }
        }
    }
    Ok(Some(WorkspaceSymbolResponse::Flat(found)))
}

pub fn prepare_rename(
    context: &mut Context,
    params: TextDocumentPositionParams,
) -> Result<Option<PrepareRenameResponse>, Refusal> {
    let encoding = context.encoding;
    let Some((view, occurrence)) = name_at(context, &params)? else {
        return Ok(None);
    };
    renamable(view, &occurrence)?;
    let document = view.document(occurrence.span.file);
    Ok(Some(PrepareRenameResponse::RangeWithPlaceholder {
        range: document.range(occurrence.span, encoding),
        placeholder: occurrence.symbol.name().to_string(),
    }))
}

fn renamable(view: View, occurrence: &Occurrence) -> Result<(), Refusal> {
    if !view.names().is_declared(&occurrence.symbol) {
        return Err(Refusal::new(
            ErrorCode::RequestFailed,
            format!(
                "`{}` is not declared: declare it before renaming it",
                occurrence.symbol.qualified()
            ),
        ));
    }
    if let Some(broken) = view.files.iter().find(|d| !d.is_current()) {
        return Err(Refusal::new(
            ErrorCode::RequestFailed,
            format!(
                "`{}` does not parse: fix it first, so that no use of the name is missed",
                broken.path.display()
            ),
        ));
    }
    Ok(())
}

/// Whether a character may be part of a name (the grammar's `ident`).
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Whether `name` is written as an identifier of the language.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(is_name_char)
}

pub fn rename(
    context: &mut Context,
    params: RenameParams,
) -> Result<Option<WorkspaceEdit>, Refusal> {
    let encoding = context.encoding;
    let new_name = params.new_name.trim().to_string();
    let Some((view, occurrence)) = name_at(context, &params.text_document_position)? else {
        return Err(Refusal::new(
            ErrorCode::RequestFailed,
            "there is no declared name here to rename",
        ));
    };
    renamable(view, &occurrence)?;
    // `true`, `false` and `null` parse as values where a name is read.
    if !is_identifier(&new_name) || matches!(new_name.as_str(), "true" | "false" | "null") {
        return Err(Refusal::new(
            ErrorCode::InvalidParams,
            format!(
                "`{new_name}` is not a name: names are letters, digits and `_`, start with a letter or `_`, and are not `true`, `false` or `null`"
            ),
        ));
    }
    let target = occurrence.symbol.renamed(&new_name);
    let names = &view.names();
    if target != occurrence.symbol
        && let Some(existing) = names.declaration(&target)
    {
        let document = view.document(existing.name.file);
        let at = document
            .range(existing.name, super::text::Encoding::Utf8)
            .start;
        let (line, column) = (at.line + 1, at.character + 1);
        return Err(Refusal::new(
            ErrorCode::RequestFailed,
            format!(
                "cannot rename to `{new_name}`: {} `{}` is already declared at {}:{line}:{column}",
                target.kind(),
                target.qualified(),
                document.path.display()
            ),
        ));
    }
    let mut changes: HashMap<Uri, Vec<TextEdit>> = HashMap::new();
    for span in names.spans(&occurrence.symbol) {
        let document = view.document(span.file);
        changes
            .entry(document.uri.clone())
            .or_default()
            .push(TextEdit::new(
                document.range(*span, encoding),
                new_name.clone(),
            ));
    }
    for edits in changes.values_mut() {
        edits.sort_by_key(|e| (e.range.start.line, e.range.start.character));
        edits.dedup();
    }
    still_parses(view, &occurrence.symbol, &new_name)?;
    Ok(Some(WorkspaceEdit::new(changes)))
}

/// Refuses a rename after which a file would not parse: a new name may be
/// a keyword where the grammar reads one (`run_service`, `as`, `into`).
fn still_parses(view: View, symbol: &Symbol, new_name: &str) -> Result<(), Refusal> {
    let mut by_file: HashMap<crate::source::FileId, Vec<crate::source::Span>> = HashMap::new();
    for span in view.names().spans(symbol) {
        by_file.entry(span.file).or_default().push(*span);
    }
    for (file, mut spans) in by_file {
        let document = view.document(file);
        let mut text = document.text.clone();
        spans.sort_by_key(|s| std::cmp::Reverse(s.start));
        spans.dedup();
        for span in spans {
            text.replace_range(span.range(), new_name);
        }
        let (_, found) = crate::syntax::parse_file(file, &text);
        if found
            .iter()
            .any(|d| d.code == crate::diagnostic::Code::Syntax)
        {
            return Err(Refusal::new(
                ErrorCode::RequestFailed,
                format!(
                    "cannot rename to `{new_name}`: `{}` would no longer parse, since the language reads that word there",
                    document.path.display()
                ),
            ));
        }
    }
    Ok(())
}
