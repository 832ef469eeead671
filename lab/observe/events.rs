//! Observation: what systemd did, as a timeline of typed events built from the journal.
//!
//! The journal's catalog MESSAGE_IDs and fields (UNIT_RESULT, EXIT_CODE, EXIT_STATUS,
//! N_RESTARTS) are read first; the few lines that have no MESSAGE_ID (watchdog and start
//! timeouts, the start rate limit) are recognised by their text, which systemd has kept stable
//! from 252 to 257. Times are relative to an origin on the host's CLOCK_MONOTONIC, which is the
//! same clock as the journal's `__MONOTONIC_TIMESTAMP` (containers share the kernel's clock).
//! Plain synchronous code: the caller feeds it entries.

use std::time::Duration;

use crate::observe::JournalEntry;

/// Catalog message ids (systemd's `sd-messages.h`).
pub mod message_id {
    pub const UNIT_STARTING: &str = "7d4958e842da4a758f6c1cdc7b36dcc5";
    pub const UNIT_STARTED: &str = "39f53479d3a045ac8e11786248231fbf";
    pub const UNIT_FAILED: &str = "be02cf6855d2428ba40df7e9d022f03d";
    pub const UNIT_STOPPING: &str = "de5b426a63be47a7b6ac3eaac82e2f6f";
    pub const UNIT_STOPPED: &str = "9d1aaa27d60140bd96365438aad20286";
    pub const UNIT_RESTART_SCHEDULED: &str = "5eb03494b6584870a536b337290809b3";
    pub const UNIT_SUCCESS: &str = "7ad2d189f7e94e70a38c781354912448";
    pub const UNIT_SKIPPED: &str = "0e4284a0caca4bfc81c0bb6786972673";
    pub const UNIT_FAILURE_RESULT: &str = "d9b373ed55a64feb8242e02dbe79a49c";
    pub const UNIT_PROCESS_EXIT: &str = "98e322203f7a4ed290d09fe03c09fe15";
    pub const UNIT_RESOURCES: &str = "ae8f7b866b0347b9af31fe1c80b127c0";
}

/// Current CLOCK_MONOTONIC in microseconds: the journal's `__MONOTONIC_TIMESTAMP` clock.
pub fn monotonic_now_usec() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

/// What happened, as far as the lab cares.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum EventKind {
    /// "Starting X..."
    Starting,
    /// "Started X." (or "Finished X." for oneshot): the start job completed.
    Started,
    /// "Failed to start X.": the start job failed.
    StartFailed,
    /// "Main process exited, code=..., status=...".
    MainExited { code: String, status: String },
    /// "Failed with result 'R'." (the unit's Result=).
    Failed { result: String },
    /// "Deactivated successfully."
    Deactivated,
    /// "Skipped due to 'R'." (an `ExecCondition=` command exited 1..=254: the run ends with
    /// Result `exec-condition`, and the unit is inactive, not failed).
    Skipped { result: String },
    /// "Scheduled restart job, restart counter is at N."
    RestartScheduled { n: u32 },
    /// "Stopping X..."
    Stopping,
    /// "Stopped X."
    Stopped,
    /// "Watchdog timeout (limit ...)!"
    WatchdogTimeout,
    /// "start operation timed out. Terminating."
    StartTimeout,
    /// "Start request repeated too quickly."
    StartLimitHit,
    /// A line the service itself wrote (stdout/stderr); the text is the event's message.
    Output,
    /// Any other message about the unit from systemd.
    Manager,
    /// Something the lab did (a fault, a signal, a command).
    Lab { action: String },
}

/// One event on a timeline.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Event {
    /// Time since the timeline's origin.
    #[serde(serialize_with = "ser_millis")]
    pub at: Duration,
    pub unit: String,
    #[serde(flatten)]
    pub kind: EventKind,
    /// The journal line as written (for reports and snapshots).
    pub message: String,
    /// The unit's InvocationID that systemd logged with the line (`INVOCATION_ID=` on PID 1's
    /// lines, `_SYSTEMD_INVOCATION_ID=` on the service's own): how a restart is told from the
    /// first start. Internal evidence, not part of the report.
    #[serde(skip)]
    pub invocation: Option<String>,
}

fn ser_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

fn field<'a>(entry: &'a JournalEntry, name: &str) -> Option<&'a str> {
    entry.get(name).and_then(|v| v.as_str())
}

