//! One redactor for every output of a run: each known secret value is
//! replaced by `***` wherever it appears.

use zeroize::Zeroizing;

/// The secret values a run has seen.
#[derive(Default, Clone)]
pub struct Redactor {
    /// Longest first, so a value that contains another is replaced whole.
    values: Vec<Zeroizing<String>>,
}

pub const MASK: &str = "***";

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} values)", self.values.len())
    }
}

impl Redactor {
    pub fn add(&mut self, value: &str) {
        if value.is_empty() || self.values.iter().any(|v| v.as_str() == value) {
            return;
        }
        self.values.push(Zeroizing::new(value.to_string()));
        // Also the form the value takes inside a JSON string.
        let escaped = serde_json::to_string(value).unwrap_or_default();
        let escaped = escaped.trim_matches('"');
        if escaped != value && !escaped.is_empty() {
            self.values.push(Zeroizing::new(escaped.to_string()));
        }
        self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The text with every known value replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for value in &self.values {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), MASK);
            }
        }
        out
    }

    /// Redacts every string inside a JSON value.
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(s) => {
                let redacted = self.redact(s);
                if redacted != *s {
                    *s = redacted;
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|v| self.redact_json(v)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_every_occurrence_longest_first() {
        let mut r = Redactor::default();
        r.add("abc");
        r.add("abcdef");
        assert_eq!(r.redact("x abcdef y abc"), "x *** y ***");
    }

    #[test]
    fn catches_the_json_escaped_form() {
        let mut r = Redactor::default();
        r.add("a\"b");
        let json = serde_json::to_string(&serde_json::json!({"v": "a\"b"})).unwrap();
        assert!(!r.redact(&json).contains("a\\\"b"), "{}", r.redact(&json));
    }
}
