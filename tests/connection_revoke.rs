//! `svc connection revoke`: the connection's tokens revoked at the provider
//! (RFC 7009), refresh token first, then cleared from the store in one
//! update, and the connection `revoked` so that runs refreshing it exit 4.
//! And `refresh_token_ttl`: the refresh token's expiry when the answer does
//! not say. Against oidc-provider (whose introspection says what it
//! revoked) and wiremock, on 127.0.0.1.

mod common;

use common::authorizing::introspect;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, TimeDelta, Utc};
use common::{NodeServer, Project, Run};
use serde_json::{Value, json};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const DEVICE: (&str, &str) = ("revoke-device", "revoke-device-secret-9c4d21");

fn provider() -> &'static NodeServer {
    static PROVIDER: OnceLock<NodeServer> = OnceLock::new();
    PROVIDER.get_or_init(|| common::authorizing::device_provider(DEVICE))
}

/// A program with `oauth_client app` (its endpoints and extra properties
/// from `endpoints`) and an endpoint that refreshes its connection.
fn program(endpoints: &str) -> String {
    format!(
        r#"
secret CLIENT_ID     {{ environment_specific }}
secret CLIENT_SECRET {{ environment_specific locked }}
secret REFRESH_TOKEN {{ environment_specific }}
secret ACCESS_TOKEN  {{ environment_specific }}

oauth_client app {{
  {endpoints}
  client_id   secret.CLIENT_ID
  client_auth client_secret_post(secret.CLIENT_SECRET)
  scopes      "openid offline_access api:read"
  stores {{
    refresh_token = REFRESH_TOKEN
    access_token  = ACCESS_TOKEN
  }}
}}

role token_keeper {{
  grant run api.refresh
  grant update_secret REFRESH_TOKEN
  grant update_secret ACCESS_TOKEN
}}

user ops {{ roles token_keeper }}

service api {{
  var token: string
  var new_refresh_token: string

  action refresh {{
    web_request {{
      auth client(app)
      form {{
        grant_type    = "refresh_token"
        refresh_token = secret.REFRESH_TOKEN
      }}
      result_mapping {{
        token             = $.access_token
        new_refresh_token = $.refresh_token
      }}
    }}
    if has_value(new_refresh_token) {{
      update_secret REFRESH_TOKEN = new_refresh_token
    }}
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

fn run_refresh(p: &Project) -> Run {
    p.svc()
        .args([
            "run",
            "app.svc",
            "api.refresh",
            "--env",
            "dev",
            "--as",
            "ops",
        ])
        .run()
}

fn revoke(p: &Project, extra: &[&str]) -> Run {
    p.svc()
        .args([
            "connection",
            "revoke",
            "app",
            "--program",
            "app.svc",
            "--env",
            "dev",
        ])
        .args(extra.iter().copied())
        .run()
}

/// The names of the secrets the store holds.
fn secrets_held(p: &Project) -> Vec<String> {
    p.document()["secrets"]
        .as_object()
        .expect("a document with secrets")
        .keys()
        .cloned()
        .collect()
}

fn assert_no_leak(text: &str, values: &[&str]) {
    for value in values {
        assert!(value.len() > 8, "`{value}` is too short to search for");
        assert!(!text.contains(value), "`{value}` leaked:\n{text}");
    }
}

/// A rendered error's words on one line, without its margin.
fn flat(text: &str) -> String {
    text.split_whitespace()
        .filter(|w| *w != "|")
        .collect::<Vec<_>>()
        .join(" ")
}

fn time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a time: {value}"))
        .parse()
        .unwrap()
}

/// Asserts that `at` is `ttl` after a moment between `before` and `after`.
fn assert_after(at: DateTime<Utc>, before: DateTime<Utc>, after: DateTime<Utc>, ttl: TimeDelta) {
    let slack = TimeDelta::seconds(1);
    assert!(
        at >= before + ttl - slack && at <= after + ttl + slack,
        "{at} is not {ttl} after a moment in [{before}, {after}]"
    );
}

// ---- oidc-provider: revoked for real ----------------------------------------

#[test]
fn revoke_ends_both_tokens_at_the_provider_clears_them_and_runs_need_a_person() {
    let p = Project::new();
    // The revocation endpoint comes from discovery; the refresh token's
    // lifetime from the client, as oidc-provider does not say it.
    let issuer = format!(
        "issuer \"{}\"\n  refresh_token_ttl 90d",
        provider().url("issuer")
    );
    p.write("app.svc", &program(&issuer));
    p.set("CLIENT_ID", DEVICE.0);
    p.set("CLIENT_SECRET", DEVICE.1);
    let before = Utc::now();
    let mut outputs = common::authorizing::authorize_device(&p).all_output();
    let after = Utc::now();
    let c = common::connection_show(p.svc(), "app");
    assert_eq!(c["state"], "healthy", "{c}");
    assert_after(
        time(&c["refresh_token_expires_at"]),
        before,
        after,
        TimeDelta::days(90),
    );

    let refresh_token = p.get("REFRESH_TOKEN");
    let access_token = p.get("ACCESS_TOKEN");
    assert_eq!(
        introspect(provider(), DEVICE, &refresh_token)["active"],
        true
    );
    assert_eq!(
        introspect(provider(), DEVICE, &access_token)["active"],
        true
    );

    let run = revoke(&p, &[]);
    assert_eq!(run.status, 0, "{}", run.all_output());
    outputs += &run.all_output();
    let revocation = provider().url("revocation_endpoint");
    assert!(
        run.stdout.contains(&format!(
            "revoked the refresh token of `app` at {revocation}\nrevoked the access token of `app` at {revocation}\n"
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(
            "cleared REFRESH_TOKEN, ACCESS_TOKEN in `dev`; the connection `app/default` is revoked"
        ),
        "{}",
        run.stdout
    );

    // The provider no longer takes either token.
    assert_eq!(
        introspect(provider(), DEVICE, &refresh_token)["active"],
        false
    );
    assert_eq!(
        introspect(provider(), DEVICE, &access_token)["active"],
        false
    );

    // Cleared in the store, and nothing left in the recovery journal.
    assert_eq!(secrets_held(&p), ["CLIENT_ID", "CLIENT_SECRET"]);
    let journal = p
        .svc()
        .args(["secret", "recover", "--env", "dev", "--json"])
        .run();
    assert_eq!(
        (journal.status, journal.stdout.trim()),
        (0, "[]"),
        "{}",
        journal.all_output()
    );
    // The reads of the tokens it sent are audited.
    let audit = std::fs::read_to_string(p.path().join("logs/dev/audit.jsonl")).unwrap();
    let revoke_reads: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["action"] == "revoke")
        .collect();
    assert_eq!(
        revoke_reads
            .iter()
            .map(|l| l["secret"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["REFRESH_TOKEN", "ACCESS_TOKEN"],
        "{audit}"
    );

    let c = common::connection_show(p.svc(), "app");
    assert_eq!(c["state"], "revoked", "{c}");
    assert_eq!(c["refresh_token_expires_at"], Value::Null, "{c}");

    // A run that refreshes it needs a person, not a missing value.
    let run = run_refresh(&p);
    assert_eq!(run.status, 4, "{}", run.all_output());
    assert!(
        run.stderr.contains("svc::connection::revoked"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("svc authorize app.svc app --env dev --as ops"),
        "{}",
        run.stderr
    );
    outputs += &run.all_output();
    outputs += &audit;
    assert_no_leak(
        &format!("{outputs}{}", p.logs()),
        &[&refresh_token, &access_token, DEVICE.1],
    );
}

// ---- wiremock: no endpoint, a refusal, what is sent --------------------------

async fn in_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.unwrap()
}

/// A project whose client's token endpoint is `server`, with `extra`
/// properties, holding a refresh and an access token.
fn project(server: &MockServer, extra: &str) -> Arc<Project> {
    let p = Arc::new(Project::new());
    p.write(
        "app.svc",
        &program(&format!(
            "authorize_url \"{0}/authorize\"\n  token_url \"{0}/token\"\n  {extra}",
            server.uri()
        )),
    );
    p.set("CLIENT_ID", "mock-client");
    p.set("CLIENT_SECRET", "mock-secret-Hq27sd");
    p.set("REFRESH_TOKEN", "mock-refresh-token-Zt81pq");
    p.set("ACCESS_TOKEN", "mock-access-token-Uy40mn");
    p
}

const MOCK_VALUES: [&str; 3] = [
    "mock-secret-Hq27sd",
    "mock-refresh-token-Zt81pq",
    "mock-access-token-Uy40mn",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_a_revocation_endpoint_is_cleared_here_and_says_so() {
    let server = MockServer::start().await;
    let p = project(&server, "");
    let run = {
        let p = p.clone();
        in_thread(move || revoke(&p, &[])).await
    };
    assert_eq!(run.status, 0, "{}", run.all_output());
    assert!(
        run.stdout.contains(
            "not revoked at the provider: the client has no `revocation_url` (nor an `issuer` \
             whose discovery names a `revocation_endpoint`); the tokens stay valid there"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("cleared REFRESH_TOKEN, ACCESS_TOKEN in `dev`"),
        "{}",
        run.stdout
    );
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        0,
        "nothing is sent"
    );
    let (stored, c, refresh) = {
        let p = p.clone();
        in_thread(move || {
            (
                secrets_held(&p),
                common::connection_show(p.svc(), "app"),
                run_refresh(&p),
            )
        })
        .await
    };
    assert_eq!(stored, ["CLIENT_ID", "CLIENT_SECRET"]);
    assert_eq!(c["state"], "revoked", "{c}");
    assert_eq!(refresh.status, 4, "{}", refresh.all_output());
    assert_eq!(server.received_requests().await.unwrap().len(), 0);
    assert_no_leak(
        &format!("{}{}{}", run.all_output(), refresh.all_output(), p.logs()),
        &MOCK_VALUES,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_of_the_refresh_token_keeps_everything_and_says_what_happened() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/revoke"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": "invalid_client",
            "error_description": "client authentication failed"
        })))
        .mount(&server)
        .await;
    let p = project(
        &server,
        &format!("revocation_url \"{}/revoke\"", server.uri()),
    );
    let run = {
        let p = p.clone();
        in_thread(move || revoke(&p, &[])).await
    };
    assert_eq!(run.status, 1, "{}", run.all_output());
    assert!(
        run.stderr.contains("svc::oauth::revocation_failed"),
        "{}",
        run.stderr
    );
    assert!(
        flat(&run.stderr).contains(
            "revoking the refresh token was refused (401 Unauthorized): `invalid_client`: client \
             authentication failed; nothing was cleared: the tokens are still stored, and still \
             valid at the provider"
        ),
        "{}",
        run.stderr
    );
    assert!(
        flat(&run.stderr).contains(
            "then run `svc connection revoke` again, or clear them without the provider with \
             `--local-only`"
        ),
        "{}",
        run.stderr
    );
    // One request, the refresh token's; the access token was not tried.
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let (stored, c, refresh_token) = {
        let p = p.clone();
        in_thread(move || {
            (
                secrets_held(&p),
                common::connection_show(p.svc(), "app"),
                p.get("REFRESH_TOKEN"),
            )
        })
        .await
    };
    assert_eq!(
        stored,
        [
            "ACCESS_TOKEN",
            "CLIENT_ID",
            "CLIENT_SECRET",
            "REFRESH_TOKEN"
        ]
    );
    assert_eq!(refresh_token, "mock-refresh-token-Zt81pq");
    assert_eq!(c["state"], "healthy", "{c}");
    assert_eq!(c["observed"], false, "{c}");

    // `--local-only` clears without asking the provider.
    let run2 = {
        let p = p.clone();
        in_thread(move || revoke(&p, &["--local-only"])).await
    };
    assert_eq!(run2.status, 0, "{}", run2.all_output());
    assert!(
        run2.stdout
            .contains("not revoked at the provider: `--local-only`"),
        "{}",
        run2.stdout
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    let (stored, c) = {
        let p = p.clone();
        in_thread(move || (secrets_held(&p), common::connection_show(p.svc(), "app"))).await
    };
    assert_eq!(stored, ["CLIENT_ID", "CLIENT_SECRET"]);
    assert_eq!(c["state"], "revoked", "{c}");
    assert_no_leak(
        &format!("{}{}{}", run.all_output(), run2.all_output(), p.logs()),
        &MOCK_VALUES,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_sends_each_token_with_its_hint_as_the_client_authenticates() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/revoke"))
        .and(body_string_contains("token_type_hint=refresh_token"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    // The access token's revocation fails: the refresh token is revoked
    // already, so the store is cleared all the same, and the exit says so.
    Mock::given(method("POST"))
        .and(path("/revoke"))
        .and(body_string_contains("token_type_hint=access_token"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let p = project(
        &server,
        &format!("revocation_url \"{}/revoke\"", server.uri()),
    );
    let run = {
        let p = p.clone();
        in_thread(move || revoke(&p, &["--json"])).await
    };
    assert_eq!(run.status, 1, "{}", run.all_output());
    let out: Value = serde_json::from_str(&run.stdout).expect("one JSON object");
    assert_eq!(out["revoked"], json!(["refresh_token"]), "{out}");
    assert_eq!(
        out["cleared"],
        json!(["REFRESH_TOKEN", "ACCESS_TOKEN"]),
        "{out}"
    );
    assert_eq!(out["state"], "revoked");
    assert_eq!(out["error"]["code"], "svc::oauth::revocation_failed");
    assert!(
        flat(&run.stderr).contains(
            "the refresh token was revoked and the store is cleared, but the access token may \
             stay valid until it expires"
        ),
        "{}",
        run.stderr
    );

    let requests = server.received_requests().await.unwrap();
    let forms: Vec<Vec<(String, String)>> = requests
        .iter()
        .map(|r| {
            url::form_urlencoded::parse(&r.body)
                .into_owned()
                .collect::<Vec<_>>()
        })
        .collect();
    let field = |form: &[(String, String)], name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    // The access token's 503 may have been retried: every request after
    // the first is the access token's.
    assert!(forms.len() >= 2, "{forms:?}");
    assert_eq!(field(&forms[0], "token"), "mock-refresh-token-Zt81pq");
    assert_eq!(field(&forms[0], "token_type_hint"), "refresh_token");
    for form in &forms[1..] {
        assert_eq!(field(form, "token"), "mock-access-token-Uy40mn");
        assert_eq!(field(form, "token_type_hint"), "access_token");
    }
    for form in &forms {
        // client_secret_post, as at the token endpoint.
        assert_eq!(field(form, "client_id"), "mock-client");
        assert_eq!(field(form, "client_secret"), "mock-secret-Hq27sd");
    }

    let (stored, c) = {
        let p = p.clone();
        in_thread(move || (secrets_held(&p), common::connection_show(p.svc(), "app"))).await
    };
    assert_eq!(stored, ["CLIENT_ID", "CLIENT_SECRET"]);
    assert_eq!(c["state"], "revoked", "{c}");
    assert_no_leak(&format!("{}{}", run.all_output(), p.logs()), &MOCK_VALUES);
}

// ---- refresh_token_ttl on a refresh -------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_records_the_declared_ttl_unless_the_answer_says_otherwise() {
    let server = MockServer::start().await;
    let p = project(&server, "refresh_token_ttl 30d");
    let answer = |body: Value| {
        let server = &server;
        async move {
            server.reset().await;
            Mock::given(method("POST"))
                .and(path("/token"))
                .respond_with(ResponseTemplate::new(200).set_body_json(body))
                .mount(server)
                .await;
        }
    };
    answer(json!({
        "access_token": "mock-access-token-Uy40mn",
        "refresh_token": "mock-refresh-token-Zt81pq",
        "token_type": "Bearer",
        "expires_in": 600
    }))
    .await;
    let before = Utc::now();
    let (run, c) = {
        let p = p.clone();
        in_thread(move || (run_refresh(&p), common::connection_show(p.svc(), "app"))).await
    };
    let after = Utc::now();
    assert_eq!(run.status, 0, "{}", run.all_output());
    assert_eq!(c["state"], "healthy", "{c}");
    assert_after(
        time(&c["refresh_token_expires_at"]),
        before,
        after,
        TimeDelta::days(30),
    );

    // The provider's own word wins over the declared lifetime.
    answer(json!({
        "access_token": "mock-access-token-Uy40mn",
        "refresh_token": "mock-refresh-token-Zt81pq",
        "token_type": "Bearer",
        "expires_in": 600,
        "refresh_token_expires_in": 3600
    }))
    .await;
    let before = Utc::now();
    let (run, c) = {
        let p = p.clone();
        in_thread(move || (run_refresh(&p), common::connection_show(p.svc(), "app"))).await
    };
    let after = Utc::now();
    assert_eq!(run.status, 0, "{}", run.all_output());
    assert_after(
        time(&c["refresh_token_expires_at"]),
        before,
        after,
        TimeDelta::hours(1),
    );
}
