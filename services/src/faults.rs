//! Faults: what can break (`Fault`), when a start-time fault fires (`Trigger`), the
//! `KIND[:ARG][@TRIGGER]` grammar shared by `--fault` and the control endpoint, and the
//! injection itself.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::duration;
use crate::log::event;
use crate::state::Shared;

/// Which parts of the server a hang stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Parts {
    pub accept: bool,
    pub handlers: bool,
    pub watchdog: bool,
}

impl FromStr for Parts {
    type Err = String;
    fn from_str(s: &str) -> Result<Parts, String> {
        let mut p = Parts::default();
        for word in s.split(',').map(str::trim) {
            match word {
                "accept" => p.accept = true,
                "handlers" => p.handlers = true,
                "watchdog" => p.watchdog = true,
                "all" => p = Parts { accept: true, handlers: true, watchdog: true },
                other => {
                    return Err(format!(
                        "unknown hang part {other:?} (use accept, handlers, watchdog, a comma list of them, or all)"
                    ))
                }
            }
        }
        Ok(p)
    }
}

impl fmt::Display for Parts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [(self.accept, "accept"), (self.handlers, "handlers"), (self.watchdog, "watchdog")]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, n)| *n)
            .collect();
        f.write_str(&names.join(","))
    }
}

/// A signal by number, remembering the canonical name for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal(pub i32);

const SIGNALS: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

impl FromStr for Signal {
    type Err = String;
    fn from_str(s: &str) -> Result<Signal, String> {
        let max = libc::SIGRTMAX();
        if let Ok(n) = s.parse::<i32>() {
            return if (1..=max).contains(&n) {
                Ok(Signal(n))
            } else {
                Err(format!("signal number {n} is out of range 1..={max}"))
            };
        }
        let upper = s.to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        SIGNALS
            .iter()
            .find(|(name, _)| *name == bare)
            .map(|(_, n)| Signal(*n))
            .ok_or_else(|| format!("unknown signal {s:?} (use a name like SEGV, SIGABRT, KILL, TERM or a number)"))
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match SIGNALS.iter().find(|(_, n)| *n == self.0) {
            Some((name, _)) => f.write_str(name),
            None => write!(f, "{}", self.0),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    Hang(Parts),
    Exit(u8),
    Signal(Signal),
    StopWatchdog,
    CloseListener,
    ExhaustFds,
    Unhealthy,
    WatchdogTrigger,
    /// Allocate (and touch) memory until the kernel's OOM killer ends the process.
    Oom,
}

pub const KINDS: &str = "hang:PARTS, exit:CODE, signal:SIG, stop-watchdog, close-listener, exhaust-fds, unhealthy, watchdog-trigger, oom";

/// The most `oom` allocates. A target is capped at 512 MiB as a whole; a unit whose memory
/// limit does not apply must not take every other unit of the target down with it, so past
/// this the fault gives the memory back and says so (the run then shows no OOM kill at all).
pub const OOM_CEILING_MIB: usize = 64;

impl FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Fault, String> {
        let (kind, arg) = match s.split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (s, None),
        };
        let needs = |what: &str| arg.ok_or_else(|| format!("fault {kind:?} needs {what}: {kind}:{}", what.to_ascii_uppercase()));
        let fault = match kind {
            "hang" => Fault::Hang(
                needs("parts")
                    .map_err(|_| "fault \"hang\" needs the parts that hang: hang:accept, hang:handlers, hang:watchdog, a comma list, or hang:all".to_string())?
                    .parse()?,
            ),
            "exit" => {
                let code = needs("code")?;
                Fault::Exit(code.parse().map_err(|_| format!("exit code {code:?} is not a number in 0..=255"))?)
            }
            "signal" => Fault::Signal(needs("sig")?.parse()?),
            "stop-watchdog" => Fault::StopWatchdog,
            "close-listener" => Fault::CloseListener,
            "exhaust-fds" => Fault::ExhaustFds,
            "unhealthy" => Fault::Unhealthy,
            "watchdog-trigger" => Fault::WatchdogTrigger,
            "oom" => Fault::Oom,
            other => return Err(format!("unknown fault kind {other:?} (one of: {KINDS})")),
        };
        let takes_arg = matches!(fault, Fault::Hang(_) | Fault::Exit(_) | Fault::Signal(_));
        if !takes_arg && arg.is_some() {
            return Err(format!("fault {kind:?} takes no argument"));
        }
        Ok(fault)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Hang(p) => write!(f, "hang({p})"),
            Fault::Exit(c) => write!(f, "exit({c})"),
            Fault::Signal(s) => write!(f, "signal({s})"),
            Fault::StopWatchdog => f.write_str("stop-watchdog"),
            Fault::CloseListener => f.write_str("close-listener"),
            Fault::ExhaustFds => f.write_str("exhaust-fds"),
            Fault::Unhealthy => f.write_str("unhealthy"),
            Fault::WatchdogTrigger => f.write_str("watchdog-trigger"),
            Fault::Oom => f.write_str("oom"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trigger {
    /// This long after the server started listening.
    After(Duration),
    /// Once the Nth counted request has been answered.
    Requests(u64),
    /// On each counted request's arrival, with this probability, from the seeded RNG.
    Probability(f64),
}

impl FromStr for Trigger {
    type Err = String;
    fn from_str(s: &str) -> Result<Trigger, String> {
        let (key, value) = s
            .split_once('=')
            .ok_or_else(|| format!("trigger {s:?} must be after=DURATION, requests=N or p=PROBABILITY"))?;
        match key {
            "after" => Ok(Trigger::After(duration::parse(value)?)),
            "requests" => match value.parse::<u64>() {
                Ok(n) if n >= 1 => Ok(Trigger::Requests(n)),
                _ => Err(format!("requests={value:?} must be a whole number >= 1 (use after=0s to fire at once)")),
            },
            "p" => match value.parse::<f64>() {
                Ok(p) if p > 0.0 && p <= 1.0 => Ok(Trigger::Probability(p)),
                _ => Err(format!("p={value:?} must be a probability in (0, 1]")),
            },
            other => Err(format!("unknown trigger {other:?} (use after=, requests= or p=)")),
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::After(d) => write!(f, "after={}", duration::show(*d)),
            Trigger::Requests(n) => write!(f, "requests={n}"),
            Trigger::Probability(p) => write!(f, "p={p}"),
        }
    }
}

/// `KIND[:ARG][@TRIGGER]`; no trigger means `after=0s`, i.e. as soon as the server listens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultSpec {
    pub fault: Fault,
    pub trigger: Trigger,
}

impl FromStr for FaultSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<FaultSpec, String> {
        let (fault, trigger) = match s.split_once('@') {
            Some((f, t)) => (f, t.parse()?),
            None => (s, Trigger::After(Duration::ZERO)),
        };
        Ok(FaultSpec { fault: fault.parse()?, trigger })
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.fault, self.trigger)
    }
}

