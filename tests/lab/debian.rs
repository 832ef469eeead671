//! Debian's own services under fault (`scenarios/debian/`): nginx, openssh-server, memcached and
//! redis-server, each with the unit its package installs, through SIGKILL of the main process,
//! SIGSTOP and `systemctl kill`, on bookworm and trixie. The scenario files carry the measured
//! outcomes as expectations; this test runs them through the library API and also checks the
//! recorded observations the README's table is written from, so a change in Debian's units or
//! in systemd fails here.

use rstest::rstest;
use unitlab::verdict::{Observed, Outcome, RunReport, ScenarioResult};
use unitlab::Suite;

use crate::bin::repo;

async fn run_debian(suite: Suite) -> RunReport {
    // Three at a time: each scenario has a target of its own (packaged units keep their
    // names), and all share the one derived image per suite.
    let opts = unitlab::RunOptions { suites: vec![suite], jobs: Some(3), ..Default::default() };
    let report = unitlab::run_scenario_files(&[repo().join("scenarios/debian")], &opts, &unitlab::progress::Lines)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let failures: Vec<String> = report
        .results
        .iter()
        .filter(|r| r.outcome != Outcome::Pass)
        .map(|r| {
            let checks: Vec<String> =
                r.failed_checks().map(|c| format!("{}: expected {}, observed {}", c.location, c.expected, c.observed)).collect();
            format!("{} {:?} {:?} {checks:#?}", r.name, r.outcome, r.error)
        })
        .collect();
    assert!(failures.is_empty(), "{suite}: {failures:#?}");
    assert_eq!(report.results.len(), 8, "every scenario of scenarios/debian ran");
    report
}

fn scenario<'a>(report: &'a RunReport, name: &str) -> &'a ScenarioResult {
    report.results.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no result for {name}"))
}

/// The `observe what = "restart"` records of a scenario, in step order: (Result, restarted).
fn restarts(result: &ScenarioResult) -> Vec<(Option<String>, Option<bool>)> {
    result
        .observations
        .iter()
        .filter_map(|o| match &o.value {
            Observed::Restart { result, restarted, .. } => Some((result.clone(), *restarted)),
            _ => None,
        })
        .collect()
}

/// The `observe what = "state"` records taken while the main process was stopped.
fn frozen_states(result: &ScenarioResult) -> Vec<(String, String)> {
    result
        .observations
        .iter()
        .filter_map(|o| match &o.value {
            Observed::State { active_state, sub_state, .. } => Some((active_state.clone(), sub_state.clone())),
            _ => None,
        })
        .collect()
}

fn r(result: &str, restarted: bool) -> (Option<String>, Option<bool>) {
    (Some(result.to_string()), Some(restarted))
}

#[rstest]
#[case::bookworm(Suite::Bookworm)]
#[case::trixie(Suite::Trixie)]
#[tokio::test]
async fn debian_units_under_sigkill_sigstop_and_systemctl_kill(#[case] suite: Suite) {
    let report = run_debian(suite).await;
    let running = vec![("active".to_string(), "running".to_string())];

    // nginx: no Restart=, so a SIGKILLed master stays down; SIGTERM is a clean stop.
    let nginx = scenario(&report, "debian-nginx");
    assert_eq!(restarts(nginx), [r("signal", false), r("success", false)], "{suite} nginx");
    assert_eq!(frozen_states(nginx), running, "{suite} nginx: a stopped master is not noticed");
    // The one-line drop-in brings the SIGKILLed master back.
    let fixed = scenario(&report, "debian-nginx-restart-on-failure");
    assert_eq!(restarts(fixed), [r("signal", true)], "{suite} nginx + Restart=on-failure");
    // And Restart=always for the clean stop of `systemctl kill`.
    let always = scenario(&report, "debian-nginx-restart-always");
    assert_eq!(restarts(always), [r("success", true)], "{suite} nginx + Restart=always");

    // ssh: Restart=on-failure restarts a SIGKILL, not a SIGTERM.
    let ssh = scenario(&report, "debian-openssh-server");
    assert_eq!(restarts(ssh), [r("signal", true), r("success", false)], "{suite} ssh");
    assert_eq!(frozen_states(ssh), running, "{suite} ssh");
    let always = scenario(&report, "debian-openssh-server-restart-always");
    assert_eq!(restarts(always), [r("success", true)], "{suite} ssh + Restart=always");

    // memcached and redis: Restart=always restarts both deaths; a hang goes unnoticed.
    for name in ["debian-memcached", "debian-redis-server-protectproc-default"] {
        let s = scenario(&report, name);
        assert_eq!(restarts(s), [r("signal", true), r("success", true)], "{suite} {name}");
        assert_eq!(frozen_states(s), running, "{suite} {name}");
    }

    // redis as Debian ships it does not start in a container target at all (its checks:
    // 217/USER, "Failed to set up user namespacing", start limit).
    let redis = scenario(&report, "debian-redis-server");
    assert!(redis.checks.iter().all(|c| c.passed) && redis.checks.len() >= 4, "{suite} redis: {:#?}", redis.checks);
}
