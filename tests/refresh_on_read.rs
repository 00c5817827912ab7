//! Refresh on read (`secret NAME { refreshed_by SERVICE.ENDPOINT as ACCOUNT
//! min_valid DURATION }`): through `svc serve` and `svc secret get --fresh`,
//! against a token server on 127.0.0.1 that counts what it is sent.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use common::{Project, eventually};
use proptest::prelude::*;

const STALE: &str = "stale-token-value-5c1e";

/// How the token server answers.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// `{"access_token": "fresh-token-N", "expires_in": 3600}`.
    Grant,
    /// 400 `invalid_client`.
    Refuse,
    /// As `Grant`, with tokens that live 60 s: less than `min_valid` (5m).
    ShortLived,
}

#[derive(Default)]
struct State {
    requests: usize,
    /// Whether answers may go out; the test holds them to keep a refresh
    /// in flight while other reads arrive.
    released: bool,
}

/// A token endpoint on 127.0.0.1 that counts its requests.
struct TokenServer {
    port: u16,
    state: Arc<(Mutex<State>, Condvar)>,
}

impl TokenServer {
    fn start(mode: Mode, released: bool) -> TokenServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new((
            Mutex::new(State {
                requests: 0,
                released,
            }),
            Condvar::new(),
        ));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let shared = shared.clone();
                std::thread::spawn(move || answer(stream, mode, &shared));
            }
        });
        TokenServer { port, state }
    }

    fn requests(&self) -> usize {
        self.state.0.lock().unwrap().requests
    }

    fn release(&self) {
        let (lock, wake) = &*self.state;
        lock.lock().unwrap().released = true;
        wake.notify_all();
    }

    /// Waits until `n` requests came, for at most `seconds`.
    fn wait_for(&self, n: usize, seconds: u64) -> bool {
        let (lock, wake) = &*self.state;
        let guard = lock.lock().unwrap();
        let (guard, _) = wake
            .wait_timeout_while(guard, Duration::from_secs(seconds), |s| s.requests < n)
            .unwrap();
        guard.requests >= n
    }
}

fn answer(stream: std::net::TcpStream, mode: Mode, state: &(Mutex<State>, Condvar)) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let (lock, wake) = state;
    let number = {
        let mut s = lock.lock().unwrap();
        s.requests += 1;
        wake.notify_all();
        let number = s.requests;
        let _held = wake.wait_while(s, |s| !s.released).unwrap();
        number
    };
    let (status, body) = match mode {
        Mode::Grant | Mode::ShortLived => (
            "200 OK",
            format!(
                r#"{{"access_token": "fresh-token-{number}", "expires_in": {}}}"#,
                if mode == Mode::Grant { 3600 } else { 60 }
            ),
        ),
        Mode::Refuse => (
            "400 Bad Request",
            r#"{"error": "invalid_client", "error_description": "client unknown"}"#.to_string(),
        ),
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn program(port: u16) -> String {
    format!(
        r#"
secret API_TOKEN {{ environment_specific refreshed_by api.refresh as token_bot min_valid 5m }}
secret PLAIN     {{ environment_specific }}

role refresher {{
  grant run api.refresh
  grant update_secret API_TOKEN
}}
role reader {{
  grant read_secret API_TOKEN
  grant read_secret PLAIN
}}
service_account token_bot {{ roles refresher }}
service_account app {{ roles reader }}

service api {{
  var token: string
  var lifetime: number

  action fetch {{
    web_request {{
      method POST
      url "http://127.0.0.1:{port}/token"
      form {{ grant_type = "client_credentials" }}
      result_mapping {{
        token    = $.access_token
        lifetime = $.expires_in
      }}
    }}
    if has_value(token) {{
      update_secret API_TOKEN {{
        value      = token
        expires_in = lifetime
      }}
    }}
  }}

  endpoint refresh {{
    methods POST
    log enabled
    process fetch
  }}
}}
"#
    )
}

/// A project whose API_TOKEN expires in `expires_in`.
fn project(server: &TokenServer, expires_in: &str) -> Project {
    let p = Project::new();
    p.write("app.svc", &program(server.port));
    set_stale_token(p.svc(), expires_in);
    p
}

/// Sets API_TOKEN to the stale value, expiring in `expires_in`, with `svc`
/// on the project's backend.
fn set_stale_token(svc: common::Svc, expires_in: &str) {
    let run = svc
        .args([
            "secret",
            "set",
            "API_TOKEN",
            "--env",
            "dev",
            "--expires-in",
            expires_in,
        ])
        .stdin(STALE)
        .run();
    assert_eq!(run.status, 0, "{}", run.all_output());
}

fn api_token(p: &Project) -> serde_json::Value {
    p.document()["secrets"]["API_TOKEN"].clone()
}

/// The number in `svc_http_connections` of the server's `/metrics`.
fn open_connections(server: &common::Served) -> u64 {
    let metrics = server.call("GET", "/metrics", None, None).body;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("svc_http_connections "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn concurrent_reads_of_a_due_secret_refresh_it_once_and_all_get_the_new_value() {
    let tokens = TokenServer::start(Mode::Grant, false);
    let p = project(&tokens, "1m");
    let key = p.key("app", &[]);
    let server = Arc::new(p.serve(&["app.svc", "--env", "dev", "--no-schedules"]));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let server = server.clone();
            let key = key.clone();
            std::thread::spawn(move || {
                server.call("GET", "/api/secrets/API_TOKEN", Some(&key), None)
            })
        })
        .collect();
    // The first refresh is held at the token server until both reads are
    // in the server (two open connections, and this one for /metrics).
    assert!(
        tokens.wait_for(1, 20),
        "no refresh reached the token server"
    );
    assert!(
        eventually(20, || open_connections(&server) >= 3),
        "the second read did not arrive:\n{}",
        server.stderr()
    );
    // The window in which a second refresh would show up, were reads not
    // single-flight: the absence of a request can only be waited for.
    assert!(!tokens.wait_for(2, 1), "a second refresh was sent");
    tokens.release();
    for reader in readers {
        let answer = reader.join().unwrap();
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.json()["value"], "fresh-token-1", "{}", answer.body);
    }
    assert_eq!(tokens.requests(), 1);
    let stored = api_token(&p);
    assert_eq!(stored["value"], "fresh-token-1");
    assert!(stored["expires_at"].is_string());
    // The refresh is a run like any other: logged, as the service account.
    let logs = p.logs();
    assert!(logs.contains("\"identity\":\"token_bot\""), "{logs}");
    assert!(
        logs.contains("\"read\":{\"secret\":\"API_TOKEN\"}"),
        "{logs}"
    );
    // Fresh now: more reads send nothing.
    let answer = server.call("GET", "/api/secrets/API_TOKEN", Some(&key), None);
    assert_eq!(answer.json()["value"], "fresh-token-1");
    assert_eq!(tokens.requests(), 1);
}

