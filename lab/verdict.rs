//! Verdicts: what a scenario run found, as plain data that every reporter consumes.
//!
//! The runner fills these in and emits them as [`RunEvent`]s while it works; the terminal
//! reporter shows progress from the same stream the file reporters are written from (JSON,
//! JUnit, Markdown, HTML). The JSON form of [`RunReport`] is a documented, stable schema
//! (README, "JSON report"): add fields, never rename or remove them.

use std::path::PathBuf;
use std::time::Duration;

use crate::observe::Event;

/// How a scenario (or a whole run) ended. Ordered by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every expectation held.
    Pass,
    /// At least one expectation did not hold (exit code 1).
    Fail,
    /// The lab itself could not run the scenario: engine, image, target (exit code 3). A wait
    /// step that times out is not an Error but a failed check: what was awaited did not
    /// happen, which is an observation about the service.
    Error,
}

/// Position of a step in its scenario file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StepLocation {
    pub path: PathBuf,
    pub line: usize,
    pub col: usize,
}

impl std::fmt::Display for StepLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.col)
    }
}

/// The result of one checking step (an expectation, a probe, or a wait that timed out).
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckResult {
    /// Index of the step in the scenario.
    pub step: usize,
    pub location: StepLocation,
    /// The step's `do = ...` word ("expect", "probe", "expect-restart", ...).
    pub kind: String,
    /// What was expected, in words ("ActiveState=active", "restart within 2s").
    pub expected: String,
    /// What was observed, in words ("ActiveState=failed", "no restart in 2s").
    pub observed: String,
    pub passed: bool,
    /// Time since the scenario started when the check was decided.
    #[serde(serialize_with = "ser_secs")]
    pub at: Duration,
    /// For a failed check: the journal lines around `at` (already normalised for display).
    pub journal_context: Vec<String>,
}

/// A measured duration worth reporting (time to detect, time to recover).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Timing {
    /// "time to detect", "time to recover", "time to healthy".
    pub name: String,
    pub unit: String,
    #[serde(serialize_with = "ser_secs")]
    pub value: Duration,
}

/// Everything about one scenario run on one suite.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScenarioResult {
    pub name: String,
    pub description: String,
    pub path: PathBuf,
    pub suite: String,
    /// First line of `systemctl --version` on the target.
    pub systemd: String,
    pub outcome: Outcome,
    /// Set when `outcome` is Error: what failed, naming the operation and the object.
    pub error: Option<String>,
    /// Validation warnings and `systemd-analyze verify` output about the rendered units.
    pub warnings: Vec<String>,
    pub checks: Vec<CheckResult>,
    pub timings: Vec<Timing>,
    /// The scenario's units as installed (possibly renamed on a shared target) -> rendered text.
    pub units: Vec<(String, String)>,
    /// Every unit's events, merged in time order (times relative to the scenario's start).
    pub timeline: Vec<Event>,
    /// Normalised journal text when the scenario asked for a snapshot.
    pub snapshot: Option<String>,
    #[serde(serialize_with = "ser_secs")]
    pub duration: Duration,
}

impl ScenarioResult {
    /// A passing result with nothing observed yet; the runner fills it in as it goes.
    pub fn new(name: &str, description: &str, path: &std::path::Path, suite: &str, systemd: &str) -> ScenarioResult {
        ScenarioResult {
            name: name.to_string(),
            description: description.to_string(),
            path: path.to_path_buf(),
            suite: suite.to_string(),
            systemd: systemd.to_string(),
            outcome: Outcome::Pass,
            error: None,
            warnings: Vec::new(),
            checks: Vec::new(),
            timings: Vec::new(),
            units: Vec::new(),
            timeline: Vec::new(),
            snapshot: None,
            duration: Duration::ZERO,
        }
    }

    pub fn failed_checks(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| !c.passed)
    }
}

/// A whole `unitlab run`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunReport {
    /// Schema version of this document.
    pub schema: u32,
    pub unitlab_version: String,
    pub outcome: Outcome,
    pub results: Vec<ScenarioResult>,
    #[serde(serialize_with = "ser_secs")]
    pub duration: Duration,
}

pub const SCHEMA_VERSION: u32 = 1;

impl RunReport {
    pub fn new(results: Vec<ScenarioResult>, duration: Duration) -> RunReport {
        let outcome = results.iter().map(|r| r.outcome).max().unwrap_or(Outcome::Pass);
        RunReport { schema: SCHEMA_VERSION, unitlab_version: env!("CARGO_PKG_VERSION").to_string(), outcome, results, duration }
    }
}

/// What the runner tells reporters while it works.
#[derive(Debug, Clone)]
pub enum RunEvent {
    /// A scenario starts on a suite.
    ScenarioStarted { name: String, suite: String },
    /// A step finished (for progress display).
    StepFinished { name: String, suite: String, step: usize, of: usize, what: String },
    /// A scenario finished: its full result.
    ScenarioFinished(Box<ScenarioResult>),
}

fn ser_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_run_outcome_is_the_worst_scenario_outcome() {
        let r = |outcome| ScenarioResult { outcome, ..ScenarioResult::new("x", "", Path::new("x.toml"), "bookworm", "systemd 252") };
        assert_eq!(RunReport::new(vec![r(Outcome::Pass), r(Outcome::Fail)], Duration::ZERO).outcome, Outcome::Fail);
        assert_eq!(RunReport::new(vec![r(Outcome::Error), r(Outcome::Fail)], Duration::ZERO).outcome, Outcome::Error);
        assert_eq!(RunReport::new(vec![], Duration::ZERO).outcome, Outcome::Pass);
    }
}
