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
//!
//! Each value is known with its [`Origin`]: the secrets it is made from. A
//! response that `reveals` some secrets masks with [`Redactor::hiding`]:
//! every value made from another secret, or from secrets the run cannot
//! tell.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use base64::Engine as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use zeroize::Zeroizing;

/// The secrets a known value is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Made from these secrets, by name.
    Of(BTreeSet<String>),
    /// Secret, made from what the run cannot tell: a response shows it to
    /// nobody.
    Unknown,
}

impl Origin {
    /// The value of one secret.
    pub fn secret(name: &str) -> Origin {
        Origin::Of(BTreeSet::from([name.to_string()]))
    }

    /// Made from what either is made from.
    pub fn join(&mut self, other: &Origin) {
        match (&mut *self, other) {
            (Origin::Of(mine), Origin::Of(theirs)) => mine.extend(theirs.iter().cloned()),
            (Origin::Of(_), Origin::Unknown) => *self = Origin::Unknown,
            (Origin::Unknown, _) => {}
        }
    }

    /// Whether joining `other` adds nothing.
    fn covers(&self, other: &Origin) -> bool {
        match (self, other) {
            (Origin::Unknown, _) => true,
            (Origin::Of(_), Origin::Unknown) => false,
            (Origin::Of(mine), Origin::Of(theirs)) => theirs.is_subset(mine),
        }
    }

    /// Whether it is made from none but these secrets.
    pub fn within(&self, names: &[&str]) -> bool {
        match self {
            Origin::Of(secrets) => secrets.iter().all(|s| names.contains(&s.as_str())),
            Origin::Unknown => false,
        }
    }
}

/// One form of a known value, and what the value is made from.
#[derive(Clone)]
struct Known {
    form: Zeroizing<String>,
    origin: Origin,
}

/// The most bytes of forms a run learns beyond the store's: the redactor's
/// share of a run's memory ceiling (docs/run.md, "Bounds of a run").
pub const MAX_LEARNED: usize = 256 << 20;

/// The secret values a run has seen, in every form they may take.
#[derive(Default, Clone)]
pub struct Redactor {
    values: Vec<Known>,
    /// `values` is sorted (a store's, made once): lookups bisect it.
    sorted: bool,
    /// Built from `values` on first use; reset when a value is added.
    matcher: OnceLock<Option<AhoCorasick>>,
    /// Values known before the run (the store's), shared by every run that
    /// read the same version of the store.
    shared: Option<Arc<Redactor>>,
    /// The bytes of the forms in `values`.
    bytes: usize,
    /// Some value in `values` is a JSON array or object, which an output
    /// may show as a structure rather than as text.
    structured: bool,
}

pub const MASK: &str = "***";

