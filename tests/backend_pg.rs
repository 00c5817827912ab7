//! The PostgreSQL backend against a real PostgreSQL (tests/common/pg.rs)
//! and real `svc` processes: values sealed in the database, several
//! `svc serve` replicas keeping one refresh-token chain and firing each
//! schedule once in the fleet, a killed replica and a restarted database.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::pg::Postgres;
use common::rotating::*;
use common::{Project, Run, Served};

/// `svc secret recipients add|remove KEY` on the project's database.
fn change_recipients(p: &PgProject, change: &str, key: &str) {
    let run = p
        .svc()
        .args(["secret", "recipients", change, key, "--env", "dev"])
        .run();
    assert_eq!(run.status, 0, "{}", run.all_output());
}

/// The `bytea` one row of `sql` selects (as `encode(..., 'hex')`), in `file`.
fn bytea_file(pg: &Postgres, db: &str, sql: &str, file: &std::path::Path) {
    let hex = pg.psql(db, sql);
    let hex = hex.trim();
    assert!(!hex.is_empty(), "no row for {sql}");
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    std::fs::write(file, bytes).unwrap();
}

/// Whether Debian's `age` opens `file` with the identity `key`.
fn age_opens(key: &std::path::Path, file: &std::path::Path) -> bool {
    common::age_decrypt_file(key, file).status.success()
}

#[test]
fn the_history_keeps_the_last_five_versions_and_starts_over_after_a_removal() {
    let pg = Postgres::shared();
    let p = PgProject::new(pg, "history_bounds");
    let values: Vec<String> = (1..=7).map(|i| format!("history-value-{i}-Tq4")).collect();
    for value in &values {
        p.set("TOKEN", value);
    }
    let versions = |p: &PgProject| -> Vec<u64> {
        let history = p
            .svc()
            .args(["secret", "history", "TOKEN", "--env", "dev", "--json"])
            .run();
        assert_eq!(history.status, 0, "{}", history.all_output());
        let listed: serde_json::Value = serde_json::from_str(&history.stdout).unwrap();
        listed
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_u64().unwrap())
            .collect()
    };
    // The current version (7) and the five before it.
    assert_eq!(versions(&p), vec![7, 6, 5, 4, 3, 2]);
    // The oldest kept version opens: sealed as its own version.
    let rollback = p
        .svc()
        .args(["secret", "rollback", "TOKEN", "--env", "dev", "--to", "2"])
        .run();
    assert_eq!(rollback.status, 0, "{}", rollback.all_output());
    assert_eq!(p.get("TOKEN"), values[1]);
    assert_eq!(versions(&p), vec![8, 7, 6, 5, 4, 3]);
    let rm = p
        .svc()
        .args(["secret", "rm", "TOKEN", "--env", "dev"])
        .run();
    assert_eq!(rm.status, 0, "{}", rm.all_output());
    p.set("TOKEN", "after-removal-Zp2");
    assert_eq!(p.get("TOKEN"), "after-removal-Zp2");
    assert_eq!(versions(&p), vec![1], "a secret set again starts over");
}

