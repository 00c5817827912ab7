//! Completion in context: what may be written at the cursor, read from
//! the text before it (the blocks it is in and the words just before) and
//! from the program's declarations.

use lsp_types::*;

use super::keywords::{self, Context as Where};
use super::navigate::is_name_char;
use super::workspace::View;
use super::{Context, Refusal};
use crate::check::functions::Function;
use crate::syntax::ast::{EndpointDecl, IdentityKind, Program};

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
    let service = blocks
        .iter()
        .rev()
        .find(|b| b.place == Where::Service)
        .and_then(|b| b.name.clone());

    if lead.ends_with("secret.") {
        return secrets(program);
    }
    if lead.ends_with("param.") {
        return params(program, &blocks);
    }
    if lead.ends_with("connection.") {
        return ["id", "tags."]
            .into_iter()
            .map(|field| CompletionItem {
                label: field.to_string(),
                kind: Some(CompletionItemKind::FIELD),
                ..Default::default()
            })
            .collect();
    }
    if lead.ends_with("client(")
        || matches!(
            words.as_slice(),
            [.., "grant", "read_status" | "connect"] | [.., "for_each_connection"]
        )
    {
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
    if value_wanted(lead) {
        match blocks.last().map(|b| b.keyword.as_str()) {
            // `stores { FIELD = SECRET }` names a secret; a mapping's
            // source is a JSONPath, `header`, `status` or `body`.
            Some("stores") => return secrets(program),
            Some("result_mapping") => {}
            _ => return values(program, &blocks, service.as_deref()),
        }
    }

    // At the start of a line: keywords, names and snippets.
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
        out.extend(variables(program, service.as_deref()));
        out.extend(functions());
        out.extend(prefixes());
    }
    out.extend(snippets(place));
    out
}

