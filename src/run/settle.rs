//! Settling the recovery journal before a run sends anything.
//!
//! A run that received a rotated refresh token and then failed (a field it
//! could not map, a store it could not write, a lock it lost) left that
//! answer in the recovery journal; the token its endpoint would send next
//! is spent. So a run of an endpoint that updates secrets, once it holds
//! the endpoint's lock and before its first statement, settles every
//! journaled run whose endpoint updates any of the same secrets, oldest
//! first:
//!
//! - **Obsolete.** A secret that run read under its lock has been written
//!   since (`Entry::based_on`): a later refresh, or a person, replaced
//!   it. Its answers are forgotten; they are never applied over a newer
//!   value.
//! - **Answered.** It kept a successful answer: the run is replayed with
//!   its kept answers (as `svc run --replay` does, as the identity it ran
//!   as, with its parameters), which stores what the answer carries. When
//!   the replay fails too (the program still cannot map the answer), this
//!   run is refused with `svc::run::unsettled_journal`: it never sends a
//!   secret whose successor is journaled.
//! - **Sent, no answer yet.** It recorded a send and neither an answer nor
//!   the lack of one (only runs on a database do): it lost its lock while
//!   the request was out and may still record the answer. This run waits
//!   for it, until the answer was due ([`Entry::answer_by`]) and
//!   [`MARGIN`] more, or this run's lock timeout; then it is refused.
//! - Anything else (answers that carried nothing to keep) is left for
//!   `svc secret recover` to show.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use super::engine::Replay;
use super::error::{ErrorKind, RunError};
use super::interpreter::{Run, store_failure};
use crate::backend::record::Event;
use crate::secrets::journal::{self, Entry, Listed};

/// How long after a send's answer was due a waiting run keeps waiting:
/// the sender may be retrying the journal's write through an outage.
pub const MARGIN: Duration = Duration::from_secs(30);

/// How often a waiting run looks at the journal again.
const POLL: Duration = Duration::from_millis(250);

