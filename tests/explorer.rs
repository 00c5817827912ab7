//! The API explorer in headless Chromium (Debian's, driven by
//! playwright-core), against a real `svc serve` and a real oidc-provider.

mod common;

use common::{NodeServer, Project};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const CLIENT_ID: &str = "explorer-client";
const CLIENT_SECRET: &str = "explorer-client-secret-61c0d9";
const OLD_TOKEN: &str = "previous-access-token-77e2aa";
const USER_REFRESH_TOKEN: &str = "dead-user-refresh-token-4f0c1b";

/// A client that stores a person's tokens, refreshed by `users.refresh`
/// from PROVIDER's token endpoint.
const USER_APP: &str = r#"
secret USER_REFRESH_TOKEN { environment_specific }
secret USER_ACCESS_TOKEN  { environment_specific }

oauth_client user_app {
  authorize_url "PROVIDER/authorize"
  token_url     "PROVIDER/token"
  client_id     "explorer-user-app"
  client_auth   none
  stores {
    refresh_token = USER_REFRESH_TOKEN
    access_token  = USER_ACCESS_TOKEN
  }
}

role user_refresher {
  grant run users.refresh
  grant update_secret USER_REFRESH_TOKEN
  grant update_secret USER_ACCESS_TOKEN
}
role watcher { grant read_status user_app }
user user_keeper { roles user_refresher }

service users {
  var token: string

  action refresh {
    web_request {
      auth client(user_app)
      form {
        grant_type    = "refresh_token"
        refresh_token = secret.USER_REFRESH_TOKEN
      }
      result_mapping { token = $.access_token }
    }
    if has_value(token) {
      update_secret USER_ACCESS_TOKEN = token
    }
  }

  endpoint refresh {
    methods POST
    process refresh
  }
}
"#;

#[test]
fn the_explorer_lists_runs_and_shows_logs_without_values() {
    let oidc = NodeServer::start(
        "oidc",
        json!({"clients": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                            "token_endpoint_auth_method": "client_secret_basic", "scope": "api:read"}]}),
    );
    let p = Project::new();
    let script = std::fs::read_to_string(common::root().join("examples/quickstart/quickstart.svc"))
        .unwrap()
        .replace(
            "\"${param.token_url}\"",
            &format!("\"{}\"", oidc.url("token_endpoint")),
        );
    // An endpoint with a contract: the explorer builds its form from it.
    let script = script.replace(
        "service_account quickstart_bot { roles demo_refresher }",
        "service_account quickstart_bot { roles demo_refresher calc_user watcher }",
    ) + r#"
role calc_user { grant run calc.add }

service calc {
  var sum: number

  action add {
    update service_variables { sum = param.a + param.b }
  }

  endpoint add {
    methods GET POST
    params {
      a: number
      b: number = 2
    }
    response {
      json { sum = sum }
    }
    process add
  }
}
"#;
    // A connection whose provider no longer accepts its refresh token: the
    // explorer shows its state and the command that re-consents.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let provider = runtime.block_on(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(
                ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant"})),
            )
            .mount(&server)
            .await;
        server
    });
    let script = script + &USER_APP.replace("PROVIDER", &provider.uri());
    p.write("demo.svc", &script);
    p.set("USER_REFRESH_TOKEN", USER_REFRESH_TOKEN);
    let refused = p
        .svc()
        .args([
            "run",
            "demo.svc",
            "users.refresh",
            "--env",
            "dev",
            "--as",
            "user_keeper",
        ])
        .run();
    assert_eq!(refused.status, 1, "{}", refused.all_output());
    p.set("DEMO_CLIENT_ID", CLIENT_ID);
    p.set("DEMO_CLIENT_SECRET", CLIENT_SECRET);
    p.set("DEMO_ACCESS_TOKEN", OLD_TOKEN);
    let key = p.key("quickstart_bot", &[]);
    let server = p.serve(&["demo.svc", "--env", "dev", "--no-schedules"]);
    let screenshot = p.path().join("explorer.png");
    let output = std::process::Command::new("node")
        .arg(common::root().join("tests/browser/explorer.test.js"))
        .env("SVC_URL", &server.base)
        .env("SVC_KEY", &key)
        .env("SVC_ENDPOINT", "demo.refresh")
        .env("SVC_CONTRACT_ENDPOINT", "calc.add")
        .env(
            "SVC_FORBIDDEN",
            format!("{CLIENT_SECRET},{OLD_TOKEN},{USER_REFRESH_TOKEN}"),
        )
        .env("SVC_CONNECTION", "user_app/default")
        .env("SVC_CONNECTION_STATE", "needs_reconsent")
        .env(
            "SVC_RECONSENT",
            "svc authorize demo.svc user_app --env dev --as user_keeper",
        )
        .env("SCREENSHOT", &screenshot)
        .output()
        .expect("node is installed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser test failed:\n{stdout}\n{stderr}\n{}",
        server.stderr()
    );
    let result: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(result["ok"], true, "{result}");
    // The badges agreed with the key: none without one, then the right.
    for check in [
        "badge_asks_for_a_key",
        "badge_agrees_with_the_key",
        "badge_follows_a_forgotten_key",
        "contract_form_and_response",
        "connection_state_and_reconsent",
    ] {
        assert!(
            result["checks"].to_string().contains(check),
            "{check} not run: {result}"
        );
    }
    assert!(result["log_entries"].as_u64().unwrap() >= 1, "{result}");
    let png = std::fs::read(&screenshot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // The run in the browser really refreshed the token.
    let document = p.document();
    assert_eq!(document["secrets"]["DEMO_ACCESS_TOKEN"]["version"], 2);
    assert_ne!(document["secrets"]["DEMO_ACCESS_TOKEN"]["value"], OLD_TOKEN);
    // A copy for people to look at, when asked.
    if let Some(dir) = std::env::var_os("SVC_SCREENSHOT_DIR") {
        std::fs::copy(&screenshot, std::path::Path::new(&dir).join("explorer.png")).unwrap();
    }
}
