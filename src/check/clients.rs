//! Checks of `oauth_client` declarations, and of the signed-JWT forms of
//! `auth` that requests share with them.
//!
//! A client's values are evaluated outside any service (by `svc authorize`
//! and for `auth client(NAME)`), so they may only be literals and secrets.
//! Its URLs must be `https://`, or `http://` to a loopback address: an
//! authorization code, a client secret or a refresh token travel there.

use super::{Checker, values};
use crate::diagnostic::{Code, Diagnostic};
use crate::syntax::ast::*;

/// The JOSE algorithms svc signs with.
pub const ALGORITHMS: [&str; 5] = ["RS256", "RS384", "PS256", "ES256", "EdDSA"];

impl<'a, 'p> Checker<'a, 'p> {
    pub(super) fn check_client(&mut self, client: &'p OAuthClientDecl) {
        let Some(first) = self.symbols.clients.get(client.name.as_str()) else {
            return;
        };
        if !std::ptr::eq(*first, client) {
            // A second client of the same name: already reported.
            return;
        }
        for (what, expr) in client.expressions() {
            self.constant(expr, what);
        }
        for (what, url) in [
            ("issuer", &client.issuer),
            ("authorize_url", &client.authorize_url),
            ("token_url", &client.token_url),
            ("device_authorization_url", &client.device_authorization_url),
            ("revocation_url", &client.revocation_url),
        ] {
            if let Some(url) = url {
                self.server_url(url, what);
            }
        }
        for period in [
            &client.refresh_token_ttl,
            &client.keep_alive,
            &client.expiry_warning,
        ]
        .into_iter()
        .flatten()
        {
            self.positive_duration(period);
        }
        let mut missing = Vec::new();
        // A profile's missing parameter is said by `check_provider`.
        if client.issuer.is_none() && client.token_url.is_none() && client.provider.is_none() {
            missing.push("`issuer \"https://...\"` (or `token_url`)");
        }
        if client.client_id.is_none() {
            missing.push("`client_id`");
        }
        if client.client_auth.is_none() {
            missing.push("`client_auth`");
        }
        if !missing.is_empty() {
            let help = if client.client_auth.is_none() {
                format!(
                    "add {}; a public client (PKCE only) says `client_auth none`",
                    missing.join(" and ")
                )
            } else {
                format!("add {}", missing.join(" and "))
            };
            self.push(
                Diagnostic::new(
                    Code::MissingProperty,
                    format!(
                        "oauth_client `{}` is missing {}",
                        client.name.text,
                        missing.join(" and ")
                    ),
                )
                .label(client.name.span, "incomplete client")
                .help(help),
            );
        }
        if let Some(ClientAuth::PrivateKeyJwt(jwt)) = &client.client_auth {
            self.signing_key(&jwt.key);
            self.algorithm(jwt.alg.as_ref());
        }
        if let Some(scopes) = &client.scopes {
            self.scopes(scopes);
        }
        if let Some(stores) = &client.stores {
            self.stores(client, stores);
        }
    }

    /// A value of a client: literals and secrets, nothing a run computes.
    fn constant(&mut self, expr: &'p Expr, what: &str) {
        match &expr.kind {
            ExprKind::String { parts } => {
                for part in parts {
                    if let StringPart::Interpolation { expr } = part {
                        self.constant(expr, what);
                    }
                }
            }
            ExprKind::Secret { name } => {
                self.secret_reads.push((name.text.clone(), expr.span));
                if self.resolve_secret(name) {
                    self.usage.secret_used(name.as_str());
                }
            }
            ExprKind::Number { .. }
            | ExprKind::Duration { .. }
            | ExprKind::Bool { .. }
            | ExprKind::Null => {
                self.push(
                    Diagnostic::new(Code::TypeMismatch, format!("`{what}` must be a string"))
                        .label(expr.span, "not a string")
                        .help("write it in quotes, or read it from a secret: `secret.NAME`"),
                );
            }
            ExprKind::Variable { .. }
            | ExprKind::Param { .. }
            | ExprKind::Error { .. }
            | ExprKind::Run { .. }
            | ExprKind::Connection { .. }
            | ExprKind::Call { .. }
            | ExprKind::Not { .. }
            | ExprKind::Binary { .. } => {
                self.push(
                    Diagnostic::new(
                        Code::NotConstant,
                        format!("`{what}` of an oauth_client is a string or a secret"),
                    )
                    .label(expr.span, "computed when a run evaluates it")
                    .help(
                        "an oauth_client is read outside any service: use a string, `secret.NAME`, \
                         or a string that interpolates secrets",
                    ),
                );
            }
        }
    }

