//! Authentication cost against the number of API keys: `GET /api/whoami`
//! on two `svc serve`s (release build, files backend) whose stores hold 10
//! and 2,000 keys, with a valid key and with an unknown one. Reports each
//! side's requests/s and p50/p99 latency and the ratio of the time per
//! request at 2,000 keys to that at 10, and writes a section of
//! bench/RESULTS.md.
//!
//!     bash bench/serve_keys.sh      # or: SVC_BENCH_KEYS=1 cargo bench --bench serve_keys
//!
//! Not part of the test suite: it takes about half a minute and wants the
//! machine to itself.

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use svc::backend::files::store::Store;
use svc::secrets::Identities;

const PROGRAM: &str = r#"
role runner { grant run app.* }
service_account caller { roles runner }

service app {
  action hello { log "hello" }
  endpoint hello {
    methods GET
    process hello
  }
}
"#;

/// The sizes of the key table compared.
const FEW: usize = 10;
const MANY: usize = 2_000;
/// Clients per measurement, each on its own kept-alive connection.
const CLIENTS: usize = 2;
const ROUND: Duration = Duration::from_secs(2);
const ROUNDS: usize = 3;
/// The most the time per request may grow from 10 to 2,000 keys.
const TARGET_RATIO: f64 = 1.2;

/// A server and the key that authenticates on it.
struct Server {
    child: Child,
    address: String,
    token: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn main() {
    // `cargo bench` runs every bench; this one rewrites a section of
    // bench/RESULTS.md, so it runs only when asked for.
    if std::env::var_os("SVC_BENCH_KEYS").is_none() {
        eprintln!("serve_keys: skipped; run `bash bench/serve_keys.sh` (it sets SVC_BENCH_KEYS=1)");
        return;
    }
    let servers = [start(FEW), start(MANY)];
    // A well-formed key whose id is in neither table.
    let unknown = format!("svc_000000000000_{}", "x".repeat(32));
    // Warm up both (the first request decrypts the store).
    for server in &servers {
        measure(server, &server.token, Duration::from_millis(500));
    }
    // Rounds alternate the sides, so a busy moment of the machine hits
    // both; each side keeps its median round.
    let mut rates = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
    let mut latencies = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
    for _ in 0..ROUNDS {
        for (side, server) in servers.iter().enumerate() {
            for (kind, token) in [&server.token, &unknown].into_iter().enumerate() {
                let (rate, mut sample) = measure(server, token, ROUND);
                rates[side][kind].push(rate);
                latencies[side][kind].append(&mut sample);
            }
        }
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let mut rows = String::new();
    let mut ratios = [0.0; 2];
    for (kind, what) in ["a valid key (200)", "an unknown key (401)"]
        .into_iter()
        .enumerate()
    {
        let mut rate_of = [0.0; 2];
        for (side, keys) in [FEW, MANY].into_iter().enumerate() {
            rate_of[side] = median(&mut rates[side][kind]);
            let (p50, p99) = percentiles(&mut latencies[side][kind]);
            rows += &format!(
                "| whoami with {what}, {keys} keys | {rate:.0} req/s, p50 {p50:.3} ms, p99 {p99:.3} ms | | |\n",
                rate = rate_of[side],
            );
        }
        ratios[kind] = rate_of[0] / rate_of[1];
    }
    let verdict = |ratio: f64| {
        if ratio <= TARGET_RATIO {
            "met"
        } else {
            "**missed**"
        }
    };
    for (kind, what) in ["a valid key", "an unknown key"].into_iter().enumerate() {
        rows += &format!(
            "| time per request, {MANY} vs {FEW} keys, {what} | {ratio:.2} | <= {TARGET_RATIO} | {verdict} |\n",
            ratio = ratios[kind],
            verdict = verdict(ratios[kind]),
        );
    }
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC");
    let report = format!(
        "## `svc serve`: authentication against the number of keys

Measured by `bash bench/serve_keys.sh` (`benches/serve_keys.rs`, release build) on {date}.
Machine: {machine}.

Two `svc serve`s with the files backend on 127.0.0.1, whose stores hold {FEW} and {MANY} API keys.
{CLIENTS} clients call `GET /api/whoami` back to back on kept-alive connections, with a valid key
and with a well-formed key of an unknown id, for {round} s a side, in {ROUNDS} rounds that
alternate the sides; each side keeps its median round (the latencies are those of every round).
The load generator runs on the same 2 cores as the servers. Before the shared key index, the
files backend copied the whole key table on every request: this bench measured ratios of 2.95
(a valid key) and 4.43 (an unknown key) on 2026-12-07 at commit 0eb3cb5, and the report that
found it 4.7-5.7.

| measure | result | target | |
|---|---|---|---|
{rows}",
        machine = machine(),
        round = ROUND.as_secs(),
    );
    print!("{report}");
    write_results(&report);
}

/// Runs `svc` in `dir`; its standard output.
fn svc(dir: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_svc"))
        .args(args)
        .current_dir(dir)
        .env("SVC_IDENTITY", dir.join("key.txt"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "svc {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// A server whose store holds `keys` keys, one of them the caller's.
fn start(keys: usize) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let public = svc(dir.path(), &["secret", "keygen", "-o", "key.txt"]);
    svc(
        dir.path(),
        &["secret", "init", "--env", "bench", "--recipient", &public],
    );
    std::fs::write(dir.path().join("app.svc"), PROGRAM).unwrap();
    let token = svc(
        dir.path(),
        &["key", "create", "--as", "caller", "--env", "bench"],
    );
    let identities = Identities::read(&[dir.path().join("key.txt")]).unwrap();
    let now = chrono::Utc::now();
    Store::new(dir.path().join("secrets"), "bench")
        .unwrap()
        .update(&identities, |document| {
            for _ in 1..keys {
                let key = svc::secrets::api_keys::generate("caller", None, None, now)
                    .expect("the system's randomness");
                document.api_keys.insert(key.id, key.record);
            }
            Ok(())
        })
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_svc"))
        .args(["serve", "app.svc", "--env", "bench", "--no-schedules"])
        .args(["--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("SVC_IDENTITY", dir.path().join("key.txt"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some((_, rest)) = line.split_once("listening on http://") {
                let address = rest.split_whitespace().next().unwrap_or_default();
                let _ = tx.send(address.to_string());
            }
        }
    });
    let address = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("svc serve started");
    Server {
        child,
        address,
        token,
        _dir: dir,
    }
}

/// Calls whoami with `token` from [`CLIENTS`] clients for `duration`:
/// requests per second, and the latency of each, in ms.
fn measure(server: &Server, token: &str, duration: Duration) -> (f64, Vec<f64>) {
    let request =
        format!("GET /api/whoami HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n");
    let started = Instant::now();
    let latencies: Vec<f64> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let request = request.as_bytes();
                let address = server.address.as_str();
                scope.spawn(move || {
                    let mut stream = TcpStream::connect(address).unwrap();
                    stream.set_nodelay(true).unwrap();
                    let mut buf = Vec::with_capacity(8192);
                    let mut latencies = Vec::new();
                    while started.elapsed() < duration {
                        let sent = Instant::now();
                        stream.write_all(request).unwrap();
                        let status = read_response(&mut stream, &mut buf);
                        assert!(status == 200 || status == 401, "status {status}");
                        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                    }
                    latencies
                })
            })
            .collect();
        clients
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect()
    });
    (
        latencies.len() as f64 / started.elapsed().as_secs_f64(),
        latencies,
    )
}