#[test]
fn secrets_live_in_the_database_sealed_and_export_to_age() {
    let pg = Postgres::shared();
    let p = PgProject::new(pg, "sealed");
    let values = ["first-value-9Kd2", "second-value-Pq7z", "third-value-Xw3m"];
    p.set("TOKEN", values[0]);
    p.set("TOKEN", values[1]);
    p.set("OTHER", values[2]);
    assert_eq!(p.get("TOKEN"), values[1]);
    let history = p
        .svc()
        .args(["secret", "history", "TOKEN", "--env", "dev", "--json"])
        .run();
    let versions: serde_json::Value = serde_json::from_str(&history.stdout).unwrap();
    assert_eq!(versions[0]["version"], 2);
    assert_eq!(versions[1]["version"], 1);
    let rollback = p
        .svc()
        .args(["secret", "rollback", "TOKEN", "--env", "dev"])
        .run();
    assert_eq!(rollback.status, 0, "{}", rollback.all_output());
    assert_eq!(p.get("TOKEN"), values[0]);
    // Compare-and-swap and conflicts are the backend's; the list is too.
    let list = p
        .svc()
        .args(["secret", "list", "--env", "dev", "--json"])
        .run();
    assert!(list.stdout.contains("\"TOKEN\"") && list.stdout.contains("\"OTHER\""));
    // No value, current or past, is in the database in the clear.
    let dump = pg.pg_dump(&p.db);
    assert!(dump.contains("svc_secrets"), "the dump holds the tables");
    for value in values {
        assert!(!dump.contains(value), "`{value}` is in the dump");
    }
    // The export is an age file Debian's age opens, holding the files
    // backend's document, history included.
    let file = p.project.path().join("dev-export.age");
    let export = std::process::Command::new(env!("CARGO_BIN_EXE_svc"))
        .args(["secret", "export", "--env", "dev", "--backend", &p.url])
        .current_dir(p.project.path())
        .env("SVC_IDENTITY", &p.project.key.path)
        .stdout(std::fs::File::create(&file).unwrap())
        .output()
        .unwrap();
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let opened = common::age_decrypt_file(&p.project.key.path, &file);
    assert!(
        opened.status.success(),
        "{}",
        String::from_utf8_lossy(&opened.stderr)
    );
    let document: serde_json::Value = serde_json::from_slice(&opened.stdout).unwrap();
    assert_eq!(document["secrets"]["TOKEN"]["value"], values[0]);
    assert_eq!(document["secrets"]["TOKEN"]["version"], 3);
    assert_eq!(
        document["secrets"]["TOKEN"]["history"][0]["value"],
        values[1]
    );
    assert_eq!(document["secrets"]["OTHER"]["value"], values[2]);
    let rm = p
        .svc()
        .args(["secret", "rm", "OTHER", "--env", "dev"])
        .run();
    assert_eq!(rm.status, 0, "{}", rm.all_output());
    let gone = p
        .svc()
        .args(["secret", "get", "OTHER", "--env", "dev"])
        .run();
    assert_eq!(gone.status, 2, "{}", gone.all_output());
    for run in [&history, &rollback, &list, &rm] {
        for value in values {
            assert!(!run.all_output().contains(value));
        }
    }
    let status = p.svc().args(["backend", "status"]).run();
    assert_eq!(status.status, 0, "{}", status.all_output());
    assert!(
        status.stdout.contains("schema version: 5")
            && status.stdout.contains("environment dev: 1 secret(s)"),
        "{}",
        status.stdout
    );
    assert!(!status.all_output().contains("svc:"), "no password shown");
}

#[test]
fn a_removed_recipient_cannot_open_what_is_written_after() {
    let pg = Postgres::shared();
    let p = PgProject::new(pg, "recipients");
    let other = common::age_keygen(p.project.path(), "other.txt");
    change_recipients(&p, "add", &other.public);
    p.set("BEFORE", "written-before-removal");
    // The other key opens the data key of today.
    let wrapped = |id: i32| {
        let path = p.project.path().join(format!("key{id}.age"));
        bytea_file(
            pg,
            &p.db,
            &format!("SELECT encode(wrapped, 'hex') FROM svc_data_keys WHERE id = {id}"),
            &path,
        );
        path
    };
    assert!(age_opens(&other.path, &wrapped(1)));
    change_recipients(&p, "remove", &other.public);
    p.set("AFTER", "written-after-removal");
    let key_of_after = pg.psql(&p.db, "SELECT key_id FROM svc_secrets WHERE name = 'AFTER'");
    assert_eq!(key_of_after.trim(), "2", "a new data key after the removal");
    assert!(
        !age_opens(&other.path, &wrapped(2)),
        "the removed key opens the new data key"
    );
    assert!(age_opens(&p.project.key.path, &wrapped(2)));
    let denied = p
        .svc()
        .env("SVC_IDENTITY", &other.path)
        .args(["secret", "get", "AFTER", "--env", "dev"])
        .run();
    assert_ne!(denied.status, 0, "{}", denied.all_output());
    assert!(!denied.all_output().contains("written-after-removal"));
    assert_eq!(p.get("AFTER"), "written-after-removal");
    assert_eq!(p.get("BEFORE"), "written-before-removal");
}

