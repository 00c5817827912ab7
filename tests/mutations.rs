//! `svc check` must never panic, whatever the input. The examples are
//! mutated at random (bytes changed, dropped, repeated, spliced) with a fixed
//! seed, so a failure reproduces, and every mutant is checked in-process.

#[path = "common/mutate.rs"]
mod mutate;

use mutate::mutate;
use svc::program;
use svc::source::{SourceFile, SourceMap};

fn check(text: String) {
    // The formatter too: never a panic, and what it formats stays formatted.
    if let Ok(formatted) = svc::format::format(&text) {
        let again = svc::format::format(&formatted);
        assert_eq!(
            again.as_ref(),
            Ok(&formatted),
            "formatting is not idempotent for:\n{text}"
        );
    }
    let mut sources = SourceMap::new();
    sources.add(SourceFile::new("mutant.svc", "mutant.svc", text));
    let checked = program::check_sources(sources);
    // Rendering touches every span: it must not panic either.
    svc::report::render_all(
        &checked.analysis.diagnostics,
        &checked.sources,
        svc::report::Style::PLAIN,
    );
}

#[test]
fn mutated_examples_never_panic() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut inputs = Vec::new();
    for dir in ["examples", "tests/check"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "svc") {
                inputs.push(std::fs::read(path).unwrap());
            }
        }
    }
    inputs.sort();
    let mut rng = fastrand::Rng::with_seed(0x050c_2026);
    let mut checked = 0;
    for input in &inputs {
        let rounds = if input.len() > 1500 { 400 } else { 60 };
        for _ in 0..rounds {
            let mutant = mutate(&mut rng, input);
            let text = String::from_utf8_lossy(&mutant).into_owned();
            let result = std::panic::catch_unwind(|| check(text.clone()));
            assert!(result.is_ok(), "svc check panicked on this input:\n{text}");
            checked += 1;
        }
    }
    assert!(checked > 3000, "only {checked} mutants");
}
