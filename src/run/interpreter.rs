//! The interpreter: runs an endpoint's action statement by statement.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::Utc;

use super::engine::{Engine, MAX_CALL_DEPTH, Replay};
use super::error::{ErrorKind, RunError};
use super::value::Value;
use crate::backend::record::{Event, Shown, Trigger};
use crate::backend::{Change, Changed, ConnectionKey, Held, LockFailure};
use crate::check::functions::Function;
use crate::program::Script;
use crate::redact::{Origin, Redactor};
use crate::secrets::{self, Document, Identities, SecretValue};
use crate::syntax::ast::*;

type Step<'a> = Pin<Box<dyn Future<Output = Result<(), RunError>> + Send + 'a>>;

/// An endpoint's run: its variables at the end, shown as they may be, and
/// how it ended.
type EndpointRun<'a> = Pin<
    Box<
        dyn Future<Output = (BTreeMap<String, Shown>, Result<Option<Answer>, RunError>)>
            + Send
            + 'a,
    >,
>;

/// What an endpoint with a declared `response` answers.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// As the caller gets it: the secrets it `reveals` are in clear.
    pub body: serde_json::Value,
    /// As records and logs keep it: every secret masked.
    pub recorded: serde_json::Value,
}

/// The state of one run.
pub(super) struct Run<'e> {
    pub(super) engine: &'e Engine,
    pub(super) dry_run: bool,
    pub(super) trigger: Trigger,
    pub(super) trace: super::trace::Trace,
    pub(super) redactor: Redactor,
    /// The store, decrypted on first use, after the run lock was taken.
    pub(super) document: Option<Arc<Document>>,
    /// Endpoints whose run lock this run holds.
    pub(super) held: Vec<(String, Box<dyn Held>)>,
    /// The run's id, known from its start: the journal files its answers by it.
    pub(super) run_id: String,
    /// The endpoint the run was asked for, as `SERVICE.ENDPOINT`.
    pub(super) endpoint_key: String,
    /// The call depth of that endpoint: 0, or deeper for a hook's
    /// `run_service` of an endpoint that updates secrets, which runs as a
    /// run of its own ([`Run::enter_own_run`]).
    pub(super) root_depth: usize,
    /// The statuses of the answers this run kept in the recovery journal.
    pub(super) journaled: Vec<u16>,
    /// The kept answers a replay uses instead of sending requests again.
    pub(super) replay: Option<Replay>,
    /// The connection a per-account run runs for: its `secret.X` of a
    /// per-account secret is this connection's value.
    pub(super) account: Option<Account>,
    /// Discovery documents fetched by this run, by issuer.
    pub(super) discovered: crate::oauth::client::Discovered,
    /// A `break` ran: blocks return until the innermost loop takes it.
    pub(super) breaking: bool,
    /// In a hook: the id and endpoint of the run it reports on (`run.*`).
    pub(super) subject: Option<(String, String)>,
    /// Who the run runs as, and with which parameters: the journal keeps
    /// them with each answer, for a replay that settles it.
    pub(super) identity: String,
    pub(super) params: BTreeMap<String, serde_json::Value>,
    /// The versions of the secrets the run's endpoint may update, as read
    /// under its lock: what its writes expect to replace, and what the
    /// journal keeps with each answer.
    pub(super) based_on: BTreeMap<String, u64>,
    /// The endpoints whose journal this run settled (`run::settle`).
    pub(super) settled: Vec<String>,
    /// Requests that presented a secret so far: the journal numbers their
    /// answers by it.
    pub(super) sends: u32,
    /// Replaying another run's kept answers to settle them (`run::settle`),
    /// which forgets them itself.
    pub(super) settling: bool,
    /// The run forgot its kept answers (and older ones of its endpoint)
    /// while it held its lock: nothing is left to forget at its end.
    pub(super) journal_settled: bool,
    /// The accounts `for_connection` named for callees that refresh them:
    /// their state follows the run's end too.
    pub(super) named_accounts: Vec<ConnectionKey>,
    /// When the last answer to a request came (a replayed one: when it
    /// came then): the time an `expires_in` counts from.
    pub(super) answered_at: Option<chrono::DateTime<Utc>>,
    /// When the refresh token expires, as the last answer to a request
    /// that sent a secret said (`refresh_token_expires_in`, or
    /// Microsoft's `x_refresh_token_expires_in`): for the connection.
    pub(super) refresh_token_expires_at: Option<chrono::DateTime<Utc>>,
}

/// The connection a per-account run runs for.
#[derive(Debug, Clone)]
pub(super) struct Account {
    pub(super) key: ConnectionKey,
    pub(super) tags: BTreeMap<String, String>,
}

/// The most items a `foreach` goes over, as `while` is bounded by its `max`.
const MAX_FOREACH_ITEMS: usize = 10_000;

/// The longest string an expression makes, in bytes: as long as the longest
/// answer a request reads, so a string doubled in a loop stops here.
const MAX_TEXT: usize = crate::net::http::MAX_BODY;

/// The variables of one endpoint's run.
pub(super) struct Frame<'e> {
    pub(super) service: &'e ServiceDecl,
    pub(super) identity: &'e IdentityDecl,
    pub(super) endpoint: String,
    pub(super) vars: HashMap<&'e str, Value>,
    pub(super) params: std::borrow::Cow<'e, BTreeMap<String, serde_json::Value>>,
    /// The declared parameters of the endpoint, if it declares them.
    pub(super) contract: Option<&'e [ParamDecl]>,
    /// The error a `catch` block is handling.
    pub(super) error: Option<RunError>,
    pub(super) depth: usize,
    pub(super) sensitive: BTreeSet<String>,
    /// The secrets each variable may be made from, as the checker found.
    pub(super) derived: &'e BTreeMap<String, BTreeSet<String>>,
}

impl<'e> Frame<'e> {
    /// A fresh frame: every variable of the service null, no error, no contract.
    fn new(
        script: &'e Script,
        service: &'e ServiceDecl,
        identity: &'e IdentityDecl,
        endpoint: String,
        params: std::borrow::Cow<'e, BTreeMap<String, serde_json::Value>>,
        depth: usize,
    ) -> Frame<'e> {
        Frame {
            service,
            identity,
            endpoint,
            vars: service
                .vars
                .iter()
                .map(|v| (v.name.as_str(), Value::Null))
                .collect(),
            params,
            contract: None,
            error: None,
            depth,
            sensitive: script
                .checked
                .analysis
                .sensitive
                .get(&service.name.text)
                .cloned()
                .unwrap_or_default(),
            derived: script
                .checked
                .analysis
                .derived
                .get(&service.name.text)
                .unwrap_or(&NOTHING_DERIVED),
        }
    }

    pub(super) fn is_sensitive(&self, var: &str) -> bool {
        self.sensitive.contains(var)
    }
}

