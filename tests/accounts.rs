//! Per-account programs: checked today, not run yet. A program with a
//! `per_account` client checks clean; running one of its per-account
//! endpoints, authorizing the client, or reading its connections is
//! refused with a stable code and a help line (exit 2), a schedule over its
//! connections is skipped, not failed, and the program's other endpoints
//! run as ever.

mod common;

use common::Project;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn program(base: &str) -> String {
    format!(
        r#"
secret CLIENT_ID              {{ environment_specific }}
secret CUSTOMER_REFRESH_TOKEN {{ per_account }}
secret CUSTOMER_ACCESS_TOKEN  {{ per_account }}
secret SHARED_TOKEN           {{ environment_specific }}

oauth_client hub {{
  authorize_url "{base}/authorize"
  token_url   "{base}/token"
  client_id   secret.CLIENT_ID
  client_auth none
  per_account
  stores {{
    refresh_token = CUSTOMER_REFRESH_TOKEN
    access_token  = CUSTOMER_ACCESS_TOKEN
  }}
}}

role refresher {{
  grant run customers.*
  grant update_secret CUSTOMER_REFRESH_TOKEN
  grant update_secret CUSTOMER_ACCESS_TOKEN
  grant update_secret SHARED_TOKEN
}}
service_account bot {{ roles refresher }}
user ops {{ roles refresher }}

service customers {{
  var token: string
  var refresh: string

  action refresh {{
    web_request {{
      auth client(hub)
      form {{
        grant_type    = "refresh_token"
        refresh_token = secret.CUSTOMER_REFRESH_TOKEN
      }}
      result_mapping {{
        token   = $.access_token
        refresh = $.refresh_token
      }}
    }}
    if has_value(token) && has_value(refresh) {{
      update_secrets {{
        CUSTOMER_REFRESH_TOKEN = refresh
        CUSTOMER_ACCESS_TOKEN  = token
      }}
    }}
  }}

  action shared {{
    web_request {{
      method POST
      url "{base}/token"
      form {{ grant_type = "client_credentials" }}
      result_mapping {{ token = $.access_token }}
    }}
    if has_value(token) {{
      update_secret SHARED_TOKEN = token
    }}
  }}

  endpoint refresh {{
    methods GET POST
    process refresh
  }}

  action for_acme {{
    run_service customers.refresh for_connection "acme-42" as bot
  }}

  endpoint shared {{
    methods POST
    process shared
  }}

  // Not per-account itself: it names the account it runs for.
  endpoint acme {{
    methods POST
    process for_acme
  }}
}}

schedule every_account {{
  endpoint            customers.refresh
  service_account     bot
  for_each_connection hub
  concurrency         4
  every               1s
}}
"#
    )
}

/// Runs svc in the project, off the async threads, and checks it refused
/// with exit 2 and says `says` on stderr.
async fn refused(p: &std::sync::Arc<Project>, args: Vec<&'static str>, says: &str) -> common::Run {
    let p = p.clone();
    let run = tokio::task::spawn_blocking(move || p.svc().args(args).run())
        .await
        .unwrap();
    assert_eq!(run.status, 2, "{}", run.all_output());
    assert!(run.stderr.contains(says), "{}", run.stderr);
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_account_program_checks_clean_and_says_what_it_does_not_run_yet() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"access_token": "shared-access-Tb41"})),
        )
        .mount(&server)
        .await;
    let p = std::sync::Arc::new(Project::new());
    p.write("app.svc", &program(&server.uri()));
    p.set("CLIENT_ID", "accounts-client");
    let blocking = |args: Vec<&'static str>| {
        let p = p.clone();
        tokio::task::spawn_blocking(move || p.svc().args(args).run())
    };

    let check = blocking(vec!["check", "app.svc"]).await.unwrap();
    assert_eq!(check.status, 0, "{}", check.all_output());
    assert!(
        !check.all_output().contains("error"),
        "{}",
        check.all_output()
    );

    let run = refused(
        &p,
        vec![
            "run",
            "app.svc",
            "customers.refresh",
            "--env",
            "dev",
            "--as",
            "ops",
        ],
        "svc::run::per_account_not_run_yet",
    )
    .await;
    assert!(run.stderr.contains("help"), "{}", run.stderr);

    // One that reaches a per-account endpoint is refused too, and says
    // through which.
    refused(
        &p,
        vec![
            "run",
            "app.svc",
            "customers.acme",
            "--env",
            "dev",
            "--as",
            "ops",
        ],
        "through `customers.refresh`",
    )
    .await;

    refused(
        &p,
        vec![
            "authorize",
            "app.svc",
            "hub",
            "--env",
            "dev",
            "--as",
            "ops",
            "--no-browser",
        ],
        "svc::authorize::per_account_not_yet",
    )
    .await;

    refused(
        &p,
        vec![
            "connection",
            "show",
            "hub",
            "--program",
            "app.svc",
            "--env",
            "dev",
        ],
        "svc::connection::per_account_not_yet",
    )
    .await;

    // Nothing reached the token endpoint so far; the program's other
    // endpoint runs as ever.
    assert!(server.received_requests().await.unwrap().is_empty());
    let shared = blocking(vec![
        "run",
        "app.svc",
        "customers.shared",
        "--env",
        "dev",
        "--as",
        "ops",
    ])
    .await
    .unwrap();
    assert_eq!(shared.status, 0, "{}", shared.all_output());

    // The schedule over the accounts is skipped, with the reason.
    let served = p.serve(&["app.svc", "--env", "dev"]);
    let state = p.path().join("state/dev/schedules.json");
    let skipped = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || {
            common::eventually(20, || {
                std::fs::read_to_string(&state)
                    .is_ok_and(|text| text.contains("per_account_not_run_yet"))
            })
        })
        .await
        .unwrap()
    };
    assert!(
        skipped,
        "not skipped: {:?}\n{}",
        std::fs::read_to_string(&state),
        served.stderr()
    );
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(
        saved["schedules"]["every_account"]["failures"], 0,
        "{saved}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}
