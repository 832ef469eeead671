//! The documented tables' cells as scenarios: each cell is a scenario file, generated here as
//! TOML and loaded through the same parser and validator as a user's file, then run by the same
//! runner. Nothing about a cell is special to the runner; a user can write (or `--emit`) the
//! same file and replay it with `unitlab run`.
//!
//! How the cells are measured, so that the tables are tested under their own conditions:
//! time is compressed only in the manager (`DefaultTimeoutStartSec=5s` instead of 90 s, so
//! every Type= keeps its own rule: oneshot has no start timeout unless the unit sets one, simple
//! has none for its main process); units set nothing the tables are about (`RestartSec=` stays
//! at systemd's default); faults go through buggy-server's control endpoint once the unit is
//! active, so a restarted server is healthy and the first restart is the one judged; the start
//! rate limit is off in the restart cells (`StartLimitIntervalSec=0`) so it cannot hide a
//! restart; `LimitCORE=0` keeps the watchdog's SIGABRT from writing core files (the Result
//! stays `watchdog` either way: the first failure wins).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::oracle::{self, CellKey, Cause, Ending, TABLE_TYPES};
use crate::scenario::{self, Diagnostic, Scenario};
use crate::systemd::{format_duration, RestartPolicy, ServiceType, Suite};

/// The manager's DefaultTimeoutStartSec= in the cells (systemd's default: 90 s). 5 s, not 3:
/// the Type= cells of the oneshot program need its 1 s of work to end inside the timeout, and
/// with 3 s a loaded machine (CI on 2 cores, 51 cells starting at once on one target next to
/// another test) made sid's oneshot cells read start-timeout twice, the load and not systemd.
pub const COMPRESSED_START_TIMEOUT: Duration = Duration::from_secs(5);
/// WatchdogSec= of the watchdog row.
pub const WATCHDOG_SEC: Duration = Duration::from_secs(1);
/// How long a cell waits for its server to be active, or for its run to end after the fault.
const CELL_DEADLINE: &str = "20s";
/// The same for the results table. Its 14 start-limit cells boot targets of their own per
/// suite (see `results_toml`); on a 2-core host those boots hold up the shared target's queued
/// starts (measured on 252: timeout, protocol and oom cells whose run had not even started
/// 20 s after their scenario began). This bounds how long the lab waits for a run to end; it
/// claims nothing about systemd, whose own timers (5 s start timeout, 1 s watchdog) still
/// decide every Result, and the no-restart window stays derived from RestartSec=.
const RESULTS_DEADLINE: &str = "60s";
/// First port of each table's servers: every cell listens on its own port, so all of them can
/// share one target.
const RESTART_BASE_PORT: u16 = 8100;
const TYPE_BASE_PORT: u16 = 8200;
const RESULTS_BASE_PORT: u16 = 8300;
/// MemoryMax= of the oom-kill row: far below buggy-server's `oom` ceiling (64 MiB), far above
/// what the server needs to start (a few MiB).
pub const OOM_MEMORY_MAX: &str = "16M";
const SERVER: &str = "/usr/local/bin/buggy-server";

/// Which table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Table {
    Restart,
    Type,
    /// Restart= × every way a service can end (Result, clean signals, exit-status lists).
    Results,
}

impl Table {
    pub const ALL: [Table; 3] = [Table::Restart, Table::Type, Table::Results];

    pub fn name(self) -> &'static str {
        match self {
            Table::Restart => "restart",
            Table::Type => "type",
            Table::Results => "results",
        }
    }

    /// The table a cell belongs to.
    pub fn of(key: CellKey) -> Table {
        match key {
            CellKey::Restart(..) => Table::Restart,
            CellKey::Type { .. } => Table::Type,
            CellKey::Result(..) => Table::Results,
        }
    }
}

/// A cell, ready to run: the scenario that measures it and the TOML it was loaded from.
#[derive(Debug, Clone)]
pub struct Cell {
    pub key: CellKey,
    pub scenario: Scenario,
    pub toml: String,
}

impl Cell {
    pub fn table(&self) -> Table {
        Table::of(self.key)
    }
}

/// The scenario name of a cell, unique across the tables.
pub fn scenario_name(key: CellKey) -> String {
    match key {
        CellKey::Restart(policy, cause) => format!("restart-{policy}-{}", cause.name()),
        CellKey::Type { program, configured } => format!("type-{program}-as-{configured}"),
        CellKey::Result(policy, ending) => format!("results-{policy}-{}", ending.name()),
    }
}

