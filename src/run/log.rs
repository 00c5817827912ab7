//! Endpoint logs: one JSON line per run in `LOG_DIR/ENV/SERVICE.ENDPOINT.jsonl`.

use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

use super::record::RunRecord;
use super::redact::Redactor;

pub fn path(log_dir: &Path, env: &str, endpoint: &str) -> PathBuf {
    log_dir.join(env).join(format!("{endpoint}.jsonl"))
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
    if let Some(dir) = path.parent() {
        crate::secrets::atomic::create_private_dir(dir)?;
    }
    let mut record = record.clone();
    record.redact(redactor);
    let mut line = serde_json::to_string(&record).map_err(io::Error::other)?;
    line.push('\n');
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(line.as_bytes())
}

/// Reads an endpoint's log, oldest first. Lines that do not parse (a line
/// cut short by a full disk, say) are skipped.
pub fn read(log_dir: &Path, env: &str, endpoint: &str) -> io::Result<Vec<RunRecord>> {
    read_from(&path(log_dir, env, endpoint))
}

/// Reads any log of run records.
pub fn read_from(path: &Path) -> io::Result<Vec<RunRecord>> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut records = Vec::new();
    for line in io::BufReader::new(file).lines() {
        if let Ok(record) = serde_json::from_str(&line?) {
            records.push(record);
        }
    }
    Ok(records)
}
