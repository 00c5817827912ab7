//! `svc run` against a token endpoint that misbehaves, played by wiremock
//! on 127.0.0.1: every failure leaves the stored secrets as they were,
//! explains itself, and never shows a secret.

mod common;

use common::{Project, Run};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const CLIENT_ID: &str = "client-7Hq2-id";
const CLIENT_SECRET: &str = "client-secret-Zx81-very-private";
const OLD_TOKEN: &str = "old-access-token-Q1w2e3";
const NEW_TOKEN: &str = "new-access-token-R4t5y6";

fn script(url: &str, token_path: &str, request_extra: &str) -> String {
    format!(
        r#"
secret CLIENT_ID     {{ environment_specific }}
secret CLIENT_SECRET {{ environment_specific locked }}
secret ACCESS_TOKEN  {{ environment_specific }}

role refresher {{
  grant run api.refresh
  grant update_secret ACCESS_TOKEN
}}

service_account bot {{ roles refresher }}

service api {{
  var token: string
  var expires_in: number

  action refresh {{
    web_request {{
      method POST
      url "{url}/token"
      auth basic(secret.CLIENT_ID, secret.CLIENT_SECRET)
      form {{ grant_type = "client_credentials" }}
      {request_extra}
      result_mapping {{
        token      = {token_path}
        expires_in = $.expires_in
      }}
    }}
    if has_value(token) {{
      update_secret ACCESS_TOKEN {{
        value      = token
        expires_in = expires_in
      }}
    }}
  }}

  endpoint refresh {{
    methods GET POST
    log enabled
    process refresh
  }}
}}
"#
    )
}

struct Setup {
    project: Project,
    server: MockServer,
}

async fn setup() -> Setup {
    let project = Project::new();
    project.set("CLIENT_ID", CLIENT_ID);
    project.set("CLIENT_SECRET", CLIENT_SECRET);
    project.set("ACCESS_TOKEN", OLD_TOKEN);
    Setup {
        project,
        server: MockServer::start().await,
    }
}

impl Setup {
    /// Runs `api.refresh` with the script given, in a blocking thread so the
    /// mock server keeps answering.
    async fn run(&self, script_text: String, extra_args: &[&str]) -> Run {
        self.project.write("api.svc", &script_text);
        let call = self
            .project
            .svc()
            .args([
                "run",
                "api.svc",
                "api.refresh",
                "--env",
                "dev",
                "--as",
                "bot",
            ])
            .args(extra_args.iter().copied());
        tokio::task::spawn_blocking(move || call.run())
            .await
            .unwrap()
    }

    fn stored_token(&self) -> (String, u64) {
        let document = self.project.document();
        let entry = &document["secrets"]["ACCESS_TOKEN"];
        (
            entry["value"].as_str().unwrap().to_string(),
            entry["version"].as_u64().unwrap(),
        )
    }

    /// Nothing the user should not see, anywhere: output and logs.
    fn assert_no_leak(&self, run: &Run) {
        let everything = format!("{}{}", run.all_output(), self.project.logs());
        for secret in [CLIENT_ID, CLIENT_SECRET, OLD_TOKEN, NEW_TOKEN] {
            assert!(
                !everything.contains(secret),
                "`{secret}` leaked:\n{everything}"
            );
        }
    }

    fn assert_unchanged(&self) {
        assert_eq!(
            self.stored_token(),
            (OLD_TOKEN.to_string(), 1),
            "the stored token changed"
        );
    }
}

