//! JSON Web Keys (RFC 7517, RFC 7518 §6, RFC 8037): the private JWK a
//! secret may hold, read into a [`SigningKey`], and the public JWK of a
//! key, written for registering it with an authorization server.
//!
//! A JWK is JSON with base64url members, not ASN.1: `serde_json` and
//! `base64` read it, and *ring* checks that the members belong together.
//! (The curve crates' JWK types cover EC keys only and fail with one
//! opaque error; svc names the member that is wrong.)

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::jwt::{Algorithm, KeyType, PublicParts, RsaParts, SigningKey};
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

/// The public JWK of a key (RFC 7517 §4, RFC 7518 §6, RFC 8037 §2): what
/// an authorization server is given to verify its signatures. It has no
/// member for a private value: there is none to fill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicJwk {
    pub kty: &'static str,
    #[serde(rename = "use")]
    pub use_: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alg: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crv: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
}

impl PublicJwk {
    /// The public JWK of `key`, for signatures (`use: "sig"`), with `alg`
    /// and `kid` when given. `alg` must be one the key signs with.
    pub fn of(
        key: &SigningKey,
        alg: Option<Algorithm>,
        kid: Option<&str>,
    ) -> Result<PublicJwk, KeyError> {
        if let Some(alg) = alg {
            key.check_algorithm(alg)?;
        }
        let b64 = |bytes: &[u8]| Some(URL_SAFE_NO_PAD.encode(bytes));
        let mut jwk = PublicJwk {
            kty: "",
            use_: "sig",
            alg: alg.map(Algorithm::name),
            kid: kid.map(str::to_owned),
            crv: None,
            x: None,
            y: None,
            n: None,
            e: None,
        };
        match key.public_parts() {
            PublicParts::Rsa { n, e } => {
                jwk.kty = "RSA";
                jwk.n = b64(&n);
                jwk.e = b64(&e);
            }
            PublicParts::P256 { x, y } => {
                jwk.kty = "EC";
                jwk.crv = Some("P-256");
                jwk.x = b64(&x);
                jwk.y = b64(&y);
            }
            PublicParts::Ed25519 { x } => {
                jwk.kty = "OKP";
                jwk.crv = Some("Ed25519");
                jwk.x = b64(&x);
            }
        }
        Ok(jwk)
    }

    /// The `alg` a key with one algorithm has anyway; an RSA key signs
    /// with several, so it has none unless one is given.
    pub fn implied_algorithm(key: &SigningKey) -> Option<Algorithm> {
        match key.key_type() {
            KeyType::Rsa => None,
            KeyType::P256 | KeyType::Ed25519 => Some(key.default_algorithm()),
        }
    }
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

