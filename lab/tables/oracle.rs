//! The documented tables, exactly as documented, and the reviewed list of where systemd was
//! measured to disagree with them.
//!
//! The tables are claims to test, never answers: nothing in the lab derives an observation
//! from them. A disagreement is recorded in [`DEVIATIONS`] with the systemd versions it was
//! measured on and the reason (from systemd's source), and is shown next to the table; the
//! tables themselves are never edited to match.

use crate::systemd::{RestartPolicy, ServiceType};

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

/// The reviewed deviation for a cell on a systemd major version, if any.
pub fn deviation(cell: CellKey, systemd_major: u32) -> Option<&'static Deviation> {
    DEVIATIONS
        .iter()
        .find(|d| d.cell == cell && (d.systemd.0..=d.systemd.1).contains(&systemd_major))
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
    fn type_table_diagonal_is_as_documented() {
        let diag: Vec<TypeOutcome> = TABLE_TYPES.iter().map(|t| type_documented(*t, *t).0).collect();
        assert_eq!(diag, vec![TypeOutcome::Works, TypeOutcome::Works, TypeOutcome::DeadSuccess, TypeOutcome::Works]);
    }

    #[test]
    fn every_deviation_really_differs_from_the_table() {
        for d in DEVIATIONS {
            let documented = match d.cell {
                CellKey::Restart(p, c) => if restart_documented(p, c) { "restart" } else { "no restart" }.to_string(),
                CellKey::Type { program, configured } => type_documented(program, configured).0.name().to_string(),
            };
            assert_ne!(documented, d.observed, "{:?} lists the documented value as a deviation", d.cell);
        }
    }
}
