//! Rendering diagnostics for people: miette reports with the source line,
//! carets and labels, graphical on a terminal and plain ASCII otherwise.

use std::fmt;
use std::io::IsTerminal;

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents,
    SourceSpan, SpanContents,
};

use crate::diagnostic::{Diagnostic, Severity};
use crate::source::{SourceFile, SourceMap};

/// How to draw reports.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    pub color: bool,
    pub unicode: bool,
    pub width: usize,
}

impl Style {
    /// Plain ASCII without color: for files, pipes and tests.
    pub const PLAIN: Style = Style {
        color: false,
        unicode: false,
        width: 100,
    };

    /// Graphical with color on a terminal (unless `NO_COLOR` is set), plain otherwise.
    pub fn for_stderr() -> Style {
        let stderr = std::io::stderr();
        if !stderr.is_terminal() {
            return Style::PLAIN;
        }
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(100);
        Style {
            color: !no_color,
            unicode: true,
            width,
        }
    }

    fn handler(self) -> GraphicalReportHandler {
        let theme = match (self.unicode, self.color) {
            (true, true) => GraphicalTheme::unicode(),
            (true, false) => GraphicalTheme::unicode_nocolor(),
            (false, true) => GraphicalTheme::ascii(),
            (false, false) => GraphicalTheme::none(),
        };
        GraphicalReportHandler::new_themed(theme)
            .with_width(self.width)
            .with_links(false)
    }
}

/// Lines longer than this are not drawn with carets: the graphical
/// renderer cannot lay out labels that far to the right.
const MAX_DRAWN_LINE: usize = 2_000;

/// Renders one diagnostic as text.
pub fn render(diagnostic: &Diagnostic, sources: &SourceMap, style: Style) -> String {
    if touches_long_line(diagnostic, sources) {
        return render_without_source(diagnostic, sources);
    }
    let report = Report::new(diagnostic, sources);
    let mut out = String::new();
    if style.handler().render_report(&mut out, &report).is_err() {
        // Rendering into a String cannot fail; keep the message regardless.
        out = format!("{}: {}\n", diagnostic.code.as_str(), diagnostic.message);
    }
    out
}

fn touches_long_line(diagnostic: &Diagnostic, sources: &SourceMap) -> bool {
    diagnostic.labels.iter().any(|label| {
        let file = sources.get(label.span.file);
        let first = file.line_range(label.span.start as usize);
        let last = file.line_range(label.span.end());
        last.end - first.start > MAX_DRAWN_LINE
    })
}

/// The same information as a graphical report, as plain lines.
fn render_without_source(diagnostic: &Diagnostic, sources: &SourceMap) -> String {
    let severity = match diagnostic.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let mut out = format!(
        "{}\n\n  {severity}: {}\n",
        diagnostic.code.as_str(),
        diagnostic.message
    );
    for label in &diagnostic.labels {
        out.push_str(&format!(
            "  --> {}: {}\n",
            sources.location(label.span),
            label.message
        ));
    }
    if let Some(help) = &diagnostic.help {
        out.push_str(&format!("  help: {help}\n"));
    }
    out
}

/// Renders several diagnostics, one after the other.
pub fn render_all(diagnostics: &[Diagnostic], sources: &SourceMap, style: Style) -> String {
    diagnostics
        .iter()
        .map(|d| render(d, sources, style))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Renders an error that has no source location (a store that cannot be
/// decrypted, a file that cannot be read) in the same shape as diagnostics.
pub fn render_error(code: &'static str, message: &str, help: Option<&str>, style: Style) -> String {
    let report = Report {
        message: message.to_string(),
        code,
        severity: Severity::Error,
        help: help.map(str::to_owned),
        labels: Vec::new(),
        source: None,
    };
    let mut out = String::new();
    if style.handler().render_report(&mut out, &report).is_err() {
        out = format!("{code}: {message}\n");
    }
    out
}

/// Renders a run-time error pointing at the node that failed.
pub fn render_at(
    code: &'static str,
    message: &str,
    help: Option<&str>,
    span: Option<crate::source::Span>,
    label: &str,
    sources: &SourceMap,
    style: Style,
) -> String {
    let Some(span) = span else {
        return render_error(code, message, help, style);
    };
    let file = sources.get(span.file);
    let report = Report {
        message: message.to_string(),
        code,
        severity: Severity::Error,
        help: help.map(str::to_owned),
        labels: vec![LabeledSpan::new_primary_with_span(
            Some(label.to_string()),
            span,
        )],
        source: Some(Window { file }),
    };
    let mut out = String::new();
    if style.handler().render_report(&mut out, &report).is_err() {
        out = format!("{code}: {message}\n");
    }
    out
}

/// A one-line summary: "2 errors and 1 warning in 3 files".
pub fn summary(errors: usize, warnings: usize, files: usize) -> String {
    let files = plural(files, "file");
    match (errors, warnings) {
        (0, 0) => format!("no problems in {files}"),
        (0, w) => format!("{} in {files}", plural(w, "warning")),
        (e, 0) => format!("{} in {files}", plural(e, "error")),
        (e, w) => format!(
            "{} and {} in {files}",
            plural(e, "error"),
            plural(w, "warning")
        ),
    }
}

pub fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// A diagnostic paired with its source, in the shape miette wants.
struct Report<'s> {
    message: String,
    code: &'static str,
    severity: Severity,
    help: Option<String>,
    labels: Vec<LabeledSpan>,
    source: Option<Window<'s>>,
}

/// A source file as miette reads it, found by line index. miette's own
/// reader for a string scans it from its first byte up to the label on
/// every report, which made rendering N diagnostics of one file cost N
/// times the file (20,000 warnings: 88 s). This one hands miette only the
/// lines around the label, found with the file's line table.
struct Window<'s> {
    file: &'s SourceFile,
}

