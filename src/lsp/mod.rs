//! `svc lsp`: the language server. It speaks the Language Server Protocol
//! 3.17 over standard input and output.
//!
//! One thread reads and answers messages in order, so every answer sees
//! every edit sent before it. Edits are debounced on their leading edge:
//! an edit after a pause is checked as soon as the messages already sent
//! are read, and edits that follow it within [`DEBOUNCE`] wait until they
//! pause that long. A check parses the files that changed, checks the
//! program, and publishes the diagnostics of every file whose list
//! changed; a request that needs the program checks it first.

// lsp_types keys its edits by `Uri`, whose parsed form caches offsets in
// cells; hashing and comparing read only the text, so the keys are stable.
#![allow(clippy::mutable_key_type)]

mod actions;
mod completion;
mod diagnostics;
mod hover;
mod keywords;
mod navigate;
pub mod text;
pub mod transport;
pub mod workspace;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;
use lsp_server::{Connection, ErrorCode, Message, Notification, Request, RequestId, Response};
use lsp_types::notification::Notification as _;
use lsp_types::request::Request as _;
use lsp_types::*;
use rustc_hash::FxHashMap as HashMap;
use serde_json::Value;

use text::Encoding;
use workspace::Workspace;

/// Edits closer together than this are checked together, once they pause
/// this long: a burst of changes (a paste, a replace-all, keys faster than
/// the check) costs one check, not one per change.
pub const DEBOUNCE: Duration = Duration::from_millis(15);

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// Runs the server on stdio until the client says `exit` or goes away.
/// Input that is not a message is answered with an error and skipped
/// ([`transport`]).
pub fn run() -> ExitCode {
    let (connection, threads) = match transport::stdio() {
        Ok(started) => started,
        Err(error) => {
            eprintln!("error: svc lsp: cannot start: {error}");
            return ExitCode::from(crate::exit::FAILURE);
        }
    };
    let served = serve(connection);
    let joined = threads.join();
    match (served, joined) {
        (Ok(()), Ok(())) => ExitCode::SUCCESS,
        (Err(error), _) => {
            eprintln!("error: svc lsp: {error}");
            ExitCode::from(crate::exit::FAILURE)
        }
        (_, Err(error)) => {
            eprintln!("error: svc lsp: {error}");
            ExitCode::from(crate::exit::FAILURE)
        }
    }
}

/// Serves one client on a connection: the handshake, then messages, until
/// `exit` or the end of the input.
pub fn serve(connection: Connection) -> Result<(), Failure> {
    let (id, params) = initialize(&connection)?;
    let encoding = negotiate_encoding(&params);
    let result = InitializeResult {
        capabilities: capabilities(encoding),
        server_info: Some(ServerInfo {
            name: "svc".to_string(),
            version: Some(env!("CARGO_PKG_VERSION").to_string()),
        }),
    };
    let result = serde_json::to_value(result)?;
    connection
        .sender
        .send(Message::Response(Response::new_ok(id, result)))?;
    // The client says `initialized` before anything else; one that does
    // not is served all the same.
    let mut pending = match connection.receiver.recv() {
        Ok(Message::Notification(n)) if n.method == notification::Initialized::METHOD => None,
        Ok(message) => Some(message),
        Err(_) => return Ok(()),
    };
    if can_watch_files(&params) {
        connection.sender.send(watch_svc_files())?;
    }
    let mut server = Server {
        workspace: Workspace::new(&roots(&params)),
        encoding,
        docs: docs_base(params.initialization_options.as_ref()),
        published: HashMap::default(),
        sender: connection.sender.clone(),
        check_at: None,
        last_change: None,
    };
    server.check_dirty();
    let mut shut_down = false;
    loop {
        let received = match pending.take() {
            Some(message) => Some(message),
            None => server.receive(&connection.receiver),
        };
        let Some(message) = received else {
            return Ok(());
        };
        match message {
            Message::Request(request) if request.method == request::Shutdown::METHOD => {
                shut_down = true;
                let answer = Response::new_ok(request.id, Value::Null);
                connection.sender.send(Message::Response(answer))?;
            }
            Message::Request(request) if shut_down => {
                let answer = Response::new_err(
                    request.id,
                    ErrorCode::InvalidRequest as i32,
                    "svc lsp is shutting down; it reads only `exit` now".to_string(),
                );
                connection.sender.send(Message::Response(answer))?;
            }
            Message::Request(request) => {
                let id = request.id.clone();
                let method = request.method.clone();
                // A request only reads the program: should answering one
                // panic, the editor gets an error for it and the session
                // goes on with its documents intact.
                let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    server.request(request)
                }));
                let response = answered.unwrap_or_else(|_| {
                    Response::new_err(
                        id,
                        ErrorCode::InternalError as i32,
                        format!("svc lsp failed to answer `{method}`; this is a bug in svc"),
                    )
                });
                connection.sender.send(Message::Response(response))?;
            }
            Message::Notification(n) if n.method == notification::Exit::METHOD => return Ok(()),
            Message::Notification(_) if shut_down => {}
            Message::Notification(notification) => server.notification(notification),
            Message::Response(_) => {}
        }
    }
}

