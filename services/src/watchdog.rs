//! The watchdog pinger: whether it runs (mode, environment, WATCHDOG_PID), how often it
//! pings, what it checks before each WATCHDOG=1, and when it deliberately stops.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::duration::show;
use crate::http;
use crate::log::event;
use crate::notify::WatchdogEnv;
use crate::state::{block_forever, Shared};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// No pings at all.
    None,
    /// A thread pings on a timer whatever the HTTP side does (the anti-pattern).
    Naive,
    /// Pings only after GET /healthz to ourselves answered 200 within the timeout.
    HealthChecked,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub mode: Mode,
    pub interval: Option<Duration>,
    pub divisor: u32,
    pub timeout: Option<Duration>,
    pub stop_after_pings: Option<u64>,
    pub stop_after: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub interval: Duration,
    pub timeout: Duration,
}

/// Decides whether to ping. An explicit --watchdog-interval pings even without
/// WATCHDOG_USEC (systemd ignores pings for units without WatchdogSec=), but never
/// overrides a WATCHDOG_PID that says the watchdog belongs to another process.
pub fn plan(s: &Settings, env: &WatchdogEnv) -> Result<Plan, String> {
    if s.mode == Mode::None {
        return Err("watchdog mode none: no WATCHDOG=1 will be sent".into());
    }
    let interval = match (env, s.interval) {
        (WatchdogEnv::NotOurs { watchdog_pid, our_pid }, _) => {
            return Err(format!(
                "watchdog disabled: WATCHDOG_PID={watchdog_pid} is not our pid {our_pid} (as sd_watchdog_enabled(); --watchdog-pid ignore overrides)"
            ))
        }
        (_, Some(i)) => i,
        (WatchdogEnv::Enabled(usec), None) => *usec / s.divisor,
        (WatchdogEnv::NotSet, None) => {
            return Err("watchdog disabled: WATCHDOG_USEC not set (no WatchdogSec= on the unit, or not the main process)".into())
        }
        (WatchdogEnv::Invalid(why), None) => return Err(format!("watchdog disabled: {why}")),
    };
    let interval = interval.max(Duration::from_millis(1));
    Ok(Plan { interval, timeout: s.timeout.unwrap_or(interval) })
}

/// Starts the pinger thread; call once the server listens.
pub fn start(settings: Settings, plan: Plan, shared: Arc<Shared>) {
    std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || run(&settings, &plan, &shared))
        .expect("spawning the watchdog thread at start-up");
}

fn run(s: &Settings, plan: &Plan, shared: &Shared) {
    let started = Instant::now();
    let target = shared.bound.get().map(|a| http::self_address(*a));
    let mut sent: u64 = 0;
    let mut healthy_before = true;
    event!(
        "watchdog pinger started: mode {}, interval {}, health timeout {}",
        crate::cli::name(&s.mode),
        show(plan.interval),
        show(plan.timeout)
    );
    loop {
        if shared.hang_watchdog.load(Ordering::SeqCst) {
            event!("watchdog pinger hung");
            block_forever();
        }
        if shared.watchdog_stopped.load(Ordering::SeqCst) {
            event!("watchdog pinger stopped after {sent} pings (fault stop-watchdog)");
            shared.notifier.status("watchdog pings stopped");
            return;
        }
        if s.stop_after_pings.is_some_and(|n| sent >= n) {
            event!("watchdog pinger stopped after {sent} pings (--watchdog-stop-after-pings)");
            shared.notifier.status("watchdog pings stopped");
            return;
        }
        if let Some(d) = s.stop_after.filter(|d| started.elapsed() >= *d) {
            event!("watchdog pinger stopped after {} and {sent} pings (--watchdog-stop-after)", show(d));
            shared.notifier.status("watchdog pings stopped");
            return;
        }
        let check = match (s.mode, target) {
            (Mode::HealthChecked, Some(addr)) => http::probe_health(addr, plan.timeout),
            _ => Ok(()),
        };
        match check {
            Ok(()) => match shared.notifier.send("WATCHDOG=1") {
                Ok(true) => {
                    sent += 1;
                    shared.pings.fetch_add(1, Ordering::SeqCst);
                    // Logging every ping would flood the journal; the first one and
                    // every recovery are the notable ones.
                    if sent == 1 || !healthy_before {
                        event!("WATCHDOG=1 sent (ping {sent})");
                    }
                    healthy_before = true;
                }
                Ok(false) => {
                    if sent == 0 && healthy_before {
                        event!("WATCHDOG=1 not sent: no NOTIFY_SOCKET");
                    }
                    healthy_before = false;
                }
                Err(e) => {
                    event!("WATCHDOG=1 failed: {e}");
                    healthy_before = false;
                }
            },
            Err(why) => {
                event!("WATCHDOG=1 withheld: health check failed: {why}");
                healthy_before = false;
            }
        }
        std::thread::sleep(plan.interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(mode: Mode, interval: Option<Duration>) -> Settings {
        Settings { mode, interval, divisor: 2, timeout: None, stop_after_pings: None, stop_after: None }
    }

    #[test]
    fn interval_from_watchdog_usec() {
        let env = WatchdogEnv::Enabled(Duration::from_secs(2));
        let p = plan(&settings(Mode::Naive, None), &env).unwrap();
        assert_eq!(p, Plan { interval: Duration::from_secs(1), timeout: Duration::from_secs(1) });
        let mut third = settings(Mode::HealthChecked, None);
        third.divisor = 3;
        third.timeout = Some(Duration::from_millis(100));
        let p = plan(&third, &WatchdogEnv::Enabled(Duration::from_millis(300))).unwrap();
        assert_eq!(p, Plan { interval: Duration::from_millis(100), timeout: Duration::from_millis(100) });
    }

    #[test]
    fn override_and_refusals() {
        let fixed = settings(Mode::Naive, Some(Duration::from_millis(50)));
        assert_eq!(plan(&fixed, &WatchdogEnv::NotSet).unwrap().interval, Duration::from_millis(50));
        let not_ours = WatchdogEnv::NotOurs { watchdog_pid: 1, our_pid: 2 };
        assert!(plan(&fixed, &not_ours).unwrap_err().contains("WATCHDOG_PID=1 is not our pid 2"));
        assert!(plan(&settings(Mode::Naive, None), &WatchdogEnv::NotSet).unwrap_err().contains("WATCHDOG_USEC not set"));
        let none = settings(Mode::None, None);
        assert!(plan(&none, &WatchdogEnv::Enabled(Duration::from_secs(1))).is_err());
    }
}
