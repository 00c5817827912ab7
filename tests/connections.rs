//! Connections that know when they are dead: a refresh token the provider
//! no longer accepts puts its connection in `needs_reconsent`, after which
//! nothing refreshes it (runs exit 4, schedules skip, reads answer 409)
//! until a person authorizes again; a provider that fails for a while only
//! degrades it. Against oidc-provider (real revocation, real rotation) and
//! a wiremock fault server, on 127.0.0.1.

mod common;

use common::authorizing::{introspect, revoke_out_of_band, schedule_state};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{NodeServer, Project, Run};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const DEVICE: (&str, &str) = ("conn-device", "conn-device-secret-5b1e77");

fn provider() -> &'static NodeServer {
    static PROVIDER: OnceLock<NodeServer> = OnceLock::new();
    PROVIDER.get_or_init(|| common::authorizing::device_provider(DEVICE))
}

/// The program of tests/common/authorizing.rs, without a notify.
fn program(endpoints: &str, schedule: bool) -> String {
    common::authorizing::refresh_program(endpoints, "", schedule, None)
}

fn run_refresh(p: &Project, extra: &[&str]) -> Run {
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
        .args(extra.iter().copied())
        .run()
}

fn assert_no_leak(text: &str, values: &[&str]) {
    for value in values {
        assert!(!value.is_empty());
        assert!(!text.contains(value), "`{value}` leaked:\n{text}");
    }
}

// ---- a provider that fails in every way, played by wiremock -----------------

async fn answer(server: &MockServer, status: u16, body: Value) {
    server.reset().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .mount(server)
        .await;
}

async fn in_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_answer_moves_the_connection_to_its_state_and_a_dead_one_is_left_alone() {
    let server = MockServer::start().await;
    let p = std::sync::Arc::new(Project::new());
    p.write(
        "app.svc",
        &program(
            &format!(
                "authorize_url \"{0}/authorize\"\n  token_url \"{0}/token\"",
                server.uri()
            ),
            false,
        ),
    );
    p.set("CLIENT_ID", "fault-client");
    p.set("CLIENT_SECRET", "fault-secret-Qz81");
    p.set("REFRESH_TOKEN", "first-refresh-token-Lm3k");
    let refresh = |extra: &'static [&'static str]| {
        let p = p.clone();
        in_thread(move || run_refresh(&p, extra))
    };
    let show = || {
        let p = p.clone();
        in_thread(move || common::connection_show(p.svc(), "app"))
    };
    let mut outputs = String::new();

    // Never refreshed: known, and not observed yet.
    let first = show().await;
    assert_eq!(
        (first["state"].as_str(), first["observed"].as_bool()),
        (Some("healthy"), Some(false))
    );

    // 503: degraded, the runs go on.
    answer(&server, 503, json!({"error": "temporarily_unavailable"})).await;
    let run = refresh(&[]).await;
    assert_eq!(run.status, 1, "{}", run.stderr);
    outputs += &run.all_output();
    let c = show().await;
    assert_eq!(c["state"], "degraded", "{c}");
    assert_eq!(c["consecutive_failures"], 1);
    assert_eq!(c["last_error"]["code"], "temporarily_unavailable");

    // A good answer: healthy again, and the refresh token's expiry kept.
    answer(
        &server,
        200,
        json!({"access_token": "access-Wq9-one", "refresh_token": "second-refresh-token-Vb7n",
               "expires_in": 3600, "refresh_token_expires_in": 86400}),
    )
    .await;
    let run = refresh(&[]).await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    outputs += &run.all_output();
    let c = show().await;
    assert_eq!(
        (c["state"].as_str(), c["consecutive_failures"].as_u64()),
        (Some("healthy"), Some(0)),
        "{c}"
    );
    let expires: chrono::DateTime<chrono::Utc> = c["refresh_token_expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let ahead = expires - chrono::Utc::now();
    assert!(
        ahead > chrono::TimeDelta::hours(23) && ahead <= chrono::TimeDelta::hours(24),
        "{c}"
    );

    // Google's dead refresh token: needs_reconsent.
    answer(
        &server,
        400,
        json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."}),
    )
    .await;
    let run = refresh(&[]).await;
    assert_eq!(run.status, 1, "{}", run.stderr);
    outputs += &run.all_output();
    let c = show().await;
    assert_eq!(c["state"], "needs_reconsent", "{c}");
    assert_eq!(c["last_error"]["code"], "invalid_grant");
    assert_eq!(
        c["reconsent_command"],
        "svc authorize app.svc app --env dev --as ops"
    );

    // Now nothing is sent: exit 4 and the command that fixes it.
    let sent = server.received_requests().await.unwrap().len();
    let run = refresh(&[]).await;
    outputs += &run.all_output();
    assert_eq!(run.status, 4, "{}", run.all_output());
    assert!(
        run.stderr.contains("svc::connection::needs_reconsent"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("svc authorize app.svc app --env dev --as ops"),
        "{}",
        run.stderr
    );
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        sent,
        "a request was sent"
    );
    // A dry run reports what the run would meet.
    assert_eq!(refresh(&["--dry-run"]).await.status, 4);

    // --force sends anyway; a refused client is misconfigured.
    answer(&server, 401, json!({"error": "invalid_client"})).await;
    let run = refresh(&["--force"]).await;
    assert_eq!(run.status, 1, "{}", run.stderr);
    outputs += &run.all_output();
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    assert_eq!(show().await["state"], "misconfigured");
    let run = refresh(&[]).await;
    assert_eq!(run.status, 4, "{}", run.all_output());
    assert!(
        run.stderr.contains("svc::connection::misconfigured"),
        "{}",
        run.stderr
    );

    let list = {
        let p = p.clone();
        in_thread(move || {
            p.svc()
                .args(["connection", "list", "--program", "app.svc", "--env", "dev"])
                .run()
        })
        .await
    };
    assert_eq!(list.status, 0, "{}", list.all_output());
    assert!(
        list.stdout.starts_with("app/default  misconfigured since "),
        "{}",
        list.stdout
    );
    assert!(
        list.stdout.contains("last error: invalid_client"),
        "{}",
        list.stdout
    );
    outputs += &list.all_output();
    assert_no_leak(
        &format!("{outputs}{}", p.logs()),
        &[
            "fault-secret-Qz81",
            "first-refresh-token-Lm3k",
            "second-refresh-token-Vb7n",
            "access-Wq9-one",
        ],
    );
}

