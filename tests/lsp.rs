//! `svc lsp` end to end: the real binary, spoken to over its standard input
//! and output as an editor does (JSON-RPC with `Content-Length` framing),
//! on workspaces of real files in temporary directories.

mod common;
#[path = "common/lsp_client.rs"]
mod lsp_client;
#[path = "common/mutate.rs"]
mod mutate;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use lsp_client::{Lsp, apply_edits, apply_workspace_edit, position, range, uri};
use mutate::mutate;
use serde_json::{Value, json};
use tempfile::TempDir;

/// A role that may run `api.refresh` but not update `TOKEN`, and an
/// account that has it.
const ROLES: &str = "role refresher {
  grant run api.refresh
}

service_account bot { roles refresher }
";

/// [`ROLES`] with the grant the endpoint needs.
const ROLES_GRANTED: &str = "role refresher {
  grant run api.refresh
  grant update_secret TOKEN
}

service_account bot { roles refresher }
";

const API: &str = r#"secret TOKEN { environment_specific }
secret OTHER { environment_specific }

service api {
  var token: string

  action refresh_token {
    web_request {
      method POST
      url "https://127.0.0.1:9/oauth/token"
      form { grant_type = "client_credentials" client_secret = secret.OTHER }
      result_mapping { token = $.access_token }
    }
    if has_value(token) {
      update_secret TOKEN = token
    }
  }

  endpoint refresh {
    methods POST
    process refresh_token
  }
}
"#;

const MISSING_UPDATE_GRANT: &str = "svc::permission::missing_update_grant";

/// The byte range of `target` inside the one occurrence of `context`.
fn find(text: &str, context: &str, target: &str) -> std::ops::Range<usize> {
    let at = text
        .find(context)
        .unwrap_or_else(|| panic!("`{context}` is not in:\n{text}"));
    assert_eq!(
        text.matches(context).count(),
        1,
        "`{context}` is in the text more than once"
    );
    let inner = context
        .find(target)
        .unwrap_or_else(|| panic!("`{target}` is not in `{context}`"));
    at + inner..at + inner + target.len()
}

/// A UTF-16 position inside `target` (on its second character), as an
/// editor's cursor on the name.
fn on(text: &str, context: &str, target: &str) -> Value {
    let bytes = find(text, context, target);
    position(text, bytes.start + 1, true)
}

/// The UTF-16 range of `target` inside `context`.
fn range_of(text: &str, context: &str, target: &str) -> Value {
    range(text, find(text, context, target), true)
}

fn codes(list: &[Value]) -> Vec<&str> {
    list.iter()
        .map(|d| d["code"].as_str().unwrap_or("?"))
        .collect()
}

fn next_version() -> i64 {
    static VERSION: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(2);
    VERSION.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A workspace folder of files on disk, a server on it, and the texts the
/// editor holds.
struct Session {
    dir: TempDir,
    lsp: Lsp,
    texts: HashMap<String, String>,
}

impl Session {
    /// Writes the files, starts the server on the folder and opens `open`.
    fn new(files: &[(&str, &str)], open: &[&str]) -> Session {
        let dir = tempfile::tempdir().unwrap();
        let mut texts = HashMap::new();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
            texts.insert(uri(&path), text.to_string());
        }
        let lsp = Lsp::on(dir.path());
        let mut session = Session { dir, lsp, texts };
        for name in open {
            let uri = session.uri(name);
            let text = session.texts[&uri].clone();
            session.lsp.open(&uri, &text);
        }
        session
    }

    fn uri(&self, name: &str) -> String {
        uri(&self.dir.path().join(name))
    }

    fn text(&self, name: &str) -> String {
        self.texts[&self.uri(name)].clone()
    }

    /// The editor's text of a file becomes `text` (a full-text change).
    fn set(&mut self, name: &str, text: &str) {
        let uri = self.uri(name);
        self.texts.insert(uri.clone(), text.to_string());
        self.lsp.replace(&uri, next_version(), text);
    }

    /// A request at a position of a file.
    fn at(&mut self, method: &str, name: &str, position: Value) -> Value {
        let uri = self.uri(name);
        self.lsp.request(
            method,
            json!({ "textDocument": { "uri": uri }, "position": position }),
        )
    }

    /// Asks for the code actions of the diagnostic `code` of `name`, applies
    /// the one titled `title` to the editor's texts and sends the changed
    /// texts; returns the names of the files it changed.
    fn quick_fix(&mut self, name: &str, code: &str, title: &str) -> Vec<String> {
        let uri = self.uri(name);
        let diagnostics = self.lsp.diagnostics_now(&uri);
        let diagnostic = diagnostics
            .iter()
            .find(|d| d["code"] == code)
            .unwrap_or_else(|| panic!("no {code} in {name}: {diagnostics:#?}"))
            .clone();
        let actions = self.lsp.request(
            "textDocument/codeAction",
            json!({
                "textDocument": { "uri": uri },
                "range": diagnostic["range"],
                "context": { "diagnostics": [diagnostic] },
            }),
        );
        let actions = actions.as_array().expect("a list of code actions");
        let titles: Vec<&str> = actions
            .iter()
            .map(|a| a["title"].as_str().unwrap_or("?"))
            .collect();
        let action = actions
            .iter()
            .find(|a| a["title"] == title)
            .unwrap_or_else(|| panic!("no action `{title}` for {code}; offered: {titles:?}"));
        assert_eq!(action["kind"], "quickfix", "{action}");
        assert_eq!(action["diagnostics"][0]["code"], code, "{action}");
        let changed = apply_workspace_edit(&mut self.texts, &action["edit"], true);
        // What was published before the fix is not what the test waits for.
        self.lsp.settle();
        for uri in &changed {
            let text = self.texts[uri].clone();
            self.lsp.replace(uri, next_version(), &text);
        }
        changed
            .iter()
            .map(|u| u.rsplit('/').next().unwrap().to_string())
            .collect()
    }

    /// Checks that no file of the program has any diagnostic now, and
    /// that an empty list was published for each of `names` (files edited
    /// or whose list emptied) since the last settle.
    fn assert_clean(&mut self, names: &[&str]) {
        let mut uris: Vec<String> = self.texts.keys().cloned().collect();
        uris.sort();
        for uri in uris {
            let list = self.lsp.diagnostics_now(&uri);
            assert!(
                list.is_empty(),
                "{uri}:\n{list:#?}\ntexts: {:#?}",
                self.texts
            );
        }
        for name in names {
            let uri = self.uri(name);
            self.lsp.wait_diagnostics(&uri, |list| list.is_empty());
        }
    }
}

/// What `svc fmt -` makes of a text.
fn svc_fmt(text: &str) -> String {
    let run = common::svc().args(["fmt", "-"]).stdin(text).run();
    assert_eq!(run.status, 0, "svc fmt - failed: {}", run.stderr);
    run.stdout
}

// 1. The handshake.

#[test]
fn initialize_announces_every_capability_and_utf16_by_default() {
    let lsp = Lsp::start(None, json!({}));
    let capabilities = &lsp.init["capabilities"];
    assert_eq!(
        capabilities["positionEncoding"], "utf-16",
        "{capabilities:#}"
    );
    for provider in [
        "hoverProvider",
        "definitionProvider",
        "referencesProvider",
        "documentFormattingProvider",
        "documentSymbolProvider",
        "workspaceSymbolProvider",
    ] {
        assert_eq!(capabilities[provider], true, "{provider}: {capabilities:#}");
    }
    assert_eq!(
        capabilities["renameProvider"],
        json!({ "prepareProvider": true })
    );
    assert_eq!(
        capabilities["codeActionProvider"]["codeActionKinds"],
        json!(["quickfix"])
    );
    let triggers = capabilities["completionProvider"]["triggerCharacters"]
        .as_array()
        .expect("completion trigger characters");
    assert!(triggers.contains(&json!(".")), "{triggers:?}");
    // Incremental changes, and open/close.
    assert_eq!(capabilities["textDocumentSync"]["change"], 2);
    assert_eq!(capabilities["textDocumentSync"]["openClose"], true);
    assert_eq!(lsp.init["serverInfo"]["name"], "svc");
    lsp.shutdown();

    // A client that can only count in UTF-32 gets UTF-16, the protocol's
    // mandatory encoding.
    let lsp = Lsp::start(
        None,
        json!({ "general": { "positionEncodings": ["utf-32"] } }),
    );
    assert_eq!(lsp.init["capabilities"]["positionEncoding"], "utf-16");
    lsp.shutdown();
}

#[test]
fn initialize_chooses_utf8_when_the_client_offers_it() {
    let lsp = Lsp::start(
        None,
        json!({ "general": { "positionEncodings": ["utf-8", "utf-16"] } }),
    );
    assert_eq!(lsp.init["capabilities"]["positionEncoding"], "utf-8");
    lsp.shutdown();
}

/// Positions count what was negotiated: on lines with `é` and `😀` the
/// UTF-8 and UTF-16 columns differ, and each session gets its own.
#[test]
fn positions_follow_the_negotiated_encoding() {
    let text = "secret X { description \"héllo 😀\" } secret TOKEN { environment_specific }\n\
                role r { description \"😀😀\" grant read_secret TOKEN }\n\
                user u { roles r }\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enc.svc");
    std::fs::write(&path, text).unwrap();
    let file = uri(&path);
    let declaration = find(text, "secret TOKEN {", "TOKEN");
    let used = find(text, "read_secret TOKEN", "TOKEN");
    for (utf16, offered) in [
        (true, json!(["utf-16"])),
        (false, json!(["utf-8", "utf-16"])),
    ] {
        let mut lsp = Lsp::start(None, json!({ "general": { "positionEncodings": offered } }));
        lsp.open(&file, text);
        let answer = lsp.request(
            "textDocument/definition",
            json!({
                "textDocument": { "uri": file },
                "position": position(text, used.start + 2, utf16),
            }),
        );
        assert_eq!(
            answer,
            json!({ "uri": file, "range": range(text, declaration.clone(), utf16) }),
            "utf16: {utf16}"
        );
        let hover = lsp.request(
            "textDocument/hover",
            json!({
                "textDocument": { "uri": file },
                "position": position(text, used.end, utf16),
            }),
        );
        assert_eq!(hover["range"], range(text, used.clone(), utf16), "{hover}");
        lsp.shutdown();
    }
    // The two encodings do differ here.
    assert_ne!(
        position(text, declaration.start, true),
        position(text, declaration.start, false)
    );
}

