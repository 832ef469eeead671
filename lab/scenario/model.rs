//! The checked scenario: domain types the runner consumes. Everything here has been validated
//! (units exist, durations parse, enums are closed sets), so the runner never re-parses text.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::systemd::unit::{Directive, UnitFile};
use crate::systemd::words::word_enum;
use crate::systemd::Suite;

pub use crate::systemd::{ActiveState, ManagerSettings, KillWhom, MainExit, RestartPolicy, ServiceResult, ServiceType, Signal, SubState};

/// Where something was written: file and 1-based line/column, for reports that point back at
/// the scenario (a failed expectation names its step's line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.col)
    }
}

/// A validated scenario, ready to plan.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The file it was loaded from.
    pub path: PathBuf,
    /// `name`: unique among the scenarios loaded together; `[a-z0-9_-]`, so the runner can use
    /// it to namespace unit names.
    pub name: String,
    /// `description`, empty when not given.
    pub description: String,
    /// `suites`: where to run, in the order written (default: bookworm, trixie).
    pub suites: Vec<Suite>,
    /// `shared_target` as written (default true). See [`Scenario::needs_pristine_target`].
    pub shared_target: bool,
    /// `snapshot`: keep a normalised journal snapshot of the run (default false).
    pub snapshot: bool,
    /// `[manager]`: system.conf `[Manager]` overrides.
    pub manager: ManagerSettings,
    /// `[[files]]`: files written into the target before the units are installed.
    pub files: Vec<ExtraFile>,
    pub(crate) units: Vec<UnitSpec>,
    /// `[[steps]]`, in order.
    pub steps: Vec<Step>,
}

impl Scenario {
    /// The scenario's units, in the order written. Each carries its rendered unit file under
    /// its scenario-local name.
    pub fn units(&self) -> &[UnitSpec] {
        &self.units
    }

    /// The unit a step refers to. Every [`UnitName`] inside a validated scenario resolves, so
    /// `None` only comes back for a name taken from elsewhere.
    pub fn unit(&self, name: &UnitName) -> Option<&UnitSpec> {
        self.units.iter().find(|u| &u.name == name)
    }

    /// True when the scenario cannot run on a booted target shared with other scenarios:
    /// it asked for `shared_target = false`, or it changes the manager's settings (which
    /// needs a `daemon-reexec` and would leak into the other scenarios).
    pub fn needs_pristine_target(&self) -> bool {
        !self.shared_target || !self.manager.is_empty()
    }

    /// The units rendered for installation, with every scenario-local unit name in `[Unit]`
    /// and `[Install]` values (`After=web.service`, `WantedBy=...`) replaced by `rename(name)`.
    /// The runner namespaces units this way when several scenarios share a target; it must
    /// then use the same `rename` for the names in steps.
    pub fn units_renamed(&self, rename: impl Fn(&UnitName) -> String) -> Vec<(String, UnitFile)> {
        let names: Vec<(&str, String)> =
            self.units.iter().map(|u| (u.name.as_str(), rename(&u.name))).collect();
        let rewrite = |directives: &[Directive]| -> Vec<Directive> {
            directives
                .iter()
                .map(|d| {
                    let value = d
                        .value
                        .split(' ')
                        .map(|word| names.iter().find(|(n, _)| *n == word).map_or(word, |(_, r)| r.as_str()))
                        .collect::<Vec<_>>()
                        .join(" ");
                    Directive::new(d.key.clone(), value)
                })
                .collect()
        };
        self.units
            .iter()
            .map(|u| {
                let file = UnitFile {
                    unit: rewrite(&u.file.unit),
                    service: u.file.service.clone(),
                    install: rewrite(&u.file.install),
                };
                (rename(&u.name), file)
            })
            .collect()
    }
}

/// A full unit name (`web.service`) local to its scenario. A scenario may write `web` or
/// `web.service`; both resolve to the same name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnitName(pub(crate) String);

impl UnitName {
    /// `web.service`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `web`: the name without `.service`.
    pub fn stem(&self) -> &str {
        self.0.strip_suffix(".service").unwrap_or(&self.0)
    }
}

