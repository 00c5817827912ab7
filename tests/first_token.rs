//! README's "first token" block, run as written: each command of it, as
//! the shell would run it, in a fresh copy of the repository's project
//! (`svc.toml` and `examples/`), by a user whose identity is where svc
//! looks for it, against HubSpot.
//!
//! HubSpot is played on 127.0.0.1: svc reaches `https://api.hubapi.com`
//! through `HTTPS_PROXY`, a proxy in this test that answers `CONNECT
//! api.hubapi.com:443` with TLS of its own (a certificate from a test CA
//! that `SSL_CERT_FILE` makes the only trusted one) and hands the requests
//! to wiremock. The test is the person at the consent page: it follows the
//! authorization URL's redirect with a code, as the browser would.

mod common;

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const CLIENT_ID: &str = "hub-client-id-first-7Q";
const CLIENT_SECRET: &str = "hub-client-secret-first-Lw9";
const CODE: &str = "consent-code-Xe4";
const FIRST_REFRESH: &str = "first-refresh-token-Pd2";
const FIRST_ACCESS: &str = "first-access-token-Mn8";
const NEXT_REFRESH: &str = "next-refresh-token-Ub6";
const NEXT_ACCESS: &str = "next-access-token-Yt1";

/// The commands of README's "first token" block, as the shell splits
/// them: comments dropped, `&&` between commands.
fn first_token_commands() -> Vec<Vec<String>> {
    let readme = std::fs::read_to_string(common::root().join("README.md")).unwrap();
    let block = readme
        .split("## The first token")
        .nth(1)
        .and_then(|s| s.split("```").nth(1))
        .expect("README has a first-token section with a code block");
    let mut commands = Vec::new();
    for line in block.lines() {
        let line = match line.find(" #") {
            Some(at) => &line[..at],
            None if line.trim_start().starts_with('#') => "",
            None => line,
        };
        for command in line.split("&&") {
            let words: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
            if !words.is_empty() {
                commands.push(words);
            }
        }
    }
    commands
}

/// A CA, and a certificate for `api.hubapi.com` it signed.
struct Pki {
    ca_pem: String,
    chain: Vec<rustls_pki_types::CertificateDer<'static>>,
    key: rustls_pki_types::PrivateKeyDer<'static>,
}

fn pki() -> Pki {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "svc first-token test CA");
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().unwrap()).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut leaf = rcgen::CertificateParams::new(vec!["api.hubapi.com".to_string()]).unwrap();
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = leaf.signed_by(&key, &ca).unwrap();
    Pki {
        ca_pem: ca.pem(),
        chain: vec![leaf.der().clone(), ca.der().clone()],
        key: rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    }
}

/// The proxy: `CONNECT api.hubapi.com:443` only, TLS as api.hubapi.com,
/// then the bytes to and from `upstream`. Returns its address and the
/// targets it was asked for.
async fn proxy(
    pki: &Pki,
    upstream: std::net::SocketAddr,
) -> (std::net::SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    svc::net::http::install_crypto_provider();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(pki.chain.clone(), pki.key.clone_key())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let asked: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let targets = asked.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let targets = targets.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if socket.read_exact(&mut byte).await.is_err() {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let target = head
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_string();
                targets.lock().unwrap().push(target.clone());
                if !head.starts_with("CONNECT ") || target != "api.hubapi.com:443" {
                    let _ = socket.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n").await;
                    return;
                }
                let _ = socket
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await;
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let Ok(mut hubspot) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut hubspot).await;
            });
        }
    });
    (address, asked)
}

/// The user: a home with an identity where svc looks, a copy of the
/// repository's project, and the proxy in the way to HubSpot.
struct User {
    home: PathBuf,
    clone: PathBuf,
    proxy: std::net::SocketAddr,
    ca_file: PathBuf,
}

