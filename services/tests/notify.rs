//! The sd_notify protocol as the server speaks it, proven against a fake NOTIFY_SOCKET:
//! exact datagrams, their order relative to bind(), and watchdog ping timing.

mod support;

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use support::*;

const LOCAL0: &str = "127.0.0.1:0";

#[test]
fn ready_after_listen_comes_once_the_socket_accepts() {
    let mut n = NotifySocket::new();
    let mut s = spawn(Opts::args(&["--listen", LOCAL0, "--ready", "after-listen"]).notify(&n));
    n.msgs.wait_for(DEADLINE, |t| t == "READY=1");
    // READY=1 is only sent after bind(): the address is already in the STATUS datagram
    // that precedes it, and a connection made right now must succeed.
    let texts = n.msgs.texts();
    let listening = texts.iter().find_map(|t| t.strip_prefix("STATUS=listening on ")).expect("STATUS=listening before READY=1");
    let addr: SocketAddr = listening.parse().unwrap();
    TcpStream::connect(addr).expect("connect right after READY=1");
    assert_eq!(texts[0], "STATUS=starting");
    assert_eq!(n.protocol(), vec!["READY=1"]);
    assert_eq!(get(addr, "/").0, 200);
    s.wait_line("READY=1 sent (after listening)");
}

#[test]
fn ready_before_listen_is_sent_while_connections_are_still_refused() {
    let mut n = NotifySocket::new();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut s = spawn(
        Opts::args(&["--listen", &addr.to_string(), "--ready", "before-listen", "--bind-delay", "1500ms"]).notify(&n),
    );
    let ready = n.msgs.wait_for(DEADLINE, |t| t == "READY=1");
    let err = TcpStream::connect(addr).expect_err("nothing listens yet");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    let listening = s.stderr.wait_for(DEADLINE, |l| l.contains("listening on"));
    assert!(listening.at.duration_since(ready.at) >= Duration::from_millis(1000), "bind came too soon after READY=1");
    assert_eq!(get(addr, "/").0, 200);
}

#[test]
fn ready_delayed_comes_the_delay_after_listening_while_http_already_answers() {
    let mut n = NotifySocket::new();
    let mut s = spawn(Opts::args(&["--listen", LOCAL0, "--ready", "delayed", "--ready-delay", "700ms"]).notify(&n));
    let (addr, listened_at) = s.wait_listening_at();
    assert_eq!(get(addr, "/healthz"), (200, "ok\n".to_string()));
    assert!(n.protocol().is_empty(), "READY=1 too early: {:?}", n.protocol());
    let ready = n.msgs.wait_for(DEADLINE, |t| t == "READY=1");
    assert!(ready.at.duration_since(listened_at) >= Duration::from_millis(650));
}

#[test]
fn ready_never_sends_no_ready() {
    let mut n = NotifySocket::new();
    let mut s = spawn(Opts::args(&["--listen", LOCAL0, "--ready", "never"]).notify(&n));
    let addr = s.wait_listening();
    n.msgs.wait_for(DEADLINE, |t| t == "STATUS=running, READY=1 withheld");
    assert_eq!(get(addr, "/").0, 200);
    n.msgs.collect_for(Duration::from_millis(400));
    assert!(n.protocol().is_empty(), "{:?}", n.protocol());
    assert_eq!(state_value(addr, "ready_sent"), "0");
}

#[test]
fn notify_mainpid_goes_into_the_ready_datagram() {
    let mut n = NotifySocket::new();
    let s = spawn(Opts::args(&["--listen", LOCAL0, "--notify-mainpid"]).notify(&n));
    let expected = format!("READY=1\nMAINPID={}", s.pid());
    n.msgs.wait_for(DEADLINE, |t| t == expected);
}

