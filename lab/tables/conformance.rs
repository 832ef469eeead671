//! Running the conformance matrices: every cell of the requested tables as its own unit in ONE
//! booted target, all started at once, each observed through one shared journal watcher, each
//! judged against the documented table and the reviewed deviations.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::target::engine::Engine;
use crate::target::image::ImageRef;
use crate::observe::journal;
use crate::tables::cells::{self, CellPlan, Table};
use crate::observe::{self, EventKind, Timeline};
use crate::tables::oracle::{self, CellKey, Deviation};
use crate::progress::Progress;
use crate::observe::JournalEntry;
use crate::target::{parse_properties, Target, TargetError, TargetOptions};
use crate::run::watch::{kind, Watcher};

/// Ports of the cells' servers (inside the target, on loopback).
const RESTART_BASE_PORT: u16 = 8100;
const TYPE_BASE_PORT: u16 = 8200;
/// Deadline for a cell's server to be started, or for a failure to show after its fault.
const CELL_DEADLINE: Duration = Duration::from_secs(20);

/// What was observed for one cell, and how it compares.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CellResult {
    #[serde(skip)]
    pub key: CellKey,
    pub unit: String,
    /// The documented value: "restart"/"no restart" or an outcome class.
    pub documented: String,
    /// The observed value, same vocabulary ("unclassified" if no class fits).
    pub observed: String,
    /// Observed equals documented.
    pub agrees: bool,
    /// The reviewed deviation for this cell and systemd version, if any.
    #[serde(skip)]
    pub deviation: Option<&'static Deviation>,
    /// NRestarts at the end of the observation.
    pub restarts: u32,
    /// The Result of the failure (restart cells) or of the unit at the end (type cells).
    pub result: String,
    pub active_state: String,
    pub sub_state: String,
    /// For a disagreement: what systemd does instead and why (reviewed, or "unreviewed").
    pub explanation: Option<String>,
    /// Time from the fault (or the start) to the decisive event, if any.
    pub decided_after_ms: Option<u64>,
    pub timeline: Timeline,
    /// systemd's own journal lines about the unit, normalised (snapshot material); a restarted
    /// cell's lines end at its first scheduled restart.
    pub journal: String,
}

impl CellResult {
    /// The cell is as documented, or exactly as the reviewed deviation says.
    pub fn as_expected(&self) -> bool {
        match self.deviation {
            Some(d) => self.observed == d.observed,
            None => self.agrees,
        }
    }
}

/// A measured table (or two) on one target.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MatrixRun {
    pub suite: String,
    pub systemd: String,
    pub systemd_major: u32,
    pub boot_time_ms: u64,
    pub elapsed_ms: u64,
    pub cells: Vec<CellResult>,
}

