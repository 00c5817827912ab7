//! OAuth 2.0 pieces shared by runs and `svc authorize`: the endpoints and
//! credentials of an `oauth_client`, discovery, signed JWT assertions
//! (RFC 7523), token responses, and the two flows that get a first token
//! with a person's consent: authorization code with PKCE over a loopback
//! redirect (RFC 6749, 7636, 8252) and the device authorization grant
//! (RFC 8628).

pub mod assertion;
pub mod client;
pub mod code_flow;
pub mod consent;
pub mod device_flow;
pub mod disconnect;
pub mod discovery;
pub mod error;
pub mod failure;
pub mod jwk;
pub mod jwt;
pub mod key_error;
pub mod keys;
pub mod revocation;
pub mod seconds;
pub mod tokens;

#[cfg(test)]
mod test_keys;

use base64::Engine as _;

pub use error::{Code, Error};

use crate::net::http;
use crate::redact::Redactor;

/// How long one request to an authorization server may take.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A URL an authorization server is reached at: `https://`, or `http://`
/// to a loopback address (a server on this machine, a test).
pub fn server_url(text: &str, what: &str, redactor: &Redactor) -> Result<url::Url, Error> {
    let shown = || redactor.redact(&http::display_url_text(text));
    let url = url::Url::parse(text).map_err(|e| {
        Error::new(
            Code::InvalidUrl,
            format!("`{what}` ({}) is not a valid URL: {e}", shown()),
        )
    })?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(host)) => host.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        "http" => Err(Error::new(
            Code::InvalidUrl,
            format!(
                "`{what}` ({}) is plain http to a host that is not loopback",
                shown()
            ),
        )
        .help("codes, client secrets and tokens travel there: use `https://`")),
        other => Err(Error::new(
            Code::InvalidUrl,
            format!("`{what}` ({}) is a `{other}` URL, not https", shown()),
        )),
    }
}

/// A request to an authorization server: no redirects (a token endpoint
/// that redirects is misconfigured, and would take the credentials with
/// it), and retries only of failures that surely never reached it.
pub(crate) fn request(
    method: reqwest::Method,
    url: url::Url,
    body: http::Body,
    auth: Option<http::Auth>,
) -> http::Request {
    let carries = auth.is_some();
    http::Request {
        method,
        url,
        headers: vec![http::Header {
            name: "Accept".into(),
            value: "application/json".into(),
            secret: false,
        }],
        body_secret: matches!(body, http::Body::Form(_)) && carries,
        body,
        auth,
        timeout: REQUEST_TIMEOUT,
        redirects: 0,
        cross_origin: false,
        attempts: http::DEFAULT_ATTEMPTS,
        max_time: http::DEFAULT_MAX_TIME,
        // A code, a device code or a refresh token is spent by the first
        // request that reaches the server.
        once: true,
    }
}

/// `bytes` random bytes, base64url without padding: a PKCE verifier, a
/// `state`, a `nonce`, a `jti`.
pub fn random_token(bytes: usize) -> Result<String, Error> {
    let mut buffer = zeroize::Zeroizing::new(vec![0u8; bytes]);
    getrandom::fill(&mut buffer).map_err(|e| {
        Error::new(
            Code::NoRandomness,
            format!("the system gives no random numbers: {e}"),
        )
        .help("svc needs them for PKCE and `state`; check the machine's entropy source")
    })?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&*buffer))
}

/// POSTs a form with the client's credentials; the answer, whatever its
/// status.
pub(crate) async fn post_form(
    http: &http::Http,
    endpoint: &url::Url,
    form: Vec<(String, String)>,
    credentials: &client::Credentials,
    redactor: &Redactor,
) -> Result<http::Response, Error> {
    let request = request(
        reqwest::Method::POST,
        endpoint.clone(),
        http::Body::Form(form),
        Some(credentials.auth(endpoint)),
    );
    http.send(&request, redactor).await.map_err(|e| {
        let mut error = Error::new(Code::Request, e.message);
        error.help = Some(e.help);
        error
    })
}

/// A token request: the tokens of a 2xx answer, else the server's error.
/// The answer is returned too, for the recovery journal.
pub(crate) async fn token_request(
    http: &http::Http,
    endpoint: &url::Url,
    form: Vec<(String, String)>,
    credentials: &client::Credentials,
    what: &str,
    redactor: &mut Redactor,
) -> Result<(tokens::Tokens, http::Response), Error> {
    let response = post_form(http, endpoint, form, credentials, redactor).await?;
    if !response.status.is_success() {
        return Err(tokens::refused(what, &response, redactor));
    }
    let tokens = tokens::Tokens::parse(&response.body)?;
    for value in tokens.values() {
        redactor.add(value);
    }
    Ok((tokens, response))
}
