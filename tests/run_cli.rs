//! `unitlab run` through the real binary: the exit-code contract (2 bad input, starting nothing;
//! 0 all held; 1 an expectation failed), the JSON report's top level, what a failure shows, and
//! journal snapshots that are byte-identical from run to run (one per systemd version).
//!
//! Every run is the binary itself, so what is tested is what a user gets. Readiness inside the
//! scenarios is event-driven by the runner; the tests only wait for the process to end.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rstest::rstest;

const BIN: &str = env!("CARGO_BIN_EXE_unitlab");
/// An engine address where nothing answers: any contact with the engine turns into exit 3.
const NO_ENGINE: &str = "unix:///nonexistent.sock";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn unitlab(args: &[&str], docker_host: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(repo()).env("NO_COLOR", "1");
    if let Some(host) = docker_host {
        cmd.env("DOCKER_HOST", host);
    }
    cmd.output().unwrap_or_else(|e| panic!("running {BIN}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn malformed() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/malformed"))
        .expect("tests/malformed exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

/// The `# expect: error L:C ...` positions a corpus file declares.
fn declared_errors(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .take_while(|l| l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("# expect: error "))
        .map(|rest| rest.split_whitespace().next().unwrap().to_string())
        .collect()
}

#[test]
fn the_no_engine_address_really_fails_as_infrastructure() {
    // The control for the test below: a valid scenario does contact the engine, and with
    // nothing there the run ends with exit 3. So an exit 2 there means no contact was made.
    let out = unitlab(&["run", "scenarios/examples/restart-on-failure.toml"], Some(NO_ENGINE));
    assert_eq!(out.status.code(), Some(3), "stderr:\n{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("nonexistent.sock"), "{}", text(&out.stderr));
}

#[test]
fn every_malformed_file_exits_2_with_positions_and_starts_nothing() {
    let mut checked = 0;
    for path in malformed() {
        let errors = declared_errors(&path);
        let rel = path.strip_prefix(repo()).unwrap().to_path_buf();
        let out = unitlab(&["run", rel.to_str().unwrap()], Some(NO_ENGINE));
        let stderr = text(&out.stderr);
        if errors.is_empty() {
            // Warnings only: the scenario is valid, so the run goes on to the engine (exit 3
            // here, as nothing answers) after printing the warnings with their positions.
            assert_eq!(out.status.code(), Some(3), "{}: warnings must not stop a run\n{stderr}", rel.display());
            assert!(stderr.contains(&format!("{}:", rel.display())) && stderr.contains("warning"), "{stderr}");
            continue;
        }
        assert_eq!(out.status.code(), Some(2), "{}:\n{stderr}", rel.display());
        for pos in &errors {
            let want = format!("{}:{pos}", rel.display());
            assert!(stderr.contains(&want), "{} must show {want}:\n{stderr}", rel.display());
        }
        assert!(!stderr.contains("Docker Engine"), "{}: the engine was contacted:\n{stderr}", rel.display());
        assert!(out.stdout.is_empty(), "nothing is reported on stdout for bad input");
        checked += 1;
    }
    assert!(checked >= 15, "the corpus has at least 15 files with errors, checked {checked}");
}

#[test]
fn one_bad_file_among_good_ones_stops_everything() {
    let out = unitlab(&["run", "scenarios/", "tests/malformed/bad-signal.toml"], Some(NO_ENGINE));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

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
    let shipped = std::fs::read_dir(repo().join("scenarios/examples")).unwrap().count();
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