impl MatrixRun {
    pub fn cells_of(&self, table: Table) -> impl Iterator<Item = &CellResult> {
        self.cells
            .iter()
            .filter(move |c| matches!((table, c.key), (Table::Restart, CellKey::Restart(..)) | (Table::Type, CellKey::Type { .. })))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConformanceError {
    #[error(transparent)]
    Target(#[from] TargetError),
}

/// Boot a target, install every cell of `tables`, observe them all concurrently, tear down.
pub async fn run(
    engine: &Engine,
    image: &ImageRef,
    tables: &[Table],
    keep: bool,
    progress: &dyn Progress,
) -> Result<MatrixRun, ConformanceError> {
    let started = Instant::now();
    progress.step(&format!("booting a {} target", image.suite));
    let target = Target::boot(engine, image, TargetOptions { keep, purpose: "matrix".into(), ..Default::default() }).await?;
    progress.finish(&format!("{} running after {:.2} s", target.systemd_version(), target.boot_time().as_secs_f64()));
    let result = run_on(&target, tables, progress).await;
    if keep {
        eprintln!("{}", target.enter_hint());
    }
    let boot_time = target.boot_time();
    let systemd = target.systemd_version().to_string();
    let major = target.systemd_major().unwrap_or(0);
    target.teardown().await?;
    let cells = result?;
    Ok(MatrixRun {
        suite: image.suite.name().to_string(),
        systemd,
        systemd_major: major,
        boot_time_ms: boot_time.as_millis() as u64,
        elapsed_ms: started.elapsed().as_millis() as u64,
        cells,
    })
}

/// Run the cells on an already booted target (its manager gets the matrix settings).
pub async fn run_on(target: &Target, tables: &[Table], progress: &dyn Progress) -> Result<Vec<CellResult>, ConformanceError> {
    let mut plans = Vec::new();
    if tables.contains(&Table::Restart) {
        plans.extend(cells::restart_cells(RESTART_BASE_PORT));
    }
    if tables.contains(&Table::Type) {
        plans.extend(cells::type_cells(TYPE_BASE_PORT));
    }
    progress.step(&format!("installing {} cell units (DefaultTimeoutStartSec compressed to {:?})", plans.len(), cells::COMPRESSED_START_TIMEOUT));
    target.configure_manager(&cells::manager_settings()).await?;
    let files: Vec<(String, Vec<u8>, u32)> = plans
        .iter()
        .map(|p| (format!("/etc/systemd/system/{}", p.unit_name), p.unit.render().into_bytes(), 0o644))
        .collect();
    target.write_files(&files).await?;
    target.exec_ok(&["systemctl", "daemon-reload"]).await?;
    progress.finish(&format!("{} cell units installed", plans.len()));

    let origin = observe::monotonic_now_usec();
    let watcher = Arc::new(Watcher::start(target, origin, |u| u.starts_with("ul-")).await?);
    progress.step(&format!("observing {} cells", plans.len()));
    let mut start = vec!["systemctl", "start", "--no-block"];
    start.extend(plans.iter().map(|p| p.unit_name.as_str()));
    let start_time = Instant::now();
    target.exec_ok(&start).await?;
    for p in &plans {
        watcher.note(&p.unit_name, "systemctl start");
    }
    let major = target.systemd_major().unwrap_or(0);
    let restart_plans: Vec<&CellPlan> = plans.iter().filter(|p| p.table() == Table::Restart).collect();
    let type_plans: Vec<&CellPlan> = plans.iter().filter(|p| p.table() == Table::Type).collect();
    let type_fut = observe_type_cells(target, &watcher, &type_plans, start_time, major);
    let restart_fut = async {
        let faulted = inject_faults(target, &watcher, &restart_plans).await?;
        let futs = restart_plans.iter().map(|p| observe_restart_cell(target, &watcher, p, major, faulted.get(&p.unit_name)));
        Ok::<_, ConformanceError>(futures_util::future::join_all(futs).await)
    };
    let (restart_results, type_results) = tokio::join!(restart_fut, type_fut);
    let restart_results = restart_results?;
    let mut results = Vec::new();
    for r in restart_results {
        results.push(r?);
    }
    results.extend(type_results?);
    let after = format!("--after-cursor={}", watcher.cursor());
    let entries = target.journal(&[&after]).await?;
    for r in &mut results {
        let mine: Vec<&JournalEntry> = entries.iter().filter(|e| observe::entry_unit(e) == Some(r.unit.as_str())).collect();
        r.journal = cell_snapshot(&mine, r.observed == "restart");
    }
    progress.finish(&format!("{} cells observed", results.len()));
    Ok(results)
}

/// Wait until every faulted cell's server is up, then POST all faults in ONE exec (curl in
/// parallel, inside the target, on loopback): one exec per cell would queue dozens of execs
/// on the engine and smear the injections over most of a second. Returns, per unit, the
/// timeline index after its first start, or why the cell could not be faulted.
async fn inject_faults(target: &Target, watcher: &Watcher, plans: &[&CellPlan]) -> Result<HashMap<String, Result<usize, String>>, TargetError> {
    let waits = plans.iter().filter(|p| p.fault.is_some()).map(|p| async move {
        let started = watcher.wait_for(&p.unit_name, 0, CELL_DEADLINE, kind(|k| matches!(k, EventKind::Started))).await;
        (*p, started.map(|(i, _)| i + 1).ok_or_else(|| format!("the server was not started within {CELL_DEADLINE:?}")))
    });
    let ready = futures_util::future::join_all(waits).await;
    let mut script = String::from("set -u\n");
    for (plan, up) in &ready {
        if let (Ok(_), Some(fault)) = (up, &plan.fault) {
            script.push_str(&format!(
                "curl -fsS -m 5 -o /dev/null -X POST 'http://127.0.0.1:{}/control/fault?{}' || echo 'fault for {} not accepted' >&2 &\n",
                plan.port, fault.query, plan.unit_name
            ));
            // Stamped before the request; the server's own "fault ... injected" line gives the
            // exact moment, which is what the timings use.
            watcher.note(&plan.unit_name, format!("fault: {}", fault.describe));
        }
    }
    script.push_str("wait\n");
    let out = target.exec(&["sh", "-c", &script]).await?;
    let mut result: HashMap<String, Result<usize, String>> = ready.into_iter().map(|(p, r)| (p.unit_name.clone(), r)).collect();
    for line in out.stderr.lines() {
        if let Some(unit) = line.strip_prefix("fault for ").and_then(|l| l.strip_suffix(" not accepted")) {
            result.insert(unit.to_string(), Err(format!("the control endpoint refused the fault: {}", out.stderr.trim())));
        }
    }
    Ok(result)
}

/// When the fault really happened: the server's own "fault ... injected" line, else the
/// lab's note.
pub fn fault_time(timeline: &Timeline) -> Option<Duration> {
    let note = timeline.events.iter().position(|e| matches!(&e.kind, EventKind::Lab { action } if action.starts_with("fault")))?;
    let injected = timeline.events.iter().find(|e| matches!(e.kind, EventKind::Output) && e.message.contains("fault ") && e.message.contains(" injected"));
    Some(injected.map(|e| e.at).unwrap_or(timeline.events[note].at))
}

fn is_result(k: &EventKind) -> bool {
    matches!(k, EventKind::Failed { .. } | EventKind::Deactivated)
}

async fn observe_restart_cell(
    target: &Target,
    watcher: &Watcher,
    plan: &CellPlan,
    major: u32,
    faulted: Option<&Result<usize, String>>,
) -> Result<CellResult, ConformanceError> {
    let unit = plan.unit_name.as_str();
    let mut notes = Vec::new();
    let from = match faulted {
        Some(Ok(i)) => *i,
        Some(Err(why)) => {
            notes.push(why.clone());
            usize::MAX
        }
        None => 0,
    };
    let failure = if from == usize::MAX { None } else { watcher.wait_for(unit, from, CELL_DEADLINE, kind(is_result)).await };
    let mut decided = None;
    if let Some((fi, fe)) = &failure {
        let restart = watcher.wait_for(unit, fi + 1, cells::no_restart_window(), kind(|k| matches!(k, EventKind::RestartScheduled { .. }))).await;
        match restart {
            Some((ri, re)) => {
                decided = Some(re.at);
                // Follow the restart into its next start, so the timeline shows it happen.
                let next = watcher.wait_for(unit, ri + 1, CELL_DEADLINE, kind(|k| matches!(k, EventKind::Starting | EventKind::Started))).await;
                if next.is_none() {
                    notes.push("a restart was scheduled but no new start was seen".into());
                }
            }
            None => decided = Some(fe.at),
        }
    } else {
        notes.push(format!("no failure or deactivation within {CELL_DEADLINE:?}"));
    }
    let props = target.unit_properties(unit, &["ActiveState", "SubState", "Result", "NRestarts"]).await?;
    let restarts: u32 = props.get("NRestarts").and_then(|n| n.parse().ok()).unwrap_or(0);
    let timeline = watcher.timeline(unit);
    let fault_at = fault_time(&timeline);
    let failure_result = failure
        .as_ref()
        .and_then(|(_, e)| match &e.kind {
            EventKind::Failed { result } => Some(result.clone()),
            EventKind::Deactivated => Some("success".into()),
            _ => None,
        })
        .unwrap_or_else(|| props.get("Result").cloned().unwrap_or_default());
    let observed = if failure.is_none() { "unobserved".to_string() } else { cells::restart_word(restarts >= 1).to_string() };
    let origin = fault_at.unwrap_or_default();
    Ok(finish_cell(
        plan,
        major,
        observed,
        restarts,
        failure_result,
        &props,
        decided.map(|d| d.saturating_sub(origin)),
        timeline,
        String::new(),
        notes,
    ))
}

async fn observe_type_cells(
    target: &Target,
    watcher: &Watcher,
    plans: &[&CellPlan],
    start_time: Instant,
    major: u32,
) -> Result<Vec<CellResult>, ConformanceError> {
    if plans.is_empty() {
        return Ok(Vec::new());
    }
    // The "nothing more happens" window, derived from the (compressed) start timeout: after it
    // no start timeout can still fire, so a cell still activating is activating forever.
    tokio::time::sleep_until((start_time + cells::type_window()).into()).await;
    let mut show = vec!["systemctl", "show", "--property", "Id,ActiveState,SubState,Result,NRestarts"];
    show.extend(plans.iter().map(|p| p.unit_name.as_str()));
    let out = target.exec_ok(&show).await?;
    let props: HashMap<String, std::collections::BTreeMap<String, String>> = out
        .stdout
        .split("\n\n")
        .map(parse_properties)
        .filter_map(|p| Some((p.get("Id")?.clone(), p)))
        .collect();
    let ps = target.exec_ok(&["ps", "-eo", "args="]).await?.stdout;
    let mut results = Vec::new();
    for plan in plans {
        let p = props.get(&plan.unit_name).cloned().unwrap_or_default();
        let get = |k: &str| p.get(k).cloned().unwrap_or_default();
        let listen = format!("--listen 127.0.0.1:{} ", plan.port);
        let leftovers = ps.lines().filter(|l| format!("{l} ").contains(&listen)).count();
        let (observed, mut notes) = match cells::classify_type(&get("ActiveState"), &get("SubState"), &get("Result"), leftovers) {
            Ok(o) => (o.name().to_string(), Vec::new()),
            Err(why) => ("unclassified".to_string(), vec![why]),
        };
        if leftovers > 0 && get("ActiveState") != "active" && get("ActiveState") != "activating" {
            notes.push(format!("{leftovers} process(es) of the cell still run"));
        }
        let timeline = watcher.timeline(&plan.unit_name);
        let decided = timeline.events.iter().rev().find(|e| !matches!(e.kind, EventKind::Output | EventKind::Lab { .. })).map(|e| e.at);
        results.push(finish_cell(
            plan,
            major,
            observed,
            get("NRestarts").parse().unwrap_or(0),
            get("Result"),
            &p,
            decided,
            timeline,
            String::new(),
            notes,
        ));
    }
    Ok(results)
}

/// The snapshot text of a cell: systemd's own lines about the unit, read back in one piece
/// after the observation (the live follower is for timing; a one-shot read is the record).
/// A cell that restarted is cut right after its first "Scheduled restart job" (and the
/// "Stopped" that 252 prints next): what follows is the next cycle, whose length depends on
/// when the observation ended.
fn cell_snapshot(entries: &[&JournalEntry], restarted: bool) -> String {
    let manager: Vec<&JournalEntry> = entries.iter().copied().filter(|e| journal::is_manager_line(e)).collect();
    let mut kept: Vec<JournalEntry> = Vec::new();
    let mut iter = manager.iter().peekable();
    while let Some(e) = iter.next() {
        kept.push((*e).clone());
        if restarted && matches!(observe::classify(e), Some(EventKind::RestartScheduled { .. })) {
            if let Some(next) = iter.peek() {
                if matches!(observe::classify(next), Some(EventKind::Stopped)) {
                    kept.push((**next).clone());
                }
            }
            break;
        }
    }
    journal::normalise(&kept)
}

#[allow(clippy::too_many_arguments)]
fn finish_cell(
    plan: &CellPlan,
    major: u32,
    observed: String,
    restarts: u32,
    result: String,
    props: &std::collections::BTreeMap<String, String>,
    decided: Option<Duration>,
    timeline: Timeline,
    journal: String,
    notes: Vec<String>,
) -> CellResult {
    let documented = cells::documented_value(plan.key);
    let agrees = documented == observed;
    let deviation = oracle::deviation(plan.key, major);
    let explanation = if agrees {
        None
    } else {
        Some(match deviation {
            Some(d) if d.observed == observed => d.explanation.to_string(),
            Some(d) => format!(
                "UNREVIEWED: observed {observed}, but the reviewed deviation for systemd {}..{} says {}. {}",
                d.systemd.0,
                d.systemd.1,
                d.observed,
                notes.join("; ")
            ),
            None => format!("UNREVIEWED: no reviewed deviation covers this cell on systemd {major}. {}", notes.join("; ")),
        })
    };
    CellResult {
        key: plan.key,
        unit: plan.unit_name.clone(),
        documented,
        observed,
        agrees,
        deviation,
        restarts,
        result,
        active_state: props.get("ActiveState").cloned().unwrap_or_default(),
        sub_state: props.get("SubState").cloned().unwrap_or_default(),
        explanation,
        decided_after_ms: decided.map(|d| d.as_millis() as u64),
        timeline,
        journal,
    }
}
