//! One scenario on one booted target: install, verify, run the steps in order, observe, judge.
//!
//! Everything the scenario observes comes from one [`Watcher`] started before its units are
//! installed (so systemd's parse warnings at first load are seen) and from one-shot journal
//! reads after the cursor taken at the same moment. Readiness is data: every wait is on an
//! event, a property or an HTTP answer, with its deadline. The only fixed-length waits are a
//! `pause` step (the fault *is* a duration) and `expect-no-restart` (a bounded "nothing more
//! happens" window derived from the unit's own timers, stated in the check).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::plan::unit_name;
use crate::systemd::Suite;
use crate::observe::journal;
use crate::observe::{self, Event, EventKind};
use crate::scenario::{
    ControlFault, Diagnostic, Expectation, Fault, HttpExpect, PropertyCheck, Scenario, StepKind,
    TextMatch, UnitName, Wait, WindowSource,
};
use crate::observe::JournalEntry;
use crate::systemd::format_duration;
use crate::target::{Target, TargetError};
use crate::verdict::{CheckResult, Outcome, RunEvent, ScenarioResult, StepLocation, Timing};
use crate::run::watch::{kind, Watcher};

/// Deadline for a `systemctl start/stop/restart` job. `start` returns when the job finishes, as
/// systemctl does (scenarios/README.md), and a job may legitimately take as long as systemd's
/// default start timeout (90s) plus the stop that follows it; this only catches a hung target.
const JOB_DEADLINE: Duration = Duration::from_secs(200);
/// Deadline of one command the lab runs inside the target for itself (curl, kill, show).
const COMMAND_DEADLINE: Duration = Duration::from_secs(30);
/// Between two HTTP attempts of `wait-http` / `expect-recovery`: an HTTP answer cannot be
/// followed like a journal, so it is polled, always under the step's deadline.
const HTTP_POLL: Duration = Duration::from_millis(100);
/// Property re-reads of `wait-state` when no journal event wakes the wait first: some state
/// changes (e.g. `auto-restart` -> `auto-restart-queued`) are not logged.
const STATE_POLL: Duration = Duration::from_millis(250);
/// Journal lines kept before and after a failed check's decision time.
const CONTEXT_BEFORE: usize = 8;
const CONTEXT_AFTER: usize = 3;

/// What the scenario runs on and reports to.
pub struct Input<'a> {
    pub scenario: &'a Scenario,
    pub suite: Suite,
    pub target: &'a Target,
    /// Held around `daemon-reload` (shared targets: other scenarios install units too).
    pub reload: &'a Mutex<()>,
    /// Stop and remove the units at the end (shared targets).
    pub clean_up: bool,
    /// Validation warnings of the scenario's file.
    pub diagnostics: Vec<Diagnostic>,
    pub on_event: &'a (dyn Fn(RunEvent) + Send + Sync),
}

/// A check with the unit whose journal explains it.
struct Check {
    result: CheckResult,
    unit: Option<String>,
}

/// When a fault happened, and where each unit's timeline stood then.
#[derive(Clone)]
struct FaultMark {
    at: Duration,
    instant: Instant,
    from: HashMap<String, usize>,
    /// InvocationID of each unit just before the fault: a restart is a new one reaching
    /// `active` ("Started"). Timeline positions alone cannot tell, because the journal
    /// follower may deliver the "Started" of the first start after the fault was injected.
    invocations: HashMap<String, String>,
}

/// Whether to go on after a step.
enum Flow {
    Next,
    /// A wait timed out or a fault could not be injected: what follows depends on it.
    Stop,
}

struct Run<'a> {
    input: &'a Input<'a>,
    target: &'a Target,
    scenario: &'a Scenario,
    names: BTreeMap<UnitName, String>,
    watcher: Watcher,
    origin_usec: u64,
    cursor: String,
    checks: Vec<Check>,
    timings: Vec<Timing>,
    faults: HashMap<usize, FaultMark>,
}

/// Run the scenario. Infrastructure failures (exec, engine) end it with `Outcome::Error` and
/// the failing operation in `error`; they are never mistaken for a failed expectation.
pub async fn execute(input: &Input<'_>) -> ScenarioResult {
    let started = Instant::now();
    let scenario = input.scenario;
    let names: BTreeMap<UnitName, String> =
        scenario.units().iter().map(|u| (u.name.clone(), unit_name(scenario, &u.name))).collect();
    let rendered: Vec<(String, String)> =
        scenario.units_renamed(|n| unit_name(scenario, n)).into_iter().map(|(n, f)| (n, f.render())).collect();
    let mut warnings: Vec<String> = input
        .diagnostics
        .iter()
        .map(|d| format!("{}: {}", d.location(), d.message))
        .collect();
    let mut result = ScenarioResult::new(
        &scenario.name,
        &scenario.description,
        &scenario.path,
        input.suite.name(),
        input.target.systemd_version(),
    );
    result.units = rendered.clone();
    let mut run = match Run::begin(input, names, &rendered, &mut warnings).await {
        Ok(run) => run,
        Err(e) => {
            result.outcome = Outcome::Error;
            result.error = Some(e);
            result.warnings = warnings;
            // Whatever was installed before the failure must not leak into the next scenario.
            if input.clean_up {
                let names: Vec<String> = rendered.iter().map(|(n, _)| n.clone()).collect();
                let _ = clean_up(input, &names).await;
            }
            result.duration = started.elapsed();
            return result;
        }
    };
    let error = run.steps().await.err();
    let finish = run.finish(&mut result).await;
    result.error = error.or(finish.err());
    result.warnings = warnings;
    result.checks = run.checks.into_iter().map(|c| c.result).collect();
    result.timings = run.timings;
    result.outcome = if result.error.is_some() {
        Outcome::Error
    } else if result.checks.iter().any(|c| !c.passed) {
        Outcome::Fail
    } else {
        Outcome::Pass
    };
    if input.clean_up {
        let names: Vec<String> = run.names.values().cloned().collect();
        if let Err(e) = clean_up(input, &names).await {
            result.outcome = Outcome::Error;
            result.error.get_or_insert(e);
        }
    }
    result.duration = started.elapsed();
    result
}

