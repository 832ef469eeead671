//! A target: a container whose PID 1 is a real systemd, booted from a lab image.
//!
//! Owns the whole life of one container: create (capability recipe, never `--privileged`),
//! boot-to-ready with a deadline, exec, file writes, unit properties, the journal (one-shot and
//! followed), and teardown. Every container is labelled and tethered (see `reaper`), so it is
//! removed on drop, on Ctrl-C, and even when the lab is killed.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::time::{Duration, Instant};

use bollard::models::{ContainerCreateBody, HostConfig, HostConfigCgroupnsModeEnum};
use bollard::query_parameters::{CreateContainerOptionsBuilder, StartContainerOptions};
use bollard::container::LogOutput;
use futures_util::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

use crate::target::engine::{AttachedExec, Engine, EngineError};
use crate::observe::JournalEntry;
use crate::systemd::ManagerSettings;
use crate::target::image::ImageRef;
use crate::target::limits::Limits;
use crate::target::channel::{Channel, ChannelClosed};
use crate::target::reaper;
use crate::target::vm::{Machine, VmStatus};
use crate::target::Fixture;

/// Default boot deadline: boots take about half a second here, so this only trips on a
/// genuinely broken image or engine.
pub const DEFAULT_BOOT_DEADLINE: Duration = Duration::from_secs(30);

/// Boot deadline on the VM fixture: a VM boots in 10-15 s under TCG on an idle machine of two
/// cores, but took 40 s here while other labs kept both cores busy; this only trips on a boot
/// that is stuck.
pub const VM_BOOT_DEADLINE: Duration = Duration::from_secs(180);

/// How long a boot waits for room on the host (see [`crate::target::capacity`]): targets of
/// finished scenarios go within seconds; only a host whose instances are held by something
/// else, or a run whose shared targets hold them all, waits this long.
const ROOM_PATIENCE: Duration = Duration::from_secs(180);

/// How often a pause is tried when the cgroup v1 freezer gives up (see [`Target::pause`]).
const PAUSE_ATTEMPTS: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(
        "target {name} ({image}) did not reach systemd state running within {seconds} s; last state: {last}\n  \
         fix: run `unitlab doctor`, or boot with --keep and inspect `docker exec -it {name} systemctl --failed`"
    )]
    BootTimeout { name: String, image: String, seconds: u64, last: String },
    #[error(
        "target {name} ({image}): systemd {version} needs a cgroup v2 hierarchy, and this host cannot give the container one of its own: {why}\n  \
         fix: run this suite on a cgroup v2 host (or one that mounts cgroup2 at /sys/fs/cgroup/unified, as Debian's hybrid layout does), \
         or on the VM fixture, which boots its own kernel; the other suites boot here"
    )]
    NoCgroupV2 { name: String, image: String, version: u32, why: String },
    #[error("target {name}: systemd came up {state}; failed units:\n{failed}")]
    Degraded { name: String, state: String, failed: String },
    #[error("target {name}: `{command}` exited {code}: {stderr}")]
    CommandFailed { name: String, command: String, code: i64, stderr: String },
    #[error("{0}\n  fix: unset it; it is a setting for the lab's own tests")]
    TestSetting(String),
    #[error("target {name}: could not parse {what}: {detail}")]
    Parse { name: String, what: String, detail: String },
    #[error("`{command}` got no answer: {source}\n  fix: the target or the lab's agent in it died while the command ran; look for what ended it in the run's timeline, or run `unitlab doctor`")]
    ChannelLost {
        command: String,
        #[source]
        source: ChannelClosed,
    },
    #[error(transparent)]
    Slot(#[from] crate::target::slots::SlotError),
    #[error(transparent)]
    NoRoom(#[from] crate::target::capacity::NoRoom),
    #[error(transparent)]
    Vm(#[from] crate::target::vm::VmError),
    #[error(transparent)]
    VmImage(#[from] crate::target::vm::VmImageError),
}

/// Output of a command run in a target.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub exit_code: i64,
    pub stdout: String,
    pub stderr: String,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }
}

/// A target's state as the engine reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetState {
    Running,
    Paused,
    Stopped { exit_code: i64 },
    Removed,
}

impl std::fmt::Display for TargetState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetState::Running => f.write_str("running"),
            TargetState::Paused => f.write_str("paused"),
            TargetState::Stopped { exit_code } => write!(f, "stopped (exit code {exit_code})"),
            TargetState::Removed => f.write_str("removed"),
        }
    }
}

/// How to boot a target.
#[derive(Debug, Clone)]
pub struct TargetOptions {
    /// Keep the container after the target is dropped (debugging): no auto-remove, no tether.
    pub keep: bool,
    pub boot_deadline: Duration,
    /// Short human word put in the container name (e.g. the scenario or test name).
    pub purpose: String,
    /// `[Manager]` settings in place before systemd starts (a system.conf drop-in written into
    /// the created container), so no `daemon-reexec` is needed.
    pub manager: ManagerSettings,
    /// Ceilings on the target's processes and memory (`[limits]` of a scenario).
    pub limits: Limits,
    /// Container (default) or VM.
    pub fixture: Fixture,
}

