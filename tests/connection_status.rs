//! The state of connections, seen from outside: `GET /api/connections` and
//! `GET /api/connections/CLIENT/ID` in `svc serve` (for keys whose identity
//! holds `grant read_status CLIENT`), the gauges of `/metrics`, and
//! `svc doctor`. The connections get their states the real way: `svc run`
//! against a wiremock token endpoint on 127.0.0.1 that answers
//! `invalid_grant`, 503 or `invalid_client`. No output shows a token.

mod common;

use std::sync::Arc;

use common::{Project, Run, Served};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const CLIENT_SECRET: &str = "status-client-secret-Jd82";
const APP_REFRESH_TOKEN: &str = "app-refresh-token-first-Kx4q";
const APP_NEW_REFRESH_TOKEN: &str = "app-refresh-token-second-Pw7e";
const APP_ACCESS_TOKEN: &str = "app-access-token-Zr5t";
const OTHER_REFRESH_TOKEN: &str = "other-refresh-token-Hm2v";
const TOKENS: [&str; 5] = [
    CLIENT_SECRET,
    APP_REFRESH_TOKEN,
    APP_NEW_REFRESH_TOKEN,
    APP_ACCESS_TOKEN,
    OTHER_REFRESH_TOKEN,
];

/// Two clients that store tokens, `app` and `other`, each refreshed by an
/// endpoint from its own token endpoint at PROVIDER; `watch_bot` may read
/// the state of `app` only, `blind_bot` of none.
const PROGRAM: &str = r#"
secret CLIENT_SECRET       { environment_specific locked }
secret APP_REFRESH_TOKEN   { environment_specific }
secret APP_ACCESS_TOKEN    { environment_specific }
secret OTHER_REFRESH_TOKEN { environment_specific }
secret OTHER_ACCESS_TOKEN  { environment_specific }

oauth_client app {
  authorize_url "PROVIDER/app/authorize"
  token_url     "PROVIDER/app/token"
  client_id     "status-app"
  client_auth   client_secret_post(secret.CLIENT_SECRET)
  stores {
    refresh_token = APP_REFRESH_TOKEN
    access_token  = APP_ACCESS_TOKEN
  }
}

oauth_client other {
  authorize_url "PROVIDER/other/authorize"
  token_url     "PROVIDER/other/token"
  client_id     "status-other"
  client_auth   client_secret_post(secret.CLIENT_SECRET)
  stores {
    refresh_token = OTHER_REFRESH_TOKEN
    access_token  = OTHER_ACCESS_TOKEN
  }
}

role keeper {
  grant run api.*
  grant update_secret APP_REFRESH_TOKEN
  grant update_secret APP_ACCESS_TOKEN
  grant update_secret OTHER_REFRESH_TOKEN
  grant update_secret OTHER_ACCESS_TOKEN
}
role watcher { grant read_status app }
role reader  { grant read_secret APP_ACCESS_TOKEN }

user ops { roles keeper }
service_account watch_bot { roles watcher }
service_account blind_bot { roles reader }

service api {
  var token: string
  var refresh_token: string
  var expires_in: number

  action refresh_app {
    web_request {
      auth client(app)
      form {
        grant_type    = "refresh_token"
        refresh_token = secret.APP_REFRESH_TOKEN
      }
      result_mapping {
        token         = $.access_token
        refresh_token = $.refresh_token
        expires_in    = $.expires_in
      }
    }
    if has_value(refresh_token) {
      update_secret APP_REFRESH_TOKEN = refresh_token
    }
    if has_value(token) {
      update_secret APP_ACCESS_TOKEN {
        value      = token
        expires_in = expires_in
      }
    }
  }

  action refresh_other {
    web_request {
      auth client(other)
      form {
        grant_type    = "refresh_token"
        refresh_token = secret.OTHER_REFRESH_TOKEN
      }
      result_mapping { token = $.access_token }
    }
    if has_value(token) {
      update_secret OTHER_ACCESS_TOKEN = token
    }
  }

  endpoint app {
    methods POST
    process refresh_app
  }

  endpoint other {
    methods POST
    process refresh_other
  }
}
"#;

