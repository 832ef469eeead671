//! Ownership and clean-up of every container the lab starts: labels, the per-process registry
//! of live targets, the dead man's switch inside each target, and the orphan sweep.
//!
//! Three independent mechanisms, so that no exit path leaks a container:
//! 1. a dropped or torn-down target removes its container (see `target`), and Ctrl-C removes
//!    every container still in this process's registry ([`remove_all_live`]);
//! 2. a *tether* runs inside each target: a shell that reads heartbeats from this process on
//!    stdin. (Until it is attached, a timer in the image powers an untethered target off 30 s
//!    after boot, so a lab killed between start and tether leaks nothing either.) When the process dies in any way (even SIGKILL) the engine closes that stdin, the
//!    tether powers systemd off, and the engine's auto-remove deletes the container. If the
//!    connection were kept open by a wedged client, the missing heartbeat does the same within
//!    [`TETHER_TIMEOUT`];
//! 3. `unitlab clean` removes containers whose owning process is gone, and only those.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};
use bollard::Docker;
use tokio::io::AsyncWriteExt;

use crate::target::engine::{Engine, EngineError};

/// Label key carried by every lab container; its value is the run id.
pub const LABEL_RUN: &str = "unitlab";
pub const LABEL_OWNER_PID: &str = "unitlab.owner.pid";
pub const LABEL_OWNER_START: &str = "unitlab.owner.start";
pub const LABEL_OWNER_HOST: &str = "unitlab.owner.host";
pub const LABEL_OWNER_CMD: &str = "unitlab.owner.cmd";
pub const LABEL_KEEP: &str = "unitlab.keep";

/// Interval of the heartbeat the lab writes to each tether.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);
/// A tether that hears nothing for this long powers its target off. With the removal that
/// follows this stays inside the 60 s promise even when the engine never reports EOF.
pub const TETHER_TIMEOUT: Duration = Duration::from_secs(40);

/// Who owns a container: enough to tell later whether that process still lives. The start
/// time (clock ticks since boot, from /proc) guards against PID reuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    pub start_ticks: u64,
    pub host: String,
    pub cmd: String,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), or None
/// when no such process exists.
pub fn process_start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

impl Owner {
    pub fn current() -> Owner {
        let pid = std::process::id();
        let cmd: Vec<String> = std::env::args().collect();
        let mut cmd = cmd.join(" ");
        cmd.truncate(200);
        Owner { pid, start_ticks: process_start_ticks(pid).unwrap_or(0), host: hostname(), cmd }
    }

    fn from_labels(labels: &HashMap<String, String>) -> Option<Owner> {
        Some(Owner {
            pid: labels.get(LABEL_OWNER_PID)?.parse().ok()?,
            start_ticks: labels.get(LABEL_OWNER_START)?.parse().ok()?,
            host: labels.get(LABEL_OWNER_HOST)?.clone(),
            cmd: labels.get(LABEL_OWNER_CMD).cloned().unwrap_or_default(),
        })
    }

    /// Whether the owner still runs. Only answerable on the owner's own host; a container
    /// owned from another host (a shared remote engine) is assumed alive.
    pub fn is_alive(&self) -> bool {
        if self.host != hostname() {
            return true;
        }
        process_start_ticks(self.pid) == Some(self.start_ticks)
    }
}

/// The run id of this process: one value for every target it starts.
pub fn run_id() -> &'static str {
    static RUN_ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    RUN_ID.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("{:x}-{}", (nanos as u64) & 0xffff_ffff_ffff, std::process::id())
    })
}

/// Labels for a new container of this process.
pub fn labels(keep: bool) -> HashMap<String, String> {
    let owner = Owner::current();
    HashMap::from([
        (LABEL_RUN.to_string(), run_id().to_string()),
        (LABEL_OWNER_PID.to_string(), owner.pid.to_string()),
        (LABEL_OWNER_START.to_string(), owner.start_ticks.to_string()),
        (LABEL_OWNER_HOST.to_string(), owner.host),
        (LABEL_OWNER_CMD.to_string(), owner.cmd),
        (LABEL_KEEP.to_string(), keep.to_string()),
    ])
}

