//! Endpoint contracts at run time: declared parameters checked on the
//! command line, the query string and the JSON body; declared responses
//! answered to HTTP callers and to `run_service ... into`; a revealed secret
//! shown to the caller and masked in the log.

mod common;

use common::Project;

const TOKEN: &str = "contract-api-token-7e41aa";

const PROGRAM: &str = r#"
secret API_TOKEN { environment_specific locked }

role counter {
  grant run api.count
  grant run api.page
}

role token_reader {
  grant run api.token
  grant read_secret API_TOKEN
}

service_account bot { roles counter token_reader }

service api {
  var items: json
  var page_result: json
  var total: number
  var i: number

  action page {
    update service_variables {
      items = json_parse("[" + string(param.n * 10) + "," + string(param.n * 10 + 1) + "]")
    }
  }

  action count {
    update service_variables {
      total = 0
      i = 1
    }
    while i <= param.pages max 20 {
      run_service api.page(n = i, tags = "a,b") into page_result
      update service_variables {
        total = total + len(json_path(page_result, "$.items"))
        i = i + 1
      }
    }
  }

  action token {
    log "revealing"
  }

  endpoint page {
    methods GET POST
    log enabled
    params {
      n: number
      size: number = 2
      tags: list<string>?
      since: duration = 1m
    }
    response {
      status 200
      json {
        items = items
        n     = param.n
        size  = param.size
        tags  = param.tags
        since = seconds(param.since)
      }
    }
    process page
  }

  endpoint count {
    methods GET POST
    params {
      pages: number = 3
    }
    response {
      json { total = total }
    }
    process count
  }

  endpoint token {
    methods GET
    log enabled
    params { }
    response {
      status 201
      json { token = secret.API_TOKEN }
      reveals API_TOKEN
    }
    process token
  }
}
"#;

fn project() -> Project {
    let p = Project::new();
    p.set("API_TOKEN", TOKEN);
    p.write("api.svc", PROGRAM);
    let check = p.svc().args(["check", "api.svc"]).run();
    assert_eq!(check.status, 0, "{}", check.stderr);
    p
}

fn run(p: &Project, endpoint: &str, params: &[&str]) -> common::Run {
    let mut args = vec![
        "run", "api.svc", endpoint, "--env", "dev", "--as", "bot", "--output", "json",
    ];
    for param in params {
        args.push("--param");
        args.push(param);
    }
    p.svc().args(args).run()
}

#[test]
fn parameters_are_typed_defaulted_and_named_when_wrong_on_the_command_line() {
    let p = project();
    let ok = run(&p, "api.page", &["n=2", "tags=x, y", "since=90s"]);
    assert_eq!(ok.status, 0, "{}", ok.stderr);
    let record: serde_json::Value = serde_json::from_str(&ok.stdout).unwrap();
    assert_eq!(
        record["response"],
        serde_json::json!({"status": 200, "body": {
            "items": [20, 21], "n": 2, "size": 2, "tags": ["x", "y"], "since": 90
        }}),
        "{record}"
    );

    let missing = run(&p, "api.page", &[]);
    assert_eq!(missing.status, 2, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("svc::run::invalid_param"),
        "{}",
        missing.stderr
    );
    assert!(
        missing.stderr.contains("needs the parameter `n`"),
        "{}",
        missing.stderr
    );

    let wrong = run(&p, "api.page", &["n=ten"]);
    assert_eq!(wrong.status, 2, "{}", wrong.stderr);
    assert!(
        wrong.stderr.contains("`n`") && wrong.stderr.contains("not a number"),
        "{}",
        wrong.stderr
    );

    let unknown = run(&p, "api.page", &["n=1", "sise=3"]);
    assert_eq!(unknown.status, 2, "{}", unknown.stderr);
    assert!(
        unknown.stderr.contains("no parameter `sise`"),
        "{}",
        unknown.stderr
    );
    assert!(
        unknown.stderr.contains("size: number"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn run_service_passes_parameters_and_binds_the_response() {
    let p = project();
    let ok = run(&p, "api.count", &["pages=4"]);
    assert_eq!(ok.status, 0, "{}", ok.stderr);
    let record: serde_json::Value = serde_json::from_str(&ok.stdout).unwrap();
    assert_eq!(record["response"]["body"]["total"], 8, "{record}");
    // The default when the caller gives none.
    let default = run(&p, "api.count", &[]);
    let record: serde_json::Value = serde_json::from_str(&default.stdout).unwrap();
    assert_eq!(record["response"]["body"]["total"], 6, "{record}");
}

#[test]
fn http_callers_get_the_declared_response_or_a_400_that_names_the_parameter() {
    let p = project();
    let key = p.key("bot", &[]);
    let served = p.serve(&["api.svc", "--env", "dev"]);

    let answer = served.call(
        "GET",
        "/api/services/api/page?n=3&tags=a,b",
        Some(&key),
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.json()["items"],
        serde_json::json!([30, 31]),
        "{}",
        answer.body
    );
    assert_eq!(answer.json()["tags"], serde_json::json!(["a", "b"]));

    let posted = served.call(
        "POST",
        "/api/services/api/page",
        Some(&key),
        Some(r#"{"n": 1, "size": 5, "since": "2m"}"#),
    );
    assert_eq!(posted.status, 200, "{}", posted.body);
    assert_eq!(posted.json()["size"], 5);
    assert_eq!(posted.json()["since"], 120);

    let missing = served.call("GET", "/api/services/api/page", Some(&key), None);
    assert_eq!(missing.status, 400, "{}", missing.body);
    assert_eq!(
        missing.json()["error"]["code"],
        "invalid_param",
        "{}",
        missing.body
    );
    assert!(missing.body.contains("`n`"), "{}", missing.body);

    let mistyped = served.call(
        "POST",
        "/api/services/api/page",
        Some(&key),
        Some(r#"{"n": "three"}"#),
    );
    assert_eq!(mistyped.status, 400, "{}", mistyped.body);
    assert!(mistyped.body.contains("not a number"), "{}", mistyped.body);

    // A revealed secret reaches the caller who may read it, with the
    // declared status; the endpoint log keeps it masked.
    let token = served.call("GET", "/api/services/api/token", Some(&key), None);
    assert_eq!(token.status, 201, "{}", token.body);
    assert_eq!(token.json()["token"], TOKEN);
    assert!(!p.logs().contains(TOKEN), "{}", p.logs());
    assert!(p.logs().contains("\"response\""), "{}", p.logs());
    assert!(!served.stderr().contains(TOKEN));
}
