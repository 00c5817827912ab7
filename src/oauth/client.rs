//! An `oauth_client` evaluated against an environment's store: its
//! endpoints, and the credentials it presents to them.

use std::collections::HashMap;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::assertion::{Assertion, Claims, Signer};
use super::discovery::{self, Metadata};
use super::error::{Code, Error};
use super::server_url;
use crate::net::http::{self, Http};
use crate::redact::Redactor;
use crate::secrets::Document;
use crate::syntax::ast::*;

/// The value of a client's expression: text, and the secrets it reads.
/// Every secret value read is added to `redactor`.
pub fn value(
    expr: &Expr,
    what: &str,
    document: &Document,
    env: &str,
    redactor: &mut Redactor,
) -> Result<String, Error> {
    match &expr.kind {
        ExprKind::String { parts } => {
            let mut text = String::new();
            for part in parts {
                match part {
                    StringPart::Text { value } => text.push_str(value),
                    StringPart::Interpolation { expr } => {
                        text.push_str(&value(expr, what, document, env, redactor)?)
                    }
                }
            }
            Ok(text)
        }
        ExprKind::Secret { name } => match document.get(name.as_str()) {
            Some(entry) if !entry.value.expose().trim().is_empty() => {
                let text = entry.value.expose().to_string();
                redactor.add(&text);
                Ok(text)
            }
            _ => Err(Error::new(
                Code::MissingValue,
                format!("secret `{}` ({what}) has no value in `{env}`", name.text),
            )
            .help(format!(
                "set it: `svc secret set {} --env {env}`",
                name.text
            ))),
        },
        // The checker allows nothing else in a client.
        _ => Err(Error::new(
            Code::MissingValue,
            format!("`{what}` is not a string or a secret"),
        )),
    }
}

/// A URL filled from the client's provider profile: each secret in it (a
/// parameter, such as Zendesk's `subdomain = secret.ZENDESK_SUBDOMAIN`)
/// must be one part of the URL, as a literal parameter must be for the
/// checker: a value with `/`, `@` or `#` would send the client's
/// credentials to another host. The value itself is never shown.
fn profile_parameters(expr: &Expr, what: &str, document: &Document) -> Result<(), Error> {
    let ExprKind::String { parts } = &expr.kind else {
        return Ok(());
    };
    for part in parts {
        if let StringPart::Interpolation { expr } = part
            && let ExprKind::Secret { name } = &expr.kind
            && let Some(entry) = document.get(name.as_str())
            && !crate::providers::fill::is_url_part(entry.value.expose())
        {
            return Err(Error::new(
                Code::InvalidUrl,
                format!(
                    "secret `{}` cannot stand in the client's `{what}`: it is not one part of a URL",
                    name.text
                ),
            )
            .help("a provider parameter is a host name, a label, a realm or a tenant: letters, digits and `.`, `-`, `_`, `~`, `:`"));
        }
    }
    Ok(())
}

/// How the client authenticates, with its values.
enum Method {
    Basic(Zeroizing<String>),
    Post(Zeroizing<String>),
    Jwt(Arc<Signer>),
    None,
}

/// A client's id and credentials.
pub struct Credentials {
    pub client_id: String,
    method: Method,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let method = match &self.method {
            Method::Basic(_) => "client_secret_basic",
            Method::Post(_) => "client_secret_post",
            Method::Jwt(_) => "private_key_jwt",
            Method::None => "none",
        };
        write!(f, "Credentials({}, {method})", self.client_id)
    }
}

impl Credentials {
    pub fn resolve(
        client: &OAuthClientDecl,
        document: &Document,
        env: &str,
        redactor: &mut Redactor,
    ) -> Result<Credentials, Error> {
        let client_id = match &client.client_id {
            Some(expr) => value(expr, "client_id", document, env, redactor)?,
            None => String::new(),
        };
        let method =
            match &client.client_auth {
                Some(ClientAuth::SecretBasic { secret, .. }) => Method::Basic(Zeroizing::new(
                    value(secret, "the client secret", document, env, redactor)?,
                )),
                Some(ClientAuth::SecretPost { secret, .. }) => Method::Post(Zeroizing::new(value(
                    secret,
                    "the client secret",
                    document,
                    env,
                    redactor,
                )?)),
                Some(ClientAuth::PrivateKeyJwt(jwt)) => {
                    Method::Jwt(Arc::new(signer(jwt, document, env, redactor)?.0))
                }
                Some(ClientAuth::None { .. }) | None => Method::None,
            };
        Ok(Credentials { client_id, method })
    }

    /// What a request to `endpoint` (the token, device authorization or
    /// another endpoint of the server) sends to authenticate the client.
    pub fn auth(&self, endpoint: &url::Url) -> http::Auth {
        let id = ("client_id".to_string(), self.client_id.clone());
        match &self.method {
            // RFC 6749 §2.3.1: both parts are form-encoded first.
            Method::Basic(secret) => {
                http::Auth::Basic(form_encode(&self.client_id), form_encode(secret))
            }
            Method::Post(secret) => http::Auth::Form {
                fields: vec![id, ("client_secret".into(), secret.to_string())],
                signed: None,
            },
            Method::Jwt(signer) => http::Auth::Form {
                fields: vec![
                    id,
                    (
                        "client_assertion_type".into(),
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                    ),
                ],
                signed: Some(http::Signed {
                    field: "client_assertion",
                    assertion: Arc::new(Assertion {
                        signer: signer.clone(),
                        claims: Claims::Client {
                            client_id: self.client_id.clone(),
                            audience: endpoint.to_string(),
                        },
                    }),
                }),
            },
            Method::None => http::Auth::Form {
                fields: vec![id],
                signed: None,
            },
        }
    }

