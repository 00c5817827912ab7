//! svc compile, svc init, svc completions and svc man.

mod common;

use common::{root, svc};

const HUBSPOT: &str = "examples/hubspot_refresh.svc";

#[test]
fn compile_emits_the_checked_ast() {
    let run = svc()
        .args(["compile", HUBSPOT, "--emit", "ast"])
        .current_dir(root())
        .run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    let ast: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(ast["files"], serde_json::json!([HUBSPOT]));
    let program = &ast["program"];
    assert_eq!(program["secrets"].as_array().unwrap().len(), 4);
    assert_eq!(program["services"][0]["name"]["text"], "hubspot");
    let span = &program["services"][0]["name"]["span"];
    assert_eq!(
        (span["file"].as_u64(), span["len"].as_u64()),
        (Some(0), Some(7))
    );
    let statements = &program["services"][0]["actions"][0]["body"]["statements"];
    let grant = &statements[0]["kind"];
    assert_eq!(grant["statement"], "token_grant", "{grant}");
    assert_eq!(grant["client"]["text"], "hubspot_app");
    // Checked means filled: the statements `refresh_tokens` stands for.
    assert_eq!(
        grant["steps"]["statements"][1]["kind"]["statement"], "web_request",
        "{grant}"
    );
    // A program with errors is not compiled.
    let run = svc()
        .args(["compile", "tests/check/unknown_secret_fails.svc"])
        .current_dir(root())
        .run();
    assert_eq!(run.status, 1);
    assert!(run.stdout.is_empty());
    assert!(run.stderr.contains("not compiled"), "{}", run.stderr);
}

#[test]
fn compile_emits_the_same_openapi_document_as_serve() {
    let run = svc()
        .args(["compile", HUBSPOT, "--emit", "openapi"])
        .current_dir(root())
        .run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    let document: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(
        document["paths"]["/api/services/hubspot/refresh"]["get"]["summary"],
        "Fetch a new HubSpot access token and store it as a secret"
    );
    let path = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(path.path(), &run.stdout).unwrap();
    let validated = std::process::Command::new("node")
        .arg(root().join("tests/servers/validate-openapi.js"))
        .arg(path.path())
        .output()
        .unwrap();
    assert!(
        validated.status.success(),
        "{}",
        String::from_utf8_lossy(&validated.stderr)
    );
}

