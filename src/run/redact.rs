//! One redactor for every output of a run: each known secret value, in
//! every form svc itself may send it in, is replaced by `***` wherever it
//! appears.
//!
//! A server that echoes what it received shows a secret the way it
//! travelled: form-encoded in a body, base64 inside `Authorization: Basic`,
//! escaped inside JSON. So a value is learned with all those forms at once
//! ([`Redactor::add`]), and a Basic pair as the pair too
//! ([`Redactor::add_basic`]). Matching uses one Aho-Corasick automaton per
//! set of values, built on first use, and masks every occurrence of every
//! form, overlapping ones included.

use std::sync::{Arc, OnceLock};

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use base64::Engine as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use zeroize::Zeroizing;

/// The secret values a run has seen, in every form they may take.
#[derive(Default, Clone)]
pub struct Redactor {
    values: Vec<Zeroizing<String>>,
    /// `values` is sorted (a store's, made once): lookups bisect it.
    sorted: bool,
    /// Built from `values` on first use; reset when a value is added.
    matcher: OnceLock<Option<AhoCorasick>>,
    /// Values known before the run (the store's), shared by every run that
    /// read the same version of the store.
    shared: Option<Arc<Redactor>>,
}

pub const MASK: &str = "***";

/// RFC 3986 unreserved characters stay; everything else is `%XX`.
const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// What JavaScript's `encodeURIComponent` leaves alone also stays.
const COMPONENT: &AsciiSet = &STRICT
    .remove(b'!')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Redactor({} forms)",
            self.values.len() + self.shared.as_ref().map_or(0, |s| s.values.len())
        )
    }
}

/// Every form in which svc may send `value`: as is, escaped in a JSON
/// string, form- and percent-encoded, and base64 and base64url with and
/// without padding.
pub fn forms(value: &str) -> Vec<String> {
    let mut out = vec![value.to_string()];
    let escaped = serde_json::to_string(value).unwrap_or_default();
    out.push(escaped.trim_matches('"').to_string());
    out.push(url::form_urlencoded::byte_serialize(value.as_bytes()).collect());
    out.push(utf8_percent_encode(value, STRICT).to_string());
    out.push(utf8_percent_encode(value, COMPONENT).to_string());
    for engine in [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        out.push(engine.encode(value.as_bytes()));
    }
    out.retain(|form| !form.is_empty());
    out.sort();
    out.dedup();
    out
}

impl Redactor {
    /// A redactor that knows the values of `shared`, and can learn more.
    pub fn on_top_of(shared: Arc<Redactor>) -> Redactor {
        Redactor {
            shared: Some(shared),
            ..Redactor::default()
        }
    }

