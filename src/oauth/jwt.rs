//! Signing keys and JWT assertions (RFC 7515, RFC 7519, RFC 7523).
//!
//! [`KeyMaterial::parse`] reads the private key a secret holds: a PEM block
//! (PKCS#8, PKCS#1 or SEC1), a JWK or a JWK set with one private key, or a
//! Google service-account JSON key. [`sign`] makes a compact JWS of a claims
//! object with `RS256`, `ES256` or `EdDSA`; [`client_assertion_claims`]
//! (`private_key_jwt`, RFC 7523 §2.2) and [`grant_claims`] (the JWT-bearer
//! grant, §2.1) build the claims of the two uses.
//!
//! All of it runs on *ring*, the crypto svc's TLS already uses. No error,
//! `Debug` output or panic shows key material: errors name what is wrong (a
//! PEM label, a JWK member, a curve), never a value, and the buffers that
//! hold private key bytes on the way are zeroized when dropped.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::rsa::{KeyPairComponents, PublicKeyComponents};
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use rustls_pki_types::pem::{self, PemObject as _, SectionKind};
use serde_json::{Map, Value};
use zeroize::{Zeroize as _, Zeroizing};

/// How long a `private_key_jwt` client assertion is valid: RFC 7523 asks
/// for a short lifetime, and five minutes is what servers commonly accept.
pub const CLIENT_ASSERTION_LIFETIME: i64 = 300;

/// How long a JWT-bearer grant assertion is valid: one hour, Google's
/// maximum.
pub const GRANT_ASSERTION_LIFETIME: i64 = 3600;

