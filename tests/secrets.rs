//! The secret store through `svc secret` and `svc exec`, with the real
//! `age` tools on the other side.

mod common;

use std::process::{Command, Stdio};

use common::{Project, age_keygen, svc};

const VALUE: &str = "tok-8c1e2f0a-very-secret";
const OTHER: &str = "tok-other-5b77d1";

#[test]
fn set_get_list_history_rollback_rm() {
    let p = Project::new();
    p.set("TOKEN", "first-value-1a2b");
    p.set("TOKEN", VALUE);
    assert_eq!(p.get("TOKEN"), VALUE);

    let list = p
        .svc()
        .args(["secret", "list", "--env", "dev", "--json"])
        .run();
    assert_eq!(list.status, 0, "{}", list.stderr);
    let rows: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(rows[0]["name"], "TOKEN");
    assert_eq!(rows[0]["version"], 2);
    assert!(rows[0]["updated_by"].as_str().unwrap().contains("age1"));

    let history = p
        .svc()
        .args(["secret", "history", "TOKEN", "--env", "dev"])
        .run();
    assert!(history.stdout.contains("2 (current)"), "{}", history.stdout);
    assert!(
        history.stdout.lines().any(|l| l.starts_with("1 ")),
        "{}",
        history.stdout
    );

    let rollback = p
        .svc()
        .args(["secret", "rollback", "TOKEN", "--env", "dev"])
        .run();
    assert_eq!(rollback.status, 0, "{}", rollback.stderr);
    assert!(
        rollback.stderr.contains("restored version 1"),
        "{}",
        rollback.stderr
    );
    assert_eq!(p.get("TOKEN"), "first-value-1a2b");

    let rollback = p
        .svc()
        .args(["secret", "rollback", "TOKEN", "--env", "dev", "--to", "2"])
        .run();
    assert_eq!(rollback.status, 0, "{}", rollback.stderr);
    assert_eq!(p.get("TOKEN"), VALUE);

    let rm = p
        .svc()
        .args(["secret", "rm", "TOKEN", "--env", "dev"])
        .run();
    assert_eq!(rm.status, 0, "{}", rm.stderr);
    let get = p
        .svc()
        .args(["secret", "get", "TOKEN", "--env", "dev"])
        .run();
    assert_eq!(get.status, 2);
    assert!(
        get.stderr
            .contains("no secret `TOKEN` in environment `dev`"),
        "{}",
        get.stderr
    );
}

#[test]
fn only_get_reveals_a_value() {
    let p = Project::new();
    let calls: [(&[&str], Option<&str>); 9] = [
        (
            &[
                "secret",
                "set",
                "TOKEN",
                "--env",
                "dev",
                "--expires-in",
                "1h",
            ],
            Some(VALUE),
        ),
        (&["secret", "set", "TOKEN", "--env", "dev"], Some(OTHER)),
        (&["secret", "list", "--env", "dev"], None),
        (&["secret", "list", "--env", "dev", "--json"], None),
        (&["secret", "history", "TOKEN", "--env", "dev"], None),
        (
            &["secret", "history", "TOKEN", "--env", "dev", "--json"],
            None,
        ),
        (&["secret", "rollback", "TOKEN", "--env", "dev"], None),
        (&["secret", "get", "MISSING", "--env", "dev"], None),
        (&["secret", "rm", "TOKEN", "--env", "dev"], None),
    ];
    let outputs: Vec<_> = calls
        .iter()
        .map(|(args, stdin)| {
            let call = p.svc().args(*args);
            match stdin {
                Some(input) => call.stdin(*input).run(),
                None => call.run(),
            }
        })
        .collect();
    for run in &outputs {
        let all = run.all_output();
        assert!(
            !all.contains(VALUE) && !all.contains(OTHER),
            "a value leaked:\n{all}"
        );
    }
    // The store file itself holds no plaintext either.
    let bytes = std::fs::read(p.store()).unwrap();
    assert!(!bytes.windows(VALUE.len()).any(|w| w == VALUE.as_bytes()));
}

#[test]
fn files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let p = Project::new();
    p.set("TOKEN", VALUE);
    for name in ["secrets", "secrets/dev.age", "secrets/dev.recipients"] {
        let mode = std::fs::metadata(p.path().join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        let expected = if name == "secrets" { 0o700 } else { 0o600 };
        assert_eq!(mode, expected, "{name} has mode {mode:o}");
    }
}

