//! The demo's narration, the human form of `unitlab demo`: a measured table told option by
//! option for someone who never read the man page: what the option is for, what the lab did
//! to the server, what systemd did (a compact timeline) and whether that matches the
//! documentation; the grid beside the documented one at the end.

use std::fmt::Write as _;
use std::time::Duration;

use crate::observe::{Event, EventKind};
use crate::systemd::RestartPolicy;
use crate::tables::oracle::{program_behaviour, restart_purpose, Cause, Ending, TABLE_TYPES};
use crate::verdict::{CellVerdict, RunReport, ScenarioResult, TableReport};

use super::tables;

fn cause_story(cause: &str) -> &'static str {
    match cause {
        "clean-exit" => "the server exits with code 0",
        "unclean-exit-code" => "the server exits with code 3",
        "unclean-signal" => "the server is killed with SIGKILL",
        "timeout" => "the server never reports ready (start timeout)",
        "watchdog" => "the server stops its watchdog pings",
        _ => "the server fails",
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

/// The events that tell a cell's story, from `from` on, relative to it, as one line.
pub(crate) fn compact(events: &[Event], from: Duration) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in events.iter().filter(|e| e.at >= from) {
        let at = secs(e.at.saturating_sub(from));
        let text = match &e.kind {
            EventKind::Lab { action } if action.starts_with("fault: ") => format!("{at} {}", action.trim_start_matches("fault: ")),
            EventKind::MainExited { code, status } => format!("{at} main process {code} ({})", status_word(code, status)),
            EventKind::Failed { result } => format!("{at} failed: Result={result}"),
            EventKind::Deactivated => format!("{at} deactivated successfully"),
            EventKind::Skipped { result } => format!("{at} skipped: Result={result}"),
            EventKind::WatchdogTimeout => format!("{at} watchdog timeout"),
            EventKind::StartTimeout => format!("{at} start timed out"),
            EventKind::RestartScheduled { n } => format!("{at} restart #{n} scheduled"),
            EventKind::Started if parts.iter().any(|p| p.contains("restart #")) => format!("{at} running again"),
            EventKind::Started => format!("{at} started"),
            _ => continue,
        };
        parts.push(text);
    }
    parts.join(" -> ")
}

/// "9" of a killed main process reads as "9/KILL"; an exit status stays a number.
fn status_word(code: &str, status: &str) -> String {
    let signal = status.parse().ok().and_then(crate::systemd::Signal::from_number);
    match (code, signal) {
        ("killed" | "dumped", Some(sig)) => format!("{status}/{}", sig.name()),
        _ => status.to_string(),
    }
}

/// When the lab injected the cell's fault (its note on the timeline), or else asked for the
/// start: what a cell's story is told from.
fn fault_time(r: &ScenarioResult) -> Duration {
    let lab = |prefix: &str| {
        r.timeline.iter().find(|e| matches!(&e.kind, EventKind::Lab { action } if action.starts_with(prefix))).map(|e| e.at)
    };
    lab("fault").or_else(|| lab("systemctl start")).unwrap_or(Duration::ZERO)
}

fn verdict_mark(c: &CellVerdict) -> String {
    if c.agrees {
        "as documented".to_string()
    } else if c.as_expected {
        format!("NOT as documented ({}): a reviewed deviation, explained below", c.documented)
    } else {
        format!("NOT as documented ({}), and not a reviewed deviation", c.documented)
    }
}

fn result_of<'a>(report: &'a RunReport, t: &TableReport, c: &CellVerdict) -> Option<&'a ScenarioResult> {
    report.results.iter().find(|r| r.name == c.scenario && r.suite == t.suite)
}