// ---- oidc-provider: revoked out of band, then authorized again ---------------

#[test]
fn a_revoked_refresh_token_stops_every_refresh_until_a_person_consents_again() {
    let p = Project::new();
    let issuer = format!("issuer \"{}\"", provider().url("issuer"));
    p.write("app.svc", &program(&issuer, false));
    p.set("CLIENT_ID", DEVICE.0);
    p.set("CLIENT_SECRET", DEVICE.1);
    let mut outputs = common::authorizing::authorize_device(&p).all_output();
    let c = common::connection_show(p.svc(), "app");
    assert_eq!(
        (c["state"].as_str(), c["observed"].as_bool()),
        (Some("healthy"), Some(true)),
        "{c}"
    );

    // Revoked at the provider, out of band (the user removed the app).
    let refresh_token = p.get("REFRESH_TOKEN");
    revoke_out_of_band(provider(), DEVICE, &refresh_token);
    assert_eq!(
        introspect(provider(), DEVICE, &refresh_token)["active"],
        false
    );

    let run = run_refresh(&p, &[]);
    assert_eq!(run.status, 1, "{}", run.all_output());
    outputs += &run.all_output();
    let c = common::connection_show(p.svc(), "app");
    assert_eq!(c["state"], "needs_reconsent", "{c}");
    assert_eq!(c["last_error"]["code"], "invalid_grant");
    let dead_at = common::authorizing::refresh_requests(provider());

    // The schedule fires every second: each fire is skipped, not failed,
    // and nothing reaches the provider.
    p.write("app.svc", &program(&issuer, true));
    let key = p.key("app_reader", &["--program", "app.svc"]);
    let server = p.serve(&["app.svc", "--env", "dev"]);
    let mut fires = std::collections::BTreeSet::new();
    assert!(
        common::eventually(30, || {
            let state = schedule_state(&p, "keep_fresh");
            if state["last_skip_reason"].is_string() {
                fires.insert(state["last_run_at"].to_string());
            }
            fires.len() >= 3
        }),
        "the schedule was not skipped three times: {}\n{}",
        schedule_state(&p, "keep_fresh"),
        server.stderr()
    );
    let state = schedule_state(&p, "keep_fresh");
    assert!(
        state["last_skip_reason"]
            .as_str()
            .unwrap()
            .contains("needs_reconsent"),
        "{state}"
    );
    assert_eq!(state["failures"], 0, "a skip is not a failure: {state}");

    // A read of the refreshed-on-read secret: 409 at once, nothing sent.
    let started = Instant::now();
    let read = server.call("GET", "/api/secrets/ACCESS_TOKEN", Some(&key), None);
    assert_eq!(read.status, 409, "{}", read.body);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        read.json()["error"]["code"],
        "needs_reconsent",
        "{}",
        read.body
    );
    assert_eq!(
        common::authorizing::refresh_requests(provider()),
        dead_at,
        "a refresh reached the provider"
    );

    // `svc secret get --fresh` and `svc run`: exit 4, nothing sent.
    let fresh = p
        .svc()
        .args([
            "secret",
            "get",
            "ACCESS_TOKEN",
            "--env",
            "dev",
            "--fresh",
            "--program",
            "app.svc",
        ])
        .run();
    assert_eq!(fresh.status, 4, "{}", fresh.all_output());
    let run = run_refresh(&p, &[]);
    assert_eq!(run.status, 4, "{}", run.all_output());
    assert!(
        run.stderr
            .contains("svc authorize app.svc app --env dev --as ops"),
        "{}",
        run.stderr
    );
    assert_eq!(
        common::authorizing::refresh_requests(provider()),
        dead_at,
        "a refresh reached the provider"
    );
    outputs += &fresh.all_output();
    outputs += &run.all_output();
    outputs += &server.stderr();
    drop(server);

    // A person consents again: healthy, and refreshes work.
    p.write("app.svc", &program(&issuer, false));
    outputs += &common::authorizing::authorize_device(&p).all_output();
    let c = common::connection_show(p.svc(), "app");
    assert_eq!(
        (c["state"].as_str(), c["consecutive_failures"].as_u64()),
        (Some("healthy"), Some(0)),
        "{c}"
    );
    let run = run_refresh(&p, &[]);
    assert_eq!(run.status, 0, "{}", run.all_output());
    outputs += &run.all_output();
    let new_refresh = p.get("REFRESH_TOKEN");
    assert_eq!(introspect(provider(), DEVICE, &new_refresh)["active"], true);
    assert_no_leak(
        &format!("{outputs}{}", p.logs()),
        &[
            DEVICE.1,
            &refresh_token,
            &new_refresh,
            &p.get("ACCESS_TOKEN"),
        ],
    );
}

