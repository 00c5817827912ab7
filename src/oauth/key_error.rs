//! Why a signing key cannot be read or used: [`KeyError`], with a stable
//! code and a help line for each case.

use super::jwt::{Algorithm, KeyType};

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
    #[error("the key is an RSA-PSS key (`id-RSASSA-PSS`), which svc does not read")]
    RsaPssKey,
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
            | KeyError::RsaPssKey
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
                "store an RSA key (`RS256`, `RS384`, `PS256`), a P-256 EC key (`ES256`) or an \
                 Ed25519 key (`EdDSA`); `openssl genpkey -algorithm EC -pkeyopt \
                 ec_paramgen_curve:P-256` makes a P-256 key"
            }
            KeyError::RsaPssKey => {
                "an ordinary RSA key signs `PS256` too: make one with `openssl genpkey -algorithm \
                 RSA -pkeyopt rsa_keygen_bits:2048` and write `alg = \"PS256\"`"
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
                return format!(
                    "svc signs with {}; remove the JWK's `alg` or set it to one of them",
                    Algorithm::listed()
                );
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
                    or_list(&names),
                    alg.key_type().a_key()
                );
            }
            KeyError::Signing => "the key may be damaged; store it again, or report a bug",
        };
        fixed.into()
    }
}

/// "`A`, `B`" for a message; "nothing" when there are none.
pub(super) fn labels_list(labels: &[String]) -> String {
    if labels.is_empty() {
        return "nothing".into();
    }
    labels
        .iter()
        .map(|label| format!("`{label}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// "A", "A or B", "A, B or C".
pub(super) fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// A name from the input (a PEM label, a `kty`, a curve, a `kid`), made
/// safe to show: at most 40 characters, control characters replaced, and
/// no run of more than 11 of the characters base64 and hex are made of
/// that looks encoded (it has a digit, or both cases). That is enough for
/// any name (`authorized_user`, `OPENSSH PRIVATE KEY`, a `kid` prefix), and
/// too short for 9 bytes of a key that landed in the wrong place (a PEM
/// body run into its `BEGIN` line, a JWK member pasted over another).
pub(super) fn shown(name: &str) -> String {
    const MAX: usize = 40;
    const RUN: usize = 11;
    let encodes = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '-' | '_' | '=');
    let looks_encoded = |run: &str| {
        run.chars().any(|c| c.is_ascii_digit())
            || (run.chars().any(|c| c.is_ascii_uppercase())
                && run.chars().any(|c| c.is_ascii_lowercase()))
    };
    let mut kept = String::new();
    let mut rest = name;
    while let Some(first) = rest.chars().next() {
        let same = |c: char| encodes(c) == encodes(first);
        let end = rest.find(|c: char| !same(c)).unwrap_or(rest.len());
        let (part, after) = rest.split_at(end);
        if encodes(first) && part.len() > RUN && looks_encoded(part) {
            kept.push_str(&part[..RUN]);
            kept.push('…');
        } else {
            kept.push_str(part);
        }
        rest = after;
    }
    let mut out: String = kept
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if kept.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn shown_names_are_short_and_hold_no_long_encoded_run() {
        for name in [
            "OPENSSH PRIVATE KEY",
            "CERTIFICATE REQUEST",
            "P-384",
            "secp384r1",
            "Ed448",
            "2026-11",
            "authorized_user",
            "service_account_key_file",
        ] {
            assert_eq!(shown(name), name);
        }
        assert_eq!(shown("a\u{1b}[31mb"), "a?[31mb");
        assert_eq!(
            shown("P-256RopouRY5U0gb1g2dfA43Ry4uqDus47p3Fn9"),
            "P-256RopouR…"
        );
        assert_eq!(
            shown("PRIVATE KEY----- MIIEvQIBADANBgkqhkiG9w0BAQEF"),
            "PRIVATE KEY----- MIIEvQIBADA…"
        );
        assert_eq!(
            shown("0b4f0a3e-7d43-4a5b-9d4c-2a9c1a4e3b11"),
            "0b4f0a3e-7d…"
        );
        let words = "word ".repeat(20);
        assert_eq!(shown(&words).chars().count(), 41);
        assert!(shown(&words).ends_with('…'));
    }
}