impl Default for TargetOptions {
    fn default() -> Self {
        TargetOptions {
            keep: false,
            boot_deadline: DEFAULT_BOOT_DEADLINE,
            purpose: "target".into(),
            manager: ManagerSettings::default(),
            limits: Limits::default(),
            fixture: Fixture::Container,
        }
    }
}

/// Where the lab's `[Manager]` drop-in goes.
pub const MANAGER_DROP_IN: &str = "/etc/systemd/system.conf.d/unitlab.conf";

/// A booted systemd target. Drop removes it (unless kept); prefer [`Target::teardown`] in async
/// code, which reports errors.
pub struct Target {
    engine: Engine,
    id: String,
    name: String,
    image: ImageRef,
    keep: bool,
    tether: Option<tokio::task::JoinHandle<()>>,
    systemd_version: String,
    boot_time: Duration,
    removed: bool,
    /// Set on the VM fixture: every operation then goes to the VM (see `target::vm`).
    vm: Option<Machine>,
    /// The command channel of a container target (see `target::channel`); `None` on a VM
    /// (its guest agent is the channel) and until the container runs.
    channel: Option<Channel>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("name", &self.name).field("image", &self.image.tag).finish()
    }
}

fn sanitize(word: &str) -> String {
    let s: String = word
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '-' })
        .take(40)
        .collect();
    if s.is_empty() { "target".into() } else { s }
}


/// Where the cgroup v2 start-up (see [`CGROUP2_INIT`]) says why it refused to boot systemd.
pub const CGROUP2_REFUSED: &str = "/run/unitlab/cgroup2-refused";

/// PID 1 of a target whose systemd needs cgroup v2 (258 and later dropped v1), before it
/// becomes systemd. On a cgroup v1 host the engine gives the container a tmpfs of v1
/// hierarchies, which such a systemd refuses. But where the host also mounts the unified
/// (cgroup2) hierarchy (Debian's hybrid layout, /sys/fs/cgroup/unified here), runc places the
/// container in a cgroup of its own there too (measured: /docker/<id> in the host's unified
/// tree), so inside the target's private cgroup namespace a cgroup2 mount begins at that
/// cgroup, and systemd runs on it exactly as on a v2 host. Sound, because:
/// - the mount shows only the container's own subtree (the namespace root), as on a v2 host;
/// - cgroup2 has no release_agent (v1's run-this-on-the-host hook);
/// - the resource controllers stay bound to the v1 hierarchies, where the engine's limits on
///   processes and memory keep holding: the target's processes never leave their v1 cgroups.
///   (The cost: systemd sees no controllers, so TasksMax=, MemoryMax= and the like are not
///   enforced per unit on such a target; the target's own limits are.)
/// If the mount begins at a cgroup shared with anything else (a process of another PID
/// namespace shows as pid 0 in cgroup.procs; a child cgroup is someone else's), the host has
/// no cgroup2 place for the container (a v1-only host) and mounting it would hand the target a
/// tree that is not its own: the start-up refuses, writes why to [`CGROUP2_REFUSED`] for the
/// lab to report, and lingers briefly (auto-removed when it exits; the lab removes it first).
pub const CGROUP2_INIT: &str = r#"set -u
refuse() { mkdir -p /run/unitlab; printf '%s\n' "$1" > /run/unitlab/cgroup2-refused; exec sleep 60; }
err=$(mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 /sys/fs/cgroup 2>&1) || refuse "mounting cgroup2 failed: $err"
if grep -qx 0 /sys/fs/cgroup/cgroup.procs || [ -n "$(find /sys/fs/cgroup -mindepth 1 -maxdepth 1 -type d)" ]; then
  umount /sys/fs/cgroup
  refuse "the container's cgroup2 root is shared with other processes: the engine did not place it in a cgroup v2 of its own (the host mounts no cgroup2 hierarchy)"
fi
exec /sbin/init
"#;

/// The target's PID 1: systemd, after the cgroup v2 start-up for the suites that need it.
pub fn init_command(suite: crate::systemd::Suite) -> Vec<String> {
    if suite.needs_cgroup_v2() {
        vec!["/bin/sh".into(), "-c".into(), CGROUP2_INIT.into()]
    } else {
        vec!["/sbin/init".into()]
    }
}

/// The capabilities a target keeps (all others dropped). Measured on 252 and 257 by dropping
/// each of the engine's defaults in turn: without DAC_OVERRIDE PID 1 exits at once; without
/// SETUID, SETGID or SETPCAP dbus (and for SETPCAP journald) fail and the target comes up
/// degraded; SYS_ADMIN mounts the cgroup hierarchies. CHOWN, FOWNER, KILL, NET_BIND_SERVICE
/// and SYS_CHROOT are not needed to boot but are what services need from PID 1 (User= with
/// StateDirectory=, stopping another user's processes, ports below 1024, RootDirectory=), so
/// they stay. Dropped: MKNOD, NET_RAW, AUDIT_WRITE, FSETID (boot, User= and sandboxed
/// units work without them). SETFCAP is what PrivateUsers= needs: its user namespace maps
/// uid 0, which since Linux 5.12 takes CAP_SETFCAP (without it Debian's hardened units fail
/// 217/USER). NET_ADMIN is for the `network` fault: nftables and tc inside the target refuse
/// without it (measured: `nft list ruleset` -> "Operation not permitted"); it acts on the
/// target's own network namespace only (its interfaces, routes and filters).
pub const CAPABILITIES: [&str; 12] = [
    "SYS_ADMIN", "DAC_OVERRIDE", "SETUID", "SETGID", "SETPCAP", "CHOWN", "FOWNER", "KILL", "NET_BIND_SERVICE", "SYS_CHROOT", "SETFCAP",
    "NET_ADMIN",
];

