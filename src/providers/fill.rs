//! Filling a program from the provider catalog, before it is checked:
//!
//! - a client with `provider NAME` gets, from the profile, every endpoint
//!   and lifetime it does not state itself, with the profile's
//!   `{parameters}` replaced by the client's arguments (a secret argument
//!   becomes an interpolation of that secret);
//! - `refresh_tokens client(NAME)` and `client_credentials client(NAME)`
//!   are written out as the ordinary statements that do their job: the
//!   request to the client's token endpoint, then the updates of the
//!   client's `stores`. The checker and the interpreter read those like
//!   any others, so the permission proof, the rotation rules, the journal
//!   and the connection health apply to them unchanged.
//!
//! What cannot be filled (an unknown profile, a missing parameter, a
//! client that stores no access token) is left as it is: the checker
//! reports it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::Profile;
use crate::source::Span;
use crate::syntax::ast::*;

/// A piece of a profile's URL template.
#[derive(Debug, PartialEq)]
pub enum Part<'t> {
    Text(&'t str),
    Parameter(&'t str),
}

/// Splits `https://{subdomain}.zendesk.com/...` into text and parameters.
pub fn template_parts(template: &str) -> Result<Vec<Part<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            out.push(Part::Text(&rest[..open]));
        }
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("`{template}` has a `{{` without `}}`"))?;
        out.push(Part::Parameter(&rest[open + 1..open + close]));
        rest = &rest[open + close + 1..];
    }
    if rest.contains('}') {
        return Err(format!("`{template}` has a `}}` without `{{`"));
    }
    if !rest.is_empty() {
        out.push(Part::Text(rest));
    }
    Ok(out)
}

/// The prefix of the variables `refresh_tokens` and `client_credentials`
/// keep an answer's fields in: a name no program can write, so they never
/// meet the program's own variables.
pub const VARIABLES: &str = "token_answer.";

/// Whether a parameter's value can stand in a profile's URL as one part
/// (a host label or name, a realm, a tenant): letters, digits and `.`, `-`,
/// `_`, `~`, `:`. Anything else (`/`, `?`, `#`, `@`, spaces) could move the
/// URL to another host, where the client's credentials would go.
pub fn is_url_part(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '~' | ':'))
}

/// Whether a service variable is one a token grant keeps an answer's
/// field in: written by `fill`, not by the program's author, so editors
/// do not offer it.
pub fn is_answer_variable(name: &str) -> bool {
    name.starts_with(VARIABLES)
}

/// Fills every client from its profile, and writes out every token grant.
pub fn fill(program: &mut Program) {
    for client in &mut program.oauth_clients {
        if let Some(profile) = client
            .provider
            .as_ref()
            .and_then(|p| super::get(&p.name.text))
        {
            fill_client(client, profile);
        }
    }
    let clients: BTreeMap<String, OAuthClientDecl> = program
        .oauth_clients
        .iter()
        .map(|c| (c.name.text.clone(), c.clone()))
        .collect();
    for service in &mut program.services {
        let mut used = BTreeSet::new();
        for action in &mut service.actions {
            write_out(&mut action.body, &clients, &mut used);
        }
        for endpoint in &mut service.endpoints {
            for hook in [&mut endpoint.on_failure, &mut endpoint.on_recovery]
                .into_iter()
                .flatten()
            {
                write_out(&mut hook.body, &clients, &mut used);
            }
        }
        let span = service.name.span;
        for (field, type_name) in ANSWER_FIELDS {
            let name = format!("{VARIABLES}{field}");
            if used.contains(field) && !service.vars.iter().any(|v| v.name.text == name) {
                service.vars.push(VarDecl {
                    name: synthetic_name(&name, span),
                    type_name: synthetic_name(type_name, span),
                    span,
                });
            }
        }
    }
}

/// The fields of an answer a grant reads, and their variables' types.
const ANSWER_FIELDS: [(&str, &str); 3] = [
    ("access_token", "string"),
    ("refresh_token", "string"),
    ("expires_in", "json"),
];

fn fill_client(client: &mut OAuthClientDecl, profile: &Profile) {
    let use_ = client.provider.clone().expect("a client with a profile");
    let span = use_.span;
    let endpoints = &profile.endpoints;
    for (what, template, slot) in [
        (
            "token_url",
            Some(&endpoints.token_url),
            &mut client.token_url,
        ),
        (
            "authorize_url",
            endpoints.authorize_url.as_ref(),
            &mut client.authorize_url,
        ),
        (
            "revocation_url",
            endpoints.revocation_url.as_ref(),
            &mut client.revocation_url,
        ),
        (
            "device_authorization_url",
            endpoints.device_authorization_url.as_ref(),
            &mut client.device_authorization_url,
        ),
    ] {
        if slot.is_some() || client.issuer.is_some() {
            continue;
        }
        if let Some(url) = template.and_then(|t| url_expr(t, profile, &use_, span)) {
            *slot = Some(url);
            client.filled.push(what);
        }
    }
    if client.refresh_token_ttl.is_none()
        && let Some(lifetime) = profile
            .refresh
            .as_ref()
            .and_then(|r| r.refresh_token_lifetime)
    {
        client.refresh_token_ttl = Some(DurationLit {
            text: crate::syntax::duration::format(lifetime),
            value: Some(lifetime),
            span,
        });
        client.filled.push("refresh_token_ttl");
    }
}

