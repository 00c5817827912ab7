//! `svc check`.

use std::collections::BTreeSet;
use std::process::ExitCode;

use super::context::{Context, Place};
use crate::commands::cli::{CheckArgs, CheckFormat, StoreArgs};
use crate::diagnostic::{self, Code, Diagnostic};
use crate::exit;
use crate::output::{out, outln};
use crate::program::{self, CheckedProgram};
use crate::report::{self, Style};

pub fn run(args: CheckArgs) -> ExitCode {
    let context = match Context::find(&args.paths) {
        Ok(context) => context,
        Err(code) => return code,
    };
    let paths = match context.program(&args.paths) {
        Ok(paths) => paths,
        Err(code) => return code,
    };
    let mut checked = match program::load(&paths) {
        Ok(checked) => checked,
        Err(error) => {
            eprintln!("error: {error}");
            return exit::code(exit::USAGE);
        }
    };
    if args.fix {
        let (fixed, changed) = fix(checked, args.unsafe_fixes);
        if args.diff {
            return print_diff(&fixed, &changed);
        }
        if let Err(code) = write_fixed(&fixed, &changed) {
            return code;
        }
        checked = fixed;
    }
    if let Some(env) = &args.env {
        let store_args = StoreArgs {
            env: Some(env.clone()),
            secrets_dir: args.secrets_dir.clone(),
            identities: args.identities.clone(),
            backend: args.backend.clone(),
        };
        let place = match context.place(&store_args) {
            Ok(place) => place,
            Err(code) => return code,
        };
        if let Err(error) = check_store_values(&mut checked, &place) {
            return super::store_error(&error);
        }
    }
    let analysis = &checked.analysis;
    let errors = analysis.errors();
    let warnings = analysis.warnings();
    let diagnostics = &analysis.diagnostics;
    match args.format {
        CheckFormat::Human => {
            if !diagnostics.is_empty() {
                eprint!(
                    "{}",
                    report::render_all(diagnostics, &checked.sources, Style::for_stderr())
                );
                eprintln!();
            }
            eprintln!(
                "{}",
                report::summary(errors, warnings, checked.sources.len())
            );
        }
        CheckFormat::Json => {
            let document = report::formats::json(diagnostics, &checked.sources);
            outln!(
                "{}",
                serde_json::to_string_pretty(&document).expect("a report serializes")
            );
        }
        CheckFormat::Github => out!("{}", report::formats::github(diagnostics, &checked.sources)),
        CheckFormat::Sarif => {
            let document = report::formats::sarif(diagnostics, &checked.sources);
            outln!(
                "{}",
                serde_json::to_string_pretty(&document).expect("a report serializes")
            );
        }
    }
    // The process ends here: freeing a large program node by node takes
    // longer than the system takes to reclaim its memory.
    std::mem::forget(checked);
    if errors > 0 || (args.deny_warnings && warnings > 0) {
        exit::code(exit::FAILURE)
    } else {
        exit::code(exit::SUCCESS)
    }
}

/// The most rounds of fixes: each round applies what does not overlap and
/// checks the result again, so fixes that touched one place go in turn.
const FIX_ROUNDS: usize = 10;

/// The program with its fixes applied in memory, round after round, and
/// the texts it started from (of the files that changed).
fn fix(
    mut checked: CheckedProgram,
    unsafe_too: bool,
) -> (
    CheckedProgram,
    Vec<(crate::source::FileId, std::sync::Arc<str>)>,
) {
    let mut original: Vec<(crate::source::FileId, std::sync::Arc<str>)> = Vec::new();
    for _ in 0..FIX_ROUNDS {
        let edits = crate::check::fixes::choose(&checked.analysis.diagnostics, unsafe_too);
        if edits.is_empty() {
            break;
        }
        let mut sources = crate::source::SourceMap::new();
        for (id, file) in checked.sources.files() {
            let text = match edits.get(&id) {
                Some(edits) => {
                    if !original.iter().any(|(o, _)| *o == id) {
                        original.push((id, file.text.clone()));
                    }
                    crate::check::fixes::apply(&file.text, edits)
                }
                None => file.text.to_string(),
            };
            sources.add(crate::source::SourceFile::new(
                file.name.clone(),
                file.path.clone(),
                text,
            ));
        }
        sources.skipped = std::mem::take(&mut checked.sources.skipped);
        checked = program::check_sources(sources);
    }
    (checked, original)
}

/// Writes the files the fixes changed.
fn write_fixed(
    fixed: &CheckedProgram,
    changed: &[(crate::source::FileId, std::sync::Arc<str>)],
) -> Result<(), ExitCode> {
    for (id, _) in changed {
        let file = fixed.sources.get(*id);
        if let Err(e) = super::fmt::replace(&file.path, &file.text) {
            eprintln!("error: cannot write `{}`: {e}", file.path.display());
            return Err(exit::code(exit::USAGE));
        }
        eprintln!("fixed {}", file.name);
    }
    Ok(())
}

/// `--fix --diff`: the changes as a unified diff; exit 1 when there are.
fn print_diff(
    fixed: &CheckedProgram,
    changed: &[(crate::source::FileId, std::sync::Arc<str>)],
) -> ExitCode {
    for (id, before) in changed {
        let file = fixed.sources.get(*id);
        let diff = similar::TextDiff::from_lines(&**before, &*file.text);
        out!(
            "{}",
            diff.unified_diff()
                .context_radius(3)
                .header(&format!("a/{}", file.name), &format!("b/{}", file.name))
        );
    }
    if changed.is_empty() {
        eprintln!("nothing to fix");
        exit::code(exit::SUCCESS)
    } else {
        eprintln!(
            "{} would change; run `svc check --fix` to change {}",
            report::plural(changed.len(), "file"),
            if changed.len() == 1 { "it" } else { "them" }
        );
        exit::code(exit::FAILURE)
    }
}

/// Reports each secret the program reads that has no value in the store,
/// once, at its first read. Secrets that are only written may be empty
/// until their first update, so they are not reported.
pub fn check_store_values(
    checked: &mut CheckedProgram,
    place: &Place,
) -> Result<(), crate::secrets::Error> {
    let identities = super::secret::open(place)?;
    let document = super::secret::document(place, &identities)?;
    let declared: BTreeSet<&str> = checked
        .program
        .secrets
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    let mut reported = BTreeSet::new();
    let mut found = Vec::new();
    for (name, span) in &checked.analysis.secret_reads {
        if !declared.contains(name.as_str())
            || document.get(name).is_some()
            || !reported.insert(name.clone())
        {
            continue;
        }
        let uses = checked
            .analysis
            .secret_reads
            .iter()
            .filter(|(n, _)| n == name)
            .count();
        let label = if uses > 1 {
            format!("read here and in {} other places", uses - 1)
        } else {
            "read here".to_string()
        };
        found.push(
            Diagnostic::new(
                Code::SecretWithoutValue,
                format!(
                    "secret `{name}` has no value in environment `{}`",
                    place.env
                ),
            )
            .label(*span, label)
            .help(format!(
                "set it with `svc secret set {name} --env {}`",
                place.env
            )),
        );
    }
    checked.analysis.diagnostics.extend(found);
    diagnostic::sort(&mut checked.analysis.diagnostics);
    Ok(())
}
