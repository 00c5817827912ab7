//! JSON Web Keys (RFC 7517, RFC 7518 §6, RFC 8037): the private JWK a
//! secret may hold, read into a [`SigningKey`].
//!
//! A JWK is JSON with base64url members, not ASN.1: `serde_json` and
//! `base64` read it, and *ring* checks that the members belong together.
//! (The curve crates' JWK types cover EC keys only and fail with one
//! opaque error; svc names the member that is wrong.)

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::jwt::{Algorithm, RsaParts, SigningKey};
use super::key_error::{KeyError, shown};
use super::keys::{KeyMaterial, left_padded};

/// A JWK set (its `keys`): the one private key in it.
pub(super) fn parse_jwks(keys: &Value) -> Result<KeyMaterial, KeyError> {
    let Value::Array(keys) = keys else {
        return Err(KeyError::JwkMember {
            member: "keys",
            problem: "is not an array",
        });
    };
    let private: Vec<&Map<String, Value>> = keys
        .iter()
        .filter_map(Value::as_object)
        .filter(|key| key.contains_key("d"))
        .collect();
    match private.as_slice() {
        [one] => parse_jwk(one),
        [] => Err(KeyError::JwksWithoutPrivateKey { keys: keys.len() }),
        many => Err(KeyError::JwksAmbiguous {
            count: many.len(),
            kids: many
                .iter()
                .filter_map(|key| key.get("kid")?.as_str())
                .map(shown)
                .collect(),
        }),
    }
}

/// A private JWK: `RSA`, `EC` on P-256, or `OKP` Ed25519.
pub(super) fn parse_jwk(jwk: &Map<String, Value>) -> Result<KeyMaterial, KeyError> {
    let kty = jwk_str(jwk, "kty")?.ok_or(KeyError::JwkMember {
        member: "kty",
        problem: "is missing",
    })?;
    if kty == "oct" {
        return Err(KeyError::UnsupportedKeyType {
            kind: "symmetric (`oct`)".into(),
        });
    }
    if !matches!(kty, "RSA" | "EC" | "OKP") {
        return Err(KeyError::UnsupportedKeyType {
            kind: format!("`{}`", shown(kty)),
        });
    }
    let crv = jwk_str(jwk, "crv")?;
    match (kty, crv) {
        ("EC", Some(crv)) if crv != "P-256" => {
            return Err(KeyError::UnsupportedCurve { curve: shown(crv) });
        }
        ("OKP", Some(crv)) if crv != "Ed25519" => {
            return Err(KeyError::UnsupportedKeyType {
                kind: format!("`{}`", shown(crv)),
            });
        }
        ("EC" | "OKP", None) => {
            return Err(KeyError::JwkMember {
                member: "crv",
                problem: "is missing",
            });
        }
        _ => {}
    }
    if !jwk.contains_key("d") {
        return Err(KeyError::PublicOnly);
    }
    let key = match kty {
        "RSA" => rsa_from_jwk(jwk)?,
        "EC" => p256_from_jwk(jwk)?,
        _ => ed25519_from_jwk(jwk)?,
    };
    let alg = match jwk_str(jwk, "alg")? {
        Some(name) => {
            let alg = Algorithm::from_name(name)
                .ok_or_else(|| KeyError::UnknownAlgorithm { name: shown(name) })?;
            key.check_algorithm(alg)?;
            Some(alg)
        }
        None => None,
    };
    Ok(KeyMaterial {
        kid: jwk_str(jwk, "kid")?.map(str::to_owned),
        alg,
        ..KeyMaterial::bare(key)
    })
}

fn rsa_from_jwk(jwk: &Map<String, Value>) -> Result<SigningKey, KeyError> {
    if jwk.contains_key("oth") {
        return Err(KeyError::UnsupportedKeyType {
            kind: "multi-prime RSA".into(),
        });
    }
    // RFC 7518 makes the CRT members optional, but ring signs with them.
    let [n, e, d, p, q, dp, dq, qi] =
        ["n", "e", "d", "p", "q", "dp", "dq", "qi"].map(|member| jwk_bytes(jwk, member));
    let (n, e, d, p, q, dp, dq, qi) = (n?, e?, d?, p?, q?, dp?, dq?, qi?);
    SigningKey::rsa(
        &RsaParts {
            n: &n,
            e: &e,
            d: &d,
            p: &p,
            q: &q,
            dp: &dp,
            dq: &dq,
            qi: &qi,
        },
        "RSA JWK",
    )
}

