//! `svc doctor`: what stands between a project and a working setup.
//!
//! One line per check, `ok` or `FAIL` with what to do; exit 0 when every
//! check passes, 1 when one fails. It reads and never writes.

use std::path::Path;
use std::process::ExitCode;

use chrono::Utc;

use super::context::{Context, Place};
use crate::backend::Health;
use crate::commands::cli::DoctorArgs;
use crate::diagnostic::Code;
use crate::exit;
use crate::output::outln;
use crate::program::{self, CheckedProgram, Script};
use crate::schedule::connections::{self, EXPIRY_WARNING, Sources};
use std::collections::BTreeMap;

use super::block_on;
use crate::backend::Spec;
use crate::secrets::document::ApiKey;
use crate::secrets::{Document, Identities};

/// The checks' findings, printed as they come.
struct Report {
    failed: usize,
}

impl Report {
    fn ok(&mut self, topic: &str, what: impl AsRef<str>) {
        outln!("ok    {topic}: {}", what.as_ref());
    }

    /// Worth knowing, and no failure.
    fn warn(&mut self, topic: &str, what: impl AsRef<str>, fix: impl AsRef<str>) {
        outln!("warn  {topic}: {}", what.as_ref());
        outln!("      fix: {}", fix.as_ref());
    }

    fn fail(&mut self, topic: &str, what: impl AsRef<str>, fix: impl AsRef<str>) {
        self.failed += 1;
        outln!("FAIL  {topic}: {}", what.as_ref());
        outln!("      fix: {}", fix.as_ref());
    }
}

pub fn run(args: DoctorArgs) -> ExitCode {
    let context = match Context::find(&args.paths) {
        Ok(context) => context,
        Err(code) => return code,
    };
    let paths = match context.program(&args.paths) {
        Ok(paths) => paths,
        Err(code) => return code,
    };
    let mut report = Report { failed: 0 };
    match &context.project {
        Some(project) => report.ok("project", project.path.display().to_string()),
        None => report.ok(
            "project",
            "no svc.toml here or above: paths are relative to the current directory (`svc init` writes one)",
        ),
    }
    let place = match context.place_with(
        &args.store,
        args.log_dir.as_deref(),
        args.state_dir.as_deref(),
        &crate::backend::Options::default(),
    ) {
        Ok(place) => place,
        Err(code) => return code,
    };
    let env = place.env.clone();
    report.ok("backend", place.backend.description.clone());
    let checked = program_check(&mut report, &paths);
    let opened = store_check(&mut report, &place);
    if let (Some(checked), Some((document, identities))) = (&checked, &opened) {
        values_check(&mut report, checked, document, &env);
        refresh_check(&mut report, checked, document);
        match block_on(place.backend.keys.keys(identities)) {
            Ok(keys) => keys_check(&mut report, checked, &keys),
            Err(error) => report.fail(
                "api keys",
                error.to_string(),
                error.help().unwrap_or_default(),
            ),
        }
    }
    let dirs = match context.spec(
        &args.store,
        &env,
        args.log_dir.as_deref(),
        args.state_dir.as_deref(),
    ) {
        Ok(Spec::Files {
            log_dir, state_dir, ..
        }) => vec![("log directory", log_dir), ("state directory", state_dir)],
        // The database keeps the logs; answers wait in the state directory
        // while it cannot be reached.
        Ok(Spec::Postgres { state_dir, .. }) => vec![("state directory", state_dir)],
        Err(_) => Vec::new(),
    };
    for (topic, dir) in &dirs {
        match writable(dir) {
            Ok(()) => report.ok(topic, format!("`{}` can be written", dir.display())),
            Err(problem) => report.fail(
                topic,
                format!("`{}` cannot be written: {problem}", dir.display()),
                "make it a directory svc's user can write, or choose another with the flag, SVC_* or svc.toml",
            ),
        }
    }
    // A program that runs has connections: each one's state.
    if let Some(Ok(script)) = checked.map(Script::new) {
        let document = opened.as_ref().map(|(document, _)| document);
        connections_check(&mut report, &script, &place, document);
    }
    journal_check(&mut report, &place);
    clock_check(&mut report, &place);
    if report.failed == 0 {
        outln!("\nall is well in `{env}`");
        exit::code(exit::SUCCESS)
    } else {
        outln!("\n{} problem(s) in `{env}`", report.failed);
        exit::code(exit::FAILURE)
    }
}

