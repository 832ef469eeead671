//! One running VM: its QEMU process, run directory, QMP monitor, guest agent, stream ports and
//! clock. What [`crate::target::Target`] does on a VM goes through here.
//!
//! Nothing outlives the lab: QEMU dies with the lab process (see `qemu`); the qcow2 overlay
//! is unlinked as soon as QEMU has opened it, so even a SIGKILLed lab leaves no disk behind;
//! the run directory (sockets, console log) is removed at teardown, and the run directories of
//! dead labs are swept by the next VM boot ([`sweep`]).

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::Stream;
use tokio::io::AsyncBufReadExt;

use super::agent::{Agent, AgentError, Finished};
use super::image::{vm_root, VmImage};
use super::qemu::{self, Accel, MachineSpec, Qmp, QmpError};
use crate::observe::JournalEntry;
use crate::target::reaper;

/// Virtual CPUs and memory of a target VM: as many CPUs as the host has cores (multi-threaded
/// TCG runs one host thread each), memory as a container target's limit plus the kernel's.
const MEMORY_MIB: u32 = 768;
/// Ports for followed streams (journal followers) per VM.
const STREAM_PORTS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error("{operation}: {source}\n  fix: {fix}")]
    Io {
        operation: String,
        fix: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{operation}: {detail}\n  fix: {fix}")]
    Failed { operation: String, detail: String, fix: &'static str },
    #[error(transparent)]
    Qmp(#[from] QmpError),
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error("VM {name}: QEMU exited ({status}) {when}\n  QEMU said: {stderr}\n  console (last lines):\n{console}")]
    Died { name: String, status: String, when: String, stderr: String, console: String },
    #[error("VM {name}: all {count} stream ports are in use (one per journal follower)")]
    NoStreamPort { name: String, count: usize },
}

const FIX_QEMU: &str = "run `unitlab doctor --fixture vm`: it checks qemu-system-x86_64, qemu-img and KVM";

/// VMs of this process still running, (QEMU pid, run directory): for the Ctrl-C path.
static LIVE: Mutex<Vec<(u32, PathBuf)>> = Mutex::new(Vec::new());

/// Kill every VM this process started (not kept ones) and remove their run directories.
pub fn stop_all_live() {
    let live = std::mem::take(&mut *LIVE.lock().unwrap_or_else(|p| p.into_inner()));
    for (pid, dir) in live {
        // SAFETY: kill(2) of a QEMU this process started and has not reaped (so the pid is
        // still ours).
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Where the run directories of VMs live.
fn runs_dir() -> PathBuf {
    vm_root().join("run")
}

/// Remove the run directories whose lab process is gone (a lab killed with SIGKILL cannot
/// remove its own; its QEMU died with it).
pub fn sweep() {
    let Ok(entries) = std::fs::read_dir(runs_dir()) else { return };
    for entry in entries.flatten() {
        let owner = std::fs::read_to_string(entry.path().join("owner")).unwrap_or_default();
        let mut parts = owner.split_whitespace().map(|p| p.parse::<u64>().ok());
        let alive = match (parts.next().flatten(), parts.next().flatten()) {
            (Some(pid), Some(ticks)) => reaper::process_start_ticks(pid as u32) == Some(ticks),
            // Being written right now by a booting lab, or not one of ours: left alone unless
            // old.
            _ => entry.metadata().and_then(|m| m.modified()).map(|t| t.elapsed().unwrap_or_default() < Duration::from_secs(60)).unwrap_or(true),
        };
        if !alive {
            tracing::info!(dir = %entry.path().display(), "removing the run directory of a VM whose lab is gone");
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The guest's CLOCK_MONOTONIC against the lab's: journal timestamps from the guest are moved
/// onto the lab's clock, so timelines mix the lab's own events (faults, probes) and the
/// guest's journal as they do with a container (which shares the host's clock). A stopped VM's
/// clock stands still, so each `pause` opens a new segment with a larger offset.
#[derive(Debug, Default)]
struct Clock {
    /// (guest time from which it applies, offset to add), in microseconds, ascending.
    segments: Vec<(u64, i64)>,
    stopped_at_host: Option<u64>,
}

impl Clock {
    fn to_host(&self, guest_usec: u64) -> u64 {
        let offset = self.segments.iter().rev().find(|(from, _)| guest_usec >= *from).or(self.segments.first()).map(|s| s.1).unwrap_or(0);
        (guest_usec as i64 + offset).max(0) as u64
    }
}

/// A running VM.
pub struct Machine {
    name: String,
    dir: PathBuf,
    keep: bool,
    accel: Accel,
    child: Mutex<Option<Child>>,
    qmp: Qmp,
    agent: Arc<Agent>,
    console: PathBuf,
    streams: Arc<Mutex<Vec<bool>>>,
    clock: Arc<Mutex<Clock>>,
}

fn io(operation: impl Into<String>, fix: &'static str) -> impl FnOnce(std::io::Error) -> VmError {
    let operation = operation.into();
    move |source| VmError::Io { operation, fix, source }
}

fn stream_name(i: usize) -> String {
    format!("unitlab.stream.{i}")
}

/// The last `n` lines of a file, indented, for error messages.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|l| format!("    {}", l.trim_end())).collect::<Vec<_>>().join("\n")
}

impl Machine {
    /// Start QEMU on an overlay of `image` and wait until the guest agent answers (the rest of
    /// the boot, `is-system-running`, is the caller's, through [`Machine::exec`]).
    pub async fn start(name: &str, image: &VmImage, manager_drop_in: Option<&str>, keep: bool, deadline: Instant) -> Result<Machine, VmError> {
        sweep();
        let kernel = image.kernel.clone();
        // The first VM of the process may probe KVM (seconds, blocking).
        let support = tokio::task::spawn_blocking(move || qemu::host_support(Some(&kernel))).await.expect("the KVM probe does not panic");
        if let Err(e) = &support.qemu {
            return Err(VmError::Failed { operation: "find QEMU".into(), detail: e.clone(), fix: "install it: `apt-get install qemu-system-x86`" });
        }
        let dir = runs_dir().join(name);
        std::fs::create_dir_all(&dir).map_err(io(format!("create {}", dir.display()), "check that /var/tmp (or UNITLAB_VM_DIR) is writable"))?;
        let me = reaper::Owner::current();
        std::fs::write(dir.join("owner"), format!("{} {}\n", me.pid, me.start_ticks)).map_err(io("write the VM owner file", "check the disk"))?;
        let overlay = dir.join("overlay.qcow2");
        let made = tokio::process::Command::new(qemu::QEMU_IMG)
            .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
            .arg(&image.rootfs)
            .arg(&overlay)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(io(format!("run {}", qemu::QEMU_IMG), "install it: `apt-get install qemu-utils`"))?;
        if !made.status.success() {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(VmError::Failed {
                operation: format!("create the overlay of {}", image.rootfs.display()),
                detail: String::from_utf8_lossy(&made.stderr).trim().to_string(),
                fix: FIX_QEMU,
            });
        }
        let spec = MachineSpec {
            name: name.to_string(),
            accel: support.accel,
            cpus: std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(2).clamp(1, 4),
            memory_mib: MEMORY_MIB,
            kernel: image.kernel.clone(),
            initrd: image.initrd.clone(),
            append: qemu::kernel_append(manager_drop_in),
            overlay: overlay.clone(),
            console: dir.join("console.log"),
            qmp: dir.join("qmp.sock"),
            agent: dir.join("agent.sock"),
            streams: (0..STREAM_PORTS).map(|i| (stream_name(i), dir.join(format!("stream{i}.sock")))).collect(),
        };
        let stderr = std::fs::File::create(dir.join("qemu.log")).map_err(io("create the QEMU log", "check the disk"))?;
        let mut command = Command::new(qemu::QEMU);
        command.args(qemu::command_line(&spec)).stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr);
        tracing::info!(name, accel = support.accel.name(), args = ?qemu::command_line(&spec), "starting VM");
        let child = if keep {
            use std::os::unix::process::CommandExt;
            // A kept VM must outlive the lab: no death signal, its own session.
            command.process_group(0);
            command.spawn()
        } else {
            qemu::spawn_tethered(command)
        };
        let child = match child {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(io(format!("start {}", qemu::QEMU), "install it: `apt-get install qemu-system-x86`")(e));
            }
        };
        let machine_parts = (child, dir.clone(), spec.console.clone());
        let (child, dir, console) = machine_parts;
        // From here the guard removes everything if the boot fails.
        let mut guard = StartGuard { child: Some(child), dir: dir.clone() };
        let qmp = match Qmp::connect(&spec.qmp, deadline).await {
            Ok(q) => q,
            Err(e) => return Err(guard.died(name, &console, "before its monitor answered").unwrap_or(VmError::Qmp(e))),
        };
        // QEMU opened the overlay before it serves QMP: the file's name is no longer needed,
        // and without a name nothing is left on disk when QEMU dies, however it dies.
        if !keep {
            let _ = std::fs::remove_file(&overlay);
        }
        let agent = Arc::new(Agent::new(spec.agent.clone()));
        let ready = tokio::select! {
            r = agent.wait_ready(deadline) => r,
            status = guard.exited() => {
                return Err(guard.died(name, &console, "while booting").unwrap_or_else(|| VmError::Failed {
                    operation: format!("boot VM {name}"), detail: format!("QEMU exited: {status}"), fix: FIX_QEMU }));
            }
        };
        if let Err(e) = ready {
            return Err(match guard.died(name, &console, "while booting") {
                Some(died) => died,
                None => VmError::Failed {
                    operation: format!("boot VM {name} ({} acceleration)", support.accel.name()),
                    detail: format!("{e}; console (last lines):\n{}", tail(&console, 15)),
                    fix: FIX_QEMU,
                },
            });
        }
        let child = guard.child.take();
        std::mem::forget(guard);
        let machine = Machine {
            name: name.to_string(),
            dir,
            keep,
            accel: support.accel,
            child: Mutex::new(child),
            qmp,
            agent,
            console,
            streams: Arc::new(Mutex::new(vec![false; STREAM_PORTS])),
            clock: Arc::new(Mutex::new(Clock::default())),
        };
        if !keep {
            if let Some(pid) = machine.pid() {
                LIVE.lock().unwrap_or_else(|p| p.into_inner()).push((pid, machine.dir.clone()));
            }
        }
        machine.measure_clock().await?;
        Ok(machine)
    }

    /// Offset between the guest's monotonic clock and the lab's: the guest reads its clock
    /// inside one agent round trip, taken as its midpoint; of three tries the shortest round
    /// trip counts (the error is at most half of it).
    async fn measure_clock(&self) -> Result<(), VmError> {
        let mut best: Option<(u64, i64)> = None;
        for _ in 0..3 {
            let before = crate::observe::monotonic_now_usec();
            let out = self.agent.run(&["head", "-n", "3", "/proc/timer_list"], None).await?;
            let after = crate::observe::monotonic_now_usec();
            let text = String::from_utf8_lossy(&out.stdout);
            let guest_ns: Option<u64> = text.lines().find_map(|l| l.strip_prefix("now at ")?.split_whitespace().next()?.parse().ok());
            let Some(guest_ns) = guest_ns else {
                return Err(VmError::Failed {
                    operation: format!("read the clock of VM {}", self.name),
                    detail: format!("no \"now at\" line in /proc/timer_list: {}", text.trim()),
                    fix: FIX_QEMU,
                });
            };
            let rtt = after - before;
            let offset = (before + rtt / 2) as i64 - (guest_ns / 1000) as i64;
            if best.is_none_or(|(r, _)| rtt < r) {
                best = Some((rtt, offset));
            }
        }
        let (rtt, offset) = best.expect("three samples");
        tracing::debug!(vm = %self.name, offset_usec = offset, rtt_usec = rtt, "guest clock measured");
        self.clock.lock().unwrap_or_else(|p| p.into_inner()).segments = vec![(0, offset)];
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn accel(&self) -> Accel {
        self.accel
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The serial console's log (kernel and systemd's boot messages).
    pub fn console(&self) -> &Path {
        &self.console
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(Child::id)
    }

    /// Run a command in the guest.
    pub async fn exec(&self, argv: &[&str], stdin: Option<&[u8]>) -> Result<Finished, VmError> {
        Ok(self.agent.run(argv, stdin).await?)
    }

    /// Move a journal entry's monotonic timestamp onto the lab's clock.
    pub fn shift(&self, entry: &mut JournalEntry) {
        shift_entry(&self.clock, entry);
    }

    /// Whether QEMU still runs, and whether the guest is stopped.
    pub async fn status(&self) -> Result<VmStatus, VmError> {
        if let Some(code) = self.exited() {
            return Ok(VmStatus::Exited(code));
        }
        let status = self.qmp.execute("query-status").await?;
        Ok(match status.get("status").and_then(|s| s.as_str()) {
            Some("running") => VmStatus::Running,
            Some("paused") => VmStatus::Paused,
            Some(other) => VmStatus::Other(other.to_string()),
            None => VmStatus::Other(status.to_string()),
        })
    }

    fn exited(&self) -> Option<i64> {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        match child.as_mut().map(Child::try_wait) {
            None => Some(-1),
            Some(Ok(Some(status))) => Some(status.code().map(i64::from).unwrap_or(-1)),
            Some(_) => None,
        }
    }

    /// Stop the VM's CPUs (QMP `stop`): every process of the guest, systemd included, and its
    /// clock stand still.
    pub async fn pause(&self) -> Result<(), VmError> {
        self.qmp.execute("stop").await?;
        self.clock.lock().unwrap_or_else(|p| p.into_inner()).stopped_at_host = Some(crate::observe::monotonic_now_usec());
        Ok(())
    }

    /// Resume a stopped VM (QMP `cont`); the guest's clock resumes where it stopped, so later
    /// timestamps get the stopped time added.
    pub async fn unpause(&self) -> Result<(), VmError> {
        self.qmp.execute("cont").await?;
        let now = crate::observe::monotonic_now_usec();
        let mut clock = self.clock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(stopped) = clock.stopped_at_host.take() {
            let offset = clock.segments.last().map(|s| s.1).unwrap_or(0);
            let guest_at_stop = (stopped as i64 - offset).max(0) as u64;
            clock.segments.push((guest_at_stop, offset + (now - stopped) as i64));
        }
        Ok(())
    }

    /// Follow the journal (`journalctl -f -o json --no-tail ARGS`) through a stream port.
    pub async fn follow_journal(&self, args: &[&str]) -> Result<Pin<Box<dyn Stream<Item = Result<JournalEntry, VmError>> + Send>>, VmError> {
        let index = {
            let mut ports = self.streams.lock().unwrap_or_else(|p| p.into_inner());
            let Some(i) = ports.iter().position(|used| !used) else {
                return Err(VmError::NoStreamPort { name: self.name.clone(), count: STREAM_PORTS });
            };
            ports[i] = true;
            i
        };
        let mut port = PortLease { ports: self.streams.clone(), index, pid: None, agent: self.agent.clone() };
        let socket = self.dir.join(format!("stream{index}.sock"));
        let stream = tokio::net::UnixStream::connect(&socket).await.map_err(io(format!("connect to {}", socket.display()), FIX_QEMU))?;
        let mark = format!("unitlab-stream-{}-{}", reaper::run_id(), crate::observe::monotonic_now_usec());
        let name = stream_name(index);
        let mut argv: Vec<&str> = vec!["/usr/local/sbin/unitlab-stream", &name, &mark, "journalctl", "--no-pager", "-o", "json", "-f", "--no-tail"];
        argv.extend_from_slice(args);
        port.pid = Some(self.agent.spawn(&argv, None, false).await?);
        let lines = tokio::io::BufReader::new(stream).lines();
        let clock = self.clock.clone();
        let vm = self.name.clone();
        let state = (lines, port, false);
        let entries = futures_util::stream::unfold(state, move |(mut lines, port, mut started)| {
            let clock = clock.clone();
            let vm = vm.clone();
            let mark = mark.clone();
            async move {
                loop {
                    let line = match lines.next_line().await {
                        Ok(Some(line)) => line,
                        Ok(None) => return None,
                        Err(e) => return Some((Err(io(format!("follow the journal of {vm}"), FIX_QEMU)(e)), (lines, port, started))),
                    };
                    if !started {
                        // Whatever an earlier follower on this port left in flight comes first.
                        started = line.trim() == mark;
                        continue;
                    }
                    let text = line.trim();
                    if text.is_empty() {
                        continue;
                    }
                    let item = match serde_json::from_str::<JournalEntry>(text) {
                        Ok(mut entry) => {
                            shift_entry(&clock, &mut entry);
                            Ok(entry)
                        }
                        Err(e) => Err(VmError::Failed { operation: format!("parse a journal entry of {vm}"), detail: format!("{e}: {text}"), fix: FIX_QEMU }),
                    };
                    return Some((item, (lines, port, started)));
                }
            }
        });
        Ok(Box::pin(entries))
    }

    /// How to reach a kept VM.
    pub fn enter_hint(&self) -> String {
        format!(
            "VM {} kept (QEMU pid {}): its console is {}, its guest agent socket {}, its QMP socket {}; stop it with `kill {}`, then remove {}",
            self.name,
            self.pid().map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
            self.console.display(),
            self.dir.join("agent.sock").display(),
            self.dir.join("qmp.sock").display(),
            self.pid().map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
            self.dir.display()
        )
    }

    pub fn is_kept(&self) -> bool {
        self.keep
    }

    /// Kill QEMU and remove the run directory (a kept VM is left running).
    pub fn shutdown(&self) {
        if self.keep {
            return;
        }
        if let Some(mut child) = self.child.lock().unwrap_or_else(|p| p.into_inner()).take() {
            LIVE.lock().unwrap_or_else(|p| p.into_inner()).retain(|(pid, _)| *pid != child.id());
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn shift_entry(clock: &Mutex<Clock>, entry: &mut JournalEntry) {
    let Some(guest) = entry.get("__MONOTONIC_TIMESTAMP").and_then(|v| v.as_str()).and_then(|s| s.parse::<u64>().ok()) else { return };
    let host = clock.lock().unwrap_or_else(|p| p.into_inner()).to_host(guest);
    entry.insert("__MONOTONIC_TIMESTAMP".into(), serde_json::Value::String(host.to_string()));
}

/// What QEMU reports of a VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmStatus {
    Running,
    Paused,
    Exited(i64),
    Other(String),
}

/// A stream port in use; returned (and the guest command killed) when the stream is dropped.
struct PortLease {
    ports: Arc<Mutex<Vec<bool>>>,
    index: usize,
    pid: Option<i64>,
    agent: Arc<Agent>,
}

impl Drop for PortLease {
    fn drop(&mut self) {
        let ports = self.ports.clone();
        let index = self.index;
        let release = move || ports.lock().unwrap_or_else(|p| p.into_inner())[index] = false;
        match (self.pid, tokio::runtime::Handle::try_current()) {
            (Some(pid), Ok(handle)) => {
                let agent = self.agent.clone();
                handle.spawn(async move {
                    let pid = pid.to_string();
                    let _ = agent.run(&["kill", &pid], None).await;
                    release();
                });
            }
            // No runtime: the VM is going away with it.
            _ => release(),
        }
    }
}

/// Kills a half-started VM and removes its directory unless disarmed.
struct StartGuard {
    child: Option<Child>,
    dir: PathBuf,
}

impl StartGuard {
    /// Resolves when QEMU exits (polled: std's Child has no async wait).
    async fn exited(&mut self) -> String {
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return status.to_string();
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// If QEMU has exited, the error that says so with its own words and the console's.
    fn died(&mut self, name: &str, console: &Path, when: &str) -> Option<VmError> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        Some(VmError::Died {
            name: name.to_string(),
            status: status.to_string(),
            when: when.to_string(),
            stderr: std::fs::read_to_string(self.dir.join("qemu.log")).unwrap_or_default().trim().to_string(),
            console: tail(console, 15),
        })
    }
}

impl Drop for StartGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pause_shifts_only_what_the_guest_logged_after_it() {
        let mut clock = Clock { segments: vec![(0, 1_000_000)], stopped_at_host: None };
        assert_eq!(clock.to_host(500), 1_000_500);
        // Stopped at guest time 2 s for 3 s.
        clock.segments.push((2_000_000, 4_000_000));
        assert_eq!(clock.to_host(1_999_999), 2_999_999, "logged before the stop");
        assert_eq!(clock.to_host(2_000_001), 6_000_001, "logged after: the stopped time added");
    }

    #[test]
    fn journal_entries_move_onto_the_lab_clock() {
        let clock = Mutex::new(Clock { segments: vec![(0, 10)], stopped_at_host: None });
        let mut e = JournalEntry::new();
        e.insert("__MONOTONIC_TIMESTAMP".into(), json!("5"));
        shift_entry(&clock, &mut e);
        assert_eq!(e["__MONOTONIC_TIMESTAMP"], json!("15"));
    }
}
