//! Re-parsing a file after an edit: only the declarations the edit touches.
//!
//! An [`Outline`] remembers the text a file last parsed from and the
//! stretch of it each declaration was read from. After an edit, the text
//! before the first changed byte and after the last is the same as before;
//! parsing starts at the declaration the change begins in and stops at the
//! first declaration boundary after the change that was a boundary before:
//! from there on the parser would read the same text from the same kind of
//! place, so the declarations it gave before are kept, their spans moved by
//! the change in length ([`super::spans`]). The result is the one a parse
//! of the whole text gives, syntax errors included (`tests` and
//! `tests/properties.rs` compare them over random edits).

use super::ast::{ITEM_KINDS, Item, Program};
use super::spans::{Spans, shift};
use super::{each_declaration, parser};
use crate::diagnostic::Diagnostic;
use crate::source::{BOM, FileId};

/// Where one declaration was read from: its leading blanks and comments,
/// then the declaration itself; and what building it reported.
#[derive(Debug, Clone, PartialEq)]
pub struct Extent {
    /// Which vector of a [`Program`] holds it ([`Item::kind`]).
    pub kind: usize,
    pub start: usize,
    pub end: usize,
    pub diagnostics: Vec<Diagnostic>,
}

/// A file's text that parsed, and where each of its declarations lies.
#[derive(Debug, Clone, Default)]
pub struct Outline {
    text: String,
    extents: Vec<Extent>,
}

/// A whole file parsed: its declarations, what parsing reported, and its
/// outline when it parsed.
pub struct Parsed {
    pub program: Program,
    pub diagnostics: Vec<Diagnostic>,
    pub outline: Option<Outline>,
}

/// What re-parsing an edited text found.
pub enum Reparsed {
    /// It parses: apply the change with [`Outline::apply`].
    Parsed(Change),
    /// It does not: what a parse of the whole text reports.
    Failed(Vec<Diagnostic>),
}

/// Declarations `first..first + removed` of an outline give way to
/// `items`; those after them move by `delta` bytes.
pub struct Change {
    first: usize,
    removed: usize,
    items: Vec<Item>,
    extents: Vec<Extent>,
    delta: isize,
    text: String,
}

/// Where a file's declarations start: after a byte-order mark.
fn text_start(text: &str) -> usize {
    if text.starts_with(BOM) {
        BOM.len_utf8()
    } else {
        0
    }
}

/// Parses a whole file, one declaration at a time, on this thread: an
/// edit of the empty text.
pub fn parse(file: FileId, text: &str) -> Parsed {
    let mut outline = Outline::default();
    match outline.reparse(file, text) {
        Reparsed::Parsed(change) => {
            let mut program = Program::default();
            let (_, diagnostics) = outline.apply(change, &mut program, [0; ITEM_KINDS]);
            Parsed {
                program,
                diagnostics,
                outline: Some(outline),
            }
        }
        Reparsed::Failed(diagnostics) => Parsed {
            program: Program::default(),
            diagnostics,
            outline: None,
        },
    }
}

/// How many leading bytes `a` and `b` share.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    common_run(a.len().min(b.len()), |from, to| a[from..to] == b[from..to])
}

/// How many trailing bytes `a` and `b` share, at most `limit`.
fn common_suffix(a: &[u8], b: &[u8], limit: usize) -> usize {
    let tail = |s: &[u8], n: usize| s.len() - n;
    common_run(limit.min(a.len()).min(b.len()), |from, to| {
        a[tail(a, to)..tail(a, from)] == b[tail(b, to)..tail(b, from)]
    })
}

/// The length of a common run of at most `limit` bytes, where
/// `same(from, to)` says whether bytes `from..to` of the run agree: halves
/// compared whole, so a 2 MB text costs a few long comparisons, not one per
/// byte or chunk.
fn common_run(limit: usize, same: impl Fn(usize, usize) -> bool) -> usize {
    let (mut agreed, mut end) = (0, limit);
    // Bytes `..agreed` agree, and the first difference is before `end` (or
    // there is none).
    while agreed < end {
        let mid = agreed + (end - agreed).div_ceil(2);
        if same(agreed, mid) {
            agreed = mid;
        } else if mid - agreed == 1 {
            break;
        } else {
            end = mid;
        }
    }
    agreed
}

