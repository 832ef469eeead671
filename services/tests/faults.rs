//! Every fault really happens: exit codes and signals as the kernel reports them, hangs
//! that stop answering while the process lives, a closed listener, fd exhaustion, and
//! reproducible random faults.

mod support;

use std::io::ErrorKind;
use std::net::TcpStream;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use support::*;

const LOCAL0: &str = "127.0.0.1:0";

#[test]
fn exit_with_code_after_n_requests() {
    let mut s = spawn(Opts::args(&["--listen", LOCAL0, "--fault", "exit:3@requests=2"]));
    let addr = s.wait_listening();
    assert_eq!(get(addr, "/").0, 200);
    s.assert_alive();
    assert_eq!(get(addr, "/").0, 200);
    assert_eq!(s.wait_exit().code(), Some(3));
    s.wait_line("fault exit(3) injected (trigger requests=2)");
}

#[test]
fn exit_zero_after_a_delay() {
    let mut s = spawn(Opts::args(&["--listen", LOCAL0, "--fault", "exit:0@after=200ms"]));
    let listening = s.stderr.wait_for(DEADLINE, |l| l.contains("listening on")).at;
    let status = s.wait_exit();
    assert_eq!(status.code(), Some(0));
    let injected = s.wait_line("fault exit(0) injected (trigger after=200ms)").at;
    assert!(injected.duration_since(listening) >= Duration::from_millis(180));
}

fn dies_of(query: &str, signal: i32) -> Server {
    let mut s = spawn(Opts::args(&["--listen", LOCAL0]));
    let addr = s.wait_listening();
    let (code, body) = post(addr, &format!("/control/fault?{query}"));
    assert_eq!(code, 202, "{body}");
    let status = s.wait_exit();
    assert_eq!(status.signal(), Some(signal), "{query}: {status:?}");
    assert!(!status.core_dumped(), "RLIMIT_CORE is 0 in tests unless asked");
    s
}

#[test]
fn signal_segv_by_name() {
    dies_of("kind=signal&signal=SEGV", libc::SIGSEGV).wait_line("fault signal(SEGV) injected (control endpoint)");
}

#[test]
fn signal_kill_term_and_numbers() {
    dies_of("kind=signal&signal=SIGKILL", libc::SIGKILL);
    dies_of("kind=signal&signal=term", libc::SIGTERM);
    dies_of("kind=signal&signal=10", libc::SIGUSR1);
}

#[test]
fn signal_abrt_dumps_core_when_the_limit_allows() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = Opts::args(&["--listen", LOCAL0, "--fault", "signal:ABRT@requests=1"]);
    opts.core_dumps = true;
    opts.cwd = Some(dir.path().to_path_buf());
    let mut s = spawn(opts);
    let addr = s.wait_listening();
    get(addr, "/");
    let status = s.wait_exit();
    assert_eq!(status.signal(), Some(libc::SIGABRT));
    // The kernel only reports a dump that was written; a piped core_pattern (e.g.
    // systemd-coredump) may be absent on the host, so only a plain pattern is asserted.
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    if !pattern.starts_with('|') {
        assert!(status.core_dumped(), "SIGABRT with RLIMIT_CORE=infinity and core_pattern {pattern:?}");
    }
}

#[test]
fn ignore_sigterm_survives_kill_but_not_the_signal_fault() {
    let mut s = spawn(Opts::args(&["--listen", LOCAL0, "--ignore-sigterm"]));
    s.wait_line("ignoring SIGTERM");
    let addr = s.wait_listening();
    unsafe { libc::kill(s.pid() as i32, libc::SIGTERM) };
    // Signals are delivered before kill() returns to a running target or at its next
    // scheduling; a request answered afterwards proves it survived.
    assert_eq!(get(addr, "/").0, 200);
    s.assert_alive();
    post(addr, "/control/fault?kind=signal&signal=TERM");
    assert_eq!(s.wait_exit().signal(), Some(libc::SIGTERM));
}

#[test]
fn hang_handlers_stops_answers_but_not_the_process_or_control() {
    let mut s = spawn(Opts::args(&["--listen", LOCAL0]));
    let addr = s.wait_listening();
    assert_eq!(post(addr, "/control/fault?kind=hang&part=handlers"), (202, "fault hang(handlers) injected\n".to_string()));
    s.wait_line("fault hang(handlers) injected (control endpoint)");
    assert_no_answer(addr, "/", Duration::from_millis(500));
    assert_no_answer(addr, "/healthz", Duration::from_millis(300));
    s.wait_line("handler hung on request");
    s.assert_alive();
    assert_eq!(state_value(addr, "hang_handlers"), "1");
    assert_eq!(state_value(addr, "injected"), "hang(handlers)");
}

#[test]
fn hang_handlers_after_n_requests_by_flag() {
    let mut s = spawn(Opts::args(&["--listen", LOCAL0, "--fault", "hang:handlers@requests=1"]));
    let addr = s.wait_listening();
    assert_eq!(get(addr, "/").0, 200);
    assert_no_answer(addr, "/", Duration::from_millis(500));
    s.assert_alive();
}