#[test]
fn the_age_tool_decrypts_the_store_to_json() {
    let p = Project::new();
    p.set("TOKEN", VALUE);
    let output = p.age_decrypt(&p.key.path);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(document["format"], 1);
    assert_eq!(document["environment"], "dev");
    assert_eq!(document["secrets"]["TOKEN"]["value"], VALUE);
    assert_eq!(document["secrets"]["TOKEN"]["version"], 1);
}

#[test]
fn a_store_written_by_the_age_tool_loads() {
    for armor in [false, true] {
        let p = Project::new();
        let json = format!(
            r#"{{"secrets": {{"TOKEN": {{"value": "{VALUE}"}}, "OTHER": {{"value": "{OTHER}", "version": 7}}}}}}"#
        );
        let mut age = Command::new("age");
        age.arg("-r").arg(&p.key.public).arg("-o").arg(p.store());
        if armor {
            age.arg("-a");
        }
        let mut child = age.stdin(Stdio::piped()).spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(json.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());

        assert_eq!(p.get("TOKEN"), VALUE);
        // And svc can write it back, keeping what was there.
        p.set("NEW", "n");
        assert_eq!(p.get("OTHER"), OTHER);
        let list = p
            .svc()
            .args(["secret", "list", "--env", "dev", "--json"])
            .run();
        let rows: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
        assert_eq!(rows[1]["name"], "OTHER");
        assert_eq!(rows[1]["version"], 7);
    }
}

