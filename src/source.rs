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
    #[error("no `.svc` files found in `{path}`")]
    Empty { path: PathBuf },
}

/// Loads the given paths. A directory contributes every `.svc` file below it
/// (hidden directories skipped), in a stable order.
pub fn load(paths: &[PathBuf]) -> Result<SourceMap, LoadError> {
    let files = find(paths)?;
    let mut map = SourceMap::new();
    for path in files {
        let bytes = std::fs::read(&path).map_err(|source| LoadError::Read {
            path: path.clone(),
            source,
        })?;
        let text =
            String::from_utf8(bytes).map_err(|_| LoadError::NotUtf8 { path: path.clone() })?;
        map.add(SourceFile::new(display_name(&path), path, text));
    }
    Ok(map)
}

/// The `.svc` files the paths name: files as given, directories searched.
pub fn find(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadError> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|source| LoadError::Read {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            let before = files.len();
            collect_dir(path, &mut files)?;
            if files.len() == before {
                return Err(LoadError::Empty { path: path.clone() });
            }
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn collect_dir(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let read = |path: &Path| {
        std::fs::read_dir(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let mut entries: Vec<_> = read(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            collect_dir(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "svc") {
            out.push(path);
        }
    }
    Ok(())
}

fn display_name(path: &Path) -> String {
    let path = path.strip_prefix("./").unwrap_or(path);
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
