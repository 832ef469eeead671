//! The documented tables, exactly as documented, and the reviewed list of where systemd was
//! measured to disagree with them: the Restart= table of systemd.service(5), the wrong-Type=
//! table, and what the documentation says (or does not say) about each way a service can end
//! under each Restart= (the results table; the rule in systemd's source is `rule`).
//!
//! The tables are claims to test, never answers: nothing in the lab derives an observation
//! from them. A disagreement is recorded in [`DEVIATIONS`] with the systemd versions it was
//! measured on and the reason (from systemd's source), and is shown next to the table; the
//! tables themselves are never edited to match.

use crate::systemd::{RestartPolicy, ServiceResult, ServiceType};

/// Exit causes of the Restart= table (rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    CleanExit,
    UncleanExitCode,
    UncleanSignal,
    Timeout,
    Watchdog,
}

impl Cause {
    pub const ALL: [Cause; 5] = [Cause::CleanExit, Cause::UncleanExitCode, Cause::UncleanSignal, Cause::Timeout, Cause::Watchdog];

    pub fn name(self) -> &'static str {
        match self {
            Cause::CleanExit => "clean-exit",
            Cause::UncleanExitCode => "unclean-exit-code",
            Cause::UncleanSignal => "unclean-signal",
            Cause::Timeout => "timeout",
            Cause::Watchdog => "watchdog",
        }
    }

    /// The row heading as the documentation writes it.
    pub fn documented_label(self) -> &'static str {
        match self {
            Cause::CleanExit => "Clean exit code or signal",
            Cause::UncleanExitCode => "Unclean exit code",
            Cause::UncleanSignal => "Unclean signal",
            Cause::Timeout => "Timeout",
            Cause::Watchdog => "Watchdog",
        }
    }
}

/// What a Restart= option is for, in a sentence (for the demo).
pub fn restart_purpose(policy: RestartPolicy) -> &'static str {
    match policy {
        RestartPolicy::No => "never restart: the service stays down until someone starts it",
        RestartPolicy::Always => "restart whatever the reason, even after a clean exit",
        RestartPolicy::OnSuccess => "restart only after a clean exit (a job that should run again)",
        RestartPolicy::OnFailure => "restart after any failure: unclean exit code, signal, timeout, watchdog",
        RestartPolicy::OnAbnormal => "restart after signals, timeouts and watchdog kills, but not after an exit code",
        RestartPolicy::OnAbort => "restart only after an uncaught signal (a crash)",
        RestartPolicy::OnWatchdog => "restart only when the watchdog timed out",
    }
}

/// The Restart= table of systemd.service(5) (and seed 000): does `policy` restart after
/// `cause`?
pub fn restart_documented(policy: RestartPolicy, cause: Cause) -> bool {
    use Cause::*;
    use RestartPolicy::*;
    match policy {
        No => false,
        Always => true,
        OnSuccess => cause == CleanExit,
        OnFailure => cause != CleanExit,
        OnAbnormal => matches!(cause, UncleanSignal | Timeout | Watchdog),
        OnAbort => cause == UncleanSignal,
        OnWatchdog => cause == Watchdog,
    }
}

/// The rows of the results table: every way a service can end that systemd tells apart, by
/// the Result it records, plus the endings the Restart= documentation singles out (the four
/// clean signals, and the exit-status lists that add to or override Restart=).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ending {
    Success,
    ExitCode,
    Signal,
    CoreDump,
    Timeout,
    Watchdog,
    StartLimitHit,
    /// A start refused by the rate limit right after a failed run: it keeps that run's Result.
    StartLimitAfterFailure,
    Protocol,
    OomKill,
    ExecCondition,
    CleanSighup,
    CleanSigterm,
    CleanSigint,
    CleanSigpipe,
    SuccessExitStatus,
    RestartPreventExitStatus,
    RestartForceExitStatus,
}

/// The exit code the exit-status rows use: listed in SuccessExitStatus=,
/// RestartPreventExitStatus= or RestartForceExitStatus= of the cell's unit, and in nothing else.
pub const SUCCESS_EXIT_STATUS: u8 = 42;
pub const RESTART_PREVENT_EXIT_STATUS: u8 = 43;
pub const RESTART_FORCE_EXIT_STATUS: u8 = 44;

