//! Soak: `svc serve` (release build) on 127.0.0.1 while clients without a
//! key try to hold 2,000 idle connections, 250 half-sent request heads and
//! 250 half-sent 2 MB bodies, and a few authenticated clients keep calling
//! an endpoint. Reports the authenticated requests/s, their p50/p99
//! latency (also without the attackers, for comparison), the attackers'
//! fate, and the server's peak resident memory (VmHWM), and writes a
//! section of bench/RESULTS.md.
//!
//!     bash bench/serve_soak.sh                 # or: SVC_SOAK=1 cargo bench --bench serve_soak
//!     SOAK_SECONDS=60 bash bench/serve_soak.sh # a longer measurement
//!
//! Not part of the test suite: it takes about a minute and wants the
//! machine to itself.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const IDLE: usize = 2000;
const HALF_HEADS: usize = 250;
const HALF_BODIES: usize = 250;
/// Authenticated clients, each on its own kept-alive connection.
const CLIENTS: usize = 4;
/// How long an attacker waits before reconnecting once the server closed it.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

const PROGRAM: &str = r#"
role runner { grant run app.* }
service_account soak { roles runner }

service app {
  action hello { log "hello ${param.who}" }
  endpoint hello {
    description "What the authenticated clients call"
    methods GET POST
    process hello
  }
}
"#;

fn main() {
    // `cargo bench` runs every bench; this one takes a minute and rewrites
    // a section of bench/RESULTS.md, so it runs only when asked for.
    if std::env::var_os("SVC_SOAK").is_none() {
        eprintln!("serve_soak: skipped; run `bash bench/serve_soak.sh` (it sets SVC_SOAK=1)");
        return;
    }
    raise_open_files();
    let svc = env!("CARGO_BIN_EXE_svc");
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: Option<&str>| -> String {
        let mut command = Command::new(svc);
        command
            .args(args)
            .current_dir(dir.path())
            .env("SVC_IDENTITY", dir.path().join("key.txt"))
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = command.spawn().unwrap();
        if let Some(input) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "svc {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap().trim().to_string()
    };
    let public = run(&["secret", "keygen", "-o", "key.txt"], None);
    run(
        &["secret", "init", "--env", "soak", "--recipient", &public],
        None,
    );
    std::fs::write(dir.path().join("app.svc"), PROGRAM).unwrap();
    let key = run(&["key", "create", "--as", "soak", "--env", "soak"], None);

    let mut server = Command::new(svc)
        .args(["serve", "app.svc", "--env", "soak", "--no-schedules"])
        .args(["--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("SVC_IDENTITY", dir.path().join("key.txt"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = server.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = server.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some((_, rest)) = line.split_once("listening on http://") {
                let address = rest.split_whitespace().next().unwrap_or_default();
                let _ = tx.send(address.to_string());
            } else {
                eprintln!("svc serve: {line}");
            }
        }
    });
    let address = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("svc serve started");
    let seconds: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(soak(address, key, pid, Duration::from_secs(seconds)));
    let _ = server.kill();
    let _ = server.wait();
    print!("{report}");
    write_results(&report);
}

fn raise_open_files() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    );
}

/// Latencies of authenticated requests.
#[derive(Default)]
struct Sample {
    latencies: Vec<Duration>,
    errors: u64,
    reconnects: u64,
    elapsed: Duration,
}

impl Sample {
    fn merge(&mut self, other: Sample) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.reconnects += other.reconnects;
    }

    fn describe(&mut self) -> (f64, f64, f64, f64) {
        self.latencies.sort();
        let pick = |q: f64| {
            let index = ((self.latencies.len() as f64 - 1.0) * q).round() as usize;
            self.latencies
                .get(index)
                .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
        };
        (
            self.latencies.len() as f64 / self.elapsed.as_secs_f64(),
            pick(0.50),
            pick(0.99),
            self.latencies
                .last()
                .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0),
        )
    }
}

async fn authenticated_clients(address: &str, key: &str, duration: Duration) -> Sample {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let address = address.to_string();
            let request = format!(
                "GET /api/services/app/hello?who=client{i} HTTP/1.1\r\nHost: soak\r\nAuthorization: Bearer {key}\r\n\r\n"
            );
            tokio::spawn(async move {
                let mut sample = Sample::default();
                let mut stream: Option<TcpStream> = None;
                let mut buf = Vec::with_capacity(8192);
                while Instant::now() < deadline {
                    if stream.is_none() {
                        match TcpStream::connect(&address).await {
                            Ok(s) => {
                                let _ = s.set_nodelay(true);
                                stream = Some(s);
                            }
                            Err(_) => {
                                sample.errors += 1;
                                tokio::time::sleep(Duration::from_millis(10)).await;
                                continue;
                            }
                        }
                    }
                    let s = stream.as_mut().unwrap();
                    let sent = Instant::now();
                    let answered = async {
                        s.write_all(request.as_bytes()).await?;
                        read_response(s, &mut buf).await
                    }
                    .await;
                    match answered {
                        Ok(200) => sample.latencies.push(sent.elapsed()),
                        Ok(_) => sample.errors += 1,
                        Err(_) => {
                            // Closed under us (an idle timeout, say): reconnect.
                            sample.reconnects += 1;
                            stream = None;
                        }
                    }
                }
                sample
            })
        })
        .collect();
    let mut total = Sample::default();
    for task in tasks {
        total.merge(task.await.unwrap());
    }
    total.elapsed = started.elapsed();
    total
}

