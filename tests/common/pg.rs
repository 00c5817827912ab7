//! A real PostgreSQL for the tests: Debian's server programs in a temporary
//! directory, on a free port of 127.0.0.1, gone when the test process is.
//!
//! ```ignore
//! let pg = common::pg::Postgres::shared();        // one server per test binary
//! let url = pg.new_database("runs_are_recorded"); // a database per test
//! // postgres://svc:PASSWORD@127.0.0.1:PORT/runs_are_recorded
//! ```
//!
//! # Who runs what
//!
//! PostgreSQL refuses to run as root, and the tests run as root in CI. When
//! this process is root, `initdb` and `pg_ctl` run as the `postgres` user
//! (`runuser -u postgres --`), in a directory made for the server and given
//! to that user; tempfile makes it mode 0700, which is right once postgres
//! owns it, and its parent must let postgres through (the system's temporary
//! directory, or `/tmp` when that one does not). When this process is not
//! root, everything runs as its own user.
//!
//! The server listens on 127.0.0.1 only, and on a Unix socket in its
//! directory. Local (socket) connections are trusted: only the directory's
//! owner and root can reach the socket. TCP connections need a password,
//! checked with scram-sha-256. The clients (`psql`, `pg_dump`) run as this
//! process's user: as the superuser `postgres` through the socket for
//! [`Postgres::psql`] and [`Postgres::pg_dump`], or with a URL over TCP for
//! [`Postgres::psql_url`]. The role `svc` (not a superuser) owns the
//! database `svc` and every database of [`Postgres::new_database`], the way
//! svc's own role owns its database in production.
//!
//! # Lifetime
//!
//! A server must not outlive the test process, however that ends: a test
//! that panics, Ctrl-C, a timeout, `kill -9`. Statics are never dropped, so
//! the shared server gets no destructor; and `pg_ctl` starts the postmaster
//! in a session of its own (`setsid`), so the signals that end the test's
//! process group do not reach it either. So each server has a watchdog
//! started before `initdb`: a `sh` in a process group of its own, ignoring
//! HUP, INT and TERM, that reads its standard input until end-of-file. That
//! input is a pipe whose only writer is this process (std opens pipes
//! close-on-exec, so no other child inherits it), and the kernel closes it
//! when this process ends, whichever way. The watchdog then stops the server
//! (`pg_ctl stop -m immediate`: the data is thrown away anyway) and removes
//! its directory. Dropping a [`Postgres`] closes the same pipe and waits for
//! the watchdog: one path cleans up in every case. (The Node servers of
//! `tests/common/mod.rs` die by the same pipe; they read it themselves.)
//! Killing the watchdog itself would leave a server behind. A `pg_ctl start`
//! or `restart` cut short by the end of the test process may start a
//! postmaster after the watchdog's stop: it finds its directory gone at its
//! once-a-minute check of `postmaster.pid` and shuts itself down.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;

/// A paused server, resumed when dropped.
pub struct Paused<'a>(&'a Postgres);

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        self.0.resume();
    }
}

/// A PostgreSQL server of the tests, stopped and deleted when dropped or
/// when the test process ends.
pub struct Postgres {
    /// Owned by the server's user: `data/`, `server.log` and the socket.
    dir: PathBuf,
    port: u16,
    /// The `svc` role's password.
    password: String,
    /// The `postgres` superuser's password, for TCP connections.
    admin_password: String,
    watchdog: Option<Watchdog>,
}

const INSTALL: &str = "install Debian's `postgresql` package (scripts/test.sh does)";

