//! Test support: a fake NOTIFY_SOCKET, a guard around the spawned server that kills its
//! whole process group (and a forked daemon) on drop, a line-by-line stderr follower, and
//! a minimal HTTP client. Every wait is on an event with a deadline; nothing sleeps blind.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_buggy-server");
/// Generous: the suite runs in parallel on two cores.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// A timestamped message from a follower thread.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub text: String,
}

/// Collects messages from a channel, keeping all of them for assertions and failure output.
pub struct Follower {
    rx: Receiver<Seen>,
    pub all: Vec<Seen>,
    cursor: usize,
    what: &'static str,
}

impl Follower {
    fn new(rx: Receiver<Seen>, what: &'static str) -> Follower {
        Follower { rx, all: Vec::new(), cursor: 0, what }
    }

    /// Pulls in whatever has arrived, without waiting.
    pub fn drain(&mut self) {
        while let Ok(s) = self.rx.try_recv() {
            self.all.push(s);
        }
    }

    /// The first message after the cursor that matches, waiting up to `within`; moves
    /// the cursor past it. Panics with everything seen so far on timeout.
    pub fn wait_for(&mut self, within: Duration, mut pred: impl FnMut(&str) -> bool) -> Seen {
        match self.try_wait_for(within, &mut pred) {
            Some(s) => s,
            None => panic!("no matching {} within {within:?}; seen:\n{}", self.what, self.dump()),
        }
    }

    pub fn try_wait_for(&mut self, within: Duration, mut pred: impl FnMut(&str) -> bool) -> Option<Seen> {
        let deadline = Instant::now() + within;
        loop {
            while self.cursor < self.all.len() {
                let s = self.all[self.cursor].clone();
                self.cursor += 1;
                if pred(&s.text) {
                    return Some(s);
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(s) => self.all.push(s),
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => return None,
            }
            if Instant::now() >= deadline && self.cursor >= self.all.len() {
                return None;
            }
        }
    }

    /// Messages that arrive within a bounded window (the "nothing more happens" check).
    pub fn collect_for(&mut self, window: Duration) -> Vec<Seen> {
        let deadline = Instant::now() + window;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.rx.recv_timeout(left) {
                Ok(s) => self.all.push(s),
                Err(_) => break,
            }
        }
        let out = self.all[self.cursor..].to_vec();
        self.cursor = self.all.len();
        out
    }

    /// Everything until the writer closed its end (for stderr: the process and all
    /// its children are gone), within DEADLINE.
    pub fn read_to_end(&mut self) -> Vec<String> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(s) => self.all.push(s),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("{} stream still open after {DEADLINE:?}", self.what),
            }
        }
        self.all.iter().map(|s| s.text.clone()).collect()
    }

    /// Moves the cursor past everything that has arrived, so later waits see only new messages.
    pub fn skip_seen(&mut self) {
        self.drain();
        self.cursor = self.all.len();
    }

    pub fn count(&mut self, pred: impl Fn(&str) -> bool) -> usize {
        self.drain();
        self.all.iter().filter(|s| pred(&s.text)).count()
    }

    pub fn texts(&mut self) -> Vec<String> {
        self.drain();
        self.all.iter().map(|s| s.text.clone()).collect()
    }

    pub fn dump(&self) -> String {
        self.all.iter().map(|s| format!("  {:?}\n", s.text)).collect()
    }
}

/// A fake systemd notify socket: a unix datagram socket in a temp dir (or abstract).
pub struct NotifySocket {
    pub env_value: String,
    pub msgs: Follower,
    stop: Arc<AtomicBool>,
    _dir: Option<tempfile::TempDir>,
}

impl NotifySocket {
    pub fn new() -> NotifySocket {
        let dir = tempfile::tempdir().expect("temp dir for the notify socket");
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).expect("binding the fake notify socket");
        let (msgs, stop) = follow_datagrams(sock);
        NotifySocket { env_value: path.display().to_string(), msgs, stop, _dir: Some(dir) }
    }

    pub fn new_abstract() -> NotifySocket {
        use std::hash::{BuildHasher, RandomState};
        let unique = RandomState::new().hash_one(Instant::now());
        let name = format!("buggy-server-test-{}-{unique:x}", std::process::id());
        let addr = UnixAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).expect("binding the abstract notify socket");
        let (msgs, stop) = follow_datagrams(sock);
        NotifySocket { env_value: format!("@{name}"), msgs, stop, _dir: None }
    }

    /// Datagrams other than STATUS= (informational), in arrival order.
    pub fn protocol(&mut self) -> Vec<String> {
        self.msgs.texts().into_iter().filter(|t| !t.starts_with("STATUS=")).collect()
    }

    pub fn pings(&mut self) -> usize {
        self.msgs.count(|t| t == "WATCHDOG=1")
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn follow_datagrams(sock: UnixDatagram) -> (Follower, Arc<AtomicBool>) {
    let (tx, rx) = channel();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    // The timeout only lets the thread notice `stop`; datagrams are taken as they come.
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while !flag.load(Ordering::SeqCst) {
            if let Ok(n) = sock.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                if tx.send(Seen { at: Instant::now(), text }).is_err() {
                    return;
                }
            }
        }
    });
    (Follower::new(rx, "datagram"), stop)
}

