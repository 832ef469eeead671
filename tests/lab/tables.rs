//! The documented tables on real systemd, through the same runner as every scenario: per suite,
//! the Restart= and Type= tables measured at once (every cell its own generated scenario, all on one target),
//! and every cell asserted: observed == documented, unless the cell is in the reviewed
//! deviations list for that systemd version, in which case the observed deviation itself is
//! asserted, so a change either way fails loudly. Each cell's normalised journal is
//! snapshotted (one snapshot per cell and systemd version).
//!
//! One test per suite rather than one per cell: the whole table is one measurement, and a test
//! per suite partitions cleanly across machines (`cargo nextest run --partition`).

use rstest::rstest;
use unitlab::progress::Lines;
use unitlab::tables::judge::{self, judge_cell};
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
    let both = [Table::Restart, Table::Type];
    let report = tables::measure(&engine, &both, &[suite], false, &Lines, &|_| {})
        .await
        .unwrap_or_else(|e| panic!("measuring the tables on {suite}: {e}"));
    println!("{suite}: {} cells measured in {:.1} s wall, boot included", report.results.len(), report.duration.as_secs_f64());
    assert_eq!(major(&report), systemd);
    let cells = tables::cells::cell_files(&both, &[suite]);
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

/// The results table (Restart= × every way a service ends): every cell must restart exactly as
/// the rule of systemd's source decides for the Result systemd logged, and that Result must be
/// the one the source gives the ending, or the reviewed deviation's (the OOM kill a cgroup v1
/// host cannot report). The documented value is compared cell by cell against
/// `oracle::results_documented`: a cell that disagrees with a documentation that speaks must be
/// one the source rule explains, and the silent cells are exactly the oracle's.
#[rstest]
#[case::bookworm(Suite::Bookworm, 252)]
#[case::trixie(Suite::Trixie, 257)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_results_table_follows_the_source_rule(#[case] suite: Suite, #[case] systemd: u32) {
    use unitlab::tables::oracle::{Documented, Ending};
    crate::support::image(suite).await;
    let engine = crate::support::engine().await;
    let report = tables::measure(&engine, &[Table::Results], &[suite], false, &Lines, &|_| {})
        .await
        .unwrap_or_else(|e| panic!("measuring the results table on {suite}: {e}"));
    println!("{suite}: {} cells measured in {:.1} s wall, boot included", report.results.len(), report.duration.as_secs_f64());
    assert_eq!(major(&report), systemd);
    let cells = tables::cells::cell_files(&[Table::Results], &[suite]);
    assert_eq!((report.results.len(), cells.len()), (7 * 18, 7 * 18), "one result per cell");
    let [table] = &report.tables[..] else { panic!("one results table, got {}", report.tables.len()) };
    let mut problems = Vec::new();
    for (key, _) in &cells {
        let oracle::CellKey::Result(policy, ending) = *key else { unreachable!("results cells only") };
        let name = tables::cells::scenario_name(*key);
        let r = report.results.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("{name} was not measured"));
        if r.outcome == Outcome::Error {
            problems.push(format!("{name}: the lab could not measure it: {}", r.error.as_deref().unwrap_or("")));
            continue;
        }
        let v = judge_cell(*key, r, systemd);
        let result = judge::observed_result(r);
        let rule = judge::source_decision(policy, ending, result.as_deref());
        let context = format!("{name} on {}: observed {} after Result {result:?}, source {} ({}); {}", r.systemd, v.observed, judge::restart_word(rule.restarts), rule.reason, v.detail);
        // The Result: the source's, or exactly the reviewed deviation's.
        let want = oracle::deviation(*key, systemd).map(|d| d.observed.to_string()).unwrap_or_else(|| ending.expected_result().to_string());
        if result.as_deref() != Some(want.as_str()) {
            problems.push(format!("Result is not {want}: {context}"));
        }
        // The restart: what the source rule decides for that Result.
        if v.observed != judge::restart_word(rule.restarts) {
            problems.push(format!("systemd does not follow the source rule: {context}"));
        }
        // The documentation: compared, never the judge; silent exactly where the oracle is.
        let silent = matches!(oracle::results_documented(policy, ending), Documented::Silent(_));
        assert_eq!(v.documented == judge::SILENT, silent, "{name}");
        if !v.agrees {
            assert!(v.explanation.is_some(), "{name}: a disagreement with the documentation carries its explanation");
        }
        assert!(table.cell(ending.name(), policy.as_str()).is_some(), "{name} is in the table");
    }
    assert!(problems.is_empty(), "{} cell(s):\n{}", problems.len(), problems.join("\n"));
    assert!(table.as_expected());
    assert_eq!(report.outcome, Outcome::Pass);
    // Rows the documentation is silent on are all present: protocol and exec-condition.
    for e in [Ending::Protocol, Ending::ExecCondition] {
        assert!(table.cells.iter().filter(|c| c.row == e.name() && c.documented == judge::SILENT).count() == 5, "{}", e.name());
    }
}