impl Postgres {
    /// The server of this test binary, started at the first call and shared
    /// by every test after it. Each test takes its own database
    /// ([`Postgres::new_database`]). A test that stops or restarts the server
    /// disturbs the others: it starts its own with [`Postgres::start`].
    pub fn shared() -> &'static Postgres {
        static SHARED: OnceLock<Postgres> = OnceLock::new();
        SHARED.get_or_init(Postgres::start)
    }

    /// Starts a server of its own: `initdb`, then `pg_ctl start` on a free
    /// port, waiting until it accepts connections; creates the role `svc`
    /// (with a generated password) and its database `svc`.
    pub fn start() -> Postgres {
        let dir = server_dir();
        let watchdog = Watchdog::spawn(&dir);
        let mut initdb = server_command(&dir, "initdb");
        initdb
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-U", "postgres", "--auth-local=trust"])
            .args(["--auth-host=scram-sha-256", "--no-sync"])
            .args(["--locale=C", "--encoding=UTF8"]);
        run(initdb, "initdb");
        // From here on a panic drops `pg`, and the watchdog cleans up.
        let mut pg = Postgres {
            dir,
            port: 0,
            password: password(),
            admin_password: password(),
            watchdog: Some(watchdog),
        };
        pg.port = pg.start_on_a_free_port();
        pg.psql(
            "postgres",
            &format!(
                "ALTER ROLE postgres PASSWORD '{}';\n\
                 CREATE ROLE svc LOGIN PASSWORD '{}';\n\
                 CREATE DATABASE svc OWNER svc;\n",
                pg.admin_password, pg.password
            ),
        );
        pg
    }

    /// `postgres://svc:PASSWORD@127.0.0.1:PORT/svc`: the role `svc`, over TCP.
    pub fn url(&self) -> String {
        self.database_url("svc")
    }

    /// The URL of database `name` for the role `svc`.
    pub fn database_url(&self, name: &str) -> String {
        format!(
            "postgres://svc:{}@127.0.0.1:{}/{name}",
            self.password, self.port
        )
    }

    /// `postgres://postgres:PASSWORD@127.0.0.1:PORT/postgres`: the superuser, over TCP.
    pub fn admin_url(&self) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/postgres",
            self.admin_password, self.port
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's directory (gone once the server is).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What the server wrote to its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Creates database `name`, owned by the role `svc`, and returns its
    /// URL. A name is taken once per server: each test uses its own.
    pub fn new_database(&self, name: &str) -> String {
        assert!(
            !name.is_empty()
                && name.len() <= 63
                && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "`{name}`: a database name here is lowercase letters, digits and `_`, at most 63"
        );
        if let Err(error) = self.try_psql("postgres", &format!("CREATE DATABASE {name} OWNER svc"))
        {
            panic!(
                "cannot create the database `{name}` (each test takes a name of its own):\n{error}"
            );
        }
        self.database_url(name)
    }

    /// Runs SQL as the superuser in database `db` and returns what it
    /// printed: rows unaligned (`a|b`), one a line, no headers. Panics when
    /// a statement fails.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        self.try_psql(db, sql)
            .unwrap_or_else(|error| panic!("psql in `{db}` failed:\n{error}\nSQL:\n{sql}"))
    }

    /// As [`Postgres::psql`], the error as a value.
    pub fn try_psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let mut command = client("psql");
        command.arg("-h").arg(&self.dir).args([
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
            "-d",
            db,
        ]);
        psql(command, sql)
    }

    /// Runs SQL through `psql` connected with `url` (over TCP, with the
    /// URL's user and password); `Err` holds what psql said when the
    /// connection or a statement failed.
    pub fn psql_url(&self, url: &str, sql: &str) -> Result<String, String> {
        let mut command = client("psql");
        command.arg("-d").arg(url);
        psql(command, sql)
    }

    /// `pg_dump` of database `db` as the superuser: the plain SQL script.
    pub fn pg_dump(&self, db: &str) -> String {
        let mut command = client("pg_dump");
        command.arg("-h").arg(&self.dir).args([
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
            "-w",
            "-d",
            db,
        ]);
        run(command, "pg_dump")
    }

    /// Stops the server (`pg_ctl stop -m fast`, waiting). [`Postgres::restart`]
    /// starts it again.
    pub fn stop(&self) {
        let mut pg_ctl = server_command(&self.dir, "pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "fast", "-w", "stop"]);
        run(pg_ctl, "pg_ctl stop");
    }

    /// Restarts the server on the same port (`pg_ctl restart -m fast`:
    /// sessions are ended, running transactions rolled back) and waits until
    /// it accepts connections again. Starts a stopped server.
    pub fn restart(&self) {
        let mut pg_ctl = self.pg_ctl(self.port);
        pg_ctl.args(["-m", "fast", "restart"]);
        let output = pg_ctl.output().expect("pg_ctl runs");
        assert!(
            output.status.success(),
            "pg_ctl restart failed:\n{}\nserver log:\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
    }

    /// Pauses the server: SIGSTOP to the postmaster and every process it
    /// started. Its sockets stay open and connect, and nothing answers, as
    /// a hung database or a network that drops packets. [`Postgres::resume`]
    /// lets it go on, as does dropping the guard (a test that panics must
    /// not leave a stopped server, which not even its watchdog can stop).
    pub fn pause(&self) -> Paused<'_> {
        self.signal_all("-STOP");
        Paused(self)
    }

    pub fn resume(&self) {
        self.signal_all("-CONT");
    }

    fn signal_all(&self, signal: &str) {
        let pid_file =
            std::fs::read_to_string(self.dir.join("data/postmaster.pid")).expect("the server runs");
        let postmaster: u32 = pid_file.lines().next().unwrap().trim().parse().unwrap();
        let mut pids = vec![postmaster];
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // `pid (comm) state ppid ...`: comm may hold spaces, not `)`.
            let parent = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|ppid| ppid.parse::<u32>().ok());
            if parent == Some(postmaster) {
                pids.push(pid);
            }
        }
        let status = Command::new("kill")
            .arg(signal)
            .args(pids.iter().map(u32::to_string))
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} {pids:?}");
    }

    /// Ends the sessions of database `db` that hold an advisory lock
    /// (`pg_terminate_backend`), as an administrator would; returns how
    /// many it ended.
    pub fn terminate_lock_holders(&self, db: &str) -> usize {
        self.psql(
            "postgres",
            &format!(
                "SELECT count(pg_terminate_backend(pid)) FROM (SELECT DISTINCT pid FROM pg_locks \
                 WHERE locktype = 'advisory' AND granted AND database = \
                 (SELECT oid FROM pg_database WHERE datname = '{db}')) AS holders"
            ),
        )
        .trim()
        .parse()
        .unwrap()
    }

    /// `pg_ctl` for `start` or `restart` with this server's options; `-w`
    /// waits until the server accepts connections (never a fixed sleep).
    fn pg_ctl(&self, port: u16) -> Command {
        let dir = self.dir.to_str().expect("a UTF-8 temporary directory");
        assert!(!dir.contains('\''), "{dir}: a quote in the path");
        let mut pg_ctl = server_command(&self.dir, "pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .arg("-o")
            .arg(format!(
                "-p {port} -k '{dir}' -c listen_addresses=127.0.0.1 \
                 -c fsync=off -c max_connections=200"
            ))
            .args(["-w", "-t", "60"]);
        pg_ctl
    }

    /// Starts the server on a port free a moment ago; another process may
    /// take it in between, and then the next port is tried.
    fn start_on_a_free_port(&self) -> u16 {
        const ATTEMPTS: usize = 5;
        for attempt in 1..=ATTEMPTS {
            let port = std::net::TcpListener::bind(("127.0.0.1", 0))
                .and_then(|listener| listener.local_addr())
                .expect("a free port on 127.0.0.1")
                .port();
            let mut pg_ctl = self.pg_ctl(port);
            pg_ctl.arg("start");
            let output = pg_ctl
                .output()
                .unwrap_or_else(|error| panic!("pg_ctl cannot run ({error}): {INSTALL}"));
            if output.status.success() {
                return port;
            }
            let log = self.log();
            if attempt < ATTEMPTS && log.contains("already in use") {
                continue;
            }
            panic!(
                "pg_ctl start failed:\n{}{}\nserver log:\n{log}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        unreachable!("the last attempt returns or panics")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(watchdog) = self.watchdog.take() {
            watchdog.finish();
        }
    }
}

/// The process that stops the server and removes its directory when the
/// pipe on its standard input closes (see the module's documentation).
struct Watchdog {
    child: Child,
    pipe: ChildStdin,
}

/// `$1` pg_ctl, `$2` the data directory, `$3` the server's directory, then
/// the command prefix that runs pg_ctl as the server's user (none when this
/// process is not root).
const WATCHDOG: &str = r#"
trap '' HUP INT TERM PIPE
pg_ctl=$1 data=$2 dir=$3
shift 3
cat >/dev/null
"$@" "$pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1
rm -rf "$dir"
"#;

impl Watchdog {
    fn spawn(dir: &Path) -> Watchdog {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(WATCHDOG)
            .arg("svc-test-postgres-watchdog")
            .arg(program("pg_ctl"))
            .arg(dir.join("data"))
            .arg(dir);
        if is_root() {
            command.args(["runuser", "-u", "postgres", "--"]);
        }
        clear_pg_environment(&mut command);
        let mut child = command
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Ctrl-C and kills of the test's process group do not reach it.
            .process_group(0)
            .spawn()
            .expect("sh runs");
        let pipe = child.stdin.take().expect("the watchdog's stdin");
        Watchdog { child, pipe }
    }

    /// Closes the pipe and waits until the server is stopped and its
    /// directory removed.
    fn finish(self) {
        let Watchdog { mut child, pipe } = self;
        drop(pipe);
        let _ = child.wait();
    }
}

/// Whether this process runs as root (and the server must not).
fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A new directory for a server, owned by the user that runs it.
fn server_dir() -> PathBuf {
    // The socket's path must fit in 107 bytes, and when we are root the
    // `postgres` user must be able to walk down to the directory.
    let temp = std::env::temp_dir();
    let parent = if temp.as_os_str().len() <= 64 && (!is_root() || others_may_enter(&temp)) {
        temp
    } else {
        PathBuf::from("/tmp")
    };
    let dir = tempfile::Builder::new()
        .prefix("svc-pg-")
        .tempdir_in(&parent)
        .unwrap_or_else(|error| panic!("a directory in {}: {error}", parent.display()))
        // The watchdog removes it, after the server has stopped.
        .keep();
    if is_root() {
        let (uid, gid) = postgres_user();
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown to postgres");
    }
    dir
}

/// Whether every directory from `/` down to `path` may be entered by any user.
fn others_may_enter(path: &Path) -> bool {
    path.ancestors()
        .all(|dir| std::fs::metadata(dir).is_ok_and(|meta| meta.permissions().mode() & 0o001 != 0))
}

/// The uid and gid of the `postgres` user, whom Debian's package creates.
fn postgres_user() -> (u32, u32) {
    let output = Command::new("getent")
        .args(["passwd", "postgres"])
        .output()
        .expect("getent runs");
    let line = String::from_utf8_lossy(&output.stdout);
    let fields: Vec<&str> = line.trim().split(':').collect();
    match (output.status.success(), fields.get(2), fields.get(3)) {
        (true, Some(uid), Some(gid)) => (uid.parse().unwrap(), gid.parse().unwrap()),
        _ => panic!("there is no `postgres` user, and PostgreSQL does not run as root: {INSTALL}"),
    }
}

/// The directory of PostgreSQL's programs: the newest
/// `/usr/lib/postgresql/VERSION/bin` that has `initdb` and `pg_ctl`. Debian
/// keeps the server's programs there, off PATH; `None` when there is none.
fn bin_dir() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .flatten()
            .map(|version| version.path().join("bin"))
            .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
            .max_by_key(|bin| {
                let version = bin.parent().and_then(Path::file_name);
                let version = version.and_then(|name| name.to_str()).unwrap_or("");
                version
                    .split('.')
                    .map(|part| part.parse::<u32>().unwrap_or(0))
                    .collect::<Vec<_>>()
            })
    })
    .as_deref()
}

