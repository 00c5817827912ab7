//! `svc check` as a user runs it: exit codes, output, directories.

mod common;

use common::{root, svc};

#[test]
fn examples_check_clean() {
    for entry in std::fs::read_dir(root().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "svc") {
            let run = svc().arg("check").arg("--deny-warnings").arg(&path).run();
            assert_eq!(run.status, 0, "{}:\n{}", path.display(), run.stderr);
            assert!(
                run.stderr.contains("no problems in 1 file"),
                "{}",
                run.stderr
            );
        }
    }
}

#[test]
fn the_examples_directory_is_one_clean_program() {
    let run = svc()
        .args(["check", "--deny-warnings", "examples"])
        .current_dir(root())
        .run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("no problems in 4 files"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_directory_is_one_program() {
    let run = svc()
        .arg("check")
        .arg("tests/check_dirs/multi")
        .current_dir(root())
        .run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("no problems in 2 files"),
        "{}",
        run.stderr
    );
}

#[test]
fn no_argument_checks_the_current_directory() {
    let run = svc()
        .arg("check")
        .current_dir(root().join("tests/check_dirs/multi"))
        .run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(run.stderr.contains("in 2 files"), "{}", run.stderr);
}

#[test]
fn each_diagnostic_names_its_file() {
    let run = svc()
        .arg("check")
        .arg("tests/check_dirs/broken")
        .current_dir(root())
        .run();
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("[tests/check_dirs/broken/a.svc:2:8]"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("[tests/check_dirs/broken/b.svc:2:21]"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("2 errors and 1 warning in 2 files"),
        "{}",
        run.stderr
    );
}

#[test]
fn errors_exit_one_and_warnings_exit_zero() {
    let run = svc()
        .arg("check")
        .arg("tests/check/unknown_secret_fails.svc")
        .current_dir(root())
        .run();
    assert_eq!(run.status, 1);
    assert!(run.stderr.contains("svc::name::unknown_secret"));

    let run = svc()
        .arg("check")
        .arg("tests/check/unguarded_update_fails.svc")
        .current_dir(root())
        .run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(run.stderr.contains("1 warning in 1 file"));
}

#[test]
fn deny_warnings_turns_warnings_into_failure() {
    let run = svc()
        .args([
            "check",
            "--deny-warnings",
            "tests/check/unguarded_update_fails.svc",
        ])
        .current_dir(root())
        .run();
    assert_eq!(run.status, 1, "{}", run.stderr);
}

#[test]
fn unreadable_paths_exit_two() {
    let run = svc().args(["check", "does/not/exist.svc"]).run();
    assert_eq!(run.status, 2);
    assert!(
        run.stderr.contains("cannot read `does/not/exist.svc`"),
        "{}",
        run.stderr
    );

    let empty = tempfile::tempdir().unwrap();
    let run = svc().arg("check").arg(empty.path()).run();
    assert_eq!(run.status, 2);
    assert!(
        run.stderr.contains("no `.svc` files found"),
        "{}",
        run.stderr
    );
}

#[test]
fn output_is_plain_when_not_a_terminal() {
    let run = svc()
        .args(["check", "tests/check/unknown_secret_fails.svc"])
        .current_dir(root())
        .env("NO_COLOR", "")
        .run();
    assert!(
        !run.stderr.contains('\u{1b}'),
        "escape codes in piped output"
    );
    assert!(
        run.stderr.contains("help: did you mean `CLIENT_SECRET`?"),
        "{}",
        run.stderr
    );
}

#[test]
fn help_explains_itself() {
    let run = svc().arg("--help").run();
    assert_eq!(run.status, 0);
    assert!(run.stdout.contains("check"), "{}", run.stdout);
    let run = svc().args(["check", "--help"]).run();
    assert_eq!(run.status, 0);
    assert!(run.stdout.contains("--deny-warnings"));
    assert!(
        run.stdout.contains("directory loads every"),
        "{}",
        run.stdout
    );
}

#[test]
fn bad_usage_exits_two() {
    let run = svc().args(["check", "--no-such-flag"]).run();
    assert_eq!(run.status, 2);
}

#[test]
fn pathological_inputs_are_errors_not_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let n = 100_000;
    let cases = [
        (
            "parens",
            format!(
                "service a {{ action b {{ log {}1{} }} }}",
                "(".repeat(n),
                ")".repeat(n)
            ),
        ),
        (
            "blocks",
            format!(
                "service a {{ action b {{ {} {} }} }}",
                "if true { ".repeat(n),
                "} ".repeat(n)
            ),
        ),
        (
            "negations",
            format!("service a {{ action b {{ log {}true }} }}", "!".repeat(n)),
        ),
        ("long line", format!("secret A {{ {}oops }}", " ".repeat(n))),
    ];
    for (name, text) in cases {
        let path = dir.path().join(format!("{}.svc", name.replace(' ', "_")));
        std::fs::write(&path, text).unwrap();
        let run = svc().arg("check").arg(&path).run();
        assert_eq!(
            run.status,
            1,
            "{name}: {}",
            &run.stderr[..run.stderr.len().min(2000)]
        );
        assert!(!run.stderr.contains("panicked"), "{name}");
        let expected = if name == "long line" {
            "unexpected `oops`"
        } else {
            "svc::syntax::too_deep"
        };
        assert!(
            run.stderr.contains(expected),
            "{name}: {}",
            &run.stderr[..run.stderr.len().min(2000)]
        );
    }
}

/// Rendering is linear in the number of diagnostics: each report reads
/// only the lines around its labels, never the file from its start.
#[test]
fn twenty_thousand_diagnostics_render_in_human_format() {
    let dir = tempfile::tempdir().unwrap();
    let n = 20_000;
    let vars: String = (0..n).map(|i| format!("  var v{i}: string\n")).collect();
    let path = dir.path().join("unused.svc");
    std::fs::write(&path, format!("service s {{\n{vars}}}\n")).unwrap();
    let run = svc().arg("check").arg(&path).run();
    assert_eq!(
        run.status,
        0,
        "{}",
        &run.stderr[..run.stderr.len().min(2000)]
    );
    assert_eq!(run.stderr.matches("svc::unused::variable").count(), n);
    assert!(
        run.stderr.contains(&format!("{n} warnings in 1 file")),
        "{}",
        &run.stderr[run.stderr.len().saturating_sub(500)..]
    );
    // The last report still names its own line.
    let last = format!("unused.svc:{}:7", n + 1);
    assert!(run.stderr.contains(&last), "no `{last}`");
}

/// A UTF-8 byte-order mark is not part of the program, and positions on
/// the first line count from the first character after it.
#[test]
fn a_byte_order_mark_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bom.svc");
    std::fs::write(
        &path,
        "\u{feff}secret A { }\nservice s {\n  var t: string\n}\n",
    )
    .unwrap();
    let run = svc().arg("check").arg(&path).run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(run.stderr.contains("bom.svc:1:8]"), "{}", run.stderr);
    assert!(run.stderr.contains("bom.svc:3:7]"), "{}", run.stderr);
    assert!(
        run.stderr.contains("2 warnings in 1 file"),
        "{}",
        run.stderr
    );
    let run = svc().args(["check", "--format", "json"]).arg(&path).run();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let first = &report["diagnostics"][0];
    assert_eq!(
        (first["line"].as_u64(), first["column"].as_u64()),
        (Some(1), Some(8)),
        "{first}"
    );
}
