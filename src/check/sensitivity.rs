//! Which values carry secrets.
//!
//! Sensitive are: every `secret.NAME`, every variable written into a secret
//! by `update_secret`, and every variable connected to those by an
//! assignment in either direction (what flows into a secret is as secret as
//! the secret; what flows out of one is too). The interpreter redacts these
//! in traces, logs and errors.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap as HashMap;

use super::fixes::Layout;
use super::symbols::Symbols;
use super::values;
use crate::diagnostic::{Code, Diagnostic};
use crate::syntax::ast::*;

pub fn analyse(symbols: &Symbols<'_>) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for service in &symbols.service_order {
        let mut edges: HashMap<&str, Vec<&str>> = HashMap::default();
        let mut seeds: Vec<&str> = Vec::new();
        for action in &service.actions {
            action.body.walk(&mut |statement| match &statement.kind {
                StatementKind::UpdateVariables { assignments } => {
                    for assignment in assignments {
                        let target = assignment.target.as_str();
                        assignment.value.walk(&mut |e| match &e.kind {
                            ExprKind::Variable { name } => {
                                edges.entry(target).or_default().push(name.as_str());
                                edges.entry(name.as_str()).or_default().push(target);
                            }
                            ExprKind::Secret { .. } => seeds.push(target),
                            _ => {}
                        });
                    }
                }
                // A loop's item is as secret as what it goes over.
                StatementKind::Foreach { item, iterable, .. } => {
                    let target = item.as_str();
                    iterable.walk(&mut |e| match &e.kind {
                        ExprKind::Variable { name } => {
                            edges.entry(target).or_default().push(name.as_str());
                            edges.entry(name.as_str()).or_default().push(target);
                        }
                        ExprKind::Secret { .. } => seeds.push(target),
                        _ => {}
                    });
                }
                StatementKind::UpdateSecrets { updates, .. } => {
                    for value in updates.iter().filter_map(|u| u.value.as_ref()) {
                        value.walk(&mut |e| {
                            if let ExprKind::Variable { name } = &e.kind {
                                seeds.push(name.as_str());
                            }
                        });
                    }
                }
                _ => {}
            });
        }
        let mut sensitive: BTreeSet<String> = BTreeSet::new();
        let mut stack = seeds;
        while let Some(var) = stack.pop() {
            if sensitive.insert(var.to_string()) {
                stack.extend(edges.get(var).into_iter().flatten().copied());
            }
        }
        out.insert(service.name.text.clone(), sensitive);
    }
    out
}

/// For each service, the secrets each variable's value may be made from:
/// what a response may show only when it `reveals` them all. Variables
/// made from no secret are left out.
///
/// A secret read flows forward: into the variable assigned, the item of a
/// loop over it, the `into` variable of a `run_service` given it (with the
/// secrets the callee's response reveals), and the sensitive variables
/// mapped from the answer to a request that carries it. A secret written by
/// `update_secret` flows into every variable connected to its value by
/// assignments, either way, as sensitivity does: what becomes a secret
/// shows it.
pub type Derived = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

