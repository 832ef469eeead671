//! Steps that act on the target: start, the faults, and `settle`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{describe, one_line, ExecError, FaultMark, Flow, Run, StepResult};
use crate::judge::Verdict;
use crate::observe::{monotonic_now_usec, Answer, EventKind};
use crate::scenario::{Fault, StepKind, UnitName, WindowSource};
use crate::systemd::{format_duration, Signal};

/// Deadline for a blocking `systemctl start/stop/restart` job. `start` returns when the job
/// finishes, as systemctl does, and a job may legitimately take as long as systemd's default
/// start timeout (90 s) plus the stop that follows it; this only catches a hung target.
pub(super) const JOB_DEADLINE: Duration = Duration::from_secs(200);
/// Deadline of one command the lab runs inside the target for itself (kill, show).
pub(super) const COMMAND_DEADLINE: Duration = Duration::from_secs(30);
/// Timeout of one request to buggy-server's control endpoint.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);

impl Run<'_> {
    /// Run a command inside the target under a deadline.
    pub(super) async fn exec(&self, argv: &[&str], deadline: Duration) -> Result<crate::target::ExecOutput, ExecError> {
        match tokio::time::timeout(deadline, self.session.target().exec(argv)).await {
            Ok(out) => out.map_err(ExecError::target_owned(format!("`{}`", argv.join(" ")))),
            Err(_) => Err(ExecError::Deadline { command: argv.join(" "), target: self.target_name().to_string(), seconds: deadline.as_secs() }),
        }
    }

    pub(super) async fn start(&mut self, unit: &UnitName, no_block: bool) -> StepResult {
        let name = self.name(unit).to_string();
        let watcher = self.session.watcher();
        self.starts.insert(name.clone(), monotonic_now_usec());
        if no_block {
            watcher.note(&name, "systemctl start --no-block");
            let refused = self.session.start_no_block(&name).await.map_err(ExecError::target(format!("queue the start of {name}")))?;
            if let Some(why) = refused {
                watcher.note(&name, format!("start job not queued: {}", one_line(&why)));
            }
            self.reach_now();
            return Ok(Flow::Next);
        }
        watcher.note(&name, "systemctl start");
        // Blocking `systemctl start`: the format promises that `start` returns when the start
        // job finishes, as systemctl does (a never-ready notify unit returns at its start
        // timeout, which is what such a scenario measures). `no_block = true` is the other way.
        let out = self.exec(&["systemctl", "start", &name], JOB_DEADLINE).await?;
        if !out.success() {
            // A failed start job is an observation for the expectations that follow.
            watcher.note(&name, format!("start job failed: {}", one_line(&out.stderr)));
        }
        self.reach_now();
        Ok(Flow::Next)
    }

    pub(super) async fn settle(&mut self, unit: &UnitName, window: Duration, source: &WindowSource) -> StepResult {
        let name = self.name(unit).to_string();
        // Counted from when systemd began the start job ("Starting ...", or "Started ..." for a
        // unit that logs no Starting line, as Type=simple on 252 does), which on a busy target
        // can come well after the lab queued it; without such a line, from the request (or
        // from now when the scenario never started the unit).
        let requested = self.starts.get(&name).copied().unwrap_or_else(monotonic_now_usec);
        let since = Duration::from_micros(requested);
        let began = self
            .evidence(&name, super::deadline_in(window), |ev| {
                ev.iter().enumerate().find(|(_, e)| e.at >= since && matches!(e.kind, EventKind::Starting | EventKind::Started)).map(|(i, e)| (i, e.clone()))
            })
            .await?;
        let from_usec = began.map_or(requested, |(_, e)| e.at.as_micros() as u64);
        let elapsed = Duration::from_micros(monotonic_now_usec().saturating_sub(from_usec));
        let how = match source {
            WindowSource::Explicit => "window as written".to_string(),
            WindowSource::Derived(text) => text.clone(),
        };
        self.session.watcher().note(&name, format!("settle for {} ({how})", format_duration(window)));
        // The bounded "nothing more happens" window: after it no start timeout can fire.
        self.session.sleep(window.saturating_sub(elapsed)).await.map_err(ExecError::TargetGone)?;
        self.reach(from_usec.saturating_add(window.as_micros() as u64));
        Ok(Flow::Next)
    }

    pub(super) async fn fault(&mut self, step: usize, fault: &Fault) -> StepResult {
        let units: Vec<String> = match fault.units() {
            named if named.is_empty() => self.names.values().cloned().collect(),
            named => named.into_iter().map(|u| self.name(u).to_string()).collect(),
        };
        let mut invocations = HashMap::new();
        for u in &units {
            // The invocation systemd logged last is the running one; only a unit that logged
            // nothing yet needs asking.
            let logged = self.session.watcher().events(u, 0, 0).iter().rev().find_map(|e| e.invocation.clone());
            let id = match logged {
                Some(id) => id,
                None => {
                    let p = self.session.properties(u, &["InvocationID"]).await.map_err(ExecError::target(format!("read the InvocationID of {u}")))?;
                    p.get("InvocationID").cloned().unwrap_or_default()
                }
            };
            invocations.insert(u.clone(), id);
        }
        let watcher = self.session.watcher();
        let what = describe(&StepKind::Fault(fault.clone()), self.input.suite);
        // One fault time for every unit the step hits: taken right before the injection.
        let mark = FaultMark {
            at_usec: monotonic_now_usec(),
            instant: Instant::now(),
            from: self.names.values().map(|n| (n.clone(), watcher.len(n))).collect(),
            invocations,
        };
        self.faults.insert(step, mark);
        for u in &units {
            watcher.note(u, format!("fault: {what}"));
        }
        let failed: Option<String> = match fault {
            Fault::Control { targets, fault, after } => {
                let query = fault.query(*after);
                let this: &Run = self;
                let posts = targets.iter().map(|(unit, port)| {
                    let route = this.route(*port);
                    let path = format!("/control/fault?{query}");
                    let name = this.name(unit).to_string();
                    async move {
                        let answer = this.session.http().post(this.session.target(), route, *port, &path, CONTROL_TIMEOUT).await;
                        (name, *port, route, path, answer)
                    }
                });
                let mut refused = Vec::new();
                for (name, port, route, path, answer) in futures_util::future::join_all(posts).await {
                    match answer.map_err(ExecError::target_owned(format!("POST :{port}{path} for {name}")))? {
                        Answer::Status(s) if (200..300).contains(&s) => {}
                        other => refused.push(format!("POST :{port}{path} ({}) for {name}: {other}", route.describe())),
                    }
                }
                (!refused.is_empty()).then(|| refused.join("; "))
            }
            Fault::Signal { signal, .. } => self.signal_main(&units, *signal).await?,
            Fault::Freeze { .. } => self.signal_main(&units, Signal::STOP).await?,
            Fault::Thaw { .. } => match self.signal_main(&units, Signal::CONT).await? {
                // A unit without a main process has nothing frozen (a hung one may have been
                // killed by its watchdog already): the thaw is a no-op, noted on the timeline.
                Some(why) if why.contains("has no main process") => {
                    for u in &units {
                        watcher.note(u, "thaw: no main process, nothing to thaw");
                    }
                    None
                }
                other => other,
            },
            Fault::PauseTarget { duration } => {
                // The fault is the duration itself: everything in the target, systemd included,
                // is frozen for exactly this long.
                let name = self.target_name().to_string();
                self.session.pause(*duration).await.map_err(|e| match e {
                    crate::run::session::PauseError::Target(t) => ExecError::target_owned(format!("pause {name}"))(t),
                    crate::run::session::PauseError::Gone(why) => ExecError::TargetGone(why),
                    crate::run::session::PauseError::Guard(g) => ExecError::Guard(g),
                })?;
                None
            }
            Fault::Stop { .. } | Fault::Restart { .. } => {
                let verb = if matches!(fault, Fault::Stop { .. }) { "stop" } else { "restart" };
                let mut argv = vec!["systemctl", verb];
                argv.extend(units.iter().map(String::as_str));
                let out = self.exec(&argv, JOB_DEADLINE).await?;
                if !out.success() {
                    for u in &units {
                        watcher.note(u, format!("{verb} job failed: {}", one_line(&out.stderr)));
                    }
                }
                None
            }
            Fault::Resource(r) => {
                let units = units.clone();
                self.hold(step, r, &units).await?
            }
            Fault::Heal { step: of, .. } => self.heal(*of).await?,
            Fault::Kill { signal, whom, .. } => {
                // 247 knows only the option's old name, --kill-who=.
                let whom = format!("{}={whom}", self.input.suite.kill_whom_option());
                let sig = format!("--signal={}", signal.number());
                let mut argv = vec!["systemctl", "kill", whom.as_str(), sig.as_str()];
                argv.extend(units.iter().map(String::as_str));
                let out = self.exec(&argv, COMMAND_DEADLINE).await?;
                (!out.success()).then(|| format!("systemctl kill {}: {}", units.join(" "), one_line(&out.stderr)))
            }
        };
        self.reach_now();
        match failed {
            None => Ok(Flow::Next),
            Some(observed) => {
                let unit = units.first().cloned();
                self.check(step, unit.as_deref(), Verdict { expected: format!("{what} is injected"), observed, passed: false });
                Ok(Flow::Stop)
            }
        }
    }

    /// `kill(2)` of each unit's MainPID from inside the target, in one exec; `Some(why)` when a
    /// unit has no main process.
    async fn signal_main(&self, units: &[String], signal: Signal) -> Result<Option<String>, ExecError> {
        let script = r#"sig=$1; shift; status=0
for unit; do
  pid=$(systemctl show -P MainPID "$unit") || { status=2; continue; }
  if [ "${pid:-0}" -gt 0 ]; then kill -"$sig" "$pid" || status=1
  else echo "$unit has no main process (MainPID=${pid:-?})" >&2; status=3; fi
done
exit $status"#;
        let sig = signal.number().to_string();
        let mut argv = vec!["sh", "-c", script, "sh", sig.as_str()];
        argv.extend(units.iter().map(String::as_str));
        let out = self.exec(&argv, COMMAND_DEADLINE).await?;
        Ok((!out.success()).then(|| format!("signal {} to the main process of {}: {}", signal.name(), units.join(", "), one_line(&out.stderr))))
    }
}