#[test]
fn tokens_that_live_less_than_min_valid_are_refreshed_once_not_by_every_read() {
    // The provider's tokens live 60 s; reads want 5 minutes left.
    let tokens = TokenServer::start(Mode::ShortLived, true);
    let p = project(&tokens, "1m");
    let key = p.key("app", &[]);
    let server = Arc::new(p.serve(&["app.svc", "--env", "dev", "--no-schedules"]));
    let readers: Vec<_> = (0..50)
        .map(|_| {
            let server = server.clone();
            let key = key.clone();
            std::thread::spawn(move || {
                server.call("GET", "/api/secrets/API_TOKEN", Some(&key), None)
            })
        })
        .collect();
    for reader in readers {
        let answer = reader.join().unwrap();
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.json()["value"], "fresh-token-1", "{}", answer.body);
    }
    assert_eq!(
        tokens.requests(),
        1,
        "the readers took one refresh's result"
    );
    // Half its life is left: later reads hand it out as it is.
    for _ in 0..10 {
        let answer = server.call("GET", "/api/secrets/API_TOKEN", Some(&key), None);
        assert_eq!(answer.json()["value"], "fresh-token-1");
    }
    assert_eq!(tokens.requests(), 1);
    assert!(
        server
            .stderr()
            .contains("no longer than its `min_valid` (5m)"),
        "the refresh said so:\n{}",
        server.stderr()
    );
    let doctor = p.svc().args(["doctor", "app.svc", "--env", "dev"]).run();
    assert!(
        doctor
            .stdout
            .contains("warn  refresh on read: `API_TOKEN` is valid for 60s"),
        "{}",
        doctor.all_output()
    );
}

#[test]
fn a_read_of_a_secret_with_plenty_of_validity_sends_nothing() {
    let tokens = TokenServer::start(Mode::Grant, true);
    let p = project(&tokens, "1h");
    p.set("PLAIN", "plain-value");
    let key = p.key("app", &[]);
    let server = p.serve(&["app.svc", "--env", "dev", "--no-schedules"]);
    for _ in 0..3 {
        let answer = server.call("GET", "/api/secrets/API_TOKEN", Some(&key), None);
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.json()["value"], STALE);
    }
    // A secret without `refreshed_by` is read as it is.
    let answer = server.call("GET", "/api/secrets/PLAIN", Some(&key), None);
    assert_eq!(answer.json()["value"], "plain-value");
    let cli = p
        .svc()
        .args(["secret", "get", "API_TOKEN", "--env", "dev", "--fresh"])
        .args(["--program", "app.svc"])
        .run();
    assert_eq!(cli.status, 0, "{}", cli.stderr);
    assert_eq!(cli.stdout.trim_end(), STALE);
    assert_eq!(tokens.requests(), 0);
    assert_eq!(api_token(&p)["version"], 1);
}

