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
        run.stderr.contains("no problems in 8 files"),
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
fn no_argument_checks_the_projects_program() {
    // A project whose svc.toml names no program: its directory. (With no
    // svc.toml at all, `svc check` refuses: tests/first_hour.rs.)
    let dir = tempfile::tempdir().unwrap();
    let copied = std::process::Command::new("cp")
        .arg("-r")
        .arg(root().join("tests/check_dirs/multi/."))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(copied.success());
    std::fs::write(dir.path().join("svc.toml"), "environment = \"dev\"\n").unwrap();
    let run = svc().arg("check").current_dir(dir.path()).run();
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

/// Links are followed, but each directory and file is visited once: a link
/// to a parent neither loops nor loads a file twice (which would report
/// every declaration of it as a duplicate).
#[test]
fn directory_links_neither_loop_nor_load_a_file_twice() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("p");
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    std::fs::copy(
        common::root().join("examples/hubspot_refresh.svc"),
        root.join("a.svc"),
    )
    .unwrap();
    symlink("..", root.join("sub/up")).unwrap();
    symlink("../..", root.join("sub/deeper/up2")).unwrap();
    symlink("../a.svc", root.join("sub/again.svc")).unwrap();
    let run = svc().arg("check").arg(&root).arg(root.join("a.svc")).run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(run.stderr.contains("in 1 file"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("svc::name::duplicate"),
        "{}",
        run.stderr
    );
}

/// A `.svc` entry of a directory that is a FIFO or a device is skipped
/// with a warning: reading it could block or never end.
#[test]
fn special_files_in_a_directory_are_skipped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::copy(
        common::root().join("examples/hubspot_refresh.svc"),
        root.join("a.svc"),
    )
    .unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(root.join("pipe.svc"))
        .status()
        .unwrap();
    assert!(status.success());
    std::os::unix::fs::symlink("/dev/zero", root.join("zero.svc")).unwrap();
    let run = svc().arg("check").arg(root).run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(
        run.stderr.matches("svc::source::skipped").count(),
        2,
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("pipe.svc`: it is a FIFO, not a regular file"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("zero.svc`: it is a character device"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("2 warnings in 1 file"),
        "{}",
        run.stderr
    );
    let run = svc().args(["check", "--deny-warnings"]).arg(root).run();
    assert_eq!(run.status, 1, "{}", run.stderr);
    let run = svc().args(["check", "--format", "json"]).arg(root).run();
    assert!(
        run.stdout.contains("\"svc::source::skipped\""),
        "{}",
        run.stdout
    );
    // The commands that run a program say so too.
    let run = svc().args(["compile", "--emit", "dot"]).arg(root).run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("svc::source::skipped"),
        "{}",
        run.stderr
    );
    let run = svc().args(["fmt", "--check"]).arg(root).run();
    assert!(
        run.stderr.contains("svc::source::skipped"),
        "{}",
        run.stderr
    );
}

/// One bounded reader for every source: an endless file ends with an
/// error after 64 MiB, and a FIFO named on the command line is read.
#[test]
fn sources_are_read_through_one_bounded_reader() {
    let dir = tempfile::tempdir().unwrap();
    let zero = dir.path().join("zero.svc");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    for args in [vec!["check"], vec!["compile"], vec!["fmt", "--check"]] {
        let run = svc().args(&args).arg(&zero).run();
        assert_eq!(run.status, 2, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("is larger than 64 MiB"),
            "{args:?}: {}",
            run.stderr
        );
    }
    let run = svc()
        .args(["fmt", "-"])
        .stdin(vec![b' '; 64 * 1024 * 1024 + 1])
        .run();
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("`<stdin>` is larger than 64 MiB"),
        "{}",
        run.stderr
    );
    // A FIFO given by name (process substitution) is a source like any other.
    let example = common::root().join("examples/hubspot_refresh.svc");
    let output = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "'{}' check <(cat '{}')",
            env!("CARGO_BIN_EXE_svc"),
            example.display()
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("no problems in 1 file"), "{stderr}");
}

/// An operator chain is a tree as tall as it is long, and every pass over
/// the AST recurses through it: its length counts toward the depth limit,
/// so `check` and `compile` report it, and `fmt` refuses it, without a crash.
#[test]
fn long_operator_chains_are_too_deep_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let program = |condition: String| {
        format!(
            "service s {{\n  action a {{\n    if {condition} {{ log \"x\" }}\n  }}\n  endpoint e {{ methods GET process a }}\n}}\n"
        )
    };
    let cases = [
        ("and_2500", program(vec!["true"; 2_500].join(" && "))),
        ("and_10000", program(vec!["true"; 10_000].join(" && "))),
        ("mixed", program(vec!["1 == 2 && true"; 3_000].join(" || "))),
        (
            "interpolated",
            program(format!(
                "\"${{{}}}\" == \"\"",
                vec!["true"; 5_000].join(" && ")
            )),
        ),
        (
            "else_if",
            format!(
                "service s {{ action a {{ if true {{ }} {}}} }}\n",
                "else if true { } ".repeat(100_000)
            ),
        ),
    ];
    for (name, text) in cases {
        let path = dir.path().join(format!("{name}.svc"));
        std::fs::write(&path, text).unwrap();
        for (args, status) in [
            (vec!["check"], 1),
            (vec!["compile"], 1),
            (vec!["compile", "--emit", "dot"], 1),
            (vec!["fmt", "--check"], 2),
        ] {
            let run = svc().args(&args).arg(&path).run();
            let stderr = &run.stderr[..run.stderr.len().min(2000)];
            assert_eq!(run.status, status, "{name} {args:?}: {stderr}");
            assert!(
                !run.stderr.contains("panicked"),
                "{name} {args:?}: {stderr}"
            );
            assert!(
                run.stderr.contains("svc::syntax::too_deep"),
                "{name} {args:?}: {stderr}"
            );
        }
    }
    // Just under the limit, a chain is a program like any other.
    let path = dir.path().join("short.svc");
    std::fs::write(&path, program(vec!["true"; 40].join(" && "))).unwrap();
    let run = svc().arg("check").arg(&path).run();
    assert_eq!(run.status, 0, "{}", run.stderr);
}
