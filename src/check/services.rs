//! Checks inside a service: variables, actions, statements, expressions and
//! endpoints.

use super::functions::{Function, Param, Returns};
use super::model::Symbol;
use super::symbols::ServiceSymbols;
use super::{Checker, values};
use crate::diagnostic::{Code, Diagnostic};
use crate::syntax::ast::*;

/// The type of an expression as far as it is known before running.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Inferred {
    Known(Type),
    Null,
    /// A parameter, or an expression whose parts already had an error.
    Unknown,
}

struct Scope<'a, 'p> {
    service: &'a ServiceSymbols<'p>,
    in_catch: bool,
    /// The items of the loops around this point, innermost last.
    locals: Vec<&'p Name>,
    /// How many loops are around this point.
    loops: usize,
    /// Inside `on_failure` or `on_recovery`: `run.*` is known.
    in_hook: bool,
    /// The `params` of the endpoints that process this action, when every
    /// one declares them (`param.NAME` is then checked and typed).
    contracts: Option<Vec<&'p [ParamDecl]>>,
    /// The endpoints whose parameters `param.NAME` means here: those that
    /// process the action, or the one whose response or hook this is.
    owners: Vec<&'p str>,
}

impl<'a, 'p> Scope<'a, 'p> {
    /// The top of an action's (or a hook's, or a response's) statements.
    fn new(
        service: &'a ServiceSymbols<'p>,
        contracts: Option<Vec<&'p [ParamDecl]>>,
        owners: Vec<&'p str>,
    ) -> Self {
        Scope {
            service,
            in_catch: false,
            locals: Vec::new(),
            loops: 0,
            in_hook: false,
            contracts,
            owners,
        }
    }
}

/// The most passes a `while` may be given.
pub const MAX_LOOP_BOUND: u64 = 10_000;

