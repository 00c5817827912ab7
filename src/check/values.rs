//! Validation of values the grammar accepts leniently: HTTP methods, URLs,
//! header names, JSONPath, cron expressions and time zones.
//!
//! Each function returns the problem in a few words, or `Ok`.

use std::str::FromStr;

/// Methods an endpoint may declare.
pub const ENDPOINT_METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];
/// Methods a `web_request` may send.
pub const REQUEST_METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// Checks a URL as written. `complete` is false when the text is only the
/// part before the first interpolation.
pub fn url(text: &str, complete: bool) -> Result<(), String> {
    if !complete && !text.contains("://") {
        // `"${base}/token"`: nothing to check before run time, unless the
        // literal start is clearly not a scheme.
        if text.is_empty() || "https://".starts_with(text) || "http://".starts_with(text) {
            return Ok(());
        }
        return Err("a URL starts with `https://` or `http://`".into());
    }
    if !complete {
        let scheme = text.split("://").next().unwrap_or("");
        return match scheme {
            "http" | "https" => Ok(()),
            other => Err(format!("`{other}` is not a web scheme; use `https`")),
        };
    }
    let parsed = url::Url::parse(text).map_err(|e| format!("not a URL: {e}"))?;
    match parsed.scheme() {
        "http" | "https" => {}
        other => return Err(format!("`{other}` is not a web scheme; use `https`")),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    Ok(())
}

/// Whether a URL literal uses plain `http://` to a host other than loopback.
pub fn is_plain_http_off_loopback(prefix: &str) -> bool {
    let Some(rest) = prefix.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(bracketed) = host.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or("")
    } else {
        host.split(':').next().unwrap_or("")
    };
    if host.is_empty() {
        // Host comes from an interpolation: unknown, so no warning.
        return false;
    }
    if host.eq_ignore_ascii_case("localhost") {
        return false;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => !ip.is_loopback(),
        Err(_) => true,
    }
}

/// An HTTP header name: a non-empty RFC 9110 token.
pub fn header_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a header name cannot be empty".into());
    }
    let bad = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(*c)));
    match bad {
        Some(c) => Err(format!("{c:?} cannot appear in a header name")),
        None => Ok(()),
    }
}

/// How deeply brackets and parentheses may nest in a JSONPath. The
/// JSONPath parser recurses once per level, with large frames: a few
/// hundred levels overflowed the stack. Real paths nest two or three.
pub const MAX_JSONPATH_DEPTH: usize = 16;

/// An RFC 9535 JSONPath. The answers are remembered, per thread, for the
/// paths seen last: programs repeat their paths (`$.access_token` in every
/// service), and the language server checks the same program on every
/// edit; parsing them was a sixth of a check.
pub fn jsonpath(path: &str) -> Result<(), String> {
    /// Enough for the distinct paths of a large program; past it the
    /// memory is cleared, so it stays bounded.
    const REMEMBERED: usize = 4096;
    thread_local! {
        static SEEN: std::cell::RefCell<rustc_hash::FxHashMap<String, Result<(), String>>> =
            Default::default();
    }
    if let Some(known) = SEEN.with_borrow(|seen| seen.get(path).cloned()) {
        return known;
    }
    let answer = parse_jsonpath(path);
    SEEN.with_borrow_mut(|seen| {
        if seen.len() >= REMEMBERED {
            seen.clear();
        }
        seen.insert(path.to_string(), answer.clone());
    });
    answer
}

fn parse_jsonpath(path: &str) -> Result<(), String> {
    if jsonpath_depth(path) > MAX_JSONPATH_DEPTH {
        return Err(format!(
            "brackets and parentheses nest more than {MAX_JSONPATH_DEPTH} levels deep"
        ));
    }
    serde_json_path::JsonPath::parse(path)
        .map(|_| ())
        .map_err(|e| first_line(&e.to_string()))
}

/// The deepest nesting of `[` and `(` in a JSONPath, outside quotes.
fn jsonpath_depth(path: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut quote = None;
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(_), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[' | '(') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (None, ']' | ')') => depth = depth.saturating_sub(1),
            (None, _) => {}
        }
    }
    deepest
}