// 2. Diagnostics across files.

#[test]
fn a_missing_grant_is_reported_and_cleared_by_an_edit_of_another_file() {
    let mut s = Session::new(&[("roles.svc", ROLES), ("api.svc", API)], &["api.svc"]);
    let api = s.uri("api.svc");
    let roles = s.uri("roles.svc");
    let list = s
        .lsp
        .wait_diagnostics(&api, |l| codes(l).contains(&MISSING_UPDATE_GRANT));
    assert_eq!(list.len(), 1, "{list:#?}");
    let d = &list[0];
    assert_eq!(d["code"], MISSING_UPDATE_GRANT);
    assert_eq!(d["severity"], 1);
    assert_eq!(d["source"], "svc");
    assert_eq!(
        d["range"],
        range_of(API, "update_secret TOKEN = token", "TOKEN = token")
    );
    let message = d["message"].as_str().unwrap();
    assert!(
        message.contains("help: add `grant update_secret TOKEN` to role `refresher`"),
        "{message}"
    );
    let related = d["relatedInformation"]
        .as_array()
        .expect("related locations");
    assert_eq!(related.len(), 1, "{related:#?}");
    assert_eq!(related[0]["location"]["uri"], roles);
    assert_eq!(
        related[0]["location"]["range"],
        range_of(ROLES, "service_account bot", "bot")
    );
    assert_eq!(related[0]["message"], "`bot` is declared here");
    let href = d["codeDescription"]["href"].as_str().expect("a link");
    assert!(
        href.ends_with("language.md#svcpermissionmissing_update_grant"),
        "{href}"
    );

    s.lsp.open(&roles, ROLES);
    s.lsp.settle();
    // The grant, typed as an editor sends it: one incremental change.
    s.lsp.change(
        &roles,
        2,
        json!({ "start": { "line": 2, "character": 0 }, "end": { "line": 2, "character": 0 } }),
        "  grant update_secret TOKEN\n",
    );
    s.texts.insert(roles.clone(), ROLES_GRANTED.to_string());
    s.lsp.wait_diagnostics(&api, |l| l.is_empty());
    assert_eq!(s.lsp.diagnostics_now(&roles), Vec::<Value>::new());
    s.lsp.shutdown();
}

// 3. Hover.

#[test]
fn hover_on_a_secret_tells_how_it_is_kept_and_never_a_value() {
    let mut s = Session::new(
        &[("roles.svc", ROLES_GRANTED), ("api.svc", API)],
        &["api.svc"],
    );
    let hover = s.at(
        "textDocument/hover",
        "api.svc",
        on(API, "update_secret TOKEN", "TOKEN"),
    );
    assert_eq!(hover["contents"]["kind"], "markdown", "{hover}");
    let text = hover["contents"]["value"].as_str().unwrap();
    for wanted in [
        "```svc\nsecret TOKEN\n```",
        "environment-specific",
        "not locked",
        "update granted by: `refresher`",
        "read granted by: none",
        "updated by: `api.refresh`",
        "declared in `api.svc`, line 1",
    ] {
        assert!(text.contains(wanted), "`{wanted}` is not in:\n{text}");
    }
    // Nothing written as a value in the program shows.
    for literal in [
        "https://",
        "127.0.0.1:9/oauth/token",
        "client_credentials",
        "access_token",
    ] {
        assert!(!text.contains(literal), "`{literal}` is in:\n{text}");
    }
    assert_eq!(
        hover["range"],
        range_of(API, "update_secret TOKEN", "TOKEN")
    );

    // A secret read in a form: no role may update it, no endpoint does.
    let hover = s.at(
        "textDocument/hover",
        "api.svc",
        on(API, "secret.OTHER", "OTHER"),
    );
    let text = hover["contents"]["value"].as_str().unwrap();
    assert!(text.contains("secret OTHER"), "{text}");
    assert!(text.contains("update granted by: none"), "{text}");
    assert!(text.contains("updated by: none"), "{text}");
    assert!(!text.contains("client_credentials"), "{text}");
    s.lsp.shutdown();
}

// 4. Definition.

#[test]
fn definition_crosses_files() {
    let accounts = "service_account ops { roles refresher }\n";
    let mut s = Session::new(
        &[
            ("roles.svc", ROLES_GRANTED),
            ("api.svc", API),
            ("accounts.svc", accounts),
        ],
        &[],
    );
    let roles = s.uri("roles.svc");
    let api = s.uri("api.svc");
    // A role from another file (not open: the workspace's file).
    let found = s.at(
        "textDocument/definition",
        "accounts.svc",
        on(accounts, "roles refresher", "refresher"),
    );
    assert_eq!(
        found,
        json!({ "uri": roles, "range": range_of(ROLES_GRANTED, "role refresher", "refresher") })
    );
    // The same from the open file.
    s.lsp.open(&s.uri("accounts.svc"), accounts);
    let again = s.at(
        "textDocument/definition",
        "accounts.svc",
        on(accounts, "roles refresher", "refresher"),
    );
    assert_eq!(again, found);
    // The endpoint of a grant, and its service.
    let found = s.at(
        "textDocument/definition",
        "roles.svc",
        on(ROLES_GRANTED, "grant run api.refresh", "refresh"),
    );
    assert_eq!(
        found,
        json!({ "uri": api, "range": range_of(API, "endpoint refresh", "refresh") })
    );
    let found = s.at(
        "textDocument/definition",
        "roles.svc",
        on(ROLES_GRANTED, "grant run api.refresh", "api"),
    );
    assert_eq!(
        found,
        json!({ "uri": api, "range": range_of(API, "service api", "api") })
    );
    // The secret of a grant; an action from `process`.
    let found = s.at(
        "textDocument/definition",
        "roles.svc",
        on(ROLES_GRANTED, "update_secret TOKEN", "TOKEN"),
    );
    assert_eq!(
        found,
        json!({ "uri": api, "range": range_of(API, "secret TOKEN {", "TOKEN") })
    );
    let found = s.at(
        "textDocument/definition",
        "api.svc",
        on(API, "process refresh_token", "refresh_token"),
    );
    assert_eq!(
        found,
        json!({ "uri": api, "range": range_of(API, "action refresh_token", "refresh_token") })
    );
    // A keyword is no name.
    let found = s.at(
        "textDocument/definition",
        "roles.svc",
        on(ROLES_GRANTED, "grant run api.refresh", "grant"),
    );
    assert_eq!(found, Value::Null);
    s.lsp.shutdown();
}

// 5. References.

#[test]
fn references_of_a_secret_are_every_use_in_every_file() {
    let mut s = Session::new(
        &[("roles.svc", ROLES_GRANTED), ("api.svc", API)],
        &["api.svc"],
    );
    let roles = s.uri("roles.svc");
    let api = s.uri("api.svc");
    let as_set = |found: &Value| -> BTreeSet<String> {
        found
            .as_array()
            .expect("a list of locations")
            .iter()
            .map(|l| l.to_string())
            .collect()
    };
    let location = |uri: &str, range: Value| json!({ "uri": uri, "range": range }).to_string();
    let declaration = location(&api, range_of(API, "secret TOKEN {", "TOKEN"));
    let update = location(&api, range_of(API, "update_secret TOKEN", "TOKEN"));
    let grant = location(
        &roles,
        range_of(ROLES_GRANTED, "update_secret TOKEN", "TOKEN"),
    );
    for (name, position) in [
        ("api.svc", on(API, "secret TOKEN {", "TOKEN")),
        ("api.svc", on(API, "update_secret TOKEN", "TOKEN")),
        (
            "roles.svc",
            on(ROLES_GRANTED, "update_secret TOKEN", "TOKEN"),
        ),
    ] {
        let uri = s.uri(name);
        let found = s.lsp.request(
            "textDocument/references",
            json!({
                "textDocument": { "uri": uri },
                "position": position,
                "context": { "includeDeclaration": true },
            }),
        );
        assert_eq!(found.as_array().unwrap().len(), 3, "{found:#}");
        assert_eq!(
            as_set(&found),
            BTreeSet::from([declaration.clone(), update.clone(), grant.clone()])
        );
        let found = s.lsp.request(
            "textDocument/references",
            json!({
                "textDocument": { "uri": uri },
                "position": position,
                "context": { "includeDeclaration": false },
            }),
        );
        assert_eq!(
            as_set(&found),
            BTreeSet::from([update.clone(), grant.clone()]),
            "{found:#}"
        );
    }
    s.lsp.shutdown();
}

// 6. Completion.

