//! One scenario on one session (a booted target), step by step, into a `ScenarioResult`.
//!
//! Everything the scenario observes comes from the session's one journal [`Watcher`], from
//! the index each of its units had when the scenario began. Readiness is data: every wait is
//! on an event, a property or an HTTP answer, with its deadline. The only waits that are
//! durations are a `pause` step (the fault *is* a duration) and the bounded "nothing more
//! happens" windows of `settle`, `expect-no-restart` and `observe what = "restart"`, derived
//! from the unit's own timers and stated in the report. The decisions themselves are made by
//! the synchronous [`crate::judge`] and [`crate::observe::evidence`].
//!
//! * `actions`: start, faults, settle.
//! * `waits`: wait-state, wait-journal, wait-http.
//! * `expect`: the expectations.
//! * `observe`: observations, which record values without passing or failing.

mod actions;
mod describe;
mod expect;
mod held;
mod observe;
mod waits;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::error::{ExecError, StepError};
use super::http::Route;
use super::plan::{install_needs_reload, unit_name};
use super::session::{InstallError, Leftovers, Session};
use crate::judge::Verdict;
use crate::observe::{journal, monotonic_now_usec, Event, JournalEntry};
use crate::scenario::{listen_address, Diagnostic, Scenario, StepKind, UnitName, UnitOrigin, DROP_IN_NAME, UNIT_DIR};
use crate::systemd::Suite;
use crate::verdict::{CheckResult, Observation, Observed, Outcome, RunEvent, ScenarioResult, StepLocation, Timing};

pub use describe::describe;

/// Journal lines kept before and after a failed check's decision time.
const CONTEXT_BEFORE: usize = 8;
const CONTEXT_AFTER: usize = 3;

/// What the scenario runs on and reports to.
pub struct Input<'a> {
    pub scenario: &'a Scenario,
    pub suite: Suite,
    pub session: &'a Session,
    /// The target is shared: the scenario may not overwrite what the image holds.
    pub shared: bool,
    /// Validation warnings of the scenario's file.
    pub diagnostics: Vec<Diagnostic>,
    pub on_event: &'a (dyn Fn(RunEvent) + Send + Sync),
}

impl Input<'_> {
    /// The scenario's `[[files]]` paths that must not exist on the target yet, and for each
    /// unit installed under its own name, wherever the image could hold a unit of that name
    /// (which the file would override for every scenario on the target).
    fn guarded_files(&self) -> Vec<String> {
        if !self.shared {
            return Vec::new();
        }
        let files = self.scenario.files.iter().map(|f| f.path.display().to_string());
        let own_names = self.scenario.units().iter().filter(|u| u.keeps_name()).flat_map(|u| {
            [UNIT_DIR, "/lib/systemd/system", "/usr/lib/systemd/system"].map(|dir| format!("{dir}/{}", u.name))
        });
        files.chain(own_names).collect()
    }
}

/// A check with the unit whose journal explains it.
struct Check {
    result: CheckResult,
    unit: Option<String>,
}

/// When a fault happened (on the journal's clock), and what each unit was then.
#[derive(Clone)]
struct FaultMark {
    at_usec: u64,
    instant: Instant,
    /// Timeline length of each unit at the fault: evidence is looked for from there.
    from: HashMap<String, usize>,
    /// InvocationID of each unit just before the fault: a restart is a new one. (Timeline
    /// positions alone cannot tell: the follower may deliver the first start's "Started"
    /// after the fault was injected.)
    invocations: HashMap<String, String>,
}

/// Whether to go on after a step.
enum Flow {
    Next,
    /// A wait timed out or a fault could not be injected: what follows depends on it.
    Stop,
}

type StepResult = Result<Flow, ExecError>;

struct Run<'a> {
    input: &'a Input<'a>,
    session: &'a Session,
    scenario: &'a Scenario,
    /// Scenario-local name -> installed name.
    names: BTreeMap<UnitName, String>,
    /// Each installed unit's timeline length when the scenario began.
    begin: HashMap<String, usize>,
    unitless_begin: usize,
    origin_usec: u64,
    checks: Vec<Check>,
    observations: Vec<Observation>,
    timings: Vec<Timing>,
    faults: HashMap<usize, FaultMark>,
    /// The last start request of each unit (journal clock), for `settle`.
    starts: HashMap<String, u64>,
    /// How far the scenario's story goes, on the journal's clock: the latest event a step
    /// waited for or found, the end of the latest window watched, the return of the latest
    /// action. The snapshot ends here, so what a unit goes on to do while the lab is busy
    /// finishing (another restart cycle on a loaded machine) is never part of it.
    horizon_usec: u64,
    /// Resource faults in place, let go at `heal`, their `duration` or the end.
    held: Vec<held::HeldFault>,
}