impl Ending {
    pub const ALL: [Ending; 18] = [
        Ending::Success,
        Ending::ExitCode,
        Ending::Signal,
        Ending::CoreDump,
        Ending::Timeout,
        Ending::Watchdog,
        Ending::StartLimitHit,
        Ending::StartLimitAfterFailure,
        Ending::Protocol,
        Ending::OomKill,
        Ending::ExecCondition,
        Ending::CleanSighup,
        Ending::CleanSigterm,
        Ending::CleanSigint,
        Ending::CleanSigpipe,
        Ending::SuccessExitStatus,
        Ending::RestartPreventExitStatus,
        Ending::RestartForceExitStatus,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Ending::Success => "success",
            Ending::ExitCode => "exit-code",
            Ending::Signal => "signal",
            Ending::CoreDump => "core-dump",
            Ending::Timeout => "timeout",
            Ending::Watchdog => "watchdog",
            Ending::StartLimitHit => "start-limit-hit",
            Ending::StartLimitAfterFailure => "start-limit-after-failure",
            Ending::Protocol => "protocol",
            Ending::OomKill => "oom-kill",
            Ending::ExecCondition => "exec-condition",
            Ending::CleanSighup => "clean-sighup",
            Ending::CleanSigterm => "clean-sigterm",
            Ending::CleanSigint => "clean-sigint",
            Ending::CleanSigpipe => "clean-sigpipe",
            Ending::SuccessExitStatus => "success-exit-status",
            Ending::RestartPreventExitStatus => "restart-prevent-exit-status",
            Ending::RestartForceExitStatus => "restart-force-exit-status",
        }
    }

    /// What the lab does to the service, in words (for reports and the demo).
    pub fn how(self) -> &'static str {
        match self {
            Ending::Success => "the server exits with code 0",
            Ending::ExitCode => "the server exits with code 3",
            Ending::Signal => "the server is killed with SIGKILL",
            Ending::CoreDump => "the server dies of SIGSEGV and dumps core (LimitCORE=infinity)",
            Ending::Timeout => "the server never reports ready (start timeout)",
            Ending::Watchdog => "the server stops its watchdog pings",
            Ending::StartLimitHit => "after an exit with code 0 the lab starts it again past StartLimitBurst=1: refused",
            Ending::StartLimitAfterFailure => "after an exit with code 3 the lab starts it again past StartLimitBurst=1: refused",
            Ending::Protocol => "a Type=notify server exits 0 without ever sending READY=1",
            Ending::OomKill => "the server allocates memory past MemoryMax= until the OOM killer acts",
            Ending::ExecCondition => "ExecCondition=/bin/false says skip",
            Ending::CleanSighup => "the server dies of SIGHUP",
            Ending::CleanSigterm => "the server dies of SIGTERM",
            Ending::CleanSigint => "the server dies of SIGINT",
            Ending::CleanSigpipe => "the server dies of SIGPIPE",
            Ending::SuccessExitStatus => "the server exits with code 42, listed in SuccessExitStatus=",
            Ending::RestartPreventExitStatus => "the server exits with code 43, listed in RestartPreventExitStatus=",
            Ending::RestartForceExitStatus => "the server exits with code 44, listed in RestartForceExitStatus=",
        }
    }

    /// The Result systemd's source records for this ending (service.c: the first failure
    /// wins; a clean signal or an exit status in SuccessExitStatus= is success). A start
    /// refused by the rate limit keeps the Result of a failed run before it
    /// (`rule::refused_start_result`): `start-limit-hit` after exit 0, `exit-code` after exit 3.
    pub fn expected_result(self) -> ServiceResult {
        match self {
            Ending::Success | Ending::CleanSighup | Ending::CleanSigterm | Ending::CleanSigint | Ending::CleanSigpipe | Ending::SuccessExitStatus => {
                ServiceResult::Success
            }
            Ending::ExitCode | Ending::RestartPreventExitStatus | Ending::RestartForceExitStatus => ServiceResult::ExitCode,
            Ending::Signal => ServiceResult::Signal,
            Ending::CoreDump => ServiceResult::CoreDump,
            Ending::Timeout => ServiceResult::Timeout,
            Ending::Watchdog => ServiceResult::Watchdog,
            Ending::StartLimitHit => super::rule::refused_start_result(ServiceResult::Success),
            Ending::StartLimitAfterFailure => super::rule::refused_start_result(ServiceResult::ExitCode),
            Ending::Protocol => ServiceResult::Protocol,
            Ending::OomKill => ServiceResult::OomKill,
            Ending::ExecCondition => ServiceResult::ExecCondition,
        }
    }

    /// The row of the Restart= table of systemd.service(5) this ending belongs to, where one
    /// does: the clean signals and SuccessExitStatus= are "clean" by the documentation's own
    /// definition; a core dump and an OOM kill (the kernel's SIGKILL) are deaths by an
    /// uncaught signal. Protocol errors, skipped conditions and the start rate limit have no
    /// row.
    pub fn documented_cause(self) -> Option<Cause> {
        match self {
            Ending::Success | Ending::CleanSighup | Ending::CleanSigterm | Ending::CleanSigint | Ending::CleanSigpipe | Ending::SuccessExitStatus => {
                Some(Cause::CleanExit)
            }
            Ending::ExitCode => Some(Cause::UncleanExitCode),
            Ending::Signal | Ending::CoreDump | Ending::OomKill => Some(Cause::UncleanSignal),
            Ending::Timeout => Some(Cause::Timeout),
            Ending::Watchdog => Some(Cause::Watchdog),
            Ending::StartLimitHit | Ending::StartLimitAfterFailure | Ending::Protocol | Ending::ExecCondition => None,
            Ending::RestartPreventExitStatus | Ending::RestartForceExitStatus => Some(Cause::UncleanExitCode),
        }
    }
}