#[test]
fn completion_offers_the_declared_names_that_fit() {
    let mut s = Session::new(
        &[("roles.svc", ROLES_GRANTED), ("api.svc", API)],
        &["api.svc", "roles.svc"],
    );
    let labels = |answer: &Value| -> BTreeSet<String> {
        let items = match answer {
            Value::Array(items) => items,
            other => other["items"].as_array().expect("completion items"),
        };
        items
            .iter()
            .map(|i| i["label"].as_str().unwrap().to_string())
            .collect()
    };
    // `log secret.` typed at the start of the action.
    let api = s.uri("api.svc");
    let line = find(API, "  action refresh_token {\n", "\n").end;
    let typed = "    log secret.";
    let at = position(API, line, true);
    s.lsp.change(
        &api,
        2,
        json!({ "start": at, "end": at }),
        &format!("{typed}\n"),
    );
    let after = json!({ "line": at["line"], "character": typed.len() });
    let answer = s.at("textDocument/completion", "api.svc", after);
    assert_eq!(
        labels(&answer),
        BTreeSet::from(["TOKEN".to_string(), "OTHER".to_string()])
    );

    // `grant run ` in the role.
    let roles = s.uri("roles.svc");
    let line = find(ROLES_GRANTED, "role refresher {\n", "\n").end;
    let typed = "  grant run ";
    let at = position(ROLES_GRANTED, line, true);
    s.lsp.change(
        &roles,
        2,
        json!({ "start": at, "end": at }),
        &format!("{typed}\n"),
    );
    let after = json!({ "line": at["line"], "character": typed.len() });
    let answer = s.at("textDocument/completion", "roles.svc", after);
    assert_eq!(
        labels(&answer),
        BTreeSet::from(["api.refresh".to_string(), "api.*".to_string()])
    );
    // `roles ` in an identity: the roles.
    s.set("roles.svc", ROLES_GRANTED);
    let at = position(
        ROLES_GRANTED,
        find(ROLES_GRANTED, "roles refresher", "refresher").start,
        true,
    );
    let answer = s.at("textDocument/completion", "roles.svc", at);
    assert_eq!(labels(&answer), BTreeSet::from(["refresher".to_string()]));
    s.lsp.shutdown();
}

// 7. Rename.

#[test]
fn rename_edits_every_file_and_the_program_stays_clean() {
    let mut s = Session::new(
        &[("roles.svc", ROLES_GRANTED), ("api.svc", API)],
        &["api.svc", "roles.svc"],
    );
    let api = s.uri("api.svc");
    let roles = s.uri("roles.svc");
    let cursor = on(API, "update_secret TOKEN", "TOKEN");
    let prepared = s.at("textDocument/prepareRename", "api.svc", cursor.clone());
    assert_eq!(
        prepared,
        json!({ "range": range_of(API, "update_secret TOKEN", "TOKEN"), "placeholder": "TOKEN" })
    );
    let rename = |s: &mut Session, new_name: &str| {
        s.lsp.request_raw(
            "textDocument/rename",
            json!({
                "textDocument": { "uri": api },
                "position": cursor,
                "newName": new_name,
            }),
        )
    };
    // To a name another secret has: refused, naming where it is declared.
    let refused = rename(&mut s, "OTHER").expect_err("renaming onto OTHER is refused");
    assert_eq!(refused["code"], -32803, "{refused}");
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.contains("secret `OTHER` is already declared at")
            && message.contains("api.svc:2:8"),
        "{message}"
    );
    // Not a name: refused.
    for bad in ["null", "1abc", "two words", ""] {
        let refused = rename(&mut s, bad).expect_err(bad);
        assert!(
            refused["code"] == -32803 || refused["code"] == -32602,
            "{bad}: {refused}"
        );
    }

    let edit = rename(&mut s, "ACCESS_TOKEN").expect("the rename");
    let changes = edit["changes"].as_object().expect("changes");
    let files: BTreeSet<&String> = changes.keys().collect();
    assert_eq!(files, BTreeSet::from([&api, &roles]));
    assert_eq!(changes[&api].as_array().unwrap().len(), 2, "{edit:#}");
    assert_eq!(changes[&roles].as_array().unwrap().len(), 1, "{edit:#}");
    let changed = apply_workspace_edit(&mut s.texts, &edit, true);
    assert_eq!(changed.len(), 2);
    assert_eq!(s.text("api.svc"), API.replace("TOKEN", "ACCESS_TOKEN"));
    assert_eq!(
        s.text("roles.svc"),
        ROLES_GRANTED.replace("TOKEN", "ACCESS_TOKEN")
    );
    s.lsp.settle();
    for name in ["api.svc", "roles.svc"] {
        let text = s.text(name);
        s.set(name, &text);
    }
    s.assert_clean(&["api.svc", "roles.svc"]);
    s.lsp.shutdown();
}

/// The language lets a variable be called `status` or `expires_in`
/// (docs/language.md, "Keywords are only keywords where the grammar
/// expects them"; tests/fixtures/hubspot_refresh_by_hand.svc has `var expires_in`), so a
/// rename to such a name must be allowed.
#[test]
fn rename_to_a_word_that_is_a_keyword_only_elsewhere_is_allowed() {
    let mut s = Session::new(
        &[("roles.svc", ROLES_GRANTED), ("api.svc", API)],
        &["api.svc"],
    );
    let api = s.uri("api.svc");
    let answer = s.lsp.request_raw(
        "textDocument/rename",
        json!({
            "textDocument": { "uri": api },
            "position": on(API, "var token", "token"),
            "newName": "expires_in",
        }),
    );
    let edit = answer.unwrap_or_else(|e| panic!("renaming `token` to `expires_in`: {e}"));
    apply_workspace_edit(&mut s.texts, &edit, true);
    let renamed = s.text("api.svc");
    assert!(
        renamed.contains("update_secret TOKEN = expires_in"),
        "{renamed}"
    );
    s.lsp.settle();
    s.set("api.svc", &renamed);
    s.assert_clean(&["api.svc"]);
    s.lsp.shutdown();
}

// 8. Formatting.

#[test]
fn formatting_is_svc_fmt_and_leaves_a_broken_file_alone() {
    // Badly laid out, ending without a newline after a line of wide
    // characters, so the edit's end counts UTF-16 units.
    let messy = "secret   A {environment_specific}\nrole r {\ngrant update_secret A\n      }\n\
                 user ops { roles r\n description \"on call 😀é\" }";
    let mut s = Session::new(&[("messy.svc", messy)], &["messy.svc"]);
    let file = s.uri("messy.svc");
    let edits = s
        .lsp
        .request(
            "textDocument/formatting",
            json!({
                "textDocument": { "uri": file },
                "options": { "tabSize": 2, "insertSpaces": true },
            }),
        )
        .as_array()
        .expect("edits")
        .clone();
    assert_eq!(edits.len(), 1, "{edits:#?}");
    let formatted = apply_edits(messy, &edits, true);
    assert_eq!(formatted, svc_fmt(messy));
    assert_ne!(formatted, messy);

    // Formatted already: nothing to do.
    s.set("messy.svc", &formatted);
    let edits = s.lsp.request(
        "textDocument/formatting",
        json!({
            "textDocument": { "uri": file },
            "options": { "tabSize": 2, "insertSpaces": true },
        }),
    );
    assert_eq!(edits, json!([]));

    // A syntax error: refused, nothing lost.
    s.set("messy.svc", "secret A {   \nrole r {\n");
    let refused = s
        .lsp
        .request_raw(
            "textDocument/formatting",
            json!({
                "textDocument": { "uri": file },
                "options": { "tabSize": 2, "insertSpaces": true },
            }),
        )
        .expect_err("a broken file is not formatted");
    assert_eq!(refused["code"], -32803, "{refused}");
    s.lsp.shutdown();
}

// 9. Quick fixes: each applied, and the program is clean again.

#[test]
fn quick_fix_adds_a_missing_grant_to_the_role() {
    let mut s = Session::new(
        &[("roles.svc", ROLES), ("api.svc", API)],
        &["api.svc", "roles.svc"],
    );
    let changed = s.quick_fix(
        "api.svc",
        MISSING_UPDATE_GRANT,
        "Add `grant update_secret TOKEN` to role `refresher`",
    );
    assert_eq!(changed, ["roles.svc"]);
    assert_eq!(s.text("roles.svc"), ROLES_GRANTED);
    s.assert_clean(&["api.svc", "roles.svc"]);
    s.lsp.shutdown();
}

#[test]
fn quick_fix_declares_a_secret_that_is_read() {
    let api = API.replace(
        "    if has_value(token) {",
        "    log secret.MISSING\n    if has_value(token) {",
    );
    let mut s = Session::new(
        &[("roles.svc", ROLES_GRANTED), ("api.svc", &api)],
        &["api.svc"],
    );
    let changed = s.quick_fix(
        "api.svc",
        "svc::name::unknown_secret",
        "Declare `secret MISSING { environment_specific }`",
    );
    assert_eq!(changed, ["api.svc"]);
    assert_eq!(
        s.text("api.svc"),
        api.replace(
            "secret OTHER { environment_specific }\n",
            "secret OTHER { environment_specific }\nsecret MISSING { environment_specific }\n"
        )
    );
    s.assert_clean(&["api.svc"]);
    s.lsp.shutdown();
}

#[test]
fn quick_fix_declares_a_secret_that_is_updated_and_granted() {
    let api = API.replace(
        "      update_secret TOKEN = token\n",
        "      update_secret TOKEN = token\n      update_secret NEWSECRET = token\n",
    );
    let roles = ROLES_GRANTED.replace(
        "  grant update_secret TOKEN\n",
        "  grant update_secret TOKEN\n  grant update_secret NEWSECRET\n",
    );
    let mut s = Session::new(
        &[("roles.svc", &roles), ("api.svc", &api)],
        &["api.svc", "roles.svc"],
    );
    let api_uri = s.uri("api.svc");
    let list = s.lsp.diagnostics_now(&api_uri);
    assert_eq!(codes(&list), ["svc::secret::undeclared"], "{list:#?}");
    let roles_uri = s.uri("roles.svc");
    let list = s.lsp.diagnostics_now(&roles_uri);
    assert_eq!(codes(&list), ["svc::name::unknown_secret"], "{list:#?}");
    let changed = s.quick_fix(
        "api.svc",
        "svc::secret::undeclared",
        "Declare `secret NEWSECRET { environment_specific }`",
    );
    assert_eq!(changed, ["api.svc"]);
    s.assert_clean(&["api.svc", "roles.svc"]);
    s.lsp.shutdown();
}

