//! `svc authorize` as a test drives it: started, its JSON events read one
//! by one while a person (tests/browser/consent.js) acts, then finished.

use std::io::{BufRead, Read};
use std::process::Child;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use super::{Project, Run};

/// `svc authorize app.svc app --env dev --no-browser --output json`
/// running in a project, with its JSON events read as they come.
pub struct Authorizing {
    child: Child,
    events: mpsc::Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
    seen: Vec<String>,
}

impl Authorizing {
    pub fn start(p: &Project, extra: &[&str]) -> Authorizing {
        Authorizing::start_with(p, "app.svc", "app", extra)
    }

    /// `svc authorize PROGRAM CLIENT --env dev --no-browser --output json`.
    pub fn start_with(p: &Project, program: &str, client: &str, extra: &[&str]) -> Authorizing {
        let mut child = p
            .svc()
            .args([
                "authorize",
                program,
                client,
                "--env",
                "dev",
                "--no-browser",
                "--output",
                "json",
            ])
            .args(extra)
            .spawn();
        let stdout = child.stdout.take().unwrap();
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Authorizing {
            child,
            events,
            stderr,
            seen: Vec::new(),
        }
    }

    /// The next event, which must be `kind`.
    pub fn expect(&mut self, kind: &str) -> Value {
        let line = self
            .events
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no `{kind}` event; so far: {:?}", self.seen));
        self.seen.push(line.clone());
        let event: Value = serde_json::from_str(&line).expect("one JSON object a line");
        assert_eq!(event["event"], kind, "{line}");
        event
    }