/// What the documentation says about a cell of the results table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Documented {
    /// It says restart (true) or not (false), in the place named.
    Says(bool, &'static str),
    /// It says nothing; why there is no sentence that decides it.
    Silent(&'static str),
}

/// What systemd.service(5) (and, for the start rate limit, systemd.unit(5)) says about
/// `policy` after `ending`. The most specific sentence wins: the exit-status lists override
/// Restart=, Restart=no and Restart=on-watchdog speak of every ending, then the Restart=
/// table decides where the ending has a row.
pub fn results_documented(policy: RestartPolicy, ending: Ending) -> Documented {
    use Documented::*;
    match ending {
        Ending::RestartPreventExitStatus => return Says(false, "RestartPreventExitStatus=: listed exit statuses are never restarted, whatever Restart= says"),
        Ending::RestartForceExitStatus => return Says(true, "RestartForceExitStatus=: listed exit statuses are restarted regardless of Restart="),
        Ending::StartLimitHit | Ending::StartLimitAfterFailure => {
            return Says(false, "systemd.unit(5) StartLimitIntervalSec=: a unit with Restart= that reaches the start limit is not attempted to be restarted anymore")
        }
        _ => {}
    }
    match policy {
        RestartPolicy::No => return Says(false, "Restart=no: the service will not be restarted"),
        RestartPolicy::OnWatchdog => return Says(ending == Ending::Watchdog, "Restart=on-watchdog: restarted only if the watchdog timeout expires"),
        _ => {}
    }
    match ending.documented_cause() {
        Some(cause) => Says(restart_documented(policy, cause), "the Restart= table of systemd.service(5)"),
        None => Silent(match ending {
            Ending::Protocol => "the Restart= table has no row for a start that fails with a protocol error (the main process exited 0 before READY=1)",
            Ending::ExecCondition => "ExecCondition= says a skipped unit is not failed, and the Restart= text says nothing about skips",
            _ => "no sentence of systemd.service(5) decides it",
        }),
    }
}

/// The service types of the wrong-Type= table, as program behaviours (rows) and as the
/// configured `Type=` (columns).
pub const TABLE_TYPES: [ServiceType; 4] = [ServiceType::Simple, ServiceType::Forking, ServiceType::Oneshot, ServiceType::Notify];

/// How a program "of this type" behaves, for the demo.
pub fn program_behaviour(t: ServiceType) -> &'static str {
    match t {
        ServiceType::Simple => "stays in the foreground and never notifies",
        ServiceType::Forking => "double-forks a daemon and the parent exits once it listens",
        ServiceType::Oneshot => "does its work for a second and exits 0",
        ServiceType::Notify => "stays in the foreground and sends READY=1 once it listens",
        _ => "is not part of the table",
    }
}

