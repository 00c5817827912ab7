//! The interpreter: runs an endpoint's action node by node.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::error::{ErrorKind, RunError};
use super::http::{self, Http};
use super::log as endpoint_log;
use super::record::{Event, Outcome, RunRecord, Shown, Trigger};
use super::redact::Redactor;
use super::value::Value;
use crate::check::sensitivity::is_sensitive_expr;
use crate::program::Script;
use crate::secrets::atomic::{Lock, LockError};
use crate::secrets::cache::StoreCache;
use crate::secrets::{self, Document, Identities, NewValue, SecretValue, Store};
use crate::syntax::ast::*;

/// How deeply `run_service` may nest.
pub const MAX_CALL_DEPTH: usize = 8;

/// What runs endpoints: the script, the environment's store, and where
/// endpoint logs go. Shared by every run of a process.
pub struct Engine {
    pub script: Arc<Script>,
    pub store: Store,
    /// The decrypted store, shared by runs that do not change it.
    pub cache: StoreCache,
    /// Identities that open the store; `None` when none was given, which
    /// only matters to runs that touch a secret.
    pub keys: Option<Arc<Identities>>,
    pub log_dir: PathBuf,
    pub lock_timeout: Duration,
    http: Http,
    /// Every JSONPath of the program, parsed once.
    paths: rustc_hash::FxHashMap<String, serde_json_path::JsonPath>,
    /// The endpoints that can update a secret, by service.
    updating: rustc_hash::FxHashMap<String, rustc_hash::FxHashSet<String>>,
    /// The redactor of the store's values, made once per version of it.
    store_redactor: std::sync::Mutex<Option<(Arc<Document>, Arc<Redactor>)>>,
}

/// One request to run an endpoint.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub service: String,
    pub endpoint: String,
    pub identity: String,
    pub method: String,
    pub params: BTreeMap<String, serde_json::Value>,
    pub dry_run: bool,
    pub trigger: Trigger,
    /// When a schedule wanted the run to start, to record how late it did.
    pub due_at: Option<chrono::DateTime<Utc>>,
}

/// A run that was refused before it started.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
    pub help: Option<String>,
    /// Denied (exit 3) rather than a wrong request (exit 2).
    pub denied: bool,
}

/// A finished run: the record (redacted), the error with its span, and the
/// redactor that knows the run's secret values, for any further output.
pub struct Finished {
    pub record: RunRecord,
    pub error: Option<RunError>,
    pub redactor: Redactor,
}

impl Engine {
    pub fn new(
        script: Arc<Script>,
        store: Store,
        keys: Option<Arc<Identities>>,
        log_dir: PathBuf,
    ) -> Engine {
        let mut paths = rustc_hash::FxHashMap::default();
        let mut updating: rustc_hash::FxHashMap<String, rustc_hash::FxHashSet<String>> =
            Default::default();
        for service in &script.program().services {
            for action in &service.actions {
                action.body.walk(&mut |statement| {
                    if let StatementKind::WebRequest(request) = &statement.kind {
                        for mapping in &request.result_mapping {
                            if let MappingSource::JsonPath { path, .. } = &mapping.source
                                && let Ok(compiled) = serde_json_path::JsonPath::parse(path)
                            {
                                paths.insert(path.clone(), compiled);
                            }
                        }
                    }
                });
            }
            for endpoint in &service.endpoints {
                if script.updates_secrets(&service.name.text, &endpoint.name.text) {
                    updating
                        .entry(service.name.text.clone())
                        .or_default()
                        .insert(endpoint.name.text.clone());
                }
            }
        }
        Engine {
            paths,
            updating,
            store_redactor: std::sync::Mutex::new(None),
            script,
            cache: StoreCache::new(store.clone(), keys.clone()),
            store,
            keys,
            log_dir,
            lock_timeout: secrets::store::DEFAULT_LOCK_TIMEOUT,
            http: Http::default(),
        }
    }

    pub fn env(&self) -> &str {
        self.store.env()
    }

