//! The HTML report as a browser sees it: a realistic run is rendered, loaded into headless
//! Chromium, and the DOM Chromium built is checked for the timeline lanes, the fault markers
//! and the check results; a screenshot proves the page paints. The page and the screenshot
//! stay under the target directory (`target/tmp/report_html/`) for a human to look at.
//!
//! Chromium is required, not optional: without it this test fails and says how to install it,
//! since a silently skipped browser test would let a broken page ship.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use unitlab::observe::{Event, EventKind};
use unitlab::report::{render, Format};
use unitlab::verdict::{CheckResult, Outcome, RunReport, ScenarioResult, StepLocation, Timing};

const WINDOW: (u32, u32) = (1200, 2400);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn ev(at: u64, unit: &str, kind: EventKind, message: &str) -> Event {
    Event { at: ms(at), unit: unit.into(), kind, message: message.into(), invocation: None }
}

fn lab(at: u64, unit: &str, action: &str) -> Event {
    ev(at, unit, EventKind::Lab { action: action.into() }, &format!("unitlab: {action}"))
}

fn check((path, line): (&str, usize), step: usize, kind: &str, expected: &str, observed: &str, at: u64, journal: &[&str]) -> CheckResult {
    CheckResult {
        step,
        location: StepLocation { path: PathBuf::from(path), line, col: 1 },
        kind: kind.into(),
        expected: expected.into(),
        observed: observed.into(),
        passed: journal.is_empty(),
        at: ms(at),
        journal_context: journal.iter().map(|s| s.to_string()).collect(),
    }
}

fn started(at: u64, unit: &str) -> [Event; 2] {
    [
        ev(at, unit, EventKind::Starting, &format!("Starting {unit} - buggy server...")),
        ev(at + 40, unit, EventKind::Started, &format!("Started {unit} - buggy server.")),
    ]
}

/// A web server killed twice and restarted by Restart=on-failure, with a pinger beside it.
fn restart_scenario() -> ScenarioResult {
    let path = "scenarios/restart/on-failure.toml";
    let mut timeline = vec![lab(0, "web.service", "systemctl start"), lab(0, "pinger.service", "systemctl start")];
    timeline.extend(started(10, "web.service"));
    timeline.extend(started(20, "pinger.service"));
    for (i, t) in [2_000u64, 5_000].into_iter().enumerate() {
        let n = i as u32 + 1;
        timeline.extend([
            lab(t, "web.service", "kill main SIGKILL"),
            ev(t + 3, "web.service", EventKind::MainExited { code: "killed".into(), status: "9/KILL".into() }, "web.service: Main process exited, code=killed, status=9/KILL"),
            ev(t + 4, "web.service", EventKind::Failed { result: "signal".into() }, "web.service: Failed with result 'signal'."),
            ev(t + 30, "pinger.service", EventKind::Output, "pinger: GET /health -> connection refused <retrying & \"waiting\">"),
            ev(t + 1_104, "web.service", EventKind::RestartScheduled { n }, &format!("web.service: Scheduled restart job, restart counter is at {n}.")),
            ev(t + 1_105, "web.service", EventKind::Stopped, "Stopped web.service - buggy server."),
        ]);
        timeline.extend(started(t + 1_106, "web.service"));
    }
    ScenarioResult {
        name: "restart-on-failure".into(),
        description: "SIGKILL twice; Restart=on-failure brings the server back each time".into(),
        path: PathBuf::from(path),
        suite: "bookworm".into(),
        fixture: "container".into(),
        systemd: "systemd 252 (252.36-1~deb12u1)".into(),
        outcome: Outcome::Pass,
        error: None,
        warnings: vec![],
        checks: vec![
            check((path, 8), 1, "expect", "ActiveState=active", "ActiveState=active", 500, &[]),
            check((path, 14), 3, "expect-restart", "restart within 2s", "restarted after 1.146s", 3_146, &[]),
            check((path, 20), 5, "expect-restart", "restart within 2s", "restarted after 1.146s", 6_146, &[]),
            check((path, 24), 6, "expect", "NRestarts=2", "NRestarts=2", 7_000, &[]),
        ],
        timings: vec![
            Timing { name: "time to detect".into(), unit: "web.service".into(), value: ms(3) },
            Timing { name: "time to recover".into(), unit: "web.service".into(), value: ms(1_146) },
        ],
        units: vec![
            ("web.service".into(), "[Service]\nExecStart=/usr/local/bin/buggy-server --port 8080\nRestart=on-failure\nRestartSec=1100ms\n".into()),
            ("pinger.service".into(), "[Service]\nExecStart=/usr/local/bin/pinger http://127.0.0.1:8080/health\n".into()),
        ],
        timeline,
        observations: vec![],
        snapshot: None,
        duration: ms(7_600),
    }
}

