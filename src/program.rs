//! Loading a program: files, then syntax, then check.

use rustc_hash::FxHashMap as HashMap;
use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::check::symbols::{
    grants_read_secret, grants_read_status, grants_run, grants_update_secret,
};
use crate::check::{self, Analysis};
use crate::diagnostic::{self, Code, Diagnostic};
use crate::source::{self, LoadError, SourceMap};
use crate::syntax::ast::*;
use crate::syntax::{self};

/// A program with everything the checker found in it.
#[derive(Debug)]
pub struct CheckedProgram {
    pub sources: SourceMap,
    pub program: Program,
    pub analysis: Analysis,
}

impl CheckedProgram {
    pub fn has_errors(&self) -> bool {
        self.analysis.errors() > 0
    }
}

/// Loads, parses and checks the files and directories given.
pub fn load(paths: &[PathBuf]) -> Result<CheckedProgram, LoadError> {
    let sources = source::load(paths)?;
    Ok(check_sources(sources))
}

/// Parses and checks sources already in memory.
pub fn check_sources(sources: SourceMap) -> CheckedProgram {
    let (mut program, mut parse_diagnostics) = syntax::parse_program(&sources);
    crate::providers::fill::fill(&mut program);
    // After a syntax error the program is missing whatever the broken file
    // declared; checking it would only report follow-on noise.
    let syntax_failed = parse_diagnostics.iter().any(|d| d.code == Code::Syntax);
    let mut analysis = if syntax_failed {
        Analysis::default()
    } else {
        check::check(&program, &sources)
    };
    analysis.diagnostics.append(&mut parse_diagnostics);
    analysis
        .diagnostics
        .extend(sources.skipped.iter().map(skipped_warning));
    diagnostic::sort(&mut analysis.diagnostics);
    CheckedProgram {
        sources,
        program,
        analysis,
    }
}

/// The warning for a `.svc` entry of a directory that was not read.
pub fn skipped_warning(skipped: &source::Skipped) -> Diagnostic {
    Diagnostic::new(
        Code::SkippedFile,
        format!(
            "skipped `{}`: it is {}, not a regular file",
            skipped.path.display(),
            skipped.kind
        ),
    )
    .help("only regular files are read from a directory; name it on the command line to read it anyway")
}

/// A checked program without errors, indexed by name for running it.
#[derive(Debug)]
pub struct Script {
    pub checked: CheckedProgram,
    secrets: HashMap<String, usize>,
    roles: HashMap<String, usize>,
    identities: HashMap<String, usize>,
    services: HashMap<String, ServiceIndex>,
    schedules: HashMap<String, usize>,
    clients: HashMap<String, usize>,
}

#[derive(Debug)]
struct ServiceIndex {
    position: usize,
    vars: HashMap<String, usize>,
    actions: HashMap<String, usize>,
    endpoints: HashMap<String, usize>,
}

fn index<T>(items: &[T], name: impl Fn(&T) -> &str) -> HashMap<String, usize> {
    let mut map = HashMap::with_capacity_and_hasher(items.len(), Default::default());
    for (i, item) in items.iter().enumerate() {
        // The first declaration wins, as in the checker.
        map.entry(name(item).to_string()).or_insert(i);
    }
    map
}

impl Script {
    /// Indexes a program. A program with errors cannot run: it is returned.
    pub fn new(checked: CheckedProgram) -> Result<Script, Box<CheckedProgram>> {
        if checked.has_errors() {
            return Err(Box::new(checked));
        }
        let program = &checked.program;
        let mut services =
            HashMap::with_capacity_and_hasher(program.services.len(), Default::default());
        for (position, service) in program.services.iter().enumerate() {
            services
                .entry(service.name.text.clone())
                .or_insert_with(|| ServiceIndex {
                    position,
                    vars: index(&service.vars, |v| v.name.as_str()),
                    actions: index(&service.actions, |a| a.name.as_str()),
                    endpoints: index(&service.endpoints, |e| e.name.as_str()),
                });
        }
        Ok(Script {
            secrets: index(&program.secrets, |s| s.name.as_str()),
            roles: index(&program.roles, |r| r.name.as_str()),
            identities: index(&program.identities, |i| i.name.as_str()),
            schedules: index(&program.schedules, |s| s.name.as_str()),
            clients: index(&program.oauth_clients, |c| c.name.as_str()),
            services,
            checked,
        })
    }

    pub fn program(&self) -> &Program {
        &self.checked.program
    }

    pub fn secret(&self, name: &str) -> Option<&SecretDecl> {
        self.secrets.get(name).map(|&i| &self.program().secrets[i])
    }

    pub fn identity(&self, name: &str) -> Option<&IdentityDecl> {
        self.identities
            .get(name)
            .map(|&i| &self.program().identities[i])
    }

    pub fn schedule(&self, name: &str) -> Option<&ScheduleDecl> {
        self.schedules
            .get(name)
            .map(|&i| &self.program().schedules[i])
    }

