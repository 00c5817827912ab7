//! A response that `reveals T` shows what is made from `T` and nothing
//! made from another secret, whichever backend holds the store.
//!
//! The action sends the secret `K` to a server on 127.0.0.1 that echoes
//! it, derives values from the echo (`lower`, `hmac_sha256`, a field of
//! `json_parse`), writes a new `T`, and answers all of it (after the
//! write, which PostgreSQL answers without a copy of the store). The checker sees
//! nothing secret in the echo (it is an API's answer), so only the run can
//! tell that those values are made from `K`: the caller, who may read `T`
//! and not `K`, gets `T` and `***` for the rest, on the files backend and on
//! PostgreSQL alike, and no form of `K` is anywhere: not in `svc run`'s
//! output, not in the HTTP answer, not in the endpoint log.

mod common;

use common::pg::Postgres;
use common::{Project, Run, Served};

const K: &str = "K-Never-Readable-777";
const T: &str = "T-first-value-5150";

/// A server on 127.0.0.1 that answers `GET /echo` with the
/// `Authorization` header it got: `{"authorization":"Bearer ...",
/// "note":"you sent Bearer ..."}`.
fn echo_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let request = common::read_request(&stream);
            let authorization = request
                .head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("authorization")
                        .then(|| value.trim().to_string())
                })
                .unwrap_or_default();
            let note = format!("you sent {authorization}");
            let body =
                serde_json::json!({ "authorization": authorization, "note": note }).to_string();
            common::answer_json(stream, "200 OK", &body);
        }
    });
    port
}

/// The text the echo server answers when it got `K`: what `echo` holds.
fn echoed() -> String {
    serde_json::json!({
        "authorization": format!("Bearer {K}"),
        "note": format!("you sent Bearer {K}"),
    })
    .to_string()
}

fn program(port: u16) -> String {
    format!(
        r#"
secret K {{ environment_specific locked }}
secret T {{ environment_specific }}

role shower {{
  grant run api.show
  grant read_secret T
  grant update_secret T
}}
service_account bot {{ roles shower }}

service api {{
  var echo: string
  var seen: string
  var lowered: string
  var mac: string
  var field: string
  var fresh: string

  action show {{
    web_request {{
      url "http://127.0.0.1:{port}/echo"
      auth bearer(secret.K)
      result_mapping {{
        echo = body
        seen = $.note
      }}
    }}
    update service_variables {{
      lowered = lower(echo)
      mac     = hmac_sha256(echo, "m")
      field   = upper(string(json_path(json_parse(echo), "$.authorization")))
      fresh   = "T-" + uuid()
    }}
    if has_value(fresh) {{
      update_secret T = fresh
    }}
  }}

  endpoint show {{
    methods GET
    log enabled
    response {{
      json {{
        t       = fresh
        echo    = echo
        seen    = seen
        lowered = lowered
        mac     = mac
        field   = field
      }}
      reveals T
    }}
    process show
  }}
}}
"#
    )
}

/// A project on one backend: the files in its directory, or a database.
struct Store {
    project: Project,
    /// The database's URL, for PostgreSQL.
    database: Option<String>,
}

impl Store {
    fn files() -> Store {
        Store {
            project: Project::new(),
            database: None,
        }
    }

    fn postgres(name: &str) -> Store {
        let store = Store {
            project: Project::new(),
            database: Some(Postgres::shared().new_database(name)),
        };
        let init = store
            .svc()
            .args(["secret", "init", "--env", "dev", "--recipient"])
            .arg(&store.project.key.public)
            .run();
        assert_eq!(init.status, 0, "{}", init.all_output());
        store
    }

    fn svc(&self) -> common::Svc {
        match &self.database {
            Some(url) => self.project.svc().env("SVC_BACKEND", url),
            None => self.project.svc(),
        }
    }

    fn set(&self, name: &str, value: &str) {
        let run = self
            .svc()
            .args(["secret", "set", name, "--env", "dev"])
            .stdin(value)
            .run();
        assert_eq!(run.status, 0, "{}", run.all_output());
    }

    fn get(&self, name: &str) -> String {
        let run = self
            .svc()
            .args(["secret", "get", name, "--env", "dev"])
            .run();
        assert_eq!(run.status, 0, "{}", run.all_output());
        run.stdout.trim_end_matches('\n').to_string()
    }

