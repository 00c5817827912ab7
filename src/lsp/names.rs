//! Every place a declared name is written: where it is declared and
//! where it is used, across the files of a program.
//!
//! Go to definition, find references, rename, hover and the symbol lists
//! all read this one index, so they agree on what a name refers to.

use rustc_hash::FxHashMap as HashMap;

use crate::source::{FileId, Span};
use crate::syntax::ast::*;

/// What a name refers to. Members are qualified by their service (and
/// endpoint), so `token` in two services are two symbols.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Symbol {
    Secret(String),
    Role(String),
    Identity(String),
    Client(String),
    Service(String),
    Variable {
        service: String,
        name: String,
    },
    Action {
        service: String,
        name: String,
    },
    Endpoint {
        service: String,
        name: String,
    },
    Param {
        service: String,
        endpoint: String,
        name: String,
    },
    Schedule(String),
}

impl Symbol {
    pub fn name(&self) -> &str {
        match self {
            Symbol::Secret(name)
            | Symbol::Role(name)
            | Symbol::Identity(name)
            | Symbol::Client(name)
            | Symbol::Service(name)
            | Symbol::Schedule(name) => name,
            Symbol::Variable { name, .. }
            | Symbol::Action { name, .. }
            | Symbol::Endpoint { name, .. }
            | Symbol::Param { name, .. } => name,
        }
    }

    /// The same kind of symbol, in the same scope, with another name.
    pub fn renamed(&self, to: &str) -> Symbol {
        let to = to.to_string();
        match self {
            Symbol::Secret(_) => Symbol::Secret(to),
            Symbol::Role(_) => Symbol::Role(to),
            Symbol::Identity(_) => Symbol::Identity(to),
            Symbol::Client(_) => Symbol::Client(to),
            Symbol::Service(_) => Symbol::Service(to),
            Symbol::Schedule(_) => Symbol::Schedule(to),
            Symbol::Variable { service, .. } => Symbol::Variable {
                service: service.clone(),
                name: to,
            },
            Symbol::Action { service, .. } => Symbol::Action {
                service: service.clone(),
                name: to,
            },
            Symbol::Endpoint { service, .. } => Symbol::Endpoint {
                service: service.clone(),
                name: to,
            },
            Symbol::Param {
                service, endpoint, ..
            } => Symbol::Param {
                service: service.clone(),
                endpoint: endpoint.clone(),
                name: to,
            },
        }
    }

    /// The word for the kind, as the language writes it.
    pub fn kind(&self) -> &'static str {
        match self {
            Symbol::Secret(_) => "secret",
            Symbol::Role(_) => "role",
            Symbol::Identity(_) => "identity",
            Symbol::Client(_) => "oauth_client",
            Symbol::Service(_) => "service",
            Symbol::Variable { .. } => "var",
            Symbol::Action { .. } => "action",
            Symbol::Endpoint { .. } => "endpoint",
            Symbol::Param { .. } => "param",
            Symbol::Schedule(_) => "schedule",
        }
    }

    /// `service.name` for members, the name for the rest.
    pub fn qualified(&self) -> String {
        match self {
            Symbol::Variable { service, name }
            | Symbol::Action { service, name }
            | Symbol::Endpoint { service, name } => format!("{service}.{name}"),
            Symbol::Param {
                service,
                endpoint,
                name,
            } => format!("{service}.{endpoint}({name})"),
            _ => self.name().to_string(),
        }
    }
}

/// One place a name is written.
#[derive(Clone, Debug, PartialEq)]
pub struct Occurrence {
    pub symbol: Symbol,
    /// The name itself, nothing around it.
    pub span: Span,
    pub declaration: bool,
}

/// A declaration: its name and the span of the whole declaration.
#[derive(Clone, Debug)]
pub struct Declaration {
    pub symbol: Symbol,
    pub name: Span,
    pub whole: Span,
    /// The declaration that holds it (a service for its members).
    pub container: Option<String>,
}

/// The index of one program.
#[derive(Debug, Default)]
pub struct Names {
    /// Per file, sorted by start.
    occurrences: HashMap<FileId, Vec<Occurrence>>,
    /// Every declaration, in program order; a name declared twice has two.
    pub declarations: Vec<Declaration>,
    by_symbol: HashMap<Symbol, Vec<Span>>,
}

impl Names {
    pub fn new(program: &Program) -> Names {
        let mut collector = Collector::default();
        collector.program(program);
        let mut names = Names {
            declarations: collector.declarations,
            ..Names::default()
        };
        for occurrence in collector.occurrences {
            names
                .by_symbol
                .entry(occurrence.symbol.clone())
                .or_default()
                .push(occurrence.span);
            names
                .occurrences
                .entry(occurrence.span.file)
                .or_default()
                .push(occurrence);
        }
        for list in names.occurrences.values_mut() {
            list.sort_by_key(|o| o.span.start);
        }
        names
    }

