//! Per-account secrets and the endpoints that run for a connection.
//!
//! A `per_account` oauth_client has many connections, one per connected
//! account; each secret in its `stores` is declared `per_account` and has a
//! value per connection. An endpoint that reads or updates such a secret —
//! in its own statements, or through an endpoint it runs with
//! `run_service` without naming a connection — is a **per-account
//! endpoint**: it runs for one connection of that client, which its caller
//! gives (`?connection=ID`, `for_each_connection`, a read of a per-account
//! secret, or `run_service ... for_connection EXPR`). `run_service` from a
//! per-account endpoint passes its connection on. What an endpoint reaches
//! in its own connection is part of the effects model
//! ([`Effects::in_connection`], built with the `run_service` call graph).
//!
//! The rules here make sure a per-account secret is only ever reached with
//! a connection to reach it for: a schedule without `for_each_connection`,
//! a `refreshed_by` of a secret that is not per-account, or a schedule's
//! hook cannot run a per-account endpoint; `connection.id` and
//! `connection.tags.KEY` are only in scope where there is a connection.

use std::collections::{BTreeMap, BTreeSet};

use super::model::Effects;
use super::{Checker, Symbols, values};
use crate::diagnostic::{Code, Diagnostic};
use crate::syntax::ast::*;

/// The parameter `svc serve` reserves for the connection of a run.
pub const RESERVED_PARAM: &str = "connection";

/// The most runs a `for_each_connection` schedule makes at once.
pub const MAX_CONCURRENCY: u64 = 256;

/// Which endpoints run for a connection, and of which client.
pub struct Accounts<'p> {
    /// Each `per_account` secret, and the `per_account` client that stores
    /// it (`None` when none does: reported).
    secrets: BTreeMap<&'p str, Option<&'p str>>,
    /// Each per-account endpoint, by service and endpoint.
    endpoints: BTreeMap<String, BTreeMap<String, Reach<'p>>>,
}

/// What a per-account endpoint reaches in the connection it runs for.
struct Reach<'p> {
    /// The clients whose per-account secrets it reaches: one, unless
    /// reported.
    clients: BTreeSet<&'p str>,
    /// The per-account secrets it reaches, by name.
    secrets: Vec<&'p str>,
}

impl<'p> Accounts<'p> {
    /// From the effects model: an endpoint is per-account when what it
    /// reads or updates in its own connection
    /// ([`Effects::in_connection`]) holds a per-account secret.
    pub fn new(symbols: &Symbols<'p>, effects: &BTreeMap<String, Effects>) -> Accounts<'p> {
        let mut secrets = BTreeMap::new();
        for secret in &symbols.secret_order {
            if !secret.per_account {
                continue;
            }
            let client = symbols
                .client_order
                .iter()
                .find(|c| c.per_account && c.stores_secret(secret.name.as_str()))
                .map(|c| c.name.as_str());
            secrets.entry(secret.name.as_str()).or_insert(client);
        }
        let mut endpoints: BTreeMap<String, BTreeMap<String, Reach<'p>>> = BTreeMap::new();
        for service in &symbols.service_order {
            for endpoint in &service.endpoints {
                let key = format!("{}.{}", service.name.text, endpoint.name.text);
                let Some(effects) = effects.get(&key) else {
                    continue;
                };
                let reached: Vec<(&'p str, Option<&'p str>)> = secrets
                    .iter()
                    .filter(|(name, _)| effects.in_connection.contains(**name))
                    .map(|(name, client)| (*name, *client))
                    .collect();
                if reached.is_empty() {
                    continue;
                }
                let reach = Reach {
                    clients: reached.iter().filter_map(|(_, c)| *c).collect(),
                    secrets: reached.iter().map(|(s, _)| *s).collect(),
                };
                endpoints
                    .entry(service.name.text.clone())
                    .or_default()
                    .entry(endpoint.name.text.clone())
                    .or_insert(reach);
            }
        }
        Accounts { secrets, endpoints }
    }

    /// Whether `SERVICE.ENDPOINT` runs for a connection.
    pub fn is_per_account(&self, service: &str, endpoint: &str) -> bool {
        self.reach_of(service, endpoint).is_some()
    }

    fn reach_of(&self, service: &str, endpoint: &str) -> Option<&Reach<'p>> {
        self.endpoints.get(service)?.get(endpoint)
    }