#[test]
fn abstract_notify_socket_is_reached() {
    let mut n = NotifySocket::new_abstract();
    assert!(n.env_value.starts_with('@'));
    let mut s = spawn(Opts::args(&["--listen", LOCAL0]).notify(&n));
    n.msgs.wait_for(DEADLINE, |t| t == "READY=1");
    s.wait_line(&format!("NOTIFY_SOCKET={}", n.env_value));
}

#[test]
fn without_notify_socket_everything_is_a_logged_no_op() {
    let mut s = spawn(Opts::args(&["--listen", LOCAL0, "--watchdog", "naive", "--watchdog-interval", "50ms"]));
    s.wait_line("NOTIFY_SOCKET not set");
    let addr = s.wait_listening();
    s.wait_line("READY=1 not sent (after listening): no NOTIFY_SOCKET");
    s.wait_line("WATCHDOG=1 not sent: no NOTIFY_SOCKET");
    assert_eq!(get(addr, "/").0, 200);
    assert_eq!(state_value(addr, "watchdog_pings"), "0");
}

#[test]
fn malformed_notify_socket_is_refused_like_libsystemd() {
    let mut s = spawn(Opts::args(&["--listen", LOCAL0]).env("NOTIFY_SOCKET", "relative/path"));
    s.wait_line("ignoring NOTIFY_SOCKET=\"relative/path\" is neither an absolute path nor an abstract @name");
    s.wait_line("READY=1 not sent");
}

/// Gaps between consecutive WATCHDOG=1 datagrams, after waiting for `count` of them.
fn ping_gaps(n: &mut NotifySocket, count: usize) -> Vec<Duration> {
    let mut times = Vec::new();
    for _ in 0..count {
        times.push(n.msgs.wait_for(DEADLINE, |t| t == "WATCHDOG=1").at);
    }
    times.windows(2).map(|w| w[1].duration_since(w[0])).collect()
}

fn assert_interval(gaps: &[Duration], expected: Duration) {
    let mean = gaps.iter().sum::<Duration>() / gaps.len() as u32;
    assert!(
        mean >= expected.mul_f64(0.8) && mean <= expected.mul_f64(2.0),
        "mean ping gap {mean:?}, expected about {expected:?} (gaps {gaps:?})"
    );
    assert!(gaps.iter().all(|g| *g >= expected.mul_f64(0.5)), "a gap far below {expected:?}: {gaps:?}");
}

#[test]
fn naive_pings_every_half_watchdog_usec_after_ready() {
    let mut n = NotifySocket::new();
    let _s = spawn(Opts::args(&["--listen", LOCAL0, "--watchdog", "naive"]).notify(&n).env("WATCHDOG_USEC", "300000"));
    n.msgs.wait_for(DEADLINE, |t| t == "READY=1");
    assert_interval(&ping_gaps(&mut n, 5), Duration::from_millis(150));
    // Every protocol datagram is exactly READY=1 or WATCHDOG=1, READY=1 first.
    let p = n.protocol();
    assert_eq!(p[0], "READY=1");
    assert!(p[1..].iter().all(|t| t == "WATCHDOG=1"), "{p:?}");
}

#[test]
fn divisor_and_explicit_interval_set_the_ping_rate() {
    let mut n = NotifySocket::new();
    let _s = spawn(
        Opts::args(&["--listen", LOCAL0, "--watchdog", "naive", "--watchdog-divisor", "3"]).notify(&n).env("WATCHDOG_USEC", "600000"),
    );
    assert_interval(&ping_gaps(&mut n, 5), Duration::from_millis(200));

    // An explicit interval pings even though the unit set no WatchdogSec=.
    let mut m = NotifySocket::new();
    let _t = spawn(Opts::args(&["--listen", LOCAL0, "--watchdog", "naive", "--watchdog-interval", "80ms"]).notify(&m));
    assert_interval(&ping_gaps(&mut m, 5), Duration::from_millis(80));
}

