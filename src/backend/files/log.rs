//! Endpoint logs: one JSON line per run in `LOG_DIR/ENV/SERVICE.ENDPOINT.jsonl`,
//! and the line-per-event files svc appends to (schedule and audit logs).
//!
//! Every append goes through [`append_line`]: the file is opened without
//! following a symbolic link, and when a line would take it past the
//! rotation size it is renamed to `NAME.1` (`NAME.1` to `NAME.2`, ...) under
//! a lock, so several processes appending to one log never rotate it twice.
//! Reading the last records walks the files backwards from their ends, so
//! memory holds the records asked for, not the log.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::backend::RunRecord;
use crate::redact::Redactor;
use crate::secrets::atomic::{self, Lock, LockError};

/// The size at which a log is rotated unless configured otherwise.
pub const DEFAULT_MAX_BYTES: u64 = 16 * 1024 * 1024;
/// How many rotated files (`NAME.1` ... `NAME.3`) are kept.
pub const KEEP: usize = 3;
/// How long an appender waits for another process that is rotating the
/// same log; past that it appends to the file as it is.
const ROTATE_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

static MAX_BYTES: AtomicU64 = AtomicU64::new(DEFAULT_MAX_BYTES);

/// When a log is rotated, and how many rotated files are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// A file is rotated before a line would take it past this size
    /// (0: never rotated).
    pub max_bytes: u64,
    pub keep: usize,
}

impl Rotation {
    /// The rotation of this process: [`DEFAULT_MAX_BYTES`] unless
    /// [`set_max_bytes`] changed it, and [`KEEP`] files.
    pub fn current() -> Rotation {
        Rotation {
            max_bytes: MAX_BYTES.load(Ordering::Relaxed),
            keep: KEEP,
        }
    }
}

/// Sets the rotation size of every log this process appends to
/// (`--log-max-bytes`).
pub fn set_max_bytes(max_bytes: u64) {
    MAX_BYTES.store(max_bytes, Ordering::Relaxed);
}

pub fn path(log_dir: &Path, env: &str, endpoint: &str) -> PathBuf {
    log_dir.join(env).join(format!("{endpoint}.jsonl"))
}

/// The `index`-th rotated file of a log: `NAME.1` is the most recent.
pub fn rotated_path(path: &Path, index: usize) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{index}"));
    path.with_file_name(name)
}

/// Appends a record (already redacted) as one line. The line is written
/// with one `write` to a file opened for appending, so lines of concurrent
/// runs do not mix.
pub fn append(log_dir: &Path, record: &RunRecord, redactor: &Redactor) -> io::Result<()> {
    append_to(
        &path(log_dir, &record.environment, &record.endpoint),
        record,
        redactor,
    )
}

/// Appends a record to a log file of its own (a schedule's log, say).
pub fn append_to(path: &Path, record: &RunRecord, redactor: &Redactor) -> io::Result<()> {
    let mut record = record.clone();
    record.redact(redactor);
    let mut line = serde_json::to_string(&record).map_err(io::Error::other)?;
    line.push('\n');
    append_line(path, line.as_bytes())
}

/// Appends one line (ending in `\n`) to a log, creating its directory and
/// the file (mode 0600), rotating it first if the line would take it past
/// the rotation size. Refuses a file that is a symbolic link.
pub fn append_line(path: &Path, line: &[u8]) -> io::Result<()> {
    append_line_with(path, line, Rotation::current())
}

/// [`append_line`] with an explicit rotation.
pub fn append_line_with(path: &Path, line: &[u8], rotation: Rotation) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        atomic::create_private_dir(dir)?;
    }
    let mut file = atomic::open_append(path)?;
    if needs_rotation(&file, line.len(), rotation)? {
        file = rotate(path, line.len(), rotation)?.unwrap_or(file);
    }
    file.write_all(line)
}

fn needs_rotation(file: &File, incoming: usize, rotation: Rotation) -> io::Result<bool> {
    if rotation.max_bytes == 0 {
        return Ok(false);
    }
    let len = file.metadata()?.len();
    Ok(len > 0 && len.saturating_add(incoming as u64) > rotation.max_bytes)
}

