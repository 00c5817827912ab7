//! Refresh on read: a secret declared with `refreshed_by SERVICE.ENDPOINT
//! as ACCOUNT min_valid DURATION` is refreshed before a read hands it out,
//! when it expires within `min_valid` from now or has no known expiry.
//!
//! Reads of one secret refresh it once: in a process, readers queue at the
//! secret's gate; across processes (and against schedules and `svc run`),
//! the refresh takes its endpoint's run lock before it decides. Whoever
//! gets the lock reads the store again and runs the endpoint only when the
//! secret is still not fresh, so the readers that waited find the new
//! value. A failed refresh fails the read: a value that may expire within
//! `min_valid` is never handed out as fresh.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::engine::{Engine, RunRequest};
use crate::backend::record::{Outcome, RunRecord, Trigger};
use crate::backend::{ConnectionKey, LockFailure, ReadAt};
use crate::secrets::{self, Entry};
use crate::syntax::ast::RefreshedBy;

/// One gate per secret, and the versions this process's refreshes made
/// that live no longer than their `min_valid`.
#[derive(Default)]
pub struct Gates {
    gates: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// A refresh cannot make these fresh: they are handed out until half
    /// their lifetime is left instead of being refreshed by every read.
    short_lived: Mutex<HashMap<String, u64>>,
}

/// The most short-lived versions remembered: with one per connected
/// account, the memory would otherwise grow with the accounts.
const MAX_SHORT_LIVED: usize = 10_000;

/// A reader's turn at a gate; the gate goes when its last reader does, so
/// the gates of a server do not grow with the connected accounts read.
struct Turn<'g> {
    gates: &'g Gates,
    name: String,
    gate: Option<Arc<tokio::sync::Mutex<()>>>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut gates = self.gates.gates.lock().unwrap_or_else(|p| p.into_inner());
        // The map's and this turn's: nobody else waits.
        if self.gate.take().is_some_and(|g| Arc::strong_count(&g) <= 2) {
            gates.remove(&self.name);
        }
    }
}

impl Gates {
    fn gate(&self, name: &str) -> Turn<'_> {
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        let gate = gates.entry(name.to_string()).or_default().clone();
        Turn {
            gates: self,
            name: name.to_string(),
            gate: Some(gate),
        }
    }

    /// Whether `entry` is a short-lived version a refresh of this process
    /// made, with half its lifetime left.
    fn good_enough(&self, name: &str, entry: Option<&Entry>, now: DateTime<Utc>) -> bool {
        let Some(entry) = entry else {
            return false;
        };
        let made = self
            .short_lived
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .copied();
        made == Some(entry.version) && half_left(entry, now)
    }

    fn made_short_lived(&self, name: &str, version: u64) {
        let mut short_lived = self.short_lived.lock().unwrap_or_else(|p| p.into_inner());
        if short_lived.len() >= MAX_SHORT_LIVED && !short_lived.contains_key(name) {
            short_lived.clear();
        }
        short_lived.insert(name.to_string(), version);
    }
}

/// What a read found.
#[derive(Debug)]
pub struct Fresh {
    /// The entry, `None` when the secret has no value (and no refresher).
    pub entry: Option<Entry>,
    /// The refresh this read ran, if it ran one.
    pub refreshed: Option<RunRecord>,
}

/// Why a fresh read failed. Messages never hold a secret value: a run's
/// record is redacted before it gets here.
#[derive(Debug)]
pub enum FreshError {
    /// The store could not be read.
    Store(secrets::Error),
    /// The refresh could not run, or ran and failed, or did not update the
    /// secret. `code` is the run's (or the refusal's) diagnostic code.
    Failed {
        code: &'static str,
        message: String,
        help: Option<String>,
        /// The run's record, when it ran.
        record: Option<Box<RunRecord>>,
    },
    /// The refresh was not started: the connection it refreshes needs a
    /// person (`RefusalKind::NeedsPerson`). Nothing was sent.
    NeedsPerson(Box<super::Refusal>),
}

impl FreshError {
    fn failed(code: &'static str, message: String, help: Option<String>) -> FreshError {
        FreshError::Failed {
            code,
            message,
            help,
            record: None,
        }
    }
}

/// The gate of a secret's reads (and the key of its short-lived
/// versions): one per connected account for a per-account secret.
fn gate_name(name: &str, account: Option<&ConnectionKey>) -> String {
    match account {
        Some(key) => format!("{name}@{}", key.connection_id),
        None => name.to_string(),
    }
}

/// A refresher's `min_valid`, zero when it declares none.
fn min_valid(refresher: &RefreshedBy) -> Duration {
    refresher
        .min_valid
        .as_ref()
        .and_then(|d| d.value)
        .unwrap_or(Duration::ZERO)
}

