//! `svc check --format json|github|sarif`: diagnostics for machines.
//!
//! Lines and columns count from 1; columns count characters. An `end` is
//! where the span stops (exclusive).

use serde_json::{Value, json};

use crate::diagnostic::{Code, Diagnostic, Fix, Severity};
use crate::source::{SourceMap, Span};

/// The version of the `--format json` document; bumped on any change that
/// is not an addition.
pub const JSON_VERSION: u32 = 1;

fn position(sources: &SourceMap, span: Span) -> (String, usize, usize, usize, usize) {
    let file = sources.get(span.file);
    let (line, column) = file.line_col(span.start as usize);
    let (end_line, end_column) = file.line_col(span.end());
    (file.name.clone(), line, column, end_line, end_column)
}

fn severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// The documented JSON report.
pub fn json(diagnostics: &[Diagnostic], sources: &SourceMap) -> Value {
    let items: Vec<Value> = diagnostics
        .iter()
        .map(|d| {
            let mut item = json!({
                "code": d.code.as_str(),
                "severity": severity(d.severity),
                "message": d.message,
                "help": d.help,
            });
            if let Some(span) = d.primary_span() {
                let (file, line, column, end_line, end_column) = position(sources, span);
                item["file"] = json!(file);
                item["line"] = json!(line);
                item["column"] = json!(column);
                item["end"] = json!({"line": end_line, "column": end_column});
            }
            item["fixes"] = Value::Array(d.fixes.iter().map(|fix| json_fix(sources, fix)).collect());
            item["labels"] = Value::Array(
                d.labels
                    .iter()
                    .map(|label| {
                        let (file, line, column, end_line, end_column) = position(sources, label.span);
                        json!({"file": file, "line": line, "column": column,
                               "end": {"line": end_line, "column": end_column}, "message": label.message})
                    })
                    .collect(),
            );
            item
        })
        .collect();
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    json!({
        "version": JSON_VERSION,
        "files": sources.files().map(|(_, f)| f.name.clone()).collect::<Vec<_>>(),
        "summary": {"errors": errors, "warnings": diagnostics.len() - errors},
        "diagnostics": items,
    })
}

/// A fix as `--format json` carries it: 1-based lines and columns, as the
/// rest of the report; `end` is exclusive.
fn json_fix(sources: &SourceMap, fix: &Fix) -> Value {
    let edits: Vec<Value> = fix
        .edits
        .iter()
        .map(|edit| {
            let (file, line, column, end_line, end_column) = position(sources, edit.span);
            json!({
                "file": file,
                "start": {"line": line, "column": column},
                "end": {"line": end_line, "column": end_column},
                "text": edit.text,
            })
        })
        .collect();
    json!({"title": fix.title, "safe": fix.safe, "edits": edits})
}

/// GitHub Actions workflow commands: one annotation a diagnostic.
pub fn github(diagnostics: &[Diagnostic], sources: &SourceMap) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let kind = severity(d.severity);
        let mut properties = Vec::new();
        if let Some(span) = d.primary_span() {
            let (file, line, column, end_line, end_column) = position(sources, span);
            properties.push(format!("file={}", escape_property(&file)));
            properties.push(format!("line={line}"));
            properties.push(format!("col={column}"));
            properties.push(format!("endLine={end_line}"));
            properties.push(format!("endColumn={end_column}"));
        }
        properties.push(format!("title={}", escape_property(d.code.as_str())));
        let mut message = d.message.clone();
        if let Some(label) = d.labels.first() {
            message.push_str(&format!(": {}", label.message));
        }
        if let Some(help) = &d.help {
            message.push_str(&format!("\nhelp: {help}"));
        }
        out.push_str(&format!(
            "::{kind} {}::{}\n",
            properties.join(","),
            escape_data(&message)
        ));
    }
    out
}

fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// SARIF 2.1.0, with one rule per code svc knows.
pub fn sarif(diagnostics: &[Diagnostic], sources: &SourceMap) -> Value {
    let rules: Vec<Value> = Code::ALL
        .iter()
        .map(|code| {
            json!({
                "id": code.as_str(),
                "shortDescription": {"text": code.summary()},
                "defaultConfiguration": {"level": sarif_level(code.severity())},
            })
        })
        .collect();
    let results: Vec<Value> = diagnostics
        .iter()
        .map(|d| {
            let index = Code::ALL.iter().position(|c| *c == d.code).unwrap_or(0);
            let mut text = d.message.clone();
            if let Some(help) = &d.help {
                text.push_str(&format!("\nhelp: {help}"));
            }
            let mut result = json!({
                "ruleId": d.code.as_str(),
                "ruleIndex": index,
                "level": sarif_level(d.severity),
                "message": {"text": text},
            });
            if !d.fixes.is_empty() {
                result["fixes"] =
                    Value::Array(d.fixes.iter().map(|fix| sarif_fix(sources, fix)).collect());
            }
            let mut labels = d.labels.iter();
            if let Some(primary) = labels.next() {
                result["locations"] = json!([location(sources, primary.span, &primary.message)]);
                let related: Vec<Value> = labels
                    .enumerate()
                    .map(|(i, label)| {
                        let mut related = location(sources, label.span, &label.message);
                        related["id"] = json!(i + 1);
                        related
                    })
                    .collect();
                if !related.is_empty() {
                    result["relatedLocations"] = Value::Array(related);
                }
            }
            result
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "svc",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "columnKind": "unicodeCodePoints",
            "originalUriBaseIds": {SRCROOT: {"uri": working_directory_uri()}},
            "artifacts": sources.files().map(|(_, f)| json!({"location": artifact(&f.name)})).collect::<Vec<_>>(),
            "results": results,
        }]
    })
}

/// A fix as SARIF has it: the changes to each artifact, each a region
/// deleted and the text put in its place.
fn sarif_fix(sources: &SourceMap, fix: &Fix) -> Value {
    let mut by_file: Vec<(crate::source::FileId, Vec<Value>)> = Vec::new();
    for edit in &fix.edits {
        let (_, line, column, end_line, end_column) = position(sources, edit.span);
        let replacement = json!({
            "deletedRegion": {"startLine": line, "startColumn": column, "endLine": end_line, "endColumn": end_column},
            "insertedContent": {"text": edit.text},
        });
        match by_file.iter_mut().find(|(f, _)| *f == edit.span.file) {
            Some((_, list)) => list.push(replacement),
            None => by_file.push((edit.span.file, vec![replacement])),
        }
    }
    json!({
        "description": {"text": fix.title},
        "artifactChanges": by_file
            .into_iter()
            .map(|(file, replacements)| json!({
                "artifactLocation": artifact(&sources.get(file).name),
                "replacements": replacements,
            }))
            .collect::<Vec<_>>(),
    })
}

fn sarif_level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn location(sources: &SourceMap, span: Span, message: &str) -> Value {
    let (file, line, column, end_line, end_column) = position(sources, span);
    json!({
        "physicalLocation": {
            "artifactLocation": artifact(&file),
            "region": {"startLine": line, "startColumn": column, "endLine": end_line, "endColumn": end_column},
        },
        "message": {"text": message},
    })
}

/// The base of relative artifact locations: the directory svc ran in, as
/// `originalUriBaseIds` names it (SARIF 2.1.0 §3.14.14).
const SRCROOT: &str = "SRCROOT";

fn working_directory_uri() -> String {
    let dir = std::env::current_dir().unwrap_or_default();
    let mut uri = format!("file://{}", uri(&dir.to_string_lossy()));
    if !uri.ends_with('/') {
        uri.push('/');
    }
    uri
}

/// Where a file is, for SARIF: a relative path stays relative to
/// `SRCROOT` (what code-scanning services want), an absolute one is a
/// `file://` URI.
fn artifact(path: &str) -> Value {
    let is_absolute = std::path::Path::new(path).is_absolute();
    if is_absolute {
        json!({"uri": format!("file://{}", uri(path))})
    } else {
        json!({"uri": uri(path), "uriBaseId": SRCROOT})
    }
}

/// A path as a URI reference: `/` separators, other characters that URIs
/// reserve escaped.
fn uri(path: &str) -> String {
    let mut out = String::new();
    for byte in path.replace('\\', "/").bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
