//! `do = "observe"`: record a value for the report (and for the tables' judges) without
//! passing or failing.

use std::time::{Duration, Instant};

use super::{deadline_in, ExecError, Flow, Run, StepResult};
use crate::observe::{evidence, monotonic_now_usec, EventKind};
use crate::scenario::{Observe, WindowSource};
use crate::systemd::format_duration;
use crate::verdict::Observed;

/// The properties `what = "state"` records.
const STATE: [&str; 6] = ["ActiveState", "SubState", "Result", "NRestarts", "ExecMainCode", "ExecMainStatus"];

impl Run<'_> {
    pub(super) async fn observation(&mut self, step: usize, o: &Observe) -> StepResult {
        match o {
            Observe::State { unit } => {
                let name = self.name(unit).to_string();
                let p = self.session.properties(&name, &STATE).await.map_err(ExecError::target(format!("read the state of {name}")))?;
                let get = |k: &str| p.get(k).cloned().unwrap_or_default();
                let value = Observed::State {
                    active_state: get("ActiveState"),
                    sub_state: get("SubState"),
                    result: get("Result"),
                    n_restarts: get("NRestarts"),
                    exec_main_code: get("ExecMainCode"),
                    exec_main_status: get("ExecMainStatus"),
                };
                self.observe(step, Some(&name), value);
            }
            Observe::Http { port, path, timeout } => {
                let answer = self.get(*port, path, *timeout).await?;
                let unit = self.names.values().next().cloned();
                self.observe(step, unit.as_deref(), Observed::Http { port: *port, path: path.clone(), answer: answer.to_string() });
            }
            Observe::Restart { unit, within, window, window_source, since_step } => {
                let name = self.name(unit).to_string();
                let value = self.restart_outcome(&name, *within, *window, window_source, *since_step).await?;
                self.observe(step, Some(&name), value);
            }
        }
        Ok(Flow::Next)
    }

    /// How the unit's run ends after the fault (or the start), and whether a restart follows.
    async fn restart_outcome(&mut self, name: &str, within: Duration, window: Duration, source: &WindowSource, since_step: Option<usize>) -> Result<Observed, ExecError> {
        let (since_usec, since_instant, from) = match since_step {
            Some(step) => {
                let mark = self.fault_mark(step)?;
                (mark.at_usec, mark.instant, mark.from.get(name).copied().unwrap_or(0))
            }
            None => {
                let elapsed = Duration::from_micros(monotonic_now_usec().saturating_sub(self.origin_usec));
                (self.origin_usec, Instant::now().checked_sub(elapsed).unwrap_or_else(Instant::now), self.begin_of(name))
            }
        };
        let since = Duration::from_micros(since_usec);
        let derivation = match source {
            WindowSource::Explicit => format!("{} as written, counted from the failure", format_duration(window)),
            WindowSource::Derived(text) => text.clone(),
        };
        let find_end = |ev: &[crate::observe::Event]| evidence::end_of_run(ev, from, since).map(|(i, e, _)| (i, e.clone()));
        let mut end = self.found(name, since_instant.checked_add(within).unwrap_or_else(|| deadline_in(within)), find_end).await?;
        if end.is_none() {
            // As for the restart below: the journal may lag the lab's clock (a VM under TCG on
            // a busy host); what it holds by now decides.
            self.session.sync_journal().await?;
            end = self.found(name, Instant::now(), find_end).await?;
        }
        let Some((end_index, end)) = end else {
            let last = self.last_line(name, from).map(|l| format!("; last event: {l:?}")).unwrap_or_default();
            return Ok(Observed::Restart {
                result: None,
                ended_after: None,
                restarted: None,
                restart_after: None,
                window,
                window_derivation: derivation,
                note: Some(format!("the run did not end within {}{last}", format_duration(within))),
            });
        };
        let result = evidence::result_of(&end.kind).map(str::to_string);
        let old = end.invocation.clone();
        // The window is counted from the end of the run, on the journal's clock.
        let now = Duration::from_micros(monotonic_now_usec());
        let window_end = deadline_in((end.at + window).saturating_sub(now));
        let find_restart = |ev: &[crate::observe::Event]| evidence::restart(ev, end_index + 1, end.at, old.as_deref()).map(|(i, e)| (i, e.clone()));
        let mut restart = self.found(name, window_end, find_restart).await?;
        if restart.is_none() {
            // The window ended on the lab's clock, but the journal may not have been delivered
            // that far yet (a VM under TCG on a busy host logs seconds behind): bring it up to
            // date first. A restart it then shows was decided by systemd, as in the
            // auto-restart case below, even when a starved systemd logged it after the window;
            // its time after the failure is reported as measured.
            self.session.sync_journal().await?;
            restart = self.found(name, Instant::now(), find_restart).await?;
        }
        if restart.is_none() {
            // The window is derived from the unit's timers, but on a starved machine systemd
            // itself runs late: a restart it has already decided on (the unit waits in
            // SubState=auto-restart for RestartSec to pass) may be logged after the window.
            // Then the decision is made and the restart is followed until it is seen, within
            // the step's own bound; a unit not waiting to restart is left as observed.
            // The same holds for a restart systemd has already made while its journal lines
            // are still on their way (seen on a loaded machine: the unit active again under a
            // new InvocationID, NRestarts=1, with no "Scheduled restart job" delivered yet): a
            // new invocation since the run that ended is a start after the end.
            let props = self
                .session
                .properties(name, &["SubState", "InvocationID"])
                .await
                .map_err(ExecError::target(format!("read the state of {name}")))?;
            let waiting = props.get("SubState").is_some_and(|s| s.starts_with("auto-restart"));
            let new_run = match (props.get("InvocationID").map(|i| i.as_str()), old.as_deref()) {
                (Some(now), Some(ended)) => !now.is_empty() && !ended.is_empty() && now != ended,
                _ => false,
            };
            if waiting || new_run {
                restart = self.found(name, deadline_in(within), find_restart).await?;
            }
        }
        // Follow the restart into the new run's start job ("Starting ..."), so the timeline
        // (and the journal snapshot) shows it happen. Not further: when the new run is ready
        // ("Started") depends on how fast the server comes up on a loaded machine. The restart
        // is certain by now, so this wait has the step's bound, not the window's. A
        // Type=simple unit logs no "Starting" line at all, only "Started" (seen with a unit
        // from a file: the step waited out its whole bound), so either one ends the wait.
        let started = match &restart {
            Some((i, e)) if matches!(e.kind, EventKind::Starting | EventKind::Started) => Some((*i, e.clone())),
            Some((i, _)) => {
                let next = *i;
                self.found(name, deadline_in(within), |ev| ev.iter().enumerate().skip(next).find(|(_, e)| matches!(e.kind, EventKind::Starting | EventKind::Started)).map(|(i, e)| (i, e.clone()))).await?
            }
            None => None,
        };
        if started.is_none() {
            // Watched to the window's end: the story goes that far (and no further).
            self.reach_event(end.at + window);
        }
        Ok(Observed::Restart {
            result,
            ended_after: Some(end.at.saturating_sub(since)),
            restarted: Some(restart.is_some()),
            restart_after: restart.map(|(_, e)| e.at.saturating_sub(end.at)),
            window,
            window_derivation: derivation,
            note: None,
        })
    }
}
