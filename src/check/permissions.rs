//! Permissions: who can run which endpoint, and whether each of them may
//! update every secret that endpoint can update. Also the `run_service`
//! call graph: grants along it, and cycles in it.

use std::collections::{BTreeMap, BTreeSet};

// Names are short and not chosen by an attacker: FxHash is faster than SipHash here.
use rustc_hash::FxHashMap as HashMap;

use super::call_graph;
use super::fixes::{Layout, WithGrant};
use super::model::{ActionEffects, Effects};
use super::symbols::Symbols;
use crate::diagnostic::{Code, Diagnostic};
use crate::source::Span;
use crate::syntax::ast::*;

type Key<'p> = (&'p str, &'p str);

fn key_text(key: Key<'_>) -> String {
    format!("{}.{}", key.0, key.1)
}

#[derive(Clone)]
struct Call<'p> {
    target: Key<'p>,
    as_account: Option<&'p Name>,
    /// `for_connection EXPR`: the callee runs for the connection it names,
    /// not the caller's.
    names_connection: bool,
    span: Span,
}

/// A secret an endpoint can update, and where in its action that happens
/// (the update itself, or the `run_service` that leads to it).
#[derive(Clone)]
struct Write<'p> {
    secret: &'p Name,
    span: Span,
}

struct Graph<'p> {
    writes: HashMap<Key<'p>, Vec<Write<'p>>>,
    /// The secrets each endpoint's own statements (its action, response
    /// and hooks, and the clients it authenticates as) read.
    reads: HashMap<Key<'p>, BTreeSet<&'p str>>,
    calls: HashMap<Key<'p>, Vec<Call<'p>>>,
    order: Vec<Key<'p>>,
    /// What each action's own statements do, by `SERVICE.ACTION`.
    actions: BTreeMap<String, ActionEffects>,
}

impl<'p> Graph<'p> {
    /// The endpoints `key` runs by the calls `keep` keeps.
    fn targets(
        &self,
        key: Key<'p>,
        keep: impl Fn(&Call<'p>) -> bool,
    ) -> impl Iterator<Item = Key<'p>> {
        self.calls
            .get(&key)
            .into_iter()
            .flatten()
            .filter(move |c| keep(c))
            .map(|c| c.target)
    }

    /// The secrets `key`'s own statements update.
    fn own_writes(&self, key: Key<'p>) -> impl Iterator<Item = &'p str> + '_ {
        self.writes
            .get(&key)
            .into_iter()
            .flatten()
            .map(|w| w.secret.as_str())
    }
}

/// Checks the grants along the call graph; returns what running each
/// endpoint can read, update and run.
pub fn check<'p>(
    symbols: &Symbols<'p>,
    layout: Layout<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> (BTreeMap<String, Effects>, BTreeMap<String, ActionEffects>) {
    let mut graph = build_graph(symbols);
    report_cycles(&graph, diagnostics);
    let runners = runners(symbols, &graph);
    report_call_grants(symbols, layout, &graph, &runners, diagnostics);
    report_update_grants(symbols, layout, &graph, &runners, diagnostics);
    report_schedules(symbols, layout, diagnostics);
    (effects(&graph), std::mem::take(&mut graph.actions))
}

/// What running each endpoint can do: its own reads and updates, and those
/// of every endpoint it runs, directly or not, as whichever identity; the
/// endpoints it runs itself (a caller walks them for what lies further).
/// Each component of the call graph is summed once, callees first.
fn effects(graph: &Graph<'_>) -> BTreeMap<String, Effects> {
    let mut reached: HashMap<Key<'_>, (BTreeSet<String>, BTreeSet<String>)> = HashMap::default();
    let all = call_graph::components(&graph.order, |key| graph.targets(key, |_| true));
    for component in &all {
        let (mut reads, mut writes) = (BTreeSet::new(), BTreeSet::new());
        for &key in component {
            writes.extend(graph.own_writes(key).map(str::to_string));
            reads.extend(
                graph
                    .reads
                    .get(&key)
                    .into_iter()
                    .flatten()
                    .map(|r| r.to_string()),
            );
            for target in graph.targets(key, |_| true) {
                if let Some((r, w)) = reached.get(&target) {
                    reads.extend(r.iter().cloned());
                    writes.extend(w.iter().cloned());
                }
            }
        }
        for &key in component {
            reached.insert(key, (reads.clone(), writes.clone()));
        }
    }
    let mut in_connection = in_connection(graph);
    let mut out = BTreeMap::new();
    for &key in &graph.order {
        let (reads, writes) = reached.remove(&key).unwrap_or_default();
        out.insert(
            key_text(key),
            Effects {
                reads,
                writes,
                runs: graph.targets(key, |_| true).map(key_text).collect(),
                in_connection: in_connection.remove(&key).unwrap_or_default(),
            },
        );
    }
    out
}