/// Whether an entry stays valid for `min_valid` more from `now`. An entry
/// with no expiry cannot be shown to, so it is not fresh.
pub fn is_fresh(entry: Option<&Entry>, min_valid: Duration, now: DateTime<Utc>) -> bool {
    let Some(expires_at) = entry.and_then(|e| e.expires_at) else {
        return false;
    };
    let min_valid = chrono::TimeDelta::from_std(min_valid).unwrap_or(chrono::TimeDelta::MAX);
    now.checked_add_signed(min_valid)
        .is_some_and(|limit| expires_at > limit)
}

/// A token's lifetime as it was stored: from its update to its expiry.
pub fn lifetime(entry: &Entry) -> Option<chrono::TimeDelta> {
    let lifetime = entry.expires_at? - entry.updated_at?;
    (lifetime > chrono::TimeDelta::zero()).then_some(lifetime)
}

/// Whether half of an entry's lifetime is still ahead of `now`.
fn half_left(entry: &Entry, now: DateTime<Utc>) -> bool {
    match (lifetime(entry), entry.expires_at) {
        (Some(lifetime), Some(expires_at)) => expires_at - now > lifetime / 2,
        _ => false,
    }
}

/// What a refresh that made a token shorter-lived than `min_valid` says.
pub fn short_lived(name: &str, entry: &Entry, min_valid: Duration) -> Option<String> {
    let lifetime = lifetime(entry)?;
    let declared = chrono::TimeDelta::from_std(min_valid).ok()?;
    (lifetime <= declared).then(|| {
        format!(
            "`{name}` is valid for {}s after its refresh, no longer than its `min_valid` ({}): \
             reads hand it out until half of that is left, then refresh it",
            lifetime.num_seconds(),
            crate::syntax::duration::format(min_valid)
        )
    })
}

/// Whether the value changed since a reader looked (another reader's
/// refresh, or a write): that reader takes it rather than refresh again,
/// while it has not expired.
fn changed_since(seen: Option<u64>, now_stored: Option<&Entry>, now: DateTime<Utc>) -> bool {
    now_stored.is_some_and(|entry| {
        Some(entry.version) != seen && entry.expires_at.is_none_or(|at| at > now)
    })
}

impl Engine {
    /// The refresher of a secret, if it is declared with one.
    pub fn refresher(&self, secret: &str) -> Option<&RefreshedBy> {
        self.script.secret(secret)?.refreshed_by.as_ref()
    }

    /// Whether a value of a secret declared with `refreshed_by` may be
    /// handed out as it is: valid for its `min_valid` more, or a
    /// short-lived one this process made with half its life left. (A
    /// secret without `refreshed_by` is never refreshed on read.)
    pub fn fresh_enough(
        &self,
        name: &str,
        account: Option<&ConnectionKey>,
        entry: Option<&Entry>,
    ) -> bool {
        let Some(refresher) = self.refresher(name) else {
            return true;
        };
        let now = Utc::now();
        is_fresh(entry, min_valid(refresher), now)
            || self
                .refreshing
                .good_enough(&gate_name(name, account), entry, now)
    }

    /// Reads a secret, refreshing it first when it is declared with
    /// `refreshed_by` and is not valid for `min_valid` more.
    pub async fn read_fresh(&self, name: &str) -> Result<Fresh, FreshError> {
        self.read_fresh_for(name, None, ReadAt::Now).await
    }

