//! docs/getting-started.md, run as written: its `sh` blocks, in a new
//! directory, against oidc-provider on 127.0.0.1, with the svc under test on
//! PATH and a home of its own. The transcript has no `export`: every command
//! finds the project from a path or `--project`.

mod common;

use common::NodeServer;
use serde_json::json;

const CLIENT_ID: &str = "getting-started-client";
const CLIENT_SECRET: &str = "getting-started-secret-5d1e9b";

/// The fenced blocks of a Markdown text whose info string is `sh`.
fn sh_blocks(markdown: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in markdown.lines() {
        if inside {
            if line.trim_start().starts_with("```") {
                inside = false;
            } else {
                out.push_str(line);
                out.push('\n');
            }
        } else if line.trim() == "```sh" {
            inside = true;
        }
    }
    out
}

#[test]
fn the_getting_started_transcript_runs_as_written() {
    let page = std::fs::read_to_string(common::root().join("docs/getting-started.md")).unwrap();
    let script = sh_blocks(&page);
    assert!(script.contains("svc init myproj"), "{script}");
    assert!(
        !script.contains("export "),
        "the transcript needs no export"
    );

    let oidc = NodeServer::start(
        "oidc",
        json!({"clients": [{
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "token_endpoint_auth_method": "client_secret_basic",
            "scope": "api.read"
        }], "access_token_ttl": 900}),
    );
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_svc"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let output = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(work.path())
        .env_clear()
        .env("PATH", path)
        .env("HOME", &home)
        .env("NO_COLOR", "1")
        .env("TOKEN_URL", oidc.url("token_endpoint"))
        .env("CLIENT_ID", CLIENT_ID)
        .env("CLIENT_SECRET", CLIENT_SECRET)
        .env("PORT", port.to_string())
        .output()
        .unwrap();
    let run: common::Run = output.into();
    assert_eq!(
        run.status,
        0,
        "the transcript failed:\n{}",
        run.all_output()
    );

    // The identity svc init made is where every later command found it.
    assert!(home.join(".config/svc/identity.txt").is_file());
    // The app read the refreshed token, and the provider says it is live.
    let token: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(work.path().join("token.json")).unwrap())
            .unwrap();
    let value = token["value"].as_str().expect("the app read a value");
    let (status, verdict) = oidc.post_form(
        &oidc.url("introspection_endpoint"),
        &[("token", value)],
        Some((CLIENT_ID, CLIENT_SECRET)),
    );
    assert_eq!(status, 200);
    assert_eq!(verdict["active"], true, "{verdict}");
    assert!(
        run.stdout.contains("all is well in `dev`"),
        "{}",
        run.stdout
    );
    // The server logged its runs and the app's read, and no secret.
    let serve_log = std::fs::read_to_string(work.path().join("serve.log")).unwrap();
    assert!(
        serve_log.contains("listening on http://127.0.0.1"),
        "{serve_log}"
    );
    assert!(
        serve_log.contains(" run ")
            && serve_log.contains("endpoint=api.refresh")
            && serve_log.contains("identity=token_bot")
            && serve_log.contains("outcome=success"),
        "{serve_log}"
    );
    assert!(
        serve_log.contains("refused") && serve_log.contains("status=403"),
        "{serve_log}"
    );
    assert!(run.stdout.trim_end().ends_with("403"), "{}", run.stdout);
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(work.path().join("run.json")).unwrap())
            .unwrap();
    assert_eq!(record["outcome"], "success", "{record}");
    for secret in [CLIENT_SECRET, value] {
        assert!(!run.all_output().contains(secret), "{}", run.all_output());
        assert!(!serve_log.contains(secret), "{serve_log}");
    }
}
