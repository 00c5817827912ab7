//! Source files and byte spans into them.
//!
//! A program may come from several files. Every span carries the id of the
//! file it points into, so a diagnostic can always name its file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

/// Index of a file in a [`SourceMap`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct FileId(pub u32);

/// A byte range in one source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Span {
    /// Index into the program's files.
    pub file: FileId,
    pub start: u32,
    pub len: u32,
}

impl Span {
    pub fn new(file: FileId, start: usize, end: usize) -> Span {
        Span {
            file,
            start: start as u32,
            len: end.saturating_sub(start) as u32,
        }
    }

    pub fn end(&self) -> usize {
        self.start as usize + self.len as usize
    }

    pub fn range(&self) -> std::ops::Range<usize> {
        self.start as usize..self.end()
    }

    /// The smallest span that covers both.
    pub fn to(&self, other: Span) -> Span {
        let start = self.start.min(other.start) as usize;
        let end = self.end().max(other.end());
        Span::new(self.file, start, end)
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(span: Span) -> Self {
        (span.start as usize, span.len as usize).into()
    }
}

/// The UTF-8 byte-order mark some editors write at the start of a file. It
/// is not part of the program: a file's text starts after it, so columns
/// on the first line count from the first character a reader sees.
pub const BOM: char = '\u{feff}';

/// The text of each file of a program, for what needs more than spans:
/// the fixes that keep a file's layout.
pub trait Texts: Sync {
    /// `None` when the text is unknown, or is not the one the program's
    /// spans point into (an editor's file that no longer parses).
    fn text(&self, file: FileId) -> Option<&str>;
}

impl Texts for SourceMap {
    fn text(&self, file: FileId) -> Option<&str> {
        self.files.get(file.0 as usize).map(|f| &*f.text)
    }
}

/// No text at all: diagnostics come without the fixes that need one.
pub struct NoTexts;

impl Texts for NoTexts {
    fn text(&self, _: FileId) -> Option<&str> {
        None
    }
}

/// One loaded source file.
#[derive(Debug)]
pub struct SourceFile {
    /// The path as the user should see it (relative where it was given so).
    pub name: String,
    pub path: PathBuf,
    pub text: Arc<str>,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(
        name: impl Into<String>,
        path: impl Into<PathBuf>,
        text: impl Into<Arc<str>>,
    ) -> Self {
        let mut text: Arc<str> = text.into();
        if let Some(rest) = text.strip_prefix(BOM) {
            text = rest.into();
        }
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        SourceFile {
            name: name.into(),
            path: path.into(),
            text,
            line_starts,
        }
    }

    /// One-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_index(offset);
        let start = self.line_starts[line];
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line + 1, column + 1)
    }

    /// The zero-based index of the line holding a byte offset.
    pub fn line_index(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&offset.min(self.text.len())) {
            Ok(line) => line,
            Err(next) => next - 1,
        }
    }

    /// Where the line `index` starts; the end of the text past the last line.
    pub fn line_start(&self, index: usize) -> usize {
        self.line_starts
            .get(index)
            .copied()
            .unwrap_or(self.text.len())
    }

    /// The byte range of the line holding an offset, without its newline.
    pub fn line_range(&self, offset: usize) -> std::ops::Range<usize> {
        let index = self.line_index(offset);
        let start = self.line_start(index);
        let end = self
            .line_starts
            .get(index + 1)
            .map_or(self.text.len(), |next| next - 1);
        start..end
    }

    pub fn snippet(&self, span: Span) -> &str {
        self.text.get(span.range()).unwrap_or("")
    }
}

/// All files of one program.
#[derive(Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
    /// Entries of the directories searched that were not read.
    pub skipped: Vec<Skipped>,
}

impl SourceMap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, file: SourceFile) -> FileId {
        self.files.push(file);
        FileId(self.files.len() as u32 - 1)
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn files(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (FileId(i as u32), f))
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// `file:line:col` of a span, for messages that point at another file.
    pub fn location(&self, span: Span) -> Location<'_> {
        let file = self.get(span.file);
        let (line, column) = file.line_col(span.start as usize);
        Location {
            file: &file.name,
            line,
            column,
        }
    }
}

