//! The conformance matrices as plans: one unit per cell of the Restart= and wrong-Type=
//! tables, each running the real buggy server, and the rules that turn what was observed into
//! a cell result. Synchronous; `conformance` runs the plans on a target.
//!
//! Time is compressed only through the manager: `DefaultTimeoutStartSec=` drops from 90 s to
//! [`COMPRESSED_START_TIMEOUT`], so every Type= keeps its own rule (oneshot has no start
//! timeout unless the unit sets one; simple has none for its main process). Units set nothing
//! that the tables are about.

use std::time::Duration;

use crate::tables::oracle::{self, CellKey, Cause, Outcome, RestartPolicy, ServiceType};
use crate::systemd::unit::{exec_line, Directive, UnitFile};

/// The manager's DefaultTimeoutStartSec= in matrix targets (systemd's default: 90 s).
pub const COMPRESSED_START_TIMEOUT: Duration = Duration::from_secs(3);
/// WatchdogSec= of the watchdog row.
pub const WATCHDOG_SEC: Duration = Duration::from_secs(1);
/// systemd's DefaultRestartSec=, which the restart cells keep.
pub const DEFAULT_RESTART_SEC: Duration = Duration::from_millis(100);

/// How long a restart cell is watched for a restart after its failure: the unit's own
/// RestartSec= plus a margin for a loaded machine. A restart is scheduled RestartSec after the
/// failure, so nothing can come later than this.
pub fn no_restart_window() -> Duration {
    DEFAULT_RESTART_SEC + Duration::from_millis(1500)
}

/// How long a type cell is watched from its start: past the compressed start timeout, so that
/// a cell still activating at the end is one to which no start timeout applies.
pub fn type_window() -> Duration {
    COMPRESSED_START_TIMEOUT + Duration::from_millis(1500)
}

/// Manager settings of a matrix target.
pub fn manager_settings() -> Vec<(String, String)> {
    vec![(
        "DefaultTimeoutStartSec".to_string(),
        format!("{}ms", COMPRESSED_START_TIMEOUT.as_millis()),
    )]
}

const SERVER: &str = "/usr/local/bin/buggy-server";

/// Which table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Table {
    Restart,
    Type,
}

impl Table {
    pub fn name(self) -> &'static str {
        match self {
            Table::Restart => "restart",
            Table::Type => "type",
        }
    }
}

/// A fault the lab injects through the buggy server's control endpoint once the cell is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlFault {
    /// Query string of `POST /control/fault`.
    pub query: &'static str,
    pub describe: &'static str,
}

/// One cell, ready to install.
#[derive(Debug, Clone)]
pub struct CellPlan {
    pub key: CellKey,
    pub unit_name: String,
    pub unit: UnitFile,
    pub port: u16,
    /// None: the cause is in the start itself (never ready) or the cell is a type cell.
    pub fault: Option<ControlFault>,
}

impl CellPlan {
    pub fn table(&self) -> Table {
        match self.key {
            CellKey::Restart(..) => Table::Restart,
            CellKey::Type { .. } => Table::Type,
        }
    }

    /// Whether the lab waits for the unit to be started before injecting the fault.
    pub fn waits_for_start(&self) -> bool {
        self.fault.is_some()
    }
}

fn argv(port: u16, extra: &[&str]) -> String {
    let mut v: Vec<String> = vec![SERVER.into(), "--listen".into(), format!("127.0.0.1:{port}")];
    v.extend(extra.iter().map(|s| s.to_string()));
    exec_line(&v)
}

/// The fault and server flags that produce each exit cause.
fn cause_setup(cause: Cause) -> (Option<ControlFault>, Vec<&'static str>) {
    match cause {
        Cause::CleanExit => (Some(ControlFault { query: "kind=exit&code=0", describe: "the server exits 0" }), vec![]),
        Cause::UncleanExitCode => (Some(ControlFault { query: "kind=exit&code=3", describe: "the server exits 3" }), vec![]),
        Cause::UncleanSignal => (Some(ControlFault { query: "kind=signal&signal=KILL", describe: "the server is killed by SIGKILL" }), vec![]),
        // Never ready: the start job runs into the (compressed) start timeout.
        Cause::Timeout => (None, vec!["--ready", "never"]),
        Cause::Watchdog => (
            Some(ControlFault { query: "kind=stop-watchdog", describe: "the server stops its watchdog pings" }),
            vec!["--watchdog", "naive"],
        ),
    }
}

/// The 35 cells of the Restart= table.
pub fn restart_cells(base_port: u16) -> Vec<CellPlan> {
    let mut cells = Vec::new();
    for (ci, cause) in Cause::ALL.iter().enumerate() {
        for (pi, policy) in RestartPolicy::ALL.iter().enumerate() {
            let port = base_port + (ci * RestartPolicy::ALL.len() + pi) as u16;
            let (fault, flags) = cause_setup(*cause);
            let mut service = vec![
                Directive::new("Type", "notify"),
                Directive::new("ExecStart", argv(port, &flags)),
                Directive::new("Restart", policy.name()),
                // No core files from the SIGABRT of a watchdog kill: the Result stays
                // "watchdog" either way (the first failure wins), and cores only cost disk.
                Directive::new("LimitCORE", "0"),
            ];
            if *cause == Cause::Watchdog {
                service.push(Directive::new("WatchdogSec", format!("{}ms", WATCHDOG_SEC.as_millis())));
            }
            cells.push(CellPlan {
                key: CellKey::Restart(*policy, *cause),
                unit_name: format!("ul-restart-{}-{}.service", policy.name(), cause.name()),
                unit: UnitFile {
                    unit: vec![
                        Directive::new("Description", format!("unitlab cell Restart={} after {}", policy.name(), cause.name())),
                        // The start rate limit must not hide a restart: the matrix asks what
                        // Restart= decides, not what the limiter allows.
                        Directive::new("StartLimitIntervalSec", "0"),
                    ],
                    service,
                    install: vec![],
                },
                port,
                fault,
            });
        }
    }
    cells
}

