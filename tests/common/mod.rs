//! Helpers shared by the integration tests: run the real `svc` binary and
//! look at what it printed.

#![allow(dead_code)]

pub mod authorizing;
pub mod emulator;
pub mod pg;
pub mod rotating;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A finished `svc` process.
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all_output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Run {
            status: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// A `svc` invocation being set up.
pub struct Svc {
    command: Command,
    stdin: Option<Vec<u8>>,
}

pub fn svc() -> Svc {
    let mut command = Command::new(env!("CARGO_BIN_EXE_svc"));
    for variable in [
        "SVC_IDENTITY",
        "SVC_SECRETS_DIR",
        "SVC_LOG_DIR",
        "SVC_STATE_DIR",
        "SVC_ENV",
        "SVC_AS",
        "SVC_PROJECT",
        "SVC_LISTEN",
        "SVC_LOG_FORMAT",
    ] {
        command.env_remove(variable);
    }
    // The user's own identity is one place svc looks: never the machine's.
    command.env("XDG_CONFIG_HOME", "/nonexistent/svc-test-config");
    command.env("NO_COLOR", "1");
    Svc {
        command,
        stdin: None,
    }
}

impl Svc {
    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Self {
        self.command.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.command.args(args);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.command.current_dir(dir);
        self
    }

    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    pub fn run(mut self) -> Run {
        use std::io::Write;
        self.command.stdout(Stdio::piped()).stderr(Stdio::piped());
        self.command.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = self.command.spawn().expect("svc starts");
        if let Some(input) = self.stdin.take() {
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(&input).expect("write stdin");
        }
        child.wait_with_output().expect("svc finishes").into()
    }
}

impl Svc {
    /// Starts svc with piped standard output and error and no input, for a
    /// test that talks to it while it runs.
    pub fn spawn(mut self) -> std::process::Child {
        self.command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("svc starts")
    }

    /// Runs with standard output a pipe nobody reads: its reader is closed
    /// before svc starts, so svc's first write to it fails with EPIPE, as
    /// when `head` has read what it wanted. `stdout` of the result is empty.
    pub fn run_with_closed_stdout(mut self) -> Run {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        self.command.stdout(writer).stderr(Stdio::piped());
        self.command.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = self.command.spawn().expect("svc starts");
        if let Some(input) = self.stdin.take() {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("stdin");
            // svc may end before it reads everything: that is its right.
            let _ = stdin.write_all(&input);
        }
        child.wait_with_output().expect("svc finishes").into()
    }
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// An age key pair made by the real `age-keygen`.
pub struct Key {
    pub path: PathBuf,
    pub public: String,
}

pub fn age_keygen(dir: &Path, name: &str) -> Key {
    let path = dir.join(name);
    let status = Command::new("age-keygen")
        .arg("-o")
        .arg(&path)
        .stderr(Stdio::null())
        .status()
        .expect("age-keygen is installed (Debian package `age`)");
    assert!(status.success());
    let output = Command::new("age-keygen")
        .arg("-y")
        .arg(&path)
        .output()
        .unwrap();
    let public = String::from_utf8(output.stdout).unwrap().trim().to_string();
    Key { path, public }
}

/// A project directory with a `dev` store and the key that opens it.
pub struct Project {
    pub dir: tempfile::TempDir,
    pub key: Key,
}

impl Project {
    pub fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        let key = age_keygen(dir.path(), "key.txt");
        let project = Project { dir, key };
        let run = project
            .svc()
            .args([
                "secret",
                "init",
                "--env",
                "dev",
                "--recipient",
                &project.key.public,
            ])
            .run();
        assert_eq!(run.status, 0, "{}", run.stderr);
        project
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `svc` in the project directory, with the project's identity.
    pub fn svc(&self) -> Svc {
        svc()
            .current_dir(self.dir.path())
            .env("SVC_IDENTITY", &self.key.path)
    }

    pub fn set(&self, name: &str, value: &str) {
        let run = self
            .svc()
            .args(["secret", "set", name, "--env", "dev"])
            .stdin(value)
            .run();
        assert_eq!(run.status, 0, "{}", run.stderr);
    }

    pub fn get(&self, name: &str) -> String {
        let run = self
            .svc()
            .args(["secret", "get", name, "--env", "dev"])
            .run();
        assert_eq!(run.status, 0, "{}", run.stderr);
        run.stdout.trim_end_matches('\n').to_string()
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join("secrets/dev.age")
    }

    /// The store decrypted by the real `age`.
    pub fn age_decrypt(&self, key: &Path) -> Output {
        age_decrypt_file(key, &self.store())
    }
}

/// `file` decrypted by the real `age` with the identity `key`.
pub fn age_decrypt_file(key: &Path, file: &Path) -> Output {
    Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(key)
        .arg(file)
        .output()
        .unwrap()
}

impl Project {
    /// Writes a file into the project.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The store decrypted by svc itself, as JSON.
    pub fn document(&self) -> serde_json::Value {
        let output = self.age_decrypt(&self.key.path);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// Every line of every endpoint log of the project.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        let Ok(envs) = std::fs::read_dir(self.dir.path().join("logs")) else {
            return out;
        };
        for env in envs.flatten() {
            for file in std::fs::read_dir(env.path()).unwrap().flatten() {
                out.push_str(&std::fs::read_to_string(file.path()).unwrap());
            }
        }
        out
    }
}

/// A Node.js authorization server from `tests/servers/`, on 127.0.0.1,
/// stopped when dropped (and when this process dies: it exits when its
/// stdin closes).
pub struct NodeServer {
    child: std::process::Child,
    _stdin: std::process::ChildStdin,
    /// The JSON line the server printed when ready.
    pub info: serde_json::Value,
}

impl NodeServer {
    /// Starts `tests/servers/NAME.js` with a JSON config.
    pub fn start(name: &str, config: serde_json::Value) -> NodeServer {
        use std::io::BufRead;
        let servers = root().join("tests/servers");
        assert!(
            servers.join("node_modules").exists(),
            "the test servers are not installed: run `npm ci --prefix tests/servers` (scripts/test.sh does)"
        );
        let mut child = Command::new("node")
            .arg(servers.join(format!("{name}.js")))
            .arg(config.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node is installed");
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let info: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("{name}.js did not start: {line:?}"));
        NodeServer {
            child,
            _stdin: stdin,
            info,
        }
    }

    pub fn url(&self, key: &str) -> String {
        self.info[key]
            .as_str()
            .unwrap_or_else(|| panic!("no {key} in {}", self.info))
            .to_string()
    }

    /// POSTs a form and returns the status and the JSON answer.
    pub fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> (u16, serde_json::Value) {
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut curl = Command::new("curl");
        curl.args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", "POST", "-H"])
            .arg("Content-Type: application/x-www-form-urlencoded")
            .arg("--data-binary")
            .arg(body)
            .arg(url);
        if let Some((user, password)) = basic {
            curl.arg("-u").arg(format!("{user}:{password}"));
        }
        let output = curl.output().expect("curl is installed");
        let text = String::from_utf8(output.stdout).unwrap();
        let (body, status) = text.rsplit_once('\n').unwrap();
        (
            status.parse().unwrap(),
            serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
        )
    }

    pub fn get_json(&self, url: &str) -> serde_json::Value {
        let output = Command::new("curl")
            .args(["-s", url])
            .output()
            .expect("curl is installed");
        serde_json::from_slice(&output.stdout).unwrap()
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A `svc serve` process on 127.0.0.1, stopped with SIGTERM when dropped.
pub struct Served {
    pub child: std::process::Child,
    pub base: String,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Project {
    /// Starts `svc serve` in the project with extra arguments; waits until it listens.
    pub fn serve(&self, args: &[&str]) -> Served {
        self.serve_wrapped(&[], args)
    }

    /// As [`Project::serve`], started through a wrapper command that execs
    /// it (such as `prlimit --nofile=100:100`).
    pub fn serve_wrapped(&self, wrapper: &[&str], args: &[&str]) -> Served {
        self.serve_listening(wrapper, "127.0.0.1:0", args)
    }

    /// As [`Project::serve`], listening on `listen` (such as a port picked
    /// with [`free_port`], for a server whose URL must be known before it
    /// starts).
    pub fn serve_at(&self, listen: &str, args: &[&str]) -> Served {
        self.serve_listening(&[], listen, args)
    }

    fn serve_listening(&self, wrapper: &[&str], listen: &str, args: &[&str]) -> Served {
        use std::io::BufRead;
        let mut command = match wrapper.split_first() {
            Some((program, wrapper_args)) => {
                let mut command = Command::new(program);
                command.args(wrapper_args).arg(env!("CARGO_BIN_EXE_svc"));
                command
            }
            None => Command::new(env!("CARGO_BIN_EXE_svc")),
        };
        let mut child = command
            .arg("serve")
            .args(args)
            .args(["--listen", listen])
            .current_dir(self.dir.path())
            .env("SVC_IDENTITY", &self.key.path)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = std::io::BufReader::new(child.stderr.take().unwrap());
        let collected = stderr.clone();
        std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                if let Some(address) = listening_address(&line) {
                    let _ = tx.send(address);
                }
                collected.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let base = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("svc serve did not start:\n{}", stderr.lock().unwrap()));
        Served {
            child,
            base,
            stderr,
        }
    }
}

/// A port of 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An HTTP answer.
pub struct Answer {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.body))
    }
}