/// A profile's URL with the client's arguments in place: `None` when a
/// parameter has neither an argument nor a default (the checker says so).
pub fn url_expr(template: &str, profile: &Profile, use_: &ProviderUse, span: Span) -> Option<Expr> {
    let mut parts = Vec::new();
    for part in template_parts(template).ok()? {
        match part {
            Part::Text(text) => parts.push(StringPart::Text {
                value: text.to_string(),
            }),
            Part::Parameter(name) => match use_.arg(name) {
                Some(arg) => match &arg.value.kind {
                    ExprKind::String { parts: given } => parts.extend(given.iter().cloned()),
                    _ => parts.push(StringPart::Interpolation {
                        expr: arg.value.clone(),
                    }),
                },
                None => parts.push(StringPart::Text {
                    value: profile.parameter(name)?.default.clone()?,
                }),
            },
        }
    }
    Some(Expr {
        kind: ExprKind::String { parts },
        span,
    })
}

/// Writes out the token grants of a block (and of its nested blocks),
/// adding the answer fields they keep to `used`.
fn write_out(
    block: &mut Block,
    clients: &BTreeMap<String, OAuthClientDecl>,
    used: &mut BTreeSet<&'static str>,
) {
    block.walk_mut(&mut |statement| {
        let span = statement.span;
        if let StatementKind::TokenGrant(grant) = &mut statement.kind
            && let Some(client) = clients.get(&grant.client.text)
        {
            let profile = client
                .provider
                .as_ref()
                .and_then(|p| super::get(&p.name.text));
            grant.steps.statements = steps(grant, client, profile, span, used);
        }
    });
}

/// The statements of one grant: empty when the client stores no access
/// token, or a refresh has no refresh token to send (the checker says so).
fn steps(
    grant: &TokenGrant,
    client: &OAuthClientDecl,
    profile: Option<&Profile>,
    span: Span,
    used: &mut BTreeSet<&'static str>,
) -> Vec<Statement> {
    let Some(access) = client.store_of(TokenField::AccessToken) else {
        return Vec::new();
    };
    let refresh = client.store_of(TokenField::RefreshToken);
    let b = Build { span };
    let mut form = vec![b.field("grant_type", b.text(grant.grant.grant_type()))];
    let extra = match grant.grant {
        GrantType::RefreshToken => {
            let Some(refresh) = refresh else {
                return Vec::new();
            };
            form.push(b.field("refresh_token", b.secret(&refresh.text)));
            profile.and_then(|p| p.refresh.as_ref()).map(|r| &r.params)
        }
        GrantType::ClientCredentials => {
            if let Some(scopes) = &client.scopes {
                form.push(b.field("scope", b.text(&scopes.value)));
            }
            profile
                .and_then(|p| p.client_credentials.as_ref())
                .map(|c| &c.params)
        }
    };
    for (name, value) in extra.into_iter().flatten() {
        form.push(b.field(name, b.text(value)));
    }
    let var = |field: &str| format!("{VARIABLES}{field}");
    let mut fields: Vec<(&'static str, String)> = vec![
        ("access_token", "$.access_token".into()),
        ("expires_in", "$.expires_in".into()),
    ];
    if grant.grant == GrantType::RefreshToken {
        fields.push(("refresh_token", "$.refresh_token".into()));
    }
    used.extend(fields.iter().map(|(field, _)| *field));
    let mappings = fields
        .iter()
        .map(|(field, path)| b.mapping(&var(field), path))
        .collect();
    let mut out = vec![
        b.statement(StatementKind::UpdateVariables {
            assignments: fields
                .iter()
                .map(|(field, _)| Assignment {
                    target: b.name(&var(field)),
                    value: b.expr(ExprKind::Null),
                    span,
                })
                .collect(),
        }),
    ];
    out.push(b.statement(StatementKind::WebRequest(Box::new(WebRequest {
        headers: vec![b.field("Accept", b.text("application/json"))],
        body: Some(RequestBody::Form { fields: form, span }),
        auth: Some(Auth::Client {
            client: b.name(&client.name.text),
            span,
        }),
        result_mapping: mappings,
        token_request: true,
        span,
        ..WebRequest::default()
    }))));
    // A rotated refresh token first: it is what a later refresh needs.
    if grant.grant == GrantType::RefreshToken
        && let Some(refresh) = refresh
    {
        // Without an expiry of its own: a malformed expiry field must not
        // keep the new token from being stored while the old one is spent.
        // The connection learns when it expires from the answer itself.
        out.push(b.when_present(
            &var("refresh_token"),
            b.update(&refresh.text, b.variable(&var("refresh_token")), None),
        ));
    }
    // An answer without `expires_in`: the profile's documented lifetime.
    if let Some(lifetime) = profile
        .and_then(|p| p.access_token.as_ref())
        .and_then(|a| a.lifetime)
    {
        out.push(b.statement(StatementKind::If(IfStatement {
            condition: b.expr(ExprKind::Not {
                operand: Box::new(b.has_value(&var("expires_in"))),
            }),
            then_block: Block {
                statements: vec![b.statement(StatementKind::UpdateVariables {
                    assignments: vec![Assignment {
                        target: b.name(&var("expires_in")),
                        value: b.number(lifetime),
                        span,
                    }],
                })],
                span,
            },
            else_block: None,
        })));
    }
    out.push(b.statement(StatementKind::If(IfStatement {
        condition: b.has_value(&var("access_token")),
        then_block: Block {
            statements: vec![b.update(
                &access.text,
                b.variable(&var("access_token")),
                Some(b.variable(&var("expires_in"))),
            )],
            span,
        },
        else_block: Some(Block {
            statements: vec![b.statement(StatementKind::Throw {
                code: PlainString {
                    value: "svc::token::no_access_token".into(),
                    span,
                },
                message: b.text(&format!(
                    "the token endpoint of `{}` answered without an access token",
                    client.name.text
                )),
            })],
            span,
        }),
    })));
    out
}