pub fn derive(symbols: &Symbols<'_>, sensitive: &BTreeMap<String, BTreeSet<String>>) -> Derived {
    let mut out = BTreeMap::new();
    for service in &symbols.service_order {
        let vars = vars_of(sensitive, &service.name.text);
        let mut flow = Flow::default();
        for action in &service.actions {
            action.body.walk(&mut |statement| match &statement.kind {
                StatementKind::UpdateVariables { assignments } => {
                    for assignment in assignments {
                        flow.assigned(assignment.target.as_str(), &assignment.value, true);
                    }
                }
                StatementKind::Foreach { item, iterable, .. } => {
                    flow.assigned(item.as_str(), iterable, true);
                }
                StatementKind::WebRequest(request) => {
                    let client = match &request.auth {
                        Some(Auth::Client { client, .. }) => symbols.clients.get(client.as_str()),
                        _ => None,
                    };
                    let mut sent = request.expressions();
                    sent.extend(
                        client
                            .into_iter()
                            .flat_map(|c| c.expressions().into_iter().map(|(_, e)| e)),
                    );
                    for mapping in &request.result_mapping {
                        // An answer is data unless the program keeps it as
                        // a secret.
                        if vars.contains(mapping.target.as_str()) {
                            for expr in &sent {
                                flow.assigned(mapping.target.as_str(), expr, false);
                            }
                        }
                    }
                }
                StatementKind::RunService {
                    endpoint,
                    args,
                    into: Some(into),
                    ..
                } => {
                    for arg in args {
                        flow.assigned(into.as_str(), &arg.value, false);
                    }
                    let revealed = symbols
                        .services
                        .get(endpoint.service.as_str())
                        .and_then(|s| s.endpoints.get(endpoint.endpoint.as_str()))
                        .and_then(|e| e.response.as_ref())
                        .map_or(&[][..], |r| r.reveals.as_slice());
                    for secret in revealed {
                        flow.read(into.as_str(), secret.as_str());
                    }
                }
                StatementKind::UpdateSecrets { updates, .. } => {
                    for update in updates {
                        if let Some(value) = &update.value {
                            value.walk(&mut |e| {
                                if let ExprKind::Variable { name } = &e.kind {
                                    flow.written.push((update.secret.as_str(), name.as_str()));
                                }
                            });
                        }
                    }
                }
                _ => {}
            });
        }
        out.insert(service.name.text.clone(), flow.solve());
    }
    out
}

/// How values move between the variables of one service.
#[derive(Default)]
struct Flow<'p> {
    /// The secrets read into each variable.
    labels: HashMap<&'p str, BTreeSet<&'p str>>,
    /// From a variable to the variables made from it.
    forward: HashMap<&'p str, Vec<&'p str>>,
    /// Assignments, either way: along them a written secret spreads.
    linked: HashMap<&'p str, Vec<&'p str>>,
    /// (secret, variable): the variable's value is written into the secret.
    written: Vec<(&'p str, &'p str)>,
}

impl<'p> Flow<'p> {
    fn read(&mut self, target: &'p str, secret: &'p str) {
        self.labels.entry(target).or_default().insert(secret);
    }

    /// `target` is made from `expr`; `linked` when it is an assignment.
    fn assigned(&mut self, target: &'p str, expr: &'p Expr, linked: bool) {
        expr.walk(&mut |e| match &e.kind {
            ExprKind::Variable { name } => {
                self.forward.entry(name.as_str()).or_default().push(target);
                if linked {
                    self.linked.entry(target).or_default().push(name.as_str());
                    self.linked.entry(name.as_str()).or_default().push(target);
                }
            }
            ExprKind::Secret { name } => self.read(target, name.as_str()),
            _ => {}
        });
    }

    fn solve(mut self) -> BTreeMap<String, BTreeSet<String>> {
        for (secret, var) in std::mem::take(&mut self.written) {
            let mut seen = BTreeSet::new();
            let mut stack = vec![var];
            while let Some(var) = stack.pop() {
                if seen.insert(var) {
                    self.read(var, secret);
                    stack.extend(self.linked.get(var).into_iter().flatten().copied());
                }
            }
        }
        let mut stack: Vec<&str> = self.labels.keys().copied().collect();
        while let Some(var) = stack.pop() {
            let from = self.labels.get(var).cloned().unwrap_or_default();
            for &target in self.forward.get(var).into_iter().flatten() {
                let labels = self.labels.entry(target).or_default();
                let before = labels.len();
                labels.extend(from.iter().copied());
                if labels.len() > before {
                    stack.push(target);
                }
            }
        }
        self.labels
            .into_iter()
            .filter(|(_, labels)| !labels.is_empty())
            .map(|(var, labels)| {
                let labels = labels.into_iter().map(str::to_string).collect();
                (var.to_string(), labels)
            })
            .collect()
    }
}