/// A PostgreSQL program: from [`bin_dir`] (clients of the same version as
/// the server), else found on PATH.
fn program(name: &str) -> PathBuf {
    bin_dir()
        .map(|dir| dir.join(name))
        .filter(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// A server program, run as the `postgres` user when this process is root,
/// in the server's directory (the test's own may be closed to that user).
fn server_command(dir: &Path, name: &str) -> Command {
    let mut command = if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program(name));
        command
    } else {
        Command::new(program(name))
    };
    clear_pg_environment(&mut command);
    command.current_dir(dir).stdin(Stdio::null());
    command
}

/// A client program (`psql`, `pg_dump`), run as this process's user.
fn client(name: &str) -> Command {
    let mut command = Command::new(program(name));
    clear_pg_environment(&mut command);
    command.stdin(Stdio::null());
    command
}

/// `PGHOST`, `PGUSER`, `PGPASSWORD`, `PGDATA`... of the caller's shell would
/// send the programs elsewhere: they see none.
fn clear_pg_environment(command: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            command.env_remove(key);
        }
    }
}

/// Runs a command to its end; panics with what it said when it fails.
fn run(mut command: Command, what: &str) -> String {
    let output = command.output().unwrap_or_else(|error| {
        panic!(
            "{what}: cannot run {}: {error}; {INSTALL}",
            command.get_program().to_string_lossy()
        )
    });
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `sql` with a prepared `psql` (connection arguments given): no
/// psqlrc, no password prompt, stop at the first error, bare rows.
fn psql(mut command: Command, sql: &str) -> Result<String, String> {
    command
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-w",
            "-v",
            "ON_ERROR_STOP=1",
            "-f",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|error| panic!("psql cannot run: {error}; {INSTALL}"));
    let mut stdin = child.stdin.take().expect("psql's stdin");
    let sql = sql.to_string();
    // Written from a thread: psql may answer before it has read it all.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(sql.as_bytes());
    });
    let output = child.wait_with_output().expect("psql finishes");
    let _ = writer.join();
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// A password of 24 letters and digits: nothing to quote in SQL or a URL.
fn password() -> String {
    (0..24).map(|_| fastrand::alphanumeric()).collect()
}
