//! The quickstart a new user runs: it must work on this machine, end to
//! end, against the real oidc-provider.

mod common;

#[test]
fn the_quickstart_refreshes_a_token_the_provider_accepts() {
    let output = std::process::Command::new("bash")
        .arg(common::root().join("examples/quickstart/run.sh"))
        .env("SVC_BIN", env!("CARGO_BIN_EXE_svc"))
        .env_remove("SVC_IDENTITY")
        .env_remove("SVC_SECRETS_DIR")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("ok: demo.refresh succeeded"), "{stdout}");
    assert!(
        stdout.contains("updated secret DEMO_ACCESS_TOKEN to version 1"),
        "{stdout}"
    );
    assert!(stdout.contains("DEMO_ACCESS_TOKEN   1"), "{stdout}");
    assert!(stdout.contains("active: true"), "{stdout}");
    let everything = format!("{stdout}{stderr}");
    assert!(
        !everything.contains("AGE-SECRET-KEY"),
        "the identity leaked"
    );
}
