//! Signed JWT assertions (RFC 7523): a client proving who it is
//! (`private_key_jwt`, §2.2) and a grant of its own (`jwt_bearer`, §2.1).
//! Each is signed when its request is sent, so every attempt carries a
//! fresh `jti` and a fresh `exp`.

use std::sync::Arc;

use super::error::{Code, Error};
use super::jwt::{self, Algorithm, KeyMaterial, SigningKey};

/// A key ready to sign, with the algorithm and key id it signs with.
pub struct Signer {
    key: SigningKey,
    alg: Algorithm,
    kid: Option<String>,
}

// A private key is never shown.
impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.alg.name())
    }
}

/// What a key secret said besides the key (a service-account JSON key
/// names its client and token endpoint).
pub struct KeyFacts {
    pub client_email: Option<String>,
    pub token_uri: Option<String>,
}

impl Signer {
    /// The key held in secret `secret` (a PEM, a JWK, or a service-account
    /// JSON key), with the algorithm asked for (else the JWK's, else the
    /// key type's) and key id (else the key's own).
    pub fn from_secret(
        secret: &str,
        text: &str,
        alg: Option<&str>,
        kid: Option<String>,
    ) -> Result<(Signer, KeyFacts), Error> {
        let material = KeyMaterial::parse(text).map_err(|e| {
            Error::new(
                Code::BadKey,
                format!("secret `{secret}` does not hold a signing key svc can use: {e}"),
            )
            .help(e.help())
        })?;
        let alg = match alg {
            Some(name) => Algorithm::from_name(name).ok_or_else(|| {
                Error::new(Code::BadKey, format!("unknown signing algorithm `{name}`"))
                    .help(format!("use {}", Algorithm::listed()))
            })?,
            None => material
                .alg
                .unwrap_or_else(|| material.key.default_algorithm()),
        };
        if !material.key.algorithms().contains(&alg) {
            let can: Vec<String> = material
                .key
                .algorithms()
                .iter()
                .map(|a| format!("`{}`", a.name()))
                .collect();
            return Err(Error::new(
                Code::BadKey,
                format!(
                    "the key in secret `{secret}` cannot sign with `{}`",
                    alg.name()
                ),
            )
            .help(format!("this key signs with {}", can.join(", "))));
        }
        let facts = KeyFacts {
            client_email: material.client_email.clone(),
            token_uri: material.token_uri.clone(),
        };
        let kid = kid.or(material.kid.clone());
        Ok((
            Signer {
                key: material.key,
                alg,
                kid,
            },
            facts,
        ))
    }
}

/// The claims an assertion makes.
#[derive(Debug)]
pub enum Claims {
    /// `private_key_jwt`: iss = sub = the client id, aud = the endpoint.
    Client { client_id: String, audience: String },
    /// The JWT-bearer grant: iss (and sub) name who asks, aud the token
    /// endpoint, and `scope` what for (Google reads it from the claims).
    Grant {
        issuer: String,
        subject: Option<String>,
        audience: String,
        scope: Option<String>,
    },
}

#[derive(Debug)]
pub struct Assertion {
    pub signer: Arc<Signer>,
    pub claims: Claims,
}

impl Assertion {
    /// Signs the assertion now: a new `jti`, `iat` now, `exp` soon after.
    pub fn sign(&self) -> Result<String, Error> {
        let now = chrono::Utc::now().timestamp();
        let claims = match &self.claims {
            Claims::Client {
                client_id,
                audience,
            } => jwt::client_assertion_claims(client_id, audience, now),
            Claims::Grant {
                issuer,
                subject,
                audience,
                scope,
            } => jwt::grant_claims(issuer, subject.as_deref(), audience, scope.as_deref(), now),
        };
        jwt::sign(
            &self.signer.key,
            self.signer.alg,
            self.signer.kid.as_deref(),
            &claims,
        )
        .map_err(|e| {
            Error::new(Code::BadKey, format!("cannot sign the assertion: {e}")).help(e.help())
        })
    }
}

impl crate::net::http::Sign for Assertion {
    fn sign(&self) -> Result<String, crate::net::http::SignError> {
        Assertion::sign(self).map_err(|e| crate::net::http::SignError {
            message: e.message,
            help: e.help,
        })
    }
}