#[test]
fn hang_accept_leaves_connections_queued_unanswered() {
    let mut s = spawn(Opts::args(&["--listen", LOCAL0, "--fault", "hang:accept"]));
    let addr = s.wait_listening();
    s.wait_line("fault hang(accept) injected");
    // The kernel still completes the handshake into the backlog.
    let c = TcpStream::connect(addr).expect("connect into the backlog");
    drop(c);
    assert_no_answer(addr, "/", Duration::from_millis(500));
    s.wait_line("accept loop hung");
    s.assert_alive();
}

#[test]
fn close_listener_refuses_connections_and_lives_on() {
    let mut s = spawn(Opts::args(&["--listen", LOCAL0, "--fault", "close-listener@requests=1"]));
    let addr = s.wait_listening();
    assert_eq!(get(addr, "/").0, 200);
    s.wait_line("listener closed: new connections are refused");
    let err = TcpStream::connect(addr).expect_err("listener is closed");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    s.assert_alive();
}

#[test]
fn exhaust_fds_makes_accept_fail_with_emfile() {
    let mut n = NotifySocket::new();
    let mut opts = Opts::args(&["--listen", LOCAL0, "--watchdog", "naive", "--watchdog-interval", "50ms"]).notify(&n);
    opts.nofile = Some(64); // stands in for LimitNOFILE=64
    let mut s = spawn(opts);
    let addr = s.wait_listening();
    n.msgs.wait_for(DEADLINE, |t| t == "WATCHDOG=1");
    assert_eq!(post(addr, "/control/fault?kind=exhaust-fds").0, 202);
    s.wait_line("then: Too many open files");
    // Connections land in the backlog; accept() cannot take them, not even the first
    // (whose fd slot a blocked accept() had reserved) nor after one closes.
    for _ in 0..3 {
        s.assert_no_answer(addr, "/", Duration::from_millis(300));
    }
    s.wait_line("accept failed: Too many open files");
    // sd_notify needs a fresh socket per message, so even the naive pinger fails.
    s.wait_line("WATCHDOG=1 failed: Too many open files");
    s.assert_alive();
}

#[test]
fn exhaust_fds_with_a_kept_notify_socket_keeps_naive_pings_flowing() {
    let mut n = NotifySocket::new();
    let mut opts = Opts::args(&[
        "--listen",
        LOCAL0,
        "--watchdog",
        "naive",
        "--watchdog-interval",
        "50ms",
        "--notify-socket",
        "keep",
        "--fault",
        "exhaust-fds@after=100ms",
    ])
    .notify(&n);
    opts.nofile = Some(64);
    let mut s = spawn(opts);
    let addr = s.wait_listening();
    s.wait_line("then: Too many open files");
    n.msgs.skip_seen();
    for _ in 0..3 {
        n.msgs.wait_for(DEADLINE, |t| t == "WATCHDOG=1");
    }
    assert_no_answer(addr, "/", Duration::from_millis(300));
}

#[test]
fn unhealthy_fails_only_healthz() {
    let mut s = spawn(Opts::args(&["--listen", LOCAL0, "--fault", "unhealthy@requests=1"]));
    let addr = s.wait_listening();
    assert_eq!(get(addr, "/healthz"), (200, "ok\n".to_string()));
    s.wait_line("fault unhealthy injected");
    assert_eq!(get(addr, "/healthz"), (503, "unhealthy\n".to_string()));
    assert_eq!(get(addr, "/").0, 200);
}

/// Requests answered before a p= fault made the server exit.
fn answered_before_random_exit(seed: &str) -> usize {
    let mut s = spawn(Opts::args(&["--listen", LOCAL0, "--fault", "exit:9@p=0.2", "--seed", seed]));
    let addr = s.wait_listening();
    let mut answered = 0;
    while request(addr, "GET", "/", Duration::from_secs(5)).is_ok() {
        answered += 1;
        assert!(answered < 1000, "p=0.2 never hit in 1000 requests");
    }
    assert_eq!(s.wait_exit().code(), Some(9));
    s.wait_line(&format!("hit on request {}, seed {seed}", answered + 1));
    answered
}

#[test]
fn random_faults_are_reproducible_from_the_seed() {
    let first = answered_before_random_exit("42");
    assert_eq!(answered_before_random_exit("42"), first);
    // Different seeds give different sequences (checked over a few seeds, since two
    // seeds may well share one outcome).
    let others: Vec<usize> = ["1", "2", "3", "4"].iter().map(|s| answered_before_random_exit(s)).collect();
    assert!(others.iter().any(|n| *n != first), "seeds make no difference: {first} vs {others:?}");
}

#[test]
fn control_endpoint_schedules_and_rejects() {
    let mut s = spawn(Opts::args(&["--listen", LOCAL0]));
    let addr = s.wait_listening();
    let (code, body) = post(addr, "/control/fault?kind=explode");
    assert_eq!(code, 400);
    assert!(body.contains("unknown fault kind \"explode\""), "{body}");
    assert_eq!(post(addr, "/control/fault?kind=hang").0, 400);
    assert_eq!(get(addr, "/control/fault?kind=exit&code=1").0, 405);
    assert_eq!(get(addr, "/control/nothing").0, 404);
    // Control requests are not counted.
    assert_eq!(state_value(addr, "requests"), "0");
    let (code, body) = post(addr, "/control/fault?kind=exit&code=5&after=300ms");
    assert_eq!((code, body.as_str()), (202, "fault exit(5) scheduled in 300ms\n"));
    assert_eq!(get(addr, "/").0, 200);
    assert_eq!(s.wait_exit().code(), Some(5));
}
