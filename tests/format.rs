//! `svc fmt`: idempotent, meaning-preserving, comment-preserving, on every
//! program in the repository and on variants of them it has not seen
//! (indentation, spacing and blank lines changed at random), plus the
//! command's behaviour.

mod common;

use std::path::{Path, PathBuf};

use common::{root, svc};
use svc::source::FileId;

fn svc_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            svc_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "svc") {
            out.push(path);
        }
    }
}

/// The AST as JSON without positions: what a program means.
fn meaning(text: &str) -> Option<serde_json::Value> {
    let (program, diagnostics) = svc::syntax::parse_file(FileId(0), text);
    if diagnostics
        .iter()
        .any(|d| d.code == svc::diagnostic::Code::Syntax)
    {
        return None;
    }
    let mut value = serde_json::to_value(&program).unwrap();
    strip_positions(&mut value);
    Some(value)
}

fn strip_positions(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.remove("span");
            for (_, v) in map.iter_mut() {
                // A bare span (such as `locked`): where it was does not matter.
                if let serde_json::Value::Object(inner) = v
                    && inner.contains_key("start")
                    && inner.contains_key("len")
                {
                    *v = serde_json::Value::Bool(true);
                } else {
                    strip_positions(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_positions),
        _ => {}
    }
}

fn comments(text: &str) -> Vec<String> {
    let mut found: Vec<String> = svc::syntax::comments::scan(text)
        .into_iter()
        .map(|r| text[r].trim_end().to_string())
        .collect();
    found.sort();
    found
}

/// Formats and checks every property the formatter promises.
fn assert_formats_well(name: &str, text: &str) -> bool {
    let Some(before) = meaning(text) else {
        return false;
    };
    let Ok(formatted) = svc::format::format(text) else {
        return false;
    };
    assert_eq!(
        meaning(&formatted).as_ref(),
        Some(&before),
        "{name}: formatting changed the meaning:\n{formatted}"
    );
    assert_eq!(
        comments(&formatted),
        comments(text),
        "{name}: comments were lost or changed:\n{formatted}"
    );
    let again = svc::format::format(&formatted).unwrap();
    assert_eq!(
        again, formatted,
        "{name}: formatting twice changed the file"
    );
    assert!(
        formatted.ends_with('\n') && !formatted.ends_with("\n\n"),
        "{name}: ends badly"
    );
    assert!(
        !formatted.contains("\n\n\n"),
        "{name}: two blank lines in a row"
    );
    assert!(
        !formatted.lines().any(|l| l.ends_with(' ')),
        "{name}: trailing spaces"
    );
    true
}

fn corpus() -> Vec<(String, String)> {
    let mut files = Vec::new();
    svc_files(&root().join("examples"), &mut files);
    svc_files(&root().join("tests"), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn every_program_formats_idempotently_without_changing_meaning() {
    let mut formatted = 0;
    for (name, text) in corpus() {
        if assert_formats_well(&name, &text) {
            formatted += 1;
        }
    }
    assert!(formatted >= 50, "only {formatted} files formatted");
}

/// The same program, laid out badly at random: the formatter must bring it
/// back to the same canonical text.
fn perturb(text: &str, rng: &mut fastrand::Rng) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        match rng.u8(..6) {
            0 => {}
            1 => out.push_str(&" ".repeat(rng.usize(0..9))),
            2 => out.push('\t'),
            _ => out.push_str(&line[..line.len() - trimmed.len()]),
        }
        // Spacing around `=` and braces, away from strings and comments.
        if !trimmed.contains('"') && !trimmed.contains("//") && !trimmed.contains('$') && rng.bool()
        {
            let spaced = trimmed.replace(" = ", if rng.bool() { "=" } else { "   =  " });
            let spaced = spaced.replace(" {", if rng.bool() { "{" } else { "  {" });
            out.push_str(&spaced);
        } else {
            out.push_str(trimmed);
        }
        if rng.u8(..5) == 0 {
            out.push_str("   ");
        }
        out.push('\n');
        if rng.u8(..7) == 0 {
            out.push_str(&"\n".repeat(rng.usize(1..4)));
        }
    }
    out
}

#[test]
fn badly_laid_out_programs_come_back_to_the_canonical_form() {
    let mut rng = fastrand::Rng::with_seed(77);
    let mut checked = 0;
    for (name, text) in corpus() {
        let Ok(canonical) = svc::format::format(&text) else {
            continue;
        };
        for round in 0..6 {
            let messy = perturb(&text, &mut rng);
            let label = format!("{name} (variant {round})");
            assert!(
                assert_formats_well(&label, &messy),
                "{label} does not format:\n{messy}"
            );
            let formatted = svc::format::format(&messy).unwrap();
            // Blank lines the variant added may stay (one at most), and then
            // split a run of aligned lines; indentation and everything
            // else is the canonical text.
            let squeeze = |t: &str| {
                t.lines()
                    .filter(|l| !l.is_empty())
                    .map(|l| {
                        let body = l.trim_start();
                        let indent = &l[..l.len() - body.len()];
                        format!(
                            "{indent}{}",
                            body.split_whitespace().collect::<Vec<_>>().join(" ")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            assert_eq!(
                squeeze(&formatted),
                squeeze(&canonical),
                "{label}:\n{formatted}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 300, "only {checked} variants");
}

#[test]
fn fmt_check_lists_unformatted_files_and_fmt_rewrites_them() {
    let dir = tempfile::tempdir().unwrap();
    let example =
        std::fs::read_to_string(root().join("examples/graph_client_credentials.svc")).unwrap();
    std::fs::write(dir.path().join("good.svc"), &example).unwrap();
    let messy = example
        .replace("  var token: string", "var    token :string")
        .replace(" = ", "=");
    std::fs::write(dir.path().join("messy.svc"), &messy).unwrap();

    let run = svc().args(["fmt", "--check"]).current_dir(dir.path()).run();
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), "./messy.svc");
    assert!(
        run.stderr.contains("1 file not formatted"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("messy.svc")).unwrap(),
        messy,
        "--check wrote"
    );

    let run = svc().arg("fmt").current_dir(dir.path()).run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("messy.svc")).unwrap(),
        example
    );
    let run = svc()
        .args(["fmt", "--check", "."])
        .current_dir(dir.path())
        .run();
    assert_eq!(run.status, 0, "{}", run.stderr);
}

#[test]
fn fmt_reads_standard_input() {
    let run = svc().args(["fmt", "-"]).stdin("secret   A{locked}\n").run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "secret A { locked }\n");
    let run = svc()
        .args(["fmt", "--check", "-"])
        .stdin("secret   A{locked}\n")
        .run();
    assert_eq!(run.status, 1);
}

#[test]
fn fmt_refuses_what_it_cannot_format_faithfully() {
    let dir = tempfile::tempdir().unwrap();
    let broken = "service s {\n  action a { log \"unterminated }\n}\n";
    std::fs::write(dir.path().join("broken.svc"), broken).unwrap();
    let twice = "secret A {\n  locked\n  locked\n}\n";
    std::fs::write(dir.path().join("twice.svc"), twice).unwrap();
    let run = svc().arg("fmt").current_dir(dir.path()).run();
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(run.stderr.contains("unterminated string"), "{}", run.stderr);
    assert!(
        run.stderr.contains("svc::property::duplicate"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("broken.svc")).unwrap(),
        broken
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("twice.svc")).unwrap(),
        twice
    );
}

#[test]
fn every_example_is_formatted() {
    let run = svc()
        .args(["fmt", "--check", "examples"])
        .current_dir(root())
        .run();
    assert_eq!(run.status, 0, "{}{}", run.stdout, run.stderr);
}

/// `svc fmt` keeps a byte-order mark where it found one (the editor that
/// wrote it would write it again) and formats what follows it.
#[test]
fn fmt_keeps_a_byte_order_mark() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bom.svc");
    std::fs::write(&path, "\u{feff}secret   A{locked}\n").unwrap();
    let run = svc().arg("fmt").arg(&path).run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "\u{feff}secret A { locked }\n"
    );
    let run = svc().args(["fmt", "--check"]).arg(&path).run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    let run = svc()
        .args(["fmt", "-"])
        .stdin("\u{feff}secret   A{locked}\n")
        .run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "\u{feff}secret A { locked }\n");
    // Without a mark, none is added.
    let run = svc().args(["fmt", "-"]).stdin("secret   A{locked}\n").run();
    assert_eq!(run.stdout, "secret A { locked }\n");
    // An error after the mark points at the right column.
    let run = svc()
        .args(["fmt", "-"])
        .stdin("\u{feff}secret A { lockd }\n")
        .run();
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("<stdin>:1:12]"), "{}", run.stderr);
}

