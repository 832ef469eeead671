//! The catalogue of modes: each names its bug, the flags that produce it, the unit
//! settings it is meant for, and the outcome systemd should show. One source for
//! `--list-modes` (JSON), the `--help` epilogue, and the README table (a test keeps the
//! README in step).
//!
//! Outcomes are expectations from systemd's documentation and source (v252..v257). Where
//! the seed documents disagree with the reference, the text says so; the lab's
//! measurements are the judge.

pub struct Mode {
    pub id: &'static str,
    pub group: &'static str,
    /// "buggy-server" or "watchdog-sidecar".
    pub program: &'static str,
    pub flags: &'static str,
    pub unit: &'static [&'static str],
    pub breaks: &'static str,
    pub outcome: &'static str,
}

const SERVER: &str = "buggy-server";
const SIDECAR: &str = "watchdog-sidecar";

pub const MODES: &[Mode] = &[
    // --- readiness -------------------------------------------------------------------
    Mode {
        id: "ready-after-listen",
        group: "readiness",
        program: SERVER,
        flags: "--ready after-listen",
        unit: &["Type=notify"],
        breaks: "nothing: the control case, READY=1 right after bind()",
        outcome: "activating until the socket is bound, then active (running); no client ever sees connection refused",
    },
    Mode {
        id: "ready-before-listen",
        group: "readiness",
        program: SERVER,
        flags: "--ready before-listen --bind-delay 5s",
        unit: &["Type=notify"],
        breaks: "readiness lies: READY=1 is sent before bind(), so units ordered After= it start while connections are refused",
        outcome: "'Started' and active (running) at once, yet connections get ECONNREFUSED for about 5s; systemd sees nothing wrong",
    },
    Mode {
        id: "ready-delayed",
        group: "readiness",
        program: SERVER,
        flags: "--ready delayed --ready-delay 5s",
        unit: &["Type=notify", "TimeoutStartSec=3s"],
        breaks: "start-up (READY=1) takes longer than the start timeout although HTTP already answers",
        outcome: "'start operation timed out. Terminating.', SIGTERM, Result=timeout; restarted under Restart=on-failure/on-abnormal/always; with TimeoutStartSec above 5s: active after 5s",
    },
    Mode {
        id: "ready-never",
        group: "readiness",
        program: SERVER,
        flags: "--ready never",
        unit: &["Type=notify"],
        breaks: "READY=1 is never sent (a simple program configured as Type=notify)",
        outcome: "activating (start) until TimeoutStartSec (default 90s), then 'start operation timed out. Terminating.', Result=timeout; HTTP answers all along; dependent units never start",
    },
    Mode {
        id: "slow-bind",
        group: "readiness",
        program: SERVER,
        flags: "--bind-delay 5s",
        unit: &["Type=simple"],
        breaks: "Type=simple is 'started' at fork, long before the socket exists",
        outcome: "active (running) at once, connections refused for about 5s; as Type=notify with TimeoutStartSec below 5s: Result=timeout",
    },
    Mode {
        id: "exit0-before-ready",
        group: "readiness",
        program: SERVER,
        flags: "--ready never --fault exit:0@after=1s",
        unit: &["Type=notify"],
        breaks: "the main process exits successfully before READY=1",
        outcome: "fails at once with Result=protocol (not timeout, not success)",
    },
    // --- watchdog --------------------------------------------------------------------
    Mode {
        id: "watchdog-naive-hang",
        group: "watchdog",
        program: SERVER,
        flags: "--watchdog naive --fault hang:handlers@after=10s",
        unit: &["Type=notify", "WatchdogSec=2s", "Restart=on-failure"],
        breaks: "the seed-002 anti-pattern: the pinger is unrelated to the work, so HTTP hangs while WATCHDOG=1 goes on",
        outcome: "stays active (running) for ever with HTTP dead; no watchdog timeout, NRestarts stays 0",
    },
    Mode {
        id: "watchdog-health-checked-hang",
        group: "watchdog",
        program: SERVER,
        flags: "--watchdog health-checked --fault hang:handlers@after=10s",
        unit: &["Type=notify", "WatchdogSec=2s", "Restart=on-failure"],
        breaks: "HTTP hangs; the pinger notices (GET /healthz times out) and withholds WATCHDOG=1",
        outcome: "'Watchdog timeout (limit 2s)!', SIGABRT (WatchdogSignal=), Result=watchdog even if a core is dumped; restarted under on-failure/on-watchdog/on-abnormal/always, not on-abort",
    },
    Mode {
        id: "watchdog-stop-after-pings",
        group: "watchdog",
        program: SERVER,
        flags: "--watchdog naive --watchdog-stop-after-pings 5",
        unit: &["Type=notify", "WatchdogSec=2s"],
        breaks: "the pinger gives up after 5 pings (one per WatchdogSec/2)",
        outcome: "'Watchdog timeout (limit 2s)!' about WatchdogSec after the 5th ping, Result=watchdog",
    },
    Mode {
        id: "watchdog-stop-after",
        group: "watchdog",
        program: SERVER,
        flags: "--watchdog naive --watchdog-stop-after 10s",
        unit: &["Type=notify", "WatchdogSec=2s"],
        breaks: "the pinger gives up 10s after it started",
        outcome: "'Watchdog timeout (limit 2s)!' about 10s + WatchdogSec after start, Result=watchdog",
    },
    Mode {
        id: "watchdog-hang-pinger",
        group: "watchdog",
        program: SERVER,
        flags: "--watchdog naive --fault hang:watchdog@after=10s",
        unit: &["Type=notify", "WatchdogSec=2s"],
        breaks: "the pinger thread hangs while HTTP is fine: a false positive",
        outcome: "Result=watchdog although GET / answers until the kill",
    },
    Mode {
        id: "watchdog-unhealthy",
        group: "watchdog",
        program: SERVER,
        flags: "--watchdog health-checked --fault unhealthy@after=10s",
        unit: &["Type=notify", "WatchdogSec=2s"],
        breaks: "GET /healthz answers 503 while GET / still works",
        outcome: "WATCHDOG=1 withheld, Result=watchdog",
    },
    Mode {
        id: "watchdog-trigger",
        group: "watchdog",
        program: SERVER,
        flags: "--watchdog naive --fault watchdog-trigger@after=5s",
        unit: &["Type=notify", "WatchdogSec=30s"],
        breaks: "the service asks for its own watchdog kill with WATCHDOG=trigger",
        outcome: "watchdog fires at once despite regular pings: Result=watchdog about 5s after start",
    },
    Mode {
        id: "watchdog-without-watchdogsec",
        group: "watchdog",
        program: SERVER,
        flags: "--watchdog naive",
        unit: &["Type=notify"],
        breaks: "a watchdog-capable service on a unit without WatchdogSec=",
        outcome: "WATCHDOG_USEC is unset, the pinger never starts (logged); nothing happens, active (running)",
    },
    Mode {
        id: "watchdog-forking-pid",
        group: "watchdog",
        program: SERVER,
        flags: "--shape forking --pid-file /run/buggy-server.pid --watchdog naive",
        unit: &["Type=forking", "PIDFile=/run/buggy-server.pid", "WatchdogSec=2s"],
        breaks: "WATCHDOG_PID names the process systemd started, not the daemon; honouring it (as libsystemd does) disables the daemon's pinger",
        outcome: "no WATCHDOG=1 at all, Result=watchdog about 2s after start (measure); with --watchdog-pid ignore the daemon pings and, being MainPID via PIDFile=, is accepted under NotifyAccess=main",
    },
    Mode {
        id: "random-hang",
        group: "watchdog",
        program: SERVER,
        flags: "--watchdog health-checked --fault hang:handlers@p=0.05 --seed 7",
        unit: &["Type=notify", "WatchdogSec=2s", "Restart=on-failure"],
        breaks: "seed 001's randomly hanging server; the health probes are requests too, so the hang lands on a reproducible request",
        outcome: "after the hang: Result=watchdog and a restart, like watchdog-health-checked-hang; same seed, same request number",
    },
    // --- faults ----------------------------------------------------------------------
    Mode {
        id: "hang-handlers",
        group: "fault",
        program: SERVER,
        flags: "--fault hang:handlers@after=10s",
        unit: &["Type=notify"],
        breaks: "process alive, connections accepted, no request is answered",
        outcome: "systemd sees nothing: active (running) for ever; only a watchdog (health-checked) catches it",
    },
    Mode {
        id: "hang-accept",
        group: "fault",
        program: SERVER,
        flags: "--fault hang:accept@after=10s",
        unit: &["Type=notify"],
        breaks: "the accept loop stops: connections complete into the kernel backlog and wait; the control endpoint is unreachable too",
        outcome: "active (running) for ever",
    },
    Mode {
        id: "exit-code",
        group: "fault",
        program: SERVER,
        flags: "--fault exit:3@after=10s",
        unit: &["Type=notify", "Restart=on-failure"],
        breaks: "the process exits with code 3",
        outcome: "'Main process exited, code=exited, status=3/NOTIMPLEMENTED', Result=exit-code; restarted under on-failure/always, not on-abnormal/on-abort/on-success; RestartPreventExitStatus=3 suppresses it",
    },
    Mode {
        id: "exit-zero",
        group: "fault",
        program: SERVER,
        flags: "--fault exit:0@after=10s",
        unit: &["Type=simple", "Restart=on-failure"],
        breaks: "the process exits 0 while it should keep serving",
        outcome: "'Deactivated successfully.', Result=success, inactive (dead); restarted only under Restart=always/on-success",
    },
    Mode {
        id: "signal-segv",
        group: "fault",
        program: SERVER,
        flags: "--fault signal:SEGV@after=10s",
        unit: &["Type=notify", "Restart=on-abort"],
        breaks: "the process dies of SIGSEGV (really raised, default action)",
        outcome: "'code=dumped, status=11/SEGV', Result=core-dump when a core is written (LimitCORE= above 0 and a working core_pattern), otherwise 'code=killed', Result=signal; restarted under always/on-failure/on-abnormal/on-abort",
    },
    Mode {
        id: "signal-abrt",
        group: "fault",
        program: SERVER,
        flags: "--fault signal:ABRT@after=10s",
        unit: &["Type=notify", "Restart=on-abort"],
        breaks: "the process dies of SIGABRT",
        outcome: "like signal-segv with status=6/ABRT",
    },
    Mode {
        id: "signal-kill",
        group: "fault",
        program: SERVER,
        flags: "--fault signal:KILL@after=10s",
        unit: &["Type=notify", "Restart=on-abnormal"],
        breaks: "the process dies of SIGKILL (no core)",
        outcome: "'code=killed, status=9/KILL', Result=signal; restarted under always/on-failure/on-abnormal/on-abort",
    },
    Mode {
        id: "signal-term",
        group: "fault",
        program: SERVER,
        flags: "--fault signal:TERM@after=10s",
        unit: &["Type=notify", "Restart=on-failure"],
        breaks: "the process dies of SIGTERM, which systemd counts as a clean exit of a non-oneshot main process",
        outcome: "Result=success, 'Deactivated successfully.' (the 'code=killed, status=15/TERM' line is debug-level for a clean death, so the journal does not show it; measured on 252 and 257); restarted only under always/on-success (SIGHUP, SIGINT, SIGPIPE behave the same)",
    },
    Mode {
        id: "stop-watchdog",
        group: "fault",
        program: SERVER,
        flags: "--watchdog naive --fault stop-watchdog@after=10s",
        unit: &["Type=notify", "WatchdogSec=2s"],
        breaks: "the pinger stops cleanly while HTTP keeps working",
        outcome: "'Watchdog timeout (limit 2s)!', Result=watchdog about 10s + WatchdogSec after start",
    },
    Mode {
        id: "close-listener",
        group: "fault",
        program: SERVER,
        flags: "--fault close-listener@after=10s",
        unit: &["Type=notify"],
        breaks: "the listening socket is closed: connections are refused, the process lives on",
        outcome: "active (running) for ever; with --watchdog health-checked and WatchdogSec=: Result=watchdog; with --watchdog naive: still for ever",
    },
    Mode {
        id: "exhaust-fds",
        group: "fault",
        program: SERVER,
        flags: "--watchdog naive --fault exhaust-fds@after=10s",
        unit: &["Type=notify", "LimitNOFILE=256", "WatchdogSec=2s"],
        breaks: "every fd up to the limit is taken: accept() fails with EMFILE (logged once a second), clients wait in the backlog",
        outcome: "even the naive pinger fails (sd_notify needs a fresh socket fd per message), so Result=watchdog; with --notify-socket keep the naive pinger goes on and the unit stays active (running) while nothing is served",
    },
    Mode {
        id: "ignore-sigterm",
        group: "fault",
        program: SERVER,
        flags: "--ignore-sigterm",
        unit: &["Type=notify", "TimeoutStopSec=5s"],
        breaks: "SIGTERM is ignored, so a stop waits for the stop timeout",
        outcome: "systemctl stop: 'State 'stop-sigterm' timed out. Killing.', SIGKILL after TimeoutStopSec, Result=timeout",
    },
    // --- process shapes (seed 003's wrong Type= table; see the README matrix) --------
    Mode {
        id: "behaves-simple",
        group: "shape",
        program: SERVER,
        flags: "--shape foreground --ready never",
        unit: &["Type=simple"],
        breaks: "correct as Type=simple; wrong as any other Type=",
        outcome: "Type=simple: active at once; Type=forking: Result=timeout after TimeoutStartSec; Type=oneshot: activating for ever (no start timeout); Type=notify: Result=timeout after TimeoutStartSec",
    },
    Mode {
        id: "behaves-forking",
        group: "shape",
        program: SERVER,
        flags: "--shape forking --ready never --pid-file /run/buggy-server.pid",
        unit: &["Type=forking", "PIDFile=/run/buggy-server.pid"],
        breaks: "correct as Type=forking; wrong as any other Type=",
        outcome: "Type=forking: active once the parent exits, MainPID=daemon; Type=simple: main process exits 0 at once, 'Deactivated successfully.', the daemon is killed with the cgroup; Type=oneshot: 'Finished', inactive, daemon killed (seed 003 says activating for ever; the lab's type matrix measured this on 252 and 257); Type=notify: main process exits 0 before READY=1, Result=protocol (seed 003: killed after 90s)",
    },
    Mode {
        id: "behaves-oneshot",
        group: "shape",
        program: SERVER,
        flags: "--shape oneshot --ready never --work 5s --exit-code 0",
        unit: &["Type=oneshot"],
        breaks: "correct as Type=oneshot; wrong as any other Type=",
        outcome: "Type=oneshot: activating for 5s, then 'Finished', inactive; Type=simple: active for 5s, then 'Deactivated successfully.' (failed with a non-zero --exit-code); Type=forking: activating for 5s, then started with no process left, inactive (timeout if the work outlasts TimeoutStartSec); Type=notify: exits 0 before READY=1, Result=protocol (timeout if the work outlasts TimeoutStartSec)",
    },
    Mode {
        id: "behaves-notify",
        group: "shape",
        program: SERVER,
        flags: "--shape foreground --ready after-listen",
        unit: &["Type=notify"],
        breaks: "correct as Type=notify; wrong as forking or oneshot",
        outcome: "Type=notify: active after bind; Type=simple: works (READY=1 is a no-op without NOTIFY_SOCKET); Type=forking: Result=timeout after TimeoutStartSec; Type=oneshot: activating for ever",
    },
    // --- the seed-001 sidecar ----------------------------------------------------------
    Mode {
        id: "sidecar",
        group: "sidecar",
        program: SIDECAR,
        flags: "--url http://127.0.0.1:8080/healthz -- --listen 0.0.0.0:8080 --ready never --fault hang:handlers@after=10s",
        unit: &["Type=notify", "NotifyAccess=all", "WatchdogSec=5s", "Restart=on-failure"],
        breaks: "readiness and liveness come from a shell sidecar polling with curl, not from the server",
        outcome: "READY=1 at the first healthy poll; after the hang the curl polls fail, WATCHDOG=1 stops: 'Watchdog timeout (limit 5s)!', Result=watchdog, restart",
    },
    Mode {
        id: "sidecar-notify-access-main",
        group: "sidecar",
        program: SIDECAR,
        flags: "--url http://127.0.0.1:8080/healthz -- --listen 0.0.0.0:8080 --ready never",
        unit: &["Type=notify", "NotifyAccess=main", "WatchdogSec=5s"],
        breaks: "systemd-notify sends from its own pid, which NotifyAccess=main rejects",
        outcome: "READY=1 dropped ('reception only permitted for main PID'), activating until TimeoutStartSec, Result=timeout; unless systemd-notify has CAP_SYS_ADMIN and claims its parent's (the sidecar's, the main) pid: measure",
    },
];