#[test]
fn quick_fix_corrects_a_misspelt_variable() {
    let api = API.replace("update_secret TOKEN = token", "update_secret TOKEN = tokne");
    let mut s = Session::new(
        &[("roles.svc", ROLES_GRANTED), ("api.svc", &api)],
        &["api.svc"],
    );
    let changed = s.quick_fix(
        "api.svc",
        "svc::name::unknown_variable",
        "Change `tokne` to `token`",
    );
    assert_eq!(changed, ["api.svc"]);
    assert_eq!(s.text("api.svc"), API);
    s.assert_clean(&["api.svc"]);
    s.lsp.shutdown();
}

#[test]
fn quick_fix_corrects_a_misspelt_endpoint_in_a_grant() {
    let roles = ROLES_GRANTED.replace("api.refresh", "api.refesh");
    let mut s = Session::new(&[("roles.svc", &roles), ("api.svc", API)], &["roles.svc"]);
    let changed = s.quick_fix(
        "roles.svc",
        "svc::name::unknown_endpoint",
        "Change `refesh` to `refresh`",
    );
    assert_eq!(changed, ["roles.svc"]);
    assert_eq!(s.text("roles.svc"), ROLES_GRANTED);
    s.assert_clean(&["roles.svc"]);
    s.lsp.shutdown();
}

#[test]
fn quick_fix_guards_an_update_with_has_value() {
    let unguarded = API.replace(
        "    if has_value(token) {\n      update_secret TOKEN = token\n    }\n",
        "    update_secret TOKEN = token\n",
    );
    let mut s = Session::new(
        &[("roles.svc", ROLES_GRANTED), ("api.svc", &unguarded)],
        &["api.svc"],
    );
    let uri = s.uri("api.svc");
    let list = s.lsp.diagnostics_now(&uri);
    assert_eq!(codes(&list), ["svc::secret::unguarded_update"], "{list:#?}");
    assert_eq!(list[0]["severity"], 2);
    let changed = s.quick_fix(
        "api.svc",
        "svc::secret::unguarded_update",
        "Update only if `token` has a value",
    );
    assert_eq!(changed, ["api.svc"]);
    assert_eq!(s.text("api.svc"), API);
    s.assert_clean(&["api.svc"]);
    s.lsp.shutdown();
}

// 10. Symbols.

#[test]
fn document_and_workspace_symbols() {
    let mut s = Session::new(
        &[("roles.svc", ROLES_GRANTED), ("api.svc", API)],
        &["api.svc"],
    );
    let api = s.uri("api.svc");
    let roles = s.uri("roles.svc");
    let symbols = s.lsp.request(
        "textDocument/documentSymbol",
        json!({ "textDocument": { "uri": api } }),
    );
    let outline = |list: &Value| -> Vec<(String, u64)> {
        list.as_array()
            .expect("symbols")
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap().to_string(),
                    s["kind"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    // KEY = 20, MODULE = 2, VARIABLE = 13, FUNCTION = 12, METHOD = 6.
    assert_eq!(
        outline(&symbols),
        [
            ("TOKEN".into(), 20),
            ("OTHER".into(), 20),
            ("api".into(), 2)
        ]
    );
    let service = &symbols[2];
    assert_eq!(
        outline(&service["children"]),
        [
            ("token".into(), 13),
            ("refresh_token".into(), 12),
            ("refresh".into(), 6)
        ]
    );
    assert_eq!(
        service["selectionRange"],
        range_of(API, "service api", "api")
    );
    let service_start = API.find("service api").unwrap();
    assert_eq!(
        service["range"],
        range(API, service_start..API.trim_end().len(), true)
    );
    assert_eq!(
        service["children"][2]["selectionRange"],
        range_of(API, "endpoint refresh", "refresh")
    );

    let found = s
        .lsp
        .request("workspace/symbol", json!({ "query": "refr" }));
    let mut seen: Vec<(String, u64, String)> = found
        .as_array()
        .expect("symbols")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["kind"].as_u64().unwrap(),
                s["location"].to_string(),
            )
        })
        .collect();
    seen.sort();
    let at = |uri: &str, range: Value| json!({ "uri": uri, "range": range }).to_string();
    let mut wanted = vec![
        (
            "refresher".to_string(),
            5,
            at(
                &roles,
                range_of(ROLES_GRANTED, "role refresher", "refresher"),
            ),
        ),
        (
            "refresh".to_string(),
            6,
            at(&api, range_of(API, "endpoint refresh", "refresh")),
        ),
        (
            "refresh_token".to_string(),
            12,
            at(&api, range_of(API, "action refresh_token", "refresh_token")),
        ),
    ];
    wanted.sort();
    assert_eq!(seen, wanted);
    s.lsp.shutdown();
}

// 11. Never a crash.

fn examples() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut inputs = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "svc") {
                inputs.push(std::fs::read(path).unwrap());
            }
        }
    }
    inputs.sort();
    assert!(inputs.len() >= 5, "only {} examples", inputs.len());
    inputs
}

/// A position in the text (at any UTF-16 unit of a line, so also inside
/// a surrogate pair, or just past the line's end), or anywhere at all,
/// past the end of the text.
fn random_position(rng: &mut fastrand::Rng, text: &str) -> Value {
    let lines: Vec<&str> = text.split('\n').collect();
    if rng.bool() {
        let line = rng.usize(..lines.len());
        let width = lines[line].encode_utf16().count();
        json!({ "line": line, "character": rng.usize(..=width + 1) })
    } else {
        json!({ "line": rng.usize(..lines.len() + 3), "character": rng.u32(..130) })
    }
}

/// The byte offset of a position, clamped to the text: past the last line
/// is the end of the text, past the end of a line its end, inside a
/// surrogate pair the character after it.
fn clamped(text: &str, position: &Value) -> usize {
    let line = position["line"].as_u64().unwrap() as usize;
    let character = position["character"].as_u64().unwrap() as usize;
    let mut start = 0;
    for _ in 0..line {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => return text.len(),
        }
    }
    let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let mut counted = 0;
    for (i, c) in text[start..end].char_indices() {
        if counted >= character {
            return start + i;
        }
        counted += c.len_utf16();
    }
    end
}

/// Asks everything that reads a position; any answer but an internal
/// error (a panic the server caught) will do.
fn poke(lsp: &mut Lsp, uri: &str, text: &str, rng: &mut fastrand::Rng) {
    let document = json!({ "uri": uri });
    let at = random_position(rng, text);
    let other = random_position(rng, text);
    let requests = [
        (
            "textDocument/hover",
            json!({ "textDocument": document, "position": at }),
        ),
        (
            "textDocument/completion",
            json!({ "textDocument": document, "position": at }),
        ),
        (
            "textDocument/documentSymbol",
            json!({ "textDocument": document }),
        ),
        (
            "textDocument/definition",
            json!({ "textDocument": document, "position": at }),
        ),
        (
            "textDocument/references",
            json!({ "textDocument": document, "position": at,
                    "context": { "includeDeclaration": true } }),
        ),
        (
            "textDocument/prepareRename",
            json!({ "textDocument": document, "position": at }),
        ),
        (
            "textDocument/rename",
            json!({ "textDocument": document, "position": at, "newName": "renamed_x" }),
        ),
        (
            "textDocument/codeAction",
            json!({ "textDocument": document, "range": { "start": at, "end": other },
                    "context": { "diagnostics": [] } }),
        ),
        (
            "textDocument/codeAction",
            json!({ "textDocument": document,
                    "range": { "start": { "line": 0, "character": 0 },
                               "end": { "line": 100_000, "character": 0 } },
                    "context": { "diagnostics": [] } }),
        ),
        (
            "textDocument/formatting",
            json!({ "textDocument": document,
                    "options": { "tabSize": 2, "insertSpaces": true } }),
        ),
        ("workspace/symbol", json!({ "query": "a" })),
    ];
    for (method, params) in requests {
        if let Err(error) = lsp.request_raw(method, params.clone()) {
            assert_ne!(
                error["code"],
                -32603,
                "`{method}` failed inside the server: {error}\nparams: {params}\n\
                 text (the client's, maybe not the server's):\n{text}\nstderr:\n{}",
                lsp.stderr_so_far()
            );
        }
    }
}

