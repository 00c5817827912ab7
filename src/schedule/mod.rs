//! Schedules: when each one fires next, and what is remembered between
//! processes so an overdue run fires at once and a recent one is not
//! repeated.

pub mod connections;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::backend::ScheduleState;
use crate::syntax::ast::ScheduleDecl;

/// How long after a failed run it is tried again: 30 s, doubling, at most 1 h.
pub fn retry_backoff(failures: u32) -> Duration {
    let seconds = 30u64.saturating_mul(1 << failures.saturating_sub(1).min(16));
    Duration::from_secs(seconds.min(3600))
}

/// The least time between two runs of a `before_expiry` schedule, so an
/// expiry that a run does not move cannot make it fire in a loop.
pub const MIN_EXPIRY_INTERVAL: Duration = Duration::from_secs(30);

/// A duration for date arithmetic. Every `+` and `-` on a date here is
/// checked (`checked_add_signed`): past the last date chrono knows, a
/// schedule has no next time, where `date + duration` would panic.
fn delta(duration: Duration) -> Option<chrono::TimeDelta> {
    chrono::TimeDelta::from_std(duration).ok()
}

/// A schedule ready to be timed.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    pub service: String,
    pub endpoint: String,
    pub account: String,
    pub timing: Timing,
    /// `before_expiry SECRET LEAD`.
    pub before_expiry: Option<(String, Duration)>,
    pub enabled: bool,
    /// `for_each_connection CLIENT` with its `concurrency`: each fire runs
    /// the endpoint once per connected account that can be refreshed.
    pub for_each_connection: Option<(String, usize)>,
}

/// How many runs a `for_each_connection` fire makes at once when the
/// schedule does not say.
pub const DEFAULT_CONCURRENCY: usize = 4;

#[derive(Debug, Clone)]
pub enum Timing {
    Every(Duration),
    Cron {
        cron: Box<croner::Cron>,
        zone: chrono_tz::Tz,
        text: String,
    },
}

impl Schedule {
    /// The complete schedules of a script, in the order declared.
    pub fn all(script: &crate::program::Script) -> Vec<Schedule> {
        script
            .program()
            .schedules
            .iter()
            .filter_map(Schedule::from_decl)
            .collect()
    }

    /// From a checked declaration; `None` if it is incomplete (the checker
    /// reported it).
    pub fn from_decl(decl: &ScheduleDecl) -> Option<Schedule> {
        let endpoint = decl.endpoint.as_ref()?;
        let timing = match (&decl.every, &decl.cron) {
            (Some(every), _) => Timing::Every(every.value?),
            (None, Some(cron)) => {
                let zone = match &decl.time_zone {
                    Some(zone) => chrono_tz::Tz::from_str(&zone.value).ok()?,
                    None => chrono_tz::UTC,
                };
                Timing::Cron {
                    cron: Box::new(croner::Cron::from_str(cron.value.trim()).ok()?),
                    zone,
                    text: cron.value.clone(),
                }
            }
            (None, None) => return None,
        };
        Some(Schedule {
            name: decl.name.text.clone(),
            service: endpoint.service.text.clone(),
            endpoint: endpoint.endpoint.text.clone(),
            account: decl.service_account.as_ref()?.text.clone(),
            timing,
            before_expiry: match &decl.before_expiry {
                Some(b) => Some((b.secret.text.clone(), b.lead.value?)),
                None => None,
            },
            enabled: !decl.disabled,
            for_each_connection: decl.for_each_connection.as_ref().map(|client| {
                let concurrency = decl
                    .concurrency
                    .as_ref()
                    .and_then(|c| usize::try_from(c.value).ok())
                    .filter(|c| *c > 0)
                    .unwrap_or(DEFAULT_CONCURRENCY);
                (client.text.clone(), concurrency)
            }),
        })
    }

    pub fn endpoint_key(&self) -> String {
        format!("{}.{}", self.service, self.endpoint)
    }

