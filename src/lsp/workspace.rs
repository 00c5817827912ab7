//! The programs an editor works on: the files of each workspace folder,
//! the editor's text for the open ones, and what the checker found.
//!
//! A folder is one program, as `svc check DIR` loads it (or as its
//! `svc.toml` names it). A file opened outside every folder is a program
//! of its own. Each file is parsed on its own, when its text changes; the
//! program is checked again from the parsed files, so an edit costs one
//! file's parse and one check.

use std::path::{Path, PathBuf};

use lsp_types::Uri;

use super::names::Names;
use super::text::{Encoding, LineIndex};
use crate::check::{self, Analysis};
use crate::diagnostic::{self, Code, Diagnostic};
use crate::source::{self, BOM, FileId, Span};
use crate::syntax::{self, ast::Program};

/// One `.svc` file of a program.
#[derive(Debug)]
pub struct Document {
    pub uri: Uri,
    pub path: PathBuf,
    /// The text without a leading byte-order mark: spans index it.
    pub text: String,
    pub lines: LineIndex,
    /// Whether the editor holds it: its text is the editor's, not the disk's.
    pub open: bool,
    /// The declarations of the last text that parsed: while a file does not
    /// parse, the rest of the program still sees what it declared.
    parsed: Program,
    /// What parsing the current text found.
    syntax: Vec<Diagnostic>,
    /// Whether `parsed` is the current text's.
    current: bool,
}

impl Document {
    fn new(uri: Uri, path: PathBuf, file: FileId, text: String) -> Document {
        let mut document = Document {
            uri,
            path,
            text: String::new(),
            lines: LineIndex::new(""),
            open: false,
            parsed: Program::default(),
            syntax: Vec::new(),
            current: true,
        };
        document.set_text(file, text);
        document
    }

    /// Replaces the text and parses it.
    pub fn set_text(&mut self, file: FileId, mut text: String) {
        if text.starts_with(BOM) {
            text.drain(..BOM.len_utf8());
        }
        let (program, syntax) = syntax::parse_file(file, &text);
        let failed = syntax.iter().any(|d| d.code == Code::Syntax);
        if !failed {
            self.parsed = program;
        }
        self.current = !failed;
        self.syntax = syntax;
        self.lines = LineIndex::new(&text);
        self.text = text;
    }

    /// Whether the spans of the program's analysis point into this text.
    pub fn is_current(&self) -> bool {
        self.current
    }

    pub fn range(&self, span: Span, encoding: Encoding) -> lsp_types::Range {
        self.lines.range(&self.text, span.range(), encoding)
    }

    pub fn offset(&self, position: lsp_types::Position, encoding: Encoding) -> usize {
        self.lines.offset(&self.text, position, encoding)
    }

    /// The text of a span, empty when the span is not in the text.
    pub fn snippet(&self, span: Span) -> &str {
        self.text.get(span.range()).unwrap_or("")
    }
}

/// What the checker found in a program, with the index of its names.
#[derive(Debug)]
pub struct Analyzed {
    pub program: Program,
    pub analysis: Analysis,
    pub names: Names,
}

/// One program: a folder's files, or one file opened alone.
#[derive(Debug)]
pub struct Project {
    /// `None` for a file opened outside every folder.
    pub root: Option<PathBuf>,
    /// Indexed by [`FileId`]; a file that was deleted keeps its slot, empty.
    pub files: Vec<Document>,
    analyzed: Option<Analyzed>,
    /// Files whose text changed since their diagnostics were last taken.
    edited: Vec<FileId>,
}

impl Project {
    fn new(root: Option<PathBuf>) -> Project {
        Project {
            root,
            files: Vec::new(),
            analyzed: None,
            edited: Vec::new(),
        }
    }

    /// A folder's program, from the disk.
    fn load(root: &Path) -> Project {
        let mut project = Project::new(Some(root.to_path_buf()));
        let paths = crate::project::load(&root.join(crate::project::FILE_NAME))
            .ok()
            .map(|p| p.program())
            .filter(|paths| !paths.is_empty())
            .unwrap_or_else(|| vec![root.to_path_buf()]);
        if let Ok(found) = source::find(&paths) {
            for path in found.files {
                if let (Ok(text), Some(uri)) = (source::read(&path), uri_of_path(&path)) {
                    project.add(uri, path, text);
                }
            }
        }
        project
    }

    fn add(&mut self, uri: Uri, path: PathBuf, text: String) -> FileId {
        let id = FileId(self.files.len() as u32);
        self.files.push(Document::new(uri, path, id, text));
        self.analyzed = None;
        id
    }

    fn contains(&self, path: &Path) -> bool {
        self.root
            .as_ref()
            .is_some_and(|root| path.starts_with(root))
    }

    pub fn file_of(&self, uri: &Uri) -> Option<FileId> {
        self.files
            .iter()
            .position(|d| d.uri == *uri)
            .map(|i| FileId(i as u32))
    }

    pub fn document(&self, file: FileId) -> &Document {
        &self.files[file.0 as usize]
    }

    /// Sets a file's text; the program is checked again when next asked.
    pub fn set_text(&mut self, file: FileId, text: String) {
        self.files[file.0 as usize].set_text(file, text);
        self.analyzed = None;
        if !self.edited.contains(&file) {
            self.edited.push(file);
        }
    }

    /// The files edited since the last call: their diagnostics are sent
    /// even when unchanged, so the editor knows they are for the new text.
    pub fn take_edited(&mut self) -> Vec<FileId> {
        std::mem::take(&mut self.edited)
    }