/// Outcome classes of the wrong-Type= table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TypeOutcome {
    /// active, running.
    Works,
    /// failed with Result timeout ("killed after 90 s").
    StartTimeout,
    /// still activating at the end of a window in which no start timeout applies.
    ActivatingForever,
    /// inactive, Result success, any daemon child gone ("killed almost immediately").
    DeadSuccess,
    /// failed with another Result, e.g. exit-code ("becomes failed after executing").
    Failed,
    /// failed with Result protocol.
    Protocol,
}

impl TypeOutcome {
    pub fn name(self) -> &'static str {
        match self {
            TypeOutcome::Works => "works",
            TypeOutcome::StartTimeout => "start-timeout",
            TypeOutcome::ActivatingForever => "activating-forever",
            TypeOutcome::DeadSuccess => "dead-success",
            TypeOutcome::Failed => "failed",
            TypeOutcome::Protocol => "protocol",
        }
    }
}

/// The wrong-Type= table of seed 003: `program` behaves as that type, `configured` is Type=.
/// Returns the outcome class and the documentation's own words for the cell.
/// `(_, _)` outside [`TABLE_TYPES`] is not part of the table: it reads as the documented
/// "correct type" only on the diagonal.
pub fn type_documented(program: ServiceType, configured: ServiceType) -> (TypeOutcome, &'static str) {
    use TypeOutcome::*;
    use ServiceType::*;
    match (program, configured) {
        (Simple, Simple) => (Works, "correct type"),
        (Simple, Forking) => (StartTimeout, "killed after 90 s (systemd expects the parent to exit)"),
        (Simple, Oneshot) => (ActivatingForever, "stays in \"activating\" state forever (start timeout ignored for oneshot)"),
        (Simple, Notify) => (StartTimeout, "killed after 90 s (systemd waits for the ready notification)"),
        (Forking, Simple) => (DeadSuccess, "killed almost immediately (the \"main\" process exits)"),
        (Forking, Forking) => (Works, "correct type"),
        (Forking, Oneshot) => (ActivatingForever, "stays in \"activating\" state forever"),
        (Forking, Notify) => (StartTimeout, "killed after 90 s"),
        (Oneshot, Simple) => (Failed, "becomes \"failed\" after executing"),
        (Oneshot, Forking) => (StartTimeout, "killed after 90 s"),
        (Oneshot, Oneshot) => (DeadSuccess, "correct type (finished)"),
        (Oneshot, Notify) => (StartTimeout, "killed after 90 s"),
        (Notify, Simple) => (Works, "probably works fine"),
        (Notify, Forking) => (StartTimeout, "killed after 90 s"),
        (Notify, Oneshot) => (ActivatingForever, "stays in \"activating\" state forever"),
        (Notify, Notify) => (Works, "correct type"),
        (p, c) if p == c => (Works, "correct type"),
        _ => (Failed, "not in the table"),
    }
}

/// A cell of either table, for the deviations list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellKey {
    Restart(RestartPolicy, Cause),
    /// A cell of the results table: a Restart= value and a way of ending.
    Result(RestartPolicy, Ending),
    Type { program: ServiceType, configured: ServiceType },
}

/// A reviewed, measured disagreement between a documented table and systemd.
#[derive(Debug, Clone, Copy)]
pub struct Deviation {
    pub cell: CellKey,
    /// systemd major versions it was measured on (inclusive range).
    pub systemd: (u32, u32),
    /// The observed value: a restart-table boolean as "restart"/"no restart", or an outcome
    /// class name.
    pub observed: &'static str,
    /// What systemd does instead, and why (source or man page).
    pub explanation: &'static str,
}

