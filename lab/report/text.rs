//! Wording shared by every reporter, so a duration or a check count reads the same in the
//! terminal, in Markdown and in HTML.

use std::time::Duration;

use crate::verdict::{Outcome, RunReport, ScenarioResult};

/// A scenario's or run's length for people: "850ms", "3.2s", "2m05s".
pub(crate) fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        let s = d.as_secs();
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// A measured instant or interval where milliseconds matter (timings, event times): "1.204s".
pub(crate) fn precise(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

/// "PASS" / "FAIL" / "ERROR".
pub(crate) fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "PASS",
        Outcome::Fail => "FAIL",
        Outcome::Error => "ERROR",
    }
}

/// "systemd 252 (252.36-1~deb12u1)" -> "systemd 252": the version number is what a reader
/// compares across suites; the full line stays in the JSON report.
pub(crate) fn systemd_short(line: &str) -> String {
    let short: Vec<&str> = line.split_whitespace().take(2).collect();
    if short.is_empty() {
        "systemd ?".to_string()
    } else {
        short.join(" ")
    }
}

/// The run's wall time beside its longest scenario: scenarios run concurrently, so a run
/// should take little more than its longest one. "13.6s wall, longest scenario 5.8s".
pub(crate) fn wall(report: &RunReport) -> String {
    match report.results.iter().map(|r| r.duration).max() {
        Some(longest) if !longest.is_zero() => format!(
            "{} wall, longest scenario {} ({:.1}x)",
            duration(report.duration),
            duration(longest),
            report.duration.as_secs_f64() / longest.as_secs_f64()
        ),
        _ => duration(report.duration),
    }
}

/// "2/3": passed checks over all checks.
pub(crate) fn checks(r: &ScenarioResult) -> String {
    let passed = r.checks.iter().filter(|c| c.passed).count();
    format!("{passed}/{}", r.checks.len())
}

/// Counts of a run, for the summary lines.
pub(crate) struct Tally {
    pub scenarios: usize,
    pub suites: usize,
    pub passed: usize,
    pub failed: usize,
    pub errors: usize,
}

impl Tally {
    pub(crate) fn of(report: &RunReport) -> Tally {
        let count = |o| report.results.iter().filter(|r| r.outcome == o).count();
        let mut suites: Vec<&str> = report.results.iter().map(|r| r.suite.as_str()).collect();
        suites.sort_unstable();
        suites.dedup();
        Tally {
            scenarios: report.results.len(),
            suites: suites.len(),
            passed: count(Outcome::Pass),
            failed: count(Outcome::Fail),
            errors: count(Outcome::Error),
        }
    }

    /// "7 scenarios on 2 suites: 5 passed, 1 failed, 1 error".
    pub(crate) fn sentence(&self) -> String {
        format!(
            "{} on {}: {} passed, {} failed, {} {}",
            plural(self.scenarios, "scenario", "scenarios"),
            plural(self.suites, "suite", "suites"),
            self.passed,
            self.failed,
            self.errors,
            if self.errors == 1 { "error" } else { "errors" },
        )
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Groups of results by suite, suites in order of first appearance (the runner's order).
pub(crate) fn by_suite(report: &RunReport) -> Vec<(&str, Vec<&ScenarioResult>)> {
    let mut groups: Vec<(&str, Vec<&ScenarioResult>)> = Vec::new();
    for r in &report.results {
        match groups.iter_mut().find(|(s, _)| *s == r.suite) {
            Some((_, v)) => v.push(r),
            None => groups.push((&r.suite, vec![r])),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(Duration::from_millis(0), "0ms")]
    #[case(Duration::from_millis(850), "850ms")]
    #[case(Duration::from_millis(3210), "3.2s")]
    #[case(Duration::from_millis(59_940), "59.9s")]
    #[case(Duration::from_secs(125), "2m05s")]
    fn durations_read_at_a_glance(#[case] d: Duration, #[case] want: &str) {
        assert_eq!(duration(d), want);
    }

    #[rstest]
    #[case("systemd 252 (252.36-1~deb12u1)", "systemd 252")]
    #[case("systemd 257 (257.9-1~deb13u1)", "systemd 257")]
    #[case("", "systemd ?")]
    fn systemd_version_is_shortened_to_its_number(#[case] line: &str, #[case] want: &str) {
        assert_eq!(systemd_short(line), want);
    }
}