/// A start-time fault plus whether it already fired: each fires at most once.
pub struct Armed {
    pub spec: FaultSpec,
    fired: AtomicBool,
}

impl Armed {
    pub fn new(spec: FaultSpec) -> Armed {
        Armed { spec, fired: AtomicBool::new(false) }
    }
    fn claim(&self) -> bool {
        !self.fired.swap(true, Ordering::SeqCst)
    }
}

/// Starts the timers of `after=` faults; called once the server listens.
pub fn arm_timers(shared: &Arc<Shared>) {
    for (i, armed) in shared.faults.iter().enumerate() {
        if let Trigger::After(delay) = armed.spec.trigger {
            let shared = Arc::clone(shared);
            std::thread::Builder::new()
                .name(format!("fault-{i}"))
                .spawn(move || {
                    std::thread::sleep(delay);
                    let armed = &shared.faults[i];
                    if armed.claim() {
                        inject(&shared, armed.spec.fault, &format!("trigger {}", armed.spec.trigger));
                    }
                })
                .expect("spawning a fault timer thread at start-up");
        }
    }
}

/// Called when counted request number `n` arrives: rolls the dice of every `p=` fault.
/// Faults that hit are injected before the request is handled, so this very request
/// suffers (hangs, or never gets its answer).
///
/// A `requests=N` fault normally fires in [`on_request_done`] of request N. But a client that
/// has read answer N can send request N+1 before the thread that wrote answer N gets there;
/// without this check that request was served as if no fault existed (seen in CI: `GET /`
/// answered "request=2" under `hang:handlers@requests=1`). So the first request past the
/// limit puts the fault in place itself, before it is handled.
pub fn on_request_arrival(shared: &Shared, n: u64) {
    for armed in &shared.faults {
        match armed.spec.trigger {
            Trigger::Probability(p) => {
                let roll = shared.rng.lock().map(|mut r| r.f64()).unwrap_or(1.0);
                if roll < p && armed.claim() {
                    inject(shared, armed.spec.fault, &format!("trigger p={p} hit on request {n}, seed {}", shared.seed));
                }
            }
            Trigger::Requests(limit) if n > limit && armed.claim() => {
                inject(shared, armed.spec.fault, &format!("trigger requests={limit}"));
            }
            _ => {}
        }
    }
}

