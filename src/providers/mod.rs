//! Provider profiles: what svc knows about an OAuth 2.0 provider — its
//! endpoints, the client authentication it accepts, whether it rotates
//! refresh tokens, the scopes and parameters it needs to issue one, how
//! long its tokens live and how it says a refresh failed — each value with
//! the URL of the documentation it was taken from.
//!
//! `oauth_client NAME { provider xero ... }` fills the client from its
//! profile ([`fill`]); the checker holds a program to the profile, and
//! `refresh_tokens client(NAME)` refreshes as the profile says.

pub mod docs;
pub mod fill;
mod profile;
pub mod starter;

use std::sync::OnceLock;

pub use profile::*;

/// Every profile's name and text, from `providers/*.toml` (build.rs).
const FILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/providers.rs"));

/// The catalog, sorted by name. A profile that does not parse is left out
/// here and fails `tests/providers.rs` (and [`problems`]).
pub fn catalog() -> &'static [Profile] {
    static CATALOG: OnceLock<Vec<Profile>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        FILES
            .iter()
            .filter_map(|(name, text)| parse(name, text).ok())
            .collect()
    })
}

/// The profile called `name`.
pub fn get(name: &str) -> Option<&'static Profile> {
    catalog().iter().find(|p| p.name == name)
}

/// The names of the profiles, for did-you-mean.
pub fn names() -> impl Iterator<Item = &'static str> {
    catalog().iter().map(|p| p.name.as_str())
}

fn parse(name: &str, text: &str) -> Result<Profile, String> {
    let mut profile: Profile = toml::from_str(text).map_err(|e| e.to_string())?;
    profile.name = name.to_string();
    Ok(profile)
}

/// What is wrong with each profile of the catalog, by name: a file that
/// does not parse, a section without an https source, a URL that uses an
/// undeclared parameter. Empty when the catalog is sound.
pub fn problems() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, text) in FILES {
        let mut say = |problem: String| out.push((name.to_string(), problem));
        if !is_identifier(name) {
            say("the file's name is not a lower-case identifier".into());
        }
        let profile = match parse(name, text) {
            Ok(profile) => profile,
            Err(e) => {
                say(e);
                continue;
            }
        };
        for (section, source) in profile.sources() {
            if !source.starts_with("https://") || source.contains(' ') {
                say(format!("`{section}` has no https source: `{source}`"));
            }
        }
        for (what, url) in profile.urls() {
            match fill::template_parts(url) {
                Err(e) => say(format!("`{what}`: {e}")),
                Ok(parts) => {
                    for part in parts {
                        if let fill::Part::Parameter(p) = part
                            && profile.parameter(p).is_none()
                        {
                            say(format!("`{what}` uses `{{{p}}}`, which is not a parameter"));
                        }
                    }
                    if !url.starts_with("https://") {
                        say(format!("`{what}` is not an https URL"));
                    }
                }
            }
        }
        for p in &profile.parameters {
            if !is_identifier(&p.name) {
                say(format!(
                    "parameter `{}` is not a lower-case identifier",
                    p.name
                ));
            }
            if !profile
                .urls()
                .iter()
                .any(|(_, url)| url.contains(&format!("{{{}}}", p.name)))
            {
                say(format!("parameter `{}` is used by no URL", p.name));
            }
        }
        match profile.client_auth.methods.first() {
            None => say("`client_auth.methods` is empty".into()),
            // The first is what `svc init` writes, with a client secret or none.
            Some(AuthMethod::PrivateKeyJwt) => {
                say("the first of `client_auth.methods` is `private_key_jwt`, which `svc init` cannot write".into())
            }
            Some(_) => {}
        }
        if profile.authorization.is_some() != profile.endpoints.authorize_url.is_some() {
            say("`authorization` and `endpoints.authorize_url` come together".into());
        }
    }
    out
}

/// A profile or parameter name: lower-case letters, digits and `_`,
/// starting with a letter.
pub fn is_identifier(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}
