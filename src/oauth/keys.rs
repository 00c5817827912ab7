//! Reading the private key a secret holds: a PEM block (PKCS#8, PKCS#1 or
//! SEC1), a JWK or a JWK set with one private key ([`super::jwk`]), or a
//! Google service-account JSON key.
//!
//! The formats are decoded by libraries: PEM by `rustls-pki-types` (the
//! reader svc's TLS uses, which takes several blocks and any line width),
//! the DER inside by RustCrypto's `pkcs8`, `pkcs1` and `sec1`, object
//! identifiers compared with the constants of `const-oid`. What is left
//! here is svc's own rules on top: which key types, curves and sizes it
//! signs with, and errors that say what is wrong without quoting the key.
//! The buffers that hold private key bytes on the way are zeroized when
//! dropped.

use std::fmt;

use const_oid::ObjectIdentifier;
use const_oid::db::{self, rfc5912, rfc8410};
use der::asn1::{AnyRef, OctetStringRef};
use der::{Decode as _, ErrorKind, Tag, Tagged as _};
use pkcs8::PrivateKeyInfo;
use rustls_pki_types::pem::{self, PemObject as _, SectionKind};
use serde_json::{Map, Value};
use zeroize::{Zeroize as _, Zeroizing};

use super::jwk;
use super::jwt::{Algorithm, RsaParts, SigningKey};
use super::key_error::{KeyError, shown};

/// What a secret holding key material gave: the key, and what a JSON form
/// said about it.
pub struct KeyMaterial {
    pub key: SigningKey,
    /// The JWK's `kid`, or a service-account key's `private_key_id`.
    pub kid: Option<String>,
    /// The JWK's `alg`, when it has one; the key can sign with it.
    pub alg: Option<Algorithm>,
    /// A service-account key's `client_email`.
    pub client_email: Option<String>,
    /// A service-account key's `token_uri`.
    pub token_uri: Option<String>,
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("key", &self.key)
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .finish()
    }
}

impl KeyMaterial {
    /// Reads a private key, telling the format by the content: a PEM block
    /// (`PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`), a JWK (an
    /// object with `kty`), a JWK set with exactly one private key, or a
    /// service-account JSON key (an object with `private_key`).
    pub fn parse(text: &str) -> Result<KeyMaterial, KeyError> {
        let text = text.trim();
        if text.starts_with('{') {
            parse_json(text)
        } else if text.contains("-----BEGIN ") {
            Ok(KeyMaterial::bare(parse_pem(text)?))
        } else {
            Err(KeyError::Unrecognized)
        }
    }

    pub(super) fn bare(key: SigningKey) -> KeyMaterial {
        KeyMaterial {
            key,
            kid: None,
            alg: None,
            client_email: None,
            token_uri: None,
        }
    }
}

// --- PEM ---------------------------------------------------------------

fn parse_pem(text: &str) -> Result<SigningKey, KeyError> {
    // A PEM pasted with its line breaks written `\n`, as in a JSON string.
    let unescaped;
    let text = if !text.contains('\n') && text.contains("\\n") {
        unescaped = Zeroizing::new(text.replace("\\n", "\n"));
        unescaped.as_str()
    } else {
        text
    };
    // PKCS#8's encrypted form, and OpenSSL's older one (RFC 1421 headers
    // in an `RSA PRIVATE KEY` or `EC PRIVATE KEY` block): told apart by
    // their markers, since the PEM reader skips the one and fails on the
    // other's headers.
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
    {
        return Err(KeyError::Encrypted);
    }
    let mut others = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(text.as_bytes()) {
        let (kind, der) = section.map_err(pem_error)?;
        let der = Zeroizing::new(der);
        match kind {
            SectionKind::PrivateKey => return from_pkcs8(&der),
            SectionKind::RsaPrivateKey => return from_pkcs1(&der, "PKCS#1 RSA key"),
            SectionKind::EcPrivateKey => return from_sec1(&der, "SEC1 EC key"),
            other => others.push(other),
        }
    }
    Err(KeyError::NoPrivateKeyInPem {
        labels: pem_labels(text, &others),
    })
}

