//! Judging the tables: each cell's observations (recorded by its scenario's `observe` steps)
//! are classified in the table's own words, compared with the documented table and the
//! reviewed deviations, and gathered into a [`TableReport`] per table and suite. The verdict is
//! also added to the cell's scenario result as a check, so every report format shows it and
//! the exit code follows it. Plain synchronous code.

use std::time::Duration;

use super::cells::{scenario_name, Table, COMPRESSED_START_TIMEOUT, OOM_MEMORY_MAX};
use super::oracle::{self, CellKey, Cause, Documented, Ending, TypeOutcome, TABLE_TYPES};
use super::rule::{self, ExitStatusSet, RunEnd};
use crate::systemd::{format_duration, MainExit, RestartPolicy, ServiceResult, Signal};
use crate::verdict::{CellVerdict, CheckResult, Observed, Outcome, RunReport, ScenarioResult, TableReport};

/// The restart table's two values, in its own words.
pub fn restart_word(restarts: bool) -> &'static str {
    if restarts {
        "restart"
    } else {
        "no restart"
    }
}

/// The documented value of a cell, in the table's words.
pub fn documented_value(key: CellKey) -> String {
    match key {
        CellKey::Restart(p, c) => restart_word(oracle::restart_documented(p, c)).to_string(),
        CellKey::Type { program, configured } => oracle::type_documented(program, configured).0.name().to_string(),
        CellKey::Result(p, e) => match oracle::results_documented(p, e) {
            Documented::Says(restarts, _) => restart_word(restarts).to_string(),
            Documented::Silent(_) => SILENT.to_string(),
        },
    }
}

/// The documented value of a results cell the documentation says nothing about.
pub const SILENT: &str = "silent";

fn mark(table: Table, value: &str) -> String {
    match (table, value) {
        (Table::Restart | Table::Results, "restart") => "X".into(),
        (Table::Restart | Table::Results, "no restart") => ".".into(),
        (Table::Results, SILENT) => "?".into(),
        (Table::Results, _) => "!".into(),
        (Table::Restart, _) => "?".into(),
        (Table::Type, v) => v.to_string(),
    }
}

/// What a cell observed: the class in the table's words, the facts behind it, and when the
/// decisive event came (since the fault or the start).
#[derive(Debug, Clone, PartialEq)]
pub struct Classified {
    pub observed: String,
    pub detail: String,
    pub decided_after: Option<Duration>,
    /// Why no class fits, when none does.
    pub note: Option<String>,
}

fn state(r: &ScenarioResult) -> Option<&Observed> {
    r.observations.iter().map(|o| &o.value).find(|v| matches!(v, Observed::State { .. }))
}

fn state_detail(r: &ScenarioResult) -> String {
    match state(r) {
        Some(Observed::State { active_state, sub_state, result, n_restarts, .. }) => {
            format!("ActiveState={active_state} SubState={sub_state} Result={result} NRestarts={n_restarts}")
        }
        _ => "no state observed".into(),
    }
}

/// A restart cell: did a restart follow the end of the run?
pub fn classify_restart(r: &ScenarioResult) -> Classified {
    let restart = r.observations.iter().map(|o| &o.value).find(|v| matches!(v, Observed::Restart { .. }));
    let Some(Observed::Restart { result, ended_after, restarted, restart_after, note, .. }) = restart else {
        return Classified { observed: "unobserved".into(), detail: state_detail(r), decided_after: None, note: Some("no restart observation".into()) };
    };
    let detail = format!("the run ended with Result={}; {}", result.as_deref().unwrap_or("?"), state_detail(r));
    match restarted {
        Some(restarted) => Classified {
            observed: restart_word(*restarted).into(),
            detail,
            decided_after: match (ended_after, restart_after) {
                (Some(end), Some(after)) => Some(*end + *after),
                (end, _) => *end,
            },
            note: None,
        },
        None => Classified { observed: "unobserved".into(), detail, decided_after: None, note: note.clone() },
    }
}

