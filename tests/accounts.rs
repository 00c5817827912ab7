//! Connected accounts from the command line: one `per_account` client,
//! several customer accounts authorized by a person (the device flow of a
//! real oidc-provider on 127.0.0.1, approved in headless Chromium), each
//! with its own rotating refresh token. Each account's runs, reads, locks
//! and revocation touch that account only; what the program cannot do
//! without naming an account is refused with a stable code.

mod common;

use std::sync::OnceLock;

use common::authorizing::{Authorizing, introspect, revoke_out_of_band};
use common::{NodeServer, Project, Run};
use serde_json::Value;

const DEVICE: (&str, &str) = ("accounts-device", "accounts-device-secret-7c2d90");

fn provider() -> &'static NodeServer {
    static PROVIDER: OnceLock<NodeServer> = OnceLock::new();
    PROVIDER.get_or_init(|| common::authorizing::device_provider(DEVICE))
}

fn program(issuer: &str, schedule: bool) -> String {
    format!(
        r#"
secret CLIENT_ID     {{ environment_specific }}
secret CLIENT_SECRET {{ environment_specific locked }}
secret ACCOUNT_REFRESH_TOKEN {{ per_account }}
secret ACCOUNT_ACCESS_TOKEN  {{ per_account refreshed_by api.refresh as scheduler min_valid 1h }}

oauth_client app {{
  issuer      "{issuer}"
  client_id   secret.CLIENT_ID
  client_auth client_secret_post(secret.CLIENT_SECRET)
  scopes      "openid offline_access api:read"
  per_account
  stores {{
    refresh_token = ACCOUNT_REFRESH_TOKEN
    access_token  = ACCOUNT_ACCESS_TOKEN
  }}
}}

role token_keeper {{
  grant run api.*
  grant update_secret ACCOUNT_REFRESH_TOKEN
  grant update_secret ACCOUNT_ACCESS_TOKEN
  grant read_secret ACCOUNT_ACCESS_TOKEN
}}
user ops {{ roles token_keeper }}
service_account scheduler {{ roles token_keeper }}
role app_backend {{
  grant connect app
  grant read_status app
  grant run api.refresh
  grant read_secret ACCOUNT_ACCESS_TOKEN
  grant update_secret ACCOUNT_REFRESH_TOKEN
  grant update_secret ACCOUNT_ACCESS_TOKEN
}}
service_account backend {{ roles app_backend }}
role viewer {{ grant read_status app }}
service_account viewer_bot {{ roles viewer }}

service api {{
  var token: string
  var new_refresh_token: string
  var expires_in: number

  action refresh {{
    log "refreshing ${{connection.id}}/${{connection.tags.plan}}"
{refresh}  }}

  action for_acme {{
    run_service api.refresh for_connection "acme-1" as scheduler
  }}

  endpoint refresh {{
    methods GET POST
    log enabled
    process refresh
  }}

  // Not per-account itself: it names the account it runs for.
  endpoint acme {{
    methods POST
    process for_acme
  }}
}}

schedule every_account {{
  endpoint            api.refresh
  service_account     scheduler
  for_each_connection app
  concurrency         2
  every               1s
  {disabled}
}}
"#,
        refresh =
            common::authorizing::refresh_body("ACCOUNT_REFRESH_TOKEN", "ACCOUNT_ACCESS_TOKEN"),
        disabled = if schedule { "" } else { "disabled" }
    )
}

fn project() -> Project {
    let p = Project::new();
    p.write("app.svc", &program(&provider().url("issuer"), false));
    p.set("CLIENT_ID", DEVICE.0);
    p.set("CLIENT_SECRET", DEVICE.1);
    p
}

/// `svc authorize app.svc app --device --connection ID`, approved by a
/// person in a headless browser.
fn connect(p: &Project, id: &str, tags: &[&str]) -> Run {
    let mut extra = vec!["--as", "ops", "--device", "--connection", id];
    for tag in tags {
        extra.extend(["--tag", tag]);
    }
    let mut authorizing = Authorizing::start(p, &extra);
    let event = authorizing.expect("device_code");
    let person = common::device_consent(
        event["verification_uri"].as_str().unwrap(),
        event["user_code"].as_str().unwrap(),
        "approve",
    );
    assert_eq!(person["outcome"], "device_approved", "{person}");
    let (status, _, run) = authorizing.finish();
    assert_eq!(status, 0, "{}", run.all_output());
    run
}