impl Served {
    /// `curl` a path of the server, with a key when given.
    pub fn call(&self, method: &str, path: &str, key: Option<&str>, body: Option<&str>) -> Answer {
        self.call_with(method, path, key, body, &[])
    }

    pub fn call_with(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
        extra: &[&str],
    ) -> Answer {
        let headers_file = tempfile::NamedTempFile::new().unwrap();
        let mut curl = Command::new("curl");
        curl.args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method, "-D"])
            .arg(headers_file.path())
            .args(extra);
        if let Some(key) = key {
            curl.arg("-H").arg(format!("Authorization: Bearer {key}"));
        }
        if let Some(body) = body {
            curl.args([
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                body,
            ]);
        }
        let output = curl
            .arg(format!("{}{path}", self.base))
            .output()
            .expect("curl is installed");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
        Answer {
            status: status.trim().parse().unwrap_or(0),
            headers: std::fs::read_to_string(headers_file.path()).unwrap_or_default(),
            body: body.to_string(),
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits; returns the exit code.
    pub fn stop(&mut self) -> i32 {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("svc serve did not stop:\n{}", self.stderr());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Project {
    /// Creates an API key for an identity; returns the key.
    /// The program is the project's directory unless `extra` names one
    /// with `--program` (the project has no svc.toml that would say so).
    pub fn key(&self, identity: &str, extra: &[&str]) -> String {
        let program: &[&str] = if extra.contains(&"--program") {
            &[]
        } else {
            &["--program", "."]
        };
        let run = self
            .svc()
            .args(["key", "create", "--as", identity, "--env", "dev"])
            .args(program.iter().copied())
            .args(extra.iter().copied())
            .run();
        assert_eq!(run.status, 0, "{}", run.stderr);
        run.stdout.trim().to_string()
    }
}

/// Waits until `check` holds, for at most `seconds`.
pub fn eventually(seconds: u64, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    check()
}

/// A program's full structure, layouts and durations included, with every
/// span left out: two programs that differ only in where things were
/// written give the same text.
pub fn without_spans(program: &svc::syntax::ast::Program) -> String {
    let debug = format!("{program:#?}");
    let mut out = String::with_capacity(debug.len());
    let mut rest = debug.as_str();
    while let Some(at) = rest.find("Span {") {
        out.push_str(&rest[..at]);
        out.push_str("Span");
        let after = &rest[at..];
        let end = after.find('}').expect("a span closes");
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The address in `svc serve`'s "listening on ADDRESS" line, human or JSON.
pub fn listening_address(line: &str) -> Option<String> {
    let (_, rest) = line.split_once("listening on ")?;
    Some(
        rest.split(|c: char| c.is_whitespace() || c == '"')
            .next()?
            .to_string(),
    )
}

// ---- OAuth flows with a person in them ------------------------------------------
//
// `tests/servers/oidc.js` serves the authorization code flow with PKCE and
// the device flow; `tests/browser/consent.js` is the person: it logs in on
// oidc-provider's own pages and approves or denies. The helpers below run
// it, catch the redirect on a loopback port, make PKCE pairs and sign JWTs
// with Debian's openssl (for private_key_jwt and tests/servers/jwt-bearer.js).

/// Runs `tests/browser/consent.js` with a request (see the script's header
/// for every key) and returns the JSON line it printed: `ok` (bool),
/// `outcome` (`redirected`, `device_approved`, `device_denied`), `final_url`
/// (a code's value replaced by `REDACTED`), `status`, `text` (the final page,
/// at most 500 characters), `redirect` (`code`: whether there was one,
/// `state`, `iss`, `error`, `error_description`), `steps`, `ms`, and `error`
/// when `ok` is false. Does not panic when the flow failed: look at `ok`.
/// Takes 3-5 s on an idle machine (most of it starting Chromium), gives up
/// after 90 s; returns as soon as the line is there, while Chromium closes.
pub fn browser_consent(request: serde_json::Value) -> serde_json::Value {
    use std::io::{BufRead, Read};
    let browser = root().join("tests/browser");
    assert!(
        browser.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `npm ci --prefix tests/browser` (scripts/test.sh does)"
    );
    let mut child = Command::new("node")
        .arg(browser.join("consent.js"))
        .arg(request.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node is installed");
    let mut stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    // The line comes before the browser is closed: no need to wait for that.
    let mut line = String::new();
    let _ = std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
    match serde_json::from_str::<serde_json::Value>(&line) {
        Ok(result) => {
            std::thread::spawn(move || {
                let _ = child.wait();
                let _ = stderr.join();
            });
            result
        }
        Err(_) => {
            let status = child.wait().unwrap();
            panic!(
                "consent.js printed no JSON line ({status}):\n{line}\n{}",
                stderr.join().unwrap_or_default()
            )
        }
    }
}

/// A person logs in as `alice` at an authorization URL of oidc.js and
/// `action`s ("approve" or "deny") the consent page; the browser follows the
/// redirect to the client (svc's loopback listener, or a
/// [`LoopbackRedirect`]). See [`browser_consent`] for the answer.
pub fn consent(url: &str, action: &str) -> serde_json::Value {
    browser_consent(serde_json::json!({"url": url, "login": "alice", "action": action}))
}

/// A person opens the device flow's verification page (`verification_uri`
/// of the device authorization answer, or oidc.js's ready line), enters
/// `user_code`, confirms the device, logs in as `alice` and `action`s
/// ("approve" or "deny") the consent page. `ok` with `outcome`
/// `device_approved` or `device_denied`; a code the provider refuses
/// (unknown, expired, used) gives `ok: false` and the page's message in `error`.
pub fn device_consent(verification_uri: &str, user_code: &str, action: &str) -> serde_json::Value {
    browser_consent(serde_json::json!({
        "device": verification_uri, "user_code": user_code, "login": "alice", "action": action,
    }))
}

/// A PKCE pair (RFC 7636): a random verifier and its S256 challenge.
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Pkce {
        use base64::Engine as _;
        use sha2::Digest as _;
        const UNRESERVED: &[u8] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
        let verifier: String = (0..64)
            .map(|_| UNRESERVED[fastrand::usize(..UNRESERVED.len())] as char)
            .collect();
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()));
        Pkce {
            verifier,
            challenge,
        }
    }
}

/// `endpoint` with `params` in its query string, form-encoded.
pub fn authorize_url(endpoint: &str, params: &[(&str, &str)]) -> String {
    url::Url::parse_with_params(endpoint, params)
        .expect("an absolute URL")
        .to_string()
}

/// What came to a [`LoopbackRedirect`].
#[derive(Debug, Clone)]
pub struct Callback {
    /// The request target, as sent (with the code in it).
    pub target: String,
    /// The query's parameters, decoded.
    pub query: std::collections::BTreeMap<String, String>,
}

/// A stand-in for a client's loopback redirect listener (RFC 8252 section
/// 7.3): listens on 127.0.0.1 on a free port, answers every request with a
/// small "you can close this tab" page, and hands over the first request
/// for its path that carries `code` or `error`.
pub struct LoopbackRedirect {
    pub port: u16,
    path: String,
    callbacks: std::sync::mpsc::Receiver<Callback>,
}

impl LoopbackRedirect {
    /// Listens for `path` (such as "/callback").
    pub fn start(path: &str) -> LoopbackRedirect {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, callbacks) = std::sync::mpsc::channel();
        let wanted = path.to_string();
        // Each connection on a thread of its own: a browser may open one
        // and send nothing on it (a preconnect). Accepting stops with the
        // first connection after the callback came (or with the test process).
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if done.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (tx, wanted, done) = (tx.clone(), wanted.clone(), done.clone());
                std::thread::spawn(move || {
                    if let Some(callback) = answer_redirect(stream, &wanted) {
                        done.store(true, std::sync::atomic::Ordering::SeqCst);
                        let _ = tx.send(callback);
                    }
                });
            }
        });
        LoopbackRedirect {
            port,
            path: path.to_string(),
            callbacks,
        }
    }

    /// `http://127.0.0.1:PORT/PATH`.
    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}{}", self.port, self.path)
    }

    /// The callback, once it came; panics after `seconds`.
    pub fn wait(&self, seconds: u64) -> Callback {
        self.callbacks
            .recv_timeout(std::time::Duration::from_secs(seconds))
            .unwrap_or_else(|_| panic!("no callback on {} in {seconds} s", self.redirect_uri()))
    }
}