/// A JWS signature algorithm svc signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl Algorithm {
    pub const ALL: [Algorithm; 3] = [Algorithm::Rs256, Algorithm::Es256, Algorithm::EdDsa];

    /// The JOSE names, in the order of [`Algorithm::ALL`].
    pub const NAMES: [&'static str; 3] = ["RS256", "ES256", "EdDSA"];

    /// The algorithm of a JOSE name; names are case-sensitive.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|alg| alg.name() == name)
    }

    /// The JOSE name, as in a JWS header's `alg`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Es256 => "ES256",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    /// The kind of key it signs with.
    pub fn key_type(self) -> KeyType {
        match self {
            Algorithm::Rs256 => KeyType::Rsa,
            Algorithm::Es256 => KeyType::P256,
            Algorithm::EdDsa => KeyType::Ed25519,
        }
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
            KeyType::Rsa => &[Algorithm::Rs256],
            KeyType::P256 => &[Algorithm::Es256],
            KeyType::Ed25519 => &[Algorithm::EdDsa],
        }
    }

    /// "an RSA key", for messages.
    fn a_key(self) -> &'static str {
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
        match self.key_type() {
            KeyType::Rsa => Algorithm::Rs256,
            KeyType::P256 => Algorithm::Es256,
            KeyType::Ed25519 => Algorithm::EdDsa,
        }
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

    fn signature(&self, alg: Algorithm, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rng = SystemRandom::new();
        match (&self.pair, alg) {
            (Pair::Rsa(pair), Algorithm::Rs256) => {
                let mut signature = vec![0; pair.public().modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)
                    .map_err(|_| KeyError::Signing)?;
                Ok(signature)
            }
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

    fn bare(key: SigningKey) -> KeyMaterial {
        KeyMaterial {
            key,
            kid: None,
            alg: None,
            client_email: None,
            token_uri: None,
        }
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

/// Why a key cannot be read or used. No variant carries key material: the
/// strings are PEM labels, member names, curve and algorithm names.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the secret is not a private key svc can read")]
    Unrecognized,
    #[error("the key is not valid JSON (line {line}, column {column})")]
    Json { line: usize, column: usize },
    #[error("the JSON object is not a key: it has no `kty`, `keys` or `private_key`")]
    UnrecognizedJson,
    #[error("the private key is encrypted")]
    Encrypted,
    #[error("the PEM text cannot be read: {problem}")]
    Pem { problem: &'static str },
    #[error(
        "the PEM holds no private key svc can read (it has {})",
        labels_list(labels)
    )]
    NoPrivateKeyInPem { labels: Vec<String> },
    #[error("the {format} is malformed")]
    Malformed { format: &'static str },
    #[error("the {format} cannot be used: {reason}")]
    Rejected {
        format: &'static str,
        reason: &'static str,
    },
    #[error("svc cannot sign with {kind} keys")]
    UnsupportedKeyType { kind: String },
    #[error("the EC key is on the curve `{curve}`; svc signs only with P-256 EC keys")]
    UnsupportedCurve { curve: String },
    #[error("the EC key gives its curve by explicit parameters, not by name")]
    ExplicitCurve,
    #[error("the RSA key has {bits} bits; svc signs with RSA keys of 2048 to 4096 bits")]
    RsaKeySize { bits: usize },
    #[error("the EC private key does not include its public key, which svc needs")]
    EcPublicKeyMissing,
    #[error("this JWK holds only the public key")]
    PublicOnly,
    #[error("the JWK set holds no private key (it has {keys} public keys)")]
    JwksWithoutPrivateKey { keys: usize },
    #[error("the JWK set holds {count} private keys; svc needs one")]
    JwksAmbiguous { count: usize, kids: Vec<String> },
    #[error("the JWK member `{member}` {problem}")]
    JwkMember {
        member: &'static str,
        problem: &'static str,
    },
    #[error("the JWK's `alg` is `{name}`, which svc does not sign with")]
    UnknownAlgorithm { name: String },
    #[error("the service-account key cannot be used: {problem}")]
    ServiceAccount { problem: &'static str },
    #[error("a `{kind}` credential holds no private key")]
    NotAKey { kind: String },
    #[error("the key is {}; `{alg}` needs {}", key.a_key(), alg.key_type().a_key())]
    AlgorithmMismatch { key: KeyType, alg: Algorithm },
    #[error("signing the JWT failed")]
    Signing,
}

impl KeyError {
    /// A stable code, as diagnostics have.
    pub fn code(&self) -> &'static str {
        match self {
            KeyError::Unrecognized
            | KeyError::Json { .. }
            | KeyError::UnrecognizedJson
            | KeyError::Pem { .. }
            | KeyError::Malformed { .. }
            | KeyError::Rejected { .. }
            | KeyError::JwkMember { .. }
            | KeyError::ServiceAccount { .. } => "svc::key::invalid",
            KeyError::Encrypted => "svc::key::encrypted",
            KeyError::NoPrivateKeyInPem { .. }
            | KeyError::PublicOnly
            | KeyError::JwksWithoutPrivateKey { .. }
            | KeyError::NotAKey { .. } => "svc::key::not_private",
            KeyError::UnsupportedKeyType { .. }
            | KeyError::UnsupportedCurve { .. }
            | KeyError::ExplicitCurve
            | KeyError::RsaKeySize { .. }
            | KeyError::EcPublicKeyMissing
            | KeyError::UnknownAlgorithm { .. } => "svc::key::unsupported",
            KeyError::JwksAmbiguous { .. } => "svc::key::ambiguous",
            KeyError::AlgorithmMismatch { .. } => "svc::key::algorithm",
            KeyError::Signing => "svc::key::signing",
        }
    }

    /// How to fix it.
    pub fn help(&self) -> String {
        const FORMATS: &str = "store a PEM private key (`-----BEGIN PRIVATE KEY-----`, \
            `RSA PRIVATE KEY` or `EC PRIVATE KEY`), a JWK with its private members, or a \
            Google service-account JSON key";
        const TO_PKCS8: &str = "`openssl pkcs8 -topk8 -nocrypt -in key.pem -out key-pkcs8.pem`";
        let fixed = match self {
            KeyError::Unrecognized | KeyError::UnrecognizedJson | KeyError::Json { .. } => FORMATS,
            KeyError::Encrypted => {
                return format!(
                    "svc needs the key unencrypted (the secret store encrypts it): {TO_PKCS8} \
                     asks for the passphrase and writes it unencrypted"
                );
            }
            KeyError::Pem { .. } | KeyError::Malformed { .. } | KeyError::Rejected { .. } => {
                "store the whole key as it was generated, `-----BEGIN` and `-----END` lines \
                 included; `openssl pkey -in key.pem -check -noout` tests a PEM key"
            }
            KeyError::NoPrivateKeyInPem { labels } => {
                let has = |part: &str| labels.iter().any(|label| label.contains(part));
                if has("OPENSSH PRIVATE KEY") {
                    "OpenSSH's own format is not read: `ssh-keygen -p -m PKCS8 -f KEY` rewrites \
                     an RSA or ECDSA key as PKCS#8 PEM"
                } else if has("PUBLIC KEY") || has("CERTIFICATE") {
                    "store the private key, not the public key or the certificate"
                } else {
                    return format!("{FORMATS}; {TO_PKCS8} converts most other private keys");
                }
            }
            KeyError::UnsupportedKeyType { .. } | KeyError::UnsupportedCurve { .. } => {
                "store an RSA key (`RS256`), a P-256 EC key (`ES256`) or an Ed25519 key \
                 (`EdDSA`); `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` \
                 makes a P-256 key"
            }
            KeyError::ExplicitCurve => {
                "`openssl ec -in key.pem -param_enc named_curve -out named.pem` names the \
                 curve; store the file it writes"
            }
            KeyError::RsaKeySize { .. } => {
                "make a new key (`openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`) \
                 and register its public key with the authorization server"
            }
            // Not `openssl pkcs8` or `openssl pkey`: they keep leaving it out.
            KeyError::EcPublicKeyMissing => {
                "`openssl ec -in key.pem -out key-with-public.pem` adds it; store the file it \
                 writes"
            }
            KeyError::PublicOnly | KeyError::JwksWithoutPrivateKey { .. } => {
                "store the private JWK, the one with `d`; the server keeps the public one"
            }
            KeyError::JwksAmbiguous { kids, .. } if !kids.is_empty() => {
                return format!(
                    "store the one private JWK to sign with, not the whole set (its keys have \
                     the ids {})",
                    labels_list(kids)
                );
            }
            KeyError::JwksAmbiguous { .. } => {
                "store the one private JWK to sign with, not the whole set"
            }
            KeyError::JwkMember { .. } => {
                "a private JWK has `kty`, the public members and the private ones (`d`, and \
                 for RSA `p`, `q`, `dp`, `dq` and `qi`), each base64url (RFC 7518 §6)"
            }
            KeyError::UnknownAlgorithm { .. } => {
                "svc signs with `RS256`, `ES256` and `EdDSA`; remove the JWK's `alg` or set it \
                 to one of them"
            }
            KeyError::ServiceAccount { .. } => {
                "store the JSON key file as downloaded (`gcloud iam service-accounts keys \
                 create`)"
            }
            KeyError::NotAKey { .. } => {
                return format!(
                    "a service-account key has `\"type\": \"service_account\"` and a \
                     `private_key`; or {FORMATS}"
                );
            }
            KeyError::AlgorithmMismatch { key, alg } => {
                let names: Vec<String> = key
                    .algorithms()
                    .iter()
                    .map(|alg| format!("`alg = \"{alg}\"`"))
                    .collect();
                return format!(
                    "use {}, or store {}",
                    names.join(" or "),
                    alg.key_type().a_key()
                );
            }
            KeyError::Signing => "the key may be damaged; store it again, or report a bug",
        };
        fixed.into()
    }
}

/// "`A`, `B`" for a message.
fn labels_list(labels: &[String]) -> String {
    if labels.is_empty() {
        return "nothing".into();
    }
    labels
        .iter()
        .map(|label| format!("`{label}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A name from the input (a label, a curve, a `kty`), made safe to show:
/// short, without control characters.
fn shown(name: &str) -> String {
    const MAX: usize = 40;
    let mut out: String = name
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if name.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
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
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
    {
        return Err(KeyError::Encrypted);
    }
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(text.as_bytes()) {
        let (kind, der) = section.map_err(pem_error)?;
        let der = Zeroizing::new(der);
        match kind {
            SectionKind::PrivateKey => return from_pkcs8(&der),
            SectionKind::RsaPrivateKey => return from_pkcs1(&der, "PKCS#1 RSA key"),
            SectionKind::EcPrivateKey => return from_sec1(&der),
            _ => {}
        }
    }
    let mut labels: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(label) = line
            .trim()
            .strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.strip_suffix("-----"))
        {
            let label = shown(label);
            if !labels.contains(&label) {
                labels.push(label);
            }
        }
    }
    Err(KeyError::NoPrivateKeyInPem { labels })
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

fn from_pkcs8(der: &[u8]) -> Result<SigningKey, KeyError> {
    let parts = der::pkcs8(der).ok_or(KeyError::Malformed {
        format: "PKCS#8 key",
    })?;
    match parts.algorithm {
        oid::RSA_ENCRYPTION => from_pkcs1(parts.private_key, "PKCS#8 RSA key"),
        oid::EC_PUBLIC_KEY => {
            let malformed = KeyError::Malformed {
                format: "PKCS#8 EC key",
            };
            let Some(curve) = parts.curve else {
                return Err(malformed);
            };
            check_curve(curve)?;
            let sec1 = der::sec1(parts.private_key).ok_or(malformed)?;
            if let Some(curve) = sec1.curve {
                check_curve(curve)?;
            }
            if !sec1.has_public_key {
                return Err(KeyError::EcPublicKeyMissing);
            }
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &SystemRandom::new())
                .map(|pair| SigningKey {
                    pair: Pair::P256(pair),
                })
                .map_err(|err| rejected("PKCS#8 EC key", err))
        }
        oid::ED25519 => Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map(|pair| SigningKey {
                pair: Pair::Ed25519(pair),
            })
            .map_err(|err| rejected("PKCS#8 Ed25519 key", err)),
        other => Err(KeyError::UnsupportedKeyType {
            kind: oid::algorithm_name(other),
        }),
    }
}

/// An error unless the curve is P-256.
fn check_curve(curve: der::Curve<'_>) -> Result<(), KeyError> {
    match curve {
        der::Curve::Named(oid::P256) => Ok(()),
        der::Curve::Named(other) => Err(KeyError::UnsupportedCurve {
            curve: oid::curve_name(other),
        }),
        der::Curve::Explicit => Err(KeyError::ExplicitCurve),
    }
}

/// A DER `RSAPrivateKey`.
fn from_pkcs1(der: &[u8], format: &'static str) -> Result<SigningKey, KeyError> {
    let bits = der::rsa_modulus_bits(der).ok_or(KeyError::Malformed { format })?;
    check_rsa_size(bits)?;
    RsaKeyPair::from_der(der)
        .map(|pair| SigningKey {
            pair: Pair::Rsa(pair),
        })
        .map_err(|err| rejected(format, err))
}

fn check_rsa_size(bits: usize) -> Result<(), KeyError> {
    if (2048..=4096).contains(&bits) {
        Ok(())
    } else {
        Err(KeyError::RsaKeySize { bits })
    }
}

/// A DER `ECPrivateKey`, which *ring* reads only inside PKCS#8: it is
/// wrapped in a PKCS#8 v1 structure for P-256.
fn from_sec1(der: &[u8]) -> Result<SigningKey, KeyError> {
    let sec1 = der::sec1(der).ok_or(KeyError::Malformed {
        format: "SEC1 EC key",
    })?;
    // Without a curve P-256 is assumed, and ring checks the sizes.
    if let Some(curve) = sec1.curve {
        check_curve(curve)?;
    }
    if !sec1.has_public_key {
        return Err(KeyError::EcPublicKeyMissing);
    }
    let pkcs8 = der::wrap_p256_sec1(der);
    EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &pkcs8,
        &SystemRandom::new(),
    )
    .map(|pair| SigningKey {
        pair: Pair::P256(pair),
    })
    .map_err(|err| rejected("SEC1 EC key", err))
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
        parse_jwks(keys)
    } else if object.contains_key("kty") {
        parse_jwk(object)
    } else if object.contains_key("private_key") || object.contains_key("type") {
        parse_service_account(object)
    } else {
        Err(KeyError::UnrecognizedJson)
    }
}

fn parse_jwks(keys: &Value) -> Result<KeyMaterial, KeyError> {
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

fn parse_jwk(jwk: &Map<String, Value>) -> Result<KeyMaterial, KeyError> {
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
        key,
        kid: jwk_str(jwk, "kid")?.map(str::to_owned),
        alg,
        client_email: None,
        token_uri: None,
    })
}

