//! `svc check --format json|github|sarif`: the machine formats CI reads.

mod common;

use common::{root, svc};

const CASE: &str = "tests/check/missing_update_grant_fails.svc";

#[test]
fn json_has_the_documented_schema() {
    let run = svc()
        .args(["check", "--format", "json", CASE])
        .current_dir(root())
        .run();
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert!(
        run.stderr.is_empty(),
        "json goes to stdout only: {}",
        run.stderr
    );
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["version"], 1);
    assert_eq!(report["files"], serde_json::json!([CASE]));
    assert_eq!(report["summary"]["errors"], 2, "{report}");
    assert_eq!(report["summary"]["warnings"], 0, "{report}");
    let first = &report["diagnostics"][0];
    for key in [
        "code", "severity", "message", "file", "line", "column", "end", "help", "labels",
    ] {
        assert!(first.get(key).is_some(), "no `{key}` in {first}");
    }
    let grant = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "svc::permission::missing_update_grant")
        .unwrap();
    assert_eq!(grant["severity"], "error");
    assert_eq!(grant["file"], CASE);
    assert_eq!(grant["line"], 23);
    assert_eq!(grant["column"], 21);
    assert_eq!(grant["end"]["line"], 23);
    assert_eq!(grant["end"]["column"], 34);
    assert!(
        grant["help"]
            .as_str()
            .unwrap()
            .contains("add `grant update_secret TOKEN`")
    );
    // The fix, as data: where the grant goes, and that it needs review.
    assert_eq!(
        grant["fixes"],
        serde_json::json!([{
            "title": "Add `grant update_secret TOKEN` to role `refresher`",
            "safe": false,
            "edits": [{
                "file": CASE,
                "start": {"line": 7, "column": 1},
                "end": {"line": 7, "column": 1},
                "text": "  grant update_secret TOKEN\n",
            }],
        }]),
        "{grant}"
    );
    insta::assert_json_snapshot!("json_report", report);
}

#[test]
fn github_annotations_point_at_the_lines() {
    let run = svc()
        .args(["check", "--format", "github", CASE])
        .current_dir(root())
        .run();
    assert_eq!(run.status, 1);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    assert!(
        lines[0].starts_with(&format!(
            "::error file={CASE},line=23,col=21,endLine=23,endColumn=34,title=svc%3A%3Apermission%3A%3Amissing_update_grant::"
        )),
        "{}",
        lines[0]
    );
    assert!(
        lines.iter().all(|l| !l.contains('\r')),
        "newlines are escaped"
    );
    assert!(
        lines[0].contains("%0Ahelp: add `grant update_secret TOKEN`"),
        "{}",
        lines[0]
    );
    // Warnings are warnings.
    let run = svc()
        .args([
            "check",
            "--format",
            "github",
            "tests/check/unguarded_update_fails.svc",
        ])
        .current_dir(root())
        .run();
    assert_eq!(run.status, 0);
    assert!(
        run.stdout
            .starts_with("::warning file=tests/check/unguarded_update_fails.svc,line=22,"),
        "{}",
        run.stdout
    );
}

fn validate_sarif(text: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new("node")
        .arg(root().join("tests/servers/validate-sarif.js"))
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node is installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn sarif_validates_against_the_sarif_2_1_0_schema() {
    for case in [
        CASE,
        "tests/check/unused_fails.svc",
        "tests/check/base_passes.svc",
        "examples",
    ] {
        let run = svc()
            .args(["check", "--format", "sarif", case])
            .current_dir(root())
            .run();
        let validated = validate_sarif(&run.stdout);
        assert!(
            validated.status.success(),
            "{case}: {}{}",
            String::from_utf8_lossy(&validated.stdout),
            String::from_utf8_lossy(&validated.stderr)
        );
    }
    let run = svc()
        .args(["check", "--format", "sarif", CASE])
        .current_dir(root())
        .run();
    let log: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let run0 = &log["runs"][0];
    assert_eq!(run0["tool"]["driver"]["name"], "svc");
    let result = run0["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ruleId"] == "svc::permission::missing_update_grant")
        .unwrap();
    assert_eq!(result["level"], "error");
    let region = &result["locations"][0]["physicalLocation"]["region"];
    assert_eq!(region["startLine"], 23);
    assert_eq!(region["startColumn"], 21);
    let rule = &run0["tool"]["driver"]["rules"][result["ruleIndex"].as_u64().unwrap() as usize];
    assert_eq!(rule["id"], "svc::permission::missing_update_grant");
    // A relative path stays relative to the base the log names.
    let location = &result["locations"][0]["physicalLocation"]["artifactLocation"];
    assert_eq!(location["uri"], CASE);
    assert_eq!(location["uriBaseId"], "SRCROOT");
    let base = run0["originalUriBaseIds"]["SRCROOT"]["uri"]
        .as_str()
        .unwrap();
    assert!(
        base.starts_with("file:///") && base.ends_with('/'),
        "{base}"
    );
    // Its fix, as SARIF says one.
    let change = &result["fixes"][0]["artifactChanges"][0];
    assert_eq!(change["artifactLocation"]["uri"], CASE);
    assert_eq!(
        change["replacements"][0]["insertedContent"]["text"],
        "  grant update_secret TOKEN\n"
    );
    assert_eq!(change["replacements"][0]["deletedRegion"]["startLine"], 7);
    // An absolute path is a file URI.
    let absolute = root().join(CASE);
    let run = svc()
        .args(["check", "--format", "sarif"])
        .arg(&absolute)
        .current_dir(root())
        .run();
    let validated = validate_sarif(&run.stdout);
    assert!(
        validated.status.success(),
        "{}",
        String::from_utf8_lossy(&validated.stdout)
    );
    let log: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let uri = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
        ["uri"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(uri, format!("file://{}", absolute.display()));
    // The validator is not a rubber stamp.
    let broken = run
        .stdout
        .replace("\"version\": \"2.1.0\"", "\"version\": \"9\"");
    assert!(!validate_sarif(&broken).status.success());
}
