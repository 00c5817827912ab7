//! `notify` declarations: where svc sends its events, and which.
//!
//! The event names are the vocabulary of [`Event`]; the backend writes an
//! event of each kind when a connection changes, and `svc serve` delivers
//! it signed with the declaration's secret. A receiver authenticates svc by
//! that secret alone, so it must be declared and `locked`: a run must never
//! be able to change it. The URL is `https://`, or `http://` to loopback.

use std::collections::BTreeMap;

use super::{Checker, values};
use crate::diagnostic::{Code, Diagnostic};
use crate::syntax::ast::*;

/// An event svc sends about a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Event {
    /// A connection was seen for the first time.
    Created,
    /// A refresh failed for a reason that may pass.
    Degraded,
    /// The provider refused the refresh token: a person must consent again.
    NeedsReconsent,
    /// The provider refused the client.
    Misconfigured,
    /// A connection returned to `healthy`.
    Recovered,
    /// The refresh token expires within the client's `expiry_warning`.
    RefreshTokenExpiring,
    /// Its tokens were revoked and cleared.
    Revoked,
    /// The connection was deleted.
    Deleted,
}

impl Event {
    pub const ALL: [Event; 8] = [
        Event::Created,
        Event::Degraded,
        Event::NeedsReconsent,
        Event::Misconfigured,
        Event::Recovered,
        Event::RefreshTokenExpiring,
        Event::Revoked,
        Event::Deleted,
    ];

    /// The name a receiver sees in `type`, and a `notify` lists.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Created => "connection.created",
            Event::Degraded => "connection.degraded",
            Event::NeedsReconsent => "connection.needs_reconsent",
            Event::Misconfigured => "connection.misconfigured",
            Event::Recovered => "connection.recovered",
            Event::RefreshTokenExpiring => "connection.refresh_token_expiring",
            Event::Revoked => "connection.revoked",
            Event::Deleted => "connection.deleted",
        }
    }

    pub fn from_name(name: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|event| event.as_str() == name)
    }
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'a, 'p> Checker<'a, 'p> {
    pub(super) fn check_notifies(&mut self, notifies: &'p [NotifyDecl]) {
        let mut first: BTreeMap<&str, &NotifyDecl> = BTreeMap::new();
        for notify in notifies {
            if let Some(earlier) = first.get(notify.name.as_str()) {
                self.push(
                    Diagnostic::new(
                        Code::DuplicateName,
                        format!("notify `{}` is declared twice", notify.name.text),
                    )
                    .label(notify.name.span, "declared again here")
                    .label(earlier.name.span, "first declared here")
                    .help("rename one of them, or merge them into one"),
                );
                continue;
            }
            first.insert(notify.name.as_str(), notify);
            self.check_notify(notify);
        }
    }

    fn check_notify(&mut self, notify: &'p NotifyDecl) {
        let mut missing = Vec::new();
        match &notify.url {
            Some(url) => self.notify_url(url),
            None => missing.push("`url \"https://...\"`"),
        }
        match &notify.secret {
            Some(secret) => self.notify_secret(secret),
            None => missing.push("`secret secret.NAME`"),
        }
        if notify.events.is_empty() {
            missing.push("`events ...`");
        }
        for event in &notify.events {
            if Event::from_name(event.as_str()).is_none() {
                self.push(
                    Diagnostic::new(
                        Code::UnknownEvent,
                        format!("unknown event `{}`", event.text),
                    )
                    .label(event.span, "svc sends no event of this name")
                    .suggest(
                        event.as_str(),
                        event.span,
                        Event::ALL.iter().map(|e| e.as_str()),
                        format!(
                            "the events are {}",
                            Event::ALL
                                .iter()
                                .map(|e| format!("`{e}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ),
                );
            }
        }
        if !missing.is_empty() {
            self.push(
                Diagnostic::new(
                    Code::MissingProperty,
                    format!(
                        "notify `{}` is missing {}",
                        notify.name.text,
                        missing.join(" and ")
                    ),
                )
                .label(notify.name.span, "incomplete notify")
                .help(format!(
                    "add {}, e.g. `events connection.needs_reconsent connection.recovered`",
                    missing.join(" and ")
                )),
            );
        }
    }

    fn notify_url(&mut self, url: &PlainString) {
        if let Err(problem) = values::url(&url.value, true) {
            self.push(
                Diagnostic::new(Code::InvalidUrl, "invalid URL in `url`")
                    .label(url.span, problem)
                    .help("write a full URL such as `\"https://hooks.example.com/svc\"`"),
            );
            return;
        }
        if values::is_plain_http_off_loopback(&url.value) {
            self.push(
                Diagnostic::new(Code::InsecureUrl, "a notify `url` must use `https://`")
                    .label(url.span, "plain http to a host that is not loopback")
                    .help(
                        "events name your connections and their state: use `https://`; plain \
                         `http://` is only allowed to 127.0.0.1, ::1 or localhost",
                    ),
            );
        }
    }

    fn notify_secret(&mut self, name: &'p Name) {
        self.locked_signer(
            name,
            name.span,
            Code::UnlockedWebhookSecret,
            "the signing secret",
            "signs events",
            "receivers trust whoever holds it, so no run may change it",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_reads_back_from_its_name() {
        for event in Event::ALL {
            assert_eq!(Event::from_name(event.as_str()), Some(event));
        }
        assert_eq!(Event::from_name("connection.expired"), None);
    }
}