/// Reads one request from a [`LoopbackRedirect`]'s connection and answers
/// it; the callback when it was one.
fn answer_redirect(mut stream: std::net::TcpStream, wanted: &str) -> Option<Callback> {
    use std::io::{BufRead, Write};
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .ok()?;
    let mut reader = std::io::BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    // The headers, up to the empty line.
    let mut header = String::new();
    while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
        header.clear();
    }
    let target = request_line.split_whitespace().nth(1)?.to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query: std::collections::BTreeMap<String, String> =
        url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
    let ours = path == wanted && (query.contains_key("code") || query.contains_key("error"));
    let (status, body) = if ours {
        (
            "200 OK",
            "<!doctype html><title>Done</title><p>Authorization received. You can close this tab.</p>",
        )
    } else {
        (
            "404 Not Found",
            "<!doctype html><title>Not here</title><p>Not the callback.</p>",
        )
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    ours.then_some(Callback { target, query })
}

/// A key pair made by Debian's `openssl`, for JWTs: the private key's file
/// (PEM, PKCS#8) and the public key (PEM, SPKI) that servers are given.
pub struct JwtKey {
    pub private: PathBuf,
    pub public_pem: String,
    /// The JWS algorithm it signs with: RS256, ES256 or EdDSA.
    pub alg: &'static str,
}

