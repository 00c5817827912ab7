//! `svc authorize` as a test drives it: started, its JSON events read one
//! by one while a person (tests/browser/consent.js) acts, then finished.

use std::io::{BufRead, Read};
use std::process::Child;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use super::{Project, Run};

/// `svc authorize app.svc app --env dev --no-browser --output json`
/// running in a project, with its JSON events read as they come.
pub struct Authorizing {
    child: Child,
    events: mpsc::Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
    seen: Vec<String>,
}

impl Authorizing {
    pub fn start(p: &Project, extra: &[&str]) -> Authorizing {
        let mut child = p
            .svc()
            .args([
                "authorize",
                "app.svc",
                "app",
                "--env",
                "dev",
                "--no-browser",
                "--output",
                "json",
            ])
            .args(extra)
            .spawn();
        let stdout = child.stdout.take().unwrap();
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Authorizing {
            child,
            events,
            stderr,
            seen: Vec::new(),
        }
    }

    /// The next event, which must be `kind`.
    pub fn expect(&mut self, kind: &str) -> Value {
        let line = self
            .events
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no `{kind}` event; so far: {:?}", self.seen));
        self.seen.push(line.clone());
        let event: Value = serde_json::from_str(&line).expect("one JSON object a line");
        assert_eq!(event["event"], kind, "{line}");
        event
    }

    /// Waits for svc to end: its status, every line it printed and its
    /// standard error.
    pub fn finish(mut self) -> (i32, Vec<Value>, Run) {
        // The reader ends with svc's standard output.
        while let Ok(line) = self.events.recv_timeout(Duration::from_secs(90)) {
            self.seen.push(line);
        }
        let status = self.child.wait().unwrap().code().unwrap_or(-1);
        let stderr = self.stderr.join().unwrap();
        let events = self
            .seen
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let stdout = self.seen.join("\n");
        (
            status,
            events,
            Run {
                status,
                stdout,
                stderr,
            },
        )
    }
}
