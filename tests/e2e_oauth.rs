//! End to end against real authorization servers from npm, on 127.0.0.1:
//! oidc-provider for the client_credentials grant (client_secret_basic and
//! client_secret_post), and a server built on @node-oauth/oauth2-server
//! that rotates refresh tokens.

mod common;

use common::{NodeServer, Project, Run};
use serde_json::json;

const CLIENT_ID: &str = "svc-e2e-client";
const CLIENT_SECRET: &str = "e2e-client-secret-4f9a2c71";

fn oidc(method: &str) -> NodeServer {
    NodeServer::start(
        "oidc",
        json!({"clients": [{
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "token_endpoint_auth_method": method,
            "scope": "api:read"
        }], "access_token_ttl": 900}),
    )
}

fn client_credentials_script(token_endpoint: &str, basic: bool) -> String {
    let auth = if basic {
        "auth basic(secret.CLIENT_ID, secret.CLIENT_SECRET)\n      form {\n        grant_type = \"client_credentials\"\n        scope      = \"api:read\"\n      }".to_string()
    } else {
        "form {\n        grant_type    = \"client_credentials\"\n        scope         = \"api:read\"\n        client_id     = secret.CLIENT_ID\n        client_secret = secret.CLIENT_SECRET\n      }".to_string()
    };
    format!(
        r#"
secret CLIENT_ID     {{ environment_specific }}
secret CLIENT_SECRET {{ environment_specific locked }}
secret API_TOKEN     {{ environment_specific }}

role token_writer {{
  grant run api.refresh
  grant update_secret API_TOKEN
}}

service_account scheduler {{ roles token_writer }}

service api {{
  var token: string
  var expires_in: number

  action fetch_token {{
    update service_variables {{ token = null }}
    web_request {{
      method POST
      url "{token_endpoint}"
      {auth}
      result_mapping {{
        token      = $.access_token
        expires_in = $.expires_in
      }}
    }}
    if has_value(token) {{
      update_secret API_TOKEN {{
        value      = token
        expires_in = expires_in
      }}
    }}
  }}

  endpoint refresh {{
    methods GET POST
    log enabled
    process fetch_token
  }}
}}
"#
    )
}

fn run_refresh(p: &Project, script: &str) -> Run {
    p.write("api.svc", script);
    p.svc()
        .args([
            "run",
            "api.svc",
            "api.refresh",
            "--env",
            "dev",
            "--as",
            "scheduler",
        ])
        .run()
}

fn introspect(server: &NodeServer, token: &str, basic: bool) -> serde_json::Value {
    let url = server.url("introspection_endpoint");
    let (status, answer) = if basic {
        server.post_form(&url, &[("token", token)], Some((CLIENT_ID, CLIENT_SECRET)))
    } else {
        server.post_form(
            &url,
            &[
                ("token", token),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
            ],
            None,
        )
    };
    assert_eq!(status, 200, "{answer}");
    answer
}

fn assert_no_leak(run: &Run, p: &Project, secrets: &[&str]) {
    let everything = format!("{}{}", run.all_output(), p.logs());
    for secret in secrets {
        assert!(
            !everything.contains(secret),
            "a secret leaked:\n{everything}"
        );
    }
}

#[test]
fn client_credentials_with_client_secret_basic() {
    let server = oidc("client_secret_basic");
    let p = Project::new();
    p.set("CLIENT_ID", CLIENT_ID);
    p.set("CLIENT_SECRET", CLIENT_SECRET);
    let run = run_refresh(
        &p,
        &client_credentials_script(&server.url("token_endpoint"), true),
    );
    assert_eq!(run.status, 0, "{}", run.all_output());
    let document = p.document();
    let token = document["secrets"]["API_TOKEN"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    let answer = introspect(&server, &token, true);
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["client_id"], CLIENT_ID);
    assert!(document["secrets"]["API_TOKEN"]["expires_at"].is_string());
    assert_no_leak(&run, &p, &[CLIENT_SECRET, &token]);
}