static NOTHING_DERIVED: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();

impl<'e> Run<'e> {
    pub(super) fn script(&self) -> &'e Script {
        &self.engine.script
    }

    /// Runs one endpoint; returns its variables, shown as they may be.
    pub(super) fn endpoint<'a>(
        &'a mut self,
        service: &'a str,
        endpoint: &'a str,
        identity: &'e IdentityDecl,
        params: std::borrow::Cow<'e, BTreeMap<String, serde_json::Value>>,
        depth: usize,
    ) -> EndpointRun<'a> {
        Box::pin(async move {
            let script = self.script();
            let (Some(service_decl), Some(action)) = (
                script.service(service),
                script.endpoint_action(service, endpoint),
            ) else {
                let error = RunError::new(
                    ErrorKind::Limit,
                    format!("`{service}.{endpoint}` cannot run"),
                );
                return (BTreeMap::new(), Err(error));
            };
            let key = format!("{service}.{endpoint}");
            let endpoint_decl = script.endpoint(service, endpoint);
            let mut frame = Frame {
                contract: endpoint_decl.and_then(|e| e.params.as_deref()),
                ..Frame::new(script, service_decl, identity, key.clone(), params, depth)
            };
            let lock_key = self.lock_key(&key);
            let locked = match self.lock_endpoint(&lock_key, service, endpoint).await {
                Ok(locked) => locked,
                Err(error) => return (BTreeMap::new(), Err(error)),
            };
            let mut result = match self.admitted_under_lock(&key, &lock_key).await {
                Ok(()) => self.block(&mut frame, &action.body).await.map(|()| None),
                Err(error) => Err(error),
            };
            if let (Ok(_), Some(response)) =
                (&result, endpoint_decl.and_then(|e| e.response.as_ref()))
            {
                // A response that reveals secrets shows their stored values.
                let loaded = if self.document.is_none()
                    && (reads_secret(response.expressions()) || !response.reveals.is_empty())
                {
                    self.load_document().await.map_err(|e| e.at(response.span))
                } else {
                    Ok(())
                };
                result = loaded.and_then(|()| self.respond(&mut frame, response).map(Some));
            }
            // The answers a successful run kept go while it still holds the
            // lock: the next run must not find them and take them for
            // unsettled ones.
            if result.is_ok()
                && depth == self.root_depth
                && !self.settling
                && !self.dry_run
                && !self.held.is_empty()
            {
                match self
                    .engine
                    .backend
                    .journal
                    .settled(&self.journal_key(), &self.run_id)
                    .await
                {
                    Ok(_) => self.journal_settled = true,
                    Err(e) => tracing::warn!("cannot prune the recovery journal: {e}"),
                }
            }
            if locked {
                self.held.retain(|(k, _)| *k != lock_key);
            }
            let variables = frame
                .vars
                .iter()
                .map(|(name, value)| (name.to_string(), self.show(&frame, name, value)))
                .collect();
            (variables, result)
        })
    }

    /// Runs a hook's statements in `service`, as `identity`, with the error
    /// of the run it reports on (after a failure) in scope.
    pub(super) async fn hook(
        &mut self,
        service: &'e ServiceDecl,
        identity: &'e IdentityDecl,
        params: &'e BTreeMap<String, serde_json::Value>,
        body: &'e Block,
        error: Option<RunError>,
    ) -> Result<(), RunError> {
        let script = self.script();
        let endpoint = self.endpoint_key.clone();
        let mut frame = Frame {
            error,
            ..Frame::new(
                script,
                service,
                identity,
                endpoint,
                std::borrow::Cow::Borrowed(params),
                0,
            )
        };
        self.block(&mut frame, body).await
    }

    /// The run key of an endpoint in this run: its own for a per-account
    /// endpoint run for a connection (each account has its own lock and
    /// journal), else the endpoint's.
    pub(super) fn lock_key(&self, key: &str) -> String {
        match &self.account {
            Some(account) if self.engine.per_account_client(key).is_some() => {
                crate::backend::run_key::join(key, Some(&account.key.connection_id))
            }
            _ => key.to_string(),
        }
    }

    /// The key this run's journaled answers are filed under.
    pub(super) fn journal_key(&self) -> String {
        crate::backend::run_key::join(
            &self.endpoint_key,
            self.account.as_ref().map(|a| a.key.connection_id.as_str()),
        )
    }

    /// Takes the run lock of an endpoint that can update secrets, so two
    /// runs never spend the same refresh token. Returns whether it took it.
    pub(super) async fn lock_endpoint(
        &mut self,
        key: &str,
        service: &str,
        endpoint: &str,
    ) -> Result<bool, RunError> {
        if self.dry_run
            || self.held.iter().any(|(k, _)| k == key)
            || !self.engine.updates_secrets(service, endpoint)
        {
            return Ok(false);
        }
        let timeout = self.engine.lock_timeout;
        match self.engine.backend.locks.run_lock(key, timeout).await {
            Ok(lock) => {
                self.held.push((key.to_string(), lock));
                // Anything read before the lock may be stale now: a rotated
                // refresh token is read again under it.
                self.document = None;
                Ok(true)
            }
            Err(LockFailure::TimedOut) => Err(RunError::new(
                ErrorKind::Store {
                    code: "svc::run::lock_timeout",
                },
                format!(
                    "another run of `{key}` in `{}` did not finish within {}",
                    self.engine.env(),
                    crate::syntax::duration::format(timeout)
                ),
            )
            .help("wait for it, or raise `--lock-timeout`")),
            Err(LockFailure::Failed(error)) => Err(store_failure(&error)),
        }
    }

    /// What a run of an endpoint that updates secrets does once it holds
    /// the lock, before its first statement: settles the recovery journal
    /// (`run::settle`), and, for the endpoint the run was asked for, notes
    /// the versions of the secrets it may replace.
    async fn admitted_under_lock(&mut self, key: &str, lock_key: &str) -> Result<(), RunError> {
        if self.dry_run || !self.engine.updates_secrets_key(key) {
            return Ok(());
        }
        self.settle_journal_before(lock_key).await?;
        if key == self.endpoint_key && self.based_on.is_empty() && self.replay.is_none() {
            self.load_document().await?;
            let document = self.document()?;
            let updates = self
                .engine
                .secrets_updated(key)
                .cloned()
                .unwrap_or_default();
            self.based_on = updates
                .into_iter()
                .map(|name| {
                    let version = document.get(&name).map_or(0, |e| e.version);
                    (name, version)
                })
                .collect();
        }
        Ok(())
    }

    pub(super) fn block<'a>(&'a mut self, frame: &'a mut Frame<'e>, block: &'e Block) -> Step<'a> {
        Box::pin(async move {
            for statement in &block.statements {
                if self.redactor.is_full() {
                    return Err(RunError::new(
                        ErrorKind::Limit,
                        format!(
                            "the run has seen more than {} MiB of secret values (in every form it may send them)",
                            crate::redact::MAX_LEARNED >> 20
                        ),
                    )
                    .at(statement.span)
                    .help("see \"Bounds of a run\" in docs/run.md"));
                }
                self.statement(frame, statement)
                    .await
                    .map_err(|e| e.at(statement.span))?;
                if self.breaking {
                    break;
                }
            }
            Ok(())
        })
    }

    pub(super) fn statement<'a>(
        &'a mut self,
        frame: &'a mut Frame<'e>,
        statement: &'e Statement,
    ) -> Step<'a> {
        Box::pin(async move {
            let depth = frame.depth;
            if self.document.is_none() && reads_a_secret(statement) {
                self.load_document()
                    .await
                    .map_err(|e| e.at(statement.span))?;
            }
            match &statement.kind {
                StatementKind::UpdateVariables { assignments } => {
                    for assignment in assignments {
                        let value = self
                            .eval(frame, &assignment.value)
                            .map_err(|e| e.at(assignment.value.span))?;
                        self.assign(frame, &assignment.target, value, assignment.span)?;
                    }
                    Ok(())
                }
                StatementKind::WebRequest(request) => self.web_request(frame, request).await,
                // Written out by `providers::fill`: its request and updates.
                StatementKind::TokenGrant(grant) => self.block(frame, &grant.steps).await,
                StatementKind::If(if_statement) => {
                    let taken = self.condition(frame, &if_statement.condition)?;
                    let condition = self.source_text(if_statement.condition.span);
                    self.trace.push(Event::Branch {
                        depth,
                        condition,
                        taken,
                    });
                    if taken {
                        self.block(frame, &if_statement.then_block).await
                    } else if let Some(else_block) = &if_statement.else_block {
                        self.block(frame, else_block).await
                    } else {
                        Ok(())
                    }
                }
                StatementKind::UpdateSecrets { updates, .. } => {
                    self.update_secrets(frame, updates).await
                }
                // `for_connection`: the connections runtime of issue 23.
                StatementKind::RunService {
                    endpoint,
                    args,
                    for_connection,
                    as_account,
                    into,
                } => {
                    let account = match for_connection {
                        Some(expr) => Some(self.named_connection(frame, endpoint, expr).await?),
                        None => None,
                    };
                    match account {
                        // The callee runs for the connection named; this
                        // run's own (if any) is back after it.
                        Some(account) => {
                            let key =
                                format!("{}.{}", endpoint.service.text, endpoint.endpoint.text);
                            if self.engine.updates_secrets_key(&key)
                                && !self.named_accounts.contains(&account.key)
                            {
                                self.named_accounts.push(account.key.clone());
                            }
                            let outer = self.account.replace(account);
                            self.document = None;
                            let result = self
                                .run_service(
                                    frame,
                                    endpoint,
                                    args,
                                    as_account.as_ref(),
                                    into.as_ref(),
                                )
                                .await;
                            self.account = outer;
                            self.document = None;
                            result
                        }
                        None => {
                            self.run_service(
                                frame,
                                endpoint,
                                args,
                                as_account.as_ref(),
                                into.as_ref(),
                            )
                            .await
                        }
                    }
                }
                StatementKind::Sleep { duration } => {
                    let wait = duration.value.unwrap_or_default();
                    self.trace.push(Event::Sleep {
                        depth,
                        ms: wait.as_millis() as u64,
                    });
                    if !self.dry_run {
                        tokio::time::sleep(wait).await;
                    }
                    Ok(())
                }
                StatementKind::Log { message } => {
                    let text = self.eval(frame, message)?.to_text();
                    let message = self.redactor.redact(&text);
                    self.trace.push(Event::Log { depth, message });
                    Ok(())
                }
                StatementKind::Throw { code, message } => {
                    let text = self.eval(frame, message)?.to_text();
                    Err(RunError::new(
                        ErrorKind::Thrown {
                            code: code.value.clone(),
                        },
                        self.redactor.redact(&text),
                    ))
                }
                StatementKind::Foreach {
                    item,
                    iterable,
                    body,
                } => {
                    let value = self
                        .eval(frame, iterable)
                        .map_err(|e| e.at(iterable.span))?;
                    let secret = self.origin_in(std::slice::from_ref(&value));
                    let items = match value {
                        // Nothing mapped: nothing to go over.
                        Value::Null | Value::Json(serde_json::Value::Null) => Vec::new(),
                        Value::Json(serde_json::Value::Array(items)) => items,
                        other => {
                            let kind = match &other {
                                Value::Json(json) => super::value::json_kind(json),
                                value => value.kind(),
                            };
                            return Err(RunError::new(
                                ErrorKind::Type,
                                format!("`foreach` goes over a JSON array, not a {kind}"),
                            )
                            .at(iterable.span));
                        }
                    };
                    if items.len() > MAX_FOREACH_ITEMS {
                        return Err(RunError::new(
                            ErrorKind::Limit,
                            format!(
                                "`foreach` over {} items: at most {MAX_FOREACH_ITEMS} are gone over",
                                items.len()
                            ),
                        )
                        .at(iterable.span)
                        .help("ask the API for smaller pages, and loop over the pages with `while`"));
                    }
                    let outer = frame.vars.remove(item.as_str());
                    let mut passes = 0;
                    let mut outcome = Ok(());
                    self.trace.loop_begins();
                    for element in items {
                        self.trace.pass_begins();
                        let element = Value::Json(element);
                        if let Some(origin) = &secret {
                            self.learn_derived(&element, origin);
                        }
                        frame.vars.insert(item.as_str(), element);
                        passes += 1;
                        outcome = self.block(frame, body).await;
                        if outcome.is_err() || std::mem::take(&mut self.breaking) {
                            break;
                        }
                    }
                    frame.vars.remove(item.as_str());
                    if let Some(outer) = outer {
                        frame.vars.insert(item.as_str(), outer);
                    }
                    self.trace.loop_ends();
                    self.trace.push(Event::Loop {
                        depth,
                        kind: "foreach".into(),
                        passes,
                    });
                    outcome
                }
                StatementKind::While {
                    condition,
                    max,
                    body,
                } => {
                    let mut passes: u64 = 0;
                    self.trace.loop_begins();
                    let outcome = loop {
                        match self.condition(frame, condition) {
                            Ok(true) => {}
                            Ok(false) => break Ok(()),
                            Err(e) => break Err(e.at(condition.span)),
                        }
                        if passes == max.value {
                            break Err(RunError::new(
                                ErrorKind::Thrown {
                                    code: "loop_limit".into(),
                                },
                                format!(
                                    "the `while` loop made its {} passes and its condition still holds",
                                    max.value
                                ),
                            )
                            .at(condition.span)
                            .help("raise `max`, or make the condition false sooner; `catch \"loop_limit\"` handles it"));
                        }
                        passes += 1;
                        self.trace.pass_begins();
                        if let Err(e) = self.block(frame, body).await {
                            break Err(e);
                        }
                        if std::mem::take(&mut self.breaking) {
                            break Ok(());
                        }
                    };
                    self.trace.loop_ends();
                    self.trace.push(Event::Loop {
                        depth,
                        kind: "while".into(),
                        passes: passes as usize,
                    });
                    outcome
                }
                StatementKind::Break => {
                    self.breaking = true;
                    Ok(())
                }
                StatementKind::Try { body, catches } => {
                    let error = match self.block(frame, body).await {
                        Ok(()) => return Ok(()),
                        Err(error) if error.catchable() => error,
                        Err(error) => return Err(error),
                    };
                    let Some(catch) = catches.iter().find(|c| catches_error(&c.filter, &error))
                    else {
                        return Err(error);
                    };
                    self.trace.push(Event::Caught {
                        depth,
                        code: error.code(),
                        message: error.message.clone(),
                    });
                    let outer = frame.error.replace(error);
                    let result = self.block(frame, &catch.body).await;
                    frame.error = outer;
                    result
                }
            }
        })
    }

    pub(super) async fn run_service(
        &mut self,
        frame: &mut Frame<'e>,
        target: &'e EndpointRef,
        args: &'e [Field],
        as_account: Option<&'e Name>,
        into: Option<&'e Name>,
    ) -> Result<(), RunError> {
        let script = self.script();
        let identity = match as_account {
            Some(account) => script.identity(account.as_str()).ok_or_else(|| {
                RunError::new(
                    ErrorKind::PermissionDenied,
                    format!("unknown service account `{}`", account.text),
                )
            })?,
            None => frame.identity,
        };
        let key = target.display();
        if !script.can_run(identity, target.service.as_str(), target.endpoint.as_str()) {
            return Err(RunError::new(
                ErrorKind::PermissionDenied,
                format!("`{}` may not run `{key}`", identity.name.text),
            )
            .help(format!(
                "grant `run {key}` to a role of `{}`",
                identity.name.text
            )));
        }
        if frame.depth + 1 >= MAX_CALL_DEPTH {
            return Err(RunError::new(
                ErrorKind::Limit,
                format!("`run_service` calls are nested more than {MAX_CALL_DEPTH} deep"),
            ));
        }
        self.trace.push(Event::RunService {
            depth: frame.depth,
            endpoint: key.clone(),
            identity: identity.name.text.clone(),
        });
        let mut given = BTreeMap::new();
        for arg in args {
            let value = self
                .eval(frame, &arg.value)
                .map_err(|e| e.at(arg.value.span))?;
            given.insert(arg.name.value.clone(), value.to_json());
        }
        let params = match script.endpoint(target.service.as_str(), target.endpoint.as_str()) {
            Some(callee) => super::params::validate(callee, &key, given).map_err(|e| {
                RunError::new(ErrorKind::Type, self.redactor.redact(&e.message)).help(e.help)
            })?,
            None => given,
        };
        let own_run = !self.dry_run
            && !self.engine.updates_secrets_key(&self.endpoint_key)
            && self
                .engine
                .updates_secrets(target.service.as_str(), target.endpoint.as_str());
        let outer = own_run.then(|| self.enter_own_run(target, identity, &params, frame.depth + 1));
        let (_, result) = self
            .endpoint(
                target.service.as_str(),
                target.endpoint.as_str(),
                identity,
                std::borrow::Cow::Owned(params),
                frame.depth + 1,
            )
            .await;
        let answer = match outer {
            Some(outer) => self.leave_own_run(outer, result),
            None => result,
        }?;
        if let Some(into) = into {
            let body = answer.map_or(serde_json::Value::Null, |a| a.body);
            let target_type = frame
                .service
                .vars
                .iter()
                .find(|v| v.name.text == into.text)
                .and_then(|v| Type::from_name(&v.type_name.text))
                .unwrap_or(Type::Json);
            let value = Value::from_json(&body, target_type).map_err(|why| {
                RunError::new(
                    ErrorKind::Mapping,
                    format!(
                        "the response of `{key}` does not fit `{}`: {why}",
                        into.text
                    ),
                )
            })?;
            if frame.is_sensitive(into.as_str()) {
                self.learn_variable(frame, into.as_str(), &value);
            }
            self.trace.push(Event::Assign {
                depth: frame.depth,
                name: into.text.clone(),
                value: self.show(frame, into.as_str(), &value),
            });
            frame.vars.insert(into.as_str(), value);
        }
        Ok(())
    }

    /// A `run_service` of an endpoint that updates secrets from a run whose
    /// own endpoint updates none (a hook's): the callee runs as a run of
    /// its own, with its own id, and the answers it keeps are filed under
    /// its key, identity and parameters. The next run of that endpoint
    /// then settles them, and `svc secret recover --apply` can replay them;
    /// filed under the hook, a rotated refresh token they carry would be
    /// lost, and the spent one sent again. Returns the calling run's state,
    /// for [`Run::leave_own_run`].
    fn enter_own_run(
        &mut self,
        target: &EndpointRef,
        identity: &IdentityDecl,
        params: &BTreeMap<String, serde_json::Value>,
        depth: usize,
    ) -> OwnRun {
        let mut own = OwnRun {
            run_id: super::engine::new_run_id(),
            endpoint_key: target.display(),
            root_depth: depth,
            identity: identity.name.text.clone(),
            params: params.clone(),
            based_on: BTreeMap::new(),
            journaled: Vec::new(),
            sends: 0,
            journal_settled: false,
        };
        own.swap(self);
        self.trace.push(Event::Journal {
            depth,
            message: format!(
                "`{}` runs as run {} of its own",
                self.endpoint_key, self.run_id
            ),
        });
        own
    }

    /// Gives the calling run its state back after a run of its own; a
    /// failure that kept a good answer says how to store it.
    fn leave_own_run(
        &mut self,
        mut outer: OwnRun,
        result: Result<Option<Answer>, RunError>,
    ) -> Result<Option<Answer>, RunError> {
        let key = self.journal_key();
        outer.swap(self);
        let own = outer;
        result.map_err(|mut error| {
            if own.journaled.iter().any(|s| (200..300).contains(s)) {
                self.engine
                    .kept_answer_help(&key, &own.identity, &own.run_id, &mut error);
            }
            error
        })
    }

    /// The response an endpoint declares, from its variables after the run.
    /// The caller's copy shows the secrets it `reveals`; the record's masks
    /// every secret.
    pub(super) fn respond(
        &mut self,
        frame: &mut Frame<'e>,
        response: &'e ResponseDecl,
    ) -> Result<Answer, RunError> {
        let mut body = match &response.body {
            None => serde_json::Value::Null,
            Some(ResponseBody::Expr(expr)) => self
                .eval(frame, expr)
                .map_err(|e| e.at(expr.span))?
                .to_json(),
            Some(ResponseBody::Json { fields, .. }) => {
                let mut object = serde_json::Map::new();
                for field in fields {
                    let value = self
                        .eval(frame, &field.value)
                        .map_err(|e| e.at(field.value.span))?;
                    object.insert(field.name.value.clone(), value.to_json());
                }
                serde_json::Value::Object(object)
            }
        };
        let mut recorded = body.clone();
        self.redactor.redact_json(&mut recorded);
        if response.reveals.is_empty() {
            body = recorded.clone();
        } else {
            // Every value made from a secret it does not reveal is masked,
            // by what the run knows of each value: not by which store, or
            // which version of it, the run happens to hold.
            let revealed: Vec<&str> = response.reveals.iter().map(|r| r.as_str()).collect();
            let stored: Vec<&str> = self
                .document
                .iter()
                .flat_map(|document| {
                    revealed
                        .iter()
                        .filter_map(|name| document.get(name).map(|e| e.value.expose()))
                })
                .collect();
            self.redactor
                .hiding(&revealed, &stored)
                .redact_json(&mut body);
        }
        let status = response
            .status
            .as_ref()
            .map_or(200, |s| u16::try_from(s.value).unwrap_or(200));
        Ok(Answer {
            status,
            body,
            recorded,
        })
    }

    pub(super) async fn update_secrets(
        &mut self,
        frame: &mut Frame<'e>,
        updates: &'e [SecretUpdate],
    ) -> Result<(), RunError> {
        let script = self.script();
        let mut changes: Vec<(
            String,
            SecretValue,
            Option<chrono::DateTime<Utc>>,
            crate::source::Span,
        )> = Vec::new();
        let now = secrets::document::now();
        for update in updates {
            let name = update.secret.as_str();
            let denied = |message: String| {
                RunError::new(ErrorKind::PermissionDenied, message).at(update.span)
            };
            let Some(secret) = script.secret(name) else {
                return Err(denied(format!("secret `{name}` is not declared")));
            };
            if secret.locked.is_some() || !secret.is_environment_specific() {
                return Err(denied(format!(
                    "secret `{name}` may not be updated by a run"
                )));
            }
            if !script.can_update_secret(frame.identity, name) {
                return Err(denied(format!(
                    "`{}` may not update secret `{name}`",
                    frame.identity.name.text
                ))
                .help(format!(
                    "grant `update_secret {name}` to a role of `{}`",
                    frame.identity.name.text
                )));
            }
            let Some(value_expr) = &update.value else {
                return Err(
                    RunError::new(ErrorKind::Type, "the update has no value").at(update.span)
                );
            };
            let value = self
                .eval(frame, value_expr)
                .map_err(|e| e.at(value_expr.span))?;
            if !value.has_value() {
                return Err(RunError::new(
                    ErrorKind::Type,
                    format!("refusing to store an empty or blank value in `{name}`"),
                )
                .at(value_expr.span)
                .help(format!(
                    "guard the update with `if has_value(...)`; `{name}` keeps its value"
                )));
            }
            let text = value.to_text();
            self.redactor.add(&text);
            let expires_at = match &update.expires_in {
                None => None,
                Some(expr) => {
                    let seconds = self.eval(frame, expr).map_err(|e| e.at(expr.span))?;
                    match seconds {
                        v if v.is_null() => None,
                        v => {
                            let seconds = v
                                .as_number()
                                .or_else(|| v.to_text().trim().parse().ok())
                                .filter(|s: &f64| s.is_finite() && *s >= 0.0 && *s < 1e10)
                                .ok_or_else(|| {
                                    RunError::new(
                                        ErrorKind::Type,
                                        format!(
                                            "`expires_in` of `{name}` is not a number of seconds"
                                        ),
                                    )
                                    .at(expr.span)
                                })?;
                            // From when the answer came: a replayed one
                            // came before now, and its token expires sooner.
                            let from = self.answered_at.unwrap_or(now).min(now);
                            Some(from + chrono::Duration::milliseconds((seconds * 1000.0) as i64))
                        }
                    }
                }
            };
            changes.push((
                name.to_string(),
                SecretValue::new(text),
                expires_at,
                update.span,
            ));
        }
        if self.dry_run {
            for (name, _, expires_at, _) in changes {
                self.trace.push(Event::SecretUpdated {
                    depth: frame.depth,
                    name,
                    version: 0,
                    expires_at,
                    dry_run: true,
                });
            }
            return Ok(());
        }
        let keys = self.keys()?;
        let by = format!(
            "{} ({} {})",
            frame.identity.name.text,
            self.trigger.describe(),
            frame.endpoint
        );
        // Under a lock, a write replaces exactly the versions the run read
        // under it: anything else wrote meanwhile, and wins.
        let fenced = !self.held.is_empty();
        if fenced {
            self.load_document().await?;
        }
        let expected = |name: &str| -> Option<u64> {
            let document = self.document.as_ref()?;
            fenced.then(|| document.get(name).map_or(0, |e| e.version))
        };
        let per_account = |name: &str| script.secret(name).is_some_and(|s| s.per_account);
        let mut shared: Vec<Change> = Vec::new();
        let mut own: Vec<Change> = Vec::new();
        for (name, value, expires_at, span) in &changes {
            let change = Change::Set {
                name: name.clone(),
                value: value.clone(),
                expires_at: *expires_at,
                expect: expected(name),
            };
            if !per_account(name) {
                shared.push(change);
            } else if self.account.is_some() {
                own.push(change);
            } else {
                return Err(RunError::new(
                    ErrorKind::PermissionDenied,
                    format!("`{name}` has a value per connected account, and this run has none"),
                )
                .at(*span));
            }
        }
        // One atomic, durable write for the shared secrets of the block,
        // and one for the connection's own, each committed only while
        // every lock of the run is still held.
        let locks: Vec<&dyn Held> = self.held.iter().map(|(_, held)| held.as_ref()).collect();
        let mut changed_shared = Vec::new();
        if !shared.is_empty() {
            let secrets = &self.engine.backend.secrets;
            let (changed, document) = crate::backend::through_outages(|| {
                secrets.apply_fenced(&keys, shared.clone(), &by, now, &locks)
            })
            .await
            .map_err(|e| store_failure(&e))?;
            changed_shared = changed;
            // The new store, or a fresh read at the next secret read.
            self.document = document;
        }
        let mut changed_own = Vec::new();
        if let Some(account) = self.account.as_ref().filter(|_| !own.is_empty()) {
            let accounts = &self.engine.backend.accounts;
            changed_own = crate::backend::through_outages(|| {
                accounts.apply(&keys, &account.key, own.clone(), &by, now, &locks)
            })
            .await
            .map_err(|e| store_failure(&e))?;
        }
        if self.account.is_some() {
            // The run's view of the store mixes both: read it again.
            self.document = None;
        }
        drop(locks);
        let (mut from_shared, mut from_own) = (changed_shared.into_iter(), changed_own.into_iter());
        let changed: Vec<Changed> = changes
            .iter()
            .filter_map(|(name, ..)| {
                if per_account(name) {
                    from_own.next()
                } else {
                    from_shared.next()
                }
            })
            .collect();
        let versions = changed.into_iter().map(|c| match c {
            Changed::Set(version) => version,
            _ => 0,
        });
        for ((name, _, expires_at, _), version) in changes.into_iter().zip(versions) {
            self.trace.push(Event::SecretUpdated {
                depth: frame.depth,
                name,
                version,
                expires_at,
                dry_run: false,
            });
        }
        Ok(())
    }

    pub(super) fn assign(
        &mut self,
        frame: &mut Frame<'e>,
        target: &'e Name,
        value: Value,
        span: crate::source::Span,
    ) -> Result<(), RunError> {
        let name = target.as_str();
        let declared = self
            .script()
            .var_type(&frame.service.name.text, name)
            .unwrap_or(Type::Json);
        let value = value.into_type(declared).map_err(|problem| {
            RunError::new(
                ErrorKind::Type,
                format!("cannot assign to `{name}` ({}): {problem}", declared.name()),
            )
            .at(span)
        })?;
        if frame.is_sensitive(name) {
            self.learn_variable(frame, name, &value);
        }
        let shown = self.show(frame, name, &value);
        frame.vars.insert(name, value);
        self.trace.push(Event::Assign {
            depth: frame.depth,
            name: name.to_string(),
            value: shown,
        });
        Ok(())
    }

    pub(super) fn show(&self, frame: &Frame<'_>, name: &str, value: &Value) -> Shown {
        if frame.is_sensitive(name) && !value.is_null() {
            Shown::redacted(value.to_text().chars().count())
        } else {
            let mut json = value.to_json();
            self.redactor.redact_json(&mut json);
            Shown::Value { value: json }
        }
    }

    pub(super) fn mask(&self, value: &str, sensitive: bool) -> String {
        if sensitive {
            "***".into()
        } else {
            self.redactor.redact(value)
        }
    }

    pub(super) fn condition(
        &mut self,
        frame: &Frame<'e>,
        expr: &'e Expr,
    ) -> Result<bool, RunError> {
        let value = self.eval(frame, expr).map_err(|e| e.at(expr.span))?;
        if value.is_null() {
            return Ok(false);
        }
        value.as_bool().ok_or_else(|| {
            RunError::new(
                ErrorKind::Type,
                format!("the condition is a {}, not a bool", value.kind()),
            )
            .at(expr.span)
        })
    }

    pub(super) fn eval(&mut self, frame: &Frame<'e>, expr: &'e Expr) -> Result<Value, RunError> {
        Ok(match &expr.kind {
            ExprKind::String { parts } => {
                let mut text = String::new();
                for part in parts {
                    match part {
                        StringPart::Text { value } => text.push_str(value),
                        StringPart::Interpolation { expr } => {
                            text.push_str(&self.eval(frame, expr)?.to_text())
                        }
                    }
                    if text.len() > MAX_TEXT {
                        return Err(too_long(expr));
                    }
                }
                Value::String(text)
            }
            ExprKind::Number { value } => Value::Number(*value),
            ExprKind::Duration { millis } => Value::Duration(
                chrono::TimeDelta::try_milliseconds(i64::try_from(*millis).unwrap_or(i64::MAX))
                    .unwrap_or(chrono::TimeDelta::MAX),
            ),
            ExprKind::Bool { value } => Value::Bool(*value),
            ExprKind::Null => Value::Null,
            ExprKind::Variable { name } => frame
                .vars
                .get(name.as_str())
                .cloned()
                .unwrap_or(Value::Null),
            ExprKind::Secret { name } => {
                let document = self.document().map_err(|e| e.at(expr.span))?;
                match document.get(name.as_str()) {
                    Some(entry) => Value::String(entry.value.expose().to_string()),
                    None => Value::Null,
                }
            }
            ExprKind::Param { name }
                if let Some(declared) = frame
                    .contract
                    .and_then(|c| c.iter().find(|p| p.name.text == name.text))
                    .and_then(|p| p.param_type()) =>
            {
                match frame.params.get(name.as_str()) {
                    None | Some(serde_json::Value::Null) => Value::Null,
                    Some(value) => {
                        Value::from_json(value, declared.value_type()).map_err(|why| {
                            RunError::new(
                                ErrorKind::Type,
                                format!(
                                    "parameter `{}` is {why}, not a {}",
                                    name.text,
                                    declared.name()
                                ),
                            )
                            .at(expr.span)
                        })?
                    }
                }
            }
            ExprKind::Param { name } => match frame.params.get(name.as_str()) {
                None | Some(serde_json::Value::Null) => Value::Null,
                Some(serde_json::Value::String(s)) => Value::String(s.clone()),
                Some(other) => Value::Json(other.clone()),
            },
            ExprKind::Run { field } => {
                let (id, endpoint) = match &self.subject {
                    Some((id, endpoint)) => (id.as_str(), endpoint.as_str()),
                    None => (self.run_id.as_str(), self.endpoint_key.as_str()),
                };
                match field.as_str() {
                    "id" => Value::String(id.to_string()),
                    "endpoint" => Value::String(endpoint.to_string()),
                    "environment" => Value::String(self.engine.env().to_string()),
                    _ => Value::Null,
                }
            }
            ExprKind::Connection { field } => match (&self.account, field) {
                (None, _) => Value::Null,
                (Some(account), ConnectionField::Id) => {
                    Value::String(account.key.connection_id.clone())
                }
                (Some(account), ConnectionField::Tag(key)) => account
                    .tags
                    .get(key.as_str())
                    .map_or(Value::Null, |v| Value::String(v.clone())),
            },
            ExprKind::Error { field } => match (&frame.error, field.as_str()) {
                (None, _) => Value::Null,
                (Some(error), "code") => Value::String(error.code()),
                (Some(error), "message") => Value::String(error.message.clone()),
                (Some(error), "status") => error
                    .status()
                    .map_or(Value::Null, |s| Value::Number(f64::from(s))),
                _ => Value::Null,
            },
            ExprKind::Call { function, args } => {
                let Some(known) = Function::from_name(function.as_str()) else {
                    return Err(RunError::new(
                        ErrorKind::Type,
                        format!("unknown function `{}`", function.text),
                    )
                    .at(function.span));
                };
                let mut values = Vec::with_capacity(args.len());
                for arg in args {
                    values.push(self.eval(frame, arg)?);
                }
                let secret_in = self.origin_in(&values);
                let value = super::functions::call(known, values)
                    .map_err(|message| RunError::new(ErrorKind::Type, message).at(expr.span))?;
                if matches!(&value, Value::String(s) if s.len() > MAX_TEXT) {
                    return Err(too_long(expr));
                }
                if let Some(origin) = &secret_in {
                    self.learn_derived(&value, origin);
                }
                value
            }
            ExprKind::Not { operand } => {
                let value = self.eval(frame, operand)?;
                match value.as_bool() {
                    Some(b) => Value::Bool(!b),
                    None if value.is_null() => Value::Bool(true),
                    None => {
                        return Err(RunError::new(
                            ErrorKind::Type,
                            format!("`!` needs a bool, not a {}", value.kind()),
                        )
                        .at(expr.span));
                    }
                }
            }
            ExprKind::Binary { op, lhs, rhs } => {
                if matches!(op, BinaryOp::And | BinaryOp::Or) {
                    let left = self.condition(frame, lhs)?;
                    return Ok(Value::Bool(match (op, left) {
                        (BinaryOp::And, false) => false,
                        (BinaryOp::Or, true) => true,
                        _ => self.condition(frame, rhs)?,
                    }));
                }
                let left = self.eval(frame, lhs)?;
                let right = self.eval(frame, rhs)?;
                let failed =
                    |message: String| RunError::new(ErrorKind::Type, message).at(expr.span);
                match op {
                    BinaryOp::Eq => Value::Bool(left.equals(&right)),
                    BinaryOp::Ne => Value::Bool(!left.equals(&right)),
                    BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div => {
                        let pair = [left, right];
                        let secret_in = self.origin_in(&pair);
                        let value = super::operators::arithmetic(*op, &pair[0], &pair[1])
                            .map_err(failed)?;
                        if matches!(&value, Value::String(s) if s.len() > MAX_TEXT) {
                            return Err(too_long(expr));
                        }
                        if let Some(origin) = &secret_in {
                            self.learn_derived(&value, origin);
                        }
                        value
                    }
                    _ => {
                        Value::Bool(super::operators::compare(*op, &left, &right).map_err(failed)?)
                    }
                }
            }
        })
    }

    /// What the secret values the run knows in these values are made from;
    /// `None` when they hold none.
    fn origin_in(&self, values: &[Value]) -> Option<Origin> {
        let mut origin: Option<Origin> = None;
        for value in values {
            if let Value::String(_) | Value::Json(_) = value
                && let Some(found) = self.redactor.origin_in(&value.to_text())
            {
                match &mut origin {
                    Some(origin) => origin.join(&found),
                    None => origin = Some(found),
                }
            }
        }
        origin
    }

    /// A value computed from a secret (`base64_encode(secret.X)`,
    /// `"Bearer " + token`) is as secret as its source, and made from what
    /// its source is made from: the redactor learns it. Numbers, bools,
    /// times and durations say little and are left.
    pub(super) fn learn_derived(&mut self, value: &Value, origin: &Origin) {
        match value {
            Value::String(_) | Value::Json(_) => self.redactor.learn(&value.to_text(), origin),
            _ => {}
        }
    }

    /// The value of a sensitive variable, whatever its type: made from the
    /// secrets it holds, and from those the checker found may flow into
    /// the variable; from what the run cannot tell when it knows neither.
    pub(super) fn learn_variable(&mut self, frame: &Frame<'e>, name: &str, value: &Value) {
        if !value.has_value() {
            return;
        }
        let text = value.to_text();
        let mut origin = self.redactor.origin_in(&text);
        if let Some(secrets) = frame.derived.get(name) {
            let declared = Origin::Of(secrets.clone());
            match &mut origin {
                Some(origin) => origin.join(&declared),
                None => origin = Some(declared),
            }
        }
        self.redactor
            .learn(&text, &origin.unwrap_or(Origin::Unknown));
    }

    /// The decrypted store, read on first use (after the run lock, if the
    /// run takes one). The shared cache re-reads the file when it changed.
    /// Decrypts the store for the run, if it has not yet (after the run
    /// lock, if the run takes one).
    pub(super) async fn load_document(&mut self) -> Result<(), RunError> {
        if self.document.is_some() {
            return Ok(());
        }
        let (document, redactor) = self.engine.store_document().await.map_err(|e| match e {
            crate::secrets::Error::NoIdentity { .. } => store_failure(&self.engine.no_identity()),
            other => store_failure(&other),
        })?;
        // Values the run learned before stay; the store's are shared.
        let mut merged = Redactor::on_top_of(redactor);
        merged.absorb(&self.redactor);
        self.redactor = merged;
        let Some(account) = &self.account else {
            self.document = Some(document);
            return Ok(());
        };
        // A per-account run reads the shared secrets and its connection's
        // values as one document: per-account names are never shared ones.
        let keys = self.keys()?;
        let values = self
            .engine
            .backend
            .accounts
            .document(&keys, &account.key)
            .await
            .map_err(|e| store_failure(&e))?;
        for entry in values.secrets.values() {
            self.redactor.add(entry.value.expose());
        }
        self.document = Some(Arc::new(self.engine.account_view(&document, &values)));
        Ok(())
    }

    /// The connection `for_connection EXPR` names for a per-account
    /// callee: it must be one of the callee's client, and exist.
    async fn named_connection(
        &mut self,
        frame: &Frame<'e>,
        target: &'e EndpointRef,
        expr: &'e Expr,
    ) -> Result<Account, RunError> {
        let key = target.display();
        let id = self.eval(frame, expr).map_err(|e| e.at(expr.span))?;
        let id = id.to_text();
        let Some(client) = self.engine.per_account_client(&key) else {
            return Err(RunError::new(
                ErrorKind::Type,
                format!("`{key}` does not run for a connected account"),
            )
            .at(expr.span));
        };
        if let Some(problem) = crate::backend::accounts::invalid_id(&id) {
            return Err(RunError::new(
                ErrorKind::Type,
                format!("`for_connection` is not a connection id: {problem}"),
            )
            .at(expr.span));
        }
        let account = ConnectionKey {
            client: client.to_string(),
            connection_id: id,
        };
        let state = self
            .engine
            .backend
            .connections
            .load_one(&account)
            .await
            .map_err(|e| store_failure(&e))?;
        let Some(state) = state else {
            let refusal = super::connections::unknown_connection(&account);
            return Err(RunError::new(ErrorKind::Type, refusal.message).at(expr.span));
        };
        // What the callee reads must have a value in that account, as
        // admission makes sure for a run asked for one.
        if let Some(reads) = self.engine.reading.get(&key) {
            let keys = self.keys()?;
            let values = self
                .engine
                .backend
                .accounts
                .document(&keys, &account)
                .await
                .map_err(|e| store_failure(&e))?;
            let script = self.script();
            if let Some(missing) = reads.iter().find(|name| {
                script.secret(name).is_some_and(|s| s.per_account) && values.get(name).is_none()
            }) {
                return Err(RunError::new(
                    ErrorKind::Store {
                        code: "svc::store::missing_value",
                    },
                    format!("connection `{account}` has no value of `{missing}`"),
                )
                .at(expr.span)
                .help("connect the account again (`svc authorize ... --connection ID`)"));
            }
        }
        Ok(Account {
            key: account,
            tags: state.tags,
        })
    }

    /// The store, loaded before the statement that reads it.
    pub(super) fn document(&self) -> Result<&Document, RunError> {
        self.document.as_deref().ok_or_else(|| {
            RunError::new(
                ErrorKind::Limit,
                "the secret store was read before it was loaded (a bug in svc)",
            )
        })
    }

    pub(super) fn keys(&self) -> Result<Arc<Identities>, RunError> {
        self.engine
            .keys
            .clone()
            .ok_or_else(|| store_failure(&self.engine.no_identity()))
    }

    /// The source text of a span, for the trace of `if` conditions.
    pub(super) fn source_text(&self, span: crate::source::Span) -> String {
        let sources = &self.script().checked.sources;
        let text = sources.get(span.file).snippet(span);
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// The error of an expression that makes a string longer than [`MAX_TEXT`].
fn too_long(expr: &Expr) -> RunError {
    RunError::new(
        ErrorKind::Limit,
        format!(
            "the expression makes a string of more than {} MiB",
            MAX_TEXT >> 20
        ),
    )
    .at(expr.span)
    .help("a string a run makes is at most as long as the longest answer it reads; see \"Bounds of a run\" in docs/run.md")
}

/// Whether a statement's own expressions read `secret.NAME` (nested
/// blocks are statements of their own).
fn reads_a_secret(statement: &Statement) -> bool {
    // A client's credentials are secrets.
    if let StatementKind::WebRequest(request) = &statement.kind
        && matches!(request.auth, Some(Auth::Client { .. }))
    {
        return true;
    }
    reads_secret(statement.expressions())
}

/// Whether any of these expressions reads `secret.NAME`.
fn reads_secret<'a>(exprs: impl IntoIterator<Item = &'a Expr>) -> bool {
    let mut found = false;
    for expr in exprs {
        expr.walk(&mut |e| found |= matches!(e.kind, ExprKind::Secret { .. }));
    }
    found
}