/// The unit a journal entry is about: `UNIT=` on the manager's messages, `_SYSTEMD_UNIT=` on
/// the service's own output.
pub fn entry_unit(entry: &JournalEntry) -> Option<&str> {
    let from_pid1 = field(entry, "_PID") == Some("1");
    if from_pid1 {
        field(entry, "UNIT")
    } else {
        field(entry, "_SYSTEMD_UNIT").or_else(|| field(entry, "UNIT"))
    }
}

/// Journal time of an entry in microseconds of CLOCK_MONOTONIC.
pub fn entry_monotonic_usec(entry: &JournalEntry) -> Option<u64> {
    field(entry, "__MONOTONIC_TIMESTAMP")?.parse().ok()
}

/// Classify one journal entry. None when it carries no MESSAGE.
pub fn classify(entry: &JournalEntry) -> Option<EventKind> {
    let message = field(entry, "MESSAGE")?;
    let from_pid1 = field(entry, "_PID") == Some("1");
    if !from_pid1 {
        return Some(EventKind::Output);
    }
    use message_id as id;
    // The manager prefixes most unit messages with "UNIT: "; match on the text after it.
    let text = field(entry, "UNIT")
        .and_then(|u| message.strip_prefix(u))
        .and_then(|m| m.strip_prefix(": "))
        .unwrap_or(message);
    let kind = match field(entry, "MESSAGE_ID") {
        Some(id::UNIT_STARTING) => EventKind::Starting,
        // A skipped start job is logged with the "started" id too ("Condition check resulted
        // in X being skipped."; 254+ also "X was skipped because of an unmet condition
        // check"): nothing started.
        Some(id::UNIT_STARTED) if text.starts_with("Condition check resulted in") || text.contains("was skipped because") => EventKind::Manager,
        Some(id::UNIT_STARTED) => EventKind::Started,
        Some(id::UNIT_FAILED) => EventKind::StartFailed,
        Some(id::UNIT_STOPPING) => EventKind::Stopping,
        Some(id::UNIT_STOPPED) => EventKind::Stopped,
        Some(id::UNIT_SUCCESS) => EventKind::Deactivated,
        Some(id::UNIT_SKIPPED) => EventKind::Skipped {
            result: field(entry, "UNIT_RESULT").unwrap_or("unknown").to_string(),
        },
        Some(id::UNIT_RESTART_SCHEDULED) => EventKind::RestartScheduled {
            n: field(entry, "N_RESTARTS").and_then(|n| n.parse().ok()).unwrap_or(0),
        },
        Some(id::UNIT_FAILURE_RESULT) => EventKind::Failed {
            result: field(entry, "UNIT_RESULT").unwrap_or("unknown").to_string(),
        },
        Some(id::UNIT_PROCESS_EXIT) if text.starts_with("Main process exited") => EventKind::MainExited {
            code: field(entry, "EXIT_CODE").unwrap_or("").to_string(),
            status: field(entry, "EXIT_STATUS").unwrap_or("").to_string(),
        },
        _ if text.starts_with("Watchdog timeout") => EventKind::WatchdogTimeout,
        _ if text.starts_with("start operation timed out") => EventKind::StartTimeout,
        _ if text.starts_with("Start request repeated too quickly") => EventKind::StartLimitHit,
        // 252 logs "Main process exited" without the catalog id on some paths.
        _ if text.starts_with("Main process exited") => parse_main_exit(text),
        _ => EventKind::Manager,
    };
    Some(kind)
}

/// "Main process exited, code=killed, status=9/KILL" -> MainExited.
fn parse_main_exit(message: &str) -> EventKind {
    let mut code = String::new();
    let mut status = String::new();
    for part in message.split(", ") {
        if let Some(c) = part.strip_prefix("code=") {
            code = c.to_string();
        } else if let Some(s) = part.strip_prefix("status=") {
            status = s.trim_end_matches('.').to_string();
        }
    }
    EventKind::MainExited { code, status }
}

/// A timeline: events in journal order, times relative to `origin_usec`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Timeline {
    #[serde(skip)]
    pub origin_usec: u64,
    pub events: Vec<Event>,
}

impl Timeline {
    pub fn new(origin_usec: u64) -> Timeline {
        Timeline { origin_usec, events: Vec::new() }
    }

