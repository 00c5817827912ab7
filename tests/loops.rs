//! `foreach`, `while` and `break` at run time, against a paged API on
//! 127.0.0.1 that records every request it gets.

mod common;

use common::Project;
use std::sync::{Arc, Mutex};

/// A paged API: `GET /items?page=N` answers the N-th page of `pages` (its
/// `next` links the following page, null on the last one, or always a
/// next page when `endless`); `POST /sink` takes a JSON body. Every
/// request is kept as "METHOD TARGET BODY".
struct PagedApi {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl PagedApi {
    fn start(pages: Vec<serde_json::Value>, endless: bool) -> PagedApi {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let request = common::read_request(&stream);
                let target = request.target.as_str();
                log.lock()
                    .unwrap()
                    .push(format!("{} {target} {}", request.method, request.body));
                let answer = if let Some(n) = target.strip_prefix("/items?page=") {
                    let n: usize = n.parse().unwrap();
                    let next = if endless || n < pages.len() {
                        serde_json::json!(format!("http://127.0.0.1:{port}/items?page={}", n + 1))
                    } else {
                        serde_json::Value::Null
                    };
                    let items = pages.get(n - 1).cloned().unwrap_or(serde_json::json!([]));
                    serde_json::json!({"items": items, "next": next}).to_string()
                } else {
                    "{}".to_string()
                };
                common::answer_json(stream, "200 OK", &answer);
            }
        });
        PagedApi { port, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn program(port: u16, max: u32, catch_limit: bool) -> String {
    let body = format!(
        r#"
    update service_variables {{
      next  = "http://127.0.0.1:{port}/items?page=1"
      pages = 0
    }}
    while has_value(next) max {max} {{
      web_request {{
        url next
        result_mapping {{
          page = $.items
          next = $.next
        }}
      }}
      update service_variables {{ pages = pages + 1 }}
      foreach item in page {{
        if json_path(item, "$.deleted") == true {{
          break
        }}
        web_request {{
          method POST
          url "http://127.0.0.1:{port}/sink"
          json {{
            id   = json_path(item, "$.id")
            page = pages
          }}
        }}
        update service_variables {{ last = string(json_path(item, "$.id")) }}
      }}
    }}"#
    );
    let body = if catch_limit {
        format!(
            "    try {{{body}\n    }} catch \"loop_limit\" {{\n      log \"stopped at the bound\"\n    }}"
        )
    } else {
        body
    };
    format!(
        r#"
secret LAST_ID {{ environment_specific }}

role pager {{
  grant run api.sync
  grant update_secret LAST_ID
}}
service_account bot {{ roles pager }}

service api {{
  var page: json
  var next: string
  var last: string
  var pages: number

  action sync {{
{body}
    if has_value(last) {{
      update_secret LAST_ID = last
    }}
  }}

  endpoint sync {{
    methods POST
    process sync
  }}
}}
"#
    )
}

fn run(p: &Project) -> common::Run {
    p.svc()
        .args(["run", "api.svc", "api.sync", "--env", "dev", "--as", "bot"])
        .run()
}

#[test]
fn while_pages_foreach_items_and_break_leaves_only_the_inner_loop() {
    let api = PagedApi::start(
        vec![
            serde_json::json!([{"id": 1}, {"id": 2, "deleted": true}, {"id": 3}]),
            serde_json::json!([{"id": 4}, {"id": 5}]),
        ],
        false,
    );
    let p = Project::new();
    p.write("api.svc", &program(api.port, 10, false));
    let check = p.svc().args(["check", "api.svc"]).run();
    assert_eq!(check.status, 0, "{}", check.stderr);
    let run = run(&p);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let seen = api.seen();
    assert_eq!(
        seen,
        [
            "GET /items?page=1 ",
            r#"POST /sink {"id":1,"page":1}"#,
            "GET /items?page=2 ",
            r#"POST /sink {"id":4,"page":2}"#,
            r#"POST /sink {"id":5,"page":2}"#,
        ],
        "{}",
        run.stderr
    );
    assert_eq!(p.get("LAST_ID"), "5");
    // The trace counts the passes of each loop.
    assert!(
        run.all_output().contains("foreach: 2 passes"),
        "{}",
        run.all_output()
    );
    assert!(
        run.all_output().contains("while: 2 passes"),
        "{}",
        run.all_output()
    );
}

#[test]
fn a_while_that_reaches_its_bound_fails_with_loop_limit_unless_caught() {
    let api = PagedApi::start(vec![serde_json::json!([])], true);
    let p = Project::new();
    p.set("LAST_ID", "kept");
    p.write("api.svc", &program(api.port, 3, false));
    let failed = run(&p);
    assert_eq!(failed.status, 1, "{}", failed.stderr);
    assert!(failed.stderr.contains("loop_limit"), "{}", failed.stderr);
    assert!(failed.stderr.contains("3 passes"), "{}", failed.stderr);
    // Exactly the bound: three pages asked for, not a fourth.
    assert_eq!(api.seen().len(), 3, "{:?}", api.seen());
    assert_eq!(p.get("LAST_ID"), "kept");

    let api = PagedApi::start(vec![serde_json::json!([{"id": 7}])], true);
    p.write("api.svc", &program(api.port, 2, true));
    let caught = run(&p);
    assert_eq!(caught.status, 0, "{}", caught.stderr);
    assert!(
        caught.all_output().contains("stopped at the bound"),
        "{}",
        caught.all_output()
    );
    assert_eq!(p.get("LAST_ID"), "7");
}

#[test]
fn foreach_over_something_that_is_not_an_array_is_a_type_error() {
    let p = Project::new();
    p.write(
        "api.svc",
        r#"
service api {
  var items: json
  action go {
    update service_variables { items = json_parse("{\"a\": 1}") }
    foreach item in items {
      log "never"
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
        .args(["run", "api.svc", "api.go", "--env", "dev", "--as", "nobody"])
        .run();
    assert_ne!(run.status, 0);
    // No identity may run it; with one, the loop's error shows.
    p.write(
        "api.svc",
        &std::fs::read_to_string(p.path().join("api.svc"))
            .unwrap()
            .replace(
                "service api {",
                "role r { grant run api.go }\nservice_account bot { roles r }\nservice api {",
            ),
    );
    let run = p
        .svc()
        .args(["run", "api.svc", "api.go", "--env", "dev", "--as", "bot"])
        .run();
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("`foreach` goes over a JSON array, not a object"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("type_error"), "{}", run.stderr);
}

/// Loops of 200,000 passes in all: `i` goes to 400, and in each of its
/// passes `j` goes to 500. `api.spin` succeeds; `api.fail` throws and its
/// `on_failure` hook spins the same loops.
const SPIN: &str = r#"
role spinner {
  grant run api.spin
  grant run api.fail
}
service_account bot { roles spinner }

service api {
  var i: number
  var j: number

  action spin {
    update service_variables { i = 0 }
    while i < 400 max 10000 {
      update service_variables { j = 0 }
      while j < 500 max 10000 {
        update service_variables { j = j + 1 }
      }
      update service_variables { i = i + 1 }
    }
  }

  action fail {
    throw "stop" "failed on purpose"
  }

  endpoint spin {
    methods POST
    process spin
  }

  endpoint fail {
    methods POST
    process fail
    on_failure {
      update service_variables { i = 0 }
      while i < 400 max 10000 {
        update service_variables { j = 0 }
        while j < 500 max 10000 {
          update service_variables { j = j + 1 }
        }
        update service_variables { i = i + 1 }
      }
    }
  }
}
"#;

/// The events the loops of [`SPIN`] make unbounded: `i = 0`; per outer
/// pass `j = 0`, 500 assignments, the inner loop's end and `i = i + 1`;
/// the outer loop's end.
const SPIN_EVENTS: u64 = 1 + 400 * (1 + 500 + 1 + 1) + 1;

/// A bounded trace: at most 1,000 events, the first passes and the last
/// of each loop kept, and one `truncated` event at the end that counts
/// the rest, so that the kept and the omitted make every event.
fn assert_bounded(trace: &[serde_json::Value]) {
    let truncated: Vec<&serde_json::Value> =
        trace.iter().filter(|e| e["event"] == "truncated").collect();
    assert_eq!(truncated.len(), 1, "{trace:?}");
    assert_eq!(trace.last(), Some(truncated[0]));
    let kept = trace.len() as u64 - 1;
    assert!(kept <= 1000, "{kept} events kept");
    assert_eq!(
        truncated[0]["omitted"].as_u64().unwrap() + kept,
        SPIN_EVENTS
    );
    // The last pass of each loop is kept, and the loops' ends.
    let assigned = |name: &str, value: u64| {
        trace
            .iter()
            .any(|e| e["event"] == "assign" && e["name"] == name && e["value"]["value"] == value)
    };
    assert!(assigned("i", 400) && assigned("j", 500), "{trace:?}");
    assert!(
        trace
            .iter()
            .any(|e| e["event"] == "loop" && e["depth"] == 0 && e["passes"] == 400),
        "{trace:?}"
    );
}

#[test]
fn a_loop_of_200000_passes_keeps_a_bounded_trace_that_says_what_it_cut() {
    let p = Project::new();
    p.write("api.svc", SPIN);
    let check = p.svc().args(["check", "api.svc"]).run();
    assert_eq!(check.status, 0, "{}", check.stderr);
    let spin = |endpoint: &str| {
        p.svc()
            .args(["run", "api.svc", endpoint, "--env", "dev", "--as", "bot"])
            .args(["--output", "json"])
            .run()
    };

    let run = spin("api.spin");
    assert_eq!(run.status, 0, "{}", run.stderr);
    // Unbounded, the trace of these passes was 10 MB and more.
    assert!(
        run.stdout.len() < 200_000,
        "{} bytes of output",
        run.stdout.len()
    );
    let record: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_bounded(record["trace"].as_array().unwrap());

    // A hook's trace has the same bound.
    let failed = spin("api.fail");
    assert_eq!(failed.status, 1, "{}", failed.stderr);
    assert!(
        failed.stdout.len() < 200_000,
        "{} bytes of output",
        failed.stdout.len()
    );
    let record: serde_json::Value = serde_json::from_str(&failed.stdout).unwrap();
    assert_eq!(record["hooks"][0]["hook"], "on_failure", "{record}");
    assert_eq!(record["hooks"][0]["outcome"], "success", "{record}");
    assert_bounded(record["hooks"][0]["trace"].as_array().unwrap());
}

#[test]
fn a_string_doubled_in_a_loop_stops_at_the_bound_of_a_value() {
    let p = Project::new();
    p.write(
        "api.svc",
        r#"
role grower { grant run api.grow }
service_account bot { roles grower }

service api {
  var s: string

  action grow {
    update service_variables { s = "0123456789abcdef" }
    while true max 100 {
      update service_variables { s = s + s }
    }
  }

  endpoint grow {
    methods POST
    process grow
  }
}
"#,
    );
    // Under 2 GB of address space: unbounded, the string took it all and
    // svc aborted on a failed allocation.
    let run: common::Run = std::process::Command::new("prlimit")
        .arg("--as=2000000000")
        .arg(env!("CARGO_BIN_EXE_svc"))
        .args(["run", "api.svc", "api.grow", "--env", "dev", "--as", "bot"])
        .args(["--output", "json"])
        .current_dir(p.path())
        .env("NO_COLOR", "1")
        .output()
        .expect("prlimit runs (util-linux)")
        .into();
    assert_eq!(run.status, 1, "{}", run.stderr);
    let record: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(record["error"]["code"], "limit_exceeded", "{}", run.stderr);
    assert!(
        record["error"]["message"]
            .as_str()
            .unwrap()
            .contains("more than 10 MiB"),
        "{}",
        record["error"]
    );
    // 16 bytes doubled 19 times is the last string under the bound.
    assert_eq!(
        record["variables"]["s"]["value"].as_str().map(str::len),
        Some(16 << 19)
    );
}
