//! What `svc serve` (and the files svc writes) promise under abuse and
//! faults: no writes through symbolic links, bounded log reads and rotation,
//! timeouts and caps on connections and bodies, a capped job table, clock
//! skew, an honest health check and errors without local paths. Each test
//! talks to a real `svc serve` on 127.0.0.1; docs/serve.md ("Guarantees")
//! names the test that holds each promise.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

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
    // A read that cannot be audited is refused: no value without a record.
    let answer = server.call("GET", "/api/secrets/SHARED_TOKEN", Some(&viewer), None);
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(answer.json()["error"]["code"], "audit_unavailable");
    assert!(!answer.body.contains(SHARED));
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
    assert!(
        p.logs()
            .contains("cannot lock `secrets/.dev.app.tick.run.lock`"),
        "{}",
        p.logs()
    );
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
            && server
                .stderr()
                .contains("cannot lock `secrets/.dev.app.tick.run.lock`")),
        "{}",
        server.stderr()
    );
}

// ---------------------------------------------------------------------------
// Connections: timeouts, the cap, bodies after the key.

fn connect(server: &common::Served) -> TcpStream {
    let address = server
        .base
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    let stream = TcpStream::connect(address).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Whether the server closes `stream` within `limit` (anything it sends
/// first is read and dropped); how long that took.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.checked_sub(started.elapsed())?;
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(started.elapsed());
            }
            Err(_) => return None,
        }
    }
}

/// Reads one response: its status and body (by Content-Length).
fn read_response(stream: &mut TcpStream, limit: Duration) -> (u16, String) {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut buf).expect("a response in time");
        assert!(
            n > 0,
            "closed before a response: {:?}",
            String::from_utf8_lossy(&data)
        );
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let status = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while data.len() < head_end + length {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0);
        data.extend_from_slice(&buf[..n]);
    }
    (
        status,
        String::from_utf8_lossy(&data[head_end..head_end + length]).to_string(),
    )
}

fn get(path: &str, key: Option<&str>) -> String {
    let auth = key.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
    format!("GET {path} HTTP/1.1\r\nHost: svc\r\n{auth}\r\n")
}

#[test]
fn a_request_head_must_arrive_within_the_header_timeout() {
    let p = project("");
    let server = p.serve(&[
        "app.svc",
        "--env",
        "dev",
        "--no-schedules",
        "--header-timeout",
        "1s",
        "--idle-timeout",
        "30s",
    ]);
    // Nothing sent.
    let mut silent = connect(&server);
    // Half a head, then nothing.
    let mut half = connect(&server);
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: svc\r\n")
        .unwrap();
    // A head trickled a byte at a time: the timeout counts from its start.
    let mut trickle = connect(&server);
    trickle.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
    let started = Instant::now();
    let mut closed = false;
    trickle
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    while started.elapsed() < Duration::from_secs(10) {
        if trickle.write_all(b"X").is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 64];
        match trickle.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                closed = true;
                break;
            }
            _ => {}
        }
    }
    assert!(closed, "a trickled head kept the connection open");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    // Others are served meanwhile.
    assert_eq!(server.call("GET", "/healthz", None, None).status, 200);
    for stream in [&mut silent, &mut half] {
        let took = closed_within(stream, Duration::from_secs(10))
            .expect("a stalled connection stayed open");
        assert!(took < Duration::from_secs(4), "{took:?}");
    }
    // A head larger than the 16 KiB buffer: 431, not more memory.
    let mut large = connect(&server);
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: svc\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    large.write_all(head.as_bytes()).unwrap();
    assert_eq!(read_response(&mut large, Duration::from_secs(5)).0, 431);
    // Not closed early: a head sent in time is answered.
    let mut quick = connect(&server);
    quick.write_all(get("/healthz", None).as_bytes()).unwrap();
    assert_eq!(read_response(&mut quick, Duration::from_secs(5)).0, 200);
}

