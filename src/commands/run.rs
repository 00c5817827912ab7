//! `svc run`.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use super::context::Context;
use super::{block_on, store_error, usage_error};
use crate::backend::{Outcome, Trigger};
use crate::commands::cli::{OutputFormat, RunArgs};
use crate::exit;
use crate::output::{out, outln};
use crate::program::{self, Script};
use crate::report::{self, Style};
use crate::run::{Engine, Refusal, RefusalKind, RunRequest};

pub fn run(args: RunArgs) -> ExitCode {
    // `[PATH] SERVICE.ENDPOINT`: with one word, the program is the project's.
    let (given, endpoint_arg) = match args.target.as_slice() {
        [endpoint] => (Vec::new(), endpoint.clone()),
        [path, endpoint] => (vec![std::path::PathBuf::from(path)], endpoint.clone()),
        _ => unreachable!("clap takes one or two words"),
    };
    let context = match Context::find(&given) {
        Ok(context) => context,
        Err(code) => return code,
    };
    let paths = match context.program(&given) {
        Ok(paths) => paths,
        Err(code) => return code,
    };
    let script = match load_paths(&paths) {
        Ok(script) => script,
        Err(code) => return code,
    };
    let Some((service, endpoint)) = endpoint_arg.split_once('.') else {
        return usage_error(
            "svc::run::bad_endpoint",
            &format!("`{}` is not SERVICE.ENDPOINT", endpoint_arg),
            Some("name the endpoint with its service, such as `hubspot.refresh`"),
        );
    };
    let Some(endpoint_decl) = script.endpoint(service, endpoint) else {
        let refusal = crate::run::unknown_endpoint(&script, &endpoint_arg);
        return refusal_exit(&refusal);
    };
    let Some(identity) = args.identity.clone() else {
        let runners = script.runners(service, endpoint);
        let help = if runners.is_empty() {
            format!(
                "no user or service account may run `{}`; grant `run {}` to a role",
                endpoint_arg, endpoint_arg
            )
        } else {
            format!("pass `--as` with one of: {}", runners.join(", "))
        };
        return usage_error(
            "svc::run::no_identity",
            "who runs this? `--as` is missing",
            Some(&help),
        );
    };
    let method = match &args.method {
        Some(method) => method.to_ascii_uppercase(),
        None if endpoint_decl.allows("GET") => "GET".into(),
        None => endpoint_decl
            .methods
            .first()
            .map_or("GET".into(), |m| m.text.clone()),
    };
    crate::backend::files::log::set_max_bytes(args.log_max_bytes);
    let options = crate::backend::Options {
        lock_timeout: args.lock_timeout,
        locks_soon: !args.dry_run && script.updates_secrets(service, endpoint),
        ..crate::backend::Options::default()
    };
    let place = match context.place_with(
        &args.store,
        args.log_dir.as_deref(),
        args.state_dir.as_deref(),
        &options,
    ) {
        Ok(place) => place,
        Err(code) => return code,
    };
    // A run that reads no secret needs no identity: look for one, and say
    // where svc looked if the run needs it after all.
    let keys = match place.identities_if_any() {
        Ok(found) => found.map(Arc::new),
        Err(error) => return store_error(&error),
    };
    let mocks = match &args.mock {
        None => None,
        Some(path) => match crate::run::mock::Mocks::load(path) {
            Ok(mocks) => Some(mocks),
            Err(problem) => {
                return usage_error(
                    "svc::run::bad_mock",
                    &problem,
                    Some(
                        "a mock file is a JSON list of answers: {\"request\": \"SERVICE.ACTION#N\" or \"url\": ..., \"status\": 200, \"body\": {...}}; see docs/run.md",
                    ),
                );
            }
        },
    };
    let request = RunRequest {
        service: service.to_string(),
        endpoint: endpoint.to_string(),
        identity,
        method,
        params: args
            .params
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect::<BTreeMap<_, _>>(),
        dry_run: args.dry_run,
        trigger: Trigger::Cli,
        due_at: None,
        replay: None,
        force: args.force,
        connection: args.connection.clone(),
    };
    let script = Arc::new(script);
    let mut engine = Engine::new(script.clone(), place.backend.clone(), keys);
    engine.lock_timeout = args.lock_timeout;
    engine.program_hint = context.program_hint(&given);
    engine.mocks = mocks;
    if let Err(crate::secrets::Error::NoIdentity { tried, recipients }) =
        place.missing_identity_if_none()
    {
        engine.identity_search = (tried, recipients);
    }
    let mut request = request;
    if args.replay {
        match block_on(engine.replay_for(service, endpoint, args.connection.as_deref())) {
            Ok(replay) => request.replay = Some(replay),
            Err(refusal) => return refusal_exit(&refusal),
        }
    }
    let admitted = match engine.admit(request) {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal_exit(&refusal),
    };
    // A dry run too: it reports what the real run would meet.
    match block_on(engine.preflight(admitted.request())) {
        Ok(None) => {}
        Ok(Some(refusal)) => return refusal_exit(&refusal),
        Err(error) => return store_error(&error),
    }
    let finished = block_on(engine.run(admitted));
    let record = &finished.record;
    // The caller gets the response as declared: the secrets it `reveals`
    // (which the checker proved `--as` may read) in clear; the record kept
    // in the logs masks them.
    let answer = finished
        .answer
        .as_ref()
        .map(|a| serde_json::json!({"status": a.status, "body": a.body}));
    match args.output {
        OutputFormat::Json => {
            let mut shown = record.clone();
            if answer.is_some() {
                shown.response = answer;
            }
            outln!(
                "{}",
                serde_json::to_string_pretty(&shown).expect("a record serializes")
            );
        }
        OutputFormat::Human => {
            out!("{}", record.human());
            if let Some(answer) = &finished.answer {
                outln!("response {}: {}", answer.status, answer.body);
            }
        }
    }
    if let Some(error) = &finished.error
        && args.output == OutputFormat::Human
    {
        let message = finished.redactor.redact(&error.message);
        let help = error.help.as_deref().map(|h| finished.redactor.redact(h));
        let rendered = report::render_at(
            error.diagnostic_code(),
            &message,
            help.as_deref(),
            error.span,
            "failed here",
            &script.checked.sources,
            Style::for_stderr(),
        );
        // The message is redacted; the source lines around it are the program's.
        eprint!("{rendered}");
    }
    exit::code(match record.outcome {
        Outcome::Success => exit::SUCCESS,
        Outcome::Failed => exit::FAILURE,
        Outcome::Denied => exit::PERMISSION_DENIED,
    })
}

/// Loads and checks the files and directories given as one program.
pub fn load_paths(paths: &[std::path::PathBuf]) -> Result<Script, ExitCode> {
    let checked = match program::load(paths) {
        Ok(checked) => checked,
        Err(error) => {
            eprintln!("error: {error}");
            return Err(exit::code(exit::USAGE));
        }
    };
    super::skipped_files(&checked);
    Script::new(checked).map_err(|checked| {
        super::program_errors(&checked, "fix them before running (see `svc check`)");
        exit::code(exit::USAGE)
    })
}

/// A word as a shell reads it: quoted only when it must be.
pub fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:@%+=,".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

pub fn refusal_exit(refusal: &Refusal) -> ExitCode {
    eprint!(
        "{}",
        report::render_error(
            refusal.code,
            &refusal.message,
            refusal.help.as_deref(),
            Style::for_stderr()
        )
    );
    exit::code(match refusal.kind {
        RefusalKind::Invalid => exit::USAGE,
        RefusalKind::Denied => exit::PERMISSION_DENIED,
        RefusalKind::NeedsPerson(_) => exit::NEEDS_PERSON,
        RefusalKind::NotFound => exit::USAGE,
    })
}