fn rsa_from_jwk(jwk: &Map<String, Value>) -> Result<SigningKey, KeyError> {
    if jwk.contains_key("oth") {
        return Err(KeyError::UnsupportedKeyType {
            kind: "multi-prime RSA".into(),
        });
    }
    let n = jwk_bytes(jwk, "n")?;
    let e = jwk_bytes(jwk, "e")?;
    let d = jwk_bytes(jwk, "d")?;
    // RFC 7518 makes the CRT members optional, but ring signs with them.
    let [p, q, dp, dq, qi] = ["p", "q", "dp", "dq", "qi"].map(|member| jwk_bytes(jwk, member));
    let (p, q, dp, dq, qi) = (p?, q?, dp?, dq?, qi?);
    let n = unsigned(&n);
    check_rsa_size(bit_length(n))?;
    let components = KeyPairComponents {
        public_key: PublicKeyComponents { n, e: unsigned(&e) },
        d: unsigned(&d),
        p: unsigned(&p),
        q: unsigned(&q),
        dP: unsigned(&dp),
        dQ: unsigned(&dq),
        qInv: unsigned(&qi),
    };
    RsaKeyPair::from_components(&components)
        .map(|pair| SigningKey {
            pair: Pair::Rsa(pair),
        })
        .map_err(|err| rejected("RSA JWK", err))
}

