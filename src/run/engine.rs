//! The engine: what every run of a process shares (the script, the
//! environment's backend, the HTTP clients), and a run from admission to
//! its record.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::admission::{Refusal, RefusalKind};
use super::error::{ErrorKind, RunError};
pub use super::interpreter::Answer;
use super::interpreter::Run;
use super::trace::Trace;
use crate::backend::ReadAt;
use crate::backend::record::{HookReport, Outcome, RunRecord, Trigger};
use crate::backend::run_key;
use crate::backend::{Backend, LogName};
use crate::net::http::Http;
use crate::program::Script;
use crate::redact::Redactor;
use crate::secrets::journal;
use crate::secrets::{self, Document, Identities};
use crate::syntax::ast::*;

/// How deeply `run_service` may nest.
pub const MAX_CALL_DEPTH: usize = 8;

/// What runs endpoints: the script, the environment's backend (secrets,
/// locks, logs, journal). Shared by every run of a process.
pub struct Engine {
    pub script: Arc<Script>,
    pub backend: Backend,
    /// Identities that open the store; `None` when none was given, which
    /// only matters to runs that touch a secret.
    pub keys: Option<Arc<Identities>>,
    pub lock_timeout: Duration,
    pub(super) http: Http,
    /// Each `web_request` by its span, as `SERVICE.ACTION#N`.
    pub(super) request_names: rustc_hash::FxHashMap<crate::source::Span, String>,
    /// Simulated answers for dry runs (`--mock`).
    pub mocks: Option<super::mock::Mocks>,
    /// Every JSONPath of the program, parsed once.
    pub(super) paths: rustc_hash::FxHashMap<String, serde_json_path::JsonPath>,
    /// The secrets each endpoint that can update any can update, by
    /// `SERVICE.ENDPOINT`.
    updating: rustc_hash::FxHashMap<String, std::collections::BTreeSet<String>>,
    /// The secrets each endpoint that reads any may read, by
    /// `SERVICE.ENDPOINT`: each must have a value before its run starts.
    pub(super) reading: rustc_hash::FxHashMap<String, std::collections::BTreeSet<String>>,
    /// The clients whose connection each endpoint refreshes, by
    /// `SERVICE.ENDPOINT`: those whose `stores` name a secret it can
    /// update, and whether each is `per_account` (then the connection is
    /// the run's).
    pub(super) connections: rustc_hash::FxHashMap<String, Vec<(String, bool)>>,
    /// The per-account endpoints, by `SERVICE.ENDPOINT`, and the client
    /// whose connections they run for.
    pub(super) per_account: rustc_hash::FxHashMap<String, String>,
    /// The `notify` receivers, and the events each gets.
    pub subscribers: Vec<crate::backend::Subscriber>,
    /// The redactor of the store's values, made once per version of it.
    store_redactor: std::sync::Mutex<Option<(Arc<Document>, Arc<Redactor>)>>,
    /// One gate per secret refreshed on read, so concurrent reads in this
    /// process wait for one refresh (`run::refresh`).
    pub(super) refreshing: super::refresh::Gates,
    /// How a command line names the program, for the `--replay` help.
    pub program_hint: String,
    /// Where the command looked for an identity and found none, and the
    /// store's recipients: for the error of a run that needs one.
    pub identity_search: (Vec<String>, Vec<String>),
}

/// A request that admission let through: the only thing `Engine::run`
/// takes, so a run without admission cannot be written.
#[derive(Debug, Clone)]
pub struct Admitted {
    request: RunRequest,
}

impl Admitted {
    /// Admission's decision, made in `run::admission`.
    pub(super) fn new(request: RunRequest) -> Admitted {
        Admitted { request }
    }

    pub fn request(&self) -> &RunRequest {
        &self.request
    }
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
    /// Use these kept answers instead of sending the requests that present
    /// a secret again (`svc run --replay`).
    pub replay: Option<Replay>,
    /// Run even when a connection it refreshes needs a person
    /// (`svc run --force`).
    pub force: bool,
    /// The connection a per-account endpoint runs for (`--connection`,
    /// `?connection=`, a `for_each_connection` schedule).
    pub connection: Option<String>,
}

