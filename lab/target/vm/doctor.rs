//! `unitlab doctor --fixture vm`: what the VM fixture needs from the host. QEMU and qemu-img,
//! `mkfs.ext4 -d`, whether KVM runs a guest (else TCG, slower), each suite's VM disk and
//! kernel, and run directories left by killed labs.

use std::process::{Command, Stdio};

use crate::systemd::Suite;
use crate::target::doctor::Check;
use crate::target::engine::Engine;

use super::image::{vm_hash, vm_root};
use super::qemu;

fn tool(name: &str, argv: &[&str], fix: &str) -> Check {
    match Command::new(argv[0]).args(&argv[1..]).stdin(Stdio::null()).output() {
        Ok(out) if out.status.success() || !out.stderr.is_empty() || !out.stdout.is_empty() => {
            let text = if out.stdout.is_empty() { out.stderr } else { out.stdout };
            Check::ok(name, String::from_utf8_lossy(&text).lines().next().unwrap_or("").trim().to_string())
        }
        Ok(out) => Check::fail(name, format!("`{}` exited {}", argv.join(" "), out.status), fix),
        Err(e) => Check::fail(name, format!("{}: {e}", argv[0]), fix),
    }
}

/// The VM checks, for `suites`.
pub async fn run_checks(suites: &[Suite]) -> Vec<Check> {
    let mut checks = vec![
        tool("qemu", &[qemu::QEMU, "--version"], "`apt-get install qemu-system-x86`"),
        tool("qemu-img", &[qemu::QEMU_IMG, "--version"], "`apt-get install qemu-utils`"),
        tool("mkfs.ext4", &["mkfs.ext4", "-V"], "`apt-get install e2fsprogs` (1.43 or newer, for `mkfs.ext4 -d`)"),
    ];
    let engine = Engine::connect().await.ok();
    let mut kernel = None;
    for suite in suites {
        let name = format!("vm disk {suite}");
        let Some(engine) = &engine else {
            checks.push(Check::warn(&name, "no engine: the VM disk is made from the target image", "start the Docker Engine"));
            continue;
        };
        let Ok(image) = engine.docker().inspect_image(&suite.target_tag()).await else {
            checks.push(Check::warn(&name, format!("no {} image yet", suite.target_tag()), format!("`unitlab image build --suite {suite}`")));
            continue;
        };
        let hash = vm_hash(image.id.as_deref().unwrap_or_default());
        let found = std::fs::read_dir(vm_root().join("images"))
            .ok()
            .and_then(|d| d.flatten().map(|e| e.path()).find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&hash)) && p.join("complete").exists()));
        match found {
            Some(dir) => {
                let k = dir.join("vmlinuz");
                let size = std::fs::metadata(&k).map(|m| m.len()).unwrap_or(0);
                checks.push(Check::ok(&name, format!("{} (kernel {} bytes, rootfs.ext4, initrd.img)", dir.display(), size)));
                kernel.get_or_insert(k);
            }
            None => checks.push(Check::warn(
                &name,
                format!("the VM disk of {} is not made yet (the first VM boot makes it: Debian's kernel installed with apt, then the filesystem exported, 1-3 min)", suite.target_tag()),
                format!("`unitlab boot --fixture vm --suite {suite}`"),
            )),
        }
    }
    // Any VM disk's kernel will do for the KVM probe: a boot sector alone proves nothing here
    // (it runs under KVM on these hosts, Linux does not).
    let kernel = kernel.or_else(|| {
        std::fs::read_dir(vm_root().join("images")).ok()?.flatten().map(|e| e.path().join("vmlinuz")).find(|k| k.exists())
    });
    let Some(kernel) = kernel else {
        checks.push(Check::warn(
            "kvm",
            "not checked yet: KVM is tried with a VM disk's kernel, and none is made yet",
            "`unitlab boot --fixture vm`, then `unitlab doctor --fixture vm` again",
        ));
        return checks;
    };
    let support = tokio::task::spawn_blocking(move || qemu::host_support(Some(&kernel))).await.expect("the probe does not panic");
    checks.push(match support.accel {
        qemu::Accel::Kvm => Check::ok("kvm", "KVM runs guests: VMs boot with hardware virtualisation"),
        qemu::Accel::Tcg => Check::warn(
            "kvm",
            format!("VMs run under TCG (emulation, several times slower): {}", support.kvm_detail),
            "give the lab a working /dev/kvm (nested virtualisation enabled on the host's hypervisor); set UNITLAB_VM_ACCEL=kvm to force it",
        ),
    });
    let runs = std::fs::read_dir(vm_root().join("run")).map(|d| d.count()).unwrap_or(0);
    checks.push(Check::ok("vm leftovers", format!("{runs} VM run director(ies) in {} (those of dead labs are removed by the next VM boot; their disks were never named on disk)", vm_root().join("run").display())));
    checks
}
