//! One redactor for every output of a run: each known secret value is
//! replaced by `***` wherever it appears.

use std::sync::Arc;

use zeroize::Zeroizing;

/// The secret values a run has seen.
#[derive(Default, Clone)]
pub struct Redactor {
    /// Longest first, so a value that contains another is replaced whole.
    values: Vec<Zeroizing<String>>,
    /// Values known before the run (the store's), shared by every run that
    /// read the same version of the store.
    shared: Option<Arc<Redactor>>,
}

pub const MASK: &str = "***";

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Redactor({} values)",
            self.values.len() + self.shared.as_ref().map_or(0, |s| s.values.len())
        )
    }
}

impl Redactor {
    /// A redactor that knows the values of `shared`, and can learn more.
    pub fn on_top_of(shared: Arc<Redactor>) -> Redactor {
        Redactor {
            values: Vec::new(),
            shared: Some(shared),
        }
    }

    /// Learns every value another redactor knows.
    pub fn absorb(&mut self, other: &Redactor) {
        if let Some(shared) = &other.shared {
            self.absorb(shared);
        }
        for value in &other.values {
            self.add(value);
        }
    }

    fn knows(&self, value: &str) -> bool {
        self.values.iter().any(|v| v.as_str() == value)
            || self.shared.as_ref().is_some_and(|s| s.knows(value))
    }

    pub fn add(&mut self, value: &str) {
        if value.is_empty() || self.knows(value) {
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
        self.values.is_empty() && self.shared.as_ref().is_none_or(|s| s.is_empty())
    }

    /// The text with every known value replaced by `***`, longest first.
    pub fn redact(&self, text: &str) -> String {
        let shared: &[Zeroizing<String>] = self.shared.as_ref().map_or(&[], |s| &s.values);
        let (mut own, mut other) = (self.values.iter().peekable(), shared.iter().peekable());
        let mut out = text.to_string();
        loop {
            let value = match (own.peek(), other.peek()) {
                (Some(a), Some(b)) if a.len() >= b.len() => own.next(),
                (Some(_), Some(_)) | (None, Some(_)) => other.next(),
                (Some(_), None) => own.next(),
                (None, None) => break,
            };
            if let Some(value) = value
                && out.contains(value.as_str())
            {
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
    fn shared_values_are_redacted_too_longest_first() {
        let mut base = Redactor::default();
        base.add("abc");
        let mut r = Redactor::on_top_of(std::sync::Arc::new(base));
        r.add("abcdef");
        r.add("abc");
        assert_eq!(r.redact("x abcdef y abc"), "x *** y ***");
        assert_eq!(r.values.len(), 1, "a shared value is not copied");
    }

    #[test]
    fn catches_the_json_escaped_form() {
        let mut r = Redactor::default();
        r.add("a\"b");
        let json = serde_json::to_string(&serde_json::json!({"v": "a\"b"})).unwrap();
        assert!(!r.redact(&json).contains("a\\\"b"), "{}", r.redact(&json));
    }
}