pub(super) fn catches_error(filter: &CatchFilter, error: &RunError) -> bool {
    match filter {
        CatchFilter::Any => true,
        CatchFilter::Code(code) => error.code() == code.value,
        CatchFilter::WebRequest { statuses } => match error.kind {
            ErrorKind::WebRequest { status } => {
                statuses.is_empty()
                    || status.is_some_and(|s| statuses.iter().any(|c| c.value == u32::from(s)))
            }
            _ => false,
        },
    }
}

pub(super) fn store_failure(error: &crate::secrets::Error) -> RunError {
    let mut failure = RunError::new(ErrorKind::Store { code: error.code() }, error.to_string());
    failure.help = error.help();
    failure
}

impl RunError {
    pub(super) fn help_if_missing(mut self, help: &str) -> RunError {
        if self.help.is_none() {
            self.help = Some(help.to_string());
        }
        self
    }
}

/// The state a run of its own ([`Run::enter_own_run`]) has apart from the
/// run it is called from: exchanged with the run's as it starts, and
/// again as it ends.
struct OwnRun {
    run_id: String,
    endpoint_key: String,
    root_depth: usize,
    identity: String,
    params: BTreeMap<String, serde_json::Value>,
    based_on: BTreeMap<String, u64>,
    journaled: Vec<u16>,
    sends: u32,
    journal_settled: bool,
}

impl OwnRun {
    fn swap(&mut self, run: &mut Run<'_>) {
        std::mem::swap(&mut self.run_id, &mut run.run_id);
        std::mem::swap(&mut self.endpoint_key, &mut run.endpoint_key);
        std::mem::swap(&mut self.root_depth, &mut run.root_depth);
        std::mem::swap(&mut self.identity, &mut run.identity);
        std::mem::swap(&mut self.params, &mut run.params);
        std::mem::swap(&mut self.based_on, &mut run.based_on);
        std::mem::swap(&mut self.journaled, &mut run.journaled);
        std::mem::swap(&mut self.sends, &mut run.sends);
        std::mem::swap(&mut self.journal_settled, &mut run.journal_settled);
    }
}
