//! A rotated refresh token is never lost, and never presented twice.
//!
//! The HubSpot refresh written out by hand (tests/fixtures/hubspot_refresh_by_hand.svc), pointed at a provider played by wiremock
//! on 127.0.0.1 that rotates the refresh token: a malformed field in the
//! same answer, a store that cannot be written, or a crash between the
//! answer and the write leave the answer in the recovery journal, and
//! `svc run --replay` recovers the token from it without asking the
//! provider again. A request that presents the refresh token is not re-sent
//! once it may have reached the server.

mod common;

use std::time::Duration;

use common::{Project, Run};
use serde_json::json;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const CLIENT_ID: &str = "hub-client-id-5Tq";
const CLIENT_SECRET: &str = "hub-client-secret-Lp0-very-private";
const OLD_REFRESH: &str = "old-refresh-token-Zx81-spent";
const OLD_ACCESS: &str = "old-access-token-Q1w2e3";
const NEW_REFRESH: &str = "rotated-refresh-token-N3w9";
const NEW_ACCESS: &str = "new-access-token-R4t5y6";

/// The HubSpot refresh written out by hand (as examples/hubspot_refresh.svc
/// was before `refresh_tokens`), sending to the mock server instead of HubSpot.
fn example(server: &str) -> String {
    let text =
        std::fs::read_to_string(common::root().join("tests/fixtures/hubspot_refresh_by_hand.svc"))
            .unwrap();
    assert!(text.contains("https://api.hubapi.com/oauth/v1/token"));
    text.replace("https://api.hubapi.com", server)
}

/// The fix a user makes after a malformed `expires_in`: drop its mapping.
fn without_expires_in(program: &str) -> String {
    let fixed = program.replace("        expires_in        = $.expires_in\n", "");
    assert_ne!(fixed, program, "the example maps expires_in");
    fixed
}

struct Setup {
    project: Project,
    server: MockServer,
}

async fn setup() -> Setup {
    let project = Project::new();
    project.set("HUBSPOT_CLIENT_ID", CLIENT_ID);
    project.set("HUBSPOT_CLIENT_SECRET", CLIENT_SECRET);
    project.set("HUBSPOT_REFRESH_TOKEN", OLD_REFRESH);
    project.set("HUBSPOT_ACCESS_TOKEN", OLD_ACCESS);
    Setup {
        project,
        server: MockServer::start().await,
    }
}

impl Setup {
    async fn run(&self, program: &str, extra: &[&str]) -> Run {
        self.run_in("hubspot.svc", program, "hubspot.refresh", "nightly", extra)
            .await
    }

    /// `svc run FILE ENDPOINT --as IDENTITY`, with `program` in `file`.
    async fn run_in(
        &self,
        file: &str,
        program: &str,
        endpoint: &str,
        identity: &str,
        extra: &[&str],
    ) -> Run {
        self.project.write(file, program);
        let call = self
            .project
            .svc()
            .args(["run", file, endpoint, "--env", "dev", "--as", identity])
            .args(extra.iter().copied());
        tokio::task::spawn_blocking(move || call.run())
            .await
            .unwrap()
    }

