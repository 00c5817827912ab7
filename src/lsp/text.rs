//! Positions as the editor counts them, and edits to a document's text.
//!
//! svc's spans are byte offsets; the Language Server Protocol counts a
//! line's characters in UTF-16 code units unless the client and server
//! agree on UTF-8 (3.17's `positionEncoding`). Every conversion goes
//! through [`LineIndex`], and clamps: an editor may send a position past the
//! end of a line or of the file, and that is never a panic.

use lsp_types::{Position, Range, TextDocumentContentChangeEvent};

/// How the client counts characters within a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16,
}

/// The start of every line of one text.
#[derive(Clone, Debug)]
pub struct LineIndex {
    starts: Vec<usize>,
    len: usize,
}

impl LineIndex {
    /// Lines end at `\n`, `\r\n` or a lone `\r`, as the protocol counts them.
    pub fn new(text: &str) -> LineIndex {
        let bytes = text.as_bytes();
        let mut starts = vec![0];
        for i in memchr::memchr2_iter(b'\n', b'\r', bytes) {
            if bytes[i] == b'\n' || bytes.get(i + 1) != Some(&b'\n') {
                starts.push(i + 1);
            }
        }
        LineIndex {
            starts,
            len: text.len(),
        }
    }

    /// The editor's position of a byte offset.
    pub fn position(&self, text: &str, offset: usize, encoding: Encoding) -> Position {
        let offset = floor_char_boundary(text, offset.min(self.len));
        let line = match self.starts.binary_search(&offset) {
            Ok(line) => line,
            Err(next) => next - 1,
        };
        let before = &text[self.starts[line]..offset];
        let character = match encoding {
            Encoding::Utf8 => before.len(),
            Encoding::Utf16 => before.encode_utf16().count(),
        };
        Position::new(line as u32, character as u32)
    }

    /// The byte offset of an editor's position, clamped to the text.
    pub fn offset(&self, text: &str, position: Position, encoding: Encoding) -> usize {
        let Some(&start) = self.starts.get(position.line as usize) else {
            return self.len;
        };
        let next = self
            .starts
            .get(position.line as usize + 1)
            .copied()
            .unwrap_or(self.len);
        let line = text[start..next].trim_end_matches(['\n', '\r']);
        let end = start + line.len();
        let wanted = position.character as usize;
        let mut counted = 0;
        for (i, c) in line.char_indices() {
            if counted >= wanted {
                return start + i;
            }
            counted += match encoding {
                Encoding::Utf8 => c.len_utf8(),
                Encoding::Utf16 => c.len_utf16(),
            };
        }
        end
    }

    pub fn range(&self, text: &str, bytes: std::ops::Range<usize>, encoding: Encoding) -> Range {
        Range::new(
            self.position(text, bytes.start, encoding),
            self.position(text, bytes.end, encoding),
        )
    }

    pub fn bytes(&self, text: &str, range: Range, encoding: Encoding) -> std::ops::Range<usize> {
        let start = self.offset(text, range.start, encoding);
        let end = self.offset(text, range.end, encoding);
        start.min(end)..end.max(start)
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// Applies the changes of one `didChange`, in order, as the protocol
/// says: each range is in the text as the previous change left it.
/// `lines` is the index of `text` as it is before the changes.
pub fn apply_changes(
    text: &mut String,
    lines: &LineIndex,
    changes: Vec<TextDocumentContentChangeEvent>,
    encoding: Encoding,
) {
    let mut index = std::borrow::Cow::Borrowed(lines);
    let mut stale = false;
    for change in changes {
        match change.range {
            None => *text = change.text,
            Some(range) => {
                if stale {
                    index = std::borrow::Cow::Owned(LineIndex::new(text));
                }
                let bytes = index.bytes(text, range, encoding);
                text.replace_range(bytes, &change.text);
            }
        }
        stale = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_utf16_units_and_round_trip() {
        let text = "a\n\u{1F600}é b\nlast";
        let index = LineIndex::new(text);
        let b = text.find('b').unwrap();
        assert_eq!(
            index.position(text, b, Encoding::Utf16),
            Position::new(1, 4)
        );
        assert_eq!(index.position(text, b, Encoding::Utf8), Position::new(1, 7));
        assert_eq!(index.offset(text, Position::new(1, 4), Encoding::Utf16), b);
        assert_eq!(index.offset(text, Position::new(1, 7), Encoding::Utf8), b);
    }

    #[test]
    fn positions_past_a_line_or_the_text_are_clamped() {
        let text = "ab\ncd";
        let index = LineIndex::new(text);
        assert_eq!(index.offset(text, Position::new(0, 99), Encoding::Utf16), 2);
        assert_eq!(index.offset(text, Position::new(9, 0), Encoding::Utf16), 5);
        // Inside a surrogate pair: the character's start.
        let text = "\u{1F600}x";
        let index = LineIndex::new(text);
        assert_eq!(index.offset(text, Position::new(0, 1), Encoding::Utf16), 4);
        assert_eq!(
            index.position(text, 2, Encoding::Utf16),
            Position::new(0, 0)
        );
    }

    #[test]
    fn lines_end_at_a_lone_carriage_return_too() {
        let text = "a\rb\r\nc\nd";
        let index = LineIndex::new(text);
        for (offset, line, character) in [(2, 1, 0), (5, 2, 0), (7, 3, 0)] {
            let position = Position::new(line, character);
            assert_eq!(index.position(text, offset, Encoding::Utf16), position);
            assert_eq!(index.offset(text, position, Encoding::Utf16), offset);
        }
        // Past the end of `b`: before its `\r\n`.
        assert_eq!(index.offset(text, Position::new(1, 9), Encoding::Utf16), 3);
    }

    #[test]
    fn lines_end_at_newline_crlf_and_a_lone_cr() {
        let index = LineIndex::new("a\r\nb\rc\nd\r");
        assert_eq!(index.starts, [0, 3, 5, 7, 9]);
    }

    #[test]
    fn changes_apply_in_order() {
        let mut text = String::from("secret A { }\n");
        let change = |l1, c1, l2, c2, t: &str| TextDocumentContentChangeEvent {
            range: Some(Range::new(Position::new(l1, c1), Position::new(l2, c2))),
            range_length: None,
            text: t.into(),
        };
        let lines = LineIndex::new(&text);
        apply_changes(
            &mut text,
            &lines,
            vec![change(0, 7, 0, 8, "BB"), change(0, 12, 0, 12, "locked ")],
            Encoding::Utf16,
        );
        assert_eq!(text, "secret BB { locked }\n");
    }
}
