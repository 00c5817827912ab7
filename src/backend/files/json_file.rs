//! A JSON file of the files backend read, changed and rewritten whole
//! under a lock file beside it (`connections.json`,
//! `connect_sessions.json`): every process of an environment sees each
//! change as a whole, in turn.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::blocking;
use crate::secrets::Error;
use crate::secrets::atomic::Lock;

/// The file and its lock.
#[derive(Debug, Clone)]
pub struct JsonFile {
    pub path: PathBuf,
    lock: &'static str,
    timeout: Duration,
}

impl JsonFile {
    /// `path`, locked by `lock` (a file name) in the same directory.
    pub fn new(path: PathBuf, lock: &'static str, timeout: Duration) -> JsonFile {
        JsonFile {
            path,
            lock,
            timeout,
        }
    }

    /// What the file holds now (the default when there is no file).
    pub async fn read<C: DeserializeOwned + Default + Send + 'static>(&self) -> Result<C, Error> {
        let path = self.path.clone();
        blocking(move || read(&path)).await
    }

    /// Reads the file under its lock, lets `change` change it, and writes
    /// it back (atomically) when `change` says it changed.
    pub async fn update<C, T>(
        &self,
        change: impl FnOnce(&mut C) -> (T, bool) + Send + 'static,
    ) -> Result<T, Error>
    where
        C: Serialize + DeserializeOwned + Default + Send + 'static,
        T: Send + 'static,
    {
        let (path, lock, timeout) = (self.path.clone(), self.lock, self.timeout);
        blocking(move || {
            let dir = path.parent().expect("the file is in a directory");
            crate::secrets::atomic::create_private_dir(dir)
                .map_err(|e| Error::io("create", dir, e))?;
            let lock_path = dir.join(lock);
            let _lock = Lock::acquire(&lock_path, timeout)
                .map_err(|e| e.into_error(&lock_path, &path, timeout))?;
            let mut content = read(&path)?;
            let (out, changed) = change(&mut content);
            if changed {
                write(&path, &content)?;
            }
            Ok(out)
        })
        .await
    }
}

fn read<C: DeserializeOwned + Default>(path: &Path) -> Result<C, Error> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice::<C>(&bytes).map_err(|e| {
            Error::io(
                "read",
                path,
                io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(C::default()),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

fn write<C: Serialize>(path: &Path, content: &C) -> Result<(), Error> {
    let mut text = serde_json::to_vec_pretty(content).map_err(|e| Error::Invalid(e.to_string()))?;
    text.push(b'\n');
    crate::secrets::atomic::write_file(path, &text).map_err(|e| Error::io("write", path, e))
}