    /// The clients whose connections `SERVICE.ENDPOINT` runs for.
    fn clients_of(&self, service: &str, endpoint: &str) -> Option<&BTreeSet<&'p str>> {
        self.reach_of(service, endpoint).map(|r| &r.clients)
    }

    /// The `per_account` client that stores a per-account secret.
    pub fn client_of_secret(&self, secret: &str) -> Option<&'p str> {
        self.secrets.get(secret).copied().flatten()
    }

    /// Each per-account endpoint, as `SERVICE.ENDPOINT`, and the client
    /// whose connections it runs for.
    pub fn per_account_endpoints(&self) -> BTreeMap<String, String> {
        self.endpoints
            .iter()
            .flat_map(|(service, endpoints)| {
                endpoints.iter().filter_map(move |(endpoint, reach)| {
                    let client = reach.clients.iter().next()?;
                    Some((format!("{service}.{endpoint}"), client.to_string()))
                })
            })
            .collect()
    }
}

/// Every `connection.FIELD` in an expression.
fn connection_refs<'e>(expr: &'e Expr, out: &mut Vec<&'e Expr>) {
    expr.walk(&mut |e| {
        if matches!(e.kind, ExprKind::Connection { .. }) {
            out.push(e);
        }
    });
}

fn block_connection_refs<'e>(block: &'e Block, out: &mut Vec<&'e Expr>) {
    block.walk(&mut |statement| {
        for expr in statement.expressions() {
            connection_refs(expr, out);
        }
    });
}

impl<'a, 'p> Checker<'a, 'p> {
    pub(super) fn check_accounts(&mut self, accounts: &Accounts<'p>) {
        let symbols = self.symbols;
        for secret in &symbols.secret_order {
            if std::ptr::eq(*secret, symbols.secrets[secret.name.as_str()]) {
                self.per_account_secret(accounts, secret);
            }
        }
        for client in &symbols.client_order {
            if std::ptr::eq(*client, symbols.clients[client.name.as_str()]) {
                self.per_account_client(client);
            }
        }
        for service in &symbols.service_order {
            for endpoint in &service.endpoints {
                self.account_endpoint(accounts, service, endpoint);
            }
            for action in &service.actions {
                self.account_action(accounts, service, action);
            }
        }
        for schedule in &symbols.schedule_order {
            self.account_schedule(accounts, schedule);
        }
    }

    fn per_account_secret(&mut self, accounts: &Accounts<'p>, secret: &'p SecretDecl) {
        if let Some(refresher) = &secret.refreshed_by {
            let runs = &refresher.endpoint;
            if let Some(clients) =
                accounts.clients_of(runs.service.as_str(), runs.endpoint.as_str())
            {
                let own = accounts.client_of_secret(secret.name.as_str());
                let fits = if secret.per_account {
                    // Of no client: reported below.
                    own.is_none_or(|c| clients.is_empty() || clients.contains(c))
                } else {
                    false
                };
                if !fits {
                    let clients: Vec<String> = clients.iter().map(|c| format!("`{c}`")).collect();
                    self.push(
                        Diagnostic::new(
                            Code::OutsideConnection,
                            format!(
                                "a read of `{}` has no connection to run `{}` for",
                                secret.name.text,
                                runs.display()
                            ),
                        )
                        .label(
                            runs.span,
                            format!("runs for a connection of {}", clients.join(", ")),
                        )
                        .label(
                            secret.name.span,
                            "not a `per_account` secret of that client",
                        )
                        .help(format!(
                            "refresh `{}` with an endpoint that reads and updates no per-account \
                             secret, or declare it `per_account` and store it in that client",
                            secret.name.text
                        )),
                    );
                }
            }
        }
        if !secret.per_account {
            return;
        }
        if let Some(locked) = secret.locked {
            self.push(
                Diagnostic::new(
                    Code::PerAccountLocked,
                    format!("`{}` is both `per_account` and `locked`", secret.name.text),
                )
                .label(locked, "no run could update it")
                .label(secret.name.span, "one value per connection")
                .help(
                    "a per-account value is stored by each account's consent and its refreshes, \
                     never by a person with `svc secret set`: remove `locked`",
                )
                .fix(self.layout.remove_word(
                    locked,
                    format!("Unlock `{}`", secret.name.text),
                    // Who may update it changes: a person decides.
                    false,
                )),
            );
        }
        if accounts.client_of_secret(secret.name.as_str()).is_some() {
            return;
        }
        let symbols = self.symbols;
        let stored_by = symbols
            .client_order
            .iter()
            .find(|c| c.stores_secret(secret.name.as_str()));
        let diagnostic = match stored_by {
            Some(client) => Diagnostic::new(
                Code::NotStoredPerAccount,
                format!(
                    "`{}` is `per_account`, but oauth_client `{}` is not",
                    secret.name.text, client.name.text
                ),
            )
            .label(secret.name.span, "one value per connection")
            .label(client.name.span, "one connection")
            .help(format!(
                "add `per_account` to oauth_client `{}`, or remove it from `secret {}`",
                client.name.text, secret.name.text
            )),
            None => Diagnostic::new(
                Code::NotStoredPerAccount,
                format!(
                    "no `per_account` oauth_client stores `{}`",
                    secret.name.text
                ),
            )
            .label(secret.name.span, "one value per connection, of no client")
            .help(format!(
                "a connection belongs to a client: store `{}` in the `stores` of a `per_account` \
                 oauth_client, or remove `per_account`",
                secret.name.text
            )),
        };
        self.push(diagnostic);
    }

