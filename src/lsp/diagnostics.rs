//! The checker's diagnostics as the editor shows them: the same codes,
//! severities, messages and related spans, with a link to the code's
//! section of docs/language.md.

use lsp_types::{
    CodeDescription, DiagnosticRelatedInformation, DiagnosticSeverity, DiagnosticTag, Location,
    NumberOrString, Uri,
};

use super::text::Encoding;
use super::workspace::Document;
use crate::diagnostic::{Code, Diagnostic, Severity};

/// The language reference, whose headings name every code.
const LANGUAGE_DOC: &str = include_str!("../../docs/language.md");

/// Converts a diagnostic whose primary span is in one of `files`.
pub fn to_lsp(
    found: &Diagnostic,
    files: &[Document],
    encoding: Encoding,
    docs: Option<&str>,
) -> Option<lsp_types::Diagnostic> {
    let primary = found.primary_span()?;
    let document = files.get(primary.file.0 as usize)?;
    let mut related = Vec::new();
    for label in found.labels.iter().skip(1) {
        let Some(other) = files.get(label.span.file.0 as usize) else {
            continue;
        };
        if !other.is_current() {
            continue;
        }
        related.push(DiagnosticRelatedInformation {
            location: Location::new(other.uri.clone(), other.range(label.span, encoding)),
            message: label.message.clone(),
        });
    }
    let mut message = found.message.clone();
    if let Some(label) = found.labels.first().filter(|l| !l.message.is_empty()) {
        message = format!("{message}: {}", label.message);
    }
    if let Some(help) = &found.help {
        message = format!("{message}\nhelp: {help}");
    }
    let tags = matches!(
        found.code,
        Code::UnusedVariable
            | Code::UnusedAction
            | Code::UnusedSecret
            | Code::UnusedRole
            | Code::UnreachableCode
    )
    .then(|| vec![DiagnosticTag::UNNECESSARY]);
    Some(lsp_types::Diagnostic {
        range: document.range(primary, encoding),
        severity: Some(match found.severity {
            Severity::Error => DiagnosticSeverity::ERROR,
            Severity::Warning => DiagnosticSeverity::WARNING,
        }),
        code: Some(NumberOrString::String(found.code.as_str().to_string())),
        code_description: docs.and_then(|base| {
            let href = format!("{base}#{}", anchor(found.code)?);
            Some(CodeDescription {
                href: href.parse::<Uri>().ok()?,
            })
        }),
        source: Some("svc".to_string()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        tags,
        data: None,
    })
}

/// The anchor of the heading of docs/language.md that documents a code,
/// as GitHub and most Markdown renderers make it.
pub fn anchor(code: Code) -> Option<String> {
    let full = code.as_str();
    let (namespace, last) = full.rsplit_once("::")?;
    LANGUAGE_DOC
        .lines()
        .filter(|line| line.starts_with('#'))
        .find(|heading| {
            heading.contains(&format!("`{full}`"))
                || (heading.contains(&format!("`{namespace}::"))
                    && heading.contains(&format!("`{last}`")))
        })
        .map(|heading| slug(heading.trim_start_matches('#').trim()))
}

fn slug(heading: &str) -> String {
    heading
        .chars()
        .filter_map(|c| match c {
            'A'..='Z' => Some(c.to_ascii_lowercase()),
            'a'..='z' | '0'..='9' | '_' | '-' => Some(c),
            ' ' => Some('-'),
            _ if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_documented_anchor() {
        for code in Code::ALL {
            let anchor = anchor(*code).unwrap_or_else(|| panic!("{}", code.as_str()));
            assert!(!anchor.is_empty());
        }
        assert_eq!(
            anchor(Code::MissingUpdateGrant).as_deref(),
            Some("svcpermissionmissing_update_grant")
        );
        assert!(
            anchor(Code::UnknownSecret)
                .unwrap()
                .contains("unknown_secret")
        );
    }
}
