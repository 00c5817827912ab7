//! Neovim, headless, as the editor tests run it: an `init.lua` of the
//! test's, no user configuration, plugins or shada, and the result written
//! by the script to a file the test reads.
//!
//! The tests use Debian 12's `neovim` (0.7.2), which scripts/test.sh
//! installs; a missing `nvim` fails the test with that step.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `nvim` on `file` (none when empty) in `dir` with `init` as its configuration, `path`
/// put before `PATH`, and returns the lines the script wrote to
/// `$SVC_NVIM_RESULT`. The script must write them and quit; the process is
/// ended after a minute, in case it does not.
pub fn run(init: &str, dir: &Path, file: &str, path: Option<&Path>) -> Vec<String> {
    assert!(
        installed(),
        "Neovim is not installed: `apt-get install neovim` (scripts/test.sh does)"
    );
    let home = tempfile::tempdir().unwrap();
    let init_path = home.path().join("init.lua");
    std::fs::write(&init_path, init).unwrap();
    let result = home.path().join("result");
    let mut search: Vec<PathBuf> = path.map(Path::to_path_buf).into_iter().collect();
    search.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let output = Command::new("timeout")
        .arg("60")
        .arg("nvim")
        .args(["--headless", "-n", "-i", "NONE", "--noplugin", "-u"])
        .arg(&init_path)
        .args((!file.is_empty()).then_some(file))
        .current_dir(dir)
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("XDG_STATE_HOME", home.path().join("state"))
        .env("XDG_CACHE_HOME", home.path().join("cache"))
        .env("PATH", std::env::join_paths(search).unwrap())
        .env("SVC_NVIM_RESULT", &result)
        .output()
        .expect("`timeout` runs");
    let written = std::fs::read_to_string(&result).unwrap_or_else(|_| {
        panic!(
            "nvim wrote no result (status {:?}):\n{}{}",
            output.status.code(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    written.lines().map(str::to_string).collect()
}

/// Whether `nvim` is on `PATH`.
pub fn installed() -> bool {
    Command::new("nvim")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The first line of `nvim --version`: `NVIM v0.7.2`.
pub fn version() -> String {
    let output = Command::new("nvim")
        .arg("--version")
        .output()
        .expect("Neovim is not installed: `apt-get install neovim` (scripts/test.sh does)");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}