/// How to start the server.
#[derive(Default)]
pub struct Opts {
    pub program: Option<PathBuf>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub nofile: Option<u64>,
    pub core_dumps: bool,
    pub cwd: Option<PathBuf>,
}

impl Opts {
    pub fn args(args: &[&str]) -> Opts {
        Opts { args: args.iter().map(|s| s.to_string()).collect(), ..Opts::default() }
    }
    pub fn env(mut self, k: &str, v: &str) -> Opts {
        self.env.push((k.into(), v.into()));
        self
    }
    pub fn notify(self, n: &NotifySocket) -> Opts {
        let v = n.env_value.clone();
        self.env("NOTIFY_SOCKET", &v)
    }
}

/// The running server. Drop kills its process group, any daemon it forked, and reaps.
pub struct Server {
    pub child: Child,
    pub stderr: Follower,
    pub extra_pids: Vec<i32>,
}

pub fn spawn(opts: Opts) -> Server {
    let program = opts.program.clone().unwrap_or_else(|| PathBuf::from(BIN));
    let mut cmd = Command::new(&program);
    cmd.args(&opts.args)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .envs(opts.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(dir) = &opts.cwd {
        cmd.current_dir(dir);
    }
    let nofile = opts.nofile;
    let core = opts.core_dumps;
    // SAFETY: only async-signal-safe setrlimit calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let c = if core { libc::RLIM_INFINITY } else { 0 };
            let lim = libc::rlimit { rlim_cur: c, rlim_max: c };
            if libc::setrlimit(libc::RLIMIT_CORE, &lim) != 0 && !core {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(n) = nofile {
                let lim = libc::rlimit { rlim_cur: n, rlim_max: n };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawning {}: {e}", program.display()));
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if tx.send(Seen { at: Instant::now(), text: line }).is_err() {
                return;
            }
        }
    });
    Server { child, stderr: Follower::new(rx, "stderr line"), extra_pids: Vec::new() }
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn wait_line(&mut self, needle: &str) -> Seen {
        self.stderr.wait_for(DEADLINE, |l| l.contains(needle))
    }

    /// Waits for "listening on ADDR" and returns ADDR.
    pub fn wait_listening(&mut self) -> SocketAddr {
        self.wait_listening_at().0
    }

    /// The address and when the line was read.
    pub fn wait_listening_at(&mut self) -> (SocketAddr, Instant) {
        let seen = self.wait_line("buggy-server: listening on ");
        (seen.text.rsplit(' ').next().unwrap().parse().expect("address in the listening line"), seen.at)
    }

    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            if Instant::now() >= deadline {
                self.stderr.drain();
                panic!("server did not exit within {DEADLINE:?}; stderr:\n{}", self.stderr.dump());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Like the free function, with the server's stderr in the failure message.
    pub fn assert_no_answer(&mut self, addr: SocketAddr, path: &str, window: Duration) {
        match request(addr, "GET", path, window) {
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            other => {
                std::thread::sleep(Duration::from_millis(100));
                self.stderr.drain();
                panic!("GET {path} should hang, got {other:?}; stderr:\n{}", self.stderr.dump())
            }
        }
    }

    pub fn assert_alive(&mut self) {
        if let Some(st) = self.child.try_wait().unwrap() {
            self.stderr.drain();
            panic!("server died ({st:?}) but should be alive; stderr:\n{}", self.stderr.dump());
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) calls on pids and the process group this guard started.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
            for pid in &self.extra_pids {
                libc::kill(*pid, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free port on 127.0.0.1, for tests that must know the port before the server binds.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One HTTP request; Err on connect failure or when no full answer comes within `timeout`.
pub fn request(addr: SocketAddr, method: &str, path: &str, timeout: Duration) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("no status in {text:?}")))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    request(addr, "GET", path, Duration::from_secs(5)).unwrap_or_else(|e| panic!("GET {path} on {addr}: {e}"))
}

pub fn post(addr: SocketAddr, path: &str) -> (u16, String) {
    request(addr, "POST", path, Duration::from_secs(5)).unwrap_or_else(|e| panic!("POST {path} on {addr}: {e}"))
}

/// A request that must not be answered: the connection is accepted (or queued) but no
/// answer comes within `window`.
pub fn assert_no_answer(addr: SocketAddr, path: &str, window: Duration) {
    match request(addr, "GET", path, window) {
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
        other => panic!("GET {path} should hang, got {other:?}"),
    }
}

/// The control endpoint's key=value report as pairs.
pub fn state(addr: SocketAddr) -> Vec<(String, String)> {
    let (code, body) = get(addr, "/control/state");
    assert_eq!(code, 200, "{body}");
    body.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

pub fn state_value(addr: SocketAddr, key: &str) -> String {
    state(addr).into_iter().find(|(k, _)| k == key).map(|(_, v)| v).unwrap_or_else(|| panic!("no {key} in state"))
}

pub fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(pid, 0) == 0 }
}

pub fn read_pid_file(path: &Path) -> i32 {
    std::fs::read_to_string(path).unwrap().trim().parse().unwrap()
}

/// Waits until `f` holds, checking as events allow (here: a short poll), up to DEADLINE.
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
