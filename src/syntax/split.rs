//! Where a large file may be cut into parts that parse on their own.
//!
//! A cut goes at the start of a line that starts with a top-level keyword.
//! Strings, JSONPaths and comments end at the end of their line, so the
//! start of a line always lies between two tokens; a cut that falls inside
//! a declaration (a `service_account` line in an unindented schedule) makes
//! its part fail to parse, and the caller then parses the file in one
//! piece. A cut can cost time, never change the result: every declaration
//! ends with its `}`, and the parser looks no further.

/// Files smaller than this are parsed in one piece: threads would cost
/// more than they save.
pub const PARALLEL_FROM: usize = 512 * 1024;

/// The keywords that start a declaration.
const DECLARATIONS: [&[u8]; 6] = [
    b"service_account",
    b"service",
    b"secret",
    b"schedule",
    b"role",
    b"user",
];

/// Offsets that cut `text` into at most `parts` parts of similar size: the
/// first is 0, the last `text.len()`, and they increase strictly.
pub fn cuts(text: &str, parts: usize) -> Vec<usize> {
    let bytes = text.as_bytes();
    let mut cuts = vec![0];
    for k in 1..parts.max(1) {
        let target = text.len() * k / parts;
        let from = target.max(*cuts.last().unwrap_or(&0) + 1);
        if let Some(cut) = declaration_line_from(bytes, from) {
            cuts.push(cut);
        }
    }
    cuts.push(text.len());
    cuts.dedup();
    cuts
}

/// The first start of a line at or after `from` that starts with a
/// declaration keyword.
fn declaration_line_from(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while at < bytes.len() {
        let line = if at == 0 || bytes[at - 1] == b'\n' {
            at
        } else {
            at + bytes[at..].iter().position(|&b| b == b'\n')? + 1
        };
        if starts_declaration(&bytes[line..]) {
            return Some(line);
        }
        at = line + 1;
    }
    None
}

fn starts_declaration(line: &[u8]) -> bool {
    DECLARATIONS.iter().any(|keyword| {
        line.starts_with(keyword)
            && line
                .get(keyword.len())
                .is_some_and(|&next| !(next.is_ascii_alphanumeric() || next == b'_'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_at_lines_that_start_declarations() {
        let text = "secret A { }\nrole r {\n  grant run s.e\n}\nservice s {\n}\nuser u { }\n";
        let cuts = cuts(text, 3);
        assert_eq!(cuts.first(), Some(&0));
        assert_eq!(cuts.last(), Some(&text.len()));
        for &cut in &cuts[1..cuts.len() - 1] {
            assert!(text[..cut].ends_with('\n'), "{cut}");
            assert!(starts_declaration(&text.as_bytes()[cut..]), "{cut}");
        }
        assert!(cuts.windows(2).all(|w| w[0] < w[1]), "{cuts:?}");
    }

    #[test]
    fn names_that_begin_with_a_keyword_are_not_declarations() {
        assert!(!starts_declaration(b"services = 1"));
        assert!(!starts_declaration(b"user_name"));
        assert!(starts_declaration(b"user u {"));
        assert!(starts_declaration(b"service_account bot { }"));
        assert!(!starts_declaration(b"  service x {"));
    }

    #[test]
    fn one_part_or_no_place_to_cut_leaves_the_text_whole() {
        assert_eq!(cuts("secret A { }", 1), vec![0, 12]);
        assert_eq!(cuts("  secret A { }\n  secret B { }", 4), vec![0, 29]);
        assert_eq!(cuts("", 2), vec![0]);
    }
}