/// The reviewed deviations. Every entry was measured by `unitlab matrix` on the versions it
/// names; the tests assert the observation equals the entry, so a change in systemd (either
/// way) fails loudly and brings the entry up for review.
pub const DEVIATIONS: &[Deviation] = &[
    Deviation {
        cell: CellKey::Type { program: ServiceType::Forking, configured: ServiceType::Oneshot },
        systemd: (247, 262),
        observed: "dead-success",
        explanation: "Type=oneshot is started when its main process exits. The forking program's \
                      main process is the parent, which exits 0 as soon as its daemon listens, so \
                      the start job finishes at once; with RemainAfterExit=no the unit then \
                      stops and KillMode=control-group kills the daemon. Nothing stays activating.",
    },
    Deviation {
        cell: CellKey::Type { program: ServiceType::Forking, configured: ServiceType::Notify },
        systemd: (247, 262),
        observed: "protocol",
        explanation: "The main process (the forking parent) exits 0 before any READY=1 arrived, \
                      and the daemon may not notify anyway (NotifyAccess=main). systemd does not \
                      wait for the start timeout: service.c fails the start at once with Result \
                      'protocol' when a Type=notify main process exits cleanly before readiness.",
    },
    Deviation {
        cell: CellKey::Type { program: ServiceType::Oneshot, configured: ServiceType::Simple },
        systemd: (247, 262),
        observed: "dead-success",
        explanation: "Type=simple is started at fork; when the program then exits 0 the unit is \
                      deactivated successfully (inactive, Result success), not failed. It only \
                      becomes 'failed' if the program exits non-zero: the table assumes that.",
    },
    Deviation {
        cell: CellKey::Type { program: ServiceType::Oneshot, configured: ServiceType::Forking },
        systemd: (247, 262),
        observed: "dead-success",
        explanation: "Type=forking is started when the process it launched exits. A oneshot \
                      program exits 0 after its work (1 s here, well inside the start timeout), \
                      so the start succeeds, no main PID can be guessed from an empty cgroup and \
                      the unit stops cleanly. Only work that outlasts TimeoutStartSec= is killed.",
    },
    Deviation {
        cell: CellKey::Type { program: ServiceType::Oneshot, configured: ServiceType::Notify },
        systemd: (247, 262),
        observed: "protocol",
        explanation: "The program exits 0 without ever sending READY=1: systemd fails the start at \
                      once with Result 'protocol' instead of waiting for the start timeout.",
    },
];

/// Why an OOM kill reads as Result `signal` on this lab's hosts.
const OOM_ON_CGROUP_V1: &str = "systemd learns of an OOM kill from the unified hierarchy's memory.events (oom_kill) of the \
     unit's cgroup; this lab's hosts run cgroup v1 (Docker's cgroupfs driver), where MemoryMax= is applied as the v1 \
     memory.limit_in_bytes and the kernel's OOM killer does kill the process (SIGKILL), but no oom_kill event reaches \
     systemd. It sees a main process killed by SIGKILL, so the Result is signal and Restart= decides as for any \
     SIGKILL: on-abort restarts, unlike on a cgroup v2 host where the Result is oom-kill (systemd issue 36529).";

/// The results table's reviewed Result deviations: (ending, systemd versions, Result observed,
/// why). They apply to every Restart= column of the row.
pub const RESULT_DEVIATIONS: &[(Ending, (u32, u32), &str, &str)] = &[
    (Ending::OomKill, (252, 257), "signal", OOM_ON_CGROUP_V1),
    (Ending::StartLimitAfterFailure, (262, 262), "start-limit-hit", START_LIMIT_RESULT_ON_262),
];

/// Why a start refused after a failed run reads `start-limit-hit` on 262 but `exit-code` on 252 and 257.
const START_LIMIT_RESULT_ON_262: &str = "systemd PR #39985 (\"core: set Result=start-limit-hit when a unit is rate \
     limited\", merged December 2025, after 257) makes a start refused by the rate limit set the Result to \
     start-limit-hit even when an earlier failure had set one; before it, service_enter_dead() only replaced a \
     `success` Result, so the first failure (exit-code here) stayed. The restart decision does not change: a \
     refused start is never restarted. Measured on 262 (sid); 252 and 257 keep exit-code (247 and 254 not measured).";

