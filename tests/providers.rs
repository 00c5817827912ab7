//! Every profile of the provider catalog, against the provider emulator
//! (tests/common/emulator.rs) built from the same profile: a client written
//! with `provider NAME` checks clean, `svc authorize` runs the code flow
//! (the profile's parameters, scopes and PKCE), `refresh_tokens` refreshes
//! three times storing what each answer carries (a rotated refresh token
//! kept, none presented twice), and the profile's failure shape for a dead
//! refresh token leaves the connection needing a new consent.

mod common;

use common::emulator::{CLIENT_ID, CLIENT_SECRET, Emulator};
use common::{Project, Run};
use serde_json::Value;
use svc::providers::{self, AuthMethod, Profile};

/// The program of one profile: `oauth_client app` on the emulator, with
/// its parameters' examples, the first client authentication it accepts
/// and the scopes it needs for a refresh token.
fn program(profile: &Profile, emulator: &Emulator) -> String {
    let name = &profile.name;
    let args: Vec<String> = profile
        .parameters
        .iter()
        .filter(|p| p.default.is_none())
        .map(|p| format!("{} = \"{}\"", p.name, p.example))
        .collect();
    let provider = if args.is_empty() {
        name.clone()
    } else {
        format!("{name}({})", args.join(", "))
    };
    let auth = match profile.client_auth.methods[0] {
        AuthMethod::ClientSecretBasic => "client_secret_basic(secret.CLIENT_SECRET)",
        AuthMethod::ClientSecretPost => "client_secret_post(secret.CLIENT_SECRET)",
        AuthMethod::None => "none",
        AuthMethod::PrivateKeyJwt => panic!("{name}: the emulator has no private_key_jwt"),
    };
    let separator = profile
        .authorization
        .as_ref()
        .and_then(|a| a.scope_separator.clone())
        .unwrap_or(" ".into());
    let mut scopes: Vec<String> = profile.offline_scopes().to_vec();
    scopes.push("read".into());
    let authorize = if profile.authorization.is_some() {
        format!("authorize_url \"{}\"", emulator.url(name, "authorize"))
    } else {
        String::new()
    };
    let refresh = profile.refresh.is_some();
    let (refresh_secret, refresh_store, refresh_grant) = if refresh {
        (
            "secret REFRESH_TOKEN { environment_specific }",
            "refresh_token = REFRESH_TOKEN",
            "grant update_secret REFRESH_TOKEN",
        )
    } else {
        ("", "", "")
    };
    let mut actions = String::new();
    if refresh {
        actions.push_str(
            "  action refresh { refresh_tokens client(app) }\n  \
             endpoint refresh { methods GET POST  process refresh }\n",
        );
    }
    if profile.client_credentials.is_some() {
        actions.push_str(
            "  action machine { client_credentials client(app) }\n  \
             endpoint machine { methods GET POST  process machine }\n",
        );
    }
    if actions.is_empty() {
        actions.push_str("  action nothing { log \"no grant to run\" }\n  endpoint nothing { methods GET  process nothing }\n");
    }
    format!(
        r#"secret CLIENT_ID     {{ environment_specific }}
secret CLIENT_SECRET {{ environment_specific locked }}
secret ACCESS_TOKEN  {{ environment_specific }}
{refresh_secret}

oauth_client app {{
  provider    {provider}
  token_url   "{token}"
  {authorize}
  client_id   secret.CLIENT_ID
  client_auth {auth}
  scopes      "{scopes}"
  stores {{ access_token = ACCESS_TOKEN  {refresh_store} }}
}}

role keeper {{
  grant run tokens.*
  grant update_secret ACCESS_TOKEN
  {refresh_grant}
}}
user ops {{ roles keeper }}

service tokens {{
{actions}}}
"#,
        token = emulator.url(name, "token"),
        scopes = scopes.join(&separator),
    )
}

