//! Every command line the docs show runs: each `svc ...` command in the
//! shell code blocks of README.md and docs/*.md, and in the examples of
//! every `--help`, parses with the real command line (clap's
//! `try_parse_from` on `svc::commands::cli::Cli`), and every repository path such a
//! line names exists.
//!
//! A line is read as a shell would split it, roughly: `# comments` are
//! stripped, `$ ` prompts dropped, continuation lines joined; it is split
//! on `&&`, `||`, `|`, `;` and `$( )`; redirections and `VAR=value`
//! prefixes are dropped; a shell variable becomes a placeholder. Synopsis
//! lines (with `[`, `<` or `...`) are not commands, and are skipped.

mod common;

use std::path::Path;

use clap::Parser;

/// What stands in for `$VAR`: a word every argument of svc accepts where
/// a variable stands (a name, a number, the port of an address).
const PLACEHOLDER: &str = "1";

/// A command line and where it was found, for messages.
struct Line {
    at: String,
    text: String,
}

/// The lines of the fenced shell blocks of a Markdown text: those whose
/// info string is empty, `sh`, `bash`, `shell` or `console`.
fn shell_lines(name: &str, markdown: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut inside: Option<bool> = None;
    let mut pending: Option<(usize, String)> = None;
    for (index, line) in markdown.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(info) = trimmed.strip_prefix("```") {
            inside = match inside {
                None => Some(matches!(
                    info.trim(),
                    "" | "sh" | "bash" | "shell" | "console"
                )),
                Some(_) => None,
            };
            continue;
        }
        if inside != Some(true) {
            continue;
        }
        let (start, mut text) = match pending.take() {
            Some((start, before)) => (start, format!("{before} {trimmed}")),
            None => (index + 1, trimmed.to_string()),
        };
        if let Some(rest) = text.strip_suffix('\\') {
            pending = Some((start, rest.trim_end().to_string()));
            continue;
        }
        if let Some(rest) = text.strip_prefix("$ ") {
            text = rest.to_string();
        }
        lines.push(Line {
            at: format!("{name}:{start}"),
            text,
        });
    }
    lines
}

/// The example lines of a `--help` text: those after an `Example:`,
/// `Examples:` or `Example (...):` label.
fn help_examples(command: &clap::Command, path: &str, lines: &mut Vec<Line>) {
    let texts = [command.get_after_help(), command.get_after_long_help()];
    for text in texts.into_iter().flatten() {
        let text = text.to_string();
        let Some(at) = text.find("Example") else {
            continue;
        };
        let examples = &text[at..];
        let (_, after_label) = examples.split_once(':').unwrap_or(("", examples));
        for line in after_label.lines() {
            let line = line.trim();
            if !line.is_empty() {
                lines.push(Line {
                    at: format!("`{path} --help`"),
                    text: line.to_string(),
                });
            }
        }
    }
    for sub in command.get_subcommands() {
        help_examples(sub, &format!("{path} {}", sub.get_name()), lines);
    }
}

/// The line without its `# comment` (a `#` that starts a word, outside quotes).
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if previous.is_whitespace() => return line[..i].trim_end(),
            _ => {}
        }
        previous = c;
    }
    line
}

/// The commands of a line: split on `&&`, `||`, `|`, `;`, `&`, and each
/// `$( ... )` taken out as a command of its own (a placeholder where it was).
fn commands(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut outer = String::new();
    let mut rest = line;
    while let Some(start) = rest.find("$(") {
        outer.push_str(&rest[..start]);
        let inner = &rest[start + 2..];
        let end = inner.find(')').unwrap_or(inner.len());
        found.extend(commands(&inner[..end]));
        outer.push_str(PLACEHOLDER);
        rest = inner.get(end + 1..).unwrap_or("");
    }
    outer.push_str(rest);
    let mut current = String::new();
    let mut quote = None;
    let chars: Vec<char> = outer.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match (quote, c) {
            (None, '\'' | '"') => {
                quote = Some(c);
                current.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                current.push(c);
            }
            (None, '|' | ';' | '&') => {
                // `2>&1` is a redirection, not a separator.
                if c == '&' && current.ends_with('>') {
                    current.push(c);
                } else {
                    found.push(std::mem::take(&mut current));
                    while i + 1 < chars.len() && matches!(chars[i + 1], '|' | '&') {
                        i += 1;
                    }
                }
            }
            _ => current.push(c),
        }
        i += 1;
    }
    found.push(current);
    found
        .into_iter()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect()
}

