//! The rule systemd's source applies when a service's run ends: whether it is restarted,
//! restated from `service_enter_dead()` and `service_shall_restart()` in src/core/service.c
//! (read on v252 and on a post-257 main; the parts below are the same in 252..257). The
//! results table holds every observation against it, beside what the documentation says.
//!
//! In the order systemd decides:
//! 1. Some endings never consult Restart= at all: a start refused by the start rate limit
//!    enters the dead state with restarts not allowed; so does a stop the user asked for
//!    (`forbid_restart`, "manual stop"). The refused start's Result is `start-limit-hit` only
//!    if the Result was still `success`: the first failure wins (`service_enter_dead` replaces
//!    only a success), and a refused start never reset it, so after a failed run the unit
//!    reports that run's Result (e.g. `exit-code`), not `start-limit-hit`.
//! 2. An exit status or signal of the main process listed in RestartPreventExitStatus= never
//!    restarts; then one listed in RestartForceExitStatus= always restarts. Both look at the
//!    main process's exit, not at the Result.
//! 3. Otherwise Restart= decides from the Result alone: `no` never; `always` unless the Result
//!    is `exec-condition` (since v251, PR #22259); `on-success` only for `success`;
//!    `on-failure` for anything but `success` and `exec-condition` (since v246, PR #16133);
//!    `on-abnormal` for anything but `success`, `exit-code` and `exec-condition`;
//!    `on-watchdog` only for `watchdog`; `on-abort` only for `signal` and `core-dump`.
//!
//! So the Result, not the process's death, is what Restart= reads: an OOM kill whose Result
//! is `oom-kill` is not restarted by `on-abort` (systemd issue 36529), and a Type=notify
//! service whose main process exits 0 before READY=1 has Result `protocol`, which
//! `on-success` does not restart although the process exited cleanly.

use crate::systemd::{MainExit, RestartPolicy, ServiceResult};

/// Exit statuses and signals of a `RestartPreventExitStatus=`/`RestartForceExitStatus=` list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExitStatusSet {
    pub codes: Vec<u8>,
    pub signals: Vec<i32>,
}

impl ExitStatusSet {
    pub fn codes(codes: &[u8]) -> ExitStatusSet {
        ExitStatusSet { codes: codes.to_vec(), signals: Vec::new() }
    }

    /// Does the main process's end match the list? (service.c's `exit_status_set_test`: an
    /// exit code against the codes, a death by signal, core or not, against the signals.)
    pub fn matches(&self, main: Option<MainExit>) -> bool {
        match main {
            Some(MainExit::Exited(code)) => self.codes.contains(&code),
            Some(MainExit::Killed { signal, .. }) => self.signals.contains(&signal.number()),
            None => false,
        }
    }
}

/// What ended a run, as the rule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEnd {
    pub result: ServiceResult,
    /// How the main process ended, if one ran (an ExecCondition= skip has none).
    pub main: Option<MainExit>,
    pub prevent: ExitStatusSet,
    pub force: ExitStatusSet,
    /// The run ended because a start was refused by the start rate limit ("Start request
    /// repeated too quickly"): restarts are not allowed, whatever the Result says.
    pub refused_start: bool,
}

/// The Result a start refused by the rate limit leaves: the earlier failure's, if the unit's
/// Result was not `success` any more; otherwise `start-limit-hit`.
pub fn refused_start_result(before: ServiceResult) -> ServiceResult {
    if before == ServiceResult::Success {
        ServiceResult::StartLimitHit
    } else {
        before
    }
}

/// The decision and the reason, in systemd's own words where it logs one ("Service will
/// not restart (restart setting)").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub restarts: bool,
    pub reason: &'static str,
}