/// Reads one response; its status.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<u16> {
    buf.clear();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
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
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(status)
}

/// One look during the attack: idle, half heads and half bodies held, and
/// the server's resident memory in KiB.
type Look = (usize, usize, usize, u64);

/// What the attackers saw.
#[derive(Default)]
struct Attack {
    /// Connected and not (yet) closed by the server.
    held: AtomicUsize,
    /// Connections the server closed, and the time each was held, in ms.
    closed: AtomicU64,
    held_ms: AtomicU64,
    /// Half-sent bodies: answered (401) before the body was sent.
    refused_bodies: AtomicU64,
    connect_errors: AtomicU64,
}

#[derive(Clone, Copy)]
enum Kind {
    Idle,
    HalfHead,
    HalfBody,
}

fn attacker(address: String, kind: Kind, attack: Arc<Attack>, stop: Arc<AtomicBool>) {
    tokio::spawn(async move {
        let body_head = b"POST /api/services/app/hello HTTP/1.1\r\nHost: soak\r\n\
              Content-Type: application/json\r\nContent-Length: 2000000\r\n\r\n";
        let body_start = vec![b' '; 64 * 1024];
        while !stop.load(Ordering::Relaxed) {
            let mut stream = match TcpStream::connect(&address).await {
                Ok(stream) => stream,
                Err(_) => {
                    attack.connect_errors.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            attack.held.fetch_add(1, Ordering::Relaxed);
            let since = Instant::now();
            let sent = match kind {
                Kind::Idle => Ok(()),
                Kind::HalfHead => {
                    stream
                        .write_all(b"GET /api/whoami HTTP/1.1\r\nHost: soak\r\nAccept: */*\r\n")
                        .await
                }
                Kind::HalfBody => match stream.write_all(body_head).await {
                    Ok(()) => stream.write_all(&body_start).await,
                    Err(e) => Err(e),
                },
            };
            // Hold until the server closes it (reading whatever it says).
            let mut buf = [0u8; 1024];
            let mut answered = false;
            if sent.is_ok() {
                loop {
                    tokio::select! {
                        read = stream.read(&mut buf) => match read {
                            Ok(0) | Err(_) => break,
                            Ok(_) => answered = true,
                        },
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {
                            if stop.load(Ordering::Relaxed) {
                                break;
                            }
                        }
                    }
                }
            }
            attack.held.fetch_sub(1, Ordering::Relaxed);
            if stop.load(Ordering::Relaxed) {
                break;
            }
            attack.closed.fetch_add(1, Ordering::Relaxed);
            attack
                .held_ms
                .fetch_add(since.elapsed().as_millis() as u64, Ordering::Relaxed);
            if matches!(kind, Kind::HalfBody) && answered {
                attack.refused_bodies.fetch_add(1, Ordering::Relaxed);
            }
            drop(stream);
            tokio::time::sleep(RECONNECT_AFTER).await;
        }
    });
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn soak(address: String, key: String, pid: u32, duration: Duration) -> String {
    // Without attackers first, for comparison.
    let _ = authenticated_clients(&address, &key, Duration::from_secs(2)).await;
    let mut baseline = authenticated_clients(&address, &key, Duration::from_secs(10)).await;
    let rss_before = status_kib(pid, "VmRSS:");

    let stop = Arc::new(AtomicBool::new(false));
    let groups = [
        (Kind::Idle, IDLE, Arc::new(Attack::default())),
        (Kind::HalfHead, HALF_HEADS, Arc::new(Attack::default())),
        (Kind::HalfBody, HALF_BODIES, Arc::new(Attack::default())),
    ];
    for (kind, count, attack) in &groups {
        for _ in 0..*count {
            attacker(address.clone(), *kind, attack.clone(), stop.clone());
        }
    }
    // Until the idle ones and half heads are all connected (or 20 s).
    let ramp = Instant::now();
    while groups[0].2.held.load(Ordering::Relaxed) + groups[1].2.held.load(Ordering::Relaxed)
        < (IDLE + HALF_HEADS) * 95 / 100
        && ramp.elapsed() < Duration::from_secs(20)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ramp_time = ramp.elapsed();

    // Sample the attackers held and the server's memory while measuring.
    let sampling = {
        let groups: Vec<Arc<Attack>> = groups.iter().map(|g| g.2.clone()).collect();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut samples: Vec<Look> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                samples.push((
                    groups[0].held.load(Ordering::Relaxed),
                    groups[1].held.load(Ordering::Relaxed),
                    groups[2].held.load(Ordering::Relaxed),
                    status_kib(pid, "VmRSS:"),
                ));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            samples
        })
    };
    let mut under_attack = authenticated_clients(&address, &key, duration).await;
    let metrics = fetch_metrics(&address).await;
    stop.store(true, Ordering::Relaxed);
    let samples = sampling.await.unwrap();
    let peak_kib = status_kib(pid, "VmHWM:");

    let (base_rate, base_p50, base_p99, base_max) = baseline.describe();
    let (rate, p50, p99, max) = under_attack.describe();
    let mean =
        |f: &dyn Fn(&Look) -> f64| samples.iter().map(f).sum::<f64>() / samples.len().max(1) as f64;
    let held_idle = mean(&|s| s.0 as f64);
    let held_heads = mean(&|s| s.1 as f64);
    let held_bodies = mean(&|s| s.2 as f64);
    let peak_rss_sampled = samples.iter().map(|s| s.3).max().unwrap_or(0);
    let closed_by = |reason: &str| -> String {
        let prefix = format!("svc_http_connections_closed_total{{reason=\"{reason}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or("0")
            .to_string()
    };
    let avg_held = |a: &Attack| {
        let closed = a.closed.load(Ordering::Relaxed);
        if closed == 0 {
            f64::NAN
        } else {
            a.held_ms.load(Ordering::Relaxed) as f64 / closed as f64 / 1000.0
        }
    };
    let verdict = |met: bool| if met { "met" } else { "**missed**" };
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC");
    format!(
        "## Soak: `svc serve` with stalled clients without a key

Measured by `bash bench/serve_soak.sh` (`benches/serve_soak.rs`, release build) on {date}.
Machine: {machine}.

`svc serve` with its default limits (`--header-timeout 10s`, `--idle-timeout 60s`,
`--max-connections 4096`) on 127.0.0.1, one endpoint that runs a `log` action. Clients without a
key try to hold {IDLE} idle connections, {HALF_HEADS} half-sent request heads and {HALF_BODIES}
half-sent 2 MB bodies (headers and 64 KiB sent), each reconnecting {reconnect} s after the server
closes it. {CLIENTS} authenticated clients call the endpoint on kept-alive connections, back to back,
for {seconds} s (first alone for 10 s, for comparison). The load generator runs on the same 2
cores as the server.

| measure | result | target | |
|---|---|---|---|
| authenticated, alone | {base_rate:.0} req/s, p50 {base_p50:.2} ms, p99 {base_p99:.2} ms, max {base_max:.1} ms | | |
| authenticated, under attack | {rate:.0} req/s, p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.1} ms | p99 < 50 ms | {p99_verdict} |
| authenticated errors, reconnects | {errors} errors, {reconnects} reconnects | | |
| serve's peak resident memory (VmHWM) | {peak:.1} MiB (before the attack {before:.1} MiB, highest sample during it {sampled:.1} MiB) | < 128 MiB | {rss_verdict} |
| idle connections held at once (mean) | {held_idle:.0} of {IDLE}; each held {idle_held:.1} s on average | | |
| half-sent heads held at once (mean) | {held_heads:.0} of {HALF_HEADS}; each held {head_held:.1} s on average | | |
| half-sent bodies held at once (mean) | {held_bodies:.1} of {HALF_BODIES}; each held {body_held:.3} s, {refused} answered 401 before their body | | |
| connections closed by the server | header timeout {header_closed}, idle timeout {idle_closed}, evicted {evicted} | | |
| attackers' time to connect | {ramp:.1} s for 95% of the idle ones and heads; {connect_errors} connect errors | | |
",
        machine = machine(),
        reconnect = RECONNECT_AFTER.as_secs(),
        seconds = duration.as_secs(),
        p99_verdict = verdict(p99 < 50.0),
        errors = under_attack.errors,
        reconnects = under_attack.reconnects,
        peak = peak_kib as f64 / 1024.0,
        before = rss_before as f64 / 1024.0,
        sampled = peak_rss_sampled as f64 / 1024.0,
        rss_verdict = verdict(peak_kib < 128 * 1024),
        idle_held = avg_held(&groups[0].2),
        head_held = avg_held(&groups[1].2),
        body_held = avg_held(&groups[2].2),
        refused = groups[2].2.refused_bodies.load(Ordering::Relaxed),
        header_closed = closed_by("header_timeout"),
        idle_closed = closed_by("idle_timeout"),
        evicted = closed_by("evicted"),
        ramp = ramp_time.as_secs_f64(),
        connect_errors = groups
            .iter()
            .map(|g| g.2.connect_errors.load(Ordering::Relaxed))
            .sum::<u64>(),
    )
}

async fn fetch_metrics(address: &str) -> String {
    let Ok(mut stream) = TcpStream::connect(address).await else {
        return String::new();
    };
    let _ = stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")
        .await;
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
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

const BEGIN: &str = "<!-- serve_soak: begin -->";
const END: &str = "<!-- serve_soak: end -->";

/// Puts the report in bench/RESULTS.md between its markers (bench/report.py
/// keeps that block when it rewrites the file).
fn write_results(report: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/RESULTS.md");
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
    eprintln!("wrote the soak section of {}", path.display());
}
