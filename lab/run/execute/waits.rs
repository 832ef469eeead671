//! Blocking waits, each with its deadline; a wait that runs out is a failed check (what was
//! awaited did not happen, an observation about the service), and the scenario stops there.

use std::time::{Duration, Instant};

use super::{deadline_in, ExecError, Flow, Run, StepResult};
use crate::judge::Verdict;
use crate::observe::{journal, Answer, EventKind};
use crate::run::http::Route;
use crate::run::watch::Waited;
use crate::scenario::{TextMatch, Wait};
use crate::systemd::format_duration;

/// Property re-reads of `wait-state` when no journal event wakes the wait first: some state
/// changes (e.g. `auto-restart` -> `auto-restart-queued`) are not logged. Every logged change
/// wakes the wait at once; the properties are read only then, or at this pace.
const STATE_POLL: Duration = Duration::from_millis(500);

/// Between two HTTP attempts: an HTTP answer cannot be followed like a journal, so it is
/// polled, always under the step's deadline. From the lab a request costs nothing; from inside
/// the target each one is an exec.
pub(super) fn http_poll(route: Route) -> Duration {
    match route {
        Route::Direct(_) => Duration::from_millis(20),
        Route::InTarget => Duration::from_millis(100),
    }
}

impl Run<'_> {
    pub(super) async fn wait(&mut self, step: usize, wait: &Wait) -> StepResult {
        let deadline = deadline_in(wait.within());
        let within = format_duration(wait.within());
        match wait {
            Wait::State { unit, active, sub, .. } => {
                let name = self.name(unit).to_string();
                let want = [active.map(|a| format!("ActiveState={a}")), sub.map(|s| format!("SubState={s}"))]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ");
                loop {
                    let seen = self.session.watcher().len(&name);
                    let props = self
                        .session
                        .properties(&name, &["ActiveState", "SubState"])
                        .await
                        .map_err(ExecError::target(format!("read the state of {name}")))?;
                    let get = |k: &str| props.get(k).cloned().unwrap_or_default();
                    let holds = active.is_none_or(|a| get("ActiveState") == a.as_str()) && sub.is_none_or(|s| get("SubState") == s.as_str());
                    if holds {
                        // The state came with the unit's latest event (or, unlogged, now). The
                        // journal follower may still be behind the state just read (a "Started"
                        // line in flight): catch up first, so the story ends at that event and
                        // not, by chance, before it.
                        self.session.sync_journal().await?;
                        let last = self.session.watcher().events(&name, 0, 0).last().map(|e| e.at);
                        match last {
                            Some(at) => self.reach_event(at),
                            None => self.reach_now(),
                        }
                        return Ok(Flow::Next);
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        let observed = format!("ActiveState={} SubState={} at the deadline", get("ActiveState"), get("SubState"));
                        self.check(step, Some(&name), Verdict { expected: format!("{want} within {within}"), observed, passed: false });
                        return Ok(Flow::Stop);
                    }
                    // Woken by the unit's next journal event, or re-read after a short while.
                    let woke = self.session.watcher().wait_for(&name, left.min(STATE_POLL), |events| (events.len() > seen).then_some(())).await;
                    if let Waited::Ended(why) = woke {
                        return Err(ExecError::TargetGone(why));
                    }
                }
            }
            Wait::Journal { unit, matcher, .. } => {
                let units = self.units_of(unit.as_ref());
                let mut changes = self.session.watcher().subscribe();
                loop {
                    changes.borrow_and_update();
                    if self.watched_match(&units, matcher).is_some() {
                        self.reach_now();
                        return Ok(Flow::Next);
                    }
                    if let Some(why) = self.session.watcher().ended() {
                        return Err(ExecError::TargetGone(why));
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    let woke = tokio::time::timeout(left, changes.changed()).await;
                    if woke.is_err() || left.is_zero() {
                        if self.watched_match(&units, matcher).is_some() {
                            return Ok(Flow::Next);
                        }
                        let watcher = self.session.watcher();
                        let count: usize = units.iter().map(|u| watcher.entries(u, self.begin_of(u)).len()).sum();
                        let last = units
                            .iter()
                            .flat_map(|u| watcher.events(u, self.begin_of(u), self.origin_usec))
                            .filter(|e| !matches!(e.kind, EventKind::Lab { .. }))
                            .max_by_key(|e| e.at)
                            .map(|e| format!("; last line: {:?}", journal::redact(&e.message)))
                            .unwrap_or_default();
                        let observed = format!("no matching line among {count} journal line(s) of {}{last}", units.join(", "));
                        let expected = format!("a journal line matching {matcher} within {within}");
                        let name = unit.as_ref().map(|u| self.name(u).to_string());
                        self.check(step, name.as_deref(), Verdict { expected, observed, passed: false });
                        return Ok(Flow::Stop);
                    }
                }
            }
            Wait::Http { port, path, status, .. } => {
                let route = self.route(*port);
                let mut last;
                loop {
                    let attempt = Duration::from_secs(2).min(wait.within());
                    last = self.get(*port, path, attempt).await?;
                    if last == Answer::Status(*status) {
                        return Ok(Flow::Next);
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    self.session.sleep(left.min(http_poll(route))).await.map_err(ExecError::TargetGone)?;
                }
                let expected = format!("GET :{port}{path} answers {status} within {within} ({})", route.describe());
                let unit = self.names.values().next().cloned();
                self.check(step, unit.as_deref(), Verdict { expected, observed: format!("last answer: {last}"), passed: false });
                Ok(Flow::Stop)
            }
        }
    }

    /// The first delivered journal MESSAGE of `units` matching.
    pub(super) fn watched_match(&self, units: &[String], matcher: &TextMatch) -> Option<String> {
        units.iter().find_map(|u| {
            self.session.watcher().entries(u, self.begin_of(u)).into_iter().find_map(|e| {
                let m = e.get("MESSAGE").and_then(|m| m.as_str())?;
                matcher.is_match(m).then(|| m.to_string())
            })
        })
    }
}
