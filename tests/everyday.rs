//! Everyday use, as a new user meets it: a project made by `svc init`,
//! used from another directory, with no `export`. Each test reproduces one
//! friction that users reported, and shows it gone.

mod common;

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::{Svc, svc};

/// A new user's home and a project made in it by `svc init myproj --yes`.
struct Newcomer {
    dir: tempfile::TempDir,
}

impl Newcomer {
    fn new() -> Newcomer {
        let newcomer = Newcomer {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir(newcomer.home()).unwrap();
        let init = newcomer.svc().args(["init", "myproj", "--yes"]).run();
        assert_eq!(init.status, 0, "{}", init.all_output());
        assert!(!init.stdout.contains("export"), "{}", init.stdout);
        // The starter program's token endpoint: a port nothing listens on.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let program = newcomer.project().join("tokens.svc");
        let text = std::fs::read_to_string(&program).unwrap().replace(
            "https://auth.example.com/oauth2/token",
            &format!("http://127.0.0.1:{closed}/token"),
        );
        std::fs::write(program, text).unwrap();
        newcomer
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn project(&self) -> PathBuf {
        self.dir.path().join("myproj")
    }

    /// `svc` in the directory above the project, as this user.
    fn svc(&self) -> Svc {
        svc()
            .current_dir(self.dir.path())
            .env("HOME", self.home())
            .env("XDG_CONFIG_HOME", "")
    }

    fn set(&self, name: &str, value: &str) {
        let run = self
            .svc()
            .args(["--project", "myproj", "secret", "set", name])
            .stdin(value)
            .run();
        assert_eq!(run.status, 0, "{}", run.all_output());
    }
}

#[test]
fn the_identity_svc_init_made_opens_the_store_everywhere() {
    let user = Newcomer::new();
    user.set("API_CLIENT_ID", "client-id-1");
    let listed = user
        .svc()
        .args(["--project", "myproj", "secret", "list"])
        .run();
    assert_eq!(listed.status, 0, "{}", listed.all_output());
    assert!(listed.stdout.contains("API_CLIENT_ID"), "{}", listed.stdout);

    // Another user, without that identity: the error says where svc looked
    // and which key opens the store, and never asks for a new key.
    let public = std::fs::read_to_string(user.project().join("secrets/dev.recipients"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("age1"))
        .unwrap()
        .to_string();
    let stranger = user
        .svc()
        .env("HOME", user.dir.path().join("nobody"))
        .args(["--project", "myproj", "secret", "list"])
        .run();
    assert_eq!(stranger.status, 2, "{}", stranger.all_output());
    let help = stranger.stderr.replace('\n', " ").replace("  ", " ");
    for expected in [
        "svc::store::no_identity",
        "SVC_IDENTITY: not set",
        "svc.toml",
        "nobody/.config/svc/identity.txt",
    ] {
        assert!(help.contains(expected), "{expected}: {}", stranger.stderr);
    }
    assert!(stranger.stderr.contains(&public), "{}", stranger.stderr);
    assert!(
        !stranger.stderr.contains("age-keygen -o"),
        "{}",
        stranger.stderr
    );
}

#[test]
fn every_command_finds_the_project_from_another_directory() {
    let user = Newcomer::new();
    user.set("API_CLIENT_ID", "client-id-1");
    user.set("API_CLIENT_SECRET", "client-secret-2");
    let check = user.svc().args(["check", "myproj"]).run();
    assert_eq!(check.status, 0, "{}", check.all_output());
    // The run fails (nothing listens), and is logged in the project.
    let run = user
        .svc()
        .args(["run", "myproj", "api.refresh", "--as", "token_bot"])
        .run();
    assert_eq!(run.status, 1, "{}", run.all_output());
    assert!(user.project().join("logs/dev/api.refresh.jsonl").is_file());
    assert!(
        !user.dir.path().join("logs").exists(),
        "nothing is written here"
    );
    assert!(!user.dir.path().join("secrets").exists());
    let logs = user
        .svc()
        .args(["--project", "myproj", "logs", "api.refresh"])
        .run();
    assert_eq!(logs.status, 0, "{}", logs.all_output());
    assert!(logs.stdout.contains("failed"), "{}", logs.stdout);
    // From a directory inside the project, nothing needs naming.
    std::fs::create_dir(user.project().join("notes")).unwrap();
    let inside = user
        .svc()
        .current_dir(user.project().join("notes"))
        .args(["logs", "api.refresh"])
        .run();
    assert_eq!(inside.status, 0, "{}", inside.all_output());
    // Where there is no project and nothing logged, svc says so (exit 2)
    // instead of "no runs logged".
    let lost = user
        .svc()
        .args(["logs", "api.refresh", "--env", "dev"])
        .run();
    assert_eq!(lost.status, 2, "{}", lost.all_output());
    assert!(
        lost.stderr.contains("svc::logs::none") && lost.stderr.contains("--project"),
        "{}",
        lost.stderr
    );
}

#[test]
fn run_takes_its_program_from_the_project_like_check_and_serve() {
    let user = Newcomer::new();
    user.set("API_CLIENT_ID", "client-id-1");
    user.set("API_CLIENT_SECRET", "client-secret-2");
    let run = user
        .svc()
        .current_dir(user.project())
        .args(["run", "api.refresh", "--as", "token_bot", "--dry-run"])
        .run();
    assert_eq!(run.status, 0, "{}", run.all_output());
    assert!(run.stdout.contains("would send POST"), "{}", run.stdout);
}

#[test]
fn a_key_for_an_identity_the_program_does_not_declare_is_refused() {
    let user = Newcomer::new();
    let typo = user
        .svc()
        .args(["--project", "myproj", "key", "create", "--as", "token_boot"])
        .run();
    assert_eq!(typo.status, 2, "{}", typo.all_output());
    assert!(
        typo.stderr.contains("svc::key::unknown_identity")
            && typo.stderr.contains("did you mean `token_bot`?"),
        "{}",
        typo.stderr
    );
    assert!(
        typo.stdout.is_empty(),
        "no key was printed: {}",
        typo.stdout
    );
    let fine = user
        .svc()
        .args(["--project", "myproj", "key", "create", "--as", "token_bot"])
        .run();
    assert_eq!(fine.status, 0, "{}", fine.all_output());
}

#[test]
fn a_dry_run_with_simulated_answers_takes_the_real_branches() {
    let user = Newcomer::new();
    user.set("API_CLIENT_ID", "client-id-1");
    user.set("API_CLIENT_SECRET", "client-secret-2");
    let mock = user.dir.path().join("answers.json");
    std::fs::write(
        &mock,
        r#"[{"request": "api.fetch_token#1", "status": 200,
             "body": {"access_token": "dry-run-token", "expires_in": 3600}}]"#,
    )
    .unwrap();
    let run = user
        .svc()
        .args([
            "run",
            "myproj",
            "api.refresh",
            "--as",
            "token_bot",
            "--dry-run",
            "--mock",
        ])
        .arg(&mock)
        .run();
    assert_eq!(run.status, 0, "{}", run.all_output());
    assert!(
        run.stdout.contains("simulated answer 200 OK")
            && run.stdout.contains("if has_value(token): true")
            && run.stdout.contains("would update secret API_ACCESS_TOKEN"),
        "{}",
        run.stdout
    );
    // The simulated token is a token like any: masked.
    assert!(!run.stdout.contains("dry-run-token"), "{}", run.stdout);
    // Nothing was sent or stored, and --mock without --dry-run is refused.
    let list = user
        .svc()
        .args(["--project", "myproj", "secret", "list", "--json"])
        .run();
    assert!(!list.stdout.contains("API_ACCESS_TOKEN"), "{}", list.stdout);
    let refused = user
        .svc()
        .args([
            "run",
            "myproj",
            "api.refresh",
            "--as",
            "token_bot",
            "--mock",
        ])
        .arg(&mock)
        .run();
    assert_eq!(refused.status, 2, "{}", refused.all_output());
    assert!(refused.stderr.contains("--dry-run"), "{}", refused.stderr);
}

/// `svc serve` from another directory, with JSON log lines on stderr.
fn serve_json(
    user: &Newcomer,
) -> (
    std::process::Child,
    String,
    std::sync::mpsc::Receiver<String>,
) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_svc"))
        .args([
            "--project",
            "myproj",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--no-schedules",
        ])
        .current_dir(user.dir.path())
        .env("HOME", user.home())
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("SVC_IDENTITY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let lines = std::io::BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in lines.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("svc serve writes a first line");
    let base = common::listening_address(&first).unwrap_or_else(|| panic!("{first}"));
    (child, base, rx)
}

#[test]
fn serve_writes_a_line_per_run_and_refusal_for_a_service_manager() {
    let user = Newcomer::new();
    user.set("API_CLIENT_ID", "client-id-1");
    user.set("API_CLIENT_SECRET", "client-secret-2");
    let key = user
        .svc()
        .args(["--project", "myproj", "key", "create", "--as", "token_bot"])
        .run()
        .stdout
        .trim()
        .to_string();
    let (mut server, base, lines) = serve_json(&user);
    let call = |key: Option<&str>| {
        let mut curl = Command::new("curl");
        curl.args(["-s", "-o", "/dev/null", "-X", "POST"]);
        if let Some(key) = key {
            curl.arg("-H").arg(format!("Authorization: Bearer {key}"));
        }
        curl.arg(format!("{base}/api/services/api/refresh"))
            .status()
            .unwrap();
    };
    call(None);
    call(Some(&key));
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while seen.len() < 2 && std::time::Instant::now() < deadline {
        if let Ok(line) = lines.recv_timeout(std::time::Duration::from_millis(200)) {
            let json: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
            if json["message"] == "run" || json["message"] == "refused" {
                seen.push(json);
            }
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    server.wait().unwrap();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let refused = &seen[0];
    assert_eq!(refused["level"], "warn");
    assert_eq!(refused["status"], 401);
    assert_eq!(refused["path"], "/api/services/api/refresh");
    let run = &seen[1];
    for field in [
        "time",
        "level",
        "env",
        "endpoint",
        "trigger",
        "identity",
        "status",
        "duration_ms",
        "run_id",
    ] {
        assert!(!run[field].is_null(), "no `{field}` in {run}");
    }
    assert_eq!(run["endpoint"], "api.refresh");
    assert_eq!(run["identity"], "token_bot");
    assert_eq!(run["trigger"], "http");
    assert_eq!(run["outcome"], "failed");
    assert_eq!(run["status"], 502);
    let text = format!("{seen:?}");
    for secret in ["client-id-1", "client-secret-2", key.as_str()] {
        assert!(!text.contains(secret), "{text}");
    }
}

#[test]
fn the_quickstart_shows_its_build_and_readme_says_how_to_install() {
    let quickstart =
        std::fs::read_to_string(common::root().join("examples/quickstart/run.sh")).unwrap();
    let build = quickstart
        .lines()
        .find(|l| l.trim_start().starts_with("cargo build --release"))
        .expect("the quickstart builds svc");
    assert!(
        !build.contains("--quiet") && !build.contains("-q"),
        "{build}"
    );
    let readme = std::fs::read_to_string(common::root().join("README.md")).unwrap();
    assert!(
        readme.contains("cargo install --locked --path ."),
        "README says how to put svc on PATH"
    );
}

#[test]
fn doctor_reports_what_a_newcomer_gets_wrong() {
    let user = Newcomer::new();
    // A key for an identity the program then drops, a state directory
    // that is a file, a schedule that ran "tomorrow", no secret values.
    let key = user
        .svc()
        .args(["--project", "myproj", "key", "create", "--as", "app"])
        .run();
    assert_eq!(key.status, 0, "{}", key.all_output());
    let program = user.project().join("tokens.svc");
    let text = std::fs::read_to_string(&program)
        .unwrap()
        .replace("service_account app { roles token_reader }\n", "");
    std::fs::write(&program, text).unwrap();
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    std::fs::create_dir_all(user.project().join("state/dev")).unwrap();
    std::fs::write(
        user.project().join("state/dev/schedules.json"),
        format!(r#"{{"schedules": {{"refresh_before_expiry": {{"last_run_at": "{tomorrow}"}}}}}}"#),
    )
    .unwrap();
    std::fs::write(user.project().join("logs"), "not a directory").unwrap();
    let doctor = user.svc().args(["--project", "myproj", "doctor"]).run();
    assert_eq!(doctor.status, 1, "{}", doctor.all_output());
    let out = &doctor.stdout;
    for expected in [
        "ok    identity:",
        "FAIL  secret values: `API_CLIENT_ID`",
        "FAIL  secret values: `API_CLIENT_SECRET`",
        "FAIL  api keys: key",
        "belongs to `app`",
        "FAIL  log directory:",
        "FAIL  clock: schedule `refresh_before_expiry`",
        "problem(s) in `dev`",
    ] {
        assert!(out.contains(expected), "{expected}:\n{out}");
    }
    // Fixed, it is quiet.
    user.set("API_CLIENT_ID", "client-id-1");
    user.set("API_CLIENT_SECRET", "client-secret-2");
    std::fs::remove_file(user.project().join("logs")).unwrap();
    std::fs::remove_file(user.project().join("state/dev/schedules.json")).unwrap();
    let revoke_id = user
        .svc()
        .args(["--project", "myproj", "key", "list", "--json"])
        .run();
    let keys: serde_json::Value = serde_json::from_str(&revoke_id.stdout).unwrap();
    let id = keys[0]["id"].as_str().unwrap().to_string();
    assert_eq!(keys[0]["state"], "orphaned", "{keys}");
    let revoke = user
        .svc()
        .args(["--project", "myproj", "key", "revoke", &id])
        .run();
    assert_eq!(revoke.status, 0, "{}", revoke.all_output());
    let doctor = user.svc().args(["--project", "myproj", "doctor"]).run();
    assert_eq!(doctor.status, 0, "{}", doctor.all_output());
    assert!(doctor.stdout.contains("all is well"), "{}", doctor.stdout);
}
