//! Presenting measured matrices: the documented and the observed table side by side for a
//! terminal, the JSON document (stable schema, see README), and Markdown.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::tables::conformance::{CellResult, MatrixRun};
use crate::tables::cells::Table;
use crate::tables::oracle::{CellKey, Cause, RestartPolicy, ServiceType};

fn find(run: &MatrixRun, key: CellKey) -> Option<&CellResult> {
    run.cells.iter().find(|c| c.key == key)
}

/// The JSON document of one table.
pub fn to_json(run: &MatrixRun, table: Table) -> Value {
    let cells: Vec<Value> = run
        .cells_of(table)
        .map(|c| {
            let mut v = match c.key {
                CellKey::Restart(policy, cause) => json!({
                    "restart": policy.name(),
                    "cause": cause.name(),
                    "documented": c.documented == "restart",
                    "observed": c.observed == "restart",
                    "restarts": c.restarts,
                    "result": c.result,
                    "agrees": c.agrees,
                }),
                CellKey::Type { program, configured } => json!({
                    "program": program.name(),
                    "configured": configured.name(),
                    "documented": c.documented,
                    "observed": c.observed,
                    "active_state": c.active_state,
                    "sub_state": c.sub_state,
                    "result": c.result,
                    "agrees": c.agrees,
                }),
            };
            let obj = v.as_object_mut().expect("object");
            if let Some(e) = &c.explanation {
                obj.insert("explanation".into(), json!(e));
            }
            obj.insert("deviation_reviewed".into(), json!(c.deviation.is_some_and(|d| d.observed == c.observed)));
            obj.insert("unit".into(), json!(c.unit));
            obj.insert("decided_after_ms".into(), json!(c.decided_after_ms));
            obj.insert("timeline".into(), serde_json::to_value(&c.timeline.events).unwrap_or(Value::Null));
            v
        })
        .collect();
    json!({
        "table": table.name(),
        "suite": run.suite,
        "systemd": run.systemd,
        "elapsed_ms": run.elapsed_ms,
        "cells": cells,
    })
}

fn restart_mark(value: &str) -> &'static str {
    match value {
        "restart" => "X",
        "no restart" => ".",
        _ => "?",
    }
}

/// Human text: documented and observed grids side by side, then each disagreement explained.
pub fn human(run: &MatrixRun, table: Table) -> String {
    let mut out = String::new();
    match table {
        Table::Restart => {
            let _ = writeln!(out, "Restart= table (systemd.service(5)) on {} — {}", run.suite, run.systemd);
            let _ = writeln!(out, "X restarts, . does not; left documented, right observed; * marks a disagreement\n");
            let cols: Vec<&str> = RestartPolicy::ALL.iter().map(|p| p.name()).collect();
            let _ = writeln!(out, "{:<18} {:>11}   {}", "cause", "", cols.iter().map(|c| format!("{c:>12}")).collect::<String>());
            for cause in Cause::ALL {
                let mut doc = String::new();
                let mut obs = String::new();
                for policy in RestartPolicy::ALL {
                    let Some(c) = find(run, CellKey::Restart(policy, cause)) else {
                        doc.push_str(&format!("{:>11} ", "-"));
                        obs.push_str(&format!("{:>11} ", "-"));
                        continue;
                    };
                    doc.push_str(&format!("{:>11} ", restart_mark(&c.documented)));
                    let flag = if c.agrees { " " } else { "*" };
                    obs.push_str(&format!("{:>11}{flag}", restart_mark(&c.observed)));
                }
                let _ = writeln!(out, "{:<18} {:>11}   {doc}", cause.name(), "documented");
                let _ = writeln!(out, "{:<18} {:>11}   {obs}", "", "observed");
            }
        }
        Table::Type => {
            let _ = writeln!(out, "Wrong Type= table (seed 003) on {} — {}", run.suite, run.systemd);
            let _ = writeln!(
                out,
                "rows: how the program behaves; columns: the configured Type=; top documented, bottom observed; * marks a disagreement\n"
            );
            let _ = writeln!(out, "{:<10} {:>11}  {}", "program", "", ServiceType::ALL.iter().map(|t| format!("{:<20}", t.name())).collect::<String>());
            for program in ServiceType::ALL {
                let mut doc = String::new();
                let mut obs = String::new();
                for configured in ServiceType::ALL {
                    let Some(c) = find(run, CellKey::Type { program, configured }) else { continue };
                    doc.push_str(&format!("{:<20}", c.documented));
                    let flag = if c.agrees { "" } else { "*" };
                    obs.push_str(&format!("{:<20}", format!("{}{flag}", c.observed)));
                }
                let _ = writeln!(out, "{:<10} {:>11}  {doc}", program.name(), "documented");
                let _ = writeln!(out, "{:<10} {:>11}  {obs}", "", "observed");
            }
        }
    }
    let cells: Vec<&CellResult> = run.cells_of(table).collect();
    let disagreements: Vec<&&CellResult> = cells.iter().filter(|c| !c.agrees).collect();
    let _ = writeln!(
        out,
        "\n{} of {} cells agree with the documentation; {} disagree ({} reviewed, {} not)",
        cells.len() - disagreements.len(),
        cells.len(),
        disagreements.len(),
        disagreements.iter().filter(|c| c.as_expected()).count(),
        disagreements.iter().filter(|c| !c.as_expected()).count(),
    );
    for c in disagreements {
        let what = match c.key {
            CellKey::Restart(p, cause) => format!("Restart={} after {}", p.name(), cause.name()),
            CellKey::Type { program, configured } => format!("{} program with Type={}", program.name(), configured.name()),
        };
        let _ = writeln!(
            out,
            "\n* {what}: documented {}, observed {} (ActiveState={} SubState={} Result={} NRestarts={})",
            c.documented, c.observed, c.active_state, c.sub_state, c.result, c.restarts
        );
        if let Some(e) = &c.explanation {
            for line in wrap(e, 92) {
                let _ = writeln!(out, "    {line}");
            }
        }
    }
    out
}

