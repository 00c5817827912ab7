//! Signing keys and JWT assertions (RFC 7515, RFC 7519, RFC 7523).
//!
//! A [`SigningKey`] is made from the parts [`super::keys`] and
//! [`super::jwk`] read out of a secret; [`sign`] makes a compact JWS of a
//! claims object with `RS256`, `RS384`, `PS256`, `ES256` or `EdDSA`;
//! [`client_assertion_claims`] (`private_key_jwt`, RFC 7523 §2.2) and
//! [`grant_claims`] (the JWT-bearer grant, §2.1) build the claims of the two
//! uses.
//!
//! Signing runs on *ring*, the crypto svc's TLS already uses: its RSA is
//! constant-time (RustCrypto's `rsa` crate is not, RUSTSEC-2023-0071), and
//! it is one crypto library to trust instead of two. *ring* is given the
//! key's integers and points, never a DER document: reading formats is the
//! job of RustCrypto's decoders. No error, `Debug` output or panic shows
//! key material.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::rsa::{KeyPairComponents, PublicKeyComponents};
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256,
    RSA_PKCS1_SHA384, RSA_PSS_SHA256, RsaEncoding, RsaKeyPair,
};
use serde_json::{Map, Value};

pub use super::key_error::KeyError;
pub use super::keys::KeyMaterial;

/// How long a `private_key_jwt` client assertion is valid: RFC 7523 asks
/// for a short lifetime, and five minutes is what servers commonly accept.
pub const CLIENT_ASSERTION_LIFETIME: i64 = 300;

/// How long a JWT-bearer grant assertion is valid: one hour, Google's
/// maximum.
pub const GRANT_ASSERTION_LIFETIME: i64 = 3600;

/// The sizes of RSA key svc signs with, in bits.
pub const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=4096;

/// A JWS signature algorithm svc signs with (RFC 7518 §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PSS with SHA-256, MGF1 with SHA-256 and a 32-byte salt.
    Ps256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl Algorithm {
    pub const ALL: [Algorithm; 5] = [
        Algorithm::Rs256,
        Algorithm::Rs384,
        Algorithm::Ps256,
        Algorithm::Es256,
        Algorithm::EdDsa,
    ];

    /// The JOSE names, in the order of [`Algorithm::ALL`].
    pub const NAMES: [&'static str; 5] = ["RS256", "RS384", "PS256", "ES256", "EdDSA"];

    /// The algorithm of a JOSE name; names are case-sensitive.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|alg| alg.name() == name)
    }

    /// The JOSE name, as in a JWS header's `alg`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Rs384 => "RS384",
            Algorithm::Ps256 => "PS256",
            Algorithm::Es256 => "ES256",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    /// The kind of key it signs with.
    pub fn key_type(self) -> KeyType {
        match self {
            Algorithm::Rs256 | Algorithm::Rs384 | Algorithm::Ps256 => KeyType::Rsa,
            Algorithm::Es256 => KeyType::P256,
            Algorithm::EdDsa => KeyType::Ed25519,
        }
    }

    /// "`RS256`, `RS384`, `PS256`, `ES256` or `EdDSA`", for messages.
    pub fn listed() -> String {
        let names: Vec<String> = Algorithm::NAMES
            .iter()
            .map(|name| format!("`{name}`"))
            .collect();
        super::key_error::or_list(&names)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The kinds of key svc signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyType {
    Rsa,
    /// ECDSA on the P-256 curve.
    P256,
    Ed25519,
}

impl KeyType {
    /// The algorithms a key of this type signs with, the default first.
    pub fn algorithms(self) -> &'static [Algorithm] {
        match self {
            KeyType::Rsa => &[Algorithm::Rs256, Algorithm::Rs384, Algorithm::Ps256],
            KeyType::P256 => &[Algorithm::Es256],
            KeyType::Ed25519 => &[Algorithm::EdDsa],
        }
    }

    /// "an RSA key", for messages.
    pub(super) fn a_key(self) -> &'static str {
        match self {
            KeyType::Rsa => "an RSA key",
            KeyType::P256 => "a P-256 key",
            KeyType::Ed25519 => "an Ed25519 key",
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyType::Rsa => "RSA",
            KeyType::P256 => "P-256",
            KeyType::Ed25519 => "Ed25519",
        })
    }
}

/// The integers of a two-prime RSA private key (RFC 8017 §3.2), big-endian;
/// leading zero bytes are allowed.
pub(super) struct RsaParts<'a> {
    pub n: &'a [u8],
    pub e: &'a [u8],
    pub d: &'a [u8],
    pub p: &'a [u8],
    pub q: &'a [u8],
    pub dp: &'a [u8],
    pub dq: &'a [u8],
    pub qi: &'a [u8],
}

