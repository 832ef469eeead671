//! The "nothing more happens" window of `expect-no-restart`, derived from the unit's own timers
//! so that the wait is as short as possible yet long enough for systemd to have restarted the
//! unit if it were going to.
//!
//! Formula (all values as systemd would use them, the last assignment of a directive winning):
//!
//! ```text
//! delay    = RestartMaxDelaySec=   when RestartSteps= >= 1 and RestartMaxDelaySec= is set (v254+:
//!                                  the delay grows up to it)
//!          = RestartSec=           otherwise, when set
//!          = DefaultRestartSec=    from the scenario's [manager], when set
//!          = 100ms                 systemd's default
//! watchdog = WatchdogSec=          when set and finite, else 0 (a hang is only noticed, and a
//!                                  restart only scheduled, once the watchdog expires)
//! window   = 2 × (delay + watchdog) + 1s
//! ```
//!
//! The factor 2 and the second absorb scheduling and journal latency in the container;
//! `infinity` or unparsable values count as unset (systemd would ignore or never fire them).

use std::time::Duration;

use super::duration::{format_duration, parse_timespan, Timespan};
use super::manager::ManagerSettings;
use super::unit::UnitFile;

/// systemd's built-in `DefaultRestartSec=`.
pub const DEFAULT_RESTART_SEC: Duration = Duration::from_millis(100);
/// Slack added to every derived window.
pub const WINDOW_SLACK: Duration = Duration::from_secs(1);

/// The inputs and result of the formula above, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowDerivation {
    /// The restart delay systemd would apply.
    pub delay: Duration,
    /// Where `delay` came from: `RestartMaxDelaySec`, `RestartSec`, `DefaultRestartSec` or `default`.
    pub delay_from: &'static str,
    /// `WatchdogSec=`, zero when unset.
    pub watchdog: Duration,
    /// `2 × (delay + watchdog) + 1s`.
    pub window: Duration,
}

impl std::fmt::Display for WindowDerivation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let from = match self.delay_from {
            "default" => "default RestartSec".to_string(),
            other => other.to_string(),
        };
        write!(
            f,
            "2 × ({from}={} + WatchdogSec={}) + {} = {}",
            format_duration(self.delay),
            format_duration(self.watchdog),
            format_duration(WINDOW_SLACK),
            format_duration(self.window)
        )
    }
}

fn finite(value: Option<&str>) -> Option<Duration> {
    match parse_timespan(value?) {
        Ok(Timespan::Finite(d)) => Some(d),
        _ => None,
    }
}

/// The formula with its inputs.
pub fn derive_no_restart_window(unit: &UnitFile, manager: &ManagerSettings) -> WindowDerivation {
    let steps: u32 = unit.service_value("RestartSteps").and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    let max_delay = finite(unit.service_value("RestartMaxDelaySec"));
    let (delay, delay_from) = if let (true, Some(max)) = (steps >= 1, max_delay) {
        (max, "RestartMaxDelaySec")
    } else if let Some(d) = finite(unit.service_value("RestartSec")) {
        (d, "RestartSec")
    } else if let Some(d) = finite(manager.value("DefaultRestartSec")) {
        (d, "DefaultRestartSec")
    } else {
        (DEFAULT_RESTART_SEC, "default")
    };
    let watchdog = finite(unit.service_value("WatchdogSec")).unwrap_or(Duration::ZERO);
    let window = (delay + watchdog) * 2 + WINDOW_SLACK;
    WindowDerivation { delay, delay_from, watchdog, window }
}

/// How long `expect-no-restart` watches by default: `2 × (restart delay + WatchdogSec) + 1s`
/// (see the module documentation for how each input is read).
pub fn no_restart_window(unit: &UnitFile, manager: &ManagerSettings) -> Duration {
    derive_no_restart_window(unit, manager).window
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::systemd::unit::Directive;

    fn unit(service: &[(&str, &str)]) -> UnitFile {
        UnitFile {
            service: service.iter().map(|(k, v)| Directive::new(*k, *v)).collect(),
            ..UnitFile::default()
        }
    }

    #[test]
    fn default_restart_sec_is_100ms() {
        let w = derive_no_restart_window(&unit(&[]), &ManagerSettings::default());
        assert_eq!(w.delay, Duration::from_millis(100));
        assert_eq!(w.window, Duration::from_millis(1200));
        assert_eq!(w.to_string(), "2 × (default RestartSec=100ms + WatchdogSec=0) + 1s = 1.2s");
    }

    #[test]
    fn restart_sec_and_watchdog_widen_the_window() {
        let u = unit(&[("RestartSec", "1s"), ("WatchdogSec", "2s"), ("RestartSec", "3s")]);
        assert_eq!(no_restart_window(&u, &ManagerSettings::default()), Duration::from_secs(11), "last RestartSec wins");
    }

    #[test]
    fn manager_default_applies_when_the_unit_is_silent() {
        let m = ManagerSettings { directives: vec![Directive::new("DefaultRestartSec", "500ms")] };
        assert_eq!(no_restart_window(&unit(&[]), &m), Duration::from_secs(2));
        let u = unit(&[("RestartSec", "0")]);
        assert_eq!(no_restart_window(&u, &m), Duration::from_secs(1), "the unit's RestartSec= overrides the manager");
    }

    #[test]
    fn restart_steps_use_the_maximum_delay() {
        let u = unit(&[("RestartSec", "100ms"), ("RestartSteps", "3"), ("RestartMaxDelaySec", "4s")]);
        assert_eq!(no_restart_window(&u, &ManagerSettings::default()), Duration::from_secs(9));
        let without_steps = unit(&[("RestartSec", "100ms"), ("RestartMaxDelaySec", "4s")]);
        assert_eq!(no_restart_window(&without_steps, &ManagerSettings::default()), Duration::from_millis(1200));
    }

    #[test]
    fn infinity_counts_as_unset() {
        let u = unit(&[("WatchdogSec", "infinity"), ("RestartSec", "bogus")]);
        assert_eq!(no_restart_window(&u, &ManagerSettings::default()), Duration::from_millis(1200));
    }
}