    fn per_account_client(&mut self, client: &'p OAuthClientDecl) {
        let symbols = self.symbols;
        if client.per_account
            && let Some(stores) = &client.stores
        {
            for store in &stores.entries {
                let Some(secret) = symbols.secrets.get(store.secret.as_str()) else {
                    continue;
                };
                if secret.per_account {
                    continue;
                }
                self.push(
                    Diagnostic::new(
                        Code::StoreNotPerAccount,
                        format!(
                            "`{}` is stored by `per_account` oauth_client `{}`, but is not `per_account`",
                            store.secret.text, client.name.text
                        ),
                    )
                    .label(store.secret.span, "one value per connection")
                    .label(secret.name.span, "declared with one value")
                    .help(format!(
                        "add `per_account` to `secret {}`",
                        store.secret.text
                    ))
                    .fix(self.layout.add_word(
                        secret.span,
                        "per_account",
                        format!("Make `{}` per-account", store.secret.text),
                        // Where its value is kept changes: a person decides.
                        false,
                    )),
                );
            }
        }
        for url in &client.return_to {
            self.return_to(url);
        }
        if !client.per_account
            && let Some(first) = client.return_to.first()
        {
            let last = client.return_to.last().map_or(first.span, |l| l.span);
            self.push(
                Diagnostic::new(
                    Code::MissingProperty,
                    format!(
                        "`return_to` of oauth_client `{}` needs `per_account`",
                        client.name.text
                    ),
                )
                .label(first.span.to(last), "where a hosted consent returns")
                .help(
                    "only a `per_account` client has hosted consent links: add `per_account`, or \
                     remove `return_to`",
                ),
            );
        }
    }

    /// A `return_to` URL: https, or http to loopback; an origin and a path
    /// prefix, with no query or fragment.
    fn return_to(&mut self, url: &PlainString) {
        if let Err(problem) = values::url(&url.value, true) {
            self.push(
                Diagnostic::new(Code::InvalidUrl, "invalid URL in `return_to`")
                    .label(url.span, problem)
                    .help("write a full URL such as `\"https://app.example.com/settings\"`"),
            );
            return;
        }
        let problem = if values::is_plain_http_off_loopback(&url.value) {
            Some("plain http to a host that is not loopback")
        } else {
            match url::Url::parse(&url.value) {
                Ok(parsed) if parsed.fragment().is_some() => Some("has a fragment (`#...`)"),
                Ok(parsed) if parsed.query().is_some() => Some("has a query (`?...`)"),
                _ => None,
            }
        };
        if let Some(problem) = problem {
            self.push(
                Diagnostic::new(
                    Code::InvalidReturnTo,
                    format!("`{}` cannot be a `return_to`", url.value),
                )
                .label(url.span, problem)
                .help(
                    "a `return_to` is an origin and a path prefix: `https://` (plain `http://` only \
                     to 127.0.0.1, ::1 or localhost), with no query or fragment",
                ),
            );
        }
    }

