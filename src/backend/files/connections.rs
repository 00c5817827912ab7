//! The files backend's connection state and outbox:
//! `STATE_DIR/ENV/connections.json`, read and rewritten whole under
//! `.connections.lock`, so that `svc run`, `svc authorize` and `svc serve`
//! of one environment observe in turn. The outbox lives in the same file:
//! a change and the deliveries of its events are written in one rename.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::json_file::JsonFile;
use crate::backend::outbox::{Attempt, Delivery, Retry};
use crate::backend::{
    ConnectionKey, ConnectionState, ConnectionStore, Observation, Observed, Outbox, Subscriber,
};
use crate::secrets::Error;

pub struct FileConnections {
    file: JsonFile,
    env: String,
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    outbox: Vec<Delivery>,
}

impl Content {
    fn get(&self, key: &ConnectionKey) -> Option<&ConnectionState> {
        self.connections
            .iter()
            .find(|k| k.client == key.client && k.connection_id == key.connection_id)
            .map(|k| &k.state)
    }

    fn states(&self) -> BTreeMap<ConnectionKey, ConnectionState> {
        self.connections
            .iter()
            .map(|k| {
                (
                    ConnectionKey {
                        client: k.client.clone(),
                        connection_id: k.connection_id.clone(),
                    },
                    k.state.clone(),
                )
            })
            .collect()
    }

    fn set(&mut self, key: &ConnectionKey, state: ConnectionState) {
        let kept = Kept {
            client: key.client.clone(),
            connection_id: key.connection_id.clone(),
            state,
        };
        match self
            .connections
            .iter_mut()
            .find(|k| k.client == key.client && k.connection_id == key.connection_id)
        {
            Some(existing) => *existing = kept,
            None => {
                self.connections.push(kept);
                self.connections.sort_by(|a, b| {
                    (&a.client, &a.connection_id).cmp(&(&b.client, &b.connection_id))
                });
            }
        }
    }
}

impl FileConnections {
    /// Creates the connections given that are not known yet, in one
    /// write; says for each whether it was created.
    pub(super) async fn create_absent(
        &self,
        created: Vec<(ConnectionKey, ConnectionState)>,
    ) -> Result<Vec<bool>, Error> {
        self.update(move |content| {
            let mut made = Vec::new();
            for (key, state) in created {
                let absent = content.get(&key).is_none();
                if absent {
                    content.set(&key, state);
                }
                made.push(absent);
            }
            let changed = made.iter().any(|m| *m);
            (made, changed)
        })
        .await
    }

    pub fn new(state_dir: &Path, env: &str, lock_timeout: Duration) -> FileConnections {
        FileConnections {
            file: JsonFile::new(
                state_dir.join(env).join("connections.json"),
                ".connections.lock",
                lock_timeout,
            ),
            env: env.to_string(),
        }
    }

    /// Reads the file under its lock, lets `change` change it, and writes
    /// it back when `change` says so.
    async fn update<T: Send + 'static>(
        &self,
        change: impl FnOnce(&mut Content) -> (T, bool) + Send + 'static,
    ) -> Result<T, Error> {
        self.file.update(change).await
    }

    async fn read(&self) -> Result<Content, Error> {
        self.file.read().await
    }
}

#[async_trait]
impl ConnectionStore for FileConnections {
    fn describe(&self) -> String {
        format!("`{}`", self.file.path.display())
    }

    async fn load(&self) -> Result<BTreeMap<ConnectionKey, ConnectionState>, Error> {
        Ok(self.read().await?.states())
    }

    async fn load_one(&self, key: &ConnectionKey) -> Result<Option<ConnectionState>, Error> {
        Ok(self.read().await?.get(key).cloned())
    }

    async fn observe(
        &self,
        key: &ConnectionKey,
        observation: &Observation,
        subscribers: &[Subscriber],
        at: DateTime<Utc>,
    ) -> Result<Observed, Error> {
        let (key, observation) = (key.clone(), observation.clone());
        let (env, subscribers) = (self.env.clone(), subscribers.to_vec());
        self.update(move |content| {
            let current = content.get(&key).cloned();
            let observed = ConnectionState::observe(current.as_ref(), &observation, at);
            let changed = current.as_ref() != Some(&observed.state);
            content.outbox.extend(Delivery::for_events(
                &env,
                &key,
                &observed.state,
                &observed.events,
                &subscribers,
                at,
            ));
            content.set(&key, observed.state.clone());
            (observed, changed)
        })
        .await
    }

    async fn page(
        &self,
        query: &crate::backend::ConnectionQuery,
    ) -> Result<crate::backend::ConnectionPage, Error> {
        let query = query.clone();
        let limit = query.limit.clamp(1, crate::backend::accounts::MAX_PAGE);
        self.update(move |content| {
            let found: Vec<(ConnectionKey, ConnectionState)> = content
                .states()
                .into_iter()
                .filter(|(key, _)| query.after.as_ref().is_none_or(|after| key > after))
                .filter(|(key, state)| query.matches(key, state))
                .take(limit + 1)
                .collect();
            (crate::backend::ConnectionPage::of(found, limit), false)
        })
        .await
    }