/// Called after counted request number `n` was answered.
pub fn on_request_done(shared: &Shared, n: u64) {
    for armed in &shared.faults {
        if let Trigger::Requests(limit) = armed.spec.trigger {
            if n >= limit && armed.claim() {
                inject(shared, armed.spec.fault, &format!("trigger requests={limit}"));
            }
        }
    }
}

/// Makes the fault happen. `why` names the trigger (or the control request) for the log.
/// Fatal faults log first (afterwards there is no one to log); the others take effect
/// first, so whoever reads the log line can rely on the fault being in place.
pub fn inject(shared: &Shared, fault: Fault, why: &str) {
    if let Ok(mut v) = shared.injected.lock() {
        v.push(fault.to_string());
    }
    match fault {
        Fault::Exit(code) => {
            event!("fault {fault} injected ({why})");
            std::process::exit(i32::from(code))
        }
        Fault::Signal(sig) => {
            event!("fault {fault} injected ({why})");
            raise(sig)
        }
        Fault::Hang(p) => {
            // Each part checks its flag at its next step (next accept, next response,
            // next ping), so work already past that point finishes.
            if p.accept {
                shared.hang_accept.store(true, Ordering::SeqCst);
            }
            if p.handlers {
                shared.hang_handlers.store(true, Ordering::SeqCst);
            }
            if p.watchdog {
                shared.hang_watchdog.store(true, Ordering::SeqCst);
            }
        }
        Fault::StopWatchdog => shared.watchdog_stopped.store(true, Ordering::SeqCst),
        Fault::CloseListener => close_listener(shared),
        Fault::ExhaustFds => exhaust_fds(shared),
        Fault::Unhealthy => shared.unhealthy.store(true, Ordering::SeqCst),
        Fault::WatchdogTrigger => {
            shared.notifier.send_logged("WATCHDOG=trigger", "");
        }
        Fault::Oom => {
            // Logged first: if the limit applies, the OOM killer ends the process mid-way.
            event!("fault {fault} injected ({why}): allocating 1 MiB at a time, up to {OOM_CEILING_MIB} MiB");
            allocate_until_killed();
        }
    }
    if !matches!(fault, Fault::Exit(_) | Fault::Signal(_) | Fault::Oom) {
        event!("fault {fault} injected ({why})");
        shared.notifier.status(&format!("fault {fault} injected"));
    }
}

/// Delivers a real signal with its default action, so the kernel (and so systemd) sees
/// death by that signal, with a core dump where the signal's default action dumps core
/// and RLIMIT_CORE / core_pattern allow it.
fn raise(sig: Signal) {
    // SAFETY: plain libc calls on a zeroed sigset; resetting the disposition first
    // undoes Rust's SIGPIPE=ignore and our own --ignore-sigterm.
    unsafe {
        libc::signal(sig.0, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig.0);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(sig.0);
    }
    event!("still alive after SIG{sig}: its default action does not end the process");
}

/// Allocates memory 1 MiB at a time and writes every page, so that it is really charged to
/// the cgroup (untouched pages cost nothing), until the OOM killer ends the process or the
/// ceiling is reached; then frees it all.
fn allocate_until_killed() {
    const MIB: usize = 1024 * 1024;
    let mut held: Vec<Vec<u8>> = Vec::new();
    while held.len() < OOM_CEILING_MIB {
        let mut chunk = vec![0u8; MIB];
        for page in chunk.chunks_mut(4096) {
            page[0] = 1;
        }
        held.push(std::hint::black_box(chunk));
    }
    drop(held);
    event!("oom: {OOM_CEILING_MIB} MiB allocated and the process was not killed: no memory limit below that applies; memory freed");
}