/// A command's words, as the shell would pass them: quotes removed,
/// variables replaced, redirections and leading `VAR=value` dropped.
fn words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut started = false;
    let mut quote = None;
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '\'' | '"') => {
                quote = Some(c);
                started = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            (q, '$') if q != Some('\'') => {
                // `$NAME` or `${NAME}`: a placeholder.
                if chars.peek() == Some(&'{') {
                    for c in chars.by_ref() {
                        if c == '}' {
                            break;
                        }
                    }
                } else {
                    while chars
                        .peek()
                        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
                    {
                        chars.next();
                    }
                }
                word.push_str(PLACEHOLDER);
                started = true;
            }
            _ => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    // Redirections: `> file`, `2> file`, `>file`, `2>&1`.
    let mut kept = Vec::new();
    let mut skip_next = false;
    for word in words {
        if skip_next {
            skip_next = false;
            continue;
        }
        let bare = word.trim_start_matches(|c: char| c.is_ascii_digit());
        if bare.starts_with('>') {
            skip_next = bare.trim_start_matches('>').is_empty();
            continue;
        }
        kept.push(word);
    }
    let assignments = kept
        .iter()
        .take_while(|w| {
            w.split_once('=').is_some_and(|(name, _)| {
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
        })
        .count();
    kept.split_off(assignments)
}

/// The top-level entries of the repository a path may start with.
fn repository_entries() -> Vec<String> {
    std::fs::read_dir(common::root())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| !name.starts_with('.') && name != "target" && name != "node_modules")
        .collect()
}

/// A word that names a path in the repository: relative, and starting
/// with one of its top-level entries (`examples/...`, `docs/run.md`).
fn repository_path(word: &str, entries: &[String]) -> Option<String> {
    let word = word.trim_end_matches([',', '.', ')', ':']);
    let word = word.split_once('=').map_or(word, |(_, value)| value);
    if word.starts_with(['/', '~', '-', '$']) || word.contains("://") {
        return None;
    }
    let first = word.split('/').next()?;
    let is_path = word.contains('/') || Path::new(word).extension().is_some();
    (is_path && entries.iter().any(|e| e == first)).then(|| word.to_string())
}

/// What is wrong with a line: its `svc` commands that do not parse, the
/// repository paths it names that do not exist.
fn problems(line: &Line, entries: &[String]) -> Vec<String> {
    let text = strip_comment(&line.text);
    if text.is_empty() || text.contains('[') || text.contains('<') || text.contains("...") {
        return Vec::new();
    }
    let mut found = Vec::new();
    for command in commands(text) {
        let words = words(&command);
        for word in &words {
            if let Some(path) = repository_path(word, entries)
                && !common::root().join(&path).exists()
            {
                found.push(format!(
                    "{}: `{path}` does not exist: {}",
                    line.at, line.text
                ));
            }
        }
        if words.first().map(String::as_str) != Some("svc") {
            continue;
        }
        if let Err(error) = svc::commands::cli::Cli::try_parse_from(&words) {
            use clap::error::ErrorKind;
            if !matches!(
                error.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) {
                let first = error.to_string();
                let first = first.lines().next().unwrap_or_default().to_string();
                found.push(format!("{}: `{}`: {first}", line.at, words.join(" ")));
            }
        }
    }
    if text.contains("cargo install") && !text.contains("--locked") {
        found.push(format!(
            "{}: `cargo install` without `--locked` resolves newer crates than Cargo.lock: {}",
            line.at, line.text
        ));
    }
    found
}

fn documented_lines() -> Vec<Line> {
    let root = common::root();
    let mut pages = vec![root.join("README.md")];
    let mut docs: Vec<_> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    let mut lines = Vec::new();
    for page in &pages {
        let name = page.strip_prefix(&root).unwrap().display().to_string();
        lines.extend(shell_lines(&name, &std::fs::read_to_string(page).unwrap()));
    }
    help_examples(&svc::commands::cli::command(), "svc", &mut lines);
    lines
}

#[test]
fn every_documented_command_line_parses_and_names_paths_that_exist() {
    let entries = repository_entries();
    assert!(entries.iter().any(|e| e == "examples"), "{entries:?}");
    let lines = documented_lines();
    let svc_commands = lines
        .iter()
        .filter(|l| {
            commands(strip_comment(&l.text))
                .iter()
                .any(|c| c.starts_with("svc "))
        })
        .count();
    assert!(
        svc_commands > 50,
        "only {svc_commands} svc command lines found"
    );
    assert!(
        lines.iter().any(|l| l.at.contains("--help")),
        "no --help example found"
    );
    let found: Vec<String> = lines.iter().flat_map(|l| problems(l, &entries)).collect();
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_reader_splits_lines_as_a_shell_would() {
    assert_eq!(
        commands("a=$(svc key create --as app) && svc x | y; z &"),
        ["svc key create --as app", "a=1", "svc x", "y", "z"]
    );
    assert_eq!(
        words("svc --project p serve --listen \"127.0.0.1:$PORT\" 2> serve.log"),
        ["svc", "--project", "p", "serve", "--listen", "127.0.0.1:1"]
    );
    assert_eq!(words("X=1 Y='a b' svc run"), ["svc", "run"]);
    assert_eq!(strip_comment("svc fmt   # every file"), "svc fmt");
    assert_eq!(strip_comment("echo '#not' # yes"), "echo '#not'");
    let entries = vec!["examples".to_string(), "docs".to_string()];
    assert_eq!(
        repository_path("examples/hubspot.svc", &entries).as_deref(),
        Some("examples/hubspot.svc")
    );
    assert_eq!(repository_path("myproj/tokens.svc", &entries), None);
    assert_eq!(
        repository_path("https://example.com/docs/x", &entries),
        None
    );
    // A line the test would have found broken: the command and the path.
    let broken = Line {
        at: "here".into(),
        text: "svc authorize examples/hubspot.svc hubspot_app --env dev --as ops".into(),
    };
    let found = problems(&broken, &entries);
    assert!(
        found.iter().any(|p| p.contains("examples/hubspot.svc")),
        "{found:?}"
    );
    let broken = Line {
        at: "here".into(),
        text: "svc secret keygen prod-identity.txt".into(),
    };
    assert_eq!(problems(&broken, &entries).len(), 1);
}

/// `--env` may come from `SVC_ENV` or svc.toml: no usage line shows it as
/// required (`svc authorize` did).
#[test]
fn no_usage_line_shows_an_environment_as_required() {
    fn visit(command: &mut clap::Command, found: &mut Vec<String>) {
        let usage = command.render_usage().to_string();
        let outside_brackets: String = {
            let mut depth = 0;
            usage
                .chars()
                .filter(|c| {
                    match c {
                        '[' => depth += 1,
                        ']' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .collect()
        };
        if outside_brackets.contains("--env") {
            found.push(usage);
        }
        for sub in command.get_subcommands_mut() {
            visit(sub, found);
        }
    }
    let mut found = Vec::new();
    visit(&mut svc::commands::cli::command(), &mut found);
    assert!(found.is_empty(), "{found:#?}");
}