/// The reviewed deviation for a cell on a systemd major version, if any.
pub fn deviation(cell: CellKey, systemd_major: u32) -> Option<Deviation> {
    if let CellKey::Result(_, ending) = cell {
        return RESULT_DEVIATIONS
            .iter()
            .find(|(e, v, _, _)| *e == ending && (v.0..=v.1).contains(&systemd_major))
            .map(|(_, systemd, observed, explanation)| Deviation { cell, systemd: *systemd, observed, explanation });
    }
    DEVIATIONS
        .iter()
        .find(|d| d.cell == cell && (d.systemd.0..=d.systemd.1).contains(&systemd_major))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_table_has_the_documented_marks() {
        // Count of X marks per row in systemd.service(5): 2, 2, 4, 3, 4.
        let marks: Vec<usize> = Cause::ALL
            .iter()
            .map(|c| RestartPolicy::ALL.iter().filter(|p| restart_documented(**p, *c)).count())
            .collect();
        assert_eq!(marks, vec![2, 2, 4, 3, 4]);
        assert!(!restart_documented(RestartPolicy::OnAbort, Cause::Watchdog));
        assert!(restart_documented(RestartPolicy::OnAbnormal, Cause::Timeout));
    }

    #[test]
    fn results_documentation_extends_the_restart_table_and_is_silent_where_it_has_no_row() {
        use RestartPolicy::*;
        // Where an ending has a row of the Restart= table, that row decides.
        for p in RestartPolicy::ALL {
            if !matches!(p, No | OnWatchdog) {
                assert_eq!(results_documented(*p, Ending::ExitCode), Documented::Says(restart_documented(*p, Cause::UncleanExitCode), "the Restart= table of systemd.service(5)"));
            }
        }
        assert_eq!(results_documented(OnSuccess, Ending::CleanSigpipe).clone(), Documented::Says(true, "the Restart= table of systemd.service(5)"));
        // An OOM kill is the kernel's SIGKILL: the documentation's "uncaught signal" row.
        assert!(matches!(results_documented(OnAbort, Ending::OomKill), Documented::Says(true, _)));
        // The exit-status lists override Restart=, even Restart=no.
        assert!(matches!(results_documented(No, Ending::RestartForceExitStatus), Documented::Says(true, _)));
        assert!(matches!(results_documented(Always, Ending::RestartPreventExitStatus), Documented::Says(false, _)));
        // Silent: protocol and exec-condition under every policy that restarts anything but watchdogs.
        let silent: Vec<(RestartPolicy, Ending)> = RestartPolicy::ALL
            .iter()
            .flat_map(|p| Ending::ALL.iter().map(move |e| (*p, *e)))
            .filter(|(p, e)| matches!(results_documented(*p, *e), Documented::Silent(_)))
            .collect();
        assert_eq!(silent.len(), 2 * 5, "{silent:?}");
        assert!(silent.iter().all(|(p, e)| !matches!(p, No | OnWatchdog) && matches!(e, Ending::Protocol | Ending::ExecCondition)));
    }

    #[test]
    fn type_table_diagonal_is_as_documented() {
        let diag: Vec<TypeOutcome> = TABLE_TYPES.iter().map(|t| type_documented(*t, *t).0).collect();
        assert_eq!(diag, vec![TypeOutcome::Works, TypeOutcome::Works, TypeOutcome::DeadSuccess, TypeOutcome::Works]);
    }

    #[test]
    fn result_deviations_name_another_result_and_cover_every_column() {
        for (ending, (from, to), observed, _) in RESULT_DEVIATIONS {
            assert_ne!(ending.expected_result().as_str(), *observed);
            for p in RestartPolicy::ALL {
                for major in [*from, *to] {
                    assert_eq!(deviation(CellKey::Result(*p, *ending), major).map(|d| d.observed), Some(*observed));
                }
            }
        }
        assert!(deviation(CellKey::Result(RestartPolicy::No, Ending::Signal), 252).is_none());
        assert!(deviation(CellKey::Result(RestartPolicy::No, Ending::StartLimitAfterFailure), 257).is_none(), "257 keeps exit-code");
        assert_eq!(deviation(CellKey::Result(RestartPolicy::No, Ending::StartLimitAfterFailure), 262).map(|d| d.observed), Some("start-limit-hit"));
    }

    #[test]
    fn every_deviation_really_differs_from_the_table() {
        for d in DEVIATIONS {
            let documented = match d.cell {
                CellKey::Restart(p, c) => if restart_documented(p, c) { "restart" } else { "no restart" }.to_string(),
                CellKey::Type { program, configured } => type_documented(program, configured).0.name().to_string(),
                // A results-table deviation is about the Result: it names the one observed instead.
                CellKey::Result(_, ending) => ending.expected_result().as_str().to_string(),
            };
            assert_ne!(documented, d.observed, "{:?} lists the documented value as a deviation", d.cell);
        }
    }
}