/// An instant `d` from now; a duration too large for the clock means "never".
fn deadline_in(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d).unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
}

/// Run the scenario. Infrastructure failures (exec, engine, a vanished target) end it with
/// `Outcome::Error` and the failing operation in `error`; they are never mistaken for a failed
/// expectation. Returns what the scenario left on the target, for the caller to clean up when
/// the target will be used again.
pub async fn execute(input: &Input<'_>) -> Executed {
    let started = Instant::now();
    let scenario = input.scenario;
    let session = input.session;
    let names: BTreeMap<UnitName, String> = scenario.units().iter().map(|u| (u.name.clone(), unit_name(scenario, &u.name))).collect();
    let installs = scenario.unit_installs(|n| unit_name(scenario, n));
    let mut result = ScenarioResult::new(&scenario.name, &scenario.description, &scenario.path, input.suite.name(), session.target().systemd_version());
    result.units = scenario
        .units()
        .iter()
        .map(|u| {
            let name = unit_name(scenario, &u.name);
            let text = match installs.iter().find(|i| i.unit == name) {
                Some(i) if u.origin == UnitOrigin::Installed => format!("# drop-in {}\n{}", i.path, i.text),
                Some(i) => i.text.clone(),
                None => "# already on the target, unchanged\n".to_string(),
            };
            (name, text)
        })
        .collect();
    result.warnings = input.diagnostics.iter().map(|d| format!("{}: {}", d.location(), d.message)).collect();
    let leftovers = Leftovers {
        units: names.values().cloned().collect(),
        files: installs
            .iter()
            .map(|i| i.path.clone())
            .chain(scenario.files.iter().map(|f| f.path.display().to_string()))
            .chain(runtime_drop_ins(scenario))
            .collect(),
    };
    let watcher = session.watcher();
    let mut run = Run {
        input,
        session,
        scenario,
        begin: names.values().map(|n| (n.clone(), watcher.len(n))).collect(),
        unitless_begin: watcher.unitless_len(),
        names,
        origin_usec: monotonic_now_usec(),
        checks: Vec::new(),
        observations: Vec::new(),
        timings: Vec::new(),
        faults: HashMap::new(),
        starts: HashMap::new(),
        horizon_usec: 0,
        held: Vec::new(),
    };
    run.horizon_usec = run.origin_usec;
    let mut files: Vec<(String, Vec<u8>, u32)> =
        scenario.files.iter().map(|f| (f.path.display().to_string(), f.content.clone(), f.mode)).collect();
    files.extend(installs.iter().map(|i| (i.path.clone(), i.text.clone().into_bytes(), 0o644)));
    let outcome: Result<(), Stop> = async {
        match session.install(files, input.guarded_files(), install_needs_reload(scenario)).await {
            Ok(()) => {}
            Err(InstallError::Overwrites(paths)) => return Err(Stop::NeedsOwnTarget(paths)),
            Err(InstallError::Target(e)) => return Err(Stop::Error(ExecError::target(format!("install the files of {}", scenario.name))(e).to_string())),
        }
        check_installed_units(session, scenario, input.suite).await?;
        // systemd's own words about the unit files (`Unknown key 'RestartSecs'`, `Failed to
        // parse service type, ignoring: Notify`), gathered while the steps run. (A drop-in is
        // not a unit file verify can be given.)
        let paths: Vec<String> = installs.iter().filter(|i| !i.path.ends_with(&format!(".d/{DROP_IN_NAME}"))).map(|i| i.path.clone()).collect();
        let verify = session.verify(paths);
        let steps = async {
            let steps = run.steps().await;
            // Every way the steps end (a failed check, an error, the last step) lets go of the
            // resource faults still held, before the timeline is read and before another
            // scenario gets the target.
            let released = run.release_all().await;
            steps.map_err(|e| e.to_string()).and(released.map_err(|e| e.to_string()))
        };
        let (verified, steps) = tokio::join!(verify, steps);
        match verified {
            Ok(lines) => result.warnings.extend(lines.into_iter().map(|l| format!("systemd-analyze verify: {l}"))),
            Err(e) => result.warnings.push(format!("systemd-analyze verify could not run: {e}")),
        }
        let steps = steps.map_err(Stop::Error);
        let finish = run.finish(&mut result).await.map_err(|e| Stop::Error(e.to_string()));
        steps.and(finish)
    }
    .await;
    result.error = match outcome {
        Ok(()) => None,
        Err(Stop::Error(e)) => Some(e),
        Err(Stop::NeedsOwnTarget(paths)) => return Executed::NeedsOwnTarget(paths),
    };
    result.checks = run.checks.into_iter().map(|c| c.result).collect();
    result.observations = run.observations;
    result.timings = run.timings;
    result.outcome = if result.error.is_some() {
        Outcome::Error
    } else if result.checks.iter().any(|c| !c.passed) {
        Outcome::Fail
    } else {
        Outcome::Pass
    };
    result.duration = started.elapsed();
    Executed::Done(Box::new(result), leftovers)
}