impl<'a, 'p> Checker<'a, 'p> {
    pub(super) fn check_service(&mut self, service: &'p ServiceDecl) {
        let Some(table) = self.symbols.services.get(service.name.as_str()) else {
            return;
        };
        if !std::ptr::eq(table.decl, service) {
            // A second service of the same name: already reported.
            return;
        }
        for var in &service.vars {
            if Type::from_name(&var.type_name.text).is_none() {
                self.push(
                    Diagnostic::new(
                        Code::UnknownType,
                        format!("unknown type `{}`", var.type_name.text),
                    )
                    .label(var.type_name.span, "not a type")
                    .suggest(
                        &var.type_name.text,
                        var.type_name.span,
                        Type::ALL,
                        "the types are `string`, `number`, `bool` and `json`",
                    ),
                );
            }
        }
        for action in &service.actions {
            let processing: &[&'p EndpointDecl] = table.endpoints_processing(&action.name.text);
            let contracts = (!processing.is_empty())
                .then(|| {
                    processing
                        .iter()
                        .map(|e| e.params.as_deref())
                        .collect::<Option<Vec<_>>>()
                })
                .flatten();
            let owners = processing.iter().map(|e| e.name.as_str()).collect();
            let mut scope = Scope::new(table, contracts, owners);
            self.check_block(&action.body, &mut scope);
        }
        for endpoint in &service.endpoints {
            self.check_endpoint(table, endpoint);
            self.check_param_decls(endpoint);
            if let Some(response) = &endpoint.response {
                let mut scope = Scope::new(
                    table,
                    endpoint.params.as_deref().map(|p| vec![p]),
                    vec![endpoint.name.as_str()],
                );
                for expr in response.expressions() {
                    self.check_expr(expr, &mut scope);
                }
                if let Some(status) = &response.status
                    && !(100..=599).contains(&status.value)
                {
                    self.push(
                        Diagnostic::new(
                            Code::InvalidStatus,
                            format!("`{}` is not an HTTP status", status.value),
                        )
                        .label(status.span, "statuses are between 100 and 599")
                        .help("write a status such as `200` or `201`"),
                    );
                }
                for secret in &response.reveals {
                    if self.resolve_secret(secret) {
                        self.usage.secret_used(secret.as_str());
                    }
                }
            }
            for kind in [HookKind::OnFailure, HookKind::OnRecovery] {
                if let Some(hook) = endpoint.hook(kind) {
                    self.check_hook(table, kind, hook, &endpoint.name);
                }
            }
        }
    }

    fn check_endpoint(&mut self, table: &ServiceSymbols<'p>, endpoint: &'p EndpointDecl) {
        if endpoint.methods.is_empty() {
            self.push(
                Diagnostic::new(
                    Code::MissingProperty,
                    format!("endpoint `{}` declares no methods", endpoint.name.text),
                )
                .label(endpoint.name.span, "callable with no HTTP method")
                .help("add `methods GET` (or the methods callers will use)"),
            );
        }
        let mut seen: Vec<&Name> = Vec::new();
        for method in &endpoint.methods {
            self.check_method(method, &values::ENDPOINT_METHODS);
            if let Some(first) = seen.iter().find(|m| m.text == method.text) {
                self.push(
                    Diagnostic::new(
                        Code::DuplicateProperty,
                        format!("method `{}` is listed twice", method.text),
                    )
                    .label(method.span, "listed again here")
                    .label(first.span, "first listed here")
                    .help("list each method once")
                    .fix(self.layout.remove_word(
                        method.span,
                        format!("Remove the second `{}`", method.text),
                        true,
                    )),
                );
            }
            seen.push(method);
        }
        match &endpoint.process {
            None => self.push(
                Diagnostic::new(
                    Code::MissingProperty,
                    format!(
                        "endpoint `{}` does not say what it processes",
                        endpoint.name.text
                    ),
                )
                .label(endpoint.name.span, "no `process` line")
                .help("add `process ACTION` naming one of the service's actions"),
            ),
            Some(action) => {
                let symbol = || Symbol::Action {
                    service: table.decl.name.text.clone(),
                    name: action.text.clone(),
                };
                self.used(symbol, action.span);
                if table.actions.contains_key(action.as_str()) {
                    self.usage
                        .action_used(&table.decl.name.text, action.as_str());
                } else {
                    let candidates = table.decl.actions.iter().map(|a| a.name.as_str());
                    self.push(
                        Diagnostic::new(
                            Code::UnknownAction,
                            format!("unknown action `{}`", action.text),
                        )
                        .label(
                            action.span,
                            format!(
                                "service `{}` has no action with this name",
                                table.decl.name.text
                            ),
                        )
                        .suggest(
                            action.as_str(),
                            action.span,
                            candidates,
                            format!(
                                "declare it in service `{}`: `action {} {{ ... }}`",
                                table.decl.name.text, action.text
                            ),
                        ),
                    );
                }
            }
        }
    }

    fn check_method(&mut self, method: &Name, allowed: &[&str]) {
        if allowed.contains(&method.as_str()) {
            return;
        }
        let list = allowed
            .iter()
            .map(|m| format!("`{m}`"))
            .collect::<Vec<_>>()
            .join(", ");
        self.push(
            Diagnostic::new(
                Code::InvalidMethod,
                format!("`{}` is not an HTTP method svc supports", method.text),
            )
            .label(method.span, "unsupported method")
            .suggest(
                method.as_str(),
                method.span,
                allowed.iter().copied(),
                format!("use one of {list}"),
            ),
        );
    }

    /// Parameters given to an endpoint (by `run_service` or a schedule),
    /// against its `params`: each declared, of its type, none missing.
    pub(super) fn check_given_params(
        &mut self,
        target: &EndpointRef,
        given: &[(&'p Field, Inferred)],
        at: crate::source::Span,
    ) {
        for (field, _) in given {
            let symbol = || Symbol::Param {
                service: target.service.text.clone(),
                endpoint: target.endpoint.text.clone(),
                name: field.name.value.clone(),
            };
            self.used(symbol, field.name.span);
        }
        let Some(callee) = self
            .symbols
            .endpoint(target.service.as_str(), target.endpoint.as_str())
        else {
            return;
        };
        let Some(declared) = &callee.params else {
            return;
        };
        for (field, inferred) in given {
            let Some(param) = declared.iter().find(|p| p.name.text == field.name.value) else {
                self.push(
                    Diagnostic::new(
                        Code::UnknownParam,
                        format!(
                            "`{}` has no parameter `{}`",
                            target.display(),
                            field.name.value
                        ),
                    )
                    .label(field.name.span, "not a parameter of it")
                    .suggest(
                        &field.name.value,
                        field.name.value_span(),
                        declared.iter().map(|p| p.name.as_str()),
                        format!("`{}` takes: {}", target.display(), param_list(declared)),
                    ),
                );
                continue;
            };
            if let (Some(t), Inferred::Known(found)) = (param.param_type(), inferred) {
                let expected = t.value_type();
                let fits = *found == expected
                    || *found == Type::Json
                    || expected == Type::Json
                    || (expected == Type::Duration && *found == Type::Number);
                if !fits {
                    let what = format!("parameter `{}` of `{}`", param.name.text, target.display());
                    self.type_mismatch(&field.value, expected, *found, &what);
                }
            }
        }
        let missing: Vec<&str> = declared
            .iter()
            .filter(|p| p.required() && !given.iter().any(|(f, _)| f.name.value == p.name.text))
            .map(|p| p.name.as_str())
            .collect();
        if !missing.is_empty() {
            self.push(
                Diagnostic::new(
                    Code::MissingParam,
                    format!(
                        "`{}` needs {}",
                        target.display(),
                        missing
                            .iter()
                            .map(|m| format!("`{m}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .label(at, "not given here")
                .help(format!("give them: {}", param_list(declared))),
            );
        }
    }

    fn check_call_contract(
        &mut self,
        target: &'p EndpointRef,
        args: &'p [Field],
        into: Option<&'p Name>,
        scope: &mut Scope<'_, 'p>,
    ) {
        let given: Vec<(&'p Field, Inferred)> = args
            .iter()
            .map(|a| (a, self.check_expr(&a.value, scope)))
            .collect();
        // The call and its arguments; with none, the fold is the call.
        let span = args.iter().fold(target.span, |s, a| s.to(a.span));
        self.check_given_params(target, &given, span);
        let Some(into) = into else {
            return;
        };
        let callee = self
            .symbols
            .endpoint(target.service.as_str(), target.endpoint.as_str());
        if callee.is_some_and(|c| c.response.is_none()) {
            self.push(
                Diagnostic::new(
                    Code::NoResponse,
                    format!(
                        "`{}` declares no `response` to put into `{}`",
                        target.display(),
                        into.text
                    ),
                )
                .label(into.span, "nothing comes back")
                .help(format!(
                    "declare `response {{ json {{ ... }} }}` in `{}`, or leave out `into`",
                    target.display()
                )),
            );
        }
        self.assign(
            into,
            Inferred::Unknown,
            &Expr {
                kind: ExprKind::Null,
                span: into.span,
            },
            scope,
        );
    }

    /// An endpoint's `params`: known types, literal defaults of the type.
    pub(super) fn check_param_decls(&mut self, endpoint: &'p EndpointDecl) {
        let Some(declared) = &endpoint.params else {
            return;
        };
        for param in declared {
            let Some(t) = param.param_type() else {
                self.push(
                    Diagnostic::new(
                        Code::InvalidParam,
                        format!("`{}` is not a parameter type", param.type_name.text),
                    )
                    .label(param.type_name.span, "unknown type")
                    .help("use `string`, `number`, `bool`, `json`, `duration`, or `list<string>`, `list<number>`, `list<bool>`"),
                );
                continue;
            };
            let Some(default) = &param.default else {
                continue;
            };
            match crate::check::values::constant(default) {
                None => self.push(
                    Diagnostic::new(
                        Code::InvalidParam,
                        format!("the default of `{}` is not a literal", param.name.text),
                    )
                    .label(default.span, "computed")
                    .help("write a literal default (`1`, `\"text\"`, `true`, `5m`), or make the parameter required"),
                ),
                Some(value) => {
                    let fits = value.is_null()
                        || match (t.list, t.base) {
                            (true, _) => false,
                            (_, Type::String) => value.is_string(),
                            (_, Type::Number) => value.is_number() && !matches!(default.kind, ExprKind::Duration { .. }),
                            (_, Type::Bool) => value.is_boolean(),
                            (_, Type::Duration) => matches!(default.kind, ExprKind::Duration { .. }),
                            _ => true,
                        };
                    if !fits {
                        self.push(
                            Diagnostic::new(
                                Code::InvalidParam,
                                format!("the default of `{}` is not a {}", param.name.text, t.name()),
                            )
                            .label(default.span, "of another type")
                            .help(if t.list {
                                "a list parameter has no default: mark it optional with `?`".to_string()
                            } else {
                                format!("write a {} literal", t.name())
                            }),
                        );
                    }
                }
            }
        }
    }

    /// A hook's statements, in its service: `error.*` (after a failure) and
    /// `run.*` known; no secret may be updated there.
    /// A hook of `endpoint` (the endpoint's own, or a schedule's of it).
    pub(super) fn check_hook(
        &mut self,
        table: &ServiceSymbols<'p>,
        kind: HookKind,
        hook: &'p Hook,
        endpoint: &'p Name,
    ) {
        let mut scope = Scope {
            in_catch: kind == HookKind::OnFailure,
            in_hook: true,
            ..Scope::new(table, None, vec![endpoint.as_str()])
        };
        self.check_block(&hook.body, &mut scope);
        // The updates a grant is written out as carry its span: said once.
        let mut grants: Vec<crate::source::Span> = Vec::new();
        hook.body.walk(&mut |statement| {
            // A token grant stores tokens: written out or not (a schedule's
            // hook has no service to write it out in), it updates secrets.
            if let StatementKind::TokenGrant(grant) = &statement.kind {
                self.push(
                    Diagnostic::new(
                        Code::HookUpdatesSecret,
                        format!(
                            "`{}` runs `{} client({})`",
                            kind.keyword(),
                            grant.grant.keyword(),
                            grant.client.text
                        ),
                    )
                    .label(statement.span, "a hook may not update a secret")
                    .help("hooks report (a webhook, a log, a notifier's `run_service`); refresh tokens in actions"),
                );
                grants.push(statement.span);
                return;
            }
            if let StatementKind::UpdateSecrets { updates, .. } = &statement.kind {
                for update in updates.iter().filter(|u| !grants.contains(&u.span)) {
                    self.push(
                        Diagnostic::new(
                            Code::HookUpdatesSecret,
                            format!("`{}` updates `{}`", kind.keyword(), update.secret.text),
                        )
                        .label(update.span, "a hook may not update a secret")
                        .help("hooks report (a webhook, a log, a notifier's `run_service`); update secrets in actions"),
                    );
                }
            }
        });
    }

    fn check_block(&mut self, block: &'p Block, scope: &mut Scope<'_, 'p>) {
        for statement in &block.statements {
            self.check_statement(statement, scope);
        }
    }

    fn check_statement(&mut self, statement: &'p Statement, scope: &mut Scope<'_, 'p>) {
        match &statement.kind {
            StatementKind::UpdateVariables { assignments } => {
                for assignment in assignments {
                    let value = self.check_expr(&assignment.value, scope);
                    self.assign(&assignment.target, value, &assignment.value, scope);
                }
            }
            StatementKind::WebRequest(request) => self.check_web_request(request, scope),
            StatementKind::TokenGrant(grant) => {
                self.check_token_grant(grant, statement.span);
                self.check_block(&grant.steps, scope);
            }
            StatementKind::If(if_statement) => {
                self.expect_bool(&if_statement.condition, scope, "an `if` condition");
                self.check_block(&if_statement.then_block, scope);
                if let Some(else_block) = &if_statement.else_block {
                    self.check_block(else_block, scope);
                }
            }
            StatementKind::UpdateSecrets { updates, .. } => {
                let mut seen: Vec<&Name> = Vec::new();
                for update in updates {
                    self.check_secret_update(update, scope);
                    if let Some(first) = seen.iter().find(|s| s.text == update.secret.text) {
                        self.push(
                            Diagnostic::new(
                                Code::DuplicateProperty,
                                format!("`{}` is updated twice in one block", update.secret.text),
                            )
                            .label(update.secret.span, "updated again here")
                            .label(first.span, "first updated here")
                            .help("update each secret once per block"),
                        );
                    }
                    seen.push(&update.secret);
                }
            }
            StatementKind::RunService {
                endpoint,
                args,
                for_connection,
                as_account,
                into,
            } => {
                self.resolve_endpoint(&endpoint.service, Some(&endpoint.endpoint));
                if let Some(connection) = for_connection {
                    self.expect_type(connection, Type::String, scope, "a connection id");
                }
                if let Some(account) = as_account {
                    self.resolve_service_account(account);
                }
                self.check_call_contract(endpoint, args, into.as_ref(), scope);
            }
            StatementKind::Sleep { duration } => {
                if duration
                    .value
                    .is_some_and(|d| d > std::time::Duration::from_secs(3600))
                {
                    self.push(
                        Diagnostic::new(
                            Code::InvalidDuration,
                            format!("`sleep {}` is too long", duration.text),
                        )
                        .label(duration.span, "longer than one hour")
                        .help("a run should be short; use a `schedule` to wait longer"),
                    );
                }
            }
            StatementKind::Log { message } => {
                self.check_expr(message, scope);
            }
            StatementKind::Throw { code, message } => {
                if code.value.is_empty() {
                    self.push(
                        Diagnostic::new(Code::MissingProperty, "an error code cannot be empty")
                            .label(code.span, "empty code")
                            .help("name the error, such as `throw \"no_token\" \"the answer had no token\"`"),
                    );
                }
                self.check_expr(message, scope);
            }
            StatementKind::Try { body, catches } => {
                self.check_block(body, scope);
                for catch in catches {
                    if let CatchFilter::WebRequest { statuses } = &catch.filter {
                        for status in statuses {
                            if !(100..=599).contains(&status.value) {
                                self.push(
                                    Diagnostic::new(
                                        Code::InvalidStatus,
                                        format!("`{}` is not an HTTP status", status.value),
                                    )
                                    .label(status.span, "statuses are between 100 and 599")
                                    .help("write a status such as `401` or `404`"),
                                );
                            }
                        }
                    }
                    let outer = scope.in_catch;
                    scope.in_catch = true;
                    self.check_block(&catch.body, scope);
                    scope.in_catch = outer;
                }
            }
            StatementKind::Foreach {
                item,
                iterable,
                body,
            } => {
                if let Inferred::Known(found) = self.check_expr(iterable, scope)
                    && found != Type::Json
                {
                    self.push(
                        Diagnostic::new(
                            Code::TypeMismatch,
                            format!("`foreach` goes over a JSON array, but this is a {}", found.name()),
                        )
                        .label(iterable.span, format!("a {}", found.name()))
                        .help("map the array from a response into a `var NAME: json`, or `json_parse` a string that holds one"),
                    );
                }
                let clash = scope.service.vars.contains_key(item.as_str())
                    || scope.locals.iter().any(|l| l.text == item.text);
                if clash {
                    self.push(
                        Diagnostic::new(
                            Code::LoopVariable,
                            format!("`{}` is already a variable here", item.text),
                        )
                        .label(item.span, "the loop's item needs a name of its own")
                        .help("name the item something else, such as `page` or `entry`"),
                    );
                }
                scope.locals.push(item);
                scope.loops += 1;
                self.check_block(body, scope);
                scope.loops -= 1;
                scope.locals.pop();
            }
            StatementKind::While {
                condition,
                max,
                body,
            } => {
                self.expect_bool(condition, scope, "a `while` condition");
                if max.value == 0 || max.value > MAX_LOOP_BOUND {
                    self.push(
                        Diagnostic::new(
                            Code::InvalidLoopBound,
                            format!("`max {}` is not a bound svc runs", max.value),
                        )
                        .label(max.span, format!("between 1 and {MAX_LOOP_BOUND}"))
                        .help(
                            "give the most passes the loop may need, such as `max 100` for pages",
                        ),
                    );
                }
                scope.loops += 1;
                self.check_block(body, scope);
                scope.loops -= 1;
            }
            StatementKind::Break => {
                if scope.loops == 0 {
                    self.push(
                        Diagnostic::new(Code::BreakOutsideLoop, "`break` is not inside a loop")
                            .label(statement.span, "nothing to leave")
                            .help(
                                "use `break` inside `foreach` or `while`; to end the run, `throw`",
                            ),
                    );
                }
            }
        }
    }

    fn check_secret_update(&mut self, update: &'p SecretUpdate, scope: &mut Scope<'_, 'p>) {
        let name = &update.secret;
        self.used(|| Symbol::Secret(name.text.clone()), name.span);
        match self.symbols.secrets.get(name.as_str()) {
            None => {
                let candidates = self.symbols.secret_order.iter().map(|s| s.name.as_str());
                self.push(
                    Diagnostic::new(
                        Code::SecretUndeclared,
                        format!(
                            "`{}` is not declared; the secret must be created first",
                            name.text
                        ),
                    )
                    .label(name.span, "update of an undeclared secret")
                    .suggest(
                        name.as_str(),
                        name.span,
                        candidates,
                        format!(
                            "declare it: `secret {} {{ environment_specific }}`",
                            name.text
                        ),
                    )
                    .fix(self.declare_secret(name)),
                );
            }
            Some(secret) => {
                self.usage.secret_used(name.as_str());
                if !secret.is_environment_specific() {
                    self.push(
                        Diagnostic::new(
                            Code::SecretNotEnvironmentSpecific,
                            format!("`{}` is shared by every environment and cannot be updated by a run", name.text),
                        )
                        .label(name.span, "updated here")
                        .label(secret.name.span, "declared without `environment_specific`")
                        .help(format!(
                            "add `environment_specific` to `secret {}`, so a run updates only its own environment",
                            name.text
                        ))
                        .fix(self.make_environment_specific(secret)),
                    );
                }
                if let Some(locked) = secret.locked {
                    self.push(
                        Diagnostic::new(Code::SecretLocked, format!("`{}` is locked", name.text))
                            .label(name.span, "updated here")
                            .label(locked, "locked here")
                            .help(format!(
                                "a locked secret is only changed with `svc secret set`; remove `locked` from `secret {}` if runs must update it",
                                name.text
                            )),
                    );
                }
            }
        }
        match &update.value {
            Some(value) => {
                let inferred = self.check_expr(value, scope);
                if inferred == Inferred::Known(Type::Bool) {
                    self.type_mismatch(value, Type::String, Type::Bool, "a secret value");
                }
            }
            None => self.push(
                Diagnostic::new(
                    Code::MissingProperty,
                    format!("the update of `{}` has no value", name.text),
                )
                .label(update.span, "no `value = ...`")
                .help("add `value = EXPR` to the block"),
            ),
        }
        if let Some(expires_in) = &update.expires_in
            && let Inferred::Known(found) = self.check_expr(expires_in, scope)
            && found != Type::Number
            && found != Type::Json
        {
            self.type_mismatch(expires_in, Type::Number, found, "`expires_in` (seconds)");
        }
    }

    fn check_web_request(&mut self, request: &'p WebRequest, scope: &mut Scope<'_, 'p>) {
        if let Some(method) = &request.method {
            self.check_method(method, &values::REQUEST_METHODS);
        }
        match &request.url {
            // The client's token endpoint.
            None if matches!(request.auth, Some(Auth::Client { .. })) => {}
            None => self.push(
                Diagnostic::new(Code::MissingProperty, "a `web_request` needs a `url`")
                    .label(request.span, "no `url`")
                    .help("add `url \"https://...\"`"),
            ),
            Some(url) => {
                self.expect_type(url, Type::String, scope, "a URL");
                let complete = url.as_plain_string();
                let text = complete.clone().or_else(|| url.literal_prefix());
                if let Some(text) = text
                    && let Err(problem) = values::url(&text, complete.is_some())
                {
                    self.push(
                        Diagnostic::new(Code::InvalidUrl, "invalid URL")
                            .label(url.span, problem)
                            .help("write a full URL such as `\"https://api.example.com/oauth/token\"`"),
                    );
                }
            }
        }
        for field in &request.query {
            self.check_expr(&field.value, scope);
        }
        for field in &request.headers {
            if let Err(problem) = values::header_name(&field.name.value) {
                self.push(
                    Diagnostic::new(
                        Code::InvalidHeader,
                        format!("invalid header name `{}`", field.name.value),
                    )
                    .label(field.name.span, problem)
                    .help("header names are letters, digits and `-`, such as `\"Accept\"`"),
                );
            }
            self.expect_type(&field.value, Type::String, scope, "a header value");
        }
        match &request.body {
            Some(RequestBody::Form { fields, .. }) | Some(RequestBody::Json { fields, .. }) => {
                for field in fields {
                    self.check_expr(&field.value, scope);
                }
            }
            Some(RequestBody::Raw { value, .. }) => {
                self.check_expr(value, scope);
            }
            None => {}
        }
        match &request.auth {
            Some(Auth::Basic { user, password, .. }) => {
                self.expect_type(user, Type::String, scope, "a user name");
                self.expect_type(password, Type::String, scope, "a password");
            }
            Some(Auth::Bearer { token, .. }) => {
                self.expect_type(token, Type::String, scope, "a bearer token");
            }
            Some(Auth::Client { client, .. }) => {
                self.resolve_client(client);
            }
            Some(Auth::PrivateKeyJwt(jwt)) => {
                if let Some(client_id) = &jwt.client_id {
                    self.expect_type(client_id, Type::String, scope, "a client id");
                }
                self.signing_key(&jwt.key);
                self.algorithm(jwt.alg.as_ref());
                if let Some(kid) = &jwt.kid {
                    self.expect_type(kid, Type::String, scope, "a key id");
                }
            }
            Some(Auth::JwtBearer(jwt)) => {
                self.signing_key(&jwt.key);
                self.algorithm(jwt.alg.as_ref());
                for (what, value) in jwt.expressions().into_iter().skip(1) {
                    self.expect_type(value, Type::String, scope, &format!("`{what}`"));
                }
            }
            None => {}
        }
        if let Some(auth) = &request.auth
            && !matches!(auth, Auth::Basic { .. } | Auth::Bearer { .. })
        {
            self.token_request(request, auth);
        }
        if let Some(timeout) = &request.timeout {
            self.positive_duration(timeout);
        }
        if let Some(retry) = &request.retry {
            if let Some(attempts) = &retry.attempts
                && !(1..=20).contains(&attempts.value)
            {
                self.push(
                    Diagnostic::new(
                        Code::InvalidNumber,
                        format!("`attempts {}` is out of range", attempts.value),
                    )
                    .label(attempts.span, "between 1 and 20")
                    .help("`attempts 1` sends the request once, without retrying"),
                );
            }
            if let Some(max_time) = &retry.max_time {
                self.positive_duration(max_time);
            }
        }
        if let Some(redirects) = &request.redirects
            && redirects.value > 20
        {
            self.push(
                Diagnostic::new(
                    Code::InvalidNumber,
                    format!("`redirects {}` is too many", redirects.value),
                )
                .label(redirects.span, "at most 20")
                .help("a token endpoint rarely redirects; 0 to 5 is plenty"),
            );
        }
        let mut seen: Vec<&Name> = Vec::new();
        for mapping in &request.result_mapping {
            self.check_mapping(mapping, scope);
            if let Some(first) = seen.iter().find(|m| m.text == mapping.target.text) {
                self.push(
                    Diagnostic::new(
                        Code::DuplicateProperty,
                        format!("`{}` is mapped twice", mapping.target.text),
                    )
                    .label(mapping.target.span, "mapped again here")
                    .label(first.span, "first mapped here")
                    .help("map each variable once"),
                );
            }
            seen.push(&mapping.target);
        }
    }

    /// A request that authenticates as an OAuth client, or with a signed
    /// assertion, sends a form by POST.
    fn token_request(&mut self, request: &'p WebRequest, auth: &'p Auth) {
        if let Some(method) = &request.method
            && method.text != "POST"
        {
            self.push(
                Diagnostic::new(
                    Code::ConflictingProperty,
                    format!("this `auth` is sent in a form, by POST, not {}", method.text),
                )
                .label(method.span, "not POST")
                .label(auth.span(), "sends form fields")
                .help("remove `method` (POST is the default with this `auth`), or write `method POST`"),
            );
        }
        if let Some(body @ (RequestBody::Json { .. } | RequestBody::Raw { .. })) = &request.body {
            self.push(
                Diagnostic::new(
                    Code::ConflictingProperty,
                    "this `auth` adds form fields, and the body is not a form",
                )
                .label(body.span(), "not a `form { }`")
                .label(auth.span(), "sends form fields")
                .help("send the other fields in `form { ... }`"),
            );
        }
    }

    /// Reports an unknown client unless it is declared.
    pub(super) fn resolve_client(&mut self, name: &Name) {
        self.used(|| Symbol::Client(name.text.clone()), name.span);
        if self.symbols.clients.contains_key(name.as_str()) {
            return;
        }
        let candidates = self.symbols.client_order.iter().map(|c| c.name.as_str());
        self.push(
            Diagnostic::new(
                Code::UnknownClient,
                format!("unknown oauth_client `{}`", name.text),
            )
            .label(name.span, "no oauth_client has this name")
            .suggest(name.as_str(), name.span, candidates, format!(
                "declare it: `oauth_client {} {{ token_url \"https://...\" client_id ... client_auth ... }}`",
                name.text
            )),
        );
    }

    fn check_mapping(&mut self, mapping: &'p Mapping, scope: &mut Scope<'_, 'p>) {
        let service = scope.service;
        let target = &mapping.target;
        let target_type = if service.vars.contains_key(target.as_str()) {
            self.variable_used(service, target);
            self.usage
                .var_assigned(&service.decl.name.text, target.as_str());
            service.var_type(target.as_str())
        } else {
            let candidates = service.decl.vars.iter().map(|v| v.name.as_str());
            self.push(
                Diagnostic::new(
                    Code::UndeclaredMappingTarget,
                    format!(
                        "`result_mapping` into undeclared variable `{}`",
                        target.text
                    ),
                )
                .label(target.span, "not a variable of this service")
                .suggest(
                    target.as_str(),
                    target.span,
                    candidates,
                    format!(
                        "declare it in service `{}`: `var {}: string`",
                        service.decl.name.text, target.text
                    ),
                ),
            );
            None
        };
        match &mapping.source {
            MappingSource::JsonPath { path, span } => {
                if let Err(problem) = values::jsonpath(path) {
                    self.push(
                        Diagnostic::new(Code::InvalidJsonPath, format!("invalid JSONPath `{path}`"))
                            .label(*span, problem)
                            .help("write an RFC 9535 JSONPath such as `$.access_token` or `$.data[0]['token']`"),
                    );
                }
            }
            MappingSource::Header { name, .. } => {
                if let Err(problem) = values::header_name(&name.value) {
                    self.push(
                        Diagnostic::new(
                            Code::InvalidHeader,
                            format!("invalid header name `{}`", name.value),
                        )
                        .label(name.span, problem)
                        .help("header names are letters, digits and `-`, such as `\"Location\"`"),
                    );
                }
                if let Some(t @ (Type::Bool | Type::Number)) = target_type {
                    self.mapping_mismatch(mapping, t, "a header value is text");
                }
            }
            MappingSource::Status { .. } => {
                if let Some(Type::Bool) = target_type {
                    self.mapping_mismatch(mapping, Type::Bool, "the status is a number");
                }
            }
            MappingSource::Body { .. } => {
                if let Some(t @ (Type::Bool | Type::Number)) = target_type {
                    self.mapping_mismatch(mapping, t, "the body is text");
                }
            }
        }
    }

    fn mapping_mismatch(&mut self, mapping: &Mapping, target: Type, why: &str) {
        self.push(
            Diagnostic::new(
                Code::TypeMismatch,
                format!(
                    "cannot map into `{}`, a {} variable",
                    mapping.target.text,
                    target.name()
                ),
            )
            .label(mapping.source.span(), why)
            .help("declare the variable as `string` or `json`, or map a JSONPath instead"),
        );
    }

    fn assign(
        &mut self,
        target: &'p Name,
        value: Inferred,
        expr: &Expr,
        scope: &mut Scope<'_, 'p>,
    ) {
        let service = scope.service;
        if let Some(local) = scope.locals.iter().find(|l| l.text == target.text) {
            self.push(
                Diagnostic::new(
                    Code::LoopVariable,
                    format!("`{}` is a loop's item: it cannot be assigned", target.text),
                )
                .label(target.span, "assigned here")
                .label(local.span, "the loop's item")
                .help("assign a service variable instead: `var NAME: json`"),
            );
            return;
        }
        if !service.vars.contains_key(target.as_str()) {
            self.unknown_variable(target, service);
            return;
        }
        self.variable_used(service, target);
        if value != Inferred::Null {
            self.usage
                .var_assigned(&service.decl.name.text, target.as_str());
        }
        let Some(declared) = service.var_type(target.as_str()) else {
            return;
        };
        if let Inferred::Known(found) = value
            && found != declared
            && declared != Type::Json
        {
            self.push(
                Diagnostic::new(
                    Code::TypeMismatch,
                    format!(
                        "`{}` is a {} variable, but this value is a {}",
                        target.text,
                        declared.name(),
                        found.name()
                    ),
                )
                .label(expr.span, format!("a {}", found.name()))
                .label(target.span, format!("declared as `{}`", declared.name()))
                .help(conversion_help(declared)),
            );
        }
    }

    /// A use of a declared variable of the service, for the model.
    fn variable_used(&mut self, service: &ServiceSymbols<'p>, name: &Name) {
        let symbol = || Symbol::Variable {
            service: service.decl.name.text.clone(),
            name: name.text.clone(),
        };
        self.used(symbol, name.span);
    }

    fn unknown_variable(&mut self, name: &Name, service: &ServiceSymbols<'p>) {
        let candidates = service.decl.vars.iter().map(|v| v.name.as_str());
        self.push(
            Diagnostic::new(
                Code::UnknownVariable,
                format!("unknown variable `{}`", name.text),
            )
            .label(
                name.span,
                format!(
                    "service `{}` has no variable with this name",
                    service.decl.name.text
                ),
            )
            .suggest(
                name.as_str(),
                name.span,
                candidates,
                format!(
                    "declare it in service `{}`: `var {}: string`",
                    service.decl.name.text, name.text
                ),
            ),
        );
    }

    fn expect_bool(&mut self, expr: &'p Expr, scope: &mut Scope<'_, 'p>, what: &str) {
        if let Inferred::Known(found) = self.check_expr(expr, scope)
            && found != Type::Bool
            && found != Type::Json
        {
            let mut diagnostic = Diagnostic::new(
                Code::TypeMismatch,
                format!("{what} must be a bool, but this is a {}", found.name()),
            )
            .label(expr.span, format!("a {}", found.name()));
            diagnostic = match &expr.kind {
                ExprKind::Variable { name } => diagnostic.help(format!(
                    "to test for a value, write `has_value({})`",
                    name.text
                )),
                _ => diagnostic
                    .help("compare it, such as `x == \"value\"`, or test it with `has_value(x)`"),
            };
            self.push(diagnostic);
        }
    }

    fn expect_type(
        &mut self,
        expr: &'p Expr,
        expected: Type,
        scope: &mut Scope<'_, 'p>,
        what: &str,
    ) {
        if let Inferred::Known(found) = self.check_expr(expr, scope)
            && found != expected
            && found != Type::Json
            && !(expected == Type::String && found == Type::Number)
        {
            self.type_mismatch(expr, expected, found, what);
        }
    }

    fn type_mismatch(&mut self, expr: &Expr, expected: Type, found: Type, what: &str) {
        self.push(
            Diagnostic::new(
                Code::TypeMismatch,
                format!(
                    "{what} must be a {}, but this is a {}",
                    expected.name(),
                    found.name()
                ),
            )
            .label(expr.span, format!("a {}", found.name()))
            .help(conversion_help(expected)),
        );
    }

    /// Resolves the names in an expression and infers its type.
    fn check_expr(&mut self, expr: &'p Expr, scope: &mut Scope<'_, 'p>) -> Inferred {
        match &expr.kind {
            ExprKind::String { parts } => {
                for part in parts {
                    if let StringPart::Interpolation { expr } = part {
                        self.check_expr(expr, scope);
                    }
                }
                Inferred::Known(Type::String)
            }
            ExprKind::Number { .. } => Inferred::Known(Type::Number),
            ExprKind::Duration { .. } => Inferred::Known(Type::Duration),
            ExprKind::Bool { .. } => Inferred::Known(Type::Bool),
            ExprKind::Null => Inferred::Null,
            ExprKind::Variable { name } => {
                let service = scope.service;
                if scope.locals.iter().any(|l| l.text == name.text) {
                    Inferred::Known(Type::Json)
                } else if service.vars.contains_key(name.as_str()) {
                    self.variable_used(service, name);
                    self.usage.var_read(&service.decl.name.text, name);
                    service
                        .var_type(name.as_str())
                        .map_or(Inferred::Unknown, Inferred::Known)
                } else {
                    self.unknown_variable(name, service);
                    Inferred::Unknown
                }
            }
            ExprKind::Secret { name } => {
                self.secret_reads.push((name.text.clone(), expr.span));
                if self.resolve_secret(name) {
                    self.usage.secret_used(name.as_str());
                }
                Inferred::Known(Type::String)
            }
            ExprKind::Param { name } => {
                for &endpoint in &scope.owners {
                    let symbol = || Symbol::Param {
                        service: scope.service.decl.name.text.clone(),
                        endpoint: endpoint.to_string(),
                        name: name.text.clone(),
                    };
                    self.used(symbol, name.span);
                }
                let Some(contracts) = &scope.contracts else {
                    return Inferred::Unknown;
                };
                let declared: Vec<&ParamDecl> = contracts
                    .iter()
                    .filter_map(|c| c.iter().find(|p| p.name.text == name.text))
                    .collect();
                if declared.len() < contracts.len() {
                    let all: Vec<&str> = contracts
                        .iter()
                        .flat_map(|c| c.iter().map(|p| p.name.as_str()))
                        .collect();
                    self.push(
                        Diagnostic::new(
                            Code::UnknownParam,
                            format!(
                                "no endpoint that runs this action declares the parameter `{}`",
                                name.text
                            ),
                        )
                        .label(name.span, "not in `params`")
                        .suggest(name.as_str(), name.span, all.iter().copied(), "declare it in the `params` of every endpoint that processes this action"),
                    );
                    return Inferred::Unknown;
                }
                declared
                    .first()
                    .and_then(|p| p.param_type())
                    .map_or(Inferred::Unknown, |t| Inferred::Known(t.value_type()))
            }
            // Where a connection is in scope: checked with the per-account
            // rules (`accounts`). A tag that is not set is null.
            ExprKind::Connection { .. } => Inferred::Known(Type::String),
            ExprKind::Run { field } => self.scoped_field(
                expr,
                field,
                scope.in_hook,
                Code::UnknownRunField,
                ("run", "`on_failure` and `on_recovery`", "a hook"),
                &[
                    ("id", Type::String),
                    ("endpoint", Type::String),
                    ("environment", Type::String),
                ],
            ),
            ExprKind::Error { field } => self.scoped_field(
                expr,
                field,
                scope.in_catch,
                Code::UnknownErrorField,
                ("error", "`catch` and `on_failure`", "a `catch` block"),
                &[
                    ("code", Type::String),
                    ("message", Type::String),
                    ("status", Type::Number),
                ],
            ),
            ExprKind::Call { function, args } => self.check_call(expr, function, args, scope),
            ExprKind::Not { operand } => {
                self.expect_bool(operand, scope, "the operand of `!`");
                Inferred::Known(Type::Bool)
            }
            ExprKind::Binary { op, lhs, rhs } => {
                match op {
                    BinaryOp::And | BinaryOp::Or => {
                        let what = format!("an operand of `{}`", op.symbol());
                        self.expect_bool(lhs, scope, &what);
                        self.expect_bool(rhs, scope, &what);
                    }
                    BinaryOp::Eq | BinaryOp::Ne => {
                        let left = self.check_expr(lhs, scope);
                        let right = self.check_expr(rhs, scope);
                        if let (Inferred::Known(a), Inferred::Known(b)) = (left, right)
                            && a != b
                            && a != Type::Json
                            && b != Type::Json
                        {
                            self.push(
                                Diagnostic::new(
                                    Code::TypeMismatch,
                                    format!(
                                        "comparing a {} with a {} is always {}",
                                        a.name(),
                                        b.name(),
                                        *op == BinaryOp::Ne
                                    ),
                                )
                                .label(expr.span, "values of different types")
                                .help("compare values of the same type"),
                            );
                        }
                    }
                    BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
                        let left = self.check_expr(lhs, scope);
                        let right = self.check_expr(rhs, scope);
                        let ordered = |t: Type| {
                            matches!(t, Type::Number | Type::Duration | Type::Time | Type::Json)
                        };
                        let fits = match (left, right) {
                            (Inferred::Known(a), Inferred::Known(b)) => {
                                ordered(a)
                                    && ordered(b)
                                    && (a == b || a == Type::Json || b == Type::Json)
                            }
                            (Inferred::Known(t), _) | (_, Inferred::Known(t)) => ordered(t),
                            _ => true,
                        };
                        if !fits {
                            self.operator_mismatch(expr, *op, left, right);
                        }
                    }
                    BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div => {
                        let left = self.check_expr(lhs, scope);
                        let right = self.check_expr(rhs, scope);
                        let (Inferred::Known(a), Inferred::Known(b)) = (left, right) else {
                            return Inferred::Unknown;
                        };
                        if a == Type::Json || b == Type::Json {
                            return Inferred::Unknown;
                        }
                        return match arithmetic(*op, a, b) {
                            Some(t) => Inferred::Known(t),
                            None => {
                                self.operator_mismatch(expr, *op, left, right);
                                Inferred::Unknown
                            }
                        };
                    }
                }
                Inferred::Known(Type::Bool)
            }
        }
    }

    /// `run.FIELD` or `error.FIELD`: known only where `available`, and only
    /// the fields listed. `context` is (the word, where it is known, the
    /// place to read it in a help line).
    fn scoped_field(
        &mut self,
        expr: &Expr,
        field: &Name,
        available: bool,
        code: Code,
        context: (&str, &str, &str),
        fields: &[(&str, Type)],
    ) -> Inferred {
        let (word, places, place) = context;
        let names: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
        let listed = names
            .iter()
            .map(|n| format!("`{word}.{n}`"))
            .collect::<Vec<_>>();
        let listed = match listed.split_last() {
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        };
        if !available {
            let what = if word == "error" {
                "no error is being handled here"
            } else {
                "no hook here"
            };
            self.push(
                Diagnostic::new(code, format!("`{word}` is only known inside {places}"))
                    .label(expr.span, what)
                    .help(format!("read {listed} inside {place}")),
            );
            return Inferred::Unknown;
        }
        if let Some((_, t)) = fields.iter().find(|(n, _)| *n == field.as_str()) {
            return Inferred::Known(*t);
        }
        let article = if word == "error" { "an" } else { "a" };
        let all = names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>();
        let all = match all.split_last() {
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
            None => String::new(),
        };
        self.push(
            Diagnostic::new(
                code,
                format!("{article} {word} has no field `{}`", field.text),
            )
            .label(field.span, "unknown field")
            .suggest(
                field.as_str(),
                field.span,
                names.iter().copied(),
                format!("{article} {word} has {all}"),
            ),
        );
        Inferred::Unknown
    }

    /// Types a call with the function's signature.
    fn check_call(
        &mut self,
        expr: &'p Expr,
        function: &'p Name,
        args: &'p [Expr],
        scope: &mut Scope<'_, 'p>,
    ) -> Inferred {
        let found: Vec<Inferred> = args.iter().map(|a| self.check_expr(a, scope)).collect();
        let Some(known) = Function::from_name(function.as_str()) else {
            self.push(
                Diagnostic::new(
                    Code::UnknownFunction,
                    format!("unknown function `{}`", function.text),
                )
                .label(function.span, "not a function")
                .suggest(
                    function.as_str(),
                    function.span,
                    Function::names(),
                    "the functions are listed in docs/language.md, under Expressions",
                ),
            );
            return Inferred::Unknown;
        };
        let params = known.params();
        if args.len() != params.len() {
            let count = match params.len() {
                0 => "no arguments".to_string(),
                1 => "one argument".to_string(),
                n => format!("{n} arguments"),
            };
            self.push(
                Diagnostic::new(
                    Code::WrongArguments,
                    format!("`{}` takes {count}, not {}", known.name(), args.len()),
                )
                .label(expr.span, "wrong number of arguments")
                .help(format!("write `{}`", known.signature())),
            );
            return Inferred::Unknown;
        }
        for (i, (param, (arg, inferred))) in params.iter().zip(args.iter().zip(&found)).enumerate()
        {
            if let (Param::Of(expected), Inferred::Known(t)) = (param, inferred)
                && t != expected
                && *t != Type::Json
                && *expected != Type::Json
            {
                let what = format!("argument {} of `{}`", i + 1, known.name());
                self.type_mismatch(arg, *expected, *t, &what);
            }
        }
        if known == Function::JsonPath
            && let Some(path) = args[1].as_plain_string()
            && let Err(problem) = values::jsonpath(&path)
        {
            self.push(
                Diagnostic::new(Code::InvalidJsonPath, format!("invalid JSONPath `{path}`"))
                    .label(args[1].span, problem)
                    .help("write an RFC 9535 JSONPath such as `$.exp` or `$.items[0].id`"),
            );
        }
        match known.returns() {
            Returns::Of(t) => Inferred::Known(t),
            Returns::Argument => found
                .iter()
                .find_map(|f| match f {
                    Inferred::Known(t) => Some(Inferred::Known(*t)),
                    _ => None,
                })
                .unwrap_or(Inferred::Unknown),
        }
    }

    /// An operator given operands it does not take.
    fn operator_mismatch(&mut self, expr: &Expr, op: BinaryOp, left: Inferred, right: Inferred) {
        let name = |i: Inferred| match i {
            Inferred::Known(t) => t.name(),
            Inferred::Null => "null",
            Inferred::Unknown => "value",
        };
        let takes = match op {
            BinaryOp::Add => {
                "`+` adds numbers or durations, a duration to a time, or joins two strings"
            }
            BinaryOp::Sub => {
                "`-` subtracts numbers or durations, a duration from a time, or a time from a time"
            }
            BinaryOp::Mul => "`*` multiplies numbers, or a duration by a number",
            BinaryOp::Div => {
                "`/` divides numbers, a duration by a number, or a duration by a duration"
            }
            _ => "comparisons order two numbers, two durations or two times",
        };
        self.push(
            Diagnostic::new(
                Code::TypeMismatch,
                format!(
                    "`{}` does not take a {} and a {}",
                    op.symbol(),
                    name(left),
                    name(right)
                ),
            )
            .label(expr.span, "operands of these types")
            .help(format!("{takes}; `string(x)` turns any value into text")),
        );
    }
}

/// The type of an arithmetic operation, when it has one.
fn arithmetic(op: BinaryOp, a: Type, b: Type) -> Option<Type> {
    use Type::*;
    Some(match (op, a, b) {
        (BinaryOp::Add, String, String) => String,
        (BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div, Number, Number) => Number,
        (BinaryOp::Add | BinaryOp::Sub, Duration, Duration) => Duration,
        (BinaryOp::Add, Time, Duration) | (BinaryOp::Add, Duration, Time) => Time,
        (BinaryOp::Sub, Time, Duration) => Time,
        (BinaryOp::Sub, Time, Time) => Duration,
        (BinaryOp::Mul, Duration, Number) | (BinaryOp::Mul, Number, Duration) => Duration,
        (BinaryOp::Div, Duration, Number) => Duration,
        (BinaryOp::Div, Duration, Duration) => Number,
        _ => return None,
    })
}

/// The inferred type of a literal of type `t`.
pub(super) fn literal(t: Type) -> Inferred {
    Inferred::Known(t)
}

/// An expression whose type is not known.
pub(super) fn unknown() -> Inferred {
    Inferred::Unknown
}

/// `page: number, tags: list<string>`.
fn param_list(declared: &[ParamDecl]) -> String {
    if declared.is_empty() {
        return "no parameters".into();
    }
    declared
        .iter()
        .map(|p| format!("{}: {}", p.name.text, p.type_name.text))
        .collect::<Vec<_>>()
        .join(", ")
}

fn conversion_help(expected: Type) -> String {
    match expected {
        Type::String => {
            "write the value in quotes, or declare the variable with another type".into()
        }
        Type::Number => {
            "write a number such as `3600`, or declare the variable with another type".into()
        }
        Type::Bool => "write `true` or `false`, or declare the variable with another type".into(),
        Type::Json => "any value fits a `json` variable".into(),
        Type::Duration => {
            "write a duration such as `5m`, or declare the variable with another type".into()
        }
        Type::Time => {
            "write `now()` or `from_unix(n)`, or declare the variable with another type".into()
        }
    }
}