/// Makes a key pair in `dir` (named `name`) for `alg`: "RS256" (RSA 2048),
/// "ES256" (P-256) or "EdDSA" (Ed25519).
pub fn openssl_key(dir: &Path, name: &str, alg: &str) -> JwtKey {
    let (alg, options): (&'static str, &[&str]) = match alg {
        "RS256" => (
            "RS256",
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        ),
        "ES256" => (
            "ES256",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        ),
        "EdDSA" => ("EdDSA", &["-algorithm", "ed25519"]),
        other => panic!("no key for {other}: RS256, ES256 or EdDSA"),
    };
    let private = dir.join(format!("{name}.pem"));
    let status = Command::new("openssl")
        .arg("genpkey")
        .args(options)
        .arg("-out")
        .arg(&private)
        .stderr(Stdio::null())
        .status()
        .expect("openssl is installed");
    assert!(status.success(), "openssl genpkey failed");
    let output = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .output()
        .unwrap();
    assert!(output.status.success(), "openssl pkey -pubout failed");
    JwtKey {
        private,
        public_pem: String::from_utf8(output.stdout).unwrap(),
        alg,
    }
}

/// A compact JWS of `claims`, signed with `key` by `openssl`; `header`
/// gets `alg` (and `typ: JWT` unless it has a `typ`) added. The signature
/// is what RFC 7518 asks for: PKCS#1 v1.5 for RS256, r||s (not DER) for
/// ES256, Ed25519 over the raw input for EdDSA.
pub fn sign_jwt(key: &JwtKey, header: serde_json::Value, claims: &serde_json::Value) -> String {
    use base64::Engine as _;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let mut header = header;
    header["alg"] = key.alg.into();
    if header.get("typ").is_none() {
        header["typ"] = "JWT".into();
    }
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("input");
    std::fs::write(&data, &input).unwrap();
    let mut openssl = Command::new("openssl");
    match key.alg {
        "EdDSA" => openssl
            .args(["pkeyutl", "-sign", "-rawin", "-inkey"])
            .arg(&key.private)
            .arg("-in")
            .arg(&data),
        _ => openssl
            .args(["dgst", "-sha256", "-sign"])
            .arg(&key.private)
            .arg(&data),
    };
    let output = openssl.output().expect("openssl is installed");
    assert!(
        output.status.success(),
        "openssl could not sign: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let signature = match key.alg {
        "ES256" => ecdsa_der_to_raw(&output.stdout, 32),
        _ => output.stdout,
    };
    format!("{input}.{}", b64(&signature))
}

