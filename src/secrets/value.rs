//! A secret value: zeroed when dropped, never shown by `Debug` or `Display`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

/// The text of a secret. The only way to see it is [`SecretValue::expose`],
/// so every place that reveals one is easy to find.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Zeroizing<String>);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> Self {
        SecretValue(Zeroizing::new(value.into()))
    }

    /// The value itself. Call only where the user asked to see or use it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(***)")
    }
}

impl Serialize for SecretValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'a> Deserialize<'a> for SecretValue {
    fn deserialize<D: Deserializer<'a>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = SecretValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            // The default error for a wrong type would quote the value: say
            // only what kind of value it was.
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SecretValue, E> {
                Ok(SecretValue::new(v))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<SecretValue, E> {
                Ok(SecretValue(Zeroizing::new(v)))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<SecretValue, E> {
                Err(E::custom("a secret value must be a string, not a boolean"))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<SecretValue, E> {
                Err(E::custom("a secret value must be a string, not a number"))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<SecretValue, E> {
                Err(E::custom("a secret value must be a string, not a number"))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<SecretValue, E> {
                Err(E::custom("a secret value must be a string, not a number"))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                _: A,
            ) -> Result<SecretValue, A::Error> {
                Err(serde::de::Error::custom(
                    "a secret value must be a string, not an object",
                ))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                _: A,
            ) -> Result<SecretValue, A::Error> {
                Err(serde::de::Error::custom(
                    "a secret value must be a string, not a list",
                ))
            }
        }
        // `any`, not `string`: a deserializer that meets a wrong type then calls
        // the visitor, whose errors never quote the value.
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let value = SecretValue::new("hunter2-very-secret");
        assert_eq!(format!("{value:?}"), "SecretValue(***)");
        assert!(!format!("{:?}", Some(&value)).contains("hunter2"));
    }

    #[test]
    fn wrong_types_are_rejected_without_quoting_them() {
        let error = serde_json::from_str::<SecretValue>("4242424242").unwrap_err();
        assert!(!error.to_string().contains("4242424242"), "{error}");
        assert!(error.to_string().contains("not a number"));
    }
}