    fn stored(&self, name: &str) -> String {
        self.project.document()["secrets"][name]["value"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn journal_files(&self) -> Vec<std::path::PathBuf> {
        match std::fs::read_dir(self.project.path().join("state/dev/journal")) {
            Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// What `svc secret recover --json` lists: the kept answers.
    fn kept_answers(&self) -> Vec<serde_json::Value> {
        let listed = self
            .project
            .svc()
            .args(["secret", "recover", "--env", "dev", "--json"])
            .run();
        assert_eq!(listed.status, 0, "{}", listed.all_output());
        serde_json::from_str(&listed.stdout).unwrap()
    }

    /// A run after one that kept a rotated answer (see `rotating_twice`):
    /// it stored the kept answer first, presented the rotated token, never
    /// the spent one, stored the newer pair's refresh token in `name`, and
    /// left the journal settled.
    async fn assert_stored_first(&self, next: &Run, name: &str) {
        assert_eq!(next.status, 0, "{}", next.all_output());
        assert!(
            next.stdout.contains("kept an answer that was never stored"),
            "{}",
            next.stdout
        );
        assert_eq!(self.presented().await, [OLD_REFRESH, NEW_REFRESH]);
        assert_eq!(self.stored(name), "newer-refresh-token-U8");
        assert!(self.journal_files().is_empty(), "settled");
    }

    /// `svc secret recover --discard` for every run the journal keeps.
    fn discard_journal(&self) {
        let answers = self.kept_answers();
        let mut runs: Vec<&str> = answers
            .iter()
            .map(|a| a["run_id"].as_str().unwrap())
            .collect();
        runs.dedup();
        for run in runs {
            let discarded = self
                .project
                .svc()
                .args(["secret", "recover", "--env", "dev", "--discard", run])
                .run();
            assert_eq!(discarded.status, 0, "{}", discarded.all_output());
        }
        assert!(self.journal_files().is_empty());
    }

    /// The refresh tokens the provider was sent, in order.
    async fn presented(&self) -> Vec<String> {
        self.server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter_map(|r| {
                url::form_urlencoded::parse(&r.body)
                    .find(|(k, _)| k == "refresh_token")
                    .map(|(_, v)| v.into_owned())
            })
            .collect()
    }

    async fn requests(&self) -> usize {
        self.server.received_requests().await.unwrap().len()
    }

    fn assert_no_leak(&self, output: &str) {
        let everything = format!("{output}{}", self.project.logs());
        for secret in [
            CLIENT_ID,
            CLIENT_SECRET,
            OLD_REFRESH,
            OLD_ACCESS,
            NEW_REFRESH,
            NEW_ACCESS,
        ] {
            assert!(
                !everything.contains(secret),
                "`{secret}` leaked:\n{everything}"
            );
        }
    }
}

fn rotating_answer(expires_in: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "access_token": NEW_ACCESS,
        "refresh_token": NEW_REFRESH,
        "expires_in": expires_in,
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_field_keeps_the_rotated_token_for_a_replay() {
    let s = setup().await;
    Mock::given(method("POST"))
        .and(path("/oauth/v1/token"))
        .respond_with(rotating_answer(json!("soon")))
        .expect(1)
        .mount(&s.server)
        .await;
    let program = example(&s.server.uri());
    let failed = s.run(&program, &[]).await;
    assert_eq!(failed.status, 1, "{}", failed.all_output());
    assert!(
        failed.stderr.contains("svc::run::mapping_error"),
        "{}",
        failed.stderr
    );
    assert!(
        failed
            .stderr
            .contains("svc run hubspot.svc hubspot.refresh --env dev --as nightly --replay"),
        "the error says how to recover:\n{}",
        failed.stderr
    );
    assert!(
        failed
            .stdout
            .contains("the answer is kept in the recovery journal"),
        "{}",
        failed.stdout
    );
    // Nothing was updated, and the answer is kept, encrypted.
    assert_eq!(s.stored("HUBSPOT_REFRESH_TOKEN"), OLD_REFRESH);
    let files = s.journal_files();
    assert_eq!(files.len(), 1, "{files:?}");
    let on_disk = std::fs::read(&files[0]).unwrap();
    assert!(!String::from_utf8_lossy(&on_disk).contains(NEW_REFRESH));

    // `svc secret recover` lists it, redacted.
    let listed = s
        .project
        .svc()
        .args(["secret", "recover", "--env", "dev"])
        .run();
    assert_eq!(listed.status, 0, "{}", listed.all_output());
    assert!(
        listed.stdout.contains("hubspot.refresh") && listed.stdout.contains("200"),
        "{}",
        listed.stdout
    );
    assert!(
        listed.stdout.contains("\"refresh_token\""),
        "{}",
        listed.stdout
    );
    s.assert_no_leak(&listed.all_output());

    // The user drops the bad mapping and replays: no second request.
    let fixed = without_expires_in(&program);
    let replayed = s.run(&fixed, &["--replay"]).await;
    assert_eq!(replayed.status, 0, "{}", replayed.all_output());
    assert!(
        replayed
            .stdout
            .contains("replayed from the recovery journal"),
        "{}",
        replayed.stdout
    );
    assert_eq!(s.requests().await, 1, "a replay sends nothing");
    assert_eq!(s.stored("HUBSPOT_REFRESH_TOKEN"), NEW_REFRESH);
    assert_eq!(s.stored("HUBSPOT_ACCESS_TOKEN"), NEW_ACCESS);
    assert!(
        s.journal_files().is_empty(),
        "a success settles the journal"
    );
    s.assert_no_leak(&format!("{}{}", failed.all_output(), replayed.all_output()));

    // Nothing is left to replay.
    let again = s.run(&fixed, &["--replay"]).await;
    assert_eq!(again.status, 2, "{}", again.all_output());
    assert!(
        again.stderr.contains("svc::run::nothing_to_replay"),
        "{}",
        again.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_cannot_be_written_keeps_the_answer() {
    let s = setup().await;
    // A store much larger than the journal entry, so a file size limit
    // lets the journal be written and stops the store's write (EFBIG).
    s.project.set("PADDING", &"p".repeat(64 * 1024));
    Mock::given(method("POST"))
        .respond_with(rotating_answer(json!(1800)))
        .expect(1)
        .mount(&s.server)
        .await;
    let program = example(&s.server.uri());
    s.project.write("hubspot.svc", &program);
    let svc = env!("CARGO_BIN_EXE_svc");
    let project = s.project.path().to_path_buf();
    let key = s.project.key.path.clone();
    // `trap "" XFSZ`: an ignored signal stays ignored across exec, so the
    // kernel's refusal reaches svc as an error, not as a killing signal.
    let failed: Run = tokio::task::spawn_blocking(move || {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "trap '' XFSZ; ulimit -f 32; exec '{svc}' run hubspot.svc hubspot.refresh --env dev --as nightly"
            ))
            .current_dir(project)
            .env("SVC_IDENTITY", key)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
            .into()
    })
    .await
    .unwrap();
    assert_eq!(failed.status, 1, "{}", failed.all_output());
    assert!(
        failed.stderr.contains("svc::store::io") && failed.stderr.contains("--replay"),
        "{}",
        failed.stderr
    );
    assert_eq!(s.stored("HUBSPOT_REFRESH_TOKEN"), OLD_REFRESH);
    assert_eq!(s.journal_files().len(), 1);
    // With room again, the replay stores the rotated token.
    let replayed = s.run(&program, &["--replay"]).await;
    assert_eq!(replayed.status, 0, "{}", replayed.all_output());
    assert_eq!(s.requests().await, 1);
    assert_eq!(s.stored("HUBSPOT_REFRESH_TOKEN"), NEW_REFRESH);
    s.assert_no_leak(&format!("{}{}", failed.all_output(), replayed.all_output()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_the_answer_and_the_write_keeps_the_answer() {
    let s = setup().await;
    Mock::given(method("POST"))
        .respond_with(rotating_answer(json!(1800)))
        .expect(1)
        .mount(&s.server)
        .await;
    // The example, with a pause between the answer and the updates.
    let program = example(&s.server.uri()).replace(
        "    if has_value(new_refresh_token) {",
        "    if param.pause == \"yes\" {\n      sleep 1h\n    }\n    if has_value(new_refresh_token) {",
    );
    s.project.write("hubspot.svc", &program);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_svc"))
        .args([
            "run",
            "hubspot.svc",
            "hubspot.refresh",
            "--env",
            "dev",
            "--as",
            "nightly",
            "--param",
            "pause=yes",
        ])
        .current_dir(s.project.path())
        .env("SVC_IDENTITY", &s.project.key.path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let kept = tokio::task::spawn_blocking({
        let dir = s.project.path().join("state/dev/journal");
        // A kept answer is renamed into place: count finished files, not
        // the hidden temporary one it is written to first.
        move || {
            common::eventually(20, || {
                std::fs::read_dir(&dir).is_ok_and(|d| {
                    d.flatten()
                        .filter(|e| {
                            let name = e.file_name().to_string_lossy().into_owned();
                            !name.starts_with('.') && name.ends_with(".age")
                        })
                        .count()
                        == 1
                })
            })
        }
    })
    .await
    .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(kept, "the answer was journaled before the pause");
    assert_eq!(s.stored("HUBSPOT_REFRESH_TOKEN"), OLD_REFRESH);
    let replayed = s.run(&program, &["--replay"]).await;
    assert_eq!(replayed.status, 0, "{}", replayed.all_output());
    assert_eq!(s.requests().await, 1);
    assert_eq!(s.stored("HUBSPOT_REFRESH_TOKEN"), NEW_REFRESH);
    s.assert_no_leak(&replayed.all_output());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_that_timed_out_is_not_sent_again() {
    let s = setup().await;
    Mock::given(method("POST"))
        .respond_with(rotating_answer(json!(1800)).set_delay(Duration::from_secs(3)))
        .mount(&s.server)
        .await;
    let program = example(&s.server.uri()).replace("timeout 10s", "timeout 500ms");
    let run = s.run(&program, &[]).await;
    assert_eq!(run.status, 1, "{}", run.all_output());
    assert!(
        run.stderr.contains("no answer within 500ms"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("did not send it again"),
        "{}",
        run.stderr
    );
    assert_eq!(
        s.requests().await,
        1,
        "the refresh token was presented once"
    );
    assert_eq!(s.stored("HUBSPOT_REFRESH_TOKEN"), OLD_REFRESH);
    s.assert_no_leak(&run.all_output());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_answered_500_is_not_sent_again_but_503_is() {
    let s = setup().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .mount(&s.server)
        .await;
    let program = example(&s.server.uri());
    let run = s.run(&program, &[]).await;
    assert_eq!(run.status, 1, "{}", run.all_output());
    assert_eq!(s.requests().await, 1, "a 500 may have spent the token");

    // 503 (and 429) say the server did not take the request: retried.
    s.server.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&s.server)
        .await;
    Mock::given(method("POST"))
        .respond_with(rotating_answer(json!(1800)))
        .mount(&s.server)
        .await;
    let run = s.run(&program, &[]).await;
    assert_eq!(run.status, 0, "{}", run.all_output());
    assert_eq!(s.requests().await, 2);
    assert_eq!(s.stored("HUBSPOT_REFRESH_TOKEN"), NEW_REFRESH);
    s.assert_no_leak(&run.all_output());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_that_could_not_connect_is_retried() {
    let s = setup().await;
    // A port that was just free: nothing listens there.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let program = example(&format!("http://127.0.0.1:{closed}"));
    let run = s.run(&program, &[]).await;
    assert_eq!(run.status, 1, "{}", run.all_output());
    assert!(
        run.stderr.contains("after 3 attempts") && run.stderr.contains("cannot connect"),
        "{}",
        run.stderr
    );
    s.assert_no_leak(&run.all_output());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_of_the_wrong_type_or_blank_never_overwrites_a_good_one() {
    let s = setup().await;
    let program = example(&s.server.uri());
    for (access, refresh) in [(json!(true), json!(12345)), (json!("   "), json!("\t\n"))] {
        s.server.reset().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "access_token": access,
                "refresh_token": refresh,
                "expires_in": 1800,
            })))
            .mount(&s.server)
            .await;
        let run = s.run(&program, &[]).await;
        if access.is_string() {
            // Blank strings have no value: the guarded updates are skipped.
            assert_eq!(run.status, 0, "{}", run.all_output());
            assert!(!run.stdout.contains("updated secret"), "{}", run.stdout);
        } else {
            assert_eq!(run.status, 1, "{}", run.all_output());
            assert!(
                run.stderr.contains("svc::run::mapping_error")
                    && run.stderr.contains("does not fit `token` (string)"),
                "{}",
                run.stderr
            );
            // The answer is journaled, and no value in it can be stored:
            // the next run may not present the refresh token before a
            // person decided (here: it carried nothing, forget it).
            let refused = s.run(&program, &[]).await;
            assert_eq!(refused.status, 1, "{}", refused.all_output());
            assert!(
                refused.stderr.contains("svc::run::unsettled_journal"),
                "{}",
                refused.stderr
            );
            assert_eq!(s.requests().await, 1, "the refused run sent nothing");
            s.discard_journal();
        }
        assert_eq!(s.stored("HUBSPOT_REFRESH_TOKEN"), OLD_REFRESH);
        assert_eq!(s.stored("HUBSPOT_ACCESS_TOKEN"), OLD_ACCESS);
        s.assert_no_leak(&run.all_output());
    }
}

/// Answers the old refresh token with a rotated one and a malformed
/// `expires_in`, and the rotated one with the next.
async fn rotating_twice(s: &Setup) {
    Mock::given(method("POST"))
        .and(body_string_contains(OLD_REFRESH))
        .respond_with(rotating_answer(json!("soon")))
        .mount(&s.server)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains(NEW_REFRESH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "newer-access-token-T7",
            "refresh_token": "newer-refresh-token-U8",
            "expires_in": 1800,
        })))
        .mount(&s.server)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_run_stores_a_journaled_answer_before_it_sends_anything() {
    let s = setup().await;
    rotating_twice(&s).await;
    let program = example(&s.server.uri());
    let failed = s.run(&program, &[]).await;
    assert_eq!(failed.status, 1, "{}", failed.all_output());
    assert_eq!(s.journal_files().len(), 1);

    // Fixed, and run as usual (no --replay): the kept answer is stored
    // first, and the run presents the rotated token, not the spent one.
    let fixed = without_expires_in(&program);
    let next = s.run(&fixed, &[]).await;
    s.assert_stored_first(&next, "HUBSPOT_REFRESH_TOKEN").await;
    s.assert_no_leak(&format!("{}{}", failed.all_output(), next.all_output()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_refused_while_the_journal_holds_an_answer_it_cannot_store() {
    let s = setup().await;
    rotating_twice(&s).await;
    let program = example(&s.server.uri());
    let failed = s.run(&program, &[]).await;
    assert_eq!(failed.status, 1, "{}", failed.all_output());

    // The program is still broken: the kept answer cannot be stored, so
    // nothing is sent (the spent token would revoke the family).
    let refused = s.run(&program, &[]).await;
    assert_eq!(refused.status, 1, "{}", refused.all_output());
    let said = refused
        .stderr
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        said.contains("svc::run::unsettled_journal")
            && said.contains("svc run hubspot.svc hubspot.refresh --env dev --as nightly --replay"),
        "{}",
        refused.stderr
    );
    assert_eq!(s.presented().await, [OLD_REFRESH]);
    assert_eq!(s.stored("HUBSPOT_REFRESH_TOKEN"), OLD_REFRESH);

    // Over HTTP: 409; from the schedule (it fires at once, never having
    // run): a failed run with that code; and nothing sent either.
    let answer = tokio::task::block_in_place(|| {
        let key = s.project.key("nightly", &[]);
        let served = s.project.serve(&[".", "--env", "dev"]);
        let schedule_log = s
            .project
            .path()
            .join("logs/dev/schedule.hubspot_nightly.jsonl");
        assert!(
            common::eventually(20, || std::fs::read_to_string(&schedule_log)
                .is_ok_and(|log| log.contains("svc::run::unsettled_journal"))),
            "{}",
            served.stderr()
        );
        served.call("GET", "/api/services/hubspot/refresh", Some(&key), None)
    });
    assert_eq!(answer.status, 409, "{}", answer.body);
    assert_eq!(
        answer.json()["error"]["code"],
        "unsettled_journal",
        "{}",
        answer.body
    );
    assert_eq!(s.presented().await, [OLD_REFRESH]);

    // A person applies it once the program is fixed.
    s.project
        .write("hubspot.svc", &without_expires_in(&program));
    let answers = s.kept_answers();
    let run_id = answers[0]["run_id"].as_str().unwrap().to_string();
    let applied = s
        .project
        .svc()
        .args(["secret", "recover", "--env", "dev", "--apply", &run_id])
        .args(["--program", "hubspot.svc"])
        .run();
    assert_eq!(applied.status, 0, "{}", applied.all_output());
    assert_eq!(s.stored("HUBSPOT_REFRESH_TOKEN"), NEW_REFRESH);
    assert_eq!(s.presented().await, [OLD_REFRESH], "applying sends nothing");
    assert!(s.journal_files().is_empty());
    s.assert_no_leak(&format!(
        "{}{}{}{}",
        failed.all_output(),
        refused.all_output(),
        answer.body,
        applied.all_output()
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journaled_answer_is_never_stored_over_a_newer_value() {
    let s = setup().await;
    rotating_twice(&s).await;
    let program = example(&s.server.uri());
    let failed = s.run(&program, &[]).await;
    assert_eq!(failed.status, 1, "{}", failed.all_output());
    // A person authorizes again meanwhile: a fresh token of their own.
    s.project.set("HUBSPOT_REFRESH_TOKEN", NEW_REFRESH);
    let next = s.run(&without_expires_in(&program), &[]).await;
    assert_eq!(next.status, 0, "{}", next.all_output());
    assert!(next.stdout.contains("obsolete"), "{}", next.stdout);
    assert_eq!(s.presented().await, [OLD_REFRESH, NEW_REFRESH]);
    assert_eq!(s.stored("HUBSPOT_REFRESH_TOKEN"), "newer-refresh-token-U8");
    assert!(s.journal_files().is_empty());
}

/// A service that sends the client's credentials and stores nothing, then
/// fails: `{server}` is the provider's base URL.
const PEEK: &str = r#"
secret HUBSPOT_CLIENT_ID     { environment_specific }
secret HUBSPOT_CLIENT_SECRET { environment_specific locked }

role peeker { grant run peek.fetch }
service_account watcher { roles peeker }

service peek {
  var token: string
  action fetch {
    web_request {
      method POST
      url "{server}/oauth/v1/token"
      form {
        grant_type    = "client_credentials"
        client_id     = secret.HUBSPOT_CLIENT_ID
        client_secret = secret.HUBSPOT_CLIENT_SECRET
      }
      result_mapping { token = $.access_token }
    }
    web_request {
      method GET
      url "{server}/broken"
    }
  }
  endpoint fetch { methods GET  log enabled  process fetch }
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_updates_no_secret_keeps_no_answer() {
    let s = setup().await;
    Mock::given(method("POST"))
        .and(path("/oauth/v1/token"))
        .respond_with(rotating_answer(json!(1800)))
        .expect(1)
        .mount(&s.server)
        .await;
    let program = PEEK.replace("{server}", &s.server.uri());
    let failed = s
        .run_in("peek.svc", &program, "peek.fetch", "watcher", &[])
        .await;
    // It failed after the answer came: a run that stores what it is
    // answered would have kept the answer (see the malformed-field test).
    assert_eq!(failed.status, 1, "{}", failed.all_output());
    assert!(failed.stdout.contains("/broken"), "{}", failed.all_output());
    assert!(
        !failed.all_output().contains("recovery journal"),
        "{}",
        failed.all_output()
    );
    assert!(s.journal_files().is_empty(), "{:?}", s.journal_files());
    assert_eq!(s.stored("HUBSPOT_REFRESH_TOKEN"), OLD_REFRESH);
}

/// An endpoint whose failure hook refreshes a token through `run_service`:
/// `{server}` is the provider's base URL.
const HOOKED: &str = r#"
secret REFRESH { environment_specific }

role refresher {
  grant run vendor.ping
  grant run vendor.refresh
  grant update_secret REFRESH
}
service_account keeper { roles refresher }

service vendor {
  var next: string
  var ttl: number
  action ping {
    web_request {
      method GET
      url "{server}/ping"
    }
  }
  action refresh {
    web_request {
      method POST
      url "{server}/oauth/v1/token"
      form {
        grant_type    = "refresh_token"
        refresh_token = secret.REFRESH
      }
      result_mapping {
        next = $.refresh_token
        ttl  = $.expires_in
      }
    }
    update_secret REFRESH = next
  }
  endpoint ping {
    methods GET
    process ping
    on_failure { run_service vendor.refresh }
  }
  endpoint refresh { methods POST  process refresh }
}
"#;

/// The hook's refresh, fixed: `ttl` no longer mapped from `expires_in`.
fn hooked_fixed(program: &str) -> String {
    let fixed = program.replace("        ttl  = $.expires_in\n", "");
    assert_ne!(fixed, program, "the hooked program maps expires_in");
    fixed
}

/// Runs `vendor.ping`, whose failure hook refreshes through `run_service`
/// and fails on the rotated answer's `expires_in`: the answer is kept.
async fn hook_keeps_a_rotated_answer(s: &Setup) -> (String, Run) {
    s.project.set("REFRESH", OLD_REFRESH);
    Mock::given(method("GET"))
        .and(path("/ping"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&s.server)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains(OLD_REFRESH))
        .respond_with(rotating_answer(json!("soon")))
        .expect(1)
        .mount(&s.server)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains(NEW_REFRESH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "newer-access-token-T7",
            "refresh_token": "newer-refresh-token-U8",
            "expires_in": 1800,
        })))
        .mount(&s.server)
        .await;
    let program = HOOKED.replace("{server}", &s.server.uri());
    let failed = s
        .run_in("hooked.svc", &program, "vendor.ping", "keeper", &[])
        .await;
    assert_eq!(failed.status, 1, "{}", failed.all_output());
    assert_eq!(s.presented().await, vec![OLD_REFRESH.to_string()]);
    // The hook's refresh failed on `expires_in`; the rotated token it was
    // answered is kept, and is the only way back to it.
    assert_eq!(s.stored("REFRESH"), OLD_REFRESH);
    let files = s.journal_files();
    assert_eq!(files.len(), 1, "{files:?}\n{}", failed.all_output());
    (program, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_that_refreshes_through_run_service_keeps_the_rotated_answer() {
    let s = setup().await;
    let (program, failed) = hook_keeps_a_rotated_answer(&s).await;
    // It is kept as a run of the endpoint the hook ran, with that
    // endpoint's identity: `svc secret recover` names it so.
    let answers = s.kept_answers();
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0]["endpoint"], "vendor.refresh", "{answers:?}");

    // The next refresh stores the kept answer before it sends anything,
    // and presents the rotated token, never the spent one.
    let next = s
        .run_in(
            "hooked.svc",
            &hooked_fixed(&program),
            "vendor.refresh",
            "keeper",
            &[],
        )
        .await;
    s.assert_stored_first(&next, "REFRESH").await;
    s.assert_no_leak(&format!("{}{}", failed.all_output(), next.all_output()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hooks_kept_answer_is_recovered_by_recover_apply() {
    let s = setup().await;
    let (program, failed) = hook_keeps_a_rotated_answer(&s).await;
    s.project.write("hooked.svc", &hooked_fixed(&program));
    let answers = s.kept_answers();
    let run_id = answers[0]["run_id"].as_str().unwrap().to_string();
    let applied = s
        .project
        .svc()
        .args(["secret", "recover", "--env", "dev", "--apply", &run_id])
        .args(["--program", "hooked.svc"])
        .run();
    assert_eq!(applied.status, 0, "{}", applied.all_output());
    // Stored from the kept answer: nothing sent again.
    assert_eq!(s.presented().await, [OLD_REFRESH]);
    assert_eq!(s.stored("REFRESH"), NEW_REFRESH);
    assert!(s.journal_files().is_empty(), "settled");
    s.assert_no_leak(&format!("{}{}", failed.all_output(), applied.all_output()));
}