fn p256_from_jwk(jwk: &Map<String, Value>) -> Result<SigningKey, KeyError> {
    const LEN: usize = 32;
    let x = jwk_bytes(jwk, "x")?;
    let y = jwk_bytes(jwk, "y")?;
    let d = jwk_bytes(jwk, "d")?;
    let too_long = |member| KeyError::JwkMember {
        member,
        problem: "is longer than a P-256 value (32 bytes)",
    };
    // RFC 7518 asks for full-length values; shorter ones are padded.
    let mut public = Vec::with_capacity(1 + 2 * LEN);
    public.push(0x04);
    for (member, value) in [("x", &x), ("y", &y)] {
        let padding = LEN.checked_sub(value.len()).ok_or(too_long(member))?;
        public.extend(std::iter::repeat_n(0, padding));
        public.extend_from_slice(value);
    }
    let mut private = Zeroizing::new([0u8; LEN]);
    let padding = LEN.checked_sub(d.len()).ok_or(too_long("d"))?;
    private[padding..].copy_from_slice(&d);
    EcdsaKeyPair::from_private_key_and_public_key(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &private[..],
        &public,
        &SystemRandom::new(),
    )
    .map(|pair| SigningKey {
        pair: Pair::P256(pair),
    })
    .map_err(|err| rejected("EC JWK", err))
}