    /// Stops svc without waiting for a redirect that will not come.
    pub fn abort(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for svc to end: its status, every line it printed and its
    /// standard error.
    pub fn finish(mut self) -> (i32, Vec<Value>, Run) {
        // The reader ends with svc's standard output.
        while let Ok(line) = self.events.recv_timeout(Duration::from_secs(90)) {
            self.seen.push(line);
        }
        let status = self.child.wait().unwrap().code().unwrap_or(-1);
        let stderr = self.stderr.join().unwrap();
        let events = self
            .seen
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let stdout = self.seen.join("\n");
        (
            status,
            events,
            Run {
                status,
                stdout,
                stderr,
            },
        )
    }
}

/// An oidc-provider on 127.0.0.1 with one confidential client for the
/// device flow, whose refresh tokens rotate (real revocation and
/// introspection).
pub fn device_provider(client: (&str, &str)) -> super::NodeServer {
    super::NodeServer::start(
        "oidc",
        serde_json::json!({
            "clients": [
                {"client_id": client.0, "client_secret": client.1,
                 "token_endpoint_auth_method": "client_secret_post",
                 "grant_types": ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
                 "scope": "openid offline_access api:read",
                 "rotate_refresh_token": true},
            ],
            "device_poll_interval": 1,
        }),
    )
}

/// `svc authorize app.svc app --device --as ops`, approved by a person
/// in a headless browser.
pub fn authorize_device(p: &Project) -> Run {
    let mut authorizing = Authorizing::start(p, &["--as", "ops", "--device"]);
    let event = authorizing.expect("device_code");
    let person = super::device_consent(
        event["verification_uri"].as_str().unwrap(),
        event["user_code"].as_str().unwrap(),
        "approve",
    );
    assert_eq!(person["outcome"], "device_approved", "{person}");
    let (status, _, run) = authorizing.finish();
    assert_eq!(status, 0, "{}", run.all_output());
    run
}

/// Token requests that presented a refresh token to the provider,
/// answered or refused (its stats endpoint).
pub fn refresh_requests(provider: &super::NodeServer) -> u64 {
    let stats = provider.get_json(&provider.url("stats_endpoint"));
    let granted = stats["grants"]["refresh_token"].as_u64().unwrap_or(0);
    let refused: u64 = stats["grant_errors"]
        .as_object()
        .map(|errors| errors.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    granted + refused
}

/// A program with `oauth_client app` (`endpoints` and `extra` inside it),
/// a refresh endpoint, a schedule every second (disabled unless
/// `schedule`), ACCESS_TOKEN refreshed on read, and, given a hook and
/// events, `notify ops` signing with HOOK_KEY.
pub fn refresh_program(
    endpoints: &str,
    extra: &str,
    schedule: bool,
    notify: Option<(&str, &str)>,
) -> String {
    let disabled = if schedule { "" } else { "disabled" };
    let (hook_key, notify) = match notify {
        Some((hook, events)) => (
            "secret HOOK_KEY      { environment_specific locked }",
            format!(
                "notify ops {{\n  url    \"{hook}\"\n  secret secret.HOOK_KEY\n  events {events}\n}}"
            ),
        ),
        None => ("", String::new()),
    };
    format!(
        r#"
secret CLIENT_ID     {{ environment_specific }}
secret CLIENT_SECRET {{ environment_specific locked }}
secret REFRESH_TOKEN {{ environment_specific }}
secret ACCESS_TOKEN  {{ environment_specific refreshed_by api.refresh as scheduler min_valid 1h }}
{hook_key}

oauth_client app {{
  {endpoints}
  client_id   secret.CLIENT_ID
  client_auth client_secret_post(secret.CLIENT_SECRET)
  scopes      "openid offline_access api:read"
  {extra}
  stores {{
    refresh_token = REFRESH_TOKEN
    access_token  = ACCESS_TOKEN
  }}
}}

{notify}

role token_keeper {{
  grant run api.refresh
  grant update_secret REFRESH_TOKEN
  grant update_secret ACCESS_TOKEN
}}
role reader {{ grant read_secret ACCESS_TOKEN }}

user ops {{ roles token_keeper }}
service_account scheduler {{ roles token_keeper }}
service_account app_reader {{ roles reader }}
role status_reader {{ grant read_status app }}
service_account status_bot {{ roles status_reader }}

service api {{
  var token: string
  var new_refresh_token: string
  var expires_in: number

  action refresh {{
{refresh}  }}

  endpoint refresh {{
    methods GET POST
    log enabled
    process refresh
  }}
}}

schedule keep_fresh {{
  endpoint api.refresh
  service_account scheduler
  every 1s
  {disabled}
}}
"#,
        refresh = refresh_body("REFRESH_TOKEN", "ACCESS_TOKEN")
    )
}

/// What the provider's introspection endpoint (RFC 7662) says of a token.
pub fn introspect(provider: &super::NodeServer, client: (&str, &str), token: &str) -> Value {
    let (status, answer) = provider.post_form(
        &provider.url("introspection_endpoint"),
        &[
            ("token", token),
            ("client_id", client.0),
            ("client_secret", client.1),
        ],
        None,
    );
    assert_eq!(status, 200, "{answer}");
    answer
}

/// Revokes a refresh token at the provider behind svc's back, as a user
/// who removes the app does.
pub fn revoke_out_of_band(provider: &super::NodeServer, client: (&str, &str), token: &str) {
    let (status, answer) = provider.post_form(
        &provider.url("revocation_endpoint"),
        &[
            ("token", token),
            ("token_type_hint", "refresh_token"),
            ("client_id", client.0),
            ("client_secret", client.1),
        ],
        None,
    );
    assert_eq!(status, 200, "{answer}");
}

/// A schedule's state as `svc serve` last saved it (files backend).
pub fn schedule_state(p: &Project, schedule: &str) -> Value {
    std::fs::read(p.path().join("state/dev/schedules.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .map(|v| v["schedules"][schedule].clone())
        .unwrap_or(Value::Null)
}

/// The statements of the refresh every test program of a connection runs
/// (`auth client(app)`, rotation kept, the access token's expiry): the
/// body of an action whose service has `token`, `new_refresh_token` and
/// `expires_in`, storing in the secrets given.
pub fn refresh_body(refresh_secret: &str, access_secret: &str) -> String {
    format!(
        r#"    web_request {{
      auth client(app)
      form {{
        grant_type    = "refresh_token"
        refresh_token = secret.{refresh_secret}
      }}
      result_mapping {{
        token             = $.access_token
        new_refresh_token = $.refresh_token
        expires_in        = $.expires_in
      }}
    }}
    if has_value(new_refresh_token) {{
      update_secret {refresh_secret} = new_refresh_token
    }}
    if has_value(token) {{
      update_secret {access_secret} {{
        value      = token
        expires_in = expires_in
      }}
    }}
"#
    )
}
