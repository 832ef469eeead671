//! The demo's narration: a measured matrix told option by option for someone who never read
//! the man page — what the option is for, what the lab did to the server, what systemd did
//! (a compact timeline), and whether that matches the documentation. Synchronous rendering of
//! a [`MatrixRun`]; the CLI measures and prints.

use std::fmt::Write as _;
use std::time::Duration;

use crate::tables::conformance::{CellResult, MatrixRun};
use crate::tables::cells::{self, Table};
use crate::tables::view;
use crate::observe::{EventKind, Timeline};
use crate::tables::oracle::{CellKey, Cause, RestartPolicy, ServiceType};

fn cause_story(cause: Cause) -> &'static str {
    match cause {
        Cause::CleanExit => "the server exits with code 0",
        Cause::UncleanExitCode => "the server exits with code 3",
        Cause::UncleanSignal => "the server is killed with SIGKILL",
        Cause::Timeout => "the server never reports ready (start timeout)",
        Cause::Watchdog => "the server stops its watchdog pings",
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

/// The events that tell the story, relative to `from`, as one line.
pub fn compact(timeline: &Timeline, from: Duration) -> String {
    let mut parts = Vec::new();
    for e in &timeline.events {
        if e.at < from {
            continue;
        }
        let at = e.at.saturating_sub(from);
        let text = match &e.kind {
            EventKind::Output if e.message.contains(" injected") => format!("{} {}", secs(at), e.message.trim_start_matches("buggy-server: ")),
            EventKind::MainExited { code, status } => format!("{} main process {code} ({status})", secs(at)),
            EventKind::Failed { result } => format!("{} failed: Result={result}", secs(at)),
            EventKind::Deactivated => format!("{} deactivated successfully", secs(at)),
            EventKind::WatchdogTimeout => format!("{} watchdog timeout", secs(at)),
            EventKind::StartTimeout => format!("{} start timed out", secs(at)),
            EventKind::RestartScheduled { n } => format!("{} restart #{n} scheduled", secs(at)),
            EventKind::Started if parts.iter().any(|p: &String| p.contains("restart #")) => format!("{} running again", secs(at)),
            EventKind::Started => format!("{} started", secs(at)),
            _ => continue,
        };
        parts.push(text);
    }
    parts.join(" -> ")
}

fn verdict_mark(c: &CellResult) -> String {
    if c.agrees {
        "as documented".to_string()
    } else if c.as_expected() {
        format!("NOT as documented ({}): a reviewed deviation, explained below", c.documented)
    } else {
        format!("NOT as documented ({}), and not a reviewed deviation", c.documented)
    }
}

/// The Restart= walkthrough.
pub fn restart(run: &MatrixRun) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Every Restart= option, live on {} ({}).", run.suite, run.systemd);
    let _ = writeln!(
        out,
        "Each option ran as its own unit with a deliberately buggy HTTP server; once it was up the lab\n\
         made it fail in each of five ways and watched what systemd did. RestartSec is systemd's default\n\
         ({:?}); \"no restart\" means nothing happened for {:?} after the failure.\n",
        cells::DEFAULT_RESTART_SEC,
        cells::no_restart_window()
    );
    for policy in RestartPolicy::ALL {
        let _ = writeln!(out, "Restart={} — {}", policy.name(), policy.purpose());
        for cause in Cause::ALL {
            let Some(c) = run.cells.iter().find(|c| c.key == CellKey::Restart(policy, cause)) else { continue };
            let fault_at = crate::tables::conformance::fault_time(&c.timeline).unwrap_or_default();
            let decision = if c.observed == "restart" { "RESTARTED" } else { "stayed down" };
            let _ = writeln!(out, "  {:<44} {:<12} {}", format!("{}:", cause_story(cause)), decision, verdict_mark(c));
            let _ = writeln!(out, "      {}", compact(&c.timeline, fault_at));
        }
        let _ = writeln!(out);
    }
    out.push_str(&view::human(run, Table::Restart));
    out
}

/// The Type= walkthrough.
pub fn types(run: &MatrixRun) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "What a wrong Type= does, live on {} ({}).", run.suite, run.systemd);
    let _ = writeln!(
        out,
        "Each program behaviour ran under each Type=. systemd's 90 s start timeout was compressed to {:?}\n\
         in the manager (DefaultTimeoutStartSec=), so every type keeps its own rule; each unit was watched\n\
         for {:?}, after which no start timeout can still fire.\n",
        cells::COMPRESSED_START_TIMEOUT,
        cells::type_window()
    );
    for program in ServiceType::ALL {
        let _ = writeln!(out, "A program that {}:", program.behaviour());
        for configured in ServiceType::ALL {
            let Some(c) = run.cells.iter().find(|c| c.key == CellKey::Type { program, configured }) else { continue };
            let _ = writeln!(
                out,
                "  Type={:<8} -> {:<19} ({}/{}, Result={})  {}",
                configured.name(),
                c.observed,
                c.active_state,
                c.sub_state,
                c.result,
                verdict_mark(c)
            );
            let line = compact(&c.timeline, Duration::ZERO);
            if !line.is_empty() {
                let _ = writeln!(out, "      {line}");
            }
        }
        let _ = writeln!(out);
    }
    out.push_str(&view::human(run, Table::Type));
    out
}
