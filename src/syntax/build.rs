//! Builds the AST from the parse tree (`tree`).
//!
//! The grammar guarantees the shape of the tree, so the builder can take
//! children in order. What the grammar leaves open (a property given twice,
//! an unknown escape, a malformed duration) becomes a diagnostic here.

use super::ast::*;
use super::duration;
use super::parser::Rule;
use super::tree::{Pair, Pairs};
use crate::diagnostic::{Code, Diagnostic};
use crate::source::{FileId, Span};

/// How deeply blocks and expressions may nest: blocks, `else if`s,
/// parentheses, `!`, calls, interpolations, and each operator of a chain
/// (`a && b && c` is two levels). Far beyond any real script, and low
/// enough that every recursive pass over the AST stays well within the
/// stack, a tokio worker's included.
pub const MAX_DEPTH: usize = 64;

pub struct Builder {
    file: FileId,
    /// Nesting of the block or expression being built.
    depth: usize,
    /// Whether the expression being built was already reported too deep.
    expression_too_deep: bool,
    /// Where in the file the pairs being built start.
    offset: usize,
    pub diagnostics: Vec<Diagnostic>,
}

/// Children of a pair.
fn children(pair: Pair<'_>) -> Pairs<'_> {
    pair.into_inner()
}

/// Remembers which properties of one block were given, to report repeats.
#[derive(Default)]
struct Seen {
    order: Layout,
}

impl Builder {
    pub fn new(file: FileId) -> Self {
        Builder {
            file,
            depth: 0,
            expression_too_deep: false,
            offset: 0,
            diagnostics: Vec::new(),
        }
    }

    /// The span of a pair, without the whitespace and comments pest leaves
    /// at the end of a rule that ends in a repetition or an option.
    fn span(&self, pair: &Pair<'_>) -> Span {
        let s = pair.as_span();
        Span::new(
            self.file,
            self.offset + s.start(),
            self.offset + content_end(pair),
        )
    }

    fn name(&self, pair: Pair<'_>) -> Name {
        Name {
            text: pair.as_str().to_string(),
            span: self.span(&pair),
        }
    }

    /// Records a property; returns false (and reports) when it was already given.
    fn first_time(&mut self, seen: &mut Seen, property: &'static str, span: Span) -> bool {
        // A block has a handful of properties: a list beats a hash map.
        if let Some((_, first)) = seen.order.iter().find(|(p, _)| *p == property) {
            self.diagnostics.push(
                Diagnostic::new(
                    Code::DuplicateProperty,
                    format!("`{property}` is given twice"),
                )
                .label(span, "given again here")
                .label(*first, "first given here")
                .help(format!("keep one `{property}` and remove the other")),
            );
            return false;
        }
        seen.order.push((property, span));
        true
    }

    /// Builds the declaration of a `next_item` pair whose positions are
    /// relative to `offset`; `None` at the end of the file.
    pub fn item(&mut self, pair: Pair<'_>, offset: usize) -> Option<Item> {
        self.offset = offset;
        let pair = children(pair).next()?;
        Some(match pair.as_rule() {
            Rule::secret_decl => Item::Secret(self.secret(pair)),
            Rule::role_decl => Item::Role(self.role(pair)),
            Rule::user_decl => Item::Identity(self.identity(pair, IdentityKind::User)),
            Rule::service_account_decl => {
                Item::Identity(self.identity(pair, IdentityKind::ServiceAccount))
            }
            Rule::service_decl => Item::Service(self.service(pair)),
            Rule::schedule_decl => Item::Schedule(self.schedule(pair)),
            Rule::oauth_client_decl => Item::OAuthClient(self.oauth_client(pair)),
            Rule::notify_decl => Item::Notify(self.notify(pair)),
            _ => return None,
        })
    }

    fn secret(&mut self, pair: Pair<'_>) -> SecretDecl {
        let span = self.span(&pair);
        let mut inner = children(pair).skip(1);
        let name = self.name(inner.next().expect("grammar: secret name"));
        let mut decl = SecretDecl {
            layout: Layout::new(),
            name,
            environment_specific: false,
            locked: None,
            per_account: false,
            description: None,
            refreshed_by: None,
            span,
        };
        let mut seen = Seen::default();
        for property in inner {
            let pspan = self.span(&property);
            match property.as_rule() {
                Rule::refreshed_by => {
                    if self.first_time(&mut seen, "refreshed_by", pspan) {
                        decl.refreshed_by = Some(self.refreshed_by(property, pspan));
                    }
                }
                Rule::environment_specific => {
                    if self.first_time(&mut seen, "environment_specific", pspan) {
                        decl.environment_specific = true;
                    }
                }
                Rule::locked => {
                    if self.first_time(&mut seen, "locked", pspan) {
                        decl.locked = Some(pspan);
                    }
                }
                Rule::per_account => {
                    if self.first_time(&mut seen, "per_account", pspan) {
                        decl.per_account = true;
                    }
                }
                Rule::description => {
                    if self.first_time(&mut seen, "description", pspan) {
                        decl.description = Some(self.description(property));
                    }
                }
                _ => {}
            }
        }
        decl.layout = seen.order;
        decl
    }

    fn refreshed_by(&mut self, pair: Pair<'_>, span: Span) -> RefreshedBy {
        // kw_refreshed_by endpoint_ref kw_as ident (kw_min_valid duration)?
        let mut parts = children(pair).skip(1);
        let endpoint = self.endpoint_ref(parts.next().expect("grammar: refresher"));
        let service_account = self.name(parts.nth(1).expect("grammar: refresher account"));
        let min_valid = parts.nth(1).map(|d| self.duration(d));
        RefreshedBy {
            endpoint,
            service_account,
            min_valid,
            span,
        }
    }

    fn description(&mut self, pair: Pair<'_>) -> PlainString {
        let string = children(pair).nth(1).expect("grammar: description string");
        self.plain_string(string)
    }

    fn role(&mut self, pair: Pair<'_>) -> RoleDecl {
        let span = self.span(&pair);
        let mut inner = children(pair).skip(1);
        let name = self.name(inner.next().expect("grammar: role name"));
        let mut role = RoleDecl {
            layout: Layout::new(),
            name,
            grants: Vec::new(),
            description: None,
            span,
        };
        let mut seen = Seen::default();
        for property in inner {
            let pspan = self.span(&property);
            match property.as_rule() {
                Rule::grant => {
                    let grant = children(property).nth(1).expect("grammar: grant kind");
                    let rule = grant.as_rule();
                    let target = children(grant).nth(1).expect("grammar: grant target");
                    let kind = match rule {
                        Rule::grant_run => GrantKind::Run(self.endpoint_pattern(target)),
                        Rule::grant_update_secret => GrantKind::UpdateSecret(self.name(target)),
                        Rule::grant_read_status => GrantKind::ReadStatus(self.name(target)),
                        Rule::grant_connect => GrantKind::Connect(self.name(target)),
                        _ => GrantKind::ReadSecret(self.name(target)),
                    };
                    role.grants.push(Grant { kind, span: pspan });
                }
                Rule::description => {
                    if self.first_time(&mut seen, "description", pspan) {
                        role.description = Some(self.description(property));
                    }
                }
                _ => {}
            }
        }
        role.layout = seen.order;
        role
    }

    fn endpoint_pattern(&mut self, pair: Pair<'_>) -> EndpointPattern {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let service = self.name(inner.next().expect("grammar: service"));
        let endpoint = inner.next().expect("grammar: endpoint");
        let endpoint = (endpoint.as_rule() == Rule::ident).then(|| self.name(endpoint));
        EndpointPattern {
            service,
            endpoint,
            span,
        }
    }

    fn endpoint_ref(&mut self, pair: Pair<'_>) -> EndpointRef {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let service = self.name(inner.next().expect("grammar: service"));
        let endpoint = self.name(inner.next().expect("grammar: endpoint"));
        EndpointRef {
            service,
            endpoint,
            span,
        }
    }

    fn identity(&mut self, pair: Pair<'_>, kind: IdentityKind) -> IdentityDecl {
        let span = self.span(&pair);
        let mut inner = children(pair).skip(1);
        let name = self.name(inner.next().expect("grammar: identity name"));
        let mut identity = IdentityDecl {
            layout: Layout::new(),
            kind,
            name,
            roles: Vec::new(),
            description: None,
            span,
        };
        let mut seen = Seen::default();
        for property in inner {
            let pspan = self.span(&property);
            match property.as_rule() {
                Rule::roles => {
                    if self.first_time(&mut seen, "roles", pspan) {
                        identity.roles = children(property).skip(1).map(|r| self.name(r)).collect();
                    }
                }
                Rule::description => {
                    if self.first_time(&mut seen, "description", pspan) {
                        identity.description = Some(self.description(property));
                    }
                }
                _ => {}
            }
        }
        identity.layout = seen.order;
        identity
    }

    fn service(&mut self, pair: Pair<'_>) -> ServiceDecl {
        let span = self.span(&pair);
        let mut inner = children(pair).skip(1);
        let name = self.name(inner.next().expect("grammar: service name"));
        let mut service = ServiceDecl {
            name,
            vars: Vec::new(),
            actions: Vec::new(),
            endpoints: Vec::new(),
            span,
        };
        for item in inner {
            let ispan = self.span(&item);
            match item.as_rule() {
                Rule::var_decl => {
                    let mut parts = children(item).skip(1);
                    let name = self.name(parts.next().expect("grammar: var name"));
                    let type_name = self.name(parts.next().expect("grammar: var type"));
                    service.vars.push(VarDecl {
                        name,
                        type_name,
                        span: ispan,
                    });
                }
                Rule::action_decl => {
                    let mut parts = children(item).skip(1);
                    let name = self.name(parts.next().expect("grammar: action name"));
                    let body = self.block(parts.next().expect("grammar: action body"));
                    service.actions.push(ActionDecl {
                        name,
                        body,
                        span: ispan,
                    });
                }
                Rule::endpoint_decl => {
                    let endpoint = self.endpoint(item);
                    service.endpoints.push(endpoint);
                }
                _ => {}
            }
        }
        service
    }

    fn endpoint(&mut self, pair: Pair<'_>) -> EndpointDecl {
        let span = self.span(&pair);
        let mut inner = children(pair).skip(1);
        let name = self.name(inner.next().expect("grammar: endpoint name"));
        let mut endpoint = EndpointDecl {
            layout: Layout::new(),
            name,
            description: None,
            methods: Vec::new(),
            log: None,
            process: None,
            on_failure: None,
            on_recovery: None,
            params: None,
            response: None,
            span,
        };
        let mut seen = Seen::default();
        for property in inner {
            let pspan = self.span(&property);
            match property.as_rule() {
                Rule::endpoint_params => {
                    if self.first_time(&mut seen, "params", pspan) {
                        endpoint.params = Some(self.param_decls(property));
                    }
                }
                Rule::endpoint_response => {
                    if self.first_time(&mut seen, "response", pspan) {
                        endpoint.response = Some(self.response(property));
                    }
                }
                Rule::description => {
                    if self.first_time(&mut seen, "description", pspan) {
                        endpoint.description = Some(self.description(property));
                    }
                }
                Rule::methods => {
                    if self.first_time(&mut seen, "methods", pspan) {
                        endpoint.methods =
                            children(property).skip(1).map(|m| self.name(m)).collect();
                    }
                }
                Rule::log_setting => {
                    if self.first_time(&mut seen, "log", pspan) {
                        let state = children(property).nth(1).expect("grammar: log state");
                        endpoint.log = Some(LogSetting {
                            enabled: state.as_str() == "enabled",
                            span: pspan,
                        });
                    }
                }
                Rule::process => {
                    if self.first_time(&mut seen, "process", pspan) {
                        let action = children(property).nth(1).expect("grammar: process action");
                        endpoint.process = Some(self.name(action));
                    }
                }
                Rule::hook => {
                    let (kind, hook) = self.hook(property);
                    if self.first_time(&mut seen, kind.keyword(), pspan) {
                        match kind {
                            HookKind::OnFailure => endpoint.on_failure = Some(hook),
                            HookKind::OnRecovery => endpoint.on_recovery = Some(hook),
                        }
                    }
                }
                _ => {}
            }
        }
        endpoint.layout = seen.order;
        endpoint
    }

    /// Enters one level of nesting; false (and reported) past the limit.
    fn enter(&mut self, span: Span) -> bool {
        self.depth += 1;
        if self.depth == MAX_DEPTH + 1 {
            self.diagnostics.push(
                Diagnostic::new(Code::TooDeep, "nested too deeply")
                    .label(span, format!("more than {MAX_DEPTH} levels deep"))
                    .help("split the logic, or use fewer nested blocks and parentheses"),
            );
        }
        self.depth <= MAX_DEPTH
    }

    fn block(&mut self, pair: Pair<'_>) -> Block {
        let span = self.span(&pair);
        let statements = if self.enter(span) {
            children(pair).map(|s| self.statement(s)).collect()
        } else {
            Vec::new()
        };
        self.depth -= 1;
        Block { statements, span }
    }

    fn statement(&mut self, pair: Pair<'_>) -> Statement {
        let span = self.span(&pair);
        let kind = match pair.as_rule() {
            Rule::update_variables => {
                let assignments = children(pair)
                    .skip(2)
                    .map(|a| {
                        let aspan = self.span(&a);
                        let mut parts = children(a);
                        let target = self.name(parts.next().expect("grammar: target"));
                        let value = self.expr(parts.next().expect("grammar: value"));
                        Assignment {
                            target,
                            value,
                            span: aspan,
                        }
                    })
                    .collect();
                StatementKind::UpdateVariables { assignments }
            }
            Rule::web_request => StatementKind::WebRequest(Box::new(self.web_request(pair))),
            Rule::if_statement => StatementKind::If(self.if_statement(pair)),
            Rule::update_secret => {
                let update = self.secret_update(children(pair).nth(1).expect("grammar: update"));
                StatementKind::UpdateSecrets {
                    updates: vec![update],
                    grouped: false,
                }
            }
            Rule::update_secrets => {
                let updates = children(pair)
                    .skip(1)
                    .map(|u| self.secret_update(u))
                    .collect();
                StatementKind::UpdateSecrets {
                    updates,
                    grouped: true,
                }
            }
            Rule::run_service => {
                let mut parts = children(pair).skip(1);
                let endpoint = self.endpoint_ref(parts.next().expect("grammar: endpoint"));
                let mut args = Vec::new();
                let mut for_connection = None;
                let mut as_account = None;
                let mut into = None;
                while let Some(part) = parts.next() {
                    match part.as_rule() {
                        Rule::run_arguments => {
                            args = self.named_arguments(part, "run_service api.list(page = 2)")
                        }
                        Rule::for_connection => {
                            let expr = children(part).nth(1).expect("grammar: connection");
                            for_connection = Some(self.expr(expr));
                        }
                        Rule::kw_as => {
                            as_account = parts.next().map(|p| self.name(p));
                        }
                        Rule::kw_into => into = parts.next().map(|p| self.name(p)),
                        _ => {}
                    }
                }
                StatementKind::RunService {
                    endpoint,
                    args,
                    for_connection,
                    as_account,
                    into,
                }
            }
            Rule::sleep => StatementKind::Sleep {
                duration: self.duration(children(pair).nth(1).expect("grammar: duration")),
            },
            Rule::log => StatementKind::Log {
                message: self.expr(children(pair).nth(1).expect("grammar: message")),
            },
            Rule::throw => {
                let mut parts = children(pair).skip(1);
                let code = self.plain_string(parts.next().expect("grammar: code"));
                let message = self.expr(parts.next().expect("grammar: message"));
                StatementKind::Throw { code, message }
            }
            Rule::try_catch => {
                let mut parts = children(pair).skip(1);
                let body = self.block(parts.next().expect("grammar: try body"));
                let catches = parts.map(|c| self.catch(c)).collect();
                StatementKind::Try { body, catches }
            }
            Rule::foreach_loop => {
                let mut parts = children(pair).skip(1);
                let item = self.name(parts.next().expect("grammar: item"));
                let iterable = self.expr(parts.nth(1).expect("grammar: iterable"));
                let body = self.block(parts.next().expect("grammar: body"));
                StatementKind::Foreach {
                    item,
                    iterable,
                    body,
                }
            }
            Rule::while_loop => {
                let mut parts = children(pair).skip(1);
                let condition = self.expr(parts.next().expect("grammar: condition"));
                let max = self.integer(parts.nth(1).expect("grammar: max"));
                let body = self.block(parts.next().expect("grammar: body"));
                StatementKind::While {
                    condition,
                    max,
                    body,
                }
            }
            Rule::break_statement => StatementKind::Break,
            Rule::token_grant => {
                let mut parts = children(pair);
                let grant = match parts.next().expect("grammar: grant").as_rule() {
                    Rule::kw_refresh_tokens => GrantType::RefreshToken,
                    _ => GrantType::ClientCredentials,
                };
                let client = children(parts.next().expect("grammar: client"))
                    .nth(1)
                    .expect("grammar: client name");
                StatementKind::TokenGrant(Box::new(TokenGrant {
                    grant,
                    client: self.name(client),
                    steps: Block {
                        statements: Vec::new(),
                        span,
                    },
                }))
            }
            rule => unreachable!("grammar: unexpected statement {rule:?}"),
        };
        Statement { kind, span }
    }

    fn catch(&mut self, pair: Pair<'_>) -> Catch {
        let span = self.span(&pair);
        let mut filter = CatchFilter::Any;
        let mut body = Block::default();
        for part in children(pair).skip(1) {
            match part.as_rule() {
                Rule::catch_web_request => {
                    let statuses = children(part)
                        .skip(1)
                        .map(|s| StatusCode {
                            value: s.as_str().parse().unwrap_or(0),
                            span: self.span(&s),
                        })
                        .collect();
                    filter = CatchFilter::WebRequest { statuses };
                }
                Rule::plain_string => filter = CatchFilter::Code(self.plain_string(part)),
                Rule::block => body = self.block(part),
                _ => {}
            }
        }
        Catch { filter, body, span }
    }

    fn if_statement(&mut self, pair: Pair<'_>) -> IfStatement {
        let mut parts = children(pair).skip(1);
        let condition = self.expr(parts.next().expect("grammar: condition"));
        let then_block = self.block(parts.next().expect("grammar: then block"));
        let else_block = parts.next().map(|else_clause| {
            let next = children(else_clause).nth(1).expect("grammar: else body");
            match next.as_rule() {
                Rule::block => self.block(next),
                _ => {
                    // `else if`: an else block holding one `if` statement,
                    // one level deeper, like any block: a long `else if`
                    // chain is as deep a tree as nested blocks.
                    let span = self.span(&next);
                    let statements = if self.enter(span) {
                        vec![self.statement(next)]
                    } else {
                        Vec::new()
                    };
                    self.depth -= 1;
                    Block { statements, span }
                }
            }
        });
        IfStatement {
            condition,
            then_block,
            else_block,
        }
    }

    fn secret_update(&mut self, pair: Pair<'_>) -> SecretUpdate {
        let span = self.span(&pair);
        let mut parts = children(pair);
        let secret = self.name(parts.next().expect("grammar: secret"));
        let mut update = SecretUpdate {
            layout: Layout::new(),
            secret,
            value: None,
            expires_in: None,
            span,
        };
        let next = parts.next().expect("grammar: update value");
        if next.as_rule() == Rule::secret_update_block {
            let mut seen = Seen::default();
            for field in children(next) {
                let fspan = self.span(&field);
                let mut fparts = children(field);
                let key = fparts.next().expect("grammar: field key");
                let value = self.expr(fparts.next().expect("grammar: field value"));
                if key.as_rule() == Rule::kw_value {
                    if self.first_time(&mut seen, "value", fspan) {
                        update.value = Some(value);
                    }
                } else if self.first_time(&mut seen, "expires_in", fspan) {
                    update.expires_in = Some(value);
                }
            }
            // A block form, even with one field: the formatter keeps it.
            update.layout = seen.order;
            if update.layout.is_empty() {
                update.layout.push(("block", span));
            }
        } else {
            update.value = Some(self.expr(next));
        }
        update
    }

    fn web_request(&mut self, pair: Pair<'_>) -> WebRequest {
        let mut request = WebRequest {
            span: self.span(&pair),
            ..WebRequest::default()
        };
        let mut seen = Seen::default();
        for property in children(pair).skip(1) {
            let pspan = self.span(&property);
            let rule = property.as_rule();
            let key: &'static str = match rule {
                Rule::request_method => "method",
                Rule::request_url => "url",
                Rule::request_query => "query",
                Rule::request_headers => "headers",
                Rule::request_form | Rule::request_json | Rule::request_body => match rule {
                    Rule::request_form => "form",
                    Rule::request_json => "json",
                    _ => "body",
                },
                Rule::request_auth => "auth",
                Rule::request_timeout => "timeout",
                Rule::request_retry => "retry",
                Rule::request_redirects => "redirects",
                _ => "result_mapping",
            };
            if !self.first_time(&mut seen, key, pspan) {
                continue;
            }
            let mut parts = children(property).skip(1);
            match rule {
                Rule::request_method => {
                    request.method = Some(self.name(parts.next().expect("grammar: method")))
                }
                Rule::request_url => {
                    request.url = Some(self.expr(parts.next().expect("grammar: url")))
                }
                Rule::request_query => request.query = self.fields(parts),
                Rule::request_headers => request.headers = self.fields(parts),
                Rule::request_form | Rule::request_json | Rule::request_body => {
                    if let Some(other) = request.body.as_ref() {
                        let other = other.span();
                        self.diagnostics.push(
                            Diagnostic::new(Code::ConflictingProperty, "a request has one body")
                                .label(pspan, "a second body")
                                .label(other, "the body is already given here")
                                .help("use one of `form { }`, `json { }` or `body EXPR`"),
                        );
                        continue;
                    }
                    request.body = Some(match rule {
                        Rule::request_form => RequestBody::Form {
                            fields: self.fields(parts),
                            span: pspan,
                        },
                        Rule::request_json => RequestBody::Json {
                            fields: self.fields(parts),
                            span: pspan,
                        },
                        _ => RequestBody::Raw {
                            value: self.expr(parts.next().expect("grammar: body")),
                            span: pspan,
                        },
                    });
                }
                Rule::request_auth => {
                    let auth = parts.next().expect("grammar: auth");
                    request.auth = self.auth(auth, pspan);
                }
                Rule::request_timeout => {
                    request.timeout = Some(self.duration(parts.next().expect("grammar: timeout")));
                }
                Rule::request_retry => {
                    let mut retry = Retry {
                        span: pspan,
                        ..Retry::default()
                    };
                    let mut seen_retry = Seen::default();
                    for setting in parts {
                        let sspan = self.span(&setting);
                        let is_attempts = setting.as_rule() == Rule::retry_attempts;
                        let value = children(setting).nth(1).expect("grammar: retry value");
                        if is_attempts {
                            if self.first_time(&mut seen_retry, "attempts", sspan) {
                                retry.attempts = Some(self.integer(value));
                            }
                        } else if self.first_time(&mut seen_retry, "max_time", sspan) {
                            retry.max_time = Some(self.duration(value));
                        }
                    }
                    retry.layout = seen_retry.order;
                    request.retry = Some(retry);
                }
                Rule::request_redirects => {
                    request.redirects =
                        Some(self.integer(parts.next().expect("grammar: redirects")));
                    request.cross_origin = parts.next().map(|p| self.span(&p));
                }
                _ => {
                    request.result_mapping = parts.map(|m| self.mapping(m)).collect();
                }
            }
        }
        request.layout = seen.order;
        request
    }

    /// The `auth` of a request; `None` when its arguments were wrong (reported).
    fn auth(&mut self, pair: Pair<'_>, span: Span) -> Option<Auth> {
        let kind = pair.as_rule();
        if kind == Rule::private_key_jwt {
            return self
                .private_key_jwt(pair, span, true)
                .map(|jwt| Auth::PrivateKeyJwt(Box::new(jwt)));
        }
        if kind == Rule::jwt_bearer {
            return self
                .jwt_bearer(pair, span)
                .map(|jwt| Auth::JwtBearer(Box::new(jwt)));
        }
        let mut args = children(pair).skip(1);
        Some(match kind {
            Rule::auth_basic => {
                let user = self.expr(args.next().expect("grammar: user"));
                let password = self.expr(args.next().expect("grammar: password"));
                Auth::Basic {
                    user,
                    password,
                    span,
                }
            }
            Rule::auth_bearer => Auth::Bearer {
                token: self.expr(args.next().expect("grammar: token")),
                span,
            },
            _ => Auth::Client {
                client: self.name(args.next().expect("grammar: client name")),
                span,
            },
        })
    }

    /// The arguments of `private_key_jwt(...)` or `jwt_bearer(...)`, by
    /// name: the first may be the key, unnamed. Unknown, repeated and
    /// misplaced arguments are reported and left out.
    fn arguments(
        &mut self,
        pair: Pair<'_>,
        construct: &str,
        known: &[&'static str],
    ) -> Vec<(&'static str, Expr, Span)> {
        let mut out: Vec<(&'static str, Expr, Span)> = Vec::new();
        for (index, argument) in children(pair).skip(1).enumerate() {
            let span = self.span(&argument);
            let mut parts = children(argument).peekable();
            let name = match parts.peek().map(|p| p.as_rule()) {
                Some(Rule::ident) => Some(self.name(parts.next().expect("grammar: name"))),
                _ => None,
            };
            let value = self.expr(parts.next().expect("grammar: argument value"));
            let key = match &name {
                None if index == 0 => "key",
                None => {
                    self.diagnostics.push(
                        Diagnostic::new(
                            Code::UnknownArgument,
                            format!("only the key may be given without a name in `{construct}`"),
                        )
                        .label(span, "an argument without a name")
                        .help(format!(
                            "name it: {}",
                            known
                                .iter()
                                .map(|k| format!("`{k} = ...`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                    );
                    continue;
                }
                Some(name) => match known.iter().find(|k| **k == name.text) {
                    Some(key) => *key,
                    None => {
                        self.diagnostics.push(
                            Diagnostic::new(
                                Code::UnknownArgument,
                                format!("`{construct}` has no argument `{}`", name.text),
                            )
                            .label(name.span, "not an argument of it")
                            .suggest(
                                &name.text,
                                name.span,
                                known.iter().copied(),
                                format!(
                                    "`{construct}` takes {}",
                                    known
                                        .iter()
                                        .map(|k| format!("`{k}`"))
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ),
                            ),
                        );
                        continue;
                    }
                },
            };
            if let Some((_, _, first)) = out.iter().find(|(k, _, _)| *k == key) {
                self.diagnostics.push(
                    Diagnostic::new(Code::DuplicateProperty, format!("`{key}` is given twice"))
                        .label(span, "given again here")
                        .label(*first, "first given here")
                        .help(format!("keep one `{key}` and remove the other")),
                );
                continue;
            }
            out.push((key, value, span));
        }
        out
    }

    /// Takes an argument out of a list made by `arguments`.
    fn take(arguments: &mut Vec<(&'static str, Expr, Span)>, key: &str) -> Option<Expr> {
        let index = arguments.iter().position(|(k, _, _)| *k == key)?;
        Some(arguments.remove(index).1)
    }

    /// `alg = "..."`: a string as written, without interpolation.
    fn algorithm(&mut self, value: Option<Expr>) -> Option<PlainString> {
        let value = value?;
        match value.as_plain_string() {
            Some(text) => Some(PlainString {
                value: text,
                span: value.span,
            }),
            None => {
                self.diagnostics.push(
                    Diagnostic::new(Code::InvalidAlgorithm, "`alg` is a string as written")
                        .label(value.span, "not a plain string")
                        .help("write the algorithm: `alg = \"RS256\"`, `\"RS384\"`, `\"PS256\"`, `\"ES256\"` or `\"EdDSA\"`"),
                );
                None
            }
        }
    }

    fn missing_argument(&mut self, construct: &str, argument: &str, span: Span, example: &str) {
        self.diagnostics.push(
            Diagnostic::new(
                Code::MissingProperty,
                format!("`{construct}` needs `{argument}`"),
            )
            .label(span, format!("no `{argument}`"))
            .help(format!("add it: `{example}`")),
        );
    }

    /// `private_key_jwt(...)`; on a request (`standalone`) it names the
    /// client id too.
    fn private_key_jwt(
        &mut self,
        pair: Pair<'_>,
        span: Span,
        standalone: bool,
    ) -> Option<PrivateKeyJwt> {
        const ON_REQUEST: [&str; 4] = ["client_id", "key", "alg", "kid"];
        const IN_CLIENT: [&str; 3] = ["key", "alg", "kid"];
        let known: &[&'static str] = if standalone { &ON_REQUEST } else { &IN_CLIENT };
        let mut arguments = self.arguments(pair, "private_key_jwt", known);
        let client_id = Self::take(&mut arguments, "client_id");
        let key = Self::take(&mut arguments, "key");
        let alg = Self::take(&mut arguments, "alg");
        let kid = Self::take(&mut arguments, "kid");
        let alg = self.algorithm(alg);
        if standalone && client_id.is_none() {
            self.missing_argument(
                "private_key_jwt",
                "client_id",
                span,
                "private_key_jwt(client_id = \"...\", key = secret.KEY)",
            );
            return None;
        }
        let Some(key) = key else {
            self.missing_argument(
                "private_key_jwt",
                "key",
                span,
                "private_key_jwt(key = secret.KEY)",
            );
            return None;
        };
        Some(PrivateKeyJwt {
            client_id,
            key,
            alg,
            kid,
            span,
        })
    }

    fn jwt_bearer(&mut self, pair: Pair<'_>, span: Span) -> Option<JwtBearer> {
        const KNOWN: [&str; 7] = [
            "key", "issuer", "subject", "audience", "scope", "alg", "kid",
        ];
        let mut arguments = self.arguments(pair, "jwt_bearer", &KNOWN);
        let key = Self::take(&mut arguments, "key");
        let issuer = Self::take(&mut arguments, "issuer");
        let subject = Self::take(&mut arguments, "subject");
        let audience = Self::take(&mut arguments, "audience");
        let scope = Self::take(&mut arguments, "scope");
        let alg = Self::take(&mut arguments, "alg");
        let kid = Self::take(&mut arguments, "kid");
        let alg = self.algorithm(alg);
        let Some(key) = key else {
            self.missing_argument("jwt_bearer", "key", span, "jwt_bearer(key = secret.KEY)");
            return None;
        };
        Some(JwtBearer {
            key,
            issuer,
            subject,
            audience,
            scope,
            alg,
            kid,
            span,
        })
    }

    fn oauth_client(&mut self, pair: Pair<'_>) -> OAuthClientDecl {
        let span = self.span(&pair);
        let mut inner = children(pair).skip(1);
        let name = self.name(inner.next().expect("grammar: client name"));
        let mut client = OAuthClientDecl {
            name,
            provider: None,
            filled: Vec::new(),
            issuer: None,
            authorize_url: None,
            token_url: None,
            device_authorization_url: None,
            revocation_url: None,
            refresh_token_ttl: None,
            client_id: None,
            client_auth: None,
            scopes: None,
            stores: None,
            keep_alive: None,
            expiry_warning: None,
            per_account: false,
            return_to: Vec::new(),
            description: None,
            span,
            layout: Layout::new(),
        };
        let mut seen = Seen::default();
        for property in inner {
            let pspan = self.span(&property);
            let rule = property.as_rule();
            let key = match rule {
                Rule::client_provider => "provider",
                Rule::client_issuer => "issuer",
                Rule::client_authorize_url => "authorize_url",
                Rule::client_token_url => "token_url",
                Rule::client_device_url => "device_authorization_url",
                Rule::client_revocation_url => "revocation_url",
                Rule::client_refresh_token_ttl => "refresh_token_ttl",
                Rule::client_id => "client_id",
                Rule::client_auth => "client_auth",
                Rule::client_scopes => "scopes",
                Rule::client_stores => "stores",
                Rule::client_keep_alive => "keep_alive",
                Rule::client_expiry_warning => "expiry_warning",
                Rule::per_account => "per_account",
                Rule::client_return_to => "return_to",
                _ => "description",
            };
            if !self.first_time(&mut seen, key, pspan) {
                continue;
            }
            if rule == Rule::per_account {
                client.per_account = true;
                continue;
            }
            if rule == Rule::description {
                client.description = Some(self.description(property));
                continue;
            }
            let mut parts = children(property).skip(1);
            match rule {
                Rule::client_provider => {
                    let name = self.name(parts.next().expect("grammar: provider name"));
                    let args = parts
                        .next()
                        .map(|args| {
                            self.named_arguments(
                                args,
                                "provider microsoft(tenant = \"contoso.onmicrosoft.com\")",
                            )
                        })
                        .unwrap_or_default();
                    client.provider = Some(ProviderUse {
                        name,
                        args,
                        span: pspan,
                    });
                }
                Rule::client_stores => {
                    let entries = parts
                        .map(|entry| {
                            let span = self.span(&entry);
                            let mut names = children(entry);
                            let field_name = self.name(names.next().expect("grammar: field"));
                            let secret = self.name(names.next().expect("grammar: secret"));
                            TokenStore {
                                field: TokenField::from_name(&field_name.text),
                                field_name,
                                secret,
                                span,
                            }
                        })
                        .collect();
                    client.stores = Some(TokenStores {
                        entries,
                        span: pspan,
                    });
                }
                Rule::client_scopes => {
                    client.scopes = Some(self.plain_string(parts.next().expect("grammar: scopes")));
                }
                Rule::client_return_to => {
                    client.return_to = parts.map(|url| self.plain_string(url)).collect();
                }
                Rule::client_keep_alive => {
                    client.keep_alive = Some(self.duration(parts.next().expect("grammar: period")));
                }
                Rule::client_expiry_warning => {
                    client.expiry_warning =
                        Some(self.duration(parts.next().expect("grammar: period")));
                }
                Rule::client_refresh_token_ttl => {
                    client.refresh_token_ttl =
                        Some(self.duration(parts.next().expect("grammar: ttl")));
                }
                Rule::client_auth => {
                    let method = parts.next().expect("grammar: client auth");
                    client.client_auth = match method.as_rule() {
                        Rule::auth_none => Some(ClientAuth::None { span: pspan }),
                        Rule::private_key_jwt => self
                            .private_key_jwt(method, pspan, false)
                            .map(|jwt| ClientAuth::PrivateKeyJwt(Box::new(jwt))),
                        basic_or_post => {
                            let secret =
                                self.expr(children(method).nth(1).expect("grammar: secret"));
                            Some(if basic_or_post == Rule::client_secret_basic {
                                ClientAuth::SecretBasic {
                                    secret,
                                    span: pspan,
                                }
                            } else {
                                ClientAuth::SecretPost {
                                    secret,
                                    span: pspan,
                                }
                            })
                        }
                    };
                }
                _ => {
                    let value = self.expr(parts.next().expect("grammar: client value"));
                    let slot = match rule {
                        Rule::client_issuer => &mut client.issuer,
                        Rule::client_authorize_url => &mut client.authorize_url,
                        Rule::client_token_url => &mut client.token_url,
                        Rule::client_device_url => &mut client.device_authorization_url,
                        Rule::client_revocation_url => &mut client.revocation_url,
                        _ => &mut client.client_id,
                    };
                    *slot = Some(value);
                }
            }
        }
        client.layout = seen.order;
        client
    }

    fn notify(&mut self, pair: Pair<'_>) -> NotifyDecl {
        let span = self.span(&pair);
        let mut inner = children(pair).skip(1);
        let name = self.name(inner.next().expect("grammar: notify name"));
        let mut notify = NotifyDecl {
            name,
            url: None,
            secret: None,
            events: Vec::new(),
            events_span: None,
            description: None,
            span,
            layout: Layout::new(),
        };
        let mut seen = Seen::default();
        for property in inner {
            let pspan = self.span(&property);
            let rule = property.as_rule();
            let key = match rule {
                Rule::notify_url => "url",
                Rule::notify_secret => "secret",
                Rule::notify_events => "events",
                _ => "description",
            };
            if !self.first_time(&mut seen, key, pspan) {
                continue;
            }
            match rule {
                Rule::notify_url => {
                    let url = children(property).nth(1).expect("grammar: url");
                    notify.url = Some(self.plain_string(url));
                }
                Rule::notify_secret => {
                    let reference = children(property).nth(1).expect("grammar: secret");
                    let name = reference.into_inner().next().expect("grammar: secret name");
                    notify.secret = Some(self.name(name));
                }
                Rule::notify_events => {
                    notify.events = children(property).skip(1).map(|e| self.name(e)).collect();
                    notify.events_span = Some(pspan);
                }
                _ => notify.description = Some(self.description(property)),
            }
        }
        notify.layout = seen.order;
        notify
    }

    /// `(name = value, ...)` of a `run_service`: every argument named once.
    /// Arguments that all have names; `example` shows them named.
    fn named_arguments(&mut self, pair: Pair<'_>, example: &str) -> Vec<Field> {
        let mut out: Vec<Field> = Vec::new();
        for argument in children(pair) {
            let span = self.span(&argument);
            let mut parts = children(argument).peekable();
            let name = match parts.peek().map(|p| p.as_rule()) {
                Some(Rule::ident) => Some(self.name(parts.next().expect("grammar: name"))),
                _ => None,
            };
            let value = self.expr(parts.next().expect("grammar: argument value"));
            let Some(name) = name else {
                self.diagnostics.push(
                    Diagnostic::new(Code::UnknownArgument, "a parameter without a name")
                        .label(span, "which parameter is this?")
                        .help(format!("name it: `{example}`")),
                );
                continue;
            };
            if let Some(first) = out.iter().find(|f| f.name.value == name.text) {
                self.diagnostics.push(
                    Diagnostic::new(
                        Code::DuplicateProperty,
                        format!("`{}` is given twice", name.text),
                    )
                    .label(span, "given again here")
                    .label(first.span, "first given here")
                    .help("give each parameter once"),
                );
                continue;
            }
            out.push(Field {
                name: PlainString {
                    value: name.text,
                    span: name.span,
                },
                value,
                span,
            });
        }
        out
    }

    /// `params { NAME: TYPE[?] [= DEFAULT] ... }`.
    fn param_decls(&mut self, pair: Pair<'_>) -> Vec<ParamDecl> {
        let mut out: Vec<ParamDecl> = Vec::new();
        for decl in children(pair).skip(1) {
            let span = self.span(&decl);
            let mut parts = children(decl);
            let name = self.name(parts.next().expect("grammar: param name"));
            let type_name = self.name(parts.next().expect("grammar: param type"));
            let mut optional = false;
            let mut default = None;
            for part in parts {
                match part.as_rule() {
                    Rule::optional_mark => optional = true,
                    _ => default = Some(self.expr(part)),
                }
            }
            if let Some(first) = out.iter().find(|p| p.name.text == name.text) {
                self.diagnostics.push(
                    Diagnostic::new(
                        Code::DuplicateName,
                        format!("parameter `{}` is declared twice", name.text),
                    )
                    .label(name.span, "declared again here")
                    .label(first.name.span, "first declared here")
                    .help("declare each parameter once"),
                );
                continue;
            }
            out.push(ParamDecl {
                name,
                type_name,
                optional,
                default,
                span,
            });
        }
        out
    }

    fn response(&mut self, pair: Pair<'_>) -> ResponseDecl {
        let span = self.span(&pair);
        let mut response = ResponseDecl {
            status: None,
            body: None,
            reveals: Vec::new(),
            span,
        };
        let mut seen = Seen::default();
        for part in children(pair).skip(1) {
            let pspan = self.span(&part);
            match part.as_rule() {
                Rule::response_status => {
                    if self.first_time(&mut seen, "status", pspan) {
                        response.status =
                            Some(self.integer(children(part).nth(1).expect("grammar: status")));
                    }
                }
                Rule::response_json | Rule::response_body => {
                    if self.first_time(&mut seen, "body", pspan) {
                        response.body = Some(if part.as_rule() == Rule::response_json {
                            ResponseBody::Json {
                                fields: self.fields(children(part).skip(1)),
                                span: pspan,
                            }
                        } else {
                            ResponseBody::Expr(
                                self.expr(children(part).nth(1).expect("grammar: body")),
                            )
                        });
                    }
                }
                _ => {
                    if self.first_time(&mut seen, "reveals", pspan) {
                        response.reveals = children(part).skip(1).map(|n| self.name(n)).collect();
                    }
                }
            }
        }
        response
    }

    fn fields<'i>(&mut self, pairs: impl Iterator<Item = Pair<'i>>) -> Vec<Field> {
        pairs
            .map(|field| {
                let span = self.span(&field);
                let mut parts = children(field);
                let key = parts.next().expect("grammar: field name");
                let name = if key.as_rule() == Rule::ident {
                    PlainString {
                        value: key.as_str().to_string(),
                        span: self.span(&key),
                    }
                } else {
                    self.plain_string(key)
                };
                let value = self.expr(parts.next().expect("grammar: field value"));
                Field { name, value, span }
            })
            .collect()
    }

    fn mapping(&mut self, pair: Pair<'_>) -> Mapping {
        let span = self.span(&pair);
        let mut parts = children(pair);
        let target = self.name(parts.next().expect("grammar: mapping target"));
        let source = parts.next().expect("grammar: mapping source");
        let sspan = self.span(&source);
        let source = match source.as_rule() {
            Rule::jsonpath => MappingSource::JsonPath {
                path: source.as_str().to_string(),
                span: sspan,
            },
            Rule::header_source => MappingSource::Header {
                name: self.plain_string(children(source).nth(1).expect("grammar: header name")),
                span: sspan,
            },
            Rule::status_source => MappingSource::Status { span: sspan },
            _ => MappingSource::Body { span: sspan },
        };
        Mapping {
            target,
            source,
            span,
        }
    }

    fn schedule(&mut self, pair: Pair<'_>) -> ScheduleDecl {
        let span = self.span(&pair);
        let mut inner = children(pair).skip(1);
        let name = self.name(inner.next().expect("grammar: schedule name"));
        let mut schedule = ScheduleDecl {
            layout: Layout::new(),
            name,
            endpoint: None,
            service_account: None,
            every: None,
            cron: None,
            time_zone: None,
            before_expiry: None,
            disabled: false,
            description: None,
            on_failure: None,
            on_recovery: None,
            params: Vec::new(),
            for_each_connection: None,
            concurrency: None,
            span,
        };
        let mut seen = Seen::default();
        for property in inner {
            let pspan = self.span(&property);
            let rule = property.as_rule();
            if rule == Rule::schedule_params {
                if self.first_time(&mut seen, "params", pspan) {
                    schedule.params = self.fields(children(property).skip(1));
                }
                continue;
            }
            if rule == Rule::hook {
                let (kind, hook) = self.hook(property);
                if self.first_time(&mut seen, kind.keyword(), pspan) {
                    match kind {
                        HookKind::OnFailure => schedule.on_failure = Some(hook),
                        HookKind::OnRecovery => schedule.on_recovery = Some(hook),
                    }
                }
                continue;
            }
            let key = match rule {
                Rule::schedule_endpoint => "endpoint",
                Rule::schedule_account => "service_account",
                Rule::every => "every",
                Rule::cron => "cron",
                Rule::time_zone => "time_zone",
                Rule::before_expiry => "before_expiry",
                Rule::disabled => "disabled",
                Rule::for_each_connection => "for_each_connection",
                Rule::concurrency => "concurrency",
                _ => "description",
            };
            if !self.first_time(&mut seen, key, pspan) {
                continue;
            }
            if rule == Rule::disabled {
                schedule.disabled = true;
                continue;
            }
            if rule == Rule::description {
                schedule.description = Some(self.description(property));
                continue;
            }
            let mut parts = children(property).skip(1);
            let value = parts.next().expect("grammar: schedule value");
            match rule {
                Rule::schedule_endpoint => schedule.endpoint = Some(self.endpoint_ref(value)),
                Rule::schedule_account => schedule.service_account = Some(self.name(value)),
                Rule::every => schedule.every = Some(self.duration(value)),
                Rule::cron => schedule.cron = Some(self.plain_string(value)),
                Rule::time_zone => schedule.time_zone = Some(self.plain_string(value)),
                Rule::for_each_connection => schedule.for_each_connection = Some(self.name(value)),
                Rule::concurrency => schedule.concurrency = Some(self.integer(value)),
                _ => {
                    let secret = self.name(value);
                    let lead = self.duration(parts.next().expect("grammar: lead time"));
                    schedule.before_expiry = Some(BeforeExpiry {
                        secret,
                        lead,
                        span: pspan,
                    });
                }
            }
        }
        schedule.layout = seen.order;
        schedule
    }

    fn hook(&mut self, pair: Pair<'_>) -> (HookKind, Hook) {
        let span = self.span(&pair);
        let mut parts = children(pair);
        let kind = match parts.next().expect("grammar: hook keyword").as_rule() {
            Rule::kw_on_failure => HookKind::OnFailure,
            _ => HookKind::OnRecovery,
        };
        let body = self.block(parts.next().expect("grammar: hook body"));
        (kind, Hook { body, span })
    }

    fn duration(&mut self, pair: Pair<'_>) -> DurationLit {
        let span = self.span(&pair);
        let text = pair.as_str().to_string();
        let value = match duration::parse(&text) {
            Ok(value) => Some(value),
            Err(problem) => {
                self.diagnostics.push(
                    Diagnostic::new(
                        Code::InvalidDuration,
                        format!("`{text}` is not a valid duration"),
                    )
                    .label(span, problem)
                    .help(duration::HELP),
                );
                None
            }
        };
        DurationLit { text, value, span }
    }

    fn integer(&mut self, pair: Pair<'_>) -> Integer {
        let span = self.span(&pair);
        let value = pair.as_str().parse().unwrap_or_else(|_| {
            self.diagnostics.push(
                Diagnostic::new(
                    Code::InvalidNumber,
                    format!("`{}` is too large", pair.as_str()),
                )
                .label(span, "this number does not fit")
                .help("use a smaller number"),
            );
            0
        });
        Integer { value, span }
    }

    fn plain_string(&mut self, pair: Pair<'_>) -> PlainString {
        let span = self.span(&pair);
        let mut value = String::new();
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::escape => {
                    if let Some(c) = self.escape(&part) {
                        value.push(c);
                    }
                }
                _ => value.push_str(part.as_str()),
            }
        }
        PlainString { value, span }
    }

    fn escape(&mut self, pair: &Pair<'_>) -> Option<char> {
        let c = match pair.as_str() {
            "\\\"" => '"',
            "\\\\" => '\\',
            "\\n" => '\n',
            "\\r" => '\r',
            "\\t" => '\t',
            "\\$" => '$',
            other => {
                self.diagnostics.push(
                    Diagnostic::new(Code::InvalidEscape, format!("unknown escape `{other}`"))
                        .label(self.span(pair), "not an escape svc knows")
                        .help(r#"the escapes are `\"`, `\\`, `\n`, `\r`, `\t` and `\$`"#),
                );
                return None;
            }
        };
        Some(c)
    }

    /// Builds an expression that stands on its own (a condition, a value).
    pub fn expr(&mut self, pair: Pair<'_>) -> Expr {
        self.expression_too_deep = false;
        self.nested_expr(pair).0
    }

    /// Builds an expression, and says how tall its tree is: a leaf is 1.
    ///
    /// Parentheses, `!`, calls and interpolations recurse here and are
    /// counted by `enter` before they do. An operator chain is built by a
    /// loop, but `a && b && c` is a tree as tall as the chain is long, and
    /// every pass over the AST (checker, formatter, serializer, interpreter,
    /// even `Drop`) recurses through it: its height counts too, so no input
    /// can build a tree taller than the limit.
    fn nested_expr(&mut self, pair: Pair<'_>) -> (Expr, usize) {
        let span = self.span(&pair);
        let built = if self.enter(span) {
            let mut tokens = children(pair).peekable();
            self.binary(&mut tokens, 0)
        } else {
            (
                Expr {
                    kind: ExprKind::Null,
                    span,
                },
                1,
            )
        };
        self.depth -= 1;
        built
    }

    fn binary<'i>(
        &mut self,
        tokens: &mut std::iter::Peekable<impl Iterator<Item = Pair<'i>>>,
        min_precedence: u8,
    ) -> (Expr, usize) {
        let (mut lhs, mut height) = self.unary(tokens);
        while let Some(op) = tokens.peek().and_then(|p| binary_op(p.as_rule())) {
            let precedence = precedence(op);
            if precedence < min_precedence {
                break;
            }
            tokens.next();
            let (rhs, rhs_height) = self.binary(tokens, precedence + 1);
            let span = lhs.span.to(rhs.span);
            height = height.max(rhs_height) + 1;
            // This node sits at the depth of the expression: its operands
            // one level below, and the chain's first operand `height - 1`.
            if self.depth + height - 1 > MAX_DEPTH {
                self.chain_too_deep(span);
                // The rest of the chain is not built: no tree past the limit.
                tokens.for_each(drop);
                let null = Expr {
                    kind: ExprKind::Null,
                    span,
                };
                return (null, 1);
            }
            lhs = Expr {
                kind: ExprKind::Binary {
                    op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                },
                span,
            };
        }
        (lhs, height)
    }

    /// Reports an operator chain past the limit, once per expression.
    fn chain_too_deep(&mut self, span: Span) {
        if std::mem::replace(&mut self.expression_too_deep, true) {
            return;
        }
        self.diagnostics.push(
            Diagnostic::new(Code::TooDeep, "nested too deeply")
                .label(span, format!("more than {MAX_DEPTH} levels deep"))
                .help(
                    "a chain of N operators nests N levels: split the condition into \
                     variables or several `if`s, or use fewer operators in one expression",
                ),
        );
    }

    fn unary<'i>(
        &mut self,
        tokens: &mut std::iter::Peekable<impl Iterator<Item = Pair<'i>>>,
    ) -> (Expr, usize) {
        let token = tokens.next().expect("grammar: operand");
        if token.as_rule() == Rule::not {
            let start = self.span(&token);
            if !self.enter(start) {
                self.depth -= 1;
                let null = Expr {
                    kind: ExprKind::Null,
                    span: start,
                };
                return (null, 1);
            }
            let (operand, height) = self.unary(tokens);
            self.depth -= 1;
            let span = start.to(operand.span);
            let not = Expr {
                kind: ExprKind::Not {
                    operand: Box::new(operand),
                },
                span,
            };
            return (not, height + 1);
        }
        self.primary(token)
    }

    fn primary(&mut self, pair: Pair<'_>) -> (Expr, usize) {
        let span = self.span(&pair);
        let mut height = 1;
        let kind = match pair.as_rule() {
            Rule::expr => return self.nested_expr(pair),
            Rule::string => {
                let (parts, tallest) = self.string_parts(pair);
                height += tallest;
                ExprKind::String { parts }
            }
            Rule::number => ExprKind::Number {
                value: pair.as_str().parse().unwrap_or(f64::NAN),
            },
            Rule::duration_literal => match crate::syntax::duration::parse(pair.as_str()) {
                Ok(duration) => ExprKind::Duration {
                    millis: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
                },
                Err(why) => {
                    self.diagnostics.push(
                        Diagnostic::new(Code::InvalidDuration, format!("invalid duration: {why}"))
                            .label(span, "out of range")
                            .help("write a duration such as `30s`, `5m`, `1h` or `7d`"),
                    );
                    ExprKind::Null
                }
            },
            Rule::boolean => ExprKind::Bool {
                value: pair.as_str() == "true",
            },
            Rule::null => ExprKind::Null,
            Rule::call => {
                let mut parts = children(pair);
                let function = self.name(parts.next().expect("grammar: function"));
                let mut args = Vec::new();
                let mut tallest = 0;
                for arg in parts {
                    let (arg, arg_height) = self.nested_expr(arg);
                    tallest = tallest.max(arg_height);
                    args.push(arg);
                }
                height += tallest;
                ExprKind::Call { function, args }
            }
            Rule::secret_ref => ExprKind::Secret {
                name: self.name(pair.into_inner().next().expect("grammar: secret name")),
            },
            Rule::param_ref => ExprKind::Param {
                name: self.name(pair.into_inner().next().expect("grammar: param name")),
            },
            Rule::error_ref => ExprKind::Error {
                field: self.name(pair.into_inner().next().expect("grammar: error field")),
            },
            Rule::run_ref => ExprKind::Run {
                field: self.name(pair.into_inner().next().expect("grammar: run field")),
            },
            Rule::connection_ref => self.connection_ref(pair, span),
            _ => ExprKind::Variable {
                name: self.name(pair),
            },
        };
        (Expr { kind, span }, height)
    }

    /// `connection.id` or `connection.tags.KEY`; any other field is
    /// reported, and built as `null`.
    fn connection_ref(&mut self, pair: Pair<'_>, span: Span) -> ExprKind {
        let written = pair.as_str().to_string();
        let mut parts = pair.into_inner();
        let field = self.name(parts.next().expect("grammar: connection field"));
        let key = parts.next().map(|key| self.name(key));
        match (field.as_str(), key) {
            ("id", None) => {
                return ExprKind::Connection {
                    field: ConnectionField::Id,
                };
            }
            ("tags", Some(key)) => {
                return ExprKind::Connection {
                    field: ConnectionField::Tag(key),
                };
            }
            _ => {}
        }
        self.diagnostics.push(
            Diagnostic::new(
                Code::UnknownConnectionField,
                format!("`{written}` is not a field of a connection"),
            )
            .label(span, "not a field svc knows")
            .help("a connection has `connection.id` and `connection.tags.KEY`"),
        );
        ExprKind::Null
    }

    /// The parts of a string, and the height of its tallest interpolation.
    fn string_parts(&mut self, pair: Pair<'_>) -> (Vec<StringPart>, usize) {
        let mut parts: Vec<StringPart> = Vec::new();
        let mut tallest = 0;
        let push_text = |parts: &mut Vec<StringPart>, text: &str| {
            if let Some(StringPart::Text { value }) = parts.last_mut() {
                value.push_str(text);
            } else {
                parts.push(StringPart::Text {
                    value: text.to_string(),
                });
            }
        };
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::string_text => push_text(&mut parts, part.as_str()),
                Rule::escape => {
                    if let Some(c) = self.escape(&part) {
                        push_text(&mut parts, c.encode_utf8(&mut [0; 4]));
                    }
                }
                Rule::interpolation => {
                    let expr = children(part).next().expect("grammar: interpolated expr");
                    let (expr, height) = self.nested_expr(expr);
                    tallest = tallest.max(height);
                    parts.push(StringPart::Interpolation { expr });
                }
                _ => {}
            }
        }
        (parts, tallest)
    }
}

fn binary_op(rule: Rule) -> Option<BinaryOp> {
    Some(match rule {
        Rule::or => BinaryOp::Or,
        Rule::and => BinaryOp::And,
        Rule::eq => BinaryOp::Eq,
        Rule::ne => BinaryOp::Ne,
        Rule::lt => BinaryOp::Lt,
        Rule::le => BinaryOp::Le,
        Rule::gt => BinaryOp::Gt,
        Rule::ge => BinaryOp::Ge,
        Rule::add => BinaryOp::Add,
        Rule::sub => BinaryOp::Sub,
        Rule::mul => BinaryOp::Mul,
        Rule::div => BinaryOp::Div,
        _ => return None,
    })
}

fn precedence(op: BinaryOp) -> u8 {
    op.precedence()
}

/// Where the content of a pair ends, before trailing whitespace and comments.
fn content_end(pair: &Pair<'_>) -> usize {
    let start = pair.as_span().start();
    let text = pair.as_str();
    // Most pairs end with their last token: what pest skips after it
    // always ends in whitespace, since a comment ends before a newline and
    // a declaration, which ends with `}`, closes every pair inside it.
    if !text.ends_with(|c: char| c.is_whitespace()) {
        return start + text.len();
    }
    let mut end = text.trim_end().len();
    let last_line = text[..end]
        .rfind('\n')
        .map_or(&text[..end], |i| &text[i..end]);
    if !last_line.contains("//") {
        return start + end;
    }
    // Rare: a comment may end the pair. The pair starts where a token
    // does, so scanning it from its start finds its comments exactly.
    let comments = super::comments::scan(text);
    while let Some(comment) = comments.iter().rev().find(|c| c.end == end) {
        end = text[..comment.start].trim_end().len();
    }
    start + end
}
