//! A small Language Server Protocol client for the tests of `svc lsp`: it
//! starts the real binary, frames JSON-RPC messages with `Content-Length`
//! headers on its standard input and reads its standard output on a thread.
//!
//! Nothing here sleeps: every wait is for a message, with a deadline.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long any one answer may take.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The `file://` URI of a path.
pub fn uri(path: &Path) -> String {
    url::Url::from_file_path(path)
        .expect("an absolute path")
        .to_string()
}

/// A running `svc lsp`.
pub struct Lsp {
    child: Child,
    stdin: Option<ChildStdin>,
    incoming: Receiver<Value>,
    stderr: Option<JoinHandle<()>>,
    /// What the server wrote on standard error so far.
    errors: Arc<Mutex<Vec<u8>>>,
    next_id: i64,
    /// Notifications not yet taken by a wait, in the order they came.
    pending: VecDeque<Value>,
    /// The diagnostics last published for each URI.
    latest: HashMap<String, Vec<Value>>,
    /// The answer to `initialize`.
    pub init: Value,
    finished: bool,
}

impl Lsp {
    /// Starts the server with one workspace folder (or none) and the
    /// client's capabilities, and completes the handshake.
    pub fn start(root: Option<&Path>, capabilities: Value) -> Lsp {
        Lsp::start_with_options(root, capabilities, Value::Null)
    }

    /// [`Lsp::start`] with `initializationOptions`.
    pub fn start_with_options(root: Option<&Path>, capabilities: Value, options: Value) -> Lsp {
        let mut lsp = Lsp::spawn();
        lsp.initialize(root, capabilities, options);
        lsp
    }