/// The container configuration that boots systemd without `--privileged`, as tightly as
/// systemd allows (see README "Targets" and tests/lab/isolation.rs, which tries the escapes):
///
/// - a private cgroup namespace on both cgroup versions, and on v1 a tmpfs at /sys/fs/cgroup
///   in place of the engine's read-only cgroup mounts: systemd mounts the hierarchies itself,
///   and inside the namespace they begin at the container's own cgroup. Nothing of the host's
///   tree is visible (no other container's freezer.state, no release_agent, which only the
///   hierarchy's real root has). Binding the host's /sys/fs/cgroup read-write, as targets did
///   before, exposed all of it;
/// - capabilities cut to [`CAPABILITIES`] (measured: see there), the engine's default
///   seccomp profile and AppArmor profile kept;
/// - limits on processes and memory ([`Limits`], overridable per scenario with `[limits]`).
fn host_config(keep: bool, limits: Limits) -> HostConfig {
    let tmpfs = HashMap::from([
        ("/run".to_string(), "rw,nosuid,nodev,mode=755".to_string()),
        ("/run/lock".to_string(), "rw,nosuid,nodev,noexec".to_string()),
        ("/tmp".to_string(), "rw,nosuid,nodev".to_string()),
        // Replaces the engine's read-only cgroup mounts (a mount the user gives wins over the
        // engine's own at the same place); systemd mounts what it needs under it.
        ("/sys/fs/cgroup".to_string(), "rw,nosuid,nodev,noexec,mode=755".to_string()),
    ]);
    HostConfig {
        cap_drop: Some(vec!["ALL".into()]),
        cap_add: Some(CAPABILITIES.iter().map(|c| c.to_string()).collect()),
        tmpfs: Some(tmpfs),
        cgroupns_mode: Some(HostConfigCgroupnsModeEnum::PRIVATE),
        pids_limit: Some(limits.pids),
        memory: Some(limits.memory),
        memory_swap: Some(limits.memory),
        // The engine deletes the container as soon as PID 1 exits: this is what turns the
        // tether's poweroff into a removal even when the lab process is gone.
        auto_remove: Some(!keep),
        // On a real host systemd raises this from the kernel's 10 to 512 early at boot, before
        // journald's socket exists; in a container /proc/sys is read-only and the bump fails
        // silently. With a queue of 10 datagrams PID 1's log lines are DROPPED whenever
        // journald falls behind (seen here under load: "Starting ..." and "Deactivated
        // successfully." lines missing), so targets get the value systemd would have set.
        sysctls: Some(HashMap::from([("net.unix.max_dgram_qlen".to_string(), "512".to_string())])),
        ..Default::default()
    }
}

impl Target {
    /// Create, start and wait for a target to be up. The deadline covers the whole boot, from
    /// the moment a host-wide boot slot is free (see [`crate::target::slots`]).
    pub async fn boot(engine: &Engine, image: &ImageRef, opts: TargetOptions) -> Result<Target, TargetError> {
        if opts.fixture == Fixture::Vm {
            return Target::boot_vm(engine, image, opts).await;
        }
        let deadman = reaper::deadman_drop_in(std::env::var(reaper::DEADMAN_ENV).ok().as_deref()).map_err(TargetError::TestSetting)?;
        let _slot = crate::target::slots::acquire().await?;
        crate::target::capacity::wait_for_room(crate::target::slots::slot_count(), ROOM_PATIENCE).await?;
        let started = Instant::now();
        let docker = engine.docker();
        reaper::sweep_stillborn(engine).await?;
        let name = format!("unitlab-{}-{}-{}", sanitize(&opts.purpose), image.suite, next_serial());
        let config = ContainerCreateBody {
            image: Some(image.id.clone()),
            hostname: Some(format!("unitlab-{}", image.suite)),
            env: Some(vec!["container=docker".into()]),
            labels: Some(reaper::labels(opts.keep)),
            stop_signal: Some("SIGRTMIN+3".into()),
            cmd: Some(init_command(image.suite)),
            host_config: Some(host_config(opts.keep, opts.limits)),
            ..Default::default()
        };
        let created = docker
            .create_container(Some(CreateContainerOptionsBuilder::default().name(&name).build()), config)
            .await
            .map_err(|e| EngineError::api(format!("create container {name} from {}", image.tag), e))?;
        let id = created.id;
        tracing::info!(name = %name, id = %id, image = %image.tag, keep = opts.keep, "target created");
        reaper::register(&id);
        // From here on the Target value owns the container, so every early return removes it.
        let mut target = Target {
            engine: engine.clone(),
            id: id.clone(),
            name: name.clone(),
            image: image.clone(),
            keep: opts.keep,
            tether: None,
            systemd_version: String::new(),
            boot_time: Duration::ZERO,
            removed: false,
            vm: None,
            channel: None,
        };
        if !opts.manager.is_empty() {
            target.put_before_start(MANAGER_DROP_IN, opts.manager.render().as_bytes()).await?;
        }
        if let Some(drop_in) = deadman.filter(|_| !opts.keep) {
            target.put_before_start(reaper::DEADMAN_DROP_IN, drop_in.as_bytes()).await?;
        }
        docker
            .start_container(&id, None::<StartContainerOptions>)
            .await
            .map_err(|e| EngineError::api(format!("start container {name}"), e))?;
        if !opts.keep {
            target.tether = Some(reaper::start_tether(engine, &id).await?);
        }
        target.channel = Some(Channel::open(engine, &id, &name).await?);
        let deadline = started + opts.boot_deadline;
        target.wait_running(deadline, opts.boot_deadline).await?;
        if opts.keep {
            // A kept target has no tether; stand the image's dead man's timer down by hand.
            target.write_file(reaper::TETHERED_MARKER, b"kept\n", 0o644).await?;
        }
        target.boot_time = started.elapsed();
        let version = target.exec(&["systemctl", "--version"]).await?;
        target.systemd_version = version.stdout.lines().next().unwrap_or("").trim().to_string();
        Ok(target)
    }

