//! Values at run time, and their conversion to the declared types.

use std::fmt;

use crate::syntax::ast::Type;

/// A value of a variable or an expression.
#[derive(Clone, PartialEq)]
pub enum Value {
    Null,
    String(String),
    Number(f64),
    Bool(bool),
    Json(serde_json::Value),
    /// A length of time, possibly negative (`then - now()`).
    Duration(chrono::TimeDelta),
    Time(chrono::DateTime<chrono::Utc>),
}

// Values may hold secrets: `Debug` shows the kind and size, never the text.
impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("Null"),
            Value::String(s) => write!(f, "String(len {})", s.len()),
            Value::Number(_) => f.write_str("Number"),
            Value::Bool(_) => f.write_str("Bool"),
            Value::Json(_) => f.write_str("Json"),
            Value::Duration(_) => f.write_str("Duration"),
            Value::Time(_) => f.write_str("Time"),
        }
    }
}

impl Value {
    /// Not null, and not a string that is empty or only whitespace: a
    /// blank token is no token.
    pub fn has_value(&self) -> bool {
        match self {
            Value::Null => false,
            Value::String(s) => !s.trim().is_empty(),
            Value::Json(serde_json::Value::Null) => false,
            Value::Json(serde_json::Value::String(s)) => !s.trim().is_empty(),
            _ => true,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null | Value::Json(serde_json::Value::Null))
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::String(_) => "string",
            Value::Number(_) => "number",
            Value::Bool(_) => "bool",
            Value::Json(_) => "json",
            Value::Duration(_) => "duration",
            Value::Time(_) => "time",
        }
    }

    /// The text of a value in a string, a URL, a header or a form field.
    pub fn to_text(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::String(s) => s.clone(),
            Value::Number(n) => format_number(*n),
            Value::Bool(b) => b.to_string(),
            Value::Json(serde_json::Value::String(s)) => s.clone(),
            Value::Json(v) => v.to_string(),
            // What an API's `expires_in` takes: seconds.
            Value::Duration(d) => format_number(seconds_of(*d)),
            Value::Time(t) => format_time(*t),
        }
    }

    /// The value as JSON, for `json { }` bodies and `--output json`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Number(n) => number_json(*n),
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Json(v) => v.clone(),
            Value::Duration(d) => number_json(seconds_of(*d)),
            Value::Time(t) => serde_json::Value::String(format_time(*t)),
        }
    }

    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            Value::Json(serde_json::Value::Number(n)) => n.as_f64(),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            Value::Json(serde_json::Value::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    /// Equality across the ways one value can be held: `Json("a")` equals
    /// `String("a")`.
    pub fn equals(&self, other: &Value) -> bool {
        self.to_json() == other.to_json()
    }

    /// Converts a JSON value (from a response) to a variable's type. A
    /// `string` takes only a JSON string: a number or `true` where a token
    /// was expected is a broken answer, not a token.
    pub fn from_json(json: &serde_json::Value, target: Type) -> Result<Value, String> {
        use serde_json::Value as J;
        match (target, json) {
            (_, J::Null) => Ok(Value::Null),
            (Type::Json, v) => Ok(Value::Json(v.clone())),
            (Type::String, J::String(s)) => Ok(Value::String(s.clone())),
            (Type::Number, J::Number(n)) => n
                .as_f64()
                .map(Value::Number)
                .ok_or_else(|| "the number is out of range".to_string()),
            (Type::Number, J::String(s)) => parse_number(s).map(Value::Number).ok_or_else(|| {
                format!(
                    "a string of {} characters that is not a number",
                    s.chars().count()
                )
            }),
            (Type::Duration, J::Number(n)) => n
                .as_f64()
                .and_then(duration_of_seconds)
                .map(Value::Duration)
                .ok_or_else(|| "a number of seconds out of range".to_string()),
            (Type::Duration, J::String(s)) => parse_duration(s).map(Value::Duration),
            (Type::Time, J::Number(n)) => n
                .as_f64()
                .and_then(time_of_unix)
                .map(Value::Time)
                .ok_or_else(|| "a Unix time out of range".to_string()),
            (Type::Time, J::String(s)) => parse_time(s).map(Value::Time),
            (Type::Bool, J::Bool(b)) => Ok(Value::Bool(*b)),
            (Type::Bool, J::String(s)) => match s.trim() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err("a string that is not `true` or `false`".to_string()),
            },
            (_, other) => Err(format!("a JSON {}", json_kind(other))),
        }
    }

    /// Converts text (a header, a body) to a variable's type.
    pub fn from_text(text: &str, target: Type) -> Result<Value, String> {
        match target {
            Type::String => Ok(Value::String(text.to_string())),
            Type::Json => Ok(Value::Json(
                serde_json::from_str(text)
                    .unwrap_or_else(|_| serde_json::Value::String(text.to_string())),
            )),
            Type::Number => parse_number(text).map(Value::Number).ok_or_else(|| {
                format!(
                    "text of {} characters that is not a number",
                    text.chars().count()
                )
            }),
            Type::Bool => match text.trim() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err("text that is not `true` or `false`".to_string()),
            },
            Type::Duration => parse_duration(text).map(Value::Duration),
            Type::Time => parse_time(text).map(Value::Time),
        }
    }

    /// Converts a value computed by the script to a variable's type.
    pub fn into_type(self, target: Type) -> Result<Value, String> {
        match (&self, target) {
            (Value::Null, _) => Ok(Value::Null),
            (_, Type::Json) => Ok(Value::Json(self.to_json())),
            (Value::String(_), Type::String)
            | (Value::Number(_), Type::Number)
            | (Value::Bool(_), Type::Bool)
            | (Value::Duration(_), Type::Duration)
            | (Value::Time(_), Type::Time) => Ok(self),
            (Value::Json(j), t) => Value::from_json(j, t),
            (Value::Number(_) | Value::Duration(_) | Value::Time(_), Type::String) => {
                Ok(Value::String(self.to_text()))
            }
            (Value::Duration(d), Type::Number) => Ok(Value::Number(seconds_of(*d))),
            (Value::Number(n), Type::Duration) => duration_of_seconds(*n)
                .map(Value::Duration)
                .ok_or_else(|| "a number of seconds out of range".to_string()),
            (Value::String(s), Type::Duration) => parse_duration(s).map(Value::Duration),
            (Value::String(s), Type::Time) => parse_time(s).map(Value::Time),
            (Value::String(s), Type::Number) => parse_number(s)
                .map(Value::Number)
                .ok_or_else(|| "a string that is not a number".to_string()),
            (v, t) => Err(format!("a {} cannot become a {}", v.kind(), t.name())),
        }
    }
}