impl fmt::Display for UnitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One `[[units]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitSpec {
    pub name: UnitName,
    /// `exec`: the program and its arguments (argv[0] absolute).
    pub exec: Vec<String>,
    /// The unit file: `[Unit]`, then `[Service]` starting with `ExecStart=` (escaped with
    /// [`crate::systemd::unit::exec_line`]), then `[Install]`; directives verbatim, in the order written.
    pub file: UnitFile,
    /// The `Type=` systemd will use: the last valid `Type=` line, else `simple`.
    pub service_type: ServiceType,
    /// The `Restart=` systemd will use: the last valid `Restart=` line, else `no`.
    pub restart: RestartPolicy,
    pub location: Location,
}

/// A file placed into the target before units are installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraFile {
    /// Absolute path inside the target.
    pub path: PathBuf,
    pub content: String,
    /// Permission bits (default 0o644).
    pub mode: u32,
}

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
    /// `do = "start"`: `systemctl start UNIT` (waits for the start job, as systemctl does).
    Start { unit: UnitName },
    /// A disturbance; later `expect-restart`/`expect-recovery` steps measure from the last one.
    Fault(Fault),
    /// Block until something is observed, or fail the scenario at the deadline.
    Wait(Wait),
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
            StepKind::Expect(e) => e.word(),
        }
    }
}

/// Faults, all injected from outside the service except `Control`, which asks buggy-server to
/// break itself through its control endpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// `do = "fault"`: `POST http://127.0.0.1:PORT/control/fault?QUERY` inside the target
    /// (see [`ControlFault::query`]).
    Control { unit: UnitName, port: u16, fault: ControlFault, after: Option<Duration> },
    /// `do = "signal"`: `kill(2)` of the unit's MainPID.
    Signal { unit: UnitName, signal: Signal },
    /// `do = "freeze"`: SIGSTOP to the MainPID.
    Freeze { unit: UnitName },
    /// `do = "thaw"`: SIGCONT to the MainPID.
    Thaw { unit: UnitName },
    /// `do = "pause"`: pause the whole target (all of its processes, systemd included) for
    /// `duration`, then unpause.
    PauseTarget { duration: Duration },
    /// `do = "stop"`: `systemctl stop UNIT` (a manual stop never restarts).
    Stop { unit: UnitName },
    /// `do = "restart"`: `systemctl restart UNIT`.
    Restart { unit: UnitName },
    /// `do = "kill"`: `systemctl kill --kill-whom=WHOM --signal=SIGNAL UNIT`.
    Kill { unit: UnitName, signal: Signal, whom: KillWhom },
}

impl Fault {
    /// The unit the fault is aimed at; `None` for a whole-target pause.
    pub fn unit(&self) -> Option<&UnitName> {
        match self {
            Fault::Control { unit, .. }
            | Fault::Signal { unit, .. }
            | Fault::Freeze { unit }
            | Fault::Thaw { unit }
            | Fault::Stop { unit }
            | Fault::Restart { unit }
            | Fault::Kill { unit, .. } => Some(unit),
            Fault::PauseTarget { .. } => None,
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
    /// `do = "wait-http"`: until `GET http://127.0.0.1:PORT PATH` inside the target answers `status`.
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

/// Checks made at a point of the run.
#[derive(Debug, Clone, PartialEq)]
pub enum Expectation {
    /// `do = "expect"`: unit properties (`systemctl show`) right now; every check must hold.
    Unit { unit: UnitName, checks: Vec<PropertyCheck> },
    /// `do = "probe"`: one `GET` inside the target.
    Http { port: u16, path: String, expect: HttpExpect, timeout: Duration },
    /// `do = "expect-restart"`: the unit started again (a new InvocationID reached `active`)
    /// within `within` of the fault step `since_step` (index into `Scenario::steps`).
    RestartedWithin { unit: UnitName, within: Duration, since_step: usize },
    /// `do = "expect-no-restart"`: for `window` from this step, the unit does not start again
    /// (no new InvocationID, NRestarts unchanged, no "Scheduled restart job").
    NoRestart { unit: UnitName, window: Duration, window_source: WindowSource },
    /// `do = "expect-recovery"`: after the fault step `since_step`, the unit is active again
    /// and, when `http` is given, answers 200 there, all within `within` of the fault.
    Recovery { unit: UnitName, http: Option<(u16, String)>, within: Duration, since_step: usize },
    /// `do = "expect-journal"`: a MESSAGE matching (or, with `present = false`, none matching)
    /// was logged since the scenario started.
    Journal { unit: Option<UnitName>, matcher: TextMatch, present: bool },
}

impl Expectation {
    /// The `do = ...` word.
    pub fn word(&self) -> &'static str {
        match self {
            Expectation::Unit { .. } => "expect",
            Expectation::Http { .. } => "probe",
            Expectation::RestartedWithin { .. } => "expect-restart",
            Expectation::NoRestart { .. } => "expect-no-restart",
            Expectation::Recovery { .. } => "expect-recovery",
            Expectation::Journal { .. } => "expect-journal",
        }
    }
}

/// Where a no-restart window came from, for the report ("no restart within 1.2s, derived from
/// RestartSec=100ms, WatchdogSec=0").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowSource {
    /// Written as `window = "..."`.
    Explicit,
    /// Computed by [`crate::systemd::no_restart_window`]; the text states the inputs.
    Derived(String),
}

/// One property check of `do = "expect"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertyCheck {
    ActiveState(ActiveState),
    SubState(SubState),
    Result(ServiceResult),
    NRestarts(CountRange),
    MainExit(MainExit),
}