#[test]
fn compile_emits_a_graph_graphviz_draws() {
    let run = svc()
        .args(["compile", HUBSPOT, "--emit", "dot"])
        .current_dir(root())
        .run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    let dot = &run.stdout;
    assert!(dot.starts_with("digraph svc {"), "{dot}");
    assert!(
        dot.contains(r#""hubspot.refresh" -> "hubspot/refresh_access_token" [label="process"]"#),
        "{dot}"
    );
    assert!(
        dot.contains(
            r#""hubspot/refresh_access_token" -> "secret:HUBSPOT_ACCESS_TOKEN" [label="updates""#
        ),
        "{dot}"
    );
    // The client reads its credentials and stores the tokens; the action
    // authenticates as the client.
    for edge in [
        r#""secret:HUBSPOT_CLIENT_SECRET" -> "oauth_client:hubspot_app" [label="reads""#,
        r#""hubspot/refresh_access_token" -> "oauth_client:hubspot_app" [label="authenticates as", style=dotted]"#,
        r#""oauth_client:hubspot_app" -> "secret:HUBSPOT_REFRESH_TOKEN" [label="stores refresh_token""#,
    ] {
        assert!(dot.contains(edge), "{edge}\n{dot}");
    }
    assert!(
        dot.contains(r#""schedule:hubspot_nightly" -> "hubspot.refresh" [label="runs"]"#),
        "{dot}"
    );
    use std::io::Write;
    let mut graphviz = std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("graphviz is installed (Debian package `graphviz`)");
    graphviz
        .stdin
        .take()
        .unwrap()
        .write_all(dot.as_bytes())
        .unwrap();
    let output = graphviz.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let svg = String::from_utf8(output.stdout).unwrap();
    assert!(
        svg.contains("<svg")
            && svg.contains("HUBSPOT_ACCESS_TOKEN")
            && svg.contains("hubspot_nightly")
    );
}

#[test]
fn init_makes_a_project_that_checks_clean() {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    // Without consent and without a terminal, nothing is created.
    let run = svc()
        .args(["init", "project"])
        .current_dir(work.path())
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", "")
        .run();
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--yes"), "{}", run.stderr);
    assert!(!work.path().join("project").exists());

    let run = svc()
        .args(["init", "project", "--yes"])
        .current_dir(work.path())
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", "")
        .run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    let identity = home.path().join(".config/svc/identity.txt");
    assert!(identity.exists());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&identity).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        run.stdout.contains("next steps")
            && run
                .stdout
                .contains("svc --project project secret set API_CLIENT_ID")
            && !run.stdout.contains("export"),
        "{}",
        run.stdout
    );
    let project_file = std::fs::read_to_string(work.path().join("project/svc.toml")).unwrap();
    assert!(
        project_file.contains("environment = \"dev\""),
        "{project_file}"
    );
    let project = work.path().join("project");
    let gitignore = std::fs::read_to_string(project.join(".gitignore")).unwrap();
    assert!(gitignore.contains("/logs/") && gitignore.contains("identity.txt"));

    let run = svc()
        .args(["check", "--deny-warnings"])
        .current_dir(&project)
        .run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    let run = svc().args(["fmt", "--check"]).current_dir(&project).run();
    assert_eq!(run.status, 0, "{}", run.stdout);
    // The store opens with the identity, and the standard age tool agrees.
    let run = svc()
        .args(["secret", "list", "--env", "dev", "--json"])
        .current_dir(&project)
        .env("SVC_IDENTITY", &identity)
        .run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), "[]");
    let output = std::process::Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&identity)
        .arg(project.join("secrets/dev.age"))
        .output()
        .unwrap();
    assert!(output.status.success());

    // A second init reuses the identity and refuses to overwrite.
    let run = svc()
        .args(["init", "project"])
        .current_dir(work.path())
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", "")
        .run();
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("already exists"), "{}", run.stderr);
    let run = svc()
        .args(["init", "other"])
        .current_dir(work.path())
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", "")
        .run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("using the identity at"),
        "{}",
        run.stderr
    );
}

#[test]
fn init_uses_a_given_identity() {
    let work = tempfile::tempdir().unwrap();
    let key = common::age_keygen(work.path(), "mine.txt");
    let run = svc()
        .args(["init", "p", "--identity", "mine.txt"])
        .current_dir(work.path())
        .env("HOME", "/nonexistent")
        .run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    let recipients = std::fs::read_to_string(work.path().join("p/secrets/dev.recipients")).unwrap();
    assert!(recipients.contains(&key.public), "{recipients}");
}

#[test]
fn completions_and_man_page() {
    // The scripts ask svc as the user types (`COMPLETE=SHELL svc -- ...`):
    // what they complete is tests/first_hour.rs's.
    for (shell, marker) in [
        ("bash", "-F _clap_complete_svc svc"),
        ("zsh", "#compdef svc"),
        ("fish", "complete --keep-order --exclusive --command svc"),
    ] {
        let run = svc().args(["completions", shell]).run();
        assert_eq!(run.status, 0, "{shell}: {}", run.stderr);
        assert!(
            run.stdout.contains(marker)
                && (run.stdout.contains(&format!("COMPLETE=\"{shell}\""))
                    || run.stdout.contains(&format!("COMPLETE={shell} "))),
            "{shell}: {}",
            &run.stdout[..run.stdout.len().min(300)]
        );
    }
    let run = svc().arg("man").run();
    assert_eq!(run.status, 0);
    assert!(
        run.stdout.starts_with(".ie") || run.stdout.contains(".TH svc"),
        "{}",
        &run.stdout[..200]
    );
    assert!(
        run.stdout.contains("svc\\-check") || run.stdout.contains("check"),
        "the man page lists the commands"
    );
}