#[test]
fn watchdog_without_watchdog_usec_does_not_start() {
    let mut n = NotifySocket::new();
    let mut s = spawn(Opts::args(&["--listen", LOCAL0, "--watchdog", "naive"]).notify(&n));
    s.wait_line("watchdog disabled: WATCHDOG_USEC not set");
    n.msgs.wait_for(DEADLINE, |t| t == "READY=1");
    n.msgs.collect_for(Duration::from_millis(300));
    assert_eq!(n.protocol(), vec!["READY=1"]);
}

#[test]
fn foreign_watchdog_pid_disables_the_pinger_as_sd_watchdog_enabled_does() {
    let mut n = NotifySocket::new();
    let mut s = spawn(
        Opts::args(&["--listen", LOCAL0, "--watchdog", "naive"]).notify(&n).env("WATCHDOG_USEC", "100000").env("WATCHDOG_PID", "1"),
    );
    s.wait_line(&format!("watchdog disabled: WATCHDOG_PID=1 is not our pid {}", s.pid()));
    n.msgs.wait_for(DEADLINE, |t| t == "READY=1");
    // Ten intervals of silence.
    n.msgs.collect_for(Duration::from_millis(500));
    assert_eq!(n.pings(), 0);
}

#[test]
fn foreign_watchdog_pid_can_be_ignored() {
    let mut n = NotifySocket::new();
    let _s = spawn(
        Opts::args(&["--listen", LOCAL0, "--watchdog", "naive", "--watchdog-pid", "ignore"])
            .notify(&n)
            .env("WATCHDOG_USEC", "100000")
            .env("WATCHDOG_PID", "1"),
    );
    ping_gaps(&mut n, 3);
}

#[test]
fn our_own_watchdog_pid_enables_the_pinger() {
    // WATCHDOG_PID must be the server's pid before it starts: exec from a shell keeps it.
    let mut n = NotifySocket::new();
    let mut opts = Opts::args(&[
        "-c",
        "export WATCHDOG_PID=$$; exec \"$0\" \"$@\"",
        BIN,
        "--listen",
        LOCAL0,
        "--watchdog",
        "naive",
    ])
    .notify(&n)
    .env("WATCHDOG_USEC", "100000");
    opts.program = Some("/bin/sh".into());
    let _s = spawn(opts);
    ping_gaps(&mut n, 3);
}

#[test]
fn naive_pinger_keeps_pinging_while_handlers_hang() {
    let mut n = NotifySocket::new();
    let mut s = spawn(Opts::args(&["--listen", LOCAL0, "--watchdog", "naive"]).notify(&n).env("WATCHDOG_USEC", "200000"));
    let addr = s.wait_listening();
    ping_gaps(&mut n, 2);
    assert_eq!(post(addr, "/control/fault?kind=hang&part=handlers").0, 202);
    s.wait_line("fault hang(handlers) injected");
    assert_no_answer(addr, "/", Duration::from_millis(500));
    // Three more pings, all sent while the handlers hang.
    n.msgs.skip_seen();
    ping_gaps(&mut n, 3);
    assert_no_answer(addr, "/healthz", Duration::from_millis(300));
    s.assert_alive();
}

#[test]
fn health_checked_pinger_withholds_pings_once_handlers_hang() {
    let mut n = NotifySocket::new();
    let mut s = spawn(
        Opts::args(&["--listen", LOCAL0, "--watchdog", "health-checked", "--health-timeout", "150ms"])
            .notify(&n)
            .env("WATCHDOG_USEC", "200000"),
    );
    let addr = s.wait_listening();
    ping_gaps(&mut n, 3);
    assert_eq!(post(addr, "/control/fault?kind=hang&part=handlers").0, 202);
    s.wait_line("WATCHDOG=1 withheld: health check failed: no answer within 150ms");
    let frozen = state_value(addr, "watchdog_pings");
    s.wait_line("WATCHDOG=1 withheld");
    s.wait_line("WATCHDOG=1 withheld");
    assert_eq!(state_value(addr, "watchdog_pings"), frozen);
    // Every ping the server counted reached the socket, and nothing else was sent.
    let sent: usize = frozen.parse().unwrap();
    n.msgs.collect_for(Duration::from_millis(100));
    assert_eq!(n.pings(), sent);
    s.assert_alive();
}

