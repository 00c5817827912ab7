//! Keeping connections alive, and their events moving.
//!
//! [`keep_alive`]: a client with `keep_alive DURATION` has its connection
//! refreshed when it was not refreshed for that long, by the run
//! `check::keep_alive::runner` names. One replica makes each such run: it
//! takes a lock of the client's own, then reads the connection again
//! before it runs.
//!
//! [`deliver_events`]: the outbox's deliveries are sent every second, and
//! expiring refresh tokens are looked for every minute.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use tokio_util::sync::CancellationToken;

use super::App;
use crate::backend::{ConnectionKey, ConnectionState, Trigger};
use crate::check::keep_alive::Runner;
use crate::run::RunRequest;

/// How often idle connections are looked for.
const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(5);
/// How often the outbox is looked at.
const DELIVER_EVERY: Duration = Duration::from_secs(1);
/// How often refresh tokens are looked at for their expiry.
const EXPIRIES_EVERY: Duration = Duration::from_secs(60);

/// The clients kept alive: each with its idle limit and its run.
fn kept_alive(app: &App) -> Vec<(String, TimeDelta, Runner)> {
    let program = app.script.program();
    let effects = &app.script.checked.analysis.effects;
    program
        .oauth_clients
        .iter()
        .filter_map(|client| {
            let idle = client.keep_alive.as_ref()?.value?;
            let idle = TimeDelta::from_std(idle).ok()?;
            let runner = crate::check::keep_alive::runner(program, effects, client)?;
            Some((client.name.text.clone(), idle, runner))
        })
        .collect()
}

/// Whether a connection has idled past `idle` at `now`: it worked last
/// (or was authorized) that long ago, and needs no person. After a failed
/// refresh it waits before the next try — a minute, doubling with each
/// failure in a row, at most `idle` — so a provider that refuses is not
/// asked every few seconds.
fn idled(state: &ConnectionState, idle: TimeDelta, now: chrono::DateTime<Utc>) -> bool {
    if state.state.needs_person() {
        return false;
    }
    let last = state.last_success_at.or(state.since);
    let due = last.and_then(|last| last.checked_add_signed(idle));
    if due.is_some_and(|due| due > now) {
        return false;
    }
    match state.last_failure_at {
        Some(failed) if last.is_none_or(|last| failed > last) => {
            let doublings = state.consecutive_failures.saturating_sub(1).min(16);
            let wait = TimeDelta::minutes(1i64 << doublings).min(idle);
            failed
                .checked_add_signed(wait)
                .is_none_or(|retry| retry <= now)
        }
        _ => true,
    }
}

