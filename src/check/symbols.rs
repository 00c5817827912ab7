//! The names a program declares, and the duplicates among them.

// Names are short and not chosen by an attacker: FxHash is faster than SipHash here.
use rustc_hash::FxHashMap as HashMap;

use super::model::{Recorder, Symbol};
use crate::diagnostic::{Code, Diagnostic};
use crate::syntax::ast::*;

/// Lookup tables over a program. Where a name is declared twice, the first
/// declaration wins (the second is reported).
#[derive(Default)]
pub struct Symbols<'p> {
    pub secrets: HashMap<&'p str, &'p SecretDecl>,
    pub roles: HashMap<&'p str, &'p RoleDecl>,
    pub identities: HashMap<&'p str, &'p IdentityDecl>,
    pub services: HashMap<&'p str, ServiceSymbols<'p>>,
    pub schedules: HashMap<&'p str, &'p ScheduleDecl>,
    pub clients: HashMap<&'p str, &'p OAuthClientDecl>,
    /// Declaration order, for stable suggestions and output.
    pub secret_order: Vec<&'p SecretDecl>,
    pub role_order: Vec<&'p RoleDecl>,
    pub identity_order: Vec<&'p IdentityDecl>,
    pub service_order: Vec<&'p ServiceDecl>,
    pub schedule_order: Vec<&'p ScheduleDecl>,
    pub client_order: Vec<&'p OAuthClientDecl>,
}

pub struct ServiceSymbols<'p> {
    pub decl: &'p ServiceDecl,
    pub vars: HashMap<&'p str, &'p VarDecl>,
    pub actions: HashMap<&'p str, &'p ActionDecl>,
    pub endpoints: HashMap<&'p str, &'p EndpointDecl>,
    /// The endpoints that process each action, in their order: looked up
    /// once, not by a scan of every endpoint per action.
    pub processing: HashMap<&'p str, Vec<&'p EndpointDecl>>,
}

impl<'p> ServiceSymbols<'p> {
    /// The endpoints that process `action`.
    pub fn endpoints_processing(&self, action: &str) -> &[&'p EndpointDecl] {
        self.processing.get(action).map_or(&[], Vec::as_slice)
    }

    pub fn var_type(&self, name: &str) -> Option<Type> {
        self.vars
            .get(name)
            .and_then(|v| Type::from_name(&v.type_name.text))
    }
}

impl<'p> Symbols<'p> {
    /// Builds the tables, reporting every name declared twice, and records
    /// every declaration (duplicates too) in the model.
    pub fn collect(
        program: &'p Program,
        diagnostics: &mut Vec<Diagnostic>,
        recorder: &mut Recorder,
    ) -> Self {
        record_declarations(program, recorder);
        let mut symbols = Symbols::default();
        for secret in &program.secrets {
            if insert(
                &mut symbols.secrets,
                &secret.name,
                secret,
                "secret",
                diagnostics,
                |s| &s.name,
            ) {
                symbols.secret_order.push(secret);
            }
        }
        for role in &program.roles {
            if insert(
                &mut symbols.roles,
                &role.name,
                role,
                "role",
                diagnostics,
                |r| &r.name,
            ) {
                symbols.role_order.push(role);
            }
        }
        for identity in &program.identities {
            let what = "user or service account";
            if insert(
                &mut symbols.identities,
                &identity.name,
                identity,
                what,
                diagnostics,
                |i| &i.name,
            ) {
                symbols.identity_order.push(identity);
            }
        }
        for schedule in &program.schedules {
            if insert(
                &mut symbols.schedules,
                &schedule.name,
                schedule,
                "schedule",
                diagnostics,
                |s| &s.name,
            ) {
                symbols.schedule_order.push(schedule);
            }
        }
        for client in &program.oauth_clients {
            if insert(
                &mut symbols.clients,
                &client.name,
                client,
                "oauth_client",
                diagnostics,
                |c| &c.name,
            ) {
                symbols.client_order.push(client);
            }
        }
        for service in &program.services {
            if let Some(first) = symbols.services.get(service.name.as_str()) {
                diagnostics.push(duplicate("service", &service.name, &first.decl.name));
                continue;
            }
            let mut table = ServiceSymbols {
                decl: service,
                vars: HashMap::default(),
                actions: HashMap::default(),
                endpoints: HashMap::default(),
                processing: HashMap::default(),
            };
            for var in &service.vars {
                insert(
                    &mut table.vars,
                    &var.name,
                    var,
                    "variable",
                    diagnostics,
                    |v| &v.name,
                );
            }
            for action in &service.actions {
                insert(
                    &mut table.actions,
                    &action.name,
                    action,
                    "action",
                    diagnostics,
                    |a| &a.name,
                );
            }
            for endpoint in &service.endpoints {
                insert(
                    &mut table.endpoints,
                    &endpoint.name,
                    endpoint,
                    "endpoint",
                    diagnostics,
                    |e| &e.name,
                );
                if let Some(action) = &endpoint.process {
                    table
                        .processing
                        .entry(action.as_str())
                        .or_default()
                        .push(endpoint);
                }
            }
            symbols.services.insert(service.name.as_str(), table);
            symbols.service_order.push(service);
        }
        symbols
    }

