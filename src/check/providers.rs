//! A program held to its provider profiles, and the token grants
//! (`refresh_tokens`, `client_credentials`) checked against their clients.
//!
//! `providers::fill` has already filled each client from its profile and
//! written out each grant; what it could not do is reported here: an
//! unknown profile or parameter, a client that contradicts its profile
//! (a URL, the client authentication, the scopes that bring a refresh
//! token), a grant of a client that has nowhere to store its tokens, and a
//! refresh written by hand that drops the token a rotating provider sends.

use super::Checker;
use super::rotation::Rotating;
use super::symbols::Symbols;
use crate::diagnostic::{Code, Diagnostic, Edit, Fix};
use crate::providers::{self, Profile};
use crate::syntax::ast::*;

impl<'p> Checker<'_, 'p> {
    /// The rules a client's profile sets; `None` when it names none.
    pub(super) fn check_provider(&mut self, client: &'p OAuthClientDecl) {
        let Some(use_) = &client.provider else {
            return;
        };
        let Some(profile) = providers::get(&use_.name.text) else {
            self.push(
                Diagnostic::new(
                    Code::UnknownProvider,
                    format!("no provider profile is called `{}`", use_.name.text),
                )
                .label(use_.name.span, "not in the catalog")
                .suggest(
                    &use_.name.text,
                    use_.name.span,
                    providers::names(),
                    "`svc provider list` shows the profiles; without one, state `token_url` and the rest yourself",
                ),
            );
            return;
        };
        // A secret argument is read where the filled URLs interpolate it.
        let interpolated = client.filled.iter().any(|f| f.ends_with("_url"));
        self.provider_arguments(use_, profile, !interpolated);
        self.stated_urls(client, use_, profile);
        if let Some(auth) = &client.client_auth
            && !profile.accepts(auth.method())
        {
            let accepted: Vec<String> = profile
                .client_auth
                .methods
                .iter()
                .map(|m| format!("`{}`", m.name()))
                .collect();
            self.push(
                Diagnostic::new(
                    Code::ClientAuthNotAccepted,
                    format!(
                        "{} does not accept `{}` at its token endpoint",
                        profile.title,
                        auth.method()
                    ),
                )
                .label(auth.span(), "not accepted by this provider")
                .help(format!(
                    "use {} (documented at {})",
                    accepted.join(" or "),
                    profile.client_auth.source
                )),
            );
        }
        let stores_refresh = client.store_of(TokenField::RefreshToken).is_some();
        let missing: Vec<&str> = profile
            .offline_scopes()
            .iter()
            .filter(|needed| {
                !client
                    .scopes
                    .as_ref()
                    .is_some_and(|s| s.value.split_whitespace().any(|s| s == needed.as_str()))
            })
            .map(String::as_str)
            .collect();
        if stores_refresh && !missing.is_empty() {
            let source = profile
                .authorization
                .as_ref()
                .map_or(profile.docs.as_str(), |a| a.source.as_str());
            let list = missing.join(" ");
            let mut diagnostic = Diagnostic::new(
                Code::OfflineScopeMissing,
                format!(
                    "{} issues no refresh token without the scope{} `{list}`",
                    profile.title,
                    if missing.len() > 1 { "s" } else { "" }
                ),
            )
            .help(format!("add `{list}` to `scopes` (documented at {source})"));
            diagnostic = match &client.scopes {
                Some(scopes) => diagnostic
                    .label(scopes.span, "asks for no refresh token")
                    .fix(Fix::replace(
                        format!("Add `{list}` to the scopes"),
                        true,
                        scopes.span,
                        format!("\"{} {list}\"", scopes.value.trim()),
                    )),
                None => diagnostic.label(client.name.span, "asks for no scopes"),
            };
            self.push(diagnostic);
        }
    }

    fn provider_arguments(&mut self, use_: &'p ProviderUse, profile: &Profile, reads: bool) {
        for arg in &use_.args {
            if profile.parameter(&arg.name.value).is_none() {
                let names: Vec<String> = profile
                    .parameters
                    .iter()
                    .map(|p| format!("`{}`", p.name))
                    .collect();
                let help = if names.is_empty() {
                    format!("`{}` takes no parameters", profile.name)
                } else {
                    format!("`{}` takes {}", profile.name, names.join(", "))
                };
                self.push(
                    Diagnostic::new(
                        Code::UnknownProviderParameter,
                        format!("`{}` has no parameter `{}`", profile.name, arg.name.value),
                    )
                    .label(arg.name.span, "not a parameter of this profile")
                    .suggest(
                        &arg.name.value,
                        arg.name.span,
                        profile.parameters.iter().map(|p| p.name.as_str()),
                        help,
                    ),
                );
            }
            self.constant_argument(&arg.value, reads);
            if let Some(text) = arg.value.as_plain_string()
                && !providers::fill::is_url_part(&text)
            {
                self.push(
                    Diagnostic::new(
                        Code::InvalidUrl,
                        format!(
                            "`{}` cannot stand in {}'s URLs",
                            arg.name.value, profile.title
                        ),
                    )
                    .label(arg.value.span, "not one part of a URL")
                    .help(
                        "a parameter is a host name, a label, a realm or a tenant: letters, digits \
                         and `.`, `-`, `_`, `~`, `:`",
                    ),
                );
            }
        }
        for parameter in &profile.parameters {
            if parameter.default.is_none() && use_.arg(&parameter.name).is_none() {
                let given: Vec<String> = use_
                    .args
                    .iter()
                    .map(|a| format!("{} = ...", a.name.value))
                    .chain([format!("{} = \"{}\"", parameter.name, parameter.example)])
                    .collect();
                self.push(
                    Diagnostic::new(
                        Code::MissingProviderParameter,
                        format!(
                            "`{}` needs the parameter `{}`",
                            profile.name, parameter.name
                        ),
                    )
                    .label(use_.span, format!("{} is missing", parameter.name))
                    .help(format!(
                        "{}: write `provider {}({})`",
                        parameter.description,
                        profile.name,
                        given.join(", ")
                    )),
                );
            }
        }
    }

    /// A parameter's value: a literal or a secret, as every client value.
    fn constant_argument(&mut self, expr: &'p Expr, reads: bool) {
        match &expr.kind {
            ExprKind::String { .. } | ExprKind::Secret { .. } => {
                if reads && let ExprKind::Secret { name } = &expr.kind {
                    self.secret_reads.push((name.text.clone(), expr.span));
                    if self.resolve_secret(name) {
                        self.usage.secret_used(name.as_str());
                    }
                }
            }
            _ => self.push(
                Diagnostic::new(
                    Code::NotConstant,
                    "a provider parameter is a string or a secret",
                )
                .label(expr.span, "not a string or a secret")
                .help("write the value in quotes, or `secret.NAME`"),
            ),
        }
    }

    /// The URLs the client states itself, against the profile's: a
    /// different one is allowed (a proxy, a region, a test server) and
    /// said, since it is where a client's refresh tokens are sent.
    fn stated_urls(&mut self, client: &'p OAuthClientDecl, use_: &ProviderUse, profile: &Profile) {
        let e = &profile.endpoints;
        for (what, stated, documented) in [
            ("token_url", &client.token_url, Some(&e.token_url)),
            (
                "authorize_url",
                &client.authorize_url,
                e.authorize_url.as_ref(),
            ),
            (
                "revocation_url",
                &client.revocation_url,
                e.revocation_url.as_ref(),
            ),
            (
                "device_authorization_url",
                &client.device_authorization_url,
                e.device_authorization_url.as_ref(),
            ),
        ] {
            if client.filled.contains(&what) {
                continue;
            }
            let (Some(stated), Some(template)) = (stated, documented) else {
                continue;
            };
            let Some(text) = stated.as_plain_string() else {
                continue;
            };
            let Some(expected) = providers::fill::url_expr(template, profile, use_, stated.span)
                .and_then(|e| e.as_plain_string())
            else {
                continue;
            };
            let without_query = |url: &str| url.split('?').next().unwrap_or(url).to_string();
            if without_query(&text) != without_query(&expected) {
                self.push(
                    Diagnostic::new(
                        Code::ProviderUrlDiffers,
                        format!("`{what}` is not {}'s documented one", profile.title),
                    )
                    .label(stated.span, format!("the profile says `{expected}`"))
                    .help(format!(
                        "remove `{what}` to use the documented URL ({}), or keep it if this \
                         server stands in for {} on purpose",
                        e.source, profile.title
                    ))
                    .fix(Fix::new(
                        format!("Use {}'s documented `{what}`", profile.title),
                        false,
                        vec![Edit {
                            span: stated.span,
                            text: format!("\"{expected}\""),
                        }],
                    )),
                );
            }
        }
    }

    /// `refresh_tokens client(NAME)` and `client_credentials client(NAME)`:
    /// the client exists, stores what the grant brings, and its profile
    /// offers the grant. The written-out steps are checked as statements.
    pub(super) fn check_token_grant(&mut self, grant: &'p TokenGrant, span: crate::source::Span) {
        self.resolve_client(&grant.client);
        let Some(client) = self.symbols.clients.get(grant.client.as_str()).copied() else {
            return;
        };
        let keyword = grant.grant.keyword();
        let profile = client
            .provider
            .as_ref()
            .and_then(|p| providers::get(&p.name.text));
        let offered = match (grant.grant, profile) {
            (_, None) => true,
            (GrantType::RefreshToken, Some(p)) => p.refresh.is_some(),
            (GrantType::ClientCredentials, Some(p)) => p.client_credentials.is_some(),
        };
        if !offered && let Some(profile) = profile {
            self.push(
                Diagnostic::new(
                    Code::GrantNotOffered,
                    format!(
                        "{} offers no {} grant, as its profile documents",
                        profile.title,
                        grant.grant.grant_type()
                    ),
                )
                .label(
                    span,
                    format!("`{keyword}` cannot work for `{}`", client.name.text),
                )
                .help(format!(
                    "`svc provider show {}` says what it offers ({})",
                    profile.name, profile.docs
                )),
            );
            return;
        }
        let mut missing = Vec::new();
        if client.store_of(TokenField::AccessToken).is_none() {
            missing.push("access_token = SECRET");
        }
        if grant.grant == GrantType::RefreshToken
            && client.store_of(TokenField::RefreshToken).is_none()
        {
            missing.push("refresh_token = SECRET");
        }
        if !missing.is_empty() {
            self.push(
                Diagnostic::new(
                    Code::GrantWithoutStore,
                    format!(
                        "`{keyword}` needs `{}` to store {}",
                        client.name.text,
                        missing
                            .iter()
                            .map(|m| format!("`{}`", m.split(' ').next().unwrap_or(m)))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ),
                )
                .label(span, "nowhere to keep the tokens")
                .label(client.name.span, "the client")
                .help(format!(
                    "add `stores {{ {} }}` to oauth_client `{}`",
                    missing.join("  "),
                    client.name.text
                )),
            );
        }
    }
}

