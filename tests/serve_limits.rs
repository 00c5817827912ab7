//! What `svc serve` (and the files svc writes) promise under abuse and
//! faults: no writes through symbolic links, bounded log reads and rotation,
//! timeouts and caps on connections and bodies, a capped job table, clock
//! skew, an honest health check and errors without local paths. Each test
//! talks to a real `svc serve` on 127.0.0.1; docs/serve.md ("Guarantees")
//! names the test that holds each promise.

mod common;

use std::io::Write;
use std::path::Path;

use common::{Project, eventually};

const APP: &str = r#"
secret TICKS        { environment_specific }
secret SHARED_TOKEN { environment_specific }

role runner {
  grant run app.*
  grant update_secret TICKS
}
role reader {
  grant read_secret SHARED_TOKEN
}
service_account bot { roles runner }
user viewer { roles reader }

service app {
  action hello { log "hello ${param.who}" }
  action tick { update_secret TICKS = "tick" }
  action slow {
    sleep 1500ms
    update_secret TICKS = "slow"
  }

  endpoint hello {
    methods GET POST
    log enabled
    process hello
  }
  endpoint tick {
    methods GET
    log enabled
    process tick
  }
  endpoint slow {
    methods GET POST
    process slow
  }
}
"#;

const SHARED: &str = "shared-token-value-5c1d0";

fn project(schedules: &str) -> Project {
    let p = Project::new();
    p.write("app.svc", &format!("{APP}\n{schedules}"));
    p.set("SHARED_TOKEN", SHARED);
    p
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

fn is_link(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Peak resident memory of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in {status}"))
}

// ---------------------------------------------------------------------------
// No writes through symbolic links.

#[test]
fn logs_and_the_audit_log_are_never_written_through_a_link() {
    let p = project("");
    let viewer = p.key("viewer", &[]);
    let bot = p.key("bot", &[]);
    let elsewhere = p.write("elsewhere.txt", "keep\n");
    std::fs::create_dir_all(p.path().join("logs/dev")).unwrap();
    let endpoint_log = p.path().join("logs/dev/app.hello.jsonl");
    let audit_log = p.path().join("logs/dev/audit.jsonl");
    symlink(&elsewhere, &endpoint_log);
    symlink(&elsewhere, &audit_log);
    let server = p.serve(&["app.svc", "--env", "dev", "--no-schedules"]);

    let answer = server.call("GET", "/api/services/app/hello", Some(&bot), None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let answer = server.call("GET", "/api/secrets/SHARED_TOKEN", Some(&viewer), None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    // Both refusals are said, clearly.
    assert!(
        eventually(10, || server.stderr().matches("is a symbolic link").count()
            >= 2),
        "{}",
        server.stderr()
    );
    assert!(server.stderr().contains("audit log"), "{}", server.stderr());
    assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "keep\n");
    assert!(is_link(&endpoint_log) && is_link(&audit_log));
    assert!(!server.stderr().contains(SHARED));
}

#[test]
fn a_linked_store_or_lock_file_is_reported_not_replaced() {
    let p = project("");
    let store = p.store();
    let real = p.path().join("real-dev.age");
    std::fs::rename(&store, &real).unwrap();
    symlink(&real, &store);
    let before = std::fs::read(&real).unwrap();

    let set = p
        .svc()
        .args(["secret", "set", "TICKS", "--env", "dev"])
        .stdin("x")
        .run();
    assert_ne!(set.status, 0);
    assert!(
        set.stderr.contains("svc::store::symlink") && set.stderr.contains("is a symbolic link"),
        "{}",
        set.stderr
    );
    assert!(set.stderr.contains("help"), "{}", set.stderr);
    // Reading refuses too: a run must not spend a refresh token and then
    // find it cannot store the new one.
    let get = p
        .svc()
        .args(["secret", "get", "SHARED_TOKEN", "--env", "dev"])
        .run();
    assert_ne!(get.status, 0);
    assert!(get.stderr.contains("svc::store::symlink"), "{}", get.stderr);
    assert!(!get.all_output().contains(SHARED));
    assert!(is_link(&store), "the link was replaced");
    assert_eq!(std::fs::read(&real).unwrap(), before);

    // The lock file of the store, linked elsewhere: refused, not followed.
    std::fs::remove_file(&store).unwrap();
    std::fs::rename(&real, &store).unwrap();
    let lock = p.path().join("secrets/.dev.lock");
    let _ = std::fs::remove_file(&lock);
    let elsewhere = p.write("elsewhere.lock", "");
    symlink(&elsewhere, &lock);
    let set = p
        .svc()
        .args(["secret", "set", "TICKS", "--env", "dev"])
        .stdin("x")
        .run();
    assert_ne!(set.status, 0);
    assert!(set.stderr.contains("svc::store::symlink"), "{}", set.stderr);
    assert!(is_link(&lock));
}

// ---------------------------------------------------------------------------
// Bounded log reads, and rotation.

#[test]
fn logs_rotate_by_size_and_the_last_entries_span_the_files() {
    let p = project("");
    let bot = p.key("bot", &[]);
    let server = p.serve(&[
        "app.svc",
        "--env",
        "dev",
        "--no-schedules",
        "--log-max-bytes",
        "4KiB",
    ]);
    // Appenders in several processes at once: the server and `svc run`s.
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| {
                for _ in 0..4 {
                    let run = p
                        .svc()
                        .args(["run", "app.svc", "app.hello", "--env", "dev", "--as", "bot"])
                        .args(["--log-max-bytes", "4KiB", "--param", "who=cli"])
                        .run();
                    assert_eq!(run.status, 0, "{}", run.stderr);
                }
            });
        }
        for _ in 0..8 {
            let answer = server.call("GET", "/api/services/app/hello?who=http", Some(&bot), None);
            assert_eq!(answer.status, 200, "{}", answer.body);
        }
    });
    let log = p.path().join("logs/dev/app.hello.jsonl");
    let mut files = vec![log.clone()];
    files.extend(
        (1..=3)
            .map(|i| p.path().join(format!("logs/dev/app.hello.jsonl.{i}")))
            .filter(|f| f.exists()),
    );
    assert!(files.len() >= 2, "the log did not rotate: {files:?}");
    assert!(!p.path().join("logs/dev/app.hello.jsonl.4").exists());
    let mut lines = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let len = text.len();
        let longest = text.lines().map(str::len).max().unwrap_or(0) + 1;
        // Rotated before a line would cross the size; a line written by a
        // process that opened the file just before a rotation may land late.
        assert!(len <= 4096 + 3 * longest, "{file:?} has {len} bytes");
        for line in text.lines() {
            serde_json::from_str::<serde_json::Value>(line)
                .unwrap_or_else(|_| panic!("a broken line in {file:?}: {line}"));
            lines += 1;
        }
    }
    // Nothing lost: 20 runs fit in four files of 4 KiB.
    assert_eq!(lines, 20);

    // The newest entries, newest first, across the files.
    let answer = server.call("GET", "/api/services/app/hello/logs?n=19", Some(&bot), None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let entries = answer.json()["entries"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 19);
    let times: Vec<String> = entries
        .iter()
        .map(|e| e["started_at"].as_str().unwrap().to_string())
        .collect();
    let mut sorted = times.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(times, sorted, "not newest first");
    let logs = p
        .svc()
        .args(["logs", "app.hello", "--env", "dev", "-n", "20", "--json"])
        .run();
    assert_eq!(logs.status, 0, "{}", logs.stderr);
    assert_eq!(logs.stdout.lines().count(), 20);
}

