//! Test keys in every form svc reads, made with RustCrypto's encoders and
//! *ring*'s generators (or by openssl, for the fixtures): the unit tests of
//! `keys`, `jwk` and `jwt` share them.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use const_oid::ObjectIdentifier;
use const_oid::db::{rfc5912, rfc8410};
use der::asn1::{AnyRef, OctetStringRef};
use der::{Decode as _, Encode};
use pkcs8::PrivateKeyInfo;
use pkcs8::spki::AlgorithmIdentifierRef;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_2048_8192_SHA384,
    RSA_PSS_2048_8192_SHA256, UnparsedPublicKey, VerificationAlgorithm,
};
use serde_json::{Map, Value, json};

use super::jwt::{KeyError, SigningKey};
use super::keys::KeyMaterial;

/// The one RSA test key (`openssl genrsa 2048`, PKCS#8): ring cannot
/// generate RSA keys, and the other forms are derived from it here.
pub const RSA_PKCS8_PEM: &str = include_str!("../../tests/fixtures/jwt-rsa-2048.pem");

/// A P-256 key whose curve is spelled out (`openssl ecparam -name
/// prime256v1 -genkey -param_enc explicit`), as SEC1 and as PKCS#8.
pub const P256_EXPLICIT_SEC1_PEM: &str =
    include_str!("../../tests/fixtures/jwt-p256-explicit-sec1.pem");
pub const P256_EXPLICIT_PKCS8_PEM: &str =
    include_str!("../../tests/fixtures/jwt-p256-explicit-pkcs8.pem");

pub const NOW: i64 = 1_750_000_000;

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(line).unwrap());
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

/// The body lines of a PEM block.
pub fn pem_body_lines(pem: &str) -> Vec<&str> {
    pem.lines()
        .filter(|line| !line.starts_with("-----"))
        .collect()
}

/// A PEM block's DER, decoded without the code under test.
pub fn pem_der(pem: &str) -> Vec<u8> {
    STANDARD.decode(pem_body_lines(pem).concat()).unwrap()
}

pub fn to_der(value: &impl Encode) -> Vec<u8> {
    value.to_der().unwrap()
}

/// A PKCS#8 v1 document of an algorithm, its parameters and its key.
pub fn pkcs8(oid: ObjectIdentifier, parameters: Option<AnyRef<'_>>, private_key: &[u8]) -> Vec<u8> {
    to_der(&PrivateKeyInfo::new(
        AlgorithmIdentifierRef { oid, parameters },
        private_key,
    ))
}

pub fn rsa_pkcs1_der() -> Vec<u8> {
    let der = pem_der(RSA_PKCS8_PEM);
    PrivateKeyInfo::from_der(&der).unwrap().private_key.to_vec()
}

/// The RSA key as a private JWK, from the integers of its PKCS#1 form.
pub fn rsa_jwk() -> Map<String, Value> {
    let pkcs1 = rsa_pkcs1_der();
    let key = pkcs1::RsaPrivateKey::from_der(&pkcs1).unwrap();
    let mut jwk = Map::new();
    jwk.insert("kty".into(), "RSA".into());
    for (member, value) in [
        ("n", key.modulus),
        ("e", key.public_exponent),
        ("d", key.private_exponent),
        ("p", key.prime1),
        ("q", key.prime2),
        ("dp", key.exponent1),
        ("dq", key.exponent2),
        ("qi", key.coefficient),
    ] {
        jwk.insert(member.into(), b64url(value.as_bytes()).into());
    }
    jwk
}

pub fn p256_pkcs8() -> Vec<u8> {
    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
        .unwrap()
        .as_ref()
        .to_vec()
}

/// The private scalar and the uncompressed public point of a P-256
/// PKCS#8 key.
pub fn p256_parts(pkcs8: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let info = PrivateKeyInfo::from_der(pkcs8).unwrap();
    let key = sec1::EcPrivateKey::from_der(info.private_key).unwrap();
    (
        key.private_key.to_vec(),
        key.public_key.expect("ring writes the public key").to_vec(),
    )
}