#[test]
fn mutated_documents_never_crash_the_server() {
    let inputs = examples();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mutant.svc");
    let first = String::from_utf8(inputs[0].clone()).unwrap();
    std::fs::write(&path, &first).unwrap();
    let file = uri(&path);
    // A second file of the program, whose names the mutants use.
    std::fs::write(dir.path().join("other.svc"), ROLES_GRANTED).unwrap();
    let mut lsp = Lsp::on(dir.path());
    lsp.open(&file, &first);
    // SVC_LSP_FUZZ_SEED and SVC_LSP_FUZZ_ROUNDS try other mutants.
    let setting = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let mut rng = fastrand::Rng::with_seed(setting("SVC_LSP_FUZZ_SEED", 0x050c_2026));
    let rounds = setting("SVC_LSP_FUZZ_ROUNDS", 300) as i64;
    let mut text = first;
    // Wide characters too: the examples are ASCII.
    let wide = ["é", "😀", "\u{fffd}", "ß"];
    for round in 0..rounds {
        let input = &inputs[rng.usize(..inputs.len())];
        text = String::from_utf8_lossy(&mutate(&mut rng, input)).into_owned();
        for _ in 0..rng.usize(..3) {
            let mut at = rng.usize(..=text.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text.insert_str(at, wide[rng.usize(..wide.len())]);
        }
        lsp.replace(&file, round + 2, &text);
        if round % 5 == 4 {
            poke(&mut lsp, &file, &text, &mut rng);
        }
    }
    // Incremental changes with random ranges: past the end of lines and
    // of the text, backwards, inside a surrogate pair. The client's copy
    // follows, clamped as the server clamps, so positions stay near text.
    let pieces = [
        "", "x", "}", "{\n", "😀", "é", "\r\n", "secret.", "\"", "//",
    ];
    for round in 0..rounds / 5 {
        let start = random_position(&mut rng, &text);
        let end = random_position(&mut rng, &text);
        let piece = pieces[rng.usize(..pieces.len())];
        lsp.change(
            &file,
            rounds + 2 + round,
            json!({ "start": start, "end": end }),
            piece,
        );
        let (a, b) = (clamped(&text, &start), clamped(&text, &end));
        text.replace_range(a.min(b)..a.max(b), piece);
        if round % 10 == 9 {
            poke(&mut lsp, &file, &text, &mut rng);
        }
    }
    // Still answering, and whole again after a full text.
    let clean = String::from_utf8(inputs[0].clone()).unwrap();
    lsp.replace(&file, 2 * rounds + 2, &clean);
    let symbols = lsp.request(
        "textDocument/documentSymbol",
        json!({ "textDocument": { "uri": file } }),
    );
    assert!(
        !symbols.as_array().expect("symbols").is_empty(),
        "{symbols}"
    );
    lsp.shutdown();
}

/// Incremental changes are applied as the editor applies them: ranges in
/// UTF-16 units over lines with wide characters, several changes in one
/// notification, a character past the end of its line. The server's text
/// is seen through formatting, which keeps comments as written.
#[test]
fn incremental_changes_keep_the_servers_text_in_step() {
    let start = "// 😀 é a\n// b 😀😀 c\nsecret   A { environment_specific }\n// d é\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edits.svc");
    std::fs::write(&path, start).unwrap();
    let file = uri(&path);
    let mut lsp = Lsp::on(dir.path());
    lsp.open(&file, start);
    let mut text = start.to_string();
    let mut rng = fastrand::Rng::with_seed(7);
    let pieces = ["x", "😀", "é", "", "ab😀"];
    for round in 0..40 {
        let mut changes = Vec::new();
        for _ in 0..rng.usize(1..=3) {
            // A comment line (every line but the secret's), a range of whole
            // characters in it after the `//`.
            let lines: Vec<&str> = text.split('\n').collect();
            let comments: Vec<usize> = (0..lines.len())
                .filter(|&i| lines[i].starts_with("//"))
                .collect();
            let line = comments[rng.usize(..comments.len())];
            let line_start: usize = lines[..line].iter().map(|l| l.len() + 1).sum();
            let bounds: Vec<usize> = lines[line]
                .char_indices()
                .map(|(i, _)| i)
                .chain([lines[line].len()])
                .filter(|&i| i >= 2)
                .collect();
            let mut a = bounds[rng.usize(..bounds.len())];
            let mut b = bounds[rng.usize(..bounds.len())];
            if a > b {
                std::mem::swap(&mut a, &mut b);
            }
            let mut range = range(&text, line_start + a..line_start + b, true);
            if b == lines[line].len() && rng.bool() {
                // Past the end of the line: the line's end.
                range["end"]["character"] = json!(500);
            }
            let piece = pieces[rng.usize(..pieces.len())];
            text.replace_range(line_start + a..line_start + b, piece);
            changes.push(json!({ "range": range, "text": piece }));
        }
        lsp.notify(
            "textDocument/didChange",
            json!({
                "textDocument": { "uri": file, "version": round + 2 },
                "contentChanges": changes,
            }),
        );
    }
    let edits = lsp.request(
        "textDocument/formatting",
        json!({
            "textDocument": { "uri": file },
            "options": { "tabSize": 2, "insertSpaces": true },
        }),
    );
    let edits = edits.as_array().expect("edits");
    assert_eq!(edits.len(), 1, "{edits:?}");
    assert_eq!(edits[0]["newText"], svc_fmt(&text), "the text was:\n{text}");
    assert_eq!(apply_edits(&text, edits, true), svc_fmt(&text));
    lsp.shutdown();
}

/// `bytes` framed with their length.
fn framed(bytes: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", bytes.len()).into_bytes();
    out.extend_from_slice(bytes);
    out
}

/// Sends `bytes` and returns the error of the answer, which must be a
/// JSON-RPC 2.0 error with the id given.
fn refused(lsp: &mut Lsp, bytes: &[u8], id: Value) -> Value {
    lsp.send_raw(bytes);
    let answer = lsp.next_answer();
    assert_eq!(answer["jsonrpc"], "2.0", "{answer}");
    assert_eq!(answer["id"], id, "{answer}");
    assert!(answer.get("result").is_none(), "{answer}");
    answer["error"].clone()
}

/// The process's resident memory, in MiB.
fn resident_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in {status}"));
    kib / 1024
}