    /// The name written at a byte offset of a file (the offset may be just
    /// past its last character, where an editor's cursor stands after typing).
    pub fn at(&self, file: FileId, offset: usize) -> Option<&Occurrence> {
        let list = self.occurrences.get(&file)?;
        let after = list.partition_point(|o| (o.span.start as usize) <= offset);
        list[..after]
            .iter()
            .rev()
            .take(4)
            .find(|o| offset <= o.span.end())
    }

    /// Where a symbol is declared: the first declaration, as the checker
    /// resolves it.
    pub fn declaration(&self, symbol: &Symbol) -> Option<&Declaration> {
        self.declarations.iter().find(|d| &d.symbol == symbol)
    }

    pub fn is_declared(&self, symbol: &Symbol) -> bool {
        self.declaration(symbol).is_some()
    }

    /// Every span of a symbol, declarations included, in program order.
    pub fn spans(&self, symbol: &Symbol) -> &[Span] {
        self.by_symbol.get(symbol).map_or(&[], Vec::as_slice)
    }

    pub fn in_file(&self, file: FileId) -> &[Occurrence] {
        self.occurrences.get(&file).map_or(&[], Vec::as_slice)
    }
}

#[derive(Default)]
struct Collector {
    occurrences: Vec<Occurrence>,
    declarations: Vec<Declaration>,
    /// The variables of the service being walked.
    service_vars: Vec<String>,
    /// The endpoints whose parameters `param.NAME` may mean in the
    /// statements being walked: those that process the action, or whose
    /// hook it is.
    param_owners: Vec<String>,
}

impl Collector {
    fn use_(&mut self, symbol: Symbol, span: Span) {
        self.occurrences.push(Occurrence {
            symbol,
            span,
            declaration: false,
        });
    }

    fn declare(&mut self, symbol: Symbol, name: &Name, whole: Span, container: Option<&str>) {
        self.occurrences.push(Occurrence {
            symbol: symbol.clone(),
            span: name.span,
            declaration: true,
        });
        self.declarations.push(Declaration {
            symbol,
            name: name.span,
            whole,
            container: container.map(str::to_string),
        });
    }

    /// Sets the scope of a service's members: its variables, and the
    /// endpoints whose parameters `param.NAME` may mean.
    fn enter_service(&mut self, service: Option<&ServiceDecl>, endpoints: Vec<String>) {
        self.service_vars = service
            .map(|s| s.vars.iter().map(|v| v.name.text.clone()).collect())
            .unwrap_or_default();
        self.param_owners = endpoints;
    }

    fn program(&mut self, program: &Program) {
        for secret in &program.secrets {
            self.declare(
                Symbol::Secret(secret.name.text.clone()),
                &secret.name,
                secret.span,
                None,
            );
            if let Some(refresh) = &secret.refreshed_by {
                self.endpoint_ref(&refresh.endpoint);
                self.identity(&refresh.service_account);
            }
        }
        for role in &program.roles {
            self.declare(
                Symbol::Role(role.name.text.clone()),
                &role.name,
                role.span,
                None,
            );
            for grant in &role.grants {
                match &grant.kind {
                    GrantKind::Run(pattern) => {
                        self.service(&pattern.service);
                        if let Some(endpoint) = &pattern.endpoint {
                            self.endpoint(&pattern.service.text, endpoint);
                        }
                    }
                    GrantKind::UpdateSecret(name) | GrantKind::ReadSecret(name) => {
                        self.secret(name)
                    }
                }
            }
        }
        for identity in &program.identities {
            self.declare(
                Symbol::Identity(identity.name.text.clone()),
                &identity.name,
                identity.span,
                None,
            );
            for role in &identity.roles {
                self.use_(Symbol::Role(role.text.clone()), role.span);
            }
        }
        for client in &program.oauth_clients {
            self.declare(
                Symbol::Client(client.name.text.clone()),
                &client.name,
                client.span,
                None,
            );
            for (_, expr) in client.expressions() {
                self.expr(None, expr);
            }
            if let Some(stores) = &client.stores {
                for store in &stores.entries {
                    self.secret(&store.secret);
                }
            }
        }
        for service in &program.services {
            self.service_decl(service);
        }
        for schedule in &program.schedules {
            self.declare(
                Symbol::Schedule(schedule.name.text.clone()),
                &schedule.name,
                schedule.span,
                None,
            );
            if let Some(endpoint) = &schedule.endpoint {
                self.endpoint_ref(endpoint);
                for field in &schedule.params {
                    self.use_(
                        Symbol::Param {
                            service: endpoint.service.text.clone(),
                            endpoint: endpoint.endpoint.text.clone(),
                            name: field.name.value.clone(),
                        },
                        field.name.span,
                    );
                    self.expr(None, &field.value);
                }
            }
            if let Some(account) = &schedule.service_account {
                self.identity(account);
            }
            if let Some(before) = &schedule.before_expiry {
                self.secret(&before.secret);
            }
            // A schedule's hooks read the variables and parameters of the
            // endpoint it runs.
            let target = schedule.endpoint.as_ref();
            let service = target.and_then(|e| {
                program
                    .services
                    .iter()
                    .find(|s| s.name.text == e.service.text)
            });
            let endpoint = target.map(|e| e.endpoint.text.clone());
            self.enter_service(service, endpoint.into_iter().collect());
            for hook in [&schedule.on_failure, &schedule.on_recovery]
                .into_iter()
                .flatten()
            {
                self.block(service.map(|s| s.name.text.as_str()), &hook.body);
            }
            self.enter_service(None, Vec::new());
        }
    }

