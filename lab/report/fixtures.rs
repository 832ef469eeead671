//! Small hand-built reports for the reporters' unit tests: one passing, one failing with
//! journal context, one lab error, spread over both suites. The failing scenario's timeline
//! holds every event kind so the JSON schema test sees every field.

use std::path::PathBuf;
use std::time::Duration;

use crate::observe::{Event, EventKind};
use crate::verdict::{CellVerdict, CheckResult, Observation, Observed, Outcome, RunReport, ScenarioResult, StepLocation, TableReport, Timing};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn ev(at: u64, unit: &str, kind: EventKind, message: &str) -> Event {
    Event { at: ms(at), unit: unit.into(), kind, message: message.into(), invocation: None }
}

fn check(step: usize, line: usize, kind: &str, expected: &str, observed: &str, at: u64, journal: &[&str]) -> CheckResult {
    CheckResult {
        step,
        location: StepLocation { path: PathBuf::from("scenarios/restart/on-failure.toml"), line, col: 1 },
        kind: kind.into(),
        expected: expected.into(),
        observed: observed.into(),
        passed: journal.is_empty() && expected == observed,
        at: ms(at),
        journal_context: journal.iter().map(|s| s.to_string()).collect(),
    }
}

pub(crate) fn passing() -> ScenarioResult {
    ScenarioResult {
        name: "restart-on-failure".into(),
        description: "Restart=on-failure brings the server back after exit 3".into(),
        path: PathBuf::from("scenarios/restart/on-failure.toml"),
        suite: "bookworm".into(),
        fixture: "container".into(),
        systemd: "systemd 252 (252.36-1~deb12u1)".into(),
        outcome: Outcome::Pass,
        error: None,
        warnings: vec![],
        checks: vec![
            check(2, 12, "expect-restart", "restart within 2s", "restart within 2s", 2_300, &[]),
            check(3, 16, "expect", "ActiveState=active", "ActiveState=active", 2_500, &[]),
        ],
        timings: vec![
            Timing { name: "time to detect".into(), unit: "web.service".into(), value: ms(4) },
            Timing { name: "time to recover".into(), unit: "web.service".into(), value: ms(1_204) },
        ],
        units: vec![("web.service".into(), "[Service]\nExecStart=/usr/local/bin/buggy-server\nRestart=on-failure\n".into())],
        timeline: vec![
            ev(0, "web.service", EventKind::Lab { action: "systemctl start".into() }, "unitlab: systemctl start"),
            ev(10, "web.service", EventKind::Starting, "Starting web.service - buggy server..."),
            ev(40, "web.service", EventKind::Started, "Started web.service - buggy server."),
            ev(1_000, "web.service", EventKind::Lab { action: "fault: exit 3".into() }, "unitlab: fault: exit 3"),
            ev(1_004, "web.service", EventKind::MainExited { code: "exited".into(), status: "3".into() }, "web.service: Main process exited, code=exited, status=3/NOTIMPLEMENTED"),
            ev(1_005, "web.service", EventKind::Failed { result: "exit-code".into() }, "web.service: Failed with result 'exit-code'."),
            ev(2_105, "web.service", EventKind::RestartScheduled { n: 1 }, "web.service: Scheduled restart job, restart counter is at 1."),
            ev(2_110, "web.service", EventKind::Starting, "Starting web.service - buggy server..."),
            ev(2_208, "web.service", EventKind::Started, "Started web.service - buggy server."),
        ],
        observations: vec![],
        snapshot: None,
        duration: ms(3_210),
    }
}

