//! Judging expectations: from what the runner gathered (property values, HTTP answers, evidence
//! found in timelines) to a verdict in words, expected and observed. Plain synchronous code, so
//! every rule is tested without a target; the runner only waits and gathers.

use std::time::Duration;

use crate::observe::Answer;
use crate::scenario::{HttpExpect, PropertyCheck, TextMatch};
use crate::systemd::format_duration;

/// What a check expected, what it observed, and whether that holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub expected: String,
    pub observed: String,
    pub passed: bool,
}

/// A measured time for reports: "1.204s".
pub fn seconds(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

/// How a property check reads in a report.
pub fn describe_property(c: &PropertyCheck) -> String {
    match c {
        PropertyCheck::ActiveState(s) => format!("ActiveState={s}"),
        PropertyCheck::SubState(s) => format!("SubState={s}"),
        PropertyCheck::Result(r) => format!("Result={r}"),
        PropertyCheck::NRestarts(r) => format!("NRestarts {r}"),
        PropertyCheck::MainExit(m) => format!("main process {m}"),
    }
}

/// `do = "expect"`: every property check against the values read (`read` lists what was read,
/// in order, for the report).
pub fn properties(unit: &str, checks: &[PropertyCheck], read: &[(String, Option<String>)]) -> Verdict {
    let get = |k: &str| read.iter().find(|(p, _)| p == k).and_then(|(_, v)| v.clone());
    let errors: Vec<String> = checks.iter().filter_map(|c| c.check(&get).err()).collect();
    let expected = checks.iter().map(describe_property).collect::<Vec<_>>().join(", ");
    let seen = read.iter().map(|(p, v)| format!("{p}={}", v.as_deref().unwrap_or("?"))).collect::<Vec<_>>().join(" ");
    let observed = if errors.is_empty() { seen } else { format!("{}; read: {seen}", errors.join("; ")) };
    Verdict { expected: format!("{unit}: {expected}"), observed, passed: errors.is_empty() }
}

/// `do = "probe"`.
pub fn probe(port: u16, path: &str, expect: HttpExpect, timeout: Duration, got: &Answer) -> Verdict {
    let passed = match expect {
        HttpExpect::Status(s) => *got == Answer::Status(s),
        HttpExpect::Refused => *got == Answer::Refused,
        HttpExpect::Timeout => *got == Answer::Timeout,
    };
    let expected = match expect {
        HttpExpect::Timeout => format!("GET :{port}{path}: no answer within {}", format_duration(timeout)),
        other => format!("GET :{port}{path}: {other}"),
    };
    Verdict { expected, observed: format!("GET :{port}{path}: {got}"), passed }
}

/// `do = "expect-restart"`: `found` is when the new start came, after the fault.
pub fn restarted_within(unit: &str, within: Duration, fault_step: usize, found: Option<Duration>, last: Option<&str>) -> Verdict {
    let expected = format!("{unit} starts again within {} of the fault (step {})", format_duration(within), fault_step + 1);
    match found {
        Some(after) => Verdict { expected, observed: format!("started again {} after the fault", seconds(after)), passed: after <= within },
        None => Verdict { expected, observed: format!("no new start within {} of the fault{}", format_duration(within), last_event(last)), passed: false },
    }
}

/// "; last event: ..." for an observation that found nothing.
fn last_event(last: Option<&str>) -> String {
    match last {
        Some(line) => format!("; last event: {line:?}"),
        None => "; no event since the fault".to_string(),
    }
}

/// `do = "expect-no-restart"`: `evidence` is the restart line seen and when, into the window;
/// `before`/`after` are NRestarts read around the window.
pub fn no_restart(unit: &str, window: Duration, source: &str, evidence: Option<(&str, Duration)>, before: &str, after: &str) -> Verdict {
    let expected = format!("{unit} does not start again within {} ({source})", format_duration(window));
    let (observed, passed) = match evidence {
        Some((line, at)) => (format!("{line:?} {} into the window", seconds(at)), false),
        None if before != after => (format!("no restart line, but NRestarts={before} became NRestarts={after}"), false),
        None => (format!("no restart in {}: NRestarts={after}", format_duration(window)), true),
    };
    Verdict { expected, observed, passed }
}

/// What `expect-recovery` gathered, every time measured from the fault.
#[derive(Debug, Clone, Default)]
pub struct Recovery<'a> {
    /// The first sign systemd noticed the fault, and its line.
    pub detected: Option<(Duration, &'a str)>,
    /// When the unit was active again (a new invocation started).
    pub active_again: Option<Duration>,
    /// For an HTTP recovery: when GET first answered 200, or the last answer at the deadline.
    pub healthy: Option<Result<Duration, Answer>>,
    pub last: Option<&'a str>,
}

/// `do = "expect-recovery"`.
pub fn recovery(unit: &str, within: Duration, fault_step: usize, http: Option<(u16, &str)>, r: &Recovery<'_>) -> Verdict {
    let goal = match http {
        Some((port, path)) => format!("active again and GET :{port}{path} answers 200"),
        None => "active again".to_string(),
    };
    let expected = format!("{unit}: {goal} within {} of the fault (step {})", format_duration(within), fault_step + 1);
    let mut parts = Vec::new();
    match r.detected {
        Some((t, line)) => parts.push(format!("detected after {} ({line:?})", seconds(t))),
        None => parts.push("no failure event".to_string()),
    }
    let mut passed = match r.active_again {
        Some(t) => {
            parts.push(format!("active again after {}", seconds(t)));
            t <= within
        }
        None => {
            parts.push(format!("not active again within {}{}", format_duration(within), last_event(r.last)));
            false
        }
    };
    if let Some((port, path)) = http {
        match &r.healthy {
            Some(Ok(t)) => {
                parts.push(format!("GET :{port}{path} 200 after {}", seconds(*t)));
                passed &= *t <= within;
            }
            Some(Err(last)) => {
                parts.push(format!("GET :{port}{path} still {last} at the deadline"));
                passed = false;
            }
            None => passed = false,
        }
    }
    Verdict { expected, observed: parts.join(", "), passed }
}

/// `do = "expect-journal"`: `hit` is the first matching line, among `count` relevant ones.
pub fn journal(scope: &str, matcher: &TextMatch, present: bool, hit: Option<&str>, count: usize) -> Verdict {
    let expected = if present { format!("{scope} has a line matching {matcher}") } else { format!("{scope} has no line matching {matcher}") };
    let observed = match hit {
        Some(line) => format!("found: {line:?}"),
        None => format!("no match among {count} line(s)"),
    };
    Verdict { expected, observed, passed: hit.is_some() == present }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::CountRange;
    use crate::systemd::ActiveState;

    #[test]
    fn property_checks_name_what_failed_and_what_was_read() {
        let checks = [PropertyCheck::ActiveState(ActiveState::Active), PropertyCheck::NRestarts(CountRange::parse(">=1").unwrap())];
        let read = vec![("ActiveState".to_string(), Some("failed".to_string())), ("NRestarts".to_string(), Some("0".to_string()))];
        let v = properties("a.service", &checks, &read);
        assert!(!v.passed);
        assert_eq!(v.expected, "a.service: ActiveState=active, NRestarts >=1");
        assert_eq!(v.observed, "ActiveState: expected active, found failed; NRestarts: expected >=1, found 0; read: ActiveState=failed NRestarts=0");
    }

    #[test]
    fn a_probe_passes_only_on_the_expected_answer() {
        assert!(probe(8080, "/", HttpExpect::Status(200), Duration::from_secs(2), &Answer::Status(200)).passed);
        assert!(!probe(8080, "/", HttpExpect::Status(200), Duration::from_secs(2), &Answer::Refused).passed);
        let v = probe(8080, "/healthz", HttpExpect::Timeout, Duration::from_secs(1), &Answer::Timeout);
        assert!(v.passed);
        assert_eq!(v.expected, "GET :8080/healthz: no answer within 1s");
    }

    #[test]
    fn a_restart_must_come_within_the_limit() {
        let v = restarted_within("a.service", Duration::from_secs(2), 1, Some(Duration::from_millis(1500)), None);
        assert!(v.passed);
        assert_eq!(v.observed, "started again 1.500s after the fault");
        assert!(!restarted_within("a.service", Duration::from_secs(1), 1, Some(Duration::from_millis(1500)), None).passed, "too late");
        let none = restarted_within("a.service", Duration::from_secs(1), 1, None, Some("a.service: Failed with result 'signal'."));
        assert!(!none.passed);
        assert!(none.observed.ends_with("last event: \"a.service: Failed with result 'signal'.\""), "{}", none.observed);
    }

    #[test]
    fn no_restart_fails_on_a_restart_line_or_a_changed_counter() {
        assert!(no_restart("a", Duration::from_secs(1), "window as written", None, "0", "0").passed);
        assert!(!no_restart("a", Duration::from_secs(1), "w", Some(("Scheduled restart job", Duration::from_millis(100))), "0", "1").passed);
        let v = no_restart("a", Duration::from_secs(1), "w", None, "0", "1");
        assert!(!v.passed, "a counter that moved is a restart even without its line");
        assert_eq!(v.observed, "no restart line, but NRestarts=0 became NRestarts=1");
    }

    #[test]
    fn recovery_needs_activity_and_health_in_time() {
        let ok = Recovery { detected: Some((Duration::from_millis(10), "x")), active_again: Some(Duration::from_millis(300)), healthy: Some(Ok(Duration::from_millis(350))), last: None };
        assert!(recovery("a", Duration::from_secs(1), 0, Some((8080, "/healthz")), &ok).passed);
        let unhealthy = Recovery { healthy: Some(Err(Answer::Status(503))), ..ok.clone() };
        let v = recovery("a", Duration::from_secs(1), 0, Some((8080, "/healthz")), &unhealthy);
        assert!(!v.passed);
        assert!(v.observed.ends_with("GET :8080/healthz still 503 at the deadline"), "{}", v.observed);
        let late = Recovery { active_again: Some(Duration::from_secs(2)), healthy: None, ..ok };
        assert!(!recovery("a", Duration::from_secs(1), 0, None, &late).passed);
    }

    #[test]
    fn journal_presence_and_absence() {
        let m = TextMatch::Contains("Watchdog timeout".into());
        assert!(journal("the journal of a", &m, true, Some("a: Watchdog timeout (limit 1s)!"), 4).passed);
        assert!(!journal("the journal of a", &m, false, Some("a: Watchdog timeout (limit 1s)!"), 4).passed);
        assert!(journal("the journal of a", &m, false, None, 4).passed);
    }
}
