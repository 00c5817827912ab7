//! The files backend's connect sessions: `STATE_DIR/ENV/connect_sessions.json`
//! (mode 0600), read and rewritten whole under `.connect_sessions.lock`,
//! so that a link opened twice, or a callback replayed, finds the session
//! as the first one left it. Stale sessions are pruned at each write.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::json_file::JsonFile;
use crate::backend::consent_sessions::{Claim, ConsentSession, ConsentSessions, Verdict};
use crate::secrets::Error;

pub struct FileConsentSessions {
    file: JsonFile,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Content {
    #[serde(default)]
    sessions: Vec<ConsentSession>,
}

impl FileConsentSessions {
    pub fn new(state_dir: &Path, env: &str, lock_timeout: Duration) -> FileConsentSessions {
        FileConsentSessions {
            file: JsonFile::new(
                state_dir.join(env).join("connect_sessions.json"),
                ".connect_sessions.lock",
                lock_timeout,
            ),
        }
    }

    /// Reads the file under its lock, lets `change` change it, prunes the
    /// stale sessions, and writes it back when anything changed.
    async fn update<T: Send + 'static>(
        &self,
        now: DateTime<Utc>,
        change: impl FnOnce(&mut Content) -> (T, bool) + Send + 'static,
    ) -> Result<T, Error> {
        self.file
            .update(move |content: &mut Content| {
                let (out, mut changed) = change(content);
                let before = content.sessions.len();
                content.sessions.retain(|s| !s.is_stale(now));
                changed |= content.sessions.len() != before;
                (out, changed)
            })
            .await
    }

    /// Applies a step to the session `find` picks.
    async fn claim(
        &self,
        now: DateTime<Utc>,
        find: impl Fn(&ConsentSession) -> bool + Send + 'static,
        step: impl FnOnce(&mut ConsentSession) -> Verdict + Send + 'static,
    ) -> Result<Claim, Error> {
        self.update(now, move |content| {
            let Some(session) = content.sessions.iter_mut().find(|s| find(s)) else {
                return (Claim::Unknown, false);
            };
            let before = session.clone();
            let verdict = step(session);
            let changed = *session != before;
            (verdict.claim(session.clone()), changed)
        })
        .await
    }
}

#[async_trait]
impl ConsentSessions for FileConsentSessions {
    fn describe(&self) -> String {
        format!("`{}`", self.file.path.display())
    }

    async fn create(&self, session: &ConsentSession, now: DateTime<Utc>) -> Result<(), Error> {
        let session = session.clone();
        self.update(now, move |content| {
            content.sessions.push(session);
            ((), true)
        })
        .await
    }

    async fn open(
        &self,
        token_hash: &str,
        browser: &str,
        now: DateTime<Utc>,
    ) -> Result<Claim, Error> {
        let (token_hash, browser) = (token_hash.to_string(), browser.to_string());
        self.claim(
            now,
            move |s| s.token_hash == token_hash,
            move |s| s.open(&browser, now),
        )
        .await
    }

    async fn finish(&self, state: &str, now: DateTime<Utc>) -> Result<Claim, Error> {
        let state = state.to_string();
        self.claim(now, move |s| s.state == state, move |s| s.finish(now))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn session(token_hash: &str, state: &str) -> ConsentSession {
        ConsentSession {
            token_hash: token_hash.into(),
            client: "app".into(),
            connection_id: "acme-1".into(),
            tags: None,
            return_to: None,
            identity: "portal".into(),
            key_id: "0123456789ab".into(),
            created_at: at(0),
            expires_at: at(600),
            state: state.into(),
            verifier: "verifier".into(),
            nonce: None,
            redirect_uri: "https://svc.example.com/connect/callback".into(),
            authorize_url: "https://idp.example.com/authorize".into(),
            token_url: "https://idp.example.com/token".into(),
            issuer: None,
            browser: None,
            opened_at: None,
            used_at: None,
        }
    }

    #[tokio::test]
    async fn two_openers_of_one_link_one_wins_and_stale_sessions_go() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(FileConsentSessions::new(
            dir.path(),
            "dev",
            Duration::from_secs(5),
        ));
        store.create(&session("t1", "s1"), at(0)).await.unwrap();
        store.create(&session("t2", "s2"), at(1)).await.unwrap();
        let racers: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move { store.open("t1", &format!("b{i}"), at(5)).await })
            })
            .collect();
        let mut claimed = 0;
        for racer in racers {
            match racer.await.unwrap().unwrap() {
                Claim::Claimed(_) => claimed += 1,
                Claim::Used(_) => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(claimed, 1);
        assert!(matches!(
            store.finish("s1", at(6)).await.unwrap(),
            Claim::Claimed(s) if s.browser.is_some()
        ));
        assert!(matches!(
            store.finish("s1", at(7)).await.unwrap(),
            Claim::Used(_)
        ));
        assert_eq!(
            store.open("nope", "b", at(8)).await.unwrap(),
            Claim::Unknown
        );
        assert!(matches!(
            store.open("t2", "b", at(600)).await.unwrap(),
            Claim::Expired(_)
        ));
        // Past keeping, both go at the next write.
        let fresh = ConsentSession {
            expires_at: at(600 + 3601 + 600),
            ..session("t3", "s3")
        };
        store.create(&fresh, at(600 + 3601)).await.unwrap();
        assert_eq!(
            store.finish("s2", at(600 + 3602)).await.unwrap(),
            Claim::Unknown
        );
        let text = std::fs::read_to_string(dir.path().join("dev/connect_sessions.json")).unwrap();
        assert!(
            !text.contains("\"t1\"") && text.contains("\"t3\""),
            "{text}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("dev/connect_sessions.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "readable by others: {mode:o}");
        }
    }
}