    /// Whether the credentials hold a secret (all but a public client's).
    pub fn is_secret(&self) -> bool {
        !matches!(self.method, Method::None)
    }

    /// How the form shows these credentials in a dry run.
    pub fn shown(&self) -> (Option<&'static str>, Vec<String>) {
        match &self.method {
            Method::Basic(_) => (Some("Basic ***"), Vec::new()),
            Method::Post(_) => (
                None,
                vec![
                    format!("client_id={}", self.client_id),
                    "client_secret=***".into(),
                ],
            ),
            Method::Jwt(_) => (
                None,
                vec![
                    format!("client_id={}", self.client_id),
                    "client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
                        .into(),
                    "client_assertion=***".into(),
                ],
            ),
            Method::None => (None, vec![format!("client_id={}", self.client_id)]),
        }
    }
}

/// The signer of a `private_key_jwt`, and what its key secret said.
pub fn signer(
    jwt: &PrivateKeyJwt,
    document: &Document,
    env: &str,
    redactor: &mut Redactor,
) -> Result<(Signer, super::assertion::KeyFacts), Error> {
    let (secret, text) = key_text(&jwt.key, document, env, redactor)?;
    let kid = match &jwt.kid {
        Some(kid) => Some(value(kid, "kid", document, env, redactor)?),
        None => None,
    };
    Signer::from_secret(
        &secret,
        &text,
        jwt.alg.as_ref().map(|a| a.value.as_str()),
        kid,
    )
}

/// The name and text of a key secret.
pub fn key_text(
    key: &Expr,
    document: &Document,
    env: &str,
    redactor: &mut Redactor,
) -> Result<(String, Zeroizing<String>), Error> {
    let name = match &key.kind {
        ExprKind::Secret { name } => name.text.clone(),
        _ => "key".to_string(),
    };
    let text = Zeroizing::new(value(key, "the signing key", document, env, redactor)?);
    Ok((name, text))
}

fn form_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A client's endpoints, as declared or discovered.
#[derive(Clone, Debug)]
pub struct Endpoints {
    pub authorize: Option<url::Url>,
    pub token: url::Url,
    pub device: Option<url::Url>,
    /// The token revocation endpoint (RFC 7009).
    pub revocation: Option<url::Url>,
    /// The issuer, when the client names one: an `iss` in the redirect
    /// must match it (RFC 9207).
    pub issuer: Option<String>,
    /// Whether the server said it supports PKCE with S256 (`None`: it did not say).
    pub s256: Option<bool>,
    /// Extra parameters of the authorization request, from the client's
    /// provider profile (Google's `access_type=offline`).
    pub authorize_params: Vec<(String, String)>,
}

/// Discovery documents already fetched, by issuer.
pub type Discovered = HashMap<String, Arc<Metadata>>;

impl Endpoints {
    /// The client's URLs; with an `issuer`, discovery fills in those not
    /// given (once per issuer and `discovered` cache).
    pub async fn resolve(
        client: &OAuthClientDecl,
        document: &Document,
        env: &str,
        http: &Http,
        redactor: &mut Redactor,
        discovered: &mut Discovered,
    ) -> Result<Endpoints, Error> {
        let url_of = |expr: &Option<Expr>, what: &str, redactor: &mut Redactor| {
            expr.as_ref()
                .map(|e| {
                    if client.filled.contains(&what) {
                        profile_parameters(e, what, document)?;
                    }
                    let text = value(e, what, document, env, redactor)?;
                    server_url(&text, what, redactor)
                })
                .transpose()
        };
        let mut authorize = url_of(&client.authorize_url, "authorize_url", redactor)?;
        let mut token = url_of(&client.token_url, "token_url", redactor)?;
        let mut device = url_of(
            &client.device_authorization_url,
            "device_authorization_url",
            redactor,
        )?;
        let mut revocation = url_of(&client.revocation_url, "revocation_url", redactor)?;
        let mut issuer = None;
        let mut s256 = None;
        if let Some(expr) = &client.issuer {
            let name = value(expr, "issuer", document, env, redactor)?;
            let metadata = match discovered.get(&name) {
                Some(metadata) => metadata.clone(),
                None => {
                    let metadata = Arc::new(discovery::discover(http, &name, redactor).await?);
                    discovered.insert(name.clone(), metadata.clone());
                    metadata
                }
            };
            let from = |found: &Option<String>, what: &str| {
                found
                    .as_deref()
                    .map(|text| server_url(text, what, redactor))
                    .transpose()
            };
            if authorize.is_none() {
                authorize = from(&metadata.authorization_endpoint, "authorization_endpoint")?;
            }
            if token.is_none() {
                token = from(&metadata.token_endpoint, "token_endpoint")?;
            }
            if device.is_none() {
                device = from(
                    &metadata.device_authorization_endpoint,
                    "device_authorization_endpoint",
                )?;
            }
            if revocation.is_none() {
                revocation = from(&metadata.revocation_endpoint, "revocation_endpoint")?;
            }
            s256 = metadata
                .code_challenge_methods_supported
                .as_ref()
                .map(|methods| methods.iter().any(|m| m == "S256"));
            issuer = Some(metadata.issuer.clone());
        }
        let token = token.ok_or_else(|| {
            Error::new(
                Code::Discovery,
                format!("oauth_client `{}` has no token endpoint", client.name.text),
            )
            .help("the discovery document names none: give `token_url`")
        })?;
        let authorize_params = client
            .provider
            .as_ref()
            .and_then(|p| crate::providers::get(&p.name.text))
            .and_then(|p| p.authorization.as_ref())
            .map(|a| a.params.clone().into_iter().collect())
            .unwrap_or_default();
        Ok(Endpoints {
            authorize,
            token,
            device,
            revocation,
            issuer,
            s256,
            authorize_params,
        })
    }
}
