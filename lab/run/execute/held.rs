//! The resource faults a scenario holds: put in place by their step, let go by a `heal` step,
//! by their `duration` (a background timer, so later steps run meanwhile) or at the end of
//! the scenario, whichever comes first, exactly once. The commands are
//! [`crate::run::resources`]'s.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::actions::COMMAND_DEADLINE;
use super::{one_line, ExecError, Run};
use crate::run::resources::{self, Command, CANNOT, NOT_ENFORCED, NO_NETEM};
use crate::scenario::{NetAction, ResourceFault, ResourceKind};
use crate::systemd::format_duration;
use crate::target::{Target, TargetError};

/// A resource fault in place.
pub(super) struct HeldFault {
    step: usize,
    /// The installed units whose timelines tell its story.
    units: Vec<String>,
    what: String,
    undo: Command,
    /// Set by whoever lets go first: the timer, a `heal` step, or the end of the scenario.
    released: Arc<AtomicBool>,
    timer: Option<tokio::task::JoinHandle<()>>,
}

/// Run an undo command under the lab's command deadline; `Err` says why it failed.
async fn run_undo(target: &Target, undo: &Command) -> Result<(), String> {
    match tokio::time::timeout(COMMAND_DEADLINE, target.exec(&undo.argv())).await {
        Ok(Ok(out)) if out.success() => Ok(()),
        Ok(Ok(out)) => Err(format!("exit {}: {}", out.exit_code, one_line(&out.stderr))),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", COMMAND_DEADLINE.as_secs())),
    }
}

impl Run<'_> {
    /// Put a resource fault in place. `Ok(Some(why))`: it cannot be, for a reason of the
    /// scenario's (no main process, a directory that does not exist, a limit not enforced).
    pub(super) async fn hold(&mut self, step: usize, fault: &ResourceFault, units: &[String]) -> Result<Option<String>, ExecError> {
        let unit = fault.unit.as_ref().map(|u| self.name(u).to_string());
        let tag = resources::tag(&self.scenario.name, step);
        let inject = resources::inject(fault, unit.as_deref(), &tag);
        let what = super::describe(&crate::scenario::StepKind::Fault(crate::scenario::Fault::Resource(fault.clone())), self.input.suite);
        // The hog of an `oom` fault ends when the OOM killer (or systemd's stop of the unit)
        // ends it, at once on a working limit; the deadline only catches a hung target.
        let out = self.exec(&inject.argv(), COMMAND_DEADLINE).await?;
        let watcher = self.session.watcher();
        match out.exit_code {
            0 => {}
            // The hog was killed: by the kernel's OOM killer, or by systemd stopping the unit
            // whose main process the OOM killer chose.
            137 | 143 if matches!(fault.kind, ResourceKind::Oom { .. }) => {}
            CANNOT | NOT_ENFORCED => return Ok(Some(one_line(&out.stderr))),
            NO_NETEM => {
                let delay = match &fault.kind {
                    ResourceKind::Network(n) => match n.action {
                        NetAction::Delay(d) => format_duration(d),
                        _ => String::new(),
                    },
                    _ => String::new(),
                };
                return Err(ExecError::Unsupported(format!(
                    "`action = \"delay\"` ({delay}) needs the kernel's netem queueing discipline (sch_netem), and the kernel of this host does not have it (tc says: {}); \
                     fix: run on a kernel with CONFIG_NET_SCH_NETEM (and the module loaded), or use `action = \"loss\"`, \"drop\" or \"reject\", which need only nftables",
                    one_line(&out.stderr)
                )));
            }
            code => {
                return Err(ExecError::target_owned(format!("put `{what}` in place"))(TargetError::CommandFailed {
                    name: self.target_name().to_string(),
                    command: format!("{} ({})", fault.kind.word(), tag),
                    code,
                    stderr: one_line(&out.stderr),
                }))
            }
        }
        let detail = one_line(&out.stdout);
        for u in units {
            watcher.note(u, format!("{what}: in place{}", if detail.is_empty() { String::new() } else { format!(" ({detail})") }));
        }
        let undo = resources::undo(fault, unit.as_deref(), &tag, &out.stdout);
        let released = Arc::new(AtomicBool::new(false));
        let timer = fault.duration.map(|d| {
            let (target, watcher) = self.session.handles();
            let (released, undo, units, what) = (released.clone(), undo.clone(), units.to_vec(), what.clone());
            tokio::spawn(async move {
                tokio::time::sleep(d).await;
                if released.swap(true, Ordering::SeqCst) {
                    return;
                }
                let note = match run_undo(&target, &undo).await {
                    Ok(()) => format!("{what}: healed after {}", format_duration(d)),
                    Err(e) => format!("{what}: could not be undone after {}: {e}", format_duration(d)),
                };
                for u in &units {
                    watcher.note(u, note.clone());
                }
            })
        });
        self.held.push(HeldFault { step, units: units.to_vec(), what, undo, released, timer });
        Ok(None)
    }

    /// `do = "heal"`: let go of the fault of step `of` now, unless its duration already did.
    pub(super) async fn heal(&mut self, of: usize) -> Result<Option<String>, ExecError> {
        let Some(i) = self.held.iter().position(|h| h.step == of) else {
            // Its step did not put it in place (the scenario stopped there): nothing to undo.
            return Ok(None);
        };
        let watcher = self.session.watcher();
        let held = &mut self.held[i];
        if held.released.swap(true, Ordering::SeqCst) {
            // Its timer let go first; it may still be undoing: the steps after the heal must
            // see the fault gone.
            if let Some(timer) = held.timer.take() {
                let _ = timer.await;
            }
            for u in &held.units {
                watcher.note(u, format!("{}: already healed by its duration", held.what));
            }
            return Ok(None);
        }
        if let Some(timer) = held.timer.take() {
            timer.abort();
        }
        let (target, _) = self.session.handles();
        let (undo, what, units) = (held.undo.clone(), held.what.clone(), held.units.clone());
        match run_undo(&target, &undo).await {
            Ok(()) => {
                for u in &units {
                    watcher.note(u, format!("{what}: healed"));
                }
                Ok(None)
            }
            Err(e) => Ok(Some(format!("heal of `{what}`: {e}"))),
        }
    }

    /// At the end of the scenario, whatever way it ended: let go of every fault still held
    /// (last in, first out), and wait for timers already letting go. `Err` names every fault
    /// that could not be undone.
    pub(super) async fn release_all(&mut self) -> Result<(), ExecError> {
        let (target, watcher) = self.session.handles();
        let mut failed = Vec::new();
        while let Some(mut held) = self.held.pop() {
            if held.released.swap(true, Ordering::SeqCst) {
                if let Some(timer) = held.timer.take() {
                    let _ = timer.await;
                }
                continue;
            }
            if let Some(timer) = held.timer.take() {
                timer.abort();
            }
            match run_undo(&target, &held.undo).await {
                Ok(()) => {
                    for u in &held.units {
                        watcher.note(u, format!("{}: healed at the end of the scenario", held.what));
                    }
                }
                Err(e) => failed.push(format!("`{}`: {e}", held.what)),
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(ExecError::Undo(format!("undo the faults of {} on {}: {}", self.scenario.name, self.target_name(), failed.join("; "))))
        }
    }
}