    pub fn is_stale(&self) -> bool {
        self.analyzed.is_none()
    }

    /// The program checked, with its files.
    pub fn view(&mut self) -> View<'_> {
        self.analyzed();
        View {
            analyzed: self.analyzed.as_ref().expect("analyzed above"),
            files: &self.files,
        }
    }

    /// The program checked, from the files as they are now.
    pub fn analyzed(&mut self) -> &Analyzed {
        if self.analyzed.is_none() {
            let mut program = Program::default();
            for document in &self.files {
                program.append(document.parsed.clone());
            }
            let analysis = check::check(&program);
            let names = Names::new(&program);
            self.analyzed = Some(Analyzed {
                program,
                analysis,
                names,
            });
        }
        self.analyzed.as_ref().expect("analyzed above")
    }

    /// The diagnostics to show, per file: what parsing found, and what the
    /// check found where the file's text is the one checked.
    pub fn diagnostics(&mut self) -> Vec<Vec<Diagnostic>> {
        self.analyzed();
        let analyzed = self.analyzed.as_ref().expect("analyzed above");
        let mut per_file: Vec<Vec<Diagnostic>> =
            self.files.iter().map(|d| d.syntax.clone()).collect();
        for found in &analyzed.analysis.diagnostics {
            let Some(span) = found.primary_span() else {
                continue;
            };
            let Some(document) = self.files.get(span.file.0 as usize) else {
                continue;
            };
            if document.current {
                per_file[span.file.0 as usize].push(found.clone());
            }
        }
        for list in &mut per_file {
            diagnostic::sort(list);
        }
        per_file
    }
}

/// A checked program and its files, to answer a request.
#[derive(Clone, Copy)]
pub struct View<'p> {
    pub analyzed: &'p Analyzed,
    pub files: &'p [Document],
}

impl<'p> View<'p> {
    pub fn document(&self, file: FileId) -> &'p Document {
        &self.files[file.0 as usize]
    }

    /// The editor's location of a span.
    pub fn location(&self, span: Span, encoding: Encoding) -> lsp_types::Location {
        let document = self.document(span.file);
        lsp_types::Location::new(document.uri.clone(), document.range(span, encoding))
    }
}

/// Every program of the editor's session.
#[derive(Debug, Default)]
pub struct Workspace {
    pub projects: Vec<Project>,
}

impl Workspace {
    pub fn new(roots: &[PathBuf]) -> Workspace {
        Workspace {
            projects: roots.iter().map(|root| Project::load(root)).collect(),
        }
    }

    /// The program and file of a document the workspace knows.
    pub fn find(&self, uri: &Uri) -> Option<(usize, FileId)> {
        self.projects
            .iter()
            .enumerate()
            .find_map(|(i, p)| p.file_of(uri).map(|f| (i, f)))
    }

    /// The editor opened a document: its text is now the editor's.
    pub fn open(&mut self, uri: Uri, text: String) -> usize {
        let (project, file) = match self.find(&uri) {
            Some(found) => found,
            None => self.add(uri, String::new()),
        };
        let target = &mut self.projects[project];
        target.files[file.0 as usize].open = true;
        target.set_text(file, text);
        project
    }

    /// Adds a file the workspace did not know, to the folder that holds
    /// it or as a program of its own.
    fn add(&mut self, uri: Uri, text: String) -> (usize, FileId) {
        let path = path_of_uri(&uri).unwrap_or_else(|| PathBuf::from(uri.as_str()));
        let project = match self.projects.iter().position(|p| p.contains(&path)) {
            Some(project) => project,
            None => {
                self.projects.push(Project::new(None));
                self.projects.len() - 1
            }
        };
        let file = self.projects[project].add(uri, path, text);
        (project, file)
    }

    /// The editor closed a document: the disk's text counts again, and a
    /// file opened alone is forgotten. Returns the program it was in, if
    /// that program is still there.
    pub fn close(&mut self, uri: &Uri) -> Option<usize> {
        let (project, file) = self.find(uri)?;
        if self.projects[project].root.is_none() {
            self.projects.remove(project);
            return None;
        }
        let target = &mut self.projects[project];
        let document = &mut target.files[file.0 as usize];
        document.open = false;
        let text = source::read(&document.path).unwrap_or_default();
        target.set_text(file, text);
        Some(project)
    }

    /// A file changed on disk (created, changed or deleted): an open
    /// document keeps the editor's text.
    pub fn changed_on_disk(&mut self, uri: Uri) -> Option<usize> {
        let path = path_of_uri(&uri)?;
        if path.extension().is_none_or(|e| e != "svc") {
            return None;
        }
        let text = source::read(&path).unwrap_or_default();
        match self.find(&uri) {
            Some((project, file)) => {
                let target = &mut self.projects[project];
                if target.document(file).open {
                    return None;
                }
                target.set_text(file, text);
                Some(project)
            }
            None if self.projects.iter().any(|p| p.contains(&path)) && path.is_file() => {
                Some(self.add(uri, text).0)
            }
            None => None,
        }
    }
}

pub fn path_of_uri(uri: &Uri) -> Option<PathBuf> {
    url::Url::parse(uri.as_str()).ok()?.to_file_path().ok()
}

pub fn uri_of_path(path: &Path) -> Option<Uri> {
    let absolute = std::path::absolute(path).ok()?;
    url::Url::from_file_path(absolute)
        .ok()?
        .as_str()
        .parse()
        .ok()
}