    /// Starts the server without the handshake.
    pub fn spawn() -> Lsp {
        let mut child = Command::new(env!("CARGO_BIN_EXE_svc"))
            .arg("lsp")
            .env("NO_COLOR", "1")
            .env("XDG_CONFIG_HOME", "/nonexistent/svc-test-config")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("svc lsp starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let (sender, incoming) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            while let Some(message) = read_message(&mut reader) {
                if sender.send(message).is_err() {
                    break;
                }
            }
        });
        let errors = Arc::new(Mutex::new(Vec::new()));
        let written = Arc::clone(&errors);
        let stderr = std::thread::spawn(move || {
            let mut chunk = [0; 4096];
            while let Ok(read @ 1..) = stderr.read(&mut chunk) {
                written.lock().unwrap().extend_from_slice(&chunk[..read]);
            }
        });
        Lsp {
            stdin: child.stdin.take(),
            child,
            incoming,
            stderr: Some(stderr),
            errors,
            next_id: 0,
            pending: VecDeque::new(),
            latest: HashMap::new(),
            init: Value::Null,
            finished: false,
        }
    }

    /// The handshake: `initialize` with one workspace folder (or none), the
    /// client's capabilities and `initializationOptions`, then `initialized`.
    pub fn initialize(&mut self, root: Option<&Path>, capabilities: Value, options: Value) {
        let folders = match root {
            Some(root) => json!([{ "uri": uri(root), "name": "ws" }]),
            None => Value::Null,
        };
        let root_uri = root.map_or(Value::Null, |r| Value::String(uri(r)));
        self.init = self.request(
            "initialize",
            json!({
                "processId": null,
                "rootUri": root_uri,
                "capabilities": capabilities,
                "workspaceFolders": folders,
                "initializationOptions": options,
            }),
        );
        self.notify("initialized", json!({}));
    }

    /// Starts the server on a folder, with UTF-16 positions.
    pub fn on(root: &Path) -> Lsp {
        Lsp::start(Some(root), json!({}))
    }

    fn send(&mut self, message: Value) {
        let body = serde_json::to_vec(&message).expect("a message serializes");
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin
            .write_all(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes())
            .and_then(|()| stdin.write_all(&body))
            .and_then(|()| stdin.flush())
            .expect("svc lsp reads its input");
    }

    /// Sends bytes as they are: the test writes the framing.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin
            .write_all(bytes)
            .and_then(|()| stdin.flush())
            .expect("svc lsp reads its input");
    }

    /// The next answer (a message without a method); notifications and
    /// requests of the server that come meanwhile are kept.
    pub fn next_answer(&mut self) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        self.receive(deadline)
            .unwrap_or_else(|| panic!("no answer within {TIMEOUT:?}"))
    }

    /// The process id of the server.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Closes the server's input (no `shutdown`, no `exit`) and waits for it
    /// to end: its exit status and what it wrote on standard error.
    pub fn close_input(mut self) -> (std::process::ExitStatus, String) {
        self.stdin = None;
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("svc lsp is waited for") {
                break status;
            }
            // Drain what it still says; the output closes when it ends.
            let left = deadline.saturating_duration_since(Instant::now());
            match self.incoming.recv_timeout(left) {
                Ok(_) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    break self.child.wait().expect("svc lsp is waited for");
                }
                Err(RecvTimeoutError::Timeout) => panic!("svc lsp did not end at end of input"),
            }
        };
        self.finished = true;
        self.stderr
            .take()
            .expect("stderr is read once")
            .join()
            .expect("the stderr reader ends");
        (status, self.stderr_so_far())
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    /// Sends a request and waits for its answer: the result, or the error
    /// object. Notifications that come meanwhile are kept.
    pub fn request_raw(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        self.send(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        let deadline = Instant::now() + TIMEOUT;
        let Some(response) = self.receive(deadline) else {
            panic!("no answer to `{method}` (id {id}) within {TIMEOUT:?}");
        };
        assert_eq!(response["id"], json!(id), "an answer to another request");
        match response.get("error") {
            Some(error) => Err(error.clone()),
            None => Ok(response.get("result").cloned().unwrap_or(Value::Null)),
        }
    }

    /// A request that must succeed.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        match self.request_raw(method, params.clone()) {
            Ok(result) => result,
            Err(error) => panic!("`{method}` failed: {error}\nparams: {params}"),
        }
    }

    /// The next response; notifications and requests of the server are
    /// handled on the way. `None` at the deadline.
    fn receive(&mut self, deadline: Instant) -> Option<Value> {
        loop {
            let message = self.next_message(deadline)?;
            if message.get("method").is_none() {
                return Some(message);
            }
            self.handle(message);
        }
    }

    fn next_message(&mut self, deadline: Instant) -> Option<Value> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.incoming.recv_timeout(left) {
            Ok(message) => Some(message),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                panic!(
                    "svc lsp closed its output; status {:?}",
                    self.child.try_wait()
                )
            }
        }
    }

    /// A message with a method: a notification, or a request of the server,
    /// answered with null; both are kept.
    fn handle(&mut self, message: Value) {
        if let Some(id) = message.get("id") {
            let id = id.clone();
            self.send(json!({ "jsonrpc": "2.0", "id": id, "result": null }));
            self.pending.push_back(message);
            return;
        }
        if message["method"] == "textDocument/publishDiagnostics" {
            let uri = message["params"]["uri"].as_str().unwrap_or_default();
            let list = message["params"]["diagnostics"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            self.latest.insert(uri.to_string(), list);
        }
        self.pending.push_back(message);
    }

    /// Waits for a publishDiagnostics of `uri` whose list satisfies
    /// `wanted`, and returns that list. Publishes of the same URI before it
    /// are taken too; those of other URIs stay for later waits.
    pub fn wait_diagnostics(&mut self, uri: &str, wanted: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + TIMEOUT;
        let mut seen = Vec::new();
        loop {
            let mut index = 0;
            while index < self.pending.len() {
                let message = &self.pending[index];
                let is_it = message["method"] == "textDocument/publishDiagnostics"
                    && message["params"]["uri"] == uri;
                if !is_it {
                    index += 1;
                    continue;
                }
                let message = self.pending.remove(index).expect("in range");
                let list = message["params"]["diagnostics"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if wanted(&list) {
                    return list;
                }
                seen.push(list);
            }
            match self.next_message(deadline) {
                Some(message) if message.get("method").is_some() => self.handle(message),
                Some(message) => panic!("an answer nobody asked for: {message}"),
                None => panic!(
                    "no publishDiagnostics for {uri} as wanted within {TIMEOUT:?}; \
                     published meanwhile: {}",
                    serde_json::to_string_pretty(&seen).unwrap_or_default()
                ),
            }
        }
    }

    /// Waits until the server has handled everything sent so far: it
    /// checks what changed before it answers a request, so the answer
    /// comes after the diagnostics of every edit sent before it.
    pub fn sync(&mut self) {
        let _ = self.request_raw("workspace/symbol", json!({ "query": "" }));
    }

    /// [`Lsp::sync`], then forgets the notifications not taken yet: what
    /// was published before is not what a later wait is for.
    pub fn settle(&mut self) {
        self.sync();
        self.pending.clear();
    }

    /// What the server says of a file now: its last published list, after
    /// everything sent so far was handled. Nothing published is none.
    pub fn diagnostics_now(&mut self, uri: &str) -> Vec<Value> {
        self.sync();
        self.latest.get(uri).cloned().unwrap_or_default()
    }

    /// What the server wrote on standard error so far.
    pub fn stderr_so_far(&self) -> String {
        String::from_utf8_lossy(&self.errors.lock().unwrap()).into_owned()
    }

    /// The notifications and requests of the server received and not
    /// taken yet.
    pub fn pending(&self) -> &VecDeque<Value> {
        &self.pending
    }

    pub fn open(&mut self, uri: &str, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({ "textDocument": {
                "uri": uri, "languageId": "svc", "version": 1, "text": text
            }}),
        );
    }

    /// A full-text change.
    pub fn replace(&mut self, uri: &str, version: i64, text: &str) {
        self.notify(
            "textDocument/didChange",
            json!({
                "textDocument": { "uri": uri, "version": version },
                "contentChanges": [{ "text": text }],
            }),
        );
    }

    /// An incremental change of one range.
    pub fn change(&mut self, uri: &str, version: i64, range: Value, text: &str) {
        self.notify(
            "textDocument/didChange",
            json!({
                "textDocument": { "uri": uri, "version": version },
                "contentChanges": [{ "range": range, "text": text }],
            }),
        );
    }

    /// `shutdown`, `exit`, and the process ends with status 0; returns what
    /// it wrote on standard error, which must not tell of a panic.
    pub fn shutdown(mut self) -> String {
        let answer = self.request("shutdown", Value::Null);
        assert_eq!(answer, Value::Null);
        self.notify("exit", Value::Null);
        self.stdin = None;
        // The output closes when the process ends.
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.incoming.recv_timeout(left) {
                Ok(message) => {
                    if message.get("method").is_none() {
                        panic!("an answer after shutdown: {message}");
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("svc lsp did not exit after `exit`"),
            }
        }
        let status = self.child.wait().expect("svc lsp is waited for");
        self.finished = true;
        self.stderr
            .take()
            .expect("stderr is read once")
            .join()
            .expect("the stderr reader ends");
        let stderr = self.stderr_so_far();
        assert!(
            status.success(),
            "svc lsp exited with {status}; stderr:\n{stderr}"
        );
        assert!(
            !stderr.contains("panicked"),
            "svc lsp panicked; stderr:\n{stderr}"
        );
        stderr
    }
}

impl Drop for Lsp {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads one framed message; `None` at the end of the stream.
fn read_message(reader: &mut impl BufRead) -> Option<Value> {
    let mut length = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = Some(value.trim().parse::<usize>().expect("a length"));
        }
    }
    let mut body = vec![0; length.expect("a Content-Length header")];
    reader.read_exact(&mut body).ok()?;
    Some(serde_json::from_slice(&body).expect("the body is JSON"))
}