/// Waits for `initialize`, and answers what comes before it: a request
/// with an error, as does an `initialize` whose parameters do not fit.
/// An error if the client says `exit` or goes away first.
fn initialize(connection: &Connection) -> Result<(RequestId, InitializeParams), Failure> {
    for message in &connection.receiver {
        let refusal = match message {
            Message::Request(request) if request.method == request::Initialize::METHOD => {
                match serde_json::from_value::<InitializeParams>(request.params) {
                    Ok(params) => return Ok((request.id, params)),
                    Err(error) => Response::new_err(
                        request.id,
                        ErrorCode::InvalidParams as i32,
                        format!("the `initialize` parameters do not fit LSP 3.17: {error}"),
                    ),
                }
            }
            Message::Request(request) => Response::new_err(
                request.id,
                ErrorCode::ServerNotInitialized as i32,
                format!(
                    "svc lsp is not initialized; `initialize` comes before `{}`",
                    request.method
                ),
            ),
            Message::Notification(n) if n.method == notification::Exit::METHOD => {
                return Err("the client said `exit` before `initialize`".into());
            }
            Message::Notification(_) | Message::Response(_) => continue,
        };
        connection.sender.send(Message::Response(refusal))?;
    }
    Err("the input ended before `initialize`".into())
}

/// UTF-8 when the client offers it (nothing to convert), else UTF-16.
fn negotiate_encoding(params: &InitializeParams) -> Encoding {
    let offered = params
        .capabilities
        .general
        .as_ref()
        .and_then(|g| g.position_encodings.as_ref());
    match offered {
        Some(kinds) if kinds.contains(&PositionEncodingKind::UTF8) => Encoding::Utf8,
        _ => Encoding::Utf16,
    }
}

/// Whether the client can watch files for the server, when asked.
fn can_watch_files(params: &InitializeParams) -> bool {
    params
        .capabilities
        .workspace
        .as_ref()
        .and_then(|w| w.did_change_watched_files.as_ref())
        .and_then(|w| w.dynamic_registration)
        .unwrap_or(false)
}

/// Asks the client to report `.svc` files created, changed or deleted
/// outside the editor (a `git pull`), so the program stays what is on disk.
fn watch_svc_files() -> Message {
    let options = DidChangeWatchedFilesRegistrationOptions {
        watchers: vec![FileSystemWatcher {
            glob_pattern: GlobPattern::String("**/*.svc".to_string()),
            kind: None,
        }],
    };
    let registration = Registration {
        id: "svc-watch-files".to_string(),
        method: notification::DidChangeWatchedFiles::METHOD.to_string(),
        register_options: serde_json::to_value(options).ok(),
    };
    Message::Request(Request::new(
        lsp_server::RequestId::from("svc-watch-files".to_string()),
        request::RegisterCapability::METHOD.to_string(),
        RegistrationParams {
            registrations: vec![registration],
        },
    ))
}

