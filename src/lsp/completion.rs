//! Completion in context: what may be written at the cursor, read from
//! the text before it (the blocks it is in and the words just before) and
//! from the program's declarations.

use lsp_types::*;

use super::keywords::{self, Context as Where};
use super::navigate::is_name_char;
use super::workspace::View;
use super::{Context, Refusal};
use crate::check::functions::Function;
use crate::syntax::ast::{IdentityKind, Program};

pub fn complete(
    context: &mut Context,
    params: CompletionParams,
) -> Result<Option<CompletionResponse>, Refusal> {
    let at = params.text_document_position;
    let (index, file) = context.locate(&at.text_document.uri)?;
    let encoding = context.encoding;
    let view = context.workspace.projects[index].view();
    let document = view.document(file);
    let offset = document.offset(at.position, encoding);
    let before = &document.text[..offset];
    Ok(Some(CompletionResponse::Array(items(view, before))))
}

/// The completions for a cursor after `before`.
fn items(view: View, before: &str) -> Vec<CompletionItem> {
    let program = &view.program;
    let line = before.rsplit('\n').next().unwrap_or("");
    let partial_start = line
        .char_indices()
        .rev()
        .find(|(_, c)| !is_name_char(*c))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let lead = &line[..partial_start];
    let words: Vec<&str> = lead.split_whitespace().collect();
    let last = words.last().copied().unwrap_or("");
    let blocks = enclosing(before);
    let service = blocks.iter().rev().find_map(|b| b.service.clone());

    if lead.ends_with("secret.") {
        return secrets(program);
    }
    if lead.ends_with("param.") {
        return params(program, service.as_deref());
    }
    if lead.ends_with("client(") {
        return named(
            program.oauth_clients.iter().map(|c| &c.name.text),
            CompletionItemKind::INTERFACE,
            "oauth_client",
        );
    }
    let endpoint_wanted = matches!(
        words.as_slice(),
        [.., "grant", "run"] | [.., "run_service"] | [.., "refreshed_by"]
    ) || (last == "endpoint" && innermost(&blocks) == Where::Schedule);
    if endpoint_wanted {
        let wildcard = matches!(words.as_slice(), [.., "grant", "run"]);
        return endpoints(program, wildcard);
    }
    match words.as_slice() {
        [.., "update_secret"] | [.., "read_secret"] | [.., "before_expiry"] | [.., "reveals"] => {
            return secrets(program);
        }
        [.., "roles"] => {
            return named(
                program.roles.iter().map(|r| &r.name.text),
                CompletionItemKind::CLASS,
                "role",
            );
        }
        [.., "service_account"] | [.., "as"] if innermost(&blocks) != Where::TopLevel => {
            let accounts = program
                .identities
                .iter()
                .filter(|i| i.kind == IdentityKind::ServiceAccount)
                .map(|i| &i.name.text);
            return named(accounts, CompletionItemKind::STRUCT, "service_account");
        }
        [.., "process"] => {
            let actions = program
                .services
                .iter()
                .filter(|s| Some(&s.name.text) == service.as_ref())
                .flat_map(|s| &s.actions)
                .map(|a| &a.name.text);
            return named(actions, CompletionItemKind::FUNCTION, "action");
        }
        _ => {}
    }

    // At the start of a line or after `=`: keywords, names and snippets.
    let place = innermost(&blocks);
    // Words that continue a statement are offered where they continue
    // one: `else` and `catch` after a block's `}`, the others never first.
    let after_block = last == "}";
    let keyword_fits = |word: &str| {
        let continues = CONTINUING.contains(&word);
        match (after_block, word) {
            (true, "else" | "catch") => true,
            (true, _) => false,
            (false, _) => !(continues && words.is_empty()),
        }
    };
    let mut out: Vec<CompletionItem> = keywords::in_context(place)
        .filter(|k| keyword_fits(k.word))
        .map(|k| CompletionItem {
            label: k.word.to_string(),
            kind: Some(CompletionItemKind::KEYWORD),
            detail: Some(k.doc.to_string()),
            ..Default::default()
        })
        .collect();
    let in_expression = matches!(
        place,
        Where::Statement | Where::WebRequest | Where::Endpoint
    ) && (lead.trim_end().ends_with('=')
        || lead.trim_end().ends_with('(')
        || !words.is_empty());
    if matches!(place, Where::Statement | Where::WebRequest) || in_expression {
        if let Some(service) = &service {
            let vars = program
                .services
                .iter()
                .filter(|s| s.name.text == *service)
                .flat_map(|s| &s.vars);
            for var in vars {
                out.push(CompletionItem {
                    label: var.name.text.clone(),
                    kind: Some(CompletionItemKind::VARIABLE),
                    detail: Some(format!("var {}: {}", var.name.text, var.type_name.text)),
                    ..Default::default()
                });
            }
        }
        for function in Function::ALL {
            out.push(CompletionItem {
                label: function.name().to_string(),
                kind: Some(CompletionItemKind::FUNCTION),
                detail: Some(function.signature()),
                documentation: Some(Documentation::String(function.summary().to_string())),
                insert_text: Some(format!("{}($1)", function.name())),
                insert_text_format: Some(InsertTextFormat::SNIPPET),
                ..Default::default()
            });
        }
        for word in ["secret", "param"] {
            out.push(CompletionItem {
                label: format!("{word}."),
                kind: Some(CompletionItemKind::MODULE),
                command: Some(Command::new(
                    "suggest".to_string(),
                    "editor.action.triggerSuggest".to_string(),
                    None,
                )),
                ..Default::default()
            });
        }
    }
    out.extend(snippets(place));
    out
}