impl miette::SourceCode for Window<'_> {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let text: &str = &self.file.text;
        let start = span.offset();
        let end = start.saturating_add(span.len());
        if end > text.len() {
            return Err(MietteError::OutOfBounds);
        }
        let first_line = self
            .file
            .line_index(start)
            .saturating_sub(context_lines_before);
        let last_line = self.file.line_index(end) + context_lines_after;
        let window_start = self.file.line_start(first_line);
        let window_end = self.file.line_start(last_line + 1);
        let window = &text.as_bytes()[window_start..window_end];
        let relative = SourceSpan::new((start - window_start).into(), span.len());
        let contents = <[u8] as miette::SourceCode>::read_span(
            window,
            &relative,
            context_lines_before,
            context_lines_after,
        )?;
        Ok(Box::new(MietteSpanContents::new_named(
            self.file.name.clone(),
            contents.data(),
            SourceSpan::new(
                (contents.span().offset() + window_start).into(),
                contents.span().len(),
            ),
            contents.line() + first_line,
            contents.column(),
            // miette counts the lines from the start of what it reads, and
            // joins the snippets of two labels by that count: count from
            // the start of the file, as its own reader does.
            contents.line_count() + first_line,
        )))
    }
}

impl<'s> Report<'s> {
    fn new(diagnostic: &Diagnostic, sources: &'s SourceMap) -> Report<'s> {
        let primary_file = diagnostic.primary_span().map(|s| s.file);
        let mut labels = Vec::new();
        let mut elsewhere = Vec::new();
        for (i, label) in diagnostic.labels.iter().enumerate() {
            if Some(label.span.file) == primary_file {
                let text = Some(label.message.clone());
                labels.push(if i == 0 {
                    LabeledSpan::new_primary_with_span(text, label.span)
                } else {
                    LabeledSpan::new_with_span(text, label.span)
                });
            } else {
                elsewhere.push(format!(
                    "{} ({})",
                    label.message,
                    sources.location(label.span)
                ));
            }
        }
        let mut help = diagnostic.help.clone();
        if !elsewhere.is_empty() {
            let notes = elsewhere.join("; ");
            help = Some(match help {
                Some(h) => format!("{h}\nnote: {notes}"),
                None => format!("note: {notes}"),
            });
        }
        let source = primary_file.map(|id| Window {
            file: sources.get(id),
        });
        Report {
            message: diagnostic.message.clone(),
            code: diagnostic.code.as_str(),
            severity: diagnostic.severity,
            help,
            labels,
            source,
        }
    }
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            return None;
        }
        Some(Box::new(self.labels.iter().cloned()))
    }
}

pub mod formats;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Code;
    use crate::source::{FileId, Span};

    /// The report as miette draws it when it reads the whole text itself.
    fn render_reading_everything(diagnostic: &Diagnostic, sources: &SourceMap) -> String {
        struct Whole<'s>(Report<'s>, miette::NamedSource<String>);
        impl fmt::Debug for Whole<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }
        impl fmt::Display for Whole<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
        impl std::error::Error for Whole<'_> {}
        impl miette::Diagnostic for Whole<'_> {
            fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
                self.0.code()
            }
            fn severity(&self) -> Option<miette::Severity> {
                self.0.severity()
            }
            fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
                self.0.help()
            }
            fn source_code(&self) -> Option<&dyn miette::SourceCode> {
                Some(&self.1)
            }
            fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
                self.0.labels()
            }
        }
        let file = sources.get(FileId(0));
        let whole = Whole(
            Report::new(diagnostic, sources),
            miette::NamedSource::new(file.name.clone(), file.text.to_string()),
        );
        let mut out = String::new();
        Style::PLAIN
            .handler()
            .render_report(&mut out, &whole)
            .unwrap();
        out
    }

    #[test]
    fn reading_only_the_lines_around_a_label_draws_the_same_report() {
        let filler = "// a comment\n".repeat(12);
        let text = &format!(
            "secret A {{ locked }}\n{filler}service s {{\n  var t: string\n\n  action a {{\n    log t\n  }}\n}}\n{filler}last line, no newline"
        );
        let mut sources = SourceMap::new();
        sources.add(SourceFile::new("a.svc", "a.svc", text.as_str()));
        let at = |needle: &str| text.find(needle).unwrap();
        let span = |start: usize, end: usize| Span::new(FileId(0), start, end);
        let cases = [
            span(0, 6),
            span(at("var"), at("var") + 3),
            span(at("action"), at("log")),
            span(at("service"), text.len()),
            span(at("last"), text.len()),
            span(text.len(), text.len()),
            span(at("\n\n") + 1, at("\n\n") + 1),
        ];
        for (i, primary) in cases.iter().enumerate() {
            let diagnostic = Diagnostic::new(Code::UnusedVariable, "message")
                .label(*primary, "here")
                .label(span(at("t: "), at("t: ") + 1), "and here")
                .label(span(at("last"), at("last") + 4), "and far away")
                .help("help");
            assert_eq!(
                render(&diagnostic, &sources, Style::PLAIN),
                render_reading_everything(&diagnostic, &sources),
                "case {i}"
            );
        }
    }
}
