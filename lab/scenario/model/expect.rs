//! Expectations: what a step checks, and the values a check compares with.

use std::fmt;
use std::time::Duration;

use crate::systemd::{ActiveState, MainExit, ServiceResult, SubState};

use super::{TextMatch, UnitName};

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
    use crate::systemd::words::*;
    use crate::systemd::Signal;
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

}
