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
        }
    }

    /// Converts a value computed by the script to a variable's type.
    pub fn into_type(self, target: Type) -> Result<Value, String> {
        match (&self, target) {
            (Value::Null, _) => Ok(Value::Null),
            (_, Type::Json) => Ok(Value::Json(self.to_json())),
            (Value::String(_), Type::String)
            | (Value::Number(_), Type::Number)
            | (Value::Bool(_), Type::Bool) => Ok(self),
            (Value::Json(j), t) => Value::from_json(j, t),
            (Value::Number(n), Type::String) => Ok(Value::String(format_number(*n))),
            (Value::String(s), Type::Number) => parse_number(s)
                .map(Value::Number)
                .ok_or_else(|| "a string that is not a number".to_string()),
            (v, t) => Err(format!("a {} cannot become a {}", v.kind(), t.name())),
        }
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
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