/// The public half of a key, in the forms a JWK gives it (RFC 7518 §6):
/// big-endian integers and coordinates, the RSA ones without leading zeros.
pub enum PublicParts {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    P256 { x: Vec<u8>, y: Vec<u8> },
    Ed25519 { x: Vec<u8> },
}

/// A private key svc signs with: RSA (2048 to 4096 bits), ECDSA P-256 or
/// Ed25519. Its `Debug` shows the type and size only.
pub struct SigningKey {
    pair: Pair,
}

enum Pair {
    Rsa(RsaKeyPair),
    P256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl SigningKey {
    /// An RSA key from its integers; its size is checked before *ring*
    /// sees it, and *ring* checks that the parts belong together.
    pub(super) fn rsa(parts: &RsaParts<'_>, format: &'static str) -> Result<SigningKey, KeyError> {
        let n = unsigned(parts.n);
        let bits = bit_length(n);
        if !RSA_BITS.contains(&bits) {
            return Err(KeyError::RsaKeySize { bits });
        }
        let components = KeyPairComponents {
            public_key: PublicKeyComponents {
                n,
                e: unsigned(parts.e),
            },
            d: unsigned(parts.d),
            p: unsigned(parts.p),
            q: unsigned(parts.q),
            dP: unsigned(parts.dp),
            dQ: unsigned(parts.dq),
            qInv: unsigned(parts.qi),
        };
        let pair = RsaKeyPair::from_components(&components).map_err(|err| rejected(format, err))?;
        // ring checks dP and dQ against e and n only when it signs (and
        // then refuses to give the signature): one signature now makes a
        // damaged key an error where it is read, not at its first request.
        let mut signature = vec![0; pair.public().modulus_len()];
        pair.sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            b"svc: is this key whole?",
            &mut signature,
        )
        .map_err(|_| KeyError::Rejected {
            format,
            reason: "its parts do not belong together",
        })?;
        Ok(SigningKey {
            pair: Pair::Rsa(pair),
        })
    }