/// The labels of the blocks of a PEM text that holds no private key: the
/// block's own when it is one (whatever it is), else those of the blocks
/// the reader knows.
fn pem_labels(text: &str, known: &[SectionKind]) -> Vec<String> {
    if let Ok(label) = pem_rfc7468::decode_label(text.as_bytes()) {
        return vec![shown(label)];
    }
    let mut labels: Vec<String> = Vec::new();
    for kind in known {
        let label = match kind {
            SectionKind::Certificate => "CERTIFICATE",
            SectionKind::PublicKey => "PUBLIC KEY",
            SectionKind::Crl => "X509 CRL",
            SectionKind::Csr => "CERTIFICATE REQUEST",
            _ => continue,
        };
        if !labels.iter().any(|seen| seen == label) {
            labels.push(label.into());
        }
    }
    labels
}

/// The parser's errors without its details, which can quote a line.
fn pem_error(err: pem::Error) -> KeyError {
    KeyError::Pem {
        problem: match err {
            pem::Error::MissingSectionEnd { .. } => "a block has no `-----END` line",
            pem::Error::IllegalSectionStart { .. } => "a `-----BEGIN` line is malformed",
            pem::Error::Base64Decode(_) => "a block's body is not valid base64",
            pem::Error::SectionTooLarge => "a block is too large",
            _ => "it is malformed",
        },
    }
}

// --- DER: PKCS#8, PKCS#1, SEC1 -----------------------------------------

/// A PKCS#8 `PrivateKeyInfo` (RFC 5208) or `OneAsymmetricKey` (RFC 5958).
pub(super) fn from_pkcs8(der: &[u8]) -> Result<SigningKey, KeyError> {
    let info = PrivateKeyInfo::from_der(der).map_err(|_| KeyError::Malformed {
        format: "PKCS#8 key",
    })?;
    let algorithm = info.algorithm.oid;
    if algorithm == rfc5912::RSA_ENCRYPTION {
        from_pkcs1(info.private_key, "PKCS#8 RSA key")
    } else if algorithm == rfc5912::ID_EC_PUBLIC_KEY {
        let format = "PKCS#8 EC key";
        let Some(parameters) = info.algorithm.parameters else {
            return Err(KeyError::Malformed { format });
        };
        check_curve(curve(parameters, format)?)?;
        from_sec1(info.private_key, format)
    } else if algorithm == rfc8410::ID_ED_25519 {
        let format = "PKCS#8 Ed25519 key";
        // RFC 8410 §7: the private key is an OCTET STRING in the OCTET
        // STRING, and a v2 document may carry the public key.
        let seed = OctetStringRef::from_der(info.private_key)
            .map_err(|_| KeyError::Malformed { format })?;
        SigningKey::ed25519(seed.as_bytes(), info.public_key, format)
    } else if algorithm == rfc5912::ID_RSASSA_PSS {
        Err(KeyError::RsaPssKey)
    } else {
        Err(KeyError::UnsupportedKeyType {
            kind: format!("`{}`", algorithm_name(&algorithm)),
        })
    }
}

/// The curve of EC parameters (RFC 5480 `ECParameters`): a named curve,
/// or an error for one spelled out.
fn curve(parameters: AnyRef<'_>, format: &'static str) -> Result<ObjectIdentifier, KeyError> {
    match parameters.tag() {
        Tag::ObjectIdentifier => {
            ObjectIdentifier::try_from(parameters).map_err(|_| KeyError::Malformed { format })
        }
        Tag::Sequence => Err(KeyError::ExplicitCurve),
        _ => Err(KeyError::Malformed { format }),
    }
}

/// An error unless the curve is P-256.
fn check_curve(curve: ObjectIdentifier) -> Result<(), KeyError> {
    if curve == rfc5912::SECP_256_R_1 {
        return Ok(());
    }
    let name = if curve == rfc5912::SECP_384_R_1 {
        "P-384".into()
    } else if curve == rfc5912::SECP_521_R_1 {
        "P-521".into()
    } else {
        db::DB
            .by_oid(&curve)
            .map_or_else(|| curve.to_string(), str::to_owned)
    };
    Err(KeyError::UnsupportedCurve { curve: name })
}