/// Keywords that continue a statement begun before them, never start one.
const CONTINUING: &[&str] = &[
    "else",
    "catch",
    "in",
    "into",
    "as",
    "max",
    "web_request_error",
];

fn named<'a>(
    names: impl Iterator<Item = &'a String>,
    kind: CompletionItemKind,
    what: &str,
) -> Vec<CompletionItem> {
    let mut seen = std::collections::BTreeSet::new();
    names
        .filter(|n| seen.insert(n.as_str()))
        .map(|name| CompletionItem {
            label: name.clone(),
            kind: Some(kind),
            detail: Some(what.to_string()),
            ..Default::default()
        })
        .collect()
}

fn secrets(program: &Program) -> Vec<CompletionItem> {
    program
        .secrets
        .iter()
        .map(|secret| {
            let mut detail = String::from(if secret.environment_specific {
                "environment-specific"
            } else {
                "shared"
            });
            if secret.locked.is_some() {
                detail.push_str(", locked");
            }
            CompletionItem {
                label: secret.name.text.clone(),
                kind: Some(CompletionItemKind::CONSTANT),
                detail: Some(format!("secret ({detail})")),
                ..Default::default()
            }
        })
        .collect()
}

fn params(program: &Program, service: Option<&str>) -> Vec<CompletionItem> {
    let endpoints = program
        .services
        .iter()
        .filter(|s| Some(s.name.text.as_str()) == service)
        .flat_map(|s| &s.endpoints);
    let mut out = Vec::new();
    for endpoint in endpoints {
        for param in endpoint.params.iter().flatten() {
            if out
                .iter()
                .any(|i: &CompletionItem| i.label == param.name.text)
            {
                continue;
            }
            out.push(CompletionItem {
                label: param.name.text.clone(),
                kind: Some(CompletionItemKind::TYPE_PARAMETER),
                detail: Some(format!("{}: {}", param.name.text, param.type_name.text)),
                ..Default::default()
            });
        }
    }
    out
}

/// `SERVICE.ENDPOINT` for every endpoint, and `SERVICE.*` for grants.
fn endpoints(program: &Program, wildcard: bool) -> Vec<CompletionItem> {
    let mut out = Vec::new();
    for service in &program.services {
        for endpoint in &service.endpoints {
            out.push(CompletionItem {
                label: format!("{}.{}", service.name.text, endpoint.name.text),
                kind: Some(CompletionItemKind::METHOD),
                detail: endpoint.description.as_ref().map(|d| d.value.clone()),
                ..Default::default()
            });
        }
        if wildcard {
            out.push(CompletionItem {
                label: format!("{}.*", service.name.text),
                kind: Some(CompletionItemKind::MODULE),
                detail: Some(format!("every endpoint of `{}`", service.name.text)),
                ..Default::default()
            });
        }
    }
    out
}