impl Outline {
    /// The text it is the outline of.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Parses `text`, an edit of the outline's text, reading again only the
    /// declarations the edit touches.
    pub fn reparse(&self, file: FileId, text: &str) -> Reparsed {
        let (old, new) = (self.text.as_bytes(), text.as_bytes());
        let prefix = common_prefix(old, new);
        let suffix = common_suffix(old, new, old.len().min(new.len()) - prefix);
        let delta = new.len() as isize - old.len() as isize;
        let start = text_start(&self.text);
        if prefix < start || text_start(text) != start {
            // The byte-order mark changed: nothing can be kept.
            return self.parse_from(file, text, 0, text_start(text), None);
        }
        // The first declaration whose stretch reaches the change; one that
        // ends right where it starts is read again too.
        let first = self.extents.partition_point(|e| e.end < prefix);
        let from = self
            .extents
            .get(first)
            .map_or_else(|| self.extents.last().map_or(start, |e| e.end), |e| e.start);
        self.parse_from(file, text, first, from, Some((new.len() - suffix, delta)))
    }

    /// Parses `text` from offset `from`, in place of the outline's
    /// declarations from `first` on. With `kept`, where the unchanged end
    /// of the text starts and how far it moved: parsing stops at the first
    /// old declaration boundary there, and the declarations after it stay.
    fn parse_from(
        &self,
        file: FileId,
        text: &str,
        first: usize,
        from: usize,
        kept: Option<(usize, isize)>,
    ) -> Reparsed {
        let mut items = Vec::new();
        let mut extents = Vec::new();
        let mut resumed = None;
        let (_, end) = each_declaration(
            file,
            from,
            |offset| {
                if let Some((unchanged_from, delta)) = kept
                    && offset >= unchanged_from
                {
                    let old_offset = (offset as isize - delta) as usize;
                    if let Ok(j) = self.extents.binary_search_by(|e| e.end.cmp(&old_offset)) {
                        resumed = Some(j + 1);
                        return Err(None);
                    }
                }
                parser::parse_next_item(file, text, offset).map_err(Some)
            },
            |item, extent| {
                items.push(item);
                extents.push(extent);
            },
        );
        let mut diagnostics: Vec<Diagnostic> = self.extents[..first]
            .iter()
            .flat_map(|e| e.diagnostics.iter().cloned())
            .collect();
        diagnostics.extend(extents.iter().flat_map(|e| e.diagnostics.iter().cloned()));
        match end {
            Err(Some(error)) => {
                diagnostics.push(*error);
                Reparsed::Failed(diagnostics)
            }
            Ok(()) | Err(None) => {
                let resumed = resumed.unwrap_or(self.extents.len());
                Reparsed::Parsed(Change {
                    first,
                    removed: resumed - first,
                    items,
                    extents,
                    delta: kept.map_or(0, |(_, delta)| delta),
                    text: text.to_string(),
                })
            }
        }
    }