impl PropertyCheck {
    /// The `systemctl show` properties the check reads.
    pub fn properties(&self) -> &'static [&'static str] {
        match self {
            PropertyCheck::ActiveState(_) => &["ActiveState"],
            PropertyCheck::SubState(_) => &["SubState"],
            PropertyCheck::Result(_) => &["Result"],
            PropertyCheck::NRestarts(_) => &["NRestarts"],
            PropertyCheck::MainExit(_) => &["ExecMainCode", "ExecMainStatus"],
        }
    }

    /// Check against property values (`get("ActiveState")` -> `Some("active")`). The error
    /// says what was expected and what was found.
    pub fn check(&self, get: &dyn Fn(&str) -> Option<String>) -> Result<(), String> {
        let read = |key: &str| get(key).ok_or_else(|| format!("property {key} is missing"));
        let compare = |key: &str, want: &str| -> Result<(), String> {
            let got = read(key)?;
            if got == want {
                Ok(())
            } else {
                Err(format!("{key}: expected {want}, found {got}"))
            }
        };
        match self {
            PropertyCheck::ActiveState(s) => compare("ActiveState", s.as_str()),
            PropertyCheck::SubState(s) => compare("SubState", s.as_str()),
            PropertyCheck::Result(r) => compare("Result", r.as_str()),
            PropertyCheck::NRestarts(range) => {
                let got = read("NRestarts")?;
                let n: u64 = got.parse().map_err(|_| format!("NRestarts: not a number: {got}"))?;
                if range.contains(n) {
                    Ok(())
                } else {
                    Err(format!("NRestarts: expected {range}, found {n}"))
                }
            }
            PropertyCheck::MainExit(want) => {
                let code = read("ExecMainCode")?;
                let status = read("ExecMainStatus")?;
                let found = MainExit::from_properties(&code, &status);
                if found.as_ref().is_some_and(|f| want.matches(f)) {
                    Ok(())
                } else {
                    Err(format!("main process: expected {want}, found ExecMainCode={code} ExecMainStatus={status}"))
                }
            }
        }
    }
}


/// An inclusive range of counts: `3`, `">=1"`, `">1"`, `"<=3"`, `"<3"`, `"1..3"` (= `"1..=3"`,
/// both ends included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountRange {
    pub min: u64,
    /// `None`: no upper bound.
    pub max: Option<u64>,
}

impl CountRange {
    pub fn exactly(n: u64) -> CountRange {
        CountRange { min: n, max: Some(n) }
    }

    pub fn contains(&self, n: u64) -> bool {
        n >= self.min && self.max.is_none_or(|max| n <= max)
    }

    /// Parse the string forms; the error completes "invalid count range `x`: ".
    pub fn parse(text: &str) -> Result<CountRange, String> {
        let t = text.trim();
        let num = |s: &str| -> Result<u64, String> {
            s.trim().parse::<u64>().map_err(|_| format!("`{}` is not a non-negative integer", s.trim()))
        };
        let range = if let Some(rest) = t.strip_prefix(">=") {
            CountRange { min: num(rest)?, max: None }
        } else if let Some(rest) = t.strip_prefix("<=") {
            CountRange { min: 0, max: Some(num(rest)?) }
        } else if let Some(rest) = t.strip_prefix('>') {
            CountRange { min: num(rest)?.checked_add(1).ok_or("too large")?, max: None }
        } else if let Some(rest) = t.strip_prefix('<') {
            let n = num(rest)?;
            if n == 0 {
                return Err("`<0` matches nothing".into());
            }
            CountRange { min: 0, max: Some(n - 1) }
        } else if let Some((a, b)) = t.split_once("..") {
            let b = b.strip_prefix('=').unwrap_or(b);
            let (min, max) = (num(a)?, num(b)?);
            if min > max {
                return Err(format!("{min} is above {max}"));
            }
            CountRange { min, max: Some(max) }
        } else {
            CountRange::exactly(num(t)?)
        };
        Ok(range)
    }
}