/// A per-account secret's value for one account.
fn value(p: &Project, name: &str, id: &str) -> String {
    let run = p
        .svc()
        .args([
            "secret",
            "get",
            name,
            "--connection",
            id,
            "--program",
            "app.svc",
            "--env",
            "dev",
        ])
        .run();
    assert_eq!(run.status, 0, "{}", run.all_output());
    run.stdout.trim().to_string()
}

fn svc(p: &Project, args: &[&str]) -> Run {
    p.svc().args(args.iter().copied()).run()
}

fn run_refresh(p: &Project, extra: &[&str]) -> Run {
    let mut args = vec![
        "run",
        "app.svc",
        "api.refresh",
        "--env",
        "dev",
        "--as",
        "ops",
    ];
    args.extend_from_slice(extra);
    svc(p, &args)
}

fn refused(run: &Run, code: &str) {
    assert_eq!(run.status, 2, "{}", run.all_output());
    assert!(run.stderr.contains(code), "{}", run.stderr);
    assert!(run.stderr.contains("help"), "{}", run.stderr);
}

fn assert_no_leak(text: &str, values: &[String]) {
    for value in values {
        assert!(!value.is_empty());
        assert!(!text.contains(value.as_str()), "a token leaked:\n{text}");
    }
}

#[test]
fn each_connected_account_keeps_and_refreshes_its_own_tokens() {
    let p = project();
    let check = svc(&p, &["check", "app.svc"]);
    assert_eq!(check.status, 0, "{}", check.all_output());

    let mut outputs = String::new();
    outputs += &connect(&p, "acme-1", &["plan=pro"]).all_output();
    outputs += &connect(&p, "beta@2", &["plan=free", "team=blue"]).all_output();
    let acme_refresh = value(&p, "ACCOUNT_REFRESH_TOKEN", "acme-1");
    let beta_refresh = value(&p, "ACCOUNT_REFRESH_TOKEN", "beta@2");
    assert_ne!(acme_refresh, beta_refresh);
    // Nothing per-account lands in the shared secrets.
    let shared = svc(&p, &["secret", "list", "--env", "dev"]);
    assert!(!shared.stdout.contains("ACCOUNT_"), "{}", shared.stdout);

    // Both accounts, with their tags and state; a filter by tag.
    let list = svc(
        &p,
        &[
            "connection",
            "list",
            "--program",
            "app.svc",
            "--env",
            "dev",
            "--json",
        ],
    );
    assert_eq!(list.status, 0, "{}", list.all_output());
    let listed: Value = serde_json::from_str(&list.stdout).unwrap();
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["connection_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["acme-1", "beta@2"], "{listed}");
    assert_eq!(listed[0]["tags"]["plan"], "pro", "{listed}");
    assert_eq!(listed[1]["state"], "healthy", "{listed}");
    let blue = svc(
        &p,
        &[
            "connection",
            "list",
            "--program",
            "app.svc",
            "--env",
            "dev",
            "--json",
            "--tag",
            "team=blue",
        ],
    );
    let blue: Value = serde_json::from_str(&blue.stdout).unwrap();
    assert_eq!(blue.as_array().unwrap().len(), 1, "{blue}");
    assert_eq!(blue[0]["connection_id"], "beta@2");

    // A run for one account rotates that account's refresh token only,
    // and sees its id and tags.
    let run = run_refresh(&p, &["--connection", "acme-1"]);
    assert_eq!(run.status, 0, "{}", run.all_output());
    assert!(
        run.all_output().contains("acme-1/pro"),
        "{}",
        run.all_output()
    );
    outputs += &run.all_output();
    let acme_rotated = value(&p, "ACCOUNT_REFRESH_TOKEN", "acme-1");
    assert_ne!(acme_rotated, acme_refresh);
    assert_eq!(value(&p, "ACCOUNT_REFRESH_TOKEN", "beta@2"), beta_refresh);
    assert_eq!(
        introspect(provider(), DEVICE, &acme_refresh)["active"],
        false,
        "the old refresh token was spent"
    );
    assert_eq!(
        introspect(provider(), DEVICE, &beta_refresh)["active"],
        true
    );

    // An endpoint that names its account runs it too, and the account's
    // state follows.
    let succeeded = account(&p, "acme-1")["last_success_at"].clone();
    let acme = svc(
        &p,
        &["run", "app.svc", "api.acme", "--env", "dev", "--as", "ops"],
    );
    assert_eq!(acme.status, 0, "{}", acme.all_output());
    outputs += &acme.all_output();
    assert_ne!(value(&p, "ACCOUNT_REFRESH_TOKEN", "acme-1"), acme_rotated);
    assert_eq!(value(&p, "ACCOUNT_REFRESH_TOKEN", "beta@2"), beta_refresh);
    let after = account(&p, "acme-1");
    assert!(after["last_success_at"].is_string(), "{after}");
    assert_ne!(after["last_success_at"], succeeded, "{after}");

    // A fresh read refreshes only when due: the access token is valid for
    // less than its `min_valid` (1h) at oidc-provider, so it refreshes.
    let fresh = svc(
        &p,
        &[
            "secret",
            "get",
            "ACCOUNT_ACCESS_TOKEN",
            "--connection",
            "beta@2",
            "--fresh",
            "--program",
            "app.svc",
            "--env",
            "dev",
        ],
    );
    assert_eq!(fresh.status, 0, "{}", fresh.all_output());
    assert!(fresh.stderr.contains("refreshed"), "{}", fresh.stderr);
    let beta_rotated = value(&p, "ACCOUNT_REFRESH_TOKEN", "beta@2");
    assert_ne!(beta_rotated, beta_refresh);
    assert_eq!(
        fresh.stdout.trim(),
        value(&p, "ACCOUNT_ACCESS_TOKEN", "beta@2")
    );

    // What cannot run without an account, or with one that is not.
    refused(&run_refresh(&p, &[]), "svc::run::connection_required");
    refused(
        &run_refresh(&p, &["--connection", "nobody"]),
        "svc::connection::unknown",
    );
    refused(
        &run_refresh(&p, &["--connection", "a b"]),
        "svc::connection::invalid_id",
    );
    refused(
        &svc(
            &p,
            &[
                "authorize",
                "app.svc",
                "app",
                "--env",
                "dev",
                "--as",
                "ops",
                "--no-browser",
            ],
        ),
        "svc::authorize::connection",
    );

    // Tags are replaced; `show` says the account's state and re-consent.
    let tagged = svc(
        &p,
        &[
            "connection",
            "tag",
            "app",
            "--connection",
            "acme-1",
            "plan=enterprise",
            "--program",
            "app.svc",
            "--env",
            "dev",
        ],
    );
    assert_eq!(tagged.status, 0, "{}", tagged.all_output());
    let shown = svc(
        &p,
        &[
            "connection",
            "show",
            "app",
            "--connection",
            "acme-1",
            "--program",
            "app.svc",
            "--env",
            "dev",
            "--json",
        ],
    );
    assert_eq!(shown.status, 0, "{}", shown.all_output());
    let shown: Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(shown["tags"]["plan"], "enterprise", "{shown}");
    assert!(shown["access_token_expires_at"].is_string(), "{shown}");
    assert!(
        shown["reconsent_command"]
            .as_str()
            .unwrap()
            .contains("--connection acme-1"),
        "{shown}"
    );

    // Deleting one account revokes its tokens at the provider and forgets
    // it; the other keeps working.
    let deleted = svc(
        &p,
        &[
            "connection",
            "delete",
            "app",
            "--connection",
            "beta@2",
            "--program",
            "app.svc",
            "--env",
            "dev",
        ],
    );
    assert_eq!(deleted.status, 0, "{}", deleted.all_output());
    outputs += &deleted.all_output();
    assert_eq!(
        introspect(provider(), DEVICE, &beta_rotated)["active"],
        false
    );
    refused(
        &run_refresh(&p, &["--connection", "beta@2"]),
        "svc::connection::unknown",
    );
    let again = run_refresh(&p, &["--connection", "acme-1"]);
    assert_eq!(again.status, 0, "{}", again.all_output());
    outputs += &again.all_output();

    // No output held a token: the run logs neither.
    let logs = svc(&p, &["logs", "app.svc", "api.refresh", "--env", "dev"]);
    outputs += &logs.all_output();
    assert_no_leak(
        &outputs,
        &[
            acme_refresh,
            acme_rotated,
            beta_refresh,
            beta_rotated,
            value(&p, "ACCOUNT_ACCESS_TOKEN", "acme-1"),
        ],
    );
}

/// `svc connection show app --connection ID --json`.
fn account(p: &Project, id: &str) -> Value {
    let run = svc(
        p,
        &[
            "connection",
            "show",
            "app",
            "--connection",
            id,
            "--program",
            "app.svc",
            "--env",
            "dev",
            "--json",
        ],
    );
    assert_eq!(run.status, 0, "{}", run.all_output());
    serde_json::from_str(&run.stdout).unwrap()
}

#[test]
fn a_schedule_refreshes_every_account_that_works_and_leaves_a_dead_one_alone() {
    let p = project();
    for id in ["one", "two", "three"] {
        connect(&p, id, &[]);
    }
    let first: Vec<String> = ["one", "two", "three"]
        .iter()
        .map(|id| value(&p, "ACCOUNT_REFRESH_TOKEN", id))
        .collect();
    // The customer of `three` removed the app at the provider.
    revoke_out_of_band(provider(), DEVICE, &first[2]);
    p.write("app.svc", &program(&provider().url("issuer"), true));
    let served = p.serve(&["app.svc", "--env", "dev"]);

    // Each working account is refreshed, tick after tick; the dead one
    // needs a person after its one refusal.
    let mut seen = vec![first[0].clone(), first[1].clone()];
    let rotated_twice = common::eventually(30, || {
        let now = [
            value(&p, "ACCOUNT_REFRESH_TOKEN", "one"),
            value(&p, "ACCOUNT_REFRESH_TOKEN", "two"),
        ];
        for token in now {
            if !seen.contains(&token) {
                seen.push(token);
            }
        }
        // Two rotations of each: at least two ticks ran.
        seen.len() >= 6
    });
    assert!(rotated_twice, "{}", served.stderr());
    let dead = account(&p, "three");
    assert_eq!(dead["state"], "needs_reconsent", "{dead}");
    assert_eq!(dead["last_error"]["code"], "invalid_grant", "{dead}");
    assert_eq!(account(&p, "one")["state"], "healthy");

    // The ticks go on; the dead account is never asked again.
    let before = value(&p, "ACCOUNT_REFRESH_TOKEN", "one");
    assert!(common::eventually(20, || value(
        &p,
        "ACCOUNT_REFRESH_TOKEN",
        "one"
    ) != before));
    assert_eq!(account(&p, "three")["consecutive_failures"], 1);
    let state = common::authorizing::schedule_state(&p, "every_account");
    assert!(state["last_run_at"].is_string(), "{state}");

    let mut log = served.stderr();
    log += &svc(&p, &["logs", "app.svc", "api.refresh", "--env", "dev"]).all_output();
    assert!(log.contains("connected account"), "{log}");
    assert_no_leak(&log, &seen);
}

fn ids(listed: &Value) -> Vec<String> {
    listed["connections"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .iter()
        .map(|c| c["connection_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_connections_api_pages_reads_tags_deletes_and_keeps_keys_to_their_accounts() {
    let p = project();
    connect(&p, "acme-1", &["plan=pro", "team=red"]);
    connect(&p, "acme-2", &["plan=free", "team=blue"]);
    connect(&p, "beta-3", &["plan=pro", "team=blue"]);
    let served = p.serve(&["app.svc", "--env", "dev"]);
    let program = ["--program", "app.svc"];
    let key = p.key("backend", &program);
    let blue = p.key(
        "backend",
        &["--program", "app.svc", "--connection-tag", "team=blue"],
    );
    let acme = p.key(
        "backend",
        &["--program", "app.svc", "--connection-prefix", "acme-"],
    );
    let viewer = p.key("viewer_bot", &program);
    let get = |path: &str, key: &str| served.call("GET", path, Some(key), None);

    // Page by page, with a cursor.
    let first = get("/api/connections?client=app&limit=2", &key);
    assert_eq!(first.status, 200, "{}", first.body);
    let first = first.json();
    assert_eq!(ids(&first), ["acme-1", "acme-2"], "{first}");
    assert!(first["connections"][0]["value"].is_null());
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let second = get(
        &format!("/api/connections?client=app&limit=2&cursor={cursor}"),
        &key,
    )
    .json();
    assert_eq!(ids(&second), ["beta-3"], "{second}");
    assert!(second["next_cursor"].is_null(), "{second}");
    let pro = get("/api/connections?tag=plan%3Dpro", &key).json();
    assert_eq!(ids(&pro), ["acme-1", "beta-3"], "{pro}");
    assert_eq!(
        get("/api/connections?cursor=nonsense", &key).status,
        400,
        "a cursor svc did not make"
    );

    // One connection, and one account's token: its own.
    let one = get("/api/connections/app/acme-2", &key).json();
    assert_eq!(
        (one["state"].as_str(), one["tags"]["team"].as_str()),
        (Some("healthy"), Some("blue")),
        "{one}"
    );
    let token = get(
        "/api/connections/app/acme-2/secrets/ACCOUNT_ACCESS_TOKEN",
        &key,
    );
    assert_eq!(token.status, 200, "{}", token.body);
    let token = token.json();
    assert_eq!(token["connection_id"], "acme-2");
    let acme2_access = value(&p, "ACCOUNT_ACCESS_TOKEN", "acme-2");
    assert_eq!(token["value"], acme2_access.as_str());
    assert_ne!(acme2_access, value(&p, "ACCOUNT_ACCESS_TOKEN", "acme-1"));
    // Not a per-account secret of the client, an unknown account.
    assert_eq!(
        get("/api/connections/app/acme-2/secrets/CLIENT_SECRET", &key).status,
        403
    );
    assert_eq!(
        get(
            "/api/connections/app/nobody/secrets/ACCOUNT_ACCESS_TOKEN",
            &key
        )
        .status,
        404
    );
    // Reading needs `read_secret`; the status alone does not give it.
    assert_eq!(get("/api/connections/app/acme-2", &viewer).status, 200);
    assert_eq!(
        get(
            "/api/connections/app/acme-2/secrets/ACCOUNT_ACCESS_TOKEN",
            &viewer
        )
        .status,
        403
    );

    // A key limited to some accounts sees those only: the others are 404,
    // as if they did not exist.
    assert_eq!(
        ids(&get("/api/connections", &blue).json()),
        ["acme-2", "beta-3"]
    );
    assert_eq!(
        ids(&get("/api/connections", &acme).json()),
        ["acme-1", "acme-2"]
    );
    assert_eq!(get("/api/connections/app/acme-1", &blue).status, 404);
    assert_eq!(
        get(
            "/api/connections/app/acme-1/secrets/ACCOUNT_ACCESS_TOKEN",
            &blue
        )
        .status,
        404
    );
    assert_eq!(get("/api/connections/app/beta-3", &acme).status, 404);
    let elsewhere = served.call(
        "POST",
        "/api/services/api/refresh?connection=acme-1",
        Some(&blue),
        None,
    );
    assert_eq!(elsewhere.status, 404, "{}", elsewhere.body);

    // A run for one account, over HTTP; without one it is refused.
    let ran = served.call(
        "POST",
        "/api/services/api/refresh?connection=acme-2",
        Some(&key),
        None,
    );
    assert_eq!(ran.status, 200, "{}", ran.body);
    assert_ne!(value(&p, "ACCOUNT_ACCESS_TOKEN", "acme-2"), acme2_access);
    let without = served.call("POST", "/api/services/api/refresh", Some(&key), None);
    assert_eq!(without.status, 400, "{}", without.body);
    assert_eq!(
        without.json()["error"]["code"],
        "connection_required",
        "{}",
        without.body
    );

    // Tags change with `connect`, not with `read_status`.
    let tags = r#"{"tags": {"plan": "enterprise", "team": "blue"}}"#;
    assert_eq!(
        served
            .call(
                "PATCH",
                "/api/connections/app/acme-1",
                Some(&viewer),
                Some(tags)
            )
            .status,
        403
    );
    let patched = served.call(
        "PATCH",
        "/api/connections/app/acme-1",
        Some(&key),
        Some(tags),
    );
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.json()["tags"]["plan"], "enterprise");
    assert_eq!(
        ids(&get("/api/connections", &blue).json()),
        ["acme-1", "acme-2", "beta-3"]
    );
    let bad = served.call(
        "PATCH",
        "/api/connections/app/acme-1",
        Some(&key),
        Some(r#"{"tags": {"9": "x"}}"#),
    );
    assert_eq!(bad.status, 400, "{}", bad.body);

    // Deleting revokes at the provider and forgets the account.
    let beta_refresh = value(&p, "ACCOUNT_REFRESH_TOKEN", "beta-3");
    assert_eq!(
        served
            .call("DELETE", "/api/connections/app/beta-3", Some(&viewer), None)
            .status,
        403
    );
    let deleted = served.call("DELETE", "/api/connections/app/beta-3", Some(&key), None);
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(
        deleted.json()["revoked"][0],
        "refresh_token",
        "{}",
        deleted.body
    );
    assert_eq!(
        introspect(provider(), DEVICE, &beta_refresh)["active"],
        false
    );
    assert_eq!(get("/api/connections/app/beta-3", &key).status, 404);
    assert_eq!(
        ids(&get("/api/connections", &key).json()),
        ["acme-1", "acme-2"]
    );

    // No token in the server's log, the listings or the audit.
    let mut text = served.stderr();
    text += &first.to_string();
    let audit = std::fs::read_to_string(p.path().join("logs/dev/audit.jsonl")).unwrap();
    // Each read of an account's token is recorded with its account.
    assert!(
        audit.lines().any(|l| l.contains("\"action\":\"read\"")
            && l.contains("\"connection_id\":\"acme-2\"")
            && l.contains("ACCOUNT_ACCESS_TOKEN")),
        "{audit}"
    );
    text += &audit;
    assert_no_leak(
        &text,
        &[beta_refresh, value(&p, "ACCOUNT_REFRESH_TOKEN", "acme-1")],
    );
}

#[test]
fn keep_alive_refreshes_each_account_nobody_uses() {
    let p = project();
    connect(&p, "quiet-1", &[]);
    connect(&p, "quiet-2", &[]);
    let before = [
        value(&p, "ACCOUNT_REFRESH_TOKEN", "quiet-1"),
        value(&p, "ACCOUNT_REFRESH_TOKEN", "quiet-2"),
    ];
    // No schedule, no reads: only keep_alive refreshes them.
    p.write(
        "app.svc",
        &program(&provider().url("issuer"), false)
            .replace("  per_account\n", "  per_account\n  keep_alive 2s\n"),
    );
    let served = p.serve(&["app.svc", "--env", "dev"]);
    let refreshed = common::eventually(40, || {
        value(&p, "ACCOUNT_REFRESH_TOKEN", "quiet-1") != before[0]
            && value(&p, "ACCOUNT_REFRESH_TOKEN", "quiet-2") != before[1]
    });
    assert!(refreshed, "not kept alive:\n{}", served.stderr());
    let log = served.stderr();
    assert!(
        log.contains("keep_alive") && log.contains("quiet-2"),
        "{log}"
    );
    assert_no_leak(&log, &before);
}