/// Input that is not a message is answered with a JSON-RPC error (id
/// null when there is none to find) and the session goes on, before the
/// handshake and after it.
#[test]
fn malformed_messages_are_answered_and_the_session_goes_on() {
    let mut lsp = Lsp::start(None, json!({}));
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let deep_params = format!(
        r#"{{"jsonrpc":"2.0","id":5,"method":"workspace/symbol","params":{{"query":{deep}}}}}"#
    );
    for (what, bytes, code, id) in [
        ("not JSON", framed(b"hello"), -32700, Value::Null),
        (
            "nested 200 deep",
            framed(deep.as_bytes()),
            -32700,
            Value::Null,
        ),
        (
            "a request nested 200 deep",
            framed(deep_params.as_bytes()),
            -32700,
            Value::Null,
        ),
        (
            "not UTF-8",
            framed(b"{\"a\": \"\xff\"}"),
            -32700,
            Value::Null,
        ),
        (
            "cut short",
            framed(b"{\"jsonrpc\": \"2.0\", "),
            -32700,
            Value::Null,
        ),
        (
            "JSON, not a message",
            framed(b"[1, 2]"),
            -32600,
            Value::Null,
        ),
        (
            "a request without a method",
            framed(br#"{"jsonrpc":"2.0","id":7}"#),
            -32600,
            json!(7),
        ),
        (
            "no Content-Length",
            b"Content-Type: application/vscode-jsonrpc\r\n\r\n".to_vec(),
            -32700,
            Value::Null,
        ),
        (
            "a Content-Length that is not a number",
            b"Content-Length: ten\r\n\r\n".to_vec(),
            -32700,
            Value::Null,
        ),
        (
            "a Content-Length beyond 64 bits",
            b"Content-Length: 99999999999999999999999\r\n\r\n".to_vec(),
            -32700,
            Value::Null,
        ),
        (
            "a header line that is no header",
            b"Content-Length 5\r\n\r\n".to_vec(),
            -32700,
            Value::Null,
        ),
    ] {
        let error = refused(&mut lsp, &bytes, id);
        assert_eq!(error["code"], code, "{what}: {error}");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{what}: {error}");
        // Still serving.
        let symbols = lsp.request("workspace/symbol", json!({ "query": "" }));
        assert!(symbols.is_array(), "{what}: {symbols}");
    }
    // A message without a length, its body, then a message with one: the
    // first is refused and the reader finds the next header after it.
    let mut bytes = b"Content-Type: application/vscode-jsonrpc\r\n\r\n".to_vec();
    bytes.extend_from_slice(br#"{"jsonrpc":"2.0","id":90,"method":"shutdown"}"#);
    bytes.extend_from_slice(&framed(
        br#"{"jsonrpc":"2.0","id":91,"method":"workspace/symbol","params":{"query":""}}"#,
    ));
    let error = refused(&mut lsp, &bytes, Value::Null);
    assert_eq!(error["code"], -32700, "{error}");
    let answer = lsp.next_answer();
    assert_eq!(answer["id"], 91, "{answer}");
    assert!(answer["result"].is_array(), "{answer}");
    // Nothing was told on standard error that the client sent.
    assert!(!lsp.stderr_so_far().contains("hello"));
    let stderr = lsp.shutdown();
    assert!(!stderr.contains("hello"), "{stderr}");

    // Before the handshake too, where an `initialize` with parameters
    // that are not its own is refused and a good one is still welcome.
    let mut lsp = Lsp::spawn();
    let error = refused(&mut lsp, &framed(b"hello"), Value::Null);
    assert_eq!(error["code"], -32700, "{error}");
    let bad =
        framed(br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":7}}"#);
    let error = refused(&mut lsp, &bad, json!(1));
    assert_eq!(error["code"], -32602, "{error}");
    lsp.initialize(None, json!({}), Value::Null);
    assert_eq!(lsp.init["serverInfo"]["name"], "svc");
    // After `shutdown`, a request is refused and `exit` still ends it well.
    assert_eq!(lsp.request("shutdown", Value::Null), Value::Null);
    let error = lsp
        .request_raw("workspace/symbol", json!({ "query": "" }))
        .unwrap_err();
    assert_eq!(error["code"], -32600, "{error}");
    lsp.notify("exit", Value::Null);
    let (status, stderr) = lsp.close_input();
    assert!(status.success(), "{status}; stderr:\n{stderr}");
}

/// A length far beyond the 64 MiB cap is refused at once and its bytes are
/// skipped as they come, never held: the memory stays small, and the end of
/// the input still ends the server cleanly.
#[test]
fn a_huge_content_length_is_refused_without_holding_its_bytes() {
    for length in ["1500000000", "99999999999999"] {
        let mut lsp = Lsp::start(None, json!({}));
        lsp.send_raw(format!("Content-Length: {length}\r\n\r\n").as_bytes());
        // 16 MiB of it.
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..16 {
            lsp.send_raw(&chunk);
        }
        let resident = resident_mib(lsp.pid());
        assert!(resident < 100, "{length}: {resident} MiB resident");
        let error = lsp.next_answer();
        assert_eq!(error["id"], Value::Null, "{error}");
        assert_eq!(error["error"]["code"], -32700, "{error}");
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("64 MiB"), "{message}");
        let (status, stderr) = lsp.close_input();
        assert!(status.success(), "{length}: {status}; stderr:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

// 12. A syntax error.

#[test]
fn a_syntax_error_is_reported_without_a_flood_in_other_files() {
    let mut s = Session::new(
        &[("roles.svc", ROLES_GRANTED), ("api.svc", API)],
        &["api.svc", "roles.svc"],
    );
    let api = s.uri("api.svc");
    let roles = s.uri("roles.svc");
    s.lsp.settle();
    // The closing brace of a secret is gone: api.svc does not parse.
    let broken = API.replacen(
        "secret OTHER { environment_specific }",
        "secret OTHER { environment_specific",
        1,
    );
    s.set("api.svc", &broken);
    let list = s.lsp.wait_diagnostics(&api, |l| !l.is_empty());
    assert_eq!(codes(&list), ["svc::syntax::unexpected"], "{list:#?}");
    assert_eq!(list[0]["severity"], 1);
    assert_eq!(list[0]["range"]["start"]["line"], 3, "{list:#?}");
    // The other file keeps seeing the secret and the endpoint declared
    // there: nothing published for it, or nothing in it.
    assert_eq!(s.lsp.diagnostics_now(&roles), Vec::<Value>::new());
    // An edit of the other file while api.svc is broken: its names still
    // resolve against what api.svc declared when it last parsed.
    let roles_more = ROLES_GRANTED.replace(
        "  grant update_secret TOKEN\n",
        "  grant update_secret TOKEN\n  grant read_secret OTHER\n  grant run api.*\n",
    );
    s.lsp.settle();
    s.set("roles.svc", &roles_more);
    let list = s.lsp.wait_diagnostics(&roles, |_| true);
    assert_eq!(list, Vec::<Value>::new());
    assert_eq!(
        codes(&s.lsp.diagnostics_now(&api)),
        ["svc::syntax::unexpected"]
    );
    // Fixed: clean again.
    s.set("api.svc", API);
    s.assert_clean(&["api.svc"]);
    s.lsp.shutdown();
}

// Files changed on disk.

#[test]
fn a_file_created_on_disk_joins_the_program() {
    let mut s = Session::new(
        &[("roles.svc", ROLES_GRANTED), ("api.svc", API)],
        &["api.svc"],
    );
    let path = s.dir.path().join("accounts.svc");
    let accounts = "service_account ops { roles nosuch }\n";
    std::fs::write(&path, accounts).unwrap();
    let created = uri(&path);
    s.lsp.notify(
        "workspace/didChangeWatchedFiles",
        json!({ "changes": [{ "uri": created, "type": 1 }] }),
    );
    let list = s.lsp.wait_diagnostics(&created, |l| !l.is_empty());
    assert_eq!(codes(&list), ["svc::name::unknown_role"], "{list:#?}");
    assert_eq!(
        list[0]["range"],
        range_of(accounts, "roles nosuch", "nosuch")
    );
    std::fs::write(&path, "service_account ops { roles refresher }\n").unwrap();
    s.lsp.notify(
        "workspace/didChangeWatchedFiles",
        json!({ "changes": [{ "uri": created, "type": 2 }] }),
    );
    s.lsp.wait_diagnostics(&created, |l| l.is_empty());
    s.lsp.shutdown();
}

/// A client that can watch files for the server is asked to watch the
/// `.svc` files; one that cannot is asked nothing.
#[test]
fn the_server_asks_a_client_that_can_to_watch_svc_files() {
    let registrations = |capabilities: Value| {
        let mut lsp = Lsp::start(None, capabilities);
        lsp.sync();
        let asked: Vec<Value> = lsp
            .pending()
            .iter()
            .filter(|m| m["method"] == "client/registerCapability")
            .map(|m| m["params"]["registrations"].clone())
            .collect();
        lsp.shutdown();
        asked
    };
    let asked = registrations(
        json!({ "workspace": { "didChangeWatchedFiles": { "dynamicRegistration": true } } }),
    );
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0][0]["method"], "workspace/didChangeWatchedFiles");
    assert_eq!(
        asked[0][0]["registerOptions"]["watchers"],
        json!([{ "globPattern": "**/*.svc" }])
    );
    assert_eq!(registrations(json!({})), Vec::<Value>::new());
}

// The `docs` option.

#[test]
fn the_docs_option_sets_where_codes_link() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("roles.svc"), ROLES).unwrap();
    std::fs::write(dir.path().join("api.svc"), API).unwrap();
    let mut lsp = Lsp::start_with_options(
        Some(dir.path()),
        json!({}),
        json!({ "docs": "http://127.0.0.1:8000/docs/language.md" }),
    );
    let api = uri(&dir.path().join("api.svc"));
    lsp.open(&api, API);
    let list = lsp.wait_diagnostics(&api, |l| !l.is_empty());
    assert_eq!(
        list[0]["codeDescription"]["href"],
        "http://127.0.0.1:8000/docs/language.md#svcpermissionmissing_update_grant"
    );
    lsp.shutdown();
}

// Bugs found while writing these tests: each test shows one.

/// Completion where the word before the cursor follows a character of
/// more than one byte (`é` in a description): the server fails to answer
/// (it slices the line inside the character).
#[test]
fn completion_after_a_wide_character_is_answered() {
    let text = "secret A { description \"é\" }\n// naïve\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wide.svc");
    std::fs::write(&path, text).unwrap();
    let file = uri(&path);
    let mut lsp = Lsp::on(dir.path());
    lsp.open(&file, text);
    // Just after `é`, and just after `ve` of `naïve`.
    for at in [
        find(text, "\"é\"", "é").end,
        find(text, "naïve", "naïve").end,
    ] {
        let answer = lsp.request_raw(
            "textDocument/completion",
            json!({ "textDocument": { "uri": file }, "position": position(text, at, true) }),
        );
        assert!(
            answer.is_ok(),
            "completion at byte {at}: {answer:?}\nstderr:\n{}",
            lsp.stderr_so_far()
        );
    }
    lsp.shutdown();
}

/// The text of an LSP range of `text` (UTF-16).
fn text_at<'t>(text: &'t str, range: &Value) -> &'t str {
    let start = lsp_client::offset(text, &range["start"], true);
    let end = lsp_client::offset(text, &range["end"], true);
    &text[start..end]
}

/// While api.svc does not parse, the program keeps what it declared when
/// it last did, at the offsets of that text. References leave those out;
/// definition must too (or find the name in the text as it is), not point
/// at whatever the old offsets land on now.
#[test]
fn definition_into_a_file_that_does_not_parse_is_never_a_wrong_place() {
    let mut s = Session::new(
        &[("roles.svc", ROLES_GRANTED), ("api.svc", API)],
        &["api.svc", "roles.svc"],
    );
    let api = s.uri("api.svc");
    // Three lines more at the top, and a brace gone: it does not parse.
    let broken = format!(
        "// one\n// two\n// three\n{}",
        API.replacen(
            "secret OTHER { environment_specific }",
            "secret OTHER { environment_specific",
            1
        )
    );
    s.set("api.svc", &broken);
    let list = s.lsp.diagnostics_now(&api);
    assert_eq!(codes(&list), ["svc::syntax::unexpected"], "{list:#?}");
    for (context, name) in [
        ("update_secret TOKEN", "TOKEN"),
        ("grant run api.refresh", "refresh"),
        ("grant run api.refresh", "api"),
    ] {
        let found = s.at(
            "textDocument/definition",
            "roles.svc",
            on(ROLES_GRANTED, context, name),
        );
        if found.is_null() {
            continue;
        }
        assert_eq!(found["uri"], api, "{found}");
        assert_eq!(
            text_at(&broken, &found["range"]),
            name,
            "definition of `{name}` points at {found}"
        );
    }
    s.lsp.shutdown();
}

/// A file that does not parse when the server starts (it never did)
/// declared names the other files use: `svc check` reports the syntax
/// error alone, and the server must not flood the other files with
/// unknown names either.
#[test]
fn a_file_that_never_parsed_does_not_flood_the_others_with_unknown_names() {
    let broken = API.replacen(
        "secret OTHER { environment_specific }",
        "secret OTHER { environment_specific",
        1,
    );
    let mut s = Session::new(
        &[("roles.svc", ROLES_GRANTED), ("api.svc", &broken)],
        &["roles.svc"],
    );
    let api = s.uri("api.svc");
    let roles = s.uri("roles.svc");
    assert_eq!(
        codes(&s.lsp.diagnostics_now(&api)),
        ["svc::syntax::unexpected"]
    );
    let list = s.lsp.diagnostics_now(&roles);
    let unknown: Vec<&str> = codes(&list)
        .into_iter()
        .filter(|c| c.starts_with("svc::name::unknown"))
        .collect();
    assert!(unknown.is_empty(), "{list:#?}");
    s.lsp.shutdown();
}