pub struct Location<'a> {
    pub file: &'a str,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// The largest source file svc reads: far beyond any real program (the
/// benchmark of 10,000 services is 5 MiB), and small enough that reading
/// and parsing one cannot exhaust memory. Bytes past it are never read, so
/// an endless file (`/dev/zero`, a FIFO) ends with an error.
pub const MAX_FILE_SIZE: u64 = 64 * 1024 * 1024;

/// Error while finding or reading source files.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{path}` is not valid UTF-8")]
    NotUtf8 { path: PathBuf },
    #[error("`{path}` is larger than 64 MiB; svc reads source files up to 64 MiB")]
    TooLarge { path: PathBuf },
    #[error("no `.svc` files found in `{path}`")]
    Empty { path: PathBuf },
}

/// A `.svc` entry a directory walk found but did not read: only regular
/// files (or links to them) are read from a directory, since a FIFO or a
/// device there may never end or may block the walk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    /// What it is: "a FIFO", "a socket", "a character device", ...
    pub kind: &'static str,
}

/// What [`find`] found: the files to read, each once, and what it skipped.
#[derive(Debug, Default)]
pub struct Found {
    pub files: Vec<PathBuf>,
    pub skipped: Vec<Skipped>,
}

/// Loads the given paths. A directory contributes every `.svc` file below it
/// (hidden directories skipped), in a stable order. Each file is read once,
/// however many paths and links lead to it; `.svc` entries of a directory
/// that are not regular files are skipped and listed in the map.
pub fn load(paths: &[PathBuf]) -> Result<SourceMap, LoadError> {
    let found = find(paths)?;
    let mut map = SourceMap::new();
    for path in found.files {
        let text = read(&path)?;
        map.add(SourceFile::new(display_name(&path), path, text));
    }
    map.skipped = found.skipped;
    Ok(map)
}

