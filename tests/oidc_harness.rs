//! The test infrastructure for `svc authorize`, private_key_jwt and the
//! JWT-bearer grant, proved without svc: oidc-provider (tests/servers/oidc.js)
//! walked through the authorization code flow with PKCE and a loopback
//! redirect, and the device flow, by a person in headless Chromium
//! (tests/browser/consent.js); private_key_jwt client assertions and
//! tests/servers/jwt-bearer.js, with JWTs signed by Debian's openssl.

mod common;

use common::{LoopbackRedirect, NodeServer, Pkce};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

const CONFIDENTIAL: (&str, &str) = ("cli-confidential", "confidential-secret-5b1e07");
const PUBLIC: &str = "cli-public";
const DEVICE: (&str, &str) = ("cli-device", "device-secret-90c2d4");
const SHORT_DEVICE: (&str, &str) = ("cli-device-short", "short-device-secret-3e8f11");

/// One oidc.js with every kind of client the svc tests need.
fn provider() -> NodeServer {
    NodeServer::start(
        "oidc",
        json!({
            "clients": [
                {"client_id": CONFIDENTIAL.0, "client_secret": CONFIDENTIAL.1,
                 "token_endpoint_auth_method": "client_secret_basic",
                 "grant_types": ["authorization_code", "refresh_token"],
                 "redirect_uris": ["http://127.0.0.1/callback"],
                 "scope": "openid offline_access api:read api:write"},
                {"client_id": PUBLIC, "token_endpoint_auth_method": "none",
                 "grant_types": ["authorization_code", "refresh_token"],
                 "redirect_uris": ["http://127.0.0.1/callback"],
                 "scope": "openid offline_access api:read"},
                {"client_id": DEVICE.0, "client_secret": DEVICE.1,
                 "token_endpoint_auth_method": "client_secret_post",
                 "grant_types": [DEVICE_GRANT, "refresh_token"],
                 "scope": "openid offline_access api:read"},
                {"client_id": SHORT_DEVICE.0, "client_secret": SHORT_DEVICE.1,
                 "token_endpoint_auth_method": "client_secret_post",
                 "grant_types": [DEVICE_GRANT, "refresh_token"],
                 "scope": "openid offline_access api:read",
                 "device_code_ttl": 2},
            ],
            "device_poll_interval": 1,
            "device_slow_down": true,
        }),
    )
}

/// Asserts an OAuth error answer.
fn assert_error(answer: &(u16, Value), status: u16, error: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"], error, "{}", answer.1);
}

/// Where `url` redirects to, without following it.
fn redirect_location(url: &str) -> String {
    let output = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{redirect_url}", url])
        .output()
        .expect("curl is installed");
    String::from_utf8(output.stdout).unwrap()
}

/// The authorization URL svc would open: code flow, PKCE S256, offline
/// access with prompt=consent.
fn authorize(
    oidc: &NodeServer,
    client_id: &str,
    redirect_uri: &str,
    pkce: &Pkce,
    state: &str,
) -> String {
    common::authorize_url(
        &oidc.url("authorization_endpoint"),
        &[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("scope", "openid offline_access api:read"),
            ("prompt", "consent"),
            ("state", state),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ],
    )
}