#[test]
fn reading_the_last_entries_does_not_load_the_log() {
    let p = project("");
    let bot = p.key("bot", &[]);
    // A 64 MiB log; the last line is the newest run.
    let dir = p.path().join("logs/dev");
    std::fs::create_dir_all(&dir).unwrap();
    let line = |id: &str| {
        format!(
            "{}\n",
            serde_json::json!({
                "id": id, "endpoint": "app.hello", "environment": "dev", "identity": "bot",
                "method": "GET", "trigger": "http", "started_at": "2026-11-28T12:00:00Z",
                "duration_ms": 1, "outcome": "success",
                "trace": [{"event": "log", "depth": 0, "message": "x".repeat(400)}],
                "variables": {}
            })
        )
    };
    let old = line("old").repeat(1024);
    let mut file = std::fs::File::create(dir.join("app.hello.jsonl")).unwrap();
    while file.metadata().unwrap().len() < 64 << 20 {
        file.write_all(old.as_bytes()).unwrap();
    }
    file.write_all(line("newest").as_bytes()).unwrap();
    drop(file);

    let server = p.serve(&["app.svc", "--env", "dev", "--no-schedules"]);
    assert_eq!(server.call("GET", "/healthz", None, None).status, 200);
    let before = peak_rss_kib(server.child.id());
    let answer = server.call("GET", "/api/services/app/hello/logs?n=1", Some(&bot), None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["entries"][0]["id"], "newest");
    let answer = server.call("GET", "/api/services/app/hello/logs?n=5", Some(&bot), None);
    assert_eq!(answer.json()["entries"].as_array().unwrap().len(), 5);
    let grown = peak_rss_kib(server.child.id()).saturating_sub(before);
    assert!(
        grown < 16 * 1024,
        "reading 5 entries of a 64 MiB log took {grown} KiB more memory"
    );
    let logs = p
        .svc()
        .args(["logs", "app.hello", "--env", "dev", "-n", "1", "--json"])
        .run();
    assert_eq!(logs.status, 0, "{}", logs.stderr);
    assert!(logs.stdout.contains("\"newest\""), "{}", logs.stdout);
}

