//! The JUnit XML report for CI systems: one testsuite per suite (bookworm, trixie), one
//! testcase per scenario. A failed scenario carries one `<failure>` whose message names every
//! failed check (expected vs observed) and whose body holds each check's location and journal
//! context; quick-junit models one non-success per testcase, and CI front ends show one anyway.
//! The timeline goes to the testcase's system-out, where CI keeps it next to the failure.

use std::fmt::Write as _;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use crate::verdict::{Outcome, RunReport, ScenarioResult};

use super::text;

pub(super) fn render(report: &RunReport) -> String {
    let mut junit = Report::new("unitlab");
    junit.set_time(report.duration);
    for (suite, results) in text::by_suite(report) {
        let mut ts = TestSuite::new(suite);
        ts.set_time(results.iter().map(|r| r.duration).sum());
        if let Some(first) = results.first() {
            ts.add_property(Property::new("systemd", first.systemd.as_str()));
        }
        ts.add_test_cases(results.into_iter().map(test_case));
        junit.add_test_suite(ts);
    }
    // Only an I/O error of the writer or invalid UTF-8 can fail here, and the writer is a Vec
    // fed from Rust strings.
    let mut xml = junit.to_string().expect("JUnit XML serialises into memory");
    xml.push('\n');
    xml
}

fn test_case(r: &ScenarioResult) -> TestCase {
    let status = match r.outcome {
        Outcome::Pass => TestCaseStatus::success(),
        Outcome::Fail => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            let failed: Vec<_> = r.failed_checks().collect();
            let message = if failed.is_empty() {
                "the scenario failed without a failed check".to_string()
            } else {
                failed
                    .iter()
                    .map(|c| format!("step {} {}: expected {}, observed {}", c.step, c.kind, c.expected, c.observed))
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            status.set_message(message).set_type(failed.first().map_or("fail", |c| c.kind.as_str()));
            status.set_description(failure_body(r));
            status
        }
        Outcome::Error => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            let error = r.error.as_deref().unwrap_or("unknown error");
            status.set_message(error.lines().next().unwrap_or(error)).set_type("lab-error");
            status.set_description(error);
            status
        }
    };
    let mut case = TestCase::new(r.name.as_str(), status);
    case.set_classname(format!("unitlab.{}", r.suite));
    case.set_time(r.duration);
    case.set_assertions(r.checks.len());
    case.add_property(Property::new("path", r.path.display().to_string()));
    case.add_property(Property::new("systemd", r.systemd.as_str()));
    for t in &r.timings {
        case.add_property(Property::new(format!("{} ({})", t.name, t.unit), text::precise(t.value)));
    }
    if !r.timeline.is_empty() {
        case.set_system_out(system_out(r));
    }
    if !r.warnings.is_empty() {
        case.set_system_err(r.warnings.join("\n"));
    }
    case
}

/// Per failed check: where, what was expected and seen, and the journal around it.
fn failure_body(r: &ScenarioResult) -> String {
    let mut body = String::new();
    for c in r.failed_checks() {
        let _ = writeln!(body, "{}: step {} {} at {}", c.location, c.step, c.kind, text::precise(c.at));
        let _ = writeln!(body, "  expected: {}", c.expected);
        let _ = writeln!(body, "  observed: {}", c.observed);
        for line in &c.journal_context {
            let _ = writeln!(body, "  | {line}");
        }
    }
    body
}

/// The timeline, one event per line: "+1.005s web.service  web.service: Failed with ...".
fn system_out(r: &ScenarioResult) -> String {
    let mut out = String::new();
    for e in &r.timeline {
        let _ = writeln!(out, "+{} {}  {}", text::precise(e.at), e.unit, e.message);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use quick_junit::Report;

    use super::*;
    use crate::report::fixtures;

    fn parsed() -> Report {
        let xml = render(&fixtures::report());
        Report::deserialize_from_str(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"))
    }

    #[test]
    fn one_suite_per_suite_one_case_per_scenario_with_counts() {
        let report = parsed();
        assert_eq!((report.tests, report.failures, report.errors), (3, 1, 1));
        let suites: Vec<(&str, usize, usize, usize)> =
            report.test_suites.iter().map(|s| (s.name.as_str(), s.tests, s.failures, s.errors)).collect();
        assert_eq!(suites, [("bookworm", 1, 0, 0), ("trixie", 2, 1, 1)]);
        assert_eq!(report.time, Some(Duration::from_millis(41_660)));
        assert_eq!(report.test_suites[1].time, Some(Duration::from_millis(38_450)));
    }

    #[test]
    fn a_failure_names_each_failed_check_and_carries_the_journal() {
        let report = parsed();
        let case = &report.test_suites[1].test_cases[0];
        assert_eq!(case.name.as_str(), "watchdog-hang");
        assert_eq!(case.classname.as_ref().map(|c| c.as_str()), Some("unitlab.trixie"));
        assert_eq!(case.time, Some(Duration::from_millis(8_400)));
        let TestCaseStatus::NonSuccess { kind, message, description, .. } = &case.status else {
            panic!("{:?}", case.status)
        };
        assert_eq!(*kind, NonSuccessKind::Failure);
        assert_eq!(
            message.as_ref().unwrap().as_str(),
            "step 4 expect-restart: expected restart within 2s, observed no restart in 2s (Result=watchdog); \
             step 5 probe: expected GET /health -> 200, observed connection refused"
        );
        let body = description.as_ref().unwrap().as_str();
        assert!(body.contains("scenarios/watchdog/hang.toml:14:1: step 4 expect-restart at 6.100s"), "{body}");
        assert!(body.contains("  | web.service: Killing process 212 (buggy-server) with signal SIGABRT."), "{body}");
        let out = case.system_out.as_ref().unwrap().as_str();
        // Escaped on the way out, restored on the way in.
        assert!(out.contains("+0.060s pinger.service  pinger: GET /health <200 & \"ok\">"), "{out}");
        assert!(case.system_err.as_ref().unwrap().as_str().contains("RestartSecs"));
    }

    #[test]
    fn a_lab_error_is_an_error_not_a_failure() {
        let report = parsed();
        let case = &report.test_suites[1].test_cases[1];
        let TestCaseStatus::NonSuccess { kind, message, description, .. } = &case.status else {
            panic!("{:?}", case.status)
        };
        assert_eq!(*kind, NonSuccessKind::Error);
        assert_eq!(message.as_ref().unwrap().as_str(), "waiting for web.service to be active: timed out after 30s");
        assert!(description.as_ref().unwrap().as_str().contains("container unitlab-trixie-3f2a"));
        let pass = &report.test_suites[0].test_cases[0];
        assert!(matches!(pass.status, TestCaseStatus::Success { .. }));
        assert_eq!(pass.assertions, Some(2));
        assert_eq!(case.system_out, None, "no empty system-out without a timeline");
    }
}
