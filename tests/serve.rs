//! `svc serve` through real HTTP on 127.0.0.1: keys, 401/403/404/405,
//! synchronous and asynchronous runs, secret reads with an audit log,
//! metrics, schedules, restarts, serialised runs, TLS and shutdown.

mod common;

use std::time::Duration;

use common::{Project, eventually};

const APP: &str = r#"
secret TICKS        { environment_specific }
secret SHARED_TOKEN { environment_specific description "read by other apps" }
secret DEADLINE     { environment_specific }

role runner {
  grant run app.*
  grant update_secret TICKS
  grant update_secret DEADLINE
}
role app_reader {
  grant read_secret SHARED_TOKEN
  grant run app.hello
}
service_account bot { roles runner }
user viewer { roles app_reader }

service app {
  var note: string

  action hello { log "hello ${param.who}" }
  action tick {
    update service_variables { note = "tick" }
    update_secret TICKS = note
  }
  action slow {
    sleep 1500ms
    update_secret TICKS = "slow"
  }
  action fail { throw "boom" "it failed on purpose" }
  action renew {
    update_secret DEADLINE {
      value      = "fresh"
      expires_in = 3600
    }
  }

  endpoint hello {
    description "Say hello"
    methods GET POST
    log enabled
    process hello
  }
  endpoint tick {
    methods GET POST
    log enabled
    process tick
  }
  endpoint slow {
    methods GET POST
    process slow
  }
  endpoint fail {
    methods GET
    process fail
  }
  endpoint renew {
    methods GET
    process renew
  }
}
"#;

const SHARED: &str = "shared-token-value-93ab7";

fn project(schedules: &str) -> Project {
    let p = Project::new();
    p.write("app.svc", &format!("{APP}\n{schedules}"));
    p.set("SHARED_TOKEN", SHARED);
    p
}

