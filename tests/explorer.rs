//! The API explorer in headless Chromium (Debian's, driven by
//! playwright-core), against a real `svc serve` and a real oidc-provider.

mod common;

use common::{NodeServer, Project};
use serde_json::json;

const CLIENT_ID: &str = "explorer-client";
const CLIENT_SECRET: &str = "explorer-client-secret-61c0d9";
const OLD_TOKEN: &str = "previous-access-token-77e2aa";

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
        "service_account quickstart_bot { roles demo_refresher calc_user }",
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
    p.write("demo.svc", &script);
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
        .env("SVC_FORBIDDEN", format!("{CLIENT_SECRET},{OLD_TOKEN}"))
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