/// Containers started by this process and not yet removed, so that Ctrl-C can remove them.
static LIVE: Mutex<BTreeMap<String, ()>> = Mutex::new(BTreeMap::new());

pub fn register(id: &str) {
    LIVE.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_string(), ());
}

pub fn unregister(id: &str) {
    LIVE.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
}

pub fn live_ids() -> Vec<String> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect()
}

/// Force-remove a container; one that is already gone (or being auto-removed) is not an error.
pub async fn remove_container(docker: &Docker, id: &str) -> Result<(), EngineError> {
    tracing::info!(id = %id, "removing lab container");
    let opts = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
    match docker.remove_container(id, Some(opts)).await {
        Ok(()) => {}
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404 | 409, .. }) => {}
        Err(e) => return Err(EngineError::api(format!("remove container {id}"), e)),
    }
    unregister(id);
    Ok(())
}

/// Remove every container this process still owns (the Ctrl-C path). Returns how many.
pub async fn remove_all_live(docker: &Docker) -> usize {
    let ids = live_ids();
    let n = ids.len();
    futures_util::future::join_all(ids.iter().map(|id| remove_container(docker, id))).await;
    n
}

/// Remove a container from synchronous code (a `Drop`), whatever runtime is or is not running:
/// a private thread with its own runtime and connection, so this never deadlocks a
/// current-thread runtime.
pub fn remove_container_blocking(id: String) {
    let handle = std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(_) => return,
        };
        rt.block_on(async {
            if let Ok(docker) = Docker::connect_with_local_defaults() {
                if let Ok(Ok(docker)) =
                    tokio::time::timeout(Duration::from_secs(5), docker.negotiate_version()).await
                {
                    let _ = tokio::time::timeout(Duration::from_secs(20), remove_container(&docker, &id)).await;
                }
            }
        });
    });
    let _ = handle.join();
}

/// Test-only: seconds after boot at which the image's dead man's timer powers off a target no
/// lab tethered (the image says 30). The lifecycle test that SIGKILLs the lab before the tether
/// attaches sets it, so that it proves the timer acts without waiting half a minute for it
/// (issue 14); nothing else should. Bounded below so that a normal boot, which tethers within
/// milliseconds of the container's start, cannot be powered off by it.
pub const DEADMAN_ENV: &str = "UNITLAB_TEST_DEADMAN_SEC";
/// Where the shortened timer goes: a drop-in of the image's timer, put in before the start.
pub const DEADMAN_DROP_IN: &str = "/etc/systemd/system/unitlab-deadman.timer.d/unitlab-test.conf";
const DEADMAN_SECONDS: std::ops::RangeInclusive<u64> = 3..=30;

/// The drop-in for [`DEADMAN_ENV`]'s value, if it is set; an error says what is wrong with it.
pub fn deadman_drop_in(value: Option<&str>) -> Result<Option<String>, String> {
    let Some(value) = value else { return Ok(None) };
    let seconds: u64 = value.trim().parse().map_err(|_| format!("{DEADMAN_ENV}={value:?} is not a whole number of seconds"))?;
    if !DEADMAN_SECONDS.contains(&seconds) {
        return Err(format!(
            "{DEADMAN_ENV}={seconds} is outside {}..={} s (below that a loaded machine could power a target off before its tether attaches)",
            DEADMAN_SECONDS.start(),
            DEADMAN_SECONDS.end()
        ));
    }
    // The empty assignment clears the image's OnActiveSec=30s instead of adding a second one.
    Ok(Some(format!("[Timer]\nOnActiveSec=\nOnActiveSec={seconds}s\n")))
}

