//! The files backend's schedule state: `STATE_DIR/ENV/schedules.json`.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::ScheduleState;

/// The state file of one environment.
#[derive(Debug, Clone)]
pub struct StateFile {
    pub path: PathBuf,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Content {
    #[serde(default)]
    schedules: BTreeMap<String, ScheduleState>,
}

impl StateFile {
    pub fn new(state_dir: &Path, env: &str) -> StateFile {
        StateFile {
            path: state_dir.join(env).join("schedules.json"),
        }
    }

    /// The lock that makes one process run an environment's schedules.
    pub fn scheduler_lock_path(&self) -> PathBuf {
        self.path.with_file_name(".scheduler.lock")
    }

    /// The remembered states; an absent file means nothing ran yet. A file
    /// that does not parse is an error, not a reason to forget.
    pub fn load(&self) -> io::Result<BTreeMap<String, ScheduleState>> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice::<Content>(&bytes)
                .map(|c| c.schedules)
                .map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: {e}", self.path.display()),
                    )
                }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e),
        }
    }

    /// Writes the states atomically.
    pub fn save(&self, schedules: &BTreeMap<String, ScheduleState>) -> io::Result<()> {
        if let Some(dir) = self.path.parent() {
            crate::secrets::atomic::create_private_dir(dir)?;
        }
        let content = Content {
            schedules: schedules.clone(),
        };
        let mut text = serde_json::to_vec_pretty(&content).map_err(io::Error::other)?;
        text.push(b'\n');
        crate::secrets::atomic::write_file(&self.path, &text)
    }
}
