//! Fixes applied: `svc check --fix` on copies of the checker's cases.
//!
//! For every file under `tests/check/` whose expected codes come with a
//! fix, a copy is fixed with `svc check --fix --unsafe-fixes`; the fixed
//! text is kept as a snapshot, and it must check with none of those codes
//! left, and no error at all. Every code that any case's diagnostics carry
//! a fix for must be one such case's expected code.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use svc::program::{self, CheckedProgram};
use svc::source::{SourceFile, SourceMap};

fn check_text(name: &str, text: &str) -> CheckedProgram {
    let mut sources = SourceMap::new();
    sources.add(SourceFile::new(name, Path::new(name), text));
    program::check_sources(sources)
}

fn expected_codes(text: &str) -> Vec<String> {
    text.lines()
        .next()
        .and_then(|l| l.strip_prefix("// expect: "))
        .map(|codes| codes.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The codes of a checked program that come with fixes.
fn fixable(checked: &CheckedProgram) -> BTreeSet<String> {
    checked
        .analysis
        .diagnostics
        .iter()
        .filter(|d| !d.fixes.is_empty())
        .map(|d| d.code.as_str().to_string())
        .collect()
}

#[test]
fn every_fix_applied_leaves_its_case_clean() {
    let mut fixed_codes = BTreeSet::new();
    let mut offered = BTreeSet::new();
    let dir = common::root().join("tests/check");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "svc"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let checked = check_text(&name, &text);
        let with_fixes = fixable(&checked);
        offered.extend(with_fixes.iter().cloned());
        let targets: Vec<String> = expected_codes(&text)
            .into_iter()
            .filter(|c| with_fixes.contains(c))
            .collect();
        if targets.is_empty() {
            continue;
        }
        let project = common::Project::new();
        project.write(&name, &text);
        let run = project
            .svc()
            .args(["check", "--fix", "--unsafe-fixes", &name])
            .run();
        let fixed = std::fs::read_to_string(project.path().join(&name)).unwrap();
        assert_ne!(
            fixed,
            text,
            "{name}: nothing was fixed\n{}",
            run.all_output()
        );
        // What had a fix is gone; when every diagnostic had one, the case
        // checks without an error.
        let all_fixable = checked
            .analysis
            .diagnostics
            .iter()
            .all(|d| !d.fixes.is_empty());
        let again = check_text(&name, &fixed);
        let left: Vec<_> = again
            .analysis
            .diagnostics
            .iter()
            .filter(|d| {
                (all_fixable && d.is_error())
                    || (!d.fixes.is_empty() && targets.iter().any(|t| t == d.code.as_str()))
            })
            .map(|d| format!("{}: {}", d.code.as_str(), d.message))
            .collect();
        assert!(
            left.is_empty(),
            "{name}: after the fixes:\n{}\n{fixed}",
            left.join("\n")
        );
        if all_fixable {
            assert_eq!(run.status, 0, "{name}: {}", run.all_output());
        }
        insta::assert_snapshot!(format!("fixed__{name}"), fixed);
        fixed_codes.extend(targets);
    }
    let untested: Vec<_> = offered.difference(&fixed_codes).collect();
    assert!(
        untested.is_empty(),
        "codes with a fix and no case whose fix is applied here: {untested:?}"
    );
    // The codes the checker attaches fixes to, each with a case above.
    for code in FIXABLE {
        assert!(fixed_codes.contains(*code), "no case fixes {code}");
    }
}

const FIXABLE: &[&str] = &[
    "svc::name::unknown_variable",
    "svc::name::unknown_secret",
    "svc::name::unknown_action",
    "svc::name::unknown_role",
    "svc::name::unknown_identity",
    "svc::name::unknown_service",
    "svc::name::unknown_endpoint",
    "svc::name::unknown_function",
    "svc::name::unknown_client",
    "svc::name::unknown_argument",
    "svc::name::unknown_token_field",
    "svc::name::unknown_error_field",
    "svc::name::unknown_run_field",
    "svc::name::unknown_param",
    "svc::type::unknown",
    "svc::type::undeclared_mapping_target",
    "svc::value::invalid_time_zone",
    "svc::value::invalid_algorithm",
    "svc::value::invalid_method",
    "svc::secret::undeclared",
    "svc::secret::unguarded_update",
    "svc::secret::unlocked_signing_key",
    "svc::secret::not_environment_specific",
    "svc::permission::missing_update_grant",
    "svc::permission::missing_run_grant",
    "svc::permission::missing_read_grant",
    "svc::property::duplicate",
    "svc::schedule::method_not_allowed",
    "svc::unused::variable",
    "svc::flow::unreachable",
];

/// The base case with two problems: an unguarded update (its fix is
/// safe) and a misspelt secret (its fix is a guess).
fn two_problems() -> (common::Project, String) {
    let base = std::fs::read_to_string(common::root().join("tests/check/base_passes.svc")).unwrap();
    let text = base
        .replace(
            "    if has_value(token) {\n      update_secret TOKEN = token\n    }\n",
            "    update_secret TOKEN = token\n",
        )
        .replace("secret.CLIENT_SECRET }", "secret.CLIENT_SECRT }");
    assert_ne!(text, base);
    let project = common::Project::new();
    project.write("app.svc", &text);
    (project, text)
}

#[test]
fn fix_applies_the_safe_fixes_and_reports_what_is_left() {
    let (p, _) = two_problems();
    let run = p.svc().args(["check", "--fix", "app.svc"]).run();
    // The guard is safe and made; the misspelt name is a guess, and stays
    // reported (exit 1, as `svc check`).
    assert_eq!(run.status, 1, "{}", run.all_output());
    assert!(run.stderr.contains("fixed app.svc"), "{}", run.stderr);
    assert!(
        run.stderr.contains("svc::name::unknown_secret"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("svc::secret::unguarded_update"),
        "{}",
        run.stderr
    );
    let fixed = std::fs::read_to_string(p.path().join("app.svc")).unwrap();
    assert!(fixed.contains("if has_value(token) {"), "{fixed}");
    assert!(fixed.contains("secret.CLIENT_SECRT"), "{fixed}");
    // Nothing safe is left: a second run changes nothing.
    let again = p.svc().args(["check", "--fix", "app.svc"]).run();
    assert!(!again.stderr.contains("fixed "), "{}", again.stderr);
    assert_eq!(
        std::fs::read_to_string(p.path().join("app.svc")).unwrap(),
        fixed
    );
    // With the unsafe ones too, the program checks clean.
    let all = p
        .svc()
        .args(["check", "--fix", "--unsafe-fixes", "app.svc"])
        .run();
    assert_eq!(all.status, 0, "{}", all.all_output());
    let base = std::fs::read_to_string(common::root().join("tests/check/base_passes.svc")).unwrap();
    assert_eq!(
        std::fs::read_to_string(p.path().join("app.svc")).unwrap(),
        base
    );
}

#[test]
fn fix_diff_prints_the_changes_and_makes_none() {
    let (p, text) = two_problems();
    let run = p
        .svc()
        .args(["check", "--fix", "--unsafe-fixes", "--diff", "app.svc"])
        .run();
    assert_eq!(run.status, 1, "{}", run.all_output());
    assert!(
        run.stdout.contains("--- a/app.svc")
            && run.stdout.contains("+++ b/app.svc")
            && run
                .stdout
                .contains("-      form { client_secret = secret.CLIENT_SECRT }")
            && run
                .stdout
                .contains("+      form { client_secret = secret.CLIENT_SECRET }")
            && run.stdout.contains("+    if has_value(token) {"),
        "{}",
        run.stdout
    );
    assert_eq!(
        std::fs::read_to_string(p.path().join("app.svc")).unwrap(),
        text
    );
    // Safe fixes only: the guard, not the name.
    let run = p.svc().args(["check", "--fix", "--diff", "app.svc"]).run();
    assert_eq!(run.status, 1, "{}", run.all_output());
    assert!(
        run.stdout.contains("+    if has_value(token) {"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("+      form"), "{}", run.stdout);
    // A clean program: no diff, exit 0.
    let clean = common::Project::new();
    let base = std::fs::read_to_string(common::root().join("tests/check/base_passes.svc")).unwrap();
    clean.write("base.svc", &base);
    let run = clean
        .svc()
        .args(["check", "--fix", "--diff", "base.svc"])
        .run();
    assert_eq!(run.status, 0, "{}", run.all_output());
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}
