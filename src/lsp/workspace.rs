//! The programs an editor works on: the files of each workspace folder,
//! the editor's text for the open ones, and what the checker found.
//!
//! A folder is one program, as `svc check DIR` loads it (or as its
//! `svc.toml` names it). A file opened outside every folder is a program
//! of its own. Each file is parsed on its own, when its text changes, and
//! only the declarations an edit touches are read again
//! ([`syntax::incremental`]): they replace the ones they were in the
//! program, in place, and the file's later declarations move with the
//! text. So an edit costs the parse of a declaration or two, and one check
//! of the program, however large the file.

use std::path::{Path, PathBuf};

use lsp_types::Uri;

use super::text::{Encoding, LineIndex};
use crate::check::model::Names;
use crate::check::{self, Analysis};
use crate::diagnostic::{self, Diagnostic};
use crate::source::{self, FileId, Span};
use crate::syntax::ast::{ITEM_KINDS, Program};
use crate::syntax::incremental::{Outline, Reparsed};

/// One `.svc` file of a program.
#[derive(Debug)]
pub struct Document {
    pub uri: Uri,
    pub path: PathBuf,
    /// The text as the editor has it; spans index it (a leading
    /// byte-order mark is skipped by the parser, not removed).
    pub text: String,
    pub lines: LineIndex,
    /// Whether the editor holds it: its text is the editor's, not the disk's.
    pub open: bool,
    /// How many declarations of each kind the file has in the program,
    /// in the order of [`Program`]'s vectors. While a file does not parse,
    /// the program keeps what it declared when it last did.
    counts: [usize; ITEM_KINDS],
    /// The text that last parsed (empty before one did), and where its
    /// declarations lie: what the program holds of this file.
    outline: Outline,
    /// What parsing the current text found.
    syntax: Vec<Diagnostic>,
    /// Whether the program holds the current text's declarations.
    current: bool,
    /// Whether any text of the file ever parsed: until one does, the
    /// program lacks whatever it declares.
    ever_parsed: bool,
    /// Whether the text changed since it was parsed. Parsing waits for the
    /// check, so keys typed faster than a large file parses cost one parse.
    unparsed: bool,
}

impl Document {
    fn new(uri: Uri, path: PathBuf) -> Document {
        Document {
            uri,
            path,
            text: String::new(),
            lines: LineIndex::new(""),
            open: false,
            counts: [0; ITEM_KINDS],
            outline: Outline::default(),
            syntax: Vec::new(),
            current: true,
            ever_parsed: false,
            unparsed: false,
        }
    }

    /// Replaces the text, to be parsed before the next check.
    fn set_text(&mut self, text: String) {
        self.lines = LineIndex::new(&text);
        self.text = text;
        self.unparsed = true;
    }

    /// Parses the text, and puts its declarations in `program`, which
    /// holds the file's from index `at` of each vector: only those an edit
    /// touched are read again when the file parsed before.
    fn parse_into(&mut self, file: FileId, program: &mut Program, at: [usize; ITEM_KINDS]) {
        self.unparsed = false;
        match self.outline.reparse(file, &self.text) {
            Reparsed::Parsed(change) => {
                let (counts, diagnostics) = self.outline.apply(change, program, at);
                self.counts = counts;
                self.parsed(diagnostics);
            }
            Reparsed::Failed(diagnostics) => {
                self.current = false;
                self.syntax = diagnostics;
            }
        }
    }

    /// The text parsed: the program holds its declarations.
    fn parsed(&mut self, syntax: Vec<Diagnostic>) {
        self.current = true;
        self.ever_parsed = true;
        self.syntax = syntax;
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

/// What the checker found in a program, with the names it resolved.
#[derive(Debug)]
pub struct Analyzed {
    pub analysis: Analysis,
}

impl Analyzed {
    /// The check of a program; with `names`, where every name is declared
    /// and used (what hover, definition, references and rename read).
    fn of(program: &Program, files: &[Document], names: bool) -> Analyzed {
        let texts = Texts(files);
        Analyzed {
            analysis: if names {
                check::check_with_names(program, &texts)
            } else {
                check::check(program, &texts)
            },
        }
    }

    fn has_names(&self) -> bool {
        self.analysis.names.is_some()
    }
}

/// The texts of the editor's files, for fixes: only those whose text the
/// program's spans point into.
struct Texts<'f>(&'f [Document]);

impl crate::source::Texts for Texts<'_> {
    fn text(&self, file: FileId) -> Option<&str> {
        self.0
            .get(file.0 as usize)
            .filter(|d| d.current)
            .map(|d| d.text.as_str())
    }
}

