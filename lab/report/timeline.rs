//! From a scenario's events to what the HTML timeline draws: per unit, its state over time as
//! segments, and the instants worth marking (faults, restarts, exits, timeouts). Plain data so
//! the derivation is tested without looking at SVG.

use std::time::Duration;

use crate::observe::{Event, EventKind};
use crate::verdict::ScenarioResult;

/// A unit's state as the timeline shows it: systemd's ActiveState, with the auto-restart
/// wait (ActiveState=activating, SubState=auto-restart) apart because it is what restart
/// scenarios are about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Inactive,
    Activating,
    Active,
    Deactivating,
    Failed,
    AutoRestart,
}

impl State {
    pub(super) const ALL: [State; 6] =
        [State::Active, State::Activating, State::Deactivating, State::AutoRestart, State::Failed, State::Inactive];

    pub(super) fn name(self) -> &'static str {
        match self {
            State::Inactive => "inactive",
            State::Activating => "activating",
            State::Active => "active",
            State::Deactivating => "deactivating",
            State::Failed => "failed",
            State::AutoRestart => "auto-restart",
        }
    }
}

/// A span of time in one state; `cause` is the journal line that began it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Segment {
    pub state: State,
    pub from: Duration,
    pub to: Duration,
    pub cause: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MarkKind {
    /// Something the lab did to break the service.
    Fault,
    /// Something else the lab did (a start, a thaw).
    Lab,
    /// systemd scheduled a restart.
    Restart,
    /// The main process exited.
    Exit,
    /// A watchdog or start timeout, or the start rate limit.
    Timeout,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Mark {
    pub kind: MarkKind,
    pub at: Duration,
    /// The tooltip: what happened, in the journal's or the lab's words.
    pub label: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Lane {
    pub unit: String,
    pub segments: Vec<Segment>,
    pub marks: Vec<Mark>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Chart {
    pub lanes: Vec<Lane>,
    /// Marks about no particular unit (pausing the whole target), drawn across every lane.
    pub target_marks: Vec<Mark>,
    /// Right edge of the time axis.
    pub end: Duration,
}

/// Whether a lab action breaks something: the control endpoint's faults ("fault: hang"),
/// signals, and what systemctl or the engine does to a unit or the target.
pub(super) fn is_fault(action: &str) -> bool {
    let mut words = action.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).filter(|w| !w.is_empty());
    let first = words.clone().next().unwrap_or("");
    first.starts_with("fault")
        || words.any(|w| {
            matches!(w, "signal" | "kill" | "stop" | "freeze" | "pause" | "restart")
                || (w.len() > 3 && w.starts_with("SIG") && w[3..].chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()))
        })
}

pub(super) fn chart(r: &ScenarioResult) -> Chart {
    let mut units: Vec<&str> = r.units.iter().map(|(u, _)| u.as_str()).collect();
    for e in &r.timeline {
        if !e.unit.is_empty() && !units.contains(&e.unit.as_str()) {
            units.push(&e.unit);
        }
    }
    let last_event = r.timeline.iter().map(|e| e.at).max().unwrap_or_default();
    let last_check = r.checks.iter().map(|c| c.at).max().unwrap_or_default();
    let end = r.duration.max(last_event).max(last_check);
    let end = if end.is_zero() { Duration::from_secs(1) } else { end };
    let lanes = units
        .into_iter()
        .map(|unit| {
            let events: Vec<&Event> = r.timeline.iter().filter(|e| e.unit == unit).collect();
            Lane { unit: unit.to_string(), segments: segments(&events, end), marks: events.iter().filter_map(|e| mark(e)).collect() }
        })
        .collect();
    let target_marks = r.timeline.iter().filter(|e| e.unit.is_empty()).filter_map(mark).collect();
    Chart { lanes, target_marks, end }
}

/// Replay one unit's events; the time before its first state event stays undrawn, since the
/// lab does not know what the unit was doing then.
fn segments(events: &[&Event], end: Duration) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let Some(state) = state_after(e, &events[i + 1..]) else { continue };
        if let Some(last) = out.last_mut() {
            if last.state == state {
                continue;
            }
            last.to = e.at;
        }
        out.push(Segment { state, from: e.at, to: end, cause: e.message.clone() });
    }
    // Events a few microseconds apart (Stopped right before Starting) make slivers no one can
    // see or point at; they stay in the event table below the chart.
    out.retain(|s| s.to > s.from || s.to == end);
    out
}

/// The state an event leaves its unit in, None when it changes nothing. A failure or clean
/// exit followed by "Scheduled restart job" is the auto-restart wait, not a resting state.
fn state_after(e: &Event, rest: &[&Event]) -> Option<State> {
    let settles = |resting: State| {
        let next = rest.iter().find(|n| state_after_alone(&n.kind).is_some() || matches!(n.kind, EventKind::RestartScheduled { .. }));
        match next.map(|n| &n.kind) {
            Some(EventKind::RestartScheduled { .. }) => State::AutoRestart,
            _ => resting,
        }
    };
    match &e.kind {
        EventKind::Failed { .. } | EventKind::StartFailed | EventKind::StartLimitHit => Some(settles(State::Failed)),
        EventKind::Deactivated | EventKind::Skipped { .. } => Some(settles(State::Inactive)),
        other => state_after_alone(other),
    }
}

