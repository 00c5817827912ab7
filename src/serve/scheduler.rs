//! The scheduler of `svc serve`: one timer over every schedule, firing each
//! as its service account when it is due.
//!
//! Where the backend is shared by several replicas (PostgreSQL), each runs
//! this loop over every schedule, and a due fire runs in the one replica
//! that claims it: the claim is tied to that replica's database session (a
//! killed replica's claim goes with it), and the claimant checks against
//! the stored state that the fire is still due before it runs, so every
//! fire time runs once in the fleet. With the files backend one process
//! leads (a `flock`), and the others stand by.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::App;
use super::health::SchedulerState;
use crate::backend::{Held, LogName};
use crate::backend::{ScheduleState, Trigger};
use crate::program::Script;
use crate::run::{Finished, RunRequest};
use crate::schedule::Schedule;
use crate::syntax::ast::HookKind;

/// How often the scheduler looks again even when nothing is due: a
/// `before_expiry` secret may have been refreshed by another process.
const RECHECK: Duration = Duration::from_secs(30);
/// How often the state is written at most, when runs finish (one leading
/// process; a shared backend saves each fire's state at once).
const SAVE_EVERY: Duration = Duration::from_secs(1);
/// How often a standby server tries to take over the schedules.
const TAKE_OVER_EVERY: Duration = Duration::from_secs(5);
/// How soon a fire another replica holds is looked at again.
const CLAIMED_ELSEWHERE: Duration = Duration::from_millis(500);

/// The schedules of the program and what is known of them.
pub struct Schedules {
    specs: Vec<Schedule>,
    states: Mutex<BTreeMap<String, ScheduleState>>,
    /// The last save of the state failed.
    save_failing: AtomicBool,
}

impl Schedules {
    /// The schedules of the program and their remembered states.
    pub fn new(script: &Script, mut states: BTreeMap<String, ScheduleState>) -> Schedules {
        let specs = Schedule::all(script);
        // Forget schedules the program no longer has.
        states.retain(|name, _| specs.iter().any(|s| &s.name == name));
        Schedules {
            specs,
            states: Mutex::new(states),
            save_failing: AtomicBool::new(false),
        }
    }

    /// Whether any schedule is enabled.
    pub fn any_enabled(&self) -> bool {
        self.specs.iter().any(|s| s.enabled)
    }

    /// Whether the last save of the state failed.
    pub fn save_failing(&self) -> bool {
        self.save_failing.load(Ordering::Relaxed)
    }

    pub fn specs(&self) -> &[Schedule] {
        &self.specs
    }