/// Epilogue of `--help`: one block per mode.
pub fn help_text() -> String {
    let mut out = String::from(
        "CONTROL ENDPOINT:\n  POST /control/fault?kind=KIND[&part=PARTS|&code=N|&signal=SIG][&after=DURATION]\n  GET  /control/state   (key=value lines)\n\nMODES (buggy-server --list-modes prints them as JSON):\n",
    );
    let mut group = "";
    for m in MODES {
        if m.group != group {
            group = m.group;
            out.push_str(&format!("\n  [{group}]\n"));
        }
        out.push_str(&format!(
            "  {}\n      {} {}\n      unit:    {}\n      breaks:  {}\n      outcome: {}\n",
            m.id,
            m.program,
            m.flags,
            m.unit.join(" "),
            m.breaks,
            m.outcome
        ));
    }
    out
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON array of objects with the fields id, group, program, flags (a string as written
/// on an ExecStart= line), args (the same, split), unit (directives), breaks, outcome.
pub fn json() -> String {
    let items: Vec<String> = MODES
        .iter()
        .map(|m| {
            let args: Vec<String> = m.flags.split_whitespace().map(json_str).collect();
            let unit: Vec<String> = m.unit.iter().map(|u| json_str(u)).collect();
            format!(
                "  {{\"id\": {}, \"group\": {}, \"program\": {}, \"flags\": {}, \"args\": [{}], \"unit\": [{}], \"breaks\": {}, \"outcome\": {}}}",
                json_str(m.id),
                json_str(m.group),
                json_str(m.program),
                json_str(m.flags),
                args.join(", "),
                unit.join(", "),
                json_str(m.breaks),
                json_str(m.outcome)
            )
        })
        .collect();
    format!("[\n{}\n]\n", items.join(",\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn every_server_mode_parses_and_passes_the_flag_rules() {
        for m in MODES.iter().filter(|m| m.program == SERVER) {
            let args = std::iter::once("buggy-server").chain(m.flags.split_whitespace());
            let cli = crate::cli::Cli::try_parse_from(args).unwrap_or_else(|e| panic!("mode {}: {e}", m.id));
            cli.check().unwrap_or_else(|e| panic!("mode {}: {e}", m.id));
        }
    }

    #[test]
    fn every_sidecar_mode_passes_server_flags_after_the_separator() {
        for m in MODES.iter().filter(|m| m.program == SIDECAR) {
            let (_, server) = m.flags.split_once(" -- ").unwrap_or_else(|| panic!("mode {} lacks ' -- '", m.id));
            let args = std::iter::once("buggy-server").chain(server.split_whitespace());
            let cli = crate::cli::Cli::try_parse_from(args).unwrap_or_else(|e| panic!("mode {}: {e}", m.id));
            cli.check().unwrap_or_else(|e| panic!("mode {}: {e}", m.id));
        }
    }

    #[test]
    fn ids_are_unique_and_documented_in_the_readme() {
        let readme = include_str!("../README.md");
        let mut seen = std::collections::HashSet::new();
        for m in MODES {
            assert!(seen.insert(m.id), "duplicate mode id {}", m.id);
            assert!(readme.contains(&format!("`{}`", m.id)), "README.md lacks mode `{}`", m.id);
        }
    }
}