    fn service_decl(&mut self, service: &ServiceDecl) {
        let name = service.name.text.as_str();
        self.declare(
            Symbol::Service(name.to_string()),
            &service.name,
            service.span,
            None,
        );
        self.enter_service(Some(service), Vec::new());
        for var in &service.vars {
            let symbol = Symbol::Variable {
                service: name.to_string(),
                name: var.name.text.clone(),
            };
            self.declare(symbol, &var.name, var.span, Some(name));
        }
        for action in &service.actions {
            let symbol = Symbol::Action {
                service: name.to_string(),
                name: action.name.text.clone(),
            };
            self.declare(symbol, &action.name, action.span, Some(name));
            self.param_owners = service
                .endpoints_processing(&action.name.text)
                .map(|e| e.name.text.clone())
                .collect();
            self.block(Some(name), &action.body);
            self.param_owners.clear();
        }
        for endpoint in &service.endpoints {
            let symbol = Symbol::Endpoint {
                service: name.to_string(),
                name: endpoint.name.text.clone(),
            };
            self.declare(symbol, &endpoint.name, endpoint.span, Some(name));
            if let Some(action) = &endpoint.process {
                let symbol = Symbol::Action {
                    service: name.to_string(),
                    name: action.text.clone(),
                };
                self.use_(symbol, action.span);
            }
            for param in endpoint.params.iter().flatten() {
                let symbol = Symbol::Param {
                    service: name.to_string(),
                    endpoint: endpoint.name.text.clone(),
                    name: param.name.text.clone(),
                };
                let container = format!("{name}.{}", endpoint.name.text);
                self.declare(symbol, &param.name, param.span, Some(&container));
                if let Some(default) = &param.default {
                    self.expr(Some(name), default);
                }
            }
            self.param_owners = vec![endpoint.name.text.clone()];
            if let Some(response) = &endpoint.response {
                for expr in response.expressions() {
                    self.expr(Some(name), expr);
                }
                for secret in &response.reveals {
                    self.secret(secret);
                }
            }
            for hook in [&endpoint.on_failure, &endpoint.on_recovery]
                .into_iter()
                .flatten()
            {
                self.block(Some(name), &hook.body);
            }
            self.param_owners.clear();
        }
        self.service_vars.clear();
    }

    fn block(&mut self, service: Option<&str>, block: &Block) {
        block.walk(&mut |statement| self.statement(service, statement));
    }

    fn statement(&mut self, service: Option<&str>, statement: &Statement) {
        for expr in statement.expressions() {
            self.expr(service, expr);
        }
        match &statement.kind {
            StatementKind::UpdateVariables { assignments } => {
                for assignment in assignments {
                    self.variable(service, &assignment.target);
                }
            }
            StatementKind::WebRequest(request) => {
                for mapping in &request.result_mapping {
                    self.variable(service, &mapping.target);
                }
                if let Some(Auth::Client { client, .. }) = &request.auth {
                    self.use_(Symbol::Client(client.text.clone()), client.span);
                }
            }
            StatementKind::UpdateSecrets { updates, .. } => {
                for update in updates {
                    self.secret(&update.secret);
                }
            }
            StatementKind::RunService {
                endpoint,
                args,
                as_account,
                into,
            } => {
                self.endpoint_ref(endpoint);
                for arg in args {
                    self.use_(
                        Symbol::Param {
                            service: endpoint.service.text.clone(),
                            endpoint: endpoint.endpoint.text.clone(),
                            name: arg.name.value.clone(),
                        },
                        arg.name.span,
                    );
                }
                if let Some(account) = as_account {
                    self.identity(account);
                }
                if let Some(into) = into {
                    self.variable(service, into);
                }
            }
            _ => {}
        }
    }

