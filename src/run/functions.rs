//! What the language's functions compute. Their signatures are in
//! `check::functions`; the checker has typed every call before it runs.
//!
//! A null argument gives null (`lower(null)` is null), except for the
//! functions made for null: `has_value`, `default`, `string`,
//! `json_string` and `len`.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::Digest as _;

use super::value::{Value, time_of_unix};
use crate::check::functions::Function;

/// Calls `function` with evaluated arguments; the error is a sentence
/// without the values (they may be secret).
pub fn call(function: Function, args: Vec<Value>) -> Result<Value, String> {
    let null_in = args.iter().any(Value::is_null);
    let takes_null = matches!(
        function,
        Function::HasValue
            | Function::Default
            | Function::ToString
            | Function::JsonString
            | Function::Len
    );
    if null_in && !takes_null {
        return Ok(Value::Null);
    }
    let mut args = args.into_iter();
    let mut next = || args.next().unwrap_or(Value::Null);
    Ok(match function {
        Function::HasValue => Value::Bool(next().has_value()),
        Function::Default => {
            let first = next();
            let second = next();
            if first.has_value() { first } else { second }
        }
        Function::Len => Value::Number(match next() {
            Value::Null => 0.0,
            Value::String(s) | Value::Json(serde_json::Value::String(s)) => {
                s.chars().count() as f64
            }
            Value::Json(serde_json::Value::Array(a)) => a.len() as f64,
            Value::Json(serde_json::Value::Object(o)) => o.len() as f64,
            other => {
                return Err(format!(
                    "`len` takes a string or a JSON array or object, not a {}",
                    other.kind()
                ));
            }
        }),
        Function::Lower => Value::String(text(next(), function)?.to_lowercase()),
        Function::Upper => Value::String(text(next(), function)?.to_uppercase()),
        Function::Trim => Value::String(text(next(), function)?.trim().to_string()),
        Function::ToString => match next() {
            Value::Null => Value::String(String::new()),
            other => Value::String(other.to_text()),
        },
        Function::Base64Encode => Value::String(STANDARD.encode(text(next(), function)?)),
        Function::Base64UrlEncode => Value::String(URL_SAFE_NO_PAD.encode(text(next(), function)?)),
        Function::Base64Decode | Function::Base64UrlDecode => {
            let encoded = text(next(), function)?;
            let trimmed = encoded.trim().trim_end_matches('=');
            let bytes = if function == Function::Base64Decode {
                base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed)
            } else {
                URL_SAFE_NO_PAD.decode(trimmed)
            }
            .map_err(|_| format!("`{}`: the text is not base64", function.name()))?;
            Value::String(String::from_utf8(bytes).map_err(|_| {
                format!(
                    "`{}`: the decoded bytes are not UTF-8 text",
                    function.name()
                )
            })?)
        }
        Function::UrlEncode => Value::String(
            percent_encoding::utf8_percent_encode(&text(next(), function)?, UNRESERVED).to_string(),
        ),
        Function::JsonParse => {
            Value::Json(serde_json::from_str(&text(next(), function)?).map_err(|e| {
                format!(
                    "`json_parse`: not JSON (line {}, column {})",
                    e.line(),
                    e.column()
                )
            })?)
        }
        Function::JsonString => Value::String(next().to_json().to_string()),
        Function::JsonPath => {
            let value = next().to_json();
            let path = text(next(), function)?;
            let path = serde_json_path::JsonPath::parse(&path)
                .map_err(|_| "`json_path`: the path is not an RFC 9535 JSONPath".to_string())?;
            path.query(&value)
                .first()
                .map_or(Value::Null, |found| Value::Json(found.clone()))
        }
        Function::Sha256 => Value::String(hex(&sha2::Sha256::digest(text(next(), function)?))),
        Function::HmacSha256 => {
            let key = text(next(), function)?;
            let message = text(next(), function)?;
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes());
            Value::String(hex(ring::hmac::sign(&key, message.as_bytes()).as_ref()))
        }
        Function::JwtClaims => {
            let token = text(next(), function)?;
            match crate::oauth::tokens::claims(&token) {
                Some(claims) => Value::Json(serde_json::Value::Object(claims)),
                None => return Err("`jwt_claims`: the text is not a JWT".into()),
            }
        }
        Function::Uuid => Value::String(uuid_v4()?),
        Function::Now => Value::Time(chrono::Utc::now()),
        Function::Unix => match next() {
            Value::Time(t) => Value::Number(t.timestamp_millis() as f64 / 1000.0),
            other => return Err(format!("`unix` takes a time, not a {}", other.kind())),
        },
        Function::FromUnix => {
            let seconds = next()
                .as_number()
                .ok_or("`from_unix` takes a number of seconds")?;
            Value::Time(time_of_unix(seconds).ok_or("`from_unix`: the time is out of range")?)
        }
        Function::Seconds => match next() {
            Value::Duration(d) => Value::Number(super::value::seconds_of(d)),
            other => {
                return Err(format!(
                    "`seconds` takes a duration, not a {}",
                    other.kind()
                ));
            }
        },
    })
}

