//! Connected accounts on PostgreSQL (a real server, tests/common/pg.rs):
//! accounts imported in bulk, refreshed by a `for_each_connection`
//! schedule over three `svc serve` replicas against a provider that
//! rotates refresh tokens and counts any token presented twice, and read
//! over HTTP from any replica.

mod common;

use std::io::Write as _;

use common::Served;
use common::pg::Postgres;
use common::rotating::*;
use serde_json::Value;

const ACCOUNTS: usize = 40;

fn program(token_endpoint: &str) -> String {
    format!(
        r#"
secret CLIENT_ID     {{ environment_specific }}
secret CLIENT_SECRET {{ environment_specific locked }}
secret ACCOUNT_REFRESH_TOKEN {{ per_account }}
secret ACCOUNT_ACCESS_TOKEN  {{ per_account }}

oauth_client vendor {{
  authorize_url "{token_endpoint}/../authorize"
  token_url   "{token_endpoint}"
  client_id   secret.CLIENT_ID
  client_auth client_secret_post(secret.CLIENT_SECRET)
  per_account
  stores {{
    refresh_token = ACCOUNT_REFRESH_TOKEN
    access_token  = ACCOUNT_ACCESS_TOKEN
  }}
}}

role keeper {{
  grant run accounts.refresh
  grant update_secret ACCOUNT_REFRESH_TOKEN
  grant update_secret ACCOUNT_ACCESS_TOKEN
  grant read_secret ACCOUNT_ACCESS_TOKEN
  grant read_status vendor
}}
service_account nightly {{ roles keeper }}

service accounts {{
  var token: string
  var next: string
  var expires_in: number

  action refresh {{
    web_request {{
      auth client(vendor)
      form {{
        grant_type    = "refresh_token"
        refresh_token = secret.ACCOUNT_REFRESH_TOKEN
      }}
      result_mapping {{
        token      = $.access_token
        next       = $.refresh_token
        expires_in = $.expires_in
      }}
    }}
    if has_value(next) && has_value(token) {{
      update_secrets {{
        ACCOUNT_REFRESH_TOKEN = next
        ACCOUNT_ACCESS_TOKEN  {{ value = token  expires_in = expires_in }}
      }}
    }}
  }}

  endpoint refresh {{
    methods GET POST
    process refresh
  }}
}}

schedule every_account {{
  endpoint            accounts.refresh
  service_account     nightly
  for_each_connection vendor
  concurrency         8
  every               2s
}}
"#
    )
}

fn value(p: &PgProject, name: &str, id: &str) -> String {
    let run = p
        .svc()
        .args(["secret", "get", name, "--connection", id])
        .args(["--program", "app.svc", "--env", "dev"])
        .run();
    assert_eq!(run.status, 0, "{}", run.all_output());
    run.stdout.trim().to_string()
}

