//! The terminal report: one verdict line per scenario and suite, the details a reader needs
//! to act on a failure right under it, and a summary line; [`Live`] prints the same verdict
//! line as each scenario finishes.

use std::fmt::Write as _;

use crate::verdict::{Outcome, RunEvent, RunReport, ScenarioResult};

use super::text::{self, Tally};

/// Details sit under the verdict word's column so the eye can run down the verdicts.
const INDENT: &str = "       ";

/// ANSI colour, or plain text when `on` is false (files, pipes, `NO_COLOR`).
#[derive(Clone, Copy)]
struct Style {
    on: bool,
}

impl Style {
    fn paint(self, sgr: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{sgr}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    /// The verdict word, padded to `width` before painting so columns line up with colour on.
    fn outcome(self, o: Outcome, width: usize) -> String {
        let word = format!("{:<width$}", text::outcome_word(o));
        let sgr = match o {
            Outcome::Pass => "1;32",
            Outcome::Fail => "1;31",
            Outcome::Error => "1;33",
        };
        self.paint(sgr, &word)
    }

    fn dim(self, s: &str) -> String {
        self.paint("2", s)
    }

    fn bold(self, s: &str) -> String {
        self.paint("1", s)
    }

    fn warn(self, s: &str) -> String {
        self.paint("33", s)
    }

    fn bad(self, s: &str) -> String {
        self.paint("31", s)
    }
}

/// The whole run for a terminal or a text file; ANSI colour only when `color` is true.
pub fn render_human(report: &RunReport, color: bool) -> String {
    let style = Style { on: color };
    let name_w = report.results.iter().map(|r| r.name.chars().count()).max().unwrap_or(0);
    let suite_w = report.results.iter().map(|r| r.suite.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    // A table run has one scenario per cell: its tables say what they found, and only the
    // cells that did not pass get their own lines.
    // A table measured on several suites is one cross-version table (each cell per version,
    // where they differ and why) rather than a grid per suite.
    let cross = super::versions::cross_tables(&report.tables);
    for x in &cross {
        out.push_str(&super::versions::human(x));
        out.push('\n');
    }
    for t in report.tables.iter().filter(|t| !cross.iter().any(|x| x.per_suite[0].table == t.table)) {
        out.push_str(&super::tables::human(t));
        out.push('\n');
    }
    let shown = report.results.iter().filter(|r| report.tables.is_empty() || r.outcome != crate::verdict::Outcome::Pass);
    for r in shown {
        let name = format!("{:<name_w$}", r.name);
        let suite = format!("{:<suite_w$}", r.suite);
        let _ = writeln!(
            out,
            "{}  {}  {}  {}  {:>6}  {} checks",
            style.outcome(r.outcome, 5),
            style.bold(&name),
            suite,
            text::systemd_short(&r.systemd),
            text::duration(r.duration),
            text::checks(r),
        );
        details(&mut out, style, r);
    }
    let tally = Tally::of(report);
    let _ = writeln!(
        out,
        "{}{}  {}  {}",
        if report.results.is_empty() { "" } else { "\n" },
        style.outcome(report.outcome, 5),
        tally.sentence(),
        style.dim(&format!("({})", text::wall(report))),
    );
    out
}

/// What follows a verdict line: timings, warnings, the error, every failed check.
fn details(out: &mut String, style: Style, r: &ScenarioResult) {
    let name_w = r.timings.iter().map(|t| t.name.chars().count()).max().unwrap_or(0);
    for t in &r.timings {
        let _ = writeln!(out, "{INDENT}{:<name_w$}  {:>7}  {}", t.name, text::precise(t.value), style.dim(&t.unit));
    }
    for w in &r.warnings {
        let _ = writeln!(out, "{INDENT}{} {w}", style.warn("warning:"));
    }
    if let Some(error) = &r.error {
        let mut lines = error.lines();
        let _ = writeln!(out, "{INDENT}{} {}", style.bad("error:"), lines.next().unwrap_or(""));
        for line in lines {
            let _ = writeln!(out, "{INDENT}       {line}");
        }
    }
    for c in r.failed_checks() {
        let _ = writeln!(
            out,
            "{INDENT}{}  {}  {}",
            style.bad(&format!("✗ step {} {}", c.step, c.kind)),
            c.location,
            style.dim(&format!("at {}", text::precise(c.at))),
        );
        let _ = writeln!(out, "{INDENT}    expected: {}", c.expected);
        let _ = writeln!(out, "{INDENT}    observed: {}", style.bad(&c.observed));
        if !c.journal_context.is_empty() {
            let _ = writeln!(out, "{INDENT}    journal:");
            for line in &c.journal_context {
                let _ = writeln!(out, "{INDENT}      {}", style.dim(line));
            }
        }
    }
}

/// Progress lines for a terminal, one per finished scenario:
/// `[2/7] restart-on-failure (bookworm) ... PASS 3.2s`.
///
/// Starts and steps print nothing: scenarios on different suites run at the same time, and
/// interleaved "started" lines would not say which result belongs to which start.
pub struct Live {
    style: Style,
    finished: usize,
    total: Option<usize>,
}

impl Live {
    pub fn new(color: bool) -> Live {
        Live { style: Style { on: color }, finished: 0, total: None }
    }

    /// Number the lines `[n/total]` instead of `[n]` when the run's size is known.
    pub fn with_total(mut self, total: usize) -> Live {
        self.total = Some(total);
        self
    }

    pub fn event(&mut self, ev: &RunEvent) -> Option<String> {
        let RunEvent::ScenarioFinished(r) = ev else {
            return None;
        };
        self.finished += 1;
        let counter = match self.total {
            Some(total) => format!("[{}/{total}]", self.finished),
            None => format!("[{}]", self.finished),
        };
        let style = self.style;
        let tail = match r.outcome {
            Outcome::Pass => String::new(),
            Outcome::Fail => {
                let failed = r.failed_checks().count();
                format!(", {failed} of {} checks failed", r.checks.len())
            }
            Outcome::Error => {
                format!(": {}", r.error.as_deref().and_then(|e| e.lines().next()).unwrap_or("unknown error"))
            }
        };
        Some(format!(
            "{} {} ({}) ... {} {}{tail}",
            style.dim(&counter),
            r.name,
            r.suite,
            style.outcome(r.outcome, 0),
            text::duration(r.duration),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::report::fixtures;

    #[test]
    fn plain_rendering_is_a_stable_contract() {
        insta::assert_snapshot!("human_plain", render_human(&fixtures::report(), false));
    }

    #[test]
    fn failed_checks_show_location_expected_observed_and_journal() {
        let out = render_human(&fixtures::report(), false);
        let fail = out.split("FAIL   watchdog-hang").nth(1).expect("failing scenario line");
        for want in [
            "scenarios/watchdog/hang.toml:14:1",
            "expected: restart within 2s",
            "observed: no restart in 2s (Result=watchdog)",
            "web.service: Killing process 212 (buggy-server) with signal SIGABRT.",
            "warning: /etc/systemd/system/web.service:7: Unknown key name 'RestartSecs'",
        ] {
            assert!(fail.contains(want), "missing {want:?} in\n{out}");
        }
        // The passing check of the failing scenario is counted, not detailed.
        assert!(!fail.contains("expected: ActiveState=active"), "{out}");
        assert!(out.contains("error: waiting for web.service to be active: timed out after 30s"), "{out}");
    }

    #[test]
    fn colour_only_when_asked() {
        let report = fixtures::report();
        assert!(!render_human(&report, false).contains('\x1b'));
        let colored = render_human(&report, true);
        assert!(colored.contains("\x1b[1;31mFAIL \x1b[0m"), "{colored}");
        assert!(colored.contains("\x1b[1;32mPASS \x1b[0m"), "{colored}");
        let mut live = Live::new(false);
        let line = live.event(&RunEvent::ScenarioFinished(Box::new(fixtures::failing()))).unwrap();
        assert!(!line.contains('\x1b'), "{line}");
    }

    #[test]
    fn an_empty_run_still_says_so() {
        let out = render_human(&RunReport::new(vec![], Duration::ZERO), false);
        assert_eq!(out, "PASS   0 scenarios on 0 suites: 0 passed, 0 failed, 0 errors  (0ms)\n");
    }

    #[test]
    fn live_prints_one_numbered_line_per_finished_scenario() {
        let mut live = Live::new(false).with_total(3);
        let started = RunEvent::ScenarioStarted { name: "restart-on-failure".into(), suite: "bookworm".into() };
        assert_eq!(live.event(&started), None);
        let step = RunEvent::StepFinished { name: "x".into(), suite: "bookworm".into(), step: 1, of: 3, what: "start".into() };
        assert_eq!(live.event(&step), None);
        let lines: Vec<String> = [fixtures::passing(), fixtures::failing(), fixtures::erroring()]
            .into_iter()
            .filter_map(|r| live.event(&RunEvent::ScenarioFinished(Box::new(r))))
            .collect();
        assert_eq!(
            lines,
            [
                "[1/3] restart-on-failure (bookworm) ... PASS 3.2s",
                "[2/3] watchdog-hang (trixie) ... FAIL 8.4s, 2 of 3 checks failed",
                "[3/3] slow-boot (trixie) ... ERROR 30.1s: waiting for web.service to be active: timed out after 30s",
            ]
        );
        let mut unnumbered = Live::new(false);
        let line = unnumbered.event(&RunEvent::ScenarioFinished(Box::new(fixtures::passing()))).unwrap();
        assert!(line.starts_with("[1] restart-on-failure"), "{line}");
    }
}
