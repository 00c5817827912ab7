//! The trace of one run, bounded: what a run keeps of its events does not
//! grow with the number of loop passes it makes.
//!
//! Two rules make the bound, both applied in [`Trace::push`] and at the
//! start of each loop pass, so no push site needs to know them:
//!
//! - Of a loop's passes, the events of the first [`KEPT_PASSES`] and of
//!   the last are kept; a pass in between is dropped when the next begins
//!   (the loop's own `loop` event still counts every pass).
//! - At most [`MAX_EVENTS`] events and [`MAX_BYTES`] of their text are
//!   kept; an event past either is left out.
//!
//! What was left out is said once, by a `truncated` event at the end that
//! counts the omitted events.

use crate::backend::record::{Event, Shown};

pub use crate::backend::record::bounds::{KEPT_PASSES, MAX_BYTES, MAX_EVENTS};

/// The events of a run, as many as the bounds keep.
#[derive(Debug, Default)]
pub struct Trace {
    events: Vec<Event>,
    /// The text of `events`, as [`weight`] counts it.
    bytes: usize,
    /// Events made and not kept.
    omitted: usize,
    /// The loops running now, innermost last.
    loops: Vec<Pass>,
}

/// Where a loop's current pass began in the trace.
#[derive(Debug)]
struct Pass {
    /// Which pass it is, from 1; 0 before the first.
    number: usize,
    start: usize,
    bytes: usize,
}

impl Trace {
    /// Keeps an event, unless the trace is full.
    pub fn push(&mut self, event: Event) {
        let weight = weight(&event);
        if self.events.len() >= MAX_EVENTS || self.bytes + weight > MAX_BYTES {
            self.omitted += 1;
            return;
        }
        self.bytes += weight;
        self.events.push(event);
    }

    /// A `foreach` or `while` begins.
    pub fn loop_begins(&mut self) {
        self.loops.push(Pass {
            number: 0,
            start: self.events.len(),
            bytes: self.bytes,
        });
    }

    /// The loop's next pass begins: the events of the pass before are
    /// dropped, unless it was one of the first.
    pub fn pass_begins(&mut self) {
        let Some(pass) = self.loops.last_mut() else {
            return;
        };
        if pass.number > KEPT_PASSES {
            // Inner loops only ever drop events after `start`: the events
            // before it, and their bytes, are as they were.
            self.omitted += self.events.len() - pass.start;
            self.events.truncate(pass.start);
            self.bytes = pass.bytes;
        }
        pass.number += 1;
        pass.start = self.events.len();
        pass.bytes = self.bytes;
    }

    /// The loop ends: its last pass stays.
    pub fn loop_ends(&mut self) {
        self.loops.pop();
    }

    /// The kept events, and a `truncated` event when some were not kept.
    pub fn into_events(mut self) -> Vec<Event> {
        if self.omitted > 0 {
            self.events.push(Event::Truncated {
                omitted: self.omitted,
            });
        }
        self.events
    }
}

/// About how many bytes an event holds: its text, and a little for the rest.
fn weight(event: &Event) -> usize {
    const FIXED: usize = 32;
    let shown = |value: &Shown| match value {
        Shown::Redacted { .. } => 0,
        Shown::Value { value } => json_weight(value),
    };
    FIXED
        + match event {
            Event::Assign { name, value, .. } | Event::Mapped { name, value, .. } => {
                name.len() + shown(value)
            }
            Event::Request {
                method,
                url,
                headers,
                body,
                ..
            } => {
                method.len()
                    + url.len()
                    + headers
                        .iter()
                        .map(|(n, v)| n.len() + v.len())
                        .sum::<usize>()
                    + body.as_ref().map_or(0, String::len)
            }
            Event::Retry { reason, .. } => reason.len(),
            Event::Branch { condition, .. } => condition.len(),
            Event::SecretUpdated { name, .. } => name.len(),
            Event::RunService {
                endpoint, identity, ..
            } => endpoint.len() + identity.len(),
            Event::Log { message, .. } | Event::Journal { message, .. } => message.len(),
            Event::Caught { code, message, .. } => code.len() + message.len(),
            Event::Loop { kind, .. } => kind.len(),
            Event::Sleep { .. } | Event::Truncated { .. } => 0,
        }
}

/// About how many bytes a JSON value holds.
fn json_weight(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::String(s) => s.len() + 2,
        serde_json::Value::Array(items) => {
            2 + items.iter().map(|v| json_weight(v) + 1).sum::<usize>()
        }
        serde_json::Value::Object(map) => {
            2 + map
                .iter()
                .map(|(k, v)| k.len() + 4 + json_weight(v))
                .sum::<usize>()
        }
        _ => 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(message: &str) -> Event {
        Event::Log {
            depth: 0,
            message: message.into(),
        }
    }

    fn messages(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                Event::Log { message, .. } => message.clone(),
                Event::Truncated { omitted } => format!("truncated {omitted}"),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn keeps_the_first_passes_and_the_last() {
        let mut trace = Trace::default();
        trace.push(log("before"));
        trace.loop_begins();
        for pass in 1..=10 {
            trace.pass_begins();
            trace.push(log(&format!("a{pass}")));
            trace.push(log(&format!("b{pass}")));
        }
        trace.loop_ends();
        trace.push(log("after"));
        assert_eq!(
            messages(&trace.into_events()),
            [
                "before",
                "a1",
                "b1",
                "a2",
                "b2",
                "a3",
                "b3",
                "a10",
                "b10",
                "after",
                "truncated 12"
            ]
        );
    }

    #[test]
    fn nested_loops_are_summarised_each_and_dropped_with_their_pass() {
        let mut trace = Trace::default();
        trace.loop_begins();
        for outer in 1..=5 {
            trace.pass_begins();
            trace.loop_begins();
            for inner in 1..=5 {
                trace.pass_begins();
                trace.push(log(&format!("{outer}.{inner}")));
            }
            trace.loop_ends();
        }
        trace.loop_ends();
        let events = trace.into_events();
        let kept: Vec<String> = ["1", "2", "3", "5"]
            .iter()
            .flat_map(|o| ["1", "2", "3", "5"].map(|i| format!("{o}.{i}")))
            .collect();
        let mut expected = kept;
        expected.push(format!("truncated {}", 25 - 16));
        assert_eq!(messages(&events), expected);
    }

    #[test]
    fn keeps_at_most_max_events_and_counts_the_rest() {
        let mut trace = Trace::default();
        for i in 0..MAX_EVENTS + 250 {
            trace.push(log(&i.to_string()));
        }
        let events = trace.into_events();
        assert_eq!(events.len(), MAX_EVENTS + 1);
        assert_eq!(events.last(), Some(&Event::Truncated { omitted: 250 }));
    }

    #[test]
    fn keeps_at_most_max_bytes_of_text() {
        let mut trace = Trace::default();
        let big = "x".repeat(MAX_BYTES / 4);
        for _ in 0..10 {
            trace.push(log(&big));
        }
        trace.push(log("small"));
        let events = trace.into_events();
        // Three fit; the fourth would pass the bound, and the small one
        // after still fits.
        assert_eq!(messages(&events)[3], "small");
        assert_eq!(events.last(), Some(&Event::Truncated { omitted: 7 }));
    }

    #[test]
    fn a_trace_that_kept_everything_says_nothing_more() {
        let mut trace = Trace::default();
        trace.push(log("one"));
        assert_eq!(messages(&trace.into_events()), ["one"]);
    }
}