fn token_response(body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_answer_updates_the_secret_and_its_expiry() {
    let s = setup().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(token_response(
            json!({"access_token": NEW_TOKEN, "expires_in": 1800}),
        ))
        .expect(1)
        .mount(&s.server)
        .await;
    let run = s
        .run(script(&s.server.uri(), "$.access_token", ""), &[])
        .await;
    assert_eq!(run.status, 0, "{}", run.all_output());
    assert_eq!(s.stored_token(), (NEW_TOKEN.to_string(), 2));
    let document = s.project.document();
    let expires = document["secrets"]["ACCESS_TOKEN"]["expires_at"]
        .as_str()
        .unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(expires).unwrap();
    let left = expires
        .signed_duration_since(chrono::Utc::now())
        .num_seconds();
    assert!((1700..=1800).contains(&left), "expires in {left}s");
    assert!(
        run.stdout.contains("POST ") && run.stdout.contains("-> 200 OK"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("token <- *** (23 characters, sensitive)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("updated secret ACCESS_TOKEN to version 2"),
        "{}",
        run.stdout
    );
    // The request carried the stored client credentials, by HTTP Basic.
    let requests = s.server.received_requests().await.unwrap();
    let auth = requests[0]
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    use base64::Engine as _;
    let expected =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    assert_eq!(auth, format!("Basic {expected}"));
    s.assert_no_leak(&run);
    // And the endpoint log has the run.
    let logs = s.project.logs();
    let record: serde_json::Value = serde_json::from_str(logs.lines().last().unwrap()).unwrap();
    assert_eq!(record["outcome"], "success");
    assert_eq!(record["identity"], "bot");
    assert_eq!(record["trigger"], "cli");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_then_a_200_is_retried() {
    let s = setup().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .expect(1)
        .mount(&s.server)
        .await;
    Mock::given(method("POST"))
        .respond_with(token_response(json!({"access_token": NEW_TOKEN})))
        .expect(1)
        .mount(&s.server)
        .await;
    let run = s
        .run(script(&s.server.uri(), "$.access_token", ""), &[])
        .await;
    assert_eq!(run.status, 0, "{}", run.all_output());
    assert!(
        run.stdout
            .contains("attempt 1 answered 500 Internal Server Error; retrying"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("-> 200 OK") && run.stdout.contains("2 attempts"),
        "{}",
        run.stdout
    );
    assert_eq!(s.stored_token().0, NEW_TOKEN);
    s.assert_no_leak(&run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_retry_after_is_honoured() {
    let s = setup().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .mount(&s.server)
        .await;
    Mock::given(method("POST"))
        .respond_with(token_response(json!({"access_token": NEW_TOKEN})))
        .mount(&s.server)
        .await;
    let run = s
        .run(
            script(&s.server.uri(), "$.access_token", ""),
            &["--output", "json"],
        )
        .await;
    assert_eq!(run.status, 0, "{}", run.all_output());
    let record: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let retry = record["trace"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "retry")
        .unwrap();
    assert!(retry["wait_ms"].as_u64().unwrap() >= 1000, "{retry}");
    assert!(retry["reason"].as_str().unwrap().contains("429"), "{retry}");
    assert_eq!(s.stored_token().0, NEW_TOKEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_beyond_max_time_gives_up_at_once() {
    let s = setup().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "120"))
        .expect(1)
        .mount(&s.server)
        .await;
    let extra = "retry {\n        attempts 5\n        max_time 5s\n      }";
    let run = s
        .run(script(&s.server.uri(), "$.access_token", extra), &[])
        .await;
    assert_eq!(run.status, 1, "{}", run.all_output());
    assert!(
        run.stderr.contains("svc::run::web_request_error"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("the server asked to wait 120s"),
        "{}",
        run.stderr
    );
    s.assert_unchanged();
    s.assert_no_leak(&run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_fails_after_the_attempts() {
    let s = setup().await;
    Mock::given(method("POST"))
        .respond_with(
            token_response(json!({"access_token": NEW_TOKEN}))
                .set_delay(std::time::Duration::from_secs(3)),
        )
        .expect(2)
        .mount(&s.server)
        .await;
    let extra = "timeout 300ms\n      retry { attempts 2 }";
    let run = s
        .run(script(&s.server.uri(), "$.access_token", extra), &[])
        .await;
    assert_eq!(run.status, 1, "{}", run.all_output());
    assert!(
        run.stderr.contains("no answer within 300ms"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("after 2 attempts"), "{}", run.stderr);
    assert!(
        run.stderr.contains("api.svc:"),
        "the error points at the script: {}",
        run.stderr
    );
    s.assert_unchanged();
    s.assert_no_leak(&run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_without_a_token_changes_nothing() {
    let s = setup().await;
    Mock::given(method("POST"))
        .respond_with(token_response(json!({"token_type": "Bearer"})))
        .mount(&s.server)
        .await;
    let run = s
        .run(script(&s.server.uri(), "$.access_token", ""), &[])
        .await;
    assert_eq!(run.status, 0, "{}", run.all_output());
    assert!(run.stdout.contains("token <- null"), "{}", run.stdout);
    assert!(
        run.stdout.contains("if has_value(token): false, skipped"),
        "{}",
        run.stdout
    );
    s.assert_unchanged();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_is_not_json_is_a_clear_error() {
    let s = setup().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw("<html>maintenance</html>", "text/html"),
        )
        .mount(&s.server)
        .await;
    let run = s
        .run(script(&s.server.uri(), "$.access_token", ""), &[])
        .await;
    assert_eq!(run.status, 1, "{}", run.all_output());
    assert!(
        run.stderr.contains("svc::run::mapping_error"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("the response is not JSON (text/html, 24 bytes)"),
        "{}",
        run.stderr
    );
    s.assert_unchanged();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_token_and_a_string_expiry_are_mapped() {
    let s = setup().await;
    Mock::given(method("POST"))
        .respond_with(token_response(
            json!({"data": [{"auth": {"token": NEW_TOKEN}}], "expires_in": "3600"}),
        ))
        .mount(&s.server)
        .await;
    let run = s
        .run(script(&s.server.uri(), "$.data[0]['auth'].token", ""), &[])
        .await;
    assert_eq!(run.status, 0, "{}", run.all_output());
    assert!(run.stdout.contains("expires_in <- 3600"), "{}", run.stdout);
    assert_eq!(s.stored_token(), (NEW_TOKEN.to_string(), 2));
    let document = s.project.document();
    assert!(document["secrets"]["ACCESS_TOKEN"]["expires_at"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiry_that_is_not_a_number_is_refused() {
    let s = setup().await;
    Mock::given(method("POST"))
        .respond_with(token_response(
            json!({"access_token": NEW_TOKEN, "expires_in": "soon"}),
        ))
        .mount(&s.server)
        .await;
    let run = s
        .run(script(&s.server.uri(), "$.access_token", ""), &[])
        .await;
    assert_eq!(run.status, 1, "{}", run.all_output());
    assert!(
        run.stderr
            .contains("`$.expires_in` gave a string of 4 characters that is not a number"),
        "{}",
        run.stderr
    );
    s.assert_unchanged();
    s.assert_no_leak(&run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oauth_error_shows_status_and_fields_but_no_secret() {
    let s = setup().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": "invalid_client",
            "error_description": "client authentication failed",
            "echo": format!("you sent {CLIENT_ID}:{CLIENT_SECRET}"),
        })))
        .mount(&s.server)
        .await;
    let run = s
        .run(
            script(&s.server.uri(), "$.access_token", ""),
            &["--output", "json"],
        )
        .await;
    assert_eq!(run.status, 1, "{}", run.all_output());
    let record: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(record["error"]["code"], "web_request_error");
    assert_eq!(record["error"]["status"], 401);
    let message = record["error"]["message"].as_str().unwrap();
    assert!(
        message
            .contains("answered 401 Unauthorized: invalid_client (client authentication failed)"),
        "{message}"
    );
    s.assert_unchanged();
    s.assert_no_leak(&run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_request_error_can_be_caught() {
    let s = setup().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant"})))
        .mount(&s.server)
        .await;
    let text = script(&s.server.uri(), "$.access_token", "")
        .replace("    web_request {", "    try {\n    web_request {");
    let text = text.replace(
        "    if has_value(token) {",
        "    } catch web_request_error 400 401 {\n      log \"refresh failed with ${error.status}: ${error.message}\"\n    }\n    if has_value(token) {",
    );
    let run = s.run(text, &[]).await;
    assert_eq!(run.status, 0, "{}", run.all_output());
    assert!(
        run.stdout.contains("caught web_request_error"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("log: refresh failed with 400"),
        "{}",
        run.stdout
    );
    s.assert_unchanged();
    s.assert_no_leak(&run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed_unless_asked() {
    let s = setup().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(307)
                .insert_header("Location", format!("{}/moved", s.server.uri())),
        )
        .mount(&s.server)
        .await;
    Mock::given(method("POST"))
        .and(path("/moved"))
        .respond_with(token_response(json!({"access_token": NEW_TOKEN})))
        .mount(&s.server)
        .await;
    let run = s
        .run(script(&s.server.uri(), "$.access_token", ""), &[])
        .await;
    assert_eq!(run.status, 1, "{}", run.all_output());
    assert!(
        run.stderr.contains("answered 307 Temporary Redirect"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("add `redirects N`"), "{}", run.stderr);
    s.assert_unchanged();

    let run = s
        .run(
            script(&s.server.uri(), "$.access_token", "redirects 1"),
            &[],
        )
        .await;
    assert_eq!(run.status, 0, "{}", run.all_output());
    assert_eq!(s.stored_token().0, NEW_TOKEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_body_is_refused() {
    let s = setup().await;
    let huge = "x".repeat(11 * 1024 * 1024);
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(huge, "application/json"))
        .mount(&s.server)
        .await;
    let run = s
        .run(script(&s.server.uri(), "$.access_token", ""), &[])
        .await;
    assert_eq!(run.status, 1, "{}", run.all_output());
    assert!(run.stderr.contains("larger than 10 MiB"), "{}", run.stderr);
    s.assert_unchanged();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_sends_nothing_and_changes_nothing() {
    let s = setup().await;
    Mock::given(method("POST"))
        .respond_with(token_response(json!({"access_token": NEW_TOKEN})))
        .expect(0)
        .mount(&s.server)
        .await;
    let run = s
        .run(
            script(&s.server.uri(), "$.access_token", ""),
            &["--dry-run"],
        )
        .await;
    assert_eq!(run.status, 0, "{}", run.all_output());
    assert!(run.stdout.contains("would send POST"), "{}", run.stdout);
    assert!(
        run.stdout.contains("Authorization: Basic ***"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("body: grant_type=client_credentials"),
        "{}",
        run.stdout
    );
    s.assert_unchanged();
    s.assert_no_leak(&run);
    assert!(s.project.logs().is_empty(), "a dry run was logged");
}
