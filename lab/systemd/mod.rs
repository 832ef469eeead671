//! The shared vocabulary of systemd, defined once for scenarios, tables, the runner and the
//! reports: closed sets of words (`Type=`, `Restart=`, `Result`, states), signals, time spans,
//! unit files and their directives, the "nothing more happens" windows derived from a unit's
//! own timers, and the Debian suites. Plain synchronous code.

pub mod directives;
pub mod duration;
pub mod manager;
pub mod signal;
pub mod suite;
pub mod unit;
pub mod window;
pub mod words;

pub use duration::{format_duration, parse_duration, parse_timespan, DurationError, Timespan};
pub use manager::ManagerSettings;
pub use signal::Signal;
pub use suite::Suite;
pub use unit::{exec_line, Directive, UnitFile};
pub use window::{no_restart_window, settle_window, CountedFrom, WindowDerivation, DEFAULT_RESTART_SEC, DEFAULT_TIMEOUT_START_SEC, WINDOW_SLACK};
pub use words::{ActiveState, KillWhom, MainExit, RestartPolicy, ServiceResult, ServiceType, SubState};