/// The tether script. bash (Essential in Debian) because dash's `read` has no timeout.
/// SIGRTMIN+14 asks systemd for an immediate poweroff: PID 1 exits and the container stops.
/// The marker file tells the image's boot-time dead man's timer that a lab holds the target.
pub const TETHERED_MARKER: &str = "/run/unitlab/tethered";

/// When the lab is gone, every other process of the target is killed (`kill -9 -1` spares only
/// the tether itself and PID 1) and systemd is asked for an immediate poweroff, again and again
/// until PID 1 exits: the immediate poweroff still asks the remaining processes to stop and
/// waits for them, which took ~10 s with a hung or frozen service, and a unit with Restart=
/// would be started again in between; with nothing left the container is gone in well under a
/// second. Repeating also covers PID 1 ignoring a signal it has no handler for yet (the lab
/// killed right after attaching the tether, while systemd still starts up). When PID 1 exits
/// the container stops and takes the loop with it.
///
/// The loop starts no process (it waits with `read -t` on a FIFO of its own, not `sleep`), and
/// the tether runs as `@unitlab-tether` ([`TETHER_ARGV0`]): systemd-shutdown neither signals
/// nor waits for root processes whose argv[0] begins with `@` (its rule for storage daemons
/// that must outlive it). Without that, systemd-shutdown killed the tether, which is not its
/// child, and then noticed it gone only at its next wake-up: measured here, 10.2–10.5 s to
/// container exit in 3 of 6 SIGKILLs of the lab; with it, 0.21–0.34 s in 8 of 8.
fn tether_script() -> String {
    format!(
        "mkdir -p /run/unitlab && echo $$ > {TETHERED_MARKER}; while read -r -t {} _; do :; done; \
         mkfifo /run/unitlab/tether-tick 2>/dev/null; exec 3<>/run/unitlab/tether-tick; \
         while kill -9 -1; kill -s SIGRTMIN+14 1; do read -r -t 0.2 -u 3 _; done",
        TETHER_TIMEOUT.as_secs()
    )
}

/// The tether's argv[0]: the `@` keeps systemd-shutdown's hands off it (see [`tether_script`]).
pub const TETHER_ARGV0: &str = "@unitlab-tether";

/// The exec's command line: bash re-executes itself under [`TETHER_ARGV0`] (the engine sets
/// argv[0] to the program's path), with the script as its `-c` argument.
fn tether_command() -> Vec<String> {
    vec![
        "/bin/bash".to_string(),
        "-c".to_string(),
        format!("exec -a {TETHER_ARGV0} /bin/bash -c \"$1\""),
        TETHER_ARGV0.to_string(),
        tether_script(),
    ]
}