fn capabilities(encoding: Encoding) -> ServerCapabilities {
    ServerCapabilities {
        position_encoding: Some(match encoding {
            Encoding::Utf8 => PositionEncodingKind::UTF8,
            Encoding::Utf16 => PositionEncodingKind::UTF16,
        }),
        text_document_sync: Some(TextDocumentSyncCapability::Options(
            TextDocumentSyncOptions {
                open_close: Some(true),
                change: Some(TextDocumentSyncKind::INCREMENTAL),
                ..Default::default()
            },
        )),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        document_symbol_provider: Some(OneOf::Left(true)),
        workspace_symbol_provider: Some(OneOf::Left(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![".".to_string(), " ".to_string()]),
            ..Default::default()
        }),
        rename_provider: Some(OneOf::Right(RenameOptions {
            prepare_provider: Some(true),
            work_done_progress_options: Default::default(),
        })),
        document_formatting_provider: Some(OneOf::Left(true)),
        code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
            code_action_kinds: Some(vec![CodeActionKind::QUICKFIX]),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// The folders of the session: the workspace folders, else the root.
fn roots(params: &InitializeParams) -> Vec<PathBuf> {
    let folders: Vec<PathBuf> = params
        .workspace_folders
        .iter()
        .flatten()
        .filter_map(|f| workspace::path_of_uri(&f.uri))
        .collect();
    if !folders.is_empty() {
        return folders;
    }
    #[allow(deprecated)]
    let root = params.root_uri.as_ref().and_then(workspace::path_of_uri);
    root.into_iter().collect()
}

/// Where the codes' documentation is: `initializationOptions.docs` (a URL of
/// docs/language.md), else the copy in the source tree svc was built from,
/// when it is there.
fn docs_base(options: Option<&Value>) -> Option<String> {
    if let Some(url) = options.and_then(|o| o.get("docs")).and_then(Value::as_str) {
        return Some(url.to_string());
    }
    let built_from = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/language.md");
    built_from
        .is_file()
        .then(|| workspace::uri_of_path(&built_from))
        .flatten()
        .map(|uri| uri.as_str().to_string())
}

struct Server {
    workspace: Workspace,
    encoding: Encoding,
    docs: Option<String>,
    /// What was last published for each file, so only changes are sent.
    published: HashMap<Uri, Vec<lsp_types::Diagnostic>>,
    sender: crossbeam_channel::Sender<Message>,
    /// When to check the programs that changed.
    check_at: Option<Instant>,
    /// When the last edit came.
    last_change: Option<Instant>,
}

impl Server {
    /// The next message; edits pending a check are checked when none comes
    /// before their time. `None` when the input ended.
    fn receive(&mut self, messages: &crossbeam_channel::Receiver<Message>) -> Option<Message> {
        loop {
            let Some(at) = self.check_at else {
                return messages.recv().ok();
            };
            match messages.recv_deadline(at) {
                Ok(message) => return Some(message),
                Err(RecvTimeoutError::Timeout) => self.check_dirty(),
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    fn notification(&mut self, notification: Notification) {
        let method = notification.method.as_str();
        let params = notification.params;
        match method {
            notification::DidOpenTextDocument::METHOD => {
                if let Ok(p) = serde_json::from_value::<DidOpenTextDocumentParams>(params) {
                    self.workspace
                        .open(p.text_document.uri, p.text_document.text);
                    // Opening shows the file's diagnostics at once.
                    self.check_dirty();
                }
            }
            notification::DidChangeTextDocument::METHOD => {
                if let Ok(p) = serde_json::from_value::<DidChangeTextDocumentParams>(params)
                    && let Some((project, file)) = self.workspace.find(&p.text_document.uri)
                {
                    let target = &mut self.workspace.projects[project];
                    let document = target.document(file);
                    let mut text = document.text.clone();
                    text::apply_changes(
                        &mut text,
                        &document.lines,
                        p.content_changes,
                        self.encoding,
                    );
                    target.set_text(file, text);
                    let now = Instant::now();
                    let in_burst = self
                        .last_change
                        .is_some_and(|last| now.duration_since(last) < DEBOUNCE);
                    self.check_at = Some(if in_burst { now + DEBOUNCE } else { now });
                    self.last_change = Some(now);
                }
            }
            notification::DidCloseTextDocument::METHOD => {
                if let Ok(p) = serde_json::from_value::<DidCloseTextDocumentParams>(params) {
                    let uri = p.text_document.uri;
                    if !self.workspace.close(&uri) {
                        self.publish(uri, Vec::new(), false);
                    }
                    self.check_dirty();
                }
            }
            notification::DidSaveTextDocument::METHOD => {}
            notification::DidChangeWatchedFiles::METHOD => {
                if let Ok(p) = serde_json::from_value::<DidChangeWatchedFilesParams>(params) {
                    for change in p.changes {
                        self.workspace.changed_on_disk(change.uri);
                    }
                    self.check_dirty();
                }
            }
            _ => {}
        }
    }

    /// Checks every program that changed and publishes what differs.
    fn check_dirty(&mut self) {
        self.check_at = None;
        for index in 0..self.workspace.projects.len() {
            if self.workspace.projects[index].is_stale() {
                self.publish_project(index);
            }
        }
    }

    fn publish_project(&mut self, index: usize) {
        let project = &mut self.workspace.projects[index];
        let per_file = project.diagnostics();
        let edited = project.take_edited();
        let mut updates = Vec::new();
        for (i, (document, found)) in project.files.iter().zip(per_file).enumerate() {
            let converted: Vec<lsp_types::Diagnostic> = found
                .iter()
                .filter_map(|d| {
                    diagnostics::to_lsp(d, &project.files, self.encoding, self.docs.as_deref())
                })
                .collect();
            // An edited file's list is sent even when unchanged, so the
            // editor knows it holds for the new text.
            let force = edited.contains(&crate::source::FileId(i as u32));
            updates.push((document.uri.clone(), converted, force));
        }
        for (uri, list, force) in updates {
            self.publish(uri, list, force);
        }
    }

    /// Sends a file's diagnostics, unless `force` is false and they are
    /// what was last sent (nothing sent counts as none).
    fn publish(&mut self, uri: Uri, list: Vec<lsp_types::Diagnostic>, force: bool) {
        let unchanged = match self.published.get(&uri) {
            Some(previous) => *previous == list,
            None => list.is_empty(),
        };
        if unchanged && !force {
            return;
        }
        let params = PublishDiagnosticsParams {
            uri: uri.clone(),
            diagnostics: list.clone(),
            version: None,
        };
        // Fails only when the client is gone; the loop ends on the next
        // receive then.
        let _ = self.sender.send(Message::Notification(Notification::new(
            notification::PublishDiagnostics::METHOD.to_string(),
            params,
        )));
        self.published.insert(uri, list);
    }

    fn request(&mut self, request: Request) -> Response {
        // Answers read the program as checked now, so check what changed.
        if self.check_at.is_some() {
            self.check_dirty();
        }
        let id = request.id.clone();
        let answer = match request.method.as_str() {
            request::HoverRequest::METHOD => self.with(request, hover::hover),
            request::GotoDefinition::METHOD => self.with(request, navigate::definition),
            request::References::METHOD => self.with(request, navigate::references),
            request::DocumentSymbolRequest::METHOD => {
                self.with(request, navigate::document_symbols)
            }
            request::WorkspaceSymbolRequest::METHOD => {
                self.with(request, navigate::workspace_symbols)
            }
            request::Completion::METHOD => self.with(request, completion::complete),
            request::PrepareRenameRequest::METHOD => self.with(request, navigate::prepare_rename),
            request::Rename::METHOD => self.with(request, navigate::rename),
            request::Formatting::METHOD => self.with(request, actions::format),
            request::CodeActionRequest::METHOD => self.with(request, actions::code_actions),
            _ => Err(Refusal::new(
                ErrorCode::MethodNotFound,
                format!("svc lsp does not handle `{}`", request.method),
            )),
        };
        match answer {
            Ok(value) => Response::new_ok(id, value),
            Err(refusal) => Response::new_err(id, refusal.code as i32, refusal.message),
        }
    }

    /// Decodes a request's parameters and runs its handler.
    fn with<P: serde::de::DeserializeOwned, R: serde::Serialize>(
        &mut self,
        request: Request,
        handler: fn(&mut Context, P) -> Result<R, Refusal>,
    ) -> Result<Value, Refusal> {
        let params: P = serde_json::from_value(request.params)
            .map_err(|e| Refusal::new(ErrorCode::InvalidParams, e.to_string()))?;
        let mut context = Context {
            workspace: &mut self.workspace,
            encoding: self.encoding,
        };
        let result = handler(&mut context, params)?;
        serde_json::to_value(result)
            .map_err(|e| Refusal::new(ErrorCode::InternalError, e.to_string()))
    }
}

/// What a request handler works with.
pub struct Context<'a> {
    pub workspace: &'a mut Workspace,
    pub encoding: Encoding,
}

/// A request the server answers with an error.
#[derive(Debug)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
        }
    }

    /// A request about a document the server was not told of.
    pub fn unknown_document(uri: &Uri) -> Refusal {
        Refusal::new(
            ErrorCode::InvalidParams,
            format!(
                "`{}` is not an open document or a file of the workspace",
                uri.as_str()
            ),
        )
    }
}

impl Context<'_> {
    /// The program and file of a document, checked.
    pub fn locate(&mut self, uri: &Uri) -> Result<(usize, crate::source::FileId), Refusal> {
        let found = self
            .workspace
            .find(uri)
            .ok_or_else(|| Refusal::unknown_document(uri))?;
        self.workspace.projects[found.0].analyzed();
        Ok(found)
    }
}