/// A string inside an interpolation may hold `//`: it is not a comment.
/// The formatter used to take it for one, and printed it again after the
/// line, which made the file invalid.
#[test]
fn slashes_in_a_string_inside_an_interpolation_are_not_a_comment() {
    let text = "service s {\n  action a {\n    log \"${\"//x\"}\" // a comment\n  }\n}\n";
    assert!(assert_formats_well("nested string", text));
    assert_eq!(svc::format::format(text).unwrap(), text);
}

#[test]
fn per_account_forms_come_back_as_written() {
    let text = "\
secret A { per_account }

secret B {
  environment_specific
  per_account
  description \"both\"
}

role r {
  grant connect app
}

oauth_client app {
  token_url \"https://x.example.com/t\"
  per_account
  return_to \"https://a.example.com/x\" \"http://127.0.0.1:8080/\"
}

service s {
  var out: json
  action a {
    run_service s.e(n = 1) for_connection connection.tags.team + \"-x\" as bot into out
    log \"${connection.id}\"
  }
}

schedule t {
  endpoint s.e
  for_each_connection app
  concurrency 4
}
";
    assert!(assert_formats_well("per-account forms", text));
    assert_eq!(svc::format::format(text).unwrap(), text);
    // Laid out badly, it comes back the same.
    let squeezed = text
        .replace("  ", "      ")
        .replace(" for_connection", "   for_connection");
    assert_eq!(svc::format::format(&squeezed).unwrap(), text);
}