/// An ECDSA signature as DER (`SEQUENCE { INTEGER r, INTEGER s }`, what
/// openssl writes) to the fixed-width r||s of JWS.
fn ecdsa_der_to_raw(der: &[u8], width: usize) -> Vec<u8> {
    fn integer(bytes: &[u8]) -> (&[u8], &[u8]) {
        assert_eq!(bytes[0], 0x02, "an INTEGER");
        let len = bytes[1] as usize;
        (&bytes[2..2 + len], &bytes[2 + len..])
    }
    assert_eq!(der[0], 0x30, "a SEQUENCE");
    // Short or one-byte long form: P-256 signatures are at most 72 bytes.
    let body = if der[1] == 0x81 { &der[3..] } else { &der[2..] };
    let (r, rest) = integer(body);
    let (s, _) = integer(rest);
    let mut raw = vec![0; 2 * width];
    for (i, part) in [r, s].into_iter().enumerate() {
        let part = &part[part.len().saturating_sub(width)..];
        raw[(i + 1) * width - part.len()..(i + 1) * width].copy_from_slice(part);
    }
    raw
}

/// Seconds since the Unix epoch, for JWT claims.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

// ---- Small HTTP servers written in a test ---------------------------------------

/// One HTTP/1.1 request as a test's own server received it.
pub struct Received {
    pub method: String,
    /// The request target: path and query.
    pub target: String,
    /// The request line and the header lines, as sent.
    pub head: String,
    pub body: String,
}

