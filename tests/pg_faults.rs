//! The PostgreSQL backend under database faults made for real: a lock
//! session terminated by an administrator or closed for idling, a database
//! restarted or stopped while a provider's answer is on its way, a paused
//! database, and more runs at once than the pool has connections. The
//! promise under test is the one svc is built on: a rotated refresh token is
//! never lost, and never presented twice (the provider counts reuse).

mod common;

use std::time::{Duration, Instant};

use common::pg::Postgres;
use common::rotating::*;
use common::{Answer, NodeServer, Served};

const REFRESH: &str = "/api/services/vendor/refresh";

/// Triggers a refresh on a replica, on a thread of its own.
fn trigger(replica: &Served, key: &str) -> std::thread::JoinHandle<Answer> {
    let (base, key) = (replica.base.clone(), key.to_string());
    std::thread::spawn(move || {
        let output = std::process::Command::new("curl")
            .args(["-s", "-o", "-", "-w", "\n%{http_code}", "-m", "120", "-H"])
            .arg(format!("Authorization: Bearer {key}"))
            .arg(format!("{base}{REFRESH}"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
        Answer {
            status: status.trim().parse().unwrap_or(0),
            headers: String::new(),
            body: body.to_string(),
        }
    })
}

/// The chain is whole: every refresh the provider answered was presented
/// once, and the stored refresh token is the live one.
fn assert_chain_whole(server: &NodeServer, p: &PgProject, grants: u64) {
    let counts = stats(server);
    assert_eq!(counts["reused_refresh_tokens"], 0, "{counts}");
    assert_eq!(counts["rejected_refresh_grants"], 0, "{counts}");
    assert_eq!(counts["refresh_grants"], grants, "{counts}");
    let live = stored(&p.project, &Some(p.url.clone()), "REFRESH_TOKEN");
    assert!(active(server, &live), "the stored refresh token is live");
}

fn journal_rows(pg: &Postgres, db: &str) -> usize {
    pg.psql(db, "SELECT count(*) FROM svc_journal")
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_terminated_lock_session_never_lets_a_token_be_sent_twice() {
    let pg = Postgres::shared();
    let (server, p) = rotating_pg(pg, "lock_terminated");
    let key = p.key("nightly");
    let a = p.serve(&[".", "--no-schedules"]);
    let b = p.serve(&[".", "--no-schedules"]);
    delay_answers(&server, 3000);
    let first = trigger(&a, &key);
    wait_for_requests(&server, 1);
    // The provider rotated the token and takes its time to answer; an
    // administrator ends the session that holds the run lock.
    assert!(pg.terminate_lock_holders(&p.db) >= 1);
    let second = trigger(&b, &key);
    let (first, second) = (first.join().unwrap(), second.join().unwrap());
    // The first run got the answer and could not write it: its lock was
    // gone. The second waited for that answer instead of sending the spent
    // token, stored it, and refreshed with it.
    assert_eq!(first.status, 503, "{}", first.body);
    assert_eq!(
        first.json()["error"]["diagnostic"],
        "svc::run::lock_lost",
        "{}",
        first.body
    );
    assert_eq!(second.status, 200, "{}", second.body);
    assert!(
        second.body.contains("kept an answer that was never stored"),
        "{}",
        second.body
    );
    assert_chain_whole(&server, &p, 2);
    assert_eq!(journal_rows(pg, &p.db), 0, "settled");
    let live = stored(&p.project, &Some(p.url.clone()), "REFRESH_TOKEN");
    for output in [&first.body, &second.body, &a.stderr(), &b.stderr()] {
        assert!(
            !output.contains(&live),
            "the refresh token leaked:\n{output}"
        );
    }
}

#[test]
fn an_idle_session_timeout_never_ends_a_run_lock() {
    let pg = Postgres::shared();
    let (server, p) = rotating_pg(pg, "lock_idle");
    pg.psql(
        "postgres",
        "ALTER DATABASE lock_idle SET idle_session_timeout = '500ms'",
    );
    let key = p.key("nightly");
    let a = p.serve(&[".", "--no-schedules"]);
    let b = p.serve(&[".", "--no-schedules"]);
    delay_answers(&server, 2500);
    let first = trigger(&a, &key);
    wait_for_requests(&server, 1);
    let second = trigger(&b, &key);
    let (first, second) = (first.join().unwrap(), second.join().unwrap());
    // The lock outlived the server's idle timeout: the second run waited
    // for it, and presented the token the first one stored.
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(second.status, 200, "{}", second.body);
    assert_chain_whole(&server, &p, 2);
}

#[test]
fn a_database_restart_during_a_refresh_loses_nothing() {
    let pg = Postgres::start();
    let (server, p) = rotating_pg(&pg, "restart_mid_run");
    let key = p.key("nightly");
    let replica = p.serve(&[".", "--no-schedules"]);
    delay_answers(&server, 3000);
    let first = trigger(&replica, &key);
    wait_for_requests(&server, 1);
    pg.restart();
    let first = first.join().unwrap();
    // The lock went with the restart: the run kept the answer and wrote
    // nothing.
    assert_eq!(first.status, 503, "{}", first.body);
    assert_eq!(
        first.json()["error"]["diagnostic"],
        "svc::run::lock_lost",
        "{}",
        first.body
    );
    delay_answers(&server, 0);
    let next = trigger(&replica, &key).join().unwrap();
    assert_eq!(next.status, 200, "{}", next.body);
    assert_chain_whole(&server, &p, 2);
}

#[test]
fn an_answer_that_came_while_the_database_was_down_reaches_every_replica() {
    let pg = Postgres::start();
    let (server, p) = rotating_pg(&pg, "outage_replicas");
    let key = p.key("nightly");
    // Two hosts: each replica keeps its spool in a state directory of its own.
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = p.serve(&[
        ".",
        "--no-schedules",
        "--state-dir",
        dir_a.path().to_str().unwrap(),
    ]);
    let b = p.serve(&[
        ".",
        "--no-schedules",
        "--state-dir",
        dir_b.path().to_str().unwrap(),
    ]);
    delay_answers(&server, 2000);
    let first = trigger(&a, &key);
    wait_for_requests(&server, 1);
    pg.stop();
    // The answer comes while the database is down: only A's spool has it.
    let spool = dir_a.path().join("dev/journal-spool");
    assert!(
        common::eventually(20, || std::fs::read_dir(&spool)
            .is_ok_and(|d| d.count() == 1)),
        "the answer is kept on A's host"
    );
    pg.restart();
    let first = first.join().unwrap();
    assert_eq!(first.status, 503, "{}", first.body);
    // A copies it into the database by itself; B stores it before it
    // presents anything.
    delay_answers(&server, 0);
    let second = trigger(&b, &key).join().unwrap();
    assert_eq!(second.status, 200, "{}", second.body);
    assert_chain_whole(&server, &p, 2);
    assert!(std::fs::read_dir(&spool).unwrap().next().is_none());
}

#[test]
fn an_outage_longer_than_a_run_waits_keeps_the_rotated_token() {
    let pg = Postgres::start();
    let (server, p) = rotating_pg(&pg, "outage_cli");
    delay_answers(&server, 2000);
    let run = |p: &PgProject| {
        p.svc()
            .args([
                "run",
                "vendor.svc",
                "vendor.refresh",
                "--env",
                "dev",
                "--as",
                "nightly",
            ])
            .run()
    };
    let failed = std::thread::scope(|scope| {
        let running = scope.spawn(|| run(&p));
        wait_for_requests(&server, 1);
        pg.stop();
        running.join().unwrap()
    });
    // The run tried its write for as long as it waits for the database,
    // then gave up: the answer that carries the rotated token is kept on
    // this host.
    assert_eq!(failed.status, 1, "{}", failed.all_output());
    let spool = p.project.path().join("state/dev/journal-spool");
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 1);
    pg.restart();
    delay_answers(&server, 0);
    let next = run(&p);
    assert_eq!(next.status, 0, "{}", next.all_output());
    assert!(
        next.stdout.contains("kept an answer that was never stored"),
        "{}",
        next.stdout
    );
    assert_chain_whole(&server, &p, 2);
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0);
    let live = stored(&p.project, &Some(p.url.clone()), "REFRESH_TOKEN");
    assert!(!failed.all_output().contains(&live) && !next.all_output().contains(&live));
}

#[test]
fn a_paused_database_fails_reads_within_five_seconds_and_metrics_never_wait() {
    let pg = Postgres::start();
    let p = PgProject::new(&pg, "paused");
    p.project.write(
        "app.svc",
        r#"
secret TOKEN { environment_specific }
role reader { grant read_secret TOKEN }
service_account app { roles reader }
"#,
    );
    p.set("TOKEN", "token-value-Pz4");
    let key = p.key("app");
    let replica = p.serve(&[".", "--no-schedules"]);
    assert_eq!(
        replica
            .call("GET", "/api/secrets/TOKEN", Some(&key), None)
            .status,
        200
    );
    let paused = pg.pause();
    let started = Instant::now();
    let read = replica.call("GET", "/api/secrets/TOKEN", Some(&key), None);
    let took = started.elapsed();
    assert_eq!(read.status, 503, "{}", read.body);
    assert_eq!(read.json()["error"]["code"], "backend_unavailable");
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
    let started = Instant::now();
    let metrics = replica.call("GET", "/metrics", None, None);
    assert_eq!(metrics.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "/metrics waited {:?}",
        started.elapsed()
    );
    assert_eq!(replica.call("GET", "/readyz", None, None).status, 503);
    drop(paused);
    assert!(common::eventually(20, || replica
        .call("GET", "/api/secrets/TOKEN", Some(&key), None)
        .status
        == 200));
}

#[test]
fn two_hundred_endpoints_at_once_all_succeed() {
    let pg = Postgres::shared();
    let p = PgProject::new(pg, "many_endpoints");
    const N: usize = 200;
    let mut program = String::from("role runner {\n");
    for i in 0..N {
        program.push_str(&format!(
            "  grant run app.e{i}\n  grant update_secret S{i}\n"
        ));
    }
    program.push_str("}\nservice_account bot { roles runner }\nservice app {\n");
    for i in 0..N {
        program.push_str(&format!(
            "  action a{i} {{ update_secrets {{ S{i} = \"v{i}\" }} }}\n  endpoint e{i} {{ methods POST process a{i} }}\n"
        ));
    }
    program.push_str("}\n");
    for i in 0..N {
        program.push_str(&format!("secret S{i} {{ environment_specific }}\n"));
    }
    p.project.write("app.svc", &program);
    let key = p.key("bot");
    let replica = p.serve(&[".", "--no-schedules"]);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..N)
            .map(|i| {
                let (replica, key) = (&replica, &key);
                scope.spawn(move || {
                    replica
                        .call("POST", &format!("/api/services/app/e{i}"), Some(key), None)
                        .status
                })
            })
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(ok, N, "{statuses:?}\n{}", replica.stderr());
    assert_eq!(p.get("S199"), "v199");
}

