//! Steps: what a scenario does, in order (start, faults, waits, observations, checks).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::systemd::words::word_enum;
use crate::systemd::{ActiveState, KillWhom, Signal, SubState};

use super::{Expectation, Location, ResourceFault, UnitName, WindowSource};

/// One `[[steps]]` entry, with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Position of the step's `do = ...` value.
    pub location: Location,
    pub kind: StepKind,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// `do = "start"`: `systemctl start UNIT`, which waits for the start job as systemctl does;
    /// with `no_block = true`, `systemctl start --no-block UNIT`, which only queues the job
    /// (later steps wait for what they need: a state, a journal line, a failure).
    Start { unit: UnitName, no_block: bool },
    /// A disturbance; later `expect-restart`/`expect-recovery`/`observe` steps measure from the
    /// last one.
    Fault(Fault),
    /// Block until something is observed, or fail the scenario at the deadline.
    Wait(Wait),
    /// `do = "settle"`: wait the bounded "nothing more happens" window after the unit's last
    /// start request, after which no start timeout can still fire
    /// ([`crate::systemd::settle_window`], or `window` as written). The one wait that is a
    /// duration, stated in the report.
    Settle { unit: UnitName, window: Duration, window_source: WindowSource },
    /// Record a value without passing or failing: what the tables are judged from, and what a
    /// scenario reports as a measurement.
    Observe(Observe),
    /// Check something at this point of the run.
    Expect(Expectation),
}

impl StepKind {
    /// The `do = ...` word that produces this step.
    pub fn word(&self) -> &'static str {
        match self {
            StepKind::Start { .. } => "start",
            StepKind::Fault(f) => f.word(),
            StepKind::Wait(Wait::State { .. }) => "wait-state",
            StepKind::Wait(Wait::Journal { .. }) => "wait-journal",
            StepKind::Wait(Wait::Http { .. }) => "wait-http",
            StepKind::Settle { .. } => "settle",
            StepKind::Observe(_) => "observe",
            StepKind::Expect(e) => e.word(),
        }
    }
}

/// `do = "observe"`: a measurement recorded in the report, never a pass or a fail.
#[derive(Debug, Clone, PartialEq)]
pub enum Observe {
    /// `what = "state"`: the unit's ActiveState, SubState, Result, NRestarts, ExecMainCode and
    /// ExecMainStatus right now.
    State { unit: UnitName },
    /// `what = "restart"`: the next end of a run of the unit (its Result) after the fault step
    /// `since_step` (or the scenario's start when there is none), awaited for `within`; then
    /// whether a restart follows within `window` of that end (derived from the unit's timers,
    /// counted from the failure, unless written).
    Restart { unit: UnitName, within: Duration, window: Duration, window_source: WindowSource, since_step: Option<usize> },
    /// `what = "http"`: one `GET` and what it got (a status, refused, or timeout).
    Http { port: u16, path: String, timeout: Duration },
}

impl Observe {
    /// The `what = ...` word.
    pub fn what(&self) -> &'static str {
        match self {
            Observe::State { .. } => "state",
            Observe::Restart { .. } => "restart",
            Observe::Http { .. } => "http",
        }
    }

    /// The unit observed, if the observation is about one.
    pub fn unit(&self) -> Option<&UnitName> {
        match self {
            Observe::State { unit } | Observe::Restart { unit, .. } => Some(unit),
            Observe::Http { .. } => None,
        }
    }
}

/// Faults, all injected from outside the service except `Control`, which asks buggy-server to
/// break itself through its control endpoint. A fault aimed at several units (`units = [...]`)
/// hits them all in one action, with one fault time.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// `do = "fault"`: `POST /control/fault?QUERY` to each unit's server (see
    /// [`ControlFault::query`]); each target is a unit and the port its server listens on.
    Control { targets: Vec<(UnitName, u16)>, fault: ControlFault, after: Option<Duration> },
    /// `do = "signal"`: `kill(2)` of each unit's MainPID.
    Signal { units: Vec<UnitName>, signal: Signal },
    /// `do = "freeze"`: SIGSTOP to each MainPID.
    Freeze { units: Vec<UnitName> },
    /// `do = "thaw"`: SIGCONT to each MainPID.
    Thaw { units: Vec<UnitName> },
    /// `do = "pause"`: pause the whole target (all of its processes, systemd included) for
    /// `duration`, then unpause.
    PauseTarget { duration: Duration },
    /// `do = "stop"`: `systemctl stop UNITS` (a manual stop never restarts).
    Stop { units: Vec<UnitName> },
    /// `do = "restart"`: `systemctl restart UNITS`.
    Restart { units: Vec<UnitName> },
    /// `do = "kill"`: `systemctl kill --kill-whom=WHOM --signal=SIGNAL UNITS`.
    Kill { units: Vec<UnitName>, signal: Signal, whom: KillWhom },
    /// `do = "oom"`, `"network"`, `"disk-full"`, `"cpu-starve"`: a resource runs out until a
    /// `heal`, its `duration` or the end of the scenario.
    Resource(ResourceFault),
    /// `do = "heal"`: undo the resource fault of step `step` (0-based) now, if it still holds.
    Heal { step: usize, unit: Option<UnitName> },
}

impl Fault {
    /// The units the fault is aimed at; empty for a whole-target pause.
    pub fn units(&self) -> Vec<&UnitName> {
        match self {
            Fault::Control { targets, .. } => targets.iter().map(|(u, _)| u).collect(),
            Fault::Signal { units, .. }
            | Fault::Freeze { units }
            | Fault::Thaw { units }
            | Fault::Stop { units }
            | Fault::Restart { units }
            | Fault::Kill { units, .. } => units.iter().collect(),
            Fault::PauseTarget { .. } => Vec::new(),
            Fault::Resource(r) => r.unit.iter().collect(),
            Fault::Heal { unit, .. } => unit.iter().collect(),
        }
    }