/// "Declare `secret ...`" in a file that starts with a byte-order mark and
/// declares no secret: the declaration must go after the mark (before it,
/// the mark is in the middle of the file, a syntax error).
#[test]
fn quick_fix_declares_a_secret_after_a_byte_order_mark() {
    let text = "\u{feff}service b {\n  action a {\n    log secret.NOPE\n  }\n\n  \
                endpoint e { methods GET process a }\n}\n";
    let mut s = Session::new(&[("b.svc", text)], &["b.svc"]);
    s.quick_fix(
        "b.svc",
        "svc::name::unknown_secret",
        "Declare `secret NOPE { environment_specific }`",
    );
    s.assert_clean(&["b.svc"]);
    s.lsp.shutdown();
}

/// The protocol counts `\r` alone as a line end, as `\n` and `\r\n`
/// (LSP 3.17, "Text Documents"); `svc check` too numbers lines after a
/// lone `\r` (`cr.svc:3:23`).
#[test]
fn a_lone_carriage_return_ends_a_line() {
    for (ending, name) in [("\r\n", "crlf.svc"), ("\r", "cr.svc")] {
        let text = [
            "secret A { environment_specific }",
            "role r {",
            "  grant update_secret B",
            "}",
            "",
        ]
        .join(ending);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, &text).unwrap();
        let file = uri(&path);
        let mut lsp = Lsp::start(None, json!({}));
        lsp.open(&file, &text);
        let list = lsp.wait_diagnostics(&file, |l| !l.is_empty());
        let unknown = list
            .iter()
            .find(|d| d["code"] == "svc::name::unknown_secret")
            .unwrap_or_else(|| panic!("{list:#?}"));
        assert_eq!(
            unknown["range"],
            json!({ "start": { "line": 2, "character": 22 }, "end": { "line": 2, "character": 23 } }),
            "line ends {ending:?}"
        );
        lsp.shutdown();
    }
}

/// `param.NAME` is a use of the parameter in the endpoint's `response`
/// and in a schedule's hooks, as in its action: references list it and a
/// rename changes it.
#[test]
fn param_uses_in_a_response_and_a_schedule_hook_are_references() {
    let text = "role caller { grant run api.page }
service_account bot { roles caller }

service api {
  action list {
    log param.since
  }

  endpoint page {
    methods GET
    params { since: duration = 1m }
    response { json { since = seconds(param.since) } }
    process list
  }
}

schedule s {
  endpoint api.page
  service_account bot
  every 1h
  on_failure {
    log param.since
  }
}
";
    let mut s = Session::new(&[("p.svc", text)], &["p.svc"]);
    let file = s.uri("p.svc");
    assert_eq!(s.lsp.diagnostics_now(&file), Vec::<Value>::new());
    let found = s.lsp.request(
        "textDocument/references",
        json!({
            "textDocument": { "uri": file },
            "position": on(text, "since: duration", "since"),
            "context": { "includeDeclaration": true },
        }),
    );
    let lines: BTreeSet<u64> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["range"]["start"]["line"].as_u64().unwrap())
        .collect();
    // The action's use, the declaration, the response's, the hook's.
    assert_eq!(lines, BTreeSet::from([5, 10, 11, 21]), "{found:#}");
    let edit = s.lsp.request(
        "textDocument/rename",
        json!({
            "textDocument": { "uri": file },
            "position": on(text, "since: duration", "since"),
            "newName": "after",
        }),
    );
    apply_workspace_edit(&mut s.texts, &edit, true);
    s.lsp.settle();
    let renamed = s.text("p.svc");
    s.set("p.svc", &renamed);
    s.assert_clean(&["p.svc"]);
    s.lsp.shutdown();
}