/// The fault step (buggy-server's control endpoint) and the server flags of an exit cause.
fn cause_setup(cause: Cause) -> (Option<&'static str>, &'static [&'static str]) {
    match cause {
        Cause::CleanExit => (Some("kind = \"exit\"\ncode = 0"), &[]),
        Cause::UncleanExitCode => (Some("kind = \"exit\"\ncode = 3"), &[]),
        Cause::UncleanSignal => (Some("kind = \"signal\"\nsignal = \"KILL\""), &[]),
        // Never ready: the start job runs into the (compressed) start timeout.
        Cause::Timeout => (None, &["--ready", "never"]),
        Cause::Watchdog => (Some("kind = \"stop-watchdog\""), &["--watchdog", "naive"]),
    }
}

/// Flags that make buggy-server behave as a program of type `program`.
fn program_flags(program: ServiceType) -> &'static [&'static str] {
    match program {
        ServiceType::Forking => &["--shape", "forking", "--ready", "never"],
        ServiceType::Oneshot => &["--shape", "oneshot", "--work", "1s", "--exit-code", "0", "--ready", "never"],
        ServiceType::Notify => &["--ready", "after-listen"],
        _ => &["--ready", "never"],
    }
}

fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

fn exec(port: u16, flags: &[&str]) -> String {
    let mut argv = vec![SERVER.to_string(), "--listen".to_string(), format!("0.0.0.0:{port}")];
    argv.extend(flags.iter().map(|f| f.to_string()));
    toml_list(&argv)
}

/// The head every cell shares: name, suites, snapshot, the compressed manager.
fn head(out: &mut String, key: CellKey, description: &str, suites: &[Suite]) {
    let suites: Vec<String> = suites.iter().map(|s| s.name().to_string()).collect();
    let _ = writeln!(out, "name = {:?}", scenario_name(key));
    let _ = writeln!(out, "description = {description:?}");
    let _ = writeln!(out, "suites = {}", toml_list(&suites));
    let _ = writeln!(out, "snapshot = true\n");
    let _ = writeln!(out, "[manager]\nDefaultTimeoutStartSec = {:?}\n", format_duration(COMPRESSED_START_TIMEOUT));
}

fn restart_toml(policy: RestartPolicy, cause: Cause, port: u16, suites: &[Suite]) -> String {
    let key = CellKey::Restart(policy, cause);
    let (fault, flags) = cause_setup(cause);
    let mut out = String::new();
    head(&mut out, key, &format!("Restart={policy} after {}", cause.name()), suites);
    let _ = writeln!(out, "[[units]]\nname = \"cell\"\nexec = {}\n", exec(port, flags));
    let _ = writeln!(out, "[units.Unit]\nDescription = \"unitlab cell Restart={policy} after {}\"", cause.name());
    // The start rate limit must not hide a restart: the table asks what Restart= decides.
    let _ = writeln!(out, "StartLimitIntervalSec = 0\n");
    let _ = writeln!(out, "[units.Service]\nType = \"notify\"\nRestart = \"{policy}\"\nLimitCORE = 0");
    if cause == Cause::Watchdog {
        let _ = writeln!(out, "WatchdogSec = {:?}", format_duration(WATCHDOG_SEC));
    }
    let _ = writeln!(out, "\n[[steps]]\ndo = \"start\"\nunit = \"cell\"\nno_block = true\n");
    if let Some(fault) = fault {
        let _ = writeln!(out, "[[steps]]\ndo = \"wait-state\"\nunit = \"cell\"\nactive = \"active\"\nwithin = {CELL_DEADLINE:?}\n");
        let _ = writeln!(out, "[[steps]]\ndo = \"fault\"\nunit = \"cell\"\n{fault}\n");
    }
    let _ = writeln!(out, "[[steps]]\ndo = \"observe\"\nwhat = \"restart\"\nunit = \"cell\"\nwithin = {CELL_DEADLINE:?}\n");
    let _ = writeln!(out, "[[steps]]\ndo = \"observe\"\nwhat = \"state\"\nunit = \"cell\"");
    out
}