/// The answers a failed run kept in the recovery journal, in the order
/// they came.
#[derive(Clone)]
pub struct Replay {
    pub run_id: String,
    pub entries: VecDeque<journal::Entry>,
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Replay({}, {} answers)", self.run_id, self.entries.len())
    }
}

/// A finished run: the record (redacted), the error with its span, and the
/// redactor that knows the run's secret values, for any further output.
pub struct Finished {
    pub record: RunRecord,
    pub error: Option<RunError>,
    pub redactor: Redactor,
    /// The declared response, as the caller gets it.
    pub answer: Option<Answer>,
}

impl Engine {
    pub fn new(script: Arc<Script>, backend: Backend, keys: Option<Arc<Identities>>) -> Engine {
        let mut paths = rustc_hash::FxHashMap::default();
        let mut request_names = rustc_hash::FxHashMap::default();
        let mut updating: rustc_hash::FxHashMap<String, std::collections::BTreeSet<String>> =
            Default::default();
        let mut reading: rustc_hash::FxHashMap<String, std::collections::BTreeSet<String>> =
            Default::default();
        let mut connections: rustc_hash::FxHashMap<String, Vec<(String, bool)>> =
            Default::default();
        let mut per_account: rustc_hash::FxHashMap<String, String> = Default::default();
        for service in &script.program().services {
            for action in &service.actions {
                let mut ordinal = 0;
                action.body.walk(&mut |statement| {
                    if let StatementKind::WebRequest(request) = &statement.kind {
                        ordinal += 1;
                        request_names.insert(
                            request.span,
                            format!("{}.{}#{ordinal}", service.name.text, action.name.text),
                        );
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
                if let Some(client) =
                    script.per_account_client(&service.name.text, &endpoint.name.text)
                {
                    per_account.insert(
                        format!("{}.{}", service.name.text, endpoint.name.text),
                        client.to_string(),
                    );
                }
                let secrets = script.secrets_updated(&service.name.text, &endpoint.name.text);
                let read = script.secrets_read(&service.name.text, &endpoint.name.text);
                if !secrets.is_empty() {
                    let key = format!("{}.{}", service.name.text, endpoint.name.text);
                    // A client's connection is its refresh token: an endpoint
                    // that neither sends nor stores it (`client_credentials`
                    // of a client that also holds a person's consent) does not
                    // refresh it.
                    let clients: Vec<(String, bool)> = script
                        .clients_storing(&secrets)
                        .into_iter()
                        .filter(|client| {
                            crate::check::keep_alive::refreshes_connection(client, &secrets, &read)
                        })
                        .map(|client| (client.name.text.clone(), client.per_account))
                        .collect();
                    if !clients.is_empty() {
                        connections.insert(key.clone(), clients);
                    }
                    updating.insert(key, secrets);
                }
                if !read.is_empty() {
                    reading.insert(
                        format!("{}.{}", service.name.text, endpoint.name.text),
                        read,
                    );
                }
            }
        }
        Engine {
            paths,
            request_names,
            mocks: None,
            updating,
            reading,
            connections,
            per_account,
            subscribers: crate::backend::outbox::subscribers(script.program()),
            store_redactor: std::sync::Mutex::new(None),
            refreshing: Default::default(),
            script,
            backend,
            keys,
            lock_timeout: crate::backend::files::store::DEFAULT_LOCK_TIMEOUT,
            http: Http::default(),
            program_hint: ".".into(),
            identity_search: (Vec::new(), Vec::new()),
        }
    }

    pub fn env(&self) -> &str {
        &self.backend.env
    }

    /// Whether running the endpoint can update a secret (and so takes the run lock).
    pub fn updates_secrets(&self, service: &str, endpoint: &str) -> bool {
        self.updating.contains_key(&format!("{service}.{endpoint}"))
    }

    /// As [`Engine::updates_secrets`], by `SERVICE.ENDPOINT` (or a run
    /// key, `SERVICE.ENDPOINT@CONNECTION`).
    pub fn updates_secrets_key(&self, key: &str) -> bool {
        self.updating.contains_key(run_key::endpoint_of(key))
    }

    /// The `per_account` client whose connections `SERVICE.ENDPOINT` runs
    /// for, when it is a per-account endpoint.
    pub fn per_account_client(&self, key: &str) -> Option<&str> {
        self.per_account
            .get(run_key::endpoint_of(key))
            .map(String::as_str)
    }

    /// The command that replays the last failed run of a run key
    /// (`SERVICE.ENDPOINT`, `@CONNECTION` for a per-account run).
    pub fn replay_command(&self, key: &str, identity: &str) -> String {
        let program = if self.program_hint.is_empty() {
            String::new()
        } else {
            format!("{} ", self.program_hint)
        };
        let (endpoint, connection) = run_key::split(key);
        let connection = connection.map_or(String::new(), |id| format!(" --connection {id}"));
        format!(
            "svc run {program}{endpoint}{connection} --env {} --as {identity} --replay",
            self.env()
        )
    }

    /// The secrets a run of `SERVICE.ENDPOINT` can update (none for an
    /// endpoint the program does not declare).
    pub fn secrets_updated(&self, key: &str) -> Option<&std::collections::BTreeSet<String>> {
        self.updating.get(run_key::endpoint_of(key))
    }

    /// The store's document and a redactor of all its values, shared by
    /// every run until the store changes.
    pub async fn store_document(&self) -> Result<(Arc<Document>, Arc<Redactor>), secrets::Error> {
        self.store_document_at(ReadAt::Now).await
    }

    /// The environment's store, read as [`ReadAt`] says.
    pub async fn store_document_at(
        &self,
        at: ReadAt,
    ) -> Result<(Arc<Document>, Arc<Redactor>), secrets::Error> {
        let keys = self.keys.as_ref().ok_or_else(|| self.no_identity())?;
        let document = match at {
            ReadAt::Now => self.backend.secrets.document(keys).await?,
            ReadAt::Known => self.backend.secrets.document_as_known(keys).await?,
        };
        let mut cached = self
            .store_redactor
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some((seen, redactor)) = cached.as_ref()
            && Arc::ptr_eq(seen, &document)
        {
            return Ok((document, redactor.clone()));
        }
        let redactor = Arc::new(Redactor::of_secrets(
            document
                .secrets
                .iter()
                .map(|(name, entry)| (name.as_str(), entry.value.expose())),
        ));
        *cached = Some((document.clone(), redactor.clone()));
        Ok((document, redactor))
    }

    /// Runs an admitted request to its end. The record is appended to the
    /// endpoint log when the endpoint has `log enabled` (not for dry runs).
    pub async fn run(&self, admitted: Admitted) -> Finished {
        self.run_holding(admitted, Vec::new()).await
    }

    /// Runs an admitted request that already holds the run locks given
    /// (by endpoint key): a refresh on read takes its endpoint's lock
    /// before it decides to run, and the run must not wait for itself.
    pub(crate) async fn run_holding(
        &self,
        admitted: Admitted,
        held: Vec<(String, Box<dyn crate::backend::Held>)>,
    ) -> Finished {
        let Admitted { request } = admitted;
        let started_at = secrets::document::now();
        let lag_ms = request
            .due_at
            .map(|due| (Utc::now() - due).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0);
        let clock = Instant::now();
        let run_id = new_run_id();
        let endpoint_key = format!("{}.{}", request.service, request.endpoint);
        let replay_of = request.replay.as_ref().map(|r| r.run_id.clone());
        let mut run = Run {
            engine: self,
            dry_run: request.dry_run,
            trigger: request.trigger.clone(),
            trace: Trace::default(),
            redactor: Redactor::default(),
            document: None,
            held,
            run_id: run_id.clone(),
            endpoint_key: endpoint_key.clone(),
            root_depth: 0,
            journaled: Vec::new(),
            discovered: Default::default(),
            breaking: false,
            subject: None,
            replay: request.replay.clone(),
            account: None,
            identity: request.identity.clone(),
            params: request.params.clone(),
            based_on: BTreeMap::new(),
            settled: Vec::new(),
            sends: 0,
            settling: false,
            journal_settled: false,
            named_accounts: Vec::new(),
            answered_at: None,
            refresh_token_expires_at: None,
        };
        let identity = self
            .script
            .identity(&request.identity)
            .expect("the request was admitted: the identity exists");
        let account = match self.account_of(&request) {
            Some(key) => self.backend.connections.load_one(&key).await.map(|state| {
                Some(super::interpreter::Account {
                    tags: state.map(|s| s.tags).unwrap_or_default(),
                    key,
                })
            }),
            None => Ok(None),
        };
        let (variables, result) = match account {
            Ok(account) => {
                run.account = account;
                run.endpoint(
                    &request.service,
                    &request.endpoint,
                    identity,
                    std::borrow::Cow::Borrowed(&request.params),
                    0,
                )
                .await
            }
            Err(e) => (BTreeMap::new(), Err(super::interpreter::store_failure(&e))),
        };
        let outcome = match &result {
            Ok(_) => Outcome::Success,
            Err(e) if e.kind == ErrorKind::PermissionDenied => Outcome::Denied,
            Err(_) => Outcome::Failed,
        };
        let (answer, mut error) = match result {
            Ok(answer) => (answer, None),
            Err(error) => (None, Some(error)),
        };
        // A successful run that settled its journal under its lock has
        // nothing left to forget.
        let settled_under_lock = error.is_none() && run.journal_settled;
        if !request.dry_run && !settled_under_lock {
            self.settle_journal(&request, &run_id, &run.journaled, error.as_mut())
                .await;
        }
        self.observe_connections(
            &request,
            error.as_ref(),
            run.refresh_token_expires_at,
            &run.named_accounts,
        )
        .await;
        let redactor = run.redactor;
        let mut record = RunRecord {
            id: run_id,
            endpoint: endpoint_key,
            environment: self.env().to_string(),
            identity: request.identity.clone(),
            method: request.method.clone(),
            trigger: request.trigger.clone(),
            started_at,
            duration_ms: clock.elapsed().as_millis() as u64,
            outcome,
            lag_ms,
            dry_run: request.dry_run,
            trace: run.trace.into_events(),
            error: error.as_ref().map(|e| e.to_report()),
            variables,
            replay_of,
            hooks: Vec::new(),
            response: answer
                .as_ref()
                .map(|a| serde_json::json!({"status": a.status, "body": a.recorded})),
        };
        if !request.dry_run && request.replay.is_none() {
            self.endpoint_hooks(&request, &mut record, error.as_ref(), &redactor)
                .await;
        }
        // Everything in the record was redacted as it was made; this pass
        // also catches values first seen after the text that holds them.
        record.redact(&redactor);
        let logged = self
            .script
            .endpoint(&request.service, &request.endpoint)
            .is_some_and(|e| e.log_enabled());
        if logged
            && !request.dry_run
            && let Err(e) = self
                .backend
                .logs
                .append(LogName::Endpoint(&record.endpoint), &record)
                .await
        {
            tracing::warn!("cannot write the endpoint log: {e}");
        }
        Finished {
            record,
            error,
            redactor,
            answer,
        }
    }
}

impl Engine {
    /// The endpoint's `on_failure` after a failed run, its `on_recovery`
    /// after the first success that follows failures. The count of failures
    /// since the last success is kept with the schedules' states, under
    /// `endpoint:SERVICE.ENDPOINT`, so it holds across processes.
    async fn endpoint_hooks(
        &self,
        request: &RunRequest,
        record: &mut RunRecord,
        error: Option<&RunError>,
        redactor: &Redactor,
    ) {
        let Some(endpoint) = self.script.endpoint(&request.service, &request.endpoint) else {
            return;
        };
        if endpoint.on_failure.is_none() && endpoint.on_recovery.is_none() {
            return;
        }
        if record.outcome == Outcome::Denied {
            return;
        }
        let key = format!("endpoint:{}", record.endpoint);
        // Runs that take no run lock may end together: the count is read and
        // written under a lock of its own, so one of them is the recovery.
        let _counting = match self
            .backend
            .locks
            .run_lock(&format!("{key}.hooks"), Duration::from_secs(10))
            .await
        {
            Ok(held) => Some(held),
            Err(e) => {
                tracing::warn!("cannot lock the hook state of `{}`: {e:?}", record.endpoint);
                None
            }
        };
        let mut state = match self.backend.schedules.load_one(&key).await {
            Ok(state) => state.unwrap_or_default(),
            Err(e) => {
                tracing::warn!("cannot read the hook state of `{}`: {e}", record.endpoint);
                Default::default()
            }
        };
        let failures_before = state.failures;
        state.finished(record.started_at, record.outcome, &record.id);
        let states = BTreeMap::from([(key, state)]);
        if let Err(e) = self.backend.schedules.save(&states).await {
            tracing::warn!("cannot save the hook state of `{}`: {e}", record.endpoint);
        }
        let kind = match record.outcome {
            Outcome::Success if failures_before > 0 => HookKind::OnRecovery,
            Outcome::Success => return,
            _ => HookKind::OnFailure,
        };
        let Some(hook) = endpoint.hook(kind) else {
            return;
        };
        let report = self
            .hook(
                kind,
                &hook.body,
                &request.service,
                &request.identity,
                &request.params,
                record,
                error,
                redactor,
                "endpoint".into(),
            )
            .await;
        record.hooks.push(report);
    }

    /// Runs a hook of `subject` (a finished run) in `service` as
    /// `identity`. Its failure is reported and logged, never raised: a
    /// hook does not set off hooks.
    #[allow(clippy::too_many_arguments)]
    pub async fn hook(
        &self,
        kind: HookKind,
        body: &Block,
        service: &str,
        identity: &str,
        params: &BTreeMap<String, serde_json::Value>,
        subject: &RunRecord,
        error: Option<&RunError>,
        redactor: &Redactor,
        of: String,
    ) -> HookReport {
        let (Some(service_decl), Some(identity_decl)) =
            (self.script.service(service), self.script.identity(identity))
        else {
            return HookReport {
                hook: kind.keyword().into(),
                of,
                outcome: Outcome::Failed,
                trace: Vec::new(),
                error: None,
            };
        };
        let run_id = new_run_id();
        let key = format!("{}.{}", subject.endpoint, kind.keyword());
        let mut known = Redactor::default();
        known.absorb(redactor);
        let mut run = Run {
            engine: self,
            dry_run: false,
            trigger: subject.trigger.clone(),
            trace: Trace::default(),
            redactor: known,
            document: None,
            held: Vec::new(),
            run_id: run_id.clone(),
            endpoint_key: key.clone(),
            root_depth: 0,
            journaled: Vec::new(),
            discovered: Default::default(),
            breaking: false,
            subject: Some((subject.id.clone(), subject.endpoint.clone())),
            replay: None,
            account: None,
            identity: identity.to_string(),
            params: params.clone(),
            based_on: BTreeMap::new(),
            settled: Vec::new(),
            sends: 0,
            settling: false,
            journal_settled: false,
            named_accounts: Vec::new(),
            answered_at: None,
            refresh_token_expires_at: None,
        };
        let result = run
            .hook(service_decl, identity_decl, params, body, error.cloned())
            .await;
        // A hook that failed after an answer came keeps it: a `run_service`
        // of a refresh may have been answered a rotated token it never
        // stored (`svc secret recover` shows it).
        if result.is_ok()
            && !run.journaled.is_empty()
            && let Err(e) = self.backend.journal.settled(&key, &run_id).await
        {
            tracing::warn!("cannot prune the recovery journal after a hook: {e}");
        }
        if let Err(e) = &result {
            tracing::warn!(
                env = self.env(),
                run = subject.id.as_str(),
                endpoint = subject.endpoint.as_str(),
                "{} of {of} failed: {} ({})",
                kind.keyword(),
                run.redactor.redact(&e.message),
                e.code()
            );
        }
        let mut report = HookReport {
            hook: kind.keyword().into(),
            of,
            outcome: if result.is_ok() {
                Outcome::Success
            } else {
                Outcome::Failed
            },
            trace: run.trace.into_events(),
            error: result.err().map(|e| e.to_report()),
        };
        report.redact(&run.redactor);
        report
    }

    /// The error of a run that needs an identity and has none.
    pub fn no_identity(&self) -> secrets::Error {
        secrets::Error::NoIdentity {
            tried: self.identity_search.0.clone(),
            recipients: self.identity_search.1.clone(),
        }
    }

    /// The kept answers of the last failed run of an endpoint, for a replay.
    pub async fn replay_for(
        &self,
        service: &str,
        endpoint: &str,
        connection: Option<&str>,
    ) -> Result<Replay, Refusal> {
        let key = run_key::join(&format!("{service}.{endpoint}"), connection);
        let journal = &self.backend.journal;
        let listed = journal
            .latest_recoverable(&key)
            .await
            .map_err(|e| store_refusal(&e))?;
        if listed.is_empty() {
            return Err(Refusal {
                code: "svc::run::nothing_to_replay",
                message: format!(
                    "the recovery journal of `{}` ({}) holds no answer for `{key}`",
                    self.env(),
                    journal.describe()
                ),
                help: Some(
                    "a replay uses the answers a failed run kept; `svc secret recover` lists them"
                        .into(),
                ),
                kind: RefusalKind::Invalid,
            });
        }
        Ok(self.replay_of(&listed).await?.1)
    }

    /// The kept answers of one run, for `svc secret recover --apply`: the
    /// request that replays it as it ran (endpoint, identity, parameters).
    pub async fn replay_run(&self, run_id: &str) -> Result<RunRequest, Refusal> {
        let journal = &self.backend.journal;
        let listed: Vec<_> = journal
            .list()
            .await
            .map_err(|e| store_refusal(&e))?
            .into_iter()
            .filter(|l| l.run_id == run_id)
            .collect();
        if !listed.iter().any(|l| l.is_success()) {
            return Err(Refusal {
                code: "svc::run::nothing_to_replay",
                message: format!(
                    "the recovery journal of `{}` holds no successful answer of run `{run_id}`",
                    self.env()
                ),
                help: Some("`svc secret recover` lists the runs and their answers".into()),
                kind: RefusalKind::Invalid,
            });
        }
        let (first, replay) = self.replay_of(&listed).await?;
        let (endpoint_key, connection) = run_key::split(&first.endpoint);
        let (service, endpoint) = endpoint_key.split_once('.').unwrap_or((endpoint_key, ""));
        let method = match self.script.endpoint(service, endpoint) {
            Some(decl) if !decl.allows("POST") => decl
                .methods
                .first()
                .map_or("GET".into(), |m| m.text.to_ascii_uppercase()),
            _ => "POST".into(),
        };
        Ok(RunRequest {
            service: service.to_string(),
            endpoint: endpoint.to_string(),
            identity: first.identity.clone(),
            method,
            params: first.params.clone(),
            dry_run: false,
            trigger: crate::backend::record::Trigger::Cli,
            due_at: None,
            replay: Some(replay),
            force: false,
            connection: connection.map(str::to_string),
        })
    }

    /// The answers of one run's entries, refused when a secret the run
    /// read has been written since: they would replace a newer value.
    async fn replay_of(
        &self,
        listed: &[journal::Listed],
    ) -> Result<(journal::Entry, Replay), Refusal> {
        let keys = self
            .keys
            .as_ref()
            .ok_or_else(|| store_refusal(&self.no_identity()))?;
        let journal = &self.backend.journal;
        let mut entries = VecDeque::new();
        // Answers only: a send's record is not one.
        for l in listed
            .iter()
            .filter(|l| !l.is_sent() && l.status != journal::NO_ANSWER)
        {
            entries.push_back(journal.read(l, keys).await.map_err(|e| store_refusal(&e))?);
        }
        let Some(first) = entries.front().cloned() else {
            return Err(Refusal {
                code: "svc::run::nothing_to_replay",
                message: "the run kept no answer, only the record of a send".into(),
                help: Some("`svc secret recover` lists the runs and their answers".into()),
                kind: RefusalKind::Invalid,
            });
        };
        let document = self
            .view_of(&first.endpoint)
            .await
            .map_err(|e| store_refusal(&e))?;
        let newer: Vec<&String> = first
            .based_on
            .iter()
            .filter(|(name, version)| document.get(name).map_or(0, |e| e.version) != **version)
            .map(|(name, _)| name)
            .collect();
        if !newer.is_empty() {
            return Err(Refusal {
                code: "svc::run::obsolete_answer",
                message: format!(
                    "run {} kept its answers before {} was written again: they would replace a \
                     newer value",
                    first.run_id,
                    newer
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                help: Some(format!(
                    "nothing to recover; `svc secret recover --env {} --discard {}` forgets them",
                    self.env(),
                    first.run_id
                )),
                kind: RefusalKind::Invalid,
            });
        }
        let replay = Replay {
            run_id: first.run_id.clone(),
            entries,
        };
        Ok((first, replay))
    }

    /// The values a run of a run key reads: the store's, and for a
    /// per-account run its connection's too.
    async fn view_of(&self, key: &str) -> Result<Arc<Document>, secrets::Error> {
        let (document, _) = self.store_document().await?;
        let (endpoint, connection) = run_key::split(key);
        let (Some(client), Some(id)) = (self.per_account_client(endpoint), connection) else {
            return Ok(document);
        };
        let keys = self.keys.as_ref().ok_or_else(|| self.no_identity())?;
        let account = crate::backend::ConnectionKey {
            client: client.to_string(),
            connection_id: id.to_string(),
        };
        let values = self.backend.accounts.document(keys, &account).await?;
        Ok(Arc::new(self.account_view(&document, &values)))
    }

    /// What a per-account run reads: the shared secrets and the account's
    /// values as one document (per-account names are never shared ones).
    pub(super) fn account_view(&self, shared: &Document, values: &Document) -> Document {
        let mut view = Document::new(self.env());
        view.secrets = shared.secrets.clone();
        view.secrets
            .extend(values.secrets.iter().map(|(n, e)| (n.clone(), e.clone())));
        view
    }

    /// After a run: a success makes the answers it kept, and older ones
    /// of its endpoint, obsolete; a failure that kept a good answer says
    /// how to replay it.
    async fn settle_journal(
        &self,
        request: &RunRequest,
        run_id: &str,
        journaled: &[u16],
        error: Option<&mut RunError>,
    ) {
        let journal = &self.backend.journal;
        let endpoint = format!("{}.{}", request.service, request.endpoint);
        let key = run_key::join(&endpoint, request.connection.as_deref());
        let Some(error) = error else {
            // A run that kept no answer, of an endpoint that updates no
            // secret (and so keeps none), has nothing there to settle.
            if journaled.is_empty() && request.replay.is_none() && !self.updates_secrets_key(&key) {
                return;
            }
            if let Err(e) = journal.settled(&key, run_id).await {
                tracing::warn!("cannot prune the recovery journal: {e}");
            }
            return;
        };
        let kept = match &request.replay {
            Some(replay) => Some(replay.run_id.as_str()),
            None if journaled.iter().any(|s| (200..300).contains(s)) => Some(run_id),
            None => None,
        };
        if let Some(kept) = kept {
            self.kept_answer_help(&key, &request.identity, kept, error);
        }
    }

    /// Adds to the error of a failed run of `key` that run `kept`'s answer
    /// waits in the recovery journal, and how to store it.
    pub(super) fn kept_answer_help(
        &self,
        key: &str,
        identity: &str,
        kept: &str,
        error: &mut RunError,
    ) {
        let command = self.replay_command(key, identity);
        let note = format!(
            "the answer that run {kept} received is kept in the recovery journal: fix the \
             program, then `{command}` uses it without sending the request again"
        );
        error.help = Some(match error.help.take() {
            Some(help) => format!("{help}; {note}"),
            None => note,
        });
    }
}

pub(super) fn store_refusal(error: &secrets::Error) -> Refusal {
    Refusal {
        code: error.code(),
        message: error.to_string(),
        help: error.help(),
        kind: RefusalKind::Invalid,
    }
}

/// A time-ordered, unique run id: milliseconds since 1970 and randomness.
pub(super) fn new_run_id() -> String {
    let millis = Utc::now().timestamp_millis().max(0) as u64;
    format!("{millis:013x}{:08x}", fastrand::u32(..))
}