/// A schedule's hooks run in the service of its endpoint and may read its
/// variables: such a read is a reference, and a rename changes it.
#[test]
fn variable_uses_in_a_schedule_hook_are_references() {
    let text = "role caller { grant run api.page }
service_account bot { roles caller }

service api {
  var note: string

  action list {
    update service_variables { note = \"x\" }
    log note
  }

  endpoint page {
    methods GET
    process list
  }
}

schedule s {
  endpoint api.page
  service_account bot
  every 1h
  on_failure {
    log note
  }
}
";
    let mut s = Session::new(&[("v.svc", text)], &["v.svc"]);
    let file = s.uri("v.svc");
    assert_eq!(s.lsp.diagnostics_now(&file), Vec::<Value>::new());
    let found = s.lsp.request(
        "textDocument/references",
        json!({
            "textDocument": { "uri": file },
            "position": on(text, "var note", "note"),
            "context": { "includeDeclaration": true },
        }),
    );
    assert_eq!(found.as_array().unwrap().len(), 4, "{found:#}");
    let edit = s.lsp.request(
        "textDocument/rename",
        json!({
            "textDocument": { "uri": file },
            "position": on(text, "var note", "note"),
            "newName": "memo",
        }),
    );
    apply_workspace_edit(&mut s.texts, &edit, true);
    s.lsp.settle();
    let renamed = s.text("v.svc");
    s.set("v.svc", &renamed);
    s.assert_clean(&["v.svc"]);
    s.lsp.shutdown();
}

/// With `program = "config"` in svc.toml the program is the files under
/// config/ (docs/tooling.md: "A workspace folder is one program, as
/// `svc check DIR` loads it, or as the `program` of the folder's svc.toml
/// names it"). A file elsewhere in the folder, opened, is not part of it:
/// an old copy of a declaration there is no duplicate.
#[test]
fn a_file_outside_the_projects_program_is_not_merged_into_it() {
    let old_copy = API.replace("secret OTHER { environment_specific }\n", "");
    let mut s = Session::new(
        &[
            ("svc.toml", "program = \"config\"\n"),
            ("config/roles.svc", ROLES_GRANTED),
            ("config/api.svc", API),
            ("scratch/old.svc", &old_copy),
        ],
        &["config/api.svc"],
    );
    let api = s.uri("config/api.svc");
    assert_eq!(s.lsp.diagnostics_now(&api), Vec::<Value>::new());
    let scratch = s.uri("scratch/old.svc");
    s.lsp.open(&scratch, &old_copy);
    let list = s.lsp.diagnostics_now(&scratch);
    assert!(!codes(&list).contains(&"svc::name::duplicate"), "{list:#?}");
    assert_eq!(s.lsp.diagnostics_now(&api), Vec::<Value>::new());
    s.lsp.shutdown();
}

/// Hover on what is not a declared name: a keyword, a function, a
/// duration, and a schedule's timing with its next runs.
#[test]
fn hover_explains_keywords_functions_durations_and_timings() {
    let schedules = "schedule hourly {\n  endpoint api.refresh\n  service_account bot\n  cron \"0 * * * *\"\n}\n\
                     schedule often {\n  endpoint api.refresh\n  service_account bot\n  every 10m\n}\n\
                     service waiter {\n  action pause { sleep 1500ms }\n  endpoint wait { methods GET process pause }\n}\n";
    let mut s = Session::new(
        &[
            ("roles.svc", ROLES_GRANTED),
            ("api.svc", API),
            ("schedules.svc", schedules),
        ],
        &[],
    );
    let hover = |s: &mut Session, name: &str, text: &str, context: &str, target: &str| {
        let found = s.at("textDocument/hover", name, on(text, context, target));
        found["contents"]["value"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let keyword = hover(&mut s, "api.svc", API, "web_request {", "web_request");
    assert!(keyword.starts_with("**`web_request`**: "), "{keyword}");
    let function = hover(&mut s, "api.svc", API, "if has_value(token)", "has_value");
    assert!(
        function.contains("has_value(") && function.contains("-> bool"),
        "{function}"
    );
    let duration = hover(&mut s, "schedules.svc", schedules, "sleep 1500ms", "1500ms");
    assert!(duration.contains("1500 milliseconds"), "{duration}");
    // The next runs: three, an hour apart on the hour, and ten minutes apart.
    let runs = |text: &str| -> Vec<chrono::NaiveDateTime> {
        text.lines()
            .filter_map(|l| l.strip_prefix("- "))
            .map(|t| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").unwrap())
            .collect()
    };
    let cron = hover(
        &mut s,
        "schedules.svc",
        schedules,
        "cron \"0 * * * *\"",
        "0 * * * *",
    );
    let times = runs(&cron);
    assert_eq!(times.len(), 3, "{cron}");
    assert!(
        times
            .iter()
            .all(|t| t.format("%M:%S").to_string() == "00:00"),
        "{cron}"
    );
    assert_eq!((times[1] - times[0]).num_minutes(), 60, "{cron}");
    let every = hover(&mut s, "schedules.svc", schedules, "every 10m", "10m");
    let times = runs(&every);
    assert_eq!(times.len(), 3, "{every}");
    assert_eq!((times[2] - times[1]).num_minutes(), 10, "{every}");
    s.lsp.shutdown();
}

/// Snippets where their block may be written: a schedule at the top level,
/// a web request and a guarded update among statements, with the
/// statement keywords and the service's variables, and no top-level
/// keyword inside an action.
#[test]
fn completion_offers_snippets_and_keywords_of_the_block() {
    let mut s = Session::new(
        &[("roles.svc", ROLES_GRANTED), ("api.svc", API)],
        &["api.svc"],
    );
    let labels = |s: &mut Session, text: &str, offset: usize| -> Vec<(String, u64)> {
        let at = position(text, offset, true);
        let found = s.at("textDocument/completion", "api.svc", at);
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["label"].as_str().unwrap().to_string(),
                    i["kind"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    const SNIPPET: u64 = 15;
    const KEYWORD: u64 = 14;
    const VARIABLE: u64 = 6;
    let text = format!("{API}\nsch");
    s.set("api.svc", &text);
    let top = labels(&mut s, &text, text.len());
    assert!(top.contains(&("schedule".to_string(), SNIPPET)), "{top:?}");
    assert!(top.contains(&("role".to_string(), KEYWORD)), "{top:?}");
    let text = API.replace(
        "    if has_value(token) {",
        "    \n    if has_value(token) {",
    );
    s.set("api.svc", &text);
    let inside = labels(&mut s, &text, text.find("    \n").unwrap() + 4);
    for wanted in [
        ("web_request", SNIPPET),
        ("if has_value", SNIPPET),
        ("update_secret", KEYWORD),
        ("token", VARIABLE),
    ] {
        assert!(
            inside.contains(&(wanted.0.to_string(), wanted.1)),
            "{wanted:?} in {inside:?}"
        );
    }
    assert!(
        !inside.iter().any(|(l, _)| l == "role" || l == "schedule"),
        "{inside:?}"
    );
    // `else` continues an `if`: offered after its `}`, not at a line's start.
    assert!(!inside.iter().any(|(l, _)| l == "else"), "{inside:?}");
    let text = API.replace(
        "      update_secret TOKEN = token\n    }",
        "      update_secret TOKEN = token\n    } el",
    );
    s.set("api.svc", &text);
    let after = labels(&mut s, &text, text.find("} el").unwrap() + 4);
    assert!(after.contains(&("else".to_string(), KEYWORD)), "{after:?}");
    assert!(
        !after.iter().any(|(l, _)| l == "update_secret"),
        "{after:?}"
    );
    s.lsp.shutdown();
}

#[test]
fn hover_counts_updates_made_through_run_service() {
    const CHAIN: &str = r#"secret TOKEN { environment_specific }
role refresher {
  grant run api.refresh
  grant run api.nightly
  grant update_secret TOKEN
}
service_account bot { roles refresher }
service api {
  action fetch { update_secret TOKEN = "t" }
  action both { run_service api.refresh }
  endpoint refresh { methods POST process fetch }
  endpoint nightly { methods POST process both }
}
"#;
    let mut s = Session::new(&[("chain.svc", CHAIN)], &["chain.svc"]);
    let hover = s.at(
        "textDocument/hover",
        "chain.svc",
        on(CHAIN, "TOKEN = \"t\"", "TOKEN"),
    );
    let text = hover["contents"]["value"].as_str().unwrap();
    // `api.nightly` updates it only through `run_service api.refresh`.
    assert!(
        text.contains("updated by: `api.nightly`, `api.refresh`"),
        "{text}"
    );
    s.lsp.shutdown();
}

#[test]
fn a_fix_that_several_diagnostics_need_is_offered_once() {
    // `bot` runs two endpoints that update TOKEN and may update neither:
    // two diagnostics, one grant to add.
    const TWICE: &str = r#"secret TOKEN { environment_specific }
role refresher {
  grant run api.a
  grant run api.b
}
service_account bot { roles refresher }
service api {
  action one { update_secret TOKEN = "1" }
  action two { update_secret TOKEN = "2" }
  endpoint a { methods POST process one }
  endpoint b { methods POST process two }
}
"#;
    let mut s = Session::new(&[("twice.svc", TWICE)], &["twice.svc"]);
    let uri = s.uri("twice.svc");
    let diagnostics = s.lsp.diagnostics_now(&uri);
    let grants: Vec<&Value> = diagnostics
        .iter()
        .filter(|d| d["code"] == MISSING_UPDATE_GRANT)
        .collect();
    assert_eq!(grants.len(), 2, "{diagnostics:#?}");
    let actions = s.lsp.request(
        "textDocument/codeAction",
        json!({
            "textDocument": { "uri": uri },
            "range": { "start": { "line": 0, "character": 0 }, "end": { "line": 12, "character": 0 } },
            "context": { "diagnostics": diagnostics },
        }),
    );
    let offered: Vec<&Value> = actions
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["title"] == "Add `grant update_secret TOKEN` to role `refresher`")
        .collect();
    assert_eq!(offered.len(), 1, "{actions:#}");
    assert_eq!(
        offered[0]["diagnostics"].as_array().unwrap().len(),
        2,
        "{actions:#}"
    );
    s.lsp.shutdown();
}

/// A service whose action is processed by an endpoint with parameters,
/// beside an endpoint whose parameters the action never sees.
const VALUES: &str = r#"secret TOKEN { environment_specific }
secret OTHER { environment_specific }

service api {
  var token: string
  var expires: number

  action refresh_token {
    web_request {
      method POST
      url "https://127.0.0.1:9/oauth/token"
      form { grant_type = "client_credentials" client_secret = secret.OTHER }
      headers { "X-Audience" = param.audience }
      result_mapping { token = $.access_token }
    }
    update service_variables { expires = 3600 }
    if has_value(token) {
      update_secret TOKEN { value = token }
    }
  }

  action other {
    log "expires in ${expires}"
  }

  endpoint refresh {
    methods POST
    process refresh_token
    params { audience: string? }
  }

  endpoint elsewhere {
    methods POST
    process other
    params { unrelated: string? }
  }
}
"#;

/// Where a value goes, completion offers what a value may be: the
/// service's variables, the parameters of the endpoint that processes the
/// action, every function of the checker's table, and `secret.NAME`; not
/// the keywords `description` and `as` that it offered before. One case per
/// place: a form field, a header, `update service_variables` and the
/// `value` of `update_secret NAME { ... }`, each with the value erased as
/// the user is about to type it (the file does not parse then).
#[test]
fn completion_where_a_value_goes_offers_names_functions_and_secrets() {
    let mut s = Session::new(
        &[("roles.svc", ROLES_GRANTED), ("api.svc", VALUES)],
        &["api.svc"],
    );
    s.assert_clean(&[]);
    let cases = [
        (
            "form",
            "grant_type = \"client_credentials\"",
            "\"client_credentials\"",
        ),
        (
            "headers",
            "\"X-Audience\" = param.audience",
            "param.audience",
        ),
        ("update service_variables", "expires = 3600", "3600"),
        ("update_secret", "{ value = token }", "token"),
    ];
    let mut functions: Vec<&str> = svc::check::functions::Function::names().collect();
    functions.sort();
    assert!(functions.contains(&"has_value"), "{functions:?}");
    for (place, context, value) in cases {
        let erased = find(VALUES, context, value);
        let text = format!("{}{}", &VALUES[..erased.start], &VALUES[erased.end..]);
        s.set("api.svc", &text);
        let at = position(&text, erased.start, true);
        let answer = s.at("textDocument/completion", "api.svc", at);
        let items = answer.as_array().expect("a list of completion items");
        let labels: BTreeSet<&str> = items.iter().filter_map(|i| i["label"].as_str()).collect();
        let kind = |label: &str| {
            items
                .iter()
                .find(|i| i["label"] == label)
                .and_then(|i| i["kind"].as_u64())
        };
        for wanted in [
            "token",
            "expires",
            "param.audience",
            "param.",
            "secret.",
            "secret.TOKEN",
            "secret.OTHER",
        ] {
            assert!(
                labels.contains(wanted),
                "{place}: no `{wanted}` in {labels:?}"
            );
        }
        for function in &functions {
            assert!(
                labels.contains(function),
                "{place}: no `{function}()` in {labels:?}"
            );
            assert_eq!(
                kind(function),
                Some(3),
                "{place}: `{function}` is a function"
            );
        }
        assert_eq!(kind("token"), Some(6), "{place}: `token` is a variable");
        for unwanted in ["description", "as", "param.unrelated", "update_secret"] {
            assert!(
                !labels.contains(unwanted),
                "{place}: `{unwanted}` offered in {labels:?}"
            );
        }
    }
    // After `=` in a result mapping a JSONPath goes, not a value; in an
    // OAuth client's `stores` a secret's name.
    let text = VALUES.replace("token = $.access_token", "token = ");
    s.set("api.svc", &text);
    let at = position(
        &text,
        text.find("token = ").unwrap() + "token = ".len(),
        true,
    );
    let answer = s.at("textDocument/completion", "api.svc", at);
    let labels: Vec<&str> = answer
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["label"].as_str())
        .collect();
    assert!(!labels.contains(&"secret.TOKEN"), "{labels:?}");
    let client = "oauth_client idp {\n  token_url \"https://127.0.0.1:9/token\"\n  client_id \"svc\"\n  stores { refresh_token = ";
    let text = format!("{VALUES}\n{client}");
    s.set("api.svc", &text);
    let answer = s.at(
        "textDocument/completion",
        "api.svc",
        position(&text, text.len(), true),
    );
    let labels: BTreeSet<&str> = answer
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["label"].as_str())
        .collect();
    assert_eq!(labels, BTreeSet::from(["TOKEN", "OTHER"]));
    // `grant read_status ` in a role names an oauth_client.
    let declared = format!(
        "{VALUES}\noauth_client idp {{\n  token_url \"https://127.0.0.1:9/token\"\n  client_id \"svc\"\n  client_auth none\n}}\n"
    );
    s.set("api.svc", &declared);
    // Parsed (before a request is answered) while it parses.
    s.lsp.sync();
    let typed = format!("{declared}role watcher {{\n  grant read_status ");
    let text = format!("{typed}\n}}\n");
    s.set("api.svc", &text);
    let answer = s.at(
        "textDocument/completion",
        "api.svc",
        position(&text, typed.len(), true),
    );
    let labels: BTreeSet<&str> = answer
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["label"].as_str())
        .collect();
    assert_eq!(labels, BTreeSet::from(["idp"]));
    s.lsp.shutdown();
}