pub(crate) fn failing() -> ScenarioResult {
    let journal = [
        "web.service: Watchdog timeout (limit 2s)!",
        "web.service: Killing process 212 (buggy-server) with signal SIGABRT.",
        "web.service: Failed with result 'watchdog'.",
    ];
    ScenarioResult {
        name: "watchdog-hang".into(),
        description: "A hung server is killed by the watchdog <and> restarted \"quickly\"".into(),
        path: PathBuf::from("scenarios/watchdog/hang.toml"),
        suite: "trixie".into(),
        fixture: "container".into(),
        systemd: "systemd 257 (257.9-1~deb13u1)".into(),
        outcome: Outcome::Fail,
        error: None,
        warnings: vec![
            "/etc/systemd/system/web.service:7: Unknown key name 'RestartSecs' in section 'Service', ignoring.".into(),
        ],
        checks: vec![
            check(2, 9, "expect", "ActiveState=active", "ActiveState=active", 900, &[]),
            CheckResult {
                location: StepLocation { path: PathBuf::from("scenarios/watchdog/hang.toml"), line: 14, col: 1 },
                ..check(4, 14, "expect-restart", "restart within 2s", "no restart in 2s (Result=watchdog)", 6_100, &journal)
            },
            CheckResult {
                location: StepLocation { path: PathBuf::from("scenarios/watchdog/hang.toml"), line: 18, col: 1 },
                ..check(5, 18, "probe", "GET /health -> 200", "connection refused", 6_200, &["web.service: Stopped web.service."])
            },
        ],
        timings: vec![Timing { name: "time to detect".into(), unit: "web.service".into(), value: ms(3_012) }],
        units: vec![
            ("web.service".into(), "[Service]\nType=notify\nWatchdogSec=2s\nRestartSecs=1\n".into()),
            ("pinger.service".into(), "[Service]\nExecStart=/usr/local/bin/pinger\n".into()),
        ],
        timeline: vec![
            ev(5, "web.service", EventKind::Starting, "Starting web.service..."),
            ev(30, "web.service", EventKind::Started, "Started web.service."),
            ev(35, "pinger.service", EventKind::Starting, "Starting pinger.service..."),
            ev(60, "pinger.service", EventKind::Output, "pinger: GET /health <200 & \"ok\">"),
            ev(70, "pinger.service", EventKind::Manager, "pinger.service: Consumed 12ms CPU time."),
            ev(80, "pinger.service", EventKind::StartFailed, "Failed to start pinger.service."),
            ev(1_000, "web.service", EventKind::Lab { action: "fault: hang".into() }, "unitlab: fault: hang"),
            ev(3_012, "web.service", EventKind::WatchdogTimeout, journal[0]),
            ev(3_020, "web.service", EventKind::MainExited { code: "dumped".into(), status: "ABRT".into() }, "web.service: Main process exited, code=dumped, status=6/ABRT"),
            ev(3_021, "web.service", EventKind::Failed { result: "watchdog".into() }, journal[2]),
            ev(5_000, "web.service", EventKind::StartTimeout, "web.service: start operation timed out. Terminating."),
            ev(5_100, "web.service", EventKind::StartLimitHit, "web.service: Start request repeated too quickly."),
            ev(5_200, "web.service", EventKind::Deactivated, "web.service: Deactivated successfully."),
            ev(5_250, "web.service", EventKind::Skipped { result: "exec-condition".into() }, "web.service: Skipped due to 'exec-condition'."),
            ev(5_300, "web.service", EventKind::Stopping, "Stopping web.service..."),
            ev(5_400, "web.service", EventKind::Stopped, "Stopped web.service."),
            ev(5_500, "web.service", EventKind::RestartScheduled { n: 1 }, "web.service: Scheduled restart job, restart counter is at 1."),
        ],
        observations: vec![
            observation(6, 22, ms(3_100), Observed::Restart {
                result: Some("watchdog".into()),
                ended_after: Some(ms(2_021)),
                restarted: Some(false),
                restart_after: None,
                window: ms(1_200),
                window_derivation: "2 × default RestartSec=100ms + 1s = 1.2s, counted from the failure".into(),
                note: None,
            }),
            observation(7, 26, ms(3_200), Observed::State {
                active_state: "failed".into(),
                sub_state: "failed".into(),
                result: "watchdog".into(),
                n_restarts: "0".into(),
                exec_main_code: "3".into(),
                exec_main_status: "6".into(),
            }),
            observation(8, 30, ms(3_300), Observed::Http { port: 8080, path: "/health".into(), answer: "refused".into() }),
        ],
        snapshot: Some("web.service: Watchdog timeout (limit 2s)!\n".into()),
        duration: ms(8_400),
    }
}

pub(crate) fn erroring() -> ScenarioResult {
    ScenarioResult {
        name: "slow-boot".into(),
        description: String::new(),
        path: PathBuf::from("scenarios/type/slow-boot.toml"),
        suite: "trixie".into(),
        fixture: "container".into(),
        systemd: "systemd 257 (257.9-1~deb13u1)".into(),
        outcome: Outcome::Error,
        error: Some("waiting for web.service to be active: timed out after 30s\ncontainer unitlab-trixie-3f2a".into()),
        warnings: vec![],
        checks: vec![],
        timings: vec![],
        units: vec![],
        timeline: vec![],
        observations: vec![],
        snapshot: None,
        duration: ms(30_050),
    }
}

fn observation(step: usize, line: usize, at: Duration, value: Observed) -> Observation {
    Observation {
        step,
        location: StepLocation { path: PathBuf::from("scenarios/watchdog/hang.toml"), line, col: 1 },
        unit: Some("web.service".into()),
        at,
        value,
    }
}

fn cell(row: &str, column: &str, documented: bool, observed: bool, explanation: Option<&str>) -> CellVerdict {
    let word = |r: bool| if r { "restart" } else { "no restart" };
    let mark = |r: bool| if r { "X" } else { "." };
    CellVerdict {
        row: row.into(),
        column: column.into(),
        scenario: format!("restart-{column}-{row}"),
        documented: word(documented).into(),
        observed: word(observed).into(),
        documented_mark: mark(documented).into(),
        observed_mark: mark(observed).into(),
        agrees: documented == observed,
        as_expected: documented == observed,
        explanation: explanation.map(str::to_string),
        detail: "the run ended with Result=watchdog; ActiveState=active SubState=running Result=success NRestarts=1".into(),
        decided_after: Some(ms(1_350)),
        result: Some("watchdog".into()),
        expected_result: Some("watchdog".into()),
        source: Some(word(documented).into()),
    }
}

/// A two-cell Restart= table with one unreviewed disagreement.
pub(crate) fn table() -> TableReport {
    TableReport {
        table: "restart".into(),
        title: "Restart= table (systemd.service(5))".into(),
        suite: "trixie".into(),
        systemd: "systemd 257 (257.9-1~deb13u1)".into(),
        row_heading: "exit cause".into(),
        column_heading: "Restart=".into(),
        rows: vec!["watchdog".into()],
        columns: vec!["no".into(), "on-abort".into()],
        method: vec!["\"no restart\" means nothing was scheduled within 1.2s".into()],
        cells: vec![
            cell("watchdog", "no", false, false, None),
            cell("watchdog", "on-abort", false, true, Some("UNREVIEWED: no reviewed deviation covers this cell on systemd 257.")),
        ],
    }
}

/// The report of a table run: the scenarios and the table judged from them.
pub(crate) fn table_report() -> RunReport {
    let mut report = report();
    report.tables = vec![table()];
    report
}

pub(crate) fn report() -> RunReport {
    RunReport::new(vec![passing(), failing(), erroring()], ms(41_660))
}