    fn account_endpoint(
        &mut self,
        accounts: &Accounts<'p>,
        service: &'p ServiceDecl,
        endpoint: &'p EndpointDecl,
    ) {
        for param in endpoint.params.iter().flatten() {
            if param.name.as_str() == RESERVED_PARAM {
                self.push(
                    Diagnostic::new(
                        Code::ReservedParam,
                        format!("`{RESERVED_PARAM}` cannot be a parameter"),
                    )
                    .label(param.name.span, "reserved by `svc serve`")
                    .help(
                        "`?connection=ID` names the connection a per-account endpoint runs for: \
                         give the parameter another name",
                    ),
                );
            }
        }
        let key = (service.name.as_str(), endpoint.name.as_str());
        let per_account = accounts.reach_of(key.0, key.1);
        if let Some(reach) = per_account
            && reach.clients.len() > 1
        {
            let names: Vec<String> = reach.clients.iter().map(|c| format!("`{c}`")).collect();
            let secrets: Vec<String> = reach.secrets.iter().map(|c| format!("`{c}`")).collect();
            self.push(
                Diagnostic::new(
                    Code::TwoClients,
                    format!(
                        "`{}.{}` reaches the per-account secrets of {}",
                        service.name.text,
                        endpoint.name.text,
                        names.join(" and ")
                    ),
                )
                .label(
                    endpoint.name.span,
                    format!("reaches {}", secrets.join(", ")),
                )
                .help(
                    "a connection id names a connection of one client: split the endpoint, or \
                     run the other client's endpoint with `for_connection EXPR`",
                ),
            );
        }
        let mut refs = Vec::new();
        for hook in [&endpoint.on_failure, &endpoint.on_recovery]
            .into_iter()
            .flatten()
        {
            self.needless_connections(accounts, &hook.body);
            block_connection_refs(&hook.body, &mut refs);
        }
        if let Some(response) = &endpoint.response {
            for expr in response.expressions() {
                connection_refs(expr, &mut refs);
            }
        }
        if per_account.is_none() {
            let place = format!("`{}.{}`", service.name.text, endpoint.name.text);
            for expr in refs {
                self.connection_outside(expr, &place);
            }
        }
    }

    fn account_action(
        &mut self,
        accounts: &Accounts<'p>,
        service: &'p ServiceDecl,
        action: &'p ActionDecl,
    ) {
        self.needless_connections(accounts, &action.body);
        let mut refs = Vec::new();
        block_connection_refs(&action.body, &mut refs);
        if refs.is_empty() {
            return;
        }
        let Some(table) = self.symbols.services.get(service.name.as_str()) else {
            return;
        };
        let outside: Vec<&EndpointDecl> = table
            .endpoints_processing(action.name.as_str())
            .iter()
            .copied()
            .filter(|e| !accounts.is_per_account(service.name.as_str(), e.name.as_str()))
            .collect();
        if let Some(endpoint) = outside.first() {
            let place = format!(
                "`{}.{}`, which processes `{}`,",
                service.name.text, endpoint.name.text, action.name.text
            );
            for expr in refs {
                self.connection_outside(expr, &place);
            }
        }
    }

    /// `run_service ... for_connection` of an endpoint with no connection.
    fn needless_connections(&mut self, accounts: &Accounts<'p>, block: &'p Block) {
        block.walk(&mut |statement| {
            let StatementKind::RunService {
                endpoint: target,
                for_connection: Some(connection),
                ..
            } = &statement.kind
            else {
                return;
            };
            let known = self
                .symbols
                .endpoint(target.service.as_str(), target.endpoint.as_str())
                .is_some();
            if known && !accounts.is_per_account(target.service.as_str(), target.endpoint.as_str())
            {
                self.diagnostics.push(
                    Diagnostic::new(
                        Code::NeedlessConnection,
                        format!("`{}` does not run for a connection", target.display()),
                    )
                    .label(
                        connection.span,
                        "a connection for an endpoint that has none",
                    )
                    .label(target.span, "reads and updates no per-account secret")
                    .help("remove `for_connection EXPR`"),
                );
            }
        });
    }