/// A type cell's class from its state after the settle window and whether anything of the
/// program still answers on its port.
pub fn classify_type_state(active: &str, sub: &str, result: &str, answered: bool) -> Result<TypeOutcome, String> {
    match (active, result) {
        ("active", _) if sub == "running" => Ok(TypeOutcome::Works),
        ("activating", _) => Ok(TypeOutcome::ActivatingForever),
        ("failed", "timeout") => Ok(TypeOutcome::StartTimeout),
        ("failed", "protocol") => Ok(TypeOutcome::Protocol),
        ("failed", _) => Ok(TypeOutcome::Failed),
        ("inactive", "success") if !answered => Ok(TypeOutcome::DeadSuccess),
        _ => Err(format!(
            "ActiveState={active} SubState={sub} Result={result}{}: no outcome class fits",
            if answered { ", and the program still answers on its port" } else { "" }
        )),
    }
}

/// A type cell.
pub fn classify_type(r: &ScenarioResult) -> Classified {
    let answer = r.observations.iter().find_map(|o| match &o.value {
        Observed::Http { answer, .. } => Some(answer.clone()),
        _ => None,
    });
    let detail = format!("{}; GET / {}", state_detail(r), answer.as_deref().unwrap_or("not tried"));
    let decided_after = r
        .timeline
        .iter()
        .rev()
        .find(|e| !matches!(e.kind, crate::observe::EventKind::Output | crate::observe::EventKind::Lab { .. }))
        .map(|e| e.at);
    let Some(Observed::State { active_state, sub_state, result, .. }) = state(r) else {
        return Classified { observed: "unobserved".into(), detail, decided_after, note: Some("no state observed".into()) };
    };
    // Anything but "refused" means a process of the program may still be there.
    let answered = answer.as_deref() != Some("refused");
    match classify_type_state(active_state, sub_state, result, answered) {
        Ok(o) => Classified { observed: o.name().into(), detail, decided_after, note: None },
        Err(why) => Classified { observed: "unclassified".into(), detail, decided_after, note: Some(why) },
    }
}

/// The Result a results cell's run ended with (what systemd logged), if it ended.
pub fn observed_result(r: &ScenarioResult) -> Option<String> {
    r.observations.iter().find_map(|o| match &o.value {
        Observed::Restart { result, .. } => result.clone(),
        _ => None,
    })
}

/// How the lab ended the main process of an ending's cell, as the source rule sees it (the
/// exit-status lists look at the main process, not at the Result).
fn main_exit(ending: Ending) -> Option<MainExit> {
    let killed = |n: i32| Signal::from_number(n).map(|signal| MainExit::Killed { signal, dumped: None });
    match ending {
        // A refused start runs nothing: the main process's exit is still the run's before it.
        Ending::Success | Ending::StartLimitHit | Ending::Protocol => Some(MainExit::Exited(0)),
        Ending::ExitCode | Ending::StartLimitAfterFailure => Some(MainExit::Exited(3)),
        Ending::SuccessExitStatus => Some(MainExit::Exited(oracle::SUCCESS_EXIT_STATUS)),
        Ending::RestartPreventExitStatus => Some(MainExit::Exited(oracle::RESTART_PREVENT_EXIT_STATUS)),
        Ending::RestartForceExitStatus => Some(MainExit::Exited(oracle::RESTART_FORCE_EXIT_STATUS)),
        Ending::Signal | Ending::OomKill => killed(libc::SIGKILL),
        Ending::CoreDump => killed(libc::SIGSEGV),
        Ending::Timeout => killed(libc::SIGTERM),
        Ending::Watchdog => killed(libc::SIGABRT),
        Ending::CleanSighup => killed(libc::SIGHUP),
        Ending::CleanSigterm => killed(libc::SIGTERM),
        Ending::CleanSigint => killed(libc::SIGINT),
        Ending::CleanSigpipe => killed(libc::SIGPIPE),
        Ending::ExecCondition => None,
    }
}

/// The source rule's decision for a results cell, given the Result the run really ended with
/// (or, when it did not end, the Result the source gives the ending).
pub fn source_decision(policy: RestartPolicy, ending: Ending, result: Option<&str>) -> rule::Decision {
    let result = result.and_then(|r| r.parse::<ServiceResult>().ok()).unwrap_or_else(|| ending.expected_result());
    let list = |e: Ending, code: u8| if ending == e { ExitStatusSet::codes(&[code]) } else { ExitStatusSet::default() };
    let end = RunEnd {
        result,
        main: main_exit(ending),
        prevent: list(Ending::RestartPreventExitStatus, oracle::RESTART_PREVENT_EXIT_STATUS),
        force: list(Ending::RestartForceExitStatus, oracle::RESTART_FORCE_EXIT_STATUS),
        refused_start: matches!(ending, Ending::StartLimitHit | Ending::StartLimitAfterFailure),
    };
    rule::shall_restart(policy, &end)
}