#[test]
fn code_flow_with_pkce_on_a_loopback_port_gives_an_active_refresh_token() {
    let oidc = provider();
    let listener = LoopbackRedirect::start("/callback");
    let redirect_uri = listener.redirect_uri();
    let pkce = Pkce::new();
    let state = "state-7f3a";
    let url = authorize(&oidc, CONFIDENTIAL.0, &redirect_uri, &pkce, state);

    // PKCE is required: without a challenge the provider sends the browser
    // back with an error, not to a login page.
    let without = common::authorize_url(
        &oidc.url("authorization_endpoint"),
        &[
            ("response_type", "code"),
            ("client_id", CONFIDENTIAL.0),
            ("redirect_uri", &redirect_uri),
            ("scope", "openid"),
            ("state", state),
        ],
    );
    let location = redirect_location(&without);
    assert!(
        location.starts_with(&redirect_uri) && location.contains("error=invalid_request"),
        "{location}"
    );
    // A redirect URI on another path is refused outright: only the port is free.
    let elsewhere = url.replace("%2Fcallback", "%2Felsewhere");
    assert!(!redirect_location(&elsewhere).starts_with("http://127.0.0.1"));

    let result = common::consent(&url, "approve");
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["outcome"], "redirected", "{result}");
    assert_eq!(result["redirect"]["code"], true, "{result}");
    assert_eq!(result["redirect"]["state"], state, "{result}");
    assert_eq!(result["status"], 200, "{result}");
    assert!(
        result["text"].as_str().unwrap().contains("close this tab"),
        "{result}"
    );
    let final_url = result["final_url"].as_str().unwrap();
    assert!(final_url.starts_with(&redirect_uri), "{final_url}");
    assert!(final_url.contains("code=REDACTED"), "{final_url}");

    let callback = listener.wait(10);
    assert_eq!(callback.query["state"], state);
    assert_eq!(callback.query["iss"], oidc.url("issuer"));
    let code = &callback.query["code"];
    assert!(
        !final_url.contains(code.as_str()),
        "the code leaked: {final_url}"
    );

    let stats = oidc.get_json(&oidc.url("stats_endpoint"));
    let request = &stats["last_authorization_request"];
    assert_eq!(request["code_challenge_method"], "S256", "{stats}");
    assert_eq!(request["redirect_uri"], redirect_uri.as_str(), "{stats}");

    // The code only goes with its verifier.
    let token_endpoint = oidc.url("token_endpoint");
    let exchange = |verifier: &str| {
        oidc.post_form(
            &token_endpoint,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &redirect_uri),
                ("code_verifier", verifier),
            ],
            Some(CONFIDENTIAL),
        )
    };
    let body = exchange(&Pkce::new().verifier);
    assert_error(&body, 400, "invalid_grant");
    let (status, tokens) = exchange(&pkce.verifier);
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(
        tokens["scope"], "openid offline_access api:read",
        "{tokens}"
    );
    assert!(tokens["id_token"].is_string(), "{tokens}");
    let refresh_token = tokens["refresh_token"].as_str().expect("a refresh token");

    // The provider's verdict on the refresh token, and on using it.
    let (status, verdict) = oidc.post_form(
        &oidc.url("introspection_endpoint"),
        &[("token", refresh_token)],
        Some(CONFIDENTIAL),
    );
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(verdict["active"], true, "{verdict}");
    assert_eq!(verdict["client_id"], CONFIDENTIAL.0, "{verdict}");
    assert_eq!(verdict["sub"], "alice", "{verdict}");
    let (status, refreshed) = oidc.post_form(
        &token_endpoint,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
        Some(CONFIDENTIAL),
    );
    assert_eq!(status, 200, "{refreshed}");
    assert!(refreshed["access_token"].is_string(), "{refreshed}");
    // A code is spent once.
    let again = exchange(&pkce.verifier);
    assert_error(&again, 400, "invalid_grant");
}