/// The byte offset of an LSP position in `text`. The position must be in
/// the text (this checks what the server sends).
pub fn offset(text: &str, position: &Value, utf16: bool) -> usize {
    let line = position["line"].as_u64().expect("a line") as usize;
    let character = position["character"].as_u64().expect("a character") as usize;
    let mut start = 0;
    for _ in 0..line {
        start += text[start..]
            .find('\n')
            .unwrap_or_else(|| panic!("line {line} is past the end of the text:\n{text}"))
            + 1;
    }
    let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let mut counted = 0;
    for (i, c) in text[start..end].char_indices() {
        if counted == character {
            return start + i;
        }
        assert!(
            counted < character,
            "character {character} of line {line} is inside a character"
        );
        counted += if utf16 { c.len_utf16() } else { c.len_utf8() };
    }
    assert_eq!(
        counted, character,
        "character {character} is past the end of line {line}"
    );
    end
}

/// The LSP position of a byte offset.
pub fn position(text: &str, offset: usize, utf16: bool) -> Value {
    let before = &text[..offset];
    let line = before.matches('\n').count();
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    let character: usize = if utf16 {
        before[start..].encode_utf16().count()
    } else {
        before[start..].len()
    };
    json!({ "line": line, "character": character })
}

/// The LSP range of a byte range.
pub fn range(text: &str, bytes: std::ops::Range<usize>, utf16: bool) -> Value {
    json!({
        "start": position(text, bytes.start, utf16),
        "end": position(text, bytes.end, utf16),
    })
}

/// Applies TextEdits to a text, as the protocol says: every range is in
/// the original text, and ranges do not overlap.
pub fn apply_edits(text: &str, edits: &[Value], utf16: bool) -> String {
    let mut resolved: Vec<(usize, usize, &str)> = edits
        .iter()
        .map(|edit| {
            let start = offset(text, &edit["range"]["start"], utf16);
            let end = offset(text, &edit["range"]["end"], utf16);
            assert!(start <= end, "a range that ends before it starts: {edit}");
            (start, end, edit["newText"].as_str().expect("newText"))
        })
        .collect();
    resolved.sort_by_key(|&(start, end, _)| (start, end));
    for pair in resolved.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "overlapping edits: {edits:?}");
    }
    let mut out = text.to_string();
    for (start, end, new) in resolved.into_iter().rev() {
        out.replace_range(start..end, new);
    }
    out
}

/// Applies a WorkspaceEdit's `changes` to the texts, by URI; returns the
/// URIs changed, sorted. Every URI edited must be one of the texts.
pub fn apply_workspace_edit(
    texts: &mut HashMap<String, String>,
    edit: &Value,
    utf16: bool,
) -> Vec<String> {
    let changes = edit["changes"]
        .as_object()
        .unwrap_or_else(|| panic!("a WorkspaceEdit with `changes`: {edit}"));
    let mut changed = Vec::new();
    for (uri, edits) in changes {
        let text = texts
            .get_mut(uri)
            .unwrap_or_else(|| panic!("an edit of a file the test does not hold: {uri}"));
        *text = apply_edits(text, edits.as_array().expect("edits"), utf16);
        changed.push(uri.clone());
    }
    changed.sort();
    changed
}
