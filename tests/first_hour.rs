//! The first hour, outside the happy path: each test is one failure a new
//! user met (issue 21), with the command they gave, and shows it gone.

mod common;

use common::{Project, svc};

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

/// A new user's home, and `svc init myproj --yes` in the directory above.
struct Newcomer {
    dir: tempfile::TempDir,
}

impl Newcomer {
    fn new() -> Newcomer {
        let newcomer = Newcomer {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir(newcomer.dir.path().join("home")).unwrap();
        let init = newcomer.svc().args(["init", "myproj", "--yes"]).run();
        assert_eq!(init.status, 0, "{}", init.all_output());
        newcomer
    }

    fn svc(&self) -> common::Svc {
        svc()
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path().join("home"))
            .env("XDG_CONFIG_HOME", "")
    }

    fn program(&self) -> std::path::PathBuf {
        self.dir.path().join("myproj/tokens.svc")
    }

    /// `svc run myproj api.refresh --as token_bot --dry-run`.
    fn dry_run(&self) -> common::Run {
        self.svc()
            .args([
                "run",
                "myproj",
                "api.refresh",
                "--as",
                "token_bot",
                "--dry-run",
            ])
            .run()
    }

    fn set(&self, name: &str, value: &str) {
        let run = self
            .svc()
            .args(["--project", "myproj", "secret", "set", name])
            .stdin(value)
            .run();
        assert_eq!(run.status, 0, "{}", run.all_output());
    }
}

#[test]
fn a_run_refuses_before_sending_when_a_secret_it_reads_has_no_value() {
    let user = Newcomer::new();
    // The token endpoint: a listener that must see no connection.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let text = std::fs::read_to_string(user.program()).unwrap().replace(
        "https://auth.example.com/oauth2/token",
        &format!("http://{}/token", listener.local_addr().unwrap()),
    );
    std::fs::write(user.program(), text).unwrap();

    for extra in [&[][..], &["--dry-run"]] {
        let run = user
            .svc()
            .args(["run", "myproj", "api.refresh", "--as", "token_bot"])
            .args(extra)
            .run();
        assert_eq!(run.status, 2, "{extra:?}: {}", run.all_output());
        let stderr = flat(&run.stderr);
        for expected in [
            "svc::store::missing_value",
            "`API_CLIENT_ID`",
            "`API_CLIENT_SECRET`",
            "svc secret set API_CLIENT_ID --env dev",
            "svc secret set API_CLIENT_SECRET --env dev",
        ] {
            assert!(stderr.contains(expected), "{expected}: {}", run.stderr);
        }
    }
    user.set("API_CLIENT_ID", "client-id-Zr4");
    let run = user.dry_run();
    assert_eq!(run.status, 2, "{}", run.all_output());
    assert!(
        run.stderr.contains("`API_CLIENT_SECRET`") && !run.stderr.contains("`API_CLIENT_ID`"),
        "{}",
        run.stderr
    );
    assert!(!run.all_output().contains("client-id-Zr4"));
    assert_eq!(
        listener.accept().unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "a request was sent"
    );
}

