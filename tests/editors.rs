//! The TextMate grammar under editors/, tokenizing every example with
//! vscode-textmate and Oniguruma, the engine VS Code uses.

mod common;
#[path = "common/nvim.rs"]
mod nvim;

#[test]
fn the_textmate_grammar_tokenizes_the_examples() {
    let root = common::root();
    assert!(
        root.join("editors/test/node_modules").exists(),
        "the grammar test is not installed: run `npm ci --prefix editors/test` (scripts/test.sh does)"
    );
    let output = std::process::Command::new("node")
        .arg(root.join("editors/test/tokenize.test.js"))
        .current_dir(&root)
        .output()
        .expect("node is installed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("checks passed"), "{stdout}");
}

/// The VS Code extension: the grammar as before, and a language client that
/// starts `svc lsp`.
#[test]
fn the_vscode_extension_starts_the_language_server() {
    let root = common::root();
    let dir = root.join("editors/vscode");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("package.json")).expect("editors/vscode/package.json"),
    )
    .expect("editors/vscode/package.json is JSON");

    assert_eq!(manifest["main"], "./extension.js");
    assert!(
        dir.join("extension.js").is_file(),
        "editors/vscode/extension.js is missing"
    );
    let activation = manifest["activationEvents"]
        .as_array()
        .expect("activationEvents");
    assert!(
        activation.iter().any(|event| event == "onLanguage:svc"),
        "activationEvents: {activation:?}"
    );

    // The highlighting contribution is unchanged.
    let contributes = &manifest["contributes"];
    let languages = contributes["languages"]
        .as_array()
        .expect("contributes.languages");
    assert!(
        languages.iter().any(|language| language["id"] == "svc"
            && language["extensions"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e == ".svc"))),
        "no language svc for .svc files: {languages:?}"
    );
    let grammars = contributes["grammars"]
        .as_array()
        .expect("contributes.grammars");
    assert!(
        grammars.iter().any(|grammar| grammar["language"] == "svc"
            && grammar["scopeName"] == "source.svc"
            && grammar["path"] == "./syntaxes/svc.tmLanguage.json"),
        "the grammar contribution changed: {grammars:?}"
    );
    assert!(dir.join("syntaxes/svc.tmLanguage.json").is_file());

    // vscode-languageclient 9, and the VS Code it needs.
    let client = manifest["dependencies"]["vscode-languageclient"]
        .as_str()
        .expect("dependencies.vscode-languageclient");
    assert!(
        client.trim_start_matches(['^', '~']).starts_with("9."),
        "vscode-languageclient {client}, not 9"
    );
    assert_eq!(manifest["engines"]["vscode"], "^1.82.0");

    // The settings and the command.
    let settings = &contributes["configuration"]["properties"];
    assert_eq!(settings["svc.path"]["default"], "svc");
    assert_eq!(settings["svc.lsp.enable"]["default"], true);
    let commands = contributes["commands"]
        .as_array()
        .expect("contributes.commands");
    assert!(
        commands
            .iter()
            .any(|command| command["command"] == "svc.restartServer"),
        "commands: {commands:?}"
    );

    // The client: what it runs, and what it reads. Quotes are compared as one.
    let source = std::fs::read_to_string(dir.join("extension.js"))
        .expect("extension.js")
        .replace('"', "'");
    for wanted in [
        "require('vscode-languageclient/node')",
        "['lsp']",
        "getConfiguration('svc')",
        ".get('path')",
        "'lsp.enable'",
        "createFileSystemWatcher('**/*.svc')",
        "fileEvents",
        "registerCommand('svc.restartServer'",
    ] {
        assert!(
            source.contains(wanted),
            "extension.js does not contain {wanted}"
        );
    }
    // TransportKind.stdio would add `--stdio` to the arguments, which
    // `svc lsp` does not take.
    assert!(
        !source.contains("TransportKind.stdio"),
        "extension.js passes TransportKind.stdio: the server would get `lsp --stdio`"
    );

    let output = std::process::Command::new("node")
        .arg("--check")
        .arg(dir.join("extension.js"))
        .output()
        .expect("node is installed");
    assert!(
        output.status.success(),
        "extension.js does not parse: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// docs/tooling.md says how to run `svc lsp` in Neovim and Helix.
#[test]
fn the_tooling_doc_sets_up_the_language_server() {
    let root = common::root();
    let doc = std::fs::read_to_string(root.join("docs/tooling.md")).expect("docs/tooling.md");
    for wanted in [
        "### The language server: `svc lsp`",
        "vim.lsp.config('svc'",
        "cmd = { 'svc', 'lsp' }",
        "vim.lsp.enable('svc')",
        "vim.filetype.add({ extension = { svc = 'svc' } })",
        "[language-server.svc]",
        "args = [\"lsp\"]",
        "language-servers = [\"svc\"]",
    ] {
        assert!(
            doc.contains(wanted),
            "docs/tooling.md does not contain {wanted}"
        );
    }
    // editors/README.md links to that section.
    let readme =
        std::fs::read_to_string(root.join("editors/README.md")).expect("editors/README.md");
    assert!(
        readme.contains("tooling.md#the-language-server-svc-lsp"),
        "editors/README.md does not link to the language server section"
    );
}

/// The ```lua blocks of docs/tooling.md, each with the first line of the
/// paragraph before it (where the doc says which Neovim it is for).
fn lua_setups() -> Vec<(String, String)> {
    let doc = std::fs::read_to_string(common::root().join("docs/tooling.md")).unwrap();
    let mut blocks = Vec::new();
    let mut heading = String::new();
    let mut previous = "";
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        if previous.is_empty() && !line.is_empty() && !line.starts_with("```") {
            heading = line.to_string();
        }
        previous = line;
        if line == "```lua" {
            let code: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
            blocks.push((heading.clone(), code.join("\n")));
        }
    }
    blocks
}

