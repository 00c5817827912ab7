//! Signing keys end to end: the algorithms svc signs with, verified by
//! tests/servers/jwt-bearer.js (node:crypto) with keys openssl made;
//! `svc secret public-jwk`; and the key reader fed mutated keys.

mod common;
#[path = "common/mutate.rs"]
mod mutate;

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

/// The private parts of a PEM private key (PKCS#8, PKCS#1 or SEC1),
/// read with the RustCrypto decoders: RSA's d, p, q, dp, dq and qi, an EC
/// key's scalar, an Ed25519 seed.
fn private_parts(pem: &str) -> Vec<Vec<u8>> {
    use der::Decode as _;
    let (label, der) = pem_rfc7468::decode_vec(pem.as_bytes()).unwrap();
    let rsa = |der: &[u8]| {
        let key = pkcs1::RsaPrivateKey::from_der(der).unwrap();
        [
            key.private_exponent,
            key.prime1,
            key.prime2,
            key.exponent1,
            key.exponent2,
            key.coefficient,
        ]
        .iter()
        .map(|int| int.as_bytes().to_vec())
        .collect()
    };
    let ec = |der: &[u8]| {
        vec![
            sec1::EcPrivateKey::from_der(der)
                .unwrap()
                .private_key
                .to_vec(),
        ]
    };
    match label {
        "RSA PRIVATE KEY" => rsa(&der),
        "EC PRIVATE KEY" => ec(&der),
        _ => {
            let info = pkcs8::PrivateKeyInfo::from_der(&der).unwrap();
            match info.algorithm.oid {
                const_oid::db::rfc5912::RSA_ENCRYPTION => rsa(info.private_key),
                const_oid::db::rfc5912::ID_EC_PUBLIC_KEY => ec(info.private_key),
                _ => vec![
                    der::asn1::OctetStringRef::from_der(info.private_key)
                        .unwrap()
                        .as_bytes()
                        .to_vec(),
                ],
            }
        }
    }
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

    // Never a private member, never 9 bytes of a private part.
    let private_needles = needles(
        &pems
            .iter()
            .flat_map(|pem| private_parts(pem))
            .collect::<Vec<_>>(),
    );
    for name in ["RSA_KEY", "EC_KEY", "ED_KEY", "SA_KEY"] {
        let (run, jwk) = public_jwk(&p, &[name]);
        for member in PRIVATE_MEMBERS {
            assert!(jwk.get(member).is_none(), "{name} has `{member}`: {jwk}");
        }
        // The JWK holds the public modulus, which a PEM line of an RSA key
        // can hold too: what must not show is the private parts.
        if let Some(found) = private_needles.find(&run.all_output()) {
            panic!(
                "{:?} of a private key shows:\n{}",
                found.range(),
                run.all_output()
            );
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

// ------------------------------------------------------------------ the key reader, fuzzed

/// One form of a test key: the text a secret would hold, the DER inside
/// it (for PEM forms) and its PEM label.
struct Sample {
    text: String,
    der: Option<(Vec<u8>, &'static str)>,
}

/// Every form svc reads, of three fixed keys (fixtures, so a failure
/// reproduces), and the byte strings no message may show: the keys' DER
/// documents and, for what a successful read prints, their private parts.
struct Corpus {
    samples: Vec<Sample>,
    /// Any 9 bytes of these, in any encoding, in an error is a leak.
    any_key_bytes: aho_corasick::AhoCorasick,
    /// Any 9 bytes of the private parts in a key's Debug or its public
    /// JWK is a leak.
    private_bytes: aho_corasick::AhoCorasick,
}

fn corpus() -> &'static Corpus {
    use der::Decode as _;
    static CORPUS: std::sync::OnceLock<Corpus> = std::sync::OnceLock::new();
    CORPUS.get_or_init(|| {
        let fixture = |name: &str| {
            std::fs::read_to_string(common::root().join("tests/fixtures").join(name)).unwrap()
        };
        let der_of = |pem: &str| {
            let (_, der) = pem_rfc7468::decode_vec(pem.as_bytes()).unwrap();
            der
        };
        let b64 = |bytes: &[u8]| {
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        };
        let pem = |label: &str, der: &[u8]| {
            pem_rfc7468::encode_string(label, pem_rfc7468::LineEnding::LF, der).unwrap()
        };

        let rsa_pem = fixture("jwt-rsa-2048.pem");
        let rsa_pkcs8 = der_of(&rsa_pem);
        let rsa_pkcs1 = pkcs8::PrivateKeyInfo::from_der(&rsa_pkcs8)
            .unwrap()
            .private_key
            .to_vec();
        let rsa = pkcs1::RsaPrivateKey::from_der(&rsa_pkcs1).unwrap();
        let rsa_private: Vec<Vec<u8>> = [
            rsa.private_exponent,
            rsa.prime1,
            rsa.prime2,
            rsa.exponent1,
            rsa.exponent2,
            rsa.coefficient,
        ]
        .iter()
        .map(|int| int.as_bytes().to_vec())
        .collect();
        let rsa_jwk = json!({"kty": "RSA", "kid": "rsa-1", "alg": "PS256",
            "n": b64(rsa.modulus.as_bytes()), "e": b64(rsa.public_exponent.as_bytes()),
            "d": b64(&rsa_private[0]), "p": b64(&rsa_private[1]), "q": b64(&rsa_private[2]),
            "dp": b64(&rsa_private[3]), "dq": b64(&rsa_private[4]), "qi": b64(&rsa_private[5])});

        let ec_pem = fixture("jwt-p256.pem");
        let ec_pkcs8 = der_of(&ec_pem);
        let ec_sec1 = pkcs8::PrivateKeyInfo::from_der(&ec_pkcs8)
            .unwrap()
            .private_key
            .to_vec();
        let ec = sec1::EcPrivateKey::from_der(&ec_sec1).unwrap();
        let ec_d = ec.private_key.to_vec();
        let point = ec.public_key.unwrap();
        let ec_jwk = json!({"kty": "EC", "crv": "P-256", "kid": "ec-1",
            "x": b64(&point[1..33]), "y": b64(&point[33..]), "d": b64(&ec_d)});

        let ed_pem = fixture("jwt-ed25519.pem");
        let ed_pkcs8 = der_of(&ed_pem);
        let seed = der::asn1::OctetStringRef::from_der(
            pkcs8::PrivateKeyInfo::from_der(&ed_pkcs8)
                .unwrap()
                .private_key,
        )
        .unwrap()
        .as_bytes()
        .to_vec();
        let spki = std::process::Command::new("openssl")
            .args(["pkey", "-pubout", "-outform", "DER", "-in"])
            .arg(common::root().join("tests/fixtures/jwt-ed25519.pem"))
            .output()
            .unwrap()
            .stdout;
        let ed_jwk = json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA",
            "x": b64(&spki[spki.len() - 32..]), "d": b64(&seed)});
        let mut ec_public = ec_jwk.clone();
        ec_public.as_object_mut().unwrap().remove("d");

        let sec1_pem = pem("EC PRIVATE KEY", &ec_sec1);
        let pkcs1_pem = pem("RSA PRIVATE KEY", &rsa_pkcs1);
        let samples = vec![
            Sample {
                text: rsa_pem.clone(),
                der: Some((rsa_pkcs8.clone(), "PRIVATE KEY")),
            },
            Sample {
                text: pkcs1_pem,
                der: Some((rsa_pkcs1.clone(), "RSA PRIVATE KEY")),
            },
            Sample {
                text: ec_pem,
                der: Some((ec_pkcs8.clone(), "PRIVATE KEY")),
            },
            Sample {
                text: sec1_pem,
                der: Some((ec_sec1.clone(), "EC PRIVATE KEY")),
            },
            Sample {
                text: ed_pem,
                der: Some((ed_pkcs8.clone(), "PRIVATE KEY")),
            },
            Sample {
                text: rsa_jwk.to_string(),
                der: None,
            },
            Sample {
                text: ec_jwk.to_string(),
                der: None,
            },
            Sample {
                text: ed_jwk.to_string(),
                der: None,
            },
            Sample {
                text: json!({"keys": [ec_public, ed_jwk]}).to_string(),
                der: None,
            },
            Sample {
                text: json!({"type": "service_account", "private_key_id": "sa-1",
                    "private_key": rsa_pem, "client_email": "robot@svc-tests.example"})
                .to_string(),
                der: Some((rsa_pkcs8.clone(), "PRIVATE KEY")),
            },
        ];
        // The sample keys must read as they are.
        for sample in &samples {
            svc::oauth::keys::KeyMaterial::parse(&sample.text)
                .unwrap_or_else(|e| panic!("{e}: {}", sample.text));
        }

        let mut private = rsa_private;
        private.push(ec_d);
        private.push(seed);
        let mut all = private.clone();
        all.extend([rsa_pkcs8, rsa_pkcs1, ec_pkcs8, ec_sec1, ed_pkcs8]);
        Corpus {
            samples,
            any_key_bytes: needles(&all),
            private_bytes: needles(&private),
        }
    })
}

/// Every 9-byte window of `secrets`, as hex (both cases), base64 (both
/// alphabets) and the decimal list a `Debug` of bytes prints: a message
/// holding any of them shows more than 8 bytes of a key.
fn needles(secrets: &[Vec<u8>]) -> aho_corasick::AhoCorasick {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let mut needles = std::collections::BTreeSet::new();
    for secret in secrets {
        for window in secret.windows(9) {
            // A run of one byte (DER padding, a zero run) is no one's key.
            if window.iter().all(|&byte| byte == window[0]) {
                continue;
            }
            let hex: String = window.iter().map(|byte| format!("{byte:02x}")).collect();
            needles.insert(hex.to_uppercase());
            needles.insert(hex);
            needles.insert(STANDARD_NO_PAD.encode(window));
            needles.insert(URL_SAFE_NO_PAD.encode(window));
            let decimal: Vec<String> = window.iter().map(u8::to_string).collect();
            needles.insert(decimal.join(", "));
        }
    }
    aho_corasick::AhoCorasick::new(needles).unwrap()
}

/// A mutant of a sample, one of five ways: its text; its DER, under its
/// own PEM label or another; one JWK member's bytes; or two samples run
/// together.
fn mutant(corpus: &Corpus, index: usize, how: u8, seed: u64) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut rng = fastrand::Rng::with_seed(seed);
    let sample = &corpus.samples[index];
    let pem = |label: &str, der: &[u8]| {
        pem_rfc7468::encode_string(label, pem_rfc7468::LineEnding::LF, der).unwrap()
    };
    let lossy = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
    match (how, &sample.der) {
        (1, Some((der, label))) => {
            let der = mutate::mutate(&mut rng, der);
            let text = pem(label, &der);
            if sample.text.starts_with('{') {
                json!({"type": "service_account", "private_key": text}).to_string()
            } else {
                text
            }
        }
        (2, Some((der, _))) => {
            let labels = [
                "PRIVATE KEY",
                "RSA PRIVATE KEY",
                "EC PRIVATE KEY",
                "PUBLIC KEY",
            ];
            let der = if rng.bool() {
                mutate::mutate(&mut rng, der)
            } else {
                der.clone()
            };
            pem(labels[rng.usize(..labels.len())], &der)
        }
        (3, None) => {
            let mut json: serde_json::Value = serde_json::from_str(&sample.text).unwrap();
            let jwk = match json.get_mut("keys") {
                Some(keys) => &mut keys[1],
                None => &mut json,
            };
            let object = jwk.as_object_mut().unwrap();
            let members: Vec<String> = object
                .iter()
                .filter(|(_, value)| value.as_str().is_some_and(|text| text.len() > 8))
                .map(|(member, _)| member.clone())
                .collect();
            let member = &members[rng.usize(..members.len())];
            let bytes = URL_SAFE_NO_PAD
                .decode(object[member].as_str().unwrap())
                .unwrap();
            let bytes = mutate::mutate(&mut rng, &bytes);
            object.insert(member.clone(), URL_SAFE_NO_PAD.encode(bytes).into());
            json.to_string()
        }
        (4, _) => {
            let other = &corpus.samples[rng.usize(..corpus.samples.len())].text;
            let (a, b) = (sample.text.as_bytes(), other.as_bytes());
            let (cut_a, cut_b) = (rng.usize(..=a.len()), rng.usize(..=b.len()));
            lossy([&a[..cut_a], &b[cut_b..]].concat())
        }
        _ => lossy(mutate::mutate(&mut rng, sample.text.as_bytes())),
    }
}