/// Start the dead man's switch inside a booted target. The returned task owns the stdin of the
/// tether; aborting it (or this process dying) releases the target.
pub async fn start_tether(engine: &Engine, id: &str) -> Result<tokio::task::JoinHandle<()>, EngineError> {
    let docker = engine.docker();
    let exec = docker
        .create_exec(
            id,
            CreateExecOptions {
                attach_stdin: Some(true),
                attach_stdout: Some(false),
                attach_stderr: Some(false),
                cmd: Some(tether_command()),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| EngineError::api(format!("create tether exec in {id}"), e))?;
    let started = docker
        .start_exec(&exec.id, None::<StartExecOptions>)
        .await
        .map_err(|e| EngineError::api(format!("start tether exec in {id}"), e))?;
    let StartExecResults::Attached { mut input, output } = started else {
        return Err(EngineError::api(
            format!("attach tether in {id}"),
            bollard::errors::Error::DockerStreamError { error: "exec started detached".into() },
        ));
    };
    Ok(tokio::spawn(async move {
        // Keep the output half alive: dropping it would close the hijacked connection.
        let _output = output;
        loop {
            if input.write_all(b"\n").await.is_err() || input.flush().await.is_err() {
                return;
            }
            tokio::time::sleep(HEARTBEAT_EVERY).await;
        }
    }))
}

/// The hidden command line of the pause guard (`unitlab __pause-guard CONTAINER`).
pub const PAUSE_GUARD_COMMAND: &str = "__pause-guard";
/// What the lab writes to the guard when it ended the pause itself.
const GUARD_RELEASE: &[u8] = b"released\n";

/// Why a pause guard could not be started.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error(
        "the unitlab binary was not found beside {exe}, so a pause could not be guarded against the lab's death\n  \
         fix: build it (`cargo build`), or set UNITLAB_BIN to its path"
    )]
    NoBinary { exe: PathBuf },
    #[error("start the pause guard {bin}: {source}")]
    Spawn {
        bin: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The `unitlab` binary: `UNITLAB_BIN`, this process when it is `unitlab`, or the one beside
/// this executable (cargo puts workspace binaries together, and test binaries one level down
/// in `deps/`).
fn unitlab_binary() -> Result<PathBuf, GuardError> {
    if let Some(p) = std::env::var_os("UNITLAB_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().unwrap_or_default();
    if exe.file_name().is_some_and(|n| n == "unitlab") {
        return Ok(exe);
    }
    exe.parent()
        .into_iter()
        .flat_map(|dir| [dir.join("unitlab"), dir.parent().map(|p| p.join("unitlab")).unwrap_or_default()])
        .find(|p| p.is_file())
        .ok_or(GuardError::NoBinary { exe })
}

/// A process outside the lab that thaws and removes a paused target if the lab dies while the
/// target is frozen. A frozen target cannot act on its own tether (every process in it, the
/// tether included, is stopped), so without this a lab killed during a `pause` step leaked a
/// paused container forever. The guard holds a pipe from the lab: end of file without the
/// release word means the lab died. It runs in its own session, so signals aimed at the lab's
/// terminal or process group do not reach it.
pub struct PauseGuard {
    stdin: Option<std::process::ChildStdin>,
    child: std::process::Child,
}

impl PauseGuard {
    pub fn start(container_id: &str) -> Result<PauseGuard, GuardError> {
        use std::os::unix::process::CommandExt;
        let bin = unitlab_binary()?;
        let mut cmd = std::process::Command::new(&bin);
        cmd.args([PAUSE_GUARD_COMMAND, container_id])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // SAFETY: setsid is async-signal-safe and touches nothing of the parent's memory.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|source| GuardError::Spawn { bin, source })?;
        Ok(PauseGuard { stdin: child.stdin.take(), child })
    }
}

impl Drop for PauseGuard {
    /// The lab is alive to drop the guard, so it ended the pause (or removes the target)
    /// itself: tell the guard to stand down, and reap it.
    fn drop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            use std::io::Write;
            let _ = stdin.write_all(GUARD_RELEASE);
        }
        let _ = self.child.wait();
    }
}

/// The guard's side (`unitlab __pause-guard CONTAINER`): wait for the lab to release it; if
/// its pipe closes without a release, the lab died with the target frozen: thaw it (its
/// tether then sees the closed connection too) and remove it.
pub fn pause_guard_main(container_id: &str) -> i32 {
    use std::io::Read;
    let mut said = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut said);
    if said.ends_with(GUARD_RELEASE) {
        return 0;
    }
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return 3 };
    rt.block_on(async {
        let Ok(engine) = Engine::connect().await else { return 3 };
        let docker = engine.docker();
        let _ = docker.unpause_container(container_id).await;
        match remove_container(docker, container_id).await {
            Ok(()) => 0,
            Err(_) => 3,
        }
    })
}

/// A lab container seen by the sweep.
#[derive(Debug, Clone)]
pub struct LabContainer {
    pub id: String,
    pub name: String,
    pub image: String,
    pub state: String,
    pub run_id: String,
    pub owner: Option<Owner>,
    pub kept: bool,
}