#[test]
fn a_secret_with_no_expiry_is_refreshed_on_read() {
    let tokens = TokenServer::start(Mode::Grant, true);
    let p = project(&tokens, "1h");
    // Set again without an expiry: svc cannot vouch for it.
    let run = p
        .svc()
        .args(["secret", "set", "API_TOKEN", "--env", "dev"])
        .stdin(STALE)
        .run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    let cli = p
        .svc()
        .args(["secret", "get", "API_TOKEN", "--env", "dev", "--fresh"])
        .args(["--program", "app.svc"])
        .run();
    assert_eq!(cli.status, 0, "{}", cli.stderr);
    assert_eq!(cli.stdout.trim_end(), "fresh-token-1");
    assert!(
        cli.stderr.contains("refreshed `API_TOKEN`"),
        "{}",
        cli.stderr
    );
    assert_eq!(tokens.requests(), 1);
    // Without --fresh, nothing runs.
    assert_eq!(p.get("API_TOKEN"), "fresh-token-1");
    assert_eq!(tokens.requests(), 1);
}

#[test]
fn concurrent_fresh_reads_from_two_processes_refresh_once() {
    let tokens = TokenServer::start(Mode::Grant, false);
    let p = project(&tokens, "1m");
    let readers: Vec<_> = (0..2)
        .map(|_| {
            p.svc()
                .args(["secret", "get", "API_TOKEN", "--env", "dev", "--fresh"])
                .args(["--program", "app.svc"])
                .spawn()
        })
        .collect();
    assert!(
        tokens.wait_for(1, 20),
        "no refresh reached the token server"
    );
    // The second process waits at the endpoint's run lock; were it not to,
    // its refresh would arrive within this window.
    assert!(!tokens.wait_for(2, 1), "a second refresh was sent");
    tokens.release();
    for reader in readers {
        let output = reader.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert_eq!(stdout.trim_end(), "fresh-token-1", "{stderr}");
    }
    assert_eq!(tokens.requests(), 1);
    assert_eq!(api_token(&p)["value"], "fresh-token-1");
}

#[test]
fn a_failed_refresh_fails_the_read_and_shows_no_value() {
    let tokens = TokenServer::start(Mode::Refuse, true);
    // Still valid for a minute, but due: the read fails rather than hand
    // out a value that breaks `min_valid`.
    let p = project(&tokens, "1m");
    let key = p.key("app", &[]);
    let mut server = p.serve(&["app.svc", "--env", "dev", "--no-schedules"]);
    let answer = server.call("GET", "/api/secrets/API_TOKEN", Some(&key), None);
    assert_eq!(answer.status, 502, "{}", answer.body);
    let error = &answer.json()["error"];
    assert_eq!(error["code"], "refresh_failed", "{}", answer.body);
    assert!(
        error["cause"].as_str().unwrap().starts_with("svc::run::"),
        "{}",
        answer.body
    );
    assert!(error["run"].is_string(), "{}", answer.body);
    assert!(answer.json().get("value").is_none());

    let cli = p
        .svc()
        .args(["secret", "get", "API_TOKEN", "--env", "dev", "--fresh"])
        .args(["--program", "app.svc"])
        .run();
    assert_eq!(cli.status, 1, "{}", cli.stderr);
    assert!(cli.stdout.is_empty(), "{}", cli.stdout);
    assert!(cli.stderr.contains("svc::run::"), "{}", cli.stderr);
    assert!(cli.stderr.contains("API_TOKEN"), "{}", cli.stderr);

    server.stop();
    let audit = std::fs::read_to_string(p.path().join("logs/dev/audit.jsonl")).unwrap_or_default();
    for output in [
        answer.body.as_str(),
        &answer.headers,
        &cli.stdout,
        &cli.stderr,
        &server.stderr(),
        &p.logs(),
        &audit,
    ] {
        assert!(!output.contains(STALE), "a value leaked: {output}");
        assert!(!output.contains("fresh-token"), "a value leaked: {output}");
    }
    assert!(audit.contains("refresh_failed"), "{audit}");
    // The stored value is untouched.
    assert_eq!(api_token(&p)["value"], STALE);
    assert_eq!(api_token(&p)["version"], 1);
    assert_eq!(tokens.requests(), 2);
}

