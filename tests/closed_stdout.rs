//! A reader that goes away early (`svc secret list --json | head -c1`)
//! closes standard output. svc then ends quietly, with the status of a
//! program that SIGPIPE ended (141), never with a panic (101): every
//! command prints through `src/output.rs`, and clippy denies any other way.

mod common;

use common::{Project, Run, root, svc};

fn assert_quiet_end(what: &str, run: &Run) {
    assert!(
        run.status == 141 || run.status == 0,
        "{what}: exit {}:\n{}",
        run.status,
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{what}:\n{}", run.stderr);
    assert!(
        !run.stderr.contains("cannot write to standard output"),
        "{what}:\n{}",
        run.stderr
    );
}

#[test]
fn commands_end_quietly_when_standard_output_is_closed() {
    let project = Project::new();
    project.set("TOKEN", "value");
    std::fs::copy(
        root().join("examples/hubspot_refresh.svc"),
        project.path().join("hubspot.svc"),
    )
    .unwrap();
    let commands: &[&[&str]] = &[
        &["secret", "list", "--json", "--env", "dev"],
        &["secret", "list", "--env", "dev"],
        &["secret", "get", "TOKEN", "--env", "dev"],
        &["secret", "history", "TOKEN", "--env", "dev", "--json"],
        &["secret", "recipients", "list", "--env", "dev"],
        &["key", "list", "--env", "dev"],
        &["compile", "hubspot.svc", "--emit", "dot"],
        &["compile", "hubspot.svc", "--emit", "ast"],
        &["compile", "hubspot.svc", "--emit", "openapi"],
        &["check", "hubspot.svc", "--format", "json"],
        &["check", "hubspot.svc", "--format", "sarif"],
        &["schedule", "list", "hubspot.svc", "--env", "dev"],
        &["completions", "bash"],
        &["man"],
        &["fmt", "--check", "hubspot.svc"],
        &["--help"],
        &["check", "--help"],
    ];
    for args in commands {
        let run = project.svc().args(*args).run_with_closed_stdout();
        assert_quiet_end(&args.join(" "), &run);
    }
    // Output that certainly does not fit the pipe's first write.
    let run = svc()
        .args(["fmt", "-"])
        .stdin(std::fs::read(root().join("examples/hubspot_refresh.svc")).unwrap())
        .run_with_closed_stdout();
    assert_quiet_end("fmt -", &run);
    assert_eq!(run.status, 141, "{}", run.stderr);
}

/// The same through a shell, as a person would see it.
#[test]
fn a_pipe_into_head_ends_svc_quietly() {
    for command in [
        "compile examples/hubspot_refresh.svc --emit dot | head -n1",
        "completions bash | head -c1",
        "man | head -c1",
    ] {
        let script = format!(
            "'{}' {command} >/dev/null; echo \"status ${{PIPESTATUS[0]}}\" >&2",
            env!("CARGO_BIN_EXE_svc")
        );
        let output = std::process::Command::new("bash")
            .arg("-c")
            .arg(&script)
            .current_dir(root())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{command}:\n{stderr}");
        assert!(
            stderr.contains("status 141") || stderr.contains("status 0"),
            "{command}:\n{stderr}"
        );
    }
}
