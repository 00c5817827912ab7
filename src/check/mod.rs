//! Check: everything that can be known about a program before it runs.
//!
//! The checker never touches the network or the disk. It reports every
//! problem it finds in one pass, and hands the interpreter what it learned
//! (which variables carry secrets).

pub mod accounts;
pub mod call_graph;
pub mod clients;
pub mod fixes;
mod flow;
pub mod functions;
pub mod keep_alive;
pub mod model;
pub mod notify;
mod permissions;
mod providers;
mod refresh;
pub mod rotation;
pub mod sensitivity;
mod services;
pub mod symbols;
mod usage;
pub mod values;

use std::collections::{BTreeMap, BTreeSet};

use crate::diagnostic::{self, Code, Diagnostic};
use crate::source::{Span, Texts};
use crate::syntax::ast::*;

pub use crate::suggest::did_you_mean;
pub use symbols::Symbols;

/// What the checker learned about a program.
#[derive(Debug, Default)]
pub struct Analysis {
    /// Sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
    /// For each service, the variables that may hold a secret value.
    pub sensitive: BTreeMap<String, BTreeSet<String>>,
    /// For each service, the secrets each variable may be made from.
    pub derived: sensitivity::Derived,
    /// Every `secret.NAME` read, with where it is read.
    pub secret_reads: Vec<(String, Span)>,
    /// Requests that present a secret their run replaces, by the span of
    /// the `web_request`: they must reach the server at most once.
    pub rotating: rotation::Rotating,
    /// What running each endpoint can read, update and run, by
    /// `SERVICE.ENDPOINT` (every endpoint the program declares).
    pub effects: BTreeMap<String, model::Effects>,
    /// What each action's own statements do, by `SERVICE.ACTION`.
    pub actions: BTreeMap<String, model::ActionEffects>,
    /// Where each name is declared and used, when the check was asked to
    /// record them ([`check_with_names`]).
    pub names: Option<model::Names>,
    /// The per-account endpoints, by `SERVICE.ENDPOINT`, each with the
    /// `per_account` client whose connections it runs for.
    pub per_account: BTreeMap<String, String>,
}

impl Analysis {
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }

    pub fn is_sensitive(&self, service: &str, var: &str) -> bool {
        self.sensitive
            .get(service)
            .is_some_and(|vars| vars.contains(var))
    }
}

/// Checks a parsed program; `texts` are its files' texts, which the fixes
/// that keep a file's layout read.
pub fn check(program: &Program, texts: &dyn Texts) -> Analysis {
    check_program(program, texts, false)
}

/// Checks a parsed program, and records where each name is declared and
/// used ([`Analysis::names`]), for the tools that navigate it.
pub fn check_with_names(program: &Program, texts: &dyn Texts) -> Analysis {
    check_program(program, texts, true)
}

/// From how many services on, the data-flow analyses run on a thread of
/// their own while the checker's passes run on this one: below it, a
/// thread costs more than it saves.
const PARALLEL_FROM_SERVICES: usize = 64;

fn check_program(program: &Program, texts: &dyn Texts, record_names: bool) -> Analysis {
    check_program_split(program, texts, record_names, PARALLEL_FROM_SERVICES)
}

