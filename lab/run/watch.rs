//! A live watcher of one target's journal: one `journalctl -f` for the whole target, its
//! entries routed into a [`Timeline`] per unit, and event-driven waits with deadlines.
//!
//! One follower per target (not per unit) because many units share a booted target, and
//! dozens of followers would cost more than the units themselves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::broadcast;

use crate::observe::{self, Event, Timeline};
use crate::observe::JournalEntry;
use crate::target::{Target, TargetError};

/// Follows a target's journal for the units whose names match a filter.
pub struct Watcher {
    inner: Arc<Shared>,
    /// The journal cursor the watcher follows from: read "everything since" with it.
    cursor: String,
    task: tokio::task::JoinHandle<()>,
}

struct Shared {
    origin_usec: u64,
    timelines: Mutex<HashMap<String, Timeline>>,
    /// Raw entries per unit with the index of their timeline event, for journal snapshots.
    entries: Mutex<HashMap<String, Vec<(usize, JournalEntry)>>>,
    /// Wakes waiters; carries the unit whose timeline grew.
    tx: broadcast::Sender<String>,
    filter: Box<dyn Fn(&str) -> bool + Send + Sync>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Watcher {
    /// Start following everything after the journal's current end. `origin_usec` (on
    /// CLOCK_MONOTONIC, see [`observe::monotonic_now_usec`]) is time zero of the timelines.
    pub async fn start(
        target: &Target,
        origin_usec: u64,
        filter: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) -> Result<Watcher, TargetError> {
        let cursor = target.journal_cursor().await?;
        let after = format!("--after-cursor={cursor}");
        let mut stream = target.follow_journal(&[&after]).await?;
        let (tx, _) = broadcast::channel(4096);
        let inner = Arc::new(Shared {
            origin_usec,
            timelines: Mutex::new(HashMap::new()),
            entries: Mutex::new(HashMap::new()),
            tx,
            filter: Box::new(filter),
        });
        let shared = inner.clone();
        let task = tokio::spawn(async move {
            while let Some(Ok(entry)) = stream.next().await {
                let Some(unit) = observe::entry_unit(&entry).map(str::to_string) else { continue };
                if !(shared.filter)(&unit) {
                    continue;
                }
                let index = {
                    let mut timelines = shared.timelines.lock().unwrap();
                    let timeline = timelines.entry(unit.clone()).or_insert_with(|| Timeline::new(shared.origin_usec));
                    if timeline.push_entry(&unit, &entry).is_none() {
                        continue;
                    }
                    timeline.events.len() - 1
                };
                shared.entries.lock().unwrap().entry(unit.clone()).or_default().push((index, entry));
                let _ = shared.tx.send(unit);
            }
        });
        Ok(Watcher { inner, cursor, task })
    }

    /// The cursor this watcher follows from (pass as `--after-cursor=` for a one-shot read of
    /// the same span).
    pub fn cursor(&self) -> &str {
        &self.cursor
    }

    pub fn origin_usec(&self) -> u64 {
        self.inner.origin_usec
    }

    /// Record something the lab did to `unit`, stamped now.
    pub fn note(&self, unit: &str, action: impl Into<String>) {
        let mut timelines = self.inner.timelines.lock().unwrap();
        timelines.entry(unit.to_string()).or_insert_with(|| Timeline::new(self.inner.origin_usec)).push_lab(unit, action);
        drop(timelines);
        let _ = self.inner.tx.send(unit.to_string());
    }

    /// A copy of a unit's timeline so far.
    pub fn timeline(&self, unit: &str) -> Timeline {
        self.inner
            .timelines
            .lock()
            .unwrap()
            .get(unit)
            .cloned()
            .unwrap_or_else(|| Timeline::new(self.inner.origin_usec))
    }

    /// The raw journal entries of a unit so far, each with its timeline index.
    pub fn entries(&self, unit: &str) -> Vec<(usize, JournalEntry)> {
        self.inner.entries.lock().unwrap().get(unit).cloned().unwrap_or_default()
    }

    /// Wait until `unit`'s timeline has an event at index >= `from` matching `pred` (see
    /// [`kind`] for the common case of matching on the event kind); returns
    /// it and its index. None when the deadline passes first.
    pub async fn wait_for(
        &self,
        unit: &str,
        from: usize,
        within: Duration,
        pred: impl Fn(&Event) -> bool,
    ) -> Option<(usize, Event)> {
        // Subscribe before looking, so an event landing in between is not missed.
        let mut rx = self.inner.tx.subscribe();
        let find = |from: usize| -> Option<(usize, Event)> {
            let timelines = self.inner.timelines.lock().unwrap();
            let events = &timelines.get(unit)?.events;
            events.iter().enumerate().skip(from).find(|(_, e)| pred(e)).map(|(i, e)| (i, e.clone()))
        };
        if let Some(found) = find(from) {
            return Some(found);
        }
        let wait = async {
            loop {
                match rx.recv().await {
                    Ok(u) if u != unit => continue,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        if let Some(found) = find(from) {
                            return Some(found);
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        };
        tokio::time::timeout(within, wait).await.ok().flatten()
    }

    /// Wake-ups for every event routed to any unit (the unit's name is carried): for waits
    /// that watch several units at once.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.inner.tx.subscribe()
    }

    /// Number of events of `unit` so far (an index to wait from).
    pub fn len(&self, unit: &str) -> usize {
        self.inner.timelines.lock().unwrap().get(unit).map(|t| t.events.len()).unwrap_or(0)
    }
}

/// Adapt a predicate on event kinds for [`Watcher::wait_for`].
pub fn kind(pred: impl Fn(&crate::observe::EventKind) -> bool) -> impl Fn(&Event) -> bool {
    move |e| pred(&e.kind)
}