/// Reads one source file: a path given on the command line may also be a
/// FIFO or a device (`svc check <(generate)`), so every read goes through
/// [`read_bounded`].
pub fn read(path: &Path) -> Result<String, LoadError> {
    let file = std::fs::File::open(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    // The length of a regular file saves reallocations; a FIFO has none.
    let hint = file.metadata().map_or(0, |m| m.len()).min(MAX_FILE_SIZE);
    read_bounded(file, hint as usize, path)
}

/// Reads at most [`MAX_FILE_SIZE`] bytes of UTF-8 text, and one byte more
/// to know whether there was more: never the whole of an endless input.
pub fn read_bounded(
    reader: impl std::io::Read,
    capacity: usize,
    path: &Path,
) -> Result<String, LoadError> {
    use std::io::Read as _;
    let mut bytes = Vec::with_capacity(capacity);
    reader
        .take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(LoadError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    String::from_utf8(bytes).map_err(|_| LoadError::NotUtf8 {
        path: path.to_path_buf(),
    })
}

/// What identifies a file or directory whatever the path to it: device and
/// inode where there are some.
#[cfg(unix)]
type FileKey = (u64, u64);

#[cfg(unix)]
fn file_key(_path: &Path, meta: &std::fs::Metadata) -> Option<FileKey> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
type FileKey = PathBuf;

#[cfg(not(unix))]
fn file_key(path: &Path, _meta: &std::fs::Metadata) -> Option<FileKey> {
    std::fs::canonicalize(path).ok()
}

/// What a file that is neither a directory nor a regular file is.
fn special_kind(file_type: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_socket() {
            return "a socket";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
    }
    let _ = file_type;
    "not a regular file"
}

/// The `.svc` files the paths name: files as given, directories searched.
/// Links are followed, but every file and directory is visited once, so a
/// link to a parent directory neither loops nor loads a file twice.
pub fn find(paths: &[PathBuf]) -> Result<Found, LoadError> {
    let mut walk = Walk::default();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|source| LoadError::Read {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            // Empty means no `.svc` file below it, not only none new.
            let before = walk.svc_files;
            if walk.directory(path, &meta)? && walk.svc_files == before {
                return Err(LoadError::Empty { path: path.clone() });
            }
        } else if walk.first_visit(path, &meta) {
            // Named on the command line: read whatever it is.
            walk.found.files.push(path.clone());
        }
    }
    Ok(walk.found)
}

#[derive(Default)]
struct Walk {
    found: Found,
    seen: std::collections::HashSet<FileKey>,
    /// `.svc` files met in directories, each time one is met.
    svc_files: usize,
}

impl Walk {
    /// Records a visit; false when that file or directory was seen before.
    fn first_visit(&mut self, path: &Path, meta: &std::fs::Metadata) -> bool {
        match file_key(path, meta) {
            Some(key) => self.seen.insert(key),
            None => true,
        }
    }

    /// Searches a directory without recursion: how deep directories nest
    /// is up to the file system, not to svc's stack. False when it was
    /// searched before.
    fn directory(&mut self, root: &Path, meta: &std::fs::Metadata) -> Result<bool, LoadError> {
        if !self.first_visit(root, meta) {
            return Ok(false);
        }
        let mut stack = vec![sorted_entries(root)?.into_iter()];
        while let Some(entries) = stack.last_mut() {
            let Some(path) = entries.next() else {
                stack.pop();
                continue;
            };
            let hidden = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if hidden {
                continue;
            }
            let is_svc = path.extension().is_some_and(|e| e == "svc");
            let meta = match std::fs::metadata(&path) {
                Ok(meta) => meta,
                // A broken link: an error if it claims to be a source file.
                Err(source) if is_svc => return Err(LoadError::Read { path, source }),
                Err(_) => continue,
            };
            if meta.is_dir() {
                if self.first_visit(&path, &meta) {
                    stack.push(sorted_entries(&path)?.into_iter());
                }
            } else if !is_svc {
                continue;
            } else if !meta.is_file() {
                self.found.skipped.push(Skipped {
                    path,
                    kind: special_kind(meta.file_type()),
                });
            } else {
                self.svc_files += 1;
                if self.first_visit(&path, &meta) {
                    self.found.files.push(path);
                }
            }
        }
        Ok(true)
    }
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| LoadError::Read {
            path: dir.to_path_buf(),
            source,
        })?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    Ok(entries)
}

fn display_name(path: &Path) -> String {
    let path = path.strip_prefix("./").unwrap_or(path);
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_overlap_load_each_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(root.join("empty")).unwrap();
        std::fs::write(root.join("a.svc"), "").unwrap();
        std::fs::write(root.join("sub/b.svc"), "").unwrap();
        let names = |paths: &[PathBuf]| -> Vec<String> {
            find(paths)
                .unwrap()
                .files
                .iter()
                .map(|p| p.strip_prefix(root).unwrap().display().to_string())
                .collect()
        };
        let all = vec!["a.svc".to_string(), "sub/b.svc".to_string()];
        assert_eq!(names(&[root.into(), root.into()]), all);
        assert_eq!(names(&[root.join("a.svc"), root.into()]), all);
        assert_eq!(names(&[root.into(), root.join("sub")]), all);
        assert_eq!(names(&[root.join("a.svc"), root.join("a.svc")]), ["a.svc"]);
        assert!(matches!(
            find(&[root.join("empty")]),
            Err(LoadError::Empty { .. })
        ));
    }

    #[test]
    fn line_col_counts_from_one_in_characters() {
        let file = SourceFile::new("a.svc", "a.svc", "ab\nçd\n");
        assert_eq!(file.line_col(0), (1, 1));
        assert_eq!(file.line_col(1), (1, 2));
        assert_eq!(file.line_col(3), (2, 1));
        // `ç` is two bytes but one column.
        assert_eq!(file.line_col(5), (2, 2));
        assert_eq!(file.line_col(100), (3, 1));
    }
}
