//! The TextMate grammar under editors/, tokenizing every example with
//! vscode-textmate and Oniguruma, the engine VS Code uses.

mod common;

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
