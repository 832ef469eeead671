//! Seed 000's watchdogged program under the seed's unit on real systemd, both suites, through
//! unitlab's library (the facts are written up in scenarios/seeds/README.md, beside the
//! stand-in's): the pinger keeps a program whose HTTP side hangs alive; a stopped process is
//! killed WatchdogSec=10s after its last ping and restarted; `StartLimitAction=stop` is refused.

use std::path::Path;

use unitlab::verdict::{Observed, Outcome};

/// Times (since the scenario's start) of `unit`'s timeline events whose message contains `text`.
fn at(result: &serde_json::Value, unit: &str, text: &str) -> Vec<f64> {
    result["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["unit"] == unit && e["message"].as_str().unwrap().contains(text))
        .map(|e| e["at"].as_f64().unwrap())
        .collect()
}

#[tokio::test]
async fn seed000_watchdogged_on_every_suite() {
    // A `source` is relative to its scenario: stage the scenario, the unit and cargo's binary.
    let dir = tempfile::tempdir().unwrap();
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenario");
    std::fs::create_dir_all(dir.path().join("bin")).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_watchdogged"), dir.path().join("bin/watchdogged")).unwrap();
    for file in ["seed000-watchdogged.toml", "watchdogged.service"] {
        std::fs::copy(here.join(file), dir.path().join(file)).unwrap();
    }

    let report = unitlab::run_scenario_file(dir.path().join("seed000-watchdogged.toml"), &unitlab::RunOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.results.len(), 2, "bookworm and trixie");
    let json = serde_json::to_value(&report).unwrap();
    for (r, rj) in report.results.iter().zip(json["results"].as_array().unwrap()) {
        let failed: Vec<String> = r.failed_checks().map(|c| format!("{}: expected {}, observed {}", c.location, c.expected, c.observed)).collect();
        assert_eq!(r.outcome, Outcome::Pass, "{}: {:?} {failed:#?}", r.suite, r.error);
        assert!(r.warnings.iter().any(|w| w.contains("Failed to parse StartLimitAction=, ignoring: stop")), "{:?}", r.warnings);
        let restart = r.observations.iter().find_map(|o| match &o.value {
            Observed::Restart { result, restarted, .. } => Some((result.clone(), *restarted)),
            _ => None,
        });
        assert_eq!(restart, Some((Some("watchdog".to_string()), Some(true))), "{}", r.suite);
        let unit = "watchdogged.service";
        let freeze = at(rj, unit, "fault: freeze")[0];
        let kill = at(rj, unit, "Watchdog timeout (limit 10s)!")[0];
        // The last ping is the last one logged before the kill, not before the freeze mark: the
        // mark is taken before the SIGSTOP's exec, which can take a second under load, and a
        // ping logged in between still counts (CI on trixie: 15.2 s measured from the ping
        // before it). A stopped process logs nothing, and the new one logs after the kill.
        // What cannot be seen is a SIGSTOP landing between the ping and its log line, a window
        // of microseconds in a 5 s period.
        let last_ping = at(rj, unit, "Watchdog notified").into_iter().filter(|t| *t < kill).fold(0.0, f64::max);
        assert!(kill > freeze, "{}: the watchdog fired at {kill} s, before the freeze at {freeze} s", r.suite);
        println!("{}: last ping -> watchdog {:.2} s", r.suite, kill - last_ping);
        assert!((9.9..11.5).contains(&(kill - last_ping)), "{}: WatchdogSec=10s after the last ping: {}", r.suite, kill - last_ping);
    }
}