fn snippets(place: Where) -> Vec<CompletionItem> {
    let snippet = |label: &str, detail: &str, body: &str| CompletionItem {
        label: label.to_string(),
        kind: Some(CompletionItemKind::SNIPPET),
        detail: Some(detail.to_string()),
        insert_text: Some(body.to_string()),
        insert_text_format: Some(InsertTextFormat::SNIPPET),
        ..Default::default()
    };
    match place {
        Where::TopLevel => vec![
            snippet(
                "schedule",
                "a schedule that runs an endpoint",
                "schedule ${1:name} {\n  endpoint ${2:service}.${3:endpoint}\n  service_account ${4:account}\n  every ${5:1h}\n}",
            ),
            snippet(
                "secret",
                "an environment-specific secret",
                "secret ${1:NAME} { environment_specific }",
            ),
            snippet(
                "service",
                "a service with an action and an endpoint",
                "service ${1:name} {\n  var ${2:token}: string\n\n  action ${3:refresh} {\n    $0\n  }\n\n  endpoint ${4:refresh} {\n    methods POST\n    process ${3:refresh}\n  }\n}",
            ),
        ],
        Where::Statement => vec![
            snippet(
                "web_request",
                "a token request with a result mapping",
                "web_request {\n  method POST\n  url \"${1:https://}\"\n  form {\n    grant_type = \"${2:client_credentials}\"\n  }\n  result_mapping {\n    ${3:token} = \\$.access_token\n  }\n}",
            ),
            snippet(
                "if has_value",
                "update a secret only when a value came back",
                "if has_value(${1:token}) {\n  update_secret ${2:SECRET} = ${1:token}\n}",
            ),
        ],
        _ => Vec::new(),
    }
}

/// A block the cursor is in: the keyword that opened it, and the service
/// it belongs to.
#[derive(Clone, Debug)]
struct Open {
    place: Where,
    service: Option<String>,
}

fn innermost(blocks: &[Open]) -> Where {
    blocks.last().map_or(Where::TopLevel, |b| b.place)
}

/// The blocks open at the end of `text`, outermost first. Strings and
/// comments are skipped; a block is named by the first word of what was
/// written before its `{`.
fn enclosing(text: &str) -> Vec<Open> {
    let mut stack: Vec<Open> = Vec::new();
    let mut header_start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                header_start = i;
                continue;
            }
            b'{' => {
                let header = text.get(header_start..i).unwrap_or("");
                let mut words = header.split_whitespace();
                let first = words.next().unwrap_or("");
                let place = match first {
                    "secret" => Where::Secret,
                    "role" => Where::Role,
                    "user" | "service_account" => Where::Identity,
                    "service" => Where::Service,
                    "endpoint" => Where::Endpoint,
                    "schedule" => Where::Schedule,
                    "oauth_client" => Where::OAuthClient,
                    "web_request" => Where::WebRequest,
                    "action" | "if" | "else" | "}" | "try" | "catch" | "foreach" | "while"
                    | "on_failure" | "on_recovery" => Where::Statement,
                    _ => Where::Other,
                };
                let service = (first == "service")
                    .then(|| words.next().map(str::to_string))
                    .flatten();
                stack.push(Open { place, service });
                header_start = i + 1;
            }
            b'}' => {
                stack.pop();
                header_start = i + 1;
            }
            b'\n' => header_start = i + 1,
            _ => {}
        }
        i += 1;
    }
    stack
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_found_through_strings_and_comments() {
        let text = "service api {\n  action a { // {\n    log \"{\"\n    web_request {\n      ";
        let blocks = enclosing(text);
        let places: Vec<Where> = blocks.iter().map(|b| b.place).collect();
        assert_eq!(
            places,
            vec![Where::Service, Where::Statement, Where::WebRequest]
        );
        assert_eq!(blocks[0].service.as_deref(), Some("api"));
        assert!(enclosing("secret A { locked }\n").is_empty());
        // `} else {` opens a block of statements.
        let blocks = enclosing("service s {\n action a {\n  if x {\n  } else {\n");
        assert_eq!(innermost(&blocks), Where::Statement);
    }
}