    /// Boot on the VM fixture: the VM disk of `image` (made once per image), a QEMU machine on
    /// an overlay of it, then the same readiness wait as a container, through the guest agent.
    async fn boot_vm(engine: &Engine, image: &ImageRef, opts: TargetOptions) -> Result<Target, TargetError> {
        // The disk is made before a boot slot is taken: it is one-off I/O, not a boot.
        let disk = crate::target::vm::ensure_vm_image(engine, image, &crate::progress::Lines).await?;
        let _slot = crate::target::slots::acquire().await?;
        let started = Instant::now();
        let name = format!("unitlab-{}-{}-vm-{}", sanitize(&opts.purpose), image.suite, next_serial());
        let allowed = opts.boot_deadline.max(VM_BOOT_DEADLINE);
        let deadline = started + allowed;
        let drop_in = (!opts.manager.is_empty()).then(|| opts.manager.render());
        let machine = Machine::start(&name, &disk, drop_in.as_deref(), opts.keep, deadline).await?;
        let mut target = Target {
            engine: engine.clone(),
            id: name.clone(),
            name: name.clone(),
            image: image.clone(),
            keep: opts.keep,
            tether: None,
            systemd_version: String::new(),
            boot_time: Duration::ZERO,
            removed: false,
            vm: Some(machine),
            channel: None,
        };
        if let Err(e) = target.wait_running(deadline, allowed).await {
            return Err(match e {
                TargetError::BootTimeout { name, image, seconds, last } => {
                    let console = target.vm.as_ref().map(|vm| crate::target::vm::machine::tail(vm.console(), 15)).unwrap_or_default();
                    TargetError::BootTimeout { name, image, seconds, last: format!("{last}\n  console (last lines):\n{console}") }
                }
                other => other,
            });
        }
        target.boot_time = started.elapsed();
        let version = target.exec(&["systemctl", "--version"]).await?;
        target.systemd_version = version.stdout.lines().next().unwrap_or("").trim().to_string();
        Ok(target)
    }

    /// The fixture this target runs on.
    pub fn fixture(&self) -> Fixture {
        if self.vm.is_some() { Fixture::Vm } else { Fixture::Container }
    }

    /// The VM behind this target, on the VM fixture.
    pub fn vm(&self) -> Option<&Machine> {
        self.vm.as_ref()
    }

