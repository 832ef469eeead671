//! The documented tables on real systemd, through the same runner as every scenario: per suite,
//! both tables measured at once (every cell its own generated scenario, all on one target),
//! and every cell asserted: observed == documented, unless the cell is in the reviewed
//! deviations list for that systemd version, in which case the observed deviation itself is
//! asserted, so a change either way fails loudly. Each cell's normalised journal is
//! snapshotted (one snapshot per cell and systemd version).
//!
//! One test per suite rather than one per cell: the whole table is one measurement, and a test
//! per suite partitions cleanly across machines (`cargo nextest run --partition`).

use rstest::rstest;
use unitlab::progress::Lines;
use unitlab::tables::judge::judge_cell;
use unitlab::tables::oracle;
use unitlab::tables::{self, Table};
use unitlab::verdict::{Outcome, RunReport};
use unitlab::Suite;

fn major(r: &RunReport) -> u32 {
    r.results[0].systemd.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0)
}

#[rstest]
#[case::bullseye(Suite::Bullseye, 247)]
#[case::bookworm(Suite::Bookworm, 252)]
#[case::bookworm_backports(Suite::BookwormBackports, 254)]
#[case::trixie(Suite::Trixie, 257)]
#[case::sid(Suite::Sid, 262)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_tables_hold_or_deviate_exactly_as_reviewed(#[case] suite: Suite, #[case] systemd: u32) {
    crate::support::image(suite).await;
    let engine = crate::support::engine().await;
    let report = tables::measure(&engine, &Table::ALL, &[suite], false, &Lines, &|_| {})
        .await
        .unwrap_or_else(|e| panic!("measuring the tables on {suite}: {e}"));
    println!("{suite}: {} cells measured in {:.1} s wall, boot included", report.results.len(), report.duration.as_secs_f64());
    assert_eq!(major(&report), systemd);
    let cells = tables::cells::cell_files(&Table::ALL, &[suite]);
    assert_eq!(report.results.len(), cells.len(), "one result per cell");
    assert_eq!(report.tables.len(), 2, "a restart and a type table");
    let mut problems = Vec::new();
    for (key, _) in &cells {
        let name = tables::cells::scenario_name(*key);
        let r = report.results.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("{name} was not measured"));
        if r.outcome == Outcome::Error {
            problems.push(format!("{name}: the lab could not measure it: {}", r.error.as_deref().unwrap_or("")));
            continue;
        }
        let v = judge_cell(*key, r, systemd);
        let context = format!("{name} on {}: documented {}, observed {} ({})", r.systemd, v.documented, v.observed, v.detail);
        match oracle::deviation(*key, systemd) {
            Some(d) if v.observed != d.observed => problems.push(format!("reviewed deviation no longer holds (review DEVIATIONS): {context}")),
            None if !v.agrees => problems.push(format!("systemd disagrees with the documented table: {context}")),
            _ => {}
        }
    }
    // The verdicts first: a cell that flips matters more than how its journal reads.
    assert!(problems.is_empty(), "{} cell(s):\n{}", problems.len(), problems.join("\n"));
    for (key, _) in &cells {
        let name = tables::cells::scenario_name(*key);
        let r = report.results.iter().find(|r| r.name == name).expect("checked above");
        let snapshot = r.snapshot.clone().unwrap_or_else(|| panic!("{name} keeps a journal snapshot"));
        insta::with_settings!({ snapshot_suffix => format!("systemd{systemd}"), prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!(name.as_str(), snapshot);
        });
    }
    assert!(report.tables.iter().all(|t| t.as_expected()));
    assert_eq!(report.outcome, Outcome::Pass);
}