    /// Whether running the endpoint can update a secret (and so takes the run lock).
    pub fn updates_secrets(&self, service: &str, endpoint: &str) -> bool {
        self.updating
            .get(service)
            .is_some_and(|endpoints| endpoints.contains(endpoint))
    }

    /// The store's document and a redactor of all its values, shared by
    /// every run until the store changes.
    fn store_document(&self) -> Result<(Arc<Document>, Arc<Redactor>), secrets::Error> {
        let document = self.cache.document()?;
        let mut cached = self
            .store_redactor
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some((seen, redactor)) = cached.as_ref()
            && Arc::ptr_eq(seen, &document)
        {
            return Ok((document, redactor.clone()));
        }
        let mut redactor = Redactor::default();
        for entry in document.secrets.values() {
            redactor.add(entry.value.expose());
        }
        let redactor = Arc::new(redactor);
        *cached = Some((document.clone(), redactor.clone()));
        Ok((document, redactor))
    }

    /// Checks a request before running it: the endpoint exists, allows the
    /// method, and the identity exists and may run it.
    pub fn admit(&self, request: &RunRequest) -> Result<(), Refusal> {
        let refuse = |code, message: String, help: Option<String>| Refusal {
            code,
            message,
            help,
            denied: false,
        };
        let key = format!("{}.{}", request.service, request.endpoint);
        let Some(endpoint) = self.script.endpoint(&request.service, &request.endpoint) else {
            return Err(unknown_endpoint(&self.script, &key));
        };
        if !endpoint.allows(&request.method) {
            let methods: Vec<&str> = endpoint.methods.iter().map(|m| m.as_str()).collect();
            return Err(Refusal {
                code: "svc::run::method_not_allowed",
                message: format!("`{key}` does not allow {}", request.method),
                help: Some(format!("it allows {}", methods.join(", "))),
                denied: false,
            });
        }
        let Some(identity) = self.script.identity(&request.identity) else {
            let runners = self.script.runners(&request.service, &request.endpoint);
            return Err(refuse(
                "svc::run::unknown_identity",
                format!(
                    "no user or service account is called `{}`",
                    request.identity
                ),
                Some(runners_help(&key, &runners)),
            ));
        };
        if !self
            .script
            .can_run(identity, &request.service, &request.endpoint)
        {
            let runners = self.script.runners(&request.service, &request.endpoint);
            return Err(Refusal {
                code: "svc::run::permission_denied",
                message: format!("`{}` may not run `{key}`", request.identity),
                help: Some(runners_help(&key, &runners)),
                denied: true,
            });
        }
        Ok(())
    }

    /// Runs an admitted request to its end. The record is appended to the
    /// endpoint log when the endpoint has `log enabled` (not for dry runs).
    pub async fn run(&self, request: RunRequest) -> Finished {
        let started_at = secrets::document::now();
        let lag_ms = request
            .due_at
            .map(|due| (Utc::now() - due).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0);
        let clock = Instant::now();
        let mut run = Run {
            engine: self,
            dry_run: request.dry_run,
            trigger: request.trigger.clone(),
            trace: Vec::new(),
            redactor: Redactor::default(),
            document: None,
            held: Vec::new(),
        };
        let identity = self
            .script
            .identity(&request.identity)
            .expect("the request was admitted: the identity exists");
        let (variables, result) = run
            .endpoint(
                &request.service,
                &request.endpoint,
                identity,
                &request.params,
                0,
            )
            .await;
        let outcome = match &result {
            Ok(()) => Outcome::Success,
            Err(e) if e.kind == ErrorKind::PermissionDenied => Outcome::Denied,
            Err(_) => Outcome::Failed,
        };
        let error = result.err();
        let redactor = run.redactor;
        let mut record = RunRecord {
            id: new_run_id(),
            endpoint: format!("{}.{}", request.service, request.endpoint),
            environment: self.env().to_string(),
            identity: request.identity.clone(),
            method: request.method.clone(),
            trigger: request.trigger.clone(),
            started_at,
            duration_ms: clock.elapsed().as_millis() as u64,
            outcome,
            lag_ms,
            dry_run: request.dry_run,
            trace: run.trace,
            error: error.as_ref().map(|e| e.to_report()),
            variables,
        };
        // Everything in the record was redacted as it was made; this pass
        // also catches values first seen after the text that holds them.
        record.redact(&redactor);
        let logged = self
            .script
            .endpoint(&request.service, &request.endpoint)
            .is_some_and(|e| e.log_enabled());
        if logged
            && !request.dry_run
            && let Err(e) = endpoint_log::append(&self.log_dir, &record, &redactor)
        {
            eprintln!("warning: cannot write the endpoint log: {e}");
        }
        Finished {
            record,
            error,
            redactor,
        }
    }