/// The same body on both backends: concurrent CLI runs keep the chain.
#[test]
fn concurrent_runs_keep_the_chain_on_both_backends() {
    let pg = Postgres::shared();
    for backend in [None, Some((pg, "chain_cli"))] {
        let server = rotating_server();
        let (project, url) = rotating_project(&server, backend);
        let runs: Vec<_> = (0..6)
            .map(|_| {
                let mut call = project.svc().args([
                    "run",
                    "vendor.svc",
                    "vendor.refresh",
                    "--env",
                    "dev",
                    "--as",
                    "nightly",
                ]);
                if let Some(url) = &url {
                    call = call.env("SVC_BACKEND", url);
                }
                std::thread::spawn(move || call.run())
            })
            .collect();
        for run in runs {
            let run = run.join().unwrap();
            assert_eq!(run.status, 0, "{:?}: {}", url, run.all_output());
        }
        let counts = stats(&server);
        assert_eq!(counts["refresh_grants"], 6, "{counts}");
        assert_eq!(counts["rejected_refresh_grants"], 0, "{counts}");
        assert!(active(&server, &stored(&project, &url, "REFRESH_TOKEN")));
    }
}

#[test]
fn three_replicas_keep_one_refresh_chain_under_300_triggers() {
    let pg = Postgres::shared();
    let server = rotating_server();
    let (project, url) = rotating_project(&server, Some((pg, "replicas")));
    let url = url.unwrap();
    let p = PgProject {
        project,
        url,
        db: "replicas".into(),
    };
    let key = p.key("nightly");
    let replicas: Vec<Served> = (0..3).map(|_| p.serve(&[".", "--no-schedules"])).collect();
    let bases: Vec<String> = replicas.iter().map(|r| r.base.clone()).collect();
    let started = Instant::now();
    // 300 triggers, 30 at a time, spread over the replicas.
    let answers: Vec<u16> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..30)
            .map(|worker| {
                let bases = &bases;
                let key = &key;
                scope.spawn(move || {
                    let mut statuses = Vec::new();
                    for i in 0..10 {
                        let base = &bases[(worker + i) % 3];
                        let output = std::process::Command::new("curl")
                            .args([
                                "-s",
                                "-o",
                                "/dev/null",
                                "-w",
                                "%{http_code}",
                                "-m",
                                "120",
                                "-H",
                            ])
                            .arg(format!("Authorization: Bearer {key}"))
                            .arg(format!("{base}/api/services/vendor/refresh"))
                            .output()
                            .unwrap();
                        statuses.push(String::from_utf8_lossy(&output.stdout).parse().unwrap_or(0));
                    }
                    statuses
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let elapsed = started.elapsed();
    let ok = answers.iter().filter(|s| **s == 200).count();
    assert_eq!(ok, 300, "answers: {answers:?}");
    let counts = stats(&server);
    assert_eq!(counts["refresh_grants"], 300, "one token per run: {counts}");
    assert_eq!(counts["rejected_refresh_grants"], 0, "{counts}");
    assert_eq!(counts["reused_refresh_tokens"], 0, "{counts}");
    let live = stored(&p.project, &Some(p.url.clone()), "REFRESH_TOKEN");
    assert!(
        active(&server, &live),
        "the stored refresh token is the live one"
    );
    eprintln!("300 triggers over 3 replicas in {elapsed:?}");
    // The run logs of every replica are in the database.
    let logs = p
        .svc()
        .args([
            "logs",
            "vendor.refresh",
            "--env",
            "dev",
            "-n",
            "1000",
            "--json",
        ])
        .run();
    assert_eq!(logs.stdout.lines().count(), 300, "{}", logs.stderr);
}

/// Counts a replica's "schedule fired" lines, by schedule.
fn fires(replica: &Served) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for line in replica.stderr().lines() {
        if line.contains("schedule fired")
            && let Some(rest) = line.split("schedule=").nth(1)
        {
            let name = rest.split_whitespace().next().unwrap_or("").to_string();
            *out.entry(name).or_default() += 1;
        }
    }
    out
}

#[test]
fn schedules_fire_once_in_the_fleet_and_spread_over_replicas() {
    let pg = Postgres::shared();
    let p = PgProject::new(pg, "schedules");
    p.project.write(
        "tick.svc",
        r#"
role ticker {
  grant run app.tick
}
service_account bot { roles ticker }
service app {
  var n: number
  action tick {
    update service_variables { n = 1 }
  }
  endpoint tick {
    methods GET
    log enabled
    process tick
  }
}
schedule every_two { endpoint app.tick service_account bot every 2s }
schedule a { endpoint app.tick service_account bot every 1s }
schedule b { endpoint app.tick service_account bot every 1s }
schedule c { endpoint app.tick service_account bot every 1s }
"#,
    );
    let started = Instant::now();
    let replicas: Vec<Served> = (0..3).map(|_| p.serve(&["."])).collect();
    std::thread::sleep(Duration::from_secs(20).saturating_sub(started.elapsed()));
    let replicas: Vec<Served> = std::thread::scope(|scope| {
        let stopping: Vec<_> = replicas
            .into_iter()
            .map(|mut replica| {
                scope.spawn(move || {
                    replica.stop();
                    replica
                })
            })
            .collect();
        stopping.into_iter().map(|s| s.join().unwrap()).collect()
    });
    let mut total: BTreeMap<String, usize> = BTreeMap::new();
    let mut ran_somewhere = Vec::new();
    for replica in &replicas {
        let counted = fires(replica);
        ran_somewhere.push(counted.values().sum::<usize>() > 0);
        for (name, n) in counted {
            *total.entry(name).or_default() += n;
        }
    }
    let every_two = total.get("every_two").copied().unwrap_or(0);
    assert!(
        (9..=11).contains(&every_two),
        "every 2s for 20s fired {every_two} times: {total:?}"
    );
    for name in ["a", "b", "c"] {
        let n = total.get(name).copied().unwrap_or(0);
        assert!(
            (18..=22).contains(&n),
            "`{name}` every 1s fired {n} times: {total:?}"
        );
    }
    assert!(
        ran_somewhere.iter().filter(|r| **r).count() > 1,
        "the fires are spread over more than one replica: {ran_somewhere:?}"
    );
}

#[test]
fn a_killed_replica_releases_its_run_lock() {
    let pg = Postgres::shared();
    let server = rotating_server();
    let (project, url) = rotating_project(&server, Some((pg, "killed")));
    let p = PgProject {
        project,
        url: url.unwrap(),
        db: "killed".into(),
    };
    let key = p.key("nightly");
    let mut first = p.serve(&[".", "--no-schedules", "--lock-timeout", "20s"]);
    let second = p.serve(&[".", "--no-schedules", "--lock-timeout", "20s"]);
    // A run that takes the lock, then pauses before its request.
    let paused = {
        let base = first.base.clone();
        let key = key.clone();
        std::thread::spawn(move || {
            std::process::Command::new("curl")
                .args(["-s", "-m", "30", "-H"])
                .arg(format!("Authorization: Bearer {key}"))
                .arg(format!("{base}/api/services/vendor/refresh?pause=yes"))
                .output()
                .unwrap()
        })
    };
    // The lock is held: the database shows the advisory lock.
    let held = || {
        pg.psql(
            &p.db,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .trim()
        .to_string()
    };
    assert!(
        common::eventually(10, || held() != "0"),
        "the run lock is held"
    );
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let _ = paused.join();
    let started = Instant::now();
    let answer = second.call("GET", "/api/services/vendor/refresh", Some(&key), None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(stats(&server)["rejected_refresh_grants"], 0);
    assert!(active(
        &server,
        &stored(&p.project, &Some(p.url.clone()), "REFRESH_TOKEN")
    ));
}

#[test]
fn a_restarted_database_loses_nothing_and_serve_recovers() {
    let pg = Postgres::start();
    let server = rotating_server();
    let (project, url) = rotating_project(&server, Some((&pg, "restart")));
    let p = PgProject {
        project,
        url: url.unwrap(),
        db: "restart".into(),
    };
    let key = p.key("nightly");
    let replica = p.serve(&[".", "--no-schedules"]);
    let trigger = || {
        replica
            .call("GET", "/api/services/vendor/refresh", Some(&key), None)
            .status
    };
    assert_eq!(trigger(), 200);
    // Load while the database restarts.
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let load = scope.spawn(|| (0..40).map(|_| trigger()).collect::<Vec<_>>());
        std::thread::sleep(Duration::from_millis(200));
        pg.restart();
        load.join().unwrap()
    });
    for status in &statuses {
        assert!([200, 503].contains(status), "{statuses:?}");
    }
    // Down: health says degraded, readiness fails, runs answer 503.
    pg.stop();
    let health = replica.call("GET", "/healthz", None, None);
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(health.json()["status"], "degraded", "{}", health.body);
    assert_eq!(replica.call("GET", "/readyz", None, None).status, 503);
    let down = replica.call("GET", "/api/secrets/ACCESS_TOKEN", Some(&key), None);
    assert_eq!(down.status, 503, "{}", down.body);
    assert!(!down.body.contains(&pg.dir().display().to_string()));
    pg.restart();
    // Back: serve reconnects by itself.
    assert!(common::eventually(20, || replica
        .call("GET", "/readyz", None, None)
        .status
        == 200));
    assert_eq!(trigger(), 200);
    let counts = stats(&server);
    assert_eq!(counts["rejected_refresh_grants"], 0, "{counts}");
    assert_eq!(counts["reused_refresh_tokens"], 0, "{counts}");
    // A run that lost its lock in the restart after the provider rotated
    // answered 503, and a later run stored its answer: a grant each, at
    // most, for the runs that failed.
    let successes = statuses.iter().filter(|s| **s == 200).count() as u64 + 2;
    let failures = statuses.iter().filter(|s| **s != 200).count() as u64;
    let grants = counts["refresh_grants"].as_u64().unwrap();
    assert!(
        (successes..=successes + failures).contains(&grants),
        "one token per run that succeeded, and at most one per run that failed: {counts}, {statuses:?}"
    );
    assert_eq!(
        pg.psql("restart", "SELECT count(*) FROM svc_journal")
            .trim(),
        "0",
        "every kept answer was stored"
    );
    assert!(active(
        &server,
        &stored(&p.project, &Some(p.url.clone()), "REFRESH_TOKEN")
    ));
}

#[test]
fn replicas_share_secrets_jobs_keys_and_logs() {
    let pg = Postgres::shared();
    let server = rotating_server();
    let (project, url) = rotating_project(&server, Some((pg, "shared")));
    let p = PgProject {
        project,
        url: url.unwrap(),
        db: "shared".into(),
    };
    let key = p.key("nightly");
    let a = p.serve(&[".", "--no-schedules"]);
    let b = p.serve(&[".", "--no-schedules"]);
    assert_eq!(
        a.call("GET", "/api/services/vendor/refresh", Some(&key), None)
            .status,
        200
    );
    let read = |replica: &Served| {
        replica
            .call("GET", "/api/secrets/ACCESS_TOKEN", Some(&key), None)
            .json()["value"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let before = read(&b);
    assert!(!before.is_empty());
    assert_eq!(
        a.call("GET", "/api/services/vendor/refresh", Some(&key), None)
            .status,
        200
    );
    let changed = Instant::now();
    assert!(
        common::eventually(1, || read(&b) != before),
        "B sees A's update"
    );
    assert!(changed.elapsed() < Duration::from_secs(1));
    // A job started on A is answered by B.
    let job = a.call(
        "GET",
        "/api/services/vendor/refresh?async=true",
        Some(&key),
        None,
    );
    assert_eq!(job.status, 202, "{}", job.body);
    let url = job.json()["url"].as_str().unwrap().to_string();
    assert!(common::eventually(20, || b
        .call("GET", &url, Some(&key), None)
        .json()["status"]
        == "done"));
    // A key made now works on both at once; revoked, on neither.
    let fresh = p.key("nightly");
    assert_eq!(b.call("GET", "/api/whoami", Some(&fresh), None).status, 200);
    let id = fresh.split('_').nth(1).unwrap().to_string();
    let revoke = p.svc().args(["key", "revoke", &id, "--env", "dev"]).run();
    assert_eq!(revoke.status, 0, "{}", revoke.all_output());
    assert_eq!(a.call("GET", "/api/whoami", Some(&fresh), None).status, 401);
    let list = p.svc().args(["key", "list", "--env", "dev"]).run();
    assert!(list.stdout.contains("revoked"), "{}", list.stdout);
    let logs: Run = p
        .svc()
        .args(["logs", "vendor.refresh", "--env", "dev"])
        .run();
    assert_eq!(logs.status, 0, "{}", logs.all_output());
    assert!(logs.stdout.lines().count() >= 3, "{}", logs.stdout);
    // Nothing of the chain is in the database in the clear.
    let dump = pg.pg_dump(&p.db);
    for name in ["REFRESH_TOKEN", "ACCESS_TOKEN", "CLIENT_SECRET"] {
        let value = stored(&p.project, &Some(p.url.clone()), name);
        assert!(!dump.contains(&value), "`{name}` is in the dump");
    }
}

#[test]
fn migrate_copies_an_environment_from_files_once() {
    let pg = Postgres::shared();
    let project = Project::new();
    project.set("TOKEN", "files-value-1");
    project.set("TOKEN", "files-value-2");
    let elsewhere = tempfile::tempdir().unwrap();
    let program = elsewhere.path().join("ids.svc");
    std::fs::write(
        &program,
        "role r {}\nservice_account svc_mover { roles r }\n",
    )
    .unwrap();
    let program = program.to_str().unwrap().to_string();
    let key = project.key("svc_mover", &["--program", &program]);
    assert!(!key.is_empty());
    let url = pg.new_database("migrate");
    let migrate = |extra: &[&str]| {
        project
            .svc()
            .args(["backend", "migrate", "--env", "dev", "--to", &url])
            .args(extra.iter().copied())
            .run()
    };
    let first = migrate(&[]);
    assert_eq!(first.status, 0, "{}", first.all_output());
    assert!(
        first.stdout.contains("1 secret(s) copied"),
        "{}",
        first.stdout
    );
    let again = migrate(&[]);
    assert_eq!(again.status, 0, "{}", again.all_output());
    assert!(
        again.stdout.contains("0 secret(s) copied, 1 already there"),
        "{}",
        again.stdout
    );
    let on_db = |args: &[&str]| project.svc().env("SVC_BACKEND", &url).args(args).run();
    let got = on_db(&["secret", "get", "TOKEN", "--env", "dev"]);
    assert_eq!(got.stdout.trim(), "files-value-2");
    let history = on_db(&["secret", "history", "TOKEN", "--env", "dev", "--json"]);
    assert!(
        history.stdout.contains("\"version\": 1"),
        "{}",
        history.stdout
    );
    let keys = on_db(&[
        "key",
        "list",
        "--env",
        "dev",
        "--json",
        "--program",
        &program,
    ]);
    assert!(keys.stdout.contains("svc_mover"), "{}", keys.stdout);
    // Newer in the database: refused without --force.
    let set = project
        .svc()
        .env("SVC_BACKEND", &url)
        .args(["secret", "set", "TOKEN", "--env", "dev"])
        .stdin("db-value-3")
        .run();
    assert_eq!(set.status, 0, "{}", set.all_output());
    let refused = migrate(&[]);
    assert_eq!(refused.status, 2, "{}", refused.all_output());
    assert!(refused.stderr.contains("--force"), "{}", refused.stderr);
    let forced = migrate(&["--force"]);
    assert_eq!(forced.status, 0, "{}", forced.all_output());
    assert_eq!(
        on_db(&["secret", "get", "TOKEN", "--env", "dev"])
            .stdout
            .trim(),
        "files-value-2"
    );
}

/// A replica answers reads from what it knows and confirms each with the
/// revision its audit line's commit returns: a change made anywhere before
/// a read began is what that read sees, on every replica, with no waiting.
#[test]
fn reads_answer_every_change_committed_before_them_on_every_replica() {
    let pg = Postgres::shared();
    let p = PgProject::new(pg, "read_path");
    p.project.write(
        "app.svc",
        r#"
secret ACCESS_TOKEN { environment_specific }
secret LATE_TOKEN   { environment_specific }
role reader {
  grant read_secret ACCESS_TOKEN
  grant read_secret LATE_TOKEN
}
service_account app { roles reader }
service_account other { }
"#,
    );
    p.set("ACCESS_TOKEN", "value-0");
    let key = p.key("app");
    let replicas = [
        p.serve(&[".", "--no-schedules"]),
        p.serve(&[".", "--no-schedules"]),
    ];
    let read = |replica: &Served, name: &str, key: &str| {
        replica.call("GET", &format!("/api/secrets/{name}"), Some(key), None)
    };
    // Every replica has the store and the keys in its caches.
    for replica in &replicas {
        let answer = read(replica, "ACCESS_TOKEN", &key);
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.json()["value"], "value-0");
    }
    // Another process writes; the next read of each replica has it, and a
    // version once answered is never followed by an older one.
    let mut last_version = 0;
    for round in 1..=5 {
        let value = format!("value-{round}");
        p.set("ACCESS_TOKEN", &value);
        let mut versions = Vec::new();
        for replica in &replicas {
            let answer = read(replica, "ACCESS_TOKEN", &key);
            assert_eq!(answer.status, 200, "{}", answer.body);
            assert_eq!(answer.json()["value"], value.as_str(), "round {round}");
            versions.push(answer.json()["version"].as_u64().unwrap());
        }
        assert!(
            versions
                .iter()
                .all(|v| *v == versions[0] && *v > last_version)
        );
        last_version = versions[0];
    }
    // A secret that had no value when the caches were read.
    assert_eq!(read(&replicas[0], "LATE_TOKEN", &key).status, 404);
    p.set("LATE_TOKEN", "late");
    for replica in &replicas {
        let answer = read(replica, "LATE_TOKEN", &key);
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.json()["value"], "late");
    }
    // A key made elsewhere works at once; revoked elsewhere, it stops at
    // once, though every replica had it in its cache.
    let fresh = p.key("app");
    for replica in &replicas {
        assert_eq!(read(replica, "ACCESS_TOKEN", &fresh).status, 200);
    }
    let id = fresh.split('_').nth(1).unwrap().to_string();
    let revoke = p.svc().args(["key", "revoke", &id, "--env", "dev"]).run();
    assert_eq!(revoke.status, 0, "{}", revoke.all_output());
    for replica in &replicas {
        let answer = read(replica, "ACCESS_TOKEN", &fresh);
        assert_eq!(answer.status, 401, "{}", answer.body);
        assert!(!answer.body.contains("value-5"), "{}", answer.body);
    }
    // A key revoked elsewhere is refused as revoked (401), not as lacking
    // the grant, though the replicas had it in their caches.
    let outsider = p.key("other");
    for replica in &replicas {
        assert_eq!(read(replica, "ACCESS_TOKEN", &outsider).status, 403);
    }
    let outsider_id = outsider.split('_').nth(1).unwrap().to_string();
    let revoke = p
        .svc()
        .args(["key", "revoke", &outsider_id, "--env", "dev"])
        .run();
    assert_eq!(revoke.status, 0, "{}", revoke.all_output());
    for replica in &replicas {
        let answer = read(replica, "ACCESS_TOKEN", &outsider);
        assert_eq!(answer.status, 401, "{}", answer.body);
    }
    // The audit says which reads handed out a value and which were taken
    // back because the key had gone when the read was confirmed.
    assert!(id.chars().all(|c| c.is_ascii_alphanumeric()), "{id}");
    let audit = pg.psql(
        &p.db,
        &format!("SELECT line->>'action' FROM svc_audit WHERE line->>'key' = '{id}' ORDER BY id"),
    );
    let audit: Vec<&str> = audit.lines().map(str::trim).collect();
    assert_eq!(
        audit.iter().filter(|a| **a == "read").count(),
        4,
        "{audit:?}"
    );
    assert_eq!(
        audit.iter().filter(|a| **a == "read_withdrawn").count(),
        2,
        "{audit:?}"
    );
}

/// An answer that arrives after a recipient was removed (by another
/// process, while the request was out) is sealed to the recipients left:
/// the removed key cannot open it. The journal does not trust the
/// recipients it read before the request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_is_sealed_to_the_recipients_left_after_a_removal_during_its_request() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let pg = Postgres::shared();
    let p = PgProject::new(pg, "reseal");
    let other = common::age_keygen(p.project.path(), "other.txt");
    change_recipients(&p, "add", &other.public);
    p.set("REFRESH", "refresh-before-Hx2");
    let server = MockServer::start().await;
    // The answer waits long enough for the removal; its `expires_in` is
    // malformed, so the run fails and the answer stays in the journal.
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({
                    "access_token": "access-after-Qv7",
                    "refresh_token": "refresh-after-Jm4",
                    "expires_in": "soon",
                }))
                .set_delay(Duration::from_secs(3)),
        )
        .expect(1)
        .mount(&server)
        .await;
    p.project.write(
        "vendor.svc",
        &format!(
            r#"
secret REFRESH {{ environment_specific }}
role refresher {{
  grant run vendor.refresh
  grant update_secret REFRESH
}}
service_account nightly {{ roles refresher }}
service vendor {{
  var next: string
  var ttl: number
  action refresh {{
    web_request {{
      method POST
      url "{}/token"
      form {{ grant_type = "refresh_token"  refresh_token = secret.REFRESH }}
      result_mapping {{
        next = $.refresh_token
        ttl  = $.expires_in
      }}
    }}
    update_secret REFRESH = next
  }}
  endpoint refresh {{ methods POST  log enabled  process refresh }}
}}
"#,
            server.uri()
        ),
    );
    let call = p.svc().args([
        "run",
        "vendor.svc",
        "vendor.refresh",
        "--env",
        "dev",
        "--as",
        "nightly",
    ]);
    let run = tokio::task::spawn_blocking(move || call.run());
    // Once the request is out, another process removes the other key.
    let asked = Instant::now();
    while server.received_requests().await.unwrap().is_empty() {
        assert!(asked.elapsed() < Duration::from_secs(30), "no request came");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::task::block_in_place(|| change_recipients(&p, "remove", &other.public));
    let failed = run.await.unwrap();
    assert_eq!(failed.status, 1, "{}", failed.all_output());
    assert!(
        failed
            .stdout
            .contains("the answer is kept in the recovery journal"),
        "{}",
        failed.all_output()
    );
    // The kept answer (and the send's record, concluded) in the database.
    let file = p.project.path().join("answer.age");
    bytea_file(
        pg,
        &p.db,
        "SELECT encode(sealed, 'hex') FROM svc_journal WHERE name LIKE '%-200-%'",
        &file,
    );
    assert!(
        !age_opens(&other.path, &file),
        "the removed key opens the answer"
    );
    assert!(
        age_opens(&p.project.key.path, &file),
        "the remaining key cannot open it"
    );
}