    /// ring takes CRT values that do not fit the key and fails only when
    /// it signs: the reader signs once, so such a key is refused where it
    /// is read. (`d` is not checked: ring never uses it.)
    #[test]
    fn rsa_jwk_whose_crt_values_do_not_fit_is_refused() {
        for member in ["dp", "dq", "qi"] {
            let mut jwk = rsa_jwk();
            let mut value = URL_SAFE_NO_PAD
                .decode(jwk[member].as_str().unwrap())
                .unwrap();
            let last = value.len() - 1;
            value[last] ^= 0x02;
            jwk.insert(member.into(), b64url(&value).into());
            let err = parse_err(&Value::Object(jwk).to_string());
            assert_eq!(
                err.to_string(),
                "the RSA JWK cannot be used: its parts do not belong together",
                "{member}"
            );
            assert_eq!(err.code(), "svc::key::invalid");
        }
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

    /// The public JWK of each key type has exactly the public members, and
    /// they are the key's.
    #[test]
    fn public_jwk_has_the_public_members_only() {
        let rsa = rsa_jwk();
        let material = parse(RSA_PKCS8_PEM);
        let jwk = PublicJwk::of(&material.key, None, None).unwrap();
        assert_eq!(
            serde_json::to_value(&jwk).unwrap(),
            json!({"kty": "RSA", "use": "sig", "n": rsa["n"], "e": rsa["e"]})
        );

        let ec = p256_jwk(&p256_pkcs8());
        let material = parse(&Value::Object(ec.clone()).to_string());
        let jwk = PublicJwk::of(&material.key, Some(Algorithm::Es256), Some("ec-1")).unwrap();
        assert_eq!(
            serde_json::to_value(&jwk).unwrap(),
            json!({"kty": "EC", "use": "sig", "alg": "ES256", "kid": "ec-1", "crv": "P-256",
                   "x": ec["x"], "y": ec["y"]})
        );

        let ed = ed25519_jwk();
        let material = parse(&Value::Object(ed.clone()).to_string());
        let jwk = PublicJwk::of(&material.key, None, None).unwrap();
        assert_eq!(
            serde_json::to_value(&jwk).unwrap(),
            json!({"kty": "OKP", "use": "sig", "crv": "Ed25519", "x": ed["x"]})
        );

        // What a key with one algorithm implies; RSA implies nothing.
        assert_eq!(
            PublicJwk::implied_algorithm(&material.key),
            Some(Algorithm::EdDsa)
        );
        assert_eq!(
            PublicJwk::implied_algorithm(&parse(RSA_PKCS8_PEM).key),
            None
        );
        // An `alg` the key cannot sign with is refused.
        let err = PublicJwk::of(&material.key, Some(Algorithm::Rs256), None).unwrap_err();
        assert_eq!(err.code(), "svc::key::algorithm");
    }

    /// The public JWK, read back as a public key, verifies what the
    /// private key signed: *ring* is given only the JWK's members.
    #[test]
    fn public_jwk_verifies_signatures() {
        use ring::signature::{
            ECDSA_P256_SHA256_FIXED, ED25519, RSA_PSS_2048_8192_SHA256, RsaPublicKeyComponents,
            UnparsedPublicKey,
        };
        let b64 = |jwk: &PublicJwk, member: &str| {
            let value = serde_json::to_value(jwk).unwrap();
            URL_SAFE_NO_PAD
                .decode(value[member].as_str().unwrap())
                .unwrap()
        };
        let claims = client_assertion_claims("c", "https://as.example/token", NOW);
        let signed = |key: &SigningKey, alg| {
            let jws = sign(key, alg, None, &claims).unwrap();
            let (input, signature) = jws.rsplit_once('.').unwrap();
            (input.to_owned(), URL_SAFE_NO_PAD.decode(signature).unwrap())
        };

        let rsa = parse(RSA_PKCS8_PEM).key;
        let jwk = PublicJwk::of(&rsa, Some(Algorithm::Ps256), None).unwrap();
        let (input, signature) = signed(&rsa, Algorithm::Ps256);
        RsaPublicKeyComponents {
            n: b64(&jwk, "n"),
            e: b64(&jwk, "e"),
        }
        .verify(&RSA_PSS_2048_8192_SHA256, input.as_bytes(), &signature)
        .unwrap();

        let ec = parse(&pem("PRIVATE KEY", &p256_pkcs8())).key;
        let jwk = PublicJwk::of(&ec, None, None).unwrap();
        let point = [vec![4], b64(&jwk, "x"), b64(&jwk, "y")].concat();
        let (input, signature) = signed(&ec, Algorithm::Es256);
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
            .verify(input.as_bytes(), &signature)
            .unwrap();

        let ed = parse(&Value::Object(ed25519_jwk()).to_string()).key;
        let jwk = PublicJwk::of(&ed, None, None).unwrap();
        let (input, signature) = signed(&ed, Algorithm::EdDsa);
        UnparsedPublicKey::new(&ED25519, b64(&jwk, "x"))
            .verify(input.as_bytes(), &signature)
            .unwrap();
    }
}
