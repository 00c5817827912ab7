//! `svc run` semantics that need no token endpoint: identities and
//! permissions, exit codes, run_service, try/catch/throw, params, the run
//! lock, and refusing programs with errors.

mod common;

use common::Project;

const SCRIPT: &str = r#"
secret STATE { environment_specific }

role operator {
  grant run ops.*
  grant update_secret STATE
}
role outer_only { grant run ops.outer }
role reader { grant run ops.greet }

user alice { roles operator }
user bob { roles reader }
service_account robot { roles operator }

service ops {
  var who: string
  var note: string

  action greet {
    update service_variables { who = "${param.name}" }
    log "hello ${who}"
  }

  action outer {
    log "outer starts"
    run_service ops.inner as robot
    log "outer ends"
  }

  action inner {
    update service_variables { note = "from inner" }
    update_secret STATE = note
  }

  action fail {
    try {
      throw "first" "the first failure"
    } catch "other" {
      log "not this one"
    } catch "first" {
      log "caught ${error.code}: ${error.message}"
    }
    throw "second" "the second failure is not caught"
  }

  action slow {
    sleep 2s
    update_secret STATE = "slow"
  }

  endpoint greet {
    methods GET
    log enabled
    process greet
  }
  endpoint outer {
    methods POST
    process outer
  }
  endpoint inner {
    methods GET
    process inner
  }
  endpoint fail {
    methods GET
    process fail
  }
  endpoint slow {
    methods GET
    process slow
  }
}
"#;

fn project() -> Project {
    let p = Project::new();
    p.write("ops.svc", SCRIPT);
    p
}

#[test]
fn runs_as_the_identity_given_with_params() {
    let p = project();
    let run = p
        .svc()
        .args([
            "run",
            "ops.svc",
            "ops.greet",
            "--env",
            "dev",
            "--as",
            "bob",
            "--param",
            "name=Ada",
        ])
        .run();
    assert_eq!(run.status, 0, "{}", run.all_output());
    assert!(
        run.stdout
            .contains("run ops.greet as bob in dev via cli, called with GET"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("log: hello Ada"), "{}", run.stdout);
    assert!(
        run.stdout.contains("ok: ops.greet succeeded"),
        "{}",
        run.stdout
    );
    // SVC_AS works as well.
    let run = p
        .svc()
        .args(["run", "ops.svc", "ops.greet", "--env", "dev"])
        .env("SVC_AS", "alice")
        .run();
    assert_eq!(run.status, 0, "{}", run.all_output());
}

#[test]
fn without_an_identity_the_error_lists_who_may_run() {
    let p = project();
    let run = p
        .svc()
        .args(["run", "ops.svc", "ops.greet", "--env", "dev"])
        .run();
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("`--as` is missing"), "{}", run.stderr);
    assert!(run.stderr.contains("alice, bob, robot"), "{}", run.stderr);
}

#[test]
fn an_identity_without_the_grant_is_denied_with_exit_three() {
    let p = project();
    let run = p
        .svc()
        .args(["run", "ops.svc", "ops.outer", "--env", "dev", "--as", "bob"])
        .run();
    assert_eq!(run.status, 3, "{}", run.all_output());
    assert!(
        run.stderr.contains("`bob` may not run `ops.outer`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("alice, robot"), "{}", run.stderr);
    let run = p
        .svc()
        .args([
            "run",
            "ops.svc",
            "ops.greet",
            "--env",
            "dev",
            "--as",
            "mallory",
        ])
        .run();
    assert_eq!(run.status, 2);
    assert!(
        run.stderr
            .contains("no user or service account is called `mallory`"),
        "{}",
        run.stderr
    );
}

#[test]
fn methods_and_endpoints_are_checked() {
    let p = project();
    let run = p
        .svc()
        .args([
            "run",
            "ops.svc",
            "ops.greet",
            "--env",
            "dev",
            "--as",
            "bob",
            "--method",
            "post",
        ])
        .run();
    assert_eq!(run.status, 2);
    assert!(
        run.stderr.contains("`ops.greet` does not allow POST"),
        "{}",
        run.stderr
    );
    let run = p
        .svc()
        .args(["run", "ops.svc", "ops.gret", "--env", "dev", "--as", "bob"])
        .run();
    assert_eq!(run.status, 2);
    assert!(
        run.stderr.contains("did you mean `ops.greet`?"),
        "{}",
        run.stderr
    );
    // POST is the default when GET is not allowed.
    let run = p
        .svc()
        .args([
            "run",
            "ops.svc",
            "ops.outer",
            "--env",
            "dev",
            "--as",
            "alice",
        ])
        .run();
    assert!(
        run.stdout.contains("via cli, called with POST"),
        "{}",
        run.all_output()
    );
}

#[test]
fn run_service_runs_as_the_account_and_updates_the_store() {
    let p = project();
    let run = p
        .svc()
        .args([
            "run",
            "ops.svc",
            "ops.outer",
            "--env",
            "dev",
            "--as",
            "alice",
        ])
        .run();
    assert_eq!(run.status, 0, "{}", run.all_output());
    let lines: Vec<&str> = run.stdout.lines().collect();
    let position = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle}"))
    };
    assert!(position("log: outer starts") < position("run_service ops.inner as robot"));
    assert!(
        position("run_service ops.inner as robot") < position("updated secret STATE to version 1")
    );
    assert!(position("updated secret STATE") < position("log: outer ends"));
    assert!(
        lines[position("updated secret STATE")].starts_with("    "),
        "nested runs are indented"
    );
    let document = p.document();
    assert_eq!(document["secrets"]["STATE"]["value"], "from inner");
    assert_eq!(
        document["secrets"]["STATE"]["updated_by"],
        "robot (cli ops.inner)"
    );
}