/// The secrets each endpoint reads or updates for its own connection: its
/// own, and those of what it runs without naming a connection.
fn in_connection<'p>(graph: &Graph<'p>) -> HashMap<Key<'p>, BTreeSet<String>> {
    let same = |call: &Call<'_>| !call.names_connection;
    let mut out: HashMap<Key<'p>, BTreeSet<String>> = HashMap::default();
    for component in call_graph::components(&graph.order, |key| graph.targets(key, same)) {
        let mut secrets = BTreeSet::new();
        for &key in &component {
            secrets.extend(graph.own_writes(key).map(str::to_string));
            secrets.extend(
                graph
                    .reads
                    .get(&key)
                    .into_iter()
                    .flatten()
                    .map(|r| r.to_string()),
            );
            for target in graph.targets(key, same) {
                if let Some(theirs) = out.get(&target) {
                    secrets.extend(theirs.iter().cloned());
                }
            }
        }
        for key in component {
            out.insert(key, secrets.clone());
        }
    }
    out
}

/// What one block of statements (an action's, a hook's) does itself.
#[derive(Default, Clone)]
struct Part<'p> {
    writes: Vec<Write<'p>>,
    reads: BTreeSet<&'p str>,
    calls: Vec<Call<'p>>,
    clients: BTreeSet<&'p str>,
}

impl<'p> Part<'p> {
    fn of(symbols: &Symbols<'p>, block: &'p Block) -> Part<'p> {
        let mut part = Part::default();
        block.walk(&mut |statement| {
            for expr in statement.expressions() {
                part.read(expr);
            }
            if let StatementKind::WebRequest(request) = &statement.kind
                && let Some(Auth::Client { client, .. }) = &request.auth
            {
                part.clients.insert(client.as_str());
                // Its credentials are secrets the request reads.
                if let Some(client) = symbols.clients.get(client.as_str()) {
                    for (_, expr) in client.expressions() {
                        part.read(expr);
                    }
                }
            }
            visit_writes_and_calls(symbols, statement, &mut part.writes, &mut part.calls);
        });
        part
    }

    fn read(&mut self, expr: &'p Expr) {
        expr.walk(&mut |e| {
            if let ExprKind::Secret { name } = &e.kind {
                self.reads.insert(name.as_str());
            }
        });
    }

    fn add(&mut self, other: &Part<'p>) {
        self.writes.extend(other.writes.iter().cloned());
        self.reads.extend(other.reads.iter().copied());
        self.calls.extend(other.calls.iter().cloned());
        self.clients.extend(other.clients.iter().copied());
    }

    /// As the model keeps it.
    fn effects(&self) -> ActionEffects {
        ActionEffects {
            reads: self.reads.iter().map(|r| r.to_string()).collect(),
            writes: self.writes.iter().map(|w| w.secret.text.clone()).collect(),
            runs: self
                .calls
                .iter()
                .map(|c| (key_text(c.target), c.as_account.map(|a| a.text.clone())))
                .collect(),
            clients: self.clients.iter().map(|c| c.to_string()).collect(),
        }
    }
}

