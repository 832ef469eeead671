//! Expectations: gather what each needs (properties, HTTP answers, evidence from the unit's
//! timeline), then let [`crate::judge`] decide.

use std::time::{Duration, Instant};

use super::waits::http_poll;
use crate::run::http::Route;
use super::{ExecError, FaultMark, Flow, Run, StepResult};
use crate::judge::{self, Recovery};
use crate::observe::{evidence, journal, Answer, Event};
use crate::run::watch::Waited;
use crate::scenario::{Expectation, WindowSource};

/// Properties every `expect` reads besides those it checks, so a failure shows the context.
const CONTEXT_PROPERTIES: [&str; 4] = ["ActiveState", "SubState", "Result", "NRestarts"];

fn abs(usec: u64) -> Duration {
    Duration::from_micros(usec)
}

/// Timeout of one attempt of the "time to healthy" poll.
const HEALTH_ATTEMPT: Duration = Duration::from_secs(1);

impl Run<'_> {
    pub(super) fn fault_mark(&self, step: usize) -> Result<FaultMark, ExecError> {
        // Validation guarantees a fault step before; it was skipped only if the run stopped.
        self.faults.get(&step).cloned().ok_or(ExecError::NoFault { step: step + 1 })
    }

    /// The last thing systemd logged about `name` from index `from`, redacted, for an
    /// observation that found nothing.
    pub(super) fn last_line(&self, name: &str, from: usize) -> Option<String> {
        let events = self.session.watcher().events(name, 0, 0);
        evidence::last_systemd_event(&events, from).map(|e| journal::redact(&e.message))
    }

    /// Wait for the first event of `name` that `find` picks, until `deadline`.
    pub(super) async fn evidence(
        &self,
        name: &str,
        deadline: Instant,
        mut find: impl FnMut(&[Event]) -> Option<(usize, Event)>,
    ) -> Result<Option<(usize, Event)>, ExecError> {
        let left = deadline.saturating_duration_since(Instant::now());
        let waited: Waited<(usize, Event)> = self.session.watcher().wait_for(name, left, &mut find).await;
        waited.found().map_err(ExecError::TargetGone)
    }

    /// [`Run::evidence`], and what it found is part of the story.
    pub(super) async fn found(
        &mut self,
        name: &str,
        deadline: Instant,
        find: impl FnMut(&[Event]) -> Option<(usize, Event)>,
    ) -> Result<Option<(usize, Event)>, ExecError> {
        let found = self.evidence(name, deadline, find).await?;
        if let Some((_, e)) = &found {
            self.reach_event(e.at);
        }
        Ok(found)
    }

    pub(super) async fn expect(&mut self, step: usize, e: &Expectation) -> StepResult {
        match e {
            Expectation::Unit { unit, checks } => {
                let name = self.name(unit).to_string();
                let mut props: Vec<&str> = CONTEXT_PROPERTIES.to_vec();
                for c in checks {
                    for p in c.properties() {
                        if !props.contains(p) {
                            props.push(p);
                        }
                    }
                }
                let values = self.session.properties(&name, &props).await.map_err(ExecError::target(format!("read the properties of {name}")))?;
                let read: Vec<(String, Option<String>)> = props.iter().map(|p| (p.to_string(), values.get(*p).cloned())).collect();
                let verdict = judge::properties(&name, checks, &read);
                self.check(step, Some(&name), verdict);
            }
            Expectation::Http { port, path, expect, timeout } => {
                let got = self.get(*port, path, *timeout).await?;
                let unit = self.names.values().next().cloned();
                let mut verdict = judge::probe(*port, path, *expect, *timeout, &got);
                // Which way the request went (from the lab, or curl inside the target) is part
                // of what was observed: a refused answer means different things on each.
                verdict.observed = format!("{} ({})", verdict.observed, self.route(*port).describe());
                self.check(step, unit.as_deref(), verdict);
            }
            Expectation::RestartedWithin { unit, within, since_step } => {
                let name = self.name(unit).to_string();
                let mark = self.fault_mark(*since_step)?;
                let from = mark.from.get(&name).copied().unwrap_or(0);
                let old = mark.invocations.get(&name).cloned();
                let since = abs(mark.at_usec);
                let found = self
                    .found(&name, mark.instant + *within, |ev| evidence::new_start(ev, from, since, old.as_deref()).map(|(i, e)| (i, e.clone())))
                    .await?;
                let after = found.map(|(_, e)| e.at.saturating_sub(since));
                if let Some(t) = after {
                    self.timing("time to restart", &name, t);
                }
                let last = self.last_line(&name, from);
                self.check(step, Some(&name), judge::restarted_within(&name, *within, *since_step, after, last.as_deref()));
            }
            Expectation::NoRestart { unit, window, window_source } => {
                let name = self.name(unit).to_string();
                let read = |p: &std::collections::BTreeMap<String, String>, k: &str| p.get(k).cloned().unwrap_or_default();
                let before = self.session.properties(&name, &["NRestarts", "InvocationID"]).await.map_err(ExecError::target(format!("read NRestarts of {name}")))?;
                let from = self.session.watcher().len(&name);
                let start = abs(crate::observe::monotonic_now_usec());
                let old = read(&before, "InvocationID");
                let source = match window_source {
                    WindowSource::Explicit => "window as written".to_string(),
                    WindowSource::Derived(text) => format!("window derived: {text}"),
                };
                // The bounded "nothing more happens" wait: a restart, if systemd were going to
                // do one, would be scheduled and started within the window.
                let found = self
                    .found(&name, super::deadline_in(*window), |ev| evidence::restart(ev, from, start, Some(&old)).map(|(i, e)| (i, e.clone())))
                    .await?;
                // The window was watched to its end (or to the restart found in it).
                if found.is_none() {
                    self.reach(start.saturating_add(*window).as_micros() as u64);
                }
                let after = self.session.properties(&name, &["NRestarts"]).await.map_err(ExecError::target(format!("read NRestarts of {name}")))?;
                let line = found.as_ref().map(|(_, e)| (journal::redact(&e.message), e.at.saturating_sub(start)));
                let verdict = judge::no_restart(
                    &name,
                    *window,
                    &source,
                    line.as_ref().map(|(l, t)| (l.as_str(), *t)),
                    &read(&before, "NRestarts"),
                    &read(&after, "NRestarts"),
                );
                self.check(step, Some(&name), verdict);
            }
            Expectation::Recovery { unit, http, within, since_step } => {
                let name = self.name(unit).to_string();
                let mark = self.fault_mark(*since_step)?;
                let from = mark.from.get(&name).copied().unwrap_or(0);
                let old = mark.invocations.get(&name).cloned();
                let since = abs(mark.at_usec);
                let deadline = mark.instant + *within;
                let started = self
                    .found(&name, deadline, |ev| evidence::new_start(ev, from, since, old.as_deref()).map(|(i, e)| (i, e.clone())))
                    .await?;
                let events = self.session.watcher().events(&name, 0, 0);
                let until = started.as_ref().map_or(events.len(), |(i, _)| *i);
                let detected = evidence::detection(&events, from, until, since).map(|e| (e.at.saturating_sub(since), journal::redact(&e.message)));
                if let Some((t, _)) = &detected {
                    self.timing("time to detect", &name, *t);
                }
                let active_again = started.as_ref().map(|(_, e)| e.at.saturating_sub(since));
                if let Some(t) = active_again {
                    self.timing("time to recover", &name, t);
                }
                let healthy = match (http, active_again) {
                    (Some((port, path)), Some(_)) => Some(self.healthy(&name, *port, path, mark.instant, deadline).await?),
                    _ => None,
                };
                let last = self.last_line(&name, from);
                let gathered = Recovery {
                    detected: detected.as_ref().map(|(t, l)| (*t, l.as_str())),
                    active_again,
                    healthy,
                    last: last.as_deref(),
                };
                let http = http.as_ref().map(|(p, path)| (*p, path.as_str()));
                self.check(step, Some(&name), judge::recovery(&name, *within, *since_step, http, &gathered));
            }
            Expectation::Journal { unit, matcher, present } => {
                self.session.sync_journal().await?;
                let units = self.units_of(unit.as_ref());
                // systemd's lines about no unit in particular ("Reloading.") count for a
                // scenario-wide match.
                let entries = self.entries(&units, unit.is_none());
                let found = entries.iter().find(|e| e.get("MESSAGE").and_then(|m| m.as_str()).is_some_and(|m| matcher.is_match(m)));
                let hit = found.and_then(|e| e.get("MESSAGE").and_then(|m| m.as_str())).map(journal::redact);
                // The story reaches the line this check relied on: journald stamps a line when
                // it receives it, which under IO load comes after the step that caused it has
                // returned, and the snapshot (cut at the story's horizon) lost such lines
                // (seen in CI: seed000-watchdogged's load errors of `relative`).
                if let Some(at) = found.and_then(crate::observe::entry_monotonic_usec) {
                    self.reach(at);
                }
                let scope = match unit {
                    Some(u) => format!("the journal of {}", self.name(u)),
                    None => "the scenario's journal".to_string(),
                };
                let name = unit.as_ref().map(|u| self.name(u).to_string());
                self.check(step, name.as_deref(), judge::journal(&scope, matcher, *present, hit.as_deref(), entries.len()));
            }
        }
        Ok(Flow::Next)
    }

    /// Poll `GET :port path` until it answers 200 (time since the fault) or `deadline` passes
    /// (the last answer). From the lab a new attempt starts every [`http_poll`] (20 ms) whether
    /// or not the previous ones have answered: a port that drops packets holds each attempt
    /// for its whole timeout, and waiting for it would sample "time to healthy" once a second.
    /// Attempts run inside the target (an exec each) one at a time.
    async fn healthy(&mut self, name: &str, port: u16, path: &str, fault: Instant, deadline: Instant) -> Result<Result<Duration, Answer>, ExecError> {
        use futures_util::stream::{FuturesUnordered, StreamExt};
        let route = self.route(port);
        let poll = http_poll(route);
        let most = match route {
            Route::Direct(_) => (HEALTH_ATTEMPT.as_millis() / poll.as_millis()).max(1) as usize,
            Route::InTarget => 1,
        };
        let this = &*self;
        let mut in_flight = FuturesUnordered::new();
        let mut last = None;
        let mut next = Instant::now();
        let outcome = loop {
            let now = Instant::now();
            if in_flight.len() < most && now >= next && (now < deadline || last.is_none() && in_flight.is_empty()) {
                in_flight.push(this.get(port, path, HEALTH_ATTEMPT));
                next = now + poll;
            }
            if in_flight.is_empty() {
                if Instant::now() >= deadline {
                    break Err(last.expect("one attempt was made"));
                }
                this.session.sleep(next.saturating_duration_since(Instant::now())).await.map_err(ExecError::TargetGone)?;
                continue;
            }
            let launch = tokio::time::sleep_until(next.max(now).min(deadline.max(now)).into());
            tokio::select! {
                Some(answer) = in_flight.next() => {
                    let answer = answer?;
                    if answer == Answer::Status(200) {
                        break Ok(fault.elapsed());
                    }
                    last = Some(answer);
                }
                _ = launch, if in_flight.len() < most && Instant::now() < deadline => {}
                why = this.session.watcher().gone() => return Err(ExecError::TargetGone(why)),
            }
        };
        drop(in_flight);
        if let Ok(t) = outcome {
            self.timing("time to healthy", name, t);
        }
        Ok(outcome)
    }
}