#[test]
fn compile_shows_the_refresher() {
    let tokens = TokenServer::start(Mode::Grant, true);
    let p = project(&tokens, "1h");
    let dot = p.svc().args(["compile", "app.svc", "--emit", "dot"]).run();
    assert_eq!(dot.status, 0, "{}", dot.stderr);
    assert!(
        dot.stdout
            .contains("\"secret:API_TOKEN\" -> \"api.refresh\" [label=\"refreshed by\\nas token_bot, min_valid 5m\""),
        "{}",
        dot.stdout
    );
    let openapi = p
        .svc()
        .args(["compile", "app.svc", "--emit", "openapi"])
        .run();
    let document: serde_json::Value = serde_json::from_str(&openapi.stdout).unwrap();
    let read = &document["paths"]["/api/secrets/{name}"]["get"];
    assert!(
        read["description"]
            .as_str()
            .unwrap()
            .contains("`API_TOKEN` (by `api.refresh`, valid for 5m more)"),
        "{read}"
    );
    assert!(read["responses"]["502"].is_object());
}

// ---------------------------------------------------------------- svc fmt

fn ident() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,6}".prop_filter("not a keyword", |s| {
        ![
            "as",
            "locked",
            "min_valid",
            "refreshed_by",
            "description",
            "environment_specific",
        ]
        .contains(&s.as_str())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A secret with `refreshed_by`, its properties in any order, prints,
    /// parses back to itself and is formatted.
    #[test]
    fn refreshed_secrets_print_parse_and_format(
        service in ident(),
        endpoint in ident(),
        account in ident(),
        min_valid in proptest::option::of((1u64..600, proptest::sample::select(vec!["s", "m", "h"]))),
        env in any::<bool>(),
        locked in any::<bool>(),
        description in proptest::option::of("[a-z ]{0,12}"),
        order in Just(()).prop_perturb(|_, mut rng| rng.next_u32()),
    ) {
        use svc::source::{FileId, Span};
        use svc::syntax::ast::*;
        let name = |text: &str| Name { text: text.to_string(), span: Span::default() };
        let min_valid = min_valid.map(|(n, unit)| {
            let text = format!("{n}{unit}");
            DurationLit { value: svc::syntax::duration::parse(&text).ok(), text, span: Span::default() }
        });
        let mut keys: Vec<&'static str> = Vec::new();
        if env { keys.push("environment_specific"); }
        if locked { keys.push("locked"); }
        keys.push("refreshed_by");
        if description.is_some() {
            keys.push("description");
            // In a block, properties keep the order they were written in.
            let n = keys.len();
            keys.rotate_left(order as usize % n);
        }
        let decl = SecretDecl {
            name: name("TOKEN"),
            environment_specific: env,
            locked: locked.then(Span::default),
            per_account: false,
            description: description.map(|value| PlainString { value, span: Span::default() }),
            refreshed_by: Some(RefreshedBy {
                endpoint: EndpointRef { service: name(&service), endpoint: name(&endpoint), span: Span::default() },
                service_account: name(&account),
                min_valid,
                span: Span::default(),
            }),
            span: Span::default(),
            layout: keys.iter().map(|k| (*k, Span::default())).collect(),
        };
        let program = Program { secrets: vec![decl], ..Program::default() };
        let text = svc::format::print(&program);
        let (parsed, diagnostics) = svc::syntax::parse_file(FileId(0), &text);
        prop_assert!(diagnostics.is_empty(), "{diagnostics:#?}\n{text}");
        prop_assert_eq!(common::without_spans(&parsed), common::without_spans(&program), "{}", text);
        let formatted = svc::format::format(&text);
        prop_assert_eq!(formatted.as_ref(), Ok(&text));
    }
}

/// On PostgreSQL a replica authenticates a read from its cached keys and
/// confirms the key with the read's audit line; a refresh would come before
/// that line, so a key revoked elsewhere must not cause one.
#[test]
fn a_key_revoked_on_another_process_causes_no_refresh() {
    let tokens = TokenServer::start(Mode::Grant, true);
    let pg = common::pg::Postgres::shared();
    let p = common::rotating::PgProject::new(pg, "revoked_no_refresh");
    p.project.write("app.svc", &program(tokens.port));
    // Due: valid for less than `min_valid`.
    set_stale_token(p.svc(), "1m");
    p.set("PLAIN", "plain-value");
    let key = p.key("app");
    let replica = p.serve(&["app.svc", "--no-schedules"]);
    // The replica has the keys and the store in its caches.
    let plain = replica.call("GET", "/api/secrets/PLAIN", Some(&key), None);
    assert_eq!(plain.status, 200, "{}", plain.body);
    let id = key.split('_').nth(1).unwrap().to_string();
    let revoke = p.svc().args(["key", "revoke", &id, "--env", "dev"]).run();
    assert_eq!(revoke.status, 0, "{}", revoke.all_output());
    let answer = replica.call("GET", "/api/secrets/API_TOKEN", Some(&key), None);
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert_eq!(tokens.requests(), 0, "the revoked key caused a refresh");
    assert!(!answer.body.contains(STALE));
}