impl User {
    fn command(&self, words: &[String]) -> Command {
        assert_eq!(words[0], "svc", "README's block runs svc: {words:?}");
        let mut command = Command::new(env!("CARGO_BIN_EXE_svc"));
        command
            .args(&words[1..])
            .current_dir(&self.clone)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("NO_COLOR", "1")
            .env("HTTPS_PROXY", format!("http://{}", self.proxy))
            .env("SSL_CERT_FILE", &self.ca_file);
        command
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Plays the person at the consent page: reads the authorization URL
/// `svc authorize` prints, and follows its redirect with a code, as the
/// browser does once the person agrees. Returns all that svc printed.
fn consent(stdout: impl Read) -> String {
    let mut printed = String::new();
    let mut consented = false;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        let Some(url) = line
            .trim()
            .strip_prefix("https://app.hubspot.com/oauth/authorize")
            .filter(|_| !consented)
        else {
            continue;
        };
        consented = true;
        let url =
            url::Url::parse(&format!("https://app.hubspot.com/oauth/authorize{url}")).unwrap();
        let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(query["client_id"], CLIENT_ID, "{url}");
        assert_eq!(query["code_challenge_method"], "S256", "{url}");
        let redirect = url::Url::parse(&query["redirect_uri"]).unwrap();
        assert_eq!(redirect.host_str(), Some("127.0.0.1"), "{redirect}");
        let mut stream =
            std::net::TcpStream::connect((redirect.host_str().unwrap(), redirect.port().unwrap()))
                .unwrap();
        write!(
            stream,
            "GET {}?code={CODE}&state={} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            redirect.path(),
            query["state"]
        )
        .unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    assert!(consented, "no authorization URL:\n{printed}");
    printed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_first_token_block_runs_as_written_from_a_fresh_clone() {
    let commands = first_token_commands();
    assert!(
        commands
            .iter()
            .any(|c| c.starts_with(&["svc".into(), "authorize".into()])),
        "{commands:?}"
    );

    let hubspot = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/v1/token"))
        .and(body_string_contains("grant_type=authorization_code"))
        .and(body_string_contains(format!("code={CODE}")))
        .and(body_string_contains(format!(
            "client_secret={CLIENT_SECRET}"
        )))
        .and(body_string_contains("code_verifier="))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": FIRST_ACCESS,
            "refresh_token": FIRST_REFRESH,
            "expires_in": 1800,
            "token_type": "bearer"
        })))
        .expect(1)
        .mount(&hubspot)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/v1/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains(format!(
            "refresh_token={FIRST_REFRESH}"
        )))
        .and(body_string_contains(format!(
            "client_secret={CLIENT_SECRET}"
        )))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": NEXT_ACCESS,
            "refresh_token": NEXT_REFRESH,
            "expires_in": 1800,
            "token_type": "bearer"
        })))
        .expect(1)
        .mount(&hubspot)
        .await;

    let work = tempfile::tempdir().unwrap();
    let pki = pki();
    let ca_file = work.path().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();
    let (proxy, asked) = proxy(&pki, *hubspot.address()).await;

    // A fresh clone: the project file and the examples it names.
    let clone = work.path().join("svc");
    std::fs::create_dir(&clone).unwrap();
    std::fs::copy(common::root().join("svc.toml"), clone.join("svc.toml")).unwrap();
    copy_dir(&common::root().join("examples"), &clone.join("examples"));
    let user = User {
        home: work.path().join("home"),
        clone,
        proxy,
        ca_file,
    };
    std::fs::create_dir(&user.home).unwrap();
    let keygen = ["svc", "secret", "keygen", "-o"]
        .iter()
        .map(|w| w.to_string())
        .chain([user
            .home
            .join(".config/svc/identity.txt")
            .display()
            .to_string()])
        .collect::<Vec<_>>();
    let made = user.command(&keygen).output().unwrap();
    assert!(made.status.success(), "{made:?}");

    let mut everything = String::new();
    for words in &commands {
        let mut command = user.command(words);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        if words[1..3] == ["secret", "set"] {
            let value = match words[3].as_str() {
                "HUBSPOT_CLIENT_ID" => CLIENT_ID,
                "HUBSPOT_CLIENT_SECRET" => CLIENT_SECRET,
                other => panic!("README sets an unknown secret {other}"),
            };
            stdin.write_all(value.as_bytes()).unwrap();
        }
        drop(stdin);
        let stdout = child.stdout.take().unwrap();
        let authorize = words[1] == "authorize";
        let printed = tokio::task::spawn_blocking(move || {
            if authorize {
                consent(stdout)
            } else {
                let mut printed = String::new();
                let mut stdout = stdout;
                stdout.read_to_string(&mut printed).unwrap();
                printed
            }
        });
        let output = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        let printed = printed.await.unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        everything.push_str(&printed);
        everything.push_str(&stderr);
        assert!(
            output.status.success(),
            "`{}` failed ({:?}):\n{printed}\n{stderr}",
            words.join(" "),
            output.status
        );
    }

    // Both tokens are stored: the first by the consent, the next by the run.
    let get = |name: &str| {
        let words: Vec<String> = ["svc", "secret", "get", name, "--env", "dev"]
            .iter()
            .map(|w| w.to_string())
            .collect();
        let output = user.command(&words).output().unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_string()
    };
    assert_eq!(get("HUBSPOT_REFRESH_TOKEN"), NEXT_REFRESH);
    assert_eq!(get("HUBSPOT_ACCESS_TOKEN"), NEXT_ACCESS);
    assert!(user.clone.join("secrets/dev.age").is_file());
    // Every request went to HubSpot's token endpoint, through the proxy.
    let asked = asked.lock().unwrap().clone();
    assert!(
        !asked.is_empty() && asked.iter().all(|t| t == "api.hubapi.com:443"),
        "{asked:?}"
    );
    for secret in [
        CLIENT_SECRET,
        FIRST_REFRESH,
        FIRST_ACCESS,
        NEXT_REFRESH,
        NEXT_ACCESS,
    ] {
        assert!(
            !everything.contains(secret),
            "{secret} leaked:\n{everything}"
        );
    }
}