    /// Put a file into the created, not yet started container through the engine's archive
    /// API (exec needs a running container; the path must not be on a tmpfs mounted at start).
    async fn put_before_start(&self, path: &str, contents: &[u8]) -> Result<(), TargetError> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        let what = || format!("put {path} into {}", self.name);
        builder.append_data(&mut header, path.trim_start_matches('/'), contents).map_err(|e| stream_error(what(), e))?;
        let archive = builder.into_inner().map_err(|e| stream_error(what(), e))?;
        let opts = bollard::query_parameters::UploadToContainerOptionsBuilder::new().path("/").build();
        self.engine
            .docker()
            .upload_to_container(&self.id, Some(opts), bollard::body_full(archive.into()))
            .await
            .map_err(|e| EngineError::api(what(), e))?;
        Ok(())
    }

    /// What the engine says of the container now: for noticing a target that died, was
    /// removed, or was frozen from outside, while the lab waits on it.
    pub async fn state(&self) -> Result<TargetState, TargetError> {
        if let Some(vm) = &self.vm {
            return Ok(match vm.status().await? {
                VmStatus::Running => TargetState::Running,
                VmStatus::Paused => TargetState::Paused,
                VmStatus::Exited(code) => TargetState::Stopped { exit_code: code },
                // shutdown, internal-error, guest-panicked...: not coming back.
                VmStatus::Other(_) => TargetState::Stopped { exit_code: -1 },
            });
        }
        match self.engine.docker().inspect_container(&self.id, None).await {
            Ok(info) => {
                let state = info.state.unwrap_or_default();
                Ok(if state.paused == Some(true) {
                    TargetState::Paused
                } else if state.running == Some(true) {
                    TargetState::Running
                } else {
                    TargetState::Stopped { exit_code: state.exit_code.unwrap_or(-1) }
                })
            }
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(TargetState::Removed),
            Err(e) => Err(EngineError::api(format!("inspect container {}", self.name), e).into()),
        }
    }

    /// Freeze every process of the target, systemd included (the engine's pause).
    ///
    /// On cgroup v1 the freezer gives up when a task does not stop in time (runc: "unable to
    /// freeze"), which happens here when a process is inside a slow filesystem call (the engine
    /// stores containers on fuse-overlayfs) on a loaded machine; runc thaws what it froze, so
    /// the pause is simply tried again, a few times, before it is reported.
    pub async fn pause(&self) -> Result<(), TargetError> {
        if let Some(vm) = &self.vm {
            return Ok(vm.pause().await?);
        }
        let mut backoff = Duration::from_millis(50);
        let mut attempt = 1;
        loop {
            match self.engine.docker().pause_container(&self.id).await {
                Ok(()) => return Ok(()),
                Err(e) if attempt < PAUSE_ATTEMPTS && e.to_string().contains("unable to freeze") => {
                    tracing::warn!(target = %self.name, attempt, "the freezer did not freeze the target in time; trying again");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
                Err(e) => {
                    return Err(EngineError::api(format!("pause {} (attempt {attempt} of {PAUSE_ATTEMPTS})", self.name), e).into())
                }
            }
        }
    }

    /// Thaw a paused target.
    pub async fn unpause(&self) -> Result<(), TargetError> {
        if let Some(vm) = &self.vm {
            return Ok(vm.unpause().await?);
        }
        self.engine.docker().unpause_container(&self.id).await.map_err(|e| EngineError::api(format!("unpause {}", self.name), e))?;
        Ok(())
    }

    /// Wait for `systemctl is-system-running --wait` to report. Until systemd has created its
    /// private socket the call fails at once ("Failed to connect to bus"); only that case is
    /// retried, with a short growing backoff, and always under the boot deadline.
    async fn wait_running(&self, deadline: Instant, allowed: Duration) -> Result<(), TargetError> {
        let mut backoff = Duration::from_millis(10);
        let mut last = String::from("(no answer yet)");
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                break;
            }
            let attempt = tokio::time::timeout(remaining, self.exec(&["systemctl", "is-system-running", "--wait"])).await;
            let out = match attempt {
                Err(_) => break,
                Ok(out) => out?,
            };
            let state = out.stdout.trim().to_string();
            match state.as_str() {
                "running" => return Ok(()),
                "degraded" => {
                    let failed = self.exec(&["systemctl", "--failed", "--no-legend", "--plain"]).await?;
                    return Err(TargetError::Degraded { name: self.name.clone(), state, failed: failed.stdout });
                }
                _ => {
                    if self.image.suite.needs_cgroup_v2() {
                        // The start-up refuses in milliseconds; systemctl then fails at once
                        // (no systemd), so this is read within the first few tries.
                        let refused = self.exec(&["cat", CGROUP2_REFUSED]).await?;
                        if refused.success() {
                            return Err(TargetError::NoCgroupV2 {
                                name: self.name.clone(),
                                image: self.image.tag.clone(),
                                version: self.image.suite.systemd(),
                                why: refused.stdout.trim().to_string(),
                            });
                        }
                    }
                    last = if state.is_empty() { out.stderr.trim().to_string() } else { state };
                    tokio::time::sleep(backoff.min(remaining)).await;
                    // Until PID 1 listens on its private socket systemctl fails at once; after that
                    // `--wait` blocks until the boot ends. Polling at a short, flat interval keeps
                    // the boot's measured end within 20 ms of systemd's (a failed systemctl
                    // costs the target about 5 ms of CPU).
                    backoff = (backoff * 2).min(Duration::from_millis(20));
                }
            }
        }
        Err(TargetError::BootTimeout {
            name: self.name.clone(),
            image: self.image.tag.clone(),
            seconds: allowed.as_secs().max(1),
            last,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn image(&self) -> &ImageRef {
        &self.image
    }

    /// First line of `systemctl --version`, e.g. "systemd 252 (252.39-1~deb12u2)".
    pub fn systemd_version(&self) -> &str {
        &self.systemd_version
    }

    /// The systemd major version (252, 257, ...), for version-dependent expectations.
    pub fn systemd_major(&self) -> Option<u32> {
        self.systemd_version.split_whitespace().nth(1)?.parse().ok()
    }

    /// Time from container creation to systemd reporting "running".
    pub fn boot_time(&self) -> Duration {
        self.boot_time
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The container's address on the engine's default bridge network (for probes from the
    /// host).
    pub async fn ip_address(&self) -> Result<String, TargetError> {
        if self.vm.is_some() {
            return Err(TargetError::Parse {
                name: self.name.clone(),
                what: "VM address".into(),
                detail: "a VM has no network device: HTTP to its services is made from inside it".into(),
            });
        }
        let info = self
            .engine
            .docker()
            .inspect_container(&self.id, None)
            .await
            .map_err(|e| EngineError::api(format!("inspect container {}", self.name), e))?;
        info.network_settings
            .and_then(|n| n.networks)
            .and_then(|nets| nets.values().find_map(|n| n.ip_address.clone().filter(|ip| !ip.is_empty())))
            .ok_or_else(|| TargetError::Parse {
                name: self.name.clone(),
                what: "container address".into(),
                detail: "no network address assigned".into(),
            })
    }

    /// Stop using the command channel (see [`Channel::abandon`]); a no-op without one.
    pub fn abandon_channel(&self, why: String) {
        if let Some(channel) = &self.channel {
            channel.abandon(why);
        }
    }

    /// Run a command and collect its exit code and output.
    pub async fn exec(&self, argv: &[&str]) -> Result<ExecOutput, TargetError> {
        self.exec_with_stdin(argv, None).await
    }

    /// Run a command, feeding it `stdin` (then EOF), and collect its exit code and output.
    pub async fn exec_with_stdin(&self, argv: &[&str], stdin: Option<&[u8]>) -> Result<ExecOutput, TargetError> {
        tracing::debug!(target = %self.name, argv = ?argv, stdin_bytes = stdin.map(<[u8]>::len), "exec");
        if let Some(vm) = &self.vm {
            let done = vm.exec(argv, stdin).await?;
            return Ok(ExecOutput {
                exit_code: done.exit_code,
                stdout: String::from_utf8_lossy(&done.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&done.stderr).into_owned(),
            });
        }
        if let Some(channel) = self.channel.as_ref().filter(|c| !c.is_closed()) {
            let reply = channel
                .run(argv, stdin)
                .await
                .map_err(|source| TargetError::ChannelLost { command: argv.join(" "), source })?;
            if reply.exit_code != crate::target::channel::CANNOT_START {
                tracing::debug!(target = %self.name, argv = ?argv, exit = reply.exit_code, "exec finished");
                return Ok(ExecOutput {
                    exit_code: i64::from(reply.exit_code),
                    stdout: String::from_utf8_lossy(&reply.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&reply.stderr).into_owned(),
                });
            }
            tracing::debug!(target = %self.name, argv = ?argv, why = %String::from_utf8_lossy(&reply.stderr), "the agent cannot start it; through the engine");
        }
        // No channel (or it closed: the agent was killed), or the target's pids ceiling is
        // reached: one exec through the engine.
        let what = || format!("exec `{}` in {}", argv.join(" "), self.name);
        let AttachedExec { id: exec_id, mut output, mut input } =
            self.engine.start_attached(&self.id, argv.iter().map(|s| s.to_string()).collect(), stdin.is_some(), &what()).await?;
        let mut out = ExecOutput::default();
        if let Some(data) = stdin {
            input.write_all(data).await.map_err(|e| stream_error(what(), e))?;
            input.shutdown().await.map_err(|e| stream_error(what(), e))?;
        }
        drop(input);
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        while let Some(chunk) = output.next().await {
            match chunk.map_err(|e| EngineError::api(what(), e))? {
                LogOutput::StdOut { message } | LogOutput::Console { message } => stdout.extend_from_slice(&message),
                LogOutput::StdErr { message } => stderr.extend_from_slice(&message),
                LogOutput::StdIn { .. } => {}
            }
        }
        out.stdout = String::from_utf8_lossy(&stdout).into_owned();
        out.stderr = String::from_utf8_lossy(&stderr).into_owned();
        let inspect = self.engine.docker().inspect_exec(&exec_id).await.map_err(|e| EngineError::api(what(), e))?;
        out.exit_code = inspect.exit_code.unwrap_or(-1);
        tracing::debug!(target = %self.name, argv = ?argv, exit = out.exit_code, "exec finished");
        Ok(out)
    }

    /// Run a command that must succeed; a non-zero exit is an error naming the command.
    pub async fn exec_ok(&self, argv: &[&str]) -> Result<ExecOutput, TargetError> {
        let out = self.exec(argv).await?;
        if !out.success() {
            return Err(TargetError::CommandFailed {
                name: self.name.clone(),
                command: argv.join(" "),
                code: out.exit_code,
                stderr: out.stderr.trim().to_string(),
            });
        }
        Ok(out)
    }

    /// Write a file (parent directories created). Goes through exec and stdin rather than the
    /// archive API because `docker cp` cannot write into the tmpfs mounts (/run, /tmp).
    pub async fn write_file(&self, path: &str, contents: &[u8], mode: u32) -> Result<(), TargetError> {
        let mode = format!("{mode:o}");
        let argv = [
            "/bin/sh",
            "-c",
            r#"set -e; mkdir -p "$(dirname "$1")"; cat > "$1.unitlab-tmp"; chmod "$2" "$1.unitlab-tmp"; mv -f "$1.unitlab-tmp" "$1""#,
            "write-file",
            path,
            &mode,
        ];
        let out = self.exec_with_stdin(&argv, Some(contents)).await?;
        if !out.success() {
            return Err(TargetError::CommandFailed {
                name: self.name.clone(),
                command: format!("write {path}"),
                code: out.exit_code,
                stderr: out.stderr.trim().to_string(),
            });
        }
        Ok(())
    }

    /// Write many files in one exec (a tar stream unpacked at `/`): installing dozens of units
    /// one exec each would cost seconds.
    pub async fn write_files(&self, files: &[(String, Vec<u8>, u32)]) -> Result<(), TargetError> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, contents, mode) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(contents.len() as u64);
            header.set_mode(*mode);
            header.set_mtime(0);
            header.set_cksum();
            builder
                .append_data(&mut header, path.trim_start_matches('/'), contents.as_slice())
                .map_err(|e| stream_error(format!("pack {path} for {}", self.name), e))?;
        }
        let archive = builder.into_inner().map_err(|e| stream_error(format!("pack files for {}", self.name), e))?;
        let out = self.exec_with_stdin(&["tar", "-x", "-C", "/", "--no-same-owner", "-f", "-"], Some(&archive)).await?;
        if !out.success() {
            return Err(TargetError::CommandFailed {
                name: self.name.clone(),
                command: format!("unpack {} files", files.len()),
                code: out.exit_code,
                stderr: out.stderr.trim().to_string(),
            });
        }
        Ok(())
    }

    /// Read unit properties with `systemctl show` (values as systemd prints them).
    pub async fn unit_properties(&self, unit: &str, properties: &[&str]) -> Result<BTreeMap<String, String>, TargetError> {
        let joined = properties.join(",");
        let out = self.exec_ok(&["systemctl", "show", unit, "--property", &joined]).await?;
        Ok(parse_properties(&out.stdout))
    }

    /// The journal as JSON entries, with journalctl's own arguments (e.g. `["-u", "x.service"]`).
    /// `journalctl --sync` first: journald processes messages asynchronously, so without it a
    /// state already visible through `systemctl show` may not have its journal line yet.
    pub async fn journal(&self, args: &[&str]) -> Result<Vec<JournalEntry>, TargetError> {
        self.exec_ok(&["journalctl", "--sync"]).await?;
        let mut argv = vec!["journalctl", "--no-pager", "-o", "json"];
        argv.extend_from_slice(args);
        let out = self.exec_ok(&argv).await?;
        out.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let mut entry: JournalEntry = serde_json::from_str(l).map_err(|e| TargetError::Parse {
                    name: self.name.clone(),
                    what: "journal entry".into(),
                    detail: format!("{e}: {l}"),
                })?;
                if let Some(vm) = &self.vm {
                    vm.shift(&mut entry);
                }
                Ok(entry)
            })
            .collect()
    }

    /// Follow the journal (`journalctl -f -o json --no-tail` plus `args`) as a stream of
    /// entries: every stored entry that matches, then new ones as they come. `--no-tail`
    /// because the default "last 10, then follow" loses entries written while journalctl is
    /// starting (seen here: a unit started right after the follow began showed only its last
    /// line). Narrow it with `--after-cursor` (see [`Target::journal_cursor`]) or `--since`.
    /// The stream ends when the target goes away; drop it to stop following.
    pub async fn follow_journal(
        &self,
        args: &[&str],
    ) -> Result<Pin<Box<dyn Stream<Item = Result<JournalEntry, TargetError>> + Send>>, TargetError> {
        if let Some(vm) = &self.vm {
            let entries = vm.follow_journal(args).await?;
            return Ok(Box::pin(entries.map(|e| e.map_err(TargetError::from))));
        }
        let mut argv: Vec<String> = ["journalctl", "--no-pager", "-o", "json", "-f", "--no-tail"].iter().map(|s| s.to_string()).collect();
        argv.extend(args.iter().map(|s| s.to_string()));
        let what = format!("follow journal in {}", self.name);
        let AttachedExec { output, .. } = self.engine.start_attached(&self.id, argv, false, &what).await?;
        let name = self.name.clone();
        // The engine frames output in chunks that need not end at line ends: re-split here.
        let lines = output
            .scan(Vec::<u8>::new(), move |buf, chunk| {
                let mut done: Vec<Result<Vec<u8>, TargetError>> = Vec::new();
                match chunk {
                    Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                        buf.extend_from_slice(&message);
                        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                            let line: Vec<u8> = buf.drain(..=pos).collect();
                            done.push(Ok(line));
                        }
                    }
                    Ok(_) => {}
                    Err(e) => done.push(Err(TargetError::Engine(EngineError::api(what.clone(), e)))),
                }
                futures_util::future::ready(Some(futures_util::stream::iter(done)))
            })
            .flatten()
            .filter_map(move |line| {
                let name = name.clone();
                futures_util::future::ready(match line {
                    Err(e) => Some(Err(e)),
                    Ok(bytes) => {
                        let text = String::from_utf8_lossy(&bytes);
                        let text = text.trim();
                        if text.is_empty() {
                            None
                        } else {
                            Some(serde_json::from_str::<JournalEntry>(text).map_err(|e| TargetError::Parse {
                                name,
                                what: "journal entry".into(),
                                detail: format!("{e}: {text}"),
                            }))
                        }
                    }
                })
            });
        Ok(Box::pin(lines))
    }

    /// The cursor of the newest journal entry: pass it as `--after-cursor=...` to read or follow
    /// only what happens from now on.
    pub async fn journal_cursor(&self) -> Result<String, TargetError> {
        let out = self.exec_ok(&["journalctl", "--no-pager", "-n", "1", "-o", "export", "--output-fields=__CURSOR"]).await?;
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix("__CURSOR="))
            .map(str::to_string)
            .ok_or_else(|| TargetError::Parse { name: self.name.clone(), what: "journal cursor".into(), detail: out.stdout.clone() })
    }

    /// Whether this target is kept after the lab exits.
    pub fn is_kept(&self) -> bool {
        self.keep
    }

    /// How to get into a kept target.
    pub fn enter_hint(&self) -> String {
        if let Some(vm) = &self.vm {
            return vm.enter_hint();
        }
        format!(
            "target {} kept: enter with `docker exec -it {} bash` (journal: `docker exec {} journalctl -b`); remove with `unitlab clean`",
            self.name, self.name, self.name
        )
    }

    /// Remove the target now (a kept target is left running and only forgotten).
    pub async fn teardown(mut self) -> Result<(), TargetError> {
        self.removed = true;
        // Closing the agent's stdin ends it; its reader task goes with it.
        self.channel = None;
        if let Some(vm) = self.vm.take() {
            // Killing QEMU and waiting for it blocks briefly.
            let _ = tokio::task::spawn_blocking(move || vm.shutdown()).await;
            return Ok(());
        }
        if let Some(t) = self.tether.take() {
            t.abort();
        }
        if self.keep {
            reaper::unregister(&self.id);
            return Ok(());
        }
        reaper::remove_container(self.engine.docker(), &self.id).await?;
        Ok(())
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        if let Some(vm) = self.vm.take() {
            vm.shutdown();
            return;
        }
        if let Some(t) = self.tether.take() {
            t.abort();
        }
        if self.keep {
            reaper::unregister(&self.id);
            return;
        }
        reaper::remove_container_blocking(self.id.clone());
    }
}

