//! `svc authorize` end to end: oidc-provider (tests/servers/oidc.js) on
//! 127.0.0.1 with OpenID Connect discovery, a person in headless Chromium
//! (tests/browser/consent.js) who logs in and approves or denies on the
//! provider's own pages, and svc's loopback redirect listener. Then the
//! stored refresh token is used by a run, and the provider's introspection
//! says whether the tokens are real. The failures store nothing.
//! `private_key_jwt` and the JWT-bearer grant run against oidc-provider and
//! tests/servers/jwt-bearer.js, which verify the assertions svc signs.

mod common;

use common::authorizing::Authorizing;
use common::{NodeServer, Project, Run};
use serde_json::{Value, json};
use std::sync::OnceLock;
use std::time::Duration;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

const CONFIDENTIAL: (&str, &str) = ("cli-confidential", "confidential-secret-5b1e07");
const PUBLIC: &str = "cli-public";
const DEVICE: (&str, &str) = ("cli-device", "device-secret-90c2d4");
const SHORT_DEVICE: (&str, &str) = ("cli-device-short", "short-device-secret-3e8f11");

/// One provider for every test of this binary: each test has clients of
/// its own kind, and every flow has its own state, code and tokens.
fn provider() -> &'static NodeServer {
    static PROVIDER: OnceLock<NodeServer> = OnceLock::new();
    PROVIDER.get_or_init(|| {
        NodeServer::start(
            "oidc",
            json!({
                "clients": [
                    {"client_id": CONFIDENTIAL.0, "client_secret": CONFIDENTIAL.1,
                     "token_endpoint_auth_method": "client_secret_basic",
                     "grant_types": ["authorization_code", "refresh_token"],
                     "redirect_uris": ["http://127.0.0.1/callback"],
                     "scope": "openid offline_access api:read"},
                    {"client_id": PUBLIC, "token_endpoint_auth_method": "none",
                     "grant_types": ["authorization_code", "refresh_token"],
                     "redirect_uris": ["http://127.0.0.1/callback"],
                     "scope": "openid offline_access api:read"},
                    {"client_id": DEVICE.0, "client_secret": DEVICE.1,
                     "token_endpoint_auth_method": "client_secret_post",
                     "grant_types": [DEVICE_GRANT, "refresh_token"],
                     "scope": "openid offline_access api:read"},
                    {"client_id": SHORT_DEVICE.0, "client_secret": SHORT_DEVICE.1,
                     "token_endpoint_auth_method": "client_secret_post",
                     "grant_types": [DEVICE_GRANT, "refresh_token"],
                     "scope": "openid offline_access api:read",
                     "device_code_ttl": 2},
                ],
                "device_poll_interval": 1,
                "device_slow_down": true,
            }),
        )
    })
}

