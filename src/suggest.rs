//! "Did you mean" by edit distance: for the checker, the parser and the
//! commands alike (a leaf: it depends on nothing of svc).

/// The candidate closest to `name`, if it is close enough to be a likely
/// misspelling. Ties go to the first candidate given.
///
/// A program may declare thousands of names: a candidate that cannot be
/// closer than the best so far (by [`bag_distance`], a lower bound of the
/// edit distance) is not measured.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    let lower = name.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        if candidate == name {
            continue;
        }
        // Only strictly closer candidates replace the best.
        let bound = best.map_or(limit, |(d, _)| d - 1);
        // A difference only in case counts as one edit.
        let distance = if same_but_case(candidate, name, &lower) {
            1
        } else if bag_distance(name, candidate) > bound {
            continue;
        } else {
            strsim::damerau_levenshtein(name, candidate)
        };
        if distance <= bound {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

fn same_but_case(candidate: &str, name: &str, lower: &str) -> bool {
    if candidate.is_ascii() && name.is_ascii() {
        candidate.eq_ignore_ascii_case(name)
    } else {
        candidate.to_lowercase() == lower
    }
}

/// How many characters one string has that the other lacks, counted as
/// multisets, the larger of the two counts: no edit (insertion, deletion,
/// substitution, transposition) changes it by more than one, so it is at
/// most the edit distance.
fn bag_distance(a: &str, b: &str) -> usize {
    if !(a.is_ascii() && b.is_ascii()) {
        // Only ASCII is counted; any other text is measured in full.
        return 0;
    }
    let mut counts = [0i32; 128];
    for byte in a.bytes() {
        counts[byte as usize] += 1;
    }
    for byte in b.bytes() {
        counts[byte as usize] -= 1;
    }
    let (mut only_a, mut only_b) = (0, 0);
    for count in counts {
        if count > 0 {
            only_a += count as usize;
        } else {
            only_b += (-count) as usize;
        }
    }
    only_a.max(only_b)
}

/// A help line: "did you mean `x`?", or the fallback.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    fallback: impl Into<String>,
) -> String {
    match closest(name, candidates) {
        Some(candidate) => format!("did you mean `{candidate}`?"),
        None => fallback.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_misspellings() {
        assert_eq!(closest("tokne", ["token", "expires_in"]), Some("token"));
        assert_eq!(
            closest("HUBSPOT_ACESS_TOKEN", ["HUBSPOT_ACCESS_TOKEN"]),
            Some("HUBSPOT_ACCESS_TOKEN")
        );
        assert_eq!(closest("get", ["GET", "POST"]), Some("GET"));
    }

    #[test]
    fn the_bag_distance_never_exceeds_the_edit_distance() {
        let words = [
            "token",
            "tokne",
            "TOKEN",
            "expires_in",
            "S12_REFRESH_TOKEN",
            "S21_REFRESH_TOKEN",
            "",
            "x",
        ];
        for a in words {
            for b in words {
                assert!(
                    bag_distance(a, b) <= strsim::damerau_levenshtein(a, b),
                    "{a} {b}"
                );
            }
        }
        // Skipping by the bound keeps the first of equally close names.
        assert_eq!(closest("tokn", ["toke", "token"]), Some("toke"));
    }

    #[test]
    fn ignores_distant_names() {
        assert_eq!(closest("x", ["token", "expires_in"]), None);
        assert_eq!(closest("refresh", ["nightly"]), None);
    }
}