// ---------------------------------------------------------------------------
// The job table.

#[test]
fn the_job_table_is_capped_and_the_oldest_finished_job_makes_room() {
    let p = project("");
    let bot = p.key("bot", &[]);
    let server = p.serve(&[
        "app.svc",
        "--env",
        "dev",
        "--no-schedules",
        "--max-jobs",
        "2",
    ]);
    let start = || {
        server.call(
            "POST",
            "/api/services/app/slow?async=true",
            Some(&bot),
            None,
        )
    };
    let first = start();
    assert_eq!(first.status, 202, "{}", first.body);
    let first_url = first.json()["url"].as_str().unwrap().to_string();
    assert_eq!(start().status, 202);
    // Two running, none finished: refused, with a code.
    let refused = start();
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.json()["error"]["code"], "too_many_jobs");
    // Synchronous runs are not jobs: still served.
    assert_eq!(
        server
            .call("GET", "/api/services/app/hello", Some(&bot), None)
            .status,
        200
    );
    assert!(eventually(20, || server
        .call("GET", &first_url, Some(&bot), None)
        .json()["status"]
        == "done"));
    // The finished one makes room, and is gone.
    let third = start();
    assert_eq!(third.status, 202, "{}", third.body);
    assert_eq!(server.call("GET", &first_url, Some(&bot), None).status, 404);
}

// ---------------------------------------------------------------------------
// Clock skew in the schedule state.

const TICKER: &str =
    "schedule ticker {\n  endpoint app.tick\n  service_account bot\n  every 1s\n}\n";

fn ticks(p: &Project) -> u64 {
    p.document()["secrets"]["TICKS"]["version"]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn a_last_run_in_the_future_counts_as_now() {
    let p = project(TICKER);
    let future = chrono::Utc::now() + chrono::Duration::days(2);
    let state = serde_json::json!({"schedules": {"ticker": {
        "last_run_at": future.to_rfc3339(), "last_outcome": "success"
    }}});
    std::fs::create_dir_all(p.path().join("state/dev")).unwrap();
    std::fs::write(p.path().join("state/dev/schedules.json"), state.to_string()).unwrap();

    let list = p
        .svc()
        .args(["schedule", "list", "app.svc", "--env", "dev"])
        .run();
    assert_eq!(list.status, 0, "{}", list.stderr);
    assert!(
        list.stderr.contains("schedule `ticker` last ran at")
            && list.stderr.contains("in the future"),
        "{}",
        list.stderr
    );
    let next = list
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("next:"))
        .unwrap_or_else(|| panic!("{}", list.stdout));
    assert!(
        !next.contains(&future.format("%Y-%m-%d").to_string()),
        "still waits for the future: {next}"
    );

    let server = p.serve(&["app.svc", "--env", "dev"]);
    assert!(
        eventually(15, || ticks(&p) >= 1),
        "the schedule did not fire: {}",
        server.stderr()
    );
    assert!(
        server.stderr().contains("in the future"),
        "{}",
        server.stderr()
    );
}

// ---------------------------------------------------------------------------
// Health.

fn health(server: &common::Served) -> (u16, serde_json::Value) {
    let answer = server.call("GET", "/healthz", None, None);
    (answer.status, answer.json())
}

fn scheduler_gauge(server: &common::Served, state: &str) -> String {
    let text = server.call("GET", "/metrics", None, None).body;
    let prefix = format!("svc_scheduler_state{{state=\"{state}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in {text}"))
        .to_string()
}

#[test]
fn health_tells_running_standby_and_off_apart() {
    let p = project(&TICKER.replace("every 1s", "every 1h"));
    let first = p.serve(&["app.svc", "--env", "dev"]);
    assert!(eventually(10, || health(&first).1["scheduler"]["state"] == "running"));
    assert_eq!(health(&first).0, 200);
    assert_eq!(scheduler_gauge(&first, "running"), "1");
    assert_eq!(scheduler_gauge(&first, "failed"), "0");

    // Same state directory: the second one waits to take over.
    let second = p.serve(&["app.svc", "--env", "dev"]);
    assert!(eventually(10, || health(&second).1["scheduler"]["state"] == "standby"));
    assert_eq!(health(&second).0, 200);
    assert_eq!(health(&second).1["status"], "ok");

    let off = p.serve(&["app.svc", "--env", "dev", "--no-schedules"]);
    let (status, document) = health(&off);
    assert_eq!(
        (status, &document["scheduler"]["state"]),
        (200, &serde_json::json!("off"))
    );
    assert_eq!(scheduler_gauge(&off, "off"), "1");
}

