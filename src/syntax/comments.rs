//! Comments, found by a scanner of their own: the grammar skips them like
//! whitespace, which keeps parsing fast, and the formatter asks here.

use std::ops::Range;

/// The byte ranges of every `//` comment in a text (without the newline
/// that ends it). Strings (`"..."`) and JSONPath quotes (`'...'`) are
/// skipped, so a `//` inside a URL is not a comment.
pub fn scan(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut comments = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' => {
                let quote = bytes[i];
                i += 1;
                while i < bytes.len() && bytes[i] != quote && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                let end = text[i..].find('\n').map_or(text.len(), |n| i + n);
                comments.push(i..end);
                i = end;
            }
            _ => i += 1,
        }
    }
    comments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_comments_but_not_slashes_in_strings() {
        let text = "// one\nurl \"https://x\" // two\n$['a//b'] \"a \\\" // b\"\n";
        let found: Vec<&str> = scan(text).into_iter().map(|r| &text[r]).collect();
        assert_eq!(found, vec!["// one", "// two"]);
    }
}