/// The program checks without errors; grants of schedules' accounts are
/// among the checker's rules.
fn program_check(report: &mut Report, paths: &[std::path::PathBuf]) -> Option<CheckedProgram> {
    let shown = paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let checked = match program::load(paths) {
        Ok(checked) => checked,
        Err(error) => {
            report.fail(
                "program",
                error.to_string(),
                "run in the project, or name the program's files or directory",
            );
            return None;
        }
    };
    let errors: Vec<_> = checked
        .analysis
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .collect();
    if errors.is_empty() {
        report.ok(
            "program",
            format!(
                "{shown}: {} file(s), no errors, {} warning(s)",
                checked.sources.len(),
                checked.analysis.warnings()
            ),
        );
    } else {
        for error in &errors {
            let topic = match error.code {
                Code::MissingRunGrant | Code::MissingUpdateGrant => "grants",
                _ => "program",
            };
            let at = error
                .primary_span()
                .map(|s| format!(" ({})", checked.sources.location(s)))
                .unwrap_or_default();
            report.fail(
                topic,
                format!("{}{at}: {}", error.code.as_str(), error.message),
                error.help.as_deref().unwrap_or("see `svc check`"),
            );
        }
    }
    Some(checked)
}

/// An identity is found and opens the store.
fn store_check(report: &mut Report, place: &Place) -> Option<(Document, Identities)> {
    let secrets = &place.backend.secrets;
    match block_on(secrets.exists()) {
        Ok(true) => {}
        Ok(false) => {
            report.fail(
                "store",
                format!("there is no store for `{}` ({})", place.env, secrets.describe()),
                format!(
                    "create it: `svc secret init --env {}` (encrypted to the identity svc reads with)",
                    place.env
                ),
            );
            return None;
        }
        Err(error) => {
            report.fail("store", error.to_string(), error.help().unwrap_or_default());
            return None;
        }
    }
    let found = match place.find_identities() {
        Ok(found) => found,
        Err(error) => {
            report.fail(
                "identity",
                error.to_string(),
                error.help().unwrap_or_default(),
            );
            return None;
        }
    };
    let files = found
        .paths
        .iter()
        .map(|p| format!("`{}`", p.display()))
        .collect::<Vec<_>>()
        .join(", ");
    let opened =
        Identities::read(&found.paths).and_then(|ids| Ok((block_on(secrets.document(&ids))?, ids)));
    match opened {
        Ok((document, identities)) => {
            report.ok(
                "identity",
                format!(
                    "{files} (from {}) opens {}",
                    found.source,
                    secrets.describe()
                ),
            );
            Some(((*document).clone(), identities))
        }
        Err(error) => {
            report.fail(
                "identity",
                format!("{files} (from {}): {error}", found.source),
                error.help().unwrap_or_default(),
            );
            None
        }
    }
}

/// Every secret the program reads has a value.
fn values_check(report: &mut Report, checked: &CheckedProgram, document: &Document, env: &str) {
    let declared: std::collections::BTreeSet<&str> = checked
        .program
        .secrets
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    let mut missing: Vec<&str> = checked
        .analysis
        .secret_reads
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| declared.contains(name) && document.get(name).is_none())
        .collect();
    missing.sort_unstable();
    missing.dedup();
    if missing.is_empty() {
        report.ok(
            "secret values",
            format!("every secret the program reads has a value in `{env}`"),
        );
    } else {
        for name in missing {
            report.fail(
                "secret values",
                format!("`{name}` is read by the program and has no value in `{env}`"),
                format!("`svc secret set {name} --env {env}` (the value comes from stdin)"),
            );
        }
    }
    // A value stored under a name no program declares: often a misspelt
    // `svc secret set`, whose program still reads the right name empty.
    for name in document.secrets.keys() {
        if declared.contains(name.as_str()) {
            continue;
        }
        let remove = format!("`svc secret rm {name} --env {env}`");
        let fix = match crate::suggest::closest(name, declared.iter().copied()) {
            Some(meant) => format!(
                "did you mean `{meant}`? set it with `svc secret set {meant} --env {env}`, then {remove}"
            ),
            None => format!("declare it in the program (`secret {name} {{ }}`), or {remove}"),
        };
        report.warn(
            "stored secrets",
            format!("`{name}` is stored in `{env}` and no program declares it"),
            fix,
        );
    }
}

