//! Connection events, signed, each once, and connections kept alive:
//! a `notify` receiver (wiremock on 127.0.0.1, verifying every signature
//! itself) gets one event per transition from `svc serve`, delivered from
//! the outbox — after the receiver was down, after a replica was killed,
//! from three replicas on one PostgreSQL database — and `keep_alive`
//! refreshes a connection nobody uses. The provider is oidc-provider (real
//! revocation, real rotation) or a wiremock token endpoint.

mod common;

use common::authorizing::{revoke_out_of_band, schedule_state};
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{NodeServer, Project, Run, Svc};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const DEVICE: (&str, &str) = ("events-device", "events-device-secret-8c2e41");
/// The receiver's signing key, as Standard Webhooks gives it out.
const SIGNING_KEY: &[u8; 32] = b"svc-events-test-signing-key-0042";

fn signing_secret() -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(SIGNING_KEY)
    )
}

fn provider() -> &'static NodeServer {
    static PROVIDER: OnceLock<NodeServer> = OnceLock::new();
    PROVIDER.get_or_init(|| common::authorizing::device_provider(DEVICE))
}

/// The program of tests/common/authorizing.rs, with `notify ops` to
/// `hook` for `events`.
fn program(endpoints: &str, extra: &str, schedule: bool, hook: &str, events: &str) -> String {
    common::authorizing::refresh_program(endpoints, extra, schedule, Some((hook, events)))
}

fn assert_no_leak(text: &str, values: &[&str]) {
    for value in values {
        assert!(!value.is_empty());
        assert!(!text.contains(value), "`{value}` leaked:\n{text}");
    }
}

async fn in_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.unwrap()
}

/// Polls `check` (blocking) for at most `seconds`.
async fn eventually(seconds: u64, check: impl FnMut() -> bool + Send + 'static) -> bool {
    in_thread(move || common::eventually(seconds, check)).await
}

// ---- the receiver -------------------------------------------------------------

/// One event as a receiver got it, its signature verified.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    body: Value,
    raw: String,
}

impl Received {
    fn kind(&self) -> &str {
        self.body["type"].as_str().unwrap_or("")
    }
}

/// A webhook receiver on 127.0.0.1 that answers 200 to `POST /hooks`.
struct Receiver {
    server: MockServer,
}

impl Receiver {
    /// On `listener` when given (a port reserved while it was down).
    async fn start(listener: Option<TcpListener>) -> Receiver {
        Receiver::start_slow(listener, Duration::ZERO).await
    }

    /// One that takes `delay` to answer: senders that do not keep their
    /// claims apart all send within that time.
    async fn start_slow(listener: Option<TcpListener>, delay: Duration) -> Receiver {
        let builder = MockServer::builder();
        let server = match listener {
            Some(listener) => builder.listener(listener).start().await,
            None => builder.start().await,
        };
        Mock::given(method("POST"))
            .and(path("/hooks"))
            .respond_with(ResponseTemplate::new(200).set_delay(delay))
            .mount(&server)
            .await;
        Receiver { server }
    }

