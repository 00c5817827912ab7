//! examples/paged_sync.svc end to end, against a CRM on 127.0.0.1: a token
//! endpoint (client_credentials with Basic auth), a paged contacts API that
//! wants that token, and a webhook receiver. The example's URLs are pointed
//! at it; nothing else of the program changes.

mod common;

use common::Project;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const CLIENT_ID: &str = "crm-client-31";
const CLIENT_SECRET: &str = "crm-client-secret-c04b7d";

/// The CRM: three pages of contacts (some without an email), tokens that
/// change on every grant, and a switch that makes the contacts API fail.
struct Crm {
    port: u16,
    hooks: Arc<Mutex<Vec<serde_json::Value>>>,
    pages_served: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
}

impl Crm {
    fn start() -> Crm {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hooks = Arc::new(Mutex::new(Vec::new()));
        let pages_served = Arc::new(AtomicUsize::new(0));
        let failing = Arc::new(AtomicBool::new(false));
        let (h, p, f) = (hooks.clone(), pages_served.clone(), failing.clone());
        std::thread::spawn(move || {
            let mut issued = Vec::<String>::new();
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let common::Received {
                    target,
                    head: headers,
                    body,
                    ..
                } = common::read_request(&stream);
                let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                let query: std::collections::BTreeMap<String, String> =
                    url::form_urlencoded::parse(query.as_bytes())
                        .into_owned()
                        .collect();
                let (status, answer) = match path {
                    "/oauth/token" => {
                        use base64::Engine as _;
                        let basic = format!(
                            "basic {}",
                            base64::engine::general_purpose::STANDARD
                                .encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
                        );
                        if headers
                            .to_ascii_lowercase()
                            .contains(&format!("authorization: {}", basic.to_ascii_lowercase()))
                            && body.contains("grant_type=client_credentials")
                        {
                            let token = format!("crm-token-{}-f19e", issued.len() + 1);
                            issued.push(token.clone());
                            (
                                200,
                                serde_json::json!({"access_token": token, "expires_in": 3600}),
                            )
                        } else {
                            (401, serde_json::json!({"error": "invalid_client"}))
                        }
                    }
                    "/api/contacts" => {
                        let authorized = issued.last().is_some_and(|t| {
                            headers.contains(&format!("authorization: Bearer {t}"))
                        });
                        if !authorized {
                            (401, serde_json::json!({"error": "invalid_token"}))
                        } else if f.load(Ordering::SeqCst) {
                            (500, serde_json::json!({"error": "the CRM is down"}))
                        } else {
                            p.fetch_add(1, Ordering::SeqCst);
                            let limit: usize =
                                query.get("limit").and_then(|l| l.parse().ok()).unwrap_or(0);
                            let page = match query.get("cursor").map(String::as_str) {
                                Some("") | None => 1,
                                Some("c2") => 2,
                                Some("c3") => 3,
                                Some(_) => 99,
                            };
                            let contacts: Vec<serde_json::Value> = (0..3)
                                .map(|i| {
                                    let id = page * 10 + i;
                                    if i == 2 {
                                        serde_json::json!({"id": id})
                                    } else {
                                        serde_json::json!({"id": id, "email": format!("c{id}@example.test")})
                                    }
                                })
                                .take(limit)
                                .collect();
                            let next = match page {
                                1 => serde_json::json!("c2"),
                                2 => serde_json::json!("c3"),
                                _ => serde_json::Value::Null,
                            };
                            (200, serde_json::json!({"contacts": contacts, "next": next}))
                        }
                    }
                    "/crm" => {
                        h.lock()
                            .unwrap()
                            .push(serde_json::from_str(&body).unwrap_or_default());
                        (200, serde_json::json!({}))
                    }
                    _ => (404, serde_json::json!({})),
                };
                common::answer_json(stream, &format!("{status} X"), &answer.to_string());
            }
        });
        Crm {
            port,
            hooks,
            pages_served,
            failing,
        }
    }

    fn hooks(&self) -> Vec<serde_json::Value> {
        self.hooks.lock().unwrap().clone()
    }
}

#[test]
fn the_example_syncs_every_page_answers_the_count_and_reports_failure_and_recovery() {
    let crm = Crm::start();
    let p = Project::new();
    p.set("CRM_CLIENT_ID", CLIENT_ID);
    p.set("CRM_CLIENT_SECRET", CLIENT_SECRET);
    let example = std::fs::read_to_string(common::root().join("examples/paged_sync.svc")).unwrap();
    let local = format!("http://127.0.0.1:{}", crm.port);
    let program = example
        .replace("https://crm.example.com", &local)
        .replace("https://hooks.example.com", &local);
    p.write("crm.svc", &program);
    let sync = |params: &[&str]| {
        let mut args = vec![
            "run", "crm.svc", "crm.sync", "--env", "dev", "--as", "crm_bot", "--output", "json",
        ];
        for param in params {
            args.push("--param");
            args.push(param);
        }
        p.svc().args(args).run()
    };

    // Three pages of three contacts, two with an email each; `break` at the
    // page without a `next`.
    let run = sync(&[]);
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    let record: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        record["response"]["body"],
        serde_json::json!({"synced": 6, "pages": 3}),
        "{record}"
    );
    assert_eq!(crm.pages_served.load(Ordering::SeqCst), 3);
    // The token it fetched is stored, with its expiry.
    assert_eq!(p.get("CRM_ACCESS_TOKEN"), "crm-token-1-f19e");
    // `max_pages` bounds it; `page_size` reaches the API through run_service.
    let run = sync(&["max_pages=2", "page_size=1"]);
    let record: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        record["response"]["body"],
        serde_json::json!({"synced": 2, "pages": 2}),
        "{record}"
    );
    assert!(crm.hooks().is_empty(), "{:?}", crm.hooks());

    // The CRM fails twice: two failure notices; then the first sync that
    // works posts one recovery.
    crm.failing.store(true, Ordering::SeqCst);
    for _ in 0..2 {
        let failed = sync(&[]);
        assert_eq!(failed.status, 1, "{}", failed.stderr);
    }
    crm.failing.store(false, Ordering::SeqCst);
    assert_eq!(sync(&[]).status, 0);
    assert_eq!(sync(&[]).status, 0);
    let hooks = crm.hooks();
    let events: Vec<&str> = hooks.iter().map(|h| h["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        ["sync_failed", "sync_failed", "sync_recovered"],
        "{hooks:?}"
    );
    assert_eq!(hooks[0]["endpoint"], "crm.sync");
    assert_eq!(hooks[0]["code"], "web_request_error", "{hooks:?}");

    // No secret in any notice, output or log.
    let everything = format!("{hooks:?}{}", p.logs());
    for secret in [CLIENT_SECRET, "crm-token-"] {
        assert!(
            !everything.contains(secret),
            "{secret} leaked: {everything}"
        );
    }
}
