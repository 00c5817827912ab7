//! One provider profile: what a provider's public documentation says about
//! its OAuth 2.0 endpoints and behaviour, each part with the URL it was
//! taken from.
//!
//! A profile is a TOML file under `providers/` (compiled into the binary).
//! Every section names its `source`; a value the documentation does not
//! give is left out, never guessed. Unknown keys are refused, so a typo
//! in a profile fails the catalog's test rather than being ignored.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A provider profile, as its file says.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The profile's name: the file's name, a lower-case identifier.
    #[serde(skip_deserializing)]
    pub name: String,
    /// The provider's name as people write it (`Microsoft Entra ID`).
    pub title: String,
    /// The provider's main OAuth 2.0 guide.
    pub docs: String,
    /// Values a client passes as `provider NAME(param = ...)`, written
    /// `{param}` in the profile's URLs.
    #[serde(default, rename = "parameter")]
    pub parameters: Vec<Parameter>,
    pub endpoints: Endpoints,
    pub client_auth: ClientAuth,
    #[serde(default)]
    pub authorization: Option<Authorization>,
    #[serde(default)]
    pub refresh: Option<Refresh>,
    #[serde(default)]
    pub access_token: Option<AccessToken>,
    #[serde(default)]
    pub client_credentials: Option<ClientCredentials>,
    /// How the token endpoint says a refresh failed, beyond RFC 6749 §5.2.
    #[serde(default, rename = "failure")]
    pub failures: Vec<Failure>,
    /// What a person setting up a client should know.
    #[serde(default)]
    pub notes: Vec<String>,
    /// What the provider does that a profile cannot say yet.
    #[serde(default)]
    pub not_expressible: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Parameter {
    pub name: String,
    pub description: String,
    /// An example value, for `svc init` and the docs.
    pub example: String,
    /// The value when the client passes none; without one the parameter
    /// is required.
    #[serde(default)]
    pub default: Option<String>,
    pub source: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoints {
    pub source: String,
    #[serde(default)]
    pub authorize_url: Option<String>,
    pub token_url: String,
    #[serde(default)]
    pub revocation_url: Option<String>,
    #[serde(default)]
    pub device_authorization_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientAuth {
    pub source: String,
    /// What the token endpoint accepts; the first is what `svc init` writes.
    pub methods: Vec<AuthMethod>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    /// A public client: its id and PKCE, no secret.
    None,
}

impl AuthMethod {
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::None => "none",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    pub source: String,
    /// Scopes without which the provider issues no refresh token.
    #[serde(default)]
    pub offline_scopes: Vec<String>,
    /// Extra parameters of the authorization request (Google's
    /// `access_type=offline`).
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    #[serde(default)]
    pub pkce: Option<Pkce>,
    /// How scopes are joined in requests, when not by a space (Strava: `,`).
    #[serde(default)]
    pub scope_separator: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pkce {
    Required,
    Supported,
}

impl Pkce {
    pub fn name(self) -> &'static str {
        match self {
            Pkce::Required => "required",
            Pkce::Supported => "supported",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Refresh {
    pub source: String,
    pub rotation: Rotation,
    /// Extra form parameters of a refresh request.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// How long a refresh token lives, as documented (`60d`).
    #[serde(
        default,
        deserialize_with = "duration",
        serialize_with = "duration_text"
    )]
    pub refresh_token_lifetime: Option<Duration>,
    /// The field of a token answer that says when the refresh token
    /// expires (`x_refresh_token_expires_in`).
    #[serde(default)]
    pub refresh_token_expires_field: Option<String>,
}

/// What a refresh does to the refresh token it presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rotation {
    /// Every answer brings a new refresh token; the one presented is spent.
    Always,
    /// An answer may bring a new refresh token, which must then be kept.
    Sometimes,
    /// The refresh token stays the same.
    Never,
}

impl Rotation {
    pub fn name(self) -> &'static str {
        match self {
            Rotation::Always => "always",
            Rotation::Sometimes => "sometimes",
            Rotation::Never => "never",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccessToken {
    pub source: String,
    /// How long an access token lives, as documented: the expiry of an
    /// answer without `expires_in`.
    #[serde(
        default,
        deserialize_with = "duration",
        serialize_with = "duration_text"
    )]
    pub lifetime: Option<Duration>,
    /// Whether token answers carry `expires_in` (most do).
    #[serde(default = "yes")]
    pub expires_in: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCredentials {
    pub source: String,
    /// Extra form parameters of the request.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

/// One way the token endpoint says a refresh failed.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    pub source: String,
    /// The HTTP status it comes with (Slack and GitHub answer 200).
    #[serde(default = "bad_request")]
    pub status: u16,
    /// The answer's `error` (or the value of `error_field`).
    pub error: String,
    /// The field of the JSON answer that holds the error, when it is not
    /// `error` (HubSpot: `status`).
    #[serde(default)]
    pub error_field: Option<String>,
    /// A fragment of its `error_description`, where the `error` alone does
    /// not tell.
    #[serde(default)]
    pub description: Option<String>,
    pub means: FailureMeaning,
}

/// What a failure says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureMeaning {
    /// The refresh token is dead: a person must consent again.
    Reconsent,
    /// The client's own settings are wrong (secret, id, redirect).
    Misconfigured,
    /// It may pass: try again later.
    Transient,
}

impl FailureMeaning {
    pub fn name(self) -> &'static str {
        match self {
            FailureMeaning::Reconsent => "needs_reconsent",
            FailureMeaning::Misconfigured => "misconfigured",
            FailureMeaning::Transient => "transient",
        }
    }
}

fn duration_text<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&crate::syntax::duration::format(*d)),
        None => s.serialize_none(),
    }
}

