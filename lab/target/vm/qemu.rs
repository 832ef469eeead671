//! The QEMU process of a VM: the host's accelerator (KVM when it works, TCG otherwise), the
//! command line, a process that dies with the lab, and the QMP monitor (stop, cont, status).
//!
//! A QEMU started by the lab gets `PR_SET_PDEATHSIG(SIGKILL)`: the kernel kills it the moment
//! the lab process dies, however it dies (SIGKILL included). The signal follows the thread
//! that forked, not the process, so every QEMU is forked by one thread that lives as long as
//! the process ([`spawn_tethered`]); a runtime's worker or blocking thread may end earlier.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

pub const QEMU: &str = "qemu-system-x86_64";
pub const QEMU_IMG: &str = "qemu-img";

/// How QEMU runs guest code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// A boot sector that asks QEMU to exit with status 33 through the isa-debug-exit device
/// (`out 0xf4, 0x10`: status = 0x10 << 1 | 1), then halts. Running it proves that the
/// accelerator executes guest code: on these hosts /dev/kvm opens but a KVM guest never runs
/// an instruction (QEMU hangs silently), so opening the device is no proof.
fn probe_boot_sector() -> [u8; 512] {
    let mut s = [0u8; 512];
    let code = [0xB0, 0x10, 0xE6, 0xF4, 0xF4, 0xEB, 0xFD];
    s[..code.len()].copy_from_slice(&code);
    s[510] = 0x55;
    s[511] = 0xAA;
    s
}
const PROBE_EXIT: i32 = 33;
/// SeaBIOS reaches the boot sector in well under a second under KVM; a hung KVM never does.
const PROBE_DEADLINE: Duration = Duration::from_secs(5);

/// What the host offers: the QEMU binary, qemu-img, and whether KVM runs guest code.
#[derive(Debug, Clone)]
pub struct HostSupport {
    pub qemu: Result<String, String>,
    pub qemu_img: Result<String, String>,
    pub accel: Accel,
    /// Why KVM is not used, when it is not.
    pub kvm_detail: String,
}

fn version(binary: &str) -> Result<String, String> {
    match Command::new(binary).arg("--version").stdin(Stdio::null()).output() {
        Ok(out) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or("").trim().to_string()),
        Ok(out) => Err(format!("`{binary} --version` exited {}", out.status)),
        Err(e) => Err(format!("{binary}: {e}")),
    }
}

