//! The bounded "nothing more happens" windows, derived from a unit's own timers so that a wait
//! is as short as possible yet long enough for systemd to have acted if it were going to. Two
//! questions need one: "will systemd still restart this unit?" (`expect-no-restart`,
//! `observe what = "restart"`, the Restart= tables) and "can a start timeout still fire?"
//! (`settle`, the wrong-Type= table). Each is one function here; every report that uses a
//! window prints its [`WindowDerivation`].
//!
//! ```text
//! delay    = RestartMaxDelaySec=   when RestartSteps= >= 1 and RestartMaxDelaySec= is set (v254+:
//!                                  the delay grows up to it)
//!          = RestartSec=           otherwise, when set
//!          = DefaultRestartSec=    from the [Manager] settings, when set
//!          = 100ms                 systemd's default
//! watchdog = WatchdogSec=          when set and finite, else 0: a hang is only noticed, and a
//!                                  restart only scheduled, once the watchdog expires
//!
//! no restart, counted from now:            2 × (delay + watchdog) + 1s
//! no restart, counted from the failure:    2 × delay + 1s   (the watchdog has already fired)
//!
//! start    = TimeoutStartSec= (or TimeoutSec=) of the unit when set and finite
//!          = DefaultTimeoutStartSec= from the [Manager] settings, when set
//!          = 90s                   systemd's default
//! settled, counted from the start job:  start + 1s
//! ```
//!
//! The factor 2 and the second absorb scheduling and journal latency in a loaded target;
//! `infinity` or unparsable values count as unset (systemd would ignore or never fire them).
//! A `Type=oneshot` unit has no start timeout unless it sets one; its settle window still
//! uses the default start timeout, the point after which any other type would have failed:
//! a unit still activating then is "activating forever" for the lab's purposes.
//! All arithmetic saturates: a huge timer gives a huge window, never an overflow.

use std::time::Duration;

use super::duration::{format_duration, parse_timespan, Timespan};
use super::manager::ManagerSettings;
use super::unit::UnitFile;

/// systemd's built-in `DefaultRestartSec=`.
pub const DEFAULT_RESTART_SEC: Duration = Duration::from_millis(100);
/// systemd's built-in `DefaultTimeoutStartSec=`.
pub const DEFAULT_TIMEOUT_START_SEC: Duration = Duration::from_secs(90);
/// Slack added to every derived window.
pub const WINDOW_SLACK: Duration = Duration::from_secs(1);

/// Where a no-restart window is counted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountedFrom {
    /// From the moment the lab starts watching: a failure may still be on its way (a hang
    /// is only noticed when the watchdog expires), so the watchdog is part of the window.
    Now,
    /// From the failure systemd logged: the restart decision has been taken at that moment.
    Failure,
}

/// A derived window with its inputs, printed wherever it is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowDerivation {
    pub window: Duration,
    /// The formula with its inputs, e.g.
    /// `2 × (RestartSec=1s + WatchdogSec=2s) + 1s = 7s`.
    pub text: String,
}

impl std::fmt::Display for WindowDerivation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

fn finite(value: Option<&str>) -> Option<Duration> {
    match parse_timespan(value?) {
        Ok(Timespan::Finite(d)) => Some(d),
        _ => None,
    }
}

/// The restart delay systemd would apply, and the directive it came from.
fn restart_delay(unit: &UnitFile, manager: &ManagerSettings) -> (Duration, &'static str) {
    let steps: u32 = unit.service_value("RestartSteps").and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    let max_delay = finite(unit.service_value("RestartMaxDelaySec"));
    if let (true, Some(max)) = (steps >= 1, max_delay) {
        (max, "RestartMaxDelaySec")
    } else if let Some(d) = finite(unit.service_value("RestartSec")) {
        (d, "RestartSec")
    } else if let Some(d) = finite(manager.value("DefaultRestartSec")) {
        (d, "DefaultRestartSec")
    } else {
        (DEFAULT_RESTART_SEC, "default RestartSec")
    }
}

/// How long to watch for a restart that systemd, if it were going to restart the unit, would
/// have scheduled and started by the end.
pub fn no_restart_window(unit: &UnitFile, manager: &ManagerSettings, from: CountedFrom) -> WindowDerivation {
    let (delay, delay_from) = restart_delay(unit, manager);
    let watchdog = finite(unit.service_value("WatchdogSec")).unwrap_or(Duration::ZERO);
    let (window, text) = match from {
        CountedFrom::Now => {
            let window = delay.saturating_add(watchdog).saturating_mul(2).saturating_add(WINDOW_SLACK);
            let text = format!(
                "2 × ({delay_from}={} + WatchdogSec={}) + {} = {}",
                format_duration(delay),
                format_duration(watchdog),
                format_duration(WINDOW_SLACK),
                format_duration(window)
            );
            (window, text)
        }
        CountedFrom::Failure => {
            let window = delay.saturating_mul(2).saturating_add(WINDOW_SLACK);
            let text = format!(
                "2 × {delay_from}={} + {} = {}, counted from the failure",
                format_duration(delay),
                format_duration(WINDOW_SLACK),
                format_duration(window)
            );
            (window, text)
        }
    };
    WindowDerivation { window, text }
}