    pub fn snapshot(&self) -> BTreeMap<String, ScheduleState> {
        self.states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn next_runs(&self) -> Vec<(String, DateTime<Utc>)> {
        self.snapshot()
            .into_iter()
            .filter_map(|(name, state)| Some((name, state.next_run_at?)))
            .collect()
    }

    fn state(&self, name: &str) -> ScheduleState {
        self.states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    fn update(&self, name: &str, change: impl FnOnce(&mut ScheduleState)) {
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        change(states.entry(name.to_string()).or_default());
    }

    /// Saves some states (all of them when `only` is `None`).
    async fn save(&self, app: &App, only: Option<&str>) {
        let mut states = self.snapshot();
        if let Some(name) = only {
            states.retain(|n, _| n == name);
        }
        let saved = app.engine.backend.schedules.save(&states).await;
        if let Err(e) = &saved {
            tracing::warn!(
                "cannot save the schedule state to {}: {e}",
                app.engine.backend.schedules.describe()
            );
        }
        self.save_failing.store(saved.is_err(), Ordering::Relaxed);
    }
}

/// How a fire ended, told to the loop.
enum Fired {
    /// It ran (or was refused at admission: `None`).
    Ran(Option<Box<Finished>>),
    /// It was not started: a connection it refreshes needs a person.
    Skipped(String),
    /// Another replica ran it: the state as stored now.
    RanElsewhere(Option<ScheduleState>),
    /// Another replica holds it now: look again soon.
    Claimed,
    /// A `for_each_connection` fire ran once per connected account.
    FannedOut(FanOut),
}

/// What a `for_each_connection` fire did.
#[derive(Debug, Default)]
struct FanOut {
    started_at: Option<DateTime<Utc>>,
    succeeded: usize,
    failed: usize,
    /// Accounts that need a person (never sent to), and those whose
    /// `before_expiry` secret is not due yet.
    skipped: usize,
    not_due: usize,
    /// The last run's id.
    last_run: Option<String>,
}

/// The expiries of the secrets `before_expiry` schedules watch.
async fn expiries(app: &App) -> BTreeMap<String, DateTime<Utc>> {
    let watched: Vec<&str> = app
        .schedules
        .specs()
        .iter()
        .filter_map(|s| s.before_expiry.as_ref().map(|(secret, _)| secret.as_str()))
        .collect();
    if watched.is_empty() {
        return BTreeMap::new();
    }
    let Ok((document, _)) = app.engine.store_document().await else {
        return BTreeMap::new();
    };
    watched
        .into_iter()
        .filter_map(|name| Some((name.to_string(), document.get(name)?.expires_at?)))
        .collect()
}

/// Runs the schedules until `shutdown`.
pub async fn run(app: Arc<App>, shutdown: CancellationToken) {
    let specs = app.schedules.specs().to_vec();
    if !app.schedules.any_enabled() {
        app.health.set_scheduler(SchedulerState::Off {
            reason: "the program has no enabled schedule",
        });
        return;
    }
    let Some(_leading) = take_over(&app, &shutdown).await else {
        return;
    };
    let shared = app.engine.backend.is_shared();
    app.health.set_scheduler(SchedulerState::Running);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Fired)>();
    let mut queue: BinaryHeap<Reverse<(DateTime<Utc>, usize, u64)>> = BinaryHeap::new();
    let mut generation = vec![0u64; specs.len()];
    let mut in_flight = vec![false; specs.len()];
    let mut dirty = false;
    let mut last_save = tokio::time::Instant::now();
    let mut known_expiries = expiries(&app).await;

    let plan = |index: usize,
                queue: &mut BinaryHeap<Reverse<(DateTime<Utc>, usize, u64)>>,
                generation: &mut [u64],
                expiries: &BTreeMap<String, DateTime<Utc>>| {
        let spec = &specs[index];
        let now = Utc::now();
        let mut state = app.schedules.state(&spec.name);
        if let Some(future) = clamp_clock_skew(&mut state, now) {
            warn_clock_skew(&spec.name, future);
            app.schedules.update(&spec.name, |s| *s = state.clone());
        }
        let expiry = spec
            .before_expiry
            .as_ref()
            .and_then(|(secret, _)| expiries.get(secret).copied());
        let next = spec.next_run(&state, expiry, now);
        app.schedules.update(&spec.name, |s| s.next_run_at = next);
        generation[index] += 1;
        if let Some(next) = next {
            queue.push(Reverse((next, index, generation[index])));
        }
    };
    for index in 0..specs.len() {
        plan(index, &mut queue, &mut generation, &known_expiries);
    }
    if !shared {
        app.schedules.save(&app, None).await;
    }
    let mut last_recheck = tokio::time::Instant::now();

    loop {
        let now = Utc::now();
        let wait = queue
            .peek()
            .map(|Reverse((at, _, _))| (*at - now).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(RECHECK)
            .min(RECHECK);
        let wait = if dirty { wait.min(SAVE_EVERY) } else { wait };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some((index, fired)) = done_rx.recv() => {
                let spec = &specs[index];
                in_flight[index] = false;
                match fired {
                    Fired::Ran(Some(finished)) => {
                        finish(&app, spec, &finished).await;
                        known_expiries = expiries(&app).await;
                        dirty = !shared;
                    }
                    fired @ Fired::FannedOut(_) => {
                        let now = Utc::now();
                        app.schedules.update(&spec.name, |s| fired.record(s, now));
                        dirty = !shared;
                    }
                    fired @ (Fired::Skipped(_) | Fired::Ran(None)) => {
                        let now = Utc::now();
                        app.schedules.update(&spec.name, |s| fired.record(s, now));
                        dirty = !shared;
                    }
                    Fired::RanElsewhere(stored) => {
                        if let Some(stored) = stored {
                            app.schedules.update(&spec.name, |s| *s = stored);
                        }
                        known_expiries = expiries(&app).await;
                    }
                    Fired::Claimed => {
                        generation[index] += 1;
                        let again = Utc::now() + chrono::TimeDelta::from_std(CLAIMED_ELSEWHERE).unwrap_or_default();
                        queue.push(Reverse((again, index, generation[index])));
                        continue;
                    }
                }
                plan(index, &mut queue, &mut generation, &known_expiries);
            }
            _ = tokio::time::sleep(wait) => {}
        }
        if dirty && last_save.elapsed() >= SAVE_EVERY {
            app.schedules.save(&app, None).await;
            dirty = false;
            last_save = tokio::time::Instant::now();
        }
        if last_recheck.elapsed() >= RECHECK {
            // Expiries may have moved: plan `before_expiry` schedules again.
            known_expiries = expiries(&app).await;
            for index in 0..specs.len() {
                if specs[index].before_expiry.is_some() && !in_flight[index] {
                    plan(index, &mut queue, &mut generation, &known_expiries);
                }
            }
            last_recheck = tokio::time::Instant::now();
        }
        let now = Utc::now();
        while let Some(Reverse((at, index, planned))) = queue.peek().copied() {
            if at > now {
                break;
            }
            queue.pop();
            if planned != generation[index] || in_flight[index] || shutdown.is_cancelled() {
                continue;
            }
            in_flight[index] = true;
            fire(&app, &specs[index], index, at, done_tx.clone());
        }
    }
    if !shared {
        app.schedules.save(&app, None).await;
    }
}

fn fire(
    app: &Arc<App>,
    spec: &Schedule,
    index: usize,
    due_at: DateTime<Utc>,
    done: tokio::sync::mpsc::UnboundedSender<(usize, Fired)>,
) {
    let request = RunRequest {
        service: spec.service.clone(),
        endpoint: spec.endpoint.clone(),
        identity: spec.account.clone(),
        method: "GET".into(),
        params: schedule_params(&app.engine.script, &spec.name),
        dry_run: false,
        trigger: Trigger::Schedule {
            name: spec.name.clone(),
        },
        // A run due before the server started is not late, it is overdue.
        due_at: Some(due_at.max(app.started_at)),
        replay: None,
        force: false,
        connection: None,
    };
    let app = app.clone();
    let spec = spec.clone();
    app.tracker.clone().spawn(async move {
        let fired = claim_and_run(&app, &spec, request, due_at).await;
        let _ = done.send((index, fired));
    });
}

/// A schedule's fixed values for its endpoint's parameters.
pub fn schedule_params(
    script: &Script,
    schedule: &str,
) -> std::collections::BTreeMap<String, serde_json::Value> {
    script
        .schedule(schedule)
        .map(|decl| {
            decl.params
                .iter()
                .filter_map(|f| {
                    Some((
                        f.name.value.clone(),
                        crate::check::values::constant(&f.value)?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Fired {
    /// What a fire that ran here (or was refused or skipped here) leaves
    /// in its schedule's state.
    fn record(&self, state: &mut ScheduleState, now: DateTime<Utc>) {
        match self {
            Fired::Ran(Some(f)) => {
                state.finished(f.record.started_at, f.record.outcome, &f.record.id)
            }
            Fired::Ran(None) => state.finished(now, crate::backend::Outcome::Denied, "refused"),
            Fired::Skipped(reason) => state.skipped(now, reason.clone()),
            Fired::FannedOut(fan) => {
                let outcome = if fan.failed > 0 {
                    crate::backend::Outcome::Failed
                } else {
                    crate::backend::Outcome::Success
                };
                let id = fan.last_run.clone().unwrap_or_else(|| "none".into());
                state.finished(fan.started_at.unwrap_or(now), outcome, &id);
            }
            Fired::RanElsewhere(_) | Fired::Claimed => {}
        }
    }
}

/// Claims a due fire, checks (on a shared backend) that it is still due by
/// the stored state, runs it, and saves its state before letting go.
async fn claim_and_run(
    app: &Arc<App>,
    spec: &Schedule,
    request: RunRequest,
    due_at: DateTime<Utc>,
) -> Fired {
    let backend = &app.engine.backend;
    let claim: Box<dyn Held> = match backend.locks.claim_fire(&spec.name).await {
        Ok(Some(claim)) => claim,
        Ok(None) => return Fired::Claimed,
        Err(e) => {
            tracing::warn!("schedule `{}` cannot be claimed: {e}", spec.name);
            return Fired::Claimed;
        }
    };
    // Failed fires since the last success, before this one: what decides
    // between `on_failure` and `on_recovery`.
    let mut failures_before = app.schedules.state(&spec.name).failures;
    if backend.is_shared() {
        let stored = match backend.schedules.load_one(&spec.name).await {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!("schedule `{}`: cannot read its state: {e}", spec.name);
                return Fired::Claimed;
            }
        };
        failures_before = stored.as_ref().map_or(0, |s| s.failures);
        let expiry = match &spec.before_expiry {
            Some((secret, _)) => app
                .engine
                .store_document()
                .await
                .ok()
                .and_then(|(d, _)| d.get(secret)?.expires_at),
            None => None,
        };
        let now = Utc::now();
        let mut state = stored.clone().unwrap_or_default();
        clamp_clock_skew(&mut state, now);
        let still_due = spec
            .next_run(&state, expiry, now)
            .is_some_and(|next| next <= now);
        if !still_due {
            return Fired::RanElsewhere(stored);
        }
    }
    tracing::info!(
        env = app.engine.env(),
        schedule = spec.name.as_str(),
        endpoint = format!("{}.{}", spec.service, spec.endpoint),
        identity = spec.account.as_str(),
        due_at = %due_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "schedule fired"
    );
    let fired = match &spec.for_each_connection {
        Some((client, concurrency)) => {
            Fired::FannedOut(fan_out(app, spec, client, *concurrency, request).await)
        }
        None => run_once(app, spec, request, failures_before).await,
    };
    if backend.is_shared() {
        // The fire's state is stored before the claim goes: a replica that
        // claims next sees it ran.
        let now = Utc::now();
        app.schedules.update(&spec.name, |s| fired.record(s, now));
        app.schedules.save(app, Some(&spec.name)).await;
    }
    drop(claim);
    fired
}

/// A fire of a schedule without `for_each_connection`: one run.
async fn run_once(
    app: &Arc<App>,
    spec: &Schedule,
    request: RunRequest,
    failures_before: u32,
) -> Fired {
    match app.engine.admit_and_run(request).await {
        Ok(finished) => {
            let mut finished = Box::new(finished);
            schedule_hooks(app, spec, &mut finished, failures_before).await;
            Fired::Ran(Some(finished))
        }
        Err(refusal) if matches!(refusal.kind, crate::run::RefusalKind::NeedsPerson(_)) => {
            tracing::info!("schedule `{}` skipped: {}", spec.name, refusal.message);
            Fired::Skipped(format!("{}: {}", refusal.code, refusal.message))
        }
        Err(refusal) => {
            tracing::warn!("schedule `{}` cannot run: {}", spec.name, refusal.message);
            Fired::Ran(None)
        }
    }
}

/// How many connected accounts a fan-out reads at a time.
const FAN_OUT_PAGE: usize = 500;

/// A `for_each_connection` fire: the endpoint once per connected account
/// of `client` that can be refreshed — not one in `needs_reconsent`,
/// `misconfigured` or `revoked`; a `degraded` one runs — at most
/// `concurrency` at once, reading the accounts page by page so that memory
/// does not grow with their number. Each run takes its account's own run
/// lock, so no two refreshes of one account overlap, here or elsewhere.
async fn fan_out(
    app: &Arc<App>,
    spec: &Schedule,
    client: &str,
    concurrency: usize,
    template: RunRequest,
) -> FanOut {
    let backend = &app.engine.backend;
    let mut fan = FanOut {
        started_at: Some(Utc::now()),
        ..FanOut::default()
    };
    let permits = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut runs = tokio::task::JoinSet::new();
    let mut query = crate::backend::ConnectionQuery {
        client: Some(client.to_string()),
        limit: FAN_OUT_PAGE,
        ..Default::default()
    };
    let tally = |fan: &mut FanOut, ran: Result<Result<Finished, crate::run::Refusal>, _>| match ran
    {
        Ok(Ok(finished)) => {
            app.finished(&finished.record, None);
            fan.last_run = Some(finished.record.id.clone());
            if finished.record.outcome == crate::backend::Outcome::Success {
                fan.succeeded += 1;
            } else {
                fan.failed += 1;
            }
        }
        Ok(Err(refusal)) if matches!(refusal.kind, crate::run::RefusalKind::NeedsPerson(_)) => {
            fan.skipped += 1;
        }
        Ok(Err(refusal)) => {
            tracing::warn!("schedule `{}` cannot run: {}", spec.name, refusal.message);
            fan.failed += 1;
        }
        Err(_) => fan.failed += 1,
    };
    'pages: loop {
        let page = match backend.connections.page(&query).await {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(
                    "schedule `{}` cannot list the accounts of `{client}`: {e}",
                    spec.name
                );
                fan.failed += 1;
                break 'pages;
            }
        };
        for (key, state) in page.connections {
            if state.state.needs_person() {
                fan.skipped += 1;
                continue;
            }
            if !due_by_expiry(app, spec, &key).await {
                fan.not_due += 1;
                continue;
            }
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break 'pages;
            };
            let request = RunRequest {
                connection: Some(key.connection_id),
                ..template.clone()
            };
            let app = app.clone();
            runs.spawn(async move {
                let _permit = permit;
                app.engine.admit_and_run(request).await
            });
            // What finished goes now: the set holds the runs in flight.
            while let Some(ran) = runs.try_join_next() {
                tally(&mut fan, ran);
            }
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    while let Some(ran) = runs.join_next().await {
        tally(&mut fan, ran);
    }
    tracing::info!(
        env = app.engine.env(),
        schedule = spec.name.as_str(),
        succeeded = fan.succeeded,
        failed = fan.failed,
        skipped = fan.skipped,
        not_due = fan.not_due,
        "schedule ran once per connected account of `{client}`"
    );
    fan
}

/// Whether a connected account is due by the schedule's `before_expiry`,
/// whose secret has a value per account: when the value expires within the
/// lead, or has no known expiry. Due when the schedule has none.
async fn due_by_expiry(app: &App, spec: &Schedule, key: &crate::backend::ConnectionKey) -> bool {
    let Some((secret, lead)) = &spec.before_expiry else {
        return true;
    };
    if !app
        .engine
        .script
        .secret(secret)
        .is_some_and(|s| s.per_account)
    {
        return true;
    }
    let Some(keys) = app.engine.keys.as_ref() else {
        return true;
    };
    let expires_at = match app.engine.backend.accounts.document(keys, key).await {
        Ok(values) => values.get(secret).and_then(|e| e.expires_at),
        Err(_) => return true,
    };
    let lead = chrono::TimeDelta::from_std(*lead).unwrap_or(chrono::TimeDelta::MAX);
    expires_at.is_none_or(|at| {
        Utc::now()
            .checked_add_signed(lead)
            .is_none_or(|edge| at <= edge)
    })
}

/// The schedule's `on_failure` after a failed fire, its `on_recovery`
/// after the first success that follows failed fires; what it did goes into
/// the record the schedule's log keeps.
async fn schedule_hooks(app: &App, spec: &Schedule, finished: &mut Finished, failures_before: u32) {
    let kind = match finished.record.outcome {
        crate::backend::Outcome::Failed => HookKind::OnFailure,
        crate::backend::Outcome::Success if failures_before > 0 => HookKind::OnRecovery,
        _ => return,
    };
    let Some(hook) = app
        .engine
        .script
        .schedule(&spec.name)
        .and_then(|decl| decl.hook(kind))
    else {
        return;
    };
    let report = app
        .engine
        .hook(
            kind,
            &hook.body,
            &spec.service,
            &spec.account,
            &BTreeMap::new(),
            &finished.record,
            finished.error.as_ref(),
            &finished.redactor,
            format!("schedule {}", spec.name),
        )
        .await;
    finished.record.hooks.push(report);
}

async fn finish(app: &App, spec: &Schedule, finished: &Finished) {
    let record = &finished.record;
    app.finished(record, None);
    app.schedules.update(&spec.name, |s| {
        s.finished(record.started_at, record.outcome, &record.id)
    });
    let logs = &app.engine.backend.logs;
    if let Err(e) = logs.append(LogName::Schedule(&spec.name), record).await {
        tracing::warn!(
            "cannot write {}: {e}",
            logs.describe(LogName::Schedule(&spec.name))
        );
    }
}

/// A last run in the future (the clock was wrong, or another machine's
/// clock wrote the state) would hold the schedule back until that time:
/// it counts as now. Returns the time it said, if it was in the future.
pub fn clamp_clock_skew(state: &mut ScheduleState, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let future = state.last_run_at.filter(|at| *at > now)?;
    state.last_run_at = Some(now);
    if state.last_success_at.is_some_and(|at| at > now) {
        state.last_success_at = Some(now);
    }
    Some(future)
}

pub fn warn_clock_skew(schedule: &str, said: DateTime<Utc>) {
    tracing::warn!(
        "schedule `{schedule}` last ran at {}, which is in the future (is a clock wrong?); counting it as now",
        said.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
}

/// Takes the lead of the schedules (files: one process runs them; the
/// others stand by and try again every few seconds); `None` if the server
/// shuts down first or the lead cannot be taken (health says why).
async fn take_over(app: &App, shutdown: &CancellationToken) -> Option<Box<dyn Held>> {
    let mut told = false;
    loop {
        match app.engine.backend.locks.schedule_leader().await {
            Ok(Some(lead)) => return Some(lead),
            Ok(None) => {
                app.health.set_scheduler(SchedulerState::Standby);
                if !told {
                    tracing::info!(
                        "another svc serve runs these schedules; this one takes over if it stops"
                    );
                    told = true;
                }
            }
            Err(e) => {
                tracing::error!("schedules do not run: cannot take the scheduler lock: {e}");
                app.health.set_scheduler(SchedulerState::Failed {
                    code: "scheduler_lock",
                    reason: "the scheduler lock cannot be taken; the server's log says why".into(),
                });
                return None;
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(TAKE_OVER_EVERY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_last_run_in_the_future_counts_as_now() {
        let now: DateTime<Utc> = "2026-11-28T12:00:00Z".parse().unwrap();
        let future: DateTime<Utc> = "2026-12-30T12:00:00Z".parse().unwrap();
        let mut state = ScheduleState {
            last_run_at: Some(future),
            last_success_at: Some(future),
            ..ScheduleState::default()
        };
        assert_eq!(clamp_clock_skew(&mut state, now), Some(future));
        assert_eq!(state.last_run_at, Some(now));
        assert_eq!(state.last_success_at, Some(now));
        // The past is left alone.
        assert_eq!(clamp_clock_skew(&mut state, now), None);
        assert_eq!(clamp_clock_skew(&mut ScheduleState::default(), now), None);
    }
}