/// Builds AST nodes that all point at the statement they write out.
struct Build {
    span: Span,
}

impl Build {
    fn name(&self, text: &str) -> Name {
        synthetic_name(text, self.span)
    }

    fn expr(&self, kind: ExprKind) -> Expr {
        Expr {
            kind,
            span: self.span,
        }
    }

    fn text(&self, value: &str) -> Expr {
        self.expr(ExprKind::String {
            parts: vec![StringPart::Text {
                value: value.to_string(),
            }],
        })
    }

    fn number(&self, duration: Duration) -> Expr {
        self.expr(ExprKind::Number {
            value: duration.as_secs() as f64,
        })
    }

    fn secret(&self, name: &str) -> Expr {
        self.expr(ExprKind::Secret {
            name: self.name(name),
        })
    }

    fn variable(&self, name: &str) -> Expr {
        self.expr(ExprKind::Variable {
            name: self.name(name),
        })
    }

    fn has_value(&self, name: &str) -> Expr {
        self.expr(ExprKind::Call {
            function: self.name("has_value"),
            args: vec![self.variable(name)],
        })
    }

    fn field(&self, name: &str, value: Expr) -> Field {
        Field {
            name: PlainString {
                value: name.to_string(),
                span: self.span,
            },
            value,
            span: self.span,
        }
    }

    fn mapping(&self, target: &str, path: &str) -> Mapping {
        Mapping {
            target: self.name(target),
            source: MappingSource::JsonPath {
                path: path.to_string(),
                span: self.span,
            },
            span: self.span,
        }
    }

    fn statement(&self, kind: StatementKind) -> Statement {
        Statement {
            kind,
            span: self.span,
        }
    }

    fn update(&self, secret: &str, value: Expr, expires_in: Option<Expr>) -> Statement {
        self.statement(StatementKind::UpdateSecrets {
            updates: vec![SecretUpdate {
                secret: self.name(secret),
                value: Some(value),
                expires_in,
                span: self.span,
                layout: Layout::new(),
            }],
            grouped: false,
        })
    }

    fn when_present(&self, variable: &str, then: Statement) -> Statement {
        self.statement(StatementKind::If(IfStatement {
            condition: self.has_value(variable),
            then_block: Block {
                statements: vec![then],
                span: self.span,
            },
            else_block: None,
        }))
    }
}

fn synthetic_name(text: &str, span: Span) -> Name {
    Name {
        text: text.to_string(),
        span,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::FileId;

    /// A grant is written out wherever it stands: in branches, loops and
    /// `try`/`catch`, however deep.
    #[test]
    fn grants_in_nested_blocks_are_written_out() {
        let text = r#"
secret R { environment_specific }
secret A { environment_specific }
oauth_client c {
  token_url "https://auth.example.com/token"
  client_id "id"
  stores { refresh_token = R  access_token = A }
}
service s {
  action a {
    refresh_tokens client(c)
    if true {
      try { while true max 2 { refresh_tokens client(c) } }
      catch { foreach x in param.items { refresh_tokens client(c) } }
    } else { refresh_tokens client(c) }
  }
}
"#;
        let (mut program, diagnostics) = crate::syntax::parse_file(FileId(0), text);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        fill(&mut program);
        let mut grants = 0;
        program.services[0].actions[0].body.walk(&mut |statement| {
            if let StatementKind::TokenGrant(grant) = &statement.kind {
                grants += 1;
                assert!(!grant.steps.statements.is_empty(), "{:?}", statement.span);
            }
        });
        assert_eq!(grants, 4);
    }
}
