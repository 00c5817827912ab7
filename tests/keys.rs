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

/// No line of a PEM key's body is in `output` (but a short last line,
/// which a JWK can hold by chance).
fn assert_no_key_material(output: &str, pem: &str) {
    for line in pem
        .lines()
        .filter(|line| !line.starts_with("-----") && line.len() >= 16)
    {
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

/// `svc secret public-jwk NAME` and what it printed, parsed.
fn public_jwk(p: &Project, args: &[&str]) -> (common::Run, serde_json::Value) {
    let run = p
        .svc()
        .args(["secret", "public-jwk"])
        .args(args)
        .args(["--env", "dev"])
        .run();
    let json = serde_json::from_str(&run.stdout).unwrap_or(serde_json::Value::Null);
    (run, json)
}

/// The public key openssl derives from a private key file, as SPKI DER.
fn openssl_spki(private: &std::path::Path) -> Vec<u8> {
    let output = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(private)
        .output()
        .unwrap();
    assert!(output.status.success());
    output.stdout
}

/// Runs an openssl command on a key file and returns what it writes.
fn openssl(args: &[&str], key: &std::path::Path) -> String {
    let output = std::process::Command::new("openssl")
        .args(args)
        .arg("-in")
        .arg(key)
        .output()
        .unwrap();
    assert!(output.status.success(), "openssl {args:?}");
    String::from_utf8(output.stdout).unwrap()
}

fn b64url_decode(value: &serde_json::Value) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value.as_str().unwrap())
        .unwrap()
}

