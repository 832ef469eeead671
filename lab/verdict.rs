//! Verdicts: what a run found, as plain data that every reporter consumes: each scenario's
//! checks, observations, timings and timeline, and the documented tables judged from them.
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
        let path = self.path.display().to_string();
        write!(f, "{}:{}:{}", crate::scenario::printable(&path), self.line, self.col)
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

/// A value a `do = "observe"` step recorded: a measurement, never a pass or a fail. The
/// documented tables are judged from these.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Observation {
    /// Index of the step in the scenario.
    pub step: usize,
    pub location: StepLocation,
    /// The installed name of the unit observed, when the observation is about one.
    pub unit: Option<String>,
    /// Time since the scenario started when the value was recorded.
    #[serde(serialize_with = "ser_secs")]
    pub at: Duration,
    #[serde(flatten)]
    pub value: Observed,
}

/// What an observation recorded.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "what", rename_all = "kebab-case")]
pub enum Observed {
    /// `what = "state"`: properties as `systemctl show` printed them.
    State {
        active_state: String,
        sub_state: String,
        result: String,
        n_restarts: String,
        exec_main_code: String,
        exec_main_status: String,
    },
    /// `what = "restart"`: how the unit's run ended and whether a restart followed.
    Restart {
        /// The Result systemd logged at the end of the run; null when no end was seen.
        result: Option<String>,
        /// When the run ended, since the fault (or the scenario's start).
        #[serde(serialize_with = "ser_opt_secs")]
        ended_after: Option<Duration>,
        /// Whether a restart followed within the window; null when no end was seen.
        restarted: Option<bool>,
        /// When the restart evidence came, since the end of the run.
        #[serde(serialize_with = "ser_opt_secs")]
        restart_after: Option<Duration>,
        /// The window watched after the end of the run, and how it was derived.
        #[serde(serialize_with = "ser_secs")]
        window: Duration,
        window_derivation: String,
        /// What was seen instead, when no end of the run came within the deadline.
        note: Option<String>,
    },
    /// `what = "http"`: what one GET got: a status code, `refused` or `timeout`.
    Http { port: u16, path: String, answer: String },
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
    /// The fixture it ran on: `container` or `vm`.
    pub fixture: String,
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
    /// Values recorded by `observe` steps, in step order.
    pub observations: Vec<Observation>,
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
            fixture: "container".to_string(),
            systemd: systemd.to_string(),
            outcome: Outcome::Pass,
            error: None,
            warnings: Vec::new(),
            checks: Vec::new(),
            timings: Vec::new(),
            units: Vec::new(),
            timeline: Vec::new(),
            observations: Vec::new(),
            snapshot: None,
            duration: Duration::ZERO,
        }
    }

    pub fn failed_checks(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| !c.passed)
    }
}

/// A documented table measured on one suite: every cell's documented and observed value, as
/// the table's judge decided them from the cell scenarios' observations.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableReport {
    /// `restart`, `type`.
    pub table: String,
    /// What the table is and where it is documented.
    pub title: String,
    pub suite: String,
    pub systemd: String,
    /// What the rows and columns are ("exit cause", "Restart=").
    pub row_heading: String,
    pub column_heading: String,
    /// Row and column labels, in the documentation's order.
    pub rows: Vec<String>,
    pub columns: Vec<String>,
    /// How the cells were measured (compressed timeouts, windows and their derivations).
    pub method: Vec<String>,
    pub cells: Vec<CellVerdict>,
}

impl TableReport {
    pub fn cell(&self, row: &str, column: &str) -> Option<&CellVerdict> {
        self.cells.iter().find(|c| c.row == row && c.column == column)
    }

    /// Every cell is as documented or exactly as its reviewed deviation says.
    pub fn as_expected(&self) -> bool {
        self.cells.iter().all(|c| c.as_expected)
    }
}

/// One cell of a documented table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CellVerdict {
    pub row: String,
    pub column: String,
    /// The generated scenario that measured it (its result is in `results`).
    pub scenario: String,
    /// The documented value, in the table's own words ("restart", "start-timeout").
    pub documented: String,
    /// The observed value, same words ("unobserved" when the measurement saw nothing).
    pub observed: String,
    /// A compact mark of each for grids ("X"/"." for the Restart= table).
    pub documented_mark: String,
    pub observed_mark: String,
    /// Observed equals documented.
    pub agrees: bool,
    /// Agrees, or disagrees exactly as the reviewed deviation for this systemd version says.
    pub as_expected: bool,
    /// For a disagreement: why (the reviewed explanation, or "UNREVIEWED: ...").
    pub explanation: Option<String>,
    /// The facts behind the observation ("Result=watchdog NRestarts=1").
    pub detail: String,
    /// Time from the fault (or the start) to the decisive event.
    #[serde(serialize_with = "ser_opt_secs")]
    pub decided_after: Option<Duration>,
    /// Results table only (else None): the Result systemd logged when the run ended, the
    /// Result systemd's source gives this ending, and what the source rule
    /// (`service_shall_restart`) decides for the Result observed ("restart"/"no restart").
    pub result: Option<String>,
    pub expected_result: Option<String>,
    pub source: Option<String>,
}

/// A whole run: `unitlab run`, `matrix` or `demo`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunReport {
    /// Schema version of this document.
    pub schema: u32,
    pub unitlab_version: String,
    pub outcome: Outcome,
    pub results: Vec<ScenarioResult>,
    /// The documented tables judged from `results` (`matrix` and `demo`; empty for `run`).
    pub tables: Vec<TableReport>,
    #[serde(serialize_with = "ser_secs")]
    pub duration: Duration,
}

pub const SCHEMA_VERSION: u32 = 3;

impl RunReport {
    pub fn new(results: Vec<ScenarioResult>, duration: Duration) -> RunReport {
        let mut report = RunReport {
            schema: SCHEMA_VERSION,
            unitlab_version: env!("CARGO_PKG_VERSION").to_string(),
            outcome: Outcome::Pass,
            results,
            tables: Vec::new(),
            duration,
        };
        report.recompute_outcome();
        report
    }

    /// The run's outcome is the worst scenario outcome (call again after a judge changed one).
    pub fn recompute_outcome(&mut self) {
        self.outcome = self.results.iter().map(|r| r.outcome).max().unwrap_or(Outcome::Pass);
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

fn ser_opt_secs<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => ser_secs(d, s),
        None => s.serialize_none(),
    }
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