/// One program: a folder's files, or one file opened alone.
#[derive(Debug)]
pub struct Project {
    /// `None` for a file opened outside every folder.
    pub root: Option<PathBuf>,
    /// What the program is made of: the folder, or the files and
    /// directories its `svc.toml` names.
    program_paths: Vec<PathBuf>,
    /// Indexed by [`FileId`]; a file that was deleted keeps its slot, empty.
    pub files: Vec<Document>,
    /// The declarations of every file, each file's in one run per kind, in
    /// the order of the files.
    program: Program,
    analyzed: Option<Analyzed>,
    /// Files whose text changed since their diagnostics were last taken.
    edited: Vec<FileId>,
}

impl Project {
    fn new(root: Option<PathBuf>) -> Project {
        Project {
            program_paths: root.iter().cloned().collect(),
            root,
            files: Vec::new(),
            program: Program::default(),
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
        project.program_paths = paths.iter().map(|p| absolute(p)).collect();
        if let Ok(found) = source::find(&paths) {
            for path in found.files {
                if let (Ok(text), Some(uri)) = (source::read(&path), uri_of_path(&path)) {
                    project.add(uri, path, text);
                }
            }
        }
        // Only files with diagnostics are published at the start.
        project.edited.clear();
        project
    }

    fn add(&mut self, uri: Uri, path: PathBuf, text: String) -> FileId {
        let id = FileId(self.files.len() as u32);
        self.files.push(Document::new(uri, path));
        self.set_text(id, text);
        id
    }

    /// Whether a file belongs to the program: it is below one of the
    /// program's paths (a file opened elsewhere in the folder is not).
    fn contains(&self, path: &Path) -> bool {
        let path = absolute(path);
        self.program_paths.iter().any(|p| path.starts_with(p))
    }

    /// The file a URI names: the same URI, or another spelling of the
    /// same path (editors differ in what they percent-encode).
    pub fn file_of(&self, uri: &Uri) -> Option<FileId> {
        let found = self.files.iter().position(|d| d.uri == *uri).or_else(|| {
            let path = path_of_uri(uri)?;
            self.files.iter().position(|d| d.path == path)
        });
        found.map(|i| FileId(i as u32))
    }

    pub fn document(&self, file: FileId) -> &Document {
        &self.files[file.0 as usize]
    }

    /// Sets a file's text; it is parsed, and the program checked again,
    /// when next asked. The same text again (an editor opening a file as it
    /// is on disk) changes nothing.
    pub fn set_text(&mut self, file: FileId, text: String) {
        let index = file.0 as usize;
        let document = &mut self.files[index];
        if document.text == text && document.ever_parsed {
            return;
        }
        document.set_text(text);
        if let Some(old) = self.analyzed.take() {
            drop_elsewhere(old);
        }
        if !self.edited.contains(&file) {
            self.edited.push(file);
        }
    }

    /// Parses the files whose text changed, and puts each one's
    /// declarations in the program in place of the ones it had.
    fn parse_changed(&mut self) {
        let mut at = [0; ITEM_KINDS];
        for index in 0..self.files.len() {
            let file = FileId(index as u32);
            if self.files[index].unparsed {
                self.files[index].parse_into(file, &mut self.program, at);
            }
            for (kind, count) in self.files[index].counts.iter().enumerate() {
                at[kind] += count;
            }
        }
    }

    /// The files edited since the last call: their diagnostics are sent
    /// even when unchanged, so the editor knows they are for the new text.
    pub fn take_edited(&mut self) -> Vec<FileId> {
        std::mem::take(&mut self.edited)
    }

    /// Whether diagnostics are due: the program changed, or a file was
    /// edited or opened since they were last taken.
    pub fn is_stale(&self) -> bool {
        self.analyzed.is_none() || !self.edited.is_empty()
    }

    /// The program checked, with its files and its names: what requests
    /// read.
    pub fn view(&mut self) -> View<'_> {
        self.view_with(true)
    }

