//! No secret leaks in any encoding, and none follows a redirect elsewhere.
//!
//! A server (wiremock on 127.0.0.1) that echoes what it received shows each
//! secret the way it travelled: base64 inside `Authorization: Basic`,
//! form-encoded in the body, percent-encoded in the query. None of those
//! forms may reach the trace, `--output json`, the run record or the
//! endpoint log, through a mapped value or an `error_description`.

mod common;

use base64::Engine as _;
use common::{Project, Run};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const CLIENT_ID: &str = "client-id-7Hq2";
// Characters that every encoding changes.
const CLIENT_SECRET: &str = "cs/+=? &ü-9Xq~*'()";
const REFRESH_TOKEN: &str = "rt+/= 7&Kz%41";
const API_KEY: &str = "ak:/?#[]@!$&'()*+,;= 5";
const NEW_TOKEN: &str = "new-access-token-R4t5y6";

/// Every form in which a value may be seen on the wire.
fn forms(value: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    const STRICT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    vec![
        value.to_string(),
        serde_json::to_string(value)
            .unwrap()
            .trim_matches('"')
            .to_string(),
        url::form_urlencoded::byte_serialize(value.as_bytes()).collect(),
        percent_encoding::utf8_percent_encode(value, STRICT).to_string(),
        STANDARD.encode(value),
        STANDARD_NO_PAD.encode(value),
        URL_SAFE.encode(value),
        URL_SAFE_NO_PAD.encode(value),
    ]
}

fn all_forms() -> Vec<String> {
    let mut out = Vec::new();
    for secret in [CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, API_KEY, NEW_TOKEN] {
        out.extend(forms(secret));
    }
    out.extend(forms(&format!("{CLIENT_ID}:{CLIENT_SECRET}")));
    out
}

/// Answers with everything it received, as a token endpoint's JSON (200)
/// or as an OAuth error's `error_description` (400).
struct Echo {
    status: u16,
}

impl Respond for Echo {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut seen = format!("{} {}", request.method, request.url);
        for (name, value) in &request.headers {
            seen.push_str(&format!(" {name}: {}", value.to_str().unwrap_or("?")));
        }
        seen.push_str(&format!(
            " body: {}",
            String::from_utf8_lossy(&request.body)
        ));
        if self.status == 200 {
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": NEW_TOKEN, "echo": seen}))
        } else {
            ResponseTemplate::new(self.status)
                .set_body_json(json!({"error": "invalid_request", "error_description": seen}))
        }
    }
}

fn program(url: &str) -> String {
    format!(
        r#"
secret CLIENT_ID     {{ environment_specific }}
secret CLIENT_SECRET {{ environment_specific locked }}
secret REFRESH_TOKEN {{ environment_specific locked }}
secret API_KEY       {{ environment_specific locked }}
secret ACCESS_TOKEN  {{ environment_specific }}

role refresher {{
  grant run api.refresh
  grant update_secret ACCESS_TOKEN
}}

service_account bot {{ roles refresher }}

service api {{
  var token: string
  var echoed: string

  action refresh {{
    web_request {{
      method POST
      url "{url}/token"
      query {{ key = secret.API_KEY }}
      headers {{ "X-Api-Key" = secret.API_KEY }}
      auth basic(secret.CLIENT_ID, secret.CLIENT_SECRET)
      form {{
        grant_type    = "refresh_token"
        refresh_token = secret.REFRESH_TOKEN
      }}
      result_mapping {{
        token  = $.access_token
        echoed = $.echo
      }}
    }}
    log "the server saw: ${{echoed}}"
    if has_value(token) {{
      update_secret ACCESS_TOKEN = token
    }}
  }}

  endpoint refresh {{
    methods POST
    log enabled
    process refresh
  }}
}}
"#
    )
}

fn project() -> Project {
    let project = Project::new();
    project.set("CLIENT_ID", CLIENT_ID);
    project.set("CLIENT_SECRET", CLIENT_SECRET);
    project.set("REFRESH_TOKEN", REFRESH_TOKEN);
    project.set("API_KEY", API_KEY);
    project.set("ACCESS_TOKEN", "old-access-token");
    project
}

async fn run(project: &Project, program: String, extra: &[&str]) -> Run {
    project.write("api.svc", &program);
    let call = project
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
        .args(extra.iter().copied());
    tokio::task::spawn_blocking(move || call.run())
        .await
        .unwrap()
}

