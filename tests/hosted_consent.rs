//! Hosted consent: `svc serve --public-url` hands an app a single-use link
//! for one customer account; the customer's browser (headless Chromium,
//! tests/browser/consent.js) opens it, logs in and consents on a real
//! oidc-provider on 127.0.0.1, and comes back through svc's callback to the
//! app's `return_to` (a listener of this test). Each account keeps and
//! refreshes its own tokens; every refusal stores nothing; no token, link,
//! state or verifier is in any output.

mod common;

use std::sync::{Arc, Mutex, OnceLock};

use common::{Answer, NodeServer, Project, Served};
use serde_json::{Value, json};

const CLIENT: (&str, &str) = ("hosted-app", "hosted-app-secret-5b81e2");

/// One oidc-provider for the binary. Its client's redirect URI is http on
/// loopback, so any port of 127.0.0.1 is accepted: every svc serve of the
/// tests, wherever it listens.
fn provider() -> &'static NodeServer {
    static PROVIDER: OnceLock<NodeServer> = OnceLock::new();
    PROVIDER.get_or_init(|| {
        NodeServer::start(
            "oidc",
            json!({
                "clients": [{
                    "client_id": CLIENT.0, "client_secret": CLIENT.1,
                    "token_endpoint_auth_method": "client_secret_post",
                    "grant_types": ["authorization_code", "refresh_token"],
                    "redirect_uris": ["http://127.0.0.1/connect/callback"],
                    "scope": "openid offline_access api:read",
                    "rotate_refresh_token": true,
                }],
            }),
        )
    })
}

fn program(issuer: &str, return_to: &str) -> String {
    format!(
        r#"
secret CLIENT_ID     {{ environment_specific }}
secret CLIENT_SECRET {{ environment_specific locked }}
secret ACCOUNT_REFRESH_TOKEN {{ per_account }}
secret ACCOUNT_ACCESS_TOKEN  {{ per_account }}

oauth_client app {{
  issuer      "{issuer}"
  client_id   secret.CLIENT_ID
  client_auth client_secret_post(secret.CLIENT_SECRET)
  scopes      "openid offline_access api:read"
  per_account
  return_to   "{return_to}"
  stores {{
    refresh_token = ACCOUNT_REFRESH_TOKEN
    access_token  = ACCOUNT_ACCESS_TOKEN
  }}
}}

role token_keeper {{
  grant run api.refresh
  grant update_secret ACCOUNT_REFRESH_TOKEN
  grant update_secret ACCOUNT_ACCESS_TOKEN
  grant read_secret ACCOUNT_ACCESS_TOKEN
}}
role connector {{ grant connect app }}
role watcher   {{ grant read_status app }}
user ops {{ roles token_keeper }}
service_account portal {{ roles connector }}
service_account dashboard {{ roles watcher }}

service api {{
  var token: string
  var new_refresh_token: string
  var expires_in: number

  action refresh {{
{refresh}  }}

  endpoint refresh {{
    methods POST
    log enabled
    process refresh
  }}
}}
"#,
        refresh =
            common::authorizing::refresh_body("ACCOUNT_REFRESH_TOKEN", "ACCOUNT_ACCESS_TOKEN")
    )
}

/// The app's page the browser comes back to: answers every request, and
/// keeps the request targets.
struct Landing {
    port: u16,
    hits: Arc<Mutex<Vec<String>>>,
}

impl Landing {
    fn start() -> Landing {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let kept = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let kept = kept.clone();
                // A thread a connection: a browser may open one and send nothing.
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(30)));
                    let Ok(request) = std::panic::catch_unwind(|| common::read_request(&stream))
                    else {
                        return;
                    };
                    kept.lock().unwrap().push(request.target);
                    use std::io::Write;
                    let body = "<!doctype html><title>Integrations</title><p>Back in the app.</p>";
                    let _ = write!(
                        &stream,
                        "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        Landing { port, hits }
    }

    /// The `return_to` the client declares.
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}/settings/integrations", self.port)
    }
}

/// A project with the program, the client's values, and `svc serve` with
/// a public URL (its own address, picked before it starts).
struct Hosted {
    p: Project,
    served: Served,
    landing: Landing,
    portal: String,
}