impl Run<'_> {
    /// Settles the journaled runs that stand between this run of `key`
    /// and the secrets it updates. Called once per endpoint of a run,
    /// under the endpoint's lock.
    pub(super) async fn settle_journal_before(&mut self, key: &str) -> Result<(), RunError> {
        if self.dry_run || self.replay.is_some() || self.settled.iter().any(|k| k == key) {
            return Ok(());
        }
        let Some(updates) = self.engine.secrets_updated(key).cloned() else {
            return Ok(());
        };
        let started = Instant::now();
        loop {
            let listed = self
                .engine
                .backend
                .journal
                .list()
                .await
                .map_err(|e| store_failure(&e))?;
            let mut waiting = None;
            for (run_id, entries) in self.runs_in_the_way(&listed, &updates) {
                match self.settle_one(&run_id, &entries).await? {
                    Settled::Done => {}
                    Settled::Waiting(until) => {
                        waiting = Some((run_id, until));
                        break;
                    }
                }
            }
            let Some((run_id, until)) = waiting else {
                self.settled.push(key.to_string());
                return Ok(());
            };
            let lock_timeout = self.engine.lock_timeout;
            if chrono::Utc::now() >= until || started.elapsed() >= lock_timeout {
                return Err(self.unanswered(&run_id, key, until));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The journaled runs of other runs whose endpoint updates any of
    /// `updates`, oldest first, with their entries.
    fn runs_in_the_way(
        &self,
        listed: &[Listed],
        updates: &BTreeSet<String>,
    ) -> Vec<(String, Vec<Listed>)> {
        let mut runs: BTreeMap<&str, Vec<Listed>> = BTreeMap::new();
        // A connected account's answers stand in the way of runs for the
        // same account only; others' in the way of runs for none.
        let own = self.account.as_ref().map(|a| a.key.connection_id.as_str());
        for l in listed {
            if l.run_id == self.run_id || crate::backend::run_key::split(&l.endpoint).1 != own {
                continue;
            }
            let overlaps = self
                .engine
                .secrets_updated(&l.endpoint)
                .is_some_and(|theirs| !theirs.is_disjoint(updates));
            if overlaps {
                runs.entry(&l.run_id).or_default().push(l.clone());
            }
        }
        runs.into_iter()
            .map(|(run, entries)| (run.to_string(), entries))
            .collect()
    }

    /// Settles one journaled run, or says until when to wait for it.
    async fn settle_one(&mut self, run_id: &str, entries: &[Listed]) -> Result<Settled, RunError> {
        let concluded: BTreeSet<u32> = entries
            .iter()
            .filter(|l| !l.is_sent())
            .map(|l| l.sequence)
            .collect();
        let pending = entries
            .iter()
            .find(|l| l.is_sent() && !concluded.contains(&l.sequence));
        let kept: Vec<&Listed> = entries.iter().filter(|l| l.is_success()).collect();
        let Some(first) = pending.or(kept.first().copied()) else {
            return Ok(Settled::Done);
        };
        let keys = self.keys()?;
        let journal = self.engine.backend.journal.clone();
        let entry = match journal.read(first, &keys).await {
            Ok(entry) => entry,
            // Settled meanwhile by the run that kept it (or another).
            Err(_) if !self.still_kept(run_id).await? => return Ok(Settled::Done),
            Err(e) => return Err(store_failure(&e)),
        };
        if self.obsolete(&entry).await? {
            journal
                .discard(run_id)
                .await
                .map_err(|e| store_failure(&e))?;
            self.trace.push(Event::Journal {
                depth: 0,
                message: format!(
                    "the answers run {run_id} kept are obsolete (a secret it read was written \
                     since): forgotten"
                ),
            });
            return Ok(Settled::Done);
        }
        if pending.is_some() {
            let due = entry.answer_by.unwrap_or(entry.received_at);
            let until = due
                .checked_add_signed(chrono::TimeDelta::from_std(MARGIN).unwrap_or_default())
                .unwrap_or(due);
            return Ok(Settled::Waiting(until));
        }
        let mut answers = VecDeque::new();
        for l in entries
            .iter()
            .filter(|l| !l.is_sent() && l.status != journal::NO_ANSWER)
        {
            answers.push_back(
                journal
                    .read(l, &keys)
                    .await
                    .map_err(|e| store_failure(&e))?,
            );
        }
        // An answer to a request that presented nothing the run replaces
        // (a client credentials grant) leaves nothing spent behind: the
        // next run asks again, rather than store an old token.
        if !answers
            .iter()
            .any(|a| a.rotating && (200..300).contains(&a.status))
        {
            return Ok(Settled::Done);
        }
        self.replay_journaled(run_id, &entry, answers).await?;
        journal
            .discard(run_id)
            .await
            .map_err(|e| store_failure(&e))?;
        Ok(Settled::Done)
    }

    /// Whether the journal still keeps anything of a run.
    async fn still_kept(&self, run_id: &str) -> Result<bool, RunError> {
        let listed = self
            .engine
            .backend
            .journal
            .list()
            .await
            .map_err(|e| store_failure(&e))?;
        Ok(listed.iter().any(|l| l.run_id == run_id))
    }

    /// Whether a secret the journaled run read under its lock has been
    /// written since.
    async fn obsolete(&mut self, entry: &Entry) -> Result<bool, RunError> {
        self.load_document().await?;
        let document = self.document()?;
        Ok(entry
            .based_on
            .iter()
            .any(|(name, version)| document.get(name).map_or(0, |e| e.version) != *version))
    }

    /// Replays a journaled run with its kept answers, in this run: what
    /// they carry is stored, under the locks this run holds.
    async fn replay_journaled(
        &mut self,
        run_id: &str,
        first: &Entry,
        answers: VecDeque<Entry>,
    ) -> Result<(), RunError> {
        let script = self.script();
        let endpoint_key = crate::backend::run_key::endpoint_of(&first.endpoint);
        let (service, endpoint) = endpoint_key.split_once('.').unwrap_or((endpoint_key, ""));
        let identity = script
            .identity(&first.identity)
            .or_else(|| script.identity(&self.identity))
            .ok_or_else(|| {
                RunError::new(
                    ErrorKind::PermissionDenied,
                    format!("`{}` is not declared any more", first.identity),
                )
            })?;
        self.trace.push(Event::Journal {
            depth: 0,
            message: format!(
                "run {run_id} of `{}` kept an answer that was never stored: replaying it first",
                first.endpoint
            ),
        });
        let outer_replay = self.replay.replace(Replay {
            run_id: run_id.to_string(),
            entries: answers,
        });
        let outer_key = std::mem::replace(&mut self.endpoint_key, endpoint_key.to_string());
        let params = std::borrow::Cow::Owned(first.params.clone());
        self.settling = true;
        let (_, result) = self.endpoint(service, endpoint, identity, params, 0).await;
        self.settling = false;
        self.replay = outer_replay;
        self.endpoint_key = outer_key;
        // What it stored is what this run reads next.
        self.document = None;
        match result {
            Ok(_) => {
                self.trace.push(Event::Journal {
                    depth: 0,
                    message: format!("the answer of run {run_id} is stored"),
                });
                Ok(())
            }
            Err(error) => Err(RunError::new(
                ErrorKind::Unsettled,
                format!(
                    "run {run_id} of `{}` kept an answer that was never stored, and it cannot be \
                     stored now: {}",
                    first.endpoint, error.message
                ),
            )
            .help(format!(
                "nothing was sent: the secrets it replaces are spent; fix the program, then `{}` \
                 stores it",
                self.engine.replay_command(&first.endpoint, &first.identity)
            ))),
        }
    }

    /// The refusal of a run that waited for a send's answer in vain.
    fn unanswered(
        &self,
        run_id: &str,
        key: &str,
        until: chrono::DateTime<chrono::Utc>,
    ) -> RunError {
        let overdue = chrono::Utc::now() >= until;
        let message = if overdue {
            format!(
                "run {run_id} sent a secret that `{key}` would send again, and no answer to it was \
                 recorded: if it reached the provider, the stored secret is spent"
            )
        } else {
            format!(
                "run {run_id} sent a secret that `{key}` would send again, and its answer is still \
                 to come"
            )
        };
        let help = if overdue {
            format!(
                "nothing was sent. If the replica that ran it comes back, it copies the answer \
                 from its local journal and the next run stores it. If it is gone for good, `svc \
                 secret recover --env {} --discard {run_id}` lets the next run send the stored \
                 secret (the provider may refuse it as spent: then authorize again)",
                self.engine.env()
            )
        } else {
            "nothing was sent; try again shortly".to_string()
        };
        RunError::new(ErrorKind::Unsettled, message).help(help)
    }
}

/// How one journaled run stands.
enum Settled {
    Done,
    /// Its answer is due until then.
    Waiting(chrono::DateTime<chrono::Utc>),
}
