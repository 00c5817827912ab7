//! The files backend's connection state: `STATE_DIR/ENV/connections.json`,
//! read and rewritten whole under `.connections.lock`, so that `svc run`,
//! `svc authorize` and `svc serve` of one environment observe in turn.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::blocking;
use crate::backend::{ConnectionKey, ConnectionState, ConnectionStore, Observation, Transition};
use crate::secrets::Error;
use crate::secrets::atomic::Lock;

pub struct FileConnections {
    path: PathBuf,
    lock_timeout: Duration,
}

/// One connection as the file keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Kept {
    client: String,
    connection_id: String,
    #[serde(flatten)]
    state: ConnectionState,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Content {
    #[serde(default)]
    connections: Vec<Kept>,
}

impl FileConnections {
    pub fn new(state_dir: &Path, env: &str, lock_timeout: Duration) -> FileConnections {
        FileConnections {
            path: state_dir.join(env).join("connections.json"),
            lock_timeout,
        }
    }
}

fn read(path: &Path) -> Result<BTreeMap<ConnectionKey, ConnectionState>, Error> {
    let content = match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice::<Content>(&bytes).map_err(|e| {
            Error::io(
                "read",
                path,
                io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
            )
        })?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Content::default(),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    Ok(content
        .connections
        .into_iter()
        .map(|k| {
            (
                ConnectionKey {
                    client: k.client,
                    connection_id: k.connection_id,
                },
                k.state,
            )
        })
        .collect())
}

fn write(path: &Path, all: &BTreeMap<ConnectionKey, ConnectionState>) -> Result<(), Error> {
    let content = Content {
        connections: all
            .iter()
            .map(|(key, state)| Kept {
                client: key.client.clone(),
                connection_id: key.connection_id.clone(),
                state: state.clone(),
            })
            .collect(),
    };
    let mut text =
        serde_json::to_vec_pretty(&content).map_err(|e| Error::Invalid(e.to_string()))?;
    text.push(b'\n');
    crate::secrets::atomic::write_file(path, &text).map_err(|e| Error::io("write", path, e))
}

#[async_trait]
impl ConnectionStore for FileConnections {
    fn describe(&self) -> String {
        format!("`{}`", self.path.display())
    }

    async fn load(&self) -> Result<BTreeMap<ConnectionKey, ConnectionState>, Error> {
        let path = self.path.clone();
        blocking(move || read(&path)).await
    }

    async fn load_one(&self, key: &ConnectionKey) -> Result<Option<ConnectionState>, Error> {
        Ok(self.load().await?.remove(key))
    }

    async fn observe(
        &self,
        key: &ConnectionKey,
        observation: &Observation,
        at: DateTime<Utc>,
    ) -> Result<(ConnectionState, Option<Transition>), Error> {
        let (path, timeout) = (self.path.clone(), self.lock_timeout);
        let (key, observation) = (key.clone(), observation.clone());
        blocking(move || {
            let dir = path.parent().expect("the file is in a directory");
            crate::secrets::atomic::create_private_dir(dir)
                .map_err(|e| Error::io("create", dir, e))?;
            let lock_path = dir.join(".connections.lock");
            let _lock = Lock::acquire(&lock_path, timeout)
                .map_err(|e| e.into_error(&lock_path, &path, timeout))?;
            let mut all = read(&path)?;
            let (next, transition) = ConnectionState::observe(all.get(&key), &observation, at);
            all.insert(key, next.clone());
            write(&path, &all)?;
            Ok((next, transition))
        })
        .await
    }
}