    /// Admits and runs a request.
    pub async fn admit_and_run(&self, request: RunRequest) -> Result<Finished, Refusal> {
        self.admit(&request)?;
        Ok(self.run(request).await)
    }
}

/// The refusal of an endpoint the script does not declare, with the
/// nearest name or the list of them.
pub fn unknown_endpoint(script: &Script, key: &str) -> Refusal {
    let known = script.endpoint_keys();
    Refusal {
        code: "svc::run::unknown_endpoint",
        message: format!("unknown endpoint `{key}`"),
        help: Some(crate::check::did_you_mean(
            key,
            known.iter().map(String::as_str),
            format!("the endpoints are: {}", known.join(", ")),
        )),
        denied: false,
    }
}

fn runners_help(key: &str, runners: &[String]) -> String {
    if runners.is_empty() {
        format!("no user or service account may run `{key}`; grant `run {key}` to a role")
    } else {
        format!(
            "`{key}` may be run by: {} (pass one with `--as`)",
            runners.join(", ")
        )
    }
}

/// A time-ordered, unique run id: milliseconds since 1970 and randomness.
fn new_run_id() -> String {
    let millis = Utc::now().timestamp_millis().max(0) as u64;
    format!("{millis:013x}{:08x}", fastrand::u32(..))
}

type Step<'a> = Pin<Box<dyn Future<Output = Result<(), RunError>> + Send + 'a>>;

/// An endpoint's run: its variables at the end, shown as they may be, and
/// how it ended.
type EndpointRun<'a> =
    Pin<Box<dyn Future<Output = (BTreeMap<String, Shown>, Result<(), RunError>)> + Send + 'a>>;

/// The state of one run.
struct Run<'e> {
    engine: &'e Engine,
    dry_run: bool,
    trigger: Trigger,
    trace: Vec<Event>,
    redactor: Redactor,
    /// The store, decrypted on first use, after the run lock was taken.
    document: Option<Arc<Document>>,
    /// Endpoints whose run lock this run holds.
    held: Vec<(String, Lock)>,
}

/// The variables of one endpoint's run.
struct Frame<'e> {
    service: &'e ServiceDecl,
    identity: &'e IdentityDecl,
    endpoint: String,
    vars: HashMap<&'e str, Value>,
    params: &'e BTreeMap<String, serde_json::Value>,
    /// The error a `catch` block is handling.
    error: Option<RunError>,
    depth: usize,
    sensitive: BTreeSet<String>,
}

impl Frame<'_> {
    fn is_sensitive(&self, var: &str) -> bool {
        self.sensitive.contains(var)
    }
}