    /// An authorization server's URL: https, or http to loopback.
    pub(super) fn server_url(&mut self, url: &Expr, what: &str) {
        let complete = url.as_plain_string();
        let Some(text) = complete.clone().or_else(|| url.literal_prefix()) else {
            return;
        };
        if let Err(problem) = values::url(&text, complete.is_some()) {
            self.push(
                Diagnostic::new(Code::InvalidUrl, format!("invalid URL in `{what}`"))
                    .label(url.span, problem)
                    .help("write a full URL such as `\"https://idp.example.com/oauth/token\"`"),
            );
            return;
        }
        if values::is_plain_http_off_loopback(&text) {
            self.push(
                Diagnostic::new(Code::InsecureUrl, format!("`{what}` must use `https://`"))
                    .label(url.span, "plain http to a host that is not loopback")
                    .help(
                        "codes, client secrets and tokens travel to an authorization server: use \
                     `https://`; plain `http://` is only allowed to 127.0.0.1, ::1 or localhost",
                    ),
            );
        }
    }

    /// The key of a signed JWT: a secret, which should be locked.
    pub(super) fn signing_key(&mut self, key: &'p Expr) {
        let ExprKind::Secret { name } = &key.kind else {
            self.push(
                Diagnostic::new(Code::TypeMismatch, "a signing key is read from a secret")
                    .label(key.span, "not `secret.NAME`")
                    .help(
                        "store the key (a PEM, a JWK or a service-account JSON key) with \
                         `svc secret set NAME --env ENV`, and write `key = secret.NAME`",
                    ),
            );
            return;
        };
        self.locked_signer(
            name,
            key.span,
            Code::UnlockedSigningKey,
            "the signing key",
            "signs JWTs",
            "a private key is changed by people, never by a run",
        );
    }

    pub(super) fn algorithm(&mut self, alg: Option<&PlainString>) {
        let Some(alg) = alg else {
            return;
        };
        if ALGORITHMS.contains(&alg.value.as_str()) {
            return;
        }
        self.push(
            Diagnostic::new(
                Code::InvalidAlgorithm,
                format!("unknown signing algorithm `{}`", alg.value),
            )
            .label(alg.span, "not an algorithm svc signs with")
            .suggest(
                &alg.value,
                alg.value_span(),
                ALGORITHMS,
                "svc signs with `RS256`, `RS384`, `PS256` (RSA), `ES256` (P-256) or `EdDSA` (Ed25519)",
            ),
        );
    }

    /// RFC 6749 §3.3: scope tokens separated by spaces, each of printable
    /// ASCII without `"` and `\`.
    fn scopes(&mut self, scopes: &PlainString) {
        let problem = if scopes.value.trim().is_empty() {
            Some("no scope is given".to_string())
        } else {
            scopes
                .value
                .chars()
                .find(|c| *c != ' ' && !(matches!(*c, '\x21'..='\x7e') && *c != '"' && *c != '\\'))
                .map(|c| format!("{c:?} cannot appear in a scope"))
        };
        if let Some(problem) = problem {
            self.push(
                Diagnostic::new(Code::InvalidScope, "invalid scopes")
                    .label(scopes.span, problem)
                    .help("scopes are separated by spaces, each printable ASCII without `\"` and `\\`, such as `\"openid offline_access\"`"),
            );
        }
    }