/// A five-field cron expression (or an alias such as `@hourly`).
pub fn cron(expression: &str) -> Result<(), String> {
    let trimmed = expression.trim();
    if !trimmed.starts_with('@') {
        let fields = trimmed.split_whitespace().count();
        if fields != 5 {
            return Err(format!(
                "a cron expression has 5 fields, this one has {fields}"
            ));
        }
    }
    croner::Cron::from_str(trimmed)
        .map(|_| ())
        .map_err(|e| first_line(&e.to_string()))
}

/// An IANA time zone name.
pub fn time_zone(name: &str) -> Result<(), String> {
    chrono_tz::Tz::from_str(name)
        .map(|_| ())
        .map_err(|_| format!("`{name}` is not an IANA time zone"))
}

/// The IANA names closest to a misspelled one, for a hint.
pub fn time_zone_names() -> impl Iterator<Item = &'static str> {
    chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or(text).to_string()
}

/// `3` rather than `3.0`.
pub fn normal_number(value: serde_json::Value) -> serde_json::Value {
    match value.as_f64() {
        Some(n) if n.fract() == 0.0 && n.abs() < 1e15 => serde_json::Value::from(n as i64),
        _ => value,
    }
}

/// The value of a literal as JSON (a parameter's default, a schedule's
/// parameter): `None` for anything a run would compute.
pub fn constant(expr: &crate::syntax::ast::Expr) -> Option<serde_json::Value> {
    use crate::syntax::ast::ExprKind;
    use serde_json::Value as Json;
    Some(match &expr.kind {
        ExprKind::Null => Json::Null,
        ExprKind::Bool { value } => Json::Bool(*value),
        ExprKind::Number { value } => normal_number(Json::from(*value)),
        ExprKind::Duration { millis } => normal_number(Json::from(*millis as f64 / 1000.0)),
        ExprKind::String { .. } => Json::String(expr.as_plain_string()?),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(url("https://api.hubapi.com/oauth/v1/token", true).is_ok());
        assert!(url("ftp://x", true).is_err());
        assert!(url("api.hubapi.com", true).is_err());
        assert!(url("https://", true).is_err());
        assert!(url("", false).is_ok());
        assert!(url("https://", false).is_ok());
        assert!(url("api/", false).is_err());
    }

    #[test]
    fn plain_http() {
        assert!(is_plain_http_off_loopback("http://example.com/token"));
        assert!(is_plain_http_off_loopback("http://10.0.0.1:80/"));
        assert!(!is_plain_http_off_loopback("http://127.0.0.1:8080/token"));
        assert!(!is_plain_http_off_loopback("http://[::1]:8080/token"));
        assert!(!is_plain_http_off_loopback("http://localhost/token"));
        assert!(!is_plain_http_off_loopback("https://example.com"));
        assert!(!is_plain_http_off_loopback("http://"));
    }

    #[test]
    fn crons_and_zones() {
        assert!(cron("0 * * * *").is_ok());
        assert!(cron("@hourly").is_ok());
        assert!(cron("0 * * *").is_err());
        assert!(cron("61 * * * *").is_err());
        assert!(time_zone("Europe/Oslo").is_ok());
        assert!(time_zone("Europe/Olso").is_err());
    }

    #[test]
    fn jsonpaths() {
        assert!(jsonpath("$.access_token").is_ok());
        assert!(jsonpath("$.data[0]['token']").is_ok());
        assert!(jsonpath("$.data[").is_err());
    }

    #[test]
    fn jsonpaths_nest_at_most_sixteen_levels() {
        let nested = |n: usize| format!("${}{}", "[?@".repeat(n), "]".repeat(n));
        assert!(jsonpath(&nested(MAX_JSONPATH_DEPTH)).is_ok());
        let error = jsonpath(&nested(MAX_JSONPATH_DEPTH + 1)).unwrap_err();
        assert!(error.contains("more than 16 levels"), "{error}");
        // Deep enough to overflow the parser's stack: refused before it runs.
        assert!(jsonpath(&nested(5_000)).is_err());
        // Brackets inside quotes are names, not nesting.
        assert!(jsonpath(&format!("$['{}']", "[".repeat(40))).is_ok());
    }
}