fn ticks(p: &Project) -> u64 {
    p.document()["secrets"]["TICKS"]["version"]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn keys_decide_who_may_call() {
    let p = project("");
    let bot = p.key("bot", &["--name", "ci"]);
    let viewer = p.key("viewer", &[]);
    let server = p.serve(&["app.svc", "--env", "dev", "--no-schedules"]);

    let answer = server.call("GET", "/api/services/app/tick", None, None);
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert!(
        answer
            .headers
            .to_lowercase()
            .contains("www-authenticate: bearer"),
        "{}",
        answer.headers
    );
    assert_eq!(
        server
            .call(
                "GET",
                "/api/services/app/tick",
                Some("svc_000000000000_nope"),
                None
            )
            .status,
        401
    );
    assert_eq!(
        server
            .call("GET", "/api/services/app/tick", Some("not-a-key"), None)
            .status,
        401
    );

    let answer = server.call("GET", "/api/services/app/tick", Some(&viewer), None);
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert!(
        answer.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`viewer` may not run `app.tick`")
    );

    let answer = server.call("DELETE", "/api/services/app/tick", Some(&bot), None);
    assert_eq!(answer.status, 405);
    assert!(
        answer.headers.to_lowercase().contains("allow: get, post"),
        "{}",
        answer.headers
    );
    assert_eq!(
        server
            .call("GET", "/api/services/app/nope", Some(&bot), None)
            .status,
        404
    );

    let answer = server.call("GET", "/api/services/app/tick", Some(&bot), None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["outcome"], "success");
    assert_eq!(answer.json()["identity"], "bot");
    assert_eq!(answer.json()["trigger"], "http");

    // Revoked while the server runs: refused at once.
    let id = bot.split('_').nth(1).unwrap().to_string();
    let run = p.svc().args(["key", "revoke", &id, "--env", "dev"]).run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(
        server
            .call("GET", "/api/services/app/tick", Some(&bot), None)
            .status,
        401
    );

    // An expired key, too.
    let short = p.key("bot", &["--expires", "1s"]);
    std::thread::sleep(Duration::from_millis(1200));
    let answer = server.call("GET", "/api/services/app/tick", Some(&short), None);
    assert_eq!(answer.status, 401);
    assert!(answer.body.contains("expired"), "{}", answer.body);

    // A key is made only for an identity the program declares...
    let refused = p
        .svc()
        .args([
            "key",
            "create",
            "--as",
            "bott",
            "--env",
            "dev",
            "--program",
            ".",
        ])
        .run();
    assert_eq!(refused.status, 2, "{}", refused.all_output());
    assert!(
        refused.stderr.contains("svc::key::unknown_identity")
            && refused.stderr.contains("did you mean `bot`?"),
        "{}",
        refused.stderr
    );
    // ...but one made for another program's identity is refused when used,
    // and listed as orphaned.
    let elsewhere = tempfile::tempdir().unwrap();
    let other = elsewhere.path().join("other.svc");
    std::fs::write(&other, "role r {}\nservice_account ghost { roles r }\n").unwrap();
    let ghost = p.key("ghost", &["--program", other.to_str().unwrap()]);
    assert_eq!(
        server.call("GET", "/api/whoami", Some(&ghost), None).status,
        403
    );

    // The list shows states, never keys.
    let list = p
        .svc()
        .args(["key", "list", "--env", "dev", "--program", "."])
        .run();
    assert!(
        list.stdout.contains("revoked")
            && list.stdout.contains("expired")
            && list.stdout.contains("orphaned")
            && list.stdout.contains("ci"),
        "{}",
        list.stdout
    );
    assert!(
        list.stderr.contains("no longer declares"),
        "{}",
        list.stderr
    );
    for key in [&bot, &viewer, &short] {
        assert!(!list.all_output().contains(key.as_str()));
        assert!(
            !std::fs::read_to_string(p.store())
                .unwrap_or_default()
                .contains(key.as_str())
        );
    }
}

#[test]
fn runs_take_params_and_failures_answer_502() {
    let p = project("");
    let bot = p.key("bot", &[]);
    let server = p.serve(&["app.svc", "--env", "dev", "--no-schedules"]);
    let answer = server.call("GET", "/api/services/app/hello?who=query", Some(&bot), None);
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["trace"][0]["message"], "hello query");
    let answer = server.call(
        "POST",
        "/api/services/app/hello",
        Some(&bot),
        Some(r#"{"who": "body"}"#),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["trace"][0]["message"], "hello body");
    let answer = server.call("GET", "/api/services/app/fail", Some(&bot), None);
    assert_eq!(answer.status, 502);
    assert_eq!(answer.json()["error"]["code"], "boom");
    assert_eq!(answer.json()["outcome"], "failed");
    let answer = server.call("POST", "/api/services/app/hello", Some(&bot), Some("[1,2]"));
    assert_eq!(answer.status, 400);
}

#[test]
fn asynchronous_runs_answer_202_and_a_job() {
    let p = project("");
    let bot = p.key("bot", &[]);
    let viewer = p.key("viewer", &[]);
    let server = p.serve(&["app.svc", "--env", "dev", "--no-schedules"]);
    let answer = server.call(
        "POST",
        "/api/services/app/slow?async=true",
        Some(&bot),
        None,
    );
    assert_eq!(answer.status, 202, "{}", answer.body);
    let job = answer.json();
    assert_eq!(job["status"], "running");
    let url = job["url"].as_str().unwrap().to_string();
    assert_eq!(
        server.call("GET", &url, Some(&bot), None).json()["status"],
        "running"
    );
    assert_eq!(server.call("GET", &url, Some(&viewer), None).status, 403);
    assert!(eventually(10, || server
        .call("GET", &url, Some(&bot), None)
        .json()["status"]
        == "done"));
    let done = server.call("GET", &url, Some(&bot), None).json();
    assert_eq!(done["record"]["outcome"], "success");
    assert_eq!(done["record"]["endpoint"], "app.slow");
    assert_eq!(
        server
            .call("GET", "/api/jobs/0000", Some(&bot), None)
            .status,
        404
    );
}

#[test]
fn secrets_are_read_with_the_grant_and_every_read_is_audited() {
    let p = project("");
    let bot = p.key("bot", &[]);
    let viewer = p.key("viewer", &[]);
    let server = p.serve(&["app.svc", "--env", "dev", "--no-schedules"]);
    let answer = server.call("GET", "/api/secrets/SHARED_TOKEN", Some(&viewer), None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["value"], SHARED);
    assert!(
        answer
            .headers
            .to_lowercase()
            .contains("cache-control: no-store")
    );
    let answer = server.call("GET", "/api/secrets/SHARED_TOKEN", Some(&bot), None);
    assert_eq!(answer.status, 403);
    assert_eq!(
        server
            .call("GET", "/api/secrets/SHARED_TOKEN", None, None)
            .status,
        401
    );
    // Metadata for any key; never a value.
    let listing = server.call("GET", "/api/secrets", Some(&bot), None);
    assert_eq!(listing.status, 200);
    assert!(
        listing.body.contains("SHARED_TOKEN") && !listing.body.contains(SHARED),
        "{}",
        listing.body
    );
    let audit = std::fs::read_to_string(p.path().join("logs/dev/audit.jsonl")).unwrap();
    let entries: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 2, "{audit}");
    assert_eq!(entries[0]["identity"], "viewer");
    assert_eq!(entries[0]["action"], "read");
    assert_eq!(entries[1]["identity"], "bot");
    assert_eq!(entries[1]["action"], "denied");
    assert!(!audit.contains(SHARED));
    assert!(!server.stderr().contains(SHARED));
}

#[test]
fn catalog_whoami_openapi_and_metrics() {
    let p =
        project("schedule ticker {\n  endpoint app.tick\n  service_account bot\n  every 1h\n}\n");
    let bot = p.key("bot", &[]);
    let server = p.serve(&["app.svc", "--env", "dev"]);
    let catalog = server.call("GET", "/api/catalog", None, None).json();
    assert_eq!(catalog["environment"], "dev");
    let hello = &catalog["services"][0]["endpoints"][0];
    assert_eq!(hello["name"], "hello");
    assert_eq!(hello["description"], "Say hello");
    assert_eq!(catalog["schedules"][0]["name"], "ticker");
    assert_eq!(catalog["schedules"][0]["timing"], "every 1h");

    let who = server.call("GET", "/api/whoami", Some(&bot), None).json();
    assert_eq!(who["identity"], "bot");
    assert_eq!(who["kind"], "service_account");
    assert!(
        who["can_run"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "app.tick")
    );

    let openapi = server
        .call("GET", "/api/services/openapi.json", None, None)
        .json();
    assert_eq!(openapi["openapi"], "3.1.0");
    assert!(openapi["paths"]["/api/services/app/tick"]["post"].is_object());
    let validated = std::process::Command::new("node")
        .arg(common::root().join("tests/servers/validate-openapi.js"))
        .arg(format!("{}/api/services/openapi.json", server.base))
        .output()
        .unwrap();
    assert!(
        validated.status.success(),
        "the OpenAPI document is not valid: {}{}",
        String::from_utf8_lossy(&validated.stdout),
        String::from_utf8_lossy(&validated.stderr)
    );

    // The schedule fires at once (it never ran), so there is a run to count.
    assert!(eventually(10, || ticks(&p) >= 1));
    p.svc()
        .args([
            "secret",
            "set",
            "DEADLINE",
            "--env",
            "dev",
            "--expires-in",
            "1h",
        ])
        .stdin("d")
        .run();
    let metrics = server.call("GET", "/metrics", None, None);
    assert_eq!(metrics.status, 200);
    assert!(metrics.headers.contains("text/plain"));
    let text = metrics.body;
    assert!(
        text.contains(
            "svc_runs_total{endpoint=\"app.tick\",outcome=\"success\",trigger=\"schedule\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("svc_run_duration_seconds_count{endpoint=\"app.tick\"}"),
        "{text}"
    );
    assert!(
        text.contains("svc_schedule_next_run_timestamp_seconds{schedule=\"ticker\"}"),
        "{text}"
    );
    let expiry = text
        .lines()
        .find(|l| l.starts_with("svc_secret_expires_in_seconds{secret=\"DEADLINE\"}"))
        .unwrap_or_else(|| panic!("{text}"));
    let seconds: f64 = expiry.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((3500.0..=3600.0).contains(&seconds), "{expiry}");
    assert_eq!(
        server.call("GET", "/healthz", None, None).json()["status"],
        "ok"
    );
}

#[test]
fn schedules_fire_and_are_logged() {
    let p =
        project("schedule ticker {\n  endpoint app.tick\n  service_account bot\n  every 1s\n}\n");
    let server = p.serve(&["app.svc", "--env", "dev"]);
    assert!(eventually(10, || ticks(&p) >= 3), "{}", server.stderr());
    let logs = p
        .svc()
        .args(["logs", "--schedule", "ticker", "--env", "dev"])
        .run();
    assert_eq!(logs.status, 0, "{}", logs.stderr);
    assert!(
        logs.stdout
            .lines()
            .filter(|l| l.contains("success") && l.contains("bot via schedule ticker"))
            .count()
            >= 3,
        "{}",
        logs.stdout
    );
    let list = p
        .svc()
        .args(["schedule", "list", "app.svc", "--env", "dev"])
        .run();
    assert_eq!(list.status, 0, "{}", list.stderr);
    assert!(
        list.stdout.contains("ticker  (app.tick as bot, every 1s)"),
        "{}",
        list.stdout
    );
    assert!(list.stdout.contains("success"), "{}", list.stdout);
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(p.path().join("state/dev/schedules.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["schedules"]["ticker"]["last_outcome"], "success");
}

#[test]
fn failed_schedule_runs_back_off() {
    let p =
        project("schedule failing {\n  endpoint app.fail\n  service_account bot\n  every 1h\n}\n");
    let server = p.serve(&["app.svc", "--env", "dev"]);
    let state_path = p.path().join("state/dev/schedules.json");
    assert!(eventually(10, || std::fs::read_to_string(&state_path)
        .is_ok_and(|s| s.contains("\"failures\": 1"))));
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    let entry = &state["schedules"]["failing"];
    assert_eq!(entry["last_outcome"], "failed");
    let last =
        chrono::DateTime::parse_from_rfc3339(entry["last_run_at"].as_str().unwrap()).unwrap();
    let next =
        chrono::DateTime::parse_from_rfc3339(entry["next_run_at"].as_str().unwrap()).unwrap();
    // Retried after 30 s, well before the regular hour.
    assert_eq!((next - last).num_seconds(), 30, "{entry}");
    drop(server);
}

#[test]
fn after_a_restart_an_overdue_run_fires_and_a_recent_one_does_not() {
    let p = project(
        "schedule overdue {\n  endpoint app.tick\n  service_account bot\n  every 1h\n}\n\
         schedule recent {\n  endpoint app.renew\n  service_account bot\n  every 1h\n}\n",
    );
    let now = chrono::Utc::now();
    let state = serde_json::json!({"schedules": {
        "overdue": {"last_run_at": (now - chrono::Duration::hours(3)).to_rfc3339(), "last_outcome": "success"},
        "recent": {"last_run_at": (now - chrono::Duration::minutes(5)).to_rfc3339(), "last_outcome": "success"}
    }});
    std::fs::create_dir_all(p.path().join("state/dev")).unwrap();
    std::fs::write(p.path().join("state/dev/schedules.json"), state.to_string()).unwrap();
    let mut server = p.serve(&["app.svc", "--env", "dev"]);
    assert!(
        eventually(10, || ticks(&p) == 1),
        "the overdue schedule did not fire: {}",
        server.stderr()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        p.document()["secrets"].get("DEADLINE").is_none(),
        "the recent schedule ran again"
    );
    assert_eq!(server.stop(), 0);
    // Restarted again: the overdue one ran a moment ago, so it does not run again.
    let _server = p.serve(&["app.svc", "--env", "dev"]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(ticks(&p), 1);
}

#[test]
fn before_expiry_fires_ahead_of_the_expiry() {
    let p = project(
        "schedule renewer {\n  endpoint app.renew\n  service_account bot\n  before_expiry DEADLINE 2s\n  every 1h\n}\n",
    );
    // Known expiry, far enough that `every` would not fire yet: the state says it ran just now.
    p.svc()
        .args([
            "secret",
            "set",
            "DEADLINE",
            "--env",
            "dev",
            "--expires-in",
            "4s",
        ])
        .stdin("stale")
        .run();
    let state = serde_json::json!({"schedules": {"renewer": {"last_run_at": chrono::Utc::now().to_rfc3339(), "last_outcome": "success"}}});
    std::fs::create_dir_all(p.path().join("state/dev")).unwrap();
    std::fs::write(p.path().join("state/dev/schedules.json"), state.to_string()).unwrap();
    let _server = p.serve(&["app.svc", "--env", "dev"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        p.document()["secrets"]["DEADLINE"]["value"],
        "stale",
        "fired too early"
    );
    assert!(eventually(
        40,
        || p.document()["secrets"]["DEADLINE"]["value"] == "fresh"
    ));
    let expires = p.document()["secrets"]["DEADLINE"]["expires_at"]
        .as_str()
        .unwrap()
        .to_string();
    let expires = chrono::DateTime::parse_from_rfc3339(&expires).unwrap();
    assert!((expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds() > 3000);
}

#[test]
fn runs_of_one_endpoint_never_overlap() {
    let p = project("");
    let bot = p.key("bot", &[]);
    let server = p.serve(&["app.svc", "--env", "dev", "--no-schedules"]);
    let started = std::time::Instant::now();
    let mut calls: Vec<std::thread::JoinHandle<u16>> = (0..2)
        .map(|_| {
            let base = server.base.clone();
            let key = bot.clone();
            std::thread::spawn(move || {
                let output = std::process::Command::new("curl")
                    .args([
                        "-s",
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{http_code}",
                        "-X",
                        "POST",
                        "-H",
                    ])
                    .arg(format!("Authorization: Bearer {key}"))
                    .arg(format!("{base}/api/services/app/slow"))
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&output.stdout).parse().unwrap()
            })
        })
        .collect();
    // And one from the command line at the same time.
    let cli = p
        .svc()
        .args(["run", "app.svc", "app.slow", "--env", "dev", "--as", "bot"]);
    calls.push(std::thread::spawn(move || cli.run().status as u16));
    let statuses: Vec<u16> = calls.into_iter().map(|c| c.join().unwrap()).collect();
    assert_eq!(statuses, vec![200, 200, 0]);
    // Each run sleeps 1.5 s while holding the lock: serialised, three take 4.5 s.
    assert!(
        started.elapsed() >= Duration::from_millis(4400),
        "runs overlapped: {:?}",
        started.elapsed()
    );
    assert_eq!(ticks(&p), 3);
}

#[test]
fn shutdown_lets_running_runs_finish() {
    let p = project("");
    let bot = p.key("bot", &[]);
    let mut server = p.serve(&["app.svc", "--env", "dev", "--no-schedules"]);
    let answer = server.call(
        "POST",
        "/api/services/app/slow?async=true",
        Some(&bot),
        None,
    );
    assert_eq!(answer.status, 202);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(server.stop(), 0, "{}", server.stderr());
    assert_eq!(
        p.document()["secrets"]["TICKS"]["value"],
        "slow",
        "the run was cut short"
    );
    assert!(server.stderr().contains("stopped"), "{}", server.stderr());
}

#[test]
fn https_with_a_certificate() {
    let p = project("");
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let cert_path = p.write("cert.pem", &cert.cert.pem());
    let key_path = p.write("key.pem", &cert.signing_key.serialize_pem());
    let server = p.serve(&[
        "app.svc",
        "--env",
        "dev",
        "--no-schedules",
        "--tls-cert",
        cert_path.to_str().unwrap(),
        "--tls-key",
        key_path.to_str().unwrap(),
    ]);
    assert!(
        server.base.starts_with("https://127.0.0.1:"),
        "{}",
        server.base
    );
    let answer = server.call_with(
        "GET",
        "/healthz",
        None,
        None,
        &["--cacert", cert_path.to_str().unwrap()],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    // Without trusting the certificate, a client refuses to talk.
    assert_eq!(server.call("GET", "/healthz", None, None).status, 0);
}

#[test]
fn a_program_with_errors_or_a_busy_port_does_not_start() {
    let p = project("");
    p.write("broken.svc", "secret A { }\nsecret A { }\n");
    let run = p.svc().args(["serve", "broken.svc", "--env", "dev"]).run();
    assert_eq!(run.status, 2);
    assert!(
        run.stderr.contains("svc::name::duplicate"),
        "{}",
        run.stderr
    );
    let blocker = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = blocker.local_addr().unwrap().to_string();
    let run = p
        .svc()
        .args(["serve", "app.svc", "--env", "dev", "--listen", &address])
        .run();
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("cannot listen"), "{}", run.stderr);
}