/// A hung notify server: the watchdog kills it, but the typo'd RestartSecs= leaves it failed.
fn watchdog_scenario() -> ScenarioResult {
    let path = "scenarios/watchdog/hang.toml";
    let journal = [
        "web.service: Watchdog timeout (limit 2s)!",
        "web.service: Killing process 212 (buggy-server) with signal SIGABRT.",
        "web.service: Main process exited, code=dumped, status=6/ABRT",
        "web.service: Failed with result 'watchdog'. <b>not bold</b>",
    ];
    let mut timeline = vec![lab(0, "web.service", "systemctl start")];
    timeline.extend(started(10, "web.service"));
    timeline.extend([
        lab(1_500, "web.service", "fault: hang"),
        ev(3_520, "web.service", EventKind::WatchdogTimeout, journal[0]),
        ev(3_560, "web.service", EventKind::MainExited { code: "dumped".into(), status: "6/ABRT".into() }, journal[2]),
        ev(3_561, "web.service", EventKind::Failed { result: "watchdog".into() }, journal[3]),
    ]);
    ScenarioResult {
        name: "watchdog-hang".into(),
        description: "WatchdogSec=2s catches a hung server".into(),
        path: PathBuf::from(path),
        suite: "trixie".into(),
        fixture: "container".into(),
        systemd: "systemd 257 (257.9-1~deb13u1)".into(),
        outcome: Outcome::Fail,
        error: None,
        warnings: vec!["/etc/systemd/system/web.service:5: Unknown key name 'RestartSecs' in section 'Service', ignoring.".into()],
        checks: vec![
            check((path, 9), 1, "expect", "ActiveState=active", "ActiveState=active", 600, &[]),
            check((path, 15), 3, "expect-restart", "restart within 3s", "no restart in 3s (Result=watchdog)", 6_561, &journal),
        ],
        timings: vec![Timing { name: "time to detect".into(), unit: "web.service".into(), value: ms(2_020) }],
        units: vec![("web.service".into(), "[Service]\nType=notify\nWatchdogSec=2s\nRestartSecs=1\n".into())],
        timeline,
        observations: vec![],
        snapshot: None,
        duration: ms(7_100),
    }
}

fn report() -> RunReport {
    RunReport::new(vec![restart_scenario(), watchdog_scenario()], ms(15_400))
}

/// `UNITLAB_CHROMIUM`, else the first of the usual names on PATH. On a machine without one,
/// as root with apt (the README's fresh machine: Docker and root), Debian's chromium is
/// installed once, as the lab installs debootstrap for its images; otherwise the test fails
/// and says how to get it. `UNITLAB_NO_INSTALL=1` turns the installing off.
fn chromium() -> PathBuf {
    static FOUND: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    FOUND.get_or_init(find_or_install_chromium).clone().unwrap_or_else(|why| panic!("{why}"))
}

fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("UNITLAB_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

fn find_or_install_chromium() -> Result<PathBuf, String> {
    if let Some(found) = find_chromium() {
        return Ok(found);
    }
    let how = "Install it: `sudo apt-get install chromium` (Debian/Ubuntu; CI does this in .ci/run),\n\
               or point UNITLAB_CHROMIUM at a Chromium or Chrome binary.";
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let apt = std::path::Path::new("/usr/bin/apt-get").is_file();
    if !root || !apt || std::env::var_os("UNITLAB_NO_INSTALL").is_some() {
        return Err(format!("the HTML report test needs headless Chromium and found none on PATH.\n{how}"));
    }
    eprintln!("report_html: no Chromium on PATH; installing Debian's chromium with apt-get (once, as root; UNITLAB_NO_INSTALL=1 prevents this)");
    // Waits for a lock another apt holds (the lab installing QEMU for a VM test, under nextest
    // at the same time) instead of failing at once.
    let wait = "DPkg::Lock::Timeout=300";
    for args in [&["update", "-q", "-o", wait][..], &["install", "-y", "-q", "--no-install-recommends", "-o", wait, "chromium"][..]] {
        let status = std::process::Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(std::process::Stdio::null())
            .status()
            .map_err(|e| format!("start apt-get {}: {e}\n{how}", args.join(" ")))?;
        if !status.success() {
            return Err(format!("apt-get {} failed ({status}) while installing Chromium for the HTML report test.\n{how}", args.join(" ")));
        }
    }
    find_chromium().ok_or_else(|| format!("apt-get installed chromium but it is not on PATH.\n{how}"))
}

/// Run Chromium headless on `page` with extra arguments; its stdout. Fails after two minutes
/// rather than hanging the test run.
fn run_chromium(page: &Path, profile: &Path, extra: &[String]) -> String {
    let mut cmd = Command::new(chromium());
    cmd.args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        let mut out = String::new();
        let mut err = String::new();
        let _ = stdout.read_to_string(&mut out);
        let _ = stderr.read_to_string(&mut err);
        let _ = tx.send((out, err));
    });
    let Ok((out, err)) = rx.recv_timeout(Duration::from_secs(120)) else {
        // SAFETY: kill(2) on the pid of the child this test started.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        let _ = child.wait();
        panic!("{cmd:?} did not finish within 120s");
    };
    let status = child.wait().unwrap();
    assert!(status.success(), "{cmd:?} failed with {status}\n{err}");
    out
}

