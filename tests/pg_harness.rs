//! The PostgreSQL harness of the tests (`tests/common/pg.rs`) does what the
//! backend's tests rely on: a shared server with a database per test, the
//! role `svc` with a checked password over TCP, restarts, dumps, and no
//! server left behind, whichever way the test process ends.

mod common;

use common::pg::Postgres;
use std::io::BufRead;
use std::net::TcpStream;
use std::process::{Command, Stdio};

fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

#[test]
fn the_shared_server_gives_each_test_a_database_of_the_svc_role() {
    let pg = Postgres::shared();
    assert!(
        std::ptr::eq(pg, Postgres::shared()),
        "one server per binary"
    );
    let a = pg.new_database("harness_a");
    let b = pg.new_database("harness_b");
    let address = format!("@127.0.0.1:{}/harness_a", pg.port());
    assert!(
        a.starts_with("postgres://svc:") && a.ends_with(&address),
        "{a}"
    );

    // The role `svc` with its password, over TCP: each database its own.
    for (url, value) in [(&a, "value-in-a"), (&b, "value-in-b")] {
        pg.psql_url(
            url,
            &format!(
                "CREATE TABLE tokens (name text PRIMARY KEY, value text NOT NULL);\n\
                 INSERT INTO tokens VALUES ('HUBSPOT_ACCESS_TOKEN', '{value}');"
            ),
        )
        .unwrap();
    }
    let read = "SELECT value FROM tokens";
    assert_eq!(pg.psql_url(&a, read).unwrap(), "value-in-a\n");
    assert_eq!(pg.psql_url(&b, read).unwrap(), "value-in-b\n");
    assert_eq!(
        pg.psql_url(
            &a,
            "SELECT current_user, inet_server_addr(), current_database()"
        )
        .unwrap(),
        "svc|127.0.0.1|harness_a\n",
        "a TCP connection of the role svc"
    );
    assert_eq!(
        pg.psql_url(&pg.url(), "SELECT current_database()").unwrap(),
        "svc\n"
    );

    // The password is checked (scram-sha-256), not trusted.
    let mut wrong = url::Url::parse(&a).unwrap();
    wrong.set_password(Some("not-the-password")).unwrap();
    let refused = pg.psql_url(wrong.as_str(), "SELECT 1").unwrap_err();
    assert!(
        refused.contains("password authentication failed for user \"svc\""),
        "{refused}"
    );

    // `svc` owns its databases and is no superuser; the superuser has a URL too.
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT datname, pg_get_userbyid(datdba) FROM pg_database \
             WHERE datname LIKE 'harness\\_%' ORDER BY 1;\n\
             SELECT rolsuper FROM pg_roles WHERE rolname = 'svc';"
        ),
        "harness_a|svc\nharness_b|svc\nf\n"
    );
    assert_eq!(
        pg.psql_url(&pg.admin_url(), "SELECT current_user").unwrap(),
        "postgres\n"
    );
    // The settings the harness promises.
    assert_eq!(
        pg.psql(
            "svc",
            "SHOW listen_addresses; SHOW fsync; SHOW max_connections;"
        ),
        "127.0.0.1\noff\n200\n"
    );

    // A name is taken once.
    let again = std::panic::catch_unwind(|| pg.new_database("harness_a"));
    assert!(again.is_err(), "a second harness_a");

    // pg_dump: the whole of one database, nothing of another.
    let dump = pg.pg_dump("harness_a");
    assert!(dump.contains("CREATE TABLE public.tokens"), "{dump}");
    assert!(dump.contains("value-in-a"), "{dump}");
    assert!(!dump.contains("value-in-b"), "{dump}");
}

#[test]
fn a_server_of_its_own_restarts_stops_and_is_gone_when_dropped() {
    let pg = Postgres::start();
    let url = pg.new_database("restarts");
    pg.psql_url(
        &url,
        "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('kept');",
    )
    .unwrap();
    let started = "SELECT pg_postmaster_start_time()";
    let first = pg.psql("restarts", started);

    pg.restart();
    assert_ne!(pg.psql("restarts", started), first, "a new postmaster");
    assert_eq!(pg.psql_url(&url, "SELECT v FROM kept").unwrap(), "kept\n");

    pg.stop();
    assert!(!listening(pg.port()));
    let refused = pg.psql_url(&url, "SELECT 1").unwrap_err();
    assert!(refused.contains("Connection refused"), "{refused}");
    pg.restart();
    assert_eq!(pg.psql_url(&url, "SELECT v FROM kept").unwrap(), "kept\n");

    let (port, dir) = (pg.port(), pg.dir().to_path_buf());
    assert!(listening(port) && dir.join("data/PG_VERSION").exists());
    drop(pg);
    assert!(!listening(port), "stopped when dropped");
    assert!(!dir.exists(), "{} removed", dir.display());
}

/// Run by the next test, in a test process of its own: starts the shared
/// server, says where it is, and waits until its standard input closes.
#[test]
#[ignore = "a helper: the_server_ends_with_the_test_process_even_on_kill_9 runs it"]
fn hold_the_shared_server() {
    if std::env::var_os("SVC_TEST_PG_HOLD").is_none() {
        return;
    }
    let pg = Postgres::shared();
    println!("held {} {}", pg.port(), pg.dir().display());
    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
}

#[test]
fn the_server_ends_with_the_test_process_even_on_kill_9() {
    let mut holder = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "hold_the_shared_server",
            "--ignored",
            "--nocapture",
        ])
        .env("SVC_TEST_PG_HOLD", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdin = holder.stdin.take();
    let held = std::io::BufReader::new(holder.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("held ").map(str::to_string))
        .expect("the holder started a server");
    let (port, dir) = held.split_once(' ').unwrap();
    let (port, dir): (u16, std::path::PathBuf) = (port.parse().unwrap(), dir.into());
    assert!(listening(port) && dir.exists());

    // SIGKILL: no destructor, no exit handler runs in the holder.
    holder.kill().unwrap();
    holder.wait().unwrap();
    drop(stdin);
    assert!(
        common::eventually(20, || !listening(port) && !dir.exists()),
        "the server of a killed test process is still there: port {port}, {}",
        dir.display()
    );
}