/// The provider's answers from now on: to every token request of each
/// client named.
async fn answer(server: &MockServer, answers: &[(&str, u16, Value)]) {
    server.reset().await;
    for (client, status, body) in answers {
        Mock::given(method("POST"))
            .and(path(format!("/{client}/token")))
            .respond_with(ResponseTemplate::new(*status).set_body_json(body))
            .mount(server)
            .await;
    }
}

async fn in_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.unwrap()
}

fn refresh(p: &Project, endpoint: &str) -> Run {
    p.svc()
        .args(["run", "app.svc", endpoint, "--env", "dev", "--as", "ops"])
        .run()
}

fn doctor(p: &Project) -> Run {
    p.svc().args(["doctor", "app.svc", "--env", "dev"]).run()
}

/// The lines of `/metrics` that start with `prefix`.
fn metric_lines(text: &str, prefix: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with(prefix))
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

fn state_gauge(client: &str, state: &str, value: u8) -> String {
    format!(
        "svc_connection_state{{environment=\"dev\",client=\"{client}\",connection_id=\"default\",state=\"{state}\"}} {value}"
    )
}

/// The five state gauges of a connection: 1 for `current`.
fn state_gauges(client: &str, current: &str) -> Vec<String> {
    let mut lines: Vec<String> = [
        "healthy",
        "degraded",
        "needs_reconsent",
        "misconfigured",
        "revoked",
    ]
    .iter()
    .map(|state| state_gauge(client, state, u8::from(*state == current)))
    .collect();
    lines.sort();
    lines
}