/// [`check_program`], on two threads when the program has at least
/// `parallel_from` services.
fn check_program_split(
    program: &Program,
    texts: &dyn Texts,
    record_names: bool,
    parallel_from: usize,
) -> Analysis {
    let mut diagnostics = Vec::new();
    let mut recorder = model::Recorder::new(record_names);
    let layout = fixes::Layout::new(texts);
    let symbols = Symbols::collect(program, &mut diagnostics, &mut recorder);
    let checker = Checker {
        symbols: &symbols,
        diagnostics,
        usage: usage::Usage::default(),
        secret_reads: Vec::new(),
        names: recorder,
        layout,
    };
    // The two halves read the symbols and nothing the other writes; their
    // diagnostics are joined in the order one thread would push them.
    let (checked, flows) = if symbols.service_order.len() >= parallel_from {
        std::thread::scope(|scope| {
            let flows = std::thread::Builder::new()
                .spawn_scoped(scope, || DataFlows::analyse(&symbols, layout));
            let checked = checker.check_all(program);
            let flows = match flows {
                Ok(flows) => flows
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                // No thread to be had: this one does both.
                Err(_) => DataFlows::analyse(&symbols, layout),
            };
            (checked, flows)
        })
    } else {
        (
            checker.check_all(program),
            DataFlows::analyse(&symbols, layout),
        )
    };
    let Checked {
        mut diagnostics,
        usage,
        secret_reads,
        names,
        effects,
        actions,
        per_account,
    } = checked;
    diagnostics.extend(flows.diagnostics);
    usage.report(&symbols, layout, &mut diagnostics);
    diagnostic::sort(&mut diagnostics);
    Analysis {
        diagnostics,
        sensitive: flows.sensitive,
        derived: flows.derived,
        secret_reads,
        rotating: flows.rotating,
        effects,
        actions,
        names: names.finish(),
        per_account,
    }
}

/// What the checker's passes found: names, grants, permissions, accounts.
struct Checked<'p> {
    diagnostics: Vec<Diagnostic>,
    usage: usage::Usage<'p>,
    secret_reads: Vec<(String, Span)>,
    names: model::Recorder,
    effects: BTreeMap<String, model::Effects>,
    actions: BTreeMap<String, model::ActionEffects>,
    per_account: BTreeMap<String, String>,
}

/// What the data-flow analyses found: the order of each action's
/// statements, where secret values flow, which tokens rotate.
struct DataFlows {
    diagnostics: Vec<Diagnostic>,
    sensitive: BTreeMap<String, BTreeSet<String>>,
    derived: sensitivity::Derived,
    rotating: rotation::Rotating,
}

impl DataFlows {
    fn analyse(symbols: &Symbols<'_>, layout: fixes::Layout<'_>) -> DataFlows {
        let mut diagnostics = Vec::new();
        for service in &symbols.service_order {
            for action in &service.actions {
                flow::check_action(action, layout, &mut diagnostics);
            }
        }
        let sensitive = sensitivity::analyse(symbols);
        sensitivity::check_plain_http(symbols, &sensitive, &mut diagnostics);
        let derived = sensitivity::derive(symbols, &sensitive);
        sensitivity::check_responses(symbols, layout, &sensitive, &derived, &mut diagnostics);
        sensitivity::check_cross_origin(symbols, &sensitive, &mut diagnostics);
        let rotating = rotation::analyse(symbols);
        rotation::check_retries(symbols, &rotating, &mut diagnostics);
        providers::check_written_out(symbols, &rotating, &mut diagnostics);
        DataFlows {
            diagnostics,
            sensitive,
            derived,
            rotating,
        }
    }
}

pub(crate) struct Checker<'a, 'p> {
    pub symbols: &'a Symbols<'p>,
    pub diagnostics: Vec<Diagnostic>,
    pub usage: usage::Usage<'p>,
    pub secret_reads: Vec<(String, Span)>,
    /// Where each name is used, as it is resolved.
    pub names: model::Recorder,
    /// The files' texts, for fixes.
    pub layout: fixes::Layout<'a>,
}