fn type_toml(program: ServiceType, configured: ServiceType, port: u16, suites: &[Suite]) -> String {
    let key = CellKey::Type { program, configured };
    let mut out = String::new();
    head(&mut out, key, &format!("a {program} program with Type={configured}"), suites);
    let _ = writeln!(out, "[[units]]\nname = \"cell\"\nexec = {}\n", exec(port, program_flags(program)));
    let _ = writeln!(out, "[units.Unit]\nDescription = \"unitlab cell {program} program with Type={configured}\"\n");
    let _ = writeln!(out, "[units.Service]\nType = \"{configured}\"\nLimitCORE = 0\n");
    let _ = writeln!(out, "[[steps]]\ndo = \"start\"\nunit = \"cell\"\nno_block = true\n");
    // After the settle window no start timeout can still fire: "activating" then really is
    // "forever", and a failure has happened.
    let _ = writeln!(out, "[[steps]]\ndo = \"settle\"\nunit = \"cell\"\n");
    let _ = writeln!(out, "[[steps]]\ndo = \"observe\"\nwhat = \"state\"\nunit = \"cell\"\n");
    // Whether any daemon of the program is left: "dead-success" means nothing answers.
    let _ = writeln!(out, "[[steps]]\ndo = \"observe\"\nwhat = \"http\"\nport = {port}\npath = \"/\"\ntimeout = \"1s\"");
    out
}

/// How a results cell ends its server: the control-endpoint fault (once the unit is active),
/// extra server flags, and extra [Service] lines.
struct EndingSetup {
    fault: Option<String>,
    flags: &'static [&'static str],
    service: Vec<(&'static str, String)>,
}

fn ending_setup(ending: Ending) -> EndingSetup {
    let exit = |code: u8| Some(format!("kind = \"exit\"\ncode = {code}"));
    let signal = |sig: &str| Some(format!("kind = \"signal\"\nsignal = \"{sig}\""));
    let none = EndingSetup { fault: None, flags: &[], service: Vec::new() };
    match ending {
        Ending::Success => EndingSetup { fault: exit(0), ..none },
        Ending::ExitCode => EndingSetup { fault: exit(3), ..none },
        Ending::Signal => EndingSetup { fault: signal("KILL"), ..none },
        // A core needs RLIMIT_CORE; where it is written is the host kernel's core_pattern
        // (here "core": a file in the working directory). Each cell gets its own directory:
        // the kernel unlinks an existing core file and creates the new one with O_EXCL, so
        // cells dumping into one directory at the same moment race, and a loser's dump fails
        // (no WCOREDUMP: Result signal). Measured: 3 of 7 cells sharing / lost that race.
        Ending::CoreDump => EndingSetup { fault: signal("SEGV"), service: vec![("LimitCORE", "infinity".into())], ..none },
        Ending::Timeout => EndingSetup { flags: &["--ready", "never"], ..none },
        Ending::Watchdog => EndingSetup {
            fault: Some("kind = \"stop-watchdog\"".into()),
            flags: &["--watchdog", "naive"],
            service: vec![("WatchdogSec", format_duration(WATCHDOG_SEC))],
        },
        // The lab's restart after the run is the second start within the interval: refused.
        // After exit 0 the unit is inactive with Result success, which systemd garbage-collects
        // (losing the start count) unless something references it: the cell's `holder` unit.
        // Exit 3 leaves it failed, and a failed unit stays loaded.
        Ending::StartLimitHit => EndingSetup { fault: exit(0), ..none },
        Ending::StartLimitAfterFailure => EndingSetup { fault: exit(3), ..none },
        Ending::Protocol => EndingSetup { flags: &["--shape", "oneshot", "--work", "1s", "--exit-code", "0", "--ready", "never"], ..none },
        Ending::OomKill => EndingSetup { flags: &["--fault", "oom@after=300ms"], service: vec![("MemoryMax", OOM_MEMORY_MAX.into())], ..none },
        Ending::ExecCondition => EndingSetup { service: vec![("ExecCondition", "/bin/false".into())], ..none },
        Ending::CleanSighup => EndingSetup { fault: signal("HUP"), ..none },
        Ending::CleanSigterm => EndingSetup { fault: signal("TERM"), ..none },
        Ending::CleanSigint => EndingSetup { fault: signal("INT"), ..none },
        Ending::CleanSigpipe => EndingSetup { fault: signal("PIPE"), ..none },
        Ending::SuccessExitStatus => EndingSetup {
            fault: exit(oracle::SUCCESS_EXIT_STATUS),
            service: vec![("SuccessExitStatus", oracle::SUCCESS_EXIT_STATUS.to_string())],
            ..none
        },
        Ending::RestartPreventExitStatus => EndingSetup {
            fault: exit(oracle::RESTART_PREVENT_EXIT_STATUS),
            service: vec![("RestartPreventExitStatus", oracle::RESTART_PREVENT_EXIT_STATUS.to_string())],
            ..none
        },
        Ending::RestartForceExitStatus => EndingSetup {
            fault: exit(oracle::RESTART_FORCE_EXIT_STATUS),
            service: vec![("RestartForceExitStatus", oracle::RESTART_FORCE_EXIT_STATUS.to_string())],
            ..none
        },
    }
}

