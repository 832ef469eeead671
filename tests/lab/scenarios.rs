//! `unitlab run` through the real binary on real systemd: every shipped example holds and the
//! JSON report parses, a failed expectation exits 1 and shows what it must, and journal
//! snapshots are byte-identical from run to run (one per systemd version).
//!
//! Every run is the binary itself, so what is tested is what a user gets. Readiness inside the
//! scenarios is event-driven by the runner; the tests only wait for the process to end.

use rstest::rstest;

use crate::bin::{repo, text, unitlab};

#[rstest]
#[case::bookworm("bookworm", "systemd 252")]
#[case::trixie("trixie", "systemd 257")]
fn every_shipped_scenario_holds_and_the_json_report_parses(#[case] suite: &str, #[case] systemd: &str) {
    let out = unitlab(&["run", "scenarios/examples", "--suite", suite, "--format", "json"], None);
    let stdout = text(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{stdout}\nstderr:\n{}", text(&out.stderr)));
    let failures: Vec<String> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] != "pass")
        .map(|r| format!("{} {}: {} {}", r["name"], r["outcome"], r["error"], r["checks"]))
        .collect();
    assert_eq!(out.status.code(), Some(0), "failures: {failures:#?}\nstderr:\n{}", text(&out.stderr));
    for key in ["schema", "unitlab_version", "outcome", "results", "duration"] {
        assert!(report.get(key).is_some(), "top-level key {key} missing");
    }
    assert_eq!(report["outcome"], "pass");
    let results = report["results"].as_array().unwrap();
    // Examples may keep the files they install in a directory beside them.
    let shipped = std::fs::read_dir(repo().join("scenarios/examples")).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "toml")).count();
    assert_eq!(results.len(), shipped, "one result per scenario on {suite}");
    for r in results {
        assert_eq!(r["suite"], suite);
        assert!(r["systemd"].as_str().unwrap().starts_with(systemd), "{}", r["systemd"]);
        assert!(!r["checks"].as_array().unwrap().is_empty(), "{} checked nothing", r["name"]);
        assert!(!r["timeline"].as_array().unwrap().is_empty(), "{} observed nothing", r["name"]);
    }
    // The recovery timings are measured, not made up: detect < recover < healthy.
    let hang = results.iter().find(|r| r["name"] == "watchdog-health-checked-hang").unwrap();
    let timing = |n: &str| hang["timings"].as_array().unwrap().iter().find(|t| t["name"] == n).unwrap()["value"].as_f64().unwrap();
    assert!(timing("time to detect") < timing("time to recover"));
    assert!(timing("time to recover") <= timing("time to healthy"));
}

const WRONG: &str = r#"
# Deliberately wrong: Restart=no never restarts, yet this expects a restart.
name = "wrong-restart-no"
suites = ["bookworm"]

[[units]]
name = "web"
exec = ["/usr/local/bin/buggy-server", "--listen", "0.0.0.0:8080"]

[units.Service]
Type = "notify"
Restart = "no"

[[steps]]
do = "start"
unit = "web"

[[steps]]
do = "signal"
unit = "web"
signal = "SIGKILL"

[[steps]]
do = "expect-restart"
unit = "web"
within = "2s"
"#;

#[test]
fn a_failed_expectation_exits_1_and_shows_expected_observed_and_journal() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wrong.toml");
    std::fs::write(&file, WRONG).unwrap();
    let out = unitlab(&["run", file.to_str().unwrap()], None);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "stdout:\n{stdout}\nstderr:\n{}", text(&out.stderr));
    for want in [
        "FAIL",
        "wrong.toml:24:",
        "expected: wrong-restart-no.web.service starts again within 2s of the fault (step 2)",
        "observed: no new start within 2s of the fault",
        // systemd's own lines around the decision, normalised:
        "systemd: wrong-restart-no.web.service: Main process exited, code=killed, status=9/KILL",
        "systemd: wrong-restart-no.web.service: Failed with result 'signal'.",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
}

#[rstest]
#[case::bookworm("bookworm", "systemd252")]
#[case::trixie("trixie", "systemd257")]
fn journal_snapshots_are_identical_across_runs(#[case] suite: &str, #[case] suffix: &str) {
    let scenario = "scenarios/examples/manager-default-timeout.toml";
    let snapshot = || -> String {
        let out = unitlab(&["run", scenario, "--suite", suite, "--format", "json"], None);
        assert_eq!(out.status.code(), Some(0), "stderr:\n{}", text(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        report["results"][0]["snapshot"].as_str().expect("snapshot = true gives a snapshot").to_string()
    };
    let first = snapshot();
    let second = snapshot();
    assert_eq!(first, second, "two consecutive runs must give byte-identical snapshots");
    insta::with_settings!({ snapshot_suffix => suffix, prepend_module_to_snapshot => true }, {
        insta::assert_snapshot!("manager-default-timeout", first);
    });
}

/// A scenario that starts one unit (and waits for its line) and expects no reload in its story.
fn quiet_scenario(name: &str, exec: &str, wait_for: Option<&str>) -> String {
    let mut text = format!("name = \"{name}\"\n\n[[units]]\nname = \"u\"\nexec = {exec}\n\n[[steps]]\ndo = \"start\"\nunit = \"u\"\n\n");
    if let Some(line) = wait_for {
        text += &format!("[[steps]]\ndo = \"wait-journal\"\nunit = \"u\"\ncontains = \"{line}\"\nwithin = \"30s\"\n\n");
    }
    text + "[[steps]]\ndo = \"expect-journal\"\nnot_matches = \"^Reloading\"\n"
}

/// A scenario on a shared target whose story runs while others install, finish and clean up:
/// its story must hold no `daemon-reload`. Before v254 a reload while a restart job waits in
/// systemd's queue schedules that restart again and counts it twice (the soak saw it on 252),
/// and before v255 a reload forgets every unit's start count; namespaced units need none, as
/// systemd loads a unit it has not seen from disk when first asked for it.
#[rstest]
#[case::bookworm("bookworm")]
#[case::trixie("trixie")]
fn scenarios_sharing_a_target_do_not_reload_it_under_each_other(#[case] suite: &str) {
    let dir = tempfile::tempdir().unwrap();
    // With two jobs at a time, the long story sees the other three install one after another
    // and the first two clean up.
    let long = quiet_scenario("a-long", r#"["/bin/sh", "-c", "sleep 4; echo long-story-done; exec sleep 60"]"#, Some("long-story-done"));
    std::fs::write(dir.path().join("a-long.toml"), long).unwrap();
    for n in 1..=3 {
        std::fs::write(dir.path().join(format!("b-short-{n}.toml")), quiet_scenario(&format!("b-short-{n}"), r#"["/bin/sleep", "60"]"#, None)).unwrap();
    }
    let out = unitlab(&["run", dir.path().to_str().unwrap(), "--suite", suite, "--jobs", "2", "--format", "json"], None);
    let stdout = text(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{stdout}\nstderr:\n{}", text(&out.stderr)));
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 4, "one result per scenario");
    for r in results {
        assert_eq!(r["outcome"], "pass", "{} on {suite}: {} {}", r["name"], r["error"], r["checks"]);
    }
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", text(&out.stderr));
}