fn assert_no_token(what: &str, text: &str) {
    for token in TOKENS {
        assert!(!text.contains(token), "{what} shows `{token}`:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_of_connections_is_served_measured_and_checked_without_tokens() {
    let provider = MockServer::start().await;
    let p = Arc::new(Project::new());
    p.write("app.svc", &PROGRAM.replace("PROVIDER", &provider.uri()));
    p.set("CLIENT_SECRET", CLIENT_SECRET);
    p.set("APP_REFRESH_TOKEN", APP_REFRESH_TOKEN);
    p.set("APP_ACCESS_TOKEN", "app-access-token-before");
    p.set("OTHER_REFRESH_TOKEN", OTHER_REFRESH_TOKEN);
    p.set("OTHER_ACCESS_TOKEN", "other-access-token-before");
    let mut outputs = String::new();

    // Nothing refreshed yet: both healthy, and doctor says so.
    let run = {
        let p = p.clone();
        in_thread(move || doctor(&p)).await
    };
    outputs += &run.all_output();
    assert_eq!(run.status, 0, "{}", run.all_output());
    assert!(
        run.stdout.contains(
            "ok    connections: 2 connection(s), each healthy, no refresh token expiring within its expiry_warning (7 days by default)"
        ),
        "{}",
        run.stdout
    );

    // A refresh whose new refresh token lives 3 days: a warning, exit 0.
    answer(
        &provider,
        &[(
            "app",
            200,
            json!({"access_token": APP_ACCESS_TOKEN, "refresh_token": APP_NEW_REFRESH_TOKEN,
                   "expires_in": 3600, "refresh_token_expires_in": 3 * 86400}),
        )],
    )
    .await;
    let run = {
        let p = p.clone();
        in_thread(move || refresh(&p, "api.app")).await
    };
    outputs += &run.all_output();
    assert_eq!(run.status, 0, "{}", run.all_output());
    let run = {
        let p = p.clone();
        in_thread(move || doctor(&p)).await
    };
    outputs += &run.all_output();
    assert_eq!(run.status, 0, "{}", run.all_output());
    let warning = run
        .stdout
        .lines()
        .position(|l| {
            l.starts_with("warn  connections: the refresh token of `app/default` expires at ")
                && l.contains(", in 2d 23h")
        })
        .unwrap_or_else(|| panic!("no expiry warning:\n{}", run.stdout));
    assert_eq!(
        run.stdout.lines().nth(warning + 1),
        Some(
            "      fix: a person consents again before then: `svc authorize app.svc app --env dev --as ops`"
        ),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("FAIL"), "{}", run.stdout);

    // The provider refuses the refresh token: needs_reconsent; the other
    // client's provider is down: degraded.
    answer(
        &provider,
        &[
            (
                "app",
                400,
                json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."}),
            ),
            ("other", 503, json!({"error": "temporarily_unavailable"})),
        ],
    )
    .await;
    for endpoint in ["api.app", "api.other"] {
        let run = {
            let p = p.clone();
            in_thread(move || refresh(&p, endpoint)).await
        };
        outputs += &run.all_output();
        assert_eq!(run.status, 1, "{}", run.all_output());
    }
    let app = {
        let p = p.clone();
        in_thread(move || common::connection_show(p.svc(), "app")).await
    };
    let other = {
        let p = p.clone();
        in_thread(move || common::connection_show(p.svc(), "other")).await
    };
    assert_eq!(app["state"], "needs_reconsent", "{app}");
    assert_eq!(other["state"], "degraded", "{other}");
    outputs += &format!("{app}{other}");

    // doctor: one failure, with the command that re-consents; the degraded
    // connection is a warning.
    let run = {
        let p = p.clone();
        in_thread(move || doctor(&p)).await
    };
    outputs += &run.all_output();
    assert_eq!(run.status, 1, "{}", run.all_output());
    let lines: Vec<&str> = run.stdout.lines().collect();
    let failed = lines
        .iter()
        .position(|l| l.starts_with("FAIL  connections: `app/default` is needs_reconsent since "))
        .unwrap_or_else(|| panic!("no failure:\n{}", run.stdout));
    assert!(
        lines[failed].contains("last error: invalid_grant (Token has been expired or revoked.)"),
        "{}",
        lines[failed]
    );
    assert_eq!(
        lines[failed + 1],
        "      fix: a person consents again: `svc authorize app.svc app --env dev --as ops`"
    );
    assert!(
        lines.iter().any(|l| l
            .starts_with("warn  connections: `other/default` is degraded since ")
            && l.contains("1 failed refreshes in a row, last error: temporarily_unavailable")),
        "{}",
        run.stdout
    );
    // A connection that needs a person is not also warned about its expiry.
    assert!(!run.stdout.contains("the refresh token of `app/default`"));
    assert!(
        run.stdout.contains("\n1 problem(s) in `dev`"),
        "{}",
        run.stdout
    );

    // ---- svc serve ----
    let watch_key = p.key("watch_bot", &["--program", "app.svc"]);
    let blind_key = p.key("blind_bot", &["--program", "app.svc"]);
    let server: Arc<Served> = {
        let p = p.clone();
        Arc::new(in_thread(move || p.serve(&["app.svc", "--env", "dev", "--no-schedules"])).await)
    };
    let call = |path: &'static str, key: Option<String>| {
        let server = server.clone();
        async move { in_thread(move || server.call("GET", path, key.as_deref(), None)).await }
    };

    // Whom the key speaks for, and what state it may read.
    let who = call("/api/whoami", Some(watch_key.clone())).await;
    assert_eq!(
        who.json()["can_read_status"],
        json!(["app"]),
        "{}",
        who.body
    );
    let who = call("/api/whoami", Some(blind_key.clone())).await;
    assert_eq!(who.json()["can_read_status"], json!([]), "{}", who.body);

    // The list: only what the key may read, each as `svc connection show --json`.
    let list = call("/api/connections", Some(watch_key.clone())).await;
    outputs += &list.body;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.headers.contains("no-store"), "{}", list.headers);
    assert_eq!(
        list.json(),
        json!({"connections": [app.clone()], "next_cursor": null})
    );
    let list = call("/api/connections", Some(blind_key.clone())).await;
    assert_eq!(
        (list.status, list.json()),
        (200, json!({"connections": [], "next_cursor": null}))
    );
    let list = call("/api/connections", None).await;
    assert_eq!(list.status, 401, "{}", list.body);

    // One connection.
    let one = call("/api/connections/app/default", Some(watch_key.clone())).await;
    outputs += &one.body;
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.json(), app);
    for field in [
        "client",
        "connection_id",
        "state",
        "since",
        "consecutive_failures",
        "last_error",
    ] {
        assert!(one.json().get(field).is_some(), "{field}: {}", one.body);
    }
    assert_eq!(one.json()["consecutive_failures"], 1);
    assert_eq!(one.json()["last_error"]["code"], "invalid_grant");
    for (path, key, status, code) in [
        (
            "/api/connections/other/default",
            &watch_key,
            403,
            "forbidden",
        ),
        ("/api/connections/app/default", &blind_key, 403, "forbidden"),
        (
            "/api/connections/app/second",
            &watch_key,
            404,
            "unknown_connection",
        ),
        (
            "/api/connections/nope/default",
            &watch_key,
            404,
            "unknown_client",
        ),
    ] {
        let answer = call(path, Some(key.clone())).await;
        outputs += &answer.body;
        assert_eq!(
            (answer.status, answer.json()["error"]["code"].as_str()),
            (status, Some(code)),
            "{path}: {}",
            answer.body
        );
    }
    assert_eq!(call("/api/connections/app/default", None).await.status, 401);

    // Both routes are in the OpenAPI document, which stays valid.
    let openapi = call("/api/services/openapi.json", None).await.json();
    for route in [
        "/api/connections",
        "/api/connections/{client}/{connection_id}",
    ] {
        assert!(openapi["paths"][route]["get"].is_object(), "{route}");
    }
    let validated = {
        let url = format!("{}/api/services/openapi.json", server.base);
        in_thread(move || {
            std::process::Command::new("node")
                .arg(common::root().join("tests/servers/validate-openapi.js"))
                .arg(url)
                .output()
                .unwrap()
        })
        .await
    };
    assert!(
        validated.status.success(),
        "the OpenAPI document is not valid: {}{}",
        String::from_utf8_lossy(&validated.stdout),
        String::from_utf8_lossy(&validated.stderr)
    );

    // /metrics: 1 for each connection's state, 0 for the others, and the
    // refresh token's expiry where it is known (app's, from the answer).
    let metrics = call("/metrics", None).await;
    assert_eq!(metrics.status, 200);
    let text = metrics.body.clone();
    outputs += &text;
    let mut expected = state_gauges("app", "needs_reconsent");
    expected.extend(state_gauges("other", "degraded"));
    expected.sort();
    assert_eq!(
        metric_lines(&text, "svc_connection_state{"),
        expected,
        "{text}"
    );
    assert!(text.contains("# TYPE svc_connection_state gauge"), "{text}");
    let expiry = metric_lines(
        &text,
        "svc_connection_refresh_token_expiry_timestamp_seconds{",
    );
    assert_eq!(expiry.len(), 1, "{text}");
    let (labels, value) = expiry[0].rsplit_once(' ').unwrap();
    assert_eq!(
        labels,
        "svc_connection_refresh_token_expiry_timestamp_seconds{environment=\"dev\",client=\"app\",connection_id=\"default\"}"
    );
    let recorded: chrono::DateTime<chrono::Utc> = app["refresh_token_expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let value: f64 = value.parse().unwrap();
    assert!(
        (value - recorded.timestamp() as f64).abs() < 1.0,
        "{value} is not {recorded}"
    );

    // The other client is refused: misconfigured, read again at the next
    // scrape, and doctor fails on both.
    answer(
        &provider,
        &[("other", 401, json!({"error": "invalid_client"}))],
    )
    .await;
    let run = {
        let p = p.clone();
        in_thread(move || refresh(&p, "api.other")).await
    };
    outputs += &run.all_output();
    assert_eq!(run.status, 1, "{}", run.all_output());
    let text = call("/metrics", None).await.body;
    outputs += &text;
    assert_eq!(
        metric_lines(
            &text,
            "svc_connection_state{environment=\"dev\",client=\"other\""
        ),
        state_gauges("other", "misconfigured"),
        "{text}"
    );
    let run = {
        let p = p.clone();
        in_thread(move || doctor(&p)).await
    };
    outputs += &run.all_output();
    assert_eq!(run.status, 1, "{}", run.all_output());
    let lines: Vec<&str> = run.stdout.lines().collect();
    let failed = lines
        .iter()
        .position(|l| l.starts_with("FAIL  connections: `other/default` is misconfigured since "))
        .unwrap_or_else(|| panic!("no failure:\n{}", run.stdout));
    assert!(
        lines[failed + 1].ends_with("then `svc authorize app.svc other --env dev --as ops`"),
        "{}",
        lines[failed + 1]
    );
    assert!(
        run.stdout.contains("\n2 problem(s) in `dev`"),
        "{}",
        run.stdout
    );

    // No output (runs, doctor, API answers, metrics, the server's log, the
    // run logs) shows a token.
    let server_log = server.stderr();
    assert_no_token("the outputs", &outputs);
    assert_no_token("the server's log", &server_log);
    assert_no_token("the run logs", &p.logs());
}