    /// Every event received, each checked as a Standard Webhooks receiver
    /// checks it: the HMAC-SHA256 of `id.timestamp.body` under the key,
    /// and a timestamp within five minutes.
    async fn events(&self) -> Vec<Received> {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SIGNING_KEY);
        let mut out = Vec::new();
        for request in self.server.received_requests().await.unwrap() {
            let header = |name: &str| {
                request
                    .headers
                    .get(name)
                    .unwrap_or_else(|| panic!("no {name} header"))
                    .to_str()
                    .unwrap()
                    .to_string()
            };
            let (id, timestamp, signature) = (
                header("webhook-id"),
                header("webhook-timestamp"),
                header("webhook-signature"),
            );
            let raw = String::from_utf8(request.body.clone()).unwrap();
            let signed = format!("{id}.{timestamp}.{raw}");
            let expected = base64::engine::general_purpose::STANDARD
                .encode(ring::hmac::sign(&key, signed.as_bytes()).as_ref());
            assert!(
                signature
                    .split(' ')
                    .any(|s| s.strip_prefix("v1,") == Some(expected.as_str())),
                "a bad signature on {raw}: {signature}"
            );
            let sent: i64 = timestamp.parse().unwrap();
            assert!((common::unix_now() - sent).abs() < 300, "{timestamp}");
            assert_eq!(
                request.headers.get("content-type").unwrap(),
                "application/json"
            );
            out.push(Received {
                id,
                body: serde_json::from_str(&raw).unwrap(),
                raw,
            });
        }
        out
    }

    /// Every body received, as sent, for searching them for secrets.
    async fn bodies(&self) -> String {
        self.events().await.iter().map(|e| e.raw.as_str()).collect()
    }

    /// How many of each event type arrived.
    async fn counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for event in self.events().await {
            *counts.entry(event.kind().to_string()).or_default() += 1;
        }
        counts
    }

    /// Waits until an event of `kind` arrived.
    async fn wait_for(&self, kind: &str, seconds: u64) -> Received {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            if let Some(event) = self.events().await.into_iter().find(|e| e.kind() == kind) {
                return event;
            }
            assert!(
                Instant::now() < deadline,
                "no {kind} within {seconds} s; got {:?}",
                self.counts().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn url(&self) -> String {
        format!("{}/hooks", self.server.uri())
    }
}

/// A port on 127.0.0.1 that nothing listens on yet, and the listener that
/// will take it.
fn reserved_port() -> (String, TcpListener) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    (url, listener)
}

/// What a closed port gets: the listener is dropped and bound again later.
fn listen_again(url: &str) -> TcpListener {
    let address = url
        .trim_start_matches("http://")
        .trim_end_matches("/hooks")
        .to_string();
    TcpListener::bind(address).unwrap()
}

/// `svc notify list --json`'s deliveries.
fn deliveries(svc: Svc, all: bool) -> Vec<Value> {
    let mut args = vec!["notify", "list", "--env", "dev", "--json"];
    if all {
        args.push("--all");
    }
    let run = svc.args(args).run();
    assert_eq!(run.status, 0, "{}", run.all_output());
    let listed: Value = serde_json::from_str(&run.stdout).unwrap();
    listed["deliveries"].as_array().unwrap().clone()
}

/// `svc run app.svc api.refresh --env dev --as ops`, off the async threads.
async fn refresh(svc: Svc) -> Run {
    in_thread(move || {
        svc.args([
            "run",
            "app.svc",
            "api.refresh",
            "--env",
            "dev",
            "--as",
            "ops",
        ])
        .run()
    })
    .await
}

async fn token_answer(server: &MockServer, status: u16, body: Value) {
    server.reset().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .mount(server)
        .await;
}

fn wiremock_endpoints(server: &MockServer) -> String {
    format!(
        "authorize_url \"{0}/authorize\"\n  token_url \"{0}/token\"",
        server.uri()
    )
}

