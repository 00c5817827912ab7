//! `svc schedule list`: when each schedule fires next, and how it last went.

use std::process::ExitCode;

use chrono::Utc;
use serde_json::json;

use super::context::Context;
use super::{block_on, usage_error};
use crate::commands::cli::ScheduleCommand;
use crate::exit;
use crate::output::outln;
use crate::schedule::Schedule;

pub fn run(command: ScheduleCommand) -> ExitCode {
    let ScheduleCommand::List {
        paths,
        env,
        state_dir,
        secrets_dir,
        identities,
        backend,
        count,
        json,
    } = command;
    let context = match Context::find(&paths) {
        Ok(context) => context,
        Err(code) => return code,
    };
    let paths = match context.program(&paths) {
        Ok(paths) => paths,
        Err(code) => return code,
    };
    let store_args = crate::commands::cli::StoreArgs {
        env,
        secrets_dir,
        identities,
        backend,
    };
    let place = match context.place_with(
        &store_args,
        None,
        state_dir.as_deref(),
        &crate::backend::Options::default(),
    ) {
        Ok(place) => place,
        Err(code) => return code,
    };
    let script = match super::run::load_paths(&paths) {
        Ok(script) => script,
        Err(code) => return code,
    };
    let states = match block_on(place.backend.schedules.load()) {
        Ok(states) => states,
        Err(e) => {
            return usage_error(
                "svc::schedule::bad_state",
                &format!("cannot read the schedule state: {e}"),
                None,
            );
        }
    };
    let schedules = Schedule::all(&script);
    // Expiries, for `before_expiry` schedules, when the store can be opened.
    let needs_store = schedules.iter().any(|s| s.before_expiry.is_some());
    let document = if needs_store {
        place
            .identities()
            .ok()
            .and_then(|ids| super::secret::document(&place, &ids).ok())
    } else {
        None
    };
    let now = Utc::now();
    let mut rows = Vec::new();
    for schedule in &schedules {
        let mut state = states.get(&schedule.name).cloned().unwrap_or_default();
        // As the scheduler does: a last run in the future counts as now.
        let stored = state.clone();
        if let Some(said) = crate::serve::scheduler::clamp_clock_skew(&mut state, now) {
            crate::serve::scheduler::warn_clock_skew(&schedule.name, said);
        }
        let expires_at = schedule
            .before_expiry
            .as_ref()
            .and_then(|(secret, _)| document.as_ref()?.get(secret)?.expires_at);
        let upcoming = schedule.upcoming(&state, expires_at, now, count);
        rows.push((schedule, stored, upcoming));
    }
    if json {
        let out: Vec<_> = rows
            .iter()
            .map(|(s, state, upcoming)| {
                json!({
                    "name": s.name,
                    "endpoint": s.endpoint_key(),
                    "service_account": s.account,
                    "timing": s.describe(),
                    "enabled": s.enabled,
                    "next_runs": upcoming,
                    "last_run_at": state.last_run_at,
                    "last_outcome": state.last_outcome,
                    "last_skip_reason": state.last_skip_reason,
                    "failures": state.failures,
                })
            })
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(&out).expect("a listing serializes")
        );
        return exit::code(exit::SUCCESS);
    }
    if rows.is_empty() {
        eprintln!("the program has no schedules");
    }
    let time = |t: &chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for (schedule, state, upcoming) in rows {
        outln!(
            "{}  ({} as {}, {})",
            schedule.name,
            schedule.endpoint_key(),
            schedule.account,
            schedule.describe()
        );
        if !schedule.enabled {
            outln!("  disabled");
        } else if upcoming.is_empty() {
            outln!("  next: unknown");
        } else {
            let next: Vec<String> = upcoming
                .iter()
                .map(|t| {
                    if *t <= now {
                        format!("{} (due now)", time(&now))
                    } else {
                        time(t)
                    }
                })
                .collect();
            outln!("  next: {}", next.join(", "));
        }
        match (&state.last_run_at, &state.last_outcome) {
            (Some(at), Some(outcome)) => {
                let outcome = serde_json::to_value(outcome)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let failures = if state.failures > 0 {
                    format!(" ({} failures in a row)", state.failures)
                } else {
                    String::new()
                };
                outln!("  last: {} {outcome}{failures}", time(at));
            }
            (Some(at), None) if state.last_skip_reason.is_some() => outln!(
                "  last: {} skipped: {}",
                time(at),
                state.last_skip_reason.as_deref().unwrap_or_default()
            ),
            _ => outln!("  last: never ran"),
        }
    }
    exit::code(exit::SUCCESS)
}