#[test]
fn client_credentials_with_client_secret_post() {
    let server = oidc("client_secret_post");
    let p = Project::new();
    p.set("CLIENT_ID", CLIENT_ID);
    p.set("CLIENT_SECRET", CLIENT_SECRET);
    let run = run_refresh(
        &p,
        &client_credentials_script(&server.url("token_endpoint"), false),
    );
    assert_eq!(run.status, 0, "{}", run.all_output());
    let token = p.document()["secrets"]["API_TOKEN"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(introspect(&server, &token, false)["active"], true);
    assert_no_leak(&run, &p, &[CLIENT_SECRET, &token]);
    // And the provider refuses the other method: the script really used post.
    let run = run_refresh(
        &p,
        &client_credentials_script(&server.url("token_endpoint"), true),
    );
    assert_eq!(run.status, 1, "{}", run.all_output());
    assert!(run.stderr.contains("invalid_client"), "{}", run.stderr);
}

#[test]
fn a_wrong_client_secret_changes_nothing() {
    let server = oidc("client_secret_basic");
    let p = Project::new();
    p.set("CLIENT_ID", CLIENT_ID);
    p.set("CLIENT_SECRET", "not-the-secret-8d1e");
    p.set("API_TOKEN", "previous-token-value-0b3c");
    let run = run_refresh(
        &p,
        &client_credentials_script(&server.url("token_endpoint"), true),
    );
    assert_eq!(run.status, 1, "{}", run.all_output());
    assert!(
        run.stderr
            .contains("answered 401 Unauthorized: invalid_client"),
        "{}",
        run.stderr
    );
    let document = p.document();
    assert_eq!(
        document["secrets"]["API_TOKEN"]["value"],
        "previous-token-value-0b3c"
    );
    assert_eq!(document["secrets"]["API_TOKEN"]["version"], 1);
    assert_no_leak(
        &run,
        &p,
        &["not-the-secret-8d1e", "previous-token-value-0b3c"],
    );
}

const ROTATING_SCRIPT: &str = r#"
secret CLIENT_ID     { environment_specific }
secret CLIENT_SECRET { environment_specific locked }
secret REFRESH_TOKEN { environment_specific }
secret ACCESS_TOKEN  { environment_specific }

role refresher {
  grant run vendor.refresh
  grant update_secret ACCESS_TOKEN
  grant update_secret REFRESH_TOKEN
}

service_account nightly { roles refresher }

service vendor {
  var token: string
  var new_refresh_token: string
  var expires_in: number

  action refresh_access_token {
    web_request {
      method POST
      url "TOKEN_ENDPOINT"
      form {
        grant_type    = "refresh_token"
        client_id     = secret.CLIENT_ID
        client_secret = secret.CLIENT_SECRET
        refresh_token = secret.REFRESH_TOKEN
      }
      result_mapping {
        token             = $.access_token
        new_refresh_token = $.refresh_token
        expires_in        = $.expires_in
      }
    }
    if has_value(new_refresh_token) && has_value(token) {
      update_secrets {
        REFRESH_TOKEN = new_refresh_token
        ACCESS_TOKEN {
          value      = token
          expires_in = expires_in
        }
      }
    }
  }

  endpoint refresh {
    methods GET
    log enabled
    process refresh_access_token
  }
}
"#;

fn rotating_setup() -> (NodeServer, Project) {
    let server = NodeServer::start(
        "rotating",
        json!({"clients": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}], "access_token_lifetime": 1200}),
    );
    let p = Project::new();
    p.set("CLIENT_ID", CLIENT_ID);
    p.set("CLIENT_SECRET", CLIENT_SECRET);
    let (status, seed) = post_json(
        &server.url("seed_endpoint"),
        &json!({"client_id": CLIENT_ID}),
    );
    assert_eq!(status, 200, "{seed}");
    p.set("REFRESH_TOKEN", seed["refresh_token"].as_str().unwrap());
    p.write(
        "vendor.svc",
        &ROTATING_SCRIPT.replace("TOKEN_ENDPOINT", &server.url("token_endpoint")),
    );
    (server, p)
}