// ---- oidc-provider: revoked out of band, then authorized again ---------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_connection_is_said_once_signed_and_its_recovery_once() {
    let receiver = Receiver::start(None).await;
    let p = Arc::new(Project::new());
    let issuer = format!("issuer \"{}\"", provider().url("issuer"));
    let every_event = "connection.created connection.degraded connection.needs_reconsent \
                       connection.misconfigured connection.recovered connection.revoked";
    let write = |schedule: bool| program(&issuer, "", schedule, &receiver.url(), every_event);
    p.write("app.svc", &write(false));
    p.set("CLIENT_ID", DEVICE.0);
    p.set("CLIENT_SECRET", DEVICE.1);
    p.set("HOOK_KEY", &signing_secret());
    let mut outputs = {
        let p = p.clone();
        in_thread(move || common::authorizing::authorize_device(&p).all_output()).await
    };
    // Revoked at the provider, out of band (the user removed the app).
    let refresh_token = p.get("REFRESH_TOKEN");
    revoke_out_of_band(provider(), DEVICE, &refresh_token);

    // The schedule's next refresh finds it dead.
    p.write("app.svc", &write(true));
    let key = p.key("app_reader", &["--program", "app.svc"]);
    let server = Arc::new(p.serve(&["app.svc", "--env", "dev"]));
    let dead = receiver.wait_for("connection.needs_reconsent", 30).await;
    assert_eq!(
        dead.body["data"]["state"], "needs_reconsent",
        "{}",
        dead.raw
    );
    assert_eq!(dead.body["data"]["error_code"], "invalid_grant");
    assert_eq!(dead.body["data"]["environment"], "dev");
    assert_eq!(dead.body["data"]["client"], "app");
    assert_eq!(dead.body["data"]["connection_id"], "default");
    assert!(dead.id.starts_with("msg_"), "{}", dead.id);
    let dead_at = common::authorizing::refresh_requests(provider());

    // Ten more ticks of the schedule: each skipped, nothing sent.
    let mut fires = std::collections::BTreeSet::new();
    let watched = p.clone();
    assert!(
        eventually(40, move || {
            let state = schedule_state(&watched, "keep_fresh");
            if state["last_skip_reason"].is_string() {
                fires.insert(state["last_run_at"].to_string());
            }
            fires.len() >= 11
        })
        .await,
        "the schedule was not skipped ten times: {}",
        schedule_state(&p, "keep_fresh")
    );
    assert_eq!(
        common::authorizing::refresh_requests(provider()),
        dead_at,
        "a refresh reached the provider"
    );

    // A read of the refreshed-on-read secret: 409 at once, nothing sent.
    let started = Instant::now();
    let read = {
        let (server, key) = (server.clone(), key.clone());
        in_thread(move || server.call("GET", "/api/secrets/ACCESS_TOKEN", Some(&key), None)).await
    };
    assert_eq!(read.status, 409, "{}", read.body);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(read.json()["error"]["code"], "needs_reconsent");
    assert_eq!(
        common::authorizing::refresh_requests(provider()),
        dead_at,
        "a refresh reached the provider"
    );

    // A person consents again, while the server runs: recovered, once.
    outputs += &{
        let p = p.clone();
        in_thread(move || common::authorizing::authorize_device(&p).all_output()).await
    };
    let recovered = receiver.wait_for("connection.recovered", 30).await;
    assert_eq!(recovered.body["data"]["state"], "healthy");
    assert_eq!(recovered.body["data"]["error_code"], Value::Null);
    // The schedule refreshes again; a few of its fires make no event.
    let before = common::authorizing::refresh_requests(provider());
    assert!(
        eventually(
            20,
            move || common::authorizing::refresh_requests(provider()) >= before + 2
        )
        .await
    );
    let counts = receiver.counts().await;
    assert_eq!(
        counts,
        BTreeMap::from([
            ("connection.created".to_string(), 1),
            ("connection.needs_reconsent".to_string(), 1),
            ("connection.recovered".to_string(), 1),
        ]),
        "one event per transition"
    );
    let events = receiver.events().await;
    let ids: std::collections::BTreeSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), events.len(), "an id came twice");
    outputs += &server.stderr();
    let bodies: String = events.iter().map(|e| e.raw.clone()).collect();
    assert_no_leak(
        &format!("{outputs}{bodies}{}", p.logs()),
        &[
            DEVICE.1,
            &refresh_token,
            &p.get("REFRESH_TOKEN"),
            &p.get("ACCESS_TOKEN"),
            &signing_secret(),
        ],
    );
}