pub async fn keep_alive(app: Arc<App>, shutdown: CancellationToken) {
    let clients = kept_alive(&app);
    if clients.is_empty() {
        return;
    }
    loop {
        for (client, idle, runner) in &clients {
            if shutdown.is_cancelled() {
                return;
            }
            if app.script.client(client).is_some_and(|c| c.per_account) {
                accounts_if_idle(&app, client, *idle, runner, &shutdown).await;
            } else {
                refresh_if_idle(&app, &ConnectionKey::default_of(client), *idle, runner).await;
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(KEEP_ALIVE_EVERY) => {}
        }
    }
}

/// The connected accounts of a `per_account` client that idled, a page
/// at a time, each refreshed as one connection is.
async fn accounts_if_idle(
    app: &Arc<App>,
    client: &str,
    idle: TimeDelta,
    runner: &Runner,
    shutdown: &CancellationToken,
) {
    let mut query = crate::backend::ConnectionQuery {
        client: Some(client.to_string()),
        limit: 500,
        ..Default::default()
    };
    loop {
        let page = match app.engine.backend.connections.page(&query).await {
            Ok(page) => page,
            Err(e) => {
                tracing::debug!("keep_alive of `{client}`: cannot list its accounts: {e}");
                return;
            }
        };
        for (key, state) in &page.connections {
            if shutdown.is_cancelled() {
                return;
            }
            if idled(state, idle, Utc::now()) {
                refresh_if_idle(app, key, idle, runner).await;
            }
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => return,
        }
    }
}

async fn refresh_if_idle(app: &Arc<App>, key: &ConnectionKey, idle: TimeDelta, runner: &Runner) {
    let backend = &app.engine.backend;
    let client = key.client.as_str();
    let per_account = app.script.client(client).is_some_and(|c| c.per_account);
    let is_idle = |state: &Option<ConnectionState>| {
        // A connection never seen has nothing to keep alive yet.
        state
            .as_ref()
            .is_some_and(|state| idled(state, idle, Utc::now()))
    };
    match backend.connections.load_one(key).await {
        Ok(state) if is_idle(&state) => {}
        Ok(_) => return,
        Err(e) => {
            tracing::debug!("keep_alive of `{client}`: cannot read the connection: {e}");
            return;
        }
    }
    // One process at a time (a lock of its own, beside the endpoint's):
    // the one that gets it reads again, since another may have just
    // refreshed the connection.
    let claim = match backend
        .locks
        .run_lock(
            &crate::backend::run_key::join(
                &format!("keep_alive-{client}"),
                per_account.then_some(key.connection_id.as_str()),
            ),
            Duration::ZERO,
        )
        .await
    {
        Ok(claim) => claim,
        Err(_) => return,
    };
    match backend.connections.load_one(key).await {
        Ok(state) if is_idle(&state) => {}
        _ => return,
    }
    tracing::info!(
        env = app.engine.env(),
        client,
        connection = key.connection_id.as_str(),
        endpoint = format!("{}.{}", runner.service, runner.endpoint),
        identity = runner.account.as_str(),
        "keep_alive: the connection has idled; refreshing it"
    );
    // As the program runs it already: the method a run nobody asked for
    // uses, and the schedule's parameters when it comes from one.
    let method = app
        .script
        .endpoint(&runner.service, &runner.endpoint)
        .map_or("GET".into(), |decl| decl.method_to_run());
    let params = runner
        .schedule
        .as_deref()
        .map(|schedule| super::scheduler::schedule_params(&app.script, schedule))
        .unwrap_or_default();
    let request = RunRequest {
        service: runner.service.clone(),
        endpoint: runner.endpoint.clone(),
        identity: runner.account.clone(),
        method,
        params,
        dry_run: false,
        trigger: Trigger::KeepAlive {
            client: client.to_string(),
        },
        due_at: None,
        replay: None,
        force: false,
        // The account, to an endpoint that runs for one.
        connection: app
            .engine
            .per_account_client(&format!("{}.{}", runner.service, runner.endpoint))
            .map(|_| key.connection_id.clone()),
    };
    match app.engine.admit_and_run(request).await {
        Ok(finished) => app.finished(&finished.record, None),
        Err(refusal) => {
            tracing::warn!("keep_alive of `{client}` cannot run: {}", refusal.message)
        }
    }
    drop(claim);
}

pub async fn deliver_events(app: Arc<App>, shutdown: CancellationToken) {
    let sender = crate::notify::Sender::new(
        app.script.clone(),
        app.engine.backend.clone(),
        app.engine.keys.clone(),
    );
    // Without a receiver, deliveries left from one that was removed are
    // still settled (given up), once a minute.
    let every = if sender.has_receivers() {
        DELIVER_EVERY
    } else {
        EXPIRIES_EVERY
    };
    let mut expiries_checked: Option<Instant> = None;
    loop {
        if sender.has_receivers()
            && expiries_checked.is_none_or(|at| at.elapsed() >= EXPIRIES_EVERY)
        {
            sender.check_expiries().await;
            expiries_checked = Some(Instant::now());
        }
        // Every claimed delivery leaves the due set (sent, or put off):
        // passes go on while there is work.
        while sender.pass().await > 0 {
            if shutdown.is_cancelled() {
                return;
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Health;

    #[test]
    fn a_connection_idles_from_its_last_success() {
        let at = |s: i64| chrono::DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap();
        let state = ConnectionState {
            last_success_at: Some(at(0)),
            since: Some(at(0)),
            ..ConnectionState::default()
        };
        let idle = TimeDelta::seconds(100);
        assert!(!idled(&state, idle, at(99)));
        assert!(idled(&state, idle, at(100)));
        let dead = ConnectionState {
            state: Health::NeedsReconsent,
            ..state.clone()
        };
        assert!(!idled(&dead, idle, at(1000)), "a person is needed first");
        // Failed twice in a row at 200: the next try waits two minutes,
        // but never longer than `idle` (here 100 s).
        let failing = ConnectionState {
            state: Health::Degraded,
            last_failure_at: Some(at(200)),
            consecutive_failures: 2,
            ..state
        };
        assert!(!idled(&failing, idle, at(299)));
        assert!(idled(&failing, idle, at(300)));
        let long_idle = TimeDelta::days(7);
        let stale = ConnectionState {
            last_success_at: Some(at(0)),
            since: Some(at(0)),
            last_failure_at: Some(at(8 * 86_400)),
            consecutive_failures: 2,
            state: Health::Degraded,
            ..ConnectionState::default()
        };
        assert!(!idled(&stale, long_idle, at(8 * 86_400 + 119)));
        assert!(idled(&stale, long_idle, at(8 * 86_400 + 120)));
    }
}