    fn expr(&mut self, service: Option<&str>, expr: &Expr) {
        expr.walk(&mut |e| match &e.kind {
            ExprKind::Secret { name } => self.secret(name),
            ExprKind::Variable { name } => self.variable(service, name),
            ExprKind::Param { name } => {
                for endpoint in self.param_owners.clone() {
                    let symbol = Symbol::Param {
                        service: service.unwrap_or_default().to_string(),
                        endpoint,
                        name: name.text.clone(),
                    };
                    self.use_(symbol, name.span);
                }
            }
            _ => {}
        });
    }

    /// A variable of the service; a loop variable or an unknown name is
    /// not a service variable, and is left out.
    fn variable(&mut self, service: Option<&str>, name: &Name) {
        if let Some(service) = service
            && self.service_vars.contains(&name.text)
        {
            let symbol = Symbol::Variable {
                service: service.to_string(),
                name: name.text.clone(),
            };
            self.use_(symbol, name.span);
        }
    }

    fn secret(&mut self, name: &Name) {
        self.use_(Symbol::Secret(name.text.clone()), name.span);
    }

    fn identity(&mut self, name: &Name) {
        self.use_(Symbol::Identity(name.text.clone()), name.span);
    }

    fn service(&mut self, name: &Name) {
        self.use_(Symbol::Service(name.text.clone()), name.span);
    }

    fn endpoint(&mut self, service: &str, name: &Name) {
        let symbol = Symbol::Endpoint {
            service: service.to_string(),
            name: name.text.clone(),
        };
        self.use_(symbol, name.span);
    }

    fn endpoint_ref(&mut self, endpoint: &EndpointRef) {
        self.service(&endpoint.service);
        self.endpoint(&endpoint.service.text, &endpoint.endpoint);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::FileId;

    const PROGRAM: &str = r#"secret T { environment_specific refreshed_by api.get as bot min_valid 5m }
role r { grant run api.get grant run api.* grant update_secret T grant read_secret T }
service_account bot { roles r }
oauth_client c { token_url "http://127.0.0.1/t" client_id secret.T client_auth none stores { access_token = T } }
service api {
  var v: string
  action a {
    web_request { url "http://127.0.0.1/${v}" auth client(c) result_mapping { v = $.x } }
    foreach item in json_parse(v) { log item }
    if has_value(v) { update_secret T = v }
    log param.n
  }
  endpoint get { methods GET process a params { n: number = 1 } response { body v reveals T } }
}
schedule s { endpoint api.get service_account bot every 1h before_expiry T 5m params { n = 2 } }
"#;

    fn spans(names: &Names, symbol: &Symbol) -> Vec<&'static str> {
        names
            .spans(symbol)
            .iter()
            .map(|s| &PROGRAM[s.range()])
            .collect()
    }

    #[test]
    fn every_use_of_every_kind_is_indexed() {
        let (program, diagnostics) = crate::syntax::parse_file(FileId(0), PROGRAM);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let names = Names::new(&program);
        let member = |name: &str| (String::from("api"), name.to_string());
        // Declaration, two grants, client_id, stores, the update, reveals,
        // before_expiry.
        assert_eq!(spans(&names, &Symbol::Secret("T".into())).len(), 8);
        assert_eq!(spans(&names, &Symbol::Identity("bot".into())), ["bot"; 3]);
        assert_eq!(spans(&names, &Symbol::Role("r".into())), ["r"; 2]);
        assert_eq!(spans(&names, &Symbol::Client("c".into())), ["c"; 2]);
        // Declaration, refreshed_by, two grants, the schedule.
        assert_eq!(spans(&names, &Symbol::Service("api".into())), ["api"; 5]);
        let (service, name) = member("get");
        assert_eq!(
            spans(&names, &Symbol::Endpoint { service, name }),
            ["get"; 4]
        );
        let (service, name) = member("v");
        // Declaration, interpolation, mapping target, json_parse argument,
        // has_value, update value, response body; `item` is not a service
        // variable.
        assert_eq!(spans(&names, &Symbol::Variable { service, name }), ["v"; 7]);
        let (service, name) = member("a");
        assert_eq!(spans(&names, &Symbol::Action { service, name }), ["a"; 2]);
        let param = Symbol::Param {
            service: "api".into(),
            endpoint: "get".into(),
            name: "n".into(),
        };
        assert_eq!(spans(&names, &param), ["n"; 3]);
        assert_eq!(spans(&names, &Symbol::Schedule("s".into())), ["s"]);
        // The cursor just after a name still finds it.
        let end = PROGRAM.find("roles r").unwrap() + "roles r".len();
        assert_eq!(
            names.at(FileId(0), end).unwrap().symbol,
            Symbol::Role("r".into())
        );
        assert!(names.at(FileId(0), 0).is_none());
    }
}