fn build_graph<'p>(symbols: &Symbols<'p>) -> Graph<'p> {
    let mut graph = Graph {
        writes: HashMap::default(),
        reads: HashMap::default(),
        calls: HashMap::default(),
        order: Vec::new(),
        actions: BTreeMap::new(),
    };
    let mut parts: HashMap<Key<'p>, Part<'p>> = HashMap::default();
    for service in &symbols.service_order {
        for action in &service.actions {
            let key = (service.name.as_str(), action.name.as_str());
            if parts.contains_key(&key) {
                continue;
            }
            let part = Part::of(symbols, &action.body);
            graph
                .actions
                .insert(format!("{}.{}", key.0, key.1), part.effects());
            parts.insert(key, part);
        }
    }
    for service in &symbols.service_order {
        for endpoint in &service.endpoints {
            let key = (service.name.as_str(), endpoint.name.as_str());
            if graph.writes.contains_key(&key) {
                continue;
            }
            graph.order.push(key);
            let mut part = symbols
                .endpoint_action(key.0, key.1)
                .and_then(|action| parts.get(&(key.0, action.name.as_str())))
                .cloned()
                .unwrap_or_default();
            // The endpoint's hooks run as the same identity.
            for hook in [&endpoint.on_failure, &endpoint.on_recovery]
                .into_iter()
                .flatten()
            {
                part.add(&Part::of(symbols, &hook.body));
            }
            if let Some(response) = &endpoint.response {
                for expr in response.expressions() {
                    part.read(expr);
                }
            }
            graph.writes.insert(key, part.writes);
            graph.calls.insert(key, part.calls);
            graph.reads.insert(key, part.reads);
        }
    }
    graph
}

/// The updates and the `run_service` calls of one statement.
fn visit_writes_and_calls<'p>(
    symbols: &Symbols<'p>,
    statement: &'p Statement,
    writes: &mut Vec<Write<'p>>,
    calls: &mut Vec<Call<'p>>,
) {
    match &statement.kind {
        StatementKind::UpdateSecrets { updates, .. } => {
            for update in updates {
                writes.push(Write {
                    secret: &update.secret,
                    span: update.span,
                });
            }
        }
        StatementKind::RunService {
            endpoint,
            as_account,
            for_connection,
            ..
        } => {
            if symbols
                .endpoint(endpoint.service.as_str(), endpoint.endpoint.as_str())
                .is_some()
            {
                calls.push(Call {
                    target: (endpoint.service.as_str(), endpoint.endpoint.as_str()),
                    as_account: as_account.as_ref(),
                    names_connection: for_connection.is_some(),
                    span: statement.span,
                });
            }
        }
        _ => {}
    }
}

/// Where one endpoint's run updates a secret: its own update (`next`
/// `None`), or the first `run_service` on the way to one (`next` the
/// endpoint it runs).
#[derive(Clone, Copy)]
struct Origin<'p> {
    secret: &'p Name,
    span: Span,
    next: Option<Key<'p>>,
}

/// Every secret each endpoint can update when run by one identity: its
/// own updates and those of endpoints it runs without `as`, each once, with
/// where the way to it starts. One pass over the call graph's components,
/// callees first; the path of a write is followed only when it is shown
/// ([`path_of`]).
fn transitive_writes<'p>(graph: &Graph<'p>) -> HashMap<Key<'p>, Vec<Origin<'p>>> {
    let same_identity = |call: &Call<'_>| call.as_account.is_none();
    let mut out: HashMap<Key<'p>, Vec<Origin<'p>>> = HashMap::default();
    for component in call_graph::components(&graph.order, |key| graph.targets(key, same_identity)) {
        for &key in &component {
            let mut origins: Vec<Origin<'p>> = Vec::new();
            let add = |origin: Origin<'p>, origins: &mut Vec<Origin<'p>>| {
                if !origins.iter().any(|o| o.secret.text == origin.secret.text) {
                    origins.push(origin);
                }
            };
            for write in graph.writes.get(&key).into_iter().flatten() {
                add(
                    Origin {
                        secret: write.secret,
                        span: write.span,
                        next: None,
                    },
                    &mut origins,
                );
            }
            for call in graph.calls.get(&key).into_iter().flatten() {
                if !same_identity(call) {
                    continue;
                }
                // A callee in the same cycle may not be summed yet: the
                // cycle is an error of its own.
                for theirs in out.get(&call.target).into_iter().flatten() {
                    add(
                        Origin {
                            secret: theirs.secret,
                            span: call.span,
                            next: Some(call.target),
                        },
                        &mut origins,
                    );
                }
            }
            out.insert(key, origins);
        }
    }
    out
}

