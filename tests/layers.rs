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
            // A raw string, r"..." or r#"..."#: skip to its closing quote
            // and as many hashes.
            'r' if !code.ends_with(|p: char| p.is_ascii_alphanumeric() || p == '_')
                && matches!(chars.peek(), Some('"') | Some('#')) =>
            {
                let mut hashes = 0;
                while chars.peek() == Some(&'#') {
                    chars.next();
                    hashes += 1;
                }
                if chars.peek() != Some(&'"') {
                    code.push('r');
                    continue;
                }
                chars.next();
                let mut closing = 0;
                let mut inside = true;
                while inside {
                    match chars.next() {
                        None => inside = false,
                        Some('"') if hashes == 0 => inside = false,
                        Some('"') => closing = 1,
                        Some('#') if closing > 0 => {
                            closing += 1;
                            if closing > hashes {
                                inside = false;
                            }
                        }
                        Some(_) => closing = 0,
                    }
                }
            }
            // A character literal ('"', '\'', '\\'), not a lifetime.
            '\'' => {
                let mut ahead = chars.clone();
                match (ahead.next(), ahead.next()) {
                    (Some('\\'), Some(_)) => {
                        chars.next();
                        chars.next();
                        for c in chars.by_ref() {
                            if c == '\'' {
                                break;
                            }
                        }
                    }
                    (Some(_), Some('\'')) => {
                        chars.next();
                        chars.next();
                    }
                    _ => code.push(c),
                }
            }
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

/// The `crate::NAME` uses between the top-level modules of `src/`: for
/// each module, the modules it uses and the files that do.
type Edges = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn edges(root: &Path) -> (Edges, Vec<String>) {
    let src = root.join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut edges = Edges::new();
    let mut modules = BTreeSet::new();
    for file in &files {
        let from = module_of(&src, file);
        if from == "lib" || from == "main" {
            continue;
        }
        modules.insert(from.clone());
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
    (edges, modules.into_iter().collect())
}

/// Every circle among the modules, each as the modules around it: the
/// strongly connected components of more than one module (Tarjan).
fn circles(edges: &Edges) -> Vec<Vec<String>> {
    struct Walk<'e> {
        edges: &'e Edges,
        index: BTreeMap<&'e str, usize>,
        low: BTreeMap<&'e str, usize>,
        stack: Vec<&'e str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'e>(w: &mut Walk<'e>, at: &'e str) {
        let n = w.index.len();
        w.index.insert(at, n);
        w.low.insert(at, n);
        w.stack.push(at);
        let edges = w.edges;
        for to in edges.get(at).into_iter().flat_map(|t| t.keys()) {
            let to = to.as_str();
            if !w.index.contains_key(to) {
                visit(w, to);
                let low = w.low[at].min(w.low[to]);
                w.low.insert(at, low);
            } else if w.stack.contains(&to) {
                let low = w.low[at].min(w.index[to]);
                w.low.insert(at, low);
            }
        }
        if w.low[at] == w.index[at] {
            let mut component = Vec::new();
            while let Some(top) = w.stack.pop() {
                component.push(top.to_string());
                if top == at {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                w.found.push(component);
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for from in edges.keys() {
        if !walk.index.contains_key(from.as_str()) {
            visit(&mut walk, from);
        }
    }
    walk.found.sort();
    walk.found
}

/// The uses that do not point to a lower layer.
fn upward(edges: &Edges, layers: &[Vec<String>]) -> Vec<String> {
    let level = |module: &str| {
        layers
            .iter()
            .position(|layer| layer.iter().any(|m| m == module))
    };
    let mut wrong = Vec::new();
    for (from, targets) in edges {
        for (to, files) in targets {
            // Lower layers come later in the list.
            let (Some(from_level), Some(to_level)) = (level(from), level(to)) else {
                continue;
            };
            if to_level <= from_level {
                wrong.push(format!(
                    "`{from}` uses `{to}` (in {}), which is not below it",
                    files.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    wrong
}

#[test]
fn the_modules_of_src_form_no_circle() {
    let (edges, _) = edges(Path::new(env!("CARGO_MANIFEST_DIR")));
    let circles = circles(&edges);
    assert!(
        circles.is_empty(),
        "modules that use each other, around a circle: {}",
        circles
            .iter()
            .map(|c| c.join(" <-> "))
            .collect::<Vec<_>>()
            .join("; ")
    );
}

#[test]
fn each_layer_uses_only_the_layers_below_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (edges, modules) = edges(root);
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
    let layers = layers(&lib);
    let placed: BTreeSet<&String> = layers.iter().flatten().collect();
    let unplaced: Vec<&String> = modules.iter().filter(|m| !placed.contains(m)).collect();
    assert!(
        unplaced.is_empty(),
        "in no layer of src/lib.rs: {unplaced:?}"
    );
    let stale: Vec<&&String> = placed.iter().filter(|m| !modules.contains(m)).collect();
    assert!(
        stale.is_empty(),
        "src/lib.rs names layers that are not modules: {stale:?}"
    );
    let wrong = upward(&edges, &layers);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn graph(pairs: &[(&str, &str)]) -> Edges {
    let mut edges = Edges::new();
    for (from, to) in pairs {
        edges
            .entry(from.to_string())
            .or_default()
            .entry(to.to_string())
            .or_default()
            .insert(format!("src/{from}.rs"));
    }
    edges
}

#[test]
fn a_circle_is_found_whatever_its_length() {
    // Three modules around a circle, with no pair using each other, and a
    // module outside it.
    let around = graph(&[
        ("run", "backend"),
        ("backend", "schedule"),
        ("schedule", "run"),
        ("serve", "run"),
    ]);
    assert_eq!(circles(&around), [["backend", "run", "schedule"]]);
    let layers: Vec<Vec<String>> = [["serve"], ["run"], ["backend"], ["schedule"]]
        .iter()
        .map(|l| l.iter().map(|m| m.to_string()).collect())
        .collect();
    let wrong = upward(&around, &layers);
    assert_eq!(
        wrong,
        ["`schedule` uses `run` (in src/schedule.rs), which is not below it"]
    );
    // Two modules of one layer may not use each other either.
    let sideways = graph(&[("serve", "lsp")]);
    let one_layer = vec![vec!["serve".to_string(), "lsp".to_string()]];
    assert_eq!(upward(&sideways, &one_layer).len(), 1);
    // A chain is no circle.
    assert!(circles(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])).is_empty());
}

#[test]
fn uses_are_read_from_code_only() {
    // Comments, strings, raw strings and character literals do not count;
    // a lifetime is not a character literal.
    let text = "use crate::run::X; // crate::serve\n\
                let s = \"crate::lsp \\\" crate::cli\"; /* crate::cli /* crate::net */ */\n\
                let r = r#\"crate::oauth \" crate::oauth\"#; let q = '\"'; let e = '\\'';\n\
                fn f<'a>(x: &'a str) { crate::check::f(); }";
    let found: Vec<String> = uses(text).into_iter().collect();
    assert_eq!(found, ["check", "run"]);
}
