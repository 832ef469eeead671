//! The scenario format as a contract: every shipped scenario loads without errors, and every
//! file of the malformed corpus (tests/malformed/) produces exactly the diagnostics its
//! `# expect:` lines name, at the exact line:col. The rendering of those diagnostics is
//! snapshotted, since it is what users read.

use std::path::{Path, PathBuf};

use unitlab::scenario::{self, Diagnostic, Expectation, Fault, Severity, StepKind};

fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "toml") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// `# expect: <error|warning> <line>:<col> <message substring>`
#[derive(Debug)]
struct Expected {
    severity: Severity,
    line: usize,
    col: usize,
    substring: String,
}

fn expectations(source: &str, path: &Path) -> Vec<Expected> {
    source
        .lines()
        .take_while(|l| l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(|rest| {
            let mut parts = rest.splitn(3, ' ');
            let severity = match parts.next() {
                Some("error") => Severity::Error,
                Some("warning") => Severity::Warning,
                other => panic!("{}: bad severity {other:?} in `# expect:`", path.display()),
            };
            let (line, col) = parts.next().and_then(|p| p.split_once(':')).expect("line:col");
            Expected {
                severity,
                line: line.parse().unwrap(),
                col: col.parse().unwrap(),
                substring: parts.next().expect("message substring").to_string(),
            }
        })
        .collect()
}

fn diagnostics_of(path: &Path) -> (bool, Vec<Diagnostic>) {
    match scenario::load_file(path) {
        Ok((_, warnings)) => (true, warnings),
        Err(all) => (false, all),
    }
}

#[test]
fn shipped_scenarios_load_without_errors() {
    let files = toml_files(Path::new("scenarios"));
    assert!(files.len() >= 8, "expected the example scenarios, found {files:?}");
    let loaded = scenario::load_paths(&[PathBuf::from("scenarios")]);
    let errors: Vec<&Diagnostic> = loaded.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert!(errors.is_empty(), "{}", scenario::render_all(&loaded.diagnostics));
    assert_eq!(loaded.scenarios.len(), files.len());
    // The only warning allowed is the one a scenario asked for to replay a mistake.
    for d in &loaded.diagnostics {
        let source = std::fs::read_to_string(&d.path).unwrap();
        assert!(source.contains("allow_invalid_values = true"), "unexpected warning:\n{d}");
    }
    for s in &loaded.scenarios {
        assert!(!s.steps.is_empty() && !s.units().is_empty(), "{}", s.name);
        assert!(!s.description.is_empty(), "{}: describe what it shows", s.name);
    }
}

#[test]
fn examples_cover_every_feature() {
    let loaded = scenario::load_paths(&[PathBuf::from("scenarios/examples")]);
    assert!(!loaded.has_errors(), "{}", scenario::render_all(&loaded.diagnostics));
    let words: std::collections::BTreeSet<&str> =
        loaded.scenarios.iter().flat_map(|s| s.steps.iter().map(|st| st.kind.word())).collect();
    for word in [
        "start", "stop", "kill", "signal", "freeze", "thaw", "pause", "fault", "wait-state", "wait-journal",
        "wait-http", "settle", "observe", "expect", "probe", "expect-restart", "expect-no-restart", "expect-recovery",
        "expect-journal",
    ] {
        assert!(words.contains(word), "no example uses `do = \"{word}\"`");
    }
    assert!(loaded.scenarios.iter().any(|s| !s.manager.is_empty()));
    assert!(loaded.scenarios.iter().any(|s| s.needs_pristine_target()));
    let steps = || loaded.scenarios.iter().flat_map(|s| s.steps.iter().map(|st| &st.kind));
    assert!(steps().any(|k| matches!(k, StepKind::Start { no_block: true, .. })), "no example starts without blocking");
    assert!(steps().any(|k| matches!(k, StepKind::Fault(f) if f.units().len() > 1)), "no example faults several units at once");
    for what in ["state", "restart", "http"] {
        assert!(steps().any(|k| matches!(k, StepKind::Observe(o) if o.what() == what)), "no example observes {what}");
    }
    assert!(loaded.scenarios.iter().any(|s| s.snapshot));
    assert!(loaded.scenarios.iter().any(|s| s.units().len() > 1));
}

#[test]
fn restart_on_failure_example_renders_and_plans() {
    let (s, warnings) = scenario::load_file(Path::new("scenarios/examples/restart-on-failure.toml")).unwrap();
    assert!(warnings.is_empty());
    assert_eq!(s.name, "restart-on-failure");
    let web = &s.units()[0];
    assert_eq!(web.name.as_str(), "web.service");
    assert_eq!(
        web.file.render(),
        "[Unit]\nDescription=buggy-server that will exit 3\n\n[Service]\nExecStart=/usr/local/bin/buggy-server --listen 0.0.0.0:8086\nType=notify\nRestart=on-failure\nRestartSec=1s\n"
    );
    let StepKind::Fault(Fault::Control { fault, targets, .. }) = &s.steps[2].kind else { panic!("{:?}", s.steps[2]) };
    assert_eq!((fault.query(None).as_str(), targets[0].1), ("kind=exit&code=3", 8086));
    assert_eq!((s.steps[2].location.line, s.steps[2].location.col), (31, 6));
    let StepKind::Expect(Expectation::RestartedWithin { since_step, .. }) = &s.steps[4].kind else { panic!() };
    assert_eq!(*since_step, 2, "measured from the fault step");
}

#[test]
fn dependent_units_are_renamed_together() {
    let (s, _) = scenario::load_file(Path::new("scenarios/examples/ready-before-listen.toml")).unwrap();
    let renamed = s.units_renamed(|u| format!("ul-ready-{}", u.as_str()));
    let (name, client) = &renamed[1];
    assert_eq!(name, "ul-ready-client.service");
    assert_eq!(client.unit_value("After"), Some("ul-ready-web.service"));
    assert_eq!(client.unit_value("Requires"), Some("ul-ready-web.service"));
}

#[test]
fn malformed_corpus_yields_exactly_the_expected_diagnostics() {
    let files = toml_files(Path::new("tests/malformed"));
    assert!(files.len() >= 15, "the malformed corpus has only {} files", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let source = std::fs::read_to_string(path).unwrap();
        let expected = expectations(&source, path);
        assert!(!expected.is_empty(), "{} has no `# expect:` line", path.display());
        let (ok, found) = diagnostics_of(path);
        let wants_error = expected.iter().any(|e| e.severity == Severity::Error);
        if ok == wants_error {
            failures.push(format!("{}: loaded ok={ok}, but errors expected={wants_error}", path.display()));
        }
        for e in &expected {
            let hit = found.iter().any(|d| {
                d.severity == e.severity && d.line == e.line && d.col == e.col && d.message.contains(&e.substring)
            });
            if !hit {
                failures.push(format!("{}: no {:?} at {}:{} containing {:?}", path.display(), e.severity, e.line, e.col, e.substring));
            }
        }
        if found.len() != expected.len() {
            failures.push(format!("{}: {} diagnostics, {} expected", path.display(), found.len(), expected.len()));
        }
        for d in &found {
            if d.line > 0 {
                assert!(d.hint.is_some(), "{}: every positioned diagnostic says what to do:\n{d}", path.display());
            }
        }
        if !failures.is_empty() && failures.last().is_some_and(|f| f.starts_with(&path.display().to_string())) {
            failures.push(scenario::render_all(&found));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn malformed_corpus_rendering() {
    let mut out = String::new();
    for path in toml_files(Path::new("tests/malformed")) {
        let (_, found) = diagnostics_of(&path);
        out.push_str(&format!("==> {}\n", path.display()));
        out.push_str(&scenario::render_all(&found));
        out.push('\n');
    }
    insta::assert_snapshot!("malformed_diagnostics", out);
}

#[test]
fn a_directory_reports_every_file() {
    let loaded = scenario::load_paths(&[PathBuf::from("tests/malformed")]);
    assert!(loaded.has_errors());
    let files: std::collections::BTreeSet<&Path> = loaded.diagnostics.iter().map(|d| d.path.as_path()).collect();
    let with_errors = toml_files(Path::new("tests/malformed"))
        .into_iter()
        .filter(|p| diagnostics_of(p).1.iter().any(Diagnostic::is_error))
        .count();
    assert!(files.len() >= with_errors, "only {} files reported", files.len());
}

#[test]
fn duplicate_scenario_names_across_files_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let body = std::fs::read_to_string("scenarios/examples/manual-stop-no-restart.toml").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("a.toml"), &body).unwrap();
    std::fs::write(dir.path().join("sub/b.toml"), &body).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a scenario").unwrap();
    let loaded = scenario::load_paths(&[dir.path().to_path_buf()]);
    assert_eq!(loaded.scenarios.len(), 1);
    let d = loaded.diagnostics.iter().find(|d| d.is_error()).expect("duplicate name error");
    assert!(d.message.contains("already used"), "{d}");
    assert!(d.path.ends_with("sub/b.toml"));
    assert_eq!((d.line, d.col), (4, 8));
}

#[test]
fn unreadable_paths_and_empty_directories_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = scenario::load_paths(&[dir.path().to_path_buf(), dir.path().join("missing.toml")]);
    assert_eq!(loaded.diagnostics.len(), 2);
    assert!(loaded.diagnostics[0].message.contains("no scenario"));
    assert!(loaded.diagnostics[1].message.contains("cannot read scenario"));
}

#[test]
fn the_readme_example_is_a_valid_scenario() {
    let readme = std::fs::read_to_string("scenarios/README.md").unwrap();
    let start = readme.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let block = &readme[start..start + readme[start..].find("```").unwrap()];
    let (s, warnings) = scenario::parse_str(Path::new("scenarios/README.md"), block)
        .unwrap_or_else(|d| panic!("{}", scenario::render_all(&d)));
    assert!(warnings.is_empty());
    assert_eq!(s.steps.len(), 3);
}

#[test]
fn no_restart_window_is_derived_from_the_unit() {
    let (s, _) = scenario::load_file(Path::new("scenarios/examples/manual-stop-no-restart.toml")).unwrap();
    let (window, source) = s
        .steps
        .iter()
        .find_map(|st| match &st.kind {
            StepKind::Expect(Expectation::NoRestart { window, window_source, .. }) => Some((*window, window_source.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(window, std::time::Duration::from_secs(5));
    assert_eq!(source, scenario::WindowSource::Derived("2 × (RestartSec=2s + WatchdogSec=0) + 1s = 5s".into()));
    assert_eq!(window, unitlab::systemd::no_restart_window(&s.units()[0].file, &s.manager, unitlab::systemd::CountedFrom::Now).window);
}

#[test]
fn arrays_repeat_directives_and_values_render_verbatim() {
    let src = r#"
name = "render"
[[units]]
name = "worker@1"
exec = ["/usr/local/bin/buggy-server", "--fault", "exit:3@after=1s", "100%", "a b"]
[units.Service]
ExecStartPre = ["/bin/true", "", "/bin/echo $HOME"]
LimitNOFILE = 256
RemainAfterExit = true
Type = ["", "exec"]
[[steps]]
do = "start"
unit = "worker@1.service"
"#;
    let (s, warnings) = scenario::parse_str(Path::new("inline.toml"), src).unwrap();
    assert!(warnings.is_empty(), "{}", scenario::render_all(&warnings));
    let unit = &s.units()[0];
    assert_eq!(unit.name.as_str(), "worker@1.service");
    assert_eq!(unit.service_type, unitlab::systemd::ServiceType::Exec);
    assert_eq!(
        unit.file.render(),
        "[Service]\nExecStart=/usr/local/bin/buggy-server --fault exit:3@after=1s 100%% \"a b\"\nExecStartPre=/bin/true\nExecStartPre=\nExecStartPre=/bin/echo $HOME\nLimitNOFILE=256\nRemainAfterExit=true\nType=\nType=exec\n"
    );
    assert_eq!(s.suites, unitlab::Suite::DEFAULT.to_vec());
    assert!(!s.suites_listed, "without a list, `--suite` decides");
    assert!(s.shared_target && !s.needs_pristine_target());
}

/// A directive newer than one of the scenario's suites is a warning naming those suites and
/// their systemd, with a `suites` line that keeps the ones that know it.
#[test]
fn directives_newer_than_a_suites_systemd_warn_for_that_suite() {
    let src = |suites: &str, directive: &str| {
        format!("name = \"v\"\nsuites = [{suites}]\n[[units]]\nname = \"a\"\nexec = [\"/bin/true\"]\n[units.Service]\n{directive}\n[[steps]]\ndo = \"start\"\nunit = \"a\"\n")
    };
    let warn = |suites: &str, directive: &str| -> Vec<String> {
        let (_, w) = scenario::parse_str(Path::new("v.toml"), &src(suites, directive)).unwrap();
        w.iter().map(|d| format!("{} | {}", d.message, d.hint.clone().unwrap_or_default())).collect()
    };
    let w = warn("\"bullseye\", \"bookworm\", \"trixie\"", "ExitType = \"cgroup\"");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("ExitType= exists from systemd 252") && w[0].contains("bullseye's 247 ignores it"), "{w:?}");
    assert!(w[0].contains("suites = [\"bookworm\", \"trixie\"]"), "{w:?}");
    let w = warn("\"bullseye\", \"bookworm\", \"bookworm-backports\"", "RestartSteps = 3");
    assert!(w[0].contains("bullseye's 247 and bookworm's 252 ignore it") && w[0].contains("suites = [\"bookworm-backports\"]"), "{w:?}");
    assert!(warn("\"bookworm-backports\", \"sid\"", "RestartSteps = 3").is_empty());
    let w = warn("\"bookworm-backports\"", "Type = \"notify-reload\"");
    assert!(w.is_empty(), "254 knows notify-reload: {w:?}");
    let w = warn("\"bullseye\"", "Type = \"notify-reload\"");
    assert!(w[0].contains("bullseye's 247 ignores it") && w[0].contains("suites = [\"bookworm-backports\", \"trixie\", \"sid\"]"), "{w:?}");
}