// ---- a flaky provider, a receiver that was down -------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_provider_degrades_and_recovers_and_a_receiver_down_gets_each_event_once() {
    let tokens = MockServer::start().await;
    let (hook, listener) = reserved_port();
    drop(listener);
    let p = Arc::new(Project::new());
    p.write(
        "app.svc",
        &program(
            &wiremock_endpoints(&tokens),
            "",
            false,
            &hook,
            "connection.degraded connection.needs_reconsent connection.recovered",
        ),
    );
    p.set("CLIENT_ID", "flaky-client");
    p.set("CLIENT_SECRET", "flaky-secret-Ut62");
    p.set("REFRESH_TOKEN", "flaky-refresh-token-Pa19");
    p.set("HOOK_KEY", &signing_secret());
    let mut outputs = String::new();

    // 503: degraded, and one delivery waits in the outbox.
    token_answer(&tokens, 503, json!({"error": "temporarily_unavailable"})).await;
    let run = refresh(p.svc()).await;
    assert_eq!(run.status, 1, "{}", run.all_output());
    outputs += &run.all_output();
    let waiting = {
        let p = p.clone();
        in_thread(move || deliveries(p.svc(), false)).await
    };
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(waiting[0]["event"], "connection.degraded");
    assert_eq!(waiting[0]["status"], "pending");
    let id = waiting[0]["id"].as_str().unwrap().to_string();

    // The receiver is down: the server tries, and tries again later.
    let server = p.serve(&["app.svc", "--env", "dev"]);
    let watched = p.clone();
    assert!(
        eventually(30, move || {
            let listed = deliveries(watched.svc(), false);
            listed[0]["attempts"].as_u64().unwrap_or(0) >= 2
        })
        .await,
        "not retried: {:?}\n{}",
        deliveries(p.svc(), true),
        server.stderr()
    );
    let listed = {
        let p = p.clone();
        in_thread(move || deliveries(p.svc(), false)).await
    };
    assert_eq!(listed[0]["status"], "pending");
    assert!(listed[0]["last_error"].is_string(), "{listed:?}");
    // By hand, while it is still down: exit 1, and still pending.
    let retried = {
        let (p, id) = (p.clone(), id.clone());
        in_thread(move || {
            p.svc()
                .args([
                    "notify",
                    "retry",
                    &id,
                    "--env",
                    "dev",
                    "--program",
                    "app.svc",
                ])
                .run()
        })
        .await
    };
    assert_eq!(retried.status, 1, "{}", retried.all_output());
    assert!(
        retried.stderr.contains("svc::notify::not_delivered"),
        "{}",
        retried.stderr
    );
    outputs += &retried.all_output();

    // Up again: delivered once, with the id it had from the start.
    let receiver = Receiver::start(Some(listen_again(&hook))).await;
    let degraded = receiver.wait_for("connection.degraded", 60).await;
    assert_eq!(degraded.id, id, "the webhook-id changed between attempts");
    assert_eq!(degraded.body["data"]["state"], "degraded");
    assert_eq!(
        degraded.body["data"]["error_code"],
        "temporarily_unavailable"
    );

    // The provider answers again: recovered.
    token_answer(
        &tokens,
        200,
        json!({"access_token": "flaky-access-Rw55", "refresh_token": "flaky-refresh-two-Kd30",
               "expires_in": 3600}),
    )
    .await;
    let run = refresh(p.svc()).await;
    assert_eq!(run.status, 0, "{}", run.all_output());
    outputs += &run.all_output();
    receiver.wait_for("connection.recovered", 30).await;
    let watched = p.clone();
    assert!(
        eventually(10, move || deliveries(watched.svc(), false).is_empty()).await,
        "deliveries left"
    );
    assert_eq!(
        receiver.counts().await,
        BTreeMap::from([
            ("connection.degraded".to_string(), 1),
            ("connection.recovered".to_string(), 1),
        ])
    );
    let kept = {
        let p = p.clone();
        in_thread(move || deliveries(p.svc(), true)).await
    };
    assert!(kept.iter().all(|d| d["status"] == "delivered"), "{kept:?}");
    outputs += &server.stderr();
    let bodies: String = receiver.bodies().await;
    assert_no_leak(
        &format!("{outputs}{bodies}{}", p.logs()),
        &[
            "flaky-secret-Ut62",
            "flaky-refresh-token-Pa19",
            "flaky-refresh-two-Kd30",
            "flaky-access-Rw55",
            &signing_secret(),
        ],
    );
}