#[test]
fn try_catch_matches_codes_and_an_uncaught_throw_fails_the_run() {
    let p = project();
    let run = p
        .svc()
        .args([
            "run", "ops.svc", "ops.fail", "--env", "dev", "--as", "alice", "--output", "json",
        ])
        .run();
    assert_eq!(run.status, 1, "{}", run.all_output());
    let record: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let events: Vec<&serde_json::Value> = record["trace"].as_array().unwrap().iter().collect();
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "caught" && e["code"] == "first")
    );
    assert!(
        events
            .iter()
            .any(|e| e["message"] == "caught first: the first failure")
    );
    assert!(!events.iter().any(|e| e["message"] == "not this one"));
    assert_eq!(record["error"]["code"], "second");
    assert_eq!(
        record["error"]["message"],
        "the second failure is not caught"
    );
    assert_eq!(record["outcome"], "failed");
}

#[test]
fn the_run_lock_makes_a_second_run_wait_and_time_out() {
    let p = project();
    let slow = p.svc().args([
        "run", "ops.svc", "ops.slow", "--env", "dev", "--as", "alice",
    ]);
    let first = std::thread::spawn(move || slow.run());
    // Let the first run take the lock.
    std::thread::sleep(std::time::Duration::from_millis(700));
    let second = p
        .svc()
        .args([
            "run",
            "ops.svc",
            "ops.slow",
            "--env",
            "dev",
            "--as",
            "alice",
            "--lock-timeout",
            "300ms",
        ])
        .run();
    assert_eq!(second.status, 1, "{}", second.all_output());
    assert!(
        second
            .stderr
            .contains("another run of `ops.slow` in `dev` did not finish within 300ms"),
        "{}",
        second.stderr
    );
    let first = first.join().unwrap();
    assert_eq!(first.status, 0, "{}", first.all_output());
    // With time to wait, a second run runs after the first.
    let slow = p.svc().args([
        "run", "ops.svc", "ops.slow", "--env", "dev", "--as", "alice",
    ]);
    let first = std::thread::spawn(move || slow.run());
    std::thread::sleep(std::time::Duration::from_millis(700));
    let second = p
        .svc()
        .args([
            "run", "ops.svc", "ops.slow", "--env", "dev", "--as", "alice",
        ])
        .run();
    assert_eq!(second.status, 0, "{}", second.all_output());
    assert_eq!(first.join().unwrap().status, 0);
    assert_eq!(p.document()["secrets"]["STATE"]["version"], 3);
}

#[test]
fn a_program_with_errors_does_not_run() {
    let p = project();
    p.write(
        "broken.svc",
        &SCRIPT.replace("update_secret STATE = note", "update_secret STAT = note"),
    );
    let run = p
        .svc()
        .args([
            "run",
            "broken.svc",
            "ops.inner",
            "--env",
            "dev",
            "--as",
            "alice",
        ])
        .run();
    assert_eq!(run.status, 2, "{}", run.all_output());
    assert!(
        run.stderr.contains("svc::secret::undeclared"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("fix them before running"),
        "{}",
        run.stderr
    );
    assert!(!p.path().join("logs").exists());
}

#[test]
fn logs_show_the_runs_of_an_endpoint() {
    let p = project();
    for name in ["one", "two", "three"] {
        let run = p
            .svc()
            .args([
                "run",
                "ops.svc",
                "ops.greet",
                "--env",
                "dev",
                "--as",
                "bob",
                "--param",
            ])
            .arg(format!("name={name}"))
            .run();
        assert_eq!(run.status, 0);
    }
    let logs = p
        .svc()
        .args(["logs", "ops.greet", "--env", "dev", "-n", "2"])
        .run();
    assert_eq!(logs.status, 0, "{}", logs.stderr);
    assert_eq!(logs.stdout.lines().count(), 2, "{}", logs.stdout);
    assert!(
        logs.stdout
            .lines()
            .all(|l| l.contains("success") && l.contains("bob via cli")),
        "{}",
        logs.stdout
    );
    let json = p
        .svc()
        .args(["logs", "ops.greet", "--env", "dev", "--json"])
        .run();
    let records: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 3);
    assert_eq!(records[2]["trace"][1]["message"], "hello three");
    // Endpoints without `log enabled` are not logged.
    let run = p
        .svc()
        .args([
            "run", "ops.svc", "ops.fail", "--env", "dev", "--as", "alice",
        ])
        .run();
    assert_eq!(run.status, 1);
    assert!(!p.path().join("logs/dev/ops.fail.jsonl").exists());
}