    /// A P-256 key from its private scalar (32 bytes) and its public point
    /// (uncompressed, 65 bytes), which must belong together.
    pub(super) fn p256(
        private: &[u8],
        public: &[u8],
        format: &'static str,
    ) -> Result<SigningKey, KeyError> {
        EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            private,
            public,
            &SystemRandom::new(),
        )
        .map(|pair| SigningKey {
            pair: Pair::P256(pair),
        })
        .map_err(|err| rejected(format, err))
    }

    /// An Ed25519 key from its 32-byte seed, checked against its public key
    /// when the format carries one.
    pub(super) fn ed25519(
        seed: &[u8],
        public: Option<&[u8]>,
        format: &'static str,
    ) -> Result<SigningKey, KeyError> {
        match public {
            Some(public) => Ed25519KeyPair::from_seed_and_public_key(seed, public),
            None => Ed25519KeyPair::from_seed_unchecked(seed),
        }
        .map(|pair| SigningKey {
            pair: Pair::Ed25519(pair),
        })
        .map_err(|err| rejected(format, err))
    }

    pub fn key_type(&self) -> KeyType {
        match self.pair {
            Pair::Rsa(_) => KeyType::Rsa,
            Pair::P256(_) => KeyType::P256,
            Pair::Ed25519(_) => KeyType::Ed25519,
        }
    }

    /// What it can sign with.
    pub fn algorithms(&self) -> &'static [Algorithm] {
        self.key_type().algorithms()
    }

    /// `RS256` for RSA, `ES256` for P-256, `EdDSA` for Ed25519.
    pub fn default_algorithm(&self) -> Algorithm {
        self.algorithms()[0]
    }

    /// An error naming the key type and what it can do, if it cannot sign
    /// with `alg`: to check a configuration before the first signature.
    pub fn check_algorithm(&self, alg: Algorithm) -> Result<(), KeyError> {
        if self.algorithms().contains(&alg) {
            Ok(())
        } else {
            Err(KeyError::AlgorithmMismatch {
                key: self.key_type(),
                alg,
            })
        }
    }

    /// The public key in the form *ring* verifies with: a DER
    /// `RSAPublicKey`, an uncompressed P-256 point, or the 32 bytes of an
    /// Ed25519 key.
    pub fn public_key(&self) -> &[u8] {
        match &self.pair {
            Pair::Rsa(pair) => pair.public().as_ref(),
            Pair::P256(pair) => pair.public_key().as_ref(),
            Pair::Ed25519(pair) => pair.public_key().as_ref(),
        }
    }

    /// The public half, as a JWK gives it.
    pub fn public_parts(&self) -> PublicParts {
        match &self.pair {
            Pair::Rsa(pair) => {
                let components = PublicKeyComponents::<Vec<u8>>::from(pair.public());
                PublicParts::Rsa {
                    n: unsigned(&components.n).to_vec(),
                    e: unsigned(&components.e).to_vec(),
                }
            }
            Pair::P256(pair) => {
                // 0x04, then x and y of 32 bytes each (SEC 1 §2.3.3).
                let point = pair.public_key().as_ref();
                PublicParts::P256 {
                    x: point[1..33].to_vec(),
                    y: point[33..65].to_vec(),
                }
            }
            Pair::Ed25519(pair) => PublicParts::Ed25519 {
                x: pair.public_key().as_ref().to_vec(),
            },
        }
    }

    fn signature(&self, alg: Algorithm, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rng = SystemRandom::new();
        let rsa_padding: Option<&'static dyn RsaEncoding> = match alg {
            Algorithm::Rs256 => Some(&RSA_PKCS1_SHA256),
            Algorithm::Rs384 => Some(&RSA_PKCS1_SHA384),
            Algorithm::Ps256 => Some(&RSA_PSS_SHA256),
            Algorithm::Es256 | Algorithm::EdDsa => None,
        };
        if let (Pair::Rsa(pair), Some(padding)) = (&self.pair, rsa_padding) {
            let mut signature = vec![0; pair.public().modulus_len()];
            pair.sign(padding, &rng, message, &mut signature)
                .map_err(|_| KeyError::Signing)?;
            return Ok(signature);
        }
        match (&self.pair, alg) {
            (Pair::P256(pair), Algorithm::Es256) => pair
                .sign(&rng, message)
                .map(|signature| signature.as_ref().to_vec())
                .map_err(|_| KeyError::Signing),
            (Pair::Ed25519(pair), Algorithm::EdDsa) => Ok(pair.sign(message).as_ref().to_vec()),
            _ => Err(KeyError::AlgorithmMismatch {
                key: self.key_type(),
                alg,
            }),
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pair {
            Pair::Rsa(pair) => write!(f, "SigningKey(RSA {})", pair.public().modulus_len() * 8),
            Pair::P256(_) => f.write_str("SigningKey(P-256)"),
            Pair::Ed25519(_) => f.write_str("SigningKey(Ed25519)"),
        }
    }
}

/// What *ring*'s rejection says, in words. Its reasons are fixed names,
/// never key material.
fn rejected(format: &'static str, err: ring::error::KeyRejected) -> KeyError {
    let reason = match err.to_string().as_str() {
        "InconsistentComponents" => "its parts do not belong together",
        "InvalidComponent" => "one of its values is out of range",
        "InvalidEncoding" => "its encoding is malformed",
        "PublicKeyIsMissing" => "it lacks its public key",
        "TooSmall" => "it is too small",
        "TooLarge" => "it is too large",
        "VersionNotSupported" => "its version is not supported",
        "WrongAlgorithm" => "it is not the kind of key its header says",
        "PrivateModulusLenNotMultipleOf512Bits" => "its size is not a multiple of 512 bits",
        _ => "the crypto library refused it",
    };
    KeyError::Rejected { format, reason }
}

/// A big-endian unsigned integer without its leading zeros, as *ring*
/// wants it.
pub(super) fn unsigned(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&byte| byte != 0)
        .unwrap_or(bytes.len());
    &bytes[start..]
}