    fn stores(&mut self, client: &'p OAuthClientDecl, stores: &'p TokenStores) {
        if client.authorize_url.is_none()
            && client.device_authorization_url.is_none()
            && client.issuer.is_none()
        {
            self.push(
                Diagnostic::new(
                    Code::MissingProperty,
                    format!(
                        "oauth_client `{}` stores tokens but cannot ask for them",
                        client.name.text
                    ),
                )
                .label(stores.span, "kept by `svc authorize`")
                .help("add `authorize_url` (or `device_authorization_url`, or `issuer` to discover them)"),
            );
        }
        let mut seen: Vec<&TokenStore> = Vec::new();
        for store in &stores.entries {
            if store.field.is_none() {
                self.push(
                    Diagnostic::new(
                        Code::UnknownTokenField,
                        format!(
                            "a token response has no field `{}` svc keeps",
                            store.field_name.text
                        ),
                    )
                    .label(store.field_name.span, "not a token field")
                    .suggest(
                        &store.field_name.text,
                        store.field_name.span,
                        TokenField::ALL,
                        "a client stores `access_token`, `refresh_token` and `id_token`",
                    ),
                );
            }
            if let Some(first) = seen
                .iter()
                .find(|s| s.field_name.text == store.field_name.text)
            {
                self.push(
                    Diagnostic::new(
                        Code::DuplicateProperty,
                        format!("`{}` is stored twice", store.field_name.text),
                    )
                    .label(store.span, "stored again here")
                    .label(first.span, "first stored here")
                    .help("store each field in one secret"),
                );
            } else if let Some(first) = seen.iter().find(|s| s.secret.text == store.secret.text) {
                self.push(
                    Diagnostic::new(
                        Code::DuplicateProperty,
                        format!("`{}` would hold two tokens", store.secret.text),
                    )
                    .label(store.secret.span, "stored here")
                    .label(first.secret.span, "and here")
                    .help("keep each token in a secret of its own"),
                );
            }
            seen.push(store);
            self.stored_secret(&store.secret);
        }
        self.authorizers(client, stores);
    }

    /// A secret `svc authorize` writes: declared, per environment, not locked.
    fn stored_secret(&mut self, name: &'p Name) {
        if !self.resolve_secret(name) {
            return;
        }
        self.usage.secret_used(name.as_str());
        let secret = self.symbols.secrets[name.as_str()];
        if !secret.is_environment_specific() {
            self.push(
                Diagnostic::new(
                    Code::SecretNotEnvironmentSpecific,
                    format!("`{}` is shared by every environment", name.text),
                )
                .label(name.span, "stored by `svc authorize`")
                .label(secret.name.span, "declared without `environment_specific`")
                .help(format!(
                    "tokens belong to one environment: add `environment_specific` to `secret {}`",
                    name.text
                ))
                .fix(self.make_environment_specific(secret)),
            );
        }
        if let Some(locked) = secret.locked {
            self.push(
                Diagnostic::new(Code::SecretLocked, format!("`{}` is locked", name.text))
                    .label(name.span, "stored by `svc authorize`")
                    .label(locked, "locked here")
                    .help(format!(
                        "remove `locked` from `secret {}`: `svc authorize` updates it",
                        name.text
                    )),
            );
        }
    }

    /// Warns when nobody may run `svc authorize` for a client: it updates
    /// every stored secret, so it needs `update_secret` on each.
    fn authorizers(&mut self, client: &'p OAuthClientDecl, stores: &'p TokenStores) {
        if stores.entries.is_empty() {
            return;
        }
        let symbols = self.symbols;
        let any = symbols.identity_order.iter().any(|identity| {
            stores
                .entries
                .iter()
                .all(|s| symbols.can_update_secret(identity, s.secret.as_str()))
        });
        if any {
            return;
        }
        let grants: Vec<String> = stores
            .entries
            .iter()
            .map(|s| format!("`grant update_secret {}`", s.secret.text))
            .collect();
        self.push(
            Diagnostic::new(
                Code::NoAuthorizer,
                format!(
                    "no user or service account may run `svc authorize {}`",
                    client.name.text
                ),
            )
            .label(stores.span, "updates these secrets")
            .help(format!(
                "give a role {} and that role to the person who authorizes",
                grants.join(" and ")
            )),
        );
    }
}