#[test]
fn a_public_client_gets_a_refresh_token_and_a_denial_comes_back_as_access_denied() {
    let oidc = provider();

    // Approved: a public client exchanges the code with its id and the verifier.
    let listener = LoopbackRedirect::start("/callback");
    let pkce = Pkce::new();
    let url = authorize(&oidc, PUBLIC, &listener.redirect_uri(), &pkce, "public-1");
    let result = common::consent(&url, "approve");
    assert_eq!(result["ok"], true, "{result}");
    let callback = listener.wait(10);
    let (status, tokens) = oidc.post_form(
        &oidc.url("token_endpoint"),
        &[
            ("grant_type", "authorization_code"),
            ("client_id", PUBLIC),
            ("code", &callback.query["code"]),
            ("redirect_uri", &listener.redirect_uri()),
            ("code_verifier", &pkce.verifier),
        ],
        None,
    );
    assert_eq!(status, 200, "{tokens}");
    let (_, verdict) = oidc.post_form(
        &oidc.url("introspection_endpoint"),
        &[(
            "token",
            tokens["refresh_token"].as_str().expect("a refresh token"),
        )],
        Some(CONFIDENTIAL),
    );
    assert_eq!(verdict["active"], true, "{verdict}");

    // Denied: the browser goes back to the client with error=access_denied.
    let listener = LoopbackRedirect::start("/callback");
    let url = authorize(
        &oidc,
        PUBLIC,
        &listener.redirect_uri(),
        &Pkce::new(),
        "public-2",
    );
    let result = common::consent(&url, "deny");
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["redirect"]["error"], "access_denied", "{result}");
    assert_eq!(result["redirect"]["code"], false, "{result}");
    assert_eq!(
        result["steps"],
        json!(["login", "consent:deny"]),
        "{result}"
    );
    let callback = listener.wait(10);
    assert_eq!(callback.query["error"], "access_denied");
    assert_eq!(callback.query["state"], "public-2");
    assert!(!callback.query.contains_key("code"));

    // Nothing listens: the browser's failure is reported, not hidden.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nobody = format!("http://127.0.0.1:{port}/callback");
    let url = authorize(&oidc, PUBLIC, &nobody, &Pkce::new(), "public-3");
    let result = common::consent(&url, "approve");
    assert_eq!(result["ok"], false, "{result}");
    let error = result["error"].as_str().unwrap();
    assert!(error.contains("ERR_CONNECTION_REFUSED"), "{result}");
    assert!(error.contains("code=REDACTED"), "{result}");
}

/// Starts the device flow for a client authenticating with client_secret_post.
fn device_authorization(oidc: &NodeServer, client: (&str, &str)) -> Value {
    let (status, answer) = oidc.post_form(
        &oidc.url("device_authorization_endpoint"),
        &[
            ("client_id", client.0),
            ("client_secret", client.1),
            ("scope", "openid offline_access api:read"),
        ],
        None,
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["verification_uri"],
        oidc.url("verification_uri").as_str()
    );
    answer
}

/// Polls the token endpoint as RFC 8628 section 3.4 says, every `interval`
/// seconds, until the answer is something other than authorization_pending;
/// gives up after `seconds`.
fn poll(oidc: &NodeServer, client: (&str, &str), answer: &Value, seconds: u64) -> (u16, Value) {
    let interval = Duration::from_secs(answer["interval"].as_u64().unwrap());
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let (status, body) = oidc.post_form(
            &oidc.url("token_endpoint"),
            &[
                ("grant_type", DEVICE_GRANT),
                ("device_code", answer["device_code"].as_str().unwrap()),
                ("client_id", client.0),
                ("client_secret", client.1),
            ],
            None,
        );
        if body["error"] != "authorization_pending" {
            return (status, body);
        }
        assert!(Instant::now() < deadline, "still pending after {seconds} s");
        std::thread::sleep(interval);
    }
}

#[test]
fn device_flow_approved_in_the_browser_gives_tokens() {
    let oidc = provider();
    let answer = device_authorization(&oidc, DEVICE);
    assert_eq!(answer["interval"], 1, "{answer}");
    let user_code = answer["user_code"].as_str().unwrap();

    // Before the person: pending; asking again at once: slow_down.
    let token = |device_code: &str| {
        oidc.post_form(
            &oidc.url("token_endpoint"),
            &[
                ("grant_type", DEVICE_GRANT),
                ("device_code", device_code),
                ("client_id", DEVICE.0),
                ("client_secret", DEVICE.1),
            ],
            None,
        )
    };
    let device_code = answer["device_code"].as_str().unwrap();
    let pending = token(device_code);
    assert_error(&pending, 400, "authorization_pending");
    let slow = token(device_code);
    assert_error(&slow, 400, "slow_down");

    let result = common::device_consent(&oidc.url("verification_uri"), user_code, "approve");
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["outcome"], "device_approved", "{result}");
    assert_eq!(
        result["steps"],
        json!(["device_code", "device_confirm", "login", "consent:approve"]),
        "{result}"
    );

    let (status, tokens) = poll(&oidc, DEVICE, &answer, 10);
    assert_eq!(status, 200, "{tokens}");
    let refresh_token = tokens["refresh_token"].as_str().expect("a refresh token");
    let (_, verdict) = oidc.post_form(
        &oidc.url("introspection_endpoint"),
        &[("token", refresh_token)],
        Some(CONFIDENTIAL),
    );
    assert_eq!(verdict["active"], true, "{verdict}");
    assert_eq!(verdict["sub"], "alice", "{verdict}");
}

