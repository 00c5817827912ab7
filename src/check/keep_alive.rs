//! Keeping refresh tokens alive: providers revoke a refresh token nobody
//! used for a while (Zendesk, Atlassian, Google apps in testing).
//!
//! A connection is refreshed by an endpoint that updates one of the
//! tokens its client `stores`. It stays alive when something runs such an
//! endpoint on its own: a schedule, a read of a `refreshed_by` secret, or
//! `keep_alive DURATION` on the client, with which `svc serve` runs one
//! when the connection has not been refreshed for that long. The
//! keep-alive run needs an account, and takes one the program already
//! names for the endpoint ([`runner`]), so it never widens who may run
//! what.

use std::collections::{BTreeMap, BTreeSet};

use super::model::Effects;
use super::symbols::grants_run;
use crate::diagnostic::{Code, Diagnostic};
use crate::syntax::ast::*;

/// The run that keeps a connection alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runner {
    pub service: String,
    pub endpoint: String,
    /// A service account allowed to run it.
    pub account: String,
    /// The schedule it is taken from, whose parameters it runs with.
    pub schedule: Option<String>,
}

/// Whether a run that updates `writes` and reads `reads` refreshes the
/// client's connection. A connection is its refresh token: with one, the
/// run must send or store it (a `client_credentials` run of the same
/// client does neither, and keeps nothing alive); without one, updating
/// any secret the client stores is the refresh.
pub fn refreshes_connection(
    client: &OAuthClientDecl,
    writes: &BTreeSet<String>,
    reads: &BTreeSet<String>,
) -> bool {
    match client.store_of(TokenField::RefreshToken) {
        Some(refresh) => writes.contains(&refresh.text) || reads.contains(&refresh.text),
        None => client
            .stores
            .iter()
            .flat_map(|s| &s.entries)
            .any(|s| writes.contains(&s.secret.text)),
    }
}

/// The endpoints that refresh a client's connection, as
/// `SERVICE.ENDPOINT`, in the order declared.
pub fn refreshers(
    program: &Program,
    effects: &BTreeMap<String, Effects>,
    client: &OAuthClientDecl,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for service in &program.services {
        for endpoint in &service.endpoints {
            let key = format!("{}.{}", service.name.text, endpoint.name.text);
            let refreshes = effects
                .get(&key)
                .is_some_and(|e| refreshes_connection(client, &e.writes, &e.reads));
            if refreshes {
                out.push((service.name.text.clone(), endpoint.name.text.clone()));
            }
        }
    }
    out
}

/// Whether an endpoint can run with no parameters given.
fn runs_without_params(program: &Program, service: &str, endpoint: &str) -> bool {
    let Some(decl) = program
        .services
        .iter()
        .find(|s| s.name.as_str() == service)
        .and_then(|s| s.endpoints.iter().find(|e| e.name.as_str() == endpoint))
    else {
        return false;
    };
    decl.params.as_ref().is_none_or(|params| {
        params
            .iter()
            .all(|param| param.optional || param.default.is_some())
    })
}

/// What refreshes the connection on its own: a `refreshed_by` of a secret
/// it stores, or a schedule (not disabled) of one of its refreshers.
fn refreshed_on_its_own(program: &Program, refreshers: &[(String, String)]) -> Option<Runner> {
    let refreshes = |r: &EndpointRef| {
        refreshers
            .iter()
            .any(|(s, e)| r.service.as_str() == s && r.endpoint.as_str() == e)
    };
    let by_read = program.secrets.iter().find_map(|secret| {
        let by = secret.refreshed_by.as_ref()?;
        refreshes(&by.endpoint).then(|| Runner {
            service: by.endpoint.service.text.clone(),
            endpoint: by.endpoint.endpoint.text.clone(),
            account: by.service_account.text.clone(),
            schedule: None,
        })
    });
    by_read.or_else(|| {
        program.schedules.iter().find_map(|schedule| {
            let endpoint = schedule.endpoint.as_ref()?;
            let account = schedule.service_account.as_ref()?;
            (!schedule.disabled && refreshes(endpoint)).then(|| Runner {
                service: endpoint.service.text.clone(),
                endpoint: endpoint.endpoint.text.clone(),
                account: account.text.clone(),
                schedule: Some(schedule.name.text.clone()),
            })
        })
    })
}

/// The run `keep_alive` makes: a refresher as the program already runs it
/// (a `refreshed_by`, a schedule), or else the first refresher that takes
/// no parameters, as the first service account granted to run it.
pub fn runner(
    program: &Program,
    effects: &BTreeMap<String, Effects>,
    client: &OAuthClientDecl,
) -> Option<Runner> {
    let refreshers = refreshers(program, effects, client);
    if let Some(runner) = refreshed_on_its_own(program, &refreshers) {
        return Some(runner);
    }
    refreshers.iter().find_map(|(service, endpoint)| {
        if !runs_without_params(program, service, endpoint) {
            return None;
        }
        let account = program.identities.iter().find(|identity| {
            identity.kind == IdentityKind::ServiceAccount
                && identity.roles.iter().any(|role| {
                    program
                        .roles
                        .iter()
                        .find(|r| r.name.as_str() == role.as_str())
                        .is_some_and(|r| grants_run(r, service, endpoint))
                })
        })?;
        Some(Runner {
            service: service.clone(),
            endpoint: endpoint.clone(),
            account: account.name.text.clone(),
            schedule: None,
        })
    })
}

/// `keep_alive` has a run to make; a refresh token that nothing refreshes
/// on its own is pointed out.
pub fn check(
    program: &Program,
    effects: &BTreeMap<String, Effects>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let mut seen = BTreeSet::new();
    for client in &program.oauth_clients {
        if !seen.insert(client.name.as_str()) {
            continue;
        }
        let refreshers = refreshers(program, effects, client);
        if let Some(keep_alive) = &client.keep_alive {
            if runner(program, effects, client).is_none() {
                let help = match refreshers.first() {
                    None => format!(
                        "declare an endpoint that updates a token `{}` stores (the refresh \
                         request), for `svc serve` to run",
                        client.name.text
                    ),
                    Some((service, endpoint)) => format!(
                        "give a service account `grant run {service}.{endpoint}`, or declare a \
                         schedule or a `refreshed_by` that runs it"
                    ),
                };
                diagnostics.push(
                    Diagnostic::new(
                        Code::KeepAliveWithoutRunner,
                        format!("nothing can keep `{}` alive", client.name.text),
                    )
                    .label(
                        keep_alive.span,
                        "no endpoint refreshes it that a service account may run",
                    )
                    .help(help),
                );
            }
            continue;
        }
        let Some(refresh_token) = client.store_of(TokenField::RefreshToken) else {
            continue;
        };
        if refreshed_on_its_own(program, &refreshers).is_some() {
            continue;
        }
        diagnostics.push(
            Diagnostic::new(
                Code::IdleRefreshToken,
                format!(
                    "nothing refreshes `{}` on its own: providers revoke refresh tokens left idle",
                    refresh_token.text
                ),
            )
            .label(
                client.name.span,
                "no schedule, refresh on read or keep_alive",
            )
            .help(format!(
                "add `keep_alive 7d` to oauth_client `{}` (svc serve then refreshes it when it \
                 has idled that long), or a schedule that runs its refresh",
                client.name.text
            )),
        );
    }
}