/// Whether systemd's source restarts a service with `policy` after `end`.
pub fn shall_restart(policy: RestartPolicy, end: &RunEnd) -> Decision {
    use RestartPolicy::*;
    use ServiceResult as R;
    if end.refused_start || end.result == R::StartLimitHit {
        return Decision { restarts: false, reason: "the start was refused by the start rate limit, which enters the dead state with restarts not allowed" };
    }
    if end.prevent.matches(end.main) {
        return Decision { restarts: false, reason: "prevented by exit status (RestartPreventExitStatus= is checked before Restart=)" };
    }
    if end.force.matches(end.main) {
        return Decision { restarts: true, reason: "forced by exit status (RestartForceExitStatus= is checked before Restart=)" };
    }
    let r = end.result;
    let (restarts, reason) = match policy {
        No => (false, "Restart=no never restarts"),
        Always => (r != R::ExecCondition, "Restart=always restarts unless the Result is exec-condition"),
        OnSuccess => (r == R::Success, "Restart=on-success restarts only when the Result is success"),
        OnFailure => (!matches!(r, R::Success | R::ExecCondition), "Restart=on-failure restarts unless the Result is success or exec-condition"),
        OnAbnormal => (
            !matches!(r, R::Success | R::ExitCode | R::ExecCondition),
            "Restart=on-abnormal restarts unless the Result is success, exit-code or exec-condition",
        ),
        OnWatchdog => (r == R::Watchdog, "Restart=on-watchdog restarts only when the Result is watchdog"),
        OnAbort => (matches!(r, R::Signal | R::CoreDump), "Restart=on-abort restarts only when the Result is signal or core-dump"),
    };
    Decision { restarts, reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::systemd::Signal;

    fn end(result: ServiceResult, main: Option<MainExit>) -> RunEnd {
        RunEnd { result, main, prevent: ExitStatusSet::default(), force: ExitStatusSet::default(), refused_start: false }
    }

    fn killed(n: i32) -> Option<MainExit> {
        Some(MainExit::Killed { signal: Signal::from_number(n).unwrap(), dumped: Some(false) })
    }

    #[test]
    fn restart_reads_the_result_not_the_death() {
        // An OOM kill is a SIGKILL from the kernel, but on-abort reads Result oom-kill: no.
        let oom = end(ServiceResult::OomKill, killed(9));
        assert!(!shall_restart(RestartPolicy::OnAbort, &oom).restarts);
        assert!(shall_restart(RestartPolicy::OnAbnormal, &oom).restarts);
        // Where systemd cannot see the OOM kill (cgroup v1) the Result is signal: on-abort yes.
        assert!(shall_restart(RestartPolicy::OnAbort, &end(ServiceResult::Signal, killed(9))).restarts);
        // A protocol error after a clean exit 0 is not a success.
        let protocol = end(ServiceResult::Protocol, Some(MainExit::Exited(0)));
        assert!(!shall_restart(RestartPolicy::OnSuccess, &protocol).restarts);
        assert!(shall_restart(RestartPolicy::OnAbnormal, &protocol).restarts);
    }

    #[test]
    fn skips_and_the_start_limit_never_restart() {
        for policy in RestartPolicy::ALL {
            assert!(!shall_restart(*policy, &end(ServiceResult::ExecCondition, None)).restarts, "{policy}");
            let limited = RunEnd { force: ExitStatusSet::codes(&[0]), ..end(ServiceResult::StartLimitHit, Some(MainExit::Exited(0))) };
            assert!(!shall_restart(*policy, &limited).restarts, "{policy}: even a forcing list cannot restart a refused start");
            // After a failed run the refused start keeps that run's Result, and still no restart.
            let after_failure = RunEnd { refused_start: true, ..end(refused_start_result(ServiceResult::ExitCode), Some(MainExit::Exited(3))) };
            assert_eq!(after_failure.result, ServiceResult::ExitCode);
            assert!(!shall_restart(*policy, &after_failure).restarts, "{policy}");
        }
    }

    #[test]
    fn the_exit_status_lists_come_before_restart() {
        let prevented = RunEnd { prevent: ExitStatusSet::codes(&[43]), ..end(ServiceResult::ExitCode, Some(MainExit::Exited(43))) };
        let forced = RunEnd { force: ExitStatusSet::codes(&[44]), ..end(ServiceResult::ExitCode, Some(MainExit::Exited(44))) };
        for policy in RestartPolicy::ALL {
            assert!(!shall_restart(*policy, &prevented).restarts, "{policy}");
            assert!(shall_restart(*policy, &forced).restarts, "{policy}");
        }
        // A list of signals matches a death by that signal, whatever the Result.
        let abrt = ExitStatusSet { codes: vec![], signals: vec![6] };
        let watchdog = RunEnd { prevent: abrt, ..end(ServiceResult::Watchdog, killed(6)) };
        assert!(!shall_restart(RestartPolicy::Always, &watchdog).restarts);
    }

    #[test]
    fn marks_per_result_match_the_source() {
        use ServiceResult as R;
        // Restarting policies per Result, out of the six that can restart (no excluded).
        let count = |r: R| RestartPolicy::ALL.iter().filter(|p| shall_restart(**p, &end(r, None)).restarts).count();
        assert_eq!(
            [R::Success, R::ExitCode, R::Signal, R::CoreDump, R::Timeout, R::Watchdog, R::Protocol, R::OomKill, R::ExecCondition].map(count),
            [2, 2, 4, 4, 3, 4, 3, 3, 0]
        );
    }
}
