//! Process shapes (foreground, forking, oneshot) and the command line contract: usage
//! errors exit 2 naming the flag, runtime failures exit 1 naming what failed, and the
//! mode catalogue is valid JSON.

mod support;

use std::net::TcpListener;
use std::time::Duration;

use support::*;

#[test]
fn forking_parent_exits_only_once_the_daemon_listens() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("buggy.pid");
    let mut n = NotifySocket::new();
    let mut s = spawn(
        Opts::args(&["--shape", "forking", "--pid-file", pid_file.to_str().unwrap(), "--listen", "127.0.0.1:0", "--notify-mainpid"])
            .notify(&n),
    );
    let status = s.wait_exit();
    // Read the pid file first, so the guard kills the daemon even if an assertion fails.
    let daemon = read_pid_file(&pid_file);
    s.extra_pids.push(daemon);
    assert_eq!(status.code(), Some(0));
    assert_ne!(daemon, s.pid() as i32);
    assert!(pid_alive(daemon));
    // Everything below holds the moment the parent is gone, without waiting: the parent
    // exits only after the daemon listens and wrote its pid file.
    let addr = s.wait_listening();
    let (code, body) = get(addr, "/");
    assert_eq!(code, 200);
    assert!(body.contains(&format!("pid={daemon} ")), "{body}");
    s.wait_line(&format!("parent {} exiting: daemon {daemon} is listening", s.pid()));
    // Double fork: a new session, of which the daemon is not the leader.
    let (daemon_sid, our_sid) = unsafe { (libc::getsid(daemon), libc::getsid(0)) };
    assert_ne!(daemon_sid, our_sid);
    assert_ne!(daemon_sid, daemon);
    // The notify messages come from the daemon, naming itself.
    n.msgs.wait_for(DEADLINE, |t| t == format!("READY=1\nMAINPID={daemon}"));
}

#[test]
fn forking_parent_exits_1_when_the_daemon_cannot_bind() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let mut s = spawn(Opts::args(&["--shape", "forking", "--listen", &addr.to_string()]));
    assert_eq!(s.wait_exit().code(), Some(1));
    s.wait_line(&format!("cannot bind {addr}: Address already in use"));
    s.wait_line("exiting with 1: the daemon died before it was listening");
}

#[test]
fn foreground_bind_failure_exits_1_naming_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let mut s = spawn(Opts::args(&["--listen", &addr.to_string()]));
    assert_eq!(s.wait_exit().code(), Some(1));
    s.wait_line(&format!("cannot bind {addr}: Address already in use"));
}

#[test]
fn foreground_writes_a_pid_file_too() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("fg.pid");
    let mut s = spawn(Opts::args(&["--listen", "127.0.0.1:0", "--pid-file", pid_file.to_str().unwrap()]));
    s.wait_listening();
    s.wait_line("pid file");
    assert_eq!(read_pid_file(&pid_file), s.pid() as i32);
}

#[test]
fn oneshot_serves_for_its_work_time_then_exits_with_the_code() {
    let mut s = spawn(Opts::args(&["--shape", "oneshot", "--work", "400ms", "--exit-code", "4", "--listen", "127.0.0.1:0"]));
    let (addr, listening) = s.wait_listening_at();
    assert_eq!(get(addr, "/").0, 200);
    assert_eq!(s.wait_exit().code(), Some(4));
    let done = s.wait_line("oneshot work done after 400ms, exiting with code 4").at;
    assert!(done.duration_since(listening) >= Duration::from_millis(380));
}

#[test]
fn oneshot_defaults_to_no_work_and_exit_0() {
    let mut s = spawn(Opts::args(&["--shape", "oneshot", "--ready", "never", "--listen", "127.0.0.1:0"]));
    assert_eq!(s.wait_exit().code(), Some(0));
}

fn usage_error(args: &[&str], needles: &[&str]) {
    let mut s = spawn(Opts::args(args));
    assert_eq!(s.wait_exit().code(), Some(2), "{args:?}");
    let text = s.stderr.read_to_end().join("\n");
    for needle in needles {
        assert!(text.contains(needle), "{args:?}: {needle:?} not in:\n{text}");
    }
}

#[test]
fn usage_errors_exit_2_and_name_the_flag() {
    usage_error(&["--listen", "localhost"], &["invalid value 'localhost' for '--listen <ADDR>'"]);
    usage_error(&["--fault", "hang"], &["'--fault <SPEC>'", "needs the parts that hang"]);
    usage_error(&["--fault", "signal:NOPE@after=1s"], &["unknown signal \"NOPE\""]);
    usage_error(&["--ready", "soon"], &["invalid value 'soon' for '--ready <MODE>'"]);
    usage_error(&["--work", "1s"], &["--work only applies to --shape oneshot"]);
    usage_error(&["--watchdog-stop-after-pings", "3"], &["--watchdog-stop-after-pings needs --watchdog naive"]);
    usage_error(&["--exit-code", "300", "--shape", "oneshot"], &["'--exit-code <CODE>'"]);
}

#[test]
fn list_modes_is_json_the_lab_can_use() {
    let out = std::process::Command::new(BIN).arg("--list-modes").output().unwrap();
    assert!(out.status.success());
    let modes: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let modes = modes.as_array().unwrap();
    assert!(modes.len() >= 30, "{} modes", modes.len());
    let mut ids = std::collections::HashSet::new();
    for m in modes {
        let id = m["id"].as_str().unwrap();
        assert!(ids.insert(id.to_string()), "duplicate {id}");
        for field in ["group", "program", "flags", "breaks", "outcome"] {
            assert!(!m[field].as_str().unwrap().is_empty(), "{id}.{field}");
        }
        assert!(!m["unit"].as_array().unwrap().is_empty(), "{id}.unit");
        let joined: Vec<&str> = m["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
        assert_eq!(joined.join(" "), m["flags"].as_str().unwrap());
    }
    for id in ["ready-before-listen", "watchdog-naive-hang", "watchdog-health-checked-hang", "behaves-forking", "exhaust-fds", "sidecar"] {
        assert!(ids.contains(id), "{id} missing");
    }
}

#[test]
fn help_documents_modes_and_the_control_endpoint() {
    let out = std::process::Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in ["POST /control/fault?kind=KIND", "GET  /control/state", "watchdog-naive-hang", "behaves-oneshot", "--fault <SPEC>", "Result=watchdog"] {
        assert!(help.contains(needle), "--help lacks {needle:?}");
    }
}