fn state_after_alone(kind: &EventKind) -> Option<State> {
    match kind {
        EventKind::Starting | EventKind::RestartScheduled { .. } => Some(State::Activating),
        EventKind::Started => Some(State::Active),
        EventKind::StartFailed | EventKind::Failed { .. } | EventKind::StartLimitHit => Some(State::Failed),
        EventKind::Deactivated | EventKind::Skipped { .. } | EventKind::Stopped => Some(State::Inactive),
        EventKind::Stopping | EventKind::WatchdogTimeout | EventKind::StartTimeout => Some(State::Deactivating),
        EventKind::MainExited { .. } | EventKind::Output | EventKind::Manager | EventKind::Lab { .. } => None,
    }
}

fn mark(e: &Event) -> Option<Mark> {
    let (kind, label) = match &e.kind {
        EventKind::Lab { action } if is_fault(action) => (MarkKind::Fault, action.clone()),
        EventKind::Lab { action } => (MarkKind::Lab, action.clone()),
        EventKind::RestartScheduled { n } => (MarkKind::Restart, format!("restart #{n} scheduled")),
        EventKind::MainExited { .. } => (MarkKind::Exit, e.message.clone()),
        EventKind::WatchdogTimeout | EventKind::StartTimeout | EventKind::StartLimitHit => (MarkKind::Timeout, e.message.clone()),
        _ => return None,
    };
    Some(Mark { kind, at: e.at, label })
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::report::fixtures;

    fn spans(lane: &Lane) -> Vec<(&'static str, u128, u128)> {
        lane.segments.iter().map(|s| (s.state.name(), s.from.as_millis(), s.to.as_millis())).collect()
    }

    #[test]
    fn a_restart_on_failure_reads_activating_active_auto_restart_active() {
        let chart = chart(&fixtures::passing());
        assert_eq!(chart.end, Duration::from_millis(3_210));
        let [lane] = &chart.lanes[..] else { panic!("{:?}", chart.lanes) };
        assert_eq!(
            spans(lane),
            [
                ("activating", 10, 40),
                ("active", 40, 1_005),
                ("auto-restart", 1_005, 2_105),
                ("activating", 2_105, 2_208),
                ("active", 2_208, 3_210),
            ]
        );
        let marks: Vec<(MarkKind, u128)> = lane.marks.iter().map(|m| (m.kind, m.at.as_millis())).collect();
        assert_eq!(
            marks,
            [(MarkKind::Lab, 0), (MarkKind::Fault, 1_000), (MarkKind::Exit, 1_004), (MarkKind::Restart, 2_105)]
        );
        assert_eq!(lane.marks[3].label, "restart #1 scheduled");
    }

    #[test]
    fn a_failure_without_a_restart_stays_failed_and_lanes_follow_the_unit_list() {
        let chart = chart(&fixtures::failing());
        let units: Vec<&str> = chart.lanes.iter().map(|l| l.unit.as_str()).collect();
        assert_eq!(units, ["web.service", "pinger.service"]);
        assert_eq!(spans(&chart.lanes[1]), [("activating", 35, 80), ("failed", 80, 8_400)]);
        let web = spans(&chart.lanes[0]);
        assert_eq!(web[..3], [("activating", 5, 30), ("active", 30, 3_012), ("deactivating", 3_012, 3_021)]);
        assert_eq!(web[3], ("failed", 3_021, 5_000));
        assert_eq!(chart.lanes[0].segments[3].cause, "web.service: Failed with result 'watchdog'.");
    }

    #[test]
    fn events_without_a_unit_mark_the_whole_target_and_empty_runs_get_an_axis() {
        let mut r = fixtures::erroring();
        assert_eq!(chart(&r).end, Duration::from_millis(30_050));
        r.duration = Duration::ZERO;
        r.timeline.push(Event {
            at: Duration::ZERO,
            unit: String::new(),
            kind: EventKind::Lab { action: "pause target".into() },
            message: "unitlab: pause target".into(),
            invocation: None,
        });
        let c = chart(&r);
        assert_eq!(c.end, Duration::from_secs(1));
        assert!(c.lanes.is_empty());
        assert_eq!(c.target_marks[0].kind, MarkKind::Fault);
    }

    #[rstest]
    #[case("fault: exit 3", true)]
    #[case("fault: hang", true)]
    #[case("signal SIGTERM", true)]
    #[case("kill main SIGKILL", true)]
    #[case("systemctl stop", true)]
    #[case("systemctl restart", true)]
    #[case("freeze", true)]
    #[case("pause target", true)]
    #[case("send SIGUSR1", true)]
    #[case("systemctl start", false)]
    #[case("thaw", false)]
    #[case("wait for active", false)]
    #[case("SIG", false)]
    fn faults_are_told_from_other_lab_actions(#[case] action: &str, #[case] fault: bool) {
        assert_eq!(is_fault(action), fault, "{action}");
    }
}