/// A SEC1 `ECPrivateKey` as openssl writes it (with the curve) or not,
/// with or without the public key.
pub fn sec1(d: &[u8], public: Option<&[u8]>, curve: Option<ObjectIdentifier>) -> Vec<u8> {
    to_der(&sec1::EcPrivateKey {
        private_key: d,
        parameters: curve.map(sec1::EcParameters::NamedCurve),
        public_key: public,
    })
}

/// A SEC1 key in a PKCS#8 document for P-256.
pub fn p256_pkcs8_of_sec1(sec1: &[u8]) -> Vec<u8> {
    let curve = rfc5912::SECP_256_R_1;
    pkcs8(rfc5912::ID_EC_PUBLIC_KEY, Some(AnyRef::from(&curve)), sec1)
}

pub fn p256_jwk(pkcs8: &[u8]) -> Map<String, Value> {
    let (d, public) = p256_parts(pkcs8);
    let json = json!({
        "kty": "EC",
        "crv": "P-256",
        "x": b64url(&public[1..33]),
        "y": b64url(&public[33..]),
        "d": b64url(&d),
    });
    json.as_object().unwrap().clone()
}

/// An Ed25519 key: ring's PKCS#8 v2 document and its seed.
pub fn ed25519() -> (Vec<u8>, Vec<u8>) {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .unwrap()
        .as_ref()
        .to_vec();
    let info = PrivateKeyInfo::from_der(&pkcs8).unwrap();
    let seed = OctetStringRef::from_der(info.private_key)
        .unwrap()
        .as_bytes()
        .to_vec();
    (pkcs8, seed)
}

/// The PKCS#8 v1 form `openssl genpkey -algorithm ed25519` writes: no
/// public key.
pub fn ed25519_openssl_pkcs8(seed: &[u8]) -> Vec<u8> {
    let inner = to_der(&OctetStringRef::new(seed).unwrap());
    pkcs8(rfc8410::ID_ED_25519, None, &inner)
}

pub fn decode_json(part: &str) -> Map<String, Value> {
    let bytes = URL_SAFE_NO_PAD.decode(part).unwrap();
    serde_json::from_slice::<Value>(&bytes)
        .unwrap()
        .as_object()
        .unwrap()
        .clone()
}

/// Verifies a compact JWS against the key's public part with *ring*'s
/// verifiers; its header and claims.
pub fn verify(jws: &str, key: &SigningKey) -> (Map<String, Value>, Map<String, Value>) {
    let parts: Vec<&str> = jws.split('.').collect();
    assert_eq!(parts.len(), 3, "{jws}");
    let header = decode_json(parts[0]);
    let claims = decode_json(parts[1]);
    let algorithm: &dyn VerificationAlgorithm = match header["alg"].as_str().unwrap() {
        "RS256" => &RSA_PKCS1_2048_8192_SHA256,
        "RS384" => &RSA_PKCS1_2048_8192_SHA384,
        "PS256" => &RSA_PSS_2048_8192_SHA256,
        "ES256" => &ECDSA_P256_SHA256_FIXED,
        "EdDSA" => &ED25519,
        other => panic!("alg {other}"),
    };
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    let message = format!("{}.{}", parts[0], parts[1]);
    UnparsedPublicKey::new(algorithm, key.public_key())
        .verify(message.as_bytes(), &signature)
        .expect("the signature verifies with the public key");
    (header, claims)
}

pub fn parse(text: &str) -> KeyMaterial {
    KeyMaterial::parse(text).unwrap_or_else(|err| panic!("{err}: {}", err.help()))
}

pub fn parse_err(text: &str) -> KeyError {
    match KeyMaterial::parse(text) {
        Ok(material) => panic!("parsed as {material:?}"),
        Err(err) => err,
    }
}
