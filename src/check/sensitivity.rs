//! Which values carry secrets.
//!
//! Sensitive are: every `secret.NAME`, every variable written into a secret
//! by `update_secret`, and every variable connected to those by an
//! assignment in either direction (what flows into a secret is as secret as
//! the secret; what flows out of one is too). The interpreter redacts these
//! in traces, logs and errors.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap as HashMap;

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

/// A response shows no secret unless its endpoint `reveals` it, and then
/// only to identities that may read it.
pub fn check_responses(
    symbols: &Symbols<'_>,
    sensitive: &BTreeMap<String, BTreeSet<String>>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    for service in &symbols.service_order {
        let vars = vars_of(sensitive, &service.name.text);
        for endpoint in &service.endpoints {
            let Some(response) = &endpoint.response else {
                continue;
            };
            let key = format!("{}.{}", service.name.text, endpoint.name.text);
            if response.reveals.is_empty()
                && let Some(leak) = response
                    .expressions()
                    .into_iter()
                    .find(|e| is_sensitive_expr(e, vars))
            {
                diagnostics.push(
                    Diagnostic::new(
                        Code::SecretInResponse,
                        format!("the response of `{key}` would show a secret"),
                    )
                    .label(leak.span, "holds a secret, or a value made from one")
                    .help("leave it out, or say which secret it shows: `reveals NAME` (callers then need `read_secret NAME`)"),
                );
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
                            )),
                        );
                    }
                }
            }
        }
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