impl Hosted {
    fn start() -> Hosted {
        let landing = Landing::start();
        let p = Project::new();
        p.write(
            "app.svc",
            &program(&provider().url("issuer"), &landing.base()),
        );
        p.set("CLIENT_ID", CLIENT.0);
        p.set("CLIENT_SECRET", CLIENT.1);
        let check = p.svc().args(["check", "app.svc"]).run();
        assert_eq!(check.status, 0, "{}", check.all_output());
        let portal = p.key("portal", &["--program", "app.svc"]);
        let port = common::free_port();
        let public = format!("http://127.0.0.1:{port}");
        let served = p.serve_at(
            &format!("127.0.0.1:{port}"),
            &["app.svc", "--env", "dev", "--public-url", &public],
        );
        Hosted {
            p,
            served,
            landing,
            portal,
        }
    }

    /// `POST /api/connect/sessions` with a key.
    fn create_as(&self, key: &str, body: Value) -> Answer {
        self.served.call(
            "POST",
            "/api/connect/sessions",
            Some(key),
            Some(&body.to_string()),
        )
    }

    /// A session made by the portal: its link.
    fn link(&self, body: Value) -> String {
        let answer = self.create_as(&self.portal, body);
        assert_eq!(answer.status, 201, "{}", answer.body);
        let created = answer.json();
        assert!(created["expires_at"].as_str().unwrap().ends_with('Z'));
        created["url"].as_str().unwrap().to_string()
    }

    /// The path of a link on this server.
    fn path<'a>(&self, link: &'a str) -> &'a str {
        link.strip_prefix(&self.served.base)
            .unwrap_or_else(|| panic!("{link} is not on {}", self.served.base))
    }

    fn svc(&self, args: &[&str]) -> common::Run {
        self.p.svc().args(args.iter().copied()).run()
    }

    /// Every connection, as `svc connection list --json` shows them.
    fn connections(&self) -> Vec<Value> {
        let run = self.svc(&[
            "connection",
            "list",
            "--program",
            "app.svc",
            "--env",
            "dev",
            "--json",
        ]);
        assert_eq!(run.status, 0, "{}", run.all_output());
        serde_json::from_str::<Value>(&run.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    /// A per-account secret's value for one account.
    fn value(&self, name: &str, id: &str) -> String {
        let run = self.svc(&[
            "secret",
            "get",
            name,
            "--connection",
            id,
            "--program",
            "app.svc",
            "--env",
            "dev",
        ]);
        assert_eq!(run.status, 0, "{}", run.all_output());
        run.stdout.trim().to_string()
    }

    fn audit(&self) -> String {
        std::fs::read_to_string(self.p.path().join("logs/dev/audit.jsonl")).unwrap_or_default()
    }

    fn sessions_file(&self) -> std::path::PathBuf {
        self.p.path().join("state/dev/connect_sessions.json")
    }

    /// Sets when the session of `id` expires, as another replica's clock
    /// would find it.
    fn expire(&self, id: &str, at: chrono::DateTime<chrono::Utc>) {
        let path = self.sessions_file();
        let mut content: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let mut found = false;
        for session in content["sessions"].as_array_mut().unwrap() {
            if session["connection_id"] == id {
                session["expires_at"] = json!(at.to_rfc3339());
                found = true;
            }
        }
        assert!(found, "no session for {id}");
        std::fs::write(&path, content.to_string()).unwrap();
    }

    /// Whether anything is stored for an account: its state, its values.
    fn assert_nothing_stored(&self, id: &str) {
        assert!(
            !self.connections().iter().any(|c| c["connection_id"] == id),
            "{id} was recorded"
        );
        let document = self.p.document();
        assert!(
            document["accounts"]["app"][id].is_null(),
            "{id} has values: {}",
            document["accounts"]
        );
    }
}

/// A person opens `url` in a browser, logs in as alice and `action`s.
fn person(url: &str, action: &str) -> Value {
    let result = common::browser_consent(json!({
        "url": url,
        "provider": provider().url("issuer"),
        "login": "alice",
        "action": action,
    }));
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["outcome"], "returned", "{result}");
    result
}

/// The query of the URL a browser landed on.
fn landed(result: &Value) -> std::collections::BTreeMap<String, String> {
    let url = url::Url::parse(result["final_url"].as_str().unwrap()).unwrap();
    url.query_pairs().into_owned().collect()
}

