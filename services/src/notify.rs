//! The sd_notify protocol: where to send (NOTIFY_SOCKET), whether the watchdog is ours
//! (WATCHDOG_USEC / WATCHDOG_PID), and the datagrams themselves.
//!
//! Semantics follow libsystemd's `sd_notify()` / `sd_watchdog_enabled()`: an unset
//! NOTIFY_SOCKET makes every send a no-op, a NOTIFY_SOCKET starting with `@` names an
//! abstract socket, and WATCHDOG_USEC only applies when WATCHDOG_PID is unset or is our pid.

use std::ffi::OsString;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::PathBuf;
use std::time::Duration;

use crate::log::event;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Path(PathBuf),
    /// Name without the leading `@` (which stands for the kernel's leading NUL byte).
    Abstract(Vec<u8>),
}

impl Target {
    /// Parses NOTIFY_SOCKET. Anything but an absolute path or `@name` is refused, as
    /// libsystemd does (e.g. `vsock:` addresses of newer managers are not supported here).
    pub fn parse(value: &OsString) -> Result<Target, String> {
        use std::os::unix::ffi::OsStrExt;
        let bytes = value.as_bytes();
        match bytes.first() {
            Some(b'/') => Ok(Target::Path(PathBuf::from(value))),
            Some(b'@') if bytes.len() > 1 => Ok(Target::Abstract(bytes[1..].to_vec())),
            _ => Err(format!(
                "NOTIFY_SOCKET={:?} is neither an absolute path nor an abstract @name",
                value
            )),
        }
    }

    fn address(&self) -> io::Result<SocketAddr> {
        match self {
            Target::Path(p) => SocketAddr::from_pathname(p),
            Target::Abstract(name) => SocketAddr::from_abstract_name(name),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Path(p) => write!(f, "{}", p.display()),
            Target::Abstract(n) => write!(f, "@{}", String::from_utf8_lossy(n)),
        }
    }
}

/// How the notify socket is held. `PerMessage` is what libsystemd and most bindings do
/// (a fresh socket per message), which means a process out of file descriptors can no
/// longer notify either; `Keep` opens it once, so pings survive fd exhaustion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SocketPolicy {
    PerMessage,
    Keep,
}

pub struct Notifier {
    target: Option<Target>,
    kept: Option<UnixDatagram>,
}

impl Notifier {
    /// Reads NOTIFY_SOCKET. A malformed value is logged and treated like an unset one:
    /// the server still runs, the lab sees the log line.
    pub fn from_env(policy: SocketPolicy) -> Notifier {
        let target = match std::env::var_os("NOTIFY_SOCKET") {
            None => {
                event!("NOTIFY_SOCKET not set: notify messages are no-ops (unit is not Type=notify and has no WatchdogSec=/NotifyAccess=)");
                None
            }
            Some(v) => match Target::parse(&v) {
                Ok(t) => {
                    event!("NOTIFY_SOCKET={t}");
                    Some(t)
                }
                Err(e) => {
                    event!("ignoring {e}");
                    None
                }
            },
        };
        let kept = match (&target, policy) {
            (Some(_), SocketPolicy::Keep) => match UnixDatagram::unbound() {
                Ok(s) => Some(s),
                Err(e) => {
                    event!("cannot open the notify socket to keep: {e}; falling back to one socket per message");
                    None
                }
            },
            _ => None,
        };
        Notifier { target, kept }
    }

    /// Sends one datagram. Ok(false) means there is no socket to send to.
    pub fn send(&self, message: &str) -> io::Result<bool> {
        let Some(target) = &self.target else { return Ok(false) };
        let addr = target.address()?;
        let sent = match &self.kept {
            Some(sock) => sock.send_to_addr(message.as_bytes(), &addr)?,
            None => UnixDatagram::unbound()?.send_to_addr(message.as_bytes(), &addr)?,
        };
        if sent != message.len() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "short datagram"));
        }
        Ok(true)
    }

    /// Sends and logs the outcome as "<message> sent<note>"; never fails the caller,
    /// since a broken notify path is itself something the lab wants to observe.
    pub fn send_logged(&self, message: &str, note: &str) -> bool {
        let what = message.replace('\n', " ");
        match self.send(message) {
            Ok(true) => {
                event!("{what} sent{note}");
                true
            }
            Ok(false) => {
                event!("{what} not sent{note}: no NOTIFY_SOCKET");
                false
            }
            Err(e) => {
                event!("{what} failed{note}: {e}");
                false
            }
        }
    }

    /// STATUS= is informational (shown by `systemctl status`), so it is not logged.
    pub fn status(&self, text: &str) {
        let _ = self.send(&format!("STATUS={text}"));
    }
}

/// Whether WATCHDOG_PID lets us treat WATCHDOG_USEC as ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PidPolicy {
    /// As sd_watchdog_enabled(): WATCHDOG_PID set and not our pid disables the watchdog.
    Honour,
    /// Ping anyway (e.g. a forking daemon whose pid systemd learnt from PIDFile=).
    Ignore,
}

/// What the environment says about the watchdog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchdogEnv {
    Enabled(Duration),
    NotSet,
    NotOurs { watchdog_pid: u32, our_pid: u32 },
    Invalid(String),
}

/// Mirrors sd_watchdog_enabled(): WATCHDOG_USEC must be a positive integer, WATCHDOG_PID
/// (if set) a positive integer equal to our pid.
pub fn watchdog_env(policy: PidPolicy, our_pid: u32) -> WatchdogEnv {
    let usec = match std::env::var("WATCHDOG_USEC") {
        Err(std::env::VarError::NotPresent) => return WatchdogEnv::NotSet,
        Err(e) => return WatchdogEnv::Invalid(format!("WATCHDOG_USEC: {e}")),
        Ok(v) => match v.parse::<u64>() {
            Ok(n) if n > 0 => n,
            _ => return WatchdogEnv::Invalid(format!("WATCHDOG_USEC={v:?} is not a positive integer")),
        },
    };
    if let Ok(p) = std::env::var("WATCHDOG_PID") {
        let watchdog_pid = match p.parse::<u32>() {
            Ok(n) if n > 0 => n,
            _ => return WatchdogEnv::Invalid(format!("WATCHDOG_PID={p:?} is not a positive integer")),
        };
        if watchdog_pid != our_pid && policy == PidPolicy::Honour {
            return WatchdogEnv::NotOurs { watchdog_pid, our_pid };
        }
    }
    WatchdogEnv::Enabled(Duration::from_micros(usec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_socket_forms() {
        assert_eq!(Target::parse(&"/run/x".into()), Ok(Target::Path("/run/x".into())));
        assert_eq!(Target::parse(&"@abc".into()), Ok(Target::Abstract(b"abc".to_vec())));
        assert!(Target::parse(&"@".into()).is_err());
        assert!(Target::parse(&"relative".into()).is_err());
        assert!(Target::parse(&"vsock:2:1234".into()).is_err());
    }
}