fn p256_from_jwk(jwk: &Map<String, Value>) -> Result<SigningKey, KeyError> {
    let too_long = |member| KeyError::JwkMember {
        member,
        problem: "is longer than a P-256 value (32 bytes)",
    };
    // RFC 7518 asks for full-length values; shorter ones are padded.
    let x = left_padded::<32>(&jwk_bytes(jwk, "x")?).ok_or(too_long("x"))?;
    let y = left_padded::<32>(&jwk_bytes(jwk, "y")?).ok_or(too_long("y"))?;
    let d = left_padded::<32>(&jwk_bytes(jwk, "d")?).ok_or(too_long("d"))?;
    let public = [&[0x04][..], &x[..], &y[..]].concat();
    SigningKey::p256(&d[..], &public, "EC JWK")
}

fn ed25519_from_jwk(jwk: &Map<String, Value>) -> Result<SigningKey, KeyError> {
    let x = jwk_bytes(jwk, "x")?;
    let d = jwk_bytes(jwk, "d")?;
    SigningKey::ed25519(&d, Some(&x), "Ed25519 JWK")
}

/// A string member, `None` when absent or null.
fn jwk_str<'a>(
    jwk: &'a Map<String, Value>,
    member: &'static str,
) -> Result<Option<&'a str>, KeyError> {
    match jwk.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(KeyError::JwkMember {
            member,
            problem: "is not a string",
        }),
    }
}

/// A required base64url member, decoded. Padding is tolerated.
fn jwk_bytes(
    jwk: &Map<String, Value>,
    member: &'static str,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let text = jwk_str(jwk, member)?.ok_or(KeyError::JwkMember {
        member,
        problem: "is missing",
    })?;
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map(Zeroizing::new)
        // The decoder's error names the offending byte: not shown.
        .map_err(|_| KeyError::JwkMember {
            member,
            problem: "is not base64url",
        })
}

#[cfg(test)]
mod tests {
    use ring::signature::{Ed25519KeyPair, KeyPair as _};
    use serde_json::json;

    use super::*;
    use crate::oauth::jwt::{client_assertion_claims, sign};
    use crate::oauth::test_keys::*;

    fn assert_signs(material: &KeyMaterial, alg: Algorithm) {
        let claims = client_assertion_claims("client-1", "https://as.example/token", NOW);
        let jws = sign(&material.key, alg, material.kid.as_deref(), &claims).unwrap();
        verify(&jws, &material.key);
    }

