//! Signing keys end to end: the algorithms svc signs with, verified by
//! tests/servers/jwt-bearer.js (node:crypto) with keys openssl made.

mod common;

use common::{NodeServer, Project};
use serde_json::json;

/// A service whose one request gets a token with `private_key_jwt`
/// client authentication, signed with `secret.SIGNING_KEY`.
fn client_credentials_program(token_url: &str, client_id: &str, alg: &str) -> String {
    format!(
        r#"
secret SIGNING_KEY {{ environment_specific locked }}
secret TOKEN       {{ environment_specific }}

role keeper {{
  grant run api.token
  grant update_secret TOKEN
}}
service_account robot {{ roles keeper }}

service api {{
  var token: string

  action fetch {{
    web_request {{
      url "{token_url}"
      auth private_key_jwt(client_id = "{client_id}", key = secret.SIGNING_KEY, alg = "{alg}")
      form {{ grant_type = "client_credentials" }}
      result_mapping {{ token = $.access_token }}
    }}
    if has_value(token) {{
      update_secret TOKEN = token
    }}
  }}

  endpoint token {{
    methods POST
    process fetch
  }}
}}
"#
    )
}

/// No line of a PEM key's body is in `output`.
fn assert_no_key_material(output: &str, pem: &str) {
    for line in pem.lines().filter(|line| !line.starts_with("-----")) {
        assert!(!output.contains(line), "a line of the key shows:\n{output}");
    }
}

fn run_token(p: &Project) -> common::Run {
    p.svc()
        .args([
            "run",
            "api.svc",
            "api.token",
            "--env",
            "dev",
            "--as",
            "robot",
        ])
        .run()
}

/// RS384 and PS256 client assertions from one RSA key, each accepted by a
/// server that takes only that algorithm, and refused by one that takes
/// only the other.
#[test]
fn an_rsa_key_signs_rs384_and_ps256_assertions_a_server_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let key = common::openssl_key(dir.path(), "rsa", "RS256");
    let pem = std::fs::read_to_string(&key.private).unwrap();
    let clients: Vec<_> = ["RS256", "RS384", "PS256"]
        .iter()
        .map(|alg| json!({"client_id": format!("only-{alg}"), "key": key.public_pem, "alg": alg}))
        .collect();
    let server = NodeServer::start("jwt-bearer", json!({"clients": clients}));
    let token_url = server.url("token_endpoint");
    let p = Project::new();
    p.set("SIGNING_KEY", &pem);
    for alg in ["RS384", "PS256"] {
        p.write(
            "api.svc",
            &client_credentials_program(&token_url, &format!("only-{alg}"), alg),
        );
        let run = run_token(&p);
        assert_eq!(run.status, 0, "{alg}: {}", run.stderr);
        let stats = server.get_json(&server.url("stats_endpoint"));
        assert_eq!(
            stats["last_client_assertion"]["header"]["alg"], alg,
            "{stats}"
        );
        assert!(p.get("TOKEN").starts_with("jb_"));
        assert_no_key_material(&run.all_output(), &pem);

        // The same key with the algorithm the client is not allowed.
        let other = if alg == "RS384" { "PS256" } else { "RS384" };
        p.write(
            "api.svc",
            &client_credentials_program(&token_url, &format!("only-{alg}"), other),
        );
        let run = run_token(&p);
        assert_ne!(run.status, 0, "{other} accepted for only-{alg}");
        assert!(run.stderr.contains("invalid_client"), "{}", run.stderr);
    }
}