fn ed25519_from_jwk(jwk: &Map<String, Value>) -> Result<SigningKey, KeyError> {
    let x = jwk_bytes(jwk, "x")?;
    let d = jwk_bytes(jwk, "d")?;
    Ed25519KeyPair::from_seed_and_public_key(&d, &x)
        .map(|pair| SigningKey {
            pair: Pair::Ed25519(pair),
        })
        .map_err(|err| rejected("Ed25519 JWK", err))
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

/// A big-endian unsigned integer without its leading zeros, as *ring*
/// wants it.
fn unsigned(bytes: &[u8]) -> &[u8] {
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

// --- DER ---------------------------------------------------------------

/// The object identifiers svc looks at, as the contents of a DER OID.
mod oid {
    pub const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    pub const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    pub const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    pub const ED25519: &[u8] = &[0x2b, 0x65, 0x70];

    /// The name of a curve, or its dotted OID.
    pub fn curve_name(oid: &[u8]) -> String {
        match oid {
            P256 => "P-256".into(),
            [0x2b, 0x81, 0x04, 0x00, 0x22] => "P-384".into(),
            [0x2b, 0x81, 0x04, 0x00, 0x23] => "P-521".into(),
            [0x2b, 0x81, 0x04, 0x00, 0x0a] => "secp256k1".into(),
            _ => dotted(oid),
        }
    }

    /// The name of a key algorithm, for "svc cannot sign with {} keys".
    pub fn algorithm_name(oid: &[u8]) -> String {
        match oid {
            [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a] => "RSA-PSS".into(),
            [0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01] => "DSA".into(),
            [0x2b, 0x65, 0x71] => "Ed448".into(),
            [0x2b, 0x65, 0x6e] => "X25519".into(),
            [0x2b, 0x65, 0x6f] => "X448".into(),
            _ => format!("`{}`", dotted(oid)),
        }
    }

    /// `1.2.840.10045.3.1.7`; "an unknown OID" when it cannot be read.
    fn dotted(oid: &[u8]) -> String {
        let mut arcs: Vec<u64> = Vec::new();
        let mut arc: u64 = 0;
        if oid.is_empty() || oid.len() > 32 || oid.last().is_some_and(|byte| byte & 0x80 != 0) {
            return "an unknown OID".into();
        }
        for &byte in oid {
            if arc > u64::MAX >> 7 {
                return "an unknown OID".into();
            }
            arc = (arc << 7) | u64::from(byte & 0x7f);
            if byte & 0x80 == 0 {
                arcs.push(arc);
                arc = 0;
            }
        }
        let mut text = match arcs.first() {
            Some(&first) if first < 80 => format!("{}.{}", first / 40, first % 40),
            Some(&first) => format!("2.{}", first - 80),
            None => return "an unknown OID".into(),
        };
        for arc in &arcs[1..] {
            text.push_str(&format!(".{arc}"));
        }
        text
    }
}

/// Just enough DER to find what a key is and to wrap a SEC1 key.
mod der {
    use zeroize::Zeroizing;

    pub const INTEGER: u8 = 0x02;
    pub const BIT_STRING: u8 = 0x03;
    pub const OCTET_STRING: u8 = 0x04;
    pub const OID: u8 = 0x06;
    pub const SEQUENCE: u8 = 0x30;
    pub const CONTEXT_0: u8 = 0xa0;
    pub const CONTEXT_1: u8 = 0xa1;

    /// The next element's tag and contents; `None` when malformed.
    pub fn read<'a>(input: &mut &'a [u8]) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 3 || rest.len() < count {
                return None;
            }
            let (bytes, after) = rest.split_at(count);
            rest = after;
            bytes
                .iter()
                .fold(0, |len, &byte| (len << 8) | usize::from(byte))
        };
        if rest.len() < len {
            return None;
        }
        let (contents, after) = rest.split_at(len);
        *input = after;
        Some((tag, contents))
    }

    /// The next element's contents if it has the tag.
    pub fn expect<'a>(input: &mut &'a [u8], tag: u8) -> Option<&'a [u8]> {
        match read(input)? {
            (found, contents) if found == tag => Some(contents),
            _ => None,
        }
    }

    /// Appends an element.
    pub fn write(tag: u8, contents: &[u8], out: &mut Vec<u8>) {
        out.push(tag);
        let len = contents.len();
        match len {
            0..0x80 => out.push(len as u8),
            0x80..0x100 => out.extend([0x81, len as u8]),
            0x100..0x1_0000 => out.extend([0x82, (len >> 8) as u8, len as u8]),
            _ => out.extend([0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8]),
        }
        out.extend_from_slice(contents);
    }

    /// An EC key's curve: its OID, or the curve spelled out.
    #[derive(Clone, Copy)]
    pub enum Curve<'a> {
        Named(&'a [u8]),
        Explicit,
    }

    impl<'a> Curve<'a> {
        /// The curve of EC parameters (RFC 5480 `ECParameters`).
        fn of((tag, contents): (u8, &'a [u8])) -> Option<Curve<'a>> {
            match tag {
                OID => Some(Curve::Named(contents)),
                SEQUENCE => Some(Curve::Explicit),
                _ => None,
            }
        }
    }

    /// The parts of a PKCS#8 `PrivateKeyInfo` (or `OneAsymmetricKey`).
    pub struct Pkcs8<'a> {
        pub algorithm: &'a [u8],
        /// The algorithm's parameters read as an EC key's curve.
        pub curve: Option<Curve<'a>>,
        pub private_key: &'a [u8],
    }

    pub fn pkcs8(der: &[u8]) -> Option<Pkcs8<'_>> {
        let mut input = der;
        let mut info = expect(&mut input, SEQUENCE)?;
        expect(&mut info, INTEGER)?;
        let mut algorithm_id = expect(&mut info, SEQUENCE)?;
        let algorithm = expect(&mut algorithm_id, OID)?;
        let curve = read(&mut algorithm_id).and_then(Curve::of);
        let private_key = expect(&mut info, OCTET_STRING)?;
        Some(Pkcs8 {
            algorithm,
            curve,
            private_key,
        })
    }

    /// What a SEC1 `ECPrivateKey` says besides its private key.
    pub struct Sec1<'a> {
        pub curve: Option<Curve<'a>>,
        pub has_public_key: bool,
    }

    pub fn sec1(der: &[u8]) -> Option<Sec1<'_>> {
        let mut input = der;
        let mut key = expect(&mut input, SEQUENCE)?;
        if expect(&mut key, INTEGER)? != [1] {
            return None;
        }
        expect(&mut key, OCTET_STRING)?;
        let mut sec1 = Sec1 {
            curve: None,
            has_public_key: false,
        };
        while !key.is_empty() {
            match read(&mut key)? {
                (CONTEXT_0, mut parameters) => {
                    sec1.curve = Some(Curve::of(read(&mut parameters)?)?)
                }
                (CONTEXT_1, mut public_key) => {
                    sec1.has_public_key = expect(&mut public_key, BIT_STRING)?.len() > 1;
                }
                _ => {}
            }
        }
        Some(sec1)
    }

    /// The modulus size of a PKCS#1 `RSAPrivateKey`.
    pub fn rsa_modulus_bits(der: &[u8]) -> Option<usize> {
        let mut input = der;
        let mut key = expect(&mut input, SEQUENCE)?;
        expect(&mut key, INTEGER)?;
        let modulus = expect(&mut key, INTEGER)?;
        Some(super::bit_length(super::unsigned(modulus)))
    }

    /// A P-256 SEC1 key inside a PKCS#8 v1 `PrivateKeyInfo`: SEQUENCE {
    /// INTEGER 0, SEQUENCE { id-ecPublicKey, prime256v1 }, OCTET STRING {
    /// the SEC1 key } }.
    pub fn wrap_p256_sec1(sec1: &[u8]) -> Zeroizing<Vec<u8>> {
        let mut algorithm_id = Vec::with_capacity(32);
        write(OID, super::oid::EC_PUBLIC_KEY, &mut algorithm_id);
        write(OID, super::oid::P256, &mut algorithm_id);
        // Sized up front: growing would leave copies of the key behind.
        let capacity = sec1.len() + algorithm_id.len() + 32;
        let mut contents = Zeroizing::new(Vec::with_capacity(capacity));
        write(INTEGER, &[0], &mut contents);
        write(SEQUENCE, &algorithm_id, &mut contents);
        write(OCTET_STRING, sec1, &mut contents);
        let mut pkcs8 = Zeroizing::new(Vec::with_capacity(capacity));
        write(SEQUENCE, &contents, &mut pkcs8);
        pkcs8
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD;
    use ring::signature::{
        ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED_SIGNING, ED25519,
        RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey, VerificationAlgorithm,
    };
    use serde_json::json;

    use super::*;

    /// The one RSA test key (`openssl genrsa 2048`, PKCS#8): ring cannot
    /// generate RSA keys, and the other forms are derived from it here.
    const RSA_PKCS8_PEM: &str = include_str!("../../tests/fixtures/jwt-rsa-2048.pem");

    const NOW: i64 = 1_750_000_000;

    fn b64url(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn pem(label: &str, der: &[u8]) -> String {
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
    fn pem_body_lines(pem: &str) -> Vec<&str> {
        pem.lines()
            .filter(|line| !line.starts_with("-----"))
            .collect()
    }

    /// A PEM block's DER, decoded without the code under test.
    fn pem_der(pem: &str) -> Vec<u8> {
        STANDARD.decode(pem_body_lines(pem).concat()).unwrap()
    }

    fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        der::write(tag, contents, &mut out);
        out
    }

    fn rsa_pkcs1_der() -> Vec<u8> {
        der::pkcs8(&pem_der(RSA_PKCS8_PEM))
            .unwrap()
            .private_key
            .to_vec()
    }

    /// The RSA key as a private JWK, from the integers of its PKCS#1 form.
    fn rsa_jwk() -> Map<String, Value> {
        let pkcs1 = rsa_pkcs1_der();
        let mut input = &pkcs1[..];
        let mut key = der::expect(&mut input, der::SEQUENCE).unwrap();
        der::expect(&mut key, der::INTEGER).unwrap();
        let mut jwk = Map::new();
        jwk.insert("kty".into(), "RSA".into());
        for member in ["n", "e", "d", "p", "q", "dp", "dq", "qi"] {
            let value = der::expect(&mut key, der::INTEGER).unwrap();
            jwk.insert(member.into(), b64url(unsigned(value)).into());
        }
        jwk
    }

    fn p256_pkcs8() -> Vec<u8> {
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .unwrap()
            .as_ref()
            .to_vec()
    }

    /// The private scalar and the uncompressed public point of a P-256
    /// PKCS#8 key.
    fn p256_parts(pkcs8: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let sec1 = der::pkcs8(pkcs8).unwrap().private_key;
        let mut input = sec1;
        let mut key = der::expect(&mut input, der::SEQUENCE).unwrap();
        der::expect(&mut key, der::INTEGER).unwrap();
        let d = der::expect(&mut key, der::OCTET_STRING).unwrap().to_vec();
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8,
            &SystemRandom::new(),
        )
        .unwrap();
        (d, pair.public_key().as_ref().to_vec())
    }

    /// A SEC1 `ECPrivateKey` as openssl writes it (with the curve) or not,
    /// with or without the public key.
    fn sec1(d: &[u8], public: Option<&[u8]>, curve: Option<&[u8]>) -> Vec<u8> {
        let mut contents = tlv(der::INTEGER, &[1]);
        contents.extend(tlv(der::OCTET_STRING, d));
        if let Some(curve) = curve {
            contents.extend(tlv(der::CONTEXT_0, &tlv(der::OID, curve)));
        }
        if let Some(public) = public {
            let mut bits = vec![0];
            bits.extend_from_slice(public);
            contents.extend(tlv(der::CONTEXT_1, &tlv(der::BIT_STRING, &bits)));
        }
        tlv(der::SEQUENCE, &contents)
    }

    fn p256_jwk(pkcs8: &[u8]) -> Map<String, Value> {
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
    fn ed25519() -> (Vec<u8>, Vec<u8>) {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .unwrap()
            .as_ref()
            .to_vec();
        let mut inner = der::pkcs8(&pkcs8).unwrap().private_key;
        let seed = der::expect(&mut inner, der::OCTET_STRING).unwrap().to_vec();
        (pkcs8, seed)
    }

    /// The PKCS#8 v1 form `openssl genpkey -algorithm ed25519` writes: no
    /// public key.
    fn ed25519_openssl_pkcs8(seed: &[u8]) -> Vec<u8> {
        let mut contents = tlv(der::INTEGER, &[0]);
        contents.extend(tlv(der::SEQUENCE, &tlv(der::OID, oid::ED25519)));
        contents.extend(tlv(der::OCTET_STRING, &tlv(der::OCTET_STRING, seed)));
        tlv(der::SEQUENCE, &contents)
    }

    fn parse(text: &str) -> KeyMaterial {
        KeyMaterial::parse(text).unwrap_or_else(|err| panic!("{err}: {}", err.help()))
    }

    fn parse_err(text: &str) -> KeyError {
        match KeyMaterial::parse(text) {
            Ok(material) => panic!("parsed as {material:?}"),
            Err(err) => err,
        }
    }

    fn decode_json(part: &str) -> Map<String, Value> {
        let bytes = URL_SAFE_NO_PAD.decode(part).unwrap();
        serde_json::from_slice::<Value>(&bytes)
            .unwrap()
            .as_object()
            .unwrap()
            .clone()
    }

    /// Verifies a compact JWS against the key's public part; its header
    /// and claims.
    fn verify(jws: &str, key: &SigningKey) -> (Map<String, Value>, Map<String, Value>) {
        let parts: Vec<&str> = jws.split('.').collect();
        assert_eq!(parts.len(), 3, "{jws}");
        let header = decode_json(parts[0]);
        let claims = decode_json(parts[1]);
        let algorithm: &dyn VerificationAlgorithm = match header["alg"].as_str().unwrap() {
            "RS256" => &RSA_PKCS1_2048_8192_SHA256,
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

    /// Signs a client assertion with the key's default algorithm and
    /// checks the result.
    fn assert_signs(material: &KeyMaterial, alg: Algorithm) {
        let key = &material.key;
        assert_eq!(key.default_algorithm(), alg);
        assert_eq!(key.algorithms(), &[alg]);
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
        }
        assert_eq!(Algorithm::from_name("es256"), None);
        assert_eq!(Algorithm::from_name("HS256"), None);
    }

    #[test]
    fn rsa_pkcs8_pem_signs_rs256() {
        let material = parse(&format!("\n  {RSA_PKCS8_PEM}\n\n"));
        assert_eq!(format!("{:?}", material.key), "SigningKey(RSA 2048)");
        assert_signs(&material, Algorithm::Rs256);
    }

    #[test]
    fn rsa_pkcs1_pem_signs_rs256() {
        let material = parse(&pem("RSA PRIVATE KEY", &rsa_pkcs1_der()));
        assert_eq!(material.key.key_type(), KeyType::Rsa);
        assert_signs(&material, Algorithm::Rs256);
    }

    #[test]
    fn rsa_jwk_signs_rs256() {
        let mut jwk = rsa_jwk();
        jwk.insert("kid".into(), "rsa-1".into());
        jwk.insert("alg".into(), "RS256".into());
        jwk.insert("use".into(), "sig".into());
        let material = parse(&Value::Object(jwk).to_string());
        assert_eq!(material.kid.as_deref(), Some("rsa-1"));
        assert_eq!(material.alg, Some(Algorithm::Rs256));
        assert_signs(&material, Algorithm::Rs256);
    }

    #[test]
    fn p256_pkcs8_pem_signs_es256() {
        let material = parse(&pem("PRIVATE KEY", &p256_pkcs8()));
        assert_eq!(format!("{:?}", material.key), "SigningKey(P-256)");
        assert_signs(&material, Algorithm::Es256);
    }

    #[test]
    fn p256_sec1_pem_signs_es256() {
        let (d, public) = p256_parts(&p256_pkcs8());
        // As `openssl ecparam -genkey` writes it: a parameters block first,
        // the curve inside the key.
        let openssl = format!(
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{}",
            pem("EC PRIVATE KEY", &sec1(&d, Some(&public), Some(oid::P256)))
        );
        assert_signs(&parse(&openssl), Algorithm::Es256);
        // Without the curve, as ring writes the inner key.
        assert_signs(
            &parse(&pem("EC PRIVATE KEY", &sec1(&d, Some(&public), None))),
            Algorithm::Es256,
        );
    }

    #[test]
    fn ec_key_without_public_key_gets_openssl_help() {
        let (d, _) = p256_parts(&p256_pkcs8());
        let sec1_alone = sec1(&d, None, Some(oid::P256));
        let pkcs8 = der::wrap_p256_sec1(&sec1_alone);
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
    fn p256_jwk_signs_es256() {
        let mut jwk = p256_jwk(&p256_pkcs8());
        jwk.insert("kid".into(), "ec-1".into());
        let material = parse(&Value::Object(jwk.clone()).to_string());
        assert_eq!(material.kid.as_deref(), Some("ec-1"));
        assert_eq!(material.alg, None);
        assert_signs(&material, Algorithm::Es256);
        // A key whose x does not fit d.
        let other = p256_jwk(&p256_pkcs8());
        jwk.insert("x".into(), other["x"].clone());
        let err = parse_err(&Value::Object(jwk).to_string());
        assert!(matches!(err, KeyError::Rejected { .. }), "{err:?}");
    }

    #[test]
    fn ed25519_pkcs8_v2_and_openssl_v1_sign_eddsa() {
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
    }

    #[test]
    fn ed25519_jwk_signs_eddsa() {
        let (pkcs8, seed) = ed25519();
        let public = Ed25519KeyPair::from_pkcs8(&pkcs8)
            .unwrap()
            .public_key()
            .as_ref()
            .to_vec();
        let jwk = json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64url(&public),
            "d": b64url(&seed),
            "alg": "EdDSA",
        });
        let material = parse(&jwk.to_string());
        assert_eq!(material.alg, Some(Algorithm::EdDsa));
        assert_signs(&material, Algorithm::EdDsa);
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
        assert_eq!(err.help(), "use `alg = \"RS256\"`, or store a P-256 key");
        assert_eq!(err.code(), "svc::key::algorithm");
        let ec = parse(&pem("PRIVATE KEY", &p256_pkcs8()));
        let err = sign(&ec.key, Algorithm::EdDsa, None, &claims).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the key is a P-256 key; `EdDSA` needs an Ed25519 key"
        );
        assert!(ec.key.check_algorithm(Algorithm::Es256).is_ok());
    }

    #[test]
    fn jwk_alg_must_fit_the_key() {
        let mut jwk = rsa_jwk();
        jwk.insert("alg".into(), "ES256".into());
        let err = parse_err(&Value::Object(jwk.clone()).to_string());
        assert!(matches!(err, KeyError::AlgorithmMismatch { .. }), "{err:?}");
        jwk.insert("alg".into(), "PS256".into());
        let err = parse_err(&Value::Object(jwk).to_string());
        assert_eq!(
            err.to_string(),
            "the JWK's `alg` is `PS256`, which svc does not sign with"
        );
    }

    #[test]
    fn public_only_keys_are_refused() {
        let mut jwk = p256_jwk(&p256_pkcs8());
        jwk.remove("d");
        let err = parse_err(&Value::Object(jwk).to_string());
        assert_eq!(err.to_string(), "this JWK holds only the public key");
        let (pkcs8, _) = ed25519();
        let public = Ed25519KeyPair::from_pkcs8(&pkcs8)
            .unwrap()
            .public_key()
            .as_ref()
            .to_vec();
        let mut contents = tlv(der::SEQUENCE, &tlv(der::OID, oid::ED25519));
        contents.extend(tlv(der::BIT_STRING, &[&[0][..], &public].concat()));
        let spki = pem("PUBLIC KEY", &tlv(der::SEQUENCE, &contents));
        let err = parse_err(&spki);
        assert!(matches!(err, KeyError::NoPrivateKeyInPem { .. }), "{err:?}");
        assert!(err.to_string().contains("`PUBLIC KEY`"), "{err}");
        assert!(err.help().contains("not the public key"), "{}", err.help());
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
            assert!(err.help().contains("unencrypted"), "{}", err.help());
        }
    }

    #[test]
    fn other_curves_are_named() {
        let p384 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        let err = parse_err(&pem("PRIVATE KEY", p384.as_ref()));
        assert_eq!(
            err.to_string(),
            "the EC key is on the curve `P-384`; svc signs only with P-256 EC keys"
        );
        let p384_oid = [0x2b, 0x81, 0x04, 0x00, 0x22];
        let err = parse_err(&pem(
            "EC PRIVATE KEY",
            &sec1(&[1; 48], Some(&[4; 97]), Some(&p384_oid)),
        ));
        assert!(
            matches!(&err, KeyError::UnsupportedCurve { curve } if curve == "P-384"),
            "{err:?}"
        );
        // A curve spelled out instead of named, in SEC1 and in PKCS#8.
        let mut explicit = tlv(der::INTEGER, &[1]);
        explicit.extend(tlv(der::OCTET_STRING, &[1; 32]));
        explicit.extend(tlv(
            der::CONTEXT_0,
            &tlv(der::SEQUENCE, &tlv(der::INTEGER, &[1])),
        ));
        let explicit = tlv(der::SEQUENCE, &explicit);
        let err = parse_err(&pem("EC PRIVATE KEY", &explicit));
        assert!(matches!(err, KeyError::ExplicitCurve), "{err:?}");
        let mut algorithm_id = tlv(der::OID, oid::EC_PUBLIC_KEY);
        algorithm_id.extend(tlv(der::SEQUENCE, &tlv(der::INTEGER, &[1])));
        let mut pkcs8 = tlv(der::INTEGER, &[0]);
        pkcs8.extend(tlv(der::SEQUENCE, &algorithm_id));
        pkcs8.extend(tlv(der::OCTET_STRING, &explicit));
        let err = parse_err(&pem("PRIVATE KEY", &tlv(der::SEQUENCE, &pkcs8)));
        assert!(matches!(err, KeyError::ExplicitCurve), "{err:?}");
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
        // An algorithm svc has no name for is shown as its OID.
        let mut contents = tlv(der::INTEGER, &[0]);
        contents.extend(tlv(der::SEQUENCE, &tlv(der::OID, &[0x2a, 0x03, 0x04])));
        contents.extend(tlv(der::OCTET_STRING, &[0; 4]));
        let err = parse_err(&pem("PRIVATE KEY", &tlv(der::SEQUENCE, &contents)));
        assert_eq!(err.to_string(), "svc cannot sign with `1.2.3.4` keys");
    }

    #[test]
    fn small_rsa_key_is_refused() {
        // Only the modulus is looked at before the size is refused.
        let mut n = vec![0xc5; 128];
        n[127] = 0x01;
        let mut jwk = rsa_jwk();
        jwk.insert("n".into(), b64url(&n).into());
        let err = parse_err(&Value::Object(jwk).to_string());
        assert_eq!(
            err.to_string(),
            "the RSA key has 1024 bits; svc signs with RSA keys of 2048 to 4096 bits"
        );
        let mut key = tlv(der::INTEGER, &[0]);
        key.extend(tlv(der::INTEGER, &n));
        let err = parse_err(&pem("RSA PRIVATE KEY", &tlv(der::SEQUENCE, &key)));
        assert!(
            matches!(err, KeyError::RsaKeySize { bits: 1024 }),
            "{err:?}"
        );
    }

    #[test]
    fn garbage_is_refused() {
        let body = pem_body_lines(RSA_PKCS8_PEM);
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
                "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----",
                "svc::key::not_private",
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
        assert_eq!(err.code(), "svc::key::invalid", "{err:?}");
        assert!(body.len() > 10);
    }

    #[test]
    fn escaped_newlines_are_accepted() {
        let escaped = RSA_PKCS8_PEM.trim().replace('\n', "\\n");
        assert_eq!(parse(&escaped).key.key_type(), KeyType::Rsa);
    }

    /// The private parts of the test keys must not appear in any message.
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