impl<'a, 'p> Checker<'a, 'p> {
    /// Every pass of the checker, in order.
    fn check_all(mut self, program: &'p Program) -> Checked<'p> {
        let symbols = self.symbols;
        self.check_roles();
        self.check_identities();
        for service in &symbols.service_order {
            self.check_service(service);
        }
        for schedule in &symbols.schedule_order {
            self.check_schedule(schedule);
        }
        for client in &symbols.client_order {
            self.check_client(client);
            self.check_provider(client);
        }
        self.check_refreshers();
        self.check_notifies(&program.notifies);
        let (effects, actions) = permissions::check(symbols, self.layout, &mut self.diagnostics);
        let accounts = accounts::Accounts::new(symbols, &effects);
        self.check_accounts(&accounts);
        let per_account = accounts.per_account_endpoints();
        keep_alive::check(program, &effects, &mut self.diagnostics);
        Checked {
            diagnostics: self.diagnostics,
            usage: self.usage,
            secret_reads: self.secret_reads,
            names: self.names,
            effects,
            actions,
            per_account,
        }
    }

    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// The fix that adds `environment_specific` to a secret's declaration.
    pub fn make_environment_specific(&self, secret: &SecretDecl) -> Option<diagnostic::Fix> {
        // Where its value is kept changes: a person decides.
        self.layout.add_word(
            secret.span,
            "environment_specific",
            format!("Make `{}` environment-specific", secret.name.text),
            false,
        )
    }

    /// The fix that declares an undeclared secret, in the file that uses it.
    pub fn declare_secret(&self, name: &Name) -> Option<diagnostic::Fix> {
        self.layout
            .declare_secret(&self.symbols.secret_order, name.span, name.as_str())
    }

    /// A name used where it means `symbol` (declared or not), for the model.
    pub fn used(&mut self, symbol: impl FnOnce() -> model::Symbol, span: Span) {
        self.names.use_(symbol, span);
    }

    /// Reports an unknown secret unless it is declared; returns whether it is.
    pub fn resolve_secret(&mut self, name: &Name) -> bool {
        self.used(|| model::Symbol::Secret(name.text.clone()), name.span);
        if self.symbols.secrets.contains_key(name.as_str()) {
            return true;
        }
        let candidates = self.symbols.secret_order.iter().map(|s| s.name.as_str());
        self.push(
            Diagnostic::new(
                Code::UnknownSecret,
                format!("unknown secret `{}`", name.text),
            )
            .label(name.span, "no secret has this name")
            .suggest(
                name.as_str(),
                name.span,
                candidates,
                format!(
                    "declare it first: `secret {} {{ environment_specific }}`",
                    name.text
                ),
            )
            .fix(self.declare_secret(name)),
        );
        false
    }

    /// A secret that signs (a JWT key, a webhook secret): read, declared,
    /// and `locked` — nothing but a person may change what others trust.
    /// When it is not locked, `code` says so (`noun` is what it is,
    /// `signs` labels the use, `why` starts the help) with the fix that
    /// locks it.
    pub fn locked_signer(
        &mut self,
        name: &'p Name,
        used_at: Span,
        code: Code,
        noun: &str,
        signs: &str,
        why: &str,
    ) {
        self.secret_reads.push((name.text.clone(), used_at));
        if !self.resolve_secret(name) {
            return;
        }
        self.usage.secret_used(name.as_str());
        let secret = self.symbols.secrets[name.as_str()];
        if secret.locked.is_some() {
            return;
        }
        self.push(
            Diagnostic::new(code, format!("{noun} `{}` is not locked", name.text))
                .label(used_at, signs)
                .label(secret.name.span, "declared without `locked`")
                .help(format!("{why}: add `locked` to `secret {}`", name.text))
                .fix(self.layout.add_word(
                    secret.span,
                    "locked",
                    format!("Lock `{}`", name.text),
                    // Nothing may update a signing secret; were something
                    // to, the check says so once it is locked.
                    true,
                )),
        );
    }

    /// Resolves `service.endpoint`, reporting what is unknown.
    pub fn resolve_endpoint(&mut self, service: &Name, endpoint: Option<&Name>) -> bool {
        self.used(
            || model::Symbol::Service(service.text.clone()),
            service.span,
        );
        if let Some(endpoint) = endpoint {
            let symbol = || model::Symbol::Endpoint {
                service: service.text.clone(),
                name: endpoint.text.clone(),
            };
            self.used(symbol, endpoint.span);
        }
        let Some(table) = self.symbols.services.get(service.as_str()) else {
            let candidates = self.symbols.service_order.iter().map(|s| s.name.as_str());
            self.push(
                Diagnostic::new(
                    Code::UnknownService,
                    format!("unknown service `{}`", service.text),
                )
                .label(service.span, "no service has this name")
                .suggest(
                    service.as_str(),
                    service.span,
                    candidates,
                    "declare the service with `service NAME { ... }`",
                ),
            );
            return false;
        };
        let Some(endpoint) = endpoint else {
            return true;
        };
        if table.endpoints.contains_key(endpoint.as_str()) {
            return true;
        }
        let candidates = table.decl.endpoints.iter().map(|e| e.name.as_str());
        let fallback = if table.decl.endpoints.is_empty() {
            format!(
                "`{}` has no endpoints yet; add `endpoint {} {{ ... }}`",
                service.text, endpoint.text
            )
        } else {
            let names: Vec<String> = table
                .decl
                .endpoints
                .iter()
                .map(|e| format!("`{}`", e.name.text))
                .collect();
            format!(
                "the endpoints of `{}` are {}",
                service.text,
                names.join(", ")
            )
        };
        self.push(
            Diagnostic::new(
                Code::UnknownEndpoint,
                format!("unknown endpoint `{}.{}`", service.text, endpoint.text),
            )
            .label(
                endpoint.span,
                format!("`{}` has no endpoint with this name", service.text),
            )
            .suggest(endpoint.as_str(), endpoint.span, candidates, fallback),
        );
        false
    }

    /// Resolves a service account by name, reporting unknown names and users.
    pub fn resolve_service_account(&mut self, name: &Name) -> Option<&'p IdentityDecl> {
        self.used(|| model::Symbol::Identity(name.text.clone()), name.span);
        match self.symbols.identities.get(name.as_str()) {
            Some(identity) if identity.kind == IdentityKind::ServiceAccount => Some(identity),
            Some(identity) => {
                self.push(
                    Diagnostic::new(
                        Code::NotAServiceAccount,
                        format!("`{}` is a user, not a service account", name.text),
                    )
                    .label(name.span, "a service account is needed here")
                    .label(identity.name.span, "declared as a user here")
                    .help(format!(
                        "declare a service account (`service_account NAME {{ roles ... }}`) and use it instead of `{}`",
                        name.text
                    )),
                );
                None
            }
            None => {
                let candidates = self
                    .symbols
                    .identity_order
                    .iter()
                    .filter(|i| i.kind == IdentityKind::ServiceAccount)
                    .map(|i| i.name.as_str());
                self.push(
                    Diagnostic::new(
                        Code::UnknownIdentity,
                        format!("unknown service account `{}`", name.text),
                    )
                    .label(name.span, "no service account has this name")
                    .suggest(
                        name.as_str(),
                        name.span,
                        candidates,
                        format!(
                            "declare it: `service_account {} {{ roles ... }}`",
                            name.text
                        ),
                    ),
                );
                None
            }
        }
    }