    pub fn client(&self, name: &str) -> Option<&OAuthClientDecl> {
        self.clients
            .get(name)
            .map(|&i| &self.program().oauth_clients[i])
    }

    pub fn service(&self, name: &str) -> Option<&ServiceDecl> {
        self.services
            .get(name)
            .map(|s| &self.program().services[s.position])
    }

    pub fn endpoint(&self, service: &str, endpoint: &str) -> Option<&EndpointDecl> {
        let index = self.services.get(service)?;
        let position = *index.endpoints.get(endpoint)?;
        Some(&self.program().services[index.position].endpoints[position])
    }

    pub fn action(&self, service: &str, action: &str) -> Option<&ActionDecl> {
        let index = self.services.get(service)?;
        let position = *index.actions.get(action)?;
        Some(&self.program().services[index.position].actions[position])
    }

    /// The action an endpoint processes.
    pub fn endpoint_action(&self, service: &str, endpoint: &str) -> Option<&ActionDecl> {
        let process = self.endpoint(service, endpoint)?.process.as_ref()?;
        self.action(service, process.as_str())
    }

    pub fn var_type(&self, service: &str, var: &str) -> Option<Type> {
        let index = self.services.get(service)?;
        let position = *index.vars.get(var)?;
        Type::from_name(
            &self.program().services[index.position].vars[position]
                .type_name
                .text,
        )
    }