/// What reading a mutant says: an error (its message, `Debug`, help and
/// code), or a key (its `Debug` and public JWK), or why a key that reads
/// is of no use.
enum Said {
    Error(String),
    Key(String),
    Useless(String),
}

fn read(text: &str) -> Said {
    use svc::oauth::jwk::PublicJwk;
    use svc::oauth::jwt::{client_assertion_claims, sign};
    let material = match svc::oauth::keys::KeyMaterial::parse(text) {
        Err(error) => {
            return Said::Error(format!(
                "{error}\n{error:?}\n{}\n{}",
                error.help(),
                error.code()
            ));
        }
        Ok(material) => material,
    };
    // A key that reads signs with each of its algorithms, and has a public JWK.
    let claims = client_assertion_claims("c", "https://as.example/token", 1_750_000_000);
    for &alg in material.key.algorithms() {
        if let Err(error) = sign(&material.key, alg, material.kid.as_deref(), &claims) {
            return Said::Useless(format!("{material:?} cannot sign {alg}: {error}"));
        }
    }
    match PublicJwk::of(&material.key, material.alg, material.kid.as_deref()) {
        Ok(jwk) => {
            let mut shown = format!("{material:?}\n{}", serde_json::to_string(&jwk).unwrap());
            // The input's own public labels are echoed as they are (a `kid`
            // goes to the server in every header), whatever a mutation
            // put in them.
            for label in [&material.kid, &material.client_email, &material.token_uri]
                .into_iter()
                .flatten()
                .filter(|label| !label.is_empty())
            {
                // As `Debug` and JSON write it, and as it is.
                for form in [
                    format!("{label:?}"),
                    serde_json::to_string(label).unwrap(),
                    label.clone(),
                ] {
                    shown = shown.replace(&form, "<label>");
                }
            }
            Said::Key(shown)
        }
        Err(error) => Said::Useless(format!("{material:?} has no public JWK: {error}")),
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 2048,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Mutated PEM, DER, JWK and service-account keys: the reader never
    /// panics, and nothing it says (an error's message, `Debug` and help;
    /// a key's `Debug` and public JWK) holds 9 bytes of a key's DER or
    /// private parts, in hex, base64 or as a list of numbers.
    #[test]
    fn the_key_reader_never_panics_or_shows_key_bytes(
        index in 0..10usize,
        how in 0..5u8,
        seed in proptest::prelude::any::<u64>(),
    ) {
        let corpus = corpus();
        let text = mutant(corpus, index, how, seed);
        let said = std::panic::catch_unwind(|| read(&text));
        proptest::prop_assert!(said.is_ok(), "the reader panicked on:\n{}", text);
        let (shown, needles) = match said.unwrap() {
            Said::Error(error) => (error, &corpus.any_key_bytes),
            Said::Key(key) => (key, &corpus.private_bytes),
            Said::Useless(why) => {
                proptest::prop_assert!(false, "{}; read from:\n{}", why, text);
                unreachable!()
            }
        };
        if let Some(found) = needles.find(&shown) {
            proptest::prop_assert!(
                false,
                "{:?} of a key shows in:\n{}\nread from:\n{}",
                &shown[found.range()],
                shown,
                text
            );
        }
    }
}