impl LabContainer {
    /// An orphan is a lab container whose owning process is gone (kept targets included: they
    /// outlive their run on purpose, and `clean` is how they are removed).
    pub fn is_orphan(&self) -> bool {
        match &self.owner {
            Some(owner) => !owner.is_alive(),
            None => true,
        }
    }
}

/// Every container carrying the `unitlab` label key, running or not.
pub async fn list_lab_containers(engine: &Engine) -> Result<Vec<LabContainer>, EngineError> {
    let filters = HashMap::from([("label", vec![LABEL_RUN])]);
    let opts = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
    let list = engine
        .docker()
        .list_containers(Some(opts))
        .await
        .map_err(|e| EngineError::api("list lab containers", e))?;
    Ok(list
        .into_iter()
        .map(|c| {
            let labels = c.labels.unwrap_or_default();
            LabContainer {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .and_then(|n| n.first().cloned())
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_string(),
                image: c.image.unwrap_or_default(),
                state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                run_id: labels.get(LABEL_RUN).cloned().unwrap_or_default(),
                owner: Owner::from_labels(&labels),
                kept: labels.get(LABEL_KEEP).map(|v| v == "true").unwrap_or(false),
            }
        })
        .collect())
}

/// Remove orphaned lab containers (or, with `all`, every lab container). Containers without
/// the `unitlab` label are never touched. Returns the removed ones.
pub async fn clean(engine: &Engine, all: bool) -> Result<Vec<LabContainer>, EngineError> {
    let mut removed = Vec::new();
    for c in list_lab_containers(engine).await? {
        if all || c.is_orphan() {
            remove_container(engine.docker(), &c.id).await?;
            removed.push(c);
        }
    }
    Ok(removed)
}

/// Remove lab containers that were created but never started by a process that has since
/// died. A lab killed in the milliseconds between the engine's create and start calls leaves
/// such a container: it has no process, so neither the tether nor the boot timer can act, and
/// the engine's auto-remove only fires when a started container stops. Every boot runs this
/// (one list call), so such a leftover lives only until the next target is booted.
pub async fn sweep_stillborn(engine: &Engine) -> Result<usize, EngineError> {
    let mut removed = 0;
    for c in list_lab_containers(engine).await? {
        if c.state == "created" && c.is_orphan() {
            remove_container(engine.docker(), &c.id).await?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_test_deadman_setting_is_bounded_and_replaces_the_images_timer() {
        assert_eq!(super::deadman_drop_in(None), Ok(None));
        assert_eq!(super::deadman_drop_in(Some("5")).unwrap().unwrap(), "[Timer]\nOnActiveSec=\nOnActiveSec=5s\n");
        assert!(super::deadman_drop_in(Some("2")).unwrap_err().contains("outside 3..=30"));
        assert!(super::deadman_drop_in(Some("31")).unwrap_err().contains("outside"));
        assert!(super::deadman_drop_in(Some("5s")).unwrap_err().contains("whole number"));
    }

    use super::*;

    #[test]
    fn own_process_is_alive_and_a_reused_pid_is_not() {
        let me = Owner::current();
        assert!(me.start_ticks > 0);
        assert!(me.is_alive());
        let reused = Owner { start_ticks: me.start_ticks + 1, ..me.clone() };
        assert!(!reused.is_alive(), "same pid, other start time must count as dead");
    }

    #[test]
    fn owner_round_trips_through_labels() {
        let labels = labels(true);
        assert_eq!(Owner::from_labels(&labels), Some(Owner::current()));
        assert_eq!(labels[LABEL_RUN], run_id());
        assert_eq!(labels[LABEL_KEEP], "true");
    }

    #[test]
    fn container_without_owner_labels_is_an_orphan() {
        let c = LabContainer {
            id: "x".into(),
            name: "x".into(),
            image: "i".into(),
            state: "running".into(),
            run_id: "r".into(),
            owner: None,
            kept: false,
        };
        assert!(c.is_orphan());
    }
}
