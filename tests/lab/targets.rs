//! The target fixture against real systemd: both suites boot to "running" with the expected
//! systemd, and exec, file writes, unit properties and the followed journal all work.

use std::time::Duration;

use futures_util::StreamExt;
use rstest::rstest;
use unitlab::Suite;

#[rstest]
#[case::bookworm(Suite::Bookworm, 252)]
#[case::trixie(Suite::Trixie, 257)]
#[tokio::test]
async fn boots_real_systemd_as_pid_1_and_reaches_running(#[case] suite: Suite, #[case] major: u32) {
    let (engine, target) = crate::support::boot(suite, "boot-test").await;
    assert_eq!(target.systemd_major(), Some(major), "systemd version line: {}", target.systemd_version());
    let state = target.exec(&["systemctl", "is-system-running"]).await.unwrap();
    assert_eq!(state.stdout.trim(), "running", "stderr: {}", state.stderr);
    let pid1 = target.exec(&["cat", "/proc/1/comm"]).await.unwrap();
    assert_eq!(pid1.stdout.trim(), "systemd");
    let servers = target.exec(&["test", "-x", "/usr/local/bin/buggy-server"]).await.unwrap();
    assert!(servers.success(), "the buggy server must be installed in the image");
    let id = target.id().to_string();
    target.teardown().await.unwrap();
    let gone = engine.docker().inspect_container(&id, None).await;
    assert!(
        matches!(gone, Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })),
        "teardown must remove the container, got {gone:?}"
    );
}

#[rstest]
#[case::bookworm(Suite::Bookworm)]
#[case::trixie(Suite::Trixie)]
#[tokio::test]
async fn exec_files_unit_properties_and_journal(#[case] suite: Suite) {
    let (_engine, target) = crate::support::boot(suite, "fixture-test").await;

    let out = target.exec(&["sh", "-c", "echo out; echo err >&2; exit 7"]).await.unwrap();
    assert_eq!((out.exit_code, out.stdout.as_str(), out.stderr.as_str()), (7, "out\n", "err\n"));

    // /run is a tmpfs: the archive API (docker cp) cannot write there, write_file must.
    let content = b"a $b 'c' \"d\"\n\x00binary";
    target.write_file("/run/unitlab/probe.bin", content, 0o640).await.unwrap();
    let back = target.exec(&["sh", "-c", "od -An -tx1 /run/unitlab/probe.bin | tr -d ' \\n'; echo; stat -c %a /run/unitlab/probe.bin"]).await.unwrap();
    let hex: String = content.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(back.stdout, format!("{hex}\n640\n"));

    let unit = "[Unit]\nDescription=unitlab probe\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/echo unitlab-probe-marker\n";
    target.write_file("/etc/systemd/system/probe.service", unit.as_bytes(), 0o644).await.unwrap();
    target.exec_ok(&["systemctl", "daemon-reload"]).await.unwrap();
    let after = format!("--after-cursor={}", target.journal_cursor().await.unwrap());
    let mut journal = target.follow_journal(&[&after, "-u", "probe.service"]).await.unwrap();
    target.exec_ok(&["systemctl", "start", "probe.service"]).await.unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(entry) = journal.next().await {
            let entry = entry.unwrap();
            if entry.get("MESSAGE").and_then(|m| m.as_str()) == Some("unitlab-probe-marker") {
                return Some(entry);
            }
        }
        None
    })
    .await
    .expect("the marker line must reach the followed journal within 20 s")
    .expect("journal stream ended before the marker");
    assert_eq!(seen.get("_SYSTEMD_UNIT").and_then(|u| u.as_str()), Some("probe.service"));

    let props = target.unit_properties("probe.service", &["ActiveState", "SubState", "Result", "NRestarts"]).await.unwrap();
    assert_eq!(props["ActiveState"], "active");
    assert_eq!(props["SubState"], "exited");
    assert_eq!(props["Result"], "success");
    assert_eq!(props["NRestarts"], "0");

    let history = target.journal(&["-u", "probe.service"]).await.unwrap();
    assert!(history.iter().any(|e| e.get("MESSAGE").and_then(|m| m.as_str()) == Some("unitlab-probe-marker")));
    target.teardown().await.unwrap();
}

#[tokio::test]
async fn a_dropped_target_is_removed() {
    let (engine, target) = crate::support::boot(Suite::Bookworm, "drop-test").await;
    let id = target.id().to_string();
    drop(target);
    let gone = engine.docker().inspect_container(&id, None).await;
    assert!(
        matches!(gone, Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })),
        "a dropped target must be removed by the time drop returns, got {gone:?}"
    );
}

/// The argv escaping of `unit::exec_line` is checked against systemd itself: every argument
/// must reach the program byte for byte.
#[rstest]
#[case::bookworm(Suite::Bookworm)]
#[case::trixie(Suite::Trixie)]
#[tokio::test]
async fn exec_line_escaping_survives_systemds_parser(#[case] suite: Suite) {
    let (_engine, target) = crate::support::boot(suite, "escape-test").await;
    let args = ["a b", "$HOME", "${X}", "100%", "%n", "it's", "say \"hi\"", "back\\slash", ";", "", "tab\there"];
    let mut argv: Vec<String> = vec!["/usr/bin/printf".into(), "[%s]".into()];
    argv.extend(args.iter().map(|s| s.to_string()));
    let unit = unitlab::systemd::unit::UnitFile {
        service: vec![
            unitlab::systemd::unit::Directive::new("Type", "oneshot"),
            unitlab::systemd::unit::Directive::new("ExecStart", unitlab::systemd::unit::exec_line(&argv)),
            unitlab::systemd::unit::Directive::new("StandardOutput", "file:/run/escape.out"),
        ],
        ..Default::default()
    };
    target.write_file("/etc/systemd/system/escape.service", unit.render().as_bytes(), 0o644).await.unwrap();
    target.exec_ok(&["systemctl", "daemon-reload"]).await.unwrap();
    let started = target.exec(&["systemctl", "start", "escape.service"]).await.unwrap();
    assert!(started.success(), "unit:\n{}\n{}", unit.render(), started.stderr);
    let out = target.exec_ok(&["cat", "/run/escape.out"]).await.unwrap();
    let expected: String = args.iter().map(|a| format!("[{a}]")).collect();
    assert_eq!(out.stdout, expected, "rendered: {}", unitlab::systemd::unit::exec_line(&argv));
}