/// A response header's value (curl's `-D` dump, lower-cased names).
fn header(answer: &Answer, name: &str) -> Option<String> {
    answer.headers.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name)
            .then(|| value.trim().to_string())
    })
}

fn assert_no_leak(text: &str, values: &[String]) {
    for value in values {
        assert!(value.len() >= 8, "not a value to look for: {value:?}");
        assert!(!text.contains(value.as_str()), "`{value}` leaked:\n{text}");
    }
}

#[test]
fn accounts_connect_in_a_browser_and_each_refreshes_its_own_tokens() {
    let h = Hosted::start();
    // What the browser saw, and what the server and the CLI said.
    let mut outputs = String::new();
    let mut server_outputs = String::new();
    let mut links = Vec::new();

    // The first account: tags, and a return_to with a query of its own.
    let link = h.link(json!({
        "client": "app", "connection_id": "acme-1", "tags": {"plan": "pro"},
        "return_to": format!("{}/crm?tab=sync", h.landing.base()),
    }));
    assert!(link.starts_with(&format!("{}/connect/", h.served.base)));
    let result = person(&link, "approve");
    outputs += &result.to_string();
    links.push(link);
    let query = landed(&result);
    assert!(
        result["final_url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/crm?", h.landing.base())),
        "{result}"
    );
    assert_eq!(query["status"], "connected", "{result}");
    assert_eq!(query["connection_id"], "acme-1");
    assert_eq!(query["tab"], "sync", "the app's own query is kept");
    let hits = h.landing.hits.lock().unwrap().clone();
    assert!(
        hits.iter().any(|target| target
            == "/settings/integrations/crm?tab=sync&connection_id=acme-1&status=connected"),
        "{hits:?}"
    );

    // Two more; the last one without a return_to ends on svc's own page.
    let link = h.link(json!({
        "client": "app", "connection_id": "beta@2", "tags": {"team": "blue"},
        "return_to": h.landing.base(),
    }));
    let result = person(&link, "approve");
    outputs += &result.to_string();
    links.push(link);
    assert_eq!(landed(&result)["status"], "connected", "{result}");
    let link = h.link(json!({"client": "app", "connection_id": "gamma:3"}));
    let result = person(&link, "approve");
    outputs += &result.to_string();
    assert_eq!(result["status"], 200, "{result}");
    assert!(
        result["final_url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/connect/callback?", h.served.base)),
        "{result}"
    );
    assert!(
        result["text"]
            .as_str()
            .unwrap()
            .contains("The account `gamma:3` is connected"),
        "{result}"
    );
    links.push(link);

    // Each is healthy, with its tags.
    let listed = h.connections();
    let ids: Vec<&str> = listed
        .iter()
        .map(|c| c["connection_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["acme-1", "beta@2", "gamma:3"], "{listed:?}");
    for connection in &listed {
        assert_eq!(connection["state"], "healthy", "{connection}");
    }
    assert_eq!(listed[0]["tags"], json!({"plan": "pro"}));
    assert_eq!(listed[1]["tags"], json!({"team": "blue"}));
    assert!(
        listed[2]["tags"].as_object().is_none_or(|t| t.is_empty()),
        "{}",
        listed[2]
    );

    // Each account reads its own tokens.
    let ids = ["acme-1", "beta@2", "gamma:3"];
    let refresh: Vec<String> = ids
        .iter()
        .map(|id| h.value("ACCOUNT_REFRESH_TOKEN", id))
        .collect();
    let access: Vec<String> = ids
        .iter()
        .map(|id| h.value("ACCOUNT_ACCESS_TOKEN", id))
        .collect();
    for tokens in [&refresh, &access] {
        let distinct: std::collections::BTreeSet<&String> = tokens.iter().collect();
        assert_eq!(distinct.len(), 3, "shared tokens");
    }

    // Its refresh token refreshes, for that account only.
    let run = h.svc(&[
        "run",
        "app.svc",
        "api.refresh",
        "--env",
        "dev",
        "--as",
        "ops",
        "--connection",
        "beta@2",
    ]);
    assert_eq!(run.status, 0, "{}", run.all_output());
    server_outputs += &run.all_output();
    let rotated = h.value("ACCOUNT_REFRESH_TOKEN", "beta@2");
    assert_ne!(rotated, refresh[1]);
    assert_eq!(h.value("ACCOUNT_REFRESH_TOKEN", "acme-1"), refresh[0]);
    assert_eq!(h.value("ACCOUNT_REFRESH_TOKEN", "gamma:3"), refresh[2]);

    // A reconnect of an account without tags keeps its tags, and gets new
    // tokens.
    let link = h.link(json!({
        "client": "app", "connection_id": "acme-1", "return_to": h.landing.base(),
    }));
    let result = person(&link, "approve");
    outputs += &result.to_string();
    links.push(link);
    assert_eq!(landed(&result)["status"], "connected", "{result}");
    let acme = &h.connections()[0];
    assert_eq!(acme["tags"], json!({"plan": "pro"}), "{acme}");
    assert_eq!(acme["state"], "healthy");
    let reconnected = h.value("ACCOUNT_REFRESH_TOKEN", "acme-1");
    assert_ne!(reconnected, refresh[0]);

    // The server's status API shows them too (never a token).
    let dashboard = h.p.key("dashboard", &["--program", "app.svc"]);
    let shown = h
        .served
        .call("GET", "/api/connections", Some(&dashboard), None);
    assert_eq!(shown.status, 200, "{}", shown.body);
    server_outputs += &shown.body;

    // Who made each session and how it ended, in the audit log; the log
    // lines of the server say the same, by a short id.
    let audit = h.audit();
    assert_eq!(
        audit.matches("connect_session_created").count(),
        4,
        "{audit}"
    );
    assert_eq!(
        audit.matches("connect_session_completed").count(),
        4,
        "{audit}"
    );
    assert!(audit.contains("\"identity\":\"portal\""), "{audit}");
    let log = h.served.stderr();
    assert!(log.contains("connect session created"), "{log}");
    assert!(log.contains("connect session completed"), "{log}");
    server_outputs += &log;
    server_outputs += &audit;
    server_outputs += &h
        .svc(&["logs", "app.svc", "api.refresh", "--env", "dev"])
        .all_output();
    outputs += &server_outputs;

    // No token, link, state or verifier anywhere; the sessions' file keeps
    // the verifiers, never a link's token.
    let sessions = std::fs::read_to_string(h.sessions_file()).unwrap();
    let kept: Value = serde_json::from_str(&sessions).unwrap();
    let mut secrets: Vec<String> = refresh.into_iter().chain(access).collect();
    secrets.push(rotated);
    secrets.push(reconnected);
    secrets.push(h.value("ACCOUNT_ACCESS_TOKEN", "acme-1"));
    let tokens: Vec<String> = links
        .iter()
        .map(|l| l.rsplit('/').next().unwrap().to_string())
        .collect();
    assert_no_leak(&sessions, &secrets);
    assert_no_leak(&sessions, &tokens);
    secrets.extend(tokens);
    // The browser saw the state in its address bar; the server says neither.
    let mut server_secrets = secrets.clone();
    for session in kept["sessions"].as_array().unwrap() {
        secrets.push(session["verifier"].as_str().unwrap().to_string());
        for field in ["state", "verifier"] {
            server_secrets.push(session[field].as_str().unwrap().to_string());
        }
    }
    assert_no_leak(&outputs, &secrets);
    assert_no_leak(&server_outputs, &server_secrets);
}

#[test]
fn what_a_consent_refuses_stores_nothing() {
    let h = Hosted::start();
    let mut outputs = String::new();
    let mut secrets = Vec::new();

    // Who may make a session, and what a session may ask for.
    let dashboard = h.p.key("dashboard", &["--program", "app.svc"]);
    let base = h.landing.base();
    let origin = format!("http://127.0.0.1:{}", h.landing.port);
    for (key, body, status, code) in [
        (
            &dashboard,
            json!({"client": "app", "connection_id": "x-1"}),
            403,
            "forbidden",
        ),
        (
            &h.portal,
            json!({"client": "nope", "connection_id": "x-1"}),
            404,
            "unknown_client",
        ),
        (
            &h.portal,
            json!({"client": "app", "connection_id": "a b"}),
            400,
            "invalid_connection_id",
        ),
        (
            &h.portal,
            json!({"client": "app", "connection_id": "x-1", "tags": {"9x": "1"}}),
            400,
            "invalid_tags",
        ),
        (
            &h.portal,
            json!({"client": "app", "connection_id": "x-1", "tags": {"plan": 1}}),
            400,
            "invalid_tags",
        ),
        (
            &h.portal,
            json!({"client": "app", "connection_id": "x-1", "extra": true}),
            400,
            "bad_body",
        ),
        (
            &h.portal,
            json!({"client": "app", "connection_id": "x-1", "return_to": "not a url"}),
            400,
            "invalid_return_to",
        ),
        (
            &h.portal,
            json!({"client": "app", "connection_id": "x-1", "return_to": "https://evil.example/settings/integrations"}),
            400,
            "return_to_not_allowed",
        ),
        (
            &h.portal,
            json!({"client": "app", "connection_id": "x-1", "return_to": format!("http://127.0.0.1:{}/settings/integrations", h.landing.port + 1)}),
            400,
            "return_to_not_allowed",
        ),
        (
            &h.portal,
            json!({"client": "app", "connection_id": "x-1", "return_to": format!("{base}-admin")}),
            400,
            "return_to_not_allowed",
        ),
        (
            &h.portal,
            json!({"client": "app", "connection_id": "x-1", "return_to": format!("{origin}/admin")}),
            400,
            "return_to_not_allowed",
        ),
        (
            &h.portal,
            json!({"client": "app", "connection_id": "x-1", "return_to": format!("{base}/../../admin")}),
            400,
            "return_to_not_allowed",
        ),
    ] {
        let answer = h.create_as(key, body.clone());
        outputs += &answer.body;
        assert_eq!(
            (answer.status, answer.json()["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}: {}",
            answer.body
        );
    }
    let anonymous = h.served.call(
        "POST",
        "/api/connect/sessions",
        None,
        Some(&json!({"client": "app", "connection_id": "x-1"}).to_string()),
    );
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    h.assert_nothing_stored("x-1");

    // The link sends the browser to the provider, once: a second opening
    // gets a page, not the provider.
    let link = h.link(json!({"client": "app", "connection_id": "replay-1", "return_to": base}));
    secrets.push(link.rsplit('/').next().unwrap().to_string());
    let opened = h.served.call("GET", h.path(&link), None, None);
    assert_eq!(opened.status, 302, "{}", opened.headers);
    let location = url::Url::parse(&header(&opened, "location").unwrap()).unwrap();
    assert!(
        location
            .as_str()
            .starts_with(&provider().url("authorization_endpoint")),
        "{location}"
    );
    let asked: std::collections::BTreeMap<String, String> =
        location.query_pairs().into_owned().collect();
    assert_eq!(asked["response_type"], "code");
    assert_eq!(asked["client_id"], CLIENT.0);
    assert_eq!(
        asked["redirect_uri"],
        format!("{}/connect/callback", h.served.base)
    );
    assert_eq!(asked["scope"], "openid offline_access api:read");
    assert_eq!(asked["prompt"], "consent");
    assert_eq!(asked["code_challenge_method"], "S256");
    assert_eq!(asked["code_challenge"].len(), 43);
    assert!(asked["state"].len() >= 22 && asked["nonce"].len() >= 22);
    let cookie = header(&opened, "set-cookie").unwrap();
    for part in ["HttpOnly", "SameSite=Lax", "Path=/connect"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    assert_eq!(header(&opened, "referrer-policy").unwrap(), "no-referrer");
    let (cookie_name, cookie_value) = cookie.split(';').next().unwrap().split_once('=').unwrap();
    secrets.push(cookie_value.to_string());
    let again = h.served.call("GET", h.path(&link), None, None);
    assert_eq!(again.status, 410, "{}", again.body);
    assert!(again.body.contains("already used"), "{}", again.body);
    assert_eq!(
        header(&again, "content-security-policy").unwrap(),
        "default-src 'none'; style-src 'unsafe-inline'"
    );
    outputs += &again.body;
    let bogus = h.served.call("GET", "/connect/not-a-link", None, None);
    assert_eq!(bogus.status, 404);
    outputs += &bogus.body;

    // A state that is not the session's: svc's page, nothing stored, and
    // the session is still there for its own callback.
    let with_cookie = format!("Cookie: {cookie_name}={cookie_value}");
    let tampered = h.served.call_with(
        "GET",
        &format!(
            "/connect/callback?code=forged-code-9d1c&state={}x",
            asked["state"]
        ),
        None,
        None,
        &["-H", &with_cookie],
    );
    assert_eq!(tampered.status, 400, "{}", tampered.body);
    assert!(
        tampered.body.contains("Not a known consent"),
        "{}",
        tampered.body
    );
    outputs += &tampered.body;
    h.assert_nothing_stored("replay-1");

    // A cookie that is not the one the link set: back to the app with an
    // error, nothing exchanged; the session is used up.
    let callback = format!(
        "/connect/callback?code=forged-code-9d1c&state={}",
        asked["state"]
    );
    let wrong = h.served.call_with(
        "GET",
        &callback,
        None,
        None,
        &["-H", &format!("Cookie: {cookie_name}=someone-else")],
    );
    assert_eq!(wrong.status, 303, "{}", wrong.body);
    let back = url::Url::parse(&header(&wrong, "location").unwrap()).unwrap();
    let query: std::collections::BTreeMap<String, String> =
        back.query_pairs().into_owned().collect();
    assert_eq!(
        (query["status"].as_str(), query["error"].as_str()),
        ("error", "wrong_browser")
    );
    let replayed = h
        .served
        .call_with("GET", &callback, None, None, &["-H", &with_cookie]);
    assert_eq!(replayed.status, 410, "{}", replayed.body);
    h.assert_nothing_stored("replay-1");

    // With the right cookie and state: another issuer's answer, the
    // provider's error, a code the provider does not know.
    for (id, query, error) in [
        (
            "iss-1",
            "code=some-code-7a2b&iss=http%3A%2F%2F127.0.0.1%3A1",
            "issuer_mismatch",
        ),
        ("error-1", "error=server_error", "authorization_error"),
        ("forged-1", "code=forged-code-9d1c", "exchange_failed"),
    ] {
        let link = h.link(json!({"client": "app", "connection_id": id, "return_to": base}));
        secrets.push(link.rsplit('/').next().unwrap().to_string());
        // A mail scanner's HEAD does not use the link up.
        let head = h
            .served
            .call_with("HEAD", h.path(&link), None, None, &["-I"]);
        assert_eq!(head.status, 200, "{}", head.headers);
        let opened = h.served.call("GET", h.path(&link), None, None);
        assert_eq!(opened.status, 302, "{}", opened.body);
        let state = url::Url::parse(&header(&opened, "location").unwrap())
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "state")
            .unwrap()
            .1
            .into_owned();
        let cookie = header(&opened, "set-cookie").unwrap();
        let cookie = cookie.split(';').next().unwrap().to_string();
        let answer = h.served.call_with(
            "GET",
            &format!("/connect/callback?{query}&state={state}"),
            None,
            None,
            &["-H", &format!("Cookie: {cookie}")],
        );
        assert_eq!(answer.status, 303, "{id}: {}", answer.body);
        let location = header(&answer, "location").unwrap();
        assert!(
            location.ends_with(&format!("?connection_id={id}&status=error&error={error}")),
            "{id}: {location}"
        );
        h.assert_nothing_stored(id);
    }

    // A browser without the cookie: the link was opened elsewhere (by
    // curl here), and a person consents at the provider's URL it gave.
    // The provider's code comes back, and svc refuses it.
    let link = h.link(json!({"client": "app", "connection_id": "nocookie-1", "return_to": base}));
    secrets.push(link.rsplit('/').next().unwrap().to_string());
    let opened = h.served.call("GET", h.path(&link), None, None);
    assert_eq!(opened.status, 302);
    let result = person(&header(&opened, "location").unwrap(), "approve");
    outputs += &result.to_string();
    let query = landed(&result);
    assert_eq!(
        (
            query["status"].as_str(),
            query["error"].as_str(),
            query["connection_id"].as_str()
        ),
        ("error", "missing_cookie", "nocookie-1"),
        "{result}"
    );
    h.assert_nothing_stored("nocookie-1");

    // Consent refused at the provider.
    let link = h.link(json!({"client": "app", "connection_id": "denied-1", "return_to": base}));
    secrets.push(link.rsplit('/').next().unwrap().to_string());
    let result = person(&link, "deny");
    outputs += &result.to_string();
    let query = landed(&result);
    assert_eq!(
        (query["status"].as_str(), query["error"].as_str()),
        ("error", "access_denied"),
        "{result}"
    );
    h.assert_nothing_stored("denied-1");

    // An expired link gets a page; a callback after the session expired
    // goes back to the app with `expired`.
    let link = h.link(json!({"client": "app", "connection_id": "late-1", "return_to": base}));
    secrets.push(link.rsplit('/').next().unwrap().to_string());
    h.expire(
        "late-1",
        chrono::Utc::now() - chrono::TimeDelta::seconds(60),
    );
    let late = h.served.call("GET", h.path(&link), None, None);
    assert_eq!(late.status, 410, "{}", late.body);
    assert!(late.body.contains("expired"), "{}", late.body);
    let link = h.link(json!({"client": "app", "connection_id": "late-2", "return_to": base}));
    secrets.push(link.rsplit('/').next().unwrap().to_string());
    let opened = h.served.call("GET", h.path(&link), None, None);
    assert_eq!(opened.status, 302);
    let state = url::Url::parse(&header(&opened, "location").unwrap())
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let cookie = header(&opened, "set-cookie").unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    h.expire("late-2", chrono::Utc::now() - chrono::TimeDelta::seconds(1));
    let expired = h.served.call_with(
        "GET",
        &format!("/connect/callback?code=some-code-7a2b&state={state}"),
        None,
        None,
        &["-H", &format!("Cookie: {cookie}")],
    );
    assert_eq!(expired.status, 303, "{}", expired.body);
    let location = header(&expired, "location").unwrap();
    assert!(
        location.ends_with("?connection_id=late-2&status=error&error=expired"),
        "{location}"
    );
    for id in ["late-1", "late-2"] {
        h.assert_nothing_stored(id);
    }
    assert!(h.connections().is_empty(), "{:?}", h.connections());

    // The refusals are in the log and the audit, by reason, and nothing
    // secret is.
    let log = h.served.stderr();
    for reason in ["reason=used", "reason=expired", "reason=unknown_state"] {
        assert!(log.contains(reason), "{reason}:\n{log}");
    }
    let audit = h.audit();
    for error in [
        "wrong_browser",
        "missing_cookie",
        "access_denied",
        "expired",
    ] {
        assert!(
            audit.contains(&format!("\"error\":\"{error}\"")),
            "{error}:\n{audit}"
        );
    }
    outputs += &log;
    outputs += &audit;
    let sessions: Value =
        serde_json::from_slice(&std::fs::read(h.sessions_file()).unwrap()).unwrap();
    for session in sessions["sessions"].as_array().unwrap() {
        for field in ["state", "verifier"] {
            secrets.push(session[field].as_str().unwrap().to_string());
        }
    }
    assert_no_leak(&outputs, &secrets);
}

#[test]
fn hosted_consent_needs_a_public_url_and_is_in_the_openapi_document() {
    let landing = Landing::start();
    let p = Project::new();
    p.write(
        "app.svc",
        &program(&provider().url("issuer"), &landing.base()),
    );
    let portal = p.key("portal", &["--program", "app.svc"]);

    // Off: a code that says how to turn it on.
    let served = p.serve(&["app.svc", "--env", "dev"]);
    let answer = served.call(
        "POST",
        "/api/connect/sessions",
        Some(&portal),
        Some(&json!({"client": "app", "connection_id": "acme-1"}).to_string()),
    );
    assert_eq!(answer.status, 404, "{}", answer.body);
    let error = &answer.json()["error"];
    assert_eq!(error["code"], "hosted_consent_off");
    assert!(
        error["message"].as_str().unwrap().contains("--public-url"),
        "{error}"
    );
    let page = served.call("GET", "/connect/callback?state=x&code=y", None, None);
    assert_eq!(page.status, 404);
    assert!(
        page.body.contains("does not connect accounts"),
        "{}",
        page.body
    );

    // The route is in the OpenAPI document, which stays valid.
    let openapi = served
        .call("GET", "/api/services/openapi.json", None, None)
        .json();
    assert!(
        openapi["paths"]["/api/connect/sessions"]["post"].is_object(),
        "{}",
        openapi["paths"]
    );
    let validated = std::process::Command::new("node")
        .arg(common::root().join("tests/servers/validate-openapi.js"))
        .arg(format!("{}/api/services/openapi.json", served.base))
        .output()
        .unwrap();
    assert!(
        validated.status.success(),
        "the OpenAPI document is not valid: {}{}",
        String::from_utf8_lossy(&validated.stdout),
        String::from_utf8_lossy(&validated.stderr)
    );

    // A public URL that is not one stops the start, with a stable code.
    for (how, url) in [
        ("--public-url", "http://svc.example.com"),
        ("--public-url", "https://svc.example.com/svc"),
        ("SVC_PUBLIC_URL", "ftp://svc.example.com"),
    ] {
        let mut svc = p.svc().args([
            "serve",
            "app.svc",
            "--env",
            "dev",
            "--listen",
            "127.0.0.1:0",
        ]);
        svc = if how == "SVC_PUBLIC_URL" {
            svc.env(how, url)
        } else {
            svc.args([how, url])
        };
        let run = svc.run();
        assert_eq!(run.status, 2, "{url}: {}", run.all_output());
        assert!(
            run.stderr.contains("svc::serve::invalid_public_url"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("help"), "{}", run.stderr);
    }
}

#[test]
fn on_postgresql_another_replica_serves_the_link_and_the_callback() {
    use common::rotating::PgProject;
    let landing = Landing::start();
    let pg = common::pg::Postgres::shared();
    let p = PgProject::new(pg, "hosted_consent");
    p.project.write(
        "app.svc",
        &program(&provider().url("issuer"), &landing.base()),
    );
    p.set("CLIENT_ID", CLIENT.0);
    p.set("CLIENT_SECRET", CLIENT.1);
    let portal = p.key("portal");

    // Two replicas behind one public URL: the second's address (as a load
    // balancer would send the browser there).
    let port = common::free_port();
    let public = format!("http://127.0.0.1:{port}");
    let args = [
        "app.svc",
        "--env",
        "dev",
        "--backend",
        &p.url,
        "--public-url",
        &public,
    ];
    let first = p.project.serve(&args);
    let second = p.project.serve_at(&format!("127.0.0.1:{port}"), &args);
    let made = first.call(
        "POST",
        "/api/connect/sessions",
        Some(&portal),
        Some(
            &json!({"client": "app", "connection_id": "pg-1", "tags": {"plan": "pro"}, "return_to": landing.base()})
                .to_string(),
        ),
    );
    assert_eq!(made.status, 201, "{}", made.body);
    let link = made.json()["url"].as_str().unwrap().to_string();
    assert!(link.starts_with(&second.base), "{link}");
    let result = person(&link, "approve");
    assert_eq!(landed(&result)["status"], "connected", "{result}");
    assert!(second.stderr().contains("connect session completed"));

    let shown = p
        .svc()
        .args([
            "connection",
            "show",
            "app",
            "--connection",
            "pg-1",
            "--program",
            "app.svc",
            "--env",
            "dev",
            "--json",
        ])
        .run();
    assert_eq!(shown.status, 0, "{}", shown.all_output());
    let shown: Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(shown["state"], "healthy", "{shown}");
    assert_eq!(shown["tags"], json!({"plan": "pro"}));
    let refresh = p
        .svc()
        .args([
            "secret",
            "get",
            "ACCOUNT_REFRESH_TOKEN",
            "--connection",
            "pg-1",
            "--program",
            "app.svc",
            "--env",
            "dev",
        ])
        .run();
    assert_eq!(refresh.status, 0, "{}", refresh.all_output());
    let token = refresh.stdout.trim().to_string();

    // The session is used, in the database: a replayed link is refused by
    // either replica; the table keeps only the token's hash.
    let path = link.strip_prefix(&second.base).unwrap();
    for replica in [&first, &second] {
        assert_eq!(replica.call("GET", path, None, None).status, 410);
    }
    let kept = pg.psql(
        &p.db,
        "SELECT session->>'used_at' IS NOT NULL, token_hash FROM svc_connect_sessions",
    );
    let link_token = link.rsplit('/').next().unwrap();
    assert!(kept.trim_start().starts_with('t'), "{kept}");
    assert!(!kept.contains(link_token), "{kept}");
    let outputs = format!("{}{}{}", first.stderr(), second.stderr(), result);
    assert_no_leak(&outputs, &[token, link_token.to_string()]);
}
