//! Every file under `tests/check/` is checked, its report kept as a snapshot.
//!
//! Each file starts with `// expect: CODE...` (codes that must be reported)
//! or `// expect: clean` (nothing at all may be reported). The `_fails`
//! files are one-edit mutations of `base_passes.svc` (or have a `_passes`
//! twin), so each rule has a failing input and a passing variant.

use std::collections::BTreeSet;
use std::path::Path;

use svc::diagnostic::Code;
use svc::program::{self, CheckedProgram};
use svc::report::{self, Style};
use svc::source::{SourceFile, SourceMap};

fn check_file(path: &Path) -> (CheckedProgram, String) {
    let text = std::fs::read_to_string(path).unwrap();
    let name = format!("check/{}", path.file_name().unwrap().to_string_lossy());
    let mut sources = SourceMap::new();
    sources.add(SourceFile::new(name, path, text));
    let checked = program::check_sources(sources);
    let mut out = report::render_all(
        &checked.analysis.diagnostics,
        &checked.sources,
        Style::PLAIN,
    );
    out.push_str(&report::summary(
        checked.analysis.errors(),
        checked.analysis.warnings(),
        1,
    ));
    (checked, out)
}

fn expectation(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let first = text.lines().next().unwrap_or("");
    let codes = first
        .strip_prefix("// expect: ")
        .unwrap_or_else(|| panic!("{} does not start with `// expect: `", path.display()));
    codes.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn check_cases() {
    insta::glob!("check/*.svc", |path| {
        let (checked, output) = check_file(path);
        let expected = expectation(path);
        let found: BTreeSet<&str> = checked
            .analysis
            .diagnostics
            .iter()
            .map(|d| d.code.as_str())
            .collect();
        if expected == ["clean"] {
            assert!(
                found.is_empty(),
                "{}: expected no diagnostics:\n{output}",
                path.display()
            );
        } else {
            for code in &expected {
                assert!(
                    found.contains(code.as_str()),
                    "{}: expected {code}:\n{output}",
                    path.display()
                );
            }
        }
        insta::assert_snapshot!(output);
    });
}

#[test]
fn every_rule_has_a_failing_case() {
    let mut covered = BTreeSet::new();
    for entry in
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/check")).unwrap()
    {
        covered.extend(expectation(&entry.unwrap().path()));
    }
    // Need a secret store, or a FIFO in a directory; covered by the
    // `svc check --env` tests and by tests/cli_check.rs.
    let elsewhere = [Code::SecretWithoutValue, Code::SkippedFile];
    for code in Code::ALL {
        if elsewhere.contains(code) {
            continue;
        }
        assert!(
            covered.contains(code.as_str()),
            "no test case expects {}",
            code.as_str()
        );
    }
}

#[test]
fn every_code_is_documented() {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/language.md"))
            .unwrap();
    for code in Code::ALL {
        assert!(
            docs.contains(code.as_str()),
            "docs/language.md does not mention {}",
            code.as_str()
        );
    }
}