/// Refreshes written out by hand: a `web_request` as `auth client(NAME)`
/// that sends `grant_type = "refresh_token"`. For a provider that rotates
/// refresh tokens, one whose action does not store the new token spends
/// the connection's only refresh token (an error); any other is said to be
/// one `refresh_tokens client(NAME)` (a warning, with the statement in
/// the help).
pub(super) fn check_written_out(
    symbols: &Symbols<'_>,
    rotating: &Rotating,
    diagnostics: &mut Vec<Diagnostic>,
) {
    for service in &symbols.service_order {
        for action in &service.actions {
            action.body.walk(&mut |statement| {
                let StatementKind::WebRequest(request) = &statement.kind else {
                    return;
                };
                if request.token_request {
                    return;
                }
                let Some(Auth::Client { client, .. }) = &request.auth else {
                    return;
                };
                let Some(RequestBody::Form { fields, .. }) = &request.body else {
                    return;
                };
                let refreshes = fields.iter().any(|f| {
                    f.name.value == "grant_type"
                        && f.value.as_plain_string().as_deref() == Some("refresh_token")
                });
                let Some(decl) = symbols.clients.get(client.as_str()) else {
                    return;
                };
                if !refreshes {
                    return;
                }
                let profile = decl.provider.as_ref().and_then(|p| providers::get(&p.name.text));
                let store = decl.store_of(TokenField::RefreshToken);
                let stored = store.is_some_and(|store| {
                    rotating
                        .get(&request.span)
                        .is_some_and(|spent| spent.contains(&store.text))
                });
                if let Some(profile) = profile.filter(|p| p.rotates())
                    && !stored
                {
                    let rotation = profile.refresh.as_ref().map_or("", |r| r.rotation.name());
                    diagnostics.push(
                        Diagnostic::new(
                            Code::RotatedTokenNotStored,
                            format!(
                                "{} rotates refresh tokens ({rotation}), and this refresh does not store the new one",
                                profile.title
                            ),
                        )
                        .label(request.span, "the refresh token it sends is spent; the one it gets back is dropped")
                        .help(format!(
                            "map `$.refresh_token` and `update_secret {}` with it when it has a value, or write `refresh_tokens client({})` (documented at {})",
                            store.map_or("REFRESH_TOKEN_SECRET", |s| s.text.as_str()),
                            client.text,
                            profile.refresh.as_ref().map_or(profile.docs.as_str(), |r| r.source.as_str())
                        )),
                    );
                    return;
                }
                if store.is_some() && decl.store_of(TokenField::AccessToken).is_some() {
                    diagnostics.push(
                        Diagnostic::new(
                            Code::WrittenOutGrant,
                            format!(
                                "this refresh of `{}` is written out by hand",
                                client.text
                            ),
                        )
                        .label(request.span, "`refresh_tokens` does the same in one statement")
                        .help(format!(
                            "`refresh_tokens client({})` sends this request, stores a rotated refresh token, \
                             the access token and its expiry, and sorts the failures; keep the request \
                             if it does more than that",
                            client.text
                        )),
                    );
                }
            });
        }
    }
}
