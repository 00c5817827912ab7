//! Hover: what a name is (for a secret: how it is kept and who may touch
//! it, never its value), what a keyword or function does, and when a
//! schedule's timing fires next.

use lsp_types::*;

use super::workspace::View;
use super::{Context, Refusal, keywords};
use crate::check::functions::Function;
use crate::check::model::Symbol;
use crate::check::symbols::{grants_read_secret, grants_run, grants_update_secret};
use crate::source::FileId;
use crate::syntax::ast::*;

pub fn hover(context: &mut Context, params: HoverParams) -> Result<Option<Hover>, Refusal> {
    let at = params.text_document_position_params;
    let (index, file) = context.locate(&at.text_document.uri)?;
    let encoding = context.encoding;
    let view = context.workspace.projects[index].view();
    let document = view.document(file);
    let offset = document.offset(at.position, encoding);
    let word = word_at(&document.text, offset);
    let current = document.is_current();
    let (text, range) = if let Some(occurrence) =
        current.then(|| view.names().at(file, offset)).flatten()
    {
        (describe(view, &occurrence.symbol), occurrence.span.range())
    } else if let Some(timing) = current.then(|| timing_at(view, file, offset)).flatten() {
        timing
    } else if let Some(range) = word.clone() {
        let word = &document.text[range.clone()];
        let followed_by_paren = document.text[range.end..].trim_start().starts_with('(');
        match (Function::from_name(word), keywords::keyword(word)) {
            (Some(function), _) if followed_by_paren => (
                format!(
                    "```svc\n{}\n```\n{}",
                    function.signature(),
                    function.summary()
                ),
                range,
            ),
            (_, Some(keyword)) => (format!("**`{}`**: {}", keyword.word, keyword.doc), range),
            _ => match crate::syntax::duration::parse(word) {
                Ok(duration) if word.starts_with(|c: char| c.is_ascii_digit()) => (
                    match duration.subsec_millis() {
                        0 => format!("duration `{word}`: {} seconds", duration.as_secs()),
                        _ => format!("duration `{word}`: {} milliseconds", duration.as_millis()),
                    },
                    range,
                ),
                _ => return Ok(None),
            },
        }
    } else {
        return Ok(None);
    };
    Ok(Some(Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value: text,
        }),
        range: Some(document.lines.range(&document.text, range, encoding)),
    }))
}

/// The identifier (or duration literal) around a byte offset.
pub fn word_at(text: &str, offset: usize) -> Option<std::ops::Range<usize>> {
    let is_word = super::navigate::is_name_char;
    let offset = offset.min(text.len());
    let start = text[..offset]
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_word(*c))
        .last()
        .map_or(offset, |(i, _)| i);
    let end = text[offset..]
        .char_indices()
        .find(|(_, c)| !is_word(*c))
        .map_or(text.len(), |(i, _)| offset + i);
    (start < end).then_some(start..end)
}

/// Hover on a schedule's `every` or `cron`: the next times it fires.
fn timing_at(view: View, file: FileId, offset: usize) -> Option<(String, std::ops::Range<usize>)> {
    let inside = |span: crate::source::Span| {
        span.file == file && (span.start as usize) <= offset && offset <= span.end()
    };
    let schedule = view.program.schedules.iter().find(|s| {
        s.every.as_ref().is_some_and(|e| inside(e.span))
            || s.cron.as_ref().is_some_and(|c| inside(c.span))
    })?;
    let span = schedule
        .every
        .as_ref()
        .map(|e| e.span)
        .filter(|s| inside(*s))
        .or_else(|| schedule.cron.as_ref().map(|c| c.span))?;
    let mut text = format!("schedule `{}`", schedule.name.text);
    match crate::schedule::Schedule::from_decl(schedule) {
        Some(timing) => {
            text.push_str(&format!(
                ": {}\n\nNext runs (UTC), were it to start now:",
                timing.describe()
            ));
            let upcoming = timing.upcoming(&Default::default(), None, chrono::Utc::now(), 3);
            for at in upcoming {
                text.push_str(&format!("\n- {}", at.format("%Y-%m-%d %H:%M:%S")));
            }
        }
        None => text.push_str(": the timing is not complete or not valid (see its diagnostics)"),
    }
    Some((text, span.range()))
}