/// Whether KVM runs a guest here. `UNITLAB_VM_ACCEL=tcg|kvm` forces the answer. With a
/// kernel, the kernel itself is booted until it prints its banner (measured here: /dev/kvm
/// opens and runs a real-mode boot sector, yet Linux never prints a line under KVM); without
/// one (the doctor before any VM disk exists) only the boot sector is tried.
fn probe_kvm(kernel: Option<&Path>) -> Result<(), String> {
    match std::env::var("UNITLAB_VM_ACCEL").as_deref() {
        Ok("tcg") => return Err("UNITLAB_VM_ACCEL=tcg".into()),
        Ok("kvm") => return Ok(()),
        _ => {}
    }
    if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm") {
        return Err(format!("/dev/kvm: {e}"));
    }
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir for the KVM probe: {e}"))?;
    let console = dir.path().join("console");
    let mut command = Command::new(QEMU);
    command.args(["-accel", "kvm", "-cpu", "host", "-machine", "pc", "-m", "256", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"]);
    match kernel {
        Some(kernel) => {
            command.arg("-kernel").arg(kernel).args(["-append", "console=ttyS0 earlyprintk=ttyS0 panic=-1", "-serial"]).arg(format!("file:{}", console.display()));
        }
        None => {
            let disk = dir.path().join("probe.img");
            std::fs::write(&disk, probe_boot_sector()).map_err(|e| format!("write the KVM probe disk: {e}"))?;
            command.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-drive"]).arg(format!("file={},format=raw,if=ide", disk.display()));
        }
    }
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().map_err(|e| format!("{QEMU}: {e}"))?;
    let started = Instant::now();
    let what = if kernel.is_some() { "the kernel printed nothing" } else { "the probe boot sector did not run" };
    let result = loop {
        if kernel.is_some() && std::fs::read_to_string(&console).is_ok_and(|t| t.contains("Linux version")) {
            break Ok(());
        }
        match child.try_wait() {
            Ok(Some(status)) if kernel.is_none() && status.code() == Some(PROBE_EXIT) => break Ok(()),
            Ok(Some(status)) => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                break Err(format!("a KVM guest did not run ({status}): {}", err.trim()));
            }
            Ok(None) if started.elapsed() < PROBE_DEADLINE => std::thread::sleep(Duration::from_millis(20)),
            _ => break Err(format!("/dev/kvm opens, but under KVM {what} within {} s", PROBE_DEADLINE.as_secs())),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// [`probe_kvm`], remembered until the host reboots (a hung probe costs its whole deadline,
/// which every lab process would otherwise pay before its first VM).
fn cached_probe_kvm(kernel: Option<&Path>) -> Result<(), String> {
    if std::env::var_os("UNITLAB_VM_ACCEL").is_some() {
        return probe_kvm(kernel);
    }
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let kind = if kernel.is_some() { "kernel" } else { "bootsector" };
    let cache = super::image::vm_root().join(format!("kvm-probe-{kind}-{}", boot_id.trim()));
    if let Ok(text) = std::fs::read_to_string(&cache) {
        return match text.split_once('\n') {
            Some(("kvm", _)) => Ok(()),
            Some((_, why)) => Err(format!("{why} (probed earlier since this boot; {} holds the answer)", cache.display())),
            None => probe_kvm(kernel),
        };
    }
    let result = probe_kvm(kernel);
    let text = match &result {
        Ok(()) => "kvm\n".to_string(),
        Err(why) => format!("tcg\n{why}"),
    };
    if std::fs::create_dir_all(super::image::vm_root()).is_ok() {
        let _ = std::fs::write(&cache, text);
    }
    result
}

/// The host's support, probed once per process: with `kernel`, KVM is tried with that
/// kernel (see [`probe_kvm`]); the first caller's answer is kept.
pub fn host_support(kernel: Option<&Path>) -> &'static HostSupport {
    static SUPPORT: OnceLock<HostSupport> = OnceLock::new();
    static WITH_KERNEL: OnceLock<HostSupport> = OnceLock::new();
    let probe = |kernel: Option<&Path>| {
        let qemu = version(QEMU);
        let (accel, kvm_detail) = match qemu.as_ref().map_err(Clone::clone).and_then(|_| cached_probe_kvm(kernel)) {
            Ok(()) => (Accel::Kvm, "KVM runs guests".to_string()),
            Err(why) => (Accel::Tcg, why),
        };
        HostSupport { qemu, qemu_img: version(QEMU_IMG), accel, kvm_detail }
    };
    match kernel {
        Some(k) => WITH_KERNEL.get_or_init(|| probe(Some(k))),
        None => SUPPORT.get_or_init(|| probe(None)),
    }
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Fork `command` from the process's spawner thread, with `PR_SET_PDEATHSIG(SIGKILL)`.
pub fn spawn_tethered(mut command: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let sender = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        // Never joined: it must outlive every QEMU it forks, i.e. live as long as the process.
        std::thread::Builder::new()
            .name("unitlab-vm-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("spawn the VM spawner thread");
        Mutex::new(tx)
    });
    let parent = std::process::id() as libc::pid_t;
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe calls (prctl, getppid, raise) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The lab died between fork and prctl: the signal was never armed.
            if libc::getppid() != parent {
                libc::raise(libc::SIGKILL);
            }
            Ok(())
        });
    }
    // Its own process group: a Ctrl-C on the terminal is the lab's to handle (the lab then
    // stops the VM), not a SIGINT that kills QEMU first.
    command.process_group(0);
    let (tx, rx) = mpsc::channel();
    sender.lock().unwrap_or_else(|p| p.into_inner()).send((command, tx)).map_err(|_| std::io::Error::other("the VM spawner thread is gone"))?;
    rx.recv().map_err(|_| std::io::Error::other("the VM spawner thread is gone"))?
}