fn output_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report_html");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn chromium_builds_the_lanes_fault_markers_and_checks_and_paints_the_page() {
    let report = report();
    let dir = output_dir();
    let page = dir.join("report.html");
    std::fs::write(&page, render(Format::Html, &report)).unwrap();
    let profile = tempfile::tempdir().unwrap();

    let dom = run_chromium(&page, profile.path(), &["--dump-dom".to_string()]);
    std::fs::write(dir.join("dom.html"), &dom).unwrap();
    let count = |needle: &str| dom.matches(needle).count();

    assert_eq!(count("<section class=\"scenario "), 2, "one section per scenario");
    assert_eq!(count("<svg class=\"timeline\""), 2, "one timeline per scenario");
    // Lanes: web + pinger in the first scenario, web in the second; each with its segments.
    assert_eq!(count("<g class=\"lane\" data-unit=\"web.service\">"), 2);
    assert_eq!(count("<g class=\"lane\" data-unit=\"pinger.service\">"), 1);
    assert_eq!(count("<rect class=\"seg auto-restart\""), 2, "two restarts after SIGKILL");
    assert_eq!(count("<rect class=\"seg failed\""), 1, "the watchdog kill without restart");
    // Faults: two SIGKILLs and one hang, each a marker with its tooltip; starts are not faults.
    assert_eq!(count("<g class=\"mark fault\">"), 3);
    assert!(dom.contains("<title>kill main SIGKILL at 2.000s</title>"), "fault tooltip");
    assert!(dom.contains("<title>fault: hang at 1.500s</title>"), "fault tooltip");
    assert_eq!(count("<g class=\"mark lab\">"), 3);
    assert_eq!(count("<g class=\"mark restart\">"), 2);
    assert_eq!(count("<g class=\"mark timeout\">"), 1);
    // Checks: on the chart and in the list, the failure with its journal.
    assert_eq!(count("<g class=\"check-mark pass\">"), 5);
    assert_eq!(count("<g class=\"check-mark fail\">"), 1);
    assert_eq!(count("<li class=\"check pass\">"), 5);
    assert_eq!(count("<li class=\"check fail\">"), 1);
    assert!(dom.contains("<dd>no restart in 3s (Result=watchdog)</dd>"));
    assert!(dom.contains("<pre class=\"journal\">web.service: Watchdog timeout (limit 2s)!\n"));
    // Text from the journal stayed text: the browser made no element of it.
    assert!(dom.contains("Failed with result 'watchdog'. &lt;b&gt;not bold&lt;/b&gt;"), "escaped journal text");
    assert!(!dom.contains("<b>not bold</b>"));
    assert!(dom.contains("connection refused &lt;retrying &amp; \"waiting\"&gt;"));

    let shot = dir.join("report.png");
    run_chromium(
        &page,
        profile.path(),
        &[
            format!("--screenshot={}", shot.display()),
            format!("--window-size={},{}", WINDOW.0, WINDOW.1),
            "--hide-scrollbars".to_string(),
        ],
    );
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", shot.display()));
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG file");
    let (width, height) = (u32::from_be_bytes(png[16..20].try_into().unwrap()), u32::from_be_bytes(png[20..24].try_into().unwrap()));
    assert_eq!((width, height), WINDOW, "the screenshot has the window's size");
    // A blank page of this size compresses to a few kilobytes; the charts and tables do not.
    assert!(png.len() > 40_000, "screenshot only {} bytes: did the page paint?", png.len());
    eprintln!("page and screenshot: {}", dir.display());
}