    /// The program checked; with `names`, names recorded too. Diagnostics
    /// alone, which every edit asks for, skip recording the names (a tenth
    /// of the check); the first request after an edit that needs them
    /// checks again with them.
    fn view_with(&mut self, names: bool) -> View<'_> {
        if self.analyzed.is_none() {
            self.parse_changed();
        }
        if names && let Some(old) = self.analyzed.take_if(|analyzed| !analyzed.has_names()) {
            drop_elsewhere(old);
        }
        let program = &self.program;
        let files = &self.files;
        View {
            analyzed: self
                .analyzed
                .get_or_insert_with(|| Analyzed::of(program, files, names)),
            program,
            files,
        }
    }

    /// The program checked, from the files as they are now.
    pub fn analyzed(&mut self) -> &Analyzed {
        self.view().analyzed
    }

    /// The diagnostics to show, per file: what parsing found, and what the
    /// check found where the file's text is the one checked.
    pub fn diagnostics(&mut self) -> Vec<Vec<Diagnostic>> {
        let View {
            analyzed, files, ..
        } = self.view_with(false);
        let mut per_file: Vec<Vec<Diagnostic>> = files.iter().map(|d| d.syntax.clone()).collect();
        // With a file that never parsed, the program misses its
        // declarations, and the check would report every use of them: as
        // `svc check`, only the syntax errors are shown until it parses.
        let incomplete = files.iter().any(|d| !d.ever_parsed);
        let checked = if incomplete {
            &[][..]
        } else {
            &analyzed.analysis.diagnostics[..]
        };
        for found in checked {
            let Some(span) = found.primary_span() else {
                continue;
            };
            let Some(document) = files.get(span.file.0 as usize) else {
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

/// Frees a checked program's findings on a thread of their own: at 1,000
/// services that is milliseconds of every keystroke, and nothing waits for
/// it. Where no thread can be started, here.
fn drop_elsewhere(old: Analyzed) {
    let mut kept = Some(old);
    let handed = std::thread::Builder::new().name("lsp-free".into()).spawn({
        let old = kept.take();
        move || drop(old)
    });
    if let Err(error) = handed {
        tracing::debug!("freeing on this thread: {error}");
    }
    drop(kept);
}

/// A checked program and its files, to answer a request.
#[derive(Clone, Copy)]
pub struct View<'p> {
    pub analyzed: &'p Analyzed,
    pub program: &'p Program,
    pub files: &'p [Document],
}

impl<'p> View<'p> {
    /// Where every name is declared and used, as the checker resolved them.
    pub fn names(&self) -> &'p Names {
        static NONE: std::sync::OnceLock<Names> = std::sync::OnceLock::new();
        self.analyzed
            .analysis
            .names
            .as_ref()
            .unwrap_or_else(|| NONE.get_or_init(Names::default))
    }

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
    pub fn open(&mut self, uri: Uri, text: String) {
        let (project, file) = match self.find(&uri) {
            Some(found) => found,
            None => self.add(uri, String::new()),
        };
        let target = &mut self.projects[project];
        target.files[file.0 as usize].open = true;
        target.set_text(file, text);
        // Its diagnostics are sent on opening, even when the text is the
        // one already checked: the editor may have dropped them at close.
        if !target.edited.contains(&file) {
            target.edited.push(file);
        }
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
    /// file opened alone is forgotten. Whether the file is still in a
    /// program.
    pub fn close(&mut self, uri: &Uri) -> bool {
        let Some((project, file)) = self.find(uri) else {
            return false;
        };
        if self.projects[project].root.is_none() {
            self.projects.remove(project);
            return false;
        }
        let target = &mut self.projects[project];
        let document = &mut target.files[file.0 as usize];
        document.open = false;
        let text = source::read(&document.path).unwrap_or_default();
        target.set_text(file, text);
        true
    }

    /// A file changed on disk (created, changed or deleted): an open
    /// document keeps the editor's text.
    pub fn changed_on_disk(&mut self, uri: Uri) {
        let Some(path) = path_of_uri(&uri).filter(|p| p.extension().is_some_and(|e| e == "svc"))
        else {
            return;
        };
        let text = source::read(&path).unwrap_or_default();
        match self.find(&uri) {
            Some((project, file)) => {
                let target = &mut self.projects[project];
                if !target.document(file).open {
                    target.set_text(file, text);
                }
            }
            None if self.projects.iter().any(|p| p.contains(&path)) && path.is_file() => {
                self.add(uri, text);
            }
            None => {}
        }
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Code;

    fn uri(name: &str) -> Uri {
        format!("file:///ws/{name}").parse().unwrap()
    }

    /// The program as `svc check` would build it from the texts now.
    fn fresh(project: &Project) -> Program {
        let mut program = Program::default();
        for (i, document) in project.files.iter().enumerate() {
            program.append(crate::syntax::parse_file(FileId(i as u32), &document.text).0);
        }
        program
    }

    #[test]
    fn an_edit_replaces_only_its_files_declarations() {
        let mut project = Project::new(Some(PathBuf::from("/ws")));
        let texts = [
            "secret A { environment_specific }\nrole r { grant update_secret A }\n",
            "secret B { }\nsecret C { }\nservice s { var v: string }\n",
            "role q { grant read_secret B }\nsecret D { locked }\n",
        ];
        for (i, text) in texts.iter().enumerate() {
            project.add(
                uri(&format!("{i}.svc")),
                format!("/ws/{i}.svc").into(),
                text.to_string(),
            );
        }
        project.analyzed();
        assert_eq!(project.program, fresh(&project));
        // More declarations, fewer, then none, in the middle file.
        for text in [
            "secret B { }\nsecret C { }\nsecret E { }\nservice s { var v: string }\nservice t { }\n",
            "service t { }\n",
            "",
            "secret B2 { }\n",
        ] {
            project.set_text(FileId(1), text.to_string());
            project.analyzed();
            assert_eq!(project.program, fresh(&project), "after {text:?}");
        }
        let names: Vec<&str> = project
            .program
            .secrets
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(names, ["A", "B2", "D"]);
    }

    #[test]
    fn a_file_that_stops_parsing_keeps_its_declarations() {
        let mut project = Project::new(Some(PathBuf::from("/ws")));
        let a = project.add(uri("a.svc"), "/ws/a.svc".into(), "secret A { }\n".into());
        project.add(
            uri("b.svc"),
            "/ws/b.svc".into(),
            "role r { grant read_secret A }\nuser u { roles r }\n".into(),
        );
        project.analyzed();
        project.set_text(a, "secret A { \n".into());
        project.analyzed();
        assert!(!project.document(a).is_current());
        assert_eq!(project.program.secrets.len(), 1);
        let per_file = project.diagnostics();
        // The syntax error is shown; no unknown secret in the other file.
        assert_eq!(per_file[0].len(), 1, "{:?}", per_file[0]);
        assert_eq!(per_file[0][0].code, Code::Syntax);
        assert!(
            per_file[1].iter().all(|d| d.code != Code::UnknownSecret),
            "{:?}",
            per_file[1]
        );
    }

    #[test]
    fn edits_in_one_file_keep_the_program_a_fresh_parse_gives() {
        let mut project = Project::new(Some(PathBuf::from("/ws")));
        project.add(uri("a.svc"), "/ws/a.svc".into(), "secret A { }\n".into());
        let mut text = String::from(
            "notify n {\n  url \"https://hooks.example/x\"\n  events connection.recovered\n}\n",
        );
        for i in 0..20 {
            text.push_str(&format!(
                "secret S{i} {{ environment_specific }}\nservice s{i} {{\n  action a {{ log \"{i}\" }}\n}}\n"
            ));
        }
        let b = project.add(uri("b.svc"), "/ws/b.svc".into(), text.clone());
        project.add(
            uri("c.svc"),
            "/ws/c.svc".into(),
            "role r { grant read_secret A }\n".into(),
        );
        project.analyzed();
        assert_eq!(project.program, fresh(&project));
        assert_eq!(project.program.notifies.len(), 1);
        // Into a declaration, out of it again, a declaration broken and
        // mended, one added and one removed: after each, what a parse of
        // every file from scratch gives.
        let at = text.find("log \"7\"").unwrap() + 5;
        let edits: [(usize, usize, &str); 5] = [
            (at, at, "seven "),
            (at, at + 6, ""),
            (at - 6, at - 6, "}"),
            (at - 6, at - 5, ""),
            (0, 0, "secret NEW { }\n"),
        ];
        for (from, to, insert) in edits {
            text.replace_range(from..to, insert);
            project.set_text(b, text.clone());
            project.analyzed();
            if project.document(b).is_current() {
                assert_eq!(project.program, fresh(&project), "after {insert:?}");
            }
        }
        assert!(project.document(b).is_current());
        assert_eq!(project.program.notifies.len(), 1);
        assert_eq!(project.program.secrets.len(), 22);
    }

    #[test]
    fn diagnostics_skip_the_names_and_a_request_gets_them() {
        let mut project = Project::new(Some(PathBuf::from("/ws")));
        let a = project.add(
            uri("a.svc"),
            "/ws/a.svc".into(),
            "secret A { }\nrole r { grant read_secret A grant read_secret B }\n".into(),
        );
        let without = project.diagnostics();
        assert!(!project.analyzed.as_ref().unwrap().has_names());
        let offset = project.document(a).text.find("read_secret A").unwrap() + 12;
        let found = project.view().names().at(a, offset).cloned();
        assert_eq!(found.map(|o| o.symbol.name().to_string()), Some("A".into()));
        assert!(project.analyzed.as_ref().unwrap().has_names());
        // The same findings either way, and the check with names is kept.
        assert_eq!(project.diagnostics(), without);
        assert!(project.analyzed.as_ref().unwrap().has_names());
        assert!(without[0].iter().any(|d| d.code == Code::UnknownSecret));
    }
}
