//! Durable file replacement and cross-process locks.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Replaces `path` with `contents` so that a crash at any moment leaves
/// either the old file or the new one, never a mix: a temporary file in the
/// same directory, mode 0600, written and fsynced, renamed over the old
/// file, then the directory fsynced so the rename itself is durable.
pub fn write_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    write_file_with(path, |file| file.write_all(contents))
}

/// As [`write_file`], with the contents written by `write` straight into
/// the temporary file (a large document need not be built in memory first).
pub fn write_file_with(
    path: &Path,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let dir = parent(path);
    let mut temp = tempfile::Builder::new()
        .prefix(&temp_prefix(path))
        .suffix(".tmp")
        .permissions(private())
        .tempfile_in(dir)?;
    write(temp.as_file_mut())?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    File::open(dir)?.sync_all()
}

/// Removes temporary files that a writer killed mid-write left behind.
/// Call only while holding the lock that serialises writers of `path`.
pub fn remove_stale_temp_files(path: &Path) {
    let prefix = temp_prefix(path);
    let Ok(entries) = std::fs::read_dir(parent(path)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix) && name.ends_with(".tmp") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn temp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    format!(".{name}.")
}

#[cfg(unix)]
fn private() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(0o600)
}

#[cfg(not(unix))]
fn private() -> std::fs::Permissions {
    // Permissions of a new file as the platform makes them.
    tempfile::tempfile()
        .and_then(|f| f.metadata())
        .map(|m| m.permissions())
        .expect("temp file")
}

/// Creates a directory (and its parents) readable only by its owner.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path)
}

/// An exclusive lock on a lock file, held until dropped. The operating
/// system releases it when the process ends, however it ends.
pub struct Lock {
    _file: File,
    pub path: PathBuf,
}

/// Why a lock could not be taken.
pub enum LockError {
    TimedOut,
    Io(io::Error),
}

impl Lock {
    /// Takes the lock, waiting at most `timeout`.
    pub fn acquire(path: &Path, timeout: Duration) -> Result<Lock, LockError> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(path).map_err(LockError::Io)?;
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => {
                    return Ok(Lock {
                        _file: file,
                        path: path.to_path_buf(),
                    });
                }
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => return Err(LockError::Io(e)),
            }
            let waited = started.elapsed();
            if waited >= timeout {
                return Err(LockError::TimedOut);
            }
            // Short pauses first: most writers hold the lock for milliseconds.
            std::thread::sleep(pause.min(timeout - waited));
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_file_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev.age");
        write_file(&path, b"one").unwrap();
        write_file(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("dev.age")]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn a_held_lock_times_out_for_the_next_taker() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let held = Lock::acquire(&path, Duration::from_secs(1)).ok().unwrap();
        assert!(matches!(
            Lock::acquire(&path, Duration::from_millis(30)),
            Err(LockError::TimedOut)
        ));
        drop(held);
        assert!(Lock::acquire(&path, Duration::from_millis(30)).is_ok());
    }
}