/// The secrets an expression's value may be made from; `None` when it
/// reads a sensitive variable made from none the checker can name (it is
/// secret all the same).
pub fn made_from(
    expr: &Expr,
    sensitive: &BTreeSet<String>,
    derived: &BTreeMap<String, BTreeSet<String>>,
) -> Option<BTreeSet<String>> {
    let mut secrets = Some(BTreeSet::new());
    expr.walk(&mut |e| match &e.kind {
        ExprKind::Secret { name } => {
            if let Some(secrets) = &mut secrets {
                secrets.insert(name.text.clone());
            }
        }
        ExprKind::Variable { name } => match derived.get(name.as_str()) {
            Some(labels) => {
                if let Some(secrets) = &mut secrets {
                    secrets.extend(labels.iter().cloned());
                }
            }
            None if sensitive.contains(name.as_str()) => secrets = None,
            None => {}
        },
        _ => {}
    });
    secrets
}

/// Whether an expression reads a secret or a sensitive variable.
pub fn is_sensitive_expr(expr: &Expr, sensitive: &BTreeSet<String>) -> bool {
    let mut found = false;
    expr.walk(&mut |e| match &e.kind {
        ExprKind::Secret { .. } => found = true,
        ExprKind::Variable { name } if sensitive.contains(&name.text) => found = true,
        _ => {}
    });
    found
}

/// Where a request sends a secret, if it does: an expression that reads
/// one, or the credentials of the client it authenticates as.
fn carried_secret(
    symbols: &Symbols<'_>,
    request: &WebRequest,
    sensitive: &BTreeSet<String>,
) -> Option<crate::source::Span> {
    if let Some(leak) = request
        .expressions()
        .into_iter()
        .find(|e| is_sensitive_expr(e, sensitive))
    {
        return Some(leak.span);
    }
    match &request.auth {
        Some(Auth::Client { client, span }) => symbols
            .clients
            .get(client.as_str())
            .is_some_and(|c| {
                c.expressions()
                    .iter()
                    .any(|(_, e)| is_sensitive_expr(e, sensitive))
                    || matches!(c.client_auth, Some(ClientAuth::PrivateKeyJwt(_)))
            })
            .then_some(*span),
        _ => None,
    }
}

/// The sensitive variables of a service: none when it has none.
fn vars_of<'a>(
    sensitive: &'a BTreeMap<String, BTreeSet<String>>,
    service: &str,
) -> &'a BTreeSet<String> {
    static NONE: BTreeSet<String> = BTreeSet::new();
    sensitive.get(service).unwrap_or(&NONE)
}

/// A response shows no value made from a secret unless its endpoint
/// `reveals` that secret, and then only to identities that may read it.
pub fn check_responses(
    symbols: &Symbols<'_>,
    layout: Layout<'_>,
    sensitive: &BTreeMap<String, BTreeSet<String>>,
    derived: &Derived,
    diagnostics: &mut Vec<Diagnostic>,
) {
    static NONE: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for service in &symbols.service_order {
        let vars = vars_of(sensitive, &service.name.text);
        let made = derived.get(&service.name.text).unwrap_or(&NONE);
        for endpoint in &service.endpoints {
            let Some(response) = &endpoint.response else {
                continue;
            };
            let key = format!("{}.{}", service.name.text, endpoint.name.text);
            for expr in response.expressions() {
                let hidden = made_from(expr, vars, made).map(|secrets| {
                    secrets
                        .into_iter()
                        .filter(|s| !response.reveals.iter().any(|r| r.text == *s))
                        .collect::<Vec<_>>()
                });
                if let Some(diagnostic) = shown_secret(&key, expr.span, hidden, &response.reveals) {
                    diagnostics.push(diagnostic);
                }
            }
            for secret in &response.reveals {
                for identity in symbols.identities.values() {
                    if symbols.can_run(identity, &service.name.text, &endpoint.name.text)
                        && !symbols.can_read_secret(identity, secret.as_str())
                    {
                        diagnostics.push(
                            Diagnostic::new(
                                Code::MissingReadGrant,
                                format!(
                                    "`{}` may run `{key}`, whose response reveals `{}`, but may not read it",
                                    identity.name.text, secret.text
                                ),
                            )
                            .label(secret.span, "revealed here")
                            .label(identity.name.span, format!("`{}` is declared here", identity.name.text))
                            .help(format!(
                                "grant `read_secret {}` to a role of `{}`, or take back its `run {key}`",
                                secret.text, identity.name.text
                            ))
                            .fix(layout.grant_to(
                                symbols,
                                identity,
                                &format!("read_secret {}", secret.text),
                            )),
                        );
                    }
                }
            }
        }
    }
}