fn yes() -> bool {
    true
}

fn bad_request() -> u16 {
    400
}

fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    crate::syntax::duration::parse(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

impl Profile {
    /// Every URL a section was taken from, with the section's name.
    pub fn sources(&self) -> Vec<(&'static str, &str)> {
        let mut out = vec![
            ("docs", self.docs.as_str()),
            ("endpoints", self.endpoints.source.as_str()),
            ("client_auth", self.client_auth.source.as_str()),
        ];
        out.extend(
            self.parameters
                .iter()
                .map(|p| ("parameter", p.source.as_str())),
        );
        if let Some(a) = &self.authorization {
            out.push(("authorization", &a.source));
        }
        if let Some(r) = &self.refresh {
            out.push(("refresh", &r.source));
        }
        if let Some(a) = &self.access_token {
            out.push(("access_token", &a.source));
        }
        if let Some(c) = &self.client_credentials {
            out.push(("client_credentials", &c.source));
        }
        out.extend(self.failures.iter().map(|f| ("failure", f.source.as_str())));
        out
    }

    /// The profile's URLs, with the names of the parameters they use.
    pub fn urls(&self) -> Vec<(&'static str, &str)> {
        let e = &self.endpoints;
        let mut out = vec![("token_url", e.token_url.as_str())];
        for (what, url) in [
            ("authorize_url", &e.authorize_url),
            ("revocation_url", &e.revocation_url),
            ("device_authorization_url", &e.device_authorization_url),
        ] {
            if let Some(url) = url {
                out.push((what, url.as_str()));
            }
        }
        out
    }

    pub fn parameter(&self, name: &str) -> Option<&Parameter> {
        self.parameters.iter().find(|p| p.name == name)
    }

    /// Whether a refresh may bring a new refresh token that must be kept.
    pub fn rotates(&self) -> bool {
        self.refresh
            .as_ref()
            .is_some_and(|r| r.rotation != Rotation::Never)
    }

    pub fn offline_scopes(&self) -> &[String] {
        self.authorization
            .as_ref()
            .map_or(&[], |a| a.offline_scopes.as_slice())
    }

    pub fn accepts(&self, method: &str) -> bool {
        self.client_auth.methods.iter().any(|m| m.name() == method)
    }
}