/// Keywords that continue a statement begun before them, never start one.
const CONTINUING: &[&str] = &[
    "for_connection",
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
            let mut detail = String::from(if secret.is_environment_specific() {
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

/// Whether the text before the cursor's word leaves a value to write:
/// after `=` (an assignment, a field, a comparison), an opening
/// parenthesis, an interpolation's `${`, `&&`, `||` or `+`, or a comma
/// between parentheses.
fn value_wanted(lead: &str) -> bool {
    let lead = lead.trim_end();
    let open = lead.matches('(').count() > lead.matches(')').count();
    ["=", "(", "${", "&&", "||", "+"]
        .iter()
        .any(|end| lead.ends_with(end))
        || (open && lead.ends_with(','))
}

/// Everything that may be written where a value goes: the service's
/// variables, `param.NAME` for the parameters known there, the functions,
/// and `secret.NAME` for every secret, with the bare `secret.` and
/// `param.` to type on from.
fn values(program: &Program, blocks: &[Open], service: Option<&str>) -> Vec<CompletionItem> {
    let mut out = variables(program, service);
    out.extend(params(program, blocks).into_iter().map(|mut item| {
        item.label = format!("param.{}", item.label);
        item
    }));
    out.extend(functions());
    out.extend(prefixes());
    out.extend(secrets(program).into_iter().map(|mut item| {
        item.label = format!("secret.{}", item.label);
        item
    }));
    out
}

/// The variables of the service the cursor is in.
fn variables(program: &Program, service: Option<&str>) -> Vec<CompletionItem> {
    program
        .services
        .iter()
        .filter(|s| Some(s.name.text.as_str()) == service)
        .flat_map(|s| &s.vars)
        .filter(|var| !crate::providers::fill::is_answer_variable(&var.name.text))
        .map(|var| CompletionItem {
            label: var.name.text.clone(),
            kind: Some(CompletionItemKind::VARIABLE),
            detail: Some(format!("var {}: {}", var.name.text, var.type_name.text)),
            ..Default::default()
        })
        .collect()
}

/// Every function of the language, from the table the checker uses.
fn functions() -> impl Iterator<Item = CompletionItem> {
    Function::ALL.iter().map(|function| CompletionItem {
        label: function.name().to_string(),
        kind: Some(CompletionItemKind::FUNCTION),
        detail: Some(function.signature()),
        documentation: Some(Documentation::String(function.summary().to_string())),
        insert_text: Some(format!("{}($1)", function.name())),
        insert_text_format: Some(InsertTextFormat::SNIPPET),
        ..Default::default()
    })
}

/// `secret.` and `param.`, which ask the editor for the names after them.
fn prefixes() -> impl Iterator<Item = CompletionItem> {
    ["secret", "param"].into_iter().map(|word| CompletionItem {
        label: format!("{word}."),
        kind: Some(CompletionItemKind::MODULE),
        command: Some(Command::new(
            "suggest".to_string(),
            "editor.action.triggerSuggest".to_string(),
            None,
        )),
        ..Default::default()
    })
}

/// The declared parameters that `param.NAME` may name at the cursor: in
/// an endpoint (its hooks, its response), that endpoint's; in an action,
/// those of the endpoints that process it; elsewhere in a service, those
/// of all its endpoints; in a schedule, those of the endpoint it runs.
fn params(program: &Program, blocks: &[Open]) -> Vec<CompletionItem> {
    let open = |place: Where| blocks.iter().rev().find(|b| b.place == place);
    let name = |place: Where| open(place).and_then(|b| b.name.as_deref());
    let service =
        name(Where::Service).and_then(|name| program.services.iter().find(|s| s.name.text == name));
    let action = blocks
        .iter()
        .rev()
        .find(|b| b.keyword == "action")
        .and_then(|b| b.name.as_deref());
    let endpoints: Vec<&EndpointDecl> = match (service, name(Where::Endpoint), action) {
        (Some(service), Some(endpoint), _) => service
            .endpoints
            .iter()
            .filter(|e| e.name.text == endpoint)
            .collect(),
        (Some(service), None, Some(action)) => service.endpoints_processing(action).collect(),
        (Some(service), None, None) => service.endpoints.iter().collect(),
        (None, ..) => {
            let schedule = name(Where::Schedule)
                .and_then(|name| program.schedules.iter().find(|s| s.name.text == name));
            let target = schedule.and_then(|s| s.endpoint.as_ref());
            program
                .services
                .iter()
                .filter(|s| target.is_some_and(|t| t.service.text == s.name.text))
                .flat_map(|s| &s.endpoints)
                .filter(|e| target.is_some_and(|t| t.endpoint.text == e.name.text))
                .collect()
        }
    };
    let declared = endpoints
        .into_iter()
        .flat_map(|e| e.params.iter().flatten());
    let mut out: Vec<CompletionItem> = Vec::new();
    for param in declared {
        if out.iter().all(|item| item.label != param.name.text) {
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

/// A block the cursor is in: where it is, the first word of its header
/// (`service`, `form`, `update`) and, for a declaration or an action, the
/// name that follows that word.
#[derive(Clone, Debug)]
struct Open {
    place: Where,
    keyword: String,
    name: Option<String>,
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
                    "notify" => Where::Notify,
                    "web_request" => Where::WebRequest,
                    "action" | "if" | "else" | "}" | "try" | "catch" | "foreach" | "while"
                    | "on_failure" | "on_recovery" => Where::Statement,
                    _ => Where::Other,
                };
                let named = matches!(place, Where::Service | Where::Endpoint | Where::Schedule)
                    || first == "action";
                let name = named.then(|| words.next().map(str::to_string)).flatten();
                stack.push(Open {
                    place,
                    keyword: first.to_string(),
                    name,
                });
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
        assert_eq!(blocks[0].name.as_deref(), Some("api"));
        assert_eq!(blocks[1].name.as_deref(), Some("a"));
        assert!(enclosing("secret A { locked }\n").is_empty());
        // `} else {` opens a block of statements.
        let blocks = enclosing("service s {\n action a {\n  if x {\n  } else {\n");
        assert_eq!(innermost(&blocks), Where::Statement);
    }
}
