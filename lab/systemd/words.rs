//! systemd's closed sets of words, each defined once for the whole lab: `Type=`, `Restart=`,
//! `Result`, `ActiveState`, `SubState`, `systemctl kill --kill-whom=`, and how a main process
//! ended (`ExecMainCode`/`ExecMainStatus`). Scenarios, tables and reports all use these.

use std::fmt;
use std::str::FromStr;

use super::signal::Signal;

/// Creates a closed set of words with `as_str`, `ALL`, `FromStr` and `Display`.
macro_rules! word_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in systemd's documentation order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The word as systemd writes it.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }
        }

        impl FromStr for $name {
            type Err = ();
            /// Exact, case-sensitive match (systemd is case-sensitive).
            fn from_str(s: &str) -> Result<Self, ()> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s).ok_or(())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use word_enum;

word_enum! {
    /// `Type=` of a service.
    ServiceType {
        Simple = "simple", Exec = "exec", Forking = "forking", Oneshot = "oneshot", Dbus = "dbus",
        Notify = "notify", NotifyReload = "notify-reload", Idle = "idle",
    }
}

word_enum! {
    /// `Restart=`.
    RestartPolicy {
        No = "no", Always = "always", OnSuccess = "on-success", OnFailure = "on-failure",
        OnAbnormal = "on-abnormal", OnAbort = "on-abort", OnWatchdog = "on-watchdog",
    }
}

word_enum! {
    /// A unit's `ActiveState`.
    ActiveState {
        Active = "active", Reloading = "reloading", Inactive = "inactive", Failed = "failed",
        Activating = "activating", Deactivating = "deactivating", Maintenance = "maintenance",
        /// v256+.
        Refreshing = "refreshing",
    }
}

word_enum! {
    /// A service's `SubState` (systemd 252..257; the `*-before-auto-restart` and
    /// `auto-restart-queued` states exist from v254).
    SubState {
        Dead = "dead", Condition = "condition", StartPre = "start-pre", Start = "start",
        StartPost = "start-post", Running = "running", Exited = "exited", Reload = "reload",
        ReloadSignal = "reload-signal", ReloadNotify = "reload-notify", Mounting = "mounting",
        Stop = "stop", StopWatchdog = "stop-watchdog", StopSigterm = "stop-sigterm",
        StopSigkill = "stop-sigkill", StopPost = "stop-post", FinalWatchdog = "final-watchdog",
        FinalSigterm = "final-sigterm", FinalSigkill = "final-sigkill", Failed = "failed",
        DeadBeforeAutoRestart = "dead-before-auto-restart",
        FailedBeforeAutoRestart = "failed-before-auto-restart",
        DeadResourcesPinned = "dead-resources-pinned", AutoRestart = "auto-restart",
        AutoRestartQueued = "auto-restart-queued", Cleaning = "cleaning",
    }
}

word_enum! {
    /// A service's `Result`.
    ServiceResult {
        Success = "success", ExitCode = "exit-code", Signal = "signal", CoreDump = "core-dump",
        Timeout = "timeout", Watchdog = "watchdog", StartLimitHit = "start-limit-hit",
        Protocol = "protocol", Resources = "resources", OomKill = "oom-kill",
        ExecCondition = "exec-condition",
    }
}

word_enum! {
    /// `systemctl kill --kill-whom=`: which of a unit's processes get the signal.
    KillWhom { All = "all", Main = "main", Control = "control" }
}

/// How the main process ended (`ExecMainCode`/`ExecMainStatus`: code 1 = exited with status,
/// 2 = killed by signal, 3 = killed and dumped core).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MainExit {
    /// `exit_code = N`.
    Exited(u8),
    /// `exit_signal = "SEGV"`; `dumped` is `Some` only when `core_dumped` was written.
    Killed { signal: Signal, dumped: Option<bool> },
}

impl MainExit {
    /// Read `ExecMainCode` and `ExecMainStatus`; `None` when the process has not ended (code 0).
    pub fn from_properties(code: &str, status: &str) -> Option<MainExit> {
        let status: i32 = status.trim().parse().ok()?;
        match code.trim() {
            "1" => u8::try_from(status).ok().map(MainExit::Exited),
            "2" => Signal::from_number(status).map(|signal| MainExit::Killed { signal, dumped: Some(false) }),
            "3" => Signal::from_number(status).map(|signal| MainExit::Killed { signal, dumped: Some(true) }),
            _ => None,
        }
    }

    /// Does an observed exit satisfy this expected one?
    pub fn matches(&self, found: &MainExit) -> bool {
        match (self, found) {
            (MainExit::Exited(a), MainExit::Exited(b)) => a == b,
            (MainExit::Killed { signal: a, dumped: want }, MainExit::Killed { signal: b, dumped: got }) => {
                a == b && (want.is_none() || want == got)
            }
            _ => false,
        }
    }
}

impl fmt::Display for MainExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MainExit::Exited(code) => write!(f, "exit code {code}"),
            MainExit::Killed { signal, dumped: None } => write!(f, "killed by {signal}"),
            MainExit::Killed { signal, dumped: Some(true) } => write!(f, "killed by {signal} with a core dump"),
            MainExit::Killed { signal, dumped: Some(false) } => write!(f, "killed by {signal} without a core dump"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_case_sensitive() {
        assert_eq!("notify".parse::<ServiceType>(), Ok(ServiceType::Notify));
        assert!("Notify".parse::<ServiceType>().is_err());
        assert_eq!("on-failure".parse::<RestartPolicy>(), Ok(RestartPolicy::OnFailure));
    }
}
