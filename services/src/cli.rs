//! Command line: the flags, their documentation (`--help` carries the mode table), and the
//! cross-flag checks clap cannot express. Usage errors exit with code 2.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};

use crate::faults::FaultSpec;
use crate::notify::{PidPolicy, SocketPolicy};
use crate::shape::Shape;
use crate::watchdog;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Ready {
    /// READY=1 right after the listening socket is bound (correct).
    AfterListen,
    /// READY=1 before binding: with --bind-delay, clients get "connection refused"
    /// although systemd already reports the unit started.
    BeforeListen,
    /// READY=1 --ready-delay after the socket is bound.
    Delayed,
    /// Never send READY=1.
    Never,
}

/// The flag spelling of an enum value, for log lines that match what the user typed.
pub fn name<T: ValueEnum>(value: &T) -> String {
    value.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default()
}

fn duration(s: &str) -> Result<Duration, String> {
    crate::duration::parse(s)
}

#[derive(Debug, Parser)]
#[command(
    name = "buggy-server",
    version,
    about = "A deliberately buggy HTTP server for systemd chaos tests (unitlab)",
    long_about = "A deliberately buggy HTTP server for systemd chaos tests (unitlab).\n\n\
        Serves GET / and GET /healthz, speaks sd_notify (READY=1, WATCHDOG=1, STATUS=, MAINPID=), \
        and breaks on purpose: faults by --fault at start or live via POST /control/fault. \
        Every event is logged to stderr with the prefix \"buggy-server: \"."
)]
pub struct Cli {
    /// Address to listen on (IP:PORT; port 0 picks a free port, logged on start).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// When READY=1 is sent (no-op without NOTIFY_SOCKET).
    #[arg(long, value_enum, value_name = "MODE", default_value = "after-listen")]
    pub ready: Ready,

    /// Delay for --ready delayed, counted from the bind [default: 5s].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub ready_delay: Option<Duration>,

    /// Wait this long before binding the socket (a slow start-up).
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "0s")]
    pub bind_delay: Duration,

    /// Add MAINPID=<pid of the serving process> to the READY=1 datagram.
    #[arg(long)]
    pub notify_mainpid: bool,

    /// Socket handling for notify messages: per-message (like libsystemd: needs a free
    /// fd per message) or keep (opened once, so pings survive fd exhaustion).
    #[arg(long, value_enum, value_name = "POLICY", default_value = "per-message")]
    pub notify_socket: SocketPolicy,

    /// Watchdog pinger.
    #[arg(long, value_enum, value_name = "MODE", default_value = "none")]
    pub watchdog: watchdog::Mode,

    /// Ping interval; overrides WATCHDOG_USEC / --watchdog-divisor, and pings even when
    /// WATCHDOG_USEC is unset.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub watchdog_interval: Option<Duration>,

    /// Ping every WATCHDOG_USEC / N (2 = half, as sd_watchdog_enabled(3) recommends).
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub watchdog_divisor: u32,

    /// Deadline for the health-checked pinger's GET /healthz [default: the interval].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub health_timeout: Option<Duration>,

    /// Stop pinging after N pings.
    #[arg(long, value_name = "N")]
    pub watchdog_stop_after_pings: Option<u64>,

    /// Stop pinging once this long has passed since the pinger started.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub watchdog_stop_after: Option<Duration>,

    /// honour: a WATCHDOG_PID other than our pid disables the watchdog, as libsystemd
    /// does; ignore: ping anyway.
    #[arg(long, value_enum, value_name = "POLICY", default_value = "honour")]
    pub watchdog_pid: PidPolicy,

    /// Inject a fault: KIND[:ARG][@TRIGGER], repeatable. KIND: hang:PARTS (accept,
    /// handlers, watchdog, comma list, all), exit:CODE, signal:SIG (name or number),
    /// stop-watchdog, close-listener, exhaust-fds, unhealthy, watchdog-trigger.
    /// TRIGGER: after=DURATION (from listening; default after=0s), requests=N (after the
    /// Nth request is answered), p=PROB (per request, seeded RNG).
    #[arg(long = "fault", value_name = "SPEC", value_parser = clap::value_parser!(FaultSpec))]
    pub faults: Vec<FaultSpec>,

    /// Seed for p= triggers: same seed, same requests hit.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,

    /// Process shape: foreground, forking (double fork, parent exits once the daemon
    /// listens), oneshot (serves for --work, then exits with --exit-code).
    #[arg(long, value_enum, value_name = "SHAPE", default_value = "foreground")]
    pub shape: Shape,

    /// Write the serving process's pid here once listening (before a forking parent exits).
    #[arg(long, value_name = "PATH")]
    pub pid_file: Option<PathBuf>,

    /// Oneshot: how long the work (serving) lasts [default: 0s].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub work: Option<Duration>,

    /// Oneshot: exit code once the work is done [default: 0].
    #[arg(long, value_name = "CODE")]
    pub exit_code: Option<u8>,

    /// Ignore SIGTERM, so `systemctl stop` runs into TimeoutStopSec= and SIGKILL.
    #[arg(long)]
    pub ignore_sigterm: bool,

    /// Print the catalogue of modes as JSON (flags, what breaks, expected outcome) and exit.
    #[arg(long)]
    pub list_modes: bool,
}