fn post_json(url: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let output = std::process::Command::new("curl")
        .args([
            "-s",
            "-w",
            "\n%{http_code}",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
        ])
        .arg(body.to_string())
        .arg(url)
        .output()
        .expect("curl is installed");
    let text = String::from_utf8(output.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (
        status.parse().unwrap(),
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

fn refresh_vendor(p: &Project) -> Run {
    p.svc()
        .args([
            "run",
            "vendor.svc",
            "vendor.refresh",
            "--env",
            "dev",
            "--as",
            "nightly",
        ])
        .run()
}

fn stats(server: &NodeServer) -> serde_json::Value {
    let url = server.url("token_endpoint").replace("/token", "/stats");
    server.get_json(&url)
}

fn active(server: &NodeServer, token: &str) -> bool {
    let (status, answer) = server.post_form(
        &server.url("introspection_endpoint"),
        &[("token", token)],
        None,
    );
    assert_eq!(status, 200);
    answer["active"] == true
}

#[test]
fn rotated_refresh_tokens_are_stored_run_after_run() {
    let (server, p) = rotating_setup();
    let mut spent = vec![
        p.document()["secrets"]["REFRESH_TOKEN"]["value"]
            .as_str()
            .unwrap()
            .to_string(),
    ];
    let mut outputs = Vec::new();
    for round in 1..=5 {
        let run = refresh_vendor(&p);
        assert_eq!(run.status, 0, "round {round}: {}", run.all_output());
        let document = p.document();
        let refresh = document["secrets"]["REFRESH_TOKEN"]["value"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            !spent.contains(&refresh),
            "round {round}: the refresh token did not rotate"
        );
        assert!(
            active(&server, &refresh),
            "round {round}: the stored refresh token is not active"
        );
        assert!(
            !active(&server, spent.last().unwrap()),
            "round {round}: the old one still works"
        );
        assert_eq!(document["secrets"]["REFRESH_TOKEN"]["version"], round + 1);
        spent.push(refresh);
        outputs.push(run);
    }
    let access = p.document()["secrets"]["ACCESS_TOKEN"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(active(&server, &access));
    let counts = stats(&server);
    assert_eq!(counts["refresh_grants"], 5, "{counts}");
    assert_eq!(counts["rejected_refresh_grants"], 0, "{counts}");
    let mut secrets: Vec<&str> = spent.iter().map(String::as_str).collect();
    secrets.extend([CLIENT_SECRET, access.as_str()]);
    for run in &outputs {
        assert_no_leak(run, &p, &secrets);
    }
}

#[test]
fn concurrent_runs_do_not_break_the_chain() {
    let (server, p) = rotating_setup();
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let call = p.svc().args([
                "run",
                "vendor.svc",
                "vendor.refresh",
                "--env",
                "dev",
                "--as",
                "nightly",
            ]);
            std::thread::spawn(move || call.run())
        })
        .collect();
    for run in runs {
        let run = run.join().unwrap();
        assert_eq!(run.status, 0, "{}", run.all_output());
    }
    let counts = stats(&server);
    assert_eq!(counts["refresh_grants"], 4, "{counts}");
    assert_eq!(
        counts["rejected_refresh_grants"], 0,
        "two runs spent the same refresh token: {counts}"
    );
    let document = p.document();
    assert_eq!(document["secrets"]["REFRESH_TOKEN"]["version"], 5);
    let refresh = document["secrets"]["REFRESH_TOKEN"]["value"]
        .as_str()
        .unwrap();
    assert!(active(&server, refresh));
    // One more run still works: the chain is intact.
    let run = refresh_vendor(&p);
    assert_eq!(run.status, 0, "{}", run.all_output());
}

#[test]
fn a_rejected_refresh_token_is_kept_and_explained() {
    let (server, p) = rotating_setup();
    p.set("REFRESH_TOKEN", "rt_not-a-real-token");
    let run = refresh_vendor(&p);
    assert_eq!(run.status, 1, "{}", run.all_output());
    assert!(
        run.stderr
            .contains("answered 400 Bad Request: invalid_grant"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("svc secret set"), "{}", run.stderr);
    let document = p.document();
    assert_eq!(
        document["secrets"]["REFRESH_TOKEN"]["value"],
        "rt_not-a-real-token"
    );
    assert!(document["secrets"].get("ACCESS_TOKEN").is_none());
    assert_eq!(stats(&server)["rejected_refresh_grants"], 1);
    assert_no_leak(&run, &p, &["rt_not-a-real-token", CLIENT_SECRET]);
}