/// The endpoints a write of `secret` goes through from `first` on: `a.b →
/// a.c`.
fn path_of(writes: &HashMap<Key<'_>, Vec<Origin<'_>>>, first: Key<'_>, secret: &str) -> String {
    let mut names = vec![key_text(first)];
    let mut seen = BTreeSet::from([first]);
    let mut at = first;
    while let Some(next) = writes
        .get(&at)
        .and_then(|origins| origins.iter().find(|o| o.secret.text == secret))
        .and_then(|o| o.next)
    {
        if !seen.insert(next) {
            break;
        }
        names.push(key_text(next));
        at = next;
    }
    names.join(" → ")
}

/// Each cycle of `run_service` calls, once: a component of the call
/// graph with more than one endpoint, or one that runs itself. It is shown
/// from its first endpoint, along calls inside the component back to it.
fn report_cycles(graph: &Graph<'_>, diagnostics: &mut Vec<Diagnostic>) {
    for component in call_graph::components(&graph.order, |key| graph.targets(key, |_| true)) {
        let start = component[0];
        let members: BTreeSet<Key<'_>> = component.iter().copied().collect();
        if component.len() == 1 && !graph.targets(start, |_| true).any(|t| t == start) {
            continue;
        }
        // Breadth first from `start` inside the component, to a call back to it.
        let mut came_from: HashMap<Key<'_>, (Key<'_>, Span)> = HashMap::default();
        let mut queue = std::collections::VecDeque::from([start]);
        let mut closing: Option<(Key<'_>, Span)> = None;
        while let Some(node) = queue.pop_front() {
            for call in graph.calls.get(&node).into_iter().flatten() {
                if call.target == start {
                    closing = Some((node, call.span));
                    break;
                }
                if members.contains(&call.target) && !came_from.contains_key(&call.target) {
                    came_from.insert(call.target, (node, call.span));
                    queue.push_back(call.target);
                }
            }
            if closing.is_some() {
                break;
            }
        }
        let Some((last, closing_span)) = closing else {
            continue;
        };
        let mut path = vec![last];
        let mut span = closing_span;
        let mut at = last;
        while at != start {
            let (previous, call_span) = came_from[&at];
            span = call_span;
            path.push(previous);
            at = previous;
        }
        path.reverse();
        let mut names: Vec<String> = path.iter().map(|k| format!("`{}`", key_text(*k))).collect();
        names.push(format!("`{}`", key_text(start)));
        diagnostics.push(
            Diagnostic::new(
                Code::RunServiceCycle,
                format!("`{}` ends up calling itself", key_text(start)),
            )
            .label(span, format!("the cycle: {}", names.join(" → ")))
            .help("remove one of the `run_service` calls in the cycle"),
        );
    }
}

/// Why an identity can run an endpoint.
#[derive(Clone, Copy)]
enum Reason<'p> {
    Grant,
    Schedule(&'p ScheduleDecl),
    /// `refreshed_by ... as ACCOUNT` of a secret: a read runs it.
    Refresh(&'p SecretDecl),
}

type Runners<'p> = HashMap<Key<'p>, BTreeMap<&'p str, Reason<'p>>>;

fn runners<'p>(symbols: &Symbols<'p>, graph: &Graph<'p>) -> Runners<'p> {
    let mut out: Runners<'p> = graph
        .order
        .iter()
        .map(|&key| (key, BTreeMap::new()))
        .collect();
    // From the grants outwards, so the cost follows the number of grants,
    // not identities times endpoints.
    for identity in &symbols.identity_order {
        for role in symbols.roles_of(identity) {
            for grant in &role.grants {
                let GrantKind::Run(pattern) = &grant.kind else {
                    continue;
                };
                let Some(service) = symbols.services.get(pattern.service.as_str()) else {
                    continue;
                };
                let endpoints: Vec<&'p str> = match &pattern.endpoint {
                    Some(endpoint) => vec![endpoint.as_str()],
                    None => service
                        .decl
                        .endpoints
                        .iter()
                        .map(|e| e.name.as_str())
                        .collect(),
                };
                for endpoint in endpoints {
                    let key = (service.decl.name.as_str(), endpoint);
                    if let Some(entry) = out.get_mut(&key) {
                        entry.insert(identity.name.as_str(), Reason::Grant);
                    }
                }
            }
        }
    }
    for schedule in &symbols.schedule_order {
        let (Some(endpoint), Some(account)) = (&schedule.endpoint, &schedule.service_account)
        else {
            continue;
        };
        if !symbols.identities.contains_key(account.as_str()) {
            continue;
        }
        if let Some(entry) = out.get_mut(&(endpoint.service.as_str(), endpoint.endpoint.as_str())) {
            entry
                .entry(account.as_str())
                .or_insert(Reason::Schedule(schedule));
        }
    }
    for secret in &symbols.secret_order {
        let Some(refresher) = &secret.refreshed_by else {
            continue;
        };
        let (endpoint, account) = (&refresher.endpoint, &refresher.service_account);
        if !symbols.identities.contains_key(account.as_str()) {
            continue;
        }
        if let Some(entry) = out.get_mut(&(endpoint.service.as_str(), endpoint.endpoint.as_str())) {
            entry
                .entry(account.as_str())
                .or_insert(Reason::Refresh(secret));
        }
    }
    out
}