/// Flags that make the buggy server behave as a program of `program` type.
fn program_flags(program: ServiceType) -> Vec<&'static str> {
    match program {
        ServiceType::Simple => vec!["--ready", "never"],
        ServiceType::Forking => vec!["--shape", "forking", "--ready", "never"],
        ServiceType::Oneshot => vec!["--shape", "oneshot", "--work", "1s", "--exit-code", "0", "--ready", "never"],
        ServiceType::Notify => vec!["--ready", "after-listen"],
    }
}

/// The 16 cells of the wrong-Type= table.
pub fn type_cells(base_port: u16) -> Vec<CellPlan> {
    let mut cells = Vec::new();
    for (ri, program) in ServiceType::ALL.iter().enumerate() {
        for (ci, configured) in ServiceType::ALL.iter().enumerate() {
            let port = base_port + (ri * ServiceType::ALL.len() + ci) as u16;
            cells.push(CellPlan {
                key: CellKey::Type { program: *program, configured: *configured },
                unit_name: format!("ul-type-{}-as-{}.service", program.name(), configured.name()),
                unit: UnitFile {
                    unit: vec![Directive::new(
                        "Description",
                        format!("unitlab cell {} program with Type={}", program.name(), configured.name()),
                    )],
                    service: vec![
                        Directive::new("Type", configured.name()),
                        Directive::new("ExecStart", argv(port, &program_flags(*program))),
                        Directive::new("LimitCORE", "0"),
                    ],
                    install: vec![],
                },
                port,
                fault: None,
            });
        }
    }
    cells
}

/// Classify a type cell from its state at the end of the window.
pub fn classify_type(active: &str, sub: &str, result: &str, leftover_processes: usize) -> Result<Outcome, String> {
    match (active, result) {
        ("active", _) if sub == "running" => Ok(Outcome::Works),
        ("activating", _) => Ok(Outcome::ActivatingForever),
        ("failed", "timeout") => Ok(Outcome::StartTimeout),
        ("failed", "protocol") => Ok(Outcome::Protocol),
        ("failed", _) => Ok(Outcome::Failed),
        ("inactive", "success") if leftover_processes == 0 => Ok(Outcome::DeadSuccess),
        _ => Err(format!(
            "ActiveState={active} SubState={sub} Result={result} with {leftover_processes} process(es) left: no outcome class fits"
        )),
    }
}

/// Documented value of a cell as the string the deviations list uses.
pub fn documented_value(key: CellKey) -> String {
    match key {
        CellKey::Restart(p, c) => restart_word(oracle::restart_documented(p, c)).to_string(),
        CellKey::Type { program, configured } => oracle::type_documented(program, configured).0.name().to_string(),
    }
}

pub fn restart_word(restarts: bool) -> &'static str {
    if restarts { "restart" } else { "no restart" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cell_has_its_own_unit_and_port() {
        let mut cells = restart_cells(8100);
        cells.extend(type_cells(8200));
        assert_eq!(cells.len(), 35 + 16);
        let mut names: Vec<&str> = cells.iter().map(|c| c.unit_name.as_str()).collect();
        let mut ports: Vec<u16> = cells.iter().map(|c| c.port).collect();
        names.sort();
        names.dedup();
        ports.sort();
        ports.dedup();
        assert_eq!((names.len(), ports.len()), (51, 51));
    }

    #[test]
    fn restart_cells_vary_only_restart_and_the_cause() {
        let cells = restart_cells(8100);
        let c = cells.iter().find(|c| c.key == CellKey::Restart(RestartPolicy::OnAbort, Cause::Watchdog)).unwrap();
        assert_eq!(c.unit.service_value("Restart"), Some("on-abort"));
        assert_eq!(c.unit.service_value("WatchdogSec"), Some("1000ms"));
        assert!(c.unit.service_value("ExecStart").unwrap().contains("--watchdog naive"));
        assert!(c.unit.service_value("RestartSec").is_none(), "cells keep systemd's default RestartSec");
        assert!(c.unit.service_value("TimeoutStartSec").is_none(), "time is compressed in the manager only");
    }

    #[test]
    fn classification_follows_the_outcome_definitions() {
        assert_eq!(classify_type("active", "running", "success", 1), Ok(Outcome::Works));
        assert_eq!(classify_type("activating", "start", "success", 1), Ok(Outcome::ActivatingForever));
        assert_eq!(classify_type("failed", "failed", "timeout", 0), Ok(Outcome::StartTimeout));
        assert_eq!(classify_type("failed", "failed", "protocol", 0), Ok(Outcome::Protocol));
        assert_eq!(classify_type("failed", "failed", "exit-code", 0), Ok(Outcome::Failed));
        assert_eq!(classify_type("inactive", "dead", "success", 0), Ok(Outcome::DeadSuccess));
        assert!(classify_type("inactive", "dead", "success", 2).is_err(), "a daemon left behind is not dead-success");
    }
}