/// Reads one response; its status.
fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> u16 {
    buf.clear();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "the server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "the server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
    status
}

/// p50 and p99 of latencies in ms.
fn percentiles(latencies: &mut [f64]) -> (f64, f64) {
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        let index = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies.get(index).copied().unwrap_or(f64::NAN)
    };
    (pick(0.50), pick(0.99))
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU", str::trim)
        .to_string();
    let memory = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cpus} CPUs, {model}, {memory:.1} GiB memory, Linux {}",
        kernel.trim()
    )
}

const BEGIN: &str = "<!-- serve_keys: begin -->";
const END: &str = "<!-- serve_keys: end -->";

/// Puts the report in bench/RESULTS.md between its markers (bench/report.py
/// keeps that block when it rewrites the file).
fn write_results(report: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/RESULTS.md");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let block = format!("{BEGIN}\n{report}{END}\n");
    let updated = match (text.find(BEGIN), text.find(END)) {
        (Some(start), Some(end)) if start < end => {
            format!(
                "{}{block}{}",
                &text[..start],
                &text[end + END.len()..].trim_start_matches('\n')
            )
        }
        _ => format!(
            "{}\n{block}",
            text.trim_end_matches('\n').to_string() + "\n"
        ),
    };
    std::fs::write(&path, updated).unwrap();
    eprintln!("wrote the serve_keys section of {}", path.display());
}