#[test]
fn a_document_with_a_wrong_shape_is_explained_without_its_values() {
    let p = Project::new();
    let json = format!(
        r#"{{"secrets": {{"TOKEN": {{"value": 12345}}, "B": {{"value": "x", "version": "{VALUE}"}}}}}}"#
    );
    let mut child = Command::new("age")
        .arg("-r")
        .arg(&p.key.public)
        .arg("-o")
        .arg(p.store())
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    let run = p.svc().args(["secret", "list", "--env", "dev"]).run();
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("svc::store::invalid_document"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("not a number"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("12345") && !run.stderr.contains(VALUE),
        "{}",
        run.stderr
    );
}

#[test]
fn thirty_two_concurrent_writers_lose_nothing() {
    let p = Project::new();
    let children: Vec<_> = (0..32)
        .map(|i| {
            let mut child = Command::new(env!("CARGO_BIN_EXE_svc"))
                .args(["secret", "set", &format!("S{i}"), "--env", "dev"])
                .current_dir(p.path())
                .env("SVC_IDENTITY", &p.key.path)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(format!("value-{i}").as_bytes())
                .unwrap();
            child
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let output = p.age_decrypt(&p.key.path);
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    for i in 0..32 {
        assert_eq!(
            document["secrets"][format!("S{i}")]["value"],
            format!("value-{i}"),
            "S{i} was lost"
        );
    }
}

#[test]
fn a_writer_killed_at_any_moment_leaves_a_readable_store() {
    let p = Project::new();
    // A large store makes each write take long enough to be interrupted.
    let mut json = String::from(r#"{"format": 1, "environment": "dev", "secrets": {"#);
    for i in 0..5000 {
        json.push_str(&format!(
            r#""FILLER_{i}": {{"value": "{}"}},"#,
            "x".repeat(64)
        ));
    }
    json.push_str(r#""TOKEN": {"value": "v0"}}}"#);
    let mut child = Command::new("age")
        .arg("-r")
        .arg(&p.key.public)
        .arg("-o")
        .arg(p.store())
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());

    let mut rng = fastrand::Rng::with_seed(7);
    let mut last_written = 0;
    for round in 1..=40 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_svc"))
            .args(["secret", "set", "TOKEN", "--env", "dev"])
            .current_dir(p.path())
            .env("SVC_IDENTITY", &p.key.path)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("v{round}").as_bytes())
            .unwrap();
        std::thread::sleep(std::time::Duration::from_micros(rng.u64(0..60_000)));
        let _ = child.kill();
        let finished = child.wait().unwrap().success();
        let output = p.age_decrypt(&p.key.path);
        assert!(
            output.status.success(),
            "round {round}: the store does not decrypt"
        );
        let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let value = document["secrets"]["TOKEN"]["value"]
            .as_str()
            .unwrap()
            .to_string();
        let old = format!("v{last_written}");
        let new = format!("v{round}");
        assert!(value == old || value == new, "round {round}: found {value}");
        if finished {
            assert_eq!(value, new);
        }
        if value == new {
            last_written = round;
        }
        assert_eq!(document["secrets"].as_object().unwrap().len(), 5001);
    }
    // The next complete write cleans up what killed writers left behind.
    p.set("TOKEN", "final");
    let leftovers: Vec<_> = std::fs::read_dir(p.path().join("secrets"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_damaged_store_is_reported_and_never_overwritten() {
    let p = Project::new();
    p.set("TOKEN", VALUE);
    let good = std::fs::read(p.store()).unwrap();
    let flipped = {
        let mut bytes = good.clone();
        let at = bytes.len() - 20;
        bytes[at] ^= 0x01;
        bytes
    };
    let truncated = good[..good.len() - 10].to_vec();
    let header = {
        // A bit of the header's MAC.
        let mut bytes = good.clone();
        let mac = bytes.windows(5).position(|w| w == b"\n--- ").unwrap() + 8;
        bytes[mac] ^= 0x01;
        bytes
    };
    for (what, bytes) in [
        ("bit flip", flipped),
        ("truncated", truncated),
        ("header", header),
        ("garbage", b"hello".to_vec()),
    ] {
        std::fs::write(p.store(), &bytes).unwrap();
        let get = p
            .svc()
            .args(["secret", "get", "TOKEN", "--env", "dev"])
            .run();
        assert_eq!(get.status, 1, "{what}: {}", get.stderr);
        assert!(
            get.stderr.contains("svc::store::corrupted"),
            "{what}: {}",
            get.stderr
        );
        assert!(
            get.stderr.contains("secrets/dev.age"),
            "{what}: {}",
            get.stderr
        );
        let set = p
            .svc()
            .args(["secret", "set", "OTHER", "--env", "dev"])
            .stdin("x")
            .run();
        assert_eq!(set.status, 1, "{what}");
        assert_eq!(
            std::fs::read(p.store()).unwrap(),
            bytes,
            "{what}: the damaged store was overwritten"
        );
    }
}

#[test]
fn a_wrong_or_missing_identity_says_what_to_pass() {
    let p = Project::new();
    p.set("TOKEN", VALUE);
    let stranger = age_keygen(p.path(), "stranger.txt");
    let run = p
        .svc()
        .args(["secret", "get", "TOKEN", "--env", "dev"])
        .env("SVC_IDENTITY", &stranger.path)
        .run();
    assert_eq!(run.status, 2);
    assert!(
        run.stderr.contains("svc::store::wrong_identity"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("stranger.txt") && run.stderr.contains("secrets/dev.age"),
        "{}",
        run.stderr
    );
    // The help names the key the store is encrypted to, so the user can
    // find its identity.
    assert!(run.stderr.contains(&p.key.public), "{}", run.stderr);
    assert!(!run.all_output().contains(VALUE));

    let run = svc()
        .current_dir(p.path())
        .args(["secret", "get", "TOKEN", "--env", "dev"])
        .run();
    assert_eq!(run.status, 2);
    assert!(
        run.stderr.contains("--identity FILE") && run.stderr.contains("SVC_IDENTITY"),
        "{}",
        run.stderr
    );

    let run = p
        .svc()
        .args([
            "secret",
            "get",
            "TOKEN",
            "--env",
            "dev",
            "--identity",
            "nope.txt",
        ])
        .run();
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("nope.txt"), "{}", run.stderr);

    std::fs::write(
        p.path().join("bad.txt"),
        format!("AGE-SECRET-KEY-1{VALUE}\n"),
    )
    .unwrap();
    let run = p
        .svc()
        .args([
            "secret",
            "get",
            "TOKEN",
            "--env",
            "dev",
            "--identity",
            "bad.txt",
        ])
        .run();
    assert_eq!(run.status, 2);
    assert!(
        run.stderr.contains("line 1 is not an age identity"),
        "{}",
        run.stderr
    );
    assert!(
        !run.all_output().contains(VALUE),
        "the damaged key was printed"
    );
}

#[test]
fn recipients_can_be_added_and_removed() {
    let p = Project::new();
    p.set("TOKEN", VALUE);
    let friend = age_keygen(p.path(), "friend.txt");
    assert!(!p.age_decrypt(&friend.path).status.success());

    let run = p
        .svc()
        .args([
            "secret",
            "recipients",
            "add",
            &friend.public,
            "--env",
            "dev",
        ])
        .run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(p.age_decrypt(&friend.path).status.success());
    let run = p
        .svc()
        .args(["secret", "get", "TOKEN", "--env", "dev"])
        .env("SVC_IDENTITY", &friend.path)
        .run();
    assert_eq!(run.stdout.trim(), VALUE);

    let run = p
        .svc()
        .args([
            "secret",
            "recipients",
            "remove",
            &friend.public,
            "--env",
            "dev",
        ])
        .run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        !p.age_decrypt(&friend.path).status.success(),
        "a removed key still decrypts"
    );
    assert!(p.age_decrypt(&p.key.path).status.success());
    let list = p
        .svc()
        .args(["secret", "recipients", "list", "--env", "dev"])
        .run();
    assert_eq!(list.stdout.trim(), p.key.public);

    let run = p
        .svc()
        .args([
            "secret",
            "recipients",
            "remove",
            &p.key.public,
            "--env",
            "dev",
        ])
        .run();
    assert_ne!(run.status, 0);
    assert!(run.stderr.contains("last recipient"), "{}", run.stderr);
}

#[test]
fn ssh_keys_work_as_identity_and_recipient() {
    let p = Project::new();
    let key = p.path().join("id_ed25519");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test@svc", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen is installed (Debian package `openssh-client`)");
    assert!(status.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    p.set("TOKEN", VALUE);
    let run = p
        .svc()
        .args(["secret", "recipients", "add", public.trim(), "--env", "dev"])
        .run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    let run = p
        .svc()
        .args(["secret", "get", "TOKEN", "--env", "dev"])
        .env("SVC_IDENTITY", &key)
        .run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), VALUE);
    // And the standard tool agrees.
    let output = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&key)
        .arg(p.store())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn values_come_from_stdin_or_a_file_never_an_argument() {
    let p = Project::new();
    std::fs::write(p.path().join("value.txt"), format!("{VALUE}\n")).unwrap();
    let run = p
        .svc()
        .args([
            "secret",
            "set",
            "A",
            "--env",
            "dev",
            "--from-file",
            "value.txt",
        ])
        .run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(p.get("A"), VALUE);
    let run = p
        .svc()
        .args(["secret", "set", "A", VALUE, "--env", "dev"])
        .run();
    assert_eq!(run.status, 2, "a value was accepted as an argument");
    let run = p
        .svc()
        .args(["secret", "set", "A", "--env", "dev"])
        .stdin("")
        .run();
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("empty"), "{}", run.stderr);
    let run = p
        .svc()
        .args(["secret", "set", "not-valid", "--env", "dev"])
        .stdin("x")
        .run();
    assert_eq!(run.status, 2);
}

#[test]
fn init_refuses_to_replace_a_store_and_checks_keys() {
    let p = Project::new();
    let run = p
        .svc()
        .args([
            "secret",
            "init",
            "--env",
            "dev",
            "--recipient",
            &p.key.public,
        ])
        .run();
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("already exists"), "{}", run.stderr);
    let run = p
        .svc()
        .args([
            "secret",
            "init",
            "--env",
            "prod",
            "--recipient",
            "age1notakey",
        ])
        .run();
    assert_eq!(run.status, 2);
    assert!(!p.path().join("secrets/prod.age").exists());
    let run = p
        .svc()
        .args([
            "secret",
            "init",
            "--env",
            "../etc",
            "--recipient",
            &p.key.public,
        ])
        .run();
    assert_eq!(run.status, 2);
    assert!(
        run.stderr.contains("not a valid environment name"),
        "{}",
        run.stderr
    );
    // A recipients file works as well.
    std::fs::write(
        p.path().join("team.keys"),
        format!("# the team\n{}\n", p.key.public),
    )
    .unwrap();
    let run = p
        .svc()
        .args(["secret", "init", "--env", "prod", "-R", "team.keys"])
        .run();
    assert_eq!(run.status, 0, "{}", run.stderr);
}