    fn check_roles(&mut self) {
        for role in self.symbols.role_order.clone() {
            for grant in &role.grants {
                match &grant.kind {
                    GrantKind::Run(pattern) => {
                        self.resolve_endpoint(&pattern.service, pattern.endpoint.as_ref());
                    }
                    GrantKind::UpdateSecret(secret) => {
                        self.resolve_secret(secret);
                    }
                    GrantKind::ReadSecret(secret) => {
                        // Other apps read it through `svc serve`: that is a use.
                        if self.resolve_secret(secret) {
                            self.usage.secret_used(secret.as_str());
                        }
                    }
                    GrantKind::ReadStatus(client) | GrantKind::Connect(client) => {
                        self.resolve_client(client);
                    }
                }
            }
        }
    }

    fn check_identities(&mut self) {
        for identity in self.symbols.identity_order.clone() {
            for role in &identity.roles {
                self.used(|| model::Symbol::Role(role.text.clone()), role.span);
                if self.symbols.roles.contains_key(role.as_str()) {
                    self.usage.role_used(role.as_str());
                    continue;
                }
                let candidates = self.symbols.role_order.iter().map(|r| r.name.as_str());
                self.push(
                    Diagnostic::new(Code::UnknownRole, format!("unknown role `{}`", role.text))
                        .label(role.span, "no role has this name")
                        .suggest(
                            role.as_str(),
                            role.span,
                            candidates,
                            format!("declare it: `role {} {{ grant ... }}`", role.text),
                        ),
                );
            }
        }
    }