#[test]
fn a_read_is_refused_while_the_audit_table_takes_no_record() {
    let pg = Postgres::shared();
    let p = PgProject::new(pg, "audit_refused");
    p.project.write(
        "app.svc",
        r#"
secret TOKEN { environment_specific }
role reader { grant read_secret TOKEN }
service_account app { roles reader }
"#,
    );
    p.set("TOKEN", "token-value-Au7");
    let key = p.key("app");
    let replica = p.serve(&[".", "--no-schedules"]);
    // The insert fails inside the database, as on a full disk.
    pg.psql(
        &p.db,
        "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'; END $$;\n\
         CREATE TRIGGER refuse BEFORE INSERT ON svc_audit FOR EACH ROW EXECUTE FUNCTION refuse_audit();",
    );
    let read = replica.call("GET", "/api/secrets/TOKEN", Some(&key), None);
    assert_eq!(read.status, 503, "{}", read.body);
    assert_eq!(read.json()["error"]["code"], "audit_unavailable");
    assert!(!read.body.contains("token-value-Au7"));
    let ready = replica.call("GET", "/readyz", None, None);
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert_eq!(ready.json()["error"]["code"], "audit_unavailable");
    // The CLI reads into the same table, and prints nothing it cannot record.
    let cli = p
        .svc()
        .args(["secret", "get", "TOKEN", "--env", "dev"])
        .run();
    assert_eq!(cli.status, 1, "{}", cli.all_output());
    assert!(cli.stdout.is_empty());
    pg.psql(&p.db, "DROP TRIGGER refuse ON svc_audit");
    assert!(common::eventually(10, || replica
        .call("GET", "/readyz", None, None)
        .status
        == 200));
    let read = replica.call("GET", "/api/secrets/TOKEN", Some(&key), None);
    assert_eq!(read.status, 200, "{}", read.body);
    let cli = p
        .svc()
        .args(["secret", "get", "TOKEN", "--env", "dev"])
        .run();
    assert_eq!(cli.status, 0, "{}", cli.all_output());
    let recorded = pg.psql(
        &p.db,
        "SELECT line->>'via', line->>'action' FROM svc_audit WHERE line->>'secret' = 'TOKEN' ORDER BY id",
    );
    assert!(
        recorded.contains("http|read") && recorded.contains("cli|read"),
        "{recorded}"
    );
}
