//! The folders (and top-level files) of `src/` form layers: each uses
//! only the layers below it, so no two of them import each other, directly
//! or around a circle. The layers are the list in `src/lib.rs`'s module
//! documentation; this test reads every `crate::NAME` path used in code
//! (comments aside) and holds the code to that list.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// `crate::NAME` paths in a source file, comments and strings aside.
fn uses(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut code = String::new();
    let mut chars = text.chars().peekable();
    let (mut in_string, mut in_line_comment, mut block_depth) = (false, false, 0usize);
    while let Some(c) = chars.next() {
        if in_line_comment {
            if c == '\n' {
                in_line_comment = false;
                code.push('\n');
            }
            continue;
        }
        if block_depth > 0 {
            if c == '*' && chars.peek() == Some(&'/') {
                chars.next();
                block_depth -= 1;
            } else if c == '/' && chars.peek() == Some(&'*') {
                chars.next();
                block_depth += 1;
            }
            continue;
        }
        if in_string {
            if c == '\\' {
                chars.next();
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '/' if chars.peek() == Some(&'/') => in_line_comment = true,
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                block_depth = 1;
            }
            '"' => in_string = true,
            _ => code.push(c),
        }
    }
    let bytes = code.as_bytes();
    let mut at = 0;
    while let Some(found) = code[at..].find("crate::") {
        let start = at + found + "crate::".len();
        let end = start
            + code[start..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(code.len() - start);
        if end > start && (at + found == 0 || !bytes[at + found - 1].is_ascii_alphanumeric()) {
            out.insert(code[start..end].to_string());
        }
        at = end;
    }
    out
}

/// The top-level module a file of `src/` belongs to.
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// The layers as src/lib.rs states them, top first: the lines of its
/// `layers` block, each `name name ...   what it is`.
fn layers(lib: &str) -> Vec<Vec<String>> {
    let block = lib
        .split("//! ```text layers\n")
        .nth(1)
        .expect("src/lib.rs has a ```text layers block")
        .split("//! ```\n")
        .next()
        .unwrap();
    block
        .lines()
        .map(|l| l.trim_start_matches("//!").trim())
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.split("  ")
                .next()
                .unwrap()
                .split_whitespace()
                .map(|w| w.trim_end_matches('/').trim_end_matches(".rs").to_string())
                .collect()
        })
        .collect()
}

#[test]
fn each_layer_uses_only_the_layers_below_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut edges: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for file in &files {
        let from = module_of(&src, file);
        if from == "lib" || from == "main" {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        for to in uses(&text) {
            if to != from {
                edges
                    .entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_default()
                    .insert(file.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let layers = layers(&lib);
    let level = |module: &str| -> usize {
        layers
            .iter()
            .position(|layer| layer.iter().any(|m| m == module))
            .unwrap_or_else(|| panic!("`{module}` is in no layer of src/lib.rs"))
    };
    let mut wrong = Vec::new();
    for (from, targets) in &edges {
        for (to, files) in targets {
            // Lower layers come later in the list.
            if level(to) <= level(from) {
                wrong.push(format!(
                    "`{from}` uses `{to}` (in {}), which is not below it",
                    files.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Every module of src/ has its place.
    for file in &files {
        let module = module_of(&src, file);
        if module != "lib" && module != "main" {
            level(&module);
        }
    }
}

#[test]
fn a_circle_is_found_whatever_its_length() {
    // The reader of uses: comments and strings do not count.
    let text = "use crate::run::X; // crate::serve\nlet s = \"crate::lsp\"; /* crate::cli */ crate::check::f();";
    let found: Vec<String> = uses(text).into_iter().collect();
    assert_eq!(found, ["check", "run"]);
}