fn results_toml(policy: RestartPolicy, ending: Ending, port: u16, suites: &[Suite]) -> String {
    let key = CellKey::Result(policy, ending);
    let setup = ending_setup(ending);
    let mut out = String::new();
    head(&mut out, key, &format!("Restart={policy} when {}", ending.how()), suites);
    let limited = matches!(ending, Ending::StartLimitHit | Ending::StartLimitAfterFailure);
    if limited {
        // A target of its own: before v255 (systemd PR #30024) a daemon-reload forgets every
        // unit's start count, and on a shared target another scenario's install may reload
        // (a unit under its own name needs one; when every install and clean-up reloaded,
        // 3 of 7 cells started a second time on 252).
        out = out.replacen("snapshot = true\n", "snapshot = true\nshared_target = false\n", 1);
    }
    let _ = writeln!(out, "[[units]]\nname = \"cell\"\nexec = {}\n", exec(port, setup.flags));
    let _ = writeln!(out, "[units.Unit]\nDescription = \"unitlab cell Restart={policy} after {}\"", ending.name());
    if limited {
        // One start per hour: the lab's second start is refused.
        let _ = writeln!(out, "StartLimitIntervalSec = \"1h\"\nStartLimitBurst = 1\n");
    } else {
        // The start rate limit must not hide a restart: the table asks what Restart= decides.
        let _ = writeln!(out, "StartLimitIntervalSec = 0\n");
    }
    let _ = writeln!(out, "[units.Service]\nType = \"notify\"\nRestart = \"{policy}\"");
    if !setup.service.iter().any(|(k, _)| *k == "LimitCORE") {
        let _ = writeln!(out, "LimitCORE = 0");
    }
    for (k, v) in &setup.service {
        let _ = writeln!(out, "{k} = {v:?}");
    }
    if ending == Ending::CoreDump {
        let dir = format!("unitlab-{}", scenario_name(key));
        let _ = writeln!(out, "StateDirectory = {dir:?}\nWorkingDirectory = \"/var/lib/{dir}\"");
    }
    if ending == Ending::StartLimitHit {
        // Keeps the cell loaded after a clean exit (a unit another unit wants is not garbage).
        let _ = writeln!(out, "\n[[units]]\nname = \"holder\"\nexec = [\"/bin/sleep\", \"infinity\"]\n\n[units.Unit]\nWants = \"cell.service\"");
    }
    let _ = writeln!(out, "\n[[steps]]\ndo = \"start\"\nunit = \"cell\"\nno_block = true\n");
    if let Some(fault) = &setup.fault {
        let _ = writeln!(out, "[[steps]]\ndo = \"wait-state\"\nunit = \"cell\"\nactive = \"active\"\nwithin = {RESULTS_DEADLINE:?}\n");
        if ending == Ending::StartLimitHit {
            // The holder's Wants= finds the cell active: no second start of the cell.
            let _ = writeln!(out, "[[steps]]\ndo = \"start\"\nunit = \"holder\"\n");
        }
        let _ = writeln!(out, "[[steps]]\ndo = \"fault\"\nunit = \"cell\"\n{fault}\n");
    }
    if limited {
        let ended = if ending == Ending::StartLimitHit { "Deactivated successfully" } else { "Failed with result 'exit-code'" };
        let _ = writeln!(out, "[[steps]]\ndo = \"wait-journal\"\nunit = \"cell\"\ncontains = {ended:?}\nwithin = {RESULTS_DEADLINE:?}\n");
        let _ = writeln!(out, "[[steps]]\ndo = \"restart\"\nunit = \"cell\"\n");
    }
    let _ = writeln!(out, "[[steps]]\ndo = \"observe\"\nwhat = \"restart\"\nunit = \"cell\"\nwithin = {RESULTS_DEADLINE:?}\n");
    let _ = writeln!(out, "[[steps]]\ndo = \"observe\"\nwhat = \"state\"\nunit = \"cell\"");
    out
}

