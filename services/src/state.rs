//! The state every thread shares: which parts hang, which faults fired, counters the
//! control endpoint reports. Plain atomics so that a hung thread never holds a lock
//! another part needs.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::faults::Armed;
use crate::notify::Notifier;

pub struct Shared {
    pub notifier: Notifier,
    /// The address actually bound (port 0 resolved); set once listening.
    pub bound: OnceLock<SocketAddr>,
    pub hang_accept: AtomicBool,
    pub hang_handlers: AtomicBool,
    pub hang_watchdog: AtomicBool,
    pub unhealthy: AtomicBool,
    /// Set by exhaust-fds: the accept loop takes every fd freed later.
    pub fd_leak: AtomicBool,
    pub watchdog_stopped: AtomicBool,
    /// The listening socket's fd while the accept loop owns it; -1 once close-listener
    /// claimed it. Swapping to -1 is the one race-free "please close" signal.
    pub listener_fd: AtomicI32,
    pub listener_closed: AtomicBool,
    /// Requests other than /control/*, counted on arrival.
    pub requests: AtomicU64,
    pub pings: AtomicU64,
    pub ready_sent: AtomicBool,
    pub faults: Vec<Armed>,
    pub rng: Mutex<fastrand::Rng>,
    pub seed: u64,
    /// Display forms of every fault injected so far, for /control/state.
    pub injected: Mutex<Vec<String>>,
}

impl Shared {
    pub fn new(notifier: Notifier, faults: Vec<Armed>, seed: u64) -> Shared {
        Shared {
            notifier,
            bound: OnceLock::new(),
            hang_accept: AtomicBool::new(false),
            hang_handlers: AtomicBool::new(false),
            hang_watchdog: AtomicBool::new(false),
            unhealthy: AtomicBool::new(false),
            fd_leak: AtomicBool::new(false),
            watchdog_stopped: AtomicBool::new(false),
            listener_fd: AtomicI32::new(-1),
            listener_closed: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            pings: AtomicU64::new(0),
            ready_sent: AtomicBool::new(false),
            faults,
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            seed,
            injected: Mutex::new(Vec::new()),
        }
    }

    /// `key=value` lines, one per fact, stable names: the lab parses this.
    pub fn report(&self) -> String {
        let f = |b: &AtomicBool| u8::from(b.load(Ordering::SeqCst));
        let bound = self.bound.get().map(|a| a.to_string()).unwrap_or_default();
        let injected = self.injected.lock().map(|v| v.join(" ")).unwrap_or_default();
        format!(
            "pid={}\nlisten={}\nrequests={}\nwatchdog_pings={}\nready_sent={}\nhang_accept={}\nhang_handlers={}\nhang_watchdog={}\nunhealthy={}\nfd_leak={}\nwatchdog_stopped={}\nlistener_closed={}\nseed={}\ninjected={}\n",
            std::process::id(),
            bound,
            self.requests.load(Ordering::SeqCst),
            self.pings.load(Ordering::SeqCst),
            f(&self.ready_sent),
            f(&self.hang_accept),
            f(&self.hang_handlers),
            f(&self.hang_watchdog),
            f(&self.unhealthy),
            f(&self.fd_leak),
            f(&self.watchdog_stopped),
            f(&self.listener_closed),
            self.seed,
            injected,
        )
    }
}

/// A hang is a thread that never comes back while the process stays alive.
pub fn block_forever() -> ! {
    loop {
        std::thread::park();
    }
}