    async fn set_tags(
        &self,
        key: &ConnectionKey,
        tags: BTreeMap<String, String>,
    ) -> Result<bool, Error> {
        let key = key.clone();
        self.update(move |content| {
            let found = content
                .connections
                .iter_mut()
                .find(|k| k.client == key.client && k.connection_id == key.connection_id);
            match found {
                Some(kept) => {
                    kept.state.tags = tags;
                    (true, true)
                }
                None => (false, false),
            }
        })
        .await
    }

    async fn delete(
        &self,
        key: &ConnectionKey,
        subscribers: &[Subscriber],
        at: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let key = key.clone();
        let (env, subscribers) = (self.env.clone(), subscribers.to_vec());
        self.update(move |content| {
            let before = content.connections.len();
            content
                .connections
                .retain(|k| !(k.client == key.client && k.connection_id == key.connection_id));
            let known = content.connections.len() != before;
            content
                .outbox
                .extend(Delivery::for_deletion(&env, &key, &subscribers, at));
            (known, true)
        })
        .await
    }
}

#[async_trait]
impl Outbox for FileConnections {
    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease: TimeDelta,
        limit: usize,
    ) -> Result<Vec<Delivery>, Error> {
        let until = now.checked_add_signed(lease).unwrap_or(now);
        self.update(move |content| {
            let before = content.outbox.len();
            content.outbox.retain(|d| !d.is_stale(now));
            let mut claimed = Vec::new();
            for delivery in content.outbox.iter_mut() {
                if claimed.len() == limit {
                    break;
                }
                if delivery.is_due(now) {
                    delivery.claim(until);
                    claimed.push(delivery.clone());
                }
            }
            let changed = !claimed.is_empty() || content.outbox.len() != before;
            (claimed, changed)
        })
        .await
    }

    async fn settle(
        &self,
        id: &str,
        lease_token: &str,
        attempt: Attempt,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let (id, token) = (id.to_string(), lease_token.to_string());
        self.update(move |content| {
            match content
                .outbox
                .iter_mut()
                .find(|d| d.id == id && d.is_held_by(&token))
            {
                Some(delivery) => {
                    delivery.settle(attempt, now);
                    (true, true)
                }
                None => (false, false),
            }
        })
        .await
    }

    async fn list(&self) -> Result<Vec<Delivery>, Error> {
        Ok(self.read().await?.outbox)
    }

    async fn retry(&self, id: &str, now: DateTime<Utc>, lease: TimeDelta) -> Result<Retry, Error> {
        let id = id.to_string();
        let until = now.checked_add_signed(lease).unwrap_or(now);
        self.update(
            move |content| match content.outbox.iter_mut().find(|d| d.id == id) {
                Some(delivery) if delivery.is_claimed(now) => (Retry::Busy, false),
                Some(delivery) => {
                    delivery.retry(now, until);
                    (Retry::Claimed(Box::new(delivery.clone())), true)
                }
                None => (Retry::Unknown, false),
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::connection::{FailureClass, LastError};
    use crate::backend::outbox::Status;
    use crate::check::notify::Event;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    #[tokio::test]
    async fn a_sender_whose_claim_ran_out_does_not_undo_another_s_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileConnections::new(dir.path(), "dev", Duration::from_secs(5));
        let subscribers = [Subscriber {
            notify: "ops".into(),
            events: [Event::Degraded].into(),
        }];
        let failed = Observation::Failed {
            class: FailureClass::Transient,
            error: LastError {
                code: "temporarily_unavailable".into(),
                description: None,
            },
        };
        let key = ConnectionKey::default_of("app");
        store
            .observe(&key, &failed, &subscribers, at(0))
            .await
            .unwrap();
        let lease = TimeDelta::seconds(60);

        let first = store.claim(at(1), lease, 3).await.unwrap();
        assert_eq!(first.len(), 1);
        assert!(
            store.claim(at(2), lease, 3).await.unwrap().is_empty(),
            "claimed twice"
        );
        // The first sender is slow; its lease runs out, a second takes over
        // and delivers.
        let second = store.claim(at(62), lease, 3).await.unwrap();
        assert_eq!(second.len(), 1);
        let (a, b) = (
            first[0].lease_token.clone().unwrap(),
            second[0].lease_token.clone().unwrap(),
        );
        assert_ne!(a, b);
        assert!(
            store
                .settle(&second[0].id, &b, Attempt::Delivered, at(63))
                .await
                .unwrap()
        );
        // The first sender's late failure changes nothing.
        let late = Attempt::Failed("timed out".into());
        assert!(!store.settle(&first[0].id, &a, late, at(64)).await.unwrap());
        let kept = store.list().await.unwrap();
        assert_eq!(kept[0].status, Status::Delivered);
        // Nor may a person's retry take it while a sender holds it.
        store
            .observe(
                &key,
                &Observation::Refreshed {
                    refresh_token_expires_at: None,
                },
                &[],
                at(70),
            )
            .await
            .unwrap();
        store
            .observe(&key, &failed, &subscribers, at(71))
            .await
            .unwrap();
        let held = store.claim(at(72), lease, 3).await.unwrap();
        assert_eq!(
            store.retry(&held[0].id, at(73), lease).await.unwrap(),
            crate::backend::outbox::Retry::Busy
        );
        assert_eq!(
            store.retry("msg_none", at(73), lease).await.unwrap(),
            crate::backend::outbox::Retry::Unknown
        );
    }
}