// ---- keep_alive -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_refreshes_a_connection_nobody_uses() {
    let tokens = MockServer::start().await;
    let receiver = Receiver::start(None).await;
    let p = Arc::new(Project::new());
    p.write(
        "app.svc",
        &program(
            &wiremock_endpoints(&tokens),
            "keep_alive 2s",
            false,
            &receiver.url(),
            "connection.degraded",
        ),
    );
    p.set("CLIENT_ID", "idle-client");
    p.set("CLIENT_SECRET", "idle-secret-Ge04");
    p.set("REFRESH_TOKEN", "idle-refresh-token-Yt88");
    p.set("HOOK_KEY", &signing_secret());
    token_answer(
        &tokens,
        200,
        json!({"access_token": "idle-access-Mn21", "refresh_token": "idle-refresh-two-Ob67",
               "expires_in": 3600}),
    )
    .await;
    let run = refresh(p.svc()).await;
    assert_eq!(run.status, 0, "{}", run.all_output());
    let sent = tokens.received_requests().await.unwrap().len();

    // No schedule runs, nobody reads: keep_alive refreshes it, as the
    // account its refresh on read names.
    let server = p.serve(&["app.svc", "--env", "dev"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokens.received_requests().await.unwrap().len() < sent + 2 {
        assert!(
            Instant::now() < deadline,
            "not kept alive:\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let logs = {
        let p = p.clone();
        in_thread(move || {
            p.svc()
                .args(["logs", "api.refresh", "--env", "dev", "--json", "-n", "5"])
                .run()
        })
        .await
    };
    assert_eq!(logs.status, 0, "{}", logs.all_output());
    assert!(
        logs.stdout.contains("keep_alive"),
        "no keep-alive run logged: {}",
        logs.stdout
    );
    assert!(
        server.stderr().contains("keep_alive"),
        "{}",
        server.stderr()
    );
    // Healthy throughout: nothing to say.
    assert!(receiver.events().await.is_empty());
    assert_no_leak(
        &format!("{}{}{}", server.stderr(), logs.stdout, p.logs()),
        &[
            "idle-secret-Ge04",
            "idle-refresh-token-Yt88",
            "idle-refresh-two-Ob67",
            "idle-access-Mn21",
        ],
    );
}

// ---- PostgreSQL: three replicas, one killed -----------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_three_replicas_deliver_each_event_once_even_after_a_kill() {
    use common::rotating::PgProject;
    let tokens = MockServer::start().await;
    let (hook, listener) = reserved_port();
    drop(listener);
    let pg = common::pg::Postgres::shared();
    let p = Arc::new(PgProject::new(pg, "connection_events"));
    p.project.write(
        "app.svc",
        &program(
            &wiremock_endpoints(&tokens),
            "",
            false,
            &hook,
            "connection.degraded connection.recovered",
        ),
    );
    p.set("CLIENT_ID", "pg-events-client");
    p.set("CLIENT_SECRET", "pg-events-secret-Wc13");
    p.set("REFRESH_TOKEN", "pg-events-refresh-Jh90");
    p.set("HOOK_KEY", &signing_secret());

    // A state change while the receiver is down.
    token_answer(&tokens, 503, json!({"error": "temporarily_unavailable"})).await;
    let run = refresh(p.svc()).await;
    assert_eq!(run.status, 1, "{}", run.all_output());
    let stored = pg.psql(
        &p.db,
        "SELECT delivery->>'event' FROM svc_outbox WHERE status = 'pending'",
    );
    assert_eq!(stored.trim(), "connection.degraded");

    // Three replicas try it and fail; then all are killed (SIGKILL).
    let serve = |p: &PgProject| p.serve(&["app.svc"]);
    let mut replicas: Vec<_> = (0..3).map(|_| serve(&p)).collect();
    let watched = p.clone();
    assert!(
        eventually(30, move || {
            let listed = deliveries(watched.svc(), false);
            listed[0]["attempts"].as_u64().unwrap_or(0) >= 2
        })
        .await,
        "not tried: {:?}",
        deliveries(p.svc(), true)
    );
    let mut outputs = String::new();
    for replica in &mut replicas {
        replica.child.kill().unwrap();
        replica.child.wait().unwrap();
        outputs += &replica.stderr();
    }
    drop(replicas);

    // The receiver comes up, slow to answer, and the replicas come back:
    // delivered once.
    let receiver = Receiver::start_slow(Some(listen_again(&hook)), Duration::from_secs(2)).await;
    let replicas: Vec<_> = (0..3).map(|_| serve(&p)).collect();
    let degraded = receiver.wait_for("connection.degraded", 90).await;
    let waiting = {
        let p = p.clone();
        in_thread(move || deliveries(p.svc(), true)).await
    };
    assert_eq!(degraded.id, waiting[0]["id"], "{waiting:?}");

    // A recovery while the three run: delivered once.
    token_answer(
        &tokens,
        200,
        json!({"access_token": "pg-events-access-Lx71", "refresh_token": "pg-events-refresh-two-Qe25",
               "expires_in": 3600}),
    )
    .await;
    let run = refresh(p.svc()).await;
    assert_eq!(run.status, 0, "{}", run.all_output());
    receiver.wait_for("connection.recovered", 30).await;
    // A duplicate would come within a pass or two (one a second per
    // replica); there is nothing to poll for its absence.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        receiver.counts().await,
        BTreeMap::from([
            ("connection.degraded".to_string(), 1),
            ("connection.recovered".to_string(), 1),
        ]),
        "an event was sent twice"
    );
    let delivered = pg.psql(
        &p.db,
        "SELECT count(*) FROM svc_outbox WHERE status = 'delivered'",
    );
    assert_eq!(delivered.trim(), "2");

    // Every replica reads the same state from the database: the API, and
    // the gauges (read behind the scrape, so polled).
    let key = {
        let p = p.clone();
        in_thread(move || {
            let run = p
                .svc()
                .args(["key", "create", "--as", "status_bot", "--env", "dev"])
                .args(["--program", "app.svc"])
                .run();
            assert_eq!(run.status, 0, "{}", run.all_output());
            run.stdout.trim().to_string()
        })
        .await
    };
    let replicas = Arc::new(replicas);
    for index in 0..3 {
        let (replicas, key) = (replicas.clone(), key.clone());
        let answer = in_thread(move || {
            replicas[index].call("GET", "/api/connections/app/default", Some(&key), None)
        })
        .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let shown = answer.json();
        assert_eq!(
            (
                shown["state"].as_str(),
                shown["consecutive_failures"].as_u64()
            ),
            (Some("healthy"), Some(0)),
            "{shown}"
        );
        outputs += &answer.body;
    }
    let gauge = "svc_connection_state{environment=\"dev\",client=\"app\",connection_id=\"default\",state=\"healthy\"} 1";
    let scraped = replicas.clone();
    assert!(
        eventually(20, move || {
            scraped[0]
                .call("GET", "/metrics", None, None)
                .body
                .contains(gauge)
        })
        .await,
        "{}",
        replicas[0].call("GET", "/metrics", None, None).body
    );
    for replica in replicas.iter() {
        outputs += &replica.stderr();
    }
    let bodies: String = receiver.bodies().await;
    assert_no_leak(
        &format!("{outputs}{bodies}{}", p.project.logs()),
        &[
            "pg-events-secret-Wc13",
            "pg-events-refresh-Jh90",
            "pg-events-access-Lx71",
            "pg-events-refresh-two-Qe25",
            &signing_secret(),
        ],
    );
}