/// The name `const-oid` knows a key algorithm by (without its `id-`),
/// else its dotted form.
fn algorithm_name(oid: &ObjectIdentifier) -> String {
    match db::DB.by_oid(oid) {
        Some(name) => name.strip_prefix("id-").unwrap_or(name).to_owned(),
        None => oid.to_string(),
    }
}

/// A DER `RSAPrivateKey` (RFC 8017 §A.1.2).
fn from_pkcs1(der: &[u8], format: &'static str) -> Result<SigningKey, KeyError> {
    let key = pkcs1::RsaPrivateKey::from_der(der).map_err(|_| KeyError::Malformed { format })?;
    if key.other_prime_infos.is_some() {
        return Err(KeyError::UnsupportedKeyType {
            kind: "multi-prime RSA".into(),
        });
    }
    SigningKey::rsa(
        &RsaParts {
            n: key.modulus.as_bytes(),
            e: key.public_exponent.as_bytes(),
            d: key.private_exponent.as_bytes(),
            p: key.prime1.as_bytes(),
            q: key.prime2.as_bytes(),
            dp: key.exponent1.as_bytes(),
            dq: key.exponent2.as_bytes(),
            qi: key.coefficient.as_bytes(),
        },
        format,
    )
}

/// A DER `ECPrivateKey` (RFC 5915), alone or inside PKCS#8. Without a
/// curve P-256 is assumed, and *ring* checks the sizes.
fn from_sec1(der: &[u8], format: &'static str) -> Result<SigningKey, KeyError> {
    let key = sec1::EcPrivateKey::from_der(der).map_err(|err| match err.kind() {
        // The parameters are the one OID the structure holds: a SEQUENCE
        // there is a curve spelled out.
        ErrorKind::TagUnexpected {
            expected: Some(Tag::ObjectIdentifier),
            actual: Tag::Sequence,
        } => KeyError::ExplicitCurve,
        _ => KeyError::Malformed { format },
    })?;
    if let Some(curve) = key
        .parameters
        .and_then(|parameters| parameters.named_curve())
    {
        check_curve(curve)?;
    }
    let public = match key.public_key {
        Some(public) if !public.is_empty() => public,
        _ => return Err(KeyError::EcPublicKeyMissing),
    };
    let private = left_padded::<32>(key.private_key).ok_or(KeyError::Malformed { format })?;
    SigningKey::p256(&private[..], public, format)
}

/// A big-endian value widened to `N` bytes with leading zeros (some
/// writers drop them); `None` when it is longer.
pub(super) fn left_padded<const N: usize>(value: &[u8]) -> Option<Zeroizing<[u8; N]>> {
    let padding = N.checked_sub(value.len())?;
    let mut out = Zeroizing::new([0u8; N]);
    out[padding..].copy_from_slice(value);
    Some(out)
}

// --- JSON: JWK, JWK set, service-account key ---------------------------

/// Parsed JSON whose strings are zeroized when it is dropped: the private
/// members of a JWK and a service account's PEM live in them.
struct ScrubbedJson(Value);

impl Drop for ScrubbedJson {
    fn drop(&mut self) {
        scrub(&mut self.0);
    }
}

