//! `svc logs`: the runs recorded in an endpoint's or a schedule's log.

use std::io::Write;
use std::process::ExitCode;

use super::context::Context;
use super::{block_on, usage_error};
use crate::backend::LogName;
use crate::backend::Outcome;
use crate::commands::cli::LogsArgs;
use crate::exit;

pub fn run(args: LogsArgs) -> ExitCode {
    let context = match Context::find(&[]) {
        Ok(context) => context,
        Err(code) => return code,
    };
    let store_args = crate::commands::cli::StoreArgs {
        env: args.env.clone(),
        secrets_dir: None,
        identities: Vec::new(),
        backend: args.backend.clone(),
    };
    // Logs need no store: where none are found, `svc::logs::none` says
    // where svc looked.
    let place = match context.open_place(
        &store_args,
        args.log_dir.as_deref(),
        None,
        &crate::backend::Options::default(),
    ) {
        Ok(place) => place,
        Err(code) => return code,
    };
    let env = place.env.clone();
    let logs = &place.backend.logs;
    let log = match (&args.endpoint, &args.schedule) {
        (_, Some(schedule)) => {
            if !is_name(schedule) {
                return usage_error(
                    "svc::logs::bad_schedule",
                    &format!("`{schedule}` is not a schedule name"),
                    None,
                );
            }
            LogName::Schedule(schedule)
        }
        (Some(endpoint), None) => {
            let valid = endpoint
                .split_once('.')
                .is_some_and(|(s, e)| is_name(s) && is_name(e));
            if !valid {
                return usage_error(
                    "svc::logs::bad_endpoint",
                    &format!("`{endpoint}` is not SERVICE.ENDPOINT"),
                    Some("name the endpoint with its service, such as `hubspot.refresh`"),
                );
            }
            LogName::Endpoint(endpoint)
        }
        (None, None) => {
            return usage_error(
                "svc::logs::nothing",
                "name an endpoint or a `--schedule`",
                None,
            );
        }
    };
    let what = match log {
        LogName::Schedule(schedule) => format!("schedule `{schedule}`"),
        LogName::Endpoint(endpoint) => format!("`{endpoint}`"),
    };
    match block_on(logs.any()) {
        Ok(true) => {}
        Ok(false) => {
            return usage_error(
                "svc::logs::none",
                &format!("nothing is logged for `{env}` ({})", logs.describe(log)),
                Some(if context.project.is_some() {
                    "no run of this environment has logged yet (endpoints log with `log enabled`)"
                } else {
                    "no svc.toml was found here: run inside the project, or give `--project DIR` or `--log-dir DIR`"
                }),
            );
        }
        Err(error) => return super::store_error(&error),
    }
    // Newest first, from the end of the log: memory holds the records
    // shown, not the log.
    let mut shown = match block_on(logs.read_last(log, args.count)) {
        Ok(records) => records,
        Err(error) => return super::store_error(&error),
    };
    shown.reverse();
    if shown.is_empty() && !args.json {
        eprintln!("no runs of {what} in `{}` are logged", env);
    }
    let mut out = crate::output::writer();
    for record in &shown {
        let line = if args.json {
            serde_json::to_string(record).expect("a record serializes")
        } else {
            let outcome = match record.outcome {
                Outcome::Success => "success",
                Outcome::Failed => "failed",
                Outcome::Denied => "denied",
            };
            let mut line = format!(
                "{}  {outcome:<7}  {:>6} ms  {} via {}  {}  {}",
                record
                    .started_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                record.duration_ms,
                record.identity,
                record.trigger.describe(),
                record.endpoint,
                record.id
            );
            if let Some(error) = &record.error {
                line.push_str(&format!("\n    {}: {}", error.code, error.message));
            }
            line
        };
        if writeln!(out, "{line}").is_err() {
            break;
        }
    }
    exit::code(exit::SUCCESS)
}

fn is_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
