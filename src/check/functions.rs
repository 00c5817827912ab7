//! The functions of the language: their names, what they take and what
//! they give. The checker types calls with these signatures; the
//! interpreter (`run::functions`) evaluates each one.

use crate::syntax::ast::Type;

/// What an argument may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    /// A value of this type (or a `json` value that holds one).
    Of(Type),
    /// Any value.
    Any,
}

/// What a call gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Returns {
    Of(Type),
    /// The type of the arguments (`default(x, y)`).
    Argument,
}

/// Declares the functions: variant, name, parameters, result, summary.
macro_rules! functions {
    ($($variant:ident => $name:literal, [$($param:expr),*], $returns:expr, $summary:literal;)*) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Function {
            $($variant,)*
        }

        impl Function {
            pub const ALL: &'static [Function] = &[$(Function::$variant,)*];

            pub fn from_name(name: &str) -> Option<Function> {
                match name {
                    $($name => Some(Function::$variant),)*
                    _ => None,
                }
            }

            pub fn name(self) -> &'static str {
                match self {
                    $(Function::$variant => $name,)*
                }
            }

            pub fn params(self) -> &'static [Param] {
                match self {
                    $(Function::$variant => &[$($param),*],)*
                }
            }

            pub fn returns(self) -> Returns {
                match self {
                    $(Function::$variant => $returns,)*
                }
            }

            /// One sentence on what it gives.
            pub fn summary(self) -> &'static str {
                match self {
                    $(Function::$variant => $summary,)*
                }
            }
        }
    };
}

use Param::{Any, Of};
use Type::{Bool, Duration, Json, Number, String, Time};

functions! {
    HasValue => "has_value", [Any], Returns::Of(Bool), "Whether a value is there: not null, not an empty or blank string.";
    Default => "default", [Any, Any], Returns::Argument, "The first argument, or the second when the first has no value.";
    Len => "len", [Any], Returns::Of(Number), "The characters of a string, or the items of a JSON array or object.";
    Lower => "lower", [Of(String)], Returns::Of(String), "The string in lower case.";
    Upper => "upper", [Of(String)], Returns::Of(String), "The string in upper case.";
    Trim => "trim", [Of(String)], Returns::Of(String), "The string without leading and trailing whitespace.";
    ToString => "string", [Any], Returns::Of(String), "The text of any value, as it goes into a URL or a form.";
    Base64Encode => "base64_encode", [Of(String)], Returns::Of(String), "Standard base64 (RFC 4648 section 4) of the string's UTF-8 bytes, padded.";
    Base64Decode => "base64_decode", [Of(String)], Returns::Of(String), "The text standard base64 holds (padding optional); an error unless it is UTF-8.";
    Base64UrlEncode => "base64url_encode", [Of(String)], Returns::Of(String), "URL-safe base64 (RFC 4648 section 5) without padding.";
    Base64UrlDecode => "base64url_decode", [Of(String)], Returns::Of(String), "The text URL-safe base64 holds (padding optional).";
    UrlEncode => "url_encode", [Of(String)], Returns::Of(String), "Percent-encoding of everything but the unreserved characters (RFC 3986).";
    JsonParse => "json_parse", [Of(String)], Returns::Of(Json), "The JSON value the string holds.";
    JsonString => "json_string", [Any], Returns::Of(String), "The value as compact JSON text.";
    JsonPath => "json_path", [Of(Json), Of(String)], Returns::Of(Json), "The first match of an RFC 9535 JSONPath (`\"$.items[0].id\"`) in the value, or null.";
    Sha256 => "sha256", [Of(String)], Returns::Of(String), "The SHA-256 digest of the string, in lower-case hex.";
    HmacSha256 => "hmac_sha256", [Of(String), Of(String)], Returns::Of(String), "HMAC-SHA256 (RFC 2104) of the message (second) with the key (first), in lower-case hex.";
    JwtClaims => "jwt_claims", [Of(String)], Returns::Of(Json), "The claims of a JWT, decoded without verifying its signature (to read `exp`).";
    Uuid => "uuid", [], Returns::Of(String), "A random UUID (version 4).";
    Now => "now", [], Returns::Of(Time), "The current time.";
    Unix => "unix", [Of(Time)], Returns::Of(Number), "Seconds since 1970-01-01T00:00:00Z.";
    FromUnix => "from_unix", [Of(Number)], Returns::Of(Time), "The time this many seconds after 1970-01-01T00:00:00Z (a JWT's `exp`).";
    Seconds => "seconds", [Of(Duration)], Returns::Of(Number), "The duration in seconds (`expires_in` of an update).";
}

impl Function {
    /// How a call is written: `hmac_sha256(string, string) -> string`.
    pub fn signature(self) -> std::string::String {
        let params: Vec<&str> = self
            .params()
            .iter()
            .map(|p| match p {
                Param::Of(t) => t.name(),
                Param::Any => "any",
            })
            .collect();
        let returns = match self.returns() {
            Returns::Of(t) => t.name(),
            Returns::Argument => "the arguments' type",
        };
        format!("{}({}) -> {returns}", self.name(), params.join(", "))
    }

    /// The names, for did-you-mean.
    pub fn names() -> impl Iterator<Item = &'static str> {
        Function::ALL.iter().map(|f| f.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_distinct() {
        let mut seen = std::collections::BTreeSet::new();
        for function in Function::ALL {
            assert_eq!(Function::from_name(function.name()), Some(*function));
            assert!(seen.insert(function.name()));
            assert!(function.summary().ends_with('.'), "{}", function.name());
        }
    }

    #[test]
    fn every_function_is_documented_in_docs_language() {
        let docs = include_str!("../../docs/language.md");
        for function in Function::ALL {
            let row = format!("| `{}` |", function.signature());
            assert!(
                docs.contains(&row),
                "docs/language.md has no row `{row}` in its table of functions"
            );
        }
    }
}
