//! Evidence extracted from a unit's timeline, the one place where the lab decides what counts
//! as a failure, a restart or a new start. The runner's waits call these on every new event;
//! expectations, observations and the documented tables all judge from them, so a restart
//! means the same thing everywhere:
//!
//! * a **restart** is systemd's "Scheduled restart job" line, or a "Started" line of an
//!   invocation other than the one running before (a unit that was garbage-collected after a
//!   clean stop has no invocation left, and then any new start counts);
//! * the **end of a run** is the Result systemd logged: "Failed with result 'R'",
//!   "Deactivated successfully" (Result success) or "Skipped due to 'R'" (exec-condition);
//! * a fault is **detected** at the first sign systemd noticed it: the main process exiting, a
//!   watchdog or start timeout, the start rate limit, a failed start job, or a stop.
//!
//! Only what systemd logged at or after the given instant counts: the journal follower may
//! deliver lines logged before a fault after the fault was injected.

use std::time::Duration;

use super::events::{Event, EventKind};

/// An event found at `index` of the timeline it was searched in.
pub type Found<'a> = (usize, &'a Event);

/// The Result systemd logged when a run of the unit ended: `Some("watchdog")`, `Some("success")`.
pub fn result_of(kind: &EventKind) -> Option<&str> {
    match kind {
        EventKind::Failed { result } => Some(result),
        EventKind::Deactivated => Some("success"),
        EventKind::Skipped { result } => Some(result),
        _ => None,
    }
}

/// Events that show systemd noticed a fault.
pub fn is_detection(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::MainExited { .. }
            | EventKind::Failed { .. }
            | EventKind::Skipped { .. }
            | EventKind::WatchdogTimeout
            | EventKind::StartTimeout
            | EventKind::StartFailed
            | EventKind::StartLimitHit
            | EventKind::Stopping
    )
}

/// The first event from `from` on, logged at or after `since`, that ends a run of the unit;
/// with its Result.
pub fn end_of_run(events: &[Event], from: usize, since: Duration) -> Option<(usize, &Event, &str)> {
    events.iter().enumerate().skip(from).filter(|(_, e)| e.at >= since).find_map(|(i, e)| result_of(&e.kind).map(|r| (i, e, r)))
}

/// Whether a "Started" line belongs to an invocation other than `old`. Without an
/// invocation on either side only the time tells, and the caller has already checked it.
fn other_invocation(e: &Event, old: Option<&str>) -> bool {
    match (e.invocation.as_deref(), old) {
        (Some(new), Some(old)) if !old.is_empty() => new != old,
        _ => true,
    }
}

/// The first start of a new invocation (from `from` on, logged at or after `since`).
pub fn new_start<'a>(events: &'a [Event], from: usize, since: Duration, old: Option<&str>) -> Option<Found<'a>> {
    events
        .iter()
        .enumerate()
        .skip(from)
        .find(|(_, e)| e.at >= since && matches!(e.kind, EventKind::Started) && other_invocation(e, old))
}

/// The first evidence of a restart (from `from` on, logged at or after `since`): a scheduled
/// restart, or a start of a new invocation.
pub fn restart<'a>(events: &'a [Event], from: usize, since: Duration, old: Option<&str>) -> Option<Found<'a>> {
    events.iter().enumerate().skip(from).find(|(_, e)| {
        e.at >= since
            && match e.kind {
                EventKind::RestartScheduled { .. } => true,
                EventKind::Started => other_invocation(e, old),
                _ => false,
            }
    })
}

/// The first sign that systemd noticed a fault, among events `from..until` logged at or after
/// `since`.
pub fn detection(events: &[Event], from: usize, until: usize, since: Duration) -> Option<&Event> {
    events.iter().take(until).skip(from).find(|e| e.at >= since && is_detection(&e.kind))
}

/// The last event that is not the lab's own note: what the unit did last, for an observation
/// that found nothing.
pub fn last_systemd_event(events: &[Event], from: usize) -> Option<&Event> {
    events.iter().skip(from).rfind(|e| !matches!(e.kind, EventKind::Lab { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ms: u64, kind: EventKind, invocation: Option<&str>) -> Event {
        Event {
            at: Duration::from_millis(ms),
            unit: "a.service".into(),
            kind,
            message: String::new(),
            invocation: invocation.map(str::to_string),
        }
    }

    fn timeline() -> Vec<Event> {
        vec![
            ev(0, EventKind::Lab { action: "systemctl start".into() }, None),
            ev(100, EventKind::Started, Some("aaa")),
            ev(500, EventKind::Lab { action: "fault: SIGKILL".into() }, None),
            ev(510, EventKind::MainExited { code: "killed".into(), status: "9/KILL".into() }, Some("aaa")),
            ev(511, EventKind::Failed { result: "signal".into() }, Some("aaa")),
            ev(700, EventKind::RestartScheduled { n: 1 }, Some("aaa")),
            ev(720, EventKind::Started, Some("bbb")),
        ]
    }

    #[test]
    fn a_run_ends_with_the_result_systemd_logged() {
        let t = timeline();
        let (i, _, result) = end_of_run(&t, 0, Duration::ZERO).unwrap();
        assert_eq!((i, result), (4, "signal"));
        let clean = vec![ev(10, EventKind::Deactivated, None)];
        assert_eq!(end_of_run(&clean, 0, Duration::ZERO).map(|f| f.2), Some("success"));
        assert!(end_of_run(&clean, 0, Duration::from_millis(11)).is_none(), "logged before the instant");
    }

    #[test]
    fn a_restart_is_a_scheduled_job_or_another_invocation_started() {
        let t = timeline();
        assert_eq!(restart(&t, 0, Duration::from_millis(500), Some("aaa")).map(|f| f.0), Some(5));
        let without_schedule: Vec<Event> = t.iter().filter(|e| !matches!(e.kind, EventKind::RestartScheduled { .. })).cloned().collect();
        assert_eq!(restart(&without_schedule, 0, Duration::from_millis(500), Some("aaa")).map(|f| f.1.at), Some(Duration::from_millis(720)));
        // The first start, delivered late by the follower, is not a restart.
        assert!(restart(&t[..2], 0, Duration::ZERO, Some("aaa")).is_none());
        // A unit unloaded after a clean stop has no invocation: any start is a new one.
        assert_eq!(new_start(&t, 0, Duration::from_millis(500), Some("")).map(|f| f.0), Some(6));
    }

    #[test]
    fn a_new_start_ignores_the_old_invocation_and_earlier_lines() {
        let t = timeline();
        assert_eq!(new_start(&t, 0, Duration::ZERO, Some("aaa")).map(|f| f.0), Some(6));
        assert_eq!(new_start(&t, 0, Duration::ZERO, None).map(|f| f.0), Some(1));
        assert!(new_start(&t, 0, Duration::from_millis(800), None).is_none());
    }

    #[test]
    fn detection_is_the_first_sign_after_the_fault_and_before_the_recovery() {
        let t = timeline();
        let d = detection(&t, 2, 6, Duration::from_millis(500)).unwrap();
        assert_eq!(d.at, Duration::from_millis(510));
        assert!(detection(&t, 0, 3, Duration::ZERO).is_none(), "nothing failed before the fault");
        assert_eq!(last_systemd_event(&t, 0).map(|e| e.at), Some(Duration::from_millis(720)));
    }
}