/// The drop-ins `systemctl set-property --runtime` writes for the scenario's `oom` faults:
/// undoing a fault sets the old value back (a reload to remove them would reset every unit's
/// start rate limit on 252), so they go with the scenario's other files.
fn runtime_drop_ins(scenario: &Scenario) -> Vec<String> {
    scenario
        .steps
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::Fault(crate::scenario::Fault::Resource(r)) if matches!(r.kind, crate::scenario::ResourceKind::Oom { limit: Some(_) }) => r.unit.as_ref(),
            _ => None,
        })
        .map(|u| format!("/run/systemd/system.control/{}.d/50-MemoryMax.conf", unit_name(scenario, u)))
        .collect()
}

/// A unit the scenario names without defining (`[[units]]` with only `name`) must be on the
/// target: otherwise every step on it would fail with systemd's "not found", far from the cause.
async fn check_installed_units(session: &Session, scenario: &Scenario, suite: Suite) -> Result<(), Stop> {
    for unit in scenario.units().iter().filter(|u| u.origin == UnitOrigin::Installed) {
        let props = session
            .properties(unit.name.as_str(), &["LoadState", "FragmentPath"])
            .await
            .map_err(|e| Stop::Error(format!("read the load state of {} for {}: {e}", unit.name, scenario.name)))?;
        let state = props.get("LoadState").map_or("", String::as_str);
        let fragment = props.get("FragmentPath").map_or("", String::as_str);
        if state != "loaded" || fragment.is_empty() {
            return Err(Stop::Error(format!(
                "unit {} is not on the {suite} target (LoadState={state}, no unit file): [[units]] with only `name` acts on a unit the target already has; \
                 fix: install it with `file = \"units/{}\"`, or place its unit file with [[files]] (as a package would)",
                unit.name, unit.name
            )));
        }
    }
    Ok(())
}

/// How a scenario's execution ended.
pub enum Executed {
    /// It ran (its outcome may still be an error), leaving these behind.
    Done(Box<ScenarioResult>, Leftovers),
    /// It writes files the shared target's image holds: it must run on a target of its own.
    /// Nothing was written.
    NeedsOwnTarget(Vec<String>),
}

/// Why the scenario stopped early.
enum Stop {
    Error(String),
    NeedsOwnTarget(Vec<String>),
}

impl<'a> Run<'a> {
    fn target_name(&self) -> &str {
        self.session.target().name()
    }

    fn name<'s>(&'s self, unit: &'s UnitName) -> &'s str {
        self.names.get(unit).map(String::as_str).unwrap_or(unit.as_str())
    }

    /// Installed names of `unit`, or of all the scenario's units.
    fn units_of(&self, unit: Option<&UnitName>) -> Vec<String> {
        match unit {
            Some(u) => vec![self.name(u).to_string()],
            None => self.names.values().cloned().collect(),
        }
    }

    /// Where a unit's timeline began for this scenario.
    fn begin_of(&self, name: &str) -> usize {
        self.begin.get(name).copied().unwrap_or(0)
    }

    /// Time since the scenario started, on the journal's clock.
    fn now(&self) -> Duration {
        self.since_origin(monotonic_now_usec())
    }

    fn since_origin(&self, usec: u64) -> Duration {
        Duration::from_micros(usec.saturating_sub(self.origin_usec))
    }