    /// As [`Engine::read_fresh`], for a per-account secret: the value of
    /// one connected account, refreshed by a run for that account. The
    /// first look reads the store as `at` says (a connected account's
    /// values are always read as they are now); whether to refresh is
    /// decided on the store as it is now.
    pub async fn read_fresh_for(
        &self,
        name: &str,
        account: Option<&ConnectionKey>,
        at: ReadAt,
    ) -> Result<Fresh, FreshError> {
        let gate_name = gate_name(name, account);
        let current = self.current(name, account, at).await?;
        let Some(refresher) = self.refresher(name) else {
            return Ok(Fresh {
                entry: current,
                refreshed: None,
            });
        };
        let min_valid = min_valid(refresher);
        let usable = |entry: Option<&Entry>| self.fresh_enough(name, account, entry);
        if usable(current.as_ref()) {
            return Ok(Fresh {
                entry: current,
                refreshed: None,
            });
        }
        // The version this reader found stale: a reader that waited while
        // another refreshed takes that refresh's result.
        let seen = current.as_ref().map(|e| e.version);
        // Readers of this process queue here; the first refreshes.
        let turn = self.refreshing.gate(&gate_name);
        let gate = turn.gate.clone().expect("a turn holds its gate");
        let _in_turn = gate.lock().await;
        let current = self.current(name, account, ReadAt::Now).await?;
        if changed_since(seen, current.as_ref(), Utc::now()) || usable(current.as_ref()) {
            return Ok(Fresh {
                entry: current,
                refreshed: None,
            });
        }
        // Other processes, schedules and `svc run` take this lock too.
        let service = refresher.endpoint.service.text.clone();
        let endpoint = refresher.endpoint.endpoint.text.clone();
        let connection = account
            .filter(|_| {
                self.per_account_client(&format!("{service}.{endpoint}"))
                    .is_some()
            })
            .map(|key| key.connection_id.clone());
        let key =
            crate::backend::run_key::join(&format!("{service}.{endpoint}"), connection.as_deref());
        let lock = match self.backend.locks.run_lock(&key, self.lock_timeout).await {
            Ok(lock) => lock,
            Err(LockFailure::TimedOut) => {
                return Err(FreshError::failed(
                    "svc::run::lock_timeout",
                    format!(
                        "`{name}` needs a refresh, and another run of `{key}` in `{}` did not \
                         finish within {}",
                        self.env(),
                        crate::syntax::duration::format(self.lock_timeout)
                    ),
                    Some("try again; if it keeps happening, see `svc logs` of the endpoint".into()),
                ));
            }
            Err(LockFailure::Failed(error)) => return Err(FreshError::Store(error)),
        };
        let before = self.current(name, account, ReadAt::Now).await?;
        // Another process may have refreshed it while this one waited.
        if changed_since(seen, before.as_ref(), Utc::now()) || usable(before.as_ref()) {
            return Ok(Fresh {
                entry: before,
                refreshed: None,
            });
        }
        let method = self
            .script
            .endpoint(&service, &endpoint)
            .map_or("GET".into(), |decl| decl.method_to_run());
        let request = RunRequest {
            service,
            endpoint,
            identity: refresher.service_account.text.clone(),
            method,
            params: Default::default(),
            dry_run: false,
            trigger: Trigger::Read {
                secret: name.to_string(),
            },
            due_at: None,
            replay: None,
            force: false,
            connection,
        };
        let admitted = self
            .admit(request)
            .map_err(|refusal| FreshError::failed(refusal.code, refusal.message, refusal.help))?;
        match self.preflight(admitted.request()).await {
            Ok(None) => {}
            Ok(Some(refusal)) if matches!(refusal.kind, super::RefusalKind::NeedsPerson(_)) => {
                return Err(FreshError::NeedsPerson(Box::new(refusal)));
            }
            Ok(Some(refusal)) => {
                return Err(FreshError::failed(
                    refusal.code,
                    refusal.message,
                    refusal.help,
                ));
            }
            Err(error) => return Err(FreshError::Store(error)),
        }
        let finished = self.run_holding(admitted, vec![(key.clone(), lock)]).await;
        let record = finished.record;
        if record.outcome != Outcome::Success {
            // The code of the run's error; its message and help as the
            // record has them, redacted.
            let code = finished
                .error
                .as_ref()
                .map_or("svc::run::permission_denied", |e| e.diagnostic_code());
            let (message, help) = match &record.error {
                Some(error) => (error.message.clone(), error.help.clone()),
                None => (format!("the run of `{key}` was denied"), None),
            };
            return Err(FreshError::Failed {
                code,
                message: format!(
                    "the refresh of `{name}` by `{key}` failed (run {}): {message}",
                    record.id
                ),
                help,
                record: Some(Box::new(record)),
            });
        }
        let after = self.current(name, account, ReadAt::Now).await?;
        let updated = match (&before, &after) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(old), Some(new)) => new.version != old.version,
        };
        if !updated {
            return Err(FreshError::Failed {
                code: "svc::run::not_refreshed",
                message: format!(
                    "`{name}` needed a refresh, and run {} of `{key}` succeeded without updating it",
                    record.id
                ),
                help: Some(format!(
                    "see the run's trace (`svc logs {key}`): its action updates `{name}` only on \
                     some paths"
                )),
                record: Some(Box::new(record)),
            });
        }
        if let Some(entry) = &after
            && let Some(warning) = short_lived(name, entry, min_valid)
        {
            // Refreshing again would make no fresher token: this one is
            // handed out until half its lifetime is left.
            self.refreshing.made_short_lived(&gate_name, entry.version);
            tracing::warn!(env = self.env(), run = record.id.as_str(), "{warning}");
        }
        Ok(Fresh {
            entry: after,
            refreshed: Some(record),
        })
    }

    /// The secret's entry as stored now: a connected account's own for a
    /// per-account secret.
    async fn current(
        &self,
        name: &str,
        account: Option<&ConnectionKey>,
        at: ReadAt,
    ) -> Result<Option<Entry>, FreshError> {
        if let Some(key) = account {
            let keys = self
                .keys
                .as_ref()
                .ok_or_else(|| FreshError::Store(self.no_identity()))?;
            let values = self
                .backend
                .accounts
                .document(keys, key)
                .await
                .map_err(FreshError::Store)?;
            return Ok(values.get(name).cloned());
        }
        let (document, _) = self
            .store_document_at(at)
            .await
            .map_err(FreshError::Store)?;
        Ok(document.get(name).cloned())
    }
}
