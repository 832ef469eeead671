//! The library's front door: run scenario files and get the typed report back, exactly what
//! `unitlab run FILE --format json` prints, without the CLI. For a service author's own
//! `cargo test` (see `examples/own-service-test/`).

use std::path::{Path, PathBuf};

use crate::progress::{Progress, Silent};
use crate::scenario::{self, Diagnostic};
use crate::target::{Engine, EngineError};
use crate::verdict::RunReport;

use super::orchestrate::{run, RunError, RunOptions};

/// Why scenario files could not be run. A scenario that ran and whose expectations failed is
/// *not* an error: it is a [`RunReport`] whose `outcome` is [`crate::verdict::Outcome::Fail`].
#[derive(Debug, thiserror::Error)]
pub enum RunFilesError {
    /// The files do not validate (the CLI's exit 2): nothing was started. `rendered` is every
    /// diagnostic as `unitlab run` prints it, with `file:line:col`.
    #[error("{count} error(s) in the scenarios {}; nothing was run:\n{rendered}", paths_list(.paths))]
    Invalid { paths: Vec<PathBuf>, count: usize, rendered: String, diagnostics: Vec<Diagnostic> },
    /// The files validate but none runs on the suites asked for.
    #[error("none of the scenarios in {} runs on {suites}\n  fix: ask for a suite the scenarios list in `suites`", paths_list(.paths))]
    NoJobs { paths: Vec<PathBuf>, suites: String },
    /// No Docker Engine answered (the CLI's exit 3).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A target image could not be prepared (the CLI's exit 3).
    #[error(transparent)]
    Run(#[from] RunError),
}

fn paths_list(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// Validate and run one scenario file (or a directory of them) on the suites it lists, or on
/// `opts.suites` when given, and return the report: per (scenario, suite) a
/// [`crate::verdict::ScenarioResult`] with its checks, observations, timings and timeline.
///
/// Needs a Docker Engine and root, like `unitlab run`; the target image (and a `packages`
/// image) is built on first use. Progress goes nowhere; use [`run_scenario_files`] to see it.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use unitlab::verdict::Outcome;
///
/// let opts = unitlab::RunOptions { suites: vec![unitlab::Suite::Bookworm], ..Default::default() };
/// let report = unitlab::run_scenario_file("scenarios/examples/restart-on-failure.toml", &opts).await?;
/// for result in &report.results {
///     for check in result.failed_checks() {
///         eprintln!("{} {}: expected {}, observed {}", result.name, check.location, check.expected, check.observed);
///     }
/// }
/// assert_eq!(report.outcome, Outcome::Pass);
/// # Ok(())
/// # }
/// ```
pub async fn run_scenario_file(path: impl AsRef<Path>, opts: &RunOptions) -> Result<RunReport, RunFilesError> {
    run_scenario_files(&[path.as_ref().to_path_buf()], opts, &Silent).await
}

/// [`run_scenario_file`] for several files or directories at once (they share targets where
/// they can, as in one `unitlab run`), with progress (image builds, boots) sent to `progress`:
/// [`crate::progress::Lines`] writes it to stderr.
///
/// Validation comes first and is complete: any error in any file is
/// [`RunFilesError::Invalid`] and nothing starts.
///
/// ```no_run
/// # async fn demo() -> Result<(), unitlab::RunFilesError> {
/// let paths = ["scenarios/examples/own-service.toml".into(), "scenarios/examples/kill-signals.toml".into()];
/// let report = unitlab::run_scenario_files(&paths, &unitlab::RunOptions::default(), &unitlab::progress::Lines).await?;
/// println!("{}", serde_json::to_string_pretty(&report).unwrap()); // the JSON report's schema
/// # Ok(())
/// # }
/// ```
pub async fn run_scenario_files(paths: &[PathBuf], opts: &RunOptions, progress: &dyn Progress) -> Result<RunReport, RunFilesError> {
    let loaded = scenario::load_paths(paths);
    if loaded.has_errors() {
        let count = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
        return Err(RunFilesError::Invalid {
            paths: paths.to_vec(),
            count,
            rendered: scenario::render_all(&loaded.diagnostics),
            diagnostics: loaded.diagnostics,
        });
    }
    if super::orchestrate::jobs(&loaded.scenarios, opts).is_empty() {
        let suites = opts.suites.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ");
        return Err(RunFilesError::NoJobs { paths: paths.to_vec(), suites: if suites.is_empty() { "any suite".into() } else { suites } });
    }
    let engine = Engine::connect().await?;
    Ok(run(&engine, &loaded.scenarios, &loaded.diagnostics, opts, progress, &|_| {}).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn invalid_files_are_reported_with_their_positions_before_any_engine_is_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "name = \"bad\"\n[[steps]]\ndo = \"strat\"\nunit = \"web\"\n").unwrap();
        // DOCKER_HOST is not touched: validation must fail before an engine is needed.
        match run_scenario_file(&path, &RunOptions::default()).await {
            Err(RunFilesError::Invalid { count, rendered, .. }) => {
                assert!(count >= 1);
                assert!(rendered.contains("bad.toml:3:"), "{rendered}");
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_suite_no_scenario_lists_is_no_jobs_not_an_empty_report() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("only-trixie.toml");
        std::fs::write(&path, "name = \"only-trixie\"\nsuites = [\"trixie\"]\n[[units]]\nname = \"w\"\nexec = [\"/bin/true\"]\n[[steps]]\ndo = \"start\"\nunit = \"w\"\n").unwrap();
        let opts = RunOptions { suites: vec![crate::Suite::Bookworm], ..Default::default() };
        match run_scenario_file(&path, &opts).await {
            Err(e @ RunFilesError::NoJobs { .. }) => assert!(e.to_string().contains("runs on bookworm"), "{e}"),
            other => panic!("expected NoJobs, got {other:?}"),
        }
    }
}