/// The shortest value used as a pattern, in bytes. A shorter one would
/// mask every occurrence of its characters in every output (a secret `e`
/// turned each `e` of a URL into `***`) and hide nothing: such a value is
/// not masked, and `svc secret set` says so when it stores one.
pub const MIN_MASKED: usize = 4;

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
/// without padding. None for a value shorter than [`MIN_MASKED`].
pub fn forms(value: &str) -> Vec<String> {
    if value.len() < MIN_MASKED {
        return Vec::new();
    }
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

    /// A redactor of many values at once, made from what it cannot tell.
    pub fn of<'a>(values: impl IntoIterator<Item = &'a str>) -> Redactor {
        Redactor::sorted(values.into_iter().map(|value| (value, Origin::Unknown)))
    }

    /// A redactor of a store's values, each made from its secret.
    pub fn of_secrets<'a>(secrets: impl IntoIterator<Item = (&'a str, &'a str)>) -> Redactor {
        Redactor::sorted(
            secrets
                .into_iter()
                .map(|(name, value)| (value, Origin::secret(name))),
        )
    }

    fn sorted<'a>(values: impl IntoIterator<Item = (&'a str, Origin)>) -> Redactor {
        let mut redactor = Redactor::default();
        for (value, origin) in values {
            if value.is_empty() {
                continue;
            }
            for form in forms(value) {
                redactor.push(form, origin.clone());
            }
        }
        redactor
            .values
            .sort_by(|a, b| a.form.as_str().cmp(b.form.as_str()));
        // One entry a form, made from what each of its values is made from.
        redactor.values.dedup_by(|next, kept| {
            let same = next.form.as_str() == kept.form.as_str();
            if same {
                kept.origin.join(&next.origin);
            }
            same
        });
        redactor.bytes = redactor.values.iter().map(|k| k.form.len()).sum();
        redactor.sorted = true;
        redactor
    }

    /// Learns every value another redactor knows, with its origin.
    pub fn absorb(&mut self, other: &Redactor) {
        if let Some(shared) = &other.shared {
            self.absorb(shared);
        }
        for known in &other.values {
            self.learn_form(&known.form, &known.origin);
        }
    }

    /// Where a form is among this redactor's own values.
    fn position(&self, form: &str) -> Option<usize> {
        if self.sorted {
            self.values
                .binary_search_by(|k| k.form.as_str().cmp(form))
                .ok()
        } else {
            self.values.iter().position(|k| k.form.as_str() == form)
        }
    }

    /// What a form is made from, if it is known as a whole.
    fn origin_of_form(&self, form: &str) -> Option<Origin> {
        let mut origin = self.shared.as_ref().and_then(|s| s.origin_of_form(form));
        if let Some(i) = self.position(form) {
            match &mut origin {
                Some(origin) => origin.join(&self.values[i].origin),
                None => origin = Some(self.values[i].origin.clone()),
            }
        }
        origin
    }

    fn push(&mut self, form: String, origin: Origin) {
        self.bytes += form.len();
        self.structured |= form.starts_with(['{', '[']);
        self.values.push(Known {
            form: Zeroizing::new(form),
            origin,
        });
        self.sorted = false;
        self.matcher = OnceLock::new();
    }

    /// Learns one form, or what else a known one is made from.
    fn learn_form(&mut self, form: &str, origin: &Origin) {
        if form.is_empty()
            || self
                .origin_of_form(form)
                .is_some_and(|known| known.covers(origin))
        {
            return;
        }
        match self.position(form) {
            // The automaton's patterns stay; only what one is made from grows.
            Some(i) => self.values[i].origin.join(origin),
            None => self.push(form.to_string(), origin.clone()),
        }
    }

    /// Learns a value made from `origin`, in every form svc may send it in;
    /// a value known already is then made from that too.
    pub fn learn(&mut self, value: &str, origin: &Origin) {
        if value.is_empty() {
            return;
        }
        for form in forms(value) {
            self.learn_form(&form, origin);
        }
    }

    /// Learns a secret value, in every form svc may send it in. A value
    /// known already keeps what it is made from; a new one is made from
    /// the known values it holds, or from what the run cannot tell.
    pub fn add(&mut self, value: &str) {
        if value.is_empty() || self.origin_of_form(value).is_some() {
            return;
        }
        let origin = self.origin_in(value).unwrap_or(Origin::Unknown);
        self.learn(value, &origin);
    }

    /// Learns the credentials of `Authorization: Basic`: each part, and the
    /// `user:password` pair as sent.
    pub fn add_basic(&mut self, user: &str, password: &str) {
        self.add(&format!("{user}:{password}"));
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && self.shared.as_ref().is_none_or(|s| s.is_empty())
    }

    /// Whether the run has learned more than [`MAX_LEARNED`] bytes of forms.
    pub fn is_full(&self) -> bool {
        self.bytes > MAX_LEARNED
    }

    /// What the known values that `text` holds are made from; `None` when
    /// it holds none.
    pub fn origin_in(&self, text: &str) -> Option<Origin> {
        let mut origin: Option<Origin> = None;
        self.each_match(text, &mut |known| match &mut origin {
            Some(origin) => origin.join(&known.origin),
            None => origin = Some(known.origin.clone()),
        });
        origin
    }

    /// A redactor of the values a response that reveals `revealed` must
    /// mask: those made from another secret, or from what the run cannot
    /// tell. The values in `shown` (the stored values of the revealed
    /// secrets, which the caller may read) are not among them, in any form.
    pub fn hiding(&self, revealed: &[&str], shown: &[&str]) -> Redactor {
        let shown: BTreeSet<String> = shown.iter().flat_map(|v| forms(v)).collect();
        let mut hidden = Vec::new();
        self.hidden_forms(revealed, &shown, &mut hidden);
        let mut redactor = Redactor::default();
        for form in hidden {
            redactor.push(form.to_string(), Origin::Unknown);
        }
        redactor
            .values
            .sort_by(|a, b| a.form.as_str().cmp(b.form.as_str()));
        redactor
            .values
            .dedup_by(|next, kept| next.form.as_str() == kept.form.as_str());
        redactor.sorted = true;
        redactor
    }

    fn hidden_forms<'a>(
        &'a self,
        revealed: &[&str],
        shown: &BTreeSet<String>,
        into: &mut Vec<&'a str>,
    ) {
        if let Some(shared) = &self.shared {
            shared.hidden_forms(revealed, shown, into);
        }
        into.extend(
            self.values
                .iter()
                .filter(|k| !k.origin.within(revealed) && !shown.contains(k.form.as_str()))
                .map(|k| k.form.as_str()),
        );
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
                    .build(self.values.iter().map(|k| k.form.as_bytes()))
                    .ok()
            })
            .as_ref()
    }

    /// Calls `f` with each known form `text` holds, overlapping ones too.
    fn each_match(&self, text: &str, f: &mut impl FnMut(&Known)) {
        if let Some(shared) = &self.shared {
            shared.each_match(text, f);
        }
        if let Some(matcher) = self.matcher() {
            for found in matcher.find_overlapping_iter(text) {
                f(&self.values[found.pattern().as_usize()]);
            }
        }
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

    /// Whether a JSON array or object is, as compact text, a known value:
    /// a secret JSON document shown as a structure.
    fn knows_structure(&self, value: &serde_json::Value) -> bool {
        let structured = self.structured || self.shared.as_ref().is_some_and(|s| s.structured);
        structured && self.origin_of_form(&value.to_string()).is_some()
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

    /// Redacts every string inside a JSON value; an array or object that
    /// is itself a known value (a secret JSON document) becomes `***`.
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(s) => {
                if self.reveals(s) {
                    *s = self.redact(s);
                }
            }
            serde_json::Value::Array(_) | serde_json::Value::Object(_)
                if self.knows_structure(value) =>
            {
                *value = serde_json::Value::String(MASK.into());
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
        r.add("abcd");
        r.add("abcdefgh");
        assert_eq!(r.redact("x abcdefgh y abcd"), "x *** y ***");
    }

    #[test]
    fn shared_values_are_redacted_too_longest_first() {
        let base = Redactor::of(["abcd"]);
        let mut r = Redactor::on_top_of(std::sync::Arc::new(base));
        r.add("abcdefgh");
        r.add("abcd");
        assert_eq!(r.redact("x abcdefgh y abcd"), "x *** y ***");
        assert!(
            !r.values.iter().any(|k| k.form.as_str() == "abcd"),
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
        r.add("ab\"cd");
        let json = serde_json::to_string(&serde_json::json!({"v": "ab\"cd"})).unwrap();
        assert!(!r.redact(&json).contains("ab\\\"cd"), "{}", r.redact(&json));
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

    fn names(origin: Option<Origin>) -> Option<Vec<String>> {
        match origin? {
            Origin::Of(names) => Some(names.into_iter().collect()),
            Origin::Unknown => Some(vec!["?".into()]),
        }
    }

    #[test]
    fn a_value_is_made_from_what_it_was_learned_from() {
        let store = Redactor::of_secrets([("K", "k-value"), ("T", "t-value")]);
        let mut r = Redactor::on_top_of(Arc::new(store));
        assert_eq!(names(r.origin_in("Bearer k-value")), Some(vec!["K".into()]));
        assert_eq!(names(r.origin_in("nothing here")), None);
        // Derived from both; then also written as another secret's value.
        r.learn(
            "K-VALUE:T-VALUE",
            &Origin::Of(["K".into(), "T".into()].into()),
        );
        assert_eq!(
            names(r.origin_in("K-VALUE:T-VALUE")),
            Some(vec!["K".into(), "T".into()])
        );
        r.learn("K-VALUE:T-VALUE", &Origin::secret("S"));
        assert_eq!(
            names(r.origin_in("K-VALUE:T-VALUE")),
            Some(vec!["K".into(), "S".into(), "T".into()])
        );
        // `add` keeps what a known value is made from; a new value is made
        // from what it holds, or from what cannot be told.
        r.add("t-value");
        assert_eq!(names(r.origin_in("t-value")), Some(vec!["T".into()]));
        r.add("prefix-t-value");
        assert_eq!(names(r.origin_in("prefix-t-value")), Some(vec!["T".into()]));
        r.add("brand-new");
        assert_eq!(names(r.origin_in("brand-new")), Some(vec!["?".into()]));
        // The same value in two secrets is made from both.
        let both = Redactor::of_secrets([("A", "same"), ("B", "same")]);
        assert_eq!(
            names(both.origin_in("same")),
            Some(vec!["A".into(), "B".into()])
        );
    }

    #[test]
    fn hiding_masks_what_is_made_from_a_secret_not_revealed() {
        let store = Redactor::of_secrets([("K", "k-value"), ("T", "t-value")]);
        let mut r = Redactor::on_top_of(Arc::new(store));
        r.learn("lowered-k", &Origin::secret("K"));
        r.learn("lowered-t", &Origin::secret("T"));
        r.learn("from-both", &Origin::Of(["K".into(), "T".into()].into()));
        r.add("untold");
        let hidden = r.hiding(&["T"], &[]);
        assert_eq!(
            hidden.redact("k-value lowered-k t-value lowered-t from-both untold"),
            "*** *** t-value lowered-t *** ***"
        );
        // A revealed secret's stored value is shown, whatever else made it.
        r.learn("t-value", &Origin::secret("K"));
        assert_eq!(r.hiding(&["T"], &[]).redact("t-value"), "***");
        assert_eq!(r.hiding(&["T"], &["t-value"]).redact("t-value"), "t-value");
    }

    #[test]
    fn a_secret_json_document_is_masked_as_a_structure() {
        let mut r = Redactor::default();
        let document = serde_json::json!({"sub": "someone", "n": 1});
        r.learn(&document.to_string(), &Origin::secret("K"));
        let mut shown = serde_json::json!({"claims": document, "other": {"sub": "x"}});
        r.redact_json(&mut shown);
        assert_eq!(
            shown,
            serde_json::json!({"claims": "***", "other": {"sub": "x"}})
        );
    }

    #[test]
    fn counts_the_bytes_a_run_learned_beyond_the_store() {
        let mut r = Redactor::on_top_of(Arc::new(Redactor::of_secrets([("K", "k-value")])));
        r.add("k-value");
        assert_eq!(r.bytes, 0, "the store's values are not the run's");
        r.add("a/b/c");
        assert_eq!(
            r.bytes,
            forms("a/b/c").iter().map(String::len).sum::<usize>()
        );
        assert!(!r.is_full());
    }

    #[test]
    fn keeps_text_around_multibyte_characters() {
        let mut r = Redactor::default();
        r.add("øø");
        assert_eq!(r.redact("æøøå"), "æ***å");
    }

    #[test]
    fn a_value_shorter_than_four_bytes_masks_nothing() {
        let mut r = Redactor::of_secrets([("ONE", "e"), ("THREE", "abc")]);
        r.add("xy");
        let url = "https://auth.example.com/oauth2/token?abc=1";
        assert_eq!(r.redact(url), url);
        assert!(r.is_empty());
        r.add("abcd");
        assert_eq!(r.redact("abcd"), "***");
    }
}