    fn serve(&self) -> Served {
        let mut args = vec!["api.svc", "--env", "dev"];
        if let Some(url) = &self.database {
            args.extend(["--backend", url.as_str()]);
        }
        self.project.serve(&args)
    }

    fn key(&self, identity: &str) -> String {
        let run = self
            .svc()
            .args(["key", "create", "--as", identity, "--env", "dev"])
            .args(["--program", "."])
            .run();
        assert_eq!(run.status, 0, "{}", run.all_output());
        run.stdout.trim().to_string()
    }

    /// Every record of the endpoint log, as `svc logs --json` prints them.
    fn logs(&self) -> Run {
        self.svc()
            .args(["logs", "api.show", "--env", "dev", "--json", "-n", "100"])
            .run()
    }
}

/// `K` and what the action made from it, as text that must appear nowhere.
fn hidden() -> Vec<String> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, echoed().as_bytes());
    let mac: String = ring::hmac::sign(&key, b"m")
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    vec![
        K.to_string(),
        K.to_lowercase(),
        K.to_uppercase(),
        echoed().to_lowercase(),
        mac,
    ]
}

fn assert_hidden(output: &str) {
    for value in hidden() {
        assert!(!output.contains(&value), "`{value}` is shown:\n{output}");
    }
}

/// The caller's copy of the response: `T`'s new value in clear, the rest
/// masked.
fn assert_reveals_only_t(body: &serde_json::Value, t: &str) {
    assert_eq!(body["t"], t, "{body}");
    // What is made from `K` is masked whole (`json_parse` made a value of
    // the echo as it stands)...
    for field in ["echo", "lowered", "mac", "field"] {
        assert_eq!(body[field], "***", "{field}: {body}");
    }
    // ... and `K` where it stands in what the server said.
    let seen = body["seen"].as_str().unwrap();
    assert!(
        seen.starts_with("you sent ") && seen.ends_with("***"),
        "{body}"
    );
}

fn reveals_only_what_it_names(store: &Store) {
    let port = echo_server();
    store.set("K", K);
    store.set("T", T);
    store.project.write("api.svc", &program(port));
    let check = store.svc().args(["check", "api.svc"]).run();
    assert_eq!(check.status, 0, "{}", check.all_output());

    let run = store
        .svc()
        .args(["run", "api.svc", "api.show", "--env", "dev", "--as", "bot"])
        .args(["--output", "json"])
        .run();
    assert_eq!(run.status, 0, "{}", run.all_output());
    let record: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let t = store.get("T");
    assert_ne!(t, T, "the run wrote a new `T`");
    assert_reveals_only_t(&record["response"]["body"], &t);
    assert_hidden(&run.all_output());

    let human = store
        .svc()
        .args(["run", "api.svc", "api.show", "--env", "dev", "--as", "bot"])
        .run();
    assert_eq!(human.status, 0, "{}", human.all_output());
    assert_hidden(&human.all_output());

    let key = store.key("bot");
    let served = store.serve();
    let answer = served.call("GET", "/api/services/api/show", Some(&key), None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_reveals_only_t(&answer.json(), &store.get("T"));
    assert_hidden(&answer.body);
    // The caller may read `T`, and not `K`.
    let k = served.call("GET", "/api/secrets/K", Some(&key), None);
    assert_eq!(k.status, 403, "{}", k.body);
    drop(served);

    let logs = store.logs();
    assert_eq!(logs.status, 0, "{}", logs.all_output());
    assert_eq!(logs.stdout.lines().count(), 3, "{}", logs.stdout);
    assert_hidden(&logs.all_output());
    // The log masks `T` too: only the caller gets it.
    assert!(!logs.stdout.contains(&t), "{}", logs.stdout);
}

#[test]
fn a_response_shows_nothing_made_from_a_secret_it_does_not_reveal_on_files() {
    reveals_only_what_it_names(&Store::files());
}

#[test]
fn a_response_shows_nothing_made_from_a_secret_it_does_not_reveal_on_postgres() {
    reveals_only_what_it_names(&Store::postgres("reveals_only_what_it_names"));
}