/// What `check` finds wrong with each profile of the catalog, run on four
/// threads (each profile starts its own `svc` processes).
fn each_profile(
    catalog: &[Profile],
    check: impl Fn(&Profile) -> Vec<String> + Sync,
) -> Vec<String> {
    std::thread::scope(|scope| {
        let check = &check;
        let handles: Vec<_> = catalog
            .chunks(catalog.len().div_ceil(4))
            .map(|chunk| scope.spawn(move || chunk.iter().flat_map(check).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

fn svc_run(p: &Project, endpoint: &str) -> Run {
    svc_run_for(p, endpoint, &[])
}

/// `svc run app.svc ENDPOINT --env dev --as ops`, and more arguments.
fn svc_run_for(p: &Project, endpoint: &str, extra: &[&str]) -> Run {
    p.svc()
        .args(["run", "app.svc", endpoint, "--env", "dev", "--as", "ops"])
        .args(extra)
        .run()
}

/// `svc authorize app.svc app`, its authorization URL followed to the
/// emulator (which consents at once) and the redirect back to svc.
fn authorize(p: &Project) -> Result<(), String> {
    authorize_with(p, "app.svc", "app", &["--as", "ops"])
}

fn authorize_with(p: &Project, program: &str, client: &str, extra: &[&str]) -> Result<(), String> {
    let mut authorizing = common::authorizing::Authorizing::start_with(p, program, client, extra);
    let event = authorizing.expect("authorize_url");
    let url = event["url"].as_str().ok_or("no url")?.to_string();
    let (status, location, body) = common::http_request("GET", &url, None);
    if status != 302 {
        authorizing.abort();
        return Err(format!(
            "the emulator refused the authorization request ({status}): {body}"
        ));
    }
    let (status, _, body) = common::http_request("GET", &location, None);
    let (code, _, run) = authorizing.finish();
    if code != 0 {
        return Err(format!(
            "svc authorize failed ({status} {body}): {}",
            run.all_output()
        ));
    }
    Ok(())
}

fn stored(p: &Project) -> Value {
    p.document()["secrets"].clone()
}

/// Runs one profile end to end; what went wrong, if anything.
fn exercise(profile: &Profile, emulator: &Emulator) -> Result<(), String> {
    let name = profile.name.as_str();
    let p = Project::new();
    p.write("app.svc", &program(profile, emulator));
    p.set("CLIENT_ID", CLIENT_ID);
    p.set("CLIENT_SECRET", CLIENT_SECRET);
    let check = p.svc().args(["check", "app.svc"]).run();
    if check.status != 0 {
        return Err(format!("svc check: {}", check.all_output()));
    }
    if profile.authorization.is_some() {
        authorize(&p)?;
        let stats = emulator.stats(name);
        let access = stored(&p)["ACCESS_TOKEN"]["value"].clone();
        if access != stats["last_access_token"] {
            return Err(format!(
                "after consent ACCESS_TOKEN is {access}, the emulator issued {}",
                stats["last_access_token"]
            ));
        }
        if profile.refresh.is_some() {
            let refresh = stored(&p)["REFRESH_TOKEN"]["value"].clone();
            if stats["live_refresh_tokens"] != Value::Array(vec![refresh.clone()]) {
                return Err(format!(
                    "after consent REFRESH_TOKEN is {refresh}; live: {}",
                    stats["live_refresh_tokens"]
                ));
            }
        }
    } else if profile.refresh.is_some() {
        return Err("a refresh token without a code flow: nothing issues the first one".into());
    }
    if profile.refresh.is_some() {
        for round in 1..=3 {
            let run = svc_run(&p, "tokens.refresh");
            if run.status != 0 {
                return Err(format!("refresh {round}: {}", run.all_output()));
            }
            let stats = emulator.stats(name);
            let secrets = stored(&p);
            if secrets["ACCESS_TOKEN"]["value"] != stats["last_access_token"] {
                return Err(format!(
                    "refresh {round}: ACCESS_TOKEN is not the new access token"
                ));
            }
            // What a later refresh needs: the one live refresh token.
            if stats["live_refresh_tokens"]
                != Value::Array(vec![secrets["REFRESH_TOKEN"]["value"].clone()])
            {
                return Err(format!(
                    "refresh {round}: REFRESH_TOKEN {} is not the live one {}",
                    secrets["REFRESH_TOKEN"]["value"], stats["live_refresh_tokens"]
                ));
            }
            let expires = &secrets["ACCESS_TOKEN"]["expires_at"];
            let documented = profile
                .access_token
                .as_ref()
                .is_some_and(|a| a.expires_in || a.lifetime.is_some())
                || profile.access_token.is_none();
            if documented && expires.is_null() {
                return Err(format!("refresh {round}: ACCESS_TOKEN has no expiry"));
            }
            if stats["reused"] != 0 {
                return Err(format!(
                    "refresh {round}: a spent refresh token was presented again"
                ));
            }
            if run
                .all_output()
                .contains(stats["last_access_token"].as_str().unwrap_or("-"))
            {
                return Err(format!("refresh {round}: the access token was printed"));
            }
        }
        // Where the provider says when its refresh token expires (or
        // documents a lifetime), the connection knows.
        let says = profile.refresh.as_ref().is_some_and(|r| {
            r.refresh_token_expires_field.is_some() || r.refresh_token_lifetime.is_some()
        });
        if says {
            let state = common::connection_show(p.svc(), "app");
            if state["refresh_token_expires_at"].is_null() {
                return Err(format!(
                    "the connection has no refresh token expiry: {state}"
                ));
            }
        }
        // A person removes the app: the profile's failure shape comes back.
        emulator.revoke_all(name);
        let run = svc_run(&p, "tokens.refresh");
        if run.status == 0 {
            return Err("a refresh after revocation succeeded".into());
        }
        let state = common::connection_show(p.svc(), "app");
        if state["state"] != "needs_reconsent" {
            return Err(format!(
                "after the provider's failure the connection is {}, not needs_reconsent: {}",
                state["state"],
                run.all_output()
            ));
        }
    }
    if profile.client_credentials.is_some() {
        let run = svc_run(&p, "tokens.machine");
        if run.status != 0 {
            return Err(format!("client_credentials: {}", run.all_output()));
        }
        if stored(&p)["ACCESS_TOKEN"]["value"] != emulator.stats(name)["last_access_token"] {
            return Err("client_credentials: ACCESS_TOKEN is not the new token".into());
        }
    }
    Ok(())
}

#[test]
fn every_profile_authorizes_refreshes_three_times_and_fails_as_documented() {
    let catalog = providers::catalog();
    assert!(catalog.len() >= 40, "{} profiles", catalog.len());
    let emulator = Emulator::start();
    let failures = each_profile(catalog, |profile| {
        exercise(profile, &emulator)
            .err()
            .map(|e| format!("{}: {e}", profile.name))
            .into_iter()
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_catalog_is_sound() {
    let problems = providers::problems();
    assert!(
        problems.is_empty(),
        "{}",
        problems
            .iter()
            .map(|(name, problem)| format!("providers/{name}.toml: {problem}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn docs_providers_md_is_generated_from_the_catalog() {
    let run = common::svc().args(["provider", "list", "--markdown"]).run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    let path = common::root().join("docs/providers.md");
    let written = std::fs::read_to_string(&path).unwrap_or_default();
    if written != run.stdout && std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &run.stdout).unwrap();
        return;
    }
    assert!(
        written == run.stdout,
        "docs/providers.md is not the catalog's: regenerate it with \
         `cargo run -- provider list --markdown > docs/providers.md` (or UPDATE_DOCS=1 cargo test --test providers)"
    );
    // Every profile has its section, and every source is linked.
    for profile in providers::catalog() {
        assert!(
            written.contains(&format!("\n## {}\n", profile.name)),
            "{}",
            profile.name
        );
        for (_, source) in profile.sources() {
            assert!(written.contains(source), "{}: {source}", profile.name);
        }
    }
    assert!(written.contains("## Not expressible yet"));
}

/// `svc init DIR --provider NAME --yes`: for every profile, a project
/// that checks clean, placeholders for its parameters included.
#[test]
fn svc_init_with_every_profile_makes_a_project_that_checks_clean() {
    let catalog = providers::catalog();
    let home = tempfile::tempdir().unwrap();
    let key = common::age_keygen(home.path(), "key.txt");
    let failures = each_profile(catalog, |profile| {
        let mut failures = Vec::new();
        let dir = home.path().join(&profile.name);
        let init = common::svc()
            .args(["init"])
            .arg(&dir)
            .args(["--provider", &profile.name, "--yes", "--identity"])
            .arg(&key.path)
            .run();
        if init.status != 0 {
            failures.push(format!("{}: svc init: {}", profile.name, init.all_output()));
            return failures;
        }
        let check = common::svc().current_dir(&dir).args(["check"]).run();
        if check.status != 0 || !check.stderr.contains("no problems") {
            failures.push(format!(
                "{}: svc check: {}",
                profile.name,
                check.all_output()
            ));
        }
        let program = std::fs::read_to_string(dir.join("tokens.svc")).unwrap();
        if !program.contains(&format!("provider    {}", profile.name)) {
            failures.push(format!("{}: no `provider` line:\n{program}", profile.name));
        }
        if !init
            .stdout
            .contains(&format!("{}_CLIENT_ID", profile.name.to_uppercase()))
        {
            failures.push(format!("{}: next steps: {}", profile.name, init.stdout));
        }
        failures
    });
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn svc_provider_list_and_show() {
    let run = common::svc().args(["provider", "list", "--json"]).run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    let rows: Value = serde_json::from_str(&run.stdout).unwrap();
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for wanted in [
        "google",
        "microsoft",
        "salesforce",
        "hubspot",
        "xero",
        "quickbooks",
        "slack",
        "github",
        "github_app",
        "gitlab",
        "atlassian",
        "zoom",
        "dropbox",
        "box",
        "zendesk",
        "shopify",
        "stripe",
        "notion",
        "linear",
        "asana",
        "pipedrive",
        "spotify",
        "x",
        "linkedin",
        "okta",
        "auth0",
        "keycloak",
        "docusign",
        "calendly",
        "mailchimp",
        "discord",
        "twitch",
        "strava",
        "fitbit",
        "reddit",
        "intercom",
        "miro",
        "figma",
        "airtable",
        "monday",
        "sage",
    ] {
        assert!(names.contains(&wanted), "{wanted} is not in the catalog");
    }
    let xero = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "xero")
        .unwrap();
    assert_eq!(xero["rotation"], "always", "{xero}");

    let run = common::svc().args(["provider", "list"]).run();
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("zendesk") && l.ends_with("subdomain")),
        "{}",
        run.stdout
    );

    let run = common::svc().args(["provider", "show", "xero"]).run();
    assert_eq!(run.status, 0, "{}", run.stderr);
    for expected in [
        "https://identity.xero.com/connect/token",
        "client_secret_basic",
        "offline_access",
        "rotation",
        "always",
        "60d",
        "https://developer.xero.com/faq/oauth2",
    ] {
        assert!(run.stdout.contains(expected), "{expected}:\n{}", run.stdout);
    }
    let run = common::svc()
        .args(["provider", "show", "zendesk", "--json"])
        .run();
    let zendesk: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(zendesk["name"], "zendesk");
    assert_eq!(zendesk["parameter"][0]["name"], "subdomain", "{zendesk}");

    let run = common::svc().args(["provider", "show", "hubspto"]).run();
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("svc::provider::unknown"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("did you mean `hubspot`"),
        "{}",
        run.stderr
    );
}

/// The profile's URLs with the client's arguments in place: a literal
/// argument as text, a secret argument as an interpolation of the secret,
/// a default where none is given.
#[test]
fn a_profile_fills_its_urls_from_the_clients_arguments() {
    let source = r#"
secret ID { environment_specific }
secret SUB { environment_specific locked }
oauth_client ms { provider microsoft(tenant = "contoso.onmicrosoft.com") client_id secret.ID client_auth none }
oauth_client common { provider microsoft client_id secret.ID client_auth none }
oauth_client zd { provider zendesk(subdomain = secret.SUB) client_id secret.ID client_auth none }
"#;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.svc"), source).unwrap();
    let loaded = svc::program::load(&[dir.path().join("p.svc")]).unwrap();
    let client = |name: &str| {
        loaded
            .program
            .oauth_clients
            .iter()
            .find(|c| c.name.text == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        client("ms").token_url.unwrap().as_plain_string().unwrap(),
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    );
    assert_eq!(
        client("common")
            .authorize_url
            .unwrap()
            .as_plain_string()
            .unwrap(),
        "https://login.microsoftonline.com/common/oauth2/v2.0/authorize"
    );
    let zd = client("zd").token_url.unwrap();
    assert_eq!(
        zd.as_plain_string(),
        None,
        "a secret is not known before a run"
    );
    assert_eq!(zd.literal_prefix().unwrap(), "https://");
    assert!(
        format!("{zd:?}").contains("SUB"),
        "the secret is interpolated: {zd:?}"
    );
}

/// Inside a per-account endpoint, `refresh_tokens` refreshes the
/// connection the run is for, and only that one.
#[test]
fn refresh_tokens_in_a_per_account_endpoint_refreshes_that_connection() {
    let emulator = Emulator::start();
    let p = Project::new();
    p.write(
        "app.svc",
        &format!(
            r#"secret CLIENT_ID     {{ environment_specific }}
secret CLIENT_SECRET {{ environment_specific locked }}
secret REFRESH_TOKEN {{ per_account }}
secret ACCESS_TOKEN  {{ per_account }}

oauth_client app {{
  provider      xero
  token_url     "{token}"
  authorize_url "{authorize}"
  per_account
  client_id     secret.CLIENT_ID
  client_auth   client_secret_basic(secret.CLIENT_SECRET)
  scopes        "offline_access accounting.transactions"
  stores {{ refresh_token = REFRESH_TOKEN  access_token = ACCESS_TOKEN }}
}}

role keeper {{
  grant run tokens.refresh
  grant update_secret REFRESH_TOKEN
  grant update_secret ACCESS_TOKEN
  grant read_secret ACCESS_TOKEN
}}
user ops {{ roles keeper }}

service tokens {{
  action refresh {{ refresh_tokens client(app) }}
  endpoint refresh {{ methods GET POST  process refresh }}
}}
"#,
            token = emulator.url("xero", "token"),
            authorize = emulator.url("xero", "authorize"),
        ),
    );
    p.set("CLIENT_ID", CLIENT_ID);
    p.set("CLIENT_SECRET", CLIENT_SECRET);
    let token_of = |id: &str| {
        let run = p
            .svc()
            .args([
                "secret",
                "get",
                "ACCESS_TOKEN",
                "--env",
                "dev",
                "--connection",
                id,
                "--program",
                "app.svc",
            ])
            .run();
        assert_eq!(run.status, 0, "{}", run.all_output());
        run.stdout.trim().to_string()
    };
    for id in ["acme", "globex"] {
        authorize_with(&p, "app.svc", "app", &["--as", "ops", "--connection", id]).unwrap();
    }
    let before_globex = token_of("globex");
    for round in 1..=3 {
        let run = svc_run_for(&p, "tokens.refresh", &["--connection", "acme"]);
        assert_eq!(run.status, 0, "round {round}: {}", run.all_output());
        let stats = emulator.stats("xero");
        assert_eq!(
            token_of("acme"),
            stats["last_access_token"],
            "round {round}"
        );
        assert_eq!(stats["reused"], 0, "round {round}");
    }
    // The other account's tokens were not touched, and still refresh.
    assert_eq!(token_of("globex"), before_globex);
    let run = svc_run_for(&p, "tokens.refresh", &["--connection", "globex"]);
    assert_eq!(run.status, 0, "{}", run.all_output());
    let stats = emulator.stats("xero");
    assert_eq!(token_of("globex"), stats["last_access_token"]);
    // Xero rotates: one live refresh token per account, the rest spent.
    assert_eq!(
        stats["live_refresh_tokens"].as_array().unwrap().len(),
        2,
        "{stats}"
    );
    assert_eq!(stats["reused"], 0);
}

/// The examples rewritten on their profiles run end to end, pointed at
/// the emulator: examples/hubspot_refresh.svc through a consent and a
/// refresh, examples/graph_client_credentials.svc through a token fetch.
#[test]
fn the_examples_on_profiles_run_end_to_end() {
    let emulator = Emulator::start();
    let p = Project::new();
    let example = |file: &str, provider_line: &str, urls: &[(&str, String)]| {
        let text = std::fs::read_to_string(common::root().join("examples").join(file)).unwrap();
        assert!(text.contains(provider_line), "{file}: {provider_line}");
        let lines: String = urls
            .iter()
            .map(|(what, url)| format!("\n  {what} \"{url}\""))
            .collect();
        p.write(
            file,
            &text.replace(provider_line, &format!("{provider_line}{lines}")),
        );
    };
    example(
        "hubspot_refresh.svc",
        "provider    hubspot",
        &[
            ("token_url", emulator.url("hubspot", "token")),
            ("authorize_url", emulator.url("hubspot", "authorize")),
        ],
    );
    example(
        "graph_client_credentials.svc",
        "provider    microsoft(tenant = \"contoso.onmicrosoft.com\")",
        &[("token_url", emulator.url("microsoft", "token"))],
    );
    for prefix in ["HUBSPOT", "GRAPH"] {
        p.set(&format!("{prefix}_CLIENT_ID"), CLIENT_ID);
        p.set(&format!("{prefix}_CLIENT_SECRET"), CLIENT_SECRET);
    }
    authorize_with(
        &p,
        "hubspot_refresh.svc",
        "hubspot_app",
        &["--as", "ops_oncall"],
    )
    .unwrap();
    let run = p
        .svc()
        .args([
            "run",
            "hubspot_refresh.svc",
            "hubspot.refresh",
            "--env",
            "dev",
            "--as",
            "nightly",
        ])
        .run();
    assert_eq!(run.status, 0, "{}", run.all_output());
    let secrets = stored(&p);
    let stats = emulator.stats("hubspot");
    assert_eq!(
        secrets["HUBSPOT_ACCESS_TOKEN"]["value"],
        stats["last_access_token"]
    );
    assert!(!secrets["HUBSPOT_ACCESS_TOKEN"]["expires_at"].is_null());
    // HubSpot keeps its refresh token: the one from the consent stays.
    assert_eq!(
        stats["live_refresh_tokens"],
        Value::Array(vec![secrets["HUBSPOT_REFRESH_TOKEN"]["value"].clone()])
    );

    let run = p
        .svc()
        .args([
            "run",
            "graph_client_credentials.svc",
            "graph.refresh",
            "--env",
            "dev",
            "--as",
            "scheduler",
        ])
        .run();
    assert_eq!(run.status, 0, "{}", run.all_output());
    let secrets = stored(&p);
    assert_eq!(
        secrets["GRAPH_TOKEN"]["value"],
        emulator.stats("microsoft")["last_access_token"]
    );
    assert!(!secrets["GRAPH_TOKEN"]["expires_at"].is_null());
}

/// A secret parameter is checked where it is used: one that would move
/// the client's token endpoint to another host fails the run before
/// anything is sent, and its value is not shown.
#[test]
fn a_secret_parameter_that_is_not_one_url_part_stops_the_run() {
    let p = Project::new();
    p.write(
        "app.svc",
        r#"secret CLIENT_ID     { environment_specific }
secret CLIENT_SECRET { environment_specific locked }
secret SUBDOMAIN     { environment_specific locked }
secret REFRESH_TOKEN { environment_specific }
secret ACCESS_TOKEN  { environment_specific }

oauth_client app {
  provider    zendesk(subdomain = secret.SUBDOMAIN)
  client_id   secret.CLIENT_ID
  client_auth client_secret_post(secret.CLIENT_SECRET)
  stores { refresh_token = REFRESH_TOKEN  access_token = ACCESS_TOKEN }
}

role keeper {
  grant run tokens.refresh
  grant update_secret REFRESH_TOKEN
  grant update_secret ACCESS_TOKEN
}
user ops { roles keeper }

service tokens {
  action refresh { refresh_tokens client(app) }
  endpoint refresh { methods GET POST  process refresh }
}
"#,
    );
    let moved = "127.0.0.1:9/steal#";
    p.set("CLIENT_ID", CLIENT_ID);
    p.set("CLIENT_SECRET", CLIENT_SECRET);
    p.set("SUBDOMAIN", moved);
    p.set("REFRESH_TOKEN", "rt-never-sent-4Kq");
    let run = svc_run(&p, "tokens.refresh");
    assert_ne!(run.status, 0, "{}", run.all_output());
    assert!(
        run.all_output().contains("svc::oauth::invalid_url"),
        "{}",
        run.all_output()
    );
    assert!(
        run.all_output().contains("SUBDOMAIN"),
        "{}",
        run.all_output()
    );
    assert!(!run.all_output().contains(moved), "{}", run.all_output());
    assert!(!run.all_output().contains("rt-never-sent-4Kq"));
}