/// The bit length of a big-endian unsigned integer without leading zeros.
fn bit_length(bytes: &[u8]) -> usize {
    match bytes.first() {
        Some(first) => bytes.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

/// Signs a compact JWS: the header is `{"alg", "typ": "JWT", "kid"?}`, the
/// payload the claims object.
pub fn sign(
    key: &SigningKey,
    alg: Algorithm,
    kid: Option<&str>,
    claims: &Map<String, Value>,
) -> Result<String, KeyError> {
    key.check_algorithm(alg)?;
    let mut header = Map::new();
    header.insert("alg".into(), alg.name().into());
    header.insert("typ".into(), "JWT".into());
    if let Some(kid) = kid {
        header.insert("kid".into(), kid.into());
    }
    let header = serde_json::to_vec(&header).map_err(|_| KeyError::Signing)?;
    let payload = serde_json::to_vec(claims).map_err(|_| KeyError::Signing)?;
    let mut jws = String::with_capacity((header.len() + payload.len()) * 4 / 3 + 700);
    URL_SAFE_NO_PAD.encode_string(&header, &mut jws);
    jws.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut jws);
    let signature = key.signature(alg, jws.as_bytes())?;
    jws.push('.');
    URL_SAFE_NO_PAD.encode_string(&signature, &mut jws);
    Ok(jws)
}

/// The claims of an RFC 7523 client assertion (`private_key_jwt`): `iss` =
/// `sub` = the client id, `aud` (the token endpoint), a fresh `jti` of 128
/// random bits, `iat` = `now` (Unix seconds) and `exp` 300 seconds later.
pub fn client_assertion_claims(client_id: &str, audience: &str, now: i64) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("iss".into(), client_id.into());
    claims.insert("sub".into(), client_id.into());
    claims.insert("aud".into(), audience.into());
    claims.insert("jti".into(), fresh_jti().into());
    claims.insert("iat".into(), now.into());
    claims.insert(
        "exp".into(),
        now.saturating_add(CLIENT_ASSERTION_LIFETIME).into(),
    );
    claims
}

/// The claims of a JWT-bearer grant assertion (RFC 7523 §2.1): `iss`,
/// `sub` when given, `aud` (the token endpoint), `scope` when given, a
/// fresh `jti`, `iat` = `now` (Unix seconds) and `exp` an hour later.
pub fn grant_claims(
    issuer: &str,
    subject: Option<&str>,
    audience: &str,
    scope: Option<&str>,
    now: i64,
) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("iss".into(), issuer.into());
    if let Some(subject) = subject {
        claims.insert("sub".into(), subject.into());
    }
    claims.insert("aud".into(), audience.into());
    if let Some(scope) = scope {
        claims.insert("scope".into(), scope.into());
    }
    claims.insert("jti".into(), fresh_jti().into());
    claims.insert("iat".into(), now.into());
    claims.insert(
        "exp".into(),
        now.saturating_add(GRANT_ASSERTION_LIFETIME).into(),
    );
    claims
}