/// Stop the scenario's units and remove them and its files, so the next scenario on a shared
/// target starts from what the image holds.
async fn clean_up(input: &Input<'_>, names: &[String]) -> Result<(), String> {
    let target = input.target;
    // Only units systemd loaded can be stopped: a unit it refused (e.g. a relative
    // ExecStart=, replayed on purpose) makes `systemctl stop` fail for the whole list.
    let mut show = vec!["systemctl", "show", "--property", "Id,LoadState"];
    show.extend(names.iter().map(String::as_str));
    let shown = target.exec_ok(&show).await.map_err(|e| format!("read the load state of {}'s units: {e}", input.scenario.name))?;
    let loaded: Vec<String> = shown
        .stdout
        .split("\n\n")
        .map(crate::target::parse_properties)
        .filter(|p| p.get("LoadState").is_some_and(|s| s == "loaded"))
        .filter_map(|p| p.get("Id").cloned())
        .collect();
    if !loaded.is_empty() {
        let mut stop = vec!["systemctl", "stop"];
        stop.extend(loaded.iter().map(String::as_str));
        let out = tokio::time::timeout(JOB_DEADLINE, target.exec(&stop))
            .await
            .map_err(|_| format!("stop the units of {} on {}: no answer within {JOB_DEADLINE:?}", input.scenario.name, target.name()))?
            .map_err(|e| format!("stop the units of {}: {e}", input.scenario.name))?;
        if !out.success() {
            return Err(format!("stop the units of {} on {}: {}", input.scenario.name, target.name(), out.stderr.trim()));
        }
    }
    let mut reset = vec!["systemctl", "reset-failed"];
    reset.extend(names.iter().map(String::as_str));
    // Fails when no unit is in the failed state; that is fine.
    let _ = target.exec(&reset).await;
    let mut rm = vec!["rm".to_string(), "-f".to_string()];
    rm.extend(names.iter().map(|n| format!("/etc/systemd/system/{n}")));
    rm.extend(input.scenario.files.iter().map(|f| f.path.display().to_string()));
    let rm: Vec<&str> = rm.iter().map(String::as_str).collect();
    target.exec_ok(&rm).await.map_err(|e| format!("remove the files of {}: {e}", input.scenario.name))?;
    let _guard = input.reload.lock().await;
    target.exec_ok(&["systemctl", "daemon-reload"]).await.map_err(|e| format!("daemon-reload after {}: {e}", input.scenario.name))?;
    Ok(())
}

fn infra(what: impl std::fmt::Display) -> impl FnOnce(TargetError) -> String {
    move |e| format!("{what}: {e}")
}

