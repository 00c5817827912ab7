//! `svc logs`: the runs recorded in an endpoint's log.

use std::io::Write;
use std::process::ExitCode;

use super::usage_error;
use crate::cli::LogsArgs;
use crate::exit;
use crate::run::{Outcome, log};

pub fn run(args: LogsArgs) -> ExitCode {
    if let Err(error) = crate::secrets::validate_environment(&args.env) {
        return usage_error(
            "svc::logs::bad_environment",
            &error.to_string(),
            error.help().as_deref(),
        );
    }
    if args.endpoint.contains(['/', '\\']) || !args.endpoint.contains('.') {
        return usage_error(
            "svc::logs::bad_endpoint",
            &format!("`{}` is not SERVICE.ENDPOINT", args.endpoint),
            Some("name the endpoint with its service, such as `hubspot.refresh`"),
        );
    }
    let records = match log::read(&args.log_dir, &args.env, &args.endpoint) {
        Ok(records) => records,
        Err(error) => {
            let path = log::path(&args.log_dir, &args.env, &args.endpoint);
            return usage_error(
                "svc::logs::unreadable",
                &format!("cannot read `{}`: {error}", path.display()),
                None,
            );
        }
    };
    let shown = &records[records.len().saturating_sub(args.count)..];
    let mut out = std::io::stdout().lock();
    if shown.is_empty() && !args.json {
        eprintln!(
            "no runs of `{}` in `{}` are logged",
            args.endpoint, args.env
        );
    }
    for record in shown {
        let line = if args.json {
            serde_json::to_string(record).expect("a record serializes")
        } else {
            let outcome = match record.outcome {
                Outcome::Success => "success",
                Outcome::Failed => "failed",
                Outcome::Denied => "denied",
            };
            let mut line = format!(
                "{}  {outcome:<7}  {:>6} ms  {} via {}  {}",
                record
                    .started_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                record.duration_ms,
                record.identity,
                record.trigger.describe(),
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