/// A results cell: observed restart and Result, against the documentation and the source
/// rule. `as_expected` is the source's verdict: the restart the rule decides for the Result
/// systemd really logged, and that Result being the one the source gives the ending (or the
/// reviewed deviation's). The documentation is compared and every difference explained, but
/// it cannot make a cell fail: where it is silent or wrong, the source is the judge.
fn judge_result_cell(policy: RestartPolicy, ending: Ending, r: &ScenarioResult, major: u32) -> CellVerdict {
    let key = CellKey::Result(policy, ending);
    let c = classify_restart(r);
    let result = observed_result(r);
    let expected_result = ending.expected_result().as_str().to_string();
    let decision = source_decision(policy, ending, result.as_deref());
    let source = restart_word(decision.restarts).to_string();
    let documented = documented_value(key);
    let agrees = documented == c.observed;
    let deviation = oracle::deviation(key, major);
    let result_ok = match (&result, deviation) {
        (Some(got), Some(d)) => got == d.observed,
        (Some(got), None) => *got == expected_result,
        (None, _) => false,
    };
    let as_expected = result_ok && c.observed == source;
    let mut why = Vec::new();
    if let Some(note) = &c.note {
        why.push(note.clone());
    }
    match (&result, deviation) {
        (Some(got), Some(d)) if got.as_str() == d.observed => {
            why.push(format!("Result {got}, not {expected_result}: the reviewed deviation for systemd {}..{} (why: in the table's notes).", d.systemd.0, d.systemd.1))
        }
        (Some(got), Some(d)) => why.push(format!(
            "UNREVIEWED: Result {got}, but the reviewed deviation for systemd {}..{} says {}",
            d.systemd.0, d.systemd.1, d.observed
        )),
        (Some(got), None) if *got != expected_result => {
            why.push(format!("UNREVIEWED: Result {got}, but systemd's source gives this ending Result {expected_result}"))
        }
        _ => {}
    }
    if c.observed != source && c.observed != "unobserved" {
        why.push(format!("UNREVIEWED: the source rule says {source} ({}), observed {}", decision.reason, c.observed));
    }
    match oracle::results_documented(policy, ending) {
        Documented::Silent(what) => why.push(format!("The documentation says nothing: {what}. service.c: {}.", decision.reason)),
        Documented::Says(restarts, place) if restart_word(restarts) != c.observed => {
            why.push(format!("Documented ({place}): {}; service.c: {}.", restart_word(restarts), decision.reason))
        }
        Documented::Says(..) => {}
    }
    let explanation = (!agrees || !as_expected || !why.is_empty()).then(|| why.join(" "));
    CellVerdict {
        row: ending.name().to_string(),
        column: policy.to_string(),
        scenario: scenario_name(key),
        documented_mark: mark(Table::Results, &documented),
        observed_mark: mark(Table::Results, &c.observed),
        documented,
        observed: c.observed,
        agrees,
        as_expected,
        explanation,
        detail: c.detail,
        decided_after: c.decided_after,
        result,
        expected_result: Some(expected_result),
        source: Some(source),
    }
}