    pub fn endpoint(&self, service: &str, endpoint: &str) -> Option<&'p EndpointDecl> {
        self.services.get(service)?.endpoints.get(endpoint).copied()
    }

    /// The action an endpoint processes, if both exist.
    pub fn endpoint_action(&self, service: &str, endpoint: &str) -> Option<&'p ActionDecl> {
        let table = self.services.get(service)?;
        let endpoint = table.endpoints.get(endpoint)?;
        table
            .actions
            .get(endpoint.process.as_ref()?.as_str())
            .copied()
    }

    /// The roles of an identity that exist.
    pub fn roles_of<'s>(
        &'s self,
        identity: &'s IdentityDecl,
    ) -> impl Iterator<Item = &'p RoleDecl> + 's {
        identity
            .roles
            .iter()
            .filter_map(|r| self.roles.get(r.as_str()).copied())
    }

    pub fn can_run(&self, identity: &IdentityDecl, service: &str, endpoint: &str) -> bool {
        self.roles_of(identity)
            .any(|r| grants_run(r, service, endpoint))
    }

    pub fn can_update_secret(&self, identity: &IdentityDecl, secret: &str) -> bool {
        self.roles_of(identity)
            .any(|r| grants_update_secret(r, secret))
    }

    pub fn can_read_secret(&self, identity: &IdentityDecl, secret: &str) -> bool {
        self.roles_of(identity)
            .any(|r| grants_read_secret(r, secret))
    }
}

/// Whether a role grants `run` on `service.endpoint`.
pub fn grants_run(role: &RoleDecl, service: &str, endpoint: &str) -> bool {
    role.grants.iter().any(|g| match &g.kind {
        GrantKind::Run(pattern) => {
            pattern.service.text == service
                && pattern.endpoint.as_ref().is_none_or(|e| e.text == endpoint)
        }
        _ => false,
    })
}

pub fn grants_update_secret(role: &RoleDecl, secret: &str) -> bool {
    role.grants
        .iter()
        .any(|g| matches!(&g.kind, GrantKind::UpdateSecret(s) if s.text == secret))
}

pub fn grants_read_secret(role: &RoleDecl, secret: &str) -> bool {
    role.grants
        .iter()
        .any(|g| matches!(&g.kind, GrantKind::ReadSecret(s) if s.text == secret))
}

/// Whether a role grants `read_status` on an `oauth_client`'s connections.
pub fn grants_read_status(role: &RoleDecl, client: &str) -> bool {
    role.grants
        .iter()
        .any(|g| matches!(&g.kind, GrantKind::ReadStatus(c) if c.text == client))
}

/// Whether a role grants `connect` on an `oauth_client`: creating consent
/// links for its accounts, changing their tags, deleting them.
pub fn grants_connect(role: &RoleDecl, client: &str) -> bool {
    role.grants
        .iter()
        .any(|g| matches!(&g.kind, GrantKind::Connect(c) if c.text == client))
}

fn insert<'p, T>(
    table: &mut HashMap<&'p str, &'p T>,
    name: &'p Name,
    value: &'p T,
    what: &str,
    diagnostics: &mut Vec<Diagnostic>,
    name_of: impl Fn(&T) -> &Name,
) -> bool {
    if let Some(first) = table.get(name.as_str()) {
        diagnostics.push(duplicate(what, name, name_of(first)));
        return false;
    }
    table.insert(name.as_str(), value);
    true
}

fn duplicate(what: &str, again: &Name, first: &Name) -> Diagnostic {
    Diagnostic::new(
        Code::DuplicateName,
        format!("the {what} `{}` is declared twice", again.text),
    )
    .label(again.span, "declared again here")
    .label(first.span, "first declared here")
    .help(format!(
        "rename one of them, or remove the second `{}`",
        again.text
    ))
}

/// Every declaration of the program, for the model.
fn record_declarations(program: &Program, recorder: &mut Recorder) {
    for secret in &program.secrets {
        let symbol = || Symbol::Secret(secret.name.text.clone());
        recorder.declare(symbol, &secret.name, secret.span, None);
    }
    for role in &program.roles {
        let symbol = || Symbol::Role(role.name.text.clone());
        recorder.declare(symbol, &role.name, role.span, None);
    }
    for identity in &program.identities {
        let symbol = || Symbol::Identity(identity.name.text.clone());
        recorder.declare(symbol, &identity.name, identity.span, None);
    }
    for client in &program.oauth_clients {
        let symbol = || Symbol::Client(client.name.text.clone());
        recorder.declare(symbol, &client.name, client.span, None);
    }
    for schedule in &program.schedules {
        let symbol = || Symbol::Schedule(schedule.name.text.clone());
        recorder.declare(symbol, &schedule.name, schedule.span, None);
    }
    for service in &program.services {
        let name = service.name.text.as_str();
        let symbol = || Symbol::Service(name.to_string());
        recorder.declare(symbol, &service.name, service.span, None);
        for var in &service.vars {
            let symbol = || Symbol::Variable {
                service: name.to_string(),
                name: var.name.text.clone(),
            };
            recorder.declare(symbol, &var.name, var.span, Some(name));
        }
        for action in &service.actions {
            let symbol = || Symbol::Action {
                service: name.to_string(),
                name: action.name.text.clone(),
            };
            recorder.declare(symbol, &action.name, action.span, Some(name));
        }
        for endpoint in &service.endpoints {
            let symbol = || Symbol::Endpoint {
                service: name.to_string(),
                name: endpoint.name.text.clone(),
            };
            recorder.declare(symbol, &endpoint.name, endpoint.span, Some(name));
            let container = format!("{name}.{}", endpoint.name.text);
            for param in endpoint.params.iter().flatten() {
                let symbol = || Symbol::Param {
                    service: name.to_string(),
                    endpoint: endpoint.name.text.clone(),
                    name: param.name.text.clone(),
                };
                recorder.declare(symbol, &param.name, param.span, Some(&container));
            }
        }
    }
}
