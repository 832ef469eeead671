//! The seed-001 sidecar script, run for real with curl and the host's systemd-notify
//! against a fake NOTIFY_SOCKET.

mod support;

use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use support::*;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/sidecar/watchdog-sidecar.sh");
const SYSTEMD_NOTIFY: &str = "/bin/systemd-notify";

#[test]
fn sidecar_sends_ready_once_and_pings_only_while_healthy() {
    assert!(Path::new(SYSTEMD_NOTIFY).exists(), "the sidecar needs {SYSTEMD_NOTIFY} (package systemd)");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let url = format!("http://{addr}/healthz");
    let mut n = NotifySocket::new();
    let mut opts = Opts::args(&[
        SCRIPT,
        "--url",
        &url,
        "--interval",
        "0.1",
        "--timeout",
        "0.5",
        "--server",
        BIN,
        "--notify",
        SYSTEMD_NOTIFY,
        "--",
        "--listen",
        &addr.to_string(),
    ])
    .notify(&n)
    .env("WATCHDOG_USEC", "2000000");
    opts.program = Some("/bin/bash".into());
    let mut s = spawn(opts);

    n.msgs.wait_for(DEADLINE, |t| t == "READY=1");
    for _ in 0..3 {
        n.msgs.wait_for(DEADLINE, |t| t == "WATCHDOG=1");
    }
    assert_eq!(n.msgs.count(|t| t == "READY=1"), 1, "READY=1 only once");
    // The server runs without the notify environment: the protocol is the sidecar's.
    s.wait_line("buggy-server: NOTIFY_SOCKET not set");

    assert_eq!(post(addr, "/control/fault?kind=hang&part=handlers").0, 202);
    s.stderr.wait_for(DEADLINE, |l| l.starts_with("watchdog-sidecar: unhealthy"));
    n.msgs.skip_seen();
    // Five poll intervals (each poll times out after 0.5s) without a single ping.
    let later = n.msgs.collect_for(Duration::from_millis(1200));
    assert!(later.iter().all(|m| m.text != "WATCHDOG=1"), "pinged while hung: {later:?}");

    // The sidecar dies the way its server died, so systemd sees the same signal.
    assert_eq!(post(addr, "/control/fault?kind=signal&signal=KILL").0, 202);
    assert_eq!(s.wait_exit().signal(), Some(libc::SIGKILL));
}

#[test]
fn sidecar_passes_exit_codes_through_and_rejects_bad_options() {
    let port = free_port();
    let mut opts = Opts::args(&[
        SCRIPT,
        "--url",
        &format!("http://127.0.0.1:{port}/healthz"),
        "--interval",
        "0.1",
        "--server",
        BIN,
        "--notify",
        "/bin/true",
        "--",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--fault",
        "exit:7@after=200ms",
    ]);
    opts.program = Some("/bin/bash".into());
    let mut s = spawn(opts);
    assert_eq!(s.wait_exit().code(), Some(7));
    s.wait_line("watchdog-sidecar: server exited with code 7");

    let mut bad = Opts::args(&[SCRIPT, "--interval", "soon"]);
    bad.program = Some("/bin/bash".into());
    let mut b = spawn(bad);
    assert_eq!(b.wait_exit().code(), Some(2));
    b.wait_line("--interval needs seconds");
}
