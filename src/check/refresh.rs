//! Refresh on read: `secret NAME { refreshed_by SERVICE.ENDPOINT as ACCOUNT
//! min_valid DURATION }`.
//!
//! A read of such a secret may run the endpoint as the account, so the
//! checker proves what that run needs: the endpoint exists and updates the
//! secret (itself or through an endpoint it runs with `run_service`), the
//! account is a declared service account that may run the endpoint, and the
//! secret can be updated at all (environment specific, not locked). That
//! the account may update the secret is checked with every other runner of
//! the endpoint, in `permissions`.

use std::collections::BTreeSet;

use super::Checker;
use super::fixes::WithGrant;
use super::symbols::Symbols;
use crate::diagnostic::{Code, Diagnostic};
use crate::syntax::ast::*;

impl<'p> Checker<'_, 'p> {
    pub(super) fn check_refreshers(&mut self) {
        for secret in self.symbols.secret_order.clone() {
            if let Some(refresher) = &secret.refreshed_by {
                self.check_refresher(secret, refresher);
            }
        }
    }

    fn check_refresher(&mut self, secret: &'p SecretDecl, refresher: &'p RefreshedBy) {
        let name = &secret.name.text;
        // `min_valid 0s` is allowed: it refreshes only an expired secret.
        if refresher.min_valid.is_none() {
            self.push(
                Diagnostic::new(
                    Code::MissingProperty,
                    format!("`refreshed_by` of `{name}` is missing `min_valid`"),
                )
                .label(refresher.span, "how long must a value read stay valid?")
                .help(format!(
                    "add `min_valid DURATION`: a read refreshes `{name}` first when it expires \
                     sooner than that, such as `min_valid 5m`"
                )),
            );
        }
        if !secret.is_environment_specific() {
            self.push(
                Diagnostic::new(
                    Code::SecretNotEnvironmentSpecific,
                    format!("`{name}` is refreshed on read, but shared by every environment"),
                )
                .label(refresher.span, "a read may update it")
                .label(secret.name.span, "declared without `environment_specific`")
                .help(format!(
                    "add `environment_specific` to `{name}`: a refresh writes one environment's value"
                ))
                .fix(self.make_environment_specific(secret)),
            );
        }
        if let Some(locked) = secret.locked {
            self.push(
                Diagnostic::new(
                    Code::SecretLocked,
                    format!("`{name}` is locked, so no read may refresh it"),
                )
                .label(refresher.span, "a read may update it")
                .label(locked, "locked here")
                .help(format!(
                    "remove `locked` from `{name}`, or remove `refreshed_by`: a locked secret \
                     changes only with `svc secret set`"
                )),
            );
        }
        let endpoint = &refresher.endpoint;
        let known = self.resolve_endpoint(&endpoint.service, Some(&endpoint.endpoint));
        let account = self.resolve_service_account(&refresher.service_account);
        if !known {
            return;
        }
        if !updates(
            self.symbols,
            endpoint.service.as_str(),
            endpoint.endpoint.as_str(),
        )
        .contains(name.as_str())
        {
            self.push(
                Diagnostic::new(
                    Code::RefresherDoesNotUpdate,
                    format!(
                        "`{}` refreshes `{name}`, but never updates it",
                        endpoint.display()
                    ),
                )
                .label(endpoint.span, format!("no run of it updates `{name}`"))
                .help(format!(
                    "name the endpoint whose action has `update_secret {name} = ...` (itself or \
                     through `run_service`), or add that update to its action"
                )),
            );
        }
        let Some(account) = account else {
            return;
        };
        if !self.symbols.can_run(
            account,
            endpoint.service.as_str(),
            endpoint.endpoint.as_str(),
        ) {
            let grant = format!("run {}", endpoint.display());
            self.push(
                Diagnostic::new(
                    Code::MissingRunGrant,
                    format!(
                        "`{}` may not run `{}`",
                        account.name.text,
                        endpoint.display()
                    ),
                )
                .label(
                    refresher.service_account.span,
                    format!("a read of `{name}` runs it as `{}`", account.name.text),
                )
                .label(endpoint.span, "the endpoint it runs")
                .with_grant(self.symbols, self.layout, account, &grant),
            );
        }
    }
}

/// The secrets a run of `service.endpoint` can update: its action's
/// updates and those of every endpoint it runs with `run_service`.
pub fn updates<'p>(
    symbols: &Symbols<'p>,
    service: &'p str,
    endpoint: &'p str,
) -> BTreeSet<&'p str> {
    let mut out = BTreeSet::new();
    let mut visited: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut stack = vec![(service, endpoint)];
    while let Some(key) = stack.pop() {
        if !visited.insert(key) {
            continue;
        }
        let Some(action) = symbols.endpoint_action(key.0, key.1) else {
            continue;
        };
        action.body.walk(&mut |statement| match &statement.kind {
            StatementKind::UpdateSecrets { updates, .. } => {
                out.extend(updates.iter().map(|u| u.secret.as_str()));
            }
            StatementKind::RunService { endpoint, .. } => {
                stack.push((endpoint.service.as_str(), endpoint.endpoint.as_str()));
            }
            _ => {}
        });
    }
    out
}