/// Rotates the log if, under the rotation lock, the file the path names now
/// still needs it; returns that file (or the new one) open for appending,
/// or `None` if another process held the lock too long.
fn rotate(path: &Path, incoming: usize, rotation: Rotation) -> io::Result<Option<File>> {
    let mut lock_name = std::ffi::OsString::from(".");
    lock_name.push(path.file_name().unwrap_or_default());
    lock_name.push(".lock");
    let _lock = match Lock::acquire(&path.with_file_name(lock_name), ROTATE_LOCK_TIMEOUT) {
        Ok(lock) => lock,
        Err(LockError::TimedOut) => return Ok(None),
        Err(LockError::Io(e)) => return Err(e),
    };
    // Another appender may have rotated it between our open and the lock:
    // decide on the file the path names now, never on the one we opened.
    let current = atomic::open_append(path)?;
    if !needs_rotation(&current, incoming, rotation)? {
        return Ok(Some(current));
    }
    drop(current);
    // An appender that opened the old file before the rename still writes
    // its line there, into `NAME.1`: late, but not lost.
    for index in (1..rotation.keep).rev() {
        rename_if_present(&rotated_path(path, index), &rotated_path(path, index + 1))?;
    }
    if rotation.keep == 0 {
        std::fs::remove_file(path)?;
    } else {
        std::fs::rename(path, rotated_path(path, 1))?;
    }
    atomic::open_append(path).map(Some)
}

