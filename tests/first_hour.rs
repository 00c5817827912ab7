//! The first hour, outside the happy path: each test is one failure a new
//! user met (issue 21), with the command they gave, and shows it gone.

mod common;

use common::svc;

/// A report as one line: the lines a message or help wraps onto joined.
fn flat(report: &str) -> String {
    report
        .lines()
        .map(|line| line.trim().trim_start_matches("| "))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A directory that is no project, with `.svc` files that are not a
/// program: someone's home, a checkout of something else.
fn unrelated_files() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..5 {
        let sub = dir.path().join(format!("pkg{i}"));
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("broken.svc"), "service s { action a { nope } }\n").unwrap();
    }
    dir
}

#[test]
fn a_command_that_needs_a_program_refuses_without_a_path_or_a_project() {
    let dir = unrelated_files();
    for args in [
        &["run", "api.refresh", "--as", "token_bot"][..],
        &["check"],
        &["compile"],
        &["doctor", "--env", "dev"],
        &["serve", "--env", "dev"],
        &["schedule", "list", "--env", "dev"],
        &["authorize", "app", "--env", "dev", "--as", "ops"],
        &["key", "create", "--as", "app", "--env", "dev"],
        &["secret", "get", "TOKEN", "--env", "dev", "--fresh"],
    ] {
        let run = svc().args(args).current_dir(dir.path()).run();
        assert_eq!(run.status, 2, "{args:?}: {}", run.all_output());
        let here = std::fs::canonicalize(dir.path()).unwrap();
        for expected in [
            "svc::project::missing",
            &format!(
                "no svc.toml in `{}` or any parent directory",
                here.display()
            ),
            "give the program's path, or run `svc init`",
        ] {
            assert!(run.stderr.contains(expected), "{args:?}: {}", run.stderr);
        }
        // Nothing below was read.
        assert!(
            !run.stderr.contains("broken.svc"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.stderr.lines().count() < 6, "{args:?}: {}", run.stderr);
    }
    // A path given still loads that file or directory.
    let run = svc().args(["check", "pkg0"]).current_dir(dir.path()).run();
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert!(run.stderr.contains("broken.svc"), "{}", run.stderr);
    assert!(run.stderr.contains("1 error in 1 file"), "{}", run.stderr);
}

#[test]
fn plain_svc_check_passes_at_the_root_of_this_repository() {
    let run = svc().arg("check").current_dir(common::root()).run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(run.stderr.contains("no problems"), "{}", run.stderr);
}

#[test]
fn help_texts_promise_no_current_directory_default() {
    for args in [
        &["check", "--help"][..],
        &["run", "--help"],
        &["compile", "--help"],
        &["doctor", "--help"],
        &["serve", "--help"],
        &["authorize", "--help"],
        &["key", "create", "--help"],
        &["schedule", "list", "--help"],
    ] {
        let run = svc().args(args).run();
        assert_eq!(run.status, 0, "{args:?}: {}", run.stderr);
        let text = run.stdout.replace('\n', " ");
        assert!(
            !text.contains("or .]") && !text.contains("or .)") && !text.contains("[default: .]"),
            "{args:?}: {}",
            run.stdout
        );
    }
}

#[test]
fn a_store_that_does_not_exist_yet_is_missing_and_init_names_the_identity() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let user = || {
        svc()
            .current_dir(dir.path())
            .env("XDG_CONFIG_HOME", &config)
    };
    // The user's own identity, made where svc looks for it (the directory
    // is made too).
    let made = user()
        .args(["secret", "keygen", "-o"])
        .arg(config.join("svc/identity.txt"))
        .run();
    assert_eq!(made.status, 0, "{}", made.all_output());
    let public = made.stdout.trim().to_string();
    assert!(public.starts_with("age1"), "{}", made.stdout);

    for (args, env) in [
        (
            &["secret", "set", "API_CLIENT_ID", "--env", "dev"][..],
            "dev",
        ),
        (
            &["secret", "recipients", "add", &public, "--env", "prod"],
            "prod",
        ),
        (&["secret", "list", "--env", "dev"], "dev"),
    ] {
        let run = user().args(args).stdin("value-Kq81").run();
        assert_eq!(run.status, 2, "{args:?}: {}", run.all_output());
        assert!(
            run.stderr.contains("svc::store::missing")
                && run
                    .stderr
                    .contains(&format!("svc secret init --env {env}`")),
            "{args:?}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("lock"), "{args:?}: {}", run.stderr);
    }

    // Without --recipient, the store is encrypted to the identity svc
    // reads with, and svc says which.
    let init = user().args(["secret", "init", "--env", "dev"]).run();
    assert_eq!(init.status, 0, "{}", init.all_output());
    assert!(
        init.stderr.contains(&public) && init.stderr.contains("identity.txt"),
        "{}",
        init.stderr
    );
    let recipients = std::fs::read_to_string(dir.path().join("secrets/dev.recipients")).unwrap();
    assert!(recipients.lines().any(|l| l == public), "{recipients}");
    let set = user()
        .args(["secret", "set", "API_CLIENT_ID", "--env", "dev"])
        .stdin("value-Kq81")
        .run();
    assert_eq!(set.status, 0, "{}", set.all_output());
    let get = user()
        .args(["secret", "get", "API_CLIENT_ID", "--env", "dev"])
        .run();
    assert_eq!(get.stdout, "value-Kq81\n", "{}", get.stderr);

    // With no identity to read with, there is nothing to encrypt to.
    let stranger = svc()
        .current_dir(dir.path())
        .args(["secret", "init", "--env", "staging"])
        .run();
    assert_eq!(stranger.status, 2, "{}", stranger.all_output());
    assert!(
        stranger.stderr.contains("svc::store::no_identity")
            && flat(&stranger.stderr).contains("svc secret keygen -o"),
        "{}",
        stranger.stderr
    );
    assert!(!dir.path().join("secrets/staging.age").exists());
}
