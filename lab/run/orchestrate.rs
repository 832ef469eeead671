//! The whole run: images per suite, one job per (scenario, suite), all at once unless `jobs`
//! bounds them,
//! shared targets through a [`Pool`] per (suite, `[manager]` settings) and a pristine target
//! for each scenario that asks for one; results in load order whatever order they finished in.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use tokio::sync::Semaphore;

use super::execute::{execute, Executed, Input};
use super::plan::claims;
use super::pool::Pool;
use super::session::Session;
use crate::progress::Progress;
use crate::scenario::{Diagnostic, Scenario};
use crate::systemd::Suite;
use crate::target::Fixture;
use crate::target::image::{ensure_image, ImageError, ImageRef};
use crate::target::packages::ensure_packages_image;
use crate::target::limits::Limits;
use crate::target::{Engine, Target, TargetOptions};
use crate::verdict::{Outcome, RunEvent, RunReport, ScenarioResult};
use super::order::History;

/// Shared targets a pool boots at most when `jobs` is not given: scenarios that collide on a
/// port or file beyond that take turns. Each target is a few tens of MB and no CPU at rest.
pub const MAX_SHARED_TARGETS: usize = 8;

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// At most this many scenarios at the same time (and a pool never has more shared targets
    /// than this). `None`, `unitlab run`'s default: as many as the work allows. Scenarios
    /// mostly wait on systemd's timers, which costs no CPU, so they all start at once, longest
    /// first (see [`super::order`]); what needs the machine is bounded where it is needed:
    /// boots take a host-wide slot per core (`target::slots`) and wait for room on the host
    /// (`target::capacity`), and commands go through each target's channel instead of one
    /// engine exec each (`target::channel`). Before the channel, all at once missed timing
    /// checks (2 to 11 of 38 on 2 cores) and the default was 4 per core; with it, 72 jobs at
    /// once passed.
    pub jobs: Option<usize>,
    /// Keep every target afterwards for inspection.
    pub keep: bool,
    /// Only these suites (empty: each scenario's own `suites`). A scenario runs on the suites
    /// it lists that are also given here.
    pub suites: Vec<Suite>,
    /// Run only one share of the (scenario, suite) jobs, for a CI matrix of machines.
    pub partition: Option<Partition>,
    /// `--fixture`: the fixtures asked for (empty: each scenario's own; see
    /// [`Scenario::fixtures_for`]).
    pub fixtures: Vec<Fixture>,
}

/// Share `index` of `count` (1-based), like nextest's count partitions: job *i* (0-based, in
/// load order) belongs to share `i % count + 1`. Every machine of a CI matrix computes the same
/// split from the same files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Partition {
    type Err = String;
    /// `k/n` with 1 <= k <= n.
    fn from_str(s: &str) -> Result<Partition, String> {
        let (k, n) = s.split_once('/').ok_or_else(|| format!("`{s}` is not k/n (e.g. 1/3)"))?;
        let k: usize = k.trim().parse().map_err(|_| format!("`{k}` is not a number"))?;
        let n: usize = n.trim().parse().map_err(|_| format!("`{n}` is not a number"))?;
        if n == 0 || k == 0 || k > n {
            return Err(format!("share {k} of {n} does not exist: k must be 1..={n}"));
        }
        Ok(Partition { index: k, count: n })
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

/// The (scenario, suite) pairs to run, in load order (this machine's share of them, with a
/// partition).
pub fn jobs<'a>(scenarios: &'a [Scenario], opts: &RunOptions) -> Vec<(&'a Scenario, Suite, Fixture)> {
    scenarios
        .iter()
        .flat_map(|s| {
            let fixtures = s.fixtures_for(&opts.fixtures);
            job_suites(s, &opts.suites)
                .into_iter()
                .flat_map(move |suite| fixtures.clone().into_iter().map(move |fixture| (s, suite, fixture)))
        })
        .enumerate()
        .filter(|(i, _)| opts.partition.is_none_or(|p| i % p.count + 1 == p.index))
        .map(|(_, job)| job)
        .collect()
}

fn job_key(scenario: &Scenario, suite: Suite, fixture: Fixture) -> String {
    super::order::key(&scenario.path, &scenario.name, suite.name(), fixture.name())
}

/// The suites `scenario` runs on given the `--suite`s (`given`, empty when none): its own list
/// filtered by them; a scenario without a list runs on every suite given (its default of
/// bookworm and trixie only without `--suite`), so `--suite bullseye` reaches it.
pub fn job_suites(scenario: &Scenario, given: &[Suite]) -> Vec<Suite> {
    match (given.is_empty(), scenario.suites_listed) {
        (true, _) => scenario.suites.clone(),
        (false, true) => scenario.suites.iter().copied().filter(|s| given.contains(s)).collect(),
        (false, false) => given.to_vec(),
    }
}

