//! The service author's integration test: run tiny-web (built by cargo for this test) under its
//! own unit file on real systemd, SIGKILL it, and assert on unitlab's typed report: no CLI,
//! no JSON parsing. Needs a Docker Engine and root, like every unitlab run.

use std::path::{Path, PathBuf};

use unitlab::verdict::{Observed, Outcome};

/// The scenario and unit file live in this crate; the binary is cargo's. A `source` is
/// relative to its scenario file, so all three are staged together in a temporary directory.
fn stage(dir: &Path) -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenario");
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::create_dir_all(dir.join("units")).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_tiny-web"), dir.join("bin/tiny-web")).unwrap();
    std::fs::copy(here.join("units/tiny-web.service"), dir.join("units/tiny-web.service")).unwrap();
    std::fs::copy(here.join("tiny-web.toml"), dir.join("tiny-web.toml")).unwrap();
    dir.join("tiny-web.toml")
}

#[tokio::test]
async fn tiny_web_comes_back_after_sigkill_on_every_suite() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = stage(dir.path());

    let report = unitlab::run_scenario_file(&scenario, &unitlab::RunOptions::default()).await.unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(report.results.len(), 2, "bookworm and trixie, the scenario's default suites");
    for result in &report.results {
        let failed: Vec<String> =
            result.failed_checks().map(|c| format!("{}: expected {}, observed {}", c.location, c.expected, c.observed)).collect();
        assert_eq!(result.outcome, Outcome::Pass, "{} on {}: {:?} {failed:#?}", result.name, result.suite, result.error);
        // The unit file was installed as written, under its own name.
        assert_eq!(result.units[0].0, "tiny-web.service");
        // How the SIGKILLed run ended, and that systemd restarted it.
        let restart = result.observations.iter().find_map(|o| match &o.value {
            Observed::Restart { result, restarted, .. } => Some((result.clone(), *restarted)),
            _ => None,
        });
        assert_eq!(restart, Some((Some("signal".to_string()), Some(true))), "{}", result.suite);
        // expect-recovery measured the time back to a 200: well inside its 5 s.
        let healthy = result.timings.iter().find(|t| t.name == "time to healthy").expect("a time to healthy");
        assert!(healthy.value < std::time::Duration::from_secs(5), "{:?}", healthy.value);
    }
}