#[test]
fn health_fails_when_the_schedules_cannot_run() {
    let p = project(TICKER);
    let bot = p.key("bot", &[]);
    let local = p.path().to_str().unwrap().to_string();
    // A state "directory" that is a regular file.
    p.write("not-a-dir", "");
    let server = p.serve(&["app.svc", "--env", "dev", "--state-dir", "not-a-dir"]);
    let (status, document) = health(&server);
    assert_eq!(status, 503, "{document}");
    assert_eq!(document["status"], "unavailable");
    assert_eq!(document["scheduler"]["state"], "failed");
    assert_eq!(document["scheduler"]["code"], "state_unreadable");
    assert!(!document.to_string().contains("not-a-dir") && !document.to_string().contains(&local));
    assert!(server.stderr().contains("not-a-dir"), "{}", server.stderr());
    assert_eq!(scheduler_gauge(&server, "failed"), "1");
    // Endpoints are still served.
    assert_eq!(
        server.call("GET", "/api/whoami", Some(&bot), None).status,
        200
    );
    drop(server);

    // The scheduler lock cannot be taken: a directory where the file goes.
    std::fs::create_dir_all(p.path().join("state/dev/.scheduler.lock")).unwrap();
    let server = p.serve(&["app.svc", "--env", "dev"]);
    assert!(
        eventually(10, || health(&server).0 == 503),
        "{}",
        health(&server).1
    );
    let document = health(&server).1;
    assert_eq!(document["scheduler"]["code"], "scheduler_lock");
    assert!(!document.to_string().contains(&local), "{document}");
    assert_eq!(ticks(&p), 0);
}

// ---------------------------------------------------------------------------
// Errors carry a code, never a local path.

#[test]
fn errors_to_http_callers_name_no_local_path() {
    let p = project("");
    let bot = p.key("bot", &[]);
    let server = p.serve(&["app.svc", "--env", "dev", "--no-schedules"]);
    let local = p.path().canonicalize().unwrap();
    let local = local.to_str().unwrap();
    let no_path = |body: &str| {
        assert!(
            !body.contains(local) && !body.contains("secrets") && !body.contains(".lock"),
            "a local path in an answer: {body}"
        );
    };

    // A run whose store lock cannot be taken: 502, the code kept.
    std::fs::create_dir_all(p.path().join("secrets/.dev.app.tick.run.lock")).unwrap();
    let answer = server.call("GET", "/api/services/app/tick", Some(&bot), None);
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert_eq!(answer.json()["error"]["code"], "store_error");
    assert_eq!(answer.json()["error"]["diagnostic"], "svc::store::io");
    no_path(&answer.body);
    // The log entry, read over HTTP, is cleaned the same way; the file keeps it all.
    let logs = server.call("GET", "/api/services/app/tick/logs?n=1", Some(&bot), None);
    assert_eq!(logs.status, 200, "{}", logs.body);
    assert_eq!(
        logs.json()["entries"][0]["error"]["diagnostic"],
        "svc::store::io"
    );
    no_path(&logs.body);
    assert!(p.logs().contains("cannot lock `secrets`"), "{}", p.logs());
    // An async run too.
    let job = server.call("GET", "/api/services/app/tick?async=true", Some(&bot), None);
    let url = job.json()["url"].as_str().unwrap().to_string();
    assert!(eventually(10, || server
        .call("GET", &url, Some(&bot), None)
        .json()["status"]
        == "done"));
    no_path(&server.call("GET", &url, Some(&bot), None).body);

    // A damaged store: 503 with a code, with a key or without a valid one.
    std::fs::write(p.store(), "not an age file").unwrap();
    for key in [Some(bot.as_str()), Some("svc_000000000000_nope"), None] {
        let answer = server.call("GET", "/api/secrets", key, None);
        if key.is_none() {
            assert_eq!(answer.status, 401);
            continue;
        }
        assert_eq!(answer.status, 503, "{}", answer.body);
        assert_eq!(answer.json()["error"]["code"], "store_unavailable");
        assert!(
            answer.body.contains("svc::store::corrupted"),
            "{}",
            answer.body
        );
        no_path(&answer.body);
    }
    // The details went to the server's stderr.
    assert!(
        eventually(10, || server.stderr().contains("dev.age")
            && server.stderr().contains("cannot lock `secrets`")),
        "{}",
        server.stderr()
    );
}