/// What a declared name is, in Markdown.
pub fn describe(view: View, symbol: &Symbol) -> String {
    let program = &view.program;
    let declared = view.names().declaration(symbol);
    let Some(declaration) = declared else {
        return format!("`{}`: not declared", symbol.qualified());
    };
    let header = |text: String| format!("```svc\n{text}\n```");
    let location = {
        let document = view.document(declaration.name.file);
        let line = document
            .lines
            .position(
                &document.text,
                declaration.name.start as usize,
                super::text::Encoding::Utf8,
            )
            .line
            + 1;
        format!("declared in `{}`, line {line}", file_name(&document.path))
    };
    let mut out = match symbol {
        Symbol::Secret(name) => describe_secret(view, name, &header),
        Symbol::Role(name) => {
            let role = program.roles.iter().find(|r| r.name.text == *name);
            let mut text = header(format!("role {name}"));
            if let Some(role) = role {
                let grants: Vec<String> = role.grants.iter().map(grant_text).collect();
                text.push_str(&format!("\n\nGrants: {}", list(&grants)));
                let holders: Vec<String> = program
                    .identities
                    .iter()
                    .filter(|i| i.roles.iter().any(|r| r.text == *name))
                    .map(|i| format!("`{}`", i.name.text))
                    .collect();
                text.push_str(&format!("\n\nGiven to: {}", list(&holders)));
            }
            text
        }
        Symbol::Identity(name) => {
            let identity = program.identities.iter().find(|i| i.name.text == *name);
            match identity {
                Some(identity) => {
                    let roles: Vec<String> = identity
                        .roles
                        .iter()
                        .map(|r| format!("`{}`", r.text))
                        .collect();
                    format!(
                        "{}\n\nRoles: {}",
                        header(format!("{} {name}", identity.kind.keyword())),
                        list(&roles)
                    )
                }
                None => header(format!("identity {name}")),
            }
        }
        Symbol::Client(name) => header(format!("oauth_client {name}")),
        Symbol::Service(name) => {
            let service = program.services.iter().find(|s| s.name.text == *name);
            let mut text = header(format!("service {name}"));
            if let Some(service) = service {
                let endpoints: Vec<String> = service
                    .endpoints
                    .iter()
                    .map(|e| format!("`{}`", e.name.text))
                    .collect();
                text.push_str(&format!(
                    "\n\n{} variables, {} actions; endpoints: {}",
                    service
                        .vars
                        .iter()
                        .filter(|v| !crate::providers::fill::is_answer_variable(&v.name.text))
                        .count(),
                    service.actions.len(),
                    list(&endpoints)
                ));
            }
            text
        }
        Symbol::Variable { service, name } => {
            let type_name = program
                .services
                .iter()
                .find(|s| s.name.text == *service)
                .and_then(|s| s.vars.iter().find(|v| v.name.text == *name))
                .map_or("?", |v| v.type_name.text.as_str());
            let mut text = header(format!("var {name}: {type_name}"));
            text.push_str(&format!("\n\nA variable of service `{service}`"));
            if view.analyzed.analysis.is_sensitive(service, name) {
                text.push_str(": it may hold a secret's value, so logs and records mask it");
            }
            text
        }
        Symbol::Action { service, name } => {
            let endpoints: Vec<String> = program
                .services
                .iter()
                .filter(|s| s.name.text == *service)
                .flat_map(|s| s.endpoints_processing(name))
                .map(|e| format!("`{service}.{}`", e.name.text))
                .collect();
            format!(
                "{}\n\nProcessed by: {}",
                header(format!("action {service}.{name}")),
                list(&endpoints)
            )
        }
        Symbol::Endpoint { service, name } => describe_endpoint(program, service, name, &header),
        Symbol::Param {
            service,
            endpoint,
            name,
        } => {
            let param = program
                .services
                .iter()
                .find(|s| s.name.text == *service)
                .and_then(|s| s.endpoints.iter().find(|e| e.name.text == *endpoint))
                .and_then(|e| e.params.as_ref())
                .and_then(|p| p.iter().find(|p| p.name.text == *name));
            let written = param.map_or(String::new(), |p| {
                let optional = if p.optional { "?" } else { "" };
                let default = p
                    .default
                    .as_ref()
                    .map_or(String::new(), |d| format!(" = {}", crate::format::expr(d)));
                format!(": {}{optional}{default}", p.type_name.text)
            });
            format!(
                "{}\n\nA parameter of endpoint `{service}.{endpoint}`",
                header(format!("{name}{written}"))
            )
        }
        Symbol::Schedule(name) => {
            let schedule = program.schedules.iter().find(|s| s.name.text == *name);
            let mut text = header(format!("schedule {name}"));
            if let Some(timing) = schedule.and_then(crate::schedule::Schedule::from_decl) {
                text.push_str(&format!(
                    "\n\nRuns `{}` as `{}`, {}",
                    timing.endpoint_key(),
                    timing.account,
                    timing.describe()
                ));
            }
            text
        }
    };
    out.push_str(&format!("\n\n{location}"));
    out
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

fn grant_text(grant: &Grant) -> String {
    match &grant.kind {
        GrantKind::Run(pattern) => format!(
            "`run {}.{}`",
            pattern.service.text,
            pattern.endpoint.as_ref().map_or("*", |e| e.text.as_str())
        ),
        GrantKind::UpdateSecret(name) => format!("`update_secret {}`", name.text),
        GrantKind::ReadSecret(name) => format!("`read_secret {}`", name.text),
        GrantKind::ReadStatus(name) => format!("`read_status {}`", name.text),
        GrantKind::Connect(name) => format!("`connect {}`", name.text),
    }
}

/// A secret's declaration and who may touch it. It never shows a value:
/// the language server does not read the stores.
fn describe_secret(view: View, name: &str, header: &dyn Fn(String) -> String) -> String {
    let program = view.program;
    let Some(secret) = program.secrets.iter().find(|s| s.name.text == name) else {
        return header(format!("secret {name}"));
    };
    let mut text = header(format!("secret {name}"));
    let scope = if secret.is_environment_specific() {
        "environment-specific: each environment has its own value"
    } else {
        "shared: one value for every environment"
    };
    text.push_str(&format!("\n\n- {scope}"));
    text.push_str(if secret.locked.is_some() {
        "\n- locked: no endpoint may update it"
    } else {
        "\n- not locked"
    });
    if let Some(refresh) = &secret.refreshed_by {
        text.push_str(&format!(
            "\n- refreshed on read by `{}` as `{}`",
            refresh.endpoint.display(),
            refresh.service_account.text
        ));
    }
    let roles = |grants: fn(&RoleDecl, &str) -> bool| -> Vec<String> {
        program
            .roles
            .iter()
            .filter(|r| grants(r, name))
            .map(|r| format!("`{}`", r.name.text))
            .collect()
    };
    text.push_str(&format!(
        "\n- update granted by: {}",
        list(&roles(grants_update_secret))
    ));
    text.push_str(&format!(
        "\n- read granted by: {}",
        list(&roles(grants_read_secret))
    ));
    // Every endpoint whose run can update it, through `run_service` too.
    let updaters: Vec<String> = view
        .analyzed
        .analysis
        .effects
        .iter()
        .filter(|(_, effects)| effects.writes.contains(name))
        .map(|(endpoint, _)| format!("`{endpoint}`"))
        .collect();
    text.push_str(&format!("\n- updated by: {}", list(&updaters)));
    if let Some(description) = &secret.description {
        text.push_str(&format!("\n\n{}", description.value));
    }
    text
}

fn describe_endpoint(
    program: &Program,
    service: &str,
    name: &str,
    header: &dyn Fn(String) -> String,
) -> String {
    let endpoint = program
        .services
        .iter()
        .find(|s| s.name.text == service)
        .and_then(|s| s.endpoints.iter().find(|e| e.name.text == name));
    let mut text = header(format!("endpoint {service}.{name}"));
    let Some(endpoint) = endpoint else {
        return text;
    };
    let methods: Vec<&str> = endpoint.methods.iter().map(|m| m.text.as_str()).collect();
    text.push_str(&format!(
        "\n\n- methods: {}\n- processes: {}",
        if methods.is_empty() {
            "none".to_string()
        } else {
            methods.join(", ")
        },
        endpoint
            .process
            .as_ref()
            .map_or("nothing", |p| p.text.as_str())
    ));
    let runners: Vec<String> = program
        .roles
        .iter()
        .filter(|r| grants_run(r, service, name))
        .map(|r| format!("`{}`", r.name.text))
        .collect();
    text.push_str(&format!("\n- run granted by: {}", list(&runners)));
    if let Some(description) = &endpoint.description {
        text.push_str(&format!("\n\n{}", description.value));
    }
    text
}
