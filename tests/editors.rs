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