impl Cli {
    /// Parses argv; on a usage error prints clap's message and exits 2.
    pub fn parse_args() -> Cli {
        let mut cmd = Cli::command().after_long_help(crate::modes::help_text());
        let matches = cmd.get_matches_mut();
        let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        if let Err(msg) = cli.check() {
            cmd.error(clap::error::ErrorKind::ArgumentConflict, msg).exit();
        }
        cli
    }

    /// Rules between flags. Flags that would silently do nothing are refused, so a
    /// scenario never believes it configured something it did not.
    pub fn check(&self) -> Result<(), String> {
        if self.ready_delay.is_some() && self.ready != Ready::Delayed {
            return Err("--ready-delay only applies to --ready delayed".into());
        }
        if self.shape != Shape::Oneshot {
            if self.work.is_some() {
                return Err("--work only applies to --shape oneshot".into());
            }
            if self.exit_code.is_some() {
                return Err("--exit-code only applies to --shape oneshot".into());
            }
        }
        if self.watchdog == watchdog::Mode::None {
            let stray = [
                (self.watchdog_interval.is_some(), "--watchdog-interval"),
                (self.health_timeout.is_some(), "--health-timeout"),
                (self.watchdog_stop_after_pings.is_some(), "--watchdog-stop-after-pings"),
                (self.watchdog_stop_after.is_some(), "--watchdog-stop-after"),
            ];
            if let Some((_, flag)) = stray.iter().find(|(set, _)| *set) {
                return Err(format!("{flag} needs --watchdog naive or --watchdog health-checked"));
            }
        }
        if self.health_timeout.is_some() && self.watchdog != watchdog::Mode::HealthChecked {
            return Err("--health-timeout only applies to --watchdog health-checked".into());
        }
        Ok(())
    }

    pub fn watchdog_settings(&self) -> watchdog::Settings {
        watchdog::Settings {
            mode: self.watchdog,
            interval: self.watchdog_interval,
            divisor: self.watchdog_divisor,
            timeout: self.health_timeout,
            stop_after_pings: self.watchdog_stop_after_pings,
            stop_after: self.watchdog_stop_after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, String> {
        let cli = Cli::try_parse_from(std::iter::once("buggy-server").chain(args.iter().copied())).map_err(|e| e.to_string())?;
        cli.check()?;
        Ok(cli)
    }

    #[test]
    fn defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!((c.ready, c.watchdog, c.shape), (Ready::AfterListen, watchdog::Mode::None, Shape::Foreground));
    }

    #[test]
    fn cross_flag_rules() {
        assert!(parse(&["--ready-delay", "2s"]).unwrap_err().contains("--ready delayed"));
        assert!(parse(&["--work", "2s"]).unwrap_err().contains("--shape oneshot"));
        assert!(parse(&["--watchdog-interval", "1s"]).unwrap_err().contains("needs --watchdog"));
        assert!(parse(&["--watchdog", "naive", "--health-timeout", "1s"]).unwrap_err().contains("health-checked"));
        assert!(parse(&["--shape", "oneshot", "--work", "1s", "--exit-code", "3"]).is_ok());
    }

    #[test]
    fn bad_values_name_the_flag() {
        let e = parse(&["--listen", "nowhere"]).unwrap_err();
        assert!(e.contains("--listen"), "{e}");
        let e = parse(&["--fault", "explode"]).unwrap_err();
        assert!(e.contains("--fault") && e.contains("unknown fault kind"), "{e}");
        let e = parse(&["--bind-delay", "soon"]).unwrap_err();
        assert!(e.contains("--bind-delay") && e.contains("not a duration"), "{e}");
        assert!(parse(&["--watchdog", "naive", "--watchdog-divisor", "0"]).is_err());
    }
}