    fn check_schedule(&mut self, schedule: &'p ScheduleDecl) {
        let mut missing = Vec::new();
        match &schedule.endpoint {
            Some(endpoint) => {
                self.resolve_endpoint(&endpoint.service, Some(&endpoint.endpoint));
                // Fixed values for the endpoint's parameters: literals.
                let mut given = Vec::new();
                for field in &schedule.params {
                    let inferred = match crate::check::values::constant(&field.value) {
                        Some(_) => match &field.value.kind {
                            ExprKind::String { .. } => services::literal(Type::String),
                            ExprKind::Number { .. } => services::literal(Type::Number),
                            ExprKind::Bool { .. } => services::literal(Type::Bool),
                            ExprKind::Duration { .. } => services::literal(Type::Duration),
                            _ => services::unknown(),
                        },
                        None => {
                            self.push(
                                Diagnostic::new(
                                    Code::InvalidParam,
                                    format!(
                                        "`{}` of a schedule is not a literal",
                                        field.name.value
                                    ),
                                )
                                .label(field.value.span, "computed")
                                .help(
                                    "a schedule gives fixed values: `1`, `\"text\"`, `true`, `5m`",
                                ),
                            );
                            services::unknown()
                        }
                    };
                    given.push((field, inferred));
                }
                self.check_given_params(endpoint, &given, endpoint.span);
                // A schedule's hooks run in the service of its endpoint.
                if let Some(table) = self.symbols.services.get(endpoint.service.as_str()) {
                    for kind in [HookKind::OnFailure, HookKind::OnRecovery] {
                        if let Some(hook) = schedule.hook(kind) {
                            self.check_hook(table, kind, hook, &endpoint.endpoint);
                        }
                    }
                }
            }
            None => missing.push("`endpoint SERVICE.ENDPOINT`"),
        }
        if let Some(client) = &schedule.for_each_connection {
            self.resolve_client(client);
        }
        match &schedule.service_account {
            Some(account) => {
                self.resolve_service_account(account);
            }
            None => missing.push("`service_account NAME`"),
        }
        if schedule.every.is_none() && schedule.cron.is_none() {
            missing.push("`every DURATION` or `cron \"...\"`");
        }
        if !missing.is_empty() {
            self.push(
                Diagnostic::new(
                    Code::MissingProperty,
                    format!(
                        "schedule `{}` is missing {}",
                        schedule.name.text,
                        missing.join(" and ")
                    ),
                )
                .label(schedule.name.span, "incomplete schedule")
                .help(format!("add {}", missing.join(" and "))),
            );
        }
        if let (Some(every), Some(cron)) = (&schedule.every, &schedule.cron) {
            self.push(
                Diagnostic::new(
                    Code::ConflictingProperty,
                    "a schedule has `every` or `cron`, not both",
                )
                .label(cron.span, "`cron` given here")
                .label(every.span, "and `every` here")
                .help("remove one of them"),
            );
        }
        if let Some(every) = &schedule.every {
            self.positive_duration(every);
        }
        if let Some(cron) = &schedule.cron
            && let Err(problem) = values::cron(&cron.value)
        {
            self.push(
                Diagnostic::new(Code::InvalidCron, format!("invalid cron expression `{}`", cron.value))
                    .label(cron.span, problem)
                    .help("write five fields: minute hour day-of-month month day-of-week, such as `\"0 * * * *\"`"),
            );
        }
        if let Some(zone) = &schedule.time_zone {
            if let Err(problem) = values::time_zone(&zone.value) {
                self.push(
                    Diagnostic::new(
                        Code::InvalidTimeZone,
                        format!("unknown time zone `{}`", zone.value),
                    )
                    .label(zone.span, problem)
                    .suggest(
                        &zone.value,
                        zone.value_span(),
                        values::time_zone_names(),
                        "use an IANA name such as `\"Europe/Oslo\"` or `\"UTC\"`",
                    ),
                );
            }
            if schedule.cron.is_none() {
                self.push(
                    Diagnostic::new(
                        Code::ConflictingProperty,
                        "`time_zone` only applies to `cron` schedules",
                    )
                    .label(zone.span, "has no effect without `cron`")
                    .help("remove `time_zone`, or use `cron`"),
                );
            }
        }
        if let Some(before) = &schedule.before_expiry {
            if self.resolve_secret(&before.secret) {
                self.usage.secret_used(before.secret.as_str());
            }
            if schedule.every.is_none() {
                self.push(
                    Diagnostic::new(
                        Code::MissingProperty,
                        "`before_expiry` needs `every` as its fallback",
                    )
                    .label(before.span, "used when the expiry is known")
                    .help("add `every DURATION`: it fires while the secret has no known expiry"),
                );
            }
        }
    }

