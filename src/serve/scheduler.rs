//! The scheduler of `svc serve`: one timer over every schedule, firing each
//! as its service account when it is due.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::App;
use super::health::SchedulerState;
use crate::program::Script;
use crate::run::{Finished, RunRequest, Trigger};
use crate::schedule::{Schedule, ScheduleState, StateFile};
use crate::secrets::atomic::{Lock, LockError};

/// How often the scheduler looks again even when nothing is due: a
/// `before_expiry` secret may have been refreshed by another process.
const RECHECK: Duration = Duration::from_secs(30);
/// How often the state file is written at most, when runs finish.
const SAVE_EVERY: Duration = Duration::from_secs(1);
/// How often a standby server tries to take over the schedules.
const TAKE_OVER_EVERY: Duration = Duration::from_secs(5);

/// The schedules of the program and what is known of them.
pub struct Schedules {
    specs: Vec<Schedule>,
    states: Mutex<BTreeMap<String, ScheduleState>>,
    file: StateFile,
    /// The last save of the state file failed.
    save_failing: AtomicBool,
}

impl Schedules {
    /// The schedules of the program and their remembered states; when the
    /// state file cannot be read, no states and the error (the scheduler
    /// must then not run: a file it cannot read is not a reason to forget).
    pub fn load(script: &Script, file: StateFile) -> (Schedules, Option<std::io::Error>) {
        let specs = Schedule::all(script);
        let (mut states, error) = match file.load() {
            Ok(states) => (states, None),
            Err(e) => (BTreeMap::new(), Some(e)),
        };
        // Forget schedules the program no longer has.
        states.retain(|name, _| specs.iter().any(|s| &s.name == name));
        let schedules = Schedules {
            specs,
            states: Mutex::new(states),
            file,
            save_failing: AtomicBool::new(false),
        };
        (schedules, error)
    }

    /// Whether any schedule is enabled.
    pub fn any_enabled(&self) -> bool {
        self.specs.iter().any(|s| s.enabled)
    }

    pub fn state_path(&self) -> &Path {
        &self.file.path
    }

    /// Whether the last save of the state file failed.
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

    fn save(&self) {
        let snapshot = self.snapshot();
        let saved = self.file.save(&snapshot);
        if let Err(e) = &saved {
            tracing::warn!(
                "cannot save the schedule state to `{}`: {e}",
                self.file.path.display()
            );
        }
        self.save_failing.store(saved.is_err(), Ordering::Relaxed);
    }

    pub fn lock_path(&self) -> PathBuf {
        self.file.scheduler_lock_path()
    }
}

/// The log of one schedule's runs.
pub fn log_path(log_dir: &Path, env: &str, schedule: &str) -> PathBuf {
    log_dir.join(env).join(format!("schedule.{schedule}.jsonl"))
}