/// Every Lua setup of docs/tooling.md compiles (Neovim's LuaJIT, which
/// 0.11 still uses, reads it); the one for 0.7 is run below.
#[test]
fn the_neovim_setups_in_the_tooling_doc_are_lua() {
    let setups = lua_setups();
    let headings: Vec<&str> = setups.iter().map(|(h, _)| h.as_str()).collect();
    for version in [
        "*Neovim 0.11 or later*",
        "*Neovim 0.8 to 0.10*",
        "*Neovim 0.7*",
    ] {
        assert!(
            headings.iter().any(|h| h.starts_with(version)),
            "no Lua setup under {version} in docs/tooling.md: {headings:?}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let mut checks = String::new();
    for (index, (_, code)) in setups.iter().enumerate() {
        let path = dir.path().join(format!("setup{index}.lua"));
        std::fs::write(&path, code).unwrap();
        checks.push_str(&format!(
            "local f, err = loadfile('{}')\ntable.insert(out, f and 'ok' or err)\n",
            path.display()
        ));
    }
    let init = format!(
        "local out = {{}}\n{checks}vim.fn.writefile(out, vim.env.SVC_NVIM_RESULT)\nvim.cmd('qall!')\n"
    );
    let results = nvim::run(&init, dir.path(), "", None);
    assert_eq!(results.len(), setups.len(), "{results:?}");
    for ((heading, code), result) in setups.iter().zip(&results) {
        assert_eq!(result, "ok", "{heading}\n{code}");
    }
}

/// The setup of docs/tooling.md for the Neovim installed, run as written
/// with the `svc` built here on `PATH` (in CI Debian 12's Neovim 0.7.2, and
/// so the setup for 0.7): opening a file below the workspace folder sets
/// the file type, starts `svc lsp` on the folder found upward (`svc.toml`,
/// else `.git`), and a diagnostic that needs the other file of the folder
/// arrives.
#[test]
fn neovim_runs_svc_lsp_with_the_documented_setup_for_its_version() {
    let version = nvim::version();
    let minor: u32 = version
        .strip_prefix("NVIM v0.")
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("unexpected `nvim --version`: {version}"));
    let wanted = match minor {
        ..=6 => panic!("the docs start at Neovim 0.7, found {version}"),
        7 => "*Neovim 0.7*",
        8..=10 => "*Neovim 0.8 to 0.10*",
        _ => "*Neovim 0.11 or later*",
    };
    let (_, setup) = lua_setups()
        .into_iter()
        .find(|(heading, _)| heading.starts_with(wanted))
        .unwrap_or_else(|| panic!("no setup under {wanted} in docs/tooling.md"));
    // Waits for the diagnostics (a poll of Neovim's own loop, which is
    // where the client reads the server), then writes what it found.
    let report = r#"
vim.api.nvim_create_autocmd('VimEnter', {
  callback = function()
    local buf = vim.api.nvim_get_current_buf()
    local arrived = vim.wait(30000, function()
      return #vim.diagnostic.get(buf) > 0
    end, 10)
    local lines = { 'filetype=' .. vim.bo[buf].filetype, 'arrived=' .. tostring(arrived) }
    local clients = vim.lsp.get_clients and vim.lsp.get_clients({ bufnr = buf })
      or vim.lsp.buf_get_clients(buf)
    for _, client in pairs(clients) do
      table.insert(lines, 'client=' .. client.name .. ' root=' .. tostring(client.config.root_dir))
    end
    for _, d in ipairs(vim.diagnostic.get(buf)) do
      table.insert(lines, 'diagnostic=' .. tostring(d.code))
    end
    vim.fn.writefile(lines, vim.env.SVC_NVIM_RESULT)
    vim.cmd('qall!')
  end,
})
"#;
    let init = format!("{setup}\n{report}");
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_svc"))
        .parent()
        .unwrap();
    let roles =
        "role refresher {\n  grant run api.refresh\n}\n\nservice_account bot { roles refresher }\n";
    let api = r#"secret TOKEN { environment_specific }

service api {
  var token: string

  action refresh_token {
    web_request {
      method POST
      url "https://127.0.0.1:9/oauth/token"
      form { grant_type = "client_credentials" }
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
    for marker in ["svc.toml", ".git"] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        if marker == ".git" {
            std::fs::create_dir(root.join(".git")).unwrap();
        } else {
            std::fs::write(root.join(marker), "").unwrap();
        }
        std::fs::create_dir(root.join("services")).unwrap();
        std::fs::write(root.join("roles.svc"), roles).unwrap();
        std::fs::write(root.join("services/api.svc"), api).unwrap();
        let found = nvim::run(&init, &root.join("services"), "api.svc", Some(bin));
        let expected = [
            "filetype=svc".to_string(),
            "arrived=true".to_string(),
            format!("client=svc root={}", root.display()),
            "diagnostic=svc::permission::missing_update_grant".to_string(),
        ];
        assert_eq!(found, expected, "{version}, with {marker} at the root");
    }
}