#[test]
fn the_secrets_a_run_may_read_include_its_clients_and_the_endpoints_it_runs() {
    let p = common::Project::new();
    std::fs::copy(
        common::root().join("examples/hubspot_refresh.svc"),
        p.path().join("hubspot.svc"),
    )
    .unwrap();
    p.set("HUBSPOT_REFRESH_TOKEN", "refresh-token-Qm3");
    let run = p
        .svc()
        .args([
            "run",
            "hubspot.svc",
            "hubspot.refresh",
            "--env",
            "dev",
            "--as",
            "nightly",
        ])
        .run();
    assert_eq!(run.status, 2, "{}", run.all_output());
    let stderr = flat(&run.stderr);
    assert!(
        stderr.contains("`HUBSPOT_CLIENT_ID`, `HUBSPOT_CLIENT_SECRET`")
            && !stderr.contains("`HUBSPOT_REFRESH_TOKEN`"),
        "{}",
        run.stderr
    );

    p.write(
        "calls.svc",
        r#"
secret INNER_KEY { environment_specific }
role r { grant run outer.go grant run inner.go }
service_account bot { roles r }
service inner {
  action a {
    web_request { method GET url "http://127.0.0.1:9/x" headers { "X-Key" = secret.INNER_KEY } }
  }
  endpoint go { methods GET process a }
}
service outer {
  action a { run_service inner.go }
  endpoint go { methods GET process a }
}
"#,
    );
    let run = p
        .svc()
        .args([
            "run",
            "calls.svc",
            "outer.go",
            "--env",
            "dev",
            "--as",
            "bot",
        ])
        .run();
    assert_eq!(run.status, 2, "{}", run.all_output());
    assert!(
        run.stderr.contains("svc::store::missing_value") && run.stderr.contains("`INNER_KEY`"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_wrong_environment_is_refused_before_anything_runs_with_the_nearest_name() {
    let user = Newcomer::new();
    user.set("API_CLIENT_ID", "client-id-Zr4");
    user.set("API_CLIENT_SECRET", "client-secret-Zr5");
    let toml = user.dir.path().join("myproj/svc.toml");
    let mut text = std::fs::read_to_string(&toml).unwrap();
    text.push_str("\n[environments.prod]\nlog_format = \"json\"\n");
    std::fs::write(&toml, text).unwrap();
    // The token endpoint: a listener that must see no connection.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let program = std::fs::read_to_string(user.program()).unwrap().replace(
        "https://auth.example.com/oauth2/token",
        &format!("http://{}/token", listener.local_addr().unwrap()),
    );
    std::fs::write(user.program(), program).unwrap();

    for args in [
        &[
            "run",
            "myproj",
            "api.refresh",
            "--as",
            "token_bot",
            "--env",
            "prd",
        ][..],
        &[
            "run",
            "myproj",
            "api.refresh",
            "--as",
            "token_bot",
            "--env",
            "prd",
            "--dry-run",
        ],
        &["serve", "myproj", "--env", "prd"],
        &["--project", "myproj", "exec", "--env", "prd", "--", "true"],
        &[
            "--project",
            "myproj",
            "key",
            "create",
            "--as",
            "app",
            "--env",
            "prd",
        ],
        &["schedule", "list", "myproj", "--env", "prd"],
        &["check", "myproj", "--env", "prd"],
    ] {
        let run = user.svc().args(args).run();
        assert_eq!(run.status, 2, "{args:?}: {}", run.all_output());
        let stderr = flat(&run.stderr);
        assert!(
            stderr.contains("svc::cli::unknown_environment")
                && stderr.contains("environment `prd` has no store")
                && stderr.contains("did you mean `prod`?"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.stderr.lines().count() < 8, "{args:?}: {}", run.stderr);
    }
    // The secret commands say the store is missing, and the name meant.
    let run = user
        .svc()
        .args([
            "--project",
            "myproj",
            "secret",
            "set",
            "API_CLIENT_ID",
            "--env",
            "prd",
        ])
        .stdin("value")
        .run();
    assert_eq!(run.status, 2, "{}", run.all_output());
    let stderr = flat(&run.stderr);
    assert!(
        stderr.contains("svc::store::missing")
            && stderr.contains("did you mean `prod`?")
            && stderr.contains("svc secret init --env prd"),
        "{}",
        run.stderr
    );
    // An environment svc.toml names is no typo, store or not; one with a
    // store is known too.
    let run = user
        .svc()
        .args(["--project", "myproj", "secret", "list", "--env", "prod"])
        .run();
    assert!(run.stderr.contains("svc::store::missing"), "{}", run.stderr);
    assert!(!run.stderr.contains("did you mean"), "{}", run.stderr);
    assert_eq!(
        listener.accept().unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "a request was sent"
    );
}

/// The exit codes README's table lists, as `svc --help` lists them.
fn help_exit_codes() -> Vec<u8> {
    let run = svc().arg("--help").run();
    let after = run
        .stdout
        .split("Exit codes")
        .nth(1)
        .expect("svc --help lists the exit codes")
        .to_string();
    after
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

#[test]
fn every_command_keeps_to_one_table_of_exit_codes() {
    use clap::CommandFactory;
    let table = [
        svc::exit::SUCCESS,
        svc::exit::FAILURE,
        svc::exit::USAGE,
        svc::exit::PERMISSION_DENIED,
        svc::exit::NEEDS_PERSON,
        svc::exit::CLOSED_PIPE,
    ];
    // README's table, `svc --help` and src/exit.rs agree.
    let readme = std::fs::read_to_string(common::root().join("README.md")).unwrap();
    let section = readme.split("### Exit codes").nth(1).unwrap();
    let listed: Vec<u8> = section
        .lines()
        .skip_while(|l| !l.starts_with("| code"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            l.trim_start_matches('|')
                .split('|')
                .next()?
                .trim()
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(listed, table, "README's table");
    assert_eq!(help_exit_codes(), table, "svc --help");

    // A bad argument: 2, in every command.
    let cli = svc::commands::cli::Cli::command();
    let mut paths: Vec<Vec<String>> = Vec::new();
    for command in cli.get_subcommands() {
        let name = command.get_name().to_string();
        if command.has_subcommands() {
            for sub in command.get_subcommands() {
                paths.push(vec![name.clone(), sub.get_name().to_string()]);
            }
        } else {
            paths.push(vec![name]);
        }
    }
    assert!(paths.len() > 25, "{paths:?}");
    for path in &paths {
        let run = svc().args(path).arg("--no-such-flag").run();
        assert_eq!(run.status, 2, "{path:?}: {}", run.stderr);
    }

    // No identity: 2 in every command that opens the store (`svc doctor`
    // reports it as a problem it found: 1).
    let p = Project::new();
    p.set("API_CLIENT_ID", "id-Kk2");
    p.set("API_CLIENT_SECRET", "secret-Kk3");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let starter = std::fs::read_to_string(common::root().join("examples/starter/tokens.svc"))
        .unwrap()
        .replace(
            "https://auth.example.com/oauth2/token",
            &format!("http://127.0.0.1:{closed}/token"),
        );
    p.write("tokens.svc", &starter);
    std::fs::copy(
        common::root().join("examples/hubspot_refresh.svc"),
        p.path().join("hubspot.svc"),
    )
    .unwrap();
    let no_identity: &[(&[&str], i32)] = &[
        (
            &[
                "run",
                "tokens.svc",
                "api.refresh",
                "--env",
                "dev",
                "--as",
                "token_bot",
            ],
            2,
        ),
        (&["secret", "list", "--env", "dev"], 2),
        (&["secret", "get", "API_CLIENT_ID", "--env", "dev"], 2),
        (&["secret", "set", "X", "--env", "dev"], 2),
        (&["secret", "rm", "API_CLIENT_ID", "--env", "dev"], 2),
        (&["secret", "history", "API_CLIENT_ID", "--env", "dev"], 2),
        (&["secret", "rollback", "API_CLIENT_ID", "--env", "dev"], 2),
        (&["secret", "export", "--env", "dev"], 2),
        (&["exec", "--env", "dev", "--", "true"], 2),
        (&["serve", "tokens.svc", "--env", "dev"], 2),
        (
            &[
                "key",
                "create",
                "--as",
                "app",
                "--env",
                "dev",
                "--program",
                "tokens.svc",
            ],
            2,
        ),
        (&["key", "list", "--env", "dev"], 2),
        (&["check", "tokens.svc", "--env", "dev"], 2),
        (
            &[
                "authorize",
                "hubspot.svc",
                "hubspot_app",
                "--env",
                "dev",
                "--as",
                "ops_oncall",
            ],
            2,
        ),
        (&["doctor", "tokens.svc", "--env", "dev"], 1),
    ];
    for (args, status) in no_identity {
        let run = svc().current_dir(p.path()).args(*args).stdin("v").run();
        assert_eq!(run.status, *status, "{args:?}: {}", run.all_output());
        assert!(
            run.all_output().contains("no identity") || run.all_output().contains("no_identity"),
            "{args:?}: {}",
            run.all_output()
        );
    }

    // A run that fails: 1; one the identity may not run: 3.
    let run = p
        .svc()
        .args([
            "run",
            "tokens.svc",
            "api.refresh",
            "--env",
            "dev",
            "--as",
            "token_bot",
        ])
        .run();
    assert_eq!(run.status, 1, "{}", run.all_output());
    let run = p
        .svc()
        .args([
            "run",
            "tokens.svc",
            "api.refresh",
            "--env",
            "dev",
            "--as",
            "app",
        ])
        .run();
    assert_eq!(run.status, 3, "{}", run.all_output());
}

#[test]
fn a_database_error_says_what_the_server_said_and_how_to_fix_it() {
    let pg = common::pg::Postgres::shared();
    let p = Project::new();
    let url = pg.url();
    let password = url
        .split_once("svc:")
        .and_then(|(_, rest)| rest.split_once('@'))
        .map(|(password, _)| password.to_string())
        .unwrap();
    let cases = [
        (
            pg.database_url("svc_no_such_database"),
            "3D000",
            "database \"svc_no_such_database\" does not exist",
            "the database the URL names does not exist on that server",
        ),
        (
            url.replace(&password, "wrongpassword42"),
            "28P01",
            "password authentication failed for user \"svc\"",
            "the server refused the URL's user or password",
        ),
    ];
    for (backend, sqlstate, said, fix) in cases {
        for args in [
            &["secret", "list", "--env", "dev", "--backend", &backend][..],
            &["backend", "status", "--backend", &backend],
        ] {
            let run = p.svc().args(args).run();
            assert_eq!(run.status, 1, "{args:?}: {}", run.all_output());
            let stderr = flat(&run.stderr);
            for expected in ["svc::backend::unavailable", sqlstate, said, fix] {
                assert!(stderr.contains(expected), "{expected}: {}", run.stderr);
            }
            for never in [
                "db error",
                "reconnects by itself",
                "wrongpassword42",
                &password,
            ] {
                assert!(!run.all_output().contains(never), "{never}: {}", run.stderr);
            }
        }
    }
}

/// scripts/test.sh (what CI runs) was silent for minutes: clippy and the
/// test build ran `--quiet`. Each step now says when it starts and how
/// long it took, cargo shows its progress, and the test binaries are
/// named as they run.
#[test]
fn the_test_script_shows_each_step_its_time_and_each_test_binary() {
    let root = common::root();
    let script = std::fs::read_to_string(root.join("scripts/test.sh")).unwrap();
    assert!(script.contains("source scripts/lib/steps.sh"), "{script}");
    for line in script
        .lines()
        .filter(|l| l.trim_start().starts_with("cargo "))
    {
        let before_harness = line.split(" -- ").next().unwrap();
        assert!(
            !before_harness.contains("--quiet"),
            "cargo is quiet: {line}"
        );
    }
    assert!(script.contains("cargo test --no-run"), "{script}");
    assert!(script.contains("cargo test -- --quiet"), "{script}");

    let run = std::process::Command::new("bash")
        .args([
            "-c",
            "source scripts/lib/steps.sh; step first; step second; true",
        ])
        .current_dir(&root)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{out}");
    // A second may tick between two steps: the seconds' digit is any.
    let lines: Vec<String> = out
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.replace(|c: char| c.is_ascii_digit(), "#"))
        .collect();
    assert_eq!(
        lines,
        [
            "==> [#m##s] first",
            "==> first: done in #m##s",
            "==> [#m##s] second",
            "==> second: done in #m##s",
            "==> finished after #m##s",
        ],
        "{out}"
    );
    let failed = std::process::Command::new("bash")
        .args(["-c", "source scripts/lib/steps.sh; step broken; exit 3"])
        .current_dir(&root)
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&failed.stdout).contains("==> failed (exit 3) after 0m0"),
        "{failed:?}"
    );
}

#[test]
fn the_run_header_says_how_the_endpoint_was_called_apart_from_what_it_sends() {
    let user = Newcomer::new();
    user.set("API_CLIENT_ID", "client-id-Zr4");
    user.set("API_CLIENT_SECRET", "client-secret-Zr5");
    let run = user.dry_run();
    assert_eq!(run.status, 0, "{}", run.all_output());
    let mut lines = run.stdout.lines();
    assert_eq!(
        lines.next(),
        Some(
            "run api.refresh as token_bot in dev via cli, called with GET \
             (dry run: nothing is sent or changed)"
        ),
        "{}",
        run.stdout
    );
    assert!(
        lines.next().is_some_and(|l| l.contains("would send POST")),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("GET via cli"), "{}", run.stdout);
}

#[test]
fn a_value_too_short_to_mask_is_not_masked_and_secret_set_says_so() {
    let user = Newcomer::new();
    let set = user
        .svc()
        .args(["--project", "myproj", "secret", "set", "API_CLIENT_ID"])
        .stdin("e")
        .run();
    assert_eq!(set.status, 0, "{}", set.all_output());
    assert!(
        flat(&set.stderr).contains("cannot be masked") && set.stderr.contains("4 bytes"),
        "{}",
        set.stderr
    );
    user.set("API_CLIENT_SECRET", "client-secret-Zr5");
    let run = user.dry_run();
    assert_eq!(run.status, 0, "{}", run.all_output());
    assert!(
        run.stdout
            .contains("would send POST https://auth.example.com/oauth2/token"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("***uth"), "{}", run.stdout);
    assert!(!run.all_output().contains("client-secret-Zr5"));
}

#[test]
fn a_misspelt_secret_name_is_stored_with_a_warning_and_doctor_lists_it() {
    let user = Newcomer::new();
    user.set("API_CLIENT_ID", "client-id-Zr4");
    user.set("API_CLIENT_SECRET", "client-secret-Zr5");
    let set = user
        .svc()
        .args(["--project", "myproj", "secret", "set", "API_CLIENT_DI"])
        .stdin("client-id-Zr4")
        .run();
    assert_eq!(set.status, 0, "{}", set.all_output());
    let stderr = flat(&set.stderr);
    assert!(
        stderr.contains("warning: the project's program declares no secret `API_CLIENT_DI`")
            && stderr.contains("did you mean `API_CLIENT_ID`?"),
        "{}",
        set.stderr
    );
    let doctor = user.svc().args(["--project", "myproj", "doctor"]).run();
    assert!(
        doctor.stdout.contains(
            "warn  stored secrets: `API_CLIENT_DI` is stored in `dev` and no program declares it"
        ) && doctor.stdout.contains("did you mean `API_CLIENT_ID`?"),
        "{}",
        doctor.all_output()
    );
    // A declared name sets quietly; outside a project there is no program
    // to compare with.
    let quiet = user
        .svc()
        .args(["--project", "myproj", "secret", "set", "API_CLIENT_ID"])
        .stdin("client-id-Zr4")
        .run();
    assert!(!quiet.stderr.contains("warning"), "{}", quiet.stderr);
    let p = Project::new();
    let run = p
        .svc()
        .args(["secret", "set", "ANYTHING", "--env", "dev"])
        .stdin("value-Kq81")
        .run();
    assert_eq!(run.status, 0, "{}", run.all_output());
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
}

#[test]
fn exec_only_suggests_the_name_meant() {
    let user = Newcomer::new();
    user.set("API_CLIENT_ID", "client-id-Zr4");
    let run = user
        .svc()
        .args([
            "--project",
            "myproj",
            "exec",
            "--only",
            "API_CLIENT_DI",
            "--",
            "true",
        ])
        .run();
    assert_eq!(run.status, 2, "{}", run.all_output());
    assert!(
        run.stderr.contains("svc::store::no_such_secret")
            && run.stderr.contains("did you mean `API_CLIENT_ID`?"),
        "{}",
        run.stderr
    );
}

/// What the shell gets for the word being completed: `svc` asked as the
/// bash script of `svc completions bash` asks it.
fn complete(dir: &std::path::Path, words: &[&str]) -> Vec<String> {
    let run = svc()
        .current_dir(dir)
        .env("COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", (words.len() - 1).to_string())
        .env("_CLAP_IFS", "\n")
        .arg("--")
        .args(words)
        .run();
    assert_eq!(run.status, 0, "{words:?}: {}", run.all_output());
    run.stdout.lines().map(str::to_owned).collect()
}

#[test]
fn shell_completion_offers_the_projects_names_not_file_names() {
    let user = Newcomer::new();
    let project = user.dir.path().join("myproj");
    let toml = project.join("svc.toml");
    let mut text = std::fs::read_to_string(&toml).unwrap();
    text.push_str("\n[environments.prod]\nlog_format = \"json\"\n");
    std::fs::write(&toml, text).unwrap();

    let identities = complete(&project, &["svc", "run", "--as", ""]);
    assert_eq!(identities, ["token_bot", "app"], "{identities:?}");
    let envs = complete(&project, &["svc", "run", "--env", ""]);
    assert_eq!(envs, ["dev", "prod"], "{envs:?}");
    let endpoints = complete(&project, &["svc", "run", "api."]);
    assert_eq!(endpoints, ["api.refresh"], "{endpoints:?}");
    let logs = complete(&project, &["svc", "logs", "a"]);
    assert_eq!(logs, ["api.refresh"], "{logs:?}");
    let secrets = complete(&project, &["svc", "secret", "set", "API_C"]);
    assert_eq!(
        secrets,
        ["API_CLIENT_ID", "API_CLIENT_SECRET"],
        "{secrets:?}"
    );
    let only = complete(&project, &["svc", "exec", "--only", "API_A"]);
    assert_eq!(only, ["API_ACCESS_TOKEN"], "{only:?}");
    // From a directory below the project too; nothing from elsewhere.
    std::fs::create_dir(project.join("notes")).unwrap();
    let below = complete(
        &project.join("notes"),
        &["svc", "key", "create", "--as", "t"],
    );
    assert_eq!(below, ["token_bot"], "{below:?}");
    let nowhere = tempfile::tempdir().unwrap();
    std::fs::write(nowhere.path().join("token_notes.txt"), "").unwrap();
    let none = complete(nowhere.path(), &["svc", "run", "--as", "t"]);
    assert!(none.is_empty(), "{none:?}");

    // The script `svc completions` prints asks svc itself.
    let script = svc().args(["completions", "bash"]).run();
    assert!(
        script.stdout.contains("COMPLETE=\"bash\""),
        "{}",
        script.stdout
    );
}