    /// Reports a zero duration where only a positive one makes sense.
    pub fn positive_duration(&mut self, duration: &DurationLit) {
        if duration.value.is_some_and(|d| d.is_zero()) {
            self.push(
                Diagnostic::new(
                    Code::InvalidDuration,
                    format!("`{}` is not a valid duration here", duration.text),
                )
                .label(duration.span, "must be longer than zero")
                .help(crate::syntax::duration::HELP),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{SourceFile, SourceMap};

    /// `n` services, each with a finding of the checker's passes (a runner
    /// without the grant to update what its endpoint updates) and one of
    /// the data flows (an update that runs whether or not the request
    /// answered).
    fn services_with_findings(n: usize) -> String {
        (0..n)
            .map(|i| {
                format!(
                    "secret S{i} {{ environment_specific }}\n\
                     role r{i} {{ grant run s{i}.refresh }}\n\
                     service_account b{i} {{ roles r{i} }}\n\
                     service s{i} {{\n  var token: string\n  action a {{\n    web_request {{\n\
                     \x20     method POST\n      url \"https://127.0.0.1/t\"\n\
                     \x20     result_mapping {{ token = $.access_token }}\n    }}\n\
                     \x20   update_secret S{i} = token\n  }}\n\
                     \x20 endpoint refresh {{ methods POST process a }}\n}}\n"
                )
            })
            .collect()
    }

    #[test]
    fn two_threads_find_what_one_finds_in_the_same_order() {
        let text = services_with_findings(80);
        let mut sources = SourceMap::new();
        sources.add(SourceFile::new("a.svc", "a.svc", text.as_str()));
        let (program, parse) = crate::syntax::parse_program(&sources);
        assert!(parse.is_empty(), "{parse:?}");
        let one = check_program_split(&program, &sources, true, usize::MAX);
        let two = check_program_split(&program, &sources, true, 0);
        let codes: BTreeSet<_> = one.diagnostics.iter().map(|d| d.code).collect();
        assert!(codes.contains(&Code::UnguardedSecretUpdate), "{codes:?}");
        assert!(codes.len() > 1, "{codes:?}");
        assert_eq!(one.diagnostics, two.diagnostics);
        assert_eq!(one.sensitive, two.sensitive);
        assert_eq!(one.derived, two.derived);
        assert_eq!(one.secret_reads, two.secret_reads);
        assert_eq!(one.rotating, two.rotating);
        assert_eq!(one.effects, two.effects);
        assert_eq!(one.actions, two.actions);
        assert_eq!(one.per_account, two.per_account);
        assert!(!one.effects.is_empty() && !one.sensitive.is_empty());
    }
}