    /// A redactor of many values at once (a store's).
    pub fn of<'a>(values: impl IntoIterator<Item = &'a str>) -> Redactor {
        let mut redactor = Redactor::default();
        for value in values {
            redactor.learn(value);
        }
        redactor.values.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        redactor.values.dedup_by(|a, b| a.as_str() == b.as_str());
        redactor.sorted = true;
        redactor
    }

    /// Learns every value another redactor knows.
    pub fn absorb(&mut self, other: &Redactor) {
        if let Some(shared) = &other.shared {
            self.absorb(shared);
        }
        for value in &other.values {
            self.add_form(value);
        }
    }

    fn knows(&self, form: &str) -> bool {
        let own = if self.sorted {
            self.values
                .binary_search_by(|v| v.as_str().cmp(form))
                .is_ok()
        } else {
            self.values.iter().any(|v| v.as_str() == form)
        };
        own || self.shared.as_ref().is_some_and(|s| s.knows(form))
    }

    fn add_form(&mut self, form: &str) {
        if form.is_empty() || self.knows(form) {
            return;
        }
        self.values.push(Zeroizing::new(form.to_string()));
        self.sorted = false;
        self.matcher = OnceLock::new();
    }

    fn learn(&mut self, value: &str) {
        for form in forms(value) {
            self.values.push(Zeroizing::new(form));
        }
    }

    /// Learns a secret value, in every form svc may send it in.
    pub fn add(&mut self, value: &str) {
        if value.is_empty() || self.knows(value) {
            return;
        }
        for form in forms(value) {
            self.add_form(&form);
        }
    }

    /// Learns the credentials of `Authorization: Basic`: each part, and the
    /// `user:password` pair as sent.
    pub fn add_basic(&mut self, user: &str, password: &str) {
        self.add(&format!("{user}:{password}"));
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && self.shared.as_ref().is_none_or(|s| s.is_empty())
    }

    fn matcher(&self) -> Option<&AhoCorasick> {
        self.matcher
            .get_or_init(|| {
                if self.values.is_empty() {
                    return None;
                }
                // A contiguous NFA: its size follows the bytes of the
                // patterns, where a DFA's grows with 256 transitions a
                // state (a 64 KiB secret took minutes to build).
                AhoCorasick::builder()
                    .kind(Some(AhoCorasickKind::ContiguousNFA))
                    .match_kind(MatchKind::Standard)
                    .build(self.values.iter().map(|v| v.as_bytes()))
                    .ok()
            })
            .as_ref()
    }

    /// Adds the byte ranges of `text` that hold a known form.
    fn find(&self, text: &str, ranges: &mut Vec<(usize, usize)>) {
        if let Some(shared) = &self.shared {
            shared.find(text, ranges);
        }
        if let Some(matcher) = self.matcher() {
            ranges.extend(
                matcher
                    .find_overlapping_iter(text)
                    .map(|m| (m.start(), m.end())),
            );
        }
    }

    /// Whether `text` holds any known form of a secret.
    pub fn reveals(&self, text: &str) -> bool {
        let mut ranges = Vec::new();
        self.find(text, &mut ranges);
        !ranges.is_empty()
    }

    /// The text with every occurrence of a known form replaced by `***`;
    /// overlapping or adjacent occurrences become one `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut ranges = Vec::new();
        self.find(text, &mut ranges);
        if ranges.is_empty() {
            return text.to_string();
        }
        ranges.sort_unstable();
        // Forms are whole UTF-8 strings, so every match starts and ends on
        // a character boundary of the text.
        let mut out = String::with_capacity(text.len());
        let mut shown = 0;
        let mut i = 0;
        while i < ranges.len() {
            let (start, mut end) = ranges[i];
            while i + 1 < ranges.len() && ranges[i + 1].0 <= end {
                i += 1;
                end = end.max(ranges[i].1);
            }
            out.push_str(&text[shown..start]);
            out.push_str(MASK);
            shown = end;
            i += 1;
        }
        out.push_str(&text[shown..]);
        out
    }

    /// Redacts every string inside a JSON value.
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(s) => {
                if self.reveals(s) {
                    *s = self.redact(s);
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
        let base = Redactor::of(["abc"]);
        let mut r = Redactor::on_top_of(std::sync::Arc::new(base));
        r.add("abcdef");
        r.add("abc");
        assert_eq!(r.redact("x abcdef y abc"), "x *** y ***");
        assert!(
            !r.values.iter().any(|v| v.as_str() == "abc"),
            "a shared value is not copied"
        );
    }

    #[test]
    fn overlapping_values_are_masked_whole() {
        let mut r = Redactor::default();
        r.add("abcd");
        r.add("cdef");
        assert_eq!(r.redact("xabcdefx"), "x***x");
        assert_eq!(r.redact("ab cd"), "ab cd");
    }

    #[test]
    fn catches_the_json_escaped_form() {
        let mut r = Redactor::default();
        r.add("a\"b");
        let json = serde_json::to_string(&serde_json::json!({"v": "a\"b"})).unwrap();
        assert!(!r.redact(&json).contains("a\\\"b"), "{}", r.redact(&json));
    }

    #[test]
    fn catches_every_encoding_svc_sends() {
        let secret = "s3cr3t value/+&=?~";
        let mut r = Redactor::default();
        r.add(secret);
        r.add_basic("client-id", secret);
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let b64url = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let sent = [
            secret.to_string(),
            url::form_urlencoded::byte_serialize(secret.as_bytes()).collect(),
            utf8_percent_encode(secret, STRICT).to_string(),
            b64(secret),
            b64url(secret),
            format!("Basic {}", b64(&format!("client-id:{secret}"))),
            serde_json::to_string(secret).unwrap(),
        ];
        for form in sent {
            let text = format!("echo: {form} end");
            let redacted = r.redact(&text);
            assert!(redacted.starts_with("echo: ") && redacted.ends_with(" end"));
            assert!(redacted.contains(MASK), "{form} was not masked: {redacted}");
            assert!(!redacted.contains("s3cr3t"), "{redacted}");
        }
    }

    #[test]
    fn keeps_text_around_multibyte_characters() {
        let mut r = Redactor::default();
        r.add("ø");
        assert_eq!(r.redact("æøå"), "æ***å");
    }
}
