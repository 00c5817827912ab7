//! Finding an authorization server's endpoints from its issuer: OpenID
//! Connect discovery (`/.well-known/openid-configuration`), then RFC 8414
//! (`/.well-known/oauth-authorization-server`).

use serde::Deserialize;

use super::error::{Code, Error};
use super::server_url;
use crate::net::http::{self, Http};
use crate::redact::Redactor;

/// What svc reads of a discovery document.
#[derive(Clone, Debug, Deserialize)]
pub struct Metadata {
    pub issuer: String,
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    #[serde(default)]
    pub token_endpoint: Option<String>,
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
    /// RFC 7009 (in RFC 8414's metadata, and OpenID providers' too).
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
}

/// The URLs to try for an issuer, in order.
pub fn candidates(issuer: &url::Url) -> Vec<url::Url> {
    let path = issuer.path().trim_end_matches('/');
    let mut openid = issuer.clone();
    openid.set_path(&format!("{path}/.well-known/openid-configuration"));
    openid.set_query(None);
    // RFC 8414 §3.1: the well-known segment goes between host and path.
    let mut oauth = issuer.clone();
    oauth.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    oauth.set_query(None);
    vec![openid, oauth]
}

/// Fetches and checks the discovery document of `issuer`.
pub async fn discover(http: &Http, issuer: &str, redactor: &Redactor) -> Result<Metadata, Error> {
    let issuer_url = server_url(issuer, "issuer", redactor)?;
    let mut failures = Vec::new();
    for url in candidates(&issuer_url) {
        let request = super::request(reqwest::Method::GET, url.clone(), http::Body::None, None);
        let response = match http.send(&request, redactor).await {
            Ok(response) => response,
            Err(error) => {
                failures.push(error.message);
                continue;
            }
        };
        if !response.status.is_success() {
            failures.push(format!(
                "{} answered {}",
                http::display_url(&url),
                http::status_text(response.status)
            ));
            continue;
        }
        let metadata: Metadata = serde_json::from_slice(&response.body).map_err(|e| {
            Error::new(
                Code::Discovery,
                format!(
                    "the discovery document at {} is not valid JSON metadata: {e}",
                    http::display_url(&url)
                ),
            )
            .help("check `issuer`: it is the server's issuer identifier, such as `https://idp.example.com`")
        })?;
        // OpenID Connect Discovery §4.3, RFC 8414 §3.3: the document must
        // name the issuer it was asked for, or it may be another server's.
        if metadata.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(Error::new(
                Code::Discovery,
                redactor.redact(&format!(
                    "the discovery document at {} names the issuer `{}`, not `{issuer}`",
                    http::display_url(&url),
                    metadata.issuer
                )),
            )
            .help("write the issuer exactly as the server names it"));
        }
        for (what, endpoint) in [
            ("authorization_endpoint", &metadata.authorization_endpoint),
            ("token_endpoint", &metadata.token_endpoint),
            (
                "device_authorization_endpoint",
                &metadata.device_authorization_endpoint,
            ),
            ("revocation_endpoint", &metadata.revocation_endpoint),
        ] {
            if let Some(endpoint) = endpoint {
                server_url(endpoint, what, redactor).map_err(|e| {
                    Error::new(
                        Code::Discovery,
                        format!("the discovery document's {}", e.message),
                    )
                })?;
            }
        }
        return Ok(metadata);
    }
    Err(Error::new(
        Code::Discovery,
        redactor.redact(&format!(
            "cannot discover the endpoints of `{issuer}`: {}",
            failures.join("; ")
        )),
    )
    .help("check `issuer`, or give `token_url` (and `authorize_url`) instead"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_urls_follow_both_specs() {
        let issuer = url::Url::parse("https://idp.example.com/tenant/1/").unwrap();
        let urls: Vec<String> = candidates(&issuer).iter().map(|u| u.to_string()).collect();
        assert_eq!(
            urls,
            [
                "https://idp.example.com/tenant/1/.well-known/openid-configuration",
                "https://idp.example.com/.well-known/oauth-authorization-server/tenant/1",
            ]
        );
        let bare = url::Url::parse("https://idp.example.com").unwrap();
        let urls: Vec<String> = candidates(&bare).iter().map(|u| u.to_string()).collect();
        assert_eq!(
            urls,
            [
                "https://idp.example.com/.well-known/openid-configuration",
                "https://idp.example.com/.well-known/oauth-authorization-server",
            ]
        );
    }
}