/// A token refreshed on read that its provider makes no longer-lived than
/// its `min_valid` would be refreshed by every read: reads hand it out
/// until half its lifetime is left instead, which the user should know.
fn refresh_check(report: &mut Report, checked: &CheckedProgram, document: &Document) {
    for secret in &checked.program.secrets {
        let Some(refresher) = &secret.refreshed_by else {
            continue;
        };
        let min_valid = refresher
            .min_valid
            .as_ref()
            .and_then(|d| d.value)
            .unwrap_or_default();
        let name = secret.name.as_str();
        if let Some(warning) = document
            .get(name)
            .and_then(|entry| crate::run::refresh::short_lived(name, entry, min_valid))
        {
            report.warn(
                "refresh on read",
                warning,
                format!(
                    "lower `min_valid` of `{name}` below the provider's token lifetime, or ask \
                     the provider for longer-lived tokens"
                ),
            );
        }
    }
}

/// No connection needs a person (`needs_reconsent`, `misconfigured`: a
/// failure, with the command that re-consents), and no refresh token
/// expires within a week unnoticed (a warning).
fn connections_check(
    report: &mut Report,
    script: &Script,
    place: &Place,
    document: Option<&Document>,
) {
    let states = match block_on(place.backend.connections.load()) {
        Ok(states) => states,
        Err(error) => {
            report.fail(
                "connections",
                error.to_string(),
                error.help().unwrap_or_default(),
            );
            return;
        }
    };
    let schedules = block_on(place.backend.schedules.load()).unwrap_or_default();
    let now = Utc::now();
    let statuses = connections::statuses(&Sources {
        script,
        environment: &place.env,
        states: &states,
        document,
        schedules: &schedules,
        now,
    });
    let time = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut troubled = 0;
    for status in &statuses {
        let name = format!("`{}/{}`", status.client, status.connection_id);
        let s = &status.state;
        let since = s
            .since
            .map_or(String::new(), |t| format!(" since {}", time(t)));
        let error = s.last_error.as_ref().map_or(String::new(), |e| {
            let description = e
                .description
                .as_ref()
                .map_or(String::new(), |d| format!(" ({d})"));
            format!(", last error: {}{description}", e.code)
        });
        let command = &status.reconsent_command;
        match s.state {
            Health::NeedsReconsent => {
                troubled += 1;
                report.fail(
                    "connections",
                    format!(
                        "{name} is needs_reconsent{since}{error}: the provider no longer \
                         accepts its refresh token, and nothing refreshes it"
                    ),
                    format!("a person consents again: `{command}`"),
                );
            }
            Health::Misconfigured => {
                troubled += 1;
                report.fail(
                    "connections",
                    format!(
                        "{name} is misconfigured{since}{error}: the provider refuses the \
                         client, and nothing refreshes it"
                    ),
                    format!(
                        "correct the client's values (`oauth_client {}`, its secrets), then \
                         `{command}`",
                        status.client
                    ),
                );
            }
            Health::Revoked => {
                troubled += 1;
                report.warn(
                    "connections",
                    format!("{name} is revoked{since}: its tokens were cleared"),
                    format!("to use it again, a person consents: `{command}`"),
                );
            }
            Health::Degraded => {
                troubled += 1;
                report.warn(
                    "connections",
                    format!(
                        "{name} is degraded{since}, {} failed refreshes in a row{error}; runs \
                         go on",
                        s.consecutive_failures
                    ),
                    "see `svc connection show` and the endpoint's log; it recovers by itself \
                     when the provider answers again",
                );
            }
            Health::Healthy => {}
        }
        // The client's `expiry_warning`, 7 days when it declares none.
        let warning = script
            .client(&status.client)
            .and_then(|c| chrono::TimeDelta::from_std(c.expiry_warning_period()).ok())
            .unwrap_or(EXPIRY_WARNING);
        if !s.state.needs_person()
            && status.refresh_token_expires_within(warning, now)
            && let Some(at) = s.refresh_token_expires_at
        {
            troubled += 1;
            let when = if at <= now {
                format!("expired at {}", time(at))
            } else {
                format!(
                    "expires at {}, in {}",
                    time(at),
                    super::secret::human_duration((at - now).num_seconds())
                )
            };
            report.warn(
                "connections",
                format!("the refresh token of {name} {when}"),
                format!("a person consents again before then: `{command}`"),
            );
        }
    }
    if !statuses.is_empty() && troubled == 0 {
        report.ok(
            "connections",
            format!(
                "{} connection(s), each healthy, no refresh token expiring within its \
                 expiry_warning (7 days by default)",
                statuses.len()
            ),
        );
    }
}