#[test]
fn three_replicas_refresh_every_imported_account_without_spending_a_token_twice() {
    let pg = Postgres::shared();
    let server = rotating_server();
    let p = PgProject::new(pg, "accounts");
    p.set("CLIENT_ID", CLIENT_ID);
    p.set("CLIENT_SECRET", CLIENT_SECRET);
    p.project
        .write("app.svc", &program(&server.url("token_endpoint")));

    // A bulk import: one JSON object a line, with a line that is not one
    // first (nothing is written), then the good file.
    let seeds: Vec<String> = (0..ACCOUNTS).map(|_| seed(&server)).collect();
    let bad = p.project.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        format!(
            "{{\"connection_id\": \"ok-1\", \"refresh_token\": \"{}\"}}\n{{\"connection_id\": \"a b\", \"refresh_token\": \"x\"}}\n",
            seeds[0]
        ),
    )
    .unwrap();
    let refused = p
        .svc()
        .args(["connection", "import", "vendor", "bad.jsonl"])
        .args(["--program", "app.svc", "--env", "dev"])
        .run();
    assert_eq!(refused.status, 2, "{}", refused.all_output());
    assert!(refused.stderr.contains("line 2"), "{}", refused.stderr);
    assert!(!refused.all_output().contains(&seeds[0]));
    let file = p.project.path().join("accounts.jsonl");
    let mut lines = std::fs::File::create(&file).unwrap();
    for (i, token) in seeds.iter().enumerate() {
        let tier = if i % 2 == 0 { "even" } else { "odd" };
        writeln!(
            lines,
            "{}",
            serde_json::json!({"connection_id": format!("customer-{i:03}"), "tags": {"tier": tier}, "refresh_token": token})
        )
        .unwrap();
    }
    drop(lines);
    let imported = p
        .svc()
        .args(["connection", "import", "vendor", "accounts.jsonl", "--json"])
        .args(["--program", "app.svc", "--env", "dev"])
        .run();
    assert_eq!(imported.status, 0, "{}", imported.all_output());
    let imported: Value = serde_json::from_str(&imported.stdout).unwrap();
    assert_eq!(imported["created"], ACCOUNTS, "{imported}");
    // Again: every id exists, nothing changes.
    let again = p
        .svc()
        .args(["connection", "import", "vendor", "accounts.jsonl", "--json"])
        .args(["--program", "app.svc", "--env", "dev"])
        .run();
    let again: Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(again["created"], 0, "{again}");
    assert_eq!(value(&p, "ACCOUNT_REFRESH_TOKEN", "customer-007"), seeds[7]);

    // Three replicas, one schedule over every account, every 2 seconds.
    let replicas: Vec<Served> = (0..3).map(|_| p.serve(&["app.svc"])).collect();
    let refreshed_twice = common::eventually(90, || {
        let stats = stats(&server);
        stats["refresh_grants"].as_u64().unwrap_or(0) >= 2 * ACCOUNTS as u64
    });
    let logs: String = replicas.iter().map(Served::stderr).collect();
    assert!(refreshed_twice, "{}\n{logs}", stats(&server));
    let stats = stats(&server);
    assert_eq!(
        stats["reused_refresh_tokens"], 0,
        "a token spent twice: {stats}"
    );
    assert_eq!(stats["rejected_refresh_grants"], 0, "{stats}");

    // Every account holds a token of its own chain: the seed is spent.
    for i in [0, 13, ACCOUNTS - 1] {
        let id = format!("customer-{i:03}");
        let now = value(&p, "ACCOUNT_REFRESH_TOKEN", &id);
        assert_ne!(now, seeds[i], "{id} was never refreshed");
        assert!(active(&server, &now), "{id} holds a spent token");
        assert!(!active(&server, &seeds[i]));
    }

    // Any replica reads an account's token; a listing pages through them.
    let key = p.key("nightly");
    let read = replicas[2].call(
        "GET",
        "/api/connections/vendor/customer-013/secrets/ACCOUNT_ACCESS_TOKEN",
        Some(&key),
        None,
    );
    assert_eq!(read.status, 200, "{}", read.body);
    let token = read.json()["value"].as_str().unwrap().to_string();
    assert_eq!(token, value(&p, "ACCOUNT_ACCESS_TOKEN", "customer-013"));
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = replicas[1]
            .call(
                "GET",
                &format!("/api/connections?client=vendor&tag=tier%3Deven&limit=7{cursor}"),
                Some(&key),
                None,
            )
            .json();
        for c in page["connections"].as_array().unwrap() {
            assert_eq!(c["tags"]["tier"], "even", "{c}");
            seen.push(c["connection_id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    let even: Vec<String> = (0..ACCOUNTS)
        .step_by(2)
        .map(|i| format!("customer-{i:03}"))
        .collect();
    assert_eq!(seen, even);

    let logs: String = replicas.iter().map(Served::stderr).collect();
    for secret in seeds.iter().chain([&token]) {
        assert!(!logs.contains(secret.as_str()), "a token in the logs");
    }
    drop(replicas);
}