    fn connection_outside(&mut self, expr: &Expr, place: &str) {
        self.push(
            Diagnostic::new(
                Code::UnknownConnectionField,
                format!("{place} does not run for a connection"),
            )
            .label(expr.span, "no connection here")
            .help(
                "`connection.id` and `connection.tags.KEY` are in scope in an endpoint that reads \
                 or updates a `per_account` secret, and in a `for_each_connection` schedule's hooks",
            ),
        );
    }

    fn account_schedule(&mut self, accounts: &Accounts<'p>, schedule: &'p ScheduleDecl) {
        let symbols = self.symbols;
        if let Some(concurrency) = &schedule.concurrency {
            if !(1..=MAX_CONCURRENCY).contains(&concurrency.value) {
                self.push(
                    Diagnostic::new(
                        Code::InvalidConcurrency,
                        format!("`concurrency {}` is out of range", concurrency.value),
                    )
                    .label(concurrency.span, format!("between 1 and {MAX_CONCURRENCY}"))
                    .help("write how many connections may run at once, such as `concurrency 16`"),
                );
            }
            if schedule.for_each_connection.is_none() {
                self.push(
                    Diagnostic::new(
                        Code::MissingProperty,
                        "`concurrency` needs `for_each_connection`",
                    )
                    .label(concurrency.span, "how many connections run at once")
                    .help("add `for_each_connection CLIENT`, or remove `concurrency`"),
                );
            }
        }
        let runs = schedule.endpoint.as_ref().filter(|e| {
            symbols
                .endpoint(e.service.as_str(), e.endpoint.as_str())
                .is_some()
        });
        match &schedule.for_each_connection {
            Some(name) => {
                let Some(client) = symbols.clients.get(name.as_str()) else {
                    // Unknown: reported with the schedule.
                    return;
                };
                if !client.per_account {
                    self.push(
                        Diagnostic::new(
                            Code::InvalidForEachConnection,
                            format!("oauth_client `{}` is not `per_account`", name.text),
                        )
                        .label(name.span, "has one connection")
                        .label(client.name.span, "declared without `per_account`")
                        .help(format!(
                            "add `per_account` to oauth_client `{}`, or remove \
                             `for_each_connection`",
                            name.text
                        )),
                    );
                    return;
                }
                let Some(runs) = runs else {
                    return;
                };
                match accounts.clients_of(runs.service.as_str(), runs.endpoint.as_str()) {
                    None => self.push(
                        Diagnostic::new(
                            Code::InvalidForEachConnection,
                            format!("`{}` does not run for a connection", runs.display()),
                        )
                        .label(runs.span, "reads and updates no per-account secret")
                        .label(
                            name.span,
                            format!("runs once per connection of `{}`", name.text),
                        )
                        .help(format!(
                            "run an endpoint that uses the secrets `{}` stores, or remove \
                             `for_each_connection`",
                            name.text
                        )),
                    ),
                    Some(clients) if !clients.contains(name.as_str()) => {
                        let names: Vec<String> = clients.iter().map(|c| format!("`{c}`")).collect();
                        self.push(
                            Diagnostic::new(
                                Code::InvalidForEachConnection,
                                format!(
                                    "`{}` runs for a connection of {}, not of `{}`",
                                    runs.display(),
                                    names.join(", "),
                                    name.text
                                ),
                            )
                            .label(name.span, "another client")
                            .label(runs.span, "a per-account endpoint of another client")
                            .help(format!(
                                "write `for_each_connection {}`",
                                clients.iter().next().copied().unwrap_or_default()
                            )),
                        )
                    }
                    Some(_) => {}
                }
            }
            None => {
                if let Some(runs) = runs
                    && let Some(reach) =
                        accounts.reach_of(runs.service.as_str(), runs.endpoint.as_str())
                    && let Some(secret) = reach.secrets.first()
                {
                    self.push(
                        Diagnostic::new(
                            Code::OutsideConnection,
                            format!(
                                "schedule `{}` has no connection to run `{}` for",
                                schedule.name.text,
                                runs.display()
                            ),
                        )
                        .label(runs.span, format!("reaches the per-account `{secret}`"))
                        .help(format!(
                            "add `for_each_connection {}`: the endpoint then runs once per \
                             connection",
                            accounts.client_of_secret(secret).unwrap_or("CLIENT")
                        )),
                    );
                }
                if let Some(before) = &schedule.before_expiry
                    && symbols
                        .secrets
                        .get(before.secret.as_str())
                        .is_some_and(|s| s.per_account)
                {
                    self.push(
                        Diagnostic::new(
                            Code::OutsideConnection,
                            format!(
                                "`{}` expires per connection; schedule `{}` runs for none",
                                before.secret.text, schedule.name.text
                            ),
                        )
                        .label(before.secret.span, "a per-account secret")
                        .help(format!(
                            "add `for_each_connection {}`: `before_expiry` then works per connection",
                            accounts
                                .client_of_secret(before.secret.as_str())
                                .unwrap_or("CLIENT")
                        )),
                    );
                }
                self.schedule_hooks_outside(accounts, schedule);
            }
        }
    }