    /// Add a journal entry about `unit` (already routed by the caller).
    pub fn push_entry(&mut self, unit: &str, entry: &JournalEntry) -> Option<&Event> {
        let kind = classify(entry)?;
        let at = entry_monotonic_usec(entry).unwrap_or(self.origin_usec).saturating_sub(self.origin_usec);
        self.events.push(Event {
            at: Duration::from_micros(at),
            unit: unit.to_string(),
            kind,
            message: field(entry, "MESSAGE").unwrap_or("").to_string(),
            invocation: field(entry, "INVOCATION_ID").or_else(|| field(entry, "_SYSTEMD_INVOCATION_ID")).map(str::to_string),
        });
        self.events.last()
    }

    /// Record something the lab did, stamped now.
    pub fn push_lab(&mut self, unit: &str, action: impl Into<String>) {
        let action = action.into();
        let at = monotonic_now_usec().saturating_sub(self.origin_usec);
        self.events.push(Event {
            at: Duration::from_micros(at),
            unit: unit.to_string(),
            message: format!("unitlab: {action}"),
            kind: EventKind::Lab { action },
            invocation: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pairs: &[(&str, &str)]) -> JournalEntry {
        pairs.iter().map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string()))).collect()
    }

    #[test]
    fn manager_messages_are_typed_by_catalog_id() {
        let e = entry(&[
            ("_PID", "1"),
            ("UNIT", "a.service"),
            ("MESSAGE_ID", message_id::UNIT_RESTART_SCHEDULED),
            ("N_RESTARTS", "3"),
            ("MESSAGE", "a.service: Scheduled restart job, restart counter is at 3."),
        ]);
        assert_eq!(classify(&e), Some(EventKind::RestartScheduled { n: 3 }));
        assert_eq!(entry_unit(&e), Some("a.service"));
        let f = entry(&[("_PID", "1"), ("MESSAGE_ID", message_id::UNIT_FAILURE_RESULT), ("UNIT_RESULT", "watchdog"), ("MESSAGE", "x")]);
        assert_eq!(classify(&f), Some(EventKind::Failed { result: "watchdog".into() }));
    }

    #[test]
    fn a_skipped_run_ends_the_run_and_its_job_line_is_no_start() {
        let skip = entry(&[("_PID", "1"), ("UNIT", "a.service"), ("MESSAGE_ID", message_id::UNIT_SKIPPED), ("UNIT_RESULT", "exec-condition"), ("MESSAGE", "a.service: Skipped due to 'exec-condition'.")]);
        assert_eq!(classify(&skip), Some(EventKind::Skipped { result: "exec-condition".into() }));
        let job = entry(&[("_PID", "1"), ("UNIT", "a.service"), ("MESSAGE_ID", message_id::UNIT_STARTED), ("MESSAGE", "Condition check resulted in A being skipped.")]);
        assert_eq!(classify(&job), Some(EventKind::Manager));
    }

    #[test]
    fn lines_without_ids_are_recognised_by_text() {
        let w = entry(&[("_PID", "1"), ("UNIT", "a.service"), ("MESSAGE", "a.service: Watchdog timeout (limit 2s)!")]);
        assert_eq!(classify(&w), Some(EventKind::WatchdogTimeout));
        let m = entry(&[("_PID", "1"), ("UNIT", "a.service"), ("MESSAGE", "a.service: Main process exited, code=killed, status=9/KILL")]);
        assert_eq!(classify(&m), Some(EventKind::MainExited { code: "killed".into(), status: "9/KILL".into() }));
        let o = entry(&[("_PID", "42"), ("_SYSTEMD_UNIT", "a.service"), ("MESSAGE", "buggy-server: listening")]);
        assert_eq!(classify(&o), Some(EventKind::Output));
        assert_eq!(entry_unit(&o), Some("a.service"));
    }

    #[test]
    fn timeline_times_are_relative_to_its_origin() {
        let mut t = Timeline::new(1_000_000);
        let mut e = entry(&[("_PID", "1"), ("MESSAGE_ID", message_id::UNIT_FAILURE_RESULT), ("UNIT_RESULT", "exit-code"), ("MESSAGE", "Failed with result 'exit-code'.")]);
        e.insert("__MONOTONIC_TIMESTAMP".into(), "1500000".into());
        t.push_entry("a.service", &e);
        assert_eq!(t.events[0].at, Duration::from_millis(500));
        assert_eq!(t.events[0].kind, EventKind::Failed { result: "exit-code".into() });
    }
}