/// How long after a start request no start timeout can still fire.
pub fn settle_window(unit: &UnitFile, manager: &ManagerSettings) -> WindowDerivation {
    let own = finite(unit.service_value("TimeoutStartSec")).map(|d| (d, "TimeoutStartSec"));
    let own = own.or_else(|| finite(unit.service_value("TimeoutSec")).map(|d| (d, "TimeoutSec")));
    let (start, from) = own
        .or_else(|| finite(manager.value("DefaultTimeoutStartSec")).map(|d| (d, "DefaultTimeoutStartSec")))
        .unwrap_or((DEFAULT_TIMEOUT_START_SEC, "default TimeoutStartSec"));
    let window = start.saturating_add(WINDOW_SLACK);
    let text = format!(
        "{from}={} + {} = {}, counted from the start job",
        format_duration(start),
        format_duration(WINDOW_SLACK),
        format_duration(window)
    );
    WindowDerivation { window, text }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::systemd::unit::Directive;

    fn unit(service: &[(&str, &str)]) -> UnitFile {
        UnitFile { service: service.iter().map(|(k, v)| Directive::new(*k, *v)).collect(), ..UnitFile::default() }
    }

    fn none() -> ManagerSettings {
        ManagerSettings::default()
    }

    #[test]
    fn default_restart_sec_is_100ms() {
        let w = no_restart_window(&unit(&[]), &none(), CountedFrom::Now);
        assert_eq!(w.window, Duration::from_millis(1200));
        assert_eq!(w.text, "2 × (default RestartSec=100ms + WatchdogSec=0) + 1s = 1.2s");
    }

    #[test]
    fn restart_sec_and_watchdog_widen_the_window() {
        let u = unit(&[("RestartSec", "1s"), ("WatchdogSec", "2s"), ("RestartSec", "3s")]);
        assert_eq!(no_restart_window(&u, &none(), CountedFrom::Now).window, Duration::from_secs(11), "last RestartSec wins");
    }

    #[test]
    fn counted_from_the_failure_the_watchdog_has_already_fired() {
        let u = unit(&[("RestartSec", "1s"), ("WatchdogSec", "2s")]);
        let w = no_restart_window(&u, &none(), CountedFrom::Failure);
        assert_eq!(w.window, Duration::from_secs(3));
        assert_eq!(w.text, "2 × RestartSec=1s + 1s = 3s, counted from the failure");
    }

    #[test]
    fn manager_default_applies_when_the_unit_is_silent() {
        let m = ManagerSettings { directives: vec![Directive::new("DefaultRestartSec", "500ms")] };
        assert_eq!(no_restart_window(&unit(&[]), &m, CountedFrom::Now).window, Duration::from_secs(2));
        let u = unit(&[("RestartSec", "0")]);
        assert_eq!(no_restart_window(&u, &m, CountedFrom::Now).window, Duration::from_secs(1), "the unit's RestartSec= overrides the manager");
    }

    #[test]
    fn restart_steps_use_the_maximum_delay() {
        let u = unit(&[("RestartSec", "100ms"), ("RestartSteps", "3"), ("RestartMaxDelaySec", "4s")]);
        assert_eq!(no_restart_window(&u, &none(), CountedFrom::Now).window, Duration::from_secs(9));
        let without_steps = unit(&[("RestartSec", "100ms"), ("RestartMaxDelaySec", "4s")]);
        assert_eq!(no_restart_window(&without_steps, &none(), CountedFrom::Now).window, Duration::from_millis(1200));
    }

    #[test]
    fn infinity_counts_as_unset() {
        let u = unit(&[("WatchdogSec", "infinity"), ("RestartSec", "bogus")]);
        assert_eq!(no_restart_window(&u, &none(), CountedFrom::Now).window, Duration::from_millis(1200));
    }

    #[test]
    fn huge_timers_saturate_instead_of_overflowing() {
        let u = unit(&[("RestartSec", "18446744073709551615s"), ("WatchdogSec", "18446744073709551615s")]);
        assert_eq!(no_restart_window(&u, &none(), CountedFrom::Now).window, Duration::MAX);
        assert_eq!(settle_window(&unit(&[("TimeoutStartSec", "18446744073709551615s")]), &none()).window, Duration::MAX);
    }

    #[test]
    fn settle_uses_the_units_start_timeout_then_the_managers_then_90s() {
        let m = ManagerSettings { directives: vec![Directive::new("DefaultTimeoutStartSec", "3s")] };
        let w = settle_window(&unit(&[]), &m);
        assert_eq!(w.window, Duration::from_secs(4));
        assert_eq!(w.text, "DefaultTimeoutStartSec=3s + 1s = 4s, counted from the start job");
        assert_eq!(settle_window(&unit(&[("TimeoutStartSec", "2s")]), &m).window, Duration::from_secs(3));
        assert_eq!(settle_window(&unit(&[("TimeoutSec", "5s")]), &m).window, Duration::from_secs(6));
        assert_eq!(settle_window(&unit(&[("TimeoutStartSec", "infinity")]), &none()).window, Duration::from_secs(91));
    }
}