    fn roles_of<'s>(
        &'s self,
        identity: &'s IdentityDecl,
    ) -> impl Iterator<Item = &'s RoleDecl> + 's {
        identity.roles.iter().filter_map(|r| {
            self.roles
                .get(r.as_str())
                .map(|&i| &self.program().roles[i])
        })
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

    /// Whether `identity` may read the state of `client`'s connections.
    pub fn can_read_status(&self, identity: &IdentityDecl, client: &str) -> bool {
        self.roles_of(identity)
            .any(|r| grants_read_status(r, client))
    }

    /// Whether the identity may connect accounts of a `per_account`
    /// client (`grant connect CLIENT`): consent links, tags, deletion.
    pub fn can_connect(&self, identity: &IdentityDecl, client: &str) -> bool {
        self.roles_of(identity)
            .any(|r| crate::check::symbols::grants_connect(r, client))
    }

    /// The users and service accounts allowed to run an endpoint.
    pub fn runners(&self, service: &str, endpoint: &str) -> Vec<String> {
        self.program()
            .identities
            .iter()
            .filter(|i| self.can_run(i, service, endpoint))
            .map(|i| i.name.text.clone())
            .collect()
    }

    /// Every endpoint as `service.endpoint`, in the order declared.
    pub fn endpoint_keys(&self) -> Vec<String> {
        self.program()
            .services
            .iter()
            .flat_map(|s| {
                s.endpoints
                    .iter()
                    .map(move |e| format!("{}.{}", s.name.text, e.name.text))
            })
            .collect()
    }

    /// Whether running the endpoint can update a secret, itself or through
    /// the endpoints it runs.
    pub fn updates_secrets(&self, service: &str, endpoint: &str) -> bool {
        !self.secrets_updated(service, endpoint).is_empty()
    }

    /// The `per_account` client whose connections `SERVICE.ENDPOINT` runs
    /// for, when it is a per-account endpoint (it reads or updates a
    /// per-account secret in its own connection).
    pub fn per_account_client(&self, service: &str, endpoint: &str) -> Option<&str> {
        self.checked
            .analysis
            .per_account
            .get(&format!("{service}.{endpoint}"))
            .map(String::as_str)
    }

    /// The per-account endpoint a run of this one reaches — itself, or one
    /// it runs, however deep — and the client whose connections it runs
    /// for; `None` when the run needs no connected account.
    pub fn per_account_reached(&self, service: &str, endpoint: &str) -> Option<(String, String)> {
        let analysis = &self.checked.analysis;
        let mut seen = BTreeSet::new();
        let mut stack = vec![format!("{service}.{endpoint}")];
        while let Some(key) = stack.pop() {
            if let Some(client) = analysis.per_account.get(&key) {
                return Some((key, client.clone()));
            }
            if let Some(effects) = analysis.effects.get(&key) {
                stack.extend(
                    effects
                        .runs
                        .iter()
                        .filter(|r| seen.insert((*r).clone()))
                        .cloned(),
                );
            }
        }
        None
    }

    /// The secrets that running the endpoint can update, itself or through
    /// the endpoints it runs: the checker's model says.
    pub fn secrets_updated(&self, service: &str, endpoint: &str) -> BTreeSet<String> {
        self.checked
            .analysis
            .effects
            .get(&format!("{service}.{endpoint}"))
            .map(|effects| effects.writes.clone())
            .unwrap_or_default()
    }

    /// The command a person runs to authorize a client again: the file
    /// that declares it, and the first identity that may store every token
    /// it keeps.
    pub fn reconsent_command(&self, client: &str, env: &str, identity: Option<&str>) -> String {
        self.reconsent_command_for(client, None, env, identity)
    }

    /// As [`Script::reconsent_command`], for one connected account of a
    /// `per_account` client.
    pub fn reconsent_command_for(
        &self,
        client: &str,
        connection: Option<&str>,
        env: &str,
        identity: Option<&str>,
    ) -> String {
        let declared = self.client(client);
        let file = declared
            .map(|c| self.checked.sources.get(c.span.file).name.clone())
            .unwrap_or_else(|| "FILE".into());
        let identity = identity.map(str::to_owned).or_else(|| {
            let stored: Vec<&str> = declared?
                .stores
                .as_ref()?
                .entries
                .iter()
                .map(|s| s.secret.as_str())
                .collect();
            self.program()
                .identities
                .iter()
                .find(|i| stored.iter().all(|s| self.can_update_secret(i, s)))
                .map(|i| i.name.text.clone())
        });
        let connection = connection.map_or(String::new(), |id| format!(" --connection {id}"));
        format!(
            "svc authorize {file} {client}{connection} --env {env} --as {}",
            identity.as_deref().unwrap_or("IDENTITY")
        )
    }

    /// The `oauth_client`s whose `stores` name one of `secrets`: given the
    /// secrets an endpoint can update ([`Script::secrets_updated`]), the
    /// clients whose connection a run of it refreshes.
    pub fn clients_storing(&self, secrets: &BTreeSet<String>) -> Vec<&OAuthClientDecl> {
        if secrets.is_empty() {
            return Vec::new();
        }
        self.program()
            .oauth_clients
            .iter()
            .filter(|client| {
                client.stores.as_ref().is_some_and(|stores| {
                    stores
                        .entries
                        .iter()
                        .any(|store| secrets.contains(store.secret.as_str()))
                })
            })
            .collect()
    }

    /// The secrets that must have a value before the endpoint runs: each
    /// `secret.NAME` the checker found in its action, in the
    /// `oauth_client`s its requests authenticate as (`auth client(NAME)`)
    /// and in the endpoints it runs, unless a statement before the read
    /// may write it (`update_secret`, or a `run_service` whose endpoint
    /// may): `crm.sync` runs `crm.refresh`, which stores the token that
    /// its later requests read. Hooks are not counted: they run after.
    pub fn secrets_read(&self, service: &str, endpoint: &str) -> BTreeSet<String> {
        let mut stack = Vec::new();
        let mut secrets = BTreeSet::new();
        self.collect_read(
            service,
            endpoint,
            &BTreeSet::new(),
            &mut stack,
            &mut secrets,
        );
        secrets
    }

    fn collect_read(
        &self,
        service: &str,
        endpoint: &str,
        written: &BTreeSet<String>,
        stack: &mut Vec<(String, String)>,
        secrets: &mut BTreeSet<String>,
    ) {
        let key = (service.to_string(), endpoint.to_string());
        if stack.contains(&key) {
            return;
        }
        let Some(action) = self.endpoint_action(service, endpoint) else {
            return;
        };
        enum Event<'p> {
            Read(&'p str),
            Written(Vec<String>),
            Call(&'p EndpointRef),
        }
        let reads = &self.checked.analysis.secret_reads;
        let within = |outer: crate::source::Span| {
            let end = outer.start + outer.len;
            reads.iter().filter(move |(_, at)| {
                at.file == outer.file && at.start >= outer.start && at.start + at.len <= end
            })
        };
        // In source order, which is the order a first pass runs them.
        let mut events: Vec<(u32, Event)> = within(action.span)
            .map(|(name, at)| (at.start, Event::Read(name.as_str())))
            .collect();
        action.body.walk(&mut |statement| {
            let (start, end) = (
                statement.span.start,
                statement.span.start + statement.span.len,
            );
            match &statement.kind {
                StatementKind::WebRequest(request) => {
                    if let Some(Auth::Client { client, .. }) = &request.auth
                        && let Some(decl) = self.client(client.as_str())
                    {
                        events.extend(
                            within(decl.span).map(|(name, _)| (start, Event::Read(name.as_str()))),
                        );
                    }
                }
                StatementKind::UpdateSecrets { updates, .. } => events.push((
                    end,
                    Event::Written(updates.iter().map(|u| u.secret.text.clone()).collect()),
                )),
                StatementKind::RunService { endpoint, .. } => {
                    events.push((start, Event::Call(endpoint)));
                }
                _ => {}
            }
        });
        events.sort_by_key(|(at, _)| *at);
        stack.push(key);
        let mut written = written.clone();
        for (_, event) in events {
            match event {
                Event::Read(name) if !written.contains(name) => {
                    secrets.insert(name.to_string());
                }
                Event::Read(_) => {}
                Event::Written(names) => written.extend(names),
                Event::Call(call) => {
                    let (service, endpoint) = (call.service.as_str(), call.endpoint.as_str());
                    self.collect_read(service, endpoint, &written, stack, secrets);
                    written.extend(self.secrets_updated(service, endpoint));
                }
            }
        }
        stack.pop();
    }
}
