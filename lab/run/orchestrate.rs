//! The whole run: images per suite, one job per (scenario, suite), at most `jobs` at once,
//! shared targets through a [`Pool`] per suite and a pristine target for each scenario that
//! needs one; results in load order whatever order they finished in.

use std::collections::HashMap;
use std::time::Instant;

use tokio::sync::{Mutex, Semaphore};

use super::execute::{execute, Input};
use super::plan::claims;
use super::pool::Pool;
use crate::target::engine::Engine;
use crate::systemd::Suite;
use crate::target::image::{ensure_image, ImageError, ImageRef};
use crate::progress::Progress;
use crate::scenario::{Diagnostic, Scenario};
use crate::target::{Target, TargetError, TargetOptions};
use crate::verdict::{Outcome, RunEvent, RunReport, ScenarioResult};

/// Scenarios run at once by default: they mostly wait on systemd's timers, not on the CPU.
pub const DEFAULT_JOBS: usize = 4;

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// At most this many scenarios run at the same time (and a suite never has more shared
    /// targets than this).
    pub jobs: usize,
    /// Keep every target afterwards for inspection.
    pub keep: bool,
    /// Only these suites (empty: each scenario's own `suites`). A scenario runs on the suites
    /// it lists that are also given here.
    pub suites: Vec<Suite>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { jobs: DEFAULT_JOBS, keep: false, suites: Vec::new() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("preparing the {suite} target image: {source}")]
    Image {
        suite: Suite,
        #[source]
        source: ImageError,
    },
}

/// The (scenario, suite) pairs to run, in load order.
pub fn jobs<'a>(scenarios: &'a [Scenario], opts: &RunOptions) -> Vec<(&'a Scenario, Suite)> {
    scenarios
        .iter()
        .flat_map(|s| s.suites.iter().filter(|suite| opts.suites.is_empty() || opts.suites.contains(suite)).map(move |suite| (s, *suite)))
        .collect()
}

/// Run every scenario on its suites. `Err` only when the lab cannot start at all (an image);
/// a target that fails to boot or a command that fails inside it turns into that scenario's
/// `Outcome::Error`, and the other scenarios still run.
pub async fn run(
    engine: &Engine,
    scenarios: &[Scenario],
    diagnostics: &[Diagnostic],
    opts: &RunOptions,
    progress: &dyn Progress,
    on_event: &(dyn Fn(RunEvent) + Send + Sync),
) -> Result<RunReport, RunError> {
    let started = Instant::now();
    let jobs = jobs(scenarios, opts);
    let mut images: HashMap<Suite, ImageRef> = HashMap::new();
    for suite in Suite::ALL {
        if jobs.iter().any(|(_, s)| *s == suite) {
            let image = ensure_image(engine, suite, false, progress).await.map_err(|source| RunError::Image { suite, source })?;
            images.insert(suite, image);
        }
    }
    let pools: HashMap<Suite, Pool> =
        images.iter().map(|(suite, image)| (*suite, Pool::new(engine.clone(), image.clone(), opts.keep, opts.jobs))).collect();
    let permits = Semaphore::new(opts.jobs.max(1));
    let kept = std::sync::Mutex::new(Vec::<String>::new());
    let futures = jobs.iter().map(|(scenario, suite)| {
        let (pools, images, permits, kept) = (&pools, &images, &permits, &kept);
        async move {
            let _permit = permits.acquire().await.expect("the semaphore is never closed");
            on_event(RunEvent::ScenarioStarted { name: scenario.name.clone(), suite: suite.name().to_string() });
            let diagnostics: Vec<Diagnostic> =
                diagnostics.iter().filter(|d| d.path == scenario.path && !d.is_error()).cloned().collect();
            let result = if scenario.needs_pristine_target() {
                run_pristine(engine, &images[suite], scenario, *suite, opts.keep, diagnostics, on_event, kept).await
            } else {
                let pool = &pools[suite];
                match pool.acquire(&claims(scenario)).await {
                    Ok(lease) => {
                        let input = Input {
                            scenario,
                            suite: *suite,
                            target: &lease.target,
                            reload: &lease.reload,
                            clean_up: true,
                            diagnostics,
                            on_event,
                        };
                        let result = execute(&input).await;
                        pool.release(lease).await;
                        result
                    }
                    Err(e) => error_result(scenario, *suite, format!("boot a shared {suite} target: {e}")),
                }
            };
            on_event(RunEvent::ScenarioFinished(Box::new(result.clone())));
            result
        }
    });
    let results = futures_util::future::join_all(futures).await;
    for (_, pool) in pools {
        let (hints, errors) = pool.close().await;
        for hint in hints {
            progress.finish(&hint);
        }
        for e in errors {
            progress.finish(&format!("teardown: {e}"));
        }
    }
    for hint in kept.into_inner().unwrap_or_default() {
        progress.finish(&hint);
    }
    Ok(RunReport::new(results, started.elapsed()))
}

/// A target of its own: booted, given the scenario's manager settings, removed afterwards.
#[allow(clippy::too_many_arguments)]
async fn run_pristine(
    engine: &Engine,
    image: &ImageRef,
    scenario: &Scenario,
    suite: Suite,
    keep: bool,
    diagnostics: Vec<Diagnostic>,
    on_event: &(dyn Fn(RunEvent) + Send + Sync),
    kept: &std::sync::Mutex<Vec<String>>,
) -> ScenarioResult {
    let opts = TargetOptions { keep, purpose: format!("run-{}", scenario.name), ..Default::default() };
    let target = match Target::boot(engine, image, opts).await {
        Ok(t) => t,
        Err(e) => return error_result(scenario, suite, format!("boot a {suite} target for {}: {e}", scenario.name)),
    };
    let mut result = match configure(&target, scenario).await {
        Ok(()) => {
            let reload = Mutex::new(());
            let input = Input { scenario, suite, target: &target, reload: &reload, clean_up: false, diagnostics, on_event };
            execute(&input).await
        }
        Err(e) => {
            let mut r = error_result(scenario, suite, format!("apply the [manager] settings of {} on {}: {e}", scenario.name, target.name()));
            r.systemd = target.systemd_version().to_string();
            r
        }
    };
    if target.is_kept() {
        kept.lock().unwrap().push(target.enter_hint());
    }
    if let Err(e) = target.teardown().await {
        result.outcome = Outcome::Error;
        result.error.get_or_insert(format!("remove the target of {}: {e}", scenario.name));
    }
    result
}

async fn configure(target: &Target, scenario: &Scenario) -> Result<(), TargetError> {
    if scenario.manager.is_empty() {
        return Ok(());
    }
    let settings: Vec<(String, String)> = scenario.manager.directives.iter().map(|d| (d.key.clone(), d.value.clone())).collect();
    target.configure_manager(&settings).await
}

fn error_result(scenario: &Scenario, suite: Suite, error: String) -> ScenarioResult {
    ScenarioResult {
        outcome: Outcome::Error,
        error: Some(error),
        ..ScenarioResult::new(&scenario.name, &scenario.description, &scenario.path, suite.name(), "")
    }
}
