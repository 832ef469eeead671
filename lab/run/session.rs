//! A booted target as the runner uses it: the target itself, its one journal [`Watcher`], its
//! address for direct HTTP, and group-committed commands ([`Coalescer`]) for what every scenario
//! on it needs at about the same time: install files and units (one tar, and a
//! `daemon-reload` only when a unit systemd may already know changed), queue non-blocking
//! starts, read properties, verify units, sync the journal, and clean up. Scenarios sharing
//! the target go through here, so fifty scenarios cost a few execs, not hundreds.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::batch::Coalescer;
use super::http::Http;
use super::watch::{seqnum, Waited, Watcher};
use crate::target::{parse_properties, Target, TargetError, TargetState};

/// A command of the session failed; shared by every request of the batch it was in.
pub type Shared<E> = Arc<E>;

/// Why the journal could not be brought up to date.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SyncError {
    #[error("sync the journal of {target}: {source}")]
    Target {
        target: String,
        #[source]
        source: Shared<TargetError>,
    },
    #[error("the journal follower of {target} did not reach the synced end within {seconds} s")]
    Lagging { target: String, seconds: u64 },
    #[error("{0}")]
    Ended(String),
}

/// How long the follower may take to deliver what `journalctl --sync` stored.
const SYNC_DEADLINE: Duration = Duration::from_secs(10);
/// A stop of leftover units during clean-up; only catches a hung target.
const CLEANUP_STOP_DEADLINE: Duration = Duration::from_secs(120);

/// Files (path, bytes, mode) to install.
pub type Files = Vec<(String, Vec<u8>, u32)>;

/// Properties read with `systemctl show`, by name.
pub type Properties = BTreeMap<String, String>;

/// One scenario's files to install.
pub struct Install {
    files: Files,
    guarded: Vec<String>,
    /// Whether systemd must `daemon-reload` to see them (`plan::install_needs_reload`).
    reload: bool,
}

/// Why a scenario's files were not installed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Target(Shared<TargetError>),
    /// These paths exist in the target already.
    #[error("would overwrite {} of the target image", .0.join(", "))]
    Overwrites(Vec<String>),
}

/// What a scenario leaves behind on a shared target.
#[derive(Debug, Clone, Default)]
pub struct Leftovers {
    pub units: Vec<String>,
    pub files: Vec<String>,
}

pub struct Session {
    target: Arc<Target>,
    watcher: Arc<Watcher>,
    /// Set while a `pause` step holds the target frozen: any other freeze is someone else's.
    pausing: Arc<AtomicBool>,
    monitor: tokio::task::JoinHandle<()>,
    http: Http,
    address: Option<IpAddr>,
    install: Coalescer<Install, Result<(), InstallError>>,
    verify: Coalescer<Vec<String>, Result<Vec<String>, Shared<TargetError>>>,
    start: Coalescer<String, Result<Option<String>, Shared<TargetError>>>,
    show: Coalescer<(String, Vec<String>), Result<Properties, Shared<TargetError>>>,
    sync: Coalescer<(), Result<(), SyncError>>,
    cleanup: Coalescer<Leftovers, Result<(), Shared<TargetError>>>,
}

