//! The buggy server's watchdog modes under real systemd: a health-checked pinger gets a hung
//! server restarted; the naive pinger (seed 002's anti-pattern) keeps a hung server "active"
//! while its HTTP side is dead. Both suites.

use std::time::Duration;

use rstest::rstest;
use unitlab::observe::{Event, EventKind};
use unitlab::run::watch::Watcher;
use unitlab::systemd::unit::{exec_line, Directive, UnitFile};
use unitlab::Suite;

const WATCHDOG: Duration = Duration::from_secs(2);

fn unit(mode: &str, port: u16) -> UnitFile {
    let argv: Vec<String> = ["/usr/local/bin/buggy-server", "--listen", &format!("127.0.0.1:{port}"), "--watchdog", mode]
        .iter()
        .map(|s| s.to_string())
        .collect();
    UnitFile {
        unit: vec![Directive::new("Description", format!("{mode} pinger"))],
        service: vec![
            Directive::new("Type", "notify"),
            Directive::new("ExecStart", exec_line(&argv)),
            Directive::new("WatchdogSec", format!("{}s", WATCHDOG.as_secs())),
            Directive::new("Restart", "on-failure"),
            Directive::new("LimitCORE", "0"),
        ],
        install: vec![],
    }
}

/// The first event of `unit` from index `from` on that `pred` picks, within `within`.
async fn first(w: &Watcher, unit: &str, from: usize, within: Duration, pred: impl Fn(&Event) -> bool) -> Option<(usize, Event)> {
    w.wait_for(unit, within, |events| events.iter().enumerate().skip(from).find(|(_, e)| pred(e)).map(|(i, e)| (i, e.clone())))
        .await
        .found()
        .expect("the target's journal flows")
}

fn kind(pred: impl Fn(&EventKind) -> bool) -> impl Fn(&Event) -> bool {
    move |e| pred(&e.kind)
}

#[rstest]
#[case::bookworm(Suite::Bookworm)]
#[case::trixie(Suite::Trixie)]
#[tokio::test]
async fn health_checked_pinger_gets_a_hung_server_restarted_and_the_naive_one_hides_it(#[case] suite: Suite) {
    let (_engine, target) = crate::support::boot(suite, "pingers").await;
    let files = vec![
        ("/etc/systemd/system/hc.service".to_string(), unit("health-checked", 8301).render().into_bytes(), 0o644),
        ("/etc/systemd/system/naive.service".to_string(), unit("naive", 8302).render().into_bytes(), 0o644),
    ];
    target.write_files(&files).await.unwrap();
    target.exec_ok(&["systemctl", "daemon-reload"]).await.unwrap();
    let watcher = Watcher::start(&target).await.unwrap();
    target.exec_ok(&["systemctl", "start", "hc.service", "naive.service"]).await.unwrap();
    for u in ["hc.service", "naive.service"] {
        first(&watcher, u, 0, Duration::from_secs(10), kind(|k| matches!(k, EventKind::Started))).await.expect("started");
    }
    // Hang every HTTP handler of both servers; the control endpoint itself never hangs.
    for port in [8301, 8302] {
        let url = format!("http://127.0.0.1:{port}/control/fault?kind=hang&part=handlers");
        target.exec_ok(&["curl", "-fsS", "-m", "5", "-X", "POST", &url]).await.unwrap();
    }
    // Everything below is measured from each server's own "fault ... injected" line.
    let injected = |u: &'static str| {
        let w = &watcher;
        async move {
            first(w, u, 0, Duration::from_secs(10), |e| e.message.contains("fault hang(handlers) injected"))
                .await
                .unwrap_or_else(|| panic!("{u}: no injection line"))
                .0
        }
    };
    let hung_from = injected("hc.service").await;

    // Health-checked: the pinger's own probe hangs, pings stop, the watchdog fires, restart.
    let timeout = first(&watcher, "hc.service", hung_from, WATCHDOG * 4, kind(|k| matches!(k, EventKind::WatchdogTimeout)))
        .await
        .unwrap_or_else(|| panic!("no watchdog timeout for the health-checked pinger: {:#?}", watcher.events("hc.service", 0, 0).iter().map(|e| format!("{:?} {}", e.at, e.message)).collect::<Vec<_>>()));
    first(&watcher, "hc.service", timeout.0, Duration::from_secs(10), kind(|k| matches!(k, EventKind::RestartScheduled { n: 1 })))
        .await
        .expect("restart scheduled after the watchdog timeout");
    let restarted = first(&watcher, "hc.service", timeout.0, Duration::from_secs(10), kind(|k| matches!(k, EventKind::Started))).await;
    assert!(restarted.is_some(), "the restarted server must come up again");
    let healthy = target.exec(&["curl", "-fsS", "-m", "2", "http://127.0.0.1:8301/healthz"]).await.unwrap();
    assert_eq!(healthy.stdout.trim(), "ok", "the restarted server answers: {healthy:?}");

    // Naive: the pinger keeps pinging while HTTP is dead. Watched for three watchdog periods
    // after the hang (the window is derived from WatchdogSec=): nothing may happen.
    let naive_from = injected("naive.service").await;
    let fired = first(&watcher, "naive.service", naive_from, WATCHDOG * 3, kind(|k| {
        matches!(k, EventKind::WatchdogTimeout | EventKind::RestartScheduled { .. } | EventKind::Failed { .. })
    }))
    .await;
    assert!(fired.is_none(), "the naive pinger must hide the hang from systemd, but: {fired:?}");
    let props = target.unit_properties("naive.service", &["ActiveState", "SubState", "NRestarts"]).await.unwrap();
    assert_eq!((props["ActiveState"].as_str(), props["SubState"].as_str(), props["NRestarts"].as_str()), ("active", "running", "0"));
    let dead = target.exec(&["curl", "-sS", "-m", "2", "http://127.0.0.1:8302/"]).await.unwrap();
    assert_eq!(dead.exit_code, 28, "HTTP must be hung (curl timeout, exit 28) while systemd says active: {dead:?}");
    target.teardown().await.unwrap();
}