/// 128 random bits, base64url.
fn fresh_jti() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // A `jti` must be unique, not secret: the fallback svc's other
        // identifiers use will do when the system's generator fails.
        bytes = fastrand::u128(..).to_le_bytes();
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
    use serde_json::json;

    use super::*;
    use crate::oauth::test_keys::*;

    /// Signs a client assertion with `alg` and checks the result.
    fn assert_signs(material: &KeyMaterial, alg: Algorithm) {
        let key = &material.key;
        assert!(key.algorithms().contains(&alg), "{key:?} {alg}");
        let claims = client_assertion_claims("client-1", "https://as.example/token", NOW);
        let jws = sign(key, alg, Some("key-1"), &claims).unwrap();
        let (header, signed) = verify(&jws, key);
        assert_eq!(
            Value::Object(header),
            json!({"alg": alg.name(), "typ": "JWT", "kid": "key-1"})
        );
        assert_eq!(signed, claims);
        let jws = sign(key, alg, None, &claims).unwrap();
        let (header, _) = verify(&jws, key);
        assert_eq!(
            Value::Object(header),
            json!({"alg": alg.name(), "typ": "JWT"})
        );
    }

    #[test]
    fn algorithm_names_round_trip() {
        for (alg, name) in Algorithm::ALL.into_iter().zip(Algorithm::NAMES) {
            assert_eq!(alg.name(), name);
            assert_eq!(alg.to_string(), name);
            assert_eq!(Algorithm::from_name(name), Some(alg));
            assert!(alg.key_type().algorithms().contains(&alg));
        }
        assert_eq!(Algorithm::from_name("es256"), None);
        assert_eq!(Algorithm::from_name("HS256"), None);
        assert_eq!(Algorithm::from_name("PS384"), None);
        assert_eq!(
            Algorithm::listed(),
            "`RS256`, `RS384`, `PS256`, `ES256` or `EdDSA`"
        );
    }

    /// The checker keeps its own list (it sits below `oauth`); it must be
    /// this one.
    #[test]
    fn the_checker_knows_every_algorithm() {
        assert_eq!(crate::check::clients::ALGORITHMS, Algorithm::NAMES);
    }

    #[test]
    fn rsa_signs_rs256_rs384_and_ps256() {
        let material = parse(RSA_PKCS8_PEM);
        let key = &material.key;
        assert_eq!(
            key.algorithms(),
            &[Algorithm::Rs256, Algorithm::Rs384, Algorithm::Ps256]
        );
        assert_eq!(key.default_algorithm(), Algorithm::Rs256);
        for alg in [Algorithm::Rs256, Algorithm::Rs384, Algorithm::Ps256] {
            assert_signs(&material, alg);
        }
        // PKCS#1 v1.5 is deterministic, PSS is salted: two PS256
        // signatures of the same claims differ, and both verify.
        let claims = client_assertion_claims("c", "https://as.example/token", NOW);
        let rs = [0, 1].map(|_| sign(key, Algorithm::Rs384, None, &claims).unwrap());
        assert_eq!(rs[0], rs[1]);
        let ps = [0, 1].map(|_| sign(key, Algorithm::Ps256, None, &claims).unwrap());
        assert_ne!(ps[0], ps[1]);
        // A signature of one algorithm does not verify as another.
        let jws = sign(key, Algorithm::Ps256, None, &claims).unwrap();
        let parts: Vec<&str> = jws.split('.').collect();
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        let message = format!("{}.{}", parts[0], parts[1]);
        assert!(
            UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.public_key())
                .verify(message.as_bytes(), &signature)
                .is_err()
        );
    }

    #[test]
    fn ec_and_ed25519_keys_sign_their_one_algorithm() {
        let ec = parse(&pem("PRIVATE KEY", &p256_pkcs8()));
        assert_eq!(ec.key.algorithms(), &[Algorithm::Es256]);
        assert_signs(&ec, Algorithm::Es256);
        let (pkcs8, _) = ed25519();
        let ed = parse(&pem("PRIVATE KEY", &pkcs8));
        assert_eq!(ed.key.algorithms(), &[Algorithm::EdDsa]);
        assert_signs(&ed, Algorithm::EdDsa);
    }

    #[test]
    fn client_assertion_claims_follow_rfc_7523() {
        let claims = client_assertion_claims("client-1", "https://as.example/token", NOW);
        assert_eq!(claims["iss"], "client-1");
        assert_eq!(claims["sub"], "client-1");
        assert_eq!(claims["aud"], "https://as.example/token");
        assert_eq!(claims["iat"], NOW);
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            300
        );
        let jti = claims["jti"].as_str().unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(jti).unwrap().len(), 16, "{jti}");
        let again = client_assertion_claims("client-1", "https://as.example/token", NOW);
        assert_ne!(again["jti"], claims["jti"]);
        assert_eq!(claims.len(), 6);
    }

    #[test]
    fn grant_claims_have_scope_and_optional_subject() {
        let claims = grant_claims(
            "robot@x",
            Some("user@x"),
            "https://oauth2.googleapis.com/token",
            Some("a b"),
            NOW,
        );
        assert_eq!(claims["iss"], "robot@x");
        assert_eq!(claims["sub"], "user@x");
        assert_eq!(claims["aud"], "https://oauth2.googleapis.com/token");
        assert_eq!(claims["scope"], "a b");
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            3600
        );
        let bare = grant_claims("robot@x", None, "https://aud", None, NOW);
        assert!(!bare.contains_key("sub") && !bare.contains_key("scope"));
        assert_ne!(bare["jti"], claims["jti"]);
    }

    #[test]
    fn sign_with_an_algorithm_the_key_cannot_do_names_both() {
        let rsa = parse(RSA_PKCS8_PEM);
        let claims = client_assertion_claims("c", "a", NOW);
        let err = sign(&rsa.key, Algorithm::Es256, None, &claims).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the key is an RSA key; `ES256` needs a P-256 key"
        );
        assert_eq!(
            err.help(),
            "use `alg = \"RS256\"`, `alg = \"RS384\"` or `alg = \"PS256\"`, or store a P-256 key"
        );
        assert_eq!(err.code(), "svc::key::algorithm");
        let ec = parse(&pem("PRIVATE KEY", &p256_pkcs8()));
        for alg in [Algorithm::Ps256, Algorithm::Rs384] {
            let err = sign(&ec.key, alg, None, &claims).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("the key is a P-256 key; `{alg}` needs an RSA key")
            );
            assert_eq!(err.help(), "use `alg = \"ES256\"`, or store an RSA key");
        }
        let err = sign(&ec.key, Algorithm::EdDsa, None, &claims).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the key is a P-256 key; `EdDSA` needs an Ed25519 key"
        );
        assert!(ec.key.check_algorithm(Algorithm::Es256).is_ok());
    }
}