// ---- svc connection delete ----------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_connection_revokes_it_clears_it_and_says_so_once() {
    let tokens = MockServer::start().await;
    let receiver = Receiver::start(None).await;
    let p = Arc::new(Project::new());
    p.write(
        "app.svc",
        &program(
            &wiremock_endpoints(&tokens),
            &format!("revocation_url \"{}/revoke\"", tokens.uri()),
            false,
            &receiver.url(),
            "connection.created connection.revoked connection.deleted",
        ),
    );
    p.set("CLIENT_ID", "gone-client");
    p.set("CLIENT_SECRET", "gone-secret-Hv52");
    p.set("REFRESH_TOKEN", "gone-refresh-token-Az07");
    p.set("HOOK_KEY", &signing_secret());
    token_answer(
        &tokens,
        200,
        json!({"access_token": "gone-access-Pe33", "refresh_token": "gone-refresh-two-Ck81",
               "expires_in": 3600}),
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/revoke"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&tokens)
        .await;
    let run = refresh(p.svc()).await;
    assert_eq!(run.status, 0, "{}", run.all_output());
    let server = p.serve(&["app.svc", "--env", "dev"]);
    receiver.wait_for("connection.created", 30).await;

    let deleted = {
        let p = p.clone();
        in_thread(move || {
            p.svc()
                .args([
                    "connection",
                    "delete",
                    "app",
                    "--env",
                    "dev",
                    "--program",
                    "app.svc",
                ])
                .run()
        })
        .await
    };
    assert_eq!(deleted.status, 0, "{}", deleted.all_output());
    assert!(
        deleted
            .stdout
            .contains("the connection `app/default` is deleted"),
        "{}",
        deleted.stdout
    );
    let event = receiver.wait_for("connection.deleted", 30).await;
    assert_eq!(event.body["data"]["state"], "deleted", "{}", event.raw);
    assert_eq!(event.body["data"]["client"], "app");
    // Both tokens went to the revocation endpoint, refresh token first.
    let revoked: Vec<String> = tokens
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == "/revoke")
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert_eq!(revoked.len(), 2, "{revoked:?}");
    assert!(revoked[0].contains("gone-refresh-two-Ck81"), "{revoked:?}");
    // Nothing is left: the secrets, the record.
    let show = {
        let p = p.clone();
        in_thread(move || {
            p.svc()
                .args([
                    "connection",
                    "show",
                    "app",
                    "--program",
                    "app.svc",
                    "--env",
                    "dev",
                    "--json",
                ])
                .run()
        })
        .await
    };
    assert_eq!(show.status, 0, "{}", show.all_output());
    let shown: Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(shown["observed"], false, "{shown}");
    let listed = {
        let p = p.clone();
        in_thread(move || p.svc().args(["secret", "list", "--env", "dev"]).run()).await
    };
    assert!(
        !listed.stdout.contains("REFRESH_TOKEN"),
        "{}",
        listed.stdout
    );
    assert!(!listed.stdout.contains("ACCESS_TOKEN"), "{}", listed.stdout);
    assert_eq!(
        receiver.counts().await,
        BTreeMap::from([
            ("connection.created".to_string(), 1),
            ("connection.deleted".to_string(), 1),
        ]),
        "a deletion is not also a revocation"
    );
    let bodies: String = receiver.bodies().await;
    assert_no_leak(
        &format!(
            "{}{}{}{bodies}{}",
            deleted.all_output(),
            show.all_output(),
            server.stderr(),
            p.logs()
        ),
        &[
            "gone-secret-Hv52",
            "gone-refresh-token-Az07",
            "gone-refresh-two-Ck81",
            "gone-access-Pe33",
            &signing_secret(),
        ],
    );
}