/// The diagnostic of a response value made from secrets it does not
/// reveal (`hidden`; `None`: a secret the checker cannot name), if any.
fn shown_secret(
    key: &str,
    span: crate::source::Span,
    hidden: Option<Vec<String>>,
    reveals: &[Name],
) -> Option<Diagnostic> {
    let diagnostic = |message: String, label: String| {
        Diagnostic::new(Code::SecretInResponse, message).label(span, label)
    };
    if reveals.is_empty() {
        return hidden.is_none_or(|h| !h.is_empty()).then(|| {
            diagnostic(
                format!("the response of `{key}` would show a secret"),
                "holds a secret, or a value made from one".into(),
            )
            .help("leave it out, or say which secret it shows: `reveals NAME` (callers then need `read_secret NAME`)")
        });
    }
    let revealed = names(reveals.iter().map(|r| r.text.as_str()));
    match hidden {
        None => Some(
            diagnostic(
                format!("the response of `{key}` would show a secret it does not reveal"),
                "holds a secret, or a value made from one".into(),
            )
            .help(format!("show only values made from {revealed}")),
        ),
        Some(hidden) if hidden.is_empty() => None,
        Some(hidden) => {
            let grant = match hidden.as_slice() {
                [one] => format!("`read_secret {one}`"),
                _ => "`read_secret` of each".into(),
            };
            let hidden = names(hidden.iter().map(String::as_str));
            Some(
                diagnostic(
                    format!(
                        "the response of `{key}` would show a value made from {hidden}, which it does not reveal"
                    ),
                    format!("made from {hidden}"),
                )
                .help(format!(
                    "show only values made from {revealed}, or add {hidden} to `reveals` (callers then need {grant})"
                )),
            )
        }
    }
}

/// `A`, `A` and `B`, `A`, `B` and `C`: names in backticks.
fn names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<String> = names.map(|n| format!("`{n}`")).collect();
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// Warns where a secret would travel in clear text over the network.
pub fn check_plain_http(
    symbols: &Symbols<'_>,
    sensitive: &BTreeMap<String, BTreeSet<String>>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    for service in &symbols.service_order {
        let vars = vars_of(sensitive, &service.name.text);
        for action in &service.actions {
            action.body.walk(&mut |statement| {
                let StatementKind::WebRequest(request) = &statement.kind else {
                    return;
                };
                let Some(url) = &request.url else {
                    return;
                };
                let Some(prefix) = url.literal_prefix() else {
                    return;
                };
                if !values::is_plain_http_off_loopback(&prefix) {
                    return;
                }
                if let Some(leak) = carried_secret(symbols, request, vars) {
                    diagnostics.push(
                        Diagnostic::new(Code::PlainHttpSecret, "a secret is sent over plain `http://`")
                            .label(leak, "this value holds a secret")
                            .label(url.span, "sent without TLS to this URL")
                            .help("use an `https://` URL; plain `http://` is only safe to a loopback address"),
                    );
                }
            });
        }
    }
}

/// Warns where a request that carries a secret opts into redirects to
/// other origins.
pub fn check_cross_origin(
    symbols: &Symbols<'_>,
    sensitive: &BTreeMap<String, BTreeSet<String>>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    for service in &symbols.service_order {
        let vars = vars_of(sensitive, &service.name.text);
        for action in &service.actions {
            action.body.walk(&mut |statement| {
                let StatementKind::WebRequest(request) = &statement.kind else {
                    return;
                };
                let Some(opt_in) = request.cross_origin else {
                    return;
                };
                if carried_secret(symbols, request, vars).is_some() {
                    diagnostics.push(
                        Diagnostic::new(
                            Code::CrossOriginRedirect,
                            "this request carries a secret and follows redirects to other origins",
                        )
                        .label(opt_in, "redirects to another scheme, host or port are followed")
                        .help(
                            "svc drops the body, `auth` and headers holding secrets on such a redirect, \
                             but the new origin still learns of the request; remove `cross_origin` \
                             and use the URL the server redirects to",
                        ),
                    );
                }
            });
        }
    }
}