/// Every cell of `tables`, for `suites`, as TOML text in table order.
pub fn cell_files(tables: &[Table], suites: &[Suite]) -> Vec<(CellKey, String)> {
    let mut out = Vec::new();
    if tables.contains(&Table::Restart) {
        for (ci, cause) in Cause::ALL.iter().enumerate() {
            for (pi, policy) in RestartPolicy::ALL.iter().enumerate() {
                let port = RESTART_BASE_PORT + (ci * RestartPolicy::ALL.len() + pi) as u16;
                out.push((CellKey::Restart(*policy, *cause), restart_toml(*policy, *cause, port, suites)));
            }
        }
    }
    if tables.contains(&Table::Type) {
        for (ri, program) in TABLE_TYPES.iter().enumerate() {
            for (ci, configured) in TABLE_TYPES.iter().enumerate() {
                let port = TYPE_BASE_PORT + (ri * TABLE_TYPES.len() + ci) as u16;
                out.push((CellKey::Type { program: *program, configured: *configured }, type_toml(*program, *configured, port, suites)));
            }
        }
    }
    if tables.contains(&Table::Results) {
        for (ei, ending) in Ending::ALL.iter().enumerate() {
            for (pi, policy) in RestartPolicy::ALL.iter().enumerate() {
                let port = RESULTS_BASE_PORT + (ei * RestartPolicy::ALL.len() + pi) as u16;
                out.push((CellKey::Result(*policy, *ending), results_toml(*policy, *ending, port, suites)));
            }
        }
    }
    out
}

/// A generated cell that does not load: a bug of the lab, reported with the file's diagnostics.
#[derive(Debug, thiserror::Error)]
#[error("the generated scenario of cell {name} does not load:\n{diagnostics}")]
pub struct CellError {
    pub name: String,
    pub diagnostics: String,
}

/// Every cell of `tables` as a loaded scenario.
pub fn cells(tables: &[Table], suites: &[Suite]) -> Result<Vec<Cell>, CellError> {
    cell_files(tables, suites)
        .into_iter()
        .map(|(key, toml)| {
            let name = scenario_name(key);
            let path = Path::new("tables").join(format!("{name}.toml"));
            match scenario::parse_str(&path, &toml) {
                Ok((scenario, _)) => Ok(Cell { key, scenario, toml }),
                Err(diags) => Err(CellError { name, diagnostics: render(&diags) }),
            }
        })
        .collect()
}