fn assert_no_form_of_a_secret(project: &Project, output: &str) {
    let everything = format!("{output}{}", project.logs());
    for form in all_forms() {
        assert!(
            !everything.contains(&form),
            "`{form}` leaked:\n{everything}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echoing_server_shows_no_encoded_secret() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(Echo { status: 200 })
        .mount(&server)
        .await;
    let project = project();
    let human = run(&project, program(&server.uri()), &[]).await;
    assert_eq!(human.status, 0, "{}", human.all_output());
    let json = run(&project, program(&server.uri()), &["--output", "json"]).await;
    assert_eq!(json.status, 0, "{}", json.all_output());
    // The echo is there, with every secret masked where it was.
    assert!(
        human.stdout.contains("the server saw: POST"),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("authorization: Basic ***"),
        "{}",
        human.stdout
    );
    // The server did receive them, in those forms.
    let received = server.received_requests().await.unwrap();
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    assert_eq!(
        received[0].headers["authorization"].to_str().unwrap(),
        format!("Basic {basic}")
    );
    let form: String = url::form_urlencoded::byte_serialize(REFRESH_TOKEN.as_bytes()).collect();
    assert!(String::from_utf8_lossy(&received[0].body).contains(&form));
    assert_no_form_of_a_secret(
        &project,
        &format!("{}{}", human.all_output(), json.all_output()),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_description_that_echoes_shows_no_encoded_secret() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(Echo { status: 400 })
        .mount(&server)
        .await;
    let project = project();
    let human = run(&project, program(&server.uri()), &[]).await;
    assert_eq!(human.status, 1, "{}", human.all_output());
    assert!(
        human.stderr.contains("invalid_request") && human.stderr.contains("Basic ***"),
        "{}",
        human.stderr
    );
    let json = run(&project, program(&server.uri()), &["--output", "json"]).await;
    assert_eq!(json.status, 1);
    let record: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert!(record["error"]["message"].as_str().unwrap().contains("***"));
    assert_no_form_of_a_secret(
        &project,
        &format!("{}{}", human.all_output(), json.all_output()),
    );
}

/// A token request with a secret in its form body, following redirects.
fn redirected(url: &str, redirects: &str) -> String {
    format!(
        r#"
secret CLIENT_SECRET {{ environment_specific locked }}
secret ACCESS_TOKEN  {{ environment_specific }}

role refresher {{
  grant run api.refresh
  grant update_secret ACCESS_TOKEN
}}

service_account bot {{ roles refresher }}

service api {{
  var token: string

  action refresh {{
    web_request {{
      method POST
      url "{url}/token"
      headers {{ "X-Client-Secret" = secret.CLIENT_SECRET }}
      form {{ client_secret = secret.CLIENT_SECRET }}
      {redirects}
      result_mapping {{ token = $.access_token }}
    }}
    if has_value(token) {{
      update_secret ACCESS_TOKEN = token
    }}
  }}

  endpoint refresh {{
    methods POST
    process refresh
  }}
}}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_another_origin_never_carries_a_secret() {
    let (first, other) = (MockServer::start().await, MockServer::start().await);
    let project = project();
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(307).insert_header("Location", format!("{}/token", other.uri())),
        )
        .mount(&first)
        .await;
    Mock::given(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": NEW_TOKEN})))
        .mount(&other)
        .await;

    // Without an opt-in: refused, the other origin sees nothing.
    let refused = run(&project, redirected(&first.uri(), "redirects 3"), &[]).await;
    assert_eq!(refused.status, 1, "{}", refused.all_output());
    assert!(
        refused.stderr.contains("redirects to another origin"),
        "{}",
        refused.stderr
    );
    assert!(other.received_requests().await.unwrap().is_empty());

    // Opted in, a 307 still may not take the secret body along.
    let kept_body = run(
        &project,
        redirected(&first.uri(), "redirects 3 cross_origin"),
        &[],
    )
    .await;
    assert_eq!(kept_body.status, 1, "{}", kept_body.all_output());
    assert!(
        kept_body.stderr.contains("asks for the body again"),
        "{}",
        kept_body.stderr
    );
    assert!(other.received_requests().await.unwrap().is_empty());

    // Opted in, a 302 is followed as a GET without body or secret headers.
    first.reset().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(302).insert_header("Location", format!("{}/token", other.uri())),
        )
        .mount(&first)
        .await;
    let followed = run(
        &project,
        redirected(&first.uri(), "redirects 3 cross_origin"),
        &[],
    )
    .await;
    assert_eq!(followed.status, 0, "{}", followed.all_output());
    let there = other.received_requests().await.unwrap();
    assert_eq!(there.len(), 1);
    assert_eq!(there[0].method.as_str(), "GET");
    assert!(there[0].body.is_empty());
    assert!(!there[0].headers.contains_key("x-client-secret"));
    assert!(!there[0].headers.contains_key("authorization"));
    assert_no_form_of_a_secret(
        &project,
        &format!(
            "{}{}{}",
            refused.all_output(),
            kept_body.all_output(),
            followed.all_output()
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_within_the_origin_keeps_the_request() {
    let server = MockServer::start().await;
    let project = project();
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(308).insert_header("Location", "/v2/token"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": NEW_TOKEN})))
        .mount(&server)
        .await;
    let run = run(&project, redirected(&server.uri(), "redirects 1"), &[]).await;
    assert_eq!(run.status, 0, "{}", run.all_output());
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].url.path(), "/v2/token");
    assert_eq!(requests[1].body, requests[0].body, "a 308 repeats the body");
    assert_eq!(
        requests[1].headers["x-client-secret"],
        requests[0].headers["x-client-secret"]
    );
    assert_no_form_of_a_secret(&project, &run.all_output());
}