#[test]
fn health_checked_pinger_withholds_pings_while_unhealthy() {
    let mut n = NotifySocket::new();
    let mut s = spawn(Opts::args(&["--listen", LOCAL0, "--watchdog", "health-checked"]).notify(&n).env("WATCHDOG_USEC", "200000"));
    let addr = s.wait_listening();
    ping_gaps(&mut n, 2);
    post(addr, "/control/fault?kind=unhealthy");
    s.wait_line("WATCHDOG=1 withheld: health check failed: status 503");
    assert_eq!(get(addr, "/healthz"), (503, "unhealthy\n".to_string()));
    assert_eq!(get(addr, "/").0, 200);
}

#[test]
fn pinger_stops_after_n_pings() {
    let mut n = NotifySocket::new();
    let mut s = spawn(
        Opts::args(&["--listen", LOCAL0, "--watchdog", "naive", "--watchdog-stop-after-pings", "3"]).notify(&n).env("WATCHDOG_USEC", "100000"),
    );
    s.wait_line("watchdog pinger stopped after 3 pings (--watchdog-stop-after-pings)");
    n.msgs.wait_for(DEADLINE, |t| t == "STATUS=watchdog pings stopped");
    n.msgs.collect_for(Duration::from_millis(300));
    assert_eq!(n.protocol(), vec!["READY=1", "WATCHDOG=1", "WATCHDOG=1", "WATCHDOG=1"]);
}

#[test]
fn pinger_stops_after_a_duration() {
    let mut n = NotifySocket::new();
    let mut s = spawn(
        Opts::args(&["--listen", LOCAL0, "--watchdog", "naive", "--watchdog-interval", "100ms", "--watchdog-stop-after", "450ms"])
            .notify(&n),
    );
    let first = n.msgs.wait_for(DEADLINE, |t| t == "WATCHDOG=1").at;
    let stopped = s.stderr.wait_for(DEADLINE, |l| l.contains("watchdog pinger stopped after 450ms")).at;
    assert!(stopped.duration_since(first) >= Duration::from_millis(400));
    n.msgs.collect_for(Duration::from_millis(300));
    let pings = n.pings();
    assert!((4..=6).contains(&pings), "{pings} pings in 450ms at 100ms");
}

#[test]
fn stop_watchdog_and_hang_watchdog_faults_silence_the_pinger() {
    for (query, line) in [
        ("kind=stop-watchdog", "watchdog pinger stopped after"),
        ("kind=hang&part=watchdog", "watchdog pinger hung"),
    ] {
        let mut n = NotifySocket::new();
        let mut s = spawn(Opts::args(&["--listen", LOCAL0, "--watchdog", "naive"]).notify(&n).env("WATCHDOG_USEC", "100000"));
        let addr = s.wait_listening();
        ping_gaps(&mut n, 2);
        assert_eq!(post(addr, &format!("/control/fault?{query}")).0, 202);
        s.wait_line(line);
        let frozen = state_value(addr, "watchdog_pings");
        n.msgs.collect_for(Duration::from_millis(400));
        assert_eq!(state_value(addr, "watchdog_pings"), frozen, "{query}");
        assert_eq!(n.pings().to_string(), frozen, "{query}");
        // HTTP is unaffected.
        assert_eq!(get(addr, "/").0, 200);
    }
}

#[test]
fn watchdog_trigger_fault_sends_watchdog_trigger() {
    let mut n = NotifySocket::new();
    let _s = spawn(Opts::args(&["--listen", LOCAL0, "--fault", "watchdog-trigger@after=100ms"]).notify(&n));
    n.msgs.wait_for(DEADLINE, |t| t == "WATCHDOG=trigger");
    assert_eq!(n.protocol(), vec!["READY=1", "WATCHDOG=trigger"]);
}
