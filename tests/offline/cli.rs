//! `unitlab` on bad input, through the real binary and with no engine: every malformed file
//! exits 2 with its positions and starts nothing; a valid one reaches the engine (exit 3 when
//! none answers); an `--output` that could not be written is refused before anything starts.

use std::path::{Path, PathBuf};

use crate::bin::{repo, text, unitlab, NO_ENGINE};

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

#[test]
fn an_output_that_cannot_be_written_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir/report.json");
    for (output, want) in [(missing.to_str().unwrap(), "does not exist"), (dir.path().to_str().unwrap(), "is a directory")] {
        for command in [&["run", "scenarios/examples/restart-on-failure.toml"][..], &["matrix", "restart"][..]] {
            let mut args = command.to_vec();
            args.extend(["--format", "json", "--output", output]);
            let out = unitlab(&args, Some(NO_ENGINE));
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(stderr.contains(want) && stderr.contains("fix:"), "{args:?}: {stderr}");
            assert!(!stderr.contains("nonexistent.sock"), "the engine was contacted: {stderr}");
        }
    }
}

#[test]
fn every_command_takes_every_report_format() {
    for command in ["run", "matrix", "demo"] {
        let out = unitlab(&[command, "--help"], Some(NO_ENGINE));
        let help = text(&out.stdout);
        for format in ["human", "json", "junit", "markdown", "html"] {
            assert!(help.contains(format), "{command} --help lacks {format}:\n{help}");
        }
    }
}

#[test]
fn the_cells_can_be_emitted_as_scenario_files_that_load() {
    let dir = tempfile::tempdir().unwrap();
    let out = unitlab(&["matrix", "all", "--emit", dir.path().to_str().unwrap()], Some(NO_ENGINE));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let loaded = unitlab::scenario::load_paths(&[dir.path().to_path_buf()]);
    assert!(!loaded.has_errors(), "{}", unitlab::scenario::render_all(&loaded.diagnostics));
    assert_eq!(loaded.scenarios.len(), 35 + 16 + 126, "restart, type and results cells");
    let results = unitlab(&["matrix", "results", "--emit", dir.path().join("results").to_str().unwrap()], Some(NO_ENGINE));
    assert_eq!(results.status.code(), Some(0), "{}", text(&results.stderr));
    assert!(text(&results.stdout).starts_with("126 cell scenarios written"), "{}", text(&results.stdout));
    // Several tables at once, each once: the two documented tables are 51 cells.
    let two = unitlab(&["matrix", "restart", "type", "restart", "--emit", dir.path().join("two").to_str().unwrap()], Some(NO_ENGINE));
    assert_eq!(two.status.code(), Some(0), "{}", text(&two.stderr));
    assert!(text(&two.stdout).starts_with("51 cell scenarios written"), "{}", text(&two.stdout));
    // No table at all is a usage error.
    assert_eq!(unitlab(&["matrix"], Some(NO_ENGINE)).status.code(), Some(2));
}

#[test]
fn suite_all_names_every_suite_and_emitted_cells_list_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = unitlab(&["matrix", "all", "--suite", "all", "--emit", dir.path().to_str().unwrap()], Some(NO_ENGINE));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let loaded = unitlab::scenario::load_paths(&[dir.path().to_path_buf()]);
    assert!(!loaded.has_errors(), "{}", unitlab::scenario::render_all(&loaded.diagnostics));
    assert_eq!(loaded.scenarios.len(), 35 + 16 + 126, "restart, type and results cells");
    for s in &loaded.scenarios {
        assert_eq!(s.suites, unitlab::Suite::ALL.to_vec(), "{}", s.name);
    }
    // A single-target command takes one suite, never `all`.
    let out = unitlab(&["boot", "--suite", "all"], Some(NO_ENGINE));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = unitlab(&["boot", "--suite", "buster"], Some(NO_ENGINE));
    assert!(text(&out.stderr).contains("bookworm-backports"), "{}", text(&out.stderr));
}
