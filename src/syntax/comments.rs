//! Comments, found by a scanner of their own: the grammar skips them like
//! whitespace, which keeps parsing fast, and the formatter asks here.

use std::ops::Range;

/// The byte ranges of every `//` comment in a text (without the newline
/// that ends it). Strings (`"..."`) and JSONPath quotes (`'...'`) are
/// skipped, so a `//` inside a URL is not a comment; so are strings inside
/// the `${...}` of a string, however deeply nested, while the code of an
/// interpolation is code, where a comment may start.
pub fn scan(text: &str) -> Vec<Range<usize>> {
    /// Where the scanner is, innermost last: in a string, or in the code
    /// of an interpolation with `braces` of its own `{` still open.
    enum Within {
        String,
        Interpolation { braces: usize },
    }
    let bytes = text.as_bytes();
    let mut comments = Vec::new();
    let mut within: Vec<Within> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if let Some(Within::String) = within.last() {
            match bytes[i] {
                b'\\' => i += 1,
                // A string ends on its line, closed or not.
                b'"' | b'\n' => {
                    within.pop();
                }
                b'$' if bytes.get(i + 1) == Some(&b'{') => {
                    within.push(Within::Interpolation { braces: 0 });
                    i += 1;
                }
                _ => {}
            }
            i += 1;
            continue;
        }
        match bytes[i] {
            b'"' => within.push(Within::String),
            b'\'' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'\'' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                let end = text[i..].find('\n').map_or(text.len(), |n| i + n);
                comments.push(i..end);
                i = end;
                continue;
            }
            b'{' => {
                if let Some(Within::Interpolation { braces }) = within.last_mut() {
                    *braces += 1;
                }
            }
            b'}' => match within.last_mut() {
                Some(Within::Interpolation { braces: 0 }) => {
                    within.pop();
                }
                Some(Within::Interpolation { braces }) => *braces -= 1,
                _ => {}
            },
            _ => {}
        }
        i += 1;
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

    #[test]
    fn strings_inside_interpolations_are_strings_too() {
        let text = "log \"${\"// not one\"} ${f(\"a}//b\")}\" // one\n\
                    log \"${ {a} }//x\" // two\n";
        let found: Vec<&str> = scan(text).into_iter().map(|r| &text[r]).collect();
        assert_eq!(found, vec!["// one", "// two"]);
    }
}