/// The Restart= walkthrough of one measured table.
fn restart(report: &RunReport, t: &TableReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Every Restart= option, live on {} ({}).", t.suite, t.systemd);
    let _ = writeln!(
        out,
        "Each option ran as its own unit with a deliberately buggy HTTP server; once it was up the lab\n\
         made it fail in each of five ways and watched what systemd did.\n"
    );
    for policy in RestartPolicy::ALL {
        let _ = writeln!(out, "Restart={policy} — {}", restart_purpose(*policy));
        for cause in Cause::ALL {
            let Some(c) = t.cell(cause.name(), policy.as_str()) else { continue };
            let decision = if c.observed == "restart" { "RESTARTED" } else { "stayed down" };
            let _ = writeln!(out, "  {:<48} {:<12} {}", format!("{}:", cause_story(cause.name())), decision, verdict_mark(c));
            if let Some(r) = result_of(report, t, c) {
                let _ = writeln!(out, "      {}", compact(&r.timeline, fault_time(r)));
            }
        }
        let _ = writeln!(out);
    }
    out.push_str(&tables::human(t));
    out
}

/// The Type= walkthrough of one measured table.
fn types(report: &RunReport, t: &TableReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "What a wrong Type= does, live on {} ({}).", t.suite, t.systemd);
    let _ = writeln!(out, "Each program behaviour ran under each Type=, all at once.\n");
    for program in TABLE_TYPES {
        let _ = writeln!(out, "A program that {}:", program_behaviour(program));
        for configured in TABLE_TYPES {
            let Some(c) = t.cell(program.as_str(), configured.as_str()) else { continue };
            let _ = writeln!(out, "  {:<13} -> {:<19} {}  ({})", format!("Type={configured}"), c.observed, verdict_mark(c), c.detail);
            if let Some(r) = result_of(report, t, c) {
                let line = compact(&r.timeline, fault_time(r));
                if !line.is_empty() {
                    let _ = writeln!(out, "      {line}");
                }
            }
        }
        let _ = writeln!(out);
    }
    out.push_str(&tables::human(t));
    out
}

/// The results walkthrough: every Restart= option after every way a service can end, with
/// the Result systemd logged, what the documentation says and what the source rule decides.
fn results(report: &RunReport, t: &TableReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Every Restart= option after every way a service can end, live on {} ({}).", t.suite, t.systemd);
    let _ = writeln!(
        out,
        "Each cell is its own unit running the buggy server; the lab ends it one way and records the\n\
         Result systemd logged and whether it restarted. doc: what systemd.service(5) says (? = nothing);\n\
         source: what service.c's restart rule decides for that Result.\n"
    );
    for policy in RestartPolicy::ALL {
        let _ = writeln!(out, "Restart={policy} — {}", restart_purpose(*policy));
        for ending in Ending::ALL {
            let Some(c) = t.cell(ending.name(), policy.as_str()) else { continue };
            let decision = match c.observed.as_str() {
                "restart" => "RESTARTED",
                "no restart" => "stayed down",
                other => other,
            };
            let flag = if !c.as_expected { "  NOT as the source says" } else if c.documented == crate::tables::judge::SILENT { "  (undocumented)" } else if !c.agrees { "  (NOT as documented)" } else { "" };
            let _ = writeln!(
                out,
                "  {:<62} Result={:<15} {:<11} doc {} source {}{flag}",
                format!("{}:", ending.how()),
                c.result.as_deref().unwrap_or("none"),
                decision,
                c.documented_mark,
                if c.source.as_deref() == Some("restart") { "X" } else { "." },
            );
            if let Some(r) = result_of(report, t, c) {
                let line = compact(&r.timeline, fault_time(r));
                if !line.is_empty() {
                    let _ = writeln!(out, "      {line}");
                }
            }
        }
        let _ = writeln!(out);
    }
    out.push_str(&tables::human(t));
    out
}

/// The whole narration: every measured table, told.
pub fn render_demo(report: &RunReport) -> String {
    let mut out = String::new();
    for t in &report.tables {
        match t.table.as_str() {
            "restart" => out.push_str(&restart(report, t)),
            "type" => out.push_str(&types(report, t)),
            "results" => out.push_str(&results(report, t)),
            _ => out.push_str(&tables::human(t)),
        }
        out.push('\n');
    }
    out
}