/// Judge one cell of `table` on a systemd `major` version.
pub fn judge_cell(key: CellKey, r: &ScenarioResult, major: u32) -> CellVerdict {
    let table = Table::of(key);
    let c = match key {
        CellKey::Restart(..) => classify_restart(r),
        CellKey::Type { .. } => classify_type(r),
        CellKey::Result(policy, ending) => return judge_result_cell(policy, ending, r, major),
    };
    let documented = documented_value(key);
    let agrees = documented == c.observed;
    let deviation = oracle::deviation(key, major);
    let as_expected = match deviation {
        Some(d) => c.observed == d.observed,
        None => agrees,
    };
    let note = c.note.clone().map(|n| format!(" {n}")).unwrap_or_default();
    let explanation = (!agrees).then(|| match deviation {
        Some(d) if d.observed == c.observed => d.explanation.to_string(),
        Some(d) => format!(
            "UNREVIEWED: observed {}, but the reviewed deviation for systemd {}..{} says {}.{note}",
            c.observed, d.systemd.0, d.systemd.1, d.observed
        ),
        None => format!("UNREVIEWED: no reviewed deviation covers this cell on systemd {major}.{note}"),
    });
    let (row, column) = labels(key);
    CellVerdict {
        row,
        column,
        scenario: scenario_name(key),
        documented_mark: mark(table, &documented),
        observed_mark: mark(table, &c.observed),
        documented,
        observed: c.observed,
        agrees,
        as_expected,
        explanation,
        detail: c.detail,
        decided_after: c.decided_after,
        result: None,
        expected_result: None,
        source: None,
    }
}

/// Row and column labels of a cell.
fn labels(key: CellKey) -> (String, String) {
    match key {
        CellKey::Restart(policy, cause) => (cause.name().to_string(), policy.to_string()),
        CellKey::Type { program, configured } => (program.to_string(), configured.to_string()),
        CellKey::Result(policy, ending) => (ending.name().to_string(), policy.to_string()),
    }
}