#[test]
fn a_kept_alive_connection_is_closed_when_idle() {
    let p = project("");
    let server = p.serve(&[
        "app.svc",
        "--env",
        "dev",
        "--no-schedules",
        "--idle-timeout",
        "1s",
        "--header-timeout",
        "30s",
    ]);
    let mut stream = connect(&server);
    stream.write_all(get("/healthz", None).as_bytes()).unwrap();
    assert_eq!(read_response(&mut stream, Duration::from_secs(5)).0, 200);
    // Kept alive: a second request on the same connection.
    stream.write_all(get("/healthz", None).as_bytes()).unwrap();
    assert_eq!(read_response(&mut stream, Duration::from_secs(5)).0, 200);
    let took = closed_within(&mut stream, Duration::from_secs(10)).expect("still open");
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(4),
        "closed after {took:?}"
    );
    let metrics = server.call("GET", "/metrics", None, None).body;
    assert!(
        metrics.contains("svc_http_connections_closed_total{reason=\"idle_timeout\"} 1"),
        "{metrics}"
    );
}

/// Reads up to the end of an interim `100 Continue` head.
fn read_continue(stream: &mut TcpStream) {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !seen.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).expect("a 100 Continue in time"), 1);
        seen.push(byte[0]);
    }
    assert!(seen.starts_with(b"HTTP/1.1 100"), "{seen:?}");
}

#[test]
fn a_partial_pipelined_head_has_the_header_timeout_not_the_idle_one() {
    let p = project("");
    let bot = p.key("bot", &[]);
    let server = p.serve(&[
        "app.svc",
        "--env",
        "dev",
        "--no-schedules",
        "--header-timeout",
        "1s",
        "--idle-timeout",
        "30s",
    ]);
    const PARTIAL: &[u8] = b"GET /healthz HT";
    let post = |path: &str, framing: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: svc\r\nAuthorization: Bearer {bot}\r\n\
             Content-Type: application/json\r\nExpect: 100-continue\r\n{framing}\r\n"
        )
    };
    let body = r#"{"who": "body"}"#;
    let length = format!("Content-Length: {}\r\n", body.len());
    let chunked = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
    // Each case runs on its own connection, at once: a request answered,
    // then what the server does with what the client sent after it.
    type Sends<'a> = Box<dyn FnOnce(&mut TcpStream) + Send + 'a>;
    let cases: Vec<(&str, Sends)> = vec![
        // The next head started in the same packet as the request.
        (
            "pipelined",
            Box::new(|s| {
                let mut bytes = get("/healthz", None).into_bytes();
                bytes.extend_from_slice(PARTIAL);
                s.write_all(&bytes).unwrap();
            }),
        ),
        // ... in the same packet as the end of a body.
        (
            "after a body",
            Box::new(|s| {
                s.write_all(post("/api/services/app/hello", &length).as_bytes())
                    .unwrap();
                read_continue(s);
                s.write_all(format!("{body}GET /healthz HT").as_bytes())
                    .unwrap();
            }),
        ),
        // ... and after a chunked one.
        (
            "after a chunked body",
            Box::new(|s| {
                s.write_all(
                    post("/api/services/app/hello", "Transfer-Encoding: chunked\r\n").as_bytes(),
                )
                .unwrap();
                read_continue(s);
                s.write_all(format!("{chunked}GET /healthz HT").as_bytes())
                    .unwrap();
            }),
        ),
        // ... while the request is being handled (the action takes 1.5 s).
        (
            "in flight",
            Box::new(|s| {
                s.write_all(post("/api/services/app/slow", &length).as_bytes())
                    .unwrap();
                read_continue(s);
                s.write_all(body.as_bytes()).unwrap();
                s.write_all(PARTIAL).unwrap();
            }),
        ),
    ];
    // A request with a body, then nothing: idle, not a head.
    let idle: Vec<(&str, String)> = vec![
        (
            "idle after a body",
            post("/api/services/app/hello", &length).replace("Expect: 100-continue\r\n", "") + body,
        ),
        (
            "idle after a chunked body",
            post("/api/services/app/hello", "Transfer-Encoding: chunked\r\n")
                .replace("Expect: 100-continue\r\n", "")
                + &chunked,
        ),
    ];
    std::thread::scope(|scope| {
        for (name, send) in cases {
            let server = &server;
            scope.spawn(move || {
                let mut stream = connect(server);
                send(&mut stream);
                let (status, answer) = read_response(&mut stream, Duration::from_secs(10));
                assert_eq!(status, 200, "{name}: {answer}");
                let took = closed_within(&mut stream, Duration::from_secs(8))
                    .unwrap_or_else(|| panic!("{name}: a partial head held the connection"));
                assert!(took < Duration::from_secs(4), "{name}: {took:?}");
            });
        }
        for (name, request) in idle {
            let server = &server;
            scope.spawn(move || {
                let mut stream = connect(server);
                stream.write_all(request.as_bytes()).unwrap();
                let (status, answer) = read_response(&mut stream, Duration::from_secs(10));
                assert_eq!(status, 200, "{name}: {answer}");
                // Well past the header timeout, and still open.
                assert_eq!(
                    closed_within(&mut stream, Duration::from_millis(2500)),
                    None,
                    "{name}: closed as if a head had started"
                );
                stream.write_all(get("/healthz", None).as_bytes()).unwrap();
                assert_eq!(read_response(&mut stream, Duration::from_secs(5)).0, 200);
            });
        }
    });
    let metrics = server.call("GET", "/metrics", None, None).body;
    assert!(
        metrics.contains("svc_http_connections_closed_total{reason=\"header_timeout\"} 4"),
        "{metrics}"
    );
}