    /// Applies a change to the outline and to `program`, which holds this
    /// file's declarations from index `at` of each of its vectors, in the
    /// file's order. Returns how many declarations of each kind the file
    /// now has there, and what parsing the new text reports.
    pub fn apply(
        &mut self,
        change: Change,
        program: &mut Program,
        at: [usize; ITEM_KINDS],
    ) -> ([usize; ITEM_KINDS], Vec<Diagnostic>) {
        let Change {
            first,
            removed,
            items,
            extents,
            delta,
            text,
        } = change;
        let count = |extents: &[Extent]| {
            let mut counts = [0; ITEM_KINDS];
            for extent in extents {
                counts[extent.kind] += 1;
            }
            counts
        };
        let before = count(&self.extents[..first]);
        let gone = count(&self.extents[first..first + removed]);
        let after = count(&self.extents[first + removed..]);
        let mut fresh = Program::default();
        for item in items {
            fresh.push(item);
        }
        let mut counts = [0; ITEM_KINDS];
        macro_rules! splice {
            ($kind:expr, $field:ident) => {{
                let from = at[$kind] + before[$kind];
                let added = fresh.$field.len();
                program
                    .$field
                    .splice(from..from + gone[$kind], fresh.$field);
                for moved in &mut program.$field[from + added..from + added + after[$kind]] {
                    shift(moved, delta);
                }
                counts[$kind] = before[$kind] + added + after[$kind];
            }};
        }
        splice!(0, secrets);
        splice!(1, roles);
        splice!(2, identities);
        splice!(3, services);
        splice!(4, schedules);
        splice!(5, oauth_clients);
        splice!(6, notifies);
        let mut kept = self.extents.split_off(first + removed);
        self.extents.truncate(first);
        for extent in &mut kept {
            extent.start = (extent.start as isize + delta) as usize;
            extent.end = (extent.end as isize + delta) as usize;
            extent.diagnostics.spans_mut(&mut |span| {
                span.start = (span.start as isize + delta) as u32;
            });
        }
        self.extents.extend(extents);
        self.extents.extend(kept);
        self.text = text;
        let diagnostics = self
            .extents
            .iter()
            .flat_map(|e| e.diagnostics.iter().cloned())
            .collect();
        (counts, diagnostics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: FileId = FileId(0);

    /// The file as the outline and program hold it after `edits`, each
    /// applied in turn, against a parse of the last text.
    fn check_edits(start: &str, edits: &[(usize, usize, &str)]) {
        let parsed = parse(FILE, start);
        let mut program = parsed.program;
        let mut outline = parsed.outline.expect("the start parses");
        let mut text = start.to_string();
        for &(from, to, insert) in edits {
            text.replace_range(from..to, insert);
            let whole = parse(FILE, &text);
            match outline.reparse(FILE, &text) {
                Reparsed::Failed(diagnostics) => {
                    assert!(whole.outline.is_none(), "{text}");
                    assert_eq!(diagnostics, whole.diagnostics, "{text}");
                }
                Reparsed::Parsed(change) => {
                    let (_, diagnostics) = outline.apply(change, &mut program, [0; ITEM_KINDS]);
                    assert_eq!(program, whole.program, "{text}");
                    assert_eq!(diagnostics, whole.diagnostics, "{text}");
                    assert_eq!(outline.extents, whole.outline.unwrap().extents, "{text}");
                }
            }
        }
    }

    const PROGRAM: &str = "secret A { environment_specific }\n\n\
        role r { grant read_secret A }\n\
        // a comment\n\
        service s {\n  action a { log \"x\" }\n  endpoint e { methods GET process a }\n}\n\
        service_account bot { roles r }\n";

    #[test]
    fn common_ends_are_found_whatever_their_length() {
        let text: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        for at in [0, 1, 63, 64, 65, 2500, 4999] {
            let mut other = text.clone();
            other[at] ^= 0xff;
            assert_eq!(common_prefix(&text, &other), at);
            assert_eq!(
                common_suffix(&text, &other, text.len()),
                text.len() - at - 1
            );
        }
        assert_eq!(common_prefix(&text, &text[..10]), 10);
        assert_eq!(common_suffix(&text, &text, 7), 7);
        assert_eq!(common_prefix(b"", b"x"), 0);
    }

    #[test]
    fn an_edit_inside_one_declaration_equals_a_whole_parse() {
        let at = PROGRAM.find("\"x\"").unwrap();
        check_edits(
            PROGRAM,
            &[
                (at + 1, at + 1, "yy"),
                (at + 1, at + 3, ""),
                (0, 0, "  "),
                (0, 2, ""),
            ],
        );
    }

    #[test]
    fn declarations_added_removed_and_broken_equal_a_whole_parse() {
        let end = PROGRAM.len();
        let role = PROGRAM.find("role").unwrap();
        check_edits(
            PROGRAM,
            &[
                (end, end, "secret B { environment_specific }\n"),
                (role, role, "secret C { }\n"),
                (role, role, "secret D {"),
                (role, role + 10, ""),
                (
                    0,
                    0,
                    "notify n {\n  url \"https://example.com\"\n  events connection.recovered\n}\n",
                ),
                (0, 3, ""),
                (0, 0, "\u{feff}"),
                (3, 3, " "),
                (0, 3, ""),
            ],
        );
    }
}