fn rename_if_present(from: &Path, to: &Path) -> io::Result<()> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// The last `count` records of a log, newest first, looking into its
/// rotated files when the current one holds fewer. Lines that do not parse
/// (a line cut short by a full disk, say) are skipped.
pub fn read_last(path: &Path, count: usize) -> io::Result<Vec<RunRecord>> {
    let mut records: Vec<RunRecord> = Vec::new();
    // A rotation while we read can show one record in two files: a record
    // of an older file already seen in a newer one is skipped.
    let mut seen = HashSet::new();
    let mut index = 0;
    while records.len() < count {
        let file_path = if index == 0 {
            path.to_path_buf()
        } else {
            rotated_path(path, index)
        };
        let mut file = match File::open(&file_path) {
            Ok(file) => file,
            // The current file may not exist yet while rotated ones do.
            Err(e) if e.kind() == io::ErrorKind::NotFound && index == 0 => {
                index += 1;
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => break,
            Err(e) => return Err(e),
        };
        let from = records.len();
        lines_backwards(&mut file, |line| {
            if let Ok(record) = serde_json::from_slice::<RunRecord>(line)
                && !seen.contains(&record.id)
            {
                records.push(record);
            }
            records.len() < count
        })?;
        seen.extend(records[from..].iter().map(|r| r.id.clone()));
        index += 1;
    }
    Ok(records)
}

/// The size of the blocks a log is read backwards in.
const BLOCK: usize = 64 * 1024;
/// A longer line is skipped rather than held.
const MAX_LINE: usize = 8 * 1024 * 1024;

/// Calls `each` with every line of `file`, last first, until it returns
/// false. Holds one block and the line being assembled, never the file.
fn lines_backwards(file: &mut File, mut each: impl FnMut(&[u8]) -> bool) -> io::Result<()> {
    let mut end = file.metadata()?.len();
    // The end of the line being assembled: bytes after the last newline seen.
    let mut partial: Vec<u8> = Vec::new();
    let mut too_long = false;
    let mut block = vec![0u8; BLOCK];
    while end > 0 {
        let start = end.saturating_sub(BLOCK as u64);
        let block = &mut block[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(block)?;
        end = start;
        let mut line_end = block.len();
        while let Some(newline) = block[..line_end].iter().rposition(|&b| b == b'\n') {
            let piece = &block[newline + 1..line_end];
            line_end = newline;
            if too_long {
                too_long = false;
                partial.clear();
                continue;
            }
            let keep_going = if partial.is_empty() {
                piece.is_empty() || each(piece)
            } else {
                let mut line = Vec::with_capacity(piece.len() + partial.len());
                line.extend_from_slice(piece);
                line.extend_from_slice(&partial);
                partial.clear();
                each(&line)
            };
            if !keep_going {
                return Ok(());
            }
        }
        // What is left is the end of a line that started in an earlier block.
        if !too_long {
            if partial.len() + line_end > MAX_LINE {
                too_long = true;
                partial = Vec::new();
            } else {
                let mut joined = Vec::with_capacity(line_end + partial.len());
                joined.extend_from_slice(&block[..line_end]);
                joined.extend_from_slice(&partial);
                partial = joined;
            }
        }
    }
    if !too_long && !partial.is_empty() {
        each(&partial);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(text: &[u8]) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, text).unwrap();
        let mut out = Vec::new();
        lines_backwards(&mut File::open(&path).unwrap(), |line| {
            out.push(String::from_utf8_lossy(line).into_owned());
            true
        })
        .unwrap();
        out
    }

    #[test]
    fn lines_come_last_first_across_blocks() {
        assert_eq!(lines_of(b"a\nbb\n\nccc\n"), ["ccc", "bb", "a"]);
        assert_eq!(lines_of(b"a\nno newline"), ["no newline", "a"]);
        assert!(lines_of(b"").is_empty());
        // Lines that straddle blocks, some longer than a block.
        let lines: Vec<String> = (0..300)
            .map(|i| format!("{i}:{}", "x".repeat((i * 997) % (3 * BLOCK))))
            .collect();
        let text = lines.join("\n") + "\n";
        let mut expected = lines.clone();
        expected.reverse();
        assert_eq!(lines_of(text.as_bytes()), expected);
    }

    fn record(id: usize) -> Vec<u8> {
        let record = serde_json::json!({
            "id": format!("run-{id:04}"), "endpoint": "app.hello", "environment": "dev",
            "identity": "bot", "method": "GET", "trigger": "http",
            "started_at": "2026-11-28T12:00:00Z", "duration_ms": 1, "outcome": "success",
            "trace": [], "variables": {}
        });
        format!("{record}\n").into_bytes()
    }

    #[test]
    fn the_last_records_come_from_rotated_files_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev").join("app.hello.jsonl");
        let line_len = record(0).len() as u64;
        let rotation = Rotation {
            max_bytes: line_len * 4,
            keep: 3,
        };
        for id in 0..20 {
            append_line_with(&path, &record(id), rotation).unwrap();
        }
        // Four lines a file, the current one and three rotated: 16 kept.
        for index in 1..=3 {
            assert_eq!(
                std::fs::metadata(rotated_path(&path, index)).unwrap().len(),
                line_len * 4
            );
        }
        assert!(!rotated_path(&path, 4).exists());
        let ids = |n| -> Vec<String> {
            read_last(&path, n)
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect()
        };
        assert_eq!(ids(1), ["run-0019"]);
        assert_eq!(
            ids(6),
            [
                "run-0019", "run-0018", "run-0017", "run-0016", "run-0015", "run-0014"
            ]
        );
        assert_eq!(ids(100).len(), 16);
        assert_eq!(ids(100).last().unwrap(), "run-0004");
        // Only rotated files left: still read.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(ids(1), ["run-0015"]);
    }

    #[test]
    fn concurrent_appenders_rotate_once_and_lose_no_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.hello.jsonl");
        let rotation = Rotation {
            max_bytes: 4096,
            keep: 500,
        };
        let threads: Vec<_> = (0..8)
            .map(|thread| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for i in 0..150 {
                        append_line_with(&path, &record(thread * 1000 + i), rotation).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let mut files = vec![path.clone()];
        files.extend(
            (1..500)
                .map(|i| rotated_path(&path, i))
                .filter(|p| p.exists()),
        );
        assert!(files.len() > 10, "it rotated: {} files", files.len());
        let mut ids = HashSet::new();
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            for line in text.lines() {
                let record: RunRecord = serde_json::from_str(line).unwrap();
                assert!(ids.insert(record.id), "a line appears twice");
            }
        }
        assert_eq!(ids.len(), 8 * 150);
        assert_eq!(read_last(&path, 10_000).unwrap().len(), 8 * 150);
    }
}
