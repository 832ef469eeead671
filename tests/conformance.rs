//! The documented tables on real systemd: one rstest case per cell per suite (2 x (35 + 16)).
//!
//! Each suite's matrix is measured once (all cells concurrently in one target) and every case
//! asserts its own cell: observed == documented, unless the cell is in the reviewed deviations
//! list for that systemd version, in which case the observed deviation itself is asserted, so
//! a change either way fails loudly. Each case snapshots the cell's normalised journal (one
//! snapshot per cell and systemd version).

mod support;

use std::collections::HashMap;
use std::sync::Arc;

use rstest::rstest;
use unitlab::tables::conformance::{self, CellResult, MatrixRun};
use unitlab::tables::cells::Table;
use unitlab::tables::oracle::{self, CellKey, Cause, RestartPolicy, ServiceType};
use unitlab::progress::Lines;
use unitlab::Suite;

static RUNS: tokio::sync::Mutex<Option<HashMap<Suite, Arc<MatrixRun>>>> = tokio::sync::Mutex::const_new(None);

/// The measured matrix of a suite, measured on first use.
async fn measured(suite: Suite) -> Arc<MatrixRun> {
    let mut runs = RUNS.lock().await;
    if let Some(run) = runs.get_or_insert_with(HashMap::new).get(&suite) {
        return run.clone();
    }
    let image = support::image(suite).await;
    let engine = support::engine().await;
    let run = conformance::run(&engine, &image, &[Table::Restart, Table::Type], false, &Lines)
        .await
        .unwrap_or_else(|e| panic!("measuring the matrices on {suite}: {e}"));
    eprintln!("{suite}: {} cells measured in {} ms wall, boot included", run.cells.len(), run.elapsed_ms);
    let run = Arc::new(run);
    runs.get_or_insert_with(HashMap::new).insert(suite, run.clone());
    run
}

fn check(run: &MatrixRun, key: CellKey, snapshot: &str) {
    let cell: &CellResult = run.cells.iter().find(|c| c.key == key).unwrap_or_else(|| panic!("{key:?} was not measured"));
    let context = format!(
        "{} on {}: documented {}, observed {} (ActiveState={} SubState={} Result={} NRestarts={})\ntimeline: {:#?}",
        cell.unit, run.systemd, cell.documented, cell.observed, cell.active_state, cell.sub_state, cell.result, cell.restarts, cell.timeline.events
    );
    match oracle::deviation(key, run.systemd_major) {
        Some(d) => assert_eq!(
            cell.observed, d.observed,
            "reviewed deviation no longer holds (review lab/oracle.rs DEVIATIONS): {context}"
        ),
        None => assert_eq!(cell.observed, cell.documented, "systemd disagrees with the documented table: {context}"),
    }
    insta::with_settings!({ snapshot_suffix => format!("systemd{}", run.systemd_major), prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!(snapshot, cell.journal);
    });
}

fn suite_of(name: &str) -> Suite {
    name.parse().unwrap()
}

#[rstest]
#[tokio::test]
async fn restart_cell(
    #[values("bookworm", "trixie")] suite: &str,
    #[values("no", "always", "on-success", "on-failure", "on-abnormal", "on-abort", "on-watchdog")] restart: &str,
    #[values("clean-exit", "unclean-exit-code", "unclean-signal", "timeout", "watchdog")] cause: &str,
) {
    let policy = *RestartPolicy::ALL.iter().find(|p| p.name() == restart).unwrap();
    let cause_v = *Cause::ALL.iter().find(|c| c.name() == cause).unwrap();
    let run = measured(suite_of(suite)).await;
    check(&run, CellKey::Restart(policy, cause_v), &format!("restart-{restart}-{cause}"));
}

#[rstest]
#[tokio::test]
async fn type_cell(
    #[values("bookworm", "trixie")] suite: &str,
    #[values("simple", "forking", "oneshot", "notify")] program: &str,
    #[values("simple", "forking", "oneshot", "notify")] configured: &str,
) {
    let p = *ServiceType::ALL.iter().find(|t| t.name() == program).unwrap();
    let c = *ServiceType::ALL.iter().find(|t| t.name() == configured).unwrap();
    let run = measured(suite_of(suite)).await;
    check(&run, CellKey::Type { program: p, configured: c }, &format!("type-{program}-as-{configured}"));
}