impl<'a> Run<'a> {
    /// Follow the journal, install files and units, reload, verify.
    async fn begin(
        input: &'a Input<'a>,
        names: BTreeMap<UnitName, String>,
        rendered: &[(String, String)],
        warnings: &mut Vec<String>,
    ) -> Result<Run<'a>, String> {
        let target = input.target;
        let scenario = input.scenario;
        let origin_usec = observe::monotonic_now_usec();
        let mine: Vec<String> = names.values().cloned().collect();
        let watcher = Watcher::start(target, origin_usec, move |u| mine.iter().any(|m| m == u))
            .await
            .map_err(infra(format!("follow the journal of {}", target.name())))?;
        let mut files: Vec<(String, Vec<u8>, u32)> =
            scenario.files.iter().map(|f| (f.path.display().to_string(), f.content.clone().into_bytes(), f.mode)).collect();
        files.extend(rendered.iter().map(|(n, text)| (format!("/etc/systemd/system/{n}"), text.clone().into_bytes(), 0o644)));
        target.write_files(&files).await.map_err(infra(format!("install the files of {}", scenario.name)))?;
        {
            let _guard = input.reload.lock().await;
            target.exec_ok(&["systemctl", "daemon-reload"]).await.map_err(infra("daemon-reload"))?;
        }
        // systemd's own words about the unit files (`Unknown key 'RestartSecs'`, `Failed to
        // parse service type, ignoring: Notify`): verify prints what the manager would log.
        for (name, _) in rendered {
            let path = format!("/etc/systemd/system/{name}");
            let out = target.exec(&["systemd-analyze", "verify", &path]).await.map_err(infra(format!("systemd-analyze verify {path}")))?;
            for line in out.stdout.lines().chain(out.stderr.lines()) {
                let line = line.trim();
                if !line.is_empty() {
                    warnings.push(format!("systemd-analyze verify: {line}"));
                }
            }
        }
        let cursor = watcher.cursor().to_string();
        Ok(Run {
            input,
            target,
            scenario,
            names,
            watcher,
            origin_usec,
            cursor,
            checks: Vec::new(),
            timings: Vec::new(),
            faults: HashMap::new(),
        })
    }

    fn name<'s>(&'s self, unit: &'s UnitName) -> &'s str {
        self.names.get(unit).map(String::as_str).unwrap_or(unit.as_str())
    }

    /// Time since the scenario started, on the journal's clock.
    fn now(&self) -> Duration {
        Duration::from_micros(observe::monotonic_now_usec().saturating_sub(self.origin_usec))
    }

    fn check(&mut self, step: usize, unit: Option<&str>, expected: String, observed: String, passed: bool) {
        let s = &self.scenario.steps[step];
        let result = CheckResult {
            step,
            location: StepLocation { path: s.location.path.clone(), line: s.location.line, col: s.location.col },
            kind: s.kind.word().to_string(),
            expected,
            observed,
            passed,
            at: self.now(),
            journal_context: Vec::new(),
        };
        self.checks.push(Check { result, unit: unit.map(str::to_string) });
    }


    /// Run the steps in order. `Err` is an infrastructure failure, naming the step.
    async fn steps(&mut self) -> Result<(), String> {
        let scenario = self.scenario;
        let of = scenario.steps.len();
        for (i, step) in scenario.steps.iter().enumerate() {
            let before = self.checks.len();
            let flow = match &step.kind {
                StepKind::Start { unit } => self.start(i, unit).await,
                StepKind::Fault(fault) => self.fault(i, fault).await,
                StepKind::Wait(wait) => self.wait(i, wait).await,
                StepKind::Expect(e) => self.expect(i, e).await,
            }
            .map_err(|e| format!("step {} (`do = \"{}\"` at {}): {e}", i + 1, step.kind.word(), step.location))?;
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
                what: format!("{}{verdict}", describe(&step.kind)),
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

    /// Run a command inside the target under a deadline.
    async fn exec(&self, argv: &[&str], deadline: Duration) -> Result<crate::target::ExecOutput, String> {
        match tokio::time::timeout(deadline, self.target.exec(argv)).await {
            Ok(out) => out.map_err(|e| format!("`{}`: {e}", argv.join(" "))),
            Err(_) => Err(format!("`{}` did not return within {deadline:?} in {}", argv.join(" "), self.target.name())),
        }
    }

    async fn start(&mut self, step: usize, unit: &UnitName) -> Result<Flow, String> {
        let name = self.name(unit).to_string();
        self.watcher.note(&name, "systemctl start");
        // Blocking `systemctl start`, not `--no-block` + events: the format promises that
        // `start` returns when the start job finishes, as systemctl does (a never-ready
        // notify unit returns at its start timeout, which is what such a scenario measures),
        // and the job's end has no single journal line to wait for (Started, Finished, Failed
        // to start, Dependency failed, a scheduled restart...). The deadline guards the lab.
        match tokio::time::timeout(JOB_DEADLINE, self.target.exec(&["systemctl", "start", &name])).await {
            Ok(Ok(out)) => {
                if !out.success() {
                    // A failed start job is an observation for the expectations that follow.
                    self.watcher.note(&name, format!("start job failed: {}", one_line(&out.stderr)));
                }
                Ok(Flow::Next)
            }
            Ok(Err(e)) => Err(format!("systemctl start {name}: {e}")),
            Err(_) => {
                let expected = format!("the start job of {name} finishes within {}", format_duration(JOB_DEADLINE));
                let observed = format!("still running after {}", format_duration(JOB_DEADLINE));
                self.check(step, Some(&name), expected, observed, false);
                Ok(Flow::Stop)
            }
        }
    }

    async fn fault(&mut self, step: usize, fault: &Fault) -> Result<Flow, String> {
        let units: Vec<String> = match fault.unit() {
            Some(u) => vec![self.name(u).to_string()],
            None => self.names.values().cloned().collect(),
        };
        let mut invocations = HashMap::new();
        for u in &units {
            invocations.insert(u.clone(), self.restart_props(u).await?.1);
        }
        let mark = FaultMark {
            at: self.now(),
            instant: Instant::now(),
            from: self.names.values().map(|n| (n.clone(), self.watcher.len(n))).collect(),
            invocations,
        };
        self.faults.insert(step, mark);
        let what = describe(&StepKind::Fault(fault.clone()));
        for u in &units {
            self.watcher.note(u, format!("fault: {what}"));
        }
        let unit = units.first().cloned().unwrap_or_default();
        let failed: Option<String> = match fault {
            Fault::Control { port, fault, after, .. } => {
                let url = format!("http://127.0.0.1:{port}/control/fault?{}", fault.query(*after));
                let out = self.exec(&["curl", "-sS", "-m", "5", "-X", "POST", "-w", "\n%{http_code}", &url], COMMAND_DEADLINE).await?;
                let status = out.stdout.lines().last().unwrap_or("").trim().to_string();
                if out.success() && status.starts_with('2') {
                    None
                } else if out.success() {
                    Some(format!("POST {url} answered {status}: {}", one_line(out.stdout.rsplit_once('\n').map_or("", |(b, _)| b))))
                } else {
                    Some(format!("POST {url}: curl exit {}: {}", out.exit_code, one_line(&out.stderr)))
                }
            }
            Fault::Signal { signal, .. } => self.signal_main(&unit, signal.number()).await?,
            Fault::Freeze { .. } => self.signal_main(&unit, libc::SIGSTOP).await?,
            Fault::Thaw { .. } => self.signal_main(&unit, libc::SIGCONT).await?,
            Fault::PauseTarget { duration } => {
                let docker = self.target.engine().docker();
                docker
                    .pause_container(self.target.id())
                    .await
                    .map_err(|e| format!("pause {}: {e}", self.target.name()))?;
                // The fault is the duration itself: everything in the target, systemd included,
                // is frozen for exactly this long.
                tokio::time::sleep(*duration).await;
                docker
                    .unpause_container(self.target.id())
                    .await
                    .map_err(|e| format!("unpause {}: {e}", self.target.name()))?;
                None
            }
            Fault::Stop { .. } | Fault::Restart { .. } => {
                let verb = if matches!(fault, Fault::Stop { .. }) { "stop" } else { "restart" };
                let out = self.exec(&["systemctl", verb, &unit], JOB_DEADLINE).await?;
                if !out.success() {
                    self.watcher.note(&unit, format!("{verb} job failed: {}", one_line(&out.stderr)));
                }
                None
            }
            Fault::Kill { signal, whom, .. } => {
                let whom = format!("--kill-whom={}", whom.as_str());
                let sig = format!("--signal={}", signal.number());
                let out = self.exec(&["systemctl", "kill", &whom, &sig, &unit], COMMAND_DEADLINE).await?;
                (!out.success()).then(|| format!("systemctl kill {unit}: {}", one_line(&out.stderr)))
            }
        };
        match failed {
            None => Ok(Flow::Next),
            Some(observed) => {
                self.check(step, Some(&unit), format!("{what} is injected"), observed, false);
                Ok(Flow::Stop)
            }
        }
    }

    /// `kill(2)` of the unit's MainPID from inside the target; `Some(why)` when there is none.
    async fn signal_main(&self, unit: &str, signal: i32) -> Result<Option<String>, String> {
        let script = r#"pid=$(systemctl show -P MainPID "$1") || exit 2
[ "${pid:-0}" -gt 0 ] || { echo "no main process (MainPID=${pid:-?})" >&2; exit 3; }
kill -"$2" "$pid""#;
        let sig = signal.to_string();
        let out = self.exec(&["sh", "-c", script, "sh", unit, &sig], COMMAND_DEADLINE).await?;
        Ok((!out.success()).then(|| format!("signal {sig} to the main process of {unit}: {}", one_line(&out.stderr))))
    }

    async fn wait(&mut self, step: usize, wait: &Wait) -> Result<Flow, String> {
        let deadline = Instant::now() + wait.within();
        let within = format_duration(wait.within());
        match wait {
            Wait::State { unit, active, sub, .. } => {
                let name = self.name(unit).to_string();
                let want = [active.map(|a| format!("ActiveState={a}")), sub.map(|s| format!("SubState={s}"))]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ");
                loop {
                    let from = self.watcher.len(&name);
                    let props = self
                        .target
                        .unit_properties(&name, &["ActiveState", "SubState"])
                        .await
                        .map_err(infra(format!("read the state of {name}")))?;
                    let get = |k: &str| props.get(k).cloned().unwrap_or_default();
                    let holds = active.is_none_or(|a| get("ActiveState") == a.as_str()) && sub.is_none_or(|s| get("SubState") == s.as_str());
                    if holds {
                        return Ok(Flow::Next);
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        let observed = format!("ActiveState={} SubState={} at the deadline", get("ActiveState"), get("SubState"));
                        self.check(step, Some(&name), format!("{want} within {within}"), observed, false);
                        return Ok(Flow::Stop);
                    }
                    // Woken by the unit's next journal event, or re-read after a short while.
                    self.watcher.wait_for(&name, from, left.min(STATE_POLL), |_| true).await;
                }
            }
            Wait::Journal { unit, matcher, .. } => {
                let units = self.units_of(unit.as_ref());
                let mut rx = self.watcher.subscribe();
                loop {
                    if self.watched_match(&units, matcher).is_some() {
                        return Ok(Flow::Next);
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    let woke = tokio::time::timeout(left, rx.recv()).await;
                    if woke.is_err() || left.is_zero() {
                        if self.watched_match(&units, matcher).is_some() {
                            return Ok(Flow::Next);
                        }
                        let count: usize = units.iter().map(|u| self.watcher.entries(u).len()).sum();
                        let last = units
                            .iter()
                            .flat_map(|u| self.watcher.timeline(u).events)
                            .filter(|e| !matches!(e.kind, EventKind::Lab { .. }))
                            .max_by_key(|e| e.at)
                            .map(|e| format!("; last line: {:?}", journal::redact(&e.message)))
                            .unwrap_or_default();
                        let observed = format!("no matching line among {count} journal line(s) of {}{last}", units.join(", "));
                        let expected = format!("a journal line matching {matcher} within {within}");
                        self.check(step, unit.as_ref().map(|u| self.name(u)).map(str::to_string).as_deref(), expected, observed, false);
                        return Ok(Flow::Stop);
                    }
                }
            }
            Wait::Http { port, path, status, .. } => {
                let mut last;
                loop {
                    last = self.http(*port, path, Duration::from_secs(2).min(wait.within())).await?;
                    if last == Http::Status(*status) {
                        return Ok(Flow::Next);
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    tokio::time::sleep(left.min(HTTP_POLL)).await;
                }
                let expected = format!("GET :{port}{path} answers {status} within {within}");
                let unit = self.names.values().next().cloned();
                self.check(step, unit.as_deref(), expected, format!("last answer: {last}"), false);
                Ok(Flow::Stop)
            }
        }
    }

    /// Installed names of `unit`, or of all the scenario's units.
    fn units_of(&self, unit: Option<&UnitName>) -> Vec<String> {
        match unit {
            Some(u) => vec![self.name(u).to_string()],
            None => self.names.values().cloned().collect(),
        }
    }

    /// The first followed journal MESSAGE of `units` matching.
    fn watched_match(&self, units: &[String], matcher: &TextMatch) -> Option<String> {
        units.iter().find_map(|u| {
            self.watcher.entries(u).into_iter().find_map(|(_, e)| {
                let m = e.get("MESSAGE").and_then(|m| m.as_str())?;
                matcher.is_match(m).then(|| m.to_string())
            })
        })
    }

    /// One GET inside the target.
    async fn http(&self, port: u16, path: &str, timeout: Duration) -> Result<Http, String> {
        let url = format!("http://127.0.0.1:{port}{path}");
        let max = format!("{:.3}", timeout.as_secs_f64());
        let out = self.exec(&["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", &max, &url], COMMAND_DEADLINE + timeout).await?;
        Ok(match out.exit_code {
            0 => Http::Status(out.stdout.trim().parse().unwrap_or(0)),
            7 => Http::Refused,
            28 => Http::Timeout,
            code => Http::Other(format!("curl exit {code}: {}", one_line(&out.stderr))),
        })
    }

    async fn expect(&mut self, step: usize, e: &Expectation) -> Result<Flow, String> {
        match e {
            Expectation::Unit { unit, checks } => {
                let name = self.name(unit).to_string();
                let mut props: Vec<&str> = vec!["ActiveState", "SubState", "Result", "NRestarts"];
                for c in checks {
                    for p in c.properties() {
                        if !props.contains(p) {
                            props.push(p);
                        }
                    }
                }
                let values = self.target.unit_properties(&name, &props).await.map_err(infra(format!("read the properties of {name}")))?;
                let get = |k: &str| values.get(k).cloned();
                let errors: Vec<String> = checks.iter().filter_map(|c| c.check(&get).err()).collect();
                let expected = checks.iter().map(describe_property).collect::<Vec<_>>().join(", ");
                let seen = props.iter().map(|p| format!("{p}={}", values.get(*p).map_or("?", String::as_str))).collect::<Vec<_>>().join(" ");
                let observed = if errors.is_empty() { seen } else { format!("{}; read: {seen}", errors.join("; ")) };
                self.check(step, Some(&name), format!("{name}: {expected}"), observed, errors.is_empty());
            }
            Expectation::Http { port, path, expect, timeout } => {
                let got = self.http(*port, path, *timeout).await?;
                let passed = match expect {
                    HttpExpect::Status(s) => got == Http::Status(*s),
                    HttpExpect::Refused => got == Http::Refused,
                    HttpExpect::Timeout => got == Http::Timeout,
                };
                let expected = match expect {
                    HttpExpect::Timeout => format!("GET :{port}{path}: no answer within {}", format_duration(*timeout)),
                    other => format!("GET :{port}{path}: {other}"),
                };
                let unit = self.names.values().next().cloned();
                self.check(step, unit.as_deref(), expected, format!("GET :{port}{path}: {got}"), passed);
            }
            Expectation::RestartedWithin { unit, within, since_step } => {
                let name = self.name(unit).to_string();
                let mark = self.fault_mark(*since_step)?;
                let from = mark.from.get(&name).copied().unwrap_or(0);
                let found = self.new_start(&name, from, mark.at, mark.invocations.get(&name), mark.instant + *within).await;
                let expected = format!("{name} starts again within {} of the fault (step {})", format_duration(*within), since_step + 1);
                let (observed, passed) = match found {
                    Some((_, e)) => {
                        let after = e.at.saturating_sub(mark.at);
                        self.timings.push(Timing { name: "time to restart".into(), unit: name.clone(), value: after });
                        (format!("started again {} after the fault", millis(after)), after <= *within)
                    }
                    None => (format!("no new start within {} of the fault{}", format_duration(*within), self.last_event(&name, from)), false),
                };
                self.check(step, Some(&name), expected, observed, passed);
            }
            Expectation::NoRestart { unit, window, window_source } => {
                let name = self.name(unit).to_string();
                let before = self.restart_props(&name).await?;
                let from = self.watcher.len(&name);
                let window_start = self.now();
                let source = match window_source {
                    WindowSource::Explicit => "window as written".to_string(),
                    WindowSource::Derived(text) => format!("window derived: {text}"),
                };
                let expected = format!("{name} does not start again within {} ({source})", format_duration(*window));
                // The one bounded "nothing more happens" wait: a restart, if systemd were going
                // to do one, would be scheduled and started within the window.
                let found = self.restart_evidence(&name, from, window_start, &before.1, Instant::now() + *window).await;
                let after = self.restart_props(&name).await?;
                let (observed, passed) = match found {
                    Some((_, e)) => (format!("{:?} {} into the window", journal::redact(&e.message), millis(e.at.saturating_sub(window_start))), false),
                    None if after != before => (format!("no restart line, but {} became {}", before.0, after.0), false),
                    None => (format!("no restart in {}: {}", format_duration(*window), after.0), true),
                };
                self.check(step, Some(&name), expected, observed, passed);
            }
            Expectation::Recovery { unit, http, within, since_step } => {
                let name = self.name(unit).to_string();
                let mark = self.fault_mark(*since_step)?;
                let from = mark.from.get(&name).copied().unwrap_or(0);
                let deadline = mark.instant + *within;
                let target_text = match http {
                    Some((port, path)) => format!("active again and GET :{port}{path} answers 200"),
                    None => "active again".to_string(),
                };
                let expected = format!("{name}: {target_text} within {} of the fault (step {})", format_duration(*within), since_step + 1);
                let started = self.new_start(&name, from, mark.at, mark.invocations.get(&name), deadline).await;
                let mut parts = Vec::new();
                let timeline = self.watcher.timeline(&name);
                let until = started.as_ref().map_or(timeline.events.len(), |(i, _)| *i);
                let detected = timeline.events.iter().take(until).skip(from).find(|e| e.at >= mark.at && is_failure(&e.kind));
                match detected {
                    Some(e) => {
                        let t = e.at.saturating_sub(mark.at);
                        self.timings.push(Timing { name: "time to detect".into(), unit: name.clone(), value: t });
                        parts.push(format!("detected after {} ({:?})", millis(t), journal::redact(&e.message)));
                    }
                    None => parts.push("no failure event".to_string()),
                }
                let mut passed = false;
                match &started {
                    Some((_, e)) => {
                        let t = e.at.saturating_sub(mark.at);
                        self.timings.push(Timing { name: "time to recover".into(), unit: name.clone(), value: t });
                        parts.push(format!("active again after {}", millis(t)));
                        passed = t <= *within;
                    }
                    None => parts.push(format!("not active again within {}{}", format_duration(*within), self.last_event(&name, from))),
                }
                if let (true, Some((port, path))) = (passed, http) {
                    passed = false;
                    let mut last;
                    loop {
                        last = self.http(*port, path, Duration::from_secs(1)).await?;
                        if last == Http::Status(200) {
                            let t = mark.instant.elapsed();
                            self.timings.push(Timing { name: "time to healthy".into(), unit: name.clone(), value: t });
                            parts.push(format!("GET :{port}{path} 200 after {}", millis(t)));
                            passed = t <= *within;
                            break;
                        }
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            parts.push(format!("GET :{port}{path} still {last} at the deadline"));
                            break;
                        }
                        tokio::time::sleep(left.min(HTTP_POLL)).await;
                    }
                }
                self.check(step, Some(&name), expected, parts.join(", "), passed);
            }
            Expectation::Journal { unit, matcher, present } => {
                let units = self.units_of(unit.as_ref());
                let entries = self.journal_since_start().await?;
                let relevant: Vec<&JournalEntry> = entries
                    .iter()
                    .filter(|e| match observe::entry_unit(e) {
                        Some(u) => units.iter().any(|n| n == u),
                        // systemd's lines about no unit in particular ("Reloading.") count for a
                        // scenario-wide match.
                        None => unit.is_none() && e.get("_PID").and_then(|p| p.as_str()) == Some("1"),
                    })
                    .collect();
                let hit = relevant.iter().find_map(|e| {
                    let m = e.get("MESSAGE").and_then(|m| m.as_str())?;
                    matcher.is_match(m).then(|| journal::redact(m))
                });
                let scope = match unit {
                    Some(u) => format!("the journal of {}", self.name(u)),
                    None => "the scenario's journal".to_string(),
                };
                let expected = if *present { format!("{scope} has a line matching {matcher}") } else { format!("{scope} has no line matching {matcher}") };
                let observed = match &hit {
                    Some(line) => format!("found: {line:?}"),
                    None => format!("no match among {} line(s)", relevant.len()),
                };
                let passed = hit.is_some() == *present;
                let name = unit.as_ref().map(|u| self.name(u).to_string());
                self.check(step, name.as_deref(), expected, observed, passed);
            }
        }
        Ok(Flow::Next)
    }

    /// The InvocationID systemd logged with a timeline event (PID 1 adds `INVOCATION_ID=` to
    /// its lines about a unit).
    fn invocation_of(&self, name: &str, index: usize) -> Option<String> {
        self.watcher.entries(name).into_iter().find(|(i, _)| *i == index).and_then(|(_, e)| {
            e.get("INVOCATION_ID").or_else(|| e.get("_SYSTEMD_INVOCATION_ID")).and_then(|v| v.as_str()).map(str::to_string)
        })
    }

    /// The next "Started" of `name` with an InvocationID other than `old` (when systemd
    /// logged none, one at or after `since`), before `deadline`.
    async fn new_start(&self, name: &str, mut from: usize, since: Duration, old: Option<&String>, deadline: Instant) -> Option<(usize, Event)> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (i, e) = self.watcher.wait_for(name, from, left, kind(|k| matches!(k, EventKind::Started))).await?;
            // An empty InvocationID means the unit was unloaded (garbage-collected) at the
            // fault; then only the time tells.
            let new = e.at >= since
                && match (self.invocation_of(name, i), old) {
                    (Some(inv), Some(old)) if !old.is_empty() => &inv != old,
                    _ => true,
                };
            if new {
                return Some((i, e));
            }
            from = i + 1;
        }
    }

    /// Evidence of a restart of `name` after `since`: "Scheduled restart job" or a "Started"
    /// of an invocation other than `old`, before `deadline`.
    async fn restart_evidence(&self, name: &str, mut from: usize, since: Duration, old: &str, deadline: Instant) -> Option<(usize, Event)> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let pred = kind(|k| matches!(k, EventKind::RestartScheduled { .. } | EventKind::Started));
            let (i, e) = self.watcher.wait_for(name, from, left, pred).await?;
            // Lines logged before the window may still be arriving (the follower lags a
            // little): only what systemd logged inside the window counts. A "Started" is a
            // restart only for another invocation; an empty `old` means the unit had been
            // unloaded (garbage-collected after a clean stop), so any start is a new one.
            let restart = e.at >= since
                && match e.kind {
                    EventKind::RestartScheduled { .. } => true,
                    _ => old.is_empty() || self.invocation_of(name, i).is_none_or(|inv| inv != old),
                };
            if restart {
                return Some((i, e));
            }
            from = i + 1;
        }
    }

    fn fault_mark(&self, step: usize) -> Result<FaultMark, String> {
        // Validation guarantees a fault step before; it was skipped only if the run stopped.
        self.faults.get(&step).cloned().ok_or_else(|| format!("the fault of step {} was not recorded", step + 1))
    }

    /// ("NRestarts=N InvocationID=...", the raw pair) for no-restart comparisons.
    async fn restart_props(&self, name: &str) -> Result<(String, String), String> {
        let p = self.target.unit_properties(name, &["NRestarts", "InvocationID"]).await.map_err(infra(format!("read NRestarts of {name}")))?;
        let n = p.get("NRestarts").cloned().unwrap_or_default();
        let id = p.get("InvocationID").cloned().unwrap_or_default();
        Ok((format!("NRestarts={n}"), id))
    }

    /// "; last event: ..." for an observation that found nothing.
    fn last_event(&self, name: &str, from: usize) -> String {
        let t = self.watcher.timeline(name);
        t.events
            .iter()
            .skip(from)
            .rfind(|e| !matches!(e.kind, EventKind::Lab { .. }))
            .map(|e| format!("; last event: {:?}", journal::redact(&e.message)))
            .unwrap_or_else(|| "; no event since the fault".to_string())
    }

    async fn journal_since_start(&self) -> Result<Vec<JournalEntry>, String> {
        let after = format!("--after-cursor={}", self.cursor);
        self.target.journal(&[&after]).await.map_err(infra("read the journal since the scenario started"))
    }

    /// Timeline, snapshot and journal context of failed checks.
    async fn finish(&mut self, result: &mut ScenarioResult) -> Result<(), String> {
        let mut timeline: Vec<Event> = self.names.values().flat_map(|n| self.watcher.timeline(n).events).collect();
        timeline.sort_by_key(|e| e.at);
        result.timeline = timeline;
        let entries = self.journal_since_start().await?;
        let mine: Vec<&JournalEntry> = entries
            .iter()
            .filter(|e| observe::entry_unit(e).is_some_and(|u| self.names.values().any(|n| n == u)))
            .collect();
        if self.scenario.snapshot {
            result.snapshot = Some(snapshot(&mine));
        }
        for check in self.checks.iter_mut().filter(|c| !c.result.passed) {
            let lines: Vec<JournalEntry> = mine
                .iter()
                .filter(|e| check.unit.as_ref().is_none_or(|u| observe::entry_unit(e) == Some(u.as_str())))
                .map(|e| (*e).clone())
                .collect();
            let decided = self.origin_usec + check.result.at.as_micros() as u64;
            let pos = lines.iter().position(|e| observe::entry_monotonic_usec(e).is_some_and(|t| t > decided)).unwrap_or(lines.len());
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
fn snapshot(entries: &[&JournalEntry]) -> String {
    let mut kept: Vec<JournalEntry> = entries.iter().copied().filter(|e| journal::is_manager_line(e)).cloned().collect();
    kept.sort_by(|a, b| observe::entry_unit(a).cmp(&observe::entry_unit(b)));
    journal::normalise(&kept)
}

/// Events that show a fault was noticed.
fn is_failure(k: &EventKind) -> bool {
    matches!(
        k,
        EventKind::MainExited { .. }
            | EventKind::Failed { .. }
            | EventKind::WatchdogTimeout
            | EventKind::StartTimeout
            | EventKind::StartFailed
            | EventKind::StartLimitHit
            | EventKind::Stopping
    )
}

/// What an HTTP GET got.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Http {
    Status(u16),
    Refused,
    Timeout,
    Other(String),
}

impl std::fmt::Display for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Http::Status(s) => write!(f, "{s}"),
            Http::Refused => f.write_str("refused"),
            Http::Timeout => f.write_str("timeout (no answer)"),
            Http::Other(why) => f.write_str(why),
        }
    }
}