fn systemd_major(line: &str) -> u32 {
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// The window derivation the cells of a table reported, for the table's method lines.
fn derivation(results: &[&ScenarioResult]) -> Option<String> {
    results.iter().flat_map(|r| r.observations.iter()).find_map(|o| match &o.value {
        Observed::Restart { window_derivation, .. } => Some(window_derivation.clone()),
        _ => None,
    })
}

fn method(table: Table, results: &[&ScenarioResult]) -> Vec<String> {
    let compressed = format!(
        "systemd's 90 s start timeout is compressed to {} in the manager (DefaultTimeoutStartSec=), so every Type= keeps its own rule",
        format_duration(COMPRESSED_START_TIMEOUT)
    );
    match table {
        Table::Restart => vec![
            compressed,
            "each cell is a notify buggy-server with systemd's default RestartSec; the fault goes through its control endpoint once the unit is active (the timeout row: the server never reports ready)".into(),
            format!(
                "\"no restart\" means nothing was scheduled or started within {} of the run's end",
                derivation(results).unwrap_or_else(|| "the derived window".into())
            ),
            "StartLimitIntervalSec=0 so the start rate limit cannot hide a restart; LimitCORE=0 (the Result stays watchdog either way)".into(),
        ],
        Table::Results => {
            let mut lines = vec![
                compressed,
                "each cell is a notify buggy-server with systemd's default RestartSec; faults go through its control endpoint once the unit is active; timeout, protocol, oom-kill and exec-condition need none (never ready; exits 0 before READY=1; --fault oom@after=300ms; ExecCondition=/bin/false)".into(),
                format!("oom-kill: MemoryMax={OOM_MEMORY_MAX}; core-dump: LimitCORE=infinity (elsewhere LimitCORE=0); start-limit-hit and start-limit-after-failure: StartLimitIntervalSec=1h StartLimitBurst=1, exit 0 (a second unit with Wants= on the cell keeps it loaded) or exit 3, then the lab's systemctl restart; elsewhere StartLimitIntervalSec=0"),
                format!(
                    "\"no restart\" means nothing was scheduled or started within {} of the run's end",
                    derivation(results).unwrap_or_else(|| "the derived window".into())
                ),
                "documented: systemd.service(5) (the Restart= table, RestartPreventExitStatus=, RestartForceExitStatus=) and systemd.unit(5) for the start limit; ? marks a cell it says nothing about. The verdict is the source rule (service.c service_shall_restart) applied to the Result systemd logged".into(),
            ];
            lines.extend(result_lines(results));
            lines
        }
        Table::Type => vec![
            compressed,
            format!(
                "each cell settles for DefaultTimeoutStartSec + 1s after its start request: after that no start timeout can fire, so \"activating\" is \"forever\""
            ),
            "dead-success also needs nothing left answering on the program's port".into(),
        ],
    }
}

/// One line per ending: the Result(s) systemd logged across the row's cells, beside the one
/// the source gives it.
fn result_lines(results: &[&ScenarioResult]) -> Vec<String> {
    Ending::ALL
        .iter()
        .filter_map(|ending| {
            let mut seen: Vec<String> = results
                .iter()
                .filter(|r| RestartPolicy::ALL.iter().any(|p| r.name == scenario_name(CellKey::Result(*p, *ending))))
                .map(|r| observed_result(r).unwrap_or_else(|| "none".into()))
                .collect();
            if seen.is_empty() {
                return None;
            }
            seen.sort();
            seen.dedup();
            let why = oracle::RESULT_DEVIATIONS
                .iter()
                .find(|(e, _, observed, _)| e == ending && seen.iter().any(|s| s == observed))
                .map(|(_, v, _, why)| format!(". Reviewed deviation (systemd {}..{}): {why}", v.0, v.1))
                .unwrap_or_default();
            Some(format!("{}: Result {} (source: {}){why}", ending.name(), seen.join(" / "), ending.expected_result()))
        })
        .collect()
}

/// What buggy-server logs when its `oom` fault allocated its whole ceiling and no limit
/// stopped it (services/src/faults.rs).
const OOM_NOT_ENFORCED: &str = "allocated and the process was not killed: no memory limit below that applies";

/// Why a cell cannot be measured on its target, when that shows in its run: an oom-kill cell
/// whose server allocated past `MemoryMax=` untouched measured no OOM kill at all, so there is
/// no Result to judge (systemd 258 and later in a container on a cgroup v1 host: their unified
/// hierarchy has no memory controller, so `MemoryMax=` is not enforced).
pub fn unmeasurable(key: CellKey, r: &ScenarioResult) -> Option<String> {
    let CellKey::Result(_, Ending::OomKill) = key else { return None };
    let line = r.timeline.iter().find(|e| e.message.contains(OOM_NOT_ENFORCED))?;
    Some(format!(
        "the oom-kill ending cannot be measured on this target: MemoryMax= is not enforced ({}: \"{}\"). \
         systemd 258 and later in a container on a cgroup v1 host run on a unified hierarchy without the memory \
         controller; the VM fixture has it (`--fixture vm`)",
        r.systemd,
        line.message.trim()
    ))
}

/// Judge every cell of `cells` found in `report` and add one table report per (table, suite),
/// in table order then suite order; each cell's result gains a check with its verdict.
pub fn judge(report: &mut RunReport, cells: &[(CellKey, String)]) {
    let mut tables: Vec<TableReport> = Vec::new();
    for r in report.results.iter_mut() {
        let Some((key, _)) = cells.iter().find(|(_, name)| *name == r.name) else { continue };
        let table = Table::of(*key);
        if let Some(why) = unmeasurable(*key, r) {
            r.outcome = Outcome::Error;
            r.error.get_or_insert(why);
        }
        if r.outcome == Outcome::Error {
            // The lab could not measure it: the error says why; no verdict is invented.
            continue;
        }
        let verdict = judge_cell(*key, r, systemd_major(&r.systemd));
        let step = r.observations.last().map_or(0, |o| o.step);
        let location = r.observations.last().map(|o| o.location.clone());
        if let Some(location) = location {
            let expected = match (&verdict.agrees, oracle::deviation(*key, systemd_major(&r.systemd))) {
                _ if table == Table::Results => format!(
                    "{} after Result {} (service.c; documented: {})",
                    verdict.source.as_deref().unwrap_or("?"),
                    verdict.expected_result.as_deref().unwrap_or("?"),
                    verdict.documented
                ),
                (false, Some(d)) => format!("{} (the reviewed deviation; documented: {})", d.observed, verdict.documented),
                _ => format!("{} (documented)", verdict.documented),
            };
            r.checks.push(CheckResult {
                step,
                location,
                kind: format!("table {}", table.name()),
                expected,
                observed: format!("{} ({})", verdict.observed, verdict.detail),
                passed: verdict.as_expected,
                at: r.observations.last().map_or(Duration::ZERO, |o| o.at),
                journal_context: Vec::new(),
            });
            if !verdict.as_expected && r.outcome == Outcome::Pass {
                r.outcome = Outcome::Fail;
            }
        }
        let entry = tables.iter_mut().find(|t| t.table == table.name() && t.suite == r.suite);
        match entry {
            Some(t) => t.cells.push(verdict),
            None => tables.push(new_table(table, r, verdict)),
        }
    }
    for t in tables.iter_mut() {
        let table = Table::ALL.into_iter().find(|x| x.name() == t.table).unwrap_or(Table::Type);
        let results: Vec<&ScenarioResult> =
            report.results.iter().filter(|r| r.suite == t.suite && t.cells.iter().any(|c| c.scenario == r.name)).collect();
        t.method = method(table, &results);
    }
    tables.sort_by_key(|t| (Table::ALL.iter().position(|x| x.name() == t.table), t.suite.clone()));
    report.tables = tables;
    report.recompute_outcome();
}

fn new_table(table: Table, r: &ScenarioResult, first: CellVerdict) -> TableReport {
    let (title, row_heading, column_heading, rows, columns): (&str, &str, &str, Vec<String>, Vec<String>) = match table {
        Table::Restart => (
            "Restart= table (systemd.service(5))",
            "exit cause",
            "Restart=",
            Cause::ALL.iter().map(|c| c.name().to_string()).collect(),
            RestartPolicy::ALL.iter().map(|p| p.to_string()).collect(),
        ),
        Table::Results => (
            "Restart= × Result (systemd.service(5) and service.c)",
            "how the run ended",
            "Restart=",
            Ending::ALL.iter().map(|e| e.name().to_string()).collect(),
            RestartPolicy::ALL.iter().map(|p| p.to_string()).collect(),
        ),
        Table::Type => (
            "Wrong Type= table (seed 003)",
            "program behaves as",
            "Type=",
            TABLE_TYPES.iter().map(|t| t.to_string()).collect(),
            TABLE_TYPES.iter().map(|t| t.to_string()).collect(),
        ),
    };
    TableReport {
        table: table.name().to_string(),
        title: title.to_string(),
        suite: r.suite.clone(),
        systemd: r.systemd.clone(),
        row_heading: row_heading.to_string(),
        column_heading: column_heading.to_string(),
        rows,
        columns,
        method: Vec::new(),
        cells: vec![first],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::systemd::ServiceType;
    use crate::verdict::{Observation, StepLocation};
    use std::path::Path;

    fn result(name: &str, observations: Vec<Observed>) -> ScenarioResult {
        let mut r = ScenarioResult::new(name, "", Path::new("tables/x.toml"), "bookworm", "systemd 252 (252.39-1~deb12u2)");
        r.observations = observations
            .into_iter()
            .enumerate()
            .map(|(i, value)| Observation {
                step: i + 3,
                location: StepLocation { path: "tables/x.toml".into(), line: 10 + i, col: 1 },
                unit: Some("x.cell.service".into()),
                at: Duration::from_secs(1),
                value,
            })
            .collect();
        r
    }

    fn restart(result: Option<&str>, restarted: Option<bool>) -> Observed {
        Observed::Restart {
            result: result.map(str::to_string),
            ended_after: result.map(|_| Duration::from_millis(10)),
            restarted,
            restart_after: restarted.filter(|r| *r).map(|_| Duration::from_millis(100)),
            window: Duration::from_millis(1200),
            window_derivation: "2 × default RestartSec=100ms + 1s = 1.2s, counted from the failure".into(),
            note: None,
        }
    }

    #[test]
    fn an_oom_cell_whose_limit_was_not_enforced_is_unmeasurable_not_judged() {
        let key = CellKey::Result(RestartPolicy::No, Ending::OomKill);
        let mut r = result(&scenario_name(key), vec![restart(None, None), st("active", "running", "success")]);
        assert_eq!(unmeasurable(key, &r), None, "nothing says the limit was not enforced");
        r.timeline.push(crate::observe::Event {
            at: Duration::from_millis(400),
            unit: "x.cell.service".into(),
            kind: crate::observe::EventKind::Output,
            message: "buggy-server: oom: 64 MiB allocated and the process was not killed: no memory limit below that applies; memory freed".into(),
            invocation: None,
        });
        let why = unmeasurable(key, &r).expect("unmeasurable");
        assert!(why.contains("MemoryMax= is not enforced") && why.contains("--fixture vm"), "{why}");
        assert_eq!(unmeasurable(CellKey::Result(RestartPolicy::No, Ending::Signal), &r), None, "only the oom-kill row");
        let mut report = RunReport::new(vec![r], Duration::from_secs(1));
        judge(&mut report, &[(key, scenario_name(key))]);
        assert_eq!(report.results[0].outcome, Outcome::Error);
        assert!(report.tables.is_empty(), "no verdict is invented for it");
    }

    fn st(active: &str, sub: &str, result: &str) -> Observed {
        Observed::State {
            active_state: active.into(),
            sub_state: sub.into(),
            result: result.into(),
            n_restarts: "0".into(),
            exec_main_code: "0".into(),
            exec_main_status: "0".into(),
        }
    }

    #[test]
    fn a_restart_cell_agrees_when_the_observed_restart_matches_the_table() {
        let key = CellKey::Restart(RestartPolicy::OnAbort, Cause::UncleanSignal);
        let r = result("restart-on-abort-unclean-signal", vec![restart(Some("signal"), Some(true)), st("active", "running", "success")]);
        let v = judge_cell(key, &r, 252);
        assert_eq!((v.documented.as_str(), v.observed.as_str(), v.agrees, v.as_expected), ("restart", "restart", true, true));
        assert_eq!((v.documented_mark.as_str(), v.observed_mark.as_str()), ("X", "X"));
        assert_eq!(v.decided_after, Some(Duration::from_millis(110)));
        assert!(v.explanation.is_none());
    }

    #[test]
    fn an_unreviewed_disagreement_is_not_as_expected_and_says_so() {
        let key = CellKey::Restart(RestartPolicy::OnAbort, Cause::Watchdog);
        let r = result("restart-on-abort-watchdog", vec![restart(Some("watchdog"), Some(true))]);
        let v = judge_cell(key, &r, 252);
        assert!(!v.agrees && !v.as_expected);
        assert!(v.explanation.unwrap().starts_with("UNREVIEWED"));
    }

    #[test]
    fn no_end_of_the_run_is_unobserved_not_a_guess() {
        let key = CellKey::Restart(RestartPolicy::No, Cause::Timeout);
        let v = judge_cell(key, &result("restart-no-timeout", vec![restart(None, None)]), 257);
        assert_eq!(v.observed, "unobserved");
        assert!(!v.as_expected);
    }

    #[test]
    fn a_reviewed_deviation_is_as_expected_and_explained() {
        let key = CellKey::Type { program: ServiceType::Oneshot, configured: ServiceType::Simple };
        let r = result("type-oneshot-as-simple", vec![st("inactive", "dead", "success"), Observed::Http { port: 8208, path: "/".into(), answer: "refused".into() }]);
        let v = judge_cell(key, &r, 257);
        assert_eq!((v.documented.as_str(), v.observed.as_str()), ("failed", "dead-success"));
        assert!(!v.agrees && v.as_expected);
        assert!(v.explanation.unwrap().contains("deactivated successfully"));
    }

    #[test]
    fn type_classes_follow_the_outcome_definitions() {
        assert_eq!(classify_type_state("active", "running", "success", true), Ok(TypeOutcome::Works));
        assert_eq!(classify_type_state("activating", "start", "success", true), Ok(TypeOutcome::ActivatingForever));
        assert_eq!(classify_type_state("failed", "failed", "timeout", false), Ok(TypeOutcome::StartTimeout));
        assert_eq!(classify_type_state("failed", "failed", "protocol", false), Ok(TypeOutcome::Protocol));
        assert_eq!(classify_type_state("failed", "failed", "exit-code", false), Ok(TypeOutcome::Failed));
        assert_eq!(classify_type_state("inactive", "dead", "success", false), Ok(TypeOutcome::DeadSuccess));
        assert!(classify_type_state("inactive", "dead", "success", true).is_err(), "a daemon left behind is not dead-success");
    }

    #[test]
    fn a_results_cell_is_judged_by_the_source_rule_and_compared_with_the_documentation() {
        // protocol under on-success: the documentation is silent, the source says no restart.
        let key = CellKey::Result(RestartPolicy::OnSuccess, Ending::Protocol);
        let v = judge_cell(key, &result("results-on-success-protocol", vec![restart(Some("protocol"), Some(false))]), 252);
        assert_eq!((v.documented.as_str(), v.documented_mark.as_str(), v.source.as_deref()), (SILENT, "?", Some("no restart")));
        assert!(!v.agrees && v.as_expected);
        assert!(v.explanation.unwrap().starts_with("The documentation says nothing"));
        // An OOM kill seen as Result signal (cgroup v1) is the reviewed deviation; on-abort then
        // restarts as for any SIGKILL, which is also what the documentation's row says.
        let key = CellKey::Result(RestartPolicy::OnAbort, Ending::OomKill);
        let v = judge_cell(key, &result("results-on-abort-oom-kill", vec![restart(Some("signal"), Some(true))]), 257);
        assert!(v.agrees && v.as_expected, "{v:?}");
        assert_eq!((v.result.as_deref(), v.expected_result.as_deref(), v.source.as_deref()), (Some("signal"), Some("oom-kill"), Some("restart")));
        // Result oom-kill under on-abort must not restart (source), though the documentation says it does.
        let v = judge_cell(key, &result("results-on-abort-oom-kill", vec![restart(Some("oom-kill"), Some(false))]), 257);
        assert!(!v.agrees && !v.as_expected, "oom-kill is not the reviewed Result on 257 here");
        assert!(v.explanation.unwrap().contains("UNREVIEWED: Result oom-kill"));
        // A restart the source rule does not make is never as expected.
        let key = CellKey::Result(RestartPolicy::Always, Ending::ExecCondition);
        let v = judge_cell(key, &result("results-always-exec-condition", vec![restart(Some("exec-condition"), Some(true))]), 252);
        assert!(!v.as_expected);
        assert!(v.explanation.unwrap().contains("UNREVIEWED: the source rule says no restart"));
        // The exit-status lists: forced even under Restart=no, and the documentation agrees.
        let key = CellKey::Result(RestartPolicy::No, Ending::RestartForceExitStatus);
        let v = judge_cell(key, &result("results-no-restart-force-exit-status", vec![restart(Some("exit-code"), Some(true))]), 252);
        assert!(v.agrees && v.as_expected && v.explanation.is_none(), "{v:?}");
        // A refused start keeps the failed run's Result and never restarts.
        let key = CellKey::Result(RestartPolicy::Always, Ending::StartLimitAfterFailure);
        let v = judge_cell(key, &result("results-always-start-limit-after-failure", vec![restart(Some("exit-code"), Some(false))]), 252);
        assert!(v.agrees && v.as_expected, "{v:?}");
        let key = CellKey::Result(RestartPolicy::Always, Ending::StartLimitHit);
        let v = judge_cell(key, &result("results-always-start-limit-hit", vec![restart(Some("exit-code"), Some(false))]), 252);
        assert!(!v.as_expected, "after a clean run the refused start's Result is start-limit-hit");
    }

    #[test]
    fn judging_a_report_builds_tables_and_adds_a_check_per_cell() {
        let a = result("restart-no-clean-exit", vec![restart(Some("success"), Some(false))]);
        let b = result("restart-always-clean-exit", vec![restart(Some("success"), Some(false))]);
        let mut report = RunReport::new(vec![a, b], Duration::from_secs(5));
        let cells = vec![
            (CellKey::Restart(RestartPolicy::No, Cause::CleanExit), "restart-no-clean-exit".to_string()),
            (CellKey::Restart(RestartPolicy::Always, Cause::CleanExit), "restart-always-clean-exit".to_string()),
        ];
        judge(&mut report, &cells);
        assert_eq!(report.tables.len(), 1);
        let t = &report.tables[0];
        assert_eq!(t.cells.len(), 2);
        assert!(t.cell("clean-exit", "no").unwrap().as_expected);
        assert!(!t.cell("clean-exit", "always").unwrap().as_expected, "always must restart after a clean exit");
        assert!(t.method.iter().any(|m| m.contains("1.2s, counted from the failure")), "{:?}", t.method);
        assert_eq!(report.results[1].outcome, Outcome::Fail);
        assert_eq!(report.outcome, Outcome::Fail);
        assert_eq!(report.results[0].checks.len(), 1);
        assert_eq!(report.results[0].checks[0].kind, "table restart");
    }
}
