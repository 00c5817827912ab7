//! Durable file replacement, appends and cross-process locks: the one
//! place that opens files svc writes, so none of them follows a symbolic
//! link (a link planted in a log or state directory must not redirect a
//! write to another file).

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
///
/// A `path` that is a symbolic link is refused: the rename would replace
/// the link with a regular file and leave its target stale.
pub fn write_file_with(
    path: &Path,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    refuse_symlink(path)?;
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

/// Why svc refuses to write a file: it is a symbolic link.
#[derive(Debug)]
pub struct SymlinkRefused {
    pub path: PathBuf,
}

impl std::fmt::Display for SymlinkRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` is a symbolic link; svc does not write through links",
            self.path.display()
        )
    }
}

impl std::error::Error for SymlinkRefused {}

/// Whether an error is a refusal to write through a symbolic link.
pub fn is_symlink_refusal(error: &io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<SymlinkRefused>())
}

fn symlink_refused(path: &Path) -> io::Error {
    io::Error::other(SymlinkRefused {
        path: path.to_path_buf(),
    })
}

fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// An error if `path` is a symbolic link.
pub fn refuse_symlink(path: &Path) -> io::Result<()> {
    if is_symlink(path) {
        return Err(symlink_refused(path));
    }
    Ok(())
}

/// Private files, never through a link: `O_NOFOLLOW` makes the open fail on
/// a link as its last component, and `O_NONBLOCK` keeps a FIFO planted in
/// the path from blocking the writer (it has no effect on regular files).
fn no_follow(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
        options
            .mode(0o600)
            .custom_flags(flags.bits() as std::ffi::c_int);
    }
    options
}

/// Opens `path` with `options` (and [`no_follow`]), and makes sure it is a
/// regular file.
fn open_regular(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    let file = no_follow(options).open(path).map_err(|e| {
        if is_symlink(path) {
            symlink_refused(path)
        } else {
            e
        }
    })?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other(format!(
            "`{}` is not a regular file",
            path.display()
        )));
    }
    Ok(file)
}

/// Opens a file for appending, creating it (mode 0600) if needed. Every
/// file svc appends to (endpoint, schedule and audit logs) is opened here.
/// A symbolic link is refused with [`SymlinkRefused`].
pub fn open_append(path: &Path) -> io::Result<File> {
    open_regular(path, OpenOptions::new().create(true).append(true))
}

/// Reads a file svc wrote, at most `max` bytes: a larger one is refused
/// (`InvalidData`), never read whole.
pub fn read_bounded(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    use std::io::Read as _;
    let file = File::open(path)?;
    let mut bytes = Vec::with_capacity(file.metadata().map_or(0, |m| m.len()).min(max) as usize);
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {max} bytes"),
        ));
    }
    Ok(bytes)
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

impl LockError {
    /// The store error of a writer that could not take the lock at
    /// `lock_path` on `protected` within `timeout`.
    pub fn into_error(self, lock_path: &Path, protected: &Path, timeout: Duration) -> super::Error {
        match self {
            LockError::TimedOut => super::Error::LockTimeout {
                path: protected.to_path_buf(),
                seconds: timeout.as_secs(),
            },
            LockError::Io(source) => super::Error::io("lock", lock_path, source),
        }
    }
}

impl Lock {
    /// Takes the lock, waiting at most `timeout`. A lock file that is a
    /// symbolic link is refused.
    pub fn acquire(path: &Path, timeout: Duration) -> Result<Lock, LockError> {
        let file = open_regular(
            path,
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
        )
        .map_err(LockError::Io)?;
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

    #[cfg(unix)]
    #[test]
    fn links_are_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"keep").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();

        let error = open_append(&link).unwrap_err();
        assert!(is_symlink_refusal(&error), "{error}");
        assert!(error.to_string().contains("is a symbolic link"), "{error}");
        let error = write_file(&link, b"new").unwrap_err();
        assert!(is_symlink_refusal(&error), "{error}");
        assert!(matches!(
            Lock::acquire(&link, Duration::ZERO),
            Err(LockError::Io(e)) if is_symlink_refusal(&e)
        ));
        // Nothing was written, and the link is still a link.
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        assert!(is_symlink(&link));
        // A dangling link is refused too, and not created through.
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("absent"), &dangling).unwrap();
        assert!(is_symlink_refusal(&open_append(&dangling).unwrap_err()));
        assert!(!dir.path().join("absent").exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        assert!(open_append(&fifo).is_err());
    }

    #[test]
    fn appends_go_to_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        open_append(&path).unwrap().write_all(b"one\n").unwrap();
        open_append(&path).unwrap().write_all(b"two\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one\ntwo\n");
    }
}
