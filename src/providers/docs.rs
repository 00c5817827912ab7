//! What the catalog says, for people: `svc provider list` and `show`, and
//! docs/providers.md (generated here; tests/providers.rs keeps the file
//! equal to [`markdown`]).

use std::fmt::Write as _;

use super::{Pkce, Profile};

/// One line of a profile's facts: what, the value, and its source.
pub struct Fact {
    pub what: &'static str,
    pub value: String,
    pub source: String,
}

/// A profile's facts in the order `svc provider show` prints them.
pub fn facts(profile: &Profile) -> Vec<Fact> {
    let mut out = Vec::new();
    let mut fact = |what: &'static str, value: String, source: &str| {
        out.push(Fact {
            what,
            value,
            source: source.to_string(),
        })
    };
    for p in &profile.parameters {
        let default = p
            .default
            .as_ref()
            .map(|d| format!(" (default `{d}`)"))
            .unwrap_or_else(|| " (required)".into());
        fact(
            "parameter",
            format!(
                "`{}`: {}{default}, such as `{}`",
                p.name, p.description, p.example
            ),
            &p.source,
        );
    }
    let e = &profile.endpoints;
    fact("token_url", format!("`{}`", e.token_url), &e.source);
    for (what, url) in [
        ("authorize_url", &e.authorize_url),
        ("revocation_url", &e.revocation_url),
        ("device_authorization_url", &e.device_authorization_url),
    ] {
        if let Some(url) = url {
            fact(what, format!("`{url}`"), &e.source);
        }
    }
    let methods: Vec<String> = profile
        .client_auth
        .methods
        .iter()
        .map(|m| format!("`{}`", m.name()))
        .collect();
    fact(
        "client_auth",
        methods.join(", "),
        &profile.client_auth.source,
    );
    if let Some(a) = &profile.authorization {
        if !a.offline_scopes.is_empty() {
            fact(
                "refresh token scopes",
                format!("`{}`", a.offline_scopes.join(" ")),
                &a.source,
            );
        }
        if !a.params.is_empty() {
            fact("authorization parameters", pairs(&a.params), &a.source);
        }
        if let Some(pkce) = a.pkce {
            fact("PKCE", pkce.name().into(), &a.source);
        }
        if let Some(separator) = &a.scope_separator {
            fact("scope separator", format!("`{separator}`"), &a.source);
        }
    }
    match &profile.refresh {
        Some(r) => {
            let rotation = match r.rotation {
                super::Rotation::Always => {
                    "always: every refresh spends the refresh token and brings a new one"
                }
                super::Rotation::Sometimes => {
                    "sometimes: a refresh may bring a new refresh token, which is kept"
                }
                super::Rotation::Never => "never: the refresh token stays the same",
            };
            fact("rotation", rotation.into(), &r.source);
            if !r.params.is_empty() {
                fact("refresh parameters", pairs(&r.params), &r.source);
            }
            if let Some(lifetime) = r.refresh_token_lifetime {
                fact(
                    "refresh token lifetime",
                    crate::syntax::duration::format(lifetime),
                    &r.source,
                );
            }
            if let Some(field) = &r.refresh_token_expires_field {
                fact(
                    "refresh token expiry field",
                    format!("`{field}`"),
                    &r.source,
                );
            }
        }
        None => fact("refresh tokens", "none documented".into(), &profile.docs),
    }
    if let Some(a) = &profile.access_token {
        if let Some(lifetime) = a.lifetime {
            fact(
                "access token lifetime",
                crate::syntax::duration::format(lifetime),
                &a.source,
            );
        }
        if !a.expires_in {
            fact(
                "expires_in",
                "not sent: the documented lifetime is used".into(),
                &a.source,
            );
        }
    }
    if let Some(c) = &profile.client_credentials {
        let extra = if c.params.is_empty() {
            String::new()
        } else {
            format!(", with {}", pairs(&c.params))
        };
        fact("client credentials", format!("yes{extra}"), &c.source);
    }
    for f in &profile.failures {
        let field = f.error_field.as_deref().unwrap_or("error");
        let description = f
            .description
            .as_ref()
            .map(|d| format!(" with `{d}`"))
            .unwrap_or_default();
        fact(
            "failure",
            format!(
                "{} `{field}: {}`{description}: {}",
                f.status,
                f.error,
                f.means.name()
            ),
            &f.source,
        );
    }
    out
}

fn pairs(params: &std::collections::BTreeMap<String, String>) -> String {
    params
        .iter()
        .map(|(k, v)| format!("`{k}={v}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// docs/providers.md.
pub fn markdown(catalog: &[Profile]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Provider profiles\n\n\
         <!-- Generated from providers/*.toml by `svc provider list --markdown`; tests/providers.rs \
         keeps it current. Edit the profiles, not this file. -->\n\n\
         A profile is what svc knows about one OAuth 2.0 provider, each value taken from the \
         provider's public documentation (the source of every line is linked). A client names its \
         profile and svc fills in the rest:\n\n\
         ```\n\
         oauth_client xero {{\n  provider    xero\n  client_id   secret.XERO_CLIENT_ID\n  \
         client_auth client_secret_basic(secret.XERO_CLIENT_SECRET)\n  \
         scopes      \"offline_access accounting.transactions\"\n  \
         stores {{ refresh_token = XERO_REFRESH_TOKEN  access_token = XERO_ACCESS_TOKEN }}\n}}\n\n\
         service xero_tokens {{\n  action refresh {{ refresh_tokens client(xero) }}\n  \
         endpoint refresh {{ methods GET POST  process refresh }}\n}}\n\
         ```\n\n\
         See docs/language.md (\"Provider profiles\") for what `provider`, `refresh_tokens` and \
         `client_credentials` do and what `svc check` holds a client to; `svc provider show NAME` \
         prints a profile, `svc init DIR --provider NAME` starts a project on one.\n\n\
         ## The catalog ({} profiles)\n\n\
         | profile | provider | refresh tokens | PKCE | parameters |\n|---|---|---|---|---|",
        catalog.len()
    );
    for p in catalog {
        let rotation = p.refresh.as_ref().map_or("none", |r| r.rotation.name());
        let pkce = p
            .authorization
            .as_ref()
            .and_then(|a| a.pkce)
            .map_or("", Pkce::name);
        let params: Vec<String> = p
            .parameters
            .iter()
            .map(|p| format!("`{}`", p.name))
            .collect();
        let _ = writeln!(
            out,
            "| [`{}`](#{}) | {} | {} | {} | {} |",
            p.name,
            p.name,
            p.title,
            if rotation == "none" {
                "none".to_string()
            } else {
                format!("rotation: {rotation}")
            },
            pkce,
            params.join(", ")
        );
    }
    for p in catalog {
        let _ = writeln!(
            out,
            "\n## {}\n\n{} — [documentation]({})\n",
            p.name, p.title, p.docs
        );
        let _ = writeln!(out, "| | | source |\n|---|---|---|");
        for f in facts(p) {
            let _ = writeln!(
                out,
                "| {} | {} | [link]({}) |",
                f.what,
                f.value.replace('|', "\\|"),
                f.source
            );
        }
        for note in &p.notes {
            let _ = writeln!(out, "\n- {note}");
        }
    }
    let _ = writeln!(
        out,
        "\n## Not expressible yet\n\n\
         What these providers do that a profile cannot say yet. Where it matters, write the request \
         out by hand (a `web_request` as `auth client(NAME)`) instead of `refresh_tokens`.\n"
    );
    for p in catalog {
        for finding in &p.not_expressible {
            let _ = writeln!(out, "- **{}**: {finding}", p.name);
        }
    }
    out
}