// ---- PostgreSQL: processes that observe at once agree ------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_every_observation_counts_and_another_process_sees_the_state() {
    use common::rotating::PgProject;
    let server = MockServer::start().await;
    let pg = common::pg::Postgres::shared();
    let p = std::sync::Arc::new(PgProject::new(pg, "connections"));
    // Four endpoints that refresh the same connection, each with its own
    // run lock: their runs overlap.
    let mut text = program(
        &format!(
            "authorize_url \"{0}/authorize\"\n  token_url \"{0}/token\"",
            server.uri()
        ),
        false,
    );
    let endpoints = ["one", "two", "three", "four"];
    for name in endpoints {
        text = text.replacen(
            "  endpoint refresh {",
            &format!("  endpoint {name} {{\n    methods POST\n    process refresh\n  }}\n\n  endpoint refresh {{"),
            1,
        );
        text = text.replacen(
            "  grant run api.refresh\n",
            &format!("  grant run api.refresh\n  grant run api.{name}\n"),
            1,
        );
    }
    p.project.write("app.svc", &text);
    p.set("CLIENT_ID", "pg-fault-client");
    p.set("CLIENT_SECRET", "pg-fault-secret-Hq71");
    p.set("REFRESH_TOKEN", "pg-refresh-token-Xc44");
    // A slow 503: every run is in flight at once when the answers come.
    server.reset().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_json(json!({"error": "temporarily_unavailable"}))
                .set_delay(Duration::from_millis(500)),
        )
        .mount(&server)
        .await;
    let runs: Vec<_> = endpoints
        .iter()
        .map(|name| {
            let p = p.clone();
            let endpoint = format!("api.{name}");
            tokio::task::spawn_blocking(move || {
                // A run that waited out its lock would observe nothing:
                // each must fail on the provider's answer.
                p.svc()
                    .args(["run", "app.svc", &endpoint, "--env", "dev", "--as", "ops"])
                    .args(["--lock-timeout", "60s"])
                    .run()
            })
        })
        .collect();
    // A run whose database call outlived its deadline (no progress for
    // 4 s on a loaded machine) says it could not record the failure:
    // that one is not counted. A lost update says nothing.
    let mut recorded = 0;
    for run in runs {
        let run = run.await.unwrap();
        assert_eq!(run.status, 1, "{}", run.all_output());
        assert!(
            run.stderr.contains("temporarily_unavailable") || run.stderr.contains("503"),
            "not the provider's failure: {}",
            run.stderr
        );
        if !run.stderr.contains("cannot record the state of connection") {
            recorded += 1;
        }
    }
    let show =
        |p: std::sync::Arc<PgProject>| in_thread(move || common::connection_show(p.svc(), "app"));
    let c = show(p.clone()).await;
    assert_eq!(c["state"], "degraded", "{c}");
    assert!(
        recorded >= 3,
        "the database refused most records: {recorded}"
    );
    assert_eq!(
        c["consecutive_failures"], recorded,
        "an observation was lost: {c}"
    );

    answer(&server, 400, json!({"error": "invalid_grant"})).await;
    let run = {
        let p = p.clone();
        in_thread(move || {
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
        })
        .await
    };
    assert_eq!(run.status, 1, "{}", run.all_output());
    // What the database holds, as another process reads it.
    let stored = pg.psql(
        &p.db,
        "SELECT state->>'state' FROM svc_connections WHERE client = 'app' AND connection_id = 'default'",
    );
    assert_eq!(stored.trim(), "needs_reconsent");
    let sent = server.received_requests().await.unwrap().len();
    let refused = {
        let p = p.clone();
        in_thread(move || {
            p.svc()
                .args(["run", "app.svc", "api.one", "--env", "dev", "--as", "ops"])
                .run()
        })
        .await
    };
    assert_eq!(refused.status, 4, "{}", refused.all_output());
    assert_eq!(server.received_requests().await.unwrap().len(), sent);

    // Twenty observations at once, from one process's tasks on the same
    // database: each counts (a read-modify-write without the row lock
    // loses some).
    let backend = svc::backend::Backend::open(
        &svc::backend::Spec::Postgres {
            url: p.url.clone(),
            state_dir: p.project.path().join("state"),
        },
        "dev",
        &svc::backend::Options::default(),
    )
    .await
    .unwrap();
    let key = svc::backend::ConnectionKey::default_of("app");
    let before = backend.connections.load_one(&key).await.unwrap().unwrap();
    let failed = svc::backend::Observation::Failed {
        class: svc::backend::connection::FailureClass::Transient,
        error: svc::backend::connection::LastError {
            code: "temporarily_unavailable".into(),
            description: None,
        },
    };
    let observing: Vec<_> = (0..20)
        .map(|_| {
            let (backend, key, failed) = (backend.clone(), key.clone(), failed.clone());
            tokio::spawn(async move {
                backend
                    .connections
                    .observe(&key, &failed, &[], chrono::Utc::now())
                    .await
                    .unwrap()
            })
        })
        .collect();
    for observed in observing {
        observed.await.unwrap();
    }
    let after = backend.connections.load_one(&key).await.unwrap().unwrap();
    assert_eq!(
        after.consecutive_failures,
        before.consecutive_failures + 20,
        "observations were lost"
    );
    assert_eq!(after.state, svc::backend::Health::NeedsReconsent);
}