fn scrub(value: &mut Value) {
    match value {
        Value::String(text) => text.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(scrub),
        Value::Object(members) => members.values_mut().for_each(scrub),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn parse_json(text: &str) -> Result<KeyMaterial, KeyError> {
    // The error's position only: its message could quote the input.
    let json = ScrubbedJson(serde_json::from_str(text).map_err(|err| KeyError::Json {
        line: err.line(),
        column: err.column(),
    })?);
    let Value::Object(object) = &json.0 else {
        return Err(KeyError::UnrecognizedJson);
    };
    if let Some(keys) = object.get("keys") {
        jwk::parse_jwks(keys)
    } else if object.contains_key("kty") {
        jwk::parse_jwk(object)
    } else if object.contains_key("private_key") || object.contains_key("type") {
        parse_service_account(object)
    } else {
        Err(KeyError::UnrecognizedJson)
    }
}

fn parse_service_account(object: &Map<String, Value>) -> Result<KeyMaterial, KeyError> {
    if let Some(kind) = object.get("type").and_then(Value::as_str)
        && kind != "service_account"
    {
        return Err(KeyError::NotAKey { kind: shown(kind) });
    }
    let pem = match object.get("private_key") {
        Some(Value::String(pem)) => pem,
        Some(_) => {
            return Err(KeyError::ServiceAccount {
                problem: "`private_key` is not a string",
            });
        }
        None => {
            return Err(KeyError::ServiceAccount {
                problem: "it has no `private_key`",
            });
        }
    };
    let text = |member: &'static str, problem: &'static str| match object.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(KeyError::ServiceAccount { problem }),
    };
    let kid = text("private_key_id", "`private_key_id` is not a string")?;
    let client_email = text("client_email", "`client_email` is not a string")?;
    let token_uri = text("token_uri", "`token_uri` is not a string")?;
    let key = parse_pem(pem.trim())?;
    Ok(KeyMaterial {
        key,
        kid,
        alg: None,
        client_email,
        token_uri,
    })
}

#[cfg(test)]
mod tests {
    use der::asn1::{AnyRef, UintRef};
    use der::{Decode as _, Encode as _};
    use pkcs8::spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};
    use ring::rand::SystemRandom;
    use ring::signature::{
        ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
    };
    use serde_json::json;

    use super::*;
    use crate::oauth::jwt::{KeyType, client_assertion_claims, grant_claims, sign};
    use crate::oauth::test_keys::*;

    fn assert_signs(material: &KeyMaterial, alg: Algorithm) {
        assert_eq!(material.key.default_algorithm(), alg);
        let claims = client_assertion_claims("client-1", "https://as.example/token", NOW);
        let jws = sign(&material.key, alg, None, &claims).unwrap();
        verify(&jws, &material.key);
    }

    #[test]
    fn rsa_pkcs8_and_pkcs1_pem_are_read() {
        let material = parse(&format!("\n  {RSA_PKCS8_PEM}\n\n"));
        assert_eq!(format!("{:?}", material.key), "SigningKey(RSA 2048)");
        assert_signs(&material, Algorithm::Rs256);
        let pkcs1 = parse(&pem("RSA PRIVATE KEY", &rsa_pkcs1_der()));
        assert_eq!(pkcs1.key.key_type(), KeyType::Rsa);
        assert_eq!(pkcs1.key.public_key(), material.key.public_key());
        assert_signs(&pkcs1, Algorithm::Rs256);
    }

    #[test]
    fn p256_pkcs8_and_sec1_pem_are_read() {
        let pkcs8 = p256_pkcs8();
        let material = parse(&pem("PRIVATE KEY", &pkcs8));
        assert_eq!(format!("{:?}", material.key), "SigningKey(P-256)");
        assert_signs(&material, Algorithm::Es256);
        let (d, public) = p256_parts(&pkcs8);
        // As `openssl ecparam -genkey` writes it: a parameters block first,
        // the curve inside the key.
        let openssl = format!(
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{}",
            pem(
                "EC PRIVATE KEY",
                &sec1(&d, Some(&public), Some(rfc5912::SECP_256_R_1))
            )
        );
        let sec1_key = parse(&openssl);
        assert_eq!(sec1_key.key.public_key(), material.key.public_key());
        assert_signs(&sec1_key, Algorithm::Es256);
        // Without the curve, as ring writes the inner key.
        assert_signs(
            &parse(&pem("EC PRIVATE KEY", &sec1(&d, Some(&public), None))),
            Algorithm::Es256,
        );
        // A private scalar written without its leading zero byte, as some
        // writers do: one key in 256 has one.
        let (d, public) = (0..10_000)
            .map(|_| p256_parts(&p256_pkcs8()))
            .find(|(d, _)| d[0] == 0)
            .expect("a scalar with a leading zero byte");
        let short = parse(&pem("EC PRIVATE KEY", &sec1(&d[1..], Some(&public), None)));
        assert_eq!(short.key.public_key(), &public[..]);
        assert_signs(&short, Algorithm::Es256);
        // Longer than a P-256 scalar.
        let long = [&[1u8][..], &d].concat();
        let err = parse_err(&pem("EC PRIVATE KEY", &sec1(&long, Some(&public), None)));
        assert_eq!(err.to_string(), "the SEC1 EC key is malformed");
    }

    #[test]
    fn ec_key_without_public_key_gets_openssl_help() {
        let (d, _) = p256_parts(&p256_pkcs8());
        let sec1_alone = sec1(&d, None, Some(rfc5912::SECP_256_R_1));
        let pkcs8 = p256_pkcs8_of_sec1(&sec1_alone);
        for text in [
            pem("EC PRIVATE KEY", &sec1_alone),
            pem("PRIVATE KEY", &pkcs8),
        ] {
            let err = parse_err(&text);
            assert!(matches!(err, KeyError::EcPublicKeyMissing), "{err:?}");
            let help = err.help();
            assert!(help.contains("`openssl ec -in key.pem -out"), "{help}");
        }
    }

    #[test]
    fn ed25519_pkcs8_v2_and_openssl_v1_are_read() {
        let (pkcs8, seed) = ed25519();
        let material = parse(&pem("PRIVATE KEY", &pkcs8));
        assert_eq!(
            format!("{material:?}")
                .matches("SigningKey(Ed25519)")
                .count(),
            1
        );
        assert_signs(&material, Algorithm::EdDsa);
        let openssl = parse(&pem("PRIVATE KEY", &ed25519_openssl_pkcs8(&seed)));
        assert_eq!(openssl.key.public_key(), material.key.public_key());
        assert_signs(&openssl, Algorithm::EdDsa);
        // A v2 document whose public key is another key's.
        let mut info = PrivateKeyInfo::from_der(&pkcs8).unwrap();
        let (other, _) = ed25519();
        let other = Ed25519KeyPair::from_pkcs8(&other).unwrap();
        info.public_key = Some(other.public_key().as_ref());
        let err = parse_err(&pem("PRIVATE KEY", &info.to_der().unwrap()));
        assert_eq!(
            err.to_string(),
            "the PKCS#8 Ed25519 key cannot be used: its parts do not belong together"
        );
    }

    #[test]
    fn service_account_json_gives_key_and_fields() {
        let account = json!({
            "type": "service_account",
            "project_id": "demo",
            "private_key_id": "0123abcd",
            "private_key": RSA_PKCS8_PEM,
            "client_email": "robot@demo.iam.gserviceaccount.com",
            "client_id": "1234567890",
            "token_uri": "https://oauth2.googleapis.com/token",
        });
        let material = parse(&serde_json::to_string_pretty(&account).unwrap());
        assert_eq!(material.kid.as_deref(), Some("0123abcd"));
        assert_eq!(
            material.client_email.as_deref(),
            Some("robot@demo.iam.gserviceaccount.com")
        );
        assert_eq!(
            material.token_uri.as_deref(),
            Some("https://oauth2.googleapis.com/token")
        );
        assert_eq!(material.alg, None);
        let claims = grant_claims(
            "robot@demo.iam.gserviceaccount.com",
            None,
            "https://oauth2.googleapis.com/token",
            Some("https://www.googleapis.com/auth/cloud-platform"),
            NOW,
        );
        let jws = sign(
            &material.key,
            material.key.default_algorithm(),
            material.kid.as_deref(),
            &claims,
        )
        .unwrap();
        let (header, signed) = verify(&jws, &material.key);
        assert_eq!(header["kid"], "0123abcd");
        assert_eq!(signed, claims);

        let err = parse_err(r#"{"type": "authorized_user", "refresh_token": "1//x"}"#);
        assert!(matches!(err, KeyError::NotAKey { .. }), "{err:?}");
        assert!(err.to_string().contains("`authorized_user`"), "{err}");
        let err = parse_err(r#"{"type": "service_account", "client_email": "a@b"}"#);
        assert!(matches!(err, KeyError::ServiceAccount { .. }), "{err:?}");
    }

    #[test]
    fn public_keys_and_certificates_are_named() {
        let (pkcs8, _) = ed25519();
        let public = Ed25519KeyPair::from_pkcs8(&pkcs8)
            .unwrap()
            .public_key()
            .as_ref()
            .to_vec();
        let spki = SubjectPublicKeyInfoRef {
            algorithm: AlgorithmIdentifierRef {
                oid: rfc8410::ID_ED_25519,
                parameters: None,
            },
            subject_public_key: der::asn1::BitStringRef::from_bytes(&public).unwrap(),
        };
        let spki = pem("PUBLIC KEY", &spki.to_der().unwrap());
        let err = parse_err(&spki);
        assert!(matches!(err, KeyError::NoPrivateKeyInPem { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "the PEM holds no private key svc can read (it has `PUBLIC KEY`)"
        );
        assert!(err.help().contains("not the public key"), "{}", err.help());
        // Two blocks the reader knows, neither a private key.
        let chain = format!("{spki}{}", pem("CERTIFICATE", &[0x30, 0x00]));
        let err = parse_err(&chain);
        assert_eq!(
            err.to_string(),
            "the PEM holds no private key svc can read (it has `PUBLIC KEY`, `CERTIFICATE`)"
        );
        // A block the reader does not know is named by its own label.
        for (label, help) in [
            ("OPENSSH PRIVATE KEY", "ssh-keygen -p -m PKCS8"),
            ("DSA PRIVATE KEY", "openssl pkcs8 -topk8"),
        ] {
            let err = parse_err(&pem(label, &[0x30, 0x00]));
            assert_eq!(
                err.to_string(),
                format!("the PEM holds no private key svc can read (it has `{label}`)")
            );
            assert_eq!(err.code(), "svc::key::not_private");
            assert!(err.help().contains(help), "{}", err.help());
        }
    }

    #[test]
    fn encrypted_pem_is_refused() {
        let pkcs8 = pem("ENCRYPTED PRIVATE KEY", &[0x30, 0x03, 0x02, 0x01, 0x00]);
        let legacy = [
            "-----BEGIN RSA PRIVATE KEY-----",
            "Proc-Type: 4,ENCRYPTED",
            "DEK-Info: AES-128-CBC,0123456789ABCDEF0123456789ABCDEF",
            "",
            &pem_body_lines(RSA_PKCS8_PEM).join("\n"),
            "-----END RSA PRIVATE KEY-----",
        ]
        .join("\n");
        for text in [&pkcs8, &legacy] {
            let err = parse_err(text);
            assert!(matches!(err, KeyError::Encrypted), "{err:?}");
            assert_eq!(err.code(), "svc::key::encrypted");
            assert!(err.help().contains("unencrypted"), "{}", err.help());
        }
    }

    #[test]
    fn other_curves_and_key_types_are_named() {
        let p384 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        let err = parse_err(&pem("PRIVATE KEY", p384.as_ref()));
        assert_eq!(
            err.to_string(),
            "the EC key is on the curve `P-384`; svc signs only with P-256 EC keys"
        );
        let err = parse_err(&pem(
            "EC PRIVATE KEY",
            &sec1(&[1; 48], Some(&[4; 97]), Some(rfc5912::SECP_384_R_1)),
        ));
        assert!(
            matches!(&err, KeyError::UnsupportedCurve { curve } if curve == "P-384"),
            "{err:?}"
        );
        // A curve const-oid has no name for is shown dotted (secp256k1).
        let k1 = ObjectIdentifier::new_unwrap("1.3.132.0.10");
        let err = parse_err(&pem(
            "EC PRIVATE KEY",
            &sec1(&[1; 32], Some(&[4; 65]), Some(k1)),
        ));
        assert_eq!(
            err.to_string(),
            "the EC key is on the curve `1.3.132.0.10`; svc signs only with P-256 EC keys"
        );
        // A curve spelled out instead of named, as openssl writes it with
        // `-param_enc explicit`, in SEC1 and in PKCS#8.
        for text in [P256_EXPLICIT_SEC1_PEM, P256_EXPLICIT_PKCS8_PEM] {
            let err = parse_err(text);
            assert!(matches!(err, KeyError::ExplicitCurve), "{err:?}");
            assert!(err.help().contains("-param_enc named_curve"));
        }
        // Key algorithms are named by const-oid's names, else dotted.
        for (oid, shown) in [
            (rfc8410::ID_ED_448, "`Ed448`"),
            (rfc8410::ID_X_25519, "`X25519`"),
            (rfc5912::ID_DSA, "`dsa`"),
            (ObjectIdentifier::new_unwrap("1.2.3.4"), "`1.2.3.4`"),
        ] {
            let err = parse_err(&pem("PRIVATE KEY", &pkcs8(oid, None, &[4, 2, 0, 0])));
            assert_eq!(
                err.to_string(),
                format!("svc cannot sign with {shown} keys")
            );
            assert_eq!(err.code(), "svc::key::unsupported");
        }
        // An RSA-PSS key: the help says an ordinary RSA key signs PS256.
        let pss = pkcs8(rfc5912::ID_RSASSA_PSS, None, &rsa_pkcs1_der());
        let err = parse_err(&pem("PRIVATE KEY", &pss));
        assert!(matches!(err, KeyError::RsaPssKey), "{err:?}");
        assert!(err.help().contains("`alg = \"PS256\"`"), "{}", err.help());
    }

    #[test]
    fn rsa_keys_outside_2048_to_4096_bits_are_refused() {
        // The integers of the 2048-bit key with a 1024-bit modulus: the
        // size is refused before ring sees the key.
        let der = rsa_pkcs1_der();
        let mut key = pkcs1::RsaPrivateKey::from_der(&der).unwrap();
        let mut n = vec![0xc5; 128];
        n[127] = 0x01;
        key.modulus = UintRef::new(&n).unwrap();
        let err = parse_err(&pem("RSA PRIVATE KEY", &key.to_der().unwrap()));
        assert_eq!(
            err.to_string(),
            "the RSA key has 1024 bits; svc signs with RSA keys of 2048 to 4096 bits"
        );
        assert_eq!(err.code(), "svc::key::unsupported");
        let big = vec![0xc5; 4096 / 8 + 1];
        key.modulus = UintRef::new(&big).unwrap();
        let err = parse_err(&pem("RSA PRIVATE KEY", &key.to_der().unwrap()));
        assert!(
            matches!(err, KeyError::RsaKeySize { bits: 4104 }),
            "{err:?}"
        );
    }

    #[test]
    fn garbage_is_refused() {
        let cases = [
            ("", "svc::key::invalid"),
            ("hello", "svc::key::invalid"),
            ("{", "svc::key::invalid"),
            ("{}", "svc::key::invalid"),
            (
                r#"{"kty": "RSA", "n": "AQAB", "e": "AQAB", "d": "!!"}"#,
                "svc::key::invalid",
            ),
            (r#"{"kty": 7}"#, "svc::key::invalid"),
            (r#"{"keys": 7}"#, "svc::key::invalid"),
            (
                "-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----",
                "svc::key::invalid",
            ),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
                "svc::key::invalid",
            ),
            ("-----BEGIN PRIVATE KEY-----\nAAAA\n", "svc::key::invalid"),
            (
                "-----BEGIN EC PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----",
                "svc::key::invalid",
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMAA=\n-----END RSA PRIVATE KEY-----",
                "svc::key::invalid",
            ),
        ];
        for (text, code) in cases {
            let err = parse_err(text);
            assert_eq!(err.code(), code, "{text}: {err:?}");
            assert!(!err.help().is_empty());
        }
        // A PKCS#8 key with damaged contents: valid base64, broken DER.
        let mut der = pem_der(RSA_PKCS8_PEM);
        der[200] ^= 0xff;
        der.truncate(der.len() - 3);
        let err = parse_err(&pem("PRIVATE KEY", &der));
        assert_eq!(err.to_string(), "the PKCS#8 key is malformed");
        // A SEC1 key in a PKCS#8 document whose curve is not an OID.
        let null = AnyRef::from(der::asn1::Null);
        let text = pem(
            "PRIVATE KEY",
            &pkcs8(rfc5912::ID_EC_PUBLIC_KEY, Some(null), &[0x30, 0x00]),
        );
        assert_eq!(
            parse_err(&text).to_string(),
            "the PKCS#8 EC key is malformed"
        );
        // An RSA key whose parts do not belong together.
        let der = rsa_pkcs1_der();
        let mut key = pkcs1::RsaPrivateKey::from_der(&der).unwrap();
        key.prime1 = key.prime2;
        let err = parse_err(&pem("RSA PRIVATE KEY", &key.to_der().unwrap()));
        assert!(matches!(err, KeyError::Rejected { .. }), "{err:?}");
    }

    #[test]
    fn escaped_newlines_are_accepted() {
        let escaped = RSA_PKCS8_PEM.trim().replace('\n', "\\n");
        assert_eq!(parse(&escaped).key.key_type(), KeyType::Rsa);
    }

    /// The private parts of the test keys must not appear in any message
    /// (tests/keys.rs does the same for thousands of mutated keys).
    #[test]
    fn errors_and_debug_never_show_key_material() {
        let body = pem_body_lines(RSA_PKCS8_PEM);
        let jwk = rsa_jwk();
        let p256 = p256_jwk(&p256_pkcs8());
        let mut secrets: Vec<String> = body.iter().map(|line| line.to_string()).collect();
        for member in ["d", "p", "q", "dp", "dq", "qi"] {
            let value = jwk[member].as_str().unwrap();
            secrets.extend(
                value
                    .as_bytes()
                    .chunks(12)
                    .map(|chunk| String::from_utf8(chunk.to_vec()).unwrap()),
            );
        }
        secrets.push(p256["d"].as_str().unwrap().to_string());

        let mut damaged_line = body.clone();
        damaged_line[5] = "!!!!";
        let damaged_pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----",
            damaged_line.join("\n")
        );
        let mut bad_p = jwk.clone();
        bad_p.insert("p".into(), jwk["q"].clone());
        let mut bad_alg = jwk.clone();
        bad_alg.insert("alg".into(), "ES256".into());
        let mut bad_ec = p256.clone();
        bad_ec.insert("x".into(), p256["y"].clone());
        let mut der = pem_der(RSA_PKCS8_PEM);
        let len = der.len();
        der[len - 20] ^= 0x55;
        let inputs = [
            damaged_pem,
            RSA_PKCS8_PEM.replace("-----END PRIVATE KEY-----", ""),
            RSA_PKCS8_PEM.replace("PRIVATE KEY", "ENCRYPTED PRIVATE KEY"),
            RSA_PKCS8_PEM.replace("PRIVATE KEY", "DSA PRIVATE KEY"),
            pem("PRIVATE KEY", &der),
            pem("EC PRIVATE KEY", &pem_der(RSA_PKCS8_PEM)),
            Value::Object(bad_p).to_string(),
            Value::Object(bad_alg).to_string(),
            Value::Object(bad_ec).to_string(),
            json!({"keys": [jwk, p256]}).to_string(),
            json!({"type": "service_account", "private_key": damaged_line.join("\n")}).to_string(),
            Value::Object(jwk.clone()).to_string().replace('}', ""),
        ];
        let mut shown = Vec::new();
        for input in &inputs {
            let err = parse_err(input);
            shown.push(format!("{err}\n{err:?}\n{}", err.help()));
        }
        let rsa = parse(RSA_PKCS8_PEM);
        let err = sign(&rsa.key, Algorithm::EdDsa, None, &Map::new()).unwrap_err();
        shown.push(format!("{err}\n{err:?}\n{}\n{rsa:?}", err.help()));
        shown.push(format!(
            "{:?}",
            parse(&Value::Object(p256.clone()).to_string())
        ));
        for text in &shown {
            for secret in &secrets {
                assert!(!text.contains(secret.as_str()), "{text:?} shows {secret:?}");
            }
        }
    }
}