fn stream_error(what: String, e: std::io::Error) -> EngineError {
    EngineError::api(what, bollard::errors::Error::IOError { err: e })
}

fn next_serial() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static SERIAL: AtomicU32 = AtomicU32::new(0);
    format!("{}-{}", reaper::run_id(), SERIAL.fetch_add(1, Ordering::Relaxed))
}

/// Parse `systemctl show` output: `Key=Value` per line; values may contain `=`.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::limits::{DEFAULT_MEMORY, DEFAULT_PIDS};

    #[test]
    fn properties_keep_equals_signs_in_values() {
        let p = parse_properties("ActiveState=active\nExecStart={ path=/bin/x ; argv[]=/bin/x a=b }\nNRestarts=0\n");
        assert_eq!(p["ActiveState"], "active");
        assert_eq!(p["NRestarts"], "0");
        assert_eq!(p["ExecStart"], "{ path=/bin/x ; argv[]=/bin/x a=b }");
    }

    #[test]
    fn container_names_are_docker_safe() {
        assert_eq!(sanitize("restart/on failure"), "restart-on-failure");
        assert_eq!(sanitize(""), "target");
    }

    #[test]
    fn targets_get_a_private_cgroup_namespace_limits_and_no_host_binds() {
        let c = host_config(false, Limits::default());
        assert_eq!(c.cgroupns_mode, Some(HostConfigCgroupnsModeEnum::PRIVATE));
        assert!(c.binds.is_none(), "nothing of the host is bound into a target");
        assert!(c.tmpfs.as_ref().unwrap().contains_key("/sys/fs/cgroup"), "systemd mounts its own hierarchies");
        assert!(c.security_opt.is_none(), "the engine's default seccomp and AppArmor profiles stay on");
        assert_eq!(c.cap_drop.as_deref(), Some(&["ALL".to_string()][..]));
        assert!(c.cap_add.as_ref().unwrap().iter().any(|x| x == "SYS_ADMIN"));
        assert!(!c.cap_add.as_ref().unwrap().iter().any(|x| x == "NET_RAW" || x == "MKNOD"));
        assert_eq!((c.pids_limit, c.memory, c.memory_swap), (Some(DEFAULT_PIDS), Some(DEFAULT_MEMORY), Some(DEFAULT_MEMORY)));
        let own = host_config(false, Limits { pids: 100, memory: 256 << 20 });
        assert_eq!((own.pids_limit, own.memory, own.memory_swap), (Some(100), Some(256 << 20), Some(256 << 20)));
        assert_eq!(c.auto_remove, Some(true));
        assert_eq!(host_config(true, Limits::default()).auto_remove, Some(false), "a kept target must survive its PID 1 exiting");
        assert!(c.privileged.is_none(), "never --privileged: it fails on these hosts");
        assert_eq!(c.sysctls.unwrap()["net.unix.max_dgram_qlen"], "512", "or PID 1's log lines get dropped");
    }
}
