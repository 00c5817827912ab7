//! `on_failure` and `on_recovery` at run time: a token server on 127.0.0.1
//! that refuses a number of times and then answers, and a webhook receiver
//! that keeps what the hooks post. The refusals echo the client secret,
//! which must reach no webhook.

mod common;

use common::Project;
use std::sync::{Arc, Mutex};

const CLIENT_SECRET: &str = "hook-client-secret-51c9e2";

/// A server on 127.0.0.1: `POST /token` refuses `refusals` times with 400
/// (its error_description echoes the form it got, secret and all), then
/// answers a new token each time; `POST /hook` keeps the body. Everything
/// it got is kept as "PATH BODY".
struct Servers {
    port: u16,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl Servers {
    fn start(refusals: usize) -> Servers {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            let mut tokens = 0;
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let common::Received {
                    target: path, body, ..
                } = common::read_request(&stream);
                log.lock().unwrap().push((path.clone(), body.clone()));
                let (status, answer) = if path == "/token" {
                    tokens += 1;
                    if tokens <= refusals {
                        (
                            "400 Bad Request",
                            serde_json::json!({"error": "invalid_client",
                                               "error_description": format!("refused: {body}")})
                            .to_string(),
                        )
                    } else {
                        (
                            "200 OK",
                            serde_json::json!({"access_token": format!("hook-token-{tokens}-8d2f"),
                                               "expires_in": 3600})
                            .to_string(),
                        )
                    }
                } else {
                    ("200 OK", "{}".to_string())
                };
                common::answer_json(stream, status, &answer);
            }
        });
        Servers { port, seen }
    }

    fn of(&self, path: &str) -> Vec<serde_json::Value> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, body)| serde_json::from_str(body).unwrap_or(serde_json::Value::Null))
            .collect()
    }

    fn count(&self, path: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .count()
    }
}

/// The refresh endpoint, with hooks on the endpoint (`endpoint_hooks`) or
/// on the schedule (`schedule_hooks`).
fn program(port: u16, endpoint_hooks: bool, schedule_hooks: bool) -> String {
    let hooks = |of: &str| {
        format!(
            r#"
    on_failure {{
      web_request {{
        method POST
        url "http://127.0.0.1:{port}/hook"
        json {{
          of       = "{of}"
          kind     = "failure"
          run      = run.id
          endpoint = run.endpoint
          code     = error.code
          message  = error.message
          status   = error.status
        }}
      }}
    }}
    on_recovery {{
      web_request {{
        method POST
        url "http://127.0.0.1:{port}/hook"
        json {{
          of       = "{of}"
          kind     = "recovery"
          run      = run.id
          endpoint = run.endpoint
        }}
      }}
    }}"#
        )
    };
    let endpoint_hooks = if endpoint_hooks {
        hooks("endpoint")
    } else {
        String::new()
    };
    let schedule = if schedule_hooks {
        format!(
            "schedule every_second {{\n  endpoint api.refresh\n  service_account bot\n  every 1s{}\n}}\n",
            hooks("schedule")
        )
    } else {
        String::new()
    };
    format!(
        r#"
secret CLIENT_SECRET {{ environment_specific locked }}
secret TOKEN         {{ environment_specific }}

role refresher {{
  grant run api.refresh
  grant update_secret TOKEN
}}
service_account bot {{ roles refresher }}

service api {{
  var token: string

  action refresh {{
    web_request {{
      method POST
      url "http://127.0.0.1:{port}/token"
      form {{
        grant_type    = "client_credentials"
        client_secret = secret.CLIENT_SECRET
      }}
      result_mapping {{ token = $.access_token }}
    }}
    if has_value(token) {{
      update_secret TOKEN = token
    }}
  }}

  endpoint refresh {{
    methods GET POST
    log enabled
    process refresh{endpoint_hooks}
  }}
}}
{schedule}"#
    )
}

/// `svc run api.svc api.refresh` in dev as `bot`, to be finished by the caller.
fn refresh(p: &Project) -> common::Svc {
    p.svc().args([
        "run",
        "api.svc",
        "api.refresh",
        "--env",
        "dev",
        "--as",
        "bot",
    ])
}

fn assert_no_secret(hooks: &[serde_json::Value]) {
    for hook in hooks {
        let text = hook.to_string();
        assert!(
            !text.contains(CLIENT_SECRET),
            "a hook posted the secret: {text}"
        );
        assert!(
            !text.contains("hook-token-"),
            "a hook posted a token: {text}"
        );
    }
}