impl<'e> Run<'e> {
    fn script(&self) -> &'e Script {
        &self.engine.script
    }

    /// Runs one endpoint; returns its variables, shown as they may be.
    fn endpoint<'a>(
        &'a mut self,
        service: &'a str,
        endpoint: &'a str,
        identity: &'e IdentityDecl,
        params: &'e BTreeMap<String, serde_json::Value>,
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
            let mut frame = Frame {
                service: service_decl,
                identity,
                endpoint: key.clone(),
                vars: service_decl
                    .vars
                    .iter()
                    .map(|v| (v.name.as_str(), Value::Null))
                    .collect(),
                params,
                error: None,
                depth,
                sensitive: script
                    .checked
                    .analysis
                    .sensitive
                    .get(service)
                    .cloned()
                    .unwrap_or_default(),
            };
            let locked = match self.lock_endpoint(&key, service, endpoint).await {
                Ok(locked) => locked,
                Err(error) => return (BTreeMap::new(), Err(error)),
            };
            let result = self.block(&mut frame, &action.body).await;
            if locked {
                self.held.retain(|(k, _)| *k != key);
            }
            let variables = frame
                .vars
                .iter()
                .map(|(name, value)| (name.to_string(), self.show(&frame, name, value)))
                .collect();
            (variables, result)
        })
    }

    /// Takes the run lock of an endpoint that can update secrets, so two
    /// runs never spend the same refresh token. Returns whether it took it.
    async fn lock_endpoint(
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
        let store = &self.engine.store;
        if let Err(e) = crate::secrets::atomic::create_private_dir(store.dir()) {
            return Err(store_failure(&crate::secrets::Error::io(
                "create",
                store.dir(),
                e,
            )));
        }
        let path = store.dir().join(format!(".{}.{key}.run.lock", store.env()));
        let timeout = self.engine.lock_timeout;
        let acquired = tokio::task::spawn_blocking(move || Lock::acquire(&path, timeout))
            .await
            .map_err(|_| RunError::new(ErrorKind::Limit, "the lock task failed"))?;
        match acquired {
            Ok(lock) => {
                self.held.push((key.to_string(), lock));
                // Anything read before the lock may be stale now.
                self.document = None;
                Ok(true)
            }
            Err(LockError::TimedOut) => Err(RunError::new(
                ErrorKind::Store {
                    code: "svc::run::lock_timeout",
                },
                format!(
                    "another run of `{key}` in `{}` did not finish within {}",
                    store.env(),
                    crate::syntax::duration::format(timeout)
                ),
            )
            .help("wait for it, or raise `--lock-timeout`")),
            Err(LockError::Io(e)) => Err(store_failure(&crate::secrets::Error::io(
                "lock",
                store.dir(),
                e,
            ))),
        }
    }

    fn block<'a>(&'a mut self, frame: &'a mut Frame<'e>, block: &'e Block) -> Step<'a> {
        Box::pin(async move {
            for statement in &block.statements {
                self.statement(frame, statement)
                    .await
                    .map_err(|e| e.at(statement.span))?;
            }
            Ok(())
        })
    }

    fn statement<'a>(&'a mut self, frame: &'a mut Frame<'e>, statement: &'e Statement) -> Step<'a> {
        Box::pin(async move {
            let depth = frame.depth;
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
                StatementKind::RunService {
                    endpoint,
                    as_account,
                } => self.run_service(frame, endpoint, as_account.as_ref()).await,
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

    async fn run_service(
        &mut self,
        frame: &mut Frame<'e>,
        target: &'e EndpointRef,
        as_account: Option<&'e Name>,
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
            endpoint: key,
            identity: identity.name.text.clone(),
        });
        static NO_PARAMS: BTreeMap<String, serde_json::Value> = BTreeMap::new();
        let (_, result) = self
            .endpoint(
                target.service.as_str(),
                target.endpoint.as_str(),
                identity,
                &NO_PARAMS,
                frame.depth + 1,
            )
            .await;
        result
    }

    async fn update_secrets(
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
            if secret.locked.is_some() || !secret.environment_specific {
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
                    format!("refusing to store an empty value in `{name}`"),
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
                            Some(now + chrono::Duration::milliseconds((seconds * 1000.0) as i64))
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
        let store = self.engine.store.clone();
        let by = format!(
            "{} ({} {})",
            frame.identity.name.text,
            self.trigger.describe(),
            frame.endpoint
        );
        let to_write: Vec<(String, SecretValue, Option<chrono::DateTime<Utc>>)> = changes
            .iter()
            .map(|(n, v, e, _)| (n.clone(), v.clone(), *e))
            .collect();
        // One locked, atomic write for the whole block, off the async threads.
        let written = tokio::task::spawn_blocking(move || {
            store.update(&keys, |doc| {
                let versions: Vec<u64> = to_write
                    .into_iter()
                    .map(|(name, value, expires_at)| {
                        doc.set(&name, NewValue { value, expires_at }, &by, now)
                    })
                    .collect();
                Ok((versions, doc.clone()))
            })
        })
        .await
        .map_err(|_| RunError::new(ErrorKind::Limit, "the store task failed"))?;
        let (versions, document) = written.map_err(|e| store_failure(&e))?;
        self.document = Some(Arc::new(document));
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

    async fn web_request(
        &mut self,
        frame: &mut Frame<'e>,
        request: &'e WebRequest,
    ) -> Result<(), RunError> {
        let depth = frame.depth;
        let url_expr = request
            .url
            .as_ref()
            .ok_or_else(|| RunError::new(ErrorKind::Type, "the request has no URL"))?;
        let url_text = self
            .eval(frame, url_expr)
            .map_err(|e| e.at(url_expr.span))?
            .to_text();
        let mut url = url::Url::parse(&url_text).map_err(|e| {
            RunError::new(
                ErrorKind::Type,
                self.redactor
                    .redact(&format!("`{url_text}` is not a valid URL: {e}")),
            )
            .at(url_expr.span)
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(RunError::new(
                ErrorKind::Type,
                "only http and https URLs can be requested",
            )
            .at(url_expr.span));
        }
        let mut shown_headers = Vec::new();
        if !request.query.is_empty() {
            let mut pairs = Vec::new();
            for field in &request.query {
                let value = self
                    .eval(frame, &field.value)
                    .map_err(|e| e.at(field.span))?
                    .to_text();
                if is_sensitive_expr(&field.value, &frame.sensitive) {
                    self.redactor.add(&value);
                }
                pairs.push((field.name.value.clone(), value));
            }
            url.query_pairs_mut().extend_pairs(pairs);
        }
        let mut headers = Vec::new();
        for field in &request.headers {
            let value = self
                .eval(frame, &field.value)
                .map_err(|e| e.at(field.span))?
                .to_text();
            let sensitive = is_sensitive_expr(&field.value, &frame.sensitive);
            if sensitive {
                self.redactor.add(&value);
            }
            shown_headers.push((field.name.value.clone(), self.mask(&value, sensitive)));
            headers.push((field.name.value.clone(), value));
        }
        let mut shown_body = None;
        let body = match &request.body {
            None => http::Body::None,
            Some(RequestBody::Form { fields, .. }) => {
                let mut pairs = Vec::new();
                let mut shown = Vec::new();
                for field in fields {
                    let value = self
                        .eval(frame, &field.value)
                        .map_err(|e| e.at(field.span))?
                        .to_text();
                    let sensitive = is_sensitive_expr(&field.value, &frame.sensitive);
                    shown.push(format!(
                        "{}={}",
                        field.name.value,
                        self.mask(&value, sensitive)
                    ));
                    pairs.push((field.name.value.clone(), value));
                }
                shown_body = Some(shown.join("&"));
                http::Body::Form(pairs)
            }
            Some(RequestBody::Json { fields, .. }) => {
                let mut object = serde_json::Map::new();
                let mut shown = serde_json::Map::new();
                for field in fields {
                    let value = self
                        .eval(frame, &field.value)
                        .map_err(|e| e.at(field.span))?;
                    let sensitive = is_sensitive_expr(&field.value, &frame.sensitive);
                    let json = value.to_json();
                    shown.insert(
                        field.name.value.clone(),
                        if sensitive {
                            serde_json::Value::String("***".into())
                        } else {
                            json.clone()
                        },
                    );
                    object.insert(field.name.value.clone(), json);
                }
                shown_body = Some(
                    self.redactor
                        .redact(&serde_json::Value::Object(shown).to_string()),
                );
                http::Body::Json(serde_json::Value::Object(object))
            }
            Some(RequestBody::Raw { value, .. }) => {
                let text = self
                    .eval(frame, value)
                    .map_err(|e| e.at(value.span))?
                    .to_text();
                let sensitive = is_sensitive_expr(value, &frame.sensitive);
                shown_body = Some(self.mask(&text, sensitive));
                http::Body::Raw(text)
            }
        };
        let auth = match &request.auth {
            None => None,
            Some(Auth::Basic { user, password, .. }) => {
                let user = self
                    .eval(frame, user)
                    .map_err(|e| e.at(user.span))?
                    .to_text();
                let password = self
                    .eval(frame, password)
                    .map_err(|e| e.at(password.span))?
                    .to_text();
                shown_headers.push(("Authorization".into(), "Basic ***".into()));
                Some(http::Auth::Basic(user, password))
            }
            Some(Auth::Bearer { token, .. }) => {
                let token = self
                    .eval(frame, token)
                    .map_err(|e| e.at(token.span))?
                    .to_text();
                shown_headers.push(("Authorization".into(), "Bearer ***".into()));
                Some(http::Auth::Bearer(token))
            }
        };
        let method_name = request.method.as_ref().map_or("GET", |m| m.as_str());
        let method = reqwest::Method::from_bytes(method_name.as_bytes()).map_err(|_| {
            RunError::new(
                ErrorKind::Type,
                format!("`{method_name}` is not an HTTP method"),
            )
        })?;
        let shown_url = self.redactor.redact(&http::display_url(&url));
        if self.dry_run {
            self.trace.push(Event::Request {
                depth,
                method: method_name.to_string(),
                url: shown_url,
                status: None,
                duration_ms: 0,
                attempts: 0,
                dry_run: true,
                headers: shown_headers,
                body: shown_body,
            });
            for mapping in &request.result_mapping {
                self.assign(frame, &mapping.target, Value::Null, mapping.span)?;
            }
            return Ok(());
        }
        let outgoing = http::Request {
            method,
            url,
            headers,
            body,
            auth,
            timeout: request
                .timeout
                .as_ref()
                .and_then(|t| t.value)
                .unwrap_or(http::DEFAULT_TIMEOUT),
            redirects: request.redirects.as_ref().map_or(0, |r| r.value as usize),
            attempts: request
                .retry
                .as_ref()
                .and_then(|r| r.attempts.as_ref())
                .map_or(http::DEFAULT_ATTEMPTS, |a| a.value as u32),
            max_time: request
                .retry
                .as_ref()
                .and_then(|r| r.max_time.as_ref())
                .and_then(|m| m.value)
                .unwrap_or(http::DEFAULT_MAX_TIME),
        };
        let response = self.engine.http.send(&outgoing, &self.redactor).await;
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                self.trace.push(Event::Request {
                    depth,
                    method: method_name.to_string(),
                    url: shown_url,
                    status: error.status(),
                    duration_ms: 0,
                    attempts: 0,
                    dry_run: false,
                    headers: Vec::new(),
                    body: None,
                });
                return Err(error.help_if_missing("check the URL and that the server is up"));
            }
        };
        for (i, retried) in response.retries.iter().enumerate() {
            self.trace.push(Event::Retry {
                depth,
                attempt: i as u32 + 1,
                reason: self.redactor.redact(&retried.reason),
                wait_ms: retried.wait.as_millis() as u64,
            });
        }
        self.trace.push(Event::Request {
            depth,
            method: method_name.to_string(),
            url: shown_url.clone(),
            status: Some(response.status.as_u16()),
            duration_ms: response.elapsed.as_millis() as u64,
            attempts: response.attempts,
            dry_run: false,
            headers: Vec::new(),
            body: None,
        });
        if !response.status.is_success() {
            return Err(self.http_error(method_name, &shown_url, &response));
        }
        self.map_results(frame, request, &response)
    }

    /// The error for a non-2xx answer: the status and, when the body is an
    /// OAuth error, its `error` and `error_description`; never the body
    /// otherwise, which may echo the request.
    fn http_error(&self, method: &str, url: &str, response: &http::Response) -> RunError {
        let status = response.status;
        let oauth = serde_json::from_slice::<serde_json::Value>(&response.body)
            .ok()
            .and_then(|json| {
                let error = json.get("error")?.as_str()?.to_string();
                let description = json
                    .get("error_description")
                    .and_then(|d| d.as_str())
                    .map(str::to_owned);
                Some((error, description))
            });
        let mut message = format!("{method} {url} answered {}", http::status_text(status));
        if let Some((error, description)) = &oauth {
            message.push_str(&format!(": {error}"));
            if let Some(description) = description {
                message.push_str(&format!(" ({description})"));
            }
        }
        let help = match (status.as_u16(), oauth.as_ref().map(|(e, _)| e.as_str())) {
            (_, Some("invalid_grant")) => {
                "the grant was rejected: a refresh token may have been used already, revoked or expired; \
                 set a fresh one with `svc secret set`"
            }
            (_, Some("invalid_client")) | (401, _) => {
                "the server did not accept the client credentials; check the secrets sent"
            }
            (403, _) => "the credentials were accepted but lack permission",
            (404, _) => "check the URL",
            (429, _) | (500..=599, _) => {
                "the server is busy or failing; `retry { attempts ... }` retries such answers"
            }
            (300..=399, _) => "the server redirects; add `redirects N` to follow it",
            _ => "check the request against the API's documentation",
        };
        RunError::new(
            ErrorKind::WebRequest {
                status: Some(status.as_u16()),
            },
            self.redactor.redact(&message),
        )
        .help(help)
    }

    fn map_results(
        &mut self,
        frame: &mut Frame<'e>,
        request: &'e WebRequest,
        response: &http::Response,
    ) -> Result<(), RunError> {
        let mut json: Option<serde_json::Value> = None;
        for mapping in &request.result_mapping {
            let target = mapping.target.as_str();
            let declared = self
                .script()
                .var_type(&frame.service.name.text, target)
                .unwrap_or(Type::Json);
            let fits = |problem: String, source: &str| {
                RunError::new(
                    ErrorKind::Mapping,
                    format!(
                        "{source} gave {problem}, which does not fit `{target}` ({})",
                        declared.name()
                    ),
                )
                .at(mapping.source.span())
            };
            let value = match &mapping.source {
                MappingSource::JsonPath { path, span } => {
                    if json.is_none() {
                        let content_type = response
                            .headers
                            .get(reqwest::header::CONTENT_TYPE)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("no content type");
                        json = Some(serde_json::from_slice(&response.body).map_err(|_| {
                            RunError::new(
                                ErrorKind::Mapping,
                                format!(
                                    "the response is not JSON ({content_type}, {} bytes), so `{path}` cannot be read",
                                    response.body.len()
                                ),
                            )
                            .at(*span)
                            .help("check the URL and the `Accept` header; map `body` to read text")
                        })?);
                    }
                    let document = json.as_ref().expect("parsed above");
                    let compiled = self.engine.paths.get(path).ok_or_else(|| {
                        RunError::new(ErrorKind::Mapping, format!("invalid JSONPath `{path}`"))
                            .at(*span)
                    })?;
                    match compiled.query(document).first() {
                        None => Value::Null,
                        Some(found) => Value::from_json(found, declared)
                            .map_err(|p| fits(p, &format!("`{path}`")))?,
                    }
                }
                MappingSource::Header { name, .. } => {
                    match response.headers.get(name.value.as_str()) {
                        None => Value::Null,
                        Some(header) => {
                            let text = header.to_str().map_err(|_| {
                                fits("bytes that are not text".into(), "the header")
                            })?;
                            Value::from_text(text, declared)
                                .map_err(|p| fits(p, &format!("header `{}`", name.value)))?
                        }
                    }
                }
                MappingSource::Status { .. } => Value::Number(f64::from(response.status.as_u16()))
                    .into_type(declared)
                    .map_err(|p| fits(p, "`status`"))?,
                MappingSource::Body { .. } => {
                    let text = String::from_utf8_lossy(&response.body);
                    Value::from_text(&text, declared).map_err(|p| fits(p, "`body`"))?
                }
            };
            if frame.is_sensitive(target) && value.has_value() {
                self.redactor.add(&value.to_text());
            }
            frame.vars.insert(target, value.clone());
            let shown = self.show(frame, target, &value);
            self.trace.push(Event::Mapped {
                depth: frame.depth,
                name: target.to_string(),
                value: shown,
            });
        }
        Ok(())
    }

    fn assign(
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
        if frame.is_sensitive(name) && value.has_value() {
            self.redactor.add(&value.to_text());
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

    fn show(&self, frame: &Frame<'_>, name: &str, value: &Value) -> Shown {
        if frame.is_sensitive(name) && !value.is_null() {
            Shown::redacted(value.to_text().chars().count())
        } else {
            let mut json = value.to_json();
            self.redactor.redact_json(&mut json);
            Shown::Value { value: json }
        }
    }

    fn mask(&self, value: &str, sensitive: bool) -> String {
        if sensitive {
            "***".into()
        } else {
            self.redactor.redact(value)
        }
    }

    fn condition(&mut self, frame: &Frame<'e>, expr: &'e Expr) -> Result<bool, RunError> {
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

    fn eval(&mut self, frame: &Frame<'e>, expr: &'e Expr) -> Result<Value, RunError> {
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
                }
                Value::String(text)
            }
            ExprKind::Number { value } => Value::Number(*value),
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
            ExprKind::Param { name } => match frame.params.get(name.as_str()) {
                None | Some(serde_json::Value::Null) => Value::Null,
                Some(serde_json::Value::String(s)) => Value::String(s.clone()),
                Some(other) => Value::Json(other.clone()),
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
            ExprKind::Call { function, args } => match (function.as_str(), args.as_slice()) {
                ("has_value", [arg]) => Value::Bool(self.eval(frame, arg)?.has_value()),
                _ => {
                    return Err(RunError::new(
                        ErrorKind::Type,
                        format!("unknown function `{}`", function.text),
                    ));
                }
            },
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
                Value::Bool(match op {
                    BinaryOp::Eq => left.equals(&right),
                    BinaryOp::Ne => !left.equals(&right),
                    _ => {
                        let (Some(a), Some(b)) = (left.as_number(), right.as_number()) else {
                            return Err(RunError::new(
                                ErrorKind::Type,
                                format!(
                                    "`{}` compares numbers, not a {} and a {}",
                                    op.symbol(),
                                    left.kind(),
                                    right.kind()
                                ),
                            )
                            .at(expr.span));
                        };
                        match op {
                            BinaryOp::Lt => a < b,
                            BinaryOp::Le => a <= b,
                            BinaryOp::Gt => a > b,
                            _ => a >= b,
                        }
                    }
                })
            }
        })
    }

    /// The decrypted store, read on first use (after the run lock, if the
    /// run takes one). The shared cache re-reads the file when it changed.
    fn document(&mut self) -> Result<&Document, RunError> {
        if self.document.is_none() {
            let (document, redactor) = self
                .engine
                .store_document()
                .map_err(|e| store_failure(&e))?;
            // Values the run learned before stay; the store's are shared.
            let mut merged = Redactor::on_top_of(redactor);
            merged.absorb(&self.redactor);
            self.redactor = merged;
            self.document = Some(document);
        }
        Ok(self.document.as_ref().expect("loaded above"))
    }

    fn keys(&self) -> Result<Arc<Identities>, RunError> {
        self.engine
            .keys
            .clone()
            .ok_or_else(|| store_failure(&crate::secrets::Error::NoIdentity))
    }

    /// The source text of a span, for the trace of `if` conditions.
    fn source_text(&self, span: crate::source::Span) -> String {
        let sources = &self.script().checked.sources;
        let text = sources.get(span.file).snippet(span);
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

fn catches_error(filter: &CatchFilter, error: &RunError) -> bool {
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

fn store_failure(error: &crate::secrets::Error) -> RunError {
    let mut failure = RunError::new(ErrorKind::Store { code: error.code() }, error.to_string());
    failure.help = error.help();
    failure
}

impl RunError {
    fn help_if_missing(mut self, help: &str) -> RunError {
        if self.help.is_none() {
            self.help = Some(help.to_string());
        }
        self
    }
}
