//! Requests that spend a rotating secret.
//!
//! A request that presents a secret which the same action (or an endpoint
//! it runs with `run_service`) then updates is spending a credential that
//! rotates: a refresh token that the provider replaces on every use. Such a
//! request must reach the server at most once: providers with reuse
//! detection revoke the whole token family when a refresh token comes back
//! a second time. The interpreter therefore retries it only when it was
//! never sent (a failed connection) or when the server said it did not take
//! it (429, 503); an explicit `retry` overrides that and is warned about.

use std::collections::BTreeSet;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use super::symbols::Symbols;
use crate::diagnostic::{Code, Diagnostic};
use crate::source::Span;
use crate::syntax::ast::*;

/// For each request that spends rotating secrets (by the span of its
/// `web_request`), the names of those secrets.
pub type Rotating = HashMap<Span, Vec<String>>;

pub fn analyse(symbols: &Symbols<'_>) -> Rotating {
    let mut out = Rotating::default();
    let mut memo: HashMap<(&str, &str), BTreeSet<String>> = HashMap::default();
    for service in &symbols.service_order {
        let derived = secrets_in_variables(service);
        for action in &service.actions {
            let updated = updated_by(symbols, service, action, &mut memo, &mut Vec::new());
            if updated.is_empty() {
                continue;
            }
            action.body.walk(&mut |statement| {
                let StatementKind::WebRequest(request) = &statement.kind else {
                    return;
                };
                let mut spent = BTreeSet::new();
                for expr in request.expressions() {
                    expr.walk(&mut |e| match &e.kind {
                        ExprKind::Secret { name } if updated.contains(name.as_str()) => {
                            spent.insert(name.text.clone());
                        }
                        ExprKind::Variable { name } => {
                            for secret in derived.get(name.as_str()).into_iter().flatten() {
                                if updated.contains(secret) {
                                    spent.insert(secret.clone());
                                }
                            }
                        }
                        _ => {}
                    });
                }
                if !spent.is_empty() {
                    out.insert(request.span, spent.into_iter().collect());
                }
            });
        }
    }
    out
}

/// The secrets each variable of a service may hold a copy of, through
/// `update service_variables` assignments (to a fixed point).
fn secrets_in_variables(service: &ServiceDecl) -> HashMap<String, BTreeSet<String>> {
    let mut assignments: Vec<(&str, &Expr)> = Vec::new();
    for action in &service.actions {
        action.body.walk(&mut |statement| {
            if let StatementKind::UpdateVariables { assignments: list } = &statement.kind {
                assignments.extend(list.iter().map(|a| (a.target.as_str(), &a.value)));
            }
        });
    }
    let mut derived: HashMap<String, BTreeSet<String>> = HashMap::default();
    loop {
        let mut changed = false;
        for (target, value) in &assignments {
            let mut found = BTreeSet::new();
            value.walk(&mut |e| match &e.kind {
                ExprKind::Secret { name } => {
                    found.insert(name.text.clone());
                }
                ExprKind::Variable { name } => {
                    if let Some(secrets) = derived.get(name.as_str()) {
                        found.extend(secrets.iter().cloned());
                    }
                }
                _ => {}
            });
            let entry = derived.entry(target.to_string()).or_default();
            let before = entry.len();
            entry.extend(found);
            changed |= entry.len() != before;
        }
        if !changed {
            return derived;
        }
    }
}

/// The secrets an action updates, itself or through the endpoints it runs.
fn updated_by<'p>(
    symbols: &Symbols<'p>,
    service: &'p ServiceDecl,
    action: &'p ActionDecl,
    memo: &mut HashMap<(&'p str, &'p str), BTreeSet<String>>,
    visiting: &mut Vec<(&'p str, &'p str)>,
) -> BTreeSet<String> {
    let key = (service.name.as_str(), action.name.as_str());
    if let Some(known) = memo.get(&key) {
        return known.clone();
    }
    if visiting.contains(&key) {
        // A cycle of `run_service` calls: reported elsewhere.
        return BTreeSet::new();
    }
    visiting.push(key);
    let mut updated = BTreeSet::new();
    let mut callees: Vec<&'p EndpointRef> = Vec::new();
    action.body.walk(&mut |statement| match &statement.kind {
        StatementKind::UpdateSecrets { updates, .. } => {
            updated.extend(updates.iter().map(|u| u.secret.text.clone()));
        }
        StatementKind::RunService { endpoint, .. } => callees.push(endpoint),
        _ => {}
    });
    for callee in callees {
        let Some(table) = symbols.services.get(callee.service.as_str()) else {
            continue;
        };
        let Some(process) = table
            .endpoints
            .get(callee.endpoint.as_str())
            .and_then(|e| e.process.as_ref())
        else {
            continue;
        };
        if let Some(target) = table.actions.get(process.as_str()) {
            updated.extend(updated_by(symbols, table.decl, target, memo, visiting));
        }
    }
    visiting.pop();
    memo.insert(key, updated.clone());
    updated
}

/// Warns where a request that spends a rotating secret asks for retries.
pub fn check_retries(
    symbols: &Symbols<'_>,
    rotating: &Rotating,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let mut warned: HashSet<Span> = HashSet::default();
    for service in &symbols.service_order {
        for action in &service.actions {
            action.body.walk(&mut |statement| {
                let StatementKind::WebRequest(request) = &statement.kind else {
                    return;
                };
                let (Some(retry), Some(secrets)) = (&request.retry, rotating.get(&request.span))
                else {
                    return;
                };
                if retry.attempts.as_ref().is_some_and(|a| a.value <= 1)
                    || !warned.insert(request.span)
                {
                    return;
                }
                let names = secrets
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                diagnostics.push(Diagnostic::new(
                    Code::RetrySpendsRotatingSecret,
                    format!(
                        "this request presents {names}, which the run then replaces, and `retry` may send it again"
                    ),
                )
                .label(retry.span, "may re-send the request after the server got it")
                .help(
                    "remove `retry`: without it svc retries this request only when it was never sent, \
                     or when the server answered 429 or 503; a provider that sees a rotated refresh \
                     token twice may revoke the whole token family",
                ));
            });
        }
    }
}