    /// `every 24h`, `cron "0 * * * *" (Europe/Oslo)`, `5m before HUBSPOT_ACCESS_TOKEN expires, else every 1h`.
    pub fn describe(&self) -> String {
        let timing = match &self.timing {
            Timing::Every(d) => format!("every {}", crate::syntax::duration::format(*d)),
            Timing::Cron { text, zone, .. } => format!("cron \"{text}\" ({zone})"),
        };
        match &self.before_expiry {
            Some((secret, lead)) => format!(
                "{} before {secret} expires, else {timing}",
                crate::syntax::duration::format(*lead)
            ),
            None => timing,
        }
    }

    /// The next regular time after `after` (not counting retries).
    fn regular_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.timing {
            Timing::Every(period) => after.checked_add_signed(delta(*period)?),
            Timing::Cron { cron, zone, .. } => {
                let local = after.with_timezone(zone);
                let next = cron.find_next_occurrence(&local, false).ok()?;
                Some(next.with_timezone(&Utc))
            }
        }
    }

    /// When this schedule fires next, given what happened before, the stored
    /// expiry of its `before_expiry` secret, and the time now. A time in the
    /// past means at once.
    pub fn next_run(
        &self,
        state: &ScheduleState,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        if !self.enabled {
            return None;
        }
        let regular = self.next_regular(state, expires_at, now)?;
        if state.failures > 0
            && let Some(last) = state.last_run_at
        {
            let retry = last.checked_add_signed(delta(retry_backoff(state.failures))?)?;
            return Some(retry.min(regular));
        }
        Some(regular)
    }

    fn next_regular(
        &self,
        state: &ScheduleState,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        if let (Some((_, lead)), Some(expires_at)) = (&self.before_expiry, expires_at) {
            let due = expires_at.checked_sub_signed(delta(*lead)?)?;
            let earliest = state
                .last_run_at
                .and_then(|last| last.checked_add_signed(delta(MIN_EXPIRY_INTERVAL)?));
            return Some(match earliest {
                Some(earliest) => due.max(earliest),
                None => due,
            });
        }
        match (&self.timing, state.last_run_at) {
            // Never ran: an `every` schedule runs at once.
            (Timing::Every(_), None) => Some(now),
            (Timing::Every(_), Some(last)) => self.regular_after(last),
            // A cron schedule fires at its next occurrence, or at once if
            // one passed since it last ran.
            (Timing::Cron { .. }, None) => self.regular_after(now),
            (Timing::Cron { .. }, Some(last)) => self.regular_after(last),
        }
    }

    /// The next `count` regular times, for `svc schedule list`.
    pub fn upcoming(
        &self,
        state: &ScheduleState,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        count: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let Some(first) = self.next_run(state, expires_at, now) else {
            return out;
        };
        let mut next = first.max(now);
        out.push(next);
        while out.len() < count {
            match self.regular_after(next) {
                Some(after) => {
                    next = after;
                    out.push(next);
                }
                None => break,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::ast::ScheduleDecl;

    fn schedule(text: &str) -> Schedule {
        let (program, diagnostics) = crate::syntax::parse_file(crate::source::FileId(0), text);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let decl: &ScheduleDecl = &program.schedules[0];
        Schedule::from_decl(decl).unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn every_runs_at_once_then_each_period() {
        let s = schedule("schedule s { endpoint a.b service_account x every 1h }");
        let now = at("2026-11-28T12:00:00Z");
        assert_eq!(s.next_run(&ScheduleState::default(), None, now), Some(now));
        let state = ScheduleState {
            last_run_at: Some(at("2026-11-28T11:30:00Z")),
            ..ScheduleState::default()
        };
        assert_eq!(
            s.next_run(&state, None, now),
            Some(at("2026-11-28T12:30:00Z"))
        );
    }

    #[test]
    fn an_overdue_run_is_due_now_and_a_recent_one_is_not_repeated() {
        let s = schedule("schedule s { endpoint a.b service_account x every 24h }");
        let now = at("2026-11-28T12:00:00Z");
        let overdue = ScheduleState {
            last_run_at: Some(at("2026-11-26T12:00:00Z")),
            ..ScheduleState::default()
        };
        assert!(s.next_run(&overdue, None, now).unwrap() <= now);
        let recent = ScheduleState {
            last_run_at: Some(at("2026-11-28T11:00:00Z")),
            ..ScheduleState::default()
        };
        assert_eq!(
            s.next_run(&recent, None, now),
            Some(at("2026-11-29T11:00:00Z"))
        );
    }

    #[test]
    fn cron_follows_its_time_zone() {
        let s = schedule(
            "schedule s { endpoint a.b service_account x cron \"0 9 * * *\" time_zone \"Europe/Oslo\" }",
        );
        // 09:00 in Oslo is 08:00 UTC in winter.
        let now = at("2026-11-28T07:00:00Z");
        assert_eq!(
            s.next_run(&ScheduleState::default(), None, now),
            Some(at("2026-11-28T08:00:00Z"))
        );
        // A missed occurrence fires at once.
        let missed = ScheduleState {
            last_run_at: Some(at("2026-11-26T08:00:00Z")),
            ..ScheduleState::default()
        };
        assert!(s.next_run(&missed, None, now).unwrap() < now);
    }

    #[test]
    fn before_expiry_uses_the_expiry_and_falls_back_to_every() {
        let s = schedule(
            "schedule s { endpoint a.b service_account x before_expiry TOKEN 5m every 1h }",
        );
        let now = at("2026-11-28T12:00:00Z");
        let state = ScheduleState {
            last_run_at: Some(at("2026-11-28T11:50:00Z")),
            ..ScheduleState::default()
        };
        let expires = at("2026-11-28T12:30:00Z");
        assert_eq!(
            s.next_run(&state, Some(expires), now),
            Some(at("2026-11-28T12:25:00Z"))
        );
        assert_eq!(
            s.next_run(&state, None, now),
            Some(at("2026-11-28T12:50:00Z"))
        );
        // An expiry that did not move: not before 30 s after the last run.
        let past = at("2026-11-28T11:00:00Z");
        assert_eq!(
            s.next_run(&state, Some(past), now),
            Some(at("2026-11-28T11:50:30Z"))
        );
    }

    #[test]
    fn failures_retry_with_backoff_before_the_regular_time() {
        let s = schedule("schedule s { endpoint a.b service_account x every 24h }");
        let now = at("2026-11-28T12:00:00Z");
        let state = ScheduleState {
            last_run_at: Some(at("2026-11-28T11:59:00Z")),
            failures: 3,
            ..ScheduleState::default()
        };
        assert_eq!(
            s.next_run(&state, None, now),
            Some(at("2026-11-28T12:01:00Z"))
        );
        assert_eq!(retry_backoff(1), Duration::from_secs(30));
        assert_eq!(retry_backoff(20), Duration::from_secs(3600));
    }

    #[test]
    fn dates_past_the_last_one_chrono_knows_give_no_time_not_a_panic() {
        let every = schedule("schedule s { endpoint a.b service_account x every 3650d }");
        let expiry = schedule(
            "schedule s { endpoint a.b service_account x before_expiry TOKEN 3650d every 1h }",
        );
        let last = DateTime::<Utc>::MAX_UTC - chrono::TimeDelta::days(1);
        let state = ScheduleState {
            last_run_at: Some(last),
            failures: 2,
            ..ScheduleState::default()
        };
        let now = Utc::now();
        assert_eq!(every.next_run(&state, None, now), None);
        assert!(every.upcoming(&state, None, now, 3).is_empty());
        let first = DateTime::<Utc>::MIN_UTC + chrono::TimeDelta::days(1);
        assert_eq!(expiry.next_run(&state, Some(first), now), None);
        let fresh = ScheduleState::default();
        assert_eq!(every.upcoming(&fresh, None, last, 3), vec![last]);
    }

    #[test]
    fn disabled_schedules_never_run() {
        let s = schedule("schedule s { endpoint a.b service_account x every 1h disabled }");
        assert_eq!(
            s.next_run(&ScheduleState::default(), None, Utc::now()),
            None
        );
    }
}