fn close_listener(shared: &Shared) {
    let fd = shared.listener_fd.swap(-1, Ordering::SeqCst);
    if fd >= 0 {
        // shutdown() wakes an accept() blocked on this socket (it returns EINVAL); the
        // accept loop then sees fd -1 and drops the listener, which closes it.
        // SAFETY: fd is the listener's, still owned (not yet closed) by the accept loop.
        unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
    } else {
        event!("close-listener: the listener is already closed");
    }
}

/// Opens /dev/null until open() fails (EMFILE under LimitNOFILE=), keeping every fd,
/// and turns on the leak that keeps every fd freed later.
///
/// A thread blocked in accept() has already reserved its fd slot in the kernel, and each
/// connection closed frees a slot the next accept() reserves again: a one-off exhaustion
/// would let the server limp on, one connection at a time. So the accept loop sweeps up
/// freed fds (`leak_free_fds`) before each accept() and leaks, unanswered, any connection
/// it still manages to accept (see http::serve).
fn exhaust_fds(shared: &Shared) {
    let (opened, error) = leak_free_fds();
    shared.fd_leak.store(true, Ordering::SeqCst);
    event!("exhaust-fds: opened {opened} more file descriptors, then: {error}");
}

/// Opens /dev/null until it fails; returns how many it opened and the error.
pub fn leak_free_fds() -> (u64, std::io::Error) {
    let mut opened: u64 = 0;
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => {
                std::mem::forget(f);
                opened += 1;
            }
            Err(e) => return (opened, e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_grammar() {
        let s: FaultSpec = "hang:accept,handlers@after=5s".parse().unwrap();
        assert_eq!(s.fault, Fault::Hang(Parts { accept: true, handlers: true, watchdog: false }));
        assert_eq!(s.trigger, Trigger::After(Duration::from_secs(5)));
        assert_eq!(s.to_string(), "hang(accept,handlers)@after=5s");
        let oom: FaultSpec = "oom@after=500ms".parse().unwrap();
        assert_eq!((oom.fault, oom.to_string().as_str()), (Fault::Oom, "oom@after=500ms"));
        assert!("oom:1".parse::<FaultSpec>().unwrap_err().contains("takes no argument"));
        let s: FaultSpec = "exit:3@requests=10".parse().unwrap();
        assert_eq!((s.fault, s.trigger), (Fault::Exit(3), Trigger::Requests(10)));
        let s: FaultSpec = "signal:sigsegv@p=0.25".parse().unwrap();
        assert_eq!((s.fault, s.trigger), (Fault::Signal(Signal(libc::SIGSEGV)), Trigger::Probability(0.25)));
        let s: FaultSpec = "close-listener".parse().unwrap();
        assert_eq!(s.trigger, Trigger::After(Duration::ZERO));
        assert_eq!("hang:all".parse::<Fault>().unwrap(), Fault::Hang(Parts { accept: true, handlers: true, watchdog: true }));
    }

    #[test]
    fn spec_errors_name_the_problem() {
        let err = |s: &str| s.parse::<FaultSpec>().unwrap_err();
        assert!(err("hang").contains("needs the parts"));
        assert!(err("hang:everything").contains("unknown hang part \"everything\""));
        assert!(err("exit:256").contains("0..=255"));
        assert!(err("signal:FOO").contains("unknown signal \"FOO\""));
        assert!(err("explode").contains("unknown fault kind"));
        assert!(err("unhealthy:3").contains("takes no argument"));
        assert!(err("exit:1@p=1.5").contains("probability"));
        assert!(err("exit:1@requests=0").contains(">= 1"));
        assert!(err("exit:1@soon").contains("must be after="));
    }

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!("KILL".parse::<Signal>(), Ok(Signal(9)));
        assert_eq!("sigabrt".parse::<Signal>(), Ok(Signal(libc::SIGABRT)));
        assert_eq!("15".parse::<Signal>(), Ok(Signal(15)));
        assert!("0".parse::<Signal>().is_err());
        assert_eq!(Signal(11).to_string(), "SEGV");
    }
}