/// Everything a VM's command line needs.
#[derive(Debug, Clone)]
pub struct MachineSpec {
    pub name: String,
    pub accel: Accel,
    pub cpus: u32,
    pub memory_mib: u32,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub append: String,
    pub overlay: PathBuf,
    pub console: PathBuf,
    pub qmp: PathBuf,
    pub agent: PathBuf,
    /// (port name, socket path) of the stream ports.
    pub streams: Vec<(String, PathBuf)>,
}

/// The QEMU arguments of a spec. No network device: the exec channel, files and streams go
/// over virtio-serial, and HTTP to services is made from inside the guest.
pub fn command_line(spec: &MachineSpec) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));
    push(&["-name", &spec.name, "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"]);
    match spec.accel {
        Accel::Kvm => push(&["-accel", "kvm", "-cpu", "host"]),
        // Multi-threaded TCG: one host thread per virtual CPU.
        Accel::Tcg => push(&["-accel", "tcg,thread=multi", "-cpu", "max"]),
    }
    push(&["-machine", "q35", "-smp", &spec.cpus.to_string(), "-m", &spec.memory_mib.to_string()]);
    push(&["-kernel", &spec.kernel.display().to_string(), "-initrd", &spec.initrd.display().to_string(), "-append", &spec.append]);
    // cache=unsafe: the overlay is thrown away with the VM, so flushes are wasted work.
    push(&["-drive", &format!("file={},if=virtio,format=qcow2,cache=unsafe", spec.overlay.display())]);
    push(&["-serial", &format!("file:{}", spec.console.display())]);
    push(&["-device", "virtio-rng-pci", "-device", "virtio-serial-pci,id=vser"]);
    push(&["-qmp", &format!("unix:{},server=on,wait=off", spec.qmp.display())]);
    let mut port = |id: &str, name: &str, path: &Path| {
        a.extend([
            "-chardev".to_string(),
            format!("socket,id={id},path={},server=on,wait=off", path.display()),
            "-device".to_string(),
            format!("virtserialport,bus=vser.0,chardev={id},name={name}"),
        ]);
    };
    port("agent", "org.qemu.guest_agent.0", &spec.agent);
    for (i, (name, path)) in spec.streams.iter().enumerate() {
        port(&format!("stream{i}"), name, path);
    }
    a
}

/// The kernel command line: the rootfs on the first virtio disk, the lab's init, the
/// `[Manager]` drop-in as base64.
pub fn kernel_append(manager_drop_in: Option<&str>) -> String {
    let mut s = format!(
        // mitigations=off: the CPU vulnerability workarounds (page-table isolation on every
        // system call above all) cost an emulated CPU far more than a real one, and a lab VM
        // has nothing to protect from its own processes.
        "console=ttyS0 root=/dev/vda rw quiet panic=-1 init={} mitigations=off",
        super::image::VM_INIT
    );
    if let Some(text) = manager_drop_in {
        use base64::Engine as _;
        s.push_str(" unitlab.manager=");
        s.push_str(&base64::engine::general_purpose::STANDARD.encode(text));
    }
    s
}

#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    #[error("QMP {operation} on {socket}: {source}")]
    Io {
        operation: String,
        socket: String,
        #[source]
        source: std::io::Error,
    },
    #[error("QMP {command} failed: {detail}")]
    Command { command: String, detail: String },
}