/// A program with one `oauth_client app` found by discovery, a refresh
/// endpoint that uses it, and identities with and without the grants.
fn program(issuer: &str, client_auth: &str) -> String {
    format!(
        r#"
secret CLIENT_ID     {{ environment_specific }}
secret CLIENT_SECRET {{ environment_specific locked }}
secret REFRESH_TOKEN {{ environment_specific }}
secret ACCESS_TOKEN  {{ environment_specific }}

oauth_client app {{
  issuer      "{issuer}"
  client_id   secret.CLIENT_ID
  client_auth {client_auth}
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

role access_only {{
  grant update_secret ACCESS_TOKEN
}}

user ops {{ roles token_keeper }}
user intern {{ roles access_only }}
service_account scheduler {{ roles token_keeper }}

service api {{
  var token: string
  var new_refresh_token: string
  var expires_in: number

  action refresh {{
    update service_variables {{ token = null  new_refresh_token = null }}
    web_request {{
      auth client(app)
      form {{
        grant_type    = "refresh_token"
        refresh_token = secret.REFRESH_TOKEN
      }}
      result_mapping {{
        token             = $.access_token
        new_refresh_token = $.refresh_token
        expires_in        = $.expires_in
      }}
    }}
    if has_value(new_refresh_token) {{
      update_secret REFRESH_TOKEN = new_refresh_token
    }}
    if has_value(token) {{
      update_secret ACCESS_TOKEN {{
        value      = token
        expires_in = expires_in
      }}
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

/// A project with the program and the client's credentials in `dev`.
fn project(client_auth: &str, client: (&str, &str)) -> Project {
    let p = Project::new();
    p.write("app.svc", &program(&provider().url("issuer"), client_auth));
    p.set("CLIENT_ID", client.0);
    p.set("CLIENT_SECRET", client.1);
    p
}

fn introspect(token: &str) -> Value {
    let oidc = provider();
    let (status, verdict) = oidc.post_form(
        &oidc.url("introspection_endpoint"),
        &[("token", token)],
        Some(CONFIDENTIAL),
    );
    assert_eq!(status, 200, "{verdict}");
    verdict
}

fn assert_no_leak(output: &str, values: &[&str]) {
    for value in values {
        assert!(
            !value.is_empty() && !output.contains(value),
            "a secret value leaked:\n{output}"
        );
    }
}

/// The query parameter `name` of `url`.
fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[test]
fn code_flow_stores_both_tokens_in_one_update_and_a_run_refreshes_with_them() {
    let p = project("client_secret_basic(secret.CLIENT_SECRET)", CONFIDENTIAL);
    let mut authorizing = Authorizing::start(&p, &["--as", "ops"]);
    let event = authorizing.expect("authorize_url");
    let url = event["url"].as_str().unwrap();
    let redirect_uri = event["redirect_uri"].as_str().unwrap();
    assert!(
        url.starts_with(&provider().url("authorization_endpoint")),
        "{url}"
    );
    assert!(
        redirect_uri.starts_with("http://127.0.0.1:") && redirect_uri.ends_with("/callback"),
        "{event}"
    );
    assert_eq!(param(url, "redirect_uri").as_deref(), Some(redirect_uri));
    assert_eq!(param(url, "response_type").as_deref(), Some("code"));
    assert_eq!(param(url, "client_id").as_deref(), Some(CONFIDENTIAL.0));
    // PKCE S256 even for a confidential client; nonce with openid.
    assert_eq!(param(url, "code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(param(url, "code_challenge").unwrap().len(), 43, "{url}");
    assert!(param(url, "state").unwrap().len() >= 22, "{url}");
    assert!(param(url, "nonce").unwrap().len() >= 22, "{url}");
    assert_eq!(
        param(url, "scope").as_deref(),
        Some("openid offline_access api:read")
    );
    assert!(param(url, "code_verifier").is_none(), "{url}");

    let person = common::consent(url, "approve");
    assert_eq!(person["ok"], true, "{person}");
    assert_eq!(person["status"], 200, "{person}");
    assert!(
        person["text"]
            .as_str()
            .unwrap()
            .contains("You can close this tab"),
        "{person}"
    );
    let (status, events, run) = authorizing.finish();
    assert_eq!(status, 0, "{}", run.stderr);
    let stored = events.last().unwrap();
    assert_eq!(stored["event"], "stored", "{}", run.stdout);
    let names: Vec<&str> = stored["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["REFRESH_TOKEN", "ACCESS_TOKEN"], "{stored}");
    assert!(stored["secrets"][1]["expires_at"].is_string(), "{stored}");

    // One atomic update: both at the same version, written by `ops`.
    let document = p.document();
    let refresh = &document["secrets"]["REFRESH_TOKEN"];
    let access = &document["secrets"]["ACCESS_TOKEN"];
    assert_eq!(refresh["version"], stored["secrets"][0]["version"]);
    assert_eq!(access["version"], stored["secrets"][1]["version"]);
    assert_eq!(refresh["updated_at"], access["updated_at"], "{document}");
    let refresh_token = p.get("REFRESH_TOKEN");
    let access_token = p.get("ACCESS_TOKEN");
    let verdict = introspect(&refresh_token);
    assert_eq!(verdict["active"], true, "{verdict}");
    assert_eq!(verdict["sub"], "alice", "{verdict}");
    assert_eq!(introspect(&access_token)["active"], true);

    // Secret values appear nowhere: not the client secret, not a token,
    // not on the page the person saw.
    let values = [CONFIDENTIAL.1, &refresh_token, &access_token];
    assert_no_leak(&run.all_output(), &values);
    assert_no_leak(&person.to_string(), &values);

    // The refresh endpoint uses the stored refresh token through the same
    // client, and the provider takes the new access token.
    let refreshed = p
        .svc()
        .args([
            "run",
            "app.svc",
            "api.refresh",
            "--env",
            "dev",
            "--as",
            "scheduler",
        ])
        .run();
    assert_eq!(refreshed.status, 0, "{}", refreshed.stderr);
    let new_access = p.get("ACCESS_TOKEN");
    assert_ne!(new_access, access_token);
    let verdict = introspect(&new_access);
    assert_eq!(verdict["active"], true, "{verdict}");
    assert_eq!(verdict["client_id"], CONFIDENTIAL.0, "{verdict}");
    let refreshed_output = format!("{}{}", refreshed.all_output(), p.logs());
    assert_no_leak(
        &refreshed_output,
        &[CONFIDENTIAL.1, &refresh_token, &new_access],
    );
}

#[test]
fn device_flow_stores_the_tokens_once_the_person_approves() {
    let p = project("client_secret_post(secret.CLIENT_SECRET)", DEVICE);
    let mut authorizing = Authorizing::start(&p, &["--as", "ops", "--device"]);
    let event = authorizing.expect("device_code");
    let user_code = event["user_code"].as_str().unwrap();
    assert_eq!(
        event["verification_uri"],
        provider().url("verification_uri")
    );
    let complete = event["verification_uri_complete"].as_str().unwrap();
    assert!(complete.contains(&user_code.replace('-', "")) || complete.contains(user_code));
    assert!(event["expires_in"].as_u64().unwrap() > 0, "{event}");

    let person = common::device_consent(
        event["verification_uri"].as_str().unwrap(),
        user_code,
        "approve",
    );
    assert_eq!(person["outcome"], "device_approved", "{person}");
    let (status, events, run) = authorizing.finish();
    assert_eq!(status, 0, "{}", run.stderr);
    assert_eq!(events.last().unwrap()["event"], "stored", "{}", run.stdout);
    let refresh_token = p.get("REFRESH_TOKEN");
    assert_eq!(introspect(&refresh_token)["active"], true);
    assert_no_leak(&run.all_output(), &[DEVICE.1, &refresh_token]);
}

/// The store's bytes: a failed authorization must not write it at all.
fn store_bytes(p: &Project) -> Vec<u8> {
    std::fs::read(p.store()).unwrap()
}

/// A failed authorization: its status, the `error` event's code, and the
/// whole output.
fn failed(authorizing: Authorizing) -> (i32, String, Run) {
    let (status, events, run) = authorizing.finish();
    let error = events.last().expect("an error event");
    assert_eq!(error["event"], "error", "{}", run.stdout);
    (status, error["code"].as_str().unwrap().to_string(), run)
}

#[test]
fn a_denied_consent_stores_nothing() {
    let p = project("none", (PUBLIC, "unused"));
    let before = store_bytes(&p);
    let mut authorizing = Authorizing::start(&p, &["--as", "ops"]);
    let url = authorizing.expect("authorize_url")["url"]
        .as_str()
        .unwrap()
        .to_string();
    let person = common::consent(&url, "deny");
    assert_eq!(person["redirect"]["error"], "access_denied", "{person}");
    assert!(
        person["text"]
            .as_str()
            .unwrap()
            .contains("svc did not get the authorization"),
        "{person}"
    );
    let (status, code, run) = failed(authorizing);
    assert_eq!(status, 1, "{}", run.stderr);
    assert_eq!(code, "svc::authorize::access_denied");
    assert!(run.stderr.contains("nothing was stored"), "{}", run.stderr);
    assert_eq!(store_bytes(&p), before);
}

/// A GET with curl: the status and the page.
fn get(url: &str) -> (u16, String) {
    let output = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "--max-time",
            "10",
            url,
        ])
        .output()
        .expect("curl is installed");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let (page, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (status.parse().unwrap_or(0), page.to_string())
}

#[test]
fn a_forged_callback_is_turned_away_and_the_genuine_redirect_still_completes() {
    let p = project("client_secret_basic(secret.CLIENT_SECRET)", CONFIDENTIAL);
    let before = store_bytes(&p);
    let mut authorizing = Authorizing::start(&p, &["--as", "ops"]);
    let event = authorizing.expect("authorize_url");
    let url = event["url"].as_str().unwrap().to_string();
    let redirect_uri = event["redirect_uri"].as_str().unwrap();
    // Any local process can reach the listener: without a state, with
    // another one (and a code of its own), with markup to reflect.
    let forged = [
        redirect_uri.to_string(),
        common::authorize_url(
            redirect_uri,
            &[("code", "forged-code-c41e"), ("state", "not-the-state")],
        ),
        common::authorize_url(
            redirect_uri,
            &[
                ("error", "access_denied"),
                ("error_description", "<script>alert(1)</script>"),
                ("state", "<b>forged</b>"),
            ],
        ),
    ];
    for request in &forged {
        let (status, page) = get(request);
        assert_eq!(status, 400, "{request}: {page}");
        assert!(page.contains("keeps waiting"), "{page}");
        for reflected in ["forged", "not-the-state", "<script>", "<b>"] {
            assert!(
                !page.contains(reflected),
                "the page reflects {reflected}: {page}"
            );
        }
    }
    assert_eq!(store_bytes(&p), before);

    // The person's own redirect still finds svc listening.
    let person = common::consent(&url, "approve");
    assert_eq!(person["ok"], true, "{person}");
    assert!(
        person["text"]
            .as_str()
            .unwrap()
            .contains("You can close this tab"),
        "{person}"
    );
    let (status, events, run) = authorizing.finish();
    assert_eq!(status, 0, "{}", run.stderr);
    assert_eq!(events.last().unwrap()["event"], "stored", "{}", run.stdout);
    assert_eq!(introspect(&p.get("REFRESH_TOKEN"))["active"], true);
    assert_no_leak(
        &run.all_output(),
        &[CONFIDENTIAL.1, &p.get("REFRESH_TOKEN")],
    );
}

#[test]
fn idle_connections_neither_block_the_listener_nor_stay_open() {
    use std::io::Read;
    let p = project("client_secret_basic(secret.CLIENT_SECRET)", CONFIDENTIAL);
    let mut authorizing = Authorizing::start(&p, &["--as", "ops"]);
    let event = authorizing.expect("authorize_url");
    let url = event["url"].as_str().unwrap().to_string();
    let redirect_uri = url::Url::parse(event["redirect_uri"].as_str().unwrap()).unwrap();
    let address = format!(
        "{}:{}",
        redirect_uri.host_str().unwrap(),
        redirect_uri.port().unwrap()
    );
    // A local process opens many connections and sends nothing on them.
    let idle: Vec<std::net::TcpStream> = (0..40)
        .map(|_| std::net::TcpStream::connect(&address).unwrap())
        .collect();
    // A new connection is answered at once all the same.
    let (status, page) = get(&format!("http://{address}/"));
    assert_eq!(status, 404, "{page}");
    // And svc closes the idle ones soon: each read ends, none times out.
    let started = std::time::Instant::now();
    for mut stream in idle {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut byte = [0u8; 1];
        match stream.read(&mut byte) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!(
                "an idle connection is still open after {:?}: {other:?}",
                started.elapsed()
            ),
        }
    }

    let person = common::consent(&url, "approve");
    assert_eq!(person["ok"], true, "{person}");
    let (status, events, run) = authorizing.finish();
    assert_eq!(status, 0, "{}", run.stderr);
    assert_eq!(events.last().unwrap()["event"], "stored", "{}", run.stdout);
}

#[test]
fn a_replayed_code_is_refused_by_the_provider_and_stores_nothing() {
    let oidc = provider();
    // A code the test gets and spends itself, as an eavesdropper on an
    // earlier authorization would have.
    let listener = common::LoopbackRedirect::start("/callback");
    let pkce = common::Pkce::new();
    let url = common::authorize_url(
        &oidc.url("authorization_endpoint"),
        &[
            ("response_type", "code"),
            ("client_id", CONFIDENTIAL.0),
            ("redirect_uri", &listener.redirect_uri()),
            ("scope", "openid offline_access api:read"),
            ("prompt", "consent"),
            ("state", "earlier"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    assert_eq!(common::consent(&url, "approve")["ok"], true);
    let code = listener.wait(10).query["code"].clone();
    let (status, _) = oidc.post_form(
        &oidc.url("token_endpoint"),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &listener.redirect_uri()),
            ("code_verifier", &pkce.verifier),
        ],
        Some(CONFIDENTIAL),
    );
    assert_eq!(status, 200);

    // Replayed into a waiting svc authorize, with its own state.
    let p = project("client_secret_basic(secret.CLIENT_SECRET)", CONFIDENTIAL);
    let before = store_bytes(&p);
    let mut authorizing = Authorizing::start(&p, &["--as", "ops"]);
    let event = authorizing.expect("authorize_url");
    let state = param(event["url"].as_str().unwrap(), "state").unwrap();
    let callback = common::authorize_url(
        event["redirect_uri"].as_str().unwrap(),
        &[
            ("code", &code),
            ("state", &state),
            ("iss", &oidc.url("issuer")),
        ],
    );
    let page = std::process::Command::new("curl")
        .args(["-s", &callback])
        .output()
        .unwrap();
    let page = String::from_utf8_lossy(&page.stdout).to_string();
    assert!(page.contains("You can close this tab"), "{page}");
    assert!(!page.contains(&code), "the page shows the code: {page}");
    let (status, code_name, run) = failed(authorizing);
    assert_eq!(status, 1, "{}", run.stderr);
    assert_eq!(
        code_name, "svc::authorize::exchange_failed",
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("invalid_grant"), "{}", run.stderr);
    assert_eq!(store_bytes(&p), before);
    assert_no_leak(&run.all_output(), &[CONFIDENTIAL.1, &code]);
}

#[test]
fn an_expired_device_code_or_nobody_in_time_stores_nothing() {
    let p = project("client_secret_post(secret.CLIENT_SECRET)", SHORT_DEVICE);
    let before = store_bytes(&p);
    let mut authorizing = Authorizing::start(&p, &["--as", "ops", "--device"]);
    assert_eq!(authorizing.expect("device_code")["expires_in"], 2);
    let (status, code, run) = failed(authorizing);
    assert_eq!(status, 1, "{}", run.stderr);
    assert_eq!(code, "svc::authorize::expired_token", "{}", run.stderr);
    assert!(run.stderr.contains("--device"), "{}", run.stderr);
    assert_eq!(store_bytes(&p), before);

    // The code flow, with nobody at the browser, and a request with
    // another state: turned away, and counted in the error.
    let p = project("client_secret_basic(secret.CLIENT_SECRET)", CONFIDENTIAL);
    let before = store_bytes(&p);
    let mut authorizing = Authorizing::start(&p, &["--as", "ops", "--timeout", "3s"]);
    let event = authorizing.expect("authorize_url");
    let forged = common::authorize_url(
        event["redirect_uri"].as_str().unwrap(),
        &[("code", "forged-code-5d0b"), ("state", "stale")],
    );
    assert_eq!(get(&forged).0, 400);
    let (status, code, run) = failed(authorizing);
    assert_eq!(status, 1, "{}", run.stderr);
    assert_eq!(code, "svc::authorize::timeout", "{}", run.stderr);
    assert!(
        run.stdout
            .contains("the listener turned away 1 request without the `state` svc sent"),
        "{}",
        run.stdout
    );
    assert_eq!(store_bytes(&p), before);
}

/// A device authorization server played by wiremock on 127.0.0.1, for
/// the answers oidc-provider never gives: `/device` and `/token`.
struct DeviceProvider {
    runtime: tokio::runtime::Runtime,
    server: wiremock::MockServer,
}

impl DeviceProvider {
    fn start() -> DeviceProvider {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let server = runtime.block_on(wiremock::MockServer::start());
        DeviceProvider { runtime, server }
    }

    fn uri(&self) -> String {
        self.server.uri()
    }

    /// From now on `/device` answers `device`, and `/token` `status` with `token`.
    fn answer(&self, device: Value, status: u16, token: Value) {
        use wiremock::matchers::{method, path};
        use wiremock::{Mock, ResponseTemplate};
        self.runtime.block_on(async {
            self.server.reset().await;
            Mock::given(method("POST"))
                .and(path("/device"))
                .respond_with(ResponseTemplate::new(200).set_body_json(device))
                .mount(&self.server)
                .await;
            Mock::given(method("POST"))
                .and(path("/token"))
                .respond_with(ResponseTemplate::new(status).set_body_json(token))
                .mount(&self.server)
                .await;
        });
    }

    /// A project whose `oauth_client app` uses this server for the device flow.
    fn project(&self) -> Project {
        let p = Project::new();
        let text = program(
            "https://unused.invalid",
            "client_secret_post(secret.CLIENT_SECRET)",
        )
        .replace(
            "issuer      \"https://unused.invalid\"",
            &format!(
                "device_authorization_url \"{0}/device\"\n  token_url \"{0}/token\"",
                self.uri()
            ),
        );
        p.write("app.svc", &text);
        p.set("CLIENT_ID", DEVICE.0);
        p.set("CLIENT_SECRET", DEVICE.1);
        p
    }
}

/// `svc authorize app --device` in `p`, to its end.
fn authorize_device(p: &Project, extra: &[&str]) -> Run {
    p.svc()
        .args([
            "authorize",
            "app.svc",
            "app",
            "--env",
            "dev",
            "--as",
            "ops",
            "--device",
            "--no-browser",
        ])
        .args(extra)
        .run()
}

#[test]
fn hostile_device_durations_are_clamped_and_checked_never_a_panic() {
    let provider = DeviceProvider::start();
    let p = provider.project();
    let device = |expires_in: Value, interval: Value| {
        json!({"device_code": "device-code-77ad", "user_code": "WDJB-MJHT",
               "verification_uri": format!("{}/verify", provider.uri()),
               "expires_in": expires_in, "interval": interval})
    };
    let tokens = json!({"access_token": "access-hostile-1f9c", "refresh_token": "refresh-hostile-8b02",
                        "token_type": "Bearer", "expires_in": u64::MAX, "refresh_expires_in": -1});

    // 2^64 - 1 seconds to live and between polls: svc waits no longer
    // than `--timeout`, and says so.
    provider.answer(
        device(json!(u64::MAX), json!(u64::MAX)),
        200,
        tokens.clone(),
    );
    let run = authorize_device(&p, &["--timeout", "2s"]);
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("svc::authorize::timeout"),
        "{}",
        run.stderr
    );

    // A code that lives "forever", polled at once (interval 0): the
    // tokens, whose own lifetimes are nonsense too, are stored.
    provider.answer(device(json!(u64::MAX), json!(0)), 200, tokens.clone());
    let run = authorize_device(&p, &["--timeout", "30s", "--output", "json"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let events: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let expires_in = events[0]["expires_in"].as_u64().unwrap();
    assert!((1..=86_400).contains(&expires_in), "{}", events[0]);
    assert_eq!(events.last().unwrap()["event"], "stored", "{}", run.stdout);
    assert_eq!(p.get("REFRESH_TOKEN"), "refresh-hostile-8b02");
    assert_no_leak(
        &run.all_output(),
        &["device-code-77ad", "refresh-hostile-8b02"],
    );

    // Not a number of seconds at all: a clear error with a stable code.
    for (expires_in, interval, field) in [
        (json!("soon"), json!(5), "expires_in"),
        (json!(-1), json!(5), "expires_in"),
        (json!(600), json!(-5), "interval"),
        (json!(600), json!([1]), "interval"),
    ] {
        provider.answer(device(expires_in, interval), 200, tokens.clone());
        let run = authorize_device(&p, &["--timeout", "5s"]);
        assert_eq!(run.status, 1, "{field}: {}", run.stderr);
        assert!(
            run.stderr.contains("svc::oauth::bad_response")
                && run.stderr.contains(&format!("`{field}`")),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn provider_text_reaches_the_terminal_without_control_characters() {
    let provider = DeviceProvider::start();
    let p = provider.project();
    // Clear the screen, retitle the window, a C1 CSI, a right-to-left override.
    let hostile = "\u{1b}[2J\u{1b}]0;owned\u{7}\u{9b}31m\u{202e}";
    provider.answer(
        json!({"device_code": "device-code-0c3e",
               "user_code": format!("{hostile}WDJB-MJHT{hostile}"),
               "verification_uri": format!("{}/verify{hostile}", provider.uri()),
               "verification_uri_complete": format!("{}/verify?c=WDJB{hostile}", provider.uri()),
               "expires_in": 600, "interval": 1}),
        400,
        json!({"error": "access_denied", "error_description": format!("refused {hostile}here")}),
    );
    let unsafe_char = |c: &char| {
        (c.is_control() && *c != '\n')
            || ('\u{202a}'..='\u{202e}').contains(c)
            || ('\u{2066}'..='\u{2069}').contains(c)
    };
    for output in ["human", "json"] {
        let run = authorize_device(&p, &["--timeout", "30s", "--output", output]);
        assert_eq!(run.status, 1, "{}", run.stderr);
        assert!(
            run.stderr.contains("svc::authorize::access_denied"),
            "{}",
            run.stderr
        );
        let all = run.all_output();
        assert!(
            all.contains("WDJB-MJHT") && all.contains("refused"),
            "{all}"
        );
        let found: Vec<char> = all.chars().filter(unsafe_char).collect();
        assert!(found.is_empty(), "{output}: {found:?} in\n{all}");
        if output == "json" {
            // Escaped in JSON is not enough: the values themselves are clean.
            for line in run.stdout.lines() {
                let event: Value = serde_json::from_str(line).unwrap();
                for (key, value) in event.as_object().unwrap() {
                    let text = value.as_str().unwrap_or_default();
                    let found: Vec<char> = text.chars().filter(unsafe_char).collect();
                    assert!(found.is_empty(), "{key}: {found:?} in {line}");
                }
            }
        }
    }
}

#[test]
fn the_identity_must_hold_update_secret_for_every_stored_secret() {
    // Refused before anything is sent: no provider needed.
    let p = Project::new();
    p.write(
        "app.svc",
        &program(
            "https://idp.invalid",
            "client_secret_basic(secret.CLIENT_SECRET)",
        ),
    );
    let run = p
        .svc()
        .args([
            "authorize",
            "app.svc",
            "app",
            "--env",
            "dev",
            "--as",
            "intern",
        ])
        .run();
    assert_eq!(run.status, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("svc::authorize::permission_denied"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("grant `update_secret REFRESH_TOKEN`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("may be run by: ops"), "{}", run.stderr);

    let run = p
        .svc()
        .args(["authorize", "app.svc", "ap", "--env", "dev", "--as", "ops"])
        .run();
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("svc::authorize::unknown_client"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("app"), "{}", run.stderr);
}

// ---- Signed client assertions and the JWT-bearer grant ------------------------

/// `svc run` of `api.token` in a program whose request authenticates with
/// `auth`; the access token lands in `TOKEN`.
fn token_program(token_url: &str, auth: &str, form: &str) -> String {
    format!(
        r#"
secret SIGNING_KEY {{ environment_specific locked }}
secret TOKEN       {{ environment_specific }}

role keeper {{
  grant run api.token
  grant update_secret TOKEN
}}
service_account robot {{ roles keeper }}

service api {{
  var token: string

  action fetch {{
    web_request {{
      url "{token_url}"
      auth {auth}
      form {{ {form} }}
      result_mapping {{ token = $.access_token }}
    }}
    if has_value(token) {{
      update_secret TOKEN = token
    }}
  }}

  endpoint token {{
    methods POST
    process fetch
  }}
}}
"#
    )
}

fn run_token(p: &Project) -> Run {
    p.svc()
        .args([
            "run",
            "api.svc",
            "api.token",
            "--env",
            "dev",
            "--as",
            "robot",
        ])
        .run()
}

#[test]
fn private_key_jwt_client_credentials_with_rsa_ec_and_ed25519_keys() {
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<_> = ["RS256", "ES256", "EdDSA"]
        .into_iter()
        .map(|alg| common::openssl_key(dir.path(), alg, alg))
        .collect();
    let clients: Vec<Value> = keys
        .iter()
        .map(|key| {
            json!({"client_id": format!("jwt-{}", key.alg), "token_endpoint_auth_method": "private_key_jwt",
                   "public_keys": [{"pem": key.public_pem, "kid": format!("kid-{}", key.alg)}],
                   "scope": "api:read"})
        })
        .collect();
    let oidc = NodeServer::start("oidc", json!({"clients": clients}));
    let token_endpoint = oidc.url("token_endpoint");
    for key in &keys {
        let pem = std::fs::read_to_string(&key.private).unwrap();
        let p = Project::new();
        p.set("SIGNING_KEY", &pem);
        let auth = format!(
            r#"private_key_jwt(client_id = "jwt-{alg}", key = secret.SIGNING_KEY, alg = "{alg}", kid = "kid-{alg}")"#,
            alg = key.alg
        );
        p.write(
            "api.svc",
            &token_program(
                &token_endpoint,
                &auth,
                r#"grant_type = "client_credentials"  scope = "api:read""#,
            ),
        );
        // Twice: every run signs a new assertion (a new jti), which the
        // provider accepts only once.
        let mut tokens = Vec::new();
        for _ in 0..2 {
            let run = run_token(&p);
            assert_eq!(run.status, 0, "{}: {}", key.alg, run.stderr);
            let stats = oidc.get_json(&oidc.url("stats_endpoint"));
            assert_eq!(
                stats["last_token_request"]["auth_method"], "private_key_jwt",
                "{stats}"
            );
            assert_eq!(
                stats["last_token_request"]["client_id"],
                format!("jwt-{}", key.alg),
                "{stats}"
            );
            let token = p.get("TOKEN");
            assert_no_leak(&run.all_output(), &[pem.trim(), &token]);
            tokens.push(token);
        }
        assert_ne!(tokens[0], tokens[1]);
    }

    // The same through an oauth_client found by discovery.
    let key = &keys[1];
    let p = Project::new();
    p.set(
        "SIGNING_KEY",
        &std::fs::read_to_string(&key.private).unwrap(),
    );
    p.set("CLIENT_ID", "jwt-ES256");
    let text = token_program("", "client(signed)", r#"grant_type = "client_credentials""#)
        .replace("      url \"\"\n", "")
        .replacen(
            "secret TOKEN ",
            &format!(
                "secret CLIENT_ID {{ environment_specific }}\n\
                 oauth_client signed {{\n  issuer \"{}\"\n  client_id secret.CLIENT_ID\n  \
                 client_auth private_key_jwt(secret.SIGNING_KEY, alg = \"ES256\", kid = \"kid-ES256\")\n}}\n\
                 secret TOKEN ",
                oidc.url("issuer")
            ),
            1,
        );
    p.write("api.svc", &text);
    let run = run_token(&p);
    assert_eq!(run.status, 0, "{}\n{text}", run.stderr);
    assert!(!p.get("TOKEN").is_empty());

    // A key the provider does not know: refused, and the run says so.
    let other = common::openssl_key(dir.path(), "other", "ES256");
    p.set(
        "SIGNING_KEY",
        &std::fs::read_to_string(&other.private).unwrap(),
    );
    let before = p.get("TOKEN");
    let run = run_token(&p);
    assert_ne!(run.status, 0, "{}", run.stderr);
    assert!(run.stderr.contains("invalid_client"), "{}", run.stderr);
    assert_eq!(p.get("TOKEN"), before);
}

#[test]
fn jwt_bearer_grant_with_a_google_style_service_account_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = common::openssl_key(dir.path(), "robot", "RS256");
    let server = NodeServer::start(
        "jwt-bearer",
        json!({"issuers": [{"iss": "robot@svc-tests.example", "sub": "alice@svc-tests.example",
                            "key": key.public_pem}]}),
    );
    let token_endpoint = server.url("token_endpoint");
    let pem = std::fs::read_to_string(&key.private).unwrap();
    let service_account = json!({
        "type": "service_account",
        "project_id": "svc-tests",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "robot@svc-tests.example",
        "client_id": "1234567890",
        "token_uri": token_endpoint,
    });
    let p = Project::new();
    p.set("SIGNING_KEY", &service_account.to_string());
    p.write(
        "api.svc",
        &token_program(
            &token_endpoint,
            r#"jwt_bearer(key = secret.SIGNING_KEY, subject = "alice@svc-tests.example", scope = "https://api.example/read")"#,
            "",
        ),
    );
    for round in 1..=2 {
        let run = run_token(&p);
        assert_eq!(run.status, 0, "{}", run.stderr);
        let token = p.get("TOKEN");
        let (_, verdict) = server.post_form(
            &server.url("introspection_endpoint"),
            &[("token", &token)],
            None,
        );
        assert_eq!(verdict["active"], true, "{verdict}");
        assert_eq!(verdict["sub"], "alice@svc-tests.example", "{verdict}");
        assert_eq!(verdict["scope"], "https://api.example/read", "{verdict}");
        let stats = server.get_json(&server.url("stats_endpoint"));
        assert_eq!(stats["jwt_bearer_grants"], round, "{stats}");
        assert_eq!(stats["last_assertion"]["header"]["kid"], "k1", "{stats}");
        assert_eq!(stats["last_assertion"]["header"]["alg"], "RS256", "{stats}");
        assert_no_leak(&run.all_output(), &[pem.trim(), "PRIVATE KEY", &token]);
    }
    // No replay was needed: each run signed a fresh assertion.
    let stats = server.get_json(&server.url("stats_endpoint"));
    assert_eq!(stats["replays"], 0, "{stats}");

    // The server verifies: a subject it does not allow is refused, and the
    // stored token stays.
    let before = p.get("TOKEN");
    p.write(
        "api.svc",
        &token_program(
            &token_endpoint,
            r#"jwt_bearer(key = secret.SIGNING_KEY, subject = "mallory@svc-tests.example")"#,
            "",
        ),
    );
    let run = run_token(&p);
    assert_ne!(run.status, 0, "{}", run.stderr);
    assert!(run.stderr.contains("invalid_grant"), "{}", run.stderr);
    assert_eq!(p.get("TOKEN"), before);
}

#[test]
fn readme_first_token_lines_name_what_the_example_declares() {
    // The lines of README's "first token" section, run in a project whose
    // store has no values yet: each gets past the names and the grants and
    // stops at the first missing value, before anything is sent.
    let readme = std::fs::read_to_string(common::root().join("README.md")).unwrap();
    let section = readme
        .split("## The first token")
        .nth(1)
        .and_then(|s| s.split("```").nth(1))
        .expect("README has a first-token section with a code block");
    let authorize = section
        .lines()
        .find(|l| l.starts_with("svc authorize "))
        .expect("an svc authorize line");
    let p = Project::new();
    let example = common::root().join("examples/hubspot_refresh.svc");
    let args: Vec<String> = authorize
        .split_whitespace()
        .skip(1)
        .map(|word| {
            if word.ends_with(".svc") {
                example.display().to_string()
            } else {
                word.to_string()
            }
        })
        .collect();
    let run = p
        .svc()
        .args(&args)
        .args(["--secrets-dir", "secrets", "--no-browser"])
        .run();
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("svc::oauth::missing_value")
            && run.stderr.contains("HUBSPOT_CLIENT_ID"),
        "{}",
        run.stderr
    );
    for line in section.lines().filter(|l| l.starts_with("svc ")) {
        for name in line
            .split_whitespace()
            .filter(|w| w.chars().all(|c| c.is_ascii_uppercase() || c == '_') && w.len() > 3)
        {
            let run = p
                .svc()
                .args([
                    "secret",
                    "set",
                    name,
                    "--env",
                    "dev",
                    "--secrets-dir",
                    "secrets",
                ])
                .stdin(format!("v-{name}-91f3"))
                .run();
            assert_eq!(run.status, 0, "{name}: {}", run.stderr);
        }
    }
    let run = p
        .svc()
        .args(&args)
        .args([
            "--secrets-dir",
            "secrets",
            "--no-browser",
            "--timeout",
            "1s",
        ])
        .run();
    // With the values set, it goes as far as the person's consent.
    assert!(
        run.stdout.contains("app.hubspot.com/oauth/authorize"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("svc::authorize::timeout"),
        "{}",
        run.stderr
    );
    // The client id is in the URL by design; the client secret is not.
    assert_no_leak(&run.all_output(), &["v-HUBSPOT_CLIENT_SECRET-91f3"]);
}
