//! The decrypted store, kept while its file does not change, at the cost of
//! one `stat` a read: runs and the server's requests share one decryption.

use std::sync::{Arc, Mutex};

use crate::secrets::{self, Document, Identities, Store};

/// What identifies one version of the store file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    inode: u64,
    len: u64,
    modified: Option<std::time::SystemTime>,
}

/// A store and its last decrypted document.
pub struct StoreCache {
    store: Store,
    keys: Option<Arc<Identities>>,
    cached: Mutex<Option<(Stamp, Arc<Document>)>>,
}

impl StoreCache {
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn new(store: Store, keys: Option<Arc<Identities>>) -> StoreCache {
        StoreCache {
            store,
            keys,
            cached: Mutex::new(None),
        }
    }

    /// The current document, re-read when the file changed (a writer
    /// renames a new file over it, so the inode changes).
    pub fn document(&self) -> Result<Arc<Document>, secrets::Error> {
        let path = self.store.path();
        let meta = std::fs::metadata(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                secrets::Error::StoreMissing {
                    env: self.store.env().to_string(),
                    path: path.clone(),
                }
            } else {
                secrets::Error::io("read", &path, e)
            }
        })?;
        let stamp = Stamp {
            inode: inode(&meta),
            len: meta.len(),
            modified: meta.modified().ok(),
        };
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((seen, document)) = cached.as_ref()
            && *seen == stamp
        {
            return Ok(document.clone());
        }
        let keys = self.keys.as_ref().ok_or(secrets::Error::NoIdentity {
            tried: Vec::new(),
            recipients: Vec::new(),
        })?;
        let document = Arc::new(self.store.read(keys)?);
        *cached = Some((stamp, document.clone()));
        Ok(document)
    }
}

#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.ino()
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> u64 {
    0
}