fn report_call_grants<'p>(
    symbols: &Symbols<'p>,
    layout: Layout<'_>,
    graph: &Graph<'p>,
    runners: &Runners<'p>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    for &key in &graph.order {
        for call in graph.calls.get(&key).into_iter().flatten() {
            let target = key_text(call.target);
            match call.as_account {
                Some(account) => {
                    let Some(identity) = symbols.identities.get(account.as_str()) else {
                        continue;
                    };
                    if !symbols.can_run(identity, call.target.0, call.target.1) {
                        diagnostics.push(
                            Diagnostic::new(
                                Code::MissingRunGrant,
                                format!("`{}` may not run `{target}`", account.text),
                            )
                            .label(call.span, format!("runs `{target}` as `{}`", account.text))
                            .label(
                                identity.name.span,
                                format!("`{}` is declared here", account.text),
                            )
                            .with_grant(
                                symbols,
                                layout,
                                identity,
                                &format!("run {target}"),
                            ),
                        );
                    }
                }
                None => {
                    for name in runners.get(&key).into_iter().flat_map(|r| r.keys()) {
                        let identity = symbols.identities[name];
                        if !symbols.can_run(identity, call.target.0, call.target.1) {
                            diagnostics.push(
                                Diagnostic::new(
                                    Code::MissingRunGrant,
                                    format!(
                                        "`{name}` can run `{}`, which runs `{target}`, but may not run `{target}`",
                                        key_text(key)
                                    ),
                                )
                                .label(call.span, format!("runs `{target}` as the caller"))
                                .label(identity.name.span, format!("`{name}` is declared here"))
                                .with_grant(symbols, layout, identity, &format!("run {target}")),
                            );
                        }
                    }
                }
            }
        }
    }
}

fn report_update_grants<'p>(
    symbols: &Symbols<'p>,
    layout: Layout<'_>,
    graph: &Graph<'p>,
    runners: &Runners<'p>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let all_writes = transitive_writes(graph);
    for &key in &graph.order {
        let Some(who) = runners.get(&key) else {
            continue;
        };
        if who.is_empty() {
            continue;
        }
        let mut writes = all_writes.get(&key).cloned().unwrap_or_default();
        writes.retain(|w| {
            symbols
                .secrets
                .get(w.secret.as_str())
                .is_some_and(|s| s.is_environment_specific() && s.locked.is_none())
        });
        let mut seen: BTreeSet<(&str, &str)> = BTreeSet::new();
        for write in &writes {
            for (&name, reason) in who {
                if !seen.insert((name, write.secret.as_str())) {
                    continue;
                }
                let identity = symbols.identities[name];
                if symbols.can_update_secret(identity, write.secret.as_str()) {
                    continue;
                }
                let secret = &write.secret.text;
                let endpoint = key_text(key);
                let how = match reason {
                    Reason::Grant => format!("`{name}` can run `{endpoint}`"),
                    Reason::Schedule(schedule) => {
                        format!(
                            "schedule `{}` runs `{endpoint}` as `{name}`",
                            schedule.name.text
                        )
                    }
                    Reason::Refresh(refreshed) => format!(
                        "a read of `{}` runs `{endpoint}` as `{name}`",
                        refreshed.name.text
                    ),
                };
                let at = match write.next {
                    None => format!("updates `{secret}`"),
                    Some(first) => format!(
                        "updates `{secret}` through `{}`",
                        path_of(&all_writes, first, secret)
                    ),
                };
                let mut diagnostic = Diagnostic::new(
                    Code::MissingUpdateGrant,
                    format!("{how}, which updates `{secret}`, but `{name}` may not update it"),
                )
                .label(write.span, at);
                diagnostic = match reason {
                    Reason::Schedule(schedule) => match &schedule.service_account {
                        Some(account) => {
                            diagnostic.label(account.span, format!("runs as `{name}`"))
                        }
                        None => diagnostic,
                    },
                    Reason::Refresh(refreshed) => match &refreshed.refreshed_by {
                        Some(refresher) => diagnostic
                            .label(refresher.service_account.span, format!("runs as `{name}`")),
                        None => diagnostic,
                    },
                    Reason::Grant => {
                        diagnostic.label(identity.name.span, format!("`{name}` is declared here"))
                    }
                };
                diagnostics.push(diagnostic.with_grant(
                    symbols,
                    layout,
                    identity,
                    &format!("update_secret {secret}"),
                ));
            }
        }
    }
}