    /// The `do = ...` word.
    pub fn word(&self) -> &'static str {
        match self {
            Fault::Control { .. } => "fault",
            Fault::Signal { .. } => "signal",
            Fault::Freeze { .. } => "freeze",
            Fault::Thaw { .. } => "thaw",
            Fault::PauseTarget { .. } => "pause",
            Fault::Stop { .. } => "stop",
            Fault::Restart { .. } => "restart",
            Fault::Kill { .. } => "kill",
            Fault::Resource(r) => r.kind.word(),
            Fault::Heal { .. } => "heal",
        }
    }
}

/// A fault of buggy-server's control endpoint (services/README.md, "Control endpoint").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlFault {
    /// `kind=hang&part=PARTS`.
    Hang(Vec<HangPart>),
    /// `kind=exit&code=N`.
    Exit(u8),
    /// `kind=signal&signal=SIG`.
    Signal(Signal),
    StopWatchdog,
    CloseListener,
    ExhaustFds,
    Unhealthy,
    WatchdogTrigger,
}

impl ControlFault {
    /// The endpoint's `kind=` word.
    pub fn kind(&self) -> &'static str {
        match self {
            ControlFault::Hang(_) => "hang",
            ControlFault::Exit(_) => "exit",
            ControlFault::Signal(_) => "signal",
            ControlFault::StopWatchdog => "stop-watchdog",
            ControlFault::CloseListener => "close-listener",
            ControlFault::ExhaustFds => "exhaust-fds",
            ControlFault::Unhealthy => "unhealthy",
            ControlFault::WatchdogTrigger => "watchdog-trigger",
        }
    }

    /// The query string of `POST /control/fault?...`, e.g. `kind=hang&part=handlers,watchdog`
    /// or `kind=signal&signal=SEGV&after=2s`.
    pub fn query(&self, after: Option<Duration>) -> String {
        let mut q = format!("kind={}", self.kind());
        match self {
            ControlFault::Hang(parts) => {
                let parts: Vec<&str> = parts.iter().map(|p| p.as_str()).collect();
                q.push_str(&format!("&part={}", parts.join(",")));
            }
            ControlFault::Exit(code) => q.push_str(&format!("&code={code}")),
            ControlFault::Signal(sig) => q.push_str(&format!("&signal={}", sig.name())),
            _ => {}
        }
        if let Some(after) = after {
            // buggy-server reads single-unit spans; a compound one (`1min 30s`) goes as ms.
            let text = crate::systemd::format_duration(after);
            let text = if text.contains(' ') { format!("{}ms", after.as_millis()) } else { text };
            q.push_str(&format!("&after={text}"));
        }
        q
    }
}


word_enum! {
    /// buggy-server's `hang` parts.
    HangPart { Accept = "accept", Handlers = "handlers", Watchdog = "watchdog", All = "all" }
}


/// Blocking waits, each with a deadline.
#[derive(Debug, Clone, PartialEq)]
pub enum Wait {
    /// `do = "wait-state"`: until the unit's ActiveState and/or SubState are as given.
    State { unit: UnitName, active: Option<ActiveState>, sub: Option<SubState>, within: Duration },
    /// `do = "wait-journal"`: until a journal entry's MESSAGE matches (entries logged from the
    /// start of the scenario on count, so an event that already happened satisfies the wait).
    Journal { unit: Option<UnitName>, matcher: TextMatch, within: Duration },
    /// `do = "wait-http"`: until `GET PORT PATH` on the target answers `status`.
    Http { port: u16, path: String, status: u16, within: Duration },
}

impl Wait {
    /// The deadline.
    pub fn within(&self) -> Duration {
        match self {
            Wait::State { within, .. } | Wait::Journal { within, .. } | Wait::Http { within, .. } => *within,
        }
    }
}

/// How a journal MESSAGE is matched.
#[derive(Debug, Clone)]
pub enum TextMatch {
    /// Plain substring.
    Contains(String),
    /// Regular expression (Rust `regex` syntax), unanchored.
    Regex(regex::Regex),
}

impl TextMatch {
    pub fn is_match(&self, message: &str) -> bool {
        match self {
            TextMatch::Contains(s) => message.contains(s.as_str()),
            TextMatch::Regex(r) => r.is_match(message),
        }
    }
}

impl PartialEq for TextMatch {
    fn eq(&self, other: &TextMatch) -> bool {
        match (self, other) {
            (TextMatch::Contains(a), TextMatch::Contains(b)) => a == b,
            (TextMatch::Regex(a), TextMatch::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

impl fmt::Display for TextMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextMatch::Contains(s) => write!(f, "{s:?}"),
            TextMatch::Regex(r) => write!(f, "/{}/", r.as_str()),
        }
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_queries_match_the_endpoint_grammar() {
        let hang = ControlFault::Hang(vec![HangPart::Handlers, HangPart::Watchdog]);
        assert_eq!(hang.query(None), "kind=hang&part=handlers,watchdog");
        assert_eq!(ControlFault::Signal(Signal::SEGV).query(Some(Duration::from_secs(2))), "kind=signal&signal=SEGV&after=2s");
        assert_eq!(ControlFault::Exit(3).query(Some(Duration::from_millis(1500))), "kind=exit&code=3&after=1.5s");
        assert_eq!(ControlFault::Unhealthy.query(None), "kind=unhealthy");
    }
}
