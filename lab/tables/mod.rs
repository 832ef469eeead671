//! The documented tables (Restart= of systemd.service(5), the wrong-Type= table, Restart= ×
//! every way a service ends) as generated scenarios and their judges: the claims as documented with the reviewed deviations
//! (`oracle`), every cell as a scenario file the runner runs like any other (`cells`), and the
//! classification of what each cell observed (`judge`), and systemd's own restart rule from
//! its source (`rule`). [`measure`] is the glue: generate,
//! run, judge.

pub mod cells;
pub mod judge;
pub mod oracle;
pub mod rule;

use crate::progress::Progress;
use crate::run::{self, RunError, RunOptions};
use crate::systemd::Suite;
use crate::target::{Engine, Fixture};
use crate::verdict::{RunEvent, RunReport};

pub use cells::{Cell, CellError, Table};

/// Why tables could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error(transparent)]
    Cell(#[from] CellError),
    #[error(transparent)]
    Run(#[from] RunError),
}

/// Measure `tables` on `suites`: every cell as its own scenario, all of a suite's cells
/// concurrently on targets shared by their manager settings, then judged against the documented
/// tables. The report carries each cell's result and one table report per (table, suite).
pub async fn measure(
    engine: &Engine,
    tables: &[Table],
    suites: &[Suite],
    keep: bool,
    progress: &dyn Progress,
    on_event: &(dyn Fn(RunEvent) + Send + Sync),
) -> Result<RunReport, MeasureError> {
    measure_on(engine, tables, suites, &[], keep, progress, on_event).await
}

/// [`measure`] on `fixtures` (empty: a container): the cells name no fixture, so they run on
/// each fixture given, one target per suite and fixture.
pub async fn measure_on(
    engine: &Engine,
    tables: &[Table],
    suites: &[Suite],
    fixtures: &[Fixture],
    keep: bool,
    progress: &dyn Progress,
    on_event: &(dyn Fn(RunEvent) + Send + Sync),
) -> Result<RunReport, MeasureError> {
    let cells = cells::cells(tables, suites)?;
    let scenarios: Vec<_> = cells.iter().map(|c| c.scenario.clone()).collect();
    let opts = RunOptions { keep, suites: suites.to_vec(), fixtures: fixtures.to_vec(), ..RunOptions::default() };
    let mut report = run::run(engine, &scenarios, &[], &opts, progress, on_event).await?;
    let names: Vec<_> = cells.iter().map(|c| (c.key, c.scenario.name.clone())).collect();
    judge::judge(&mut report, &names);
    Ok(report)
}
