//! Operators and functions at run time: a run computes an HMAC signature,
//! a Basic header, arithmetic and time from a JWT's `exp`, sends them to a
//! server on 127.0.0.1 that records what it got, and stores the token with
//! the expiry it computed. What is derived from a secret is masked like
//! the secret.

mod common;

use common::Project;
use std::sync::mpsc;

/// A server for one request: answers `body` with 200 and hands over the
/// request as received (head and body).
fn one_answer(body: String) -> (u16, mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let request = common::read_request(&stream);
        common::answer_json(stream, "200 OK", &body);
        tx.send(format!("{}{}", request.head, request.body))
            .unwrap();
    });
    (port, rx)
}

fn hmac_hex(key: &str, message: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes());
    ring::hmac::sign(&key, message.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const PROGRAM: &str = r#"
secret SIGNING_KEY   { environment_specific locked }
secret CLIENT_ID     { environment_specific }
secret CLIENT_SECRET { environment_specific locked }
secret TOKEN         { environment_specific }

role keeper {
  grant run api.fetch
  grant update_secret TOKEN
}
service_account bot { roles keeper }

service api {
  var signature: string
  var basic: string
  var token: string
  var claims: json
  var expires_at: time
  var lifetime: duration

  action fetch {
    update service_variables {
      basic     = "Basic " + base64_encode(secret.CLIENT_ID + ":" + secret.CLIENT_SECRET)
      signature = hmac_sha256(secret.SIGNING_KEY, "order-" + string(40 + 2))
    }
    log "signed ${hmac_sha256(secret.SIGNING_KEY, "log-only")} for ${upper("order")}"
    web_request {
      method POST
      url "http://127.0.0.1:PORT/token"
      headers {
        "Authorization" = basic
        "X-Signature"   = signature
        "X-Math"        = string(2 + 3 * 4 - 10 / 4)
        "X-Upper"       = upper(trim("  shout  "))
        "X-Digest"      = sha256("abc")
        "X-Encoded"     = url_encode("a b&c")
      }
      result_mapping { token = $.access_token }
    }
    update service_variables {
      claims     = jwt_claims(token)
      expires_at = from_unix(json_path(claims, "$.exp"))
      lifetime   = expires_at - now()
    }
    if has_value(token) && lifetime > 10m && len(claims) == 2 {
      update_secret TOKEN {
        value      = token
        expires_in = seconds(lifetime)
      }
    }
  }

  endpoint fetch {
    methods POST
    log enabled
    process fetch
  }
}
"#;

#[test]
fn a_run_computes_signatures_headers_and_expiry_and_masks_what_came_from_secrets() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let exp = common::unix_now() + 3600;
    let token = format!(
        "{}.{}.c2ln",
        b64.encode(r#"{"alg":"RS256"}"#),
        b64.encode(format!(r#"{{"exp":{exp},"sub":"robot"}}"#))
    );
    let (port, requests) = one_answer(format!(r#"{{"access_token":"{token}"}}"#));
    let p = Project::new();
    p.set("SIGNING_KEY", "signing-key-6d21f0");
    p.set("CLIENT_ID", "client-7a");
    p.set("CLIENT_SECRET", "client-secret-93be4c");
    p.write("api.svc", &PROGRAM.replace("PORT", &port.to_string()));
    let check = p.svc().args(["check", "api.svc"]).run();
    assert_eq!(check.status, 0, "{}", check.stderr);
    let run = p
        .svc()
        .args([
            "run",
            "api.svc",
            "api.fetch",
            "--env",
            "dev",
            "--as",
            "bot",
            "--output",
            "json",
        ])
        .run();
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    let request = requests.recv().unwrap().to_ascii_lowercase();

    let signature = hmac_hex("signing-key-6d21f0", "order-42");
    let basic = base64::engine::general_purpose::STANDARD.encode("client-7a:client-secret-93be4c");
    for header in [
        format!("authorization: basic {}", basic.to_ascii_lowercase()),
        format!("x-signature: {signature}"),
        "x-math: 11.5".to_string(),
        "x-upper: shout".to_string(),
        "x-digest: ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".to_string(),
        "x-encoded: a%20b%26c".to_string(),
    ] {
        assert!(request.contains(&header), "{header} not in:\n{request}");
    }

    // Stored with the expiry computed from the token's `exp`.
    assert_eq!(p.get("TOKEN"), token);
    let document = p.document();
    let expires_at = document["secrets"]["TOKEN"]["expires_at"].as_str().unwrap();
    let expires_at = chrono::DateTime::parse_from_rfc3339(expires_at).unwrap();
    assert!(
        (expires_at.timestamp() - exp).abs() <= 5,
        "{expires_at} is not {exp}"
    );

    // The signature and the Basic header are derived from secrets: masked
    // wherever the run shows them, as the secrets are.
    let everything = format!("{}{}{}", run.stdout, run.stderr, p.logs());
    // `log` shows what it computed, with what came from a secret masked.
    assert!(everything.contains("signed *** for ORDER"), "{everything}");
    for value in [
        "signing-key-6d21f0",
        "client-secret-93be4c",
        signature.as_str(),
        hmac_hex("signing-key-6d21f0", "log-only").as_str(),
        basic.as_str(),
        token.as_str(),
    ] {
        assert!(!everything.contains(value), "{value} leaked:\n{everything}");
    }
}

#[test]
fn a_failing_function_is_a_type_error_that_names_it_and_not_the_value() {
    let p = Project::new();
    p.set("KEY", "not-base64-secret!");
    p.set("OUT", "kept");
    p.write(
        "api.svc",
        r#"
secret KEY { environment_specific }
secret OUT { environment_specific }
role r {
  grant run api.go
  grant update_secret OUT
}
service_account bot { roles r }
service api {
  var decoded: string
  action go {
    update service_variables { decoded = base64_decode(secret.KEY) }
    if has_value(decoded) {
      update_secret OUT = decoded
    }
  }
  endpoint go {
    methods POST
    process go
  }
}
"#,
    );
    let run = p
        .svc()
        .args(["run", "api.svc", "api.go", "--env", "dev", "--as", "bot"])
        .run();
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert!(run.stderr.contains("base64_decode"), "{}", run.stderr);
    assert!(run.stderr.contains("type_error"), "{}", run.stderr);
    assert!(!run.all_output().contains("not-base64-secret!"));
    assert_eq!(p.get("OUT"), "kept");
}