#[test]
fn exec_passes_secrets_as_environment_variables() {
    let p = Project::new();
    p.set("TOKEN", VALUE);
    p.set("OTHER", OTHER);
    let run = p
        .svc()
        .args([
            "exec",
            "--env",
            "dev",
            "--",
            "sh",
            "-c",
            "printf '%s|%s' \"$TOKEN\" \"$OTHER\"",
        ])
        .run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.stdout, format!("{VALUE}|{OTHER}"));

    let run = p
        .svc()
        .args([
            "exec",
            "--env",
            "dev",
            "--only",
            "TOKEN",
            "--",
            "sh",
            "-c",
            "printf '%s|%s' \"$TOKEN\" \"${OTHER:-unset}\"",
        ])
        .run();
    assert_eq!(run.stdout, format!("{VALUE}|unset"));

    let run = p
        .svc()
        .args(["exec", "--env", "dev", "--", "sh", "-c", "exit 7"])
        .run();
    assert_eq!(run.status, 7, "the command's exit code is svc's");

    let run = p
        .svc()
        .args(["exec", "--env", "dev", "--only", "NOPE", "--", "true"])
        .run();
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("no secret `NOPE`"), "{}", run.stderr);
}

#[test]
fn check_with_env_reports_secrets_without_a_value() {
    let p = Project::new();
    // A copy: the repository's own svc.toml would make its directory the
    // project, and its store the one checked.
    let example = p.path().join("hubspot_refresh.svc");
    std::fs::copy(
        common::root().join("examples/hubspot_refresh.svc"),
        &example,
    )
    .unwrap();
    p.set("HUBSPOT_CLIENT_ID", "id");
    let run = p.svc().args(["check", "--env", "dev"]).arg(&example).run();
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("svc::store::missing_value"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("secret `HUBSPOT_CLIENT_SECRET` has no value in environment `dev`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("secret `HUBSPOT_REFRESH_TOKEN` has no value"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("`HUBSPOT_CLIENT_ID` has no value"),
        "{}",
        run.stderr
    );
    // Only written, never read: may be empty until the first run.
    assert!(
        !run.stderr.contains("`HUBSPOT_ACCESS_TOKEN` has no value"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("hubspot_refresh.svc:18:34"),
        "{}",
        run.stderr
    );

    p.set("HUBSPOT_CLIENT_SECRET", "s");
    p.set("HUBSPOT_REFRESH_TOKEN", "r");
    let run = p.svc().args(["check", "--env", "dev"]).arg(&example).run();
    assert_eq!(run.status, 0, "{}", run.stderr);

    let run = svc()
        .current_dir(p.path())
        .args(["check", "--env", "dev"])
        .arg(&example)
        .run();
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("svc::store::no_identity"),
        "{}",
        run.stderr
    );
}

/// Duration flags have the bound of durations in `.svc` files: ten years.
/// `--expires-in 99999999d` used to panic adding it to the date.
#[test]
fn duration_flags_are_ten_years_at_most() {
    let project = Project::new();
    for flag in ["99999999d", "3651d"] {
        let run = project
            .svc()
            .args([
                "secret",
                "set",
                "TOKEN",
                "--env",
                "dev",
                "--expires-in",
                flag,
            ])
            .stdin("value")
            .run();
        assert_eq!(run.status, 2, "{flag}: {}", run.stderr);
        assert!(run.stderr.contains("`3650d`"), "{flag}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        let run = project
            .svc()
            .args([
                "key",
                "create",
                "--as",
                "bot",
                "--env",
                "dev",
                "--expires",
                flag,
            ])
            .run();
        assert_eq!(run.status, 2, "{flag}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
    let run = project
        .svc()
        .args([
            "secret",
            "set",
            "TOKEN",
            "--env",
            "dev",
            "--expires-in",
            "3650d",
        ])
        .stdin("value")
        .run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    // `every 99999999d` passed the check, then `schedule list` panicked.
    project.write(
        "far.svc",
        "role r { grant run s.e }\nservice_account bot { roles r }\n\
         service s { action a { log \"x\" } endpoint e { methods GET process a } }\n\
         schedule far { endpoint s.e service_account bot every 99999999d }\n",
    );
    let run = project
        .svc()
        .args(["schedule", "list", "far.svc", "--env", "dev"])
        .run();
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("svc::value::invalid_duration"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}