    /// How a port of the target is reached: from the lab when the scenario's server listens on
    /// a non-loopback address, else from inside the target.
    fn route(&self, port: u16) -> Route {
        let listen = self
            .scenario
            .units()
            .iter()
            .filter_map(|u| listen_address(&u.exec))
            .find(|l| l.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()) == Some(port));
        Route::for_listen(listen, self.session.address())
    }

    /// `GET :port path` on the route of that port, within `timeout`.
    async fn get(&self, port: u16, path: &str, timeout: Duration) -> Result<crate::observe::Answer, ExecError> {
        let route = self.route(port);
        self.session.http().get(self.session.target(), route, port, path, timeout).await.map_err(ExecError::target_owned(format!("GET :{port}{path}")))
    }

    fn location(&self, step: usize) -> StepLocation {
        let s = &self.scenario.steps[step];
        StepLocation { path: s.location.path.clone(), line: s.location.line, col: s.location.col }
    }

    fn check(&mut self, step: usize, unit: Option<&str>, verdict: Verdict) {
        let result = CheckResult {
            step,
            location: self.location(step),
            kind: self.scenario.steps[step].kind.word().to_string(),
            expected: verdict.expected,
            observed: verdict.observed,
            passed: verdict.passed,
            at: self.now(),
            journal_context: Vec::new(),
        };
        self.checks.push(Check { result, unit: unit.map(str::to_string) });
    }

    fn observe(&mut self, step: usize, unit: Option<&str>, value: Observed) {
        let observation = Observation { step, location: self.location(step), unit: unit.map(str::to_string), at: self.now(), value };
        self.observations.push(observation);
    }

    /// The story reaches at least this instant (journal clock, microseconds).
    fn reach(&mut self, usec: u64) {
        self.horizon_usec = self.horizon_usec.max(usec);
    }

    /// The story reaches an event's time (events carry absolute journal times).
    fn reach_event(&mut self, at: Duration) {
        self.reach(at.as_micros() as u64);
    }

    /// The story reaches now (an action that returned).
    fn reach_now(&mut self) {
        self.reach(monotonic_now_usec());
    }

    fn timing(&mut self, name: &str, unit: &str, value: Duration) {
        self.timings.push(Timing { name: name.to_string(), unit: unit.to_string(), value });
    }

    /// Run the steps in order. `Err` is an infrastructure failure, naming the step.
    async fn steps(&mut self) -> Result<(), StepError> {
        let scenario = self.scenario;
        let of = scenario.steps.len();
        for (i, step) in scenario.steps.iter().enumerate() {
            let before = self.checks.len();
            let flow = match &step.kind {
                StepKind::Start { unit, no_block } => self.start(unit, *no_block).await,
                StepKind::Fault(fault) => self.fault(i, fault).await,
                StepKind::Settle { unit, window, window_source } => self.settle(unit, *window, window_source).await,
                StepKind::Wait(wait) => self.wait(i, wait).await,
                StepKind::Observe(o) => self.observation(i, o).await,
                StepKind::Expect(e) => self.expect(i, e).await,
            }
            .map_err(|source| StepError { number: i + 1, word: step.kind.word(), location: step.location.to_string(), source })?;
            let verdict = match self.checks[before..].iter().find(|c| !c.result.passed) {
                Some(c) => format!(": FAILED ({})", c.result.observed),
                None if self.checks.len() > before => ": ok".to_string(),
                None => String::new(),
            };
            (self.input.on_event)(RunEvent::StepFinished {
                name: scenario.name.clone(),
                suite: self.input.suite.name().to_string(),
                step: i + 1,
                of,
                what: format!("{}{verdict}", describe(&step.kind, self.input.suite)),
            });
            if let Flow::Stop = flow {
                if let Some(last) = self.checks.last_mut() {
                    if i + 1 < of {
                        last.result.observed.push_str(&format!(" (the {} step(s) after it were not run)", of - i - 1));
                    }
                }
                break;
            }
        }
        Ok(())
    }

    /// The scenario's journal entries (its units', and PID 1's unit-less lines) delivered so
    /// far; call after a journal sync to have everything logged until then.
    fn entries(&self, units: &[String], with_unitless: bool) -> Vec<JournalEntry> {
        let watcher = self.session.watcher();
        let mut out: Vec<JournalEntry> = units.iter().flat_map(|u| watcher.entries(u, self.begin_of(u))).collect();
        if with_unitless {
            out.extend(watcher.unitless(self.unitless_begin));
        }
        out.sort_by_key(|e| crate::observe::entry_monotonic_usec(e).unwrap_or(0));
        out
    }

    /// Timeline, snapshot and journal context of failed checks.
    async fn finish(&mut self, result: &mut ScenarioResult) -> Result<(), ExecError> {
        self.session.sync_journal().await?;
        let watcher = self.session.watcher();
        let mut timeline: Vec<Event> =
            self.names.values().flat_map(|n| watcher.events(n, self.begin_of(n), self.origin_usec)).collect();
        timeline.sort_by_key(|e| e.at);
        result.timeline = timeline;
        let units: Vec<String> = self.names.values().cloned().collect();
        let mine = self.entries(&units, false);
        if self.scenario.snapshot {
            let horizon = self.horizon_usec;
            // What systemd says about one of the scenario's unit files while loading it carries
            // the unit's name only once the unit exists: the first load's lines are unit-less.
            // They belong to the story (deduplicated in `snapshot`, as reloads repeat them).
            let files: Vec<String> = units.iter().map(|u| format!("/etc/systemd/system/{u}:")).collect();
            let about_files = watcher.unitless(self.unitless_begin).into_iter().filter(|e| {
                e.get("MESSAGE").and_then(|m| m.as_str()).is_some_and(|m| files.iter().any(|f| m.starts_with(f.as_str())))
            });
            let story: Vec<JournalEntry> = mine
                .iter()
                .cloned()
                .chain(about_files)
                .filter(|e| crate::observe::entry_monotonic_usec(e).is_none_or(|t| t <= horizon))
                .collect();
            result.snapshot = Some(snapshot(&story));
        }
        for check in self.checks.iter_mut().filter(|c| !c.result.passed) {
            let lines: Vec<JournalEntry> = mine
                .iter()
                .filter(|e| check.unit.as_ref().is_none_or(|u| crate::observe::entry_unit(e) == Some(u.as_str())))
                .cloned()
                .collect();
            let decided = self.origin_usec + check.result.at.as_micros() as u64;
            let pos = lines
                .iter()
                .position(|e| crate::observe::entry_monotonic_usec(e).is_some_and(|t| t > decided))
                .unwrap_or(lines.len());
            let window = &lines[pos.saturating_sub(CONTEXT_BEFORE)..(pos + CONTEXT_AFTER).min(lines.len())];
            check.result.journal_context = journal::normalise(window).lines().map(str::to_string).collect();
        }
        Ok(())
    }
}