/// The recovery journal holds no answer that waits to be stored: such an
/// answer holds back every run of its endpoint (`run::settle`).
fn journal_check(report: &mut Report, place: &Place) {
    let journal = &place.backend.journal;
    match block_on(journal.list()) {
        Ok(listed) => {
            let mut runs: Vec<(&str, &str)> = listed
                .iter()
                .filter(|l| l.is_success() || l.is_sent())
                .map(|l| (l.run_id.as_str(), l.endpoint.as_str()))
                .collect();
            runs.dedup();
            if runs.is_empty() {
                report.ok("recovery journal", "no answer waits to be stored");
            }
            for (run, endpoint) in runs {
                report.warn(
                    "recovery journal",
                    format!(
                        "run {run} of `{endpoint}` kept an answer that is not stored yet; the \
                         next run of `{endpoint}` stores it first, or is refused"
                    ),
                    format!(
                        "`svc secret recover --env {}` shows it; `--apply {run}` stores it",
                        place.env
                    ),
                );
            }
        }
        Err(error) => report.fail(
            "recovery journal",
            error.to_string(),
            error.help().unwrap_or_default(),
        ),
    }
}

/// No live API key belongs to an identity the program no longer declares.
fn keys_check(report: &mut Report, checked: &CheckedProgram, api_keys: &BTreeMap<String, ApiKey>) {
    let now = Utc::now();
    let orphans: Vec<(&String, &String)> = api_keys
        .iter()
        .filter(|(_, key)| key.revoked_at.is_none() && key.expires_at.is_none_or(|at| at > now))
        .filter(|(_, key)| {
            !checked
                .program
                .identities
                .iter()
                .any(|i| i.name.text == key.identity)
        })
        .map(|(id, key)| (id, &key.identity))
        .collect();
    if orphans.is_empty() {
        report.ok(
            "api keys",
            format!(
                "{} live key(s), each for an identity the program declares",
                api_keys
                    .values()
                    .filter(|k| k.revoked_at.is_none() && k.expires_at.is_none_or(|at| at > now))
                    .count()
            ),
        );
    }
    for (id, identity) in orphans {
        report.fail(
            "api keys",
            format!("key `{id}` belongs to `{identity}`, which the program does not declare: it is refused when used"),
            format!("`svc key revoke {id}`, or declare `{identity}` again"),
        );
    }
}

/// No schedule is recorded as having run in the future.
fn clock_check(report: &mut Report, place: &Place) {
    let store = &place.backend.schedules;
    let states = match block_on(store.load()) {
        Ok(states) => states,
        Err(error) => {
            report.fail(
                "schedule state",
                format!("{} cannot be read: {error}", store.describe()),
                "restore or remove the file; svc rewrites it",
            );
            return;
        }
    };
    let now = Utc::now();
    let ahead: Vec<_> = states
        .iter()
        .filter_map(|(name, state)| Some((name, state.last_run_at.filter(|at| *at > now)?)))
        .collect();
    if ahead.is_empty() {
        report.ok(
            "clock",
            format!("{} schedule(s) recorded, none in the future", states.len()),
        );
    }
    for (name, at) in ahead {
        report.fail(
            "clock",
            format!(
                "schedule `{name}` last ran at {}, {} from now: a clock is wrong (this machine's, or the one that wrote the state)",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                super::secret::human_duration((at - now).num_seconds())
            ),
            "set the clock right (NTP); svc serve counts such a run as now",
        );
    }
}

/// Whether files can be made in a directory, or in the nearest existing
/// one above it (svc creates the rest). Nothing is left behind.
fn writable(dir: &Path) -> Result<(), String> {
    let mut existing = dir;
    while !existing.exists() {
        match existing.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => existing = parent,
            _ => {
                existing = Path::new(".");
                break;
            }
        }
    }
    if !existing.is_dir() {
        return Err(format!("`{}` is not a directory", existing.display()));
    }
    tempfile::tempfile_in(existing)
        .map(drop)
        .map_err(|e| e.to_string())
}
