//! `deploy/svc.service`, the systemd unit of docs/deploy.md: a unit systemd
//! accepts, with the settings the page promises, and the page shows it as
//! it is.

use std::path::Path;
use std::process::Command;

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// The unit's settings as `(section, key, value)`, in order, a repeated key
/// as often as it is given. Comments (`#`, `;`) and blank lines are skipped;
/// any other line that is neither `[Section]` nor `Key=Value` fails the test.
fn settings(unit: &str) -> Vec<(String, String, String)> {
    let mut section = None::<String>;
    let mut settings = Vec::new();
    for (number, line) in unit.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        assert!(
            !line.ends_with('\\'),
            "line {}: no continuations",
            number + 1
        );
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(name.to_string());
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("line {}: not Key=Value: {line}", number + 1));
        let section = section
            .clone()
            .unwrap_or_else(|| panic!("line {}: a setting before any section", number + 1));
        settings.push((section, key.trim().to_string(), value.trim().to_string()));
    }
    settings
}

fn values<'a>(settings: &'a [(String, String, String)], section: &str, key: &str) -> Vec<&'a str> {
    settings
        .iter()
        .filter(|(s, k, _)| s == section && k == key)
        .map(|(_, _, v)| v.as_str())
        .collect()
}

#[test]
fn the_systemd_unit_is_valid_and_hardened() {
    let unit = read("deploy/svc.service");
    let settings = settings(&unit);
    let one = |section: &str, key: &str| -> String {
        match values(&settings, section, key).as_slice() {
            [value] => value.to_string(),
            other => panic!("[{section}] {key}: {other:?}, one value expected"),
        }
    };
    let sections: Vec<&str> = settings.iter().map(|(s, _, _)| s.as_str()).collect();
    for section in ["Unit", "Service", "Install"] {
        assert!(sections.contains(&section), "no [{section}]");
    }

    let exec = one("Service", "ExecStart");
    assert!(
        exec.starts_with("/usr/local/bin/svc serve --project /etc/svc"),
        "{exec}"
    );
    assert!(
        !exec.contains("postgres://"),
        "no password on the command line: {exec}"
    );
    assert!(
        one("Service", "DynamicUser") == "yes" || !values(&settings, "Service", "User").is_empty(),
        "a user of its own"
    );
    for (key, value) in [
        ("ProtectSystem", "strict"),
        ("StateDirectory", "svc"),
        ("Restart", "on-failure"),
        ("NoNewPrivileges", "yes"),
        ("LoadCredential", "identity:/etc/svc/identity.txt"),
        ("EnvironmentFile", "/etc/svc/backend.env"),
    ] {
        assert_eq!(one("Service", key), value, "[Service] {key}");
    }
    let environment = values(&settings, "Service", "Environment");
    assert!(
        environment.contains(&"SVC_IDENTITY=%d/identity"),
        "{environment:?}"
    );
    assert_eq!(one("Install", "WantedBy"), "multi-user.target");

    // docs/deploy.md shows the unit as it is.
    let page = read("docs/deploy.md");
    assert!(
        page.contains(&format!("```ini\n{unit}```")),
        "docs/deploy.md shows another unit than deploy/svc.service"
    );

    // systemd's own check, where systemd is installed. It wants ExecStart's
    // program to exist: the svc just built stands in for the installed one.
    match Command::new("systemd-analyze").arg("--version").output() {
        Err(_) => {
            eprintln!("checked the unit's keys; systemd-analyze is not installed, not run");
        }
        Ok(_) => {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("svc.service");
            std::fs::write(
                &path,
                unit.replace("/usr/local/bin/svc", env!("CARGO_BIN_EXE_svc")),
            )
            .unwrap();
            let verify = Command::new("systemd-analyze")
                .args(["verify", "--man=no"])
                .arg(&path)
                .output()
                .unwrap();
            let said = String::from_utf8_lossy(&verify.stderr);
            assert!(
                verify.status.success() && !said.contains("svc.service"),
                "systemd-analyze verify refused the unit:\n{said}"
            );
            eprintln!("checked the unit's keys; systemd-analyze verify accepted it");
        }
    }
}