/// Markdown: the observed table with disagreements in bold and the documented value beside.
pub fn markdown(run: &MatrixRun, table: Table) -> String {
    let mut out = String::new();
    match table {
        Table::Restart => {
            let _ = writeln!(out, "### Restart= table on {} ({})\n", run.suite, run.systemd);
            let _ = writeln!(out, "| cause | {} |", RestartPolicy::ALL.iter().map(|p| p.name()).collect::<Vec<_>>().join(" | "));
            let _ = writeln!(out, "|---|{}", "---|".repeat(RestartPolicy::ALL.len()));
            for cause in Cause::ALL {
                let cells: Vec<String> = RestartPolicy::ALL
                    .iter()
                    .map(|p| match find(run, CellKey::Restart(*p, cause)) {
                        Some(c) if c.agrees => restart_mark(&c.observed).to_string(),
                        Some(c) => format!("**{}** (doc {})", restart_mark(&c.observed), restart_mark(&c.documented)),
                        None => "-".into(),
                    })
                    .collect();
                let _ = writeln!(out, "| {} | {} |", cause.documented_label(), cells.join(" | "));
            }
        }
        Table::Type => {
            let _ = writeln!(out, "### Wrong Type= table on {} ({})\n", run.suite, run.systemd);
            let _ = writeln!(out, "| program \\ Type= | {} |", ServiceType::ALL.iter().map(|t| t.name()).collect::<Vec<_>>().join(" | "));
            let _ = writeln!(out, "|---|{}", "---|".repeat(ServiceType::ALL.len()));
            for program in ServiceType::ALL {
                let cells: Vec<String> = ServiceType::ALL
                    .iter()
                    .map(|t| match find(run, CellKey::Type { program, configured: *t }) {
                        Some(c) if c.agrees => c.observed.clone(),
                        Some(c) => format!("**{}** (doc {})", c.observed, c.documented),
                        None => "-".into(),
                    })
                    .collect();
                let _ = writeln!(out, "| {} | {} |", program.name(), cells.join(" | "));
            }
        }
    }
    let dis: Vec<&CellResult> = run.cells_of(table).filter(|c| !c.agrees).collect();
    if !dis.is_empty() {
        let _ = writeln!(out, "\nDisagreements:\n");
        for c in dis {
            let _ = writeln!(out, "- `{}`: documented {}, observed {}. {}", c.unit, c.documented, c.observed, c.explanation.as_deref().unwrap_or(""));
        }
    }
    out
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}