impl fmt::Display for CountRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.max {
            Some(max) if max == self.min => write!(f, "{max}"),
            Some(max) if self.min == 0 => write!(f, "<={max}"),
            Some(max) => write!(f, "{}..{max}", self.min),
            None => write!(f, ">={}", self.min),
        }
    }
}

/// What an HTTP probe must see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpExpect {
    /// An answer with this status (100..=599).
    Status(u16),
    /// The connection is refused (nothing listens: ECONNREFUSED).
    Refused,
    /// No answer within the probe's timeout (connect or response).
    Timeout,
}

impl fmt::Display for HttpExpect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpExpect::Status(s) => write!(f, "{s}"),
            HttpExpect::Refused => f.write_str("refused"),
            HttpExpect::Timeout => f.write_str("timeout"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use std::collections::HashMap;

    #[rstest]
    #[case("3", 3, Some(3))]
    #[case(">=1", 1, None)]
    #[case(">1", 2, None)]
    #[case("<=3", 0, Some(3))]
    #[case("<3", 0, Some(2))]
    #[case("1..3", 1, Some(3))]
    #[case("1..=3", 1, Some(3))]
    fn count_ranges(#[case] text: &str, #[case] min: u64, #[case] max: Option<u64>) {
        assert_eq!(CountRange::parse(text), Ok(CountRange { min, max }));
    }

    #[rstest]
    #[case("3..1")]
    #[case("<0")]
    #[case(">=-1")]
    #[case("lots")]
    #[case("1...3")]
    fn bad_count_ranges(#[case] text: &str) {
        assert!(CountRange::parse(text).is_err(), "{text}");
    }

    #[test]
    fn property_checks_read_systemctl_show_values() {
        let props: HashMap<&str, &str> =
            [("ActiveState", "active"), ("NRestarts", "2"), ("ExecMainCode", "3"), ("ExecMainStatus", "6")].into();
        let get = |k: &str| props.get(k).map(|v| v.to_string());
        assert_eq!(PropertyCheck::ActiveState(ActiveState::Active).check(&get), Ok(()));
        assert_eq!(
            PropertyCheck::NRestarts(CountRange::parse("<2").unwrap()).check(&get),
            Err("NRestarts: expected <=1, found 2".into())
        );
        let abrt = MainExit::Killed { signal: Signal::ABRT, dumped: None };
        assert_eq!(PropertyCheck::MainExit(abrt).check(&get), Ok(()));
        let no_core = MainExit::Killed { signal: Signal::ABRT, dumped: Some(false) };
        assert!(PropertyCheck::MainExit(no_core).check(&get).is_err(), "code 3 means a core was dumped");
        assert!(PropertyCheck::MainExit(MainExit::Exited(6)).check(&get).is_err());
        assert!(PropertyCheck::Result(ServiceResult::Success).check(&get).unwrap_err().contains("missing"));
    }

    #[test]
    fn control_queries_match_the_endpoint_grammar() {
        let hang = ControlFault::Hang(vec![HangPart::Handlers, HangPart::Watchdog]);
        assert_eq!(hang.query(None), "kind=hang&part=handlers,watchdog");
        assert_eq!(ControlFault::Signal(Signal::SEGV).query(Some(Duration::from_secs(2))), "kind=signal&signal=SEGV&after=2s");
        assert_eq!(ControlFault::Exit(3).query(Some(Duration::from_millis(1500))), "kind=exit&code=3&after=1.5s");
        assert_eq!(ControlFault::Unhealthy.query(None), "kind=unhealthy");
    }

    #[test]
    fn words_are_case_sensitive() {
        assert_eq!("notify".parse::<ServiceType>(), Ok(ServiceType::Notify));
        assert!("Notify".parse::<ServiceType>().is_err());
        assert_eq!("on-failure".parse::<RestartPolicy>(), Ok(RestartPolicy::OnFailure));
    }
}