const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The public JWK of an RSA, a P-256 and an Ed25519 key made by openssl
/// and set through the CLI into a real age store is the public key openssl
/// derives, with no private member, and each read is in the audit log.
#[test]
fn public_jwk_of_stored_keys_is_the_public_key_openssl_derives() {
    let dir = tempfile::tempdir().unwrap();
    let p = Project::new();
    let rsa = common::openssl_key(dir.path(), "rsa", "RS256");
    let ec = common::openssl_key(dir.path(), "ec", "ES256");
    let ed = common::openssl_key(dir.path(), "ed", "EdDSA");
    let mut pems = Vec::new();

    // RSA, as PKCS#1 (`openssl rsa -traditional`).
    let pkcs1 = openssl(&["rsa", "-traditional"], &rsa.private);
    assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    p.set("RSA_KEY", &pkcs1);
    let (run, jwk) = public_jwk(&p, &["RSA_KEY"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let modulus = openssl(&["rsa", "-noout", "-modulus"], &rsa.private);
    let modulus = modulus.trim().strip_prefix("Modulus=").unwrap();
    let n: String = b64url_decode(&jwk["n"])
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect();
    assert_eq!(n, modulus);
    assert_eq!(jwk["e"], "AQAB");
    assert_eq!(jwk["kty"], "RSA");
    assert_eq!(jwk["use"], "sig");
    // An RSA key signs three algorithms: no `alg` unless asked for.
    assert!(jwk.get("alg").is_none(), "{jwk}");
    assert!(jwk.get("kid").is_none(), "{jwk}");
    pems.push(pkcs1);

    // P-256, as SEC1 (`openssl ec`): x and y are the point of the SPKI.
    let sec1 = openssl(&["ec"], &ec.private);
    assert!(sec1.starts_with("-----BEGIN EC PRIVATE KEY-----"));
    p.set("EC_KEY", &sec1);
    let (run, jwk) = public_jwk(&p, &["EC_KEY"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let spki = openssl_spki(&ec.private);
    let point = &spki[spki.len() - 65..];
    assert_eq!(point[0], 4);
    assert_eq!(b64url_decode(&jwk["x"]), &point[1..33]);
    assert_eq!(b64url_decode(&jwk["y"]), &point[33..]);
    assert_eq!(
        (&jwk["kty"], &jwk["crv"], &jwk["alg"]),
        (&json!("EC"), &json!("P-256"), &json!("ES256"))
    );
    pems.push(sec1);

    // Ed25519, as PKCS#8 (`openssl genpkey`), with a kid given.
    let pkcs8 = std::fs::read_to_string(&ed.private).unwrap();
    p.set("ED_KEY", &pkcs8);
    let (run, jwk) = public_jwk(&p, &["ED_KEY", "--kid", "ed-2026"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let spki = openssl_spki(&ed.private);
    assert_eq!(b64url_decode(&jwk["x"]), &spki[spki.len() - 32..]);
    assert_eq!(
        jwk,
        json!({"kty": "OKP", "use": "sig", "alg": "EdDSA", "kid": "ed-2026", "crv": "Ed25519",
               "x": jwk["x"]})
    );
    pems.push(pkcs8);

    // A service-account key gives its `private_key_id` as the kid.
    let account = json!({"type": "service_account", "private_key_id": "sa-1",
                         "private_key": std::fs::read_to_string(&rsa.private).unwrap(),
                         "client_email": "robot@svc-tests.example"});
    p.set("SA_KEY", &account.to_string());
    let (run, jwk) = public_jwk(&p, &["SA_KEY", "--alg", "PS256", "--jwks"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let keys = jwk["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwk}");
    assert_eq!(keys[0]["kid"], "sa-1");
    assert_eq!(keys[0]["alg"], "PS256");
    assert_eq!(
        b64url_decode(&keys[0]["n"]),
        b64url_decode(&public_jwk(&p, &["RSA_KEY"]).1["n"])
    );

    // Never a private member, never a line of a key.
    for name in ["RSA_KEY", "EC_KEY", "ED_KEY", "SA_KEY"] {
        let (run, jwk) = public_jwk(&p, &[name]);
        for member in PRIVATE_MEMBERS {
            assert!(jwk.get(member).is_none(), "{name} has `{member}`: {jwk}");
        }
        for pem in &pems {
            assert_no_key_material(&run.all_output(), pem);
        }
    }

    // Every read is audited, as `svc secret get`'s are.
    let audit = std::fs::read_to_string(p.path().join("logs/dev/audit.jsonl")).unwrap();
    let reads: Vec<serde_json::Value> = audit
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .filter(|entry: &serde_json::Value| entry["action"] == "public_jwk")
        .collect();
    assert_eq!(reads.len(), 9, "{audit}");
    assert!(
        reads
            .iter()
            .all(|entry| entry["via"] == "cli" && entry["recipient"] == p.key.public),
        "{audit}"
    );
    assert_eq!(reads[0]["secret"], "RSA_KEY");
    for pem in &pems {
        assert_no_key_material(&audit, pem);
    }
}

/// What cannot be printed: an `alg` the key does not sign with, a secret
/// that holds no private key, a secret that does not exist. Each says why
/// with a stable code, exits 2, and prints nothing on stdout.
#[test]
fn public_jwk_refuses_what_is_not_a_usable_private_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = Project::new();
    let ec = common::openssl_key(dir.path(), "ec", "ES256");
    p.set("EC_KEY", &std::fs::read_to_string(&ec.private).unwrap());
    p.set("PUBLIC", &ec.public_pem);
    p.set("TOKEN", "tok-3c9e1b7a5d2f4e6a8b0c");
    let cases: [(&[&str], &str, &str); 5] = [
        (
            &["EC_KEY", "--alg", "PS256"],
            "svc::key::algorithm",
            "`--alg PS256` does not fit the key in secret `EC_KEY`: the key is a P-256 key; \
             `PS256` needs an RSA key",
        ),
        (
            &["PUBLIC"],
            "svc::key::not_private",
            "(it has `PUBLIC KEY`)",
        ),
        (
            &["TOKEN"],
            "svc::key::invalid",
            "the secret is not a private key svc can read",
        ),
        (
            &["MISSING"],
            "svc::store::no_such_secret",
            "no secret `MISSING`",
        ),
        (
            &["EC_KEY", "--alg", "HS256"],
            "",
            "possible values: RS256, RS384, PS256",
        ),
    ];
    for (args, code, message) in cases {
        let (run, _) = public_jwk(&p, args);
        assert_eq!(run.status, 2, "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
        // The message as words, without the renderer's line breaks.
        let words: Vec<&str> = run
            .stderr
            .split_whitespace()
            .filter(|word| *word != "|")
            .collect();
        let words = words.join(" ");
        assert!(words.contains(code), "{args:?}: {}", run.stderr);
        assert!(words.contains(message), "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains("tok-3c9e1b7a5d2f4e6a8b0c"));
        assert_no_key_material(&run.stderr, &std::fs::read_to_string(&ec.private).unwrap());
    }
}

/// The JWK `svc secret public-jwk` prints, registered as the client's key
/// at a server, verifies the assertions svc signs with the stored key:
/// node:crypto reads only the JWK.
#[test]
fn a_registered_public_jwk_verifies_svc_assertions() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [("RS256", "PS256"), ("ES256", "ES256"), ("EdDSA", "EdDSA")];
    let p = Project::new();
    let mut clients = Vec::new();
    for (kind, alg) in cases {
        let key = common::openssl_key(dir.path(), kind, kind);
        let name = format!("KEY_{}", kind.to_uppercase());
        p.set(&name, &std::fs::read_to_string(&key.private).unwrap());
        let (run, jwk) = public_jwk(&p, &[&name, "--alg", alg, "--kid", &format!("kid-{kind}")]);
        assert_eq!(run.status, 0, "{}", run.stderr);
        clients.push(json!({"client_id": format!("client-{kind}"), "keys": [jwk], "alg": alg}));
    }
    let server = NodeServer::start("jwt-bearer", json!({"clients": clients}));
    let token_url = server.url("token_endpoint");
    for (kind, alg) in cases {
        let program = client_credentials_program(&token_url, &format!("client-{kind}"), alg)
            .replace(
                "secret.SIGNING_KEY",
                &format!("secret.KEY_{}", kind.to_uppercase()),
            )
            .replace(
                "secret SIGNING_KEY ",
                &format!("secret KEY_{} ", kind.to_uppercase()),
            );
        p.write("api.svc", &program);
        let run = run_token(&p);
        assert_eq!(run.status, 0, "{kind}: {}", run.stderr);
        let stats = server.get_json(&server.url("stats_endpoint"));
        assert_eq!(
            stats["last_client_assertion"]["header"]["alg"], alg,
            "{stats}"
        );
    }
}