pub(super) fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// Seconds, with milliseconds as the fraction.
pub fn seconds_of(d: chrono::TimeDelta) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

/// A duration of `seconds` (to the millisecond), if it is in range.
pub fn duration_of_seconds(seconds: f64) -> Option<chrono::TimeDelta> {
    let millis = (seconds * 1000.0).round();
    // TimeDelta holds ±i64::MAX ms; stay well inside what a time can add.
    (millis.is_finite() && millis.abs() < 1e15)
        .then(|| chrono::TimeDelta::try_milliseconds(millis as i64))
        .flatten()
}

/// The time `seconds` after the Unix epoch, if it is in range.
pub fn time_of_unix(seconds: f64) -> Option<chrono::DateTime<chrono::Utc>> {
    let millis = (seconds * 1000.0).round();
    (millis.is_finite() && millis.abs() < 1e15)
        .then(|| chrono::DateTime::from_timestamp_millis(millis as i64))
        .flatten()
}

/// `2026-11-30T10:00:00Z` (milliseconds only when there are some).
pub fn format_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// `5m`, `90s` (svc's form), or a number of seconds.
fn parse_duration(text: &str) -> Result<chrono::TimeDelta, String> {
    let text = text.trim();
    if let Some(seconds) = parse_number(text) {
        return duration_of_seconds(seconds).ok_or_else(|| "a duration out of range".to_string());
    }
    crate::syntax::duration::parse(text)
        .ok()
        .and_then(|d| chrono::TimeDelta::from_std(d).ok())
        .ok_or_else(|| {
            format!(
                "text of {} characters that is not a duration (`5m`, or seconds)",
                text.chars().count()
            )
        })
}

/// An RFC 3339 time.
fn parse_time(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| {
            format!(
                "text of {} characters that is not an RFC 3339 time",
                text.chars().count()
            )
        })
}

fn parse_number(text: &str) -> Option<f64> {
    let n: f64 = text.trim().parse().ok()?;
    n.is_finite().then_some(n)
}

/// `3600`, not `3600.0`; `0.5` as is.
pub fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

fn number_json(n: f64) -> serde_json::Value {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        serde_json::Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn converts_response_values_to_declared_types() {
        assert_eq!(
            Value::from_json(&json!("3600"), Type::Number),
            Ok(Value::Number(3600.0))
        );
        assert_eq!(
            Value::from_json(&json!(3600), Type::Number),
            Ok(Value::Number(3600.0))
        );
        assert!(Value::from_json(&json!(3600), Type::String).is_err());
        assert!(Value::from_json(&json!(true), Type::String).is_err());
        assert_eq!(
            Value::from_json(&json!(null), Type::String),
            Ok(Value::Null)
        );
        assert!(Value::from_json(&json!("soon"), Type::Number).is_err());
        assert!(Value::from_json(&json!({"a": 1}), Type::String).is_err());
        assert_eq!(
            Value::from_json(&json!("true"), Type::Bool),
            Ok(Value::Bool(true))
        );
    }

    #[test]
    fn has_value_means_neither_null_nor_empty() {
        assert!(!Value::Null.has_value());
        assert!(!Value::String(String::new()).has_value());
        assert!(Value::String("x".into()).has_value());
        assert!(Value::Number(0.0).has_value());
        assert!(!Value::String(" \t\n".into()).has_value());
        assert!(!Value::Json(json!("  ")).has_value());
    }

    #[test]
    fn debug_hides_text() {
        assert_eq!(
            format!("{:?}", Value::String("s3cret".into())),
            "String(len 6)"
        );
    }

    #[test]
    fn numbers_print_without_a_useless_fraction() {
        assert_eq!(format_number(3600.0), "3600");
        assert_eq!(format_number(0.25), "0.25");
    }
}