/// Reads one request (its head, and a body of `content-length` bytes).
pub fn read_request(stream: &std::net::TcpStream) -> Received {
    use std::io::{BufRead, Read};
    let mut reader = std::io::BufReader::new(stream);
    let mut head = String::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap();
        }
        head.push_str(&line);
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let mut words = head.split_whitespace();
    Received {
        method: words.next().unwrap_or_default().to_string(),
        target: words.next().unwrap_or_default().to_string(),
        body: String::from_utf8_lossy(&body).to_string(),
        head,
    }
}

/// Answers with `status` (such as "200 OK") and a JSON body, and closes.
pub fn answer_json(mut stream: std::net::TcpStream, status: &str, body: &str) {
    use std::io::Write;
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// One HTTP request by curl, redirects not followed: the status, the
/// redirect's target (empty without one) and the body.
pub fn http_request(method: &str, url: &str, body: Option<&str>) -> (u16, String, String) {
    let mut curl = Command::new("curl");
    curl.args([
        "-s",
        "-o",
        "-",
        "-w",
        "\n%{http_code}\n%{redirect_url}",
        "-X",
        method,
    ]);
    if let Some(body) = body {
        curl.arg("--data-binary").arg(body);
    }
    let output = curl.arg(url).output().expect("curl is installed");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut parts = text.rsplitn(3, '\n');
    let redirect = parts.next().unwrap_or("").to_string();
    let status = parts.next().unwrap_or("0").parse().unwrap_or(0);
    let body = parts.next().unwrap_or("").to_string();
    (status, redirect, body)
}

/// `svc connection show CLIENT --program app.svc --env dev --json`, by the
/// `svc` given (a project's, on files or a database): the connection's state.
pub fn connection_show(svc: Svc, client: &str) -> serde_json::Value {
    let run = svc
        .args([
            "connection",
            "show",
            client,
            "--program",
            "app.svc",
            "--env",
            "dev",
            "--json",
        ])
        .run();
    assert_eq!(run.status, 0, "{}", run.all_output());
    serde_json::from_str(&run.stdout).expect("one JSON object")
}