#[test]
fn device_flow_denied_or_expired() {
    let oidc = provider();

    // The person says no: access_denied to the polling device.
    let answer = device_authorization(&oidc, DEVICE);
    let result = common::device_consent(
        &oidc.url("verification_uri"),
        answer["user_code"].as_str().unwrap(),
        "deny",
    );
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["outcome"], "device_denied", "{result}");
    let denied = poll(&oidc, DEVICE, &answer, 10);
    assert_error(&denied, 400, "access_denied");

    // Nobody comes within the code's 2 s: expired_token, as RFC 8628 says.
    let answer = device_authorization(&oidc, SHORT_DEVICE);
    assert_eq!(answer["expires_in"], 2, "{answer}");
    let expired = poll(&oidc, SHORT_DEVICE, &answer, 10);
    assert_error(&expired, 400, "expired_token");
    let stats = oidc.get_json(&oidc.url("stats_endpoint"));
    assert_eq!(stats["grant_errors"]["expired_token"], 1, "{stats}");
}

#[test]
fn private_key_jwt_clients_with_rsa_ec_and_ed25519_keys() {
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<_> = ["RS256", "ES256", "EdDSA"]
        .into_iter()
        .map(|alg| common::openssl_key(dir.path(), alg, alg))
        .collect();
    let clients: Vec<Value> = keys
        .iter()
        .map(|key| {
            json!({"client_id": format!("jwt-{}", key.alg), "token_endpoint_auth_method": "private_key_jwt",
                   "public_keys": [{"pem": key.public_pem, "kid": format!("kid-{}", key.alg)}],
                   "scope": "api:read"})
        })
        .collect();
    let oidc = NodeServer::start("oidc", json!({"clients": clients}));
    let token_endpoint = oidc.url("token_endpoint");
    let now = common::unix_now();
    for key in &keys {
        let client_id = format!("jwt-{}", key.alg);
        let assertion = common::sign_jwt(
            key,
            json!({"kid": format!("kid-{}", key.alg)}),
            &json!({"iss": client_id, "sub": client_id, "aud": token_endpoint,
                    "iat": now, "exp": now + 60, "jti": format!("jti-{}", key.alg)}),
        );
        let form = [
            ("grant_type", "client_credentials"),
            ("scope", "api:read"),
            ("client_assertion_type", CLIENT_ASSERTION_TYPE),
            ("client_assertion", assertion.as_str()),
        ];
        let (status, tokens) = oidc.post_form(&token_endpoint, &form, None);
        assert_eq!(status, 200, "{}: {tokens}", key.alg);
        assert_eq!(tokens["scope"], "api:read");
        let stats = oidc.get_json(&oidc.url("stats_endpoint"));
        assert_eq!(
            stats["last_token_request"]["auth_method"],
            "private_key_jwt"
        );
        // The same assertion twice: the jti is spent.
        let replay = oidc.post_form(&token_endpoint, &form, None);
        assert_error(&replay, 401, "invalid_client");
        let stats = oidc.get_json(&oidc.url("stats_endpoint"));
        assert!(
            stats["last_grant_error"]["detail"]
                .as_str()
                .unwrap()
                .contains("only be used once"),
            "{stats}"
        );
    }
    // Signed with another client's key: refused.
    let forged = common::sign_jwt(
        &keys[2],
        json!({}),
        &json!({"iss": "jwt-RS256", "sub": "jwt-RS256", "aud": token_endpoint,
                "iat": now, "exp": now + 60, "jti": "forged"}),
    );
    let refused = oidc.post_form(
        &token_endpoint,
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", CLIENT_ASSERTION_TYPE),
            ("client_assertion", &forged),
        ],
        None,
    );
    assert_error(&refused, 401, "invalid_client");
}