/// RFC 3986's unreserved characters stay; everything else is encoded.
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The text of a string argument (a JSON string counts).
fn text(value: Value, function: Function) -> Result<String, String> {
    match value {
        Value::String(s) | Value::Json(serde_json::Value::String(s)) => Ok(s),
        other => Err(format!(
            "`{}` takes a string, not a {}",
            function.name(),
            other.kind()
        )),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// A version 4 UUID from the system's random source.
fn uuid_v4() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|_| "the system's random source failed".to_string())?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h = hex(&bytes);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::String(text.into())
    }

    fn call_text(function: Function, args: &[&str]) -> String {
        match call(function, args.iter().map(|a| s(a)).collect()).unwrap() {
            Value::String(out) => out,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn digests_match_the_published_vectors() {
        // FIPS 180-2 appendix B.1.
        assert_eq!(
            call_text(Function::Sha256, &["abc"]),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // RFC 4231 test case 2.
        assert_eq!(
            call_text(
                Function::HmacSha256,
                &["Jefe", "what do ya want for nothing?"]
            ),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn base64_forms_round_trip() {
        assert_eq!(
            call_text(Function::Base64Encode, &["id:s3cret"]),
            "aWQ6czNjcmV0"
        );
        assert_eq!(
            call_text(Function::Base64Decode, &["aWQ6czNjcmV0"]),
            "id:s3cret"
        );
        // RFC 4648 section 10 vectors, padded and not.
        assert_eq!(call_text(Function::Base64Encode, &["fo"]), "Zm8=");
        assert_eq!(call_text(Function::Base64Decode, &["Zm8="]), "fo");
        assert_eq!(call_text(Function::Base64Decode, &["Zm8"]), "fo");
        assert_eq!(
            call_text(Function::Base64UrlEncode, &["\u{fb}\u{ff}"]),
            "w7vDvw"
        );
        assert_eq!(
            call_text(Function::Base64UrlDecode, &["w7vDvw"]),
            "\u{fb}\u{ff}"
        );
        assert!(call(Function::Base64Decode, vec![s("not base64!")]).is_err());
    }

    #[test]
    fn url_encode_keeps_only_unreserved_characters() {
        assert_eq!(
            call_text(Function::UrlEncode, &["a b&c=d/é~_.-"]),
            "a%20b%26c%3Dd%2F%C3%A9~_.-"
        );
    }

    #[test]
    fn null_goes_through_and_default_replaces_it() {
        assert_eq!(call(Function::Lower, vec![Value::Null]), Ok(Value::Null));
        assert_eq!(
            call(Function::Default, vec![Value::Null, s("x")]),
            Ok(s("x"))
        );
        assert_eq!(call(Function::Default, vec![s("  "), s("x")]), Ok(s("x")));
        assert_eq!(call(Function::Default, vec![s("a"), s("x")]), Ok(s("a")));
        assert_eq!(
            call(Function::Len, vec![Value::Null]),
            Ok(Value::Number(0.0))
        );
        assert_eq!(call(Function::ToString, vec![Value::Null]), Ok(s("")));
    }

    #[test]
    fn json_functions() {
        let parsed = call(Function::JsonParse, vec![s(r#"{"a": [1, 2]}"#)]).unwrap();
        assert_eq!(parsed, Value::Json(serde_json::json!({"a": [1, 2]})));
        assert_eq!(
            call(Function::Len, vec![parsed.clone()]),
            Ok(Value::Number(1.0))
        );
        assert_eq!(
            call(Function::JsonString, vec![parsed]),
            Ok(s(r#"{"a":[1,2]}"#))
        );
        assert!(call(Function::JsonParse, vec![s("{")]).is_err());
        assert_eq!(
            call(Function::Len, vec![s("héllo")]),
            Ok(Value::Number(5.0))
        );
    }

    #[test]
    fn jwt_claims_reads_without_verifying() {
        let token = format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"exp":1700000000,"sub":"a"}"#)
        );
        let claims = call(Function::JwtClaims, vec![s(&token)]).unwrap();
        assert_eq!(
            claims,
            Value::Json(serde_json::json!({"exp": 1700000000, "sub": "a"}))
        );
        assert!(call(Function::JwtClaims, vec![s("opaque-token")]).is_err());
    }

    #[test]
    fn times_and_durations() {
        let t = call(Function::FromUnix, vec![Value::Number(1_700_000_000.0)]).unwrap();
        assert_eq!(t.to_text(), "2023-11-14T22:13:20Z");
        assert_eq!(
            call(Function::Unix, vec![t]),
            Ok(Value::Number(1_700_000_000.0))
        );
        let five = Value::Duration(chrono::TimeDelta::minutes(5));
        assert_eq!(
            call(Function::Seconds, vec![five]),
            Ok(Value::Number(300.0))
        );
        assert!(matches!(call(Function::Now, vec![]), Ok(Value::Time(_))));
    }

    #[test]
    fn uuids_are_version_4_and_differ() {
        let a = call_text(Function::Uuid, &[]);
        let b = call_text(Function::Uuid, &[]);
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
    }
}