    /// The hooks of a schedule that runs for no connection: no
    /// `connection.FIELD`, no per-account endpoint run without one.
    fn schedule_hooks_outside(&mut self, accounts: &Accounts<'p>, schedule: &'p ScheduleDecl) {
        for hook in [&schedule.on_failure, &schedule.on_recovery]
            .into_iter()
            .flatten()
        {
            self.needless_connections(accounts, &hook.body);
            let mut refs = Vec::new();
            block_connection_refs(&hook.body, &mut refs);
            let place = format!("a hook of schedule `{}`", schedule.name.text);
            for expr in refs {
                self.connection_outside(expr, &place);
            }
            let mut outside = Vec::new();
            hook.body.walk(&mut |statement| {
                if let StatementKind::RunService {
                    endpoint: target,
                    for_connection: None,
                    ..
                } = &statement.kind
                    && accounts.is_per_account(target.service.as_str(), target.endpoint.as_str())
                {
                    outside.push((statement.span, target));
                }
            });
            for (span, target) in outside {
                self.push(
                    Diagnostic::new(
                        Code::OutsideConnection,
                        format!(
                            "a hook of schedule `{}` has no connection to run `{}` for",
                            schedule.name.text,
                            target.display()
                        ),
                    )
                    .label(span, "a per-account endpoint, run without a connection")
                    .help("name one: `run_service SERVICE.ENDPOINT for_connection EXPR`"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::source::{FileId, NoTexts};

    const PROGRAM: &str = r#"secret ID { environment_specific }
secret RT { per_account }
oauth_client app { token_url "https://idp.example.com/t" client_id secret.ID client_auth none per_account stores { refresh_token = RT } }
service api {
  action refresh { update_secret RT = "x" }
  action inner { run_service api.refresh }
  action outer { run_service api.refresh for_connection "acme" }
  action plain { log secret.ID }
  endpoint refresh { process refresh }
  endpoint inner { process inner }
  endpoint outer { process outer }
  endpoint plain { process plain }
}
"#;

    #[test]
    fn an_endpoint_is_per_account_through_what_it_runs_without_naming_a_connection() {
        let (program, diagnostics) = crate::syntax::parse_file(FileId(0), PROGRAM);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let analysis = crate::check::check(&program, &NoTexts);
        let per_account: Vec<(&str, &str)> = analysis
            .per_account
            .iter()
            .map(|(e, c)| (e.as_str(), c.as_str()))
            .collect();
        assert_eq!(
            per_account,
            [("api.inner", "app"), ("api.refresh", "app")],
            "{:?}",
            analysis.diagnostics
        );
        // The effects model keeps both views: `outer` runs what updates
        // `RT`, but not in a connection of its own.
        let outer = &analysis.effects["api.outer"];
        assert!(outer.writes.contains("RT"));
        assert!(!outer.in_connection.contains("RT"));
        assert!(analysis.effects["api.inner"].in_connection.contains("RT"));
    }
}