/// A QMP connection: commands answered in order, events skipped.
pub struct Qmp {
    socket: String,
    conn: tokio::sync::Mutex<(BufReader<OwnedReadHalf>, OwnedWriteHalf)>,
}

impl Qmp {
    /// Connect (QEMU listens from the start) and leave capabilities negotiation mode.
    pub async fn connect(path: &Path, deadline: Instant) -> Result<Qmp, QmpError> {
        let socket = path.display().to_string();
        let stream = loop {
            match UnixStream::connect(path).await {
                Ok(s) => break s,
                Err(e) if Instant::now() < deadline => {
                    tracing::trace!(error = %e, "QMP socket not there yet");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(QmpError::Io { operation: "connect".into(), socket, source: e }),
            }
        };
        let (r, w) = stream.into_split();
        let qmp = Qmp { socket, conn: tokio::sync::Mutex::new((BufReader::new(r), w)) };
        {
            let mut conn = qmp.conn.lock().await;
            let mut greeting = String::new();
            conn.0.read_line(&mut greeting).await.map_err(|e| qmp.io("read the greeting", e))?;
        }
        qmp.execute("qmp_capabilities").await?;
        Ok(qmp)
    }

    fn io(&self, operation: &str, source: std::io::Error) -> QmpError {
        QmpError::Io { operation: operation.into(), socket: self.socket.clone(), source }
    }

    /// Run a command; its `return` value.
    pub async fn execute(&self, command: &str) -> Result<serde_json::Value, QmpError> {
        let mut conn = self.conn.lock().await;
        let line = format!("{}\n", serde_json::json!({ "execute": command }));
        conn.1.write_all(line.as_bytes()).await.map_err(|e| self.io(command, e))?;
        loop {
            let mut reply = String::new();
            let n = conn.0.read_line(&mut reply).await.map_err(|e| self.io(command, e))?;
            if n == 0 {
                return Err(self.io(command, std::io::ErrorKind::UnexpectedEof.into()));
            }
            let value: serde_json::Value = match serde_json::from_str(&reply) {
                Ok(v) => v,
                Err(_) => continue,
            };
            if value.get("event").is_some() {
                continue;
            }
            if let Some(ret) = value.get("return") {
                return Ok(ret.clone());
            }
            return Err(QmpError::Command { command: command.into(), detail: value.get("error").unwrap_or(&value).to_string() });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_sector_is_bootable_and_exits_through_the_debug_device() {
        let s = probe_boot_sector();
        assert_eq!(&s[510..], &[0x55, 0xAA]);
        assert_eq!(&s[..4], &[0xB0, 0x10, 0xE6, 0xF4], "mov al, 0x10; out 0xf4, al");
        assert_eq!(PROBE_EXIT, (0x10 << 1) | 1);
    }

    #[test]
    fn the_command_line_has_no_network_and_one_port_per_stream() {
        let spec = MachineSpec {
            name: "t".into(),
            accel: Accel::Tcg,
            cpus: 2,
            memory_mib: 768,
            kernel: "/k".into(),
            initrd: "/i".into(),
            append: kernel_append(Some("[Manager]\nDefaultTimeoutStartSec=3s\n")),
            overlay: "/o.qcow2".into(),
            console: "/c.log".into(),
            qmp: "/q.sock".into(),
            agent: "/a.sock".into(),
            streams: vec![("unitlab.stream.0".into(), "/s0.sock".into())],
        };
        let line = command_line(&spec).join(" ");
        assert!(line.contains("-nodefaults"), "no default NIC: {line}");
        assert!(!line.contains("-netdev") && !line.contains("-nic "), "{line}");
        assert!(line.contains("name=org.qemu.guest_agent.0") && line.contains("name=unitlab.stream.0"), "{line}");
        assert!(line.contains("tcg,thread=multi"), "{line}");
        assert!(spec.append.contains("root=/dev/vda rw") && spec.append.contains("unitlab.manager=W01hbmFnZXJd"), "{}", spec.append);
    }
}
