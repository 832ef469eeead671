//! The one live follower of a target's journal: one `journalctl -f` for the whole target, each
//! entry routed into its unit's timeline, and event-driven waits with deadlines.
//!
//! One follower per target (not per scenario or unit) because many scenarios share a booted
//! target, and dozens of followers would cost more than the units themselves. Times are kept on
//! the absolute CLOCK_MONOTONIC (the journal's clock); a scenario rebases them on its own start.
//! When the follower's stream ends the target is gone (or its journal is), and every wait
//! returns at once with [`Waited::Ended`] instead of running into its deadline.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;

use crate::observe::{self, Event, JournalEntry, Timeline};
use crate::target::{Target, TargetError};

/// Follows one target's journal.
pub struct Watcher {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

struct Shared {
    state: Mutex<State>,
    /// Bumped on every routed entry or note: waiters re-check their predicate.
    generation: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    units: HashMap<String, UnitLog>,
    /// PID 1's lines about no unit in particular ("Reloading."), for scenario-wide matches.
    unitless: Vec<JournalEntry>,
    /// The journal sequence number of the last entry delivered (see [`seqnum`]).
    seqnum: u64,
    /// Why following stopped, once it has.
    ended: Option<String>,
}

#[derive(Default)]
struct UnitLog {
    /// Events with absolute times (origin 0 on CLOCK_MONOTONIC).
    timeline: Timeline,
    /// The raw entries, each with the index of its event.
    entries: Vec<(usize, JournalEntry)>,
}

/// How a wait ended.
#[derive(Debug)]
pub enum Waited<T> {
    Found(T),
    /// The deadline passed first.
    Deadline,
    /// The journal stopped flowing: the target is gone. Carries why.
    Ended(String),
}

impl<T> Waited<T> {
    /// The found value, or `None` at the deadline; an ended journal is an error naming why.
    pub fn found(self) -> Result<Option<T>, String> {
        match self {
            Waited::Found(t) => Ok(Some(t)),
            Waited::Deadline => Ok(None),
            Waited::Ended(why) => Err(why),
        }
    }
}

/// The sequence number in a journal cursor (`s=...;i=HEX;b=...`): entries of one journal are
/// numbered in the order journald stored them.
pub fn seqnum(cursor: &str) -> Option<u64> {
    cursor.split(';').find_map(|part| part.strip_prefix("i=")).and_then(|hex| u64::from_str_radix(hex, 16).ok())
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Watcher {
    /// Follow everything the target's journal holds from now on (everything after the newest
    /// entry, read as a cursor first so that nothing written meanwhile is lost).
    pub async fn start(target: &Target) -> Result<Watcher, TargetError> {
        let cursor = target.journal_cursor().await?;
        let after = format!("--after-cursor={cursor}");
        let mut stream = target.follow_journal(&[&after]).await?;
        let (generation, _) = watch::channel(0u64);
        let state = State { seqnum: seqnum(&cursor).unwrap_or(0), ..State::default() };
        let shared = Arc::new(Shared { state: Mutex::new(state), generation });
        let inner = shared.clone();
        let name = target.name().to_string();
        let task = tokio::spawn(async move {
            let why = loop {
                match stream.next().await {
                    Some(Ok(entry)) => inner.route(entry),
                    Some(Err(e)) => break format!("following the journal of {name} failed: {e}"),
                    None => break format!("the journal of {name} stopped: the target is gone"),
                }
            };
            inner.state.lock().unwrap().ended.get_or_insert(why);
            inner.generation.send_modify(|g| *g += 1);
        });
        Ok(Watcher { shared, task })
    }

    /// Record something the lab did to `unit`, stamped now.
    pub fn note(&self, unit: &str, action: impl Into<String>) {
        let mut state = self.shared.state.lock().unwrap();
        state.units.entry(unit.to_string()).or_default().timeline.push_lab(unit, action);
        drop(state);
        self.shared.generation.send_modify(|g| *g += 1);
    }

    /// Number of events of `unit` so far: an index to look from.
    pub fn len(&self, unit: &str) -> usize {
        self.shared.state.lock().unwrap().units.get(unit).map_or(0, |u| u.timeline.events.len())
    }

    /// Number of unit-less PID 1 entries so far: an index to look from.
    pub fn unitless_len(&self) -> usize {
        self.shared.state.lock().unwrap().unitless.len()
    }

    /// `unit`'s events from index `from` on, with times since `origin_usec`.
    pub fn events(&self, unit: &str, from: usize, origin_usec: u64) -> Vec<Event> {
        let origin = Duration::from_micros(origin_usec);
        let state = self.shared.state.lock().unwrap();
        state
            .units
            .get(unit)
            .map(|u| {
                u.timeline.events[from.min(u.timeline.events.len())..]
                    .iter()
                    .map(|e| Event { at: e.at.saturating_sub(origin), ..e.clone() })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `unit`'s raw journal entries whose events are at index `from` or later.
    pub fn entries(&self, unit: &str, from: usize) -> Vec<JournalEntry> {
        let state = self.shared.state.lock().unwrap();
        state
            .units
            .get(unit)
            .map(|u| u.entries.iter().filter(|(i, _)| *i >= from).map(|(_, e)| e.clone()).collect())
            .unwrap_or_default()
    }

    /// PID 1's unit-less entries from index `from` on.
    pub fn unitless(&self, from: usize) -> Vec<JournalEntry> {
        let state = self.shared.state.lock().unwrap();
        state.unitless[from.min(state.unitless.len())..].to_vec()
    }

    /// Why the journal stopped flowing, if it has.
    pub fn ended(&self) -> Option<String> {
        self.shared.state.lock().unwrap().ended.clone()
    }

    /// Declare the target gone (seen from outside: killed, removed, frozen): every wait on it
    /// returns [`Waited::Ended`] with `why` at once. The first reason given is kept.
    pub fn end(&self, why: String) {
        let mut state = self.shared.state.lock().unwrap();
        if state.ended.is_none() {
            state.ended = Some(why);
        }
        drop(state);
        self.shared.generation.send_modify(|g| *g += 1);
    }

    /// Resolve with the reason once the target is gone.
    pub async fn gone(&self) -> String {
        let mut rx = self.shared.generation.subscribe();
        loop {
            rx.borrow_and_update();
            if let Some(why) = self.ended() {
                return why;
            }
            if rx.changed().await.is_err() {
                return "the journal follower was dropped".into();
            }
        }
    }

    /// Wait until `check`, given `unit`'s events with absolute times, finds something; it is
    /// called at once and again after every new entry or note, under the deadline.
    pub async fn wait_for<T>(&self, unit: &str, within: Duration, mut check: impl FnMut(&[Event]) -> Option<T>) -> Waited<T> {
        let mut rx = self.shared.generation.subscribe();
        let look = |check: &mut dyn FnMut(&[Event]) -> Option<T>| -> Result<Option<T>, String> {
            let state = self.shared.state.lock().unwrap();
            let events = state.units.get(unit).map_or(&[][..], |u| &u.timeline.events[..]);
            if let Some(found) = check(events) {
                return Ok(Some(found));
            }
            state.ended.clone().map_or(Ok(None), Err)
        };
        let wait = async {
            loop {
                rx.borrow_and_update();
                match look(&mut check) {
                    Ok(Some(found)) => return Waited::Found(found),
                    Err(why) => return Waited::Ended(why),
                    Ok(None) => {}
                }
                if rx.changed().await.is_err() {
                    return Waited::Ended("the journal follower was dropped".into());
                }
            }
        };
        tokio::time::timeout(within, wait).await.unwrap_or(Waited::Deadline)
    }

    /// Wait until the follower has delivered every entry up to journal sequence number `seq`.
    pub async fn wait_for_seqnum(&self, seq: u64, within: Duration) -> Waited<()> {
        let mut rx = self.shared.generation.subscribe();
        let wait = async {
            loop {
                rx.borrow_and_update();
                {
                    let state = self.shared.state.lock().unwrap();
                    if state.seqnum >= seq {
                        return Waited::Found(());
                    }
                    if let Some(why) = &state.ended {
                        return Waited::Ended(why.clone());
                    }
                }
                if rx.changed().await.is_err() {
                    return Waited::Ended("the journal follower was dropped".into());
                }
            }
        };
        tokio::time::timeout(within, wait).await.unwrap_or(Waited::Deadline)
    }

    /// Wake-ups for any new entry or note, for waits that watch several units at once.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.generation.subscribe()
    }
}

impl Shared {
    fn route(&self, entry: JournalEntry) {
        let mut state = self.state.lock().unwrap();
        if let Some(n) = entry.get("__CURSOR").and_then(|c| c.as_str()).and_then(seqnum) {
            state.seqnum = state.seqnum.max(n);
        }
        match observe::entry_unit(&entry).map(str::to_string) {
            Some(unit) => {
                let log = state.units.entry(unit.clone()).or_default();
                if log.timeline.push_entry(&unit, &entry).is_some() {
                    let index = log.timeline.events.len() - 1;
                    log.entries.push((index, entry));
                }
            }
            None if entry.get("_PID").and_then(|p| p.as_str()) == Some("1") => state.unitless.push(entry),
            None => {}
        }
        drop(state);
        self.generation.send_modify(|g| *g += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_carry_the_sequence_number_in_hex() {
        assert_eq!(seqnum("s=739ad463348b4ceca5a9e69c95a3c93f;i=4f;b=6ec8;m=1d1;t=5f;x=2f"), Some(0x4f));
        assert_eq!(seqnum("garbage"), None);
    }
}