    fn ed25519_jwk() -> Map<String, Value> {
        let (pkcs8, seed) = ed25519();
        let public = Ed25519KeyPair::from_pkcs8(&pkcs8)
            .unwrap()
            .public_key()
            .as_ref()
            .to_vec();
        json!({"kty": "OKP", "crv": "Ed25519", "x": b64url(&public), "d": b64url(&seed)})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn rsa_jwk_is_read() {
        let mut jwk = rsa_jwk();
        jwk.insert("kid".into(), "rsa-1".into());
        jwk.insert("alg".into(), "PS256".into());
        jwk.insert("use".into(), "sig".into());
        let material = parse(&Value::Object(jwk).to_string());
        assert_eq!(material.kid.as_deref(), Some("rsa-1"));
        assert_eq!(material.alg, Some(Algorithm::Ps256));
        assert_eq!(
            material.key.public_key(),
            parse(RSA_PKCS8_PEM).key.public_key()
        );
        assert_signs(&material, Algorithm::Ps256);
    }

    #[test]
    fn p256_jwk_is_read_and_checked() {
        let mut jwk = p256_jwk(&p256_pkcs8());
        jwk.insert("kid".into(), "ec-1".into());
        let material = parse(&Value::Object(jwk.clone()).to_string());
        assert_eq!(material.kid.as_deref(), Some("ec-1"));
        assert_eq!(material.alg, None);
        assert_signs(&material, Algorithm::Es256);
        // A key whose x does not fit d.
        let other = p256_jwk(&p256_pkcs8());
        jwk.insert("x".into(), other["x"].clone());
        let err = parse_err(&Value::Object(jwk.clone()).to_string());
        assert!(matches!(err, KeyError::Rejected { .. }), "{err:?}");
        jwk.insert("x".into(), b64url(&[1; 33]).into());
        let err = parse_err(&Value::Object(jwk).to_string());
        assert_eq!(
            err.to_string(),
            "the JWK member `x` is longer than a P-256 value (32 bytes)"
        );
    }

    #[test]
    fn ed25519_jwk_is_read() {
        let mut jwk = ed25519_jwk();
        jwk.insert("alg".into(), "EdDSA".into());
        let material = parse(&Value::Object(jwk).to_string());
        assert_eq!(material.alg, Some(Algorithm::EdDsa));
        assert_signs(&material, Algorithm::EdDsa);
    }

    #[test]
    fn jwks_with_one_private_key_is_accepted_and_two_are_refused() {
        let private = Value::Object(p256_jwk(&p256_pkcs8()));
        let mut public = rsa_jwk();
        for member in ["d", "p", "q", "dp", "dq", "qi"] {
            public.remove(member);
        }
        let public = Value::Object(public);
        let material = parse(&json!({"keys": [public, private]}).to_string());
        assert_signs(&material, Algorithm::Es256);

        let mut second = p256_jwk(&p256_pkcs8());
        second.insert("kid".into(), "ec-2".into());
        let err = parse_err(&json!({"keys": [private, public, second]}).to_string());
        assert!(
            matches!(err, KeyError::JwksAmbiguous { count: 2, .. }),
            "{err:?}"
        );
        assert!(err.help().contains("`ec-2`"), "{}", err.help());

        let err = parse_err(&json!({"keys": [public]}).to_string());
        assert!(
            matches!(err, KeyError::JwksWithoutPrivateKey { keys: 1 }),
            "{err:?}"
        );
    }

    #[test]
    fn jwk_alg_must_fit_the_key() {
        let mut jwk = rsa_jwk();
        jwk.insert("alg".into(), "ES256".into());
        let err = parse_err(&Value::Object(jwk.clone()).to_string());
        assert!(matches!(err, KeyError::AlgorithmMismatch { .. }), "{err:?}");
        for alg in ["RS384", "PS256"] {
            jwk.insert("alg".into(), alg.into());
            assert_eq!(
                parse(&Value::Object(jwk.clone()).to_string())
                    .alg
                    .map(Algorithm::name),
                Some(alg)
            );
        }
        jwk.insert("alg".into(), "PS512".into());
        let err = parse_err(&Value::Object(jwk).to_string());
        assert_eq!(
            err.to_string(),
            "the JWK's `alg` is `PS512`, which svc does not sign with"
        );
        assert_eq!(
            err.help(),
            "svc signs with `RS256`, `RS384`, `PS256`, `ES256` or `EdDSA`; remove the JWK's \
             `alg` or set it to one of them"
        );
    }

    #[test]
    fn public_only_and_other_jwks_are_refused() {
        let mut jwk = p256_jwk(&p256_pkcs8());
        jwk.remove("d");
        let err = parse_err(&Value::Object(jwk).to_string());
        assert_eq!(err.to_string(), "this JWK holds only the public key");
        let err = parse_err(r#"{"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA", "d": "AA"}"#);
        assert!(
            matches!(&err, KeyError::UnsupportedCurve { curve } if curve == "P-384"),
            "{err:?}"
        );
        let err = parse_err(r#"{"kty": "OKP", "crv": "Ed448", "x": "AA", "d": "AA"}"#);
        assert_eq!(err.to_string(), "svc cannot sign with `Ed448` keys");
        let err = parse_err(r#"{"kty": "oct", "k": "c2VjcmV0"}"#);
        assert!(
            matches!(err, KeyError::UnsupportedKeyType { .. }),
            "{err:?}"
        );
        let mut multi = rsa_jwk();
        multi.insert("oth".into(), json!([]));
        let err = parse_err(&Value::Object(multi).to_string());
        assert_eq!(err.to_string(), "svc cannot sign with multi-prime RSA keys");
    }
}