#[test]
fn a_schedule_failing_three_times_then_succeeding_posts_three_failures_and_one_recovery() {
    let servers = Servers::start(3);
    let p = Project::new();
    p.set("CLIENT_SECRET", CLIENT_SECRET);
    p.write("api.svc", &program(servers.port, false, true));
    let check = p.svc().args(["check", "api.svc"]).run();
    assert_eq!(check.status, 0, "{}", check.stderr);
    let mut served = p.serve(&["api.svc", "--env", "dev"]);
    // Three refusals, the success, and one more success after it: the
    // recovery is posted once, not after every success.
    assert!(
        common::eventually(30, || servers.count("/token") >= 5
            && servers.count("/hook") >= 4),
        "token requests: {}, hooks: {:?}\n{}",
        servers.count("/token"),
        servers.of("/hook"),
        served.stderr()
    );
    served.stop();
    let hooks = servers.of("/hook");
    let kinds: Vec<&str> = hooks.iter().map(|h| h["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["failure", "failure", "failure", "recovery"],
        "{hooks:?}"
    );
    for failure in &hooks[..3] {
        assert_eq!(failure["of"], "schedule");
        assert_eq!(failure["endpoint"], "api.refresh");
        assert_eq!(failure["code"], "web_request_error", "{failure}");
        assert_eq!(failure["status"], 400, "{failure}");
        assert!(
            failure["message"].as_str().unwrap().contains("refused"),
            "{failure}"
        );
        assert!(failure["run"].as_str().unwrap().len() > 8, "{failure}");
    }
    // Each failure names its own run.
    let runs: std::collections::BTreeSet<&str> =
        hooks.iter().map(|h| h["run"].as_str().unwrap()).collect();
    assert_eq!(runs.len(), 4);
    assert_no_secret(&hooks);
    assert!(!served.stderr().contains(CLIENT_SECRET));
}

#[test]
fn endpoint_hooks_fire_for_cli_runs_and_remember_failures_across_processes() {
    let servers = Servers::start(2);
    let p = Project::new();
    p.set("CLIENT_SECRET", CLIENT_SECRET);
    p.write("api.svc", &program(servers.port, true, false));
    let run = || refresh(&p).run();
    for expected_failures in 1..=2 {
        let failed = run();
        assert_eq!(failed.status, 1, "{}", failed.stderr);
        assert!(
            failed.all_output().contains("on_failure of endpoint"),
            "{}",
            failed.all_output()
        );
        assert_eq!(servers.count("/hook"), expected_failures);
    }
    let ok = run();
    assert_eq!(ok.status, 0, "{}", ok.stderr);
    assert!(
        ok.all_output().contains("on_recovery of endpoint"),
        "{}",
        ok.all_output()
    );
    let again = run();
    assert_eq!(again.status, 0, "{}", again.stderr);
    let hooks = servers.of("/hook");
    let kinds: Vec<&str> = hooks.iter().map(|h| h["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["failure", "failure", "recovery"], "{hooks:?}");
    assert!(hooks.iter().all(|h| h["of"] == "endpoint"));
    assert_no_secret(&hooks);
    // The endpoint log keeps what the hooks did.
    let logs = p.logs();
    assert!(logs.contains("\"hooks\""), "{logs}");
    assert!(!logs.contains(CLIENT_SECRET));
}

#[test]
fn a_failing_hook_is_reported_and_changes_nothing() {
    let servers = Servers::start(1);
    let p = Project::new();
    p.set("CLIENT_SECRET", CLIENT_SECRET);
    // The hook posts to a port where nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = program(servers.port, true, false).replace(
        &format!("http://127.0.0.1:{}/hook", servers.port),
        &format!("http://127.0.0.1:{closed}/hook"),
    );
    p.write("api.svc", &text);
    let failed = refresh(&p).args(["--output", "json"]).run();
    // The run's own failure is what is reported: exit 1, its error code.
    assert_eq!(failed.status, 1, "{}", failed.stderr);
    let record: serde_json::Value = serde_json::from_str(&failed.stdout).unwrap();
    assert_eq!(record["error"]["code"], "web_request_error", "{record}");
    assert_eq!(record["hooks"][0]["hook"], "on_failure", "{record}");
    assert_eq!(record["hooks"][0]["outcome"], "failed", "{record}");
    assert_eq!(servers.count("/token"), 1, "no hook sets off another run");
    assert!(!failed.all_output().contains(CLIENT_SECRET));
}

#[test]
fn fmt_keeps_hooks_and_the_graph_shows_what_they_run() {
    let path = common::root().join("tests/check/hooks_passes.svc");
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("hooks.svc");
    std::fs::copy(&path, &copy).unwrap();
    let fmt = common::svc().arg("fmt").arg(&copy).run();
    assert_eq!(fmt.status, 0, "{}", fmt.stderr);
    let formatted = std::fs::read_to_string(&copy).unwrap();
    assert!(
        formatted.contains("    on_failure {\n      web_request {"),
        "{formatted}"
    );
    assert!(
        formatted.contains("  on_recovery {\n    run_service alerts.notify\n  }"),
        "{formatted}"
    );
    let check = common::svc().arg("check").arg(&copy).run();
    assert_eq!(check.status, 0, "{}", check.stderr);
    let dot = common::svc()
        .args(["compile", "--emit", "dot"])
        .arg(&path)
        .run();
    assert!(
        dot.stdout
            .contains(r#""api.refresh" -> "alerts.notify" [label="on_recovery runs""#),
        "{}",
        dot.stdout
    );
    assert!(
        dot.stdout
            .contains(r#""schedule:nightly" -> "alerts.notify" [label="on_recovery runs""#),
        "{}",
        dot.stdout
    );
}

#[test]
fn two_runs_that_recover_at_once_post_one_recovery() {
    let servers = Servers::start(1);
    let p = Project::new();
    p.set("CLIENT_SECRET", CLIENT_SECRET);
    // The action updates no secret here, so its runs take no run lock and
    // may end together.
    let text = program(servers.port, true, false).replace(
        "    if has_value(token) {\n      update_secret TOKEN = token\n    }\n",
        "    log \"got a token\"\n",
    );
    p.write("api.svc", &text);
    let failed = refresh(&p).run();
    assert_eq!(failed.status, 1, "{}", failed.stderr);
    let runs: Vec<_> = (0..4).map(|_| refresh(&p).spawn()).collect();
    for run in runs {
        let output = run.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let hooks = servers.of("/hook");
    let kinds: Vec<&str> = hooks.iter().map(|h| h["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["failure", "recovery"], "{hooks:?}");
}