fn report_schedules(symbols: &Symbols<'_>, layout: Layout<'_>, diagnostics: &mut Vec<Diagnostic>) {
    for schedule in &symbols.schedule_order {
        let Some(endpoint_ref) = &schedule.endpoint else {
            continue;
        };
        let Some(endpoint) = symbols.endpoint(
            endpoint_ref.service.as_str(),
            endpoint_ref.endpoint.as_str(),
        ) else {
            continue;
        };
        if !endpoint.methods.is_empty() && !endpoint.allows("GET") {
            let methods = endpoint.methods.first().map_or(endpoint.name.span, |m| {
                endpoint
                    .methods
                    .iter()
                    .fold(m.span, |span, m| span.to(m.span))
            });
            diagnostics.push(
                Diagnostic::new(
                    Code::ScheduleMethod,
                    format!(
                        "schedule `{}` runs `{}`, which does not allow GET",
                        schedule.name.text,
                        endpoint_ref.display()
                    ),
                )
                .label(endpoint_ref.span, "a schedule calls its endpoint with GET")
                .label(methods, "the endpoint's methods")
                .help(format!(
                    "add `GET` to the `methods` of `{}`",
                    endpoint_ref.display()
                ))
                .fix(layout.add_method(endpoint, "GET")),
            );
        }
        let Some(account) = &schedule.service_account else {
            continue;
        };
        let Some(identity) = symbols.identities.get(account.as_str()) else {
            continue;
        };
        if identity.kind == IdentityKind::ServiceAccount
            && !symbols.can_run(
                identity,
                endpoint_ref.service.as_str(),
                endpoint_ref.endpoint.as_str(),
            )
        {
            diagnostics.push(
                Diagnostic::new(
                    Code::MissingRunGrant,
                    format!(
                        "`{}` may not run `{}`",
                        account.text,
                        endpoint_ref.display()
                    ),
                )
                .label(
                    account.span,
                    format!(
                        "schedule `{}` runs as `{}`",
                        schedule.name.text, account.text
                    ),
                )
                .label(endpoint_ref.span, "the endpoint it runs")
                .with_grant(
                    symbols,
                    layout,
                    identity,
                    &format!("run {}", endpoint_ref.display()),
                ),
            );
        }
        // The schedule's hooks run as its account: it must be allowed to
        // run what they call.
        for hook in [&schedule.on_failure, &schedule.on_recovery]
            .into_iter()
            .flatten()
        {
            hook.body.walk(&mut |statement| {
                let StatementKind::RunService {
                    endpoint: target,
                    as_account: None,
                    ..
                } = &statement.kind
                else {
                    return;
                };
                if symbols
                    .endpoint(target.service.as_str(), target.endpoint.as_str())
                    .is_some()
                    && !symbols.can_run(identity, target.service.as_str(), target.endpoint.as_str())
                {
                    diagnostics.push(
                        Diagnostic::new(
                            Code::MissingRunGrant,
                            format!(
                                "`{}` may not run `{}`, which a hook of schedule `{}` runs",
                                account.text,
                                target.display(),
                                schedule.name.text
                            ),
                        )
                        .label(statement.span, format!("runs as `{}`", account.text))
                        .with_grant(
                            symbols,
                            layout,
                            identity,
                            &format!("run {}", target.display()),
                        ),
                    );
                }
            });
        }
    }
}
