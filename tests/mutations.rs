//! `svc check` must never panic, whatever the input. The examples are
//! mutated at random (bytes changed, dropped, repeated, spliced) with a fixed
//! seed, so a failure reproduces, and every mutant is checked in-process.

use svc::program;
use svc::source::{SourceFile, SourceMap};

/// Characters that matter to the grammar, so mutants reach deep rules.
const INTERESTING: &[u8] = b"{}()[]\"$.=!<>&|,:*@?'\\/\n\t 0123456789abcdefghijklmnopqrstuvwxyz_ABCDEFGHIJKLMNOPQRSTUVWXYZ";

fn mutate(rng: &mut fastrand::Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.usize(1..=4) {
        if out.is_empty() {
            out.push(b'{');
        }
        let at = rng.usize(..out.len());
        match rng.u8(..6) {
            0 => out[at] = INTERESTING[rng.usize(..INTERESTING.len())],
            1 => {
                let end = (at + rng.usize(1..=16)).min(out.len());
                out.drain(at..end);
            }
            2 => {
                let end = (at + rng.usize(1..=32)).min(out.len());
                let piece = out[at..end].to_vec();
                let times = rng.usize(1..=3);
                for _ in 0..times {
                    out.splice(at..at, piece.iter().copied());
                }
            }
            3 => out.insert(at, INTERESTING[rng.usize(..INTERESTING.len())]),
            4 => {
                // Splice a piece of the input somewhere else.
                let from = rng.usize(..input.len());
                let end = (from + rng.usize(1..=40)).min(input.len());
                out.splice(at..at, input[from..end].iter().copied());
            }
            _ => out[at] = rng.u8(..),
        }
    }
    out
}

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