impl Session {
    /// Start following the journal of a booted target and set up its batched commands.
    pub async fn open(target: Target) -> Result<Session, TargetError> {
        let target = Arc::new(target);
        let watcher = Arc::new(Watcher::start(&target).await?);
        // No address (another network mode), or an engine on another host (its container
        // network is not reachable from here): every probe then goes through the target.
        let address = if target.engine().info().local {
            target.ip_address().await.ok().and_then(|a| a.parse().ok())
        } else {
            None
        };
        let pausing = Arc::new(AtomicBool::new(false));
        let monitor = tokio::spawn(monitor(target.clone(), watcher.clone(), pausing.clone()));
        Ok(Session {
            pausing,
            monitor,
            install: Coalescer::new("install", with(&target, |t, batch: Vec<Install>| async move { install(&t, batch).await })),
            verify: Coalescer::new("verify", with(&target, |t, batch: Vec<Vec<String>>| async move { verify(&t, batch).await })),
            start: Coalescer::new("start", with(&target, |t, batch: Vec<String>| async move { start_no_block(&t, batch).await })),
            show: Coalescer::new("show", with(&target, |t, batch: Vec<(String, Vec<String>)>| async move { show(&t, batch).await })),
            sync: Coalescer::new("sync", {
                let (target, watcher) = (target.clone(), watcher.clone());
                move |batch: Vec<()>| {
                    let (target, watcher) = (target.clone(), watcher.clone());
                    async move { vec![sync(&target, &watcher).await; batch.len()] }
                }
            }),
            cleanup: Coalescer::new("cleanup", with(&target, |t, batch: Vec<Leftovers>| async move {
                let n = batch.len();
                let result = clean_up(&t, batch).await.map_err(Arc::new);
                vec![result; n]
            })),
            target,
            watcher,
            http: Http::new(),
            address,
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    pub fn watcher(&self) -> &Watcher {
        &self.watcher
    }

    /// Owned handles on the target and its watcher, for work that outlives a step (a resource
    /// fault undone after its `duration` while later steps run).
    pub fn handles(&self) -> (Arc<Target>, Arc<Watcher>) {
        (self.target.clone(), self.watcher.clone())
    }

    pub fn http(&self) -> &Http {
        &self.http
    }

    /// The target's address on the engine's network, for direct HTTP.
    pub fn address(&self) -> Option<IpAddr> {
        self.address
    }

    /// Write files (units included), together with whatever other scenarios install at the
    /// same moment, and `daemon-reload` when one of them needs it (`reload`). Paths in
    /// `guarded` must not exist yet: on a shared target a scenario may not change what the
    /// image holds (other scenarios rely on it, and clean-up would delete it); such a request
    /// writes nothing and gets [`InstallError::Overwrites`].
    pub async fn install(&self, files: Files, guarded: Vec<String>, reload: bool) -> Result<(), InstallError> {
        let request = Install { files, guarded, reload };
        self.install.call(request).await.unwrap_or_else(|| Err(InstallError::Target(Arc::new(self.gone("install files")))))
    }

    /// `systemd-analyze verify` of unit files: the lines about them.
    pub async fn verify(&self, paths: Vec<String>) -> Result<Vec<String>, Shared<TargetError>> {
        self.verify.call(paths).await.unwrap_or_else(|| Err(Arc::new(self.gone("verify units"))))
    }

    /// `systemctl start --no-block UNIT`; `Ok(Some(why))` when systemctl refused to queue it.
    pub async fn start_no_block(&self, unit: &str) -> Result<Option<String>, Shared<TargetError>> {
        self.start.call(unit.to_string()).await.unwrap_or_else(|| Err(Arc::new(self.gone("queue a start"))))
    }

    /// `systemctl show` of some properties of a unit.
    pub async fn properties(&self, unit: &str, properties: &[&str]) -> Result<Properties, Shared<TargetError>> {
        let request = (unit.to_string(), properties.iter().map(|p| p.to_string()).collect());
        self.show.call(request).await.unwrap_or_else(|| Err(Arc::new(self.gone("read unit properties"))))
    }

    /// Return once the watcher has delivered everything the journal held when this was called.
    pub async fn sync_journal(&self) -> Result<(), SyncError> {
        self.sync.call(()).await.unwrap_or_else(|| Err(SyncError::Ended(self.gone("sync the journal").to_string())))
    }

    /// Stop and remove a scenario's units and files, so the next scenario on the target starts
    /// from what the image holds.
    pub async fn clean_up(&self, leftovers: Leftovers) -> Result<(), Shared<TargetError>> {
        self.cleanup.call(leftovers).await.unwrap_or_else(|| Err(Arc::new(self.gone("clean up"))))
    }

    /// Sleep, unless the target goes away meanwhile (then why).
    pub async fn sleep(&self, d: Duration) -> Result<(), String> {
        tokio::select! {
            _ = tokio::time::sleep(d) => Ok(()),
            why = self.watcher.gone() => Err(why),
        }
    }

    /// The `pause` fault: freeze every process of the target, systemd included, for `d`, then
    /// thaw it. The monitor knows this freeze is the lab's own.
    pub async fn pause(&self, d: Duration) -> Result<(), PauseError> {
        // Started before freezing: if the lab dies while the target is frozen, the guard
        // removes it; the target's own tether cannot act while it is frozen.
        // A VM needs no guard: its QEMU dies with the lab, stopped or not.
        let guard = match self.target.fixture() {
            crate::target::Fixture::Container => Some(crate::target::reaper::PauseGuard::start(self.target.id()).map_err(PauseError::Guard)?),
            crate::target::Fixture::Vm => None,
        };
        self.pausing.store(true, Ordering::SeqCst);
        let result = async {
            self.target.pause().await.map_err(PauseError::Target)?;
            let slept = self.sleep(d).await;
            self.target.unpause().await.map_err(PauseError::Target)?;
            slept.map_err(PauseError::Gone)
        }
        .await;
        self.pausing.store(false, Ordering::SeqCst);
        drop(guard);
        result
    }

    fn gone(&self, what: &str) -> TargetError {
        TargetError::CommandFailed {
            name: self.target.name().to_string(),
            command: what.to_string(),
            code: -1,
            stderr: self.watcher.ended().unwrap_or_else(|| "the session was closed".into()),
        }
    }

    /// Stop following and remove the target (a kept one is left running); returns the hint
    /// for entering a kept target.
    pub async fn close(self) -> Result<Option<String>, TargetError> {
        let Session { target, watcher, install, verify, start, show, sync, cleanup, monitor, .. } = self;
        // The batch tasks and the monitor hold the target too: drop them first.
        monitor.abort();
        drop((install, verify, start, show, sync, cleanup, watcher));
        let target = match Arc::try_unwrap(target) {
            Ok(t) => t,
            // A request still in flight holds it; dropping the last reference removes it.
            Err(_) => return Ok(None),
        };
        let hint = target.is_kept().then(|| target.enter_hint());
        target.teardown().await?;
        Ok(hint)
    }
}

/// Why a `pause` fault could not be applied or seen through.
#[derive(Debug, thiserror::Error)]
pub enum PauseError {
    #[error(transparent)]
    Target(TargetError),
    #[error(transparent)]
    Guard(crate::target::reaper::GuardError),
    #[error("{0}")]
    Gone(String),
}

/// How often the monitor asks the engine about the target.
const MONITOR_EVERY: Duration = Duration::from_millis(500);
/// How long the target may be frozen by someone other than a `pause` step before its
/// scenarios end: a frozen systemd logs nothing, so every wait would run to its deadline.
const FOREIGN_FREEZE: Duration = Duration::from_secs(1);

/// Watch the target from outside: killed, removed or frozen by someone else, it ends every
/// wait on it at once (with the container's name and state) instead of at the deadlines.
async fn monitor(target: Arc<Target>, watcher: Arc<Watcher>, pausing: Arc<AtomicBool>) {
    let mut frozen_since: Option<std::time::Instant> = None;
    loop {
        tokio::time::sleep(MONITOR_EVERY).await;
        let state = match target.state().await {
            Ok(state) => state,
            // The engine did not answer this once: ask again next time.
            Err(_) => continue,
        };
        match state {
            TargetState::Running => frozen_since = None,
            TargetState::Paused if pausing.load(Ordering::SeqCst) => frozen_since = None,
            TargetState::Paused => {
                let since = *frozen_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() >= FOREIGN_FREEZE {
                    let why = format!("target {} was frozen from outside the lab (paused for {:.1} s)", target.name(), since.elapsed().as_secs_f64());
                    // Its agent is frozen too: commands would wait for it forever.
                    target.abandon_channel(why.clone());
                    watcher.end(why);
                    return;
                }
            }
            TargetState::Stopped { .. } | TargetState::Removed => {
                let why = format!("target {} is gone: the engine reports it {state}", target.name());
                target.abandon_channel(why.clone());
                watcher.end(why);
                return;
            }
        }
    }
}

/// A batch function that gets its own handle on the target.
fn with<Req, Resp, F, Fut>(target: &Arc<Target>, f: F) -> impl Fn(Vec<Req>) -> Fut + Send + Sync + 'static
where
    F: Fn(Arc<Target>, Vec<Req>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Vec<Resp>> + Send + 'static,
{
    let target = target.clone();
    move |batch| f(target.clone(), batch)
}

/// One existence check for every guarded path of the batch, then one tar for the requests
/// that may go ahead, and one `daemon-reload` if any of them needs it.
async fn install(target: &Target, batch: Vec<Install>) -> Vec<Result<(), InstallError>> {
    let guarded: BTreeSet<&str> = batch.iter().flat_map(|r| r.guarded.iter().map(String::as_str)).collect();
    let existing: BTreeSet<String> = if guarded.is_empty() {
        BTreeSet::new()
    } else {
        let script = r#"for p; do if [ -e "$p" ] || [ -L "$p" ]; then printf '%s\n' "$p"; fi; done"#;
        let mut argv = vec!["sh", "-c", script, "sh"];
        argv.extend(guarded.iter().copied());
        match target.exec_ok(&argv).await {
            Ok(out) => out.stdout.lines().map(str::to_string).collect(),
            Err(e) => {
                let e = Arc::new(e);
                return batch.iter().map(|_| Err(InstallError::Target(e.clone()))).collect();
            }
        }
    };
    let verdicts: Vec<Result<(), InstallError>> = batch
        .iter()
        .map(|r| {
            let clash: Vec<String> = r.guarded.iter().filter(|p| existing.contains(*p)).cloned().collect();
            if clash.is_empty() {
                Ok(())
            } else {
                Err(InstallError::Overwrites(clash))
            }
        })
        .collect();
    let going: Vec<Install> = batch.into_iter().zip(&verdicts).filter(|(_, v)| v.is_ok()).map(|(r, _)| r).collect();
    let reload = going.iter().any(|r| r.reload);
    let files: Files = going.into_iter().flat_map(|r| r.files).collect();
    let written = async {
        if !files.is_empty() {
            target.write_files(&files).await?;
        }
        if reload {
            target.exec_ok(&["systemctl", "daemon-reload"]).await?;
        }
        Ok::<(), TargetError>(())
    }
    .await
    .map_err(Arc::new);
    verdicts
        .into_iter()
        .map(|v| match (v, &written) {
            (Ok(()), Err(e)) => Err(InstallError::Target(e.clone())),
            (v, _) => v,
        })
        .collect()
}

/// One `systemd-analyze verify` for every file of the batch; each request gets the lines that
/// name one of its files (by path or unit name), and the lines that name no file of the batch.
async fn verify(target: &Target, batch: Vec<Vec<String>>) -> Vec<Result<Vec<String>, Shared<TargetError>>> {
    let all: BTreeSet<&str> = batch.iter().flatten().map(String::as_str).collect();
    if all.is_empty() {
        return batch.iter().map(|_| Ok(Vec::new())).collect();
    }
    let mut argv = vec!["systemd-analyze", "verify"];
    argv.extend(all.iter().copied());
    let out = match target.exec(&argv).await {
        Ok(out) => out,
        Err(e) => {
            let e = Arc::new(e);
            return batch.iter().map(|_| Err(e.clone())).collect();
        }
    };
    let lines: Vec<&str> = out.stdout.lines().chain(out.stderr.lines()).map(str::trim).filter(|l| !l.is_empty()).collect();
    let mentions = |line: &str, path: &str| {
        let name = path.rsplit('/').next().unwrap_or(path);
        line.contains(path) || line.contains(name)
    };
    batch
        .iter()
        .map(|paths| {
            Ok(lines
                .iter()
                .filter(|line| paths.iter().any(|p| mentions(line, p)) || !all.iter().any(|p| mentions(line, p)))
                .map(|l| l.to_string())
                .collect())
        })
        .collect()
}

/// One `systemctl start --no-block` for the batch; systemctl's complaint about a unit (it
/// names the unit) goes to that unit's request.
async fn start_no_block(target: &Target, batch: Vec<String>) -> Vec<Result<Option<String>, Shared<TargetError>>> {
    let units: BTreeSet<&str> = batch.iter().map(String::as_str).collect();
    let mut argv = vec!["systemctl", "start", "--no-block"];
    argv.extend(units.iter().copied());
    match target.exec(&argv).await {
        Ok(out) => batch
            .iter()
            .map(|unit| {
                let complaint: Vec<&str> = out.stderr.lines().filter(|l| l.contains(unit.as_str())).collect();
                Ok((!complaint.is_empty()).then(|| complaint.join(" ")))
            })
            .collect(),
        Err(e) => {
            let e = Arc::new(e);
            batch.iter().map(|_| Err(e.clone())).collect()
        }
    }
}

/// One `systemctl show` for every unit and property of the batch.
async fn show(target: &Target, batch: Vec<(String, Vec<String>)>) -> Vec<Result<Properties, Shared<TargetError>>> {
    let units: BTreeSet<&str> = batch.iter().map(|(u, _)| u.as_str()).collect();
    let mut properties: BTreeSet<&str> = batch.iter().flat_map(|(_, p)| p.iter().map(String::as_str)).collect();
    properties.insert("Id");
    let joined = properties.into_iter().collect::<Vec<_>>().join(",");
    let mut argv = vec!["systemctl", "show", "--property", joined.as_str()];
    argv.extend(units.iter().copied());
    match target.exec_ok(&argv).await {
        Ok(out) => {
            let blocks: BTreeMap<String, BTreeMap<String, String>> = out
                .stdout
                .split("\n\n")
                .map(parse_properties)
                .filter_map(|p| Some((p.get("Id")?.clone(), p)))
                .collect();
            batch
                .iter()
                .map(|(unit, props)| {
                    let block = blocks.get(unit);
                    Ok(props.iter().filter_map(|p| Some((p.clone(), block?.get(p)?.clone()))).collect())
                })
                .collect()
        }
        Err(e) => {
            let e = Arc::new(e);
            batch.iter().map(|_| Err(e.clone())).collect()
        }
    }
}

/// `journalctl --sync` (everything logged so far is stored), then wait until the follower has
/// delivered up to the newest stored entry.
async fn sync(target: &Target, watcher: &Watcher) -> Result<(), SyncError> {
    let script = "journalctl --sync && journalctl --no-pager -n 1 -o export --output-fields=__CURSOR";
    let out = target
        .exec_ok(&["sh", "-c", script])
        .await
        .map_err(|e| SyncError::Target { target: target.name().to_string(), source: Arc::new(e) })?;
    let Some(seq) = out.stdout.lines().find_map(|l| l.strip_prefix("__CURSOR=")).and_then(seqnum) else {
        return Ok(());
    };
    match watcher.wait_for_seqnum(seq, SYNC_DEADLINE).await {
        Waited::Found(()) => Ok(()),
        Waited::Deadline => Err(SyncError::Lagging { target: target.name().to_string(), seconds: SYNC_DEADLINE.as_secs() }),
        Waited::Ended(why) => Err(SyncError::Ended(why)),
    }
}

/// Stop the loaded units of the batch (a unit systemd refused to load cannot be stopped, and
/// would make `systemctl stop` fail for the whole list), reset their failed state and remove
/// their files. No `daemon-reload`: it would land in the stories of the scenarios still
/// running on the target (see `plan::install_needs_reload`); systemd frees a stopped,
/// unreferenced unit by itself, and a unit name used again on the target (a unit under its
/// own name) is reloaded by the install that needs it.
async fn clean_up(target: &Target, batch: Vec<Leftovers>) -> Result<(), TargetError> {
    let units: BTreeSet<String> = batch.iter().flat_map(|l| l.units.iter().cloned()).collect();
    let files: BTreeSet<String> = batch.iter().flat_map(|l| l.files.iter().cloned()).collect();
    if !units.is_empty() {
        let mut show = vec!["systemctl", "show", "--property", "Id,LoadState"];
        show.extend(units.iter().map(String::as_str));
        let shown = target.exec_ok(&show).await?;
        let loaded: Vec<String> = shown
            .stdout
            .split("\n\n")
            .map(parse_properties)
            .filter(|p| p.get("LoadState").is_some_and(|s| s == "loaded"))
            .filter_map(|p| p.get("Id").cloned())
            .collect();
        if !loaded.is_empty() {
            let mut stop = vec!["systemctl", "stop"];
            stop.extend(loaded.iter().map(String::as_str));
            match tokio::time::timeout(CLEANUP_STOP_DEADLINE, target.exec_ok(&stop)).await {
                Ok(result) => {
                    result?;
                }
                Err(_) => {
                    return Err(TargetError::CommandFailed {
                        name: target.name().to_string(),
                        command: stop.join(" "),
                        code: -1,
                        stderr: format!("no answer within {} s", CLEANUP_STOP_DEADLINE.as_secs()),
                    })
                }
            }
        }
        let mut reset = vec!["systemctl", "reset-failed"];
        reset.extend(units.iter().map(String::as_str));
        // Fails when no unit is in the failed state; that is fine.
        let _ = target.exec(&reset).await;
    }
    let mut rm: Vec<&str> = vec!["rm", "-f", "--"];
    rm.extend(files.iter().map(String::as_str));
    if rm.len() > 3 {
        target.exec_ok(&rm).await?;
    }
    Ok(())
}