#[test]
fn bodies_are_read_after_the_key_with_a_size_cap_and_a_timeout() {
    let p = project("");
    let bot = p.key("bot", &[]);
    let server = p.serve(&[
        "app.svc",
        "--env",
        "dev",
        "--no-schedules",
        "--body-timeout",
        "1s",
        "--max-body-bytes",
        "64KiB",
    ]);
    let post = |key: Option<&str>, length: &str| {
        let auth = key.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
        format!(
            "POST /api/services/app/hello HTTP/1.1\r\nHost: svc\r\n{auth}\
             Content-Type: application/json\r\n{length}\r\n"
        )
    };
    // No key, a 2 MB body announced and barely started: 401 at once, and
    // the connection closed without waiting for the body.
    let mut stream = connect(&server);
    stream
        .write_all(post(None, "Content-Length: 2000000\r\n").as_bytes())
        .unwrap();
    stream.write_all(&[b' '; 1024]).unwrap();
    let (status, body) = read_response(&mut stream, Duration::from_secs(5));
    assert_eq!(status, 401, "{body}");
    assert!(closed_within(&mut stream, Duration::from_secs(5)).is_some());

    // With a key: too large by its length, or as it arrives.
    let mut stream = connect(&server);
    stream
        .write_all(post(Some(&bot), "Content-Length: 100000\r\n").as_bytes())
        .unwrap();
    let (status, body) = read_response(&mut stream, Duration::from_secs(5));
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("body_too_large"), "{body}");
    let mut stream = connect(&server);
    stream
        .write_all(post(Some(&bot), "Transfer-Encoding: chunked\r\n").as_bytes())
        .unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 16 * 1024, " ".repeat(16 * 1024));
    // 128 KiB in chunks, no length announced: refused past 64 KiB.
    for _ in 0..8 {
        if stream.write_all(chunk.as_bytes()).is_err() {
            break;
        }
    }
    assert_eq!(read_response(&mut stream, Duration::from_secs(5)).0, 413);

    // With a key, a body that stalls: 408 after the body timeout.
    let mut stream = connect(&server);
    stream
        .write_all(post(Some(&bot), "Content-Length: 1000\r\n").as_bytes())
        .unwrap();
    stream.write_all(b"{\"who\": ").unwrap();
    let started = Instant::now();
    let (status, body) = read_response(&mut stream, Duration::from_secs(10));
    assert_eq!(status, 408, "{body}");
    assert!(body.contains("body_timeout"), "{body}");
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );

    // A body in time is still a body.
    let answer = server.call(
        "POST",
        "/api/services/app/hello",
        Some(&bot),
        Some(r#"{"who": "body"}"#),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["trace"][0]["message"], "hello body");
}

#[test]
fn at_the_connection_cap_stalled_clients_make_room_for_authenticated_ones() {
    let p = project("");
    let bot = p.key("bot", &[]);
    let server = p.serve(&[
        "app.svc",
        "--env",
        "dev",
        "--no-schedules",
        "--max-connections",
        "8",
        "--header-timeout",
        "60s",
        "--idle-timeout",
        "60s",
    ]);
    // An authenticated client with a kept-alive connection.
    let mut trusted = connect(&server);
    trusted
        .write_all(get("/api/whoami", Some(&bot)).as_bytes())
        .unwrap();
    assert_eq!(read_response(&mut trusted, Duration::from_secs(5)).0, 200);
    // Sixty stalled clients, far more than the cap.
    let mut stalled: Vec<TcpStream> = (0..60)
        .map(|_| {
            let mut s = connect(&server);
            s.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
            s
        })
        .collect();
    // A new authenticated client gets in at once, long before any timeout.
    let started = Instant::now();
    let answer = server.call("GET", "/api/whoami", Some(&bot), None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(started.elapsed() < Duration::from_secs(10));
    // The kept-alive authenticated connection was spared.
    trusted
        .write_all(get("/api/whoami", Some(&bot)).as_bytes())
        .unwrap();
    assert_eq!(read_response(&mut trusted, Duration::from_secs(5)).0, 200);
    // Stalled ones were closed to make room: at most the cap stays open.
    let mut closed = 0;
    for stream in &mut stalled {
        if closed_within(stream, Duration::from_millis(100)).is_some() {
            closed += 1;
        }
    }
    assert!(
        closed >= 60 - 8,
        "only {closed} of 60 stalled connections were closed"
    );
}

#[test]
fn the_open_files_limit_is_raised_and_caps_the_connections() {
    let p = project("");
    let bot = p.key("bot", &[]);
    // A soft limit below the hard one is raised to it.
    let server = p.serve_wrapped(
        &["prlimit", "--nofile=256:2048"],
        &["app.svc", "--env", "dev", "--no-schedules"],
    );
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.child.id())).unwrap();
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .skip(3)
        .take(2)
        .collect::<Vec<_>>();
    assert_eq!(open_files, ["2048", "2048"], "{limits}");
    drop(server);

    // 100 descriptors in all: fewer connections than asked, and clients
    // that hold more sockets than that do not lock anyone out.
    let server = p.serve_wrapped(
        &["prlimit", "--nofile=100:100"],
        &[
            "app.svc",
            "--env",
            "dev",
            "--no-schedules",
            "--header-timeout",
            "60s",
        ],
    );
    assert!(
        eventually(5, || server
            .stderr()
            .contains("serving at most 50 connections")),
        "{}",
        server.stderr()
    );
    let _stalled: Vec<TcpStream> = (0..150).map(|_| connect(&server)).collect();
    let answer = server.call("GET", "/api/whoami", Some(&bot), None);
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[test]
fn tls_handshakes_have_the_header_timeout_and_shutdown_does_not_wait_for_stalled_clients() {
    let p = project("");
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert_path = p.write("cert.pem", &cert.cert.pem());
    let key_path = p.write("key.pem", &cert.signing_key.serialize_pem());
    let server = p.serve(&[
        "app.svc",
        "--env",
        "dev",
        "--no-schedules",
        "--header-timeout",
        "1s",
        "--tls-cert",
        cert_path.to_str().unwrap(),
        "--tls-key",
        key_path.to_str().unwrap(),
    ]);
    let mut silent = connect(&server);
    let took = closed_within(&mut silent, Duration::from_secs(10)).expect("a handshake stalled");
    assert!(took < Duration::from_secs(4), "{took:?}");
    let answer = server.call_with(
        "GET",
        "/healthz",
        None,
        None,
        &["--cacert", cert_path.to_str().unwrap(), "--http1.1"],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    drop(server);

    // A server with stalled clients stops at once, not after their timeouts.
    let mut server = p.serve(&[
        "app.svc",
        "--env",
        "dev",
        "--no-schedules",
        "--header-timeout",
        "60s",
    ]);
    let _stalled: Vec<TcpStream> = (0..10)
        .map(|_| {
            let mut s = connect(&server);
            s.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
            s
        })
        .collect();
    assert_eq!(server.call("GET", "/healthz", None, None).status, 200);
    let started = Instant::now();
    assert_eq!(server.stop(), 0, "{}", server.stderr());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------
// The audit log fails closed.

/// `sh` that runs the rest of its arguments with files limited to 64
/// blocks: an append past that fails (EFBIG) as on a full disk, and the
/// ignored XFSZ signal stays ignored across exec, so svc sees the error.
const SMALL_FILES: [&str; 3] = ["sh", "-c", "trap '' XFSZ; ulimit -f 64; exec \"$0\" \"$@\""];

#[test]
fn a_read_that_cannot_be_audited_is_refused_and_readyz_says_so() {
    let p = project("");
    let viewer = p.key("viewer", &[]);
    let audit = p.path().join("logs/dev/audit.jsonl");
    std::fs::create_dir_all(audit.parent().unwrap()).unwrap();
    // Past the limit: every append fails.
    std::fs::write(&audit, "x".repeat(256 * 1024)).unwrap();
    let server = p.serve_wrapped(&SMALL_FILES, &["app.svc", "--env", "dev", "--no-schedules"]);
    let read = server.call("GET", "/api/secrets/SHARED_TOKEN", Some(&viewer), None);
    assert_eq!(read.status, 503, "{}", read.body);
    assert_eq!(read.json()["error"]["code"], "audit_unavailable");
    assert!(!read.body.contains(SHARED));
    let ready = server.call("GET", "/readyz", None, None);
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert_eq!(ready.json()["error"]["code"], "audit_unavailable");
    let health = server.call("GET", "/healthz", None, None).json();
    assert_eq!(health["audit"]["state"], "unavailable", "{health}");
    // Room again: /readyz finds out by itself, and reads are served.
    std::fs::write(&audit, "").unwrap();
    assert!(eventually(10, || server
        .call("GET", "/readyz", None, None)
        .status
        == 200));
    let read = server.call("GET", "/api/secrets/SHARED_TOKEN", Some(&viewer), None);
    assert_eq!(read.status, 200, "{}", read.body);
    let lines = std::fs::read_to_string(&audit).unwrap();
    assert!(lines.contains("\"action\":\"read\""), "{lines}");
    assert!(!lines.contains(SHARED) && !server.stderr().contains(SHARED));
}

#[test]
fn svc_secret_get_is_audited_and_prints_nothing_it_cannot_audit() {
    let p = project("");
    let read = p
        .svc()
        .args(["secret", "get", "SHARED_TOKEN", "--env", "dev"])
        .run();
    assert_eq!(read.status, 0, "{}", read.all_output());
    assert_eq!(read.stdout.trim(), SHARED);
    let audit = p.path().join("logs/dev/audit.jsonl");
    let lines = std::fs::read_to_string(&audit).unwrap();
    let line: serde_json::Value = serde_json::from_str(lines.lines().last().unwrap()).unwrap();
    assert_eq!(line["secret"], "SHARED_TOKEN");
    assert_eq!(line["action"], "read");
    assert_eq!(line["via"], "cli");
    assert_eq!(line["recipient"], p.key.public.as_str(), "{line}");
    assert!(line["user"].is_string(), "{line}");
    assert!(!lines.contains(SHARED));

    // A full disk: no record, so no value, and exit 1.
    std::fs::write(&audit, "x".repeat(256 * 1024)).unwrap();
    let svc = env!("CARGO_BIN_EXE_svc");
    let refused: common::Run = std::process::Command::new(SMALL_FILES[0])
        .args(&SMALL_FILES[1..])
        .args([svc, "secret", "get", "SHARED_TOKEN", "--env", "dev"])
        .current_dir(p.path())
        .env("SVC_IDENTITY", &p.key.path)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
        .into();
    assert_eq!(refused.status, 1, "{}", refused.all_output());
    assert!(refused.stdout.is_empty(), "{}", refused.stdout);
    assert!(
        refused.stderr.contains("svc::audit::unavailable"),
        "{}",
        refused.stderr
    );
    assert!(!refused.all_output().contains(SHARED));
}