#[test]
fn jwt_bearer_grant_checks_signature_audience_lifetime_subject_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let key = common::openssl_key(dir.path(), "robot", "RS256");
    let other = common::openssl_key(dir.path(), "other", "RS256");
    let client_key = common::openssl_key(dir.path(), "client", "ES256");
    let server = NodeServer::start(
        "jwt-bearer",
        json!({"issuers": [{"iss": "robot@svc-tests.example", "sub": "alice@svc-tests.example",
                            "key": key.public_pem}],
               "clients": [{"client_id": "svc-jwt-client", "key": client_key.public_pem}]}),
    );
    let token_endpoint = server.url("token_endpoint");
    let now = common::unix_now();
    let claims = |jti: &str| {
        json!({"iss": "robot@svc-tests.example", "sub": "alice@svc-tests.example",
               "aud": token_endpoint, "scope": "https://api.example/read",
               "iat": now, "exp": now + 3600, "jti": jti})
    };
    let grant = |assertion: &str| {
        server.post_form(
            &token_endpoint,
            &[("grant_type", JWT_BEARER), ("assertion", assertion)],
            None,
        )
    };

    let assertion = common::sign_jwt(&key, json!({"kid": "k1"}), &claims("first"));
    let (status, tokens) = grant(&assertion);
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(tokens["scope"], "https://api.example/read");
    let (_, verdict) = server.post_form(
        &server.url("introspection_endpoint"),
        &[("token", tokens["access_token"].as_str().unwrap())],
        None,
    );
    assert_eq!(verdict["active"], true, "{verdict}");
    assert_eq!(verdict["sub"], "alice@svc-tests.example", "{verdict}");

    let replay = grant(&assertion);
    assert_error(&replay, 400, "invalid_grant");
    assert!(
        replay.1["error_description"]
            .as_str()
            .unwrap()
            .contains("already used")
    );

    let with = |mut claims: Value, changes: Value| {
        for (name, value) in changes.as_object().unwrap() {
            claims[name] = value.clone();
        }
        claims
    };
    let cases = [
        ("wrong key", &other, claims("k"), "signature"),
        (
            "wrong aud",
            &key,
            with(claims("a"), json!({"aud": server.url("issuer")})),
            "aud",
        ),
        (
            "expired",
            &key,
            with(claims("e"), json!({"iat": now - 120, "exp": now - 60})),
            "expired",
        ),
        (
            "too long",
            &key,
            with(claims("l"), json!({"exp": now + 3601})),
            "at most 3600",
        ),
        (
            "wrong sub",
            &key,
            with(claims("s"), json!({"sub": "mallory@svc-tests.example"})),
            "sub",
        ),
        (
            "no jti",
            &key,
            with(claims(""), json!({"jti": null})),
            "jti",
        ),
    ];
    for (why, signer, claims, expected) in &cases {
        let answer = grant(&common::sign_jwt(signer, json!({}), claims));
        assert_error(&answer, 400, "invalid_grant");
        let description = answer.1["error_description"].as_str().unwrap();
        assert!(description.contains(expected), "{why}: {description}");
    }

    // A client assertion (RFC 7523 section 2.2) for client_credentials.
    let client_assertion = common::sign_jwt(
        &client_key,
        json!({}),
        &json!({"iss": "svc-jwt-client", "sub": "svc-jwt-client", "aud": token_endpoint,
                "iat": now, "exp": now + 300, "jti": "client-1"}),
    );
    let form = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", CLIENT_ASSERTION_TYPE),
        ("client_assertion", client_assertion.as_str()),
    ];
    let (status, tokens) = server.post_form(&token_endpoint, &form, None);
    assert_eq!(status, 200, "{tokens}");
    let replay = server.post_form(&token_endpoint, &form, None);
    assert_error(&replay, 401, "invalid_client");

    let stats = server.get_json(&server.url("stats_endpoint"));
    assert_eq!(stats["jwt_bearer_grants"], 1, "{stats}");
    assert_eq!(stats["client_credentials_grants"], 1, "{stats}");
    assert_eq!(stats["replays"], 2, "{stats}");
    assert_eq!(
        stats["rejected"]["invalid_grant"],
        cases.len() + 1,
        "{stats}"
    );
    assert_eq!(stats["last_assertion"]["header"]["kid"], "k1", "{stats}");
    assert_eq!(
        stats["last_client_assertion"]["header"]["alg"], "ES256",
        "{stats}"
    );
}
