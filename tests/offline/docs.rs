//! The README states measured facts; these tests keep it from drifting away from the code:
//! its Restart= table is the oracle's, every reviewed deviation is listed, and it opens with
//! the two set-up commands.

use unitlab::systemd::RestartPolicy;
use unitlab::tables::oracle::{self, CellKey, Cause};

const README: &str = include_str!("../../README.md");

#[test]
fn readme_opens_with_the_demo_and_the_test_command() {
    let block = README.split("```sh\n").nth(1).and_then(|b| b.split("```").next()).expect("a sh code block");
    let commands: Vec<&str> = block.lines().map(|l| l.split('#').next().unwrap().trim()).collect();
    assert_eq!(commands, vec!["cargo run -- demo restart", "cargo test"]);
    assert!(README.find("```sh").unwrap() < README.find("## ").unwrap(), "the commands come first");
}

#[test]
fn readme_restart_table_is_the_documented_one() {
    for cause in Cause::ALL {
        let row = README
            .lines()
            .find(|l| l.starts_with(&format!("| {} |", cause.documented_label())))
            .unwrap_or_else(|| panic!("README has no row for {}", cause.documented_label()));
        let marks: Vec<&str> = row.trim_matches('|').split('|').skip(1).map(str::trim).collect();
        let expected: Vec<&str> = RestartPolicy::ALL.iter().map(|p| if oracle::restart_documented(*p, cause) { "X" } else { "." }).collect();
        assert_eq!(marks, expected, "row {}", cause.documented_label());
    }
}

#[test]
fn readme_lists_every_reviewed_deviation() {
    for d in oracle::DEVIATIONS {
        let CellKey::Type { program, configured } = d.cell else {
            panic!("the README only has a Type= deviations list; add a Restart= one for {:?}", d.cell)
        };
        let line = format!("**{program} program, Type={configured}**");
        assert!(README.contains(&line), "README must explain the deviation {line}");
        let cell = format!("**{}**", d.observed);
        assert!(README.contains(&cell), "README's type table must show the observed {}", d.observed);
    }
}