fn render(diags: &[Diagnostic]) -> String {
    scenario::render_all(diags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Fault, Observe, StepKind};

    #[test]
    fn every_cell_loads_without_a_warning_and_has_its_own_name_and_port() {
        let files = cell_files(&Table::ALL, &Suite::ALL);
        assert_eq!(files.len(), 35 + 16 + 126);
        let mut names = Vec::new();
        let mut ports = Vec::new();
        for (key, toml) in &files {
            let (s, warnings) = scenario::parse_str(Path::new("cell.toml"), toml).unwrap_or_else(|d| panic!("{key:?}:\n{}", render(&d)));
            assert!(warnings.is_empty(), "{key:?}: {}", render(&warnings));
            names.push(s.name.clone());
            ports.extend(crate::run::claims(&s));
        }
        names.sort();
        names.dedup();
        ports.sort();
        ports.dedup();
        assert_eq!((names.len(), ports.len()), (177, 177));
        assert_eq!(cells(&Table::ALL, &[Suite::Bookworm]).unwrap().len(), 177);
    }

    #[test]
    fn restart_cells_vary_only_restart_and_the_cause() {
        let all = cells(&[Table::Restart], &Suite::ALL).unwrap();
        let c = all.iter().find(|c| c.key == CellKey::Restart(RestartPolicy::OnAbort, Cause::Watchdog)).unwrap();
        let unit = &c.scenario.units()[0].file;
        assert_eq!(unit.service_value("Restart"), Some("on-abort"));
        assert_eq!(unit.service_value("WatchdogSec"), Some("1s"));
        assert!(unit.service_value("ExecStart").unwrap().contains("--watchdog naive"));
        assert!(unit.service_value("RestartSec").is_none(), "cells keep systemd's default RestartSec");
        assert!(unit.service_value("TimeoutStartSec").is_none(), "time is compressed in the manager only");
        assert_eq!(c.scenario.manager.value("DefaultTimeoutStartSec"), Some("5s"));
        let kinds: Vec<&str> = c.scenario.steps.iter().map(|s| s.kind.word()).collect();
        assert_eq!(kinds, ["start", "wait-state", "fault", "observe", "observe"]);
        assert!(matches!(&c.scenario.steps[2].kind, StepKind::Fault(Fault::Control { targets, .. }) if targets[0].1 == 8100 + 4 * 7 + 5));
        match &c.scenario.steps[3].kind {
            StepKind::Observe(Observe::Restart { window, .. }) => assert_eq!(*window, Duration::from_millis(1200), "2 x RestartSec=100ms + 1s"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn results_cells_set_only_what_their_ending_needs() {
        let all = cells(&[Table::Results], &Suite::ALL).unwrap();
        assert_eq!(all.len(), 7 * 18);
        let cell = |p, e| all.iter().find(|c| c.key == CellKey::Result(p, e)).unwrap();
        let force = cell(RestartPolicy::No, Ending::RestartForceExitStatus);
        let unit = &force.scenario.units()[0].file;
        assert_eq!(unit.service_value("RestartForceExitStatus"), Some("44"));
        assert_eq!(unit.service_value("Restart"), Some("no"));
        assert!(unit.service_value("SuccessExitStatus").is_none() && unit.service_value("RestartPreventExitStatus").is_none());
        assert!(matches!(&force.scenario.steps[2].kind, StepKind::Fault(Fault::Control { .. })));
        let core = cell(RestartPolicy::OnAbort, Ending::CoreDump).scenario.units()[0].file.clone();
        assert_eq!(core.service_value("LimitCORE"), Some("infinity"));
        let oom = cell(RestartPolicy::OnAbort, Ending::OomKill).scenario.units()[0].file.clone();
        assert_eq!(oom.service_value("MemoryMax"), Some(OOM_MEMORY_MAX));
        assert!(oom.service_value("ExecStart").unwrap().contains("--fault oom@after=300ms"));
        let limited = cell(RestartPolicy::Always, Ending::StartLimitAfterFailure);
        assert_eq!(limited.scenario.units()[0].file.unit_value("StartLimitBurst"), Some("1"));
        let kinds: Vec<&str> = limited.scenario.steps.iter().map(|s| s.kind.word()).collect();
        assert_eq!(kinds, ["start", "wait-state", "fault", "wait-journal", "restart", "observe", "observe"]);
        let held = cell(RestartPolicy::No, Ending::StartLimitHit);
        assert_eq!(held.scenario.units().len(), 2, "a holder keeps the cell loaded after its clean exit");
        let kinds: Vec<&str> = held.scenario.steps.iter().map(|s| s.kind.word()).collect();
        assert_eq!(kinds, ["start", "wait-state", "start", "fault", "wait-journal", "restart", "observe", "observe"]);
        let skip = cell(RestartPolicy::Always, Ending::ExecCondition);
        let kinds: Vec<&str> = skip.scenario.steps.iter().map(|s| s.kind.word()).collect();
        assert_eq!(kinds, ["start", "observe", "observe"], "nothing to wait for: the unit never becomes active");
    }

    #[test]
    fn type_cells_settle_past_the_compressed_start_timeout() {
        let all = cells(&[Table::Type], &Suite::ALL).unwrap();
        let c = all.iter().find(|c| c.key == CellKey::Type { program: ServiceType::Simple, configured: ServiceType::Oneshot }).unwrap();
        match &c.scenario.steps[1].kind {
            StepKind::Settle { window, .. } => assert_eq!(*window, COMPRESSED_START_TIMEOUT + Duration::from_secs(1)),
            other => panic!("{other:?}"),
        }
        assert_eq!(c.scenario.units()[0].file.service_value("Type"), Some("oneshot"));
    }
}
