//! "Did you mean" by edit distance.

/// The candidate closest to `name`, if it is close enough to be a likely
/// misspelling. Ties go to the first candidate given.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    let lower = name.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        if candidate == name {
            continue;
        }
        // A difference only in case counts as one edit.
        let distance = if candidate.to_lowercase() == lower {
            1
        } else {
            strsim::damerau_levenshtein(name, candidate)
        };
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
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

/// The name a [`did_you_mean`] help line suggests, read back: quick fixes
/// in the editor apply it.
pub fn suggestion(help: &str) -> Option<&str> {
    help.strip_prefix("did you mean `")?.strip_suffix("`?")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suggestion_is_read_back_from_its_help_line() {
        let help = did_you_mean("tokne", ["token"], "declare it");
        assert_eq!(suggestion(&help), Some("token"));
        assert_eq!(suggestion("declare it"), None);
    }

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
    fn ignores_distant_names() {
        assert_eq!(closest("x", ["token", "expires_in"]), None);
        assert_eq!(closest("refresh", ["nightly"]), None);
    }
}