/// Which pool a scenario's targets come from: its suite, its fixture, its `[manager]`
/// settings and its `[limits]`.
type PoolKey = (Suite, Fixture, String, Limits);

fn pool_key(scenario: &Scenario, suite: Suite, fixture: Fixture) -> PoolKey {
    (suite, fixture, scenario.manager.render(), scenario.limits)
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
    // Started longest first; reported in the given order.
    let history_path = History::default_path();
    let history = history_path.as_deref().map(History::load).unwrap_or_default();
    let mut start_order: Vec<usize> = (0..jobs.len()).collect();
    history.order(&mut start_order, |&i| job_key(jobs[i].0, jobs[i].1, jobs[i].2));
    let mut images: HashMap<Suite, ImageRef> = HashMap::new();
    for suite in Suite::ALL {
        if jobs.iter().any(|(_, s, _)| *s == suite) {
            let image = ensure_image(engine, suite, false, progress).await.map_err(|source| RunError::Image { suite, source })?;
            images.insert(suite, image);
        }
    }
    // The `packages` images too, before any job starts: a job that looked its image up first
    // would queue for a boot turn behind every job that did not (measured: seed 001's 24 s
    // real-program scenario, first by the history, booted 32 s into the run).
    let mut packages_images: HashMap<(Suite, Vec<String>), Result<ImageRef, String>> = HashMap::new();
    for (scenario, suite, _) in &jobs {
        if scenario.packages.is_empty() || packages_images.contains_key(&(*suite, scenario.packages.clone())) {
            continue;
        }
        let image = ensure_packages_image(engine, &images[suite], &scenario.packages, progress).await.map_err(|e| e.to_string());
        packages_images.insert((*suite, scenario.packages.clone()), image);
    }
    // Booting is the CPU-bound part: Target::boot takes a host-wide boot slot (one per core).
    let max_targets = opts.jobs.unwrap_or(MAX_SHARED_TARGETS);
    let mut pools: BTreeMap<PoolKey, Pool> = BTreeMap::new();
    for (scenario, suite, fixture) in jobs.iter().filter(|(s, _, _)| !s.needs_pristine_target()) {
        let pool = pools.entry(pool_key(scenario, *suite, *fixture)).or_insert_with(|| {
            Pool::new(engine.clone(), images[suite].clone(), scenario.manager.clone(), scenario.limits, opts.keep, max_targets).on(*fixture)
        });
        pool.expect(1);
    }
    let permits = Semaphore::new(opts.jobs.unwrap_or(jobs.len()).max(1));
    let kept = std::sync::Mutex::new(Vec::<String>::new());
    let futures = start_order.iter().map(|&index| {
        let (scenario, suite, fixture) = &jobs[index];
        let fixture = *fixture;
        let (pools, images, packages_images, permits, kept) = (&pools, &images, &packages_images, &permits, &kept);
        async move {
            let _permit = permits.acquire().await.expect("the semaphore is never closed");
            on_event(RunEvent::ScenarioStarted { name: scenario.name.clone(), suite: suite.name().to_string() });
            let diagnostics: Vec<Diagnostic> =
                diagnostics.iter().filter(|d| d.path == scenario.path && !d.is_error()).cloned().collect();
            let result = if !scenario.packages.is_empty() {
                // Its own target, booted from the suite's image with the packages installed.
                match &packages_images[&(*suite, scenario.packages.clone())] {
                    Ok(image) => {
                        run_pristine(engine, image, scenario, *suite, fixture, opts.keep, diagnostics, on_event, kept).await
                    }
                    Err(e) => error_result(scenario, *suite, format!("prepare the packages of {} on {suite}: {e}", scenario.name)),
                }
            } else if scenario.needs_pristine_target() {
                run_pristine(engine, &images[suite], scenario, *suite, fixture, opts.keep, diagnostics, on_event, kept).await
            } else {
                let pool = &pools[&pool_key(scenario, *suite, fixture)];
                match pool.acquire(&claims(scenario)).await {
                    Ok(lease) => {
                        let input = Input { scenario, suite: *suite, session: &lease.session, shared: true, diagnostics: diagnostics.clone(), on_event };
                        match execute(&input).await {
                            Executed::Done(mut result, leftovers) => {
                                // Once no scenario will come to this pool, leftovers go with
                                // the target instead of one by one.
                                if pool.more_to_come() {
                                    if let Err(e) = lease.session.clean_up(leftovers).await {
                                        result.outcome = Outcome::Error;
                                        result.error.get_or_insert(format!("clean up after {} on {}: {e}", scenario.name, lease.session.target().name()));
                                    }
                                }
                                pool.release(lease).await;
                                *result
                            }
                            Executed::NeedsOwnTarget(paths) => {
                                pool.release(lease).await;
                                // Visibly: the report says why this scenario did not share.
                                let why = format!("writes {}, which the target image holds: ran on a target of its own so that no other scenario sees the change", paths.join(", "));
                                let mut result = run_pristine(engine, &images[suite], scenario, *suite, fixture, opts.keep, diagnostics, on_event, kept).await;
                                result.warnings.insert(0, why);
                                result
                            }
                        }
                    }
                    Err(e) => error_result(scenario, *suite, format!("boot a shared {suite} target: {e}")),
                }
            };
            let mut result = result;
            result.fixture = fixture.name().to_string();
            on_event(RunEvent::ScenarioFinished(Box::new(result.clone())));
            (index, result)
        }
    });
    let mut finished = futures_util::future::join_all(futures).await;
    finished.sort_by_key(|(index, _)| *index);
    let results: Vec<ScenarioResult> = finished.into_iter().map(|(_, result)| result).collect();
    let closing = pools.into_values().map(|pool| pool.close());
    for (hints, errors) in futures_util::future::join_all(closing).await {
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
    if let Some(path) = &history_path {
        // Only jobs that ran to an outcome say how long they take; an error may have ended early.
        let durations = jobs.iter().zip(&results).filter(|(_, r)| r.outcome != Outcome::Error).map(|((scenario, suite, fixture), r)| (job_key(scenario, *suite, *fixture), r.duration.as_secs_f64()));
        if let Err(e) = History::record(path, durations) {
            tracing::warn!(path = %path.display(), error = %e, "could not record the jobs' durations (they only order the next run)");
        }
    }
    Ok(RunReport::new(results, started.elapsed()))
}

/// A target of its own: booted with the scenario's manager settings, removed afterwards.
#[allow(clippy::too_many_arguments)]
async fn run_pristine(
    engine: &Engine,
    image: &ImageRef,
    scenario: &Scenario,
    suite: Suite,
    fixture: Fixture,
    keep: bool,
    diagnostics: Vec<Diagnostic>,
    on_event: &(dyn Fn(RunEvent) + Send + Sync),
    kept: &std::sync::Mutex<Vec<String>>,
) -> ScenarioResult {
    let opts = TargetOptions { keep, purpose: format!("run-{}", scenario.name), manager: scenario.manager.clone(), limits: scenario.limits, fixture, ..Default::default() };
    let booted = Target::boot(engine, image, opts).await;
    let session = match booted {
        Ok(target) => match Session::open(target).await {
            Ok(session) => session,
            Err(e) => return error_result(scenario, suite, format!("follow the journal of a {suite} target for {}: {e}", scenario.name)),
        },
        Err(e) => return error_result(scenario, suite, format!("boot a {suite} target for {}: {e}", scenario.name)),
    };
    let input = Input { scenario, suite, session: &session, shared: false, diagnostics, on_event };
    let mut result = match execute(&input).await {
        Executed::Done(result, _) => *result,
        Executed::NeedsOwnTarget(_) => unreachable!("a target of its own guards no file"),
    };
    match session.close().await {
        Ok(Some(hint)) => kept.lock().unwrap().push(hint),
        Ok(None) => {}
        Err(e) => {
            result.outcome = Outcome::Error;
            result.error.get_or_insert(format!("remove the target of {}: {e}", scenario.name));
        }
    }
    result
}

fn error_result(scenario: &Scenario, suite: Suite, error: String) -> ScenarioResult {
    ScenarioResult {
        outcome: Outcome::Error,
        error: Some(error),
        ..ScenarioResult::new(&scenario.name, &scenario.description, &scenario.path, suite.name(), "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(suites: Option<&str>) -> Scenario {
        let list = suites.map(|s| format!("suites = [{s}]\n")).unwrap_or_default();
        let text = format!("name = \"s\"\n{list}[[units]]\nname = \"a\"\nexec = [\"/bin/true\"]\n[[steps]]\ndo = \"start\"\nunit = \"a\"\n");
        crate::scenario::parse_str(std::path::Path::new("s.toml"), &text).expect("valid").0
    }

    #[test]
    fn a_scenario_without_a_list_runs_on_the_given_suites() {
        let free = scenario(None);
        assert_eq!(job_suites(&free, &[]), Suite::DEFAULT);
        assert_eq!(job_suites(&free, &[Suite::Bullseye]), [Suite::Bullseye]);
        assert_eq!(job_suites(&free, &Suite::ALL), Suite::ALL);
        let listed = scenario(Some("\"trixie\", \"bullseye\""));
        assert_eq!(job_suites(&listed, &[]), [Suite::Trixie, Suite::Bullseye]);
        assert_eq!(job_suites(&listed, &[Suite::Bullseye, Suite::Sid]), [Suite::Bullseye]);
        assert!(job_suites(&listed, &[Suite::Bookworm]).is_empty());
    }
}