/// The normalised journal of the scenario's units: systemd's own lines only. The service's
/// lines interleave with PID 1's in an order that varies from run to run (two processes
/// writing to journald at the same moment), which a snapshot compared byte for byte must not;
/// the resource-accounting line varies with the machine's load and is dropped.
///
/// Lines are grouped by unit (in unit-name order, journal order within a unit): each unit's
/// own sequence is deterministic, but how two units' lines interleave depends on scheduling.
fn snapshot(entries: &[JournalEntry]) -> String {
    let mut kept: Vec<JournalEntry> = entries.iter().filter(|e| journal::is_manager_line(e)).cloned().collect();
    kept.sort_by(|a, b| crate::observe::entry_unit(a).cmp(&crate::observe::entry_unit(b)));
    dedupe_load_messages(&journal::normalise(&kept))
}

/// What systemd says about a unit file when it loads it (a bad line, a fatal error) it says
/// again at every daemon-reload, and on a shared target another scenario's install may reload
/// (a unit under its own name needs one): how often the line appears depends on what else ran,
/// so a snapshot keeps its first occurrence.
fn dedupe_load_messages(text: &str) -> String {
    let mut seen = std::collections::HashSet::new();
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let message = line.split_once(": ").map_or(line, |(_, m)| m);
        let load_time = message.starts_with("/etc/systemd/") || message.ends_with("Unit configuration has fatal error, unit will not be started.");
        if load_time && !seen.insert(line.to_string()) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::dedupe_load_messages;

    #[test]
    fn load_time_messages_are_kept_once_and_others_as_often_as_they_come() {
        let text = "systemd: /etc/systemd/system/a.service:6: Bad line\n\
                    systemd: a.service: Unit configuration has fatal error, unit will not be started.\n\
                    systemd: a.service: Unit configuration has fatal error, unit will not be started.\n\
                    systemd: /etc/systemd/system/a.service:6: Bad line\n\
                    systemd: Started b.service.\n\
                    systemd: Started b.service.\n";
        assert_eq!(
            dedupe_load_messages(text),
            "systemd: /etc/systemd/system/a.service:6: Bad line\n\
             systemd: a.service: Unit configuration has fatal error, unit will not be started.\n\
             systemd: Started b.service.\n\
             systemd: Started b.service.\n"
        );
    }
}