fn describe_property(c: &PropertyCheck) -> String {
    match c {
        PropertyCheck::ActiveState(s) => format!("ActiveState={s}"),
        PropertyCheck::SubState(s) => format!("SubState={s}"),
        PropertyCheck::Result(r) => format!("Result={r}"),
        PropertyCheck::NRestarts(r) => format!("NRestarts {r}"),
        PropertyCheck::MainExit(m) => format!("main process {m}"),
    }
}

/// A short line for progress output.
fn describe(kind: &StepKind) -> String {
    match kind {
        StepKind::Start { unit } => format!("start {}", unit.stem()),
        StepKind::Fault(f) => match f {
            Fault::Control { unit, fault, after, .. } => {
                let detail = match fault {
                    ControlFault::Hang(parts) => format!("hang({})", parts.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(",")),
                    ControlFault::Exit(c) => format!("exit({c})"),
                    ControlFault::Signal(s) => format!("signal({})", s.name()),
                    other => other.kind().to_string(),
                };
                let after = after.map(|a| format!(" after {}", format_duration(a))).unwrap_or_default();
                format!("fault {detail}{after} in {}", unit.stem())
            }
            Fault::Signal { unit, signal } => format!("SIG{} to {}", signal.name(), unit.stem()),
            Fault::Freeze { unit } => format!("freeze {}", unit.stem()),
            Fault::Thaw { unit } => format!("thaw {}", unit.stem()),
            Fault::PauseTarget { duration } => format!("pause the target for {}", format_duration(*duration)),
            Fault::Stop { unit } => format!("systemctl stop {}", unit.stem()),
            Fault::Restart { unit } => format!("systemctl restart {}", unit.stem()),
            Fault::Kill { unit, signal, whom } => format!("systemctl kill --kill-whom={} SIG{} {}", whom.as_str(), signal.name(), unit.stem()),
        },
        StepKind::Wait(w) => match w {
            Wait::State { unit, active, sub, .. } => format!(
                "wait for {} {}",
                unit.stem(),
                [active.map(|a| a.to_string()), sub.map(|s| format!("({s})"))].into_iter().flatten().collect::<Vec<_>>().join(" ")
            ),
            Wait::Journal { matcher, .. } => format!("wait for journal {matcher}"),
            Wait::Http { port, path, status, .. } => format!("wait for GET :{port}{path} {status}"),
        },
        StepKind::Expect(e) => match e {
            Expectation::Unit { unit, checks } => {
                format!("expect {}: {}", unit.stem(), checks.iter().map(describe_property).collect::<Vec<_>>().join(", "))
            }
            Expectation::Http { port, path, expect, .. } => format!("probe :{port}{path} -> {expect}"),
            Expectation::RestartedWithin { unit, within, .. } => format!("expect {} restarted within {}", unit.stem(), format_duration(*within)),
            Expectation::NoRestart { unit, window, .. } => format!("expect no restart of {} for {}", unit.stem(), format_duration(*window)),
            Expectation::Recovery { unit, within, .. } => format!("expect {} recovered within {}", unit.stem(), format_duration(*within)),
            Expectation::Journal { matcher, present, .. } => {
                format!("expect journal {}{matcher}", if *present { "" } else { "without " })
            }
        },
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn millis(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}