/// Runs the schedules until `shutdown`. Only one process per state
/// directory and environment does: others wait to take over.
pub async fn run(app: Arc<App>, shutdown: CancellationToken) {
    let specs = app.schedules.specs().to_vec();
    if !app.schedules.any_enabled() {
        app.health.set_scheduler(SchedulerState::Off {
            reason: "the program has no enabled schedule",
        });
        return;
    }
    let Some(_lock) = take_over(&app, &shutdown).await else {
        return;
    };
    app.health.set_scheduler(SchedulerState::Running);
    let (done_tx, mut done_rx) =
        tokio::sync::mpsc::unbounded_channel::<(usize, Option<Finished>)>();
    let mut queue: BinaryHeap<Reverse<(DateTime<Utc>, usize, u64)>> = BinaryHeap::new();
    let mut generation = vec![0u64; specs.len()];
    let mut in_flight = vec![false; specs.len()];
    let mut dirty = false;
    let mut last_save = tokio::time::Instant::now();

    let plan = |index: usize,
                queue: &mut BinaryHeap<Reverse<(DateTime<Utc>, usize, u64)>>,
                generation: &mut [u64]| {
        let spec = &specs[index];
        let now = Utc::now();
        let mut state = app.schedules.state(&spec.name);
        if let Some(future) = clamp_clock_skew(&mut state, now) {
            warn_clock_skew(&spec.name, future);
            app.schedules.update(&spec.name, |s| *s = state.clone());
        }
        let next = spec.next_run(&state, expiry(&app, spec), now);
        app.schedules.update(&spec.name, |s| s.next_run_at = next);
        generation[index] += 1;
        if let Some(next) = next {
            queue.push(Reverse((next, index, generation[index])));
        }
    };
    for index in 0..specs.len() {
        plan(index, &mut queue, &mut generation);
    }
    app.schedules.save();
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
            Some((index, finished)) = done_rx.recv() => {
                let spec = &specs[index];
                in_flight[index] = false;
                if let Some(finished) = finished {
                    finish(&app, spec, &finished);
                } else {
                    let now = Utc::now();
                    app.schedules.update(&spec.name, |s| s.finished(now, crate::run::Outcome::Denied, "refused"));
                }
                plan(index, &mut queue, &mut generation);
                dirty = true;
            }
            _ = tokio::time::sleep(wait) => {}
        }
        if dirty && last_save.elapsed() >= SAVE_EVERY {
            app.schedules.save();
            dirty = false;
            last_save = tokio::time::Instant::now();
        }
        if last_recheck.elapsed() >= RECHECK {
            // Expiries may have moved: plan `before_expiry` schedules again.
            for index in 0..specs.len() {
                if specs[index].before_expiry.is_some() && !in_flight[index] {
                    plan(index, &mut queue, &mut generation);
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
    app.schedules.save();
}

fn fire(
    app: &Arc<App>,
    spec: &Schedule,
    index: usize,
    due_at: DateTime<Utc>,
    done: tokio::sync::mpsc::UnboundedSender<(usize, Option<Finished>)>,
) {
    let request = RunRequest {
        service: spec.service.clone(),
        endpoint: spec.endpoint.clone(),
        identity: spec.account.clone(),
        method: "GET".into(),
        params: BTreeMap::new(),
        dry_run: false,
        trigger: Trigger::Schedule {
            name: spec.name.clone(),
        },
        // A run due before the server started is not late, it is overdue.
        due_at: Some(due_at.max(app.started_at)),
        replay: None,
    };
    tracing::info!(
        env = app.engine.env(),
        schedule = spec.name.as_str(),
        endpoint = format!("{}.{}", spec.service, spec.endpoint),
        identity = spec.account.as_str(),
        due_at = %due_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "schedule fired"
    );
    let app = app.clone();
    let name = spec.name.clone();
    app.tracker.clone().spawn(async move {
        let finished = match app.engine.admit_and_run(request).await {
            Ok(finished) => Some(finished),
            Err(refusal) => {
                tracing::warn!("schedule `{name}` cannot run: {}", refusal.message);
                None
            }
        };
        let _ = done.send((index, finished));
    });
}

fn finish(app: &App, spec: &Schedule, finished: &Finished) {
    let record = &finished.record;
    app.finished(record, None);
    app.schedules.update(&spec.name, |s| {
        s.finished(record.started_at, record.outcome, &record.id)
    });
    let path = log_path(&app.log_dir, app.engine.env(), &spec.name);
    if let Err(e) = crate::run::log::append_to(&path, record, &finished.redactor) {
        tracing::warn!("cannot write `{}`: {e}", path.display());
    }
}

fn expiry(app: &App, spec: &Schedule) -> Option<DateTime<Utc>> {
    let (secret, _) = spec.before_expiry.as_ref()?;
    app.engine.cache.document().ok()?.get(secret)?.expires_at
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

/// Takes the scheduler lock, trying again every few seconds; `None` if
/// the server shuts down first or the lock cannot be taken (health says why).
async fn take_over(app: &App, shutdown: &CancellationToken) -> Option<Lock> {
    let path = &app.schedules.lock_path();
    if let Some(dir) = path.parent() {
        let _ = crate::secrets::atomic::create_private_dir(dir);
    }
    let mut told = false;
    loop {
        let attempt_path = path.to_path_buf();
        let attempt =
            tokio::task::spawn_blocking(move || Lock::acquire(&attempt_path, Duration::ZERO)).await;
        match attempt {
            Ok(Ok(lock)) => return Some(lock),
            Ok(Err(LockError::TimedOut)) => {
                app.health.set_scheduler(SchedulerState::Standby);
                if !told {
                    tracing::info!(
                        "another svc serve runs these schedules (`{}` is locked); this one takes over if it stops",
                        path.display()
                    );
                    told = true;
                }
            }
            Ok(Err(LockError::Io(e))) => {
                tracing::error!(
                    "schedules do not run: cannot lock `{}`: {e}",
                    path.display()
                );
                app.health.set_scheduler(SchedulerState::Failed {
                    code: "scheduler_lock",
                    reason: "the scheduler lock in the state directory cannot be taken; \
                             the server's log says why"
                        .into(),
                });
                return None;
            }
            Err(_) => return None,
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
