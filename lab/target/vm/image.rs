//! The disk a VM boots: the target image's own filesystem (debootstrapped rootfs, systemd,
//! buggy servers, a scenario's packages) with Debian's kernel and the guest agent added, as an
//! ext4 image plus the kernel and initramfs for a direct kernel boot.
//!
//! Two cached steps, each keyed by a hash of its inputs:
//! 1. an image derived from the target image (`guest/Containerfile`), tagged
//!    `unitlab-vm:<suite>-<hash>`: apt installs `linux-image-amd64` and `qemu-guest-agent`;
//! 2. its filesystem exported (`docker export`) into `rootfs.ext4` with `mkfs.ext4 -d`, and
//!    `/boot/vmlinuz-*` and `/boot/initrd.img-*` copied beside it, under
//!    `<cache>/images/<hash>/`. Boots never write to it: each gets a qcow2 overlay.
//!
//! Builds take the suite's host-wide image lock; the disk appears under its final name only
//! when complete (written in a temporary directory, then renamed).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use bollard::query_parameters::RemoveContainerOptionsBuilder;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::progress::Progress;
use crate::target::engine::{Engine, EngineError};
use crate::target::image::{image_with_inputs, images_labelled, run_build, BuildFailure, BuildLock, ImageRef, LABEL_INPUTS, LABEL_SUITE};

/// Bump when the recipe changes in a way the files below do not show.
const RECIPE_VERSION: &str = "unitlab-vm-v2";
pub const VM_REPOSITORY: &str = "unitlab-vm";
/// Bump when the way the disk is made from the image changes: a new disk, same image.
const DISK_VERSION: &str = "d2";

const CONTAINERFILE: &str = include_str!("guest/Containerfile");
/// Files of the build context besides the Containerfile: (name, contents).
const GUEST_FILES: [(&str, &str); 4] = [
    ("unitlab-vm-init", include_str!("guest/unitlab-vm-init")),
    ("unitlab-agent", include_str!("guest/unitlab-agent")),
    ("unitlab-stream", include_str!("guest/unitlab-stream")),
    ("unitlab-agent.service", include_str!("guest/unitlab-agent.service")),
];

/// The init the kernel starts (see guest/unitlab-vm-init).
pub const VM_INIT: &str = "/usr/local/sbin/unitlab-vm-init";

/// Free space given to a VM's root filesystem beyond what the image holds: room for what
/// scenarios write (the journal is in memory).
const HEADROOM: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum VmImageError {
    #[error("build the VM image {tag} from {base}: {message}\n  fix: read the build log above; check that Debian's mirror is reachable from a build container")]
    Build { tag: String, base: String, message: String },
    #[error("{operation}: {source}")]
    Engine {
        operation: String,
        #[source]
        source: EngineError,
    },
    #[error(transparent)]
    Image(#[from] crate::target::image::ImageError),
    #[error("{operation}: {source}\n  fix: {fix}")]
    Io {
        operation: String,
        fix: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{operation} failed: {detail}\n  fix: {fix}")]
    Tool { operation: String, detail: String, fix: &'static str },
    #[error("the VM image {tag} has no kernel under /boot (linux-image-amd64 did not install one)")]
    NoKernel { tag: String },
}

/// A bootable VM disk with its kernel.
#[derive(Debug, Clone)]
pub struct VmImage {
    /// The docker image it was made from (`unitlab-vm:<suite>-<hash>`).
    pub tag: String,
    pub hash: String,
    pub rootfs: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub reused: bool,
}

/// Where VM disks and the run directories of VMs live: persistent across reboots (the disks
/// take a minute to make), overridable with `UNITLAB_VM_DIR`.
pub fn vm_root() -> PathBuf {
    std::env::var_os("UNITLAB_VM_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/tmp/unitlab-vm"))
}

/// The inputs hash of the VM variant of `base_id`.
pub fn vm_hash(base_id: &str) -> String {
    let mut h = Sha256::new();
    for part in [RECIPE_VERSION, base_id, CONTAINERFILE].into_iter().chain(GUEST_FILES.iter().flat_map(|(n, c)| [*n, *c])) {
        h.update(part.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())[..16].to_string()
}

fn io(operation: impl Into<String>, fix: &'static str) -> impl FnOnce(std::io::Error) -> VmImageError {
    let operation = operation.into();
    move |source| VmImageError::Io { operation, fix, source }
}

const FIX_SPACE: &str = "check that the disk holding UNITLAB_VM_DIR (default /var/tmp/unitlab-vm) is writable and has ~2 GB free";

fn complete(dir: &Path) -> Option<VmImage> {
    let marker = std::fs::read_to_string(dir.join("complete")).ok()?;
    let mut tag = None;
    for line in marker.lines() {
        if let Some(t) = line.strip_prefix("tag=") {
            tag = Some(t.to_string());
        }
    }
    let image = VmImage {
        tag: tag?,
        hash: dir.file_name()?.to_string_lossy().split('-').next()?.to_string(),
        rootfs: dir.join("rootfs.ext4"),
        kernel: dir.join("vmlinuz"),
        initrd: dir.join("initrd.img"),
        reused: true,
    };
    (image.rootfs.exists() && image.kernel.exists() && image.initrd.exists()).then_some(image)
}

/// The VM disk of `base` (a target image or a packages image): found by its hash, else built.
pub async fn ensure_vm_image(engine: &Engine, base: &ImageRef, progress: &dyn Progress) -> Result<VmImage, VmImageError> {
    // What a VM needs on the host, installed here on a fresh machine run as root.
    crate::target::image::install_host_tools(
        &[("qemu-system-x86_64", "qemu-system-x86"), ("qemu-img", "qemu-utils"), ("mkfs.ext4", "e2fsprogs")],
        progress,
    )
    .await?;
    let hash = vm_hash(&base.id);
    let dir = vm_root().join("images").join(format!("{hash}-{DISK_VERSION}"));
    if let Some(found) = complete(&dir) {
        return Ok(found);
    }
    let _lock = BuildLock::acquire(base.suite, progress).await?;
    if let Some(found) = complete(&dir) {
        return Ok(found);
    }
    let started = Instant::now();
    let tag = format!("{VM_REPOSITORY}:{}-{hash}", base.suite.name());
    if image_with_inputs(engine, &tag, &hash).await?.is_none() {
        build(engine, base, &tag, &hash, progress).await?;
    }
    progress.step(&format!("making the VM disk of {tag} ({})", dir.display()));
    let parent = vm_root().join("images");
    std::fs::create_dir_all(&parent).map_err(io(format!("create {}", parent.display()), FIX_SPACE))?;
    let work = tempfile::Builder::new()
        .prefix(&format!(".{hash}-"))
        .tempdir_in(&parent)
        .map_err(io(format!("create a work directory in {}", parent.display()), FIX_SPACE))?;
    let tree = work.path().join("tree");
    std::fs::create_dir(&tree).map_err(io(format!("create {}", tree.display()), FIX_SPACE))?;
    let bytes = export(engine, &tag, &tree).await?;
    // The engine's marker of a container: systemd (and systemd-detect-virt) would take the VM
    // for a Docker container.
    let _ = std::fs::remove_file(tree.join(".dockerenv"));
    let boot = tree.join("boot");
    let newest = |prefix: &str| -> Option<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&boot)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)))
            .collect();
        found.sort();
        found.pop()
    };
    let (Some(kernel), Some(initrd)) = (newest("vmlinuz-"), newest("initrd.img-")) else {
        return Err(VmImageError::NoKernel { tag });
    };
    let out = work.path().join("disk");
    std::fs::create_dir(&out).map_err(io(format!("create {}", out.display()), FIX_SPACE))?;
    std::fs::copy(&kernel, out.join("vmlinuz")).map_err(io(format!("copy {}", kernel.display()), FIX_SPACE))?;
    std::fs::copy(&initrd, out.join("initrd.img")).map_err(io(format!("copy {}", initrd.display()), FIX_SPACE))?;
    // The tar stream is a little larger than the files it carries; with the headroom that
    // leaves room for what scenarios write. The file is sparse: unused blocks cost nothing.
    let size_mib = (bytes + HEADROOM) / (1 << 20);
    let rootfs = out.join("rootfs.ext4");
    let mkfs = tokio::process::Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "unitlab", "-E", "lazy_itable_init=1,lazy_journal_init=1", "-d"])
        .arg(&tree)
        .arg(&rootfs)
        .arg(format!("{size_mib}M"))
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(io("run mkfs.ext4", "install e2fsprogs (`apt-get install e2fsprogs`)"))?;
    if !mkfs.status.success() {
        return Err(VmImageError::Tool {
            operation: format!("mkfs.ext4 -d {}", tree.display()),
            detail: String::from_utf8_lossy(&mkfs.stderr).trim().to_string(),
            fix: "e2fsprogs 1.43 or newer is needed (`mkfs.ext4 -d`); check the free space",
        });
    }
    std::fs::write(out.join("complete"), format!("tag={tag}\nbase={}\n", base.tag)).map_err(io("write the VM disk marker", FIX_SPACE))?;
    // An incomplete disk of a crashed build may sit at the final name without its marker.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&out, &dir).map_err(io(format!("move the VM disk to {}", dir.display()), FIX_SPACE))?;
    progress.finish(&format!("made the VM disk of {tag} in {:.0} s", started.elapsed().as_secs_f64()));
    let mut image = complete(&dir).ok_or_else(|| VmImageError::NoKernel { tag: tag.clone() })?;
    image.reused = false;
    Ok(image)
}

/// `docker build` of guest/Containerfile on `base`.
async fn build(engine: &Engine, base: &ImageRef, tag: &str, hash: &str, progress: &dyn Progress) -> Result<(), VmImageError> {
    progress.step(&format!("building {tag}: Debian's kernel and the guest agent on {}", base.tag));
    let started = Instant::now();
    let mut context = tar::Builder::new(Vec::new());
    let ctx = io("write the VM image build context", FIX_SPACE);
    let mut append = |name: &str, text: &str, mode: u32| {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(mode);
        header.set_mtime(0);
        header.set_cksum();
        context.append_data(&mut header, name, text.as_bytes())
    };
    let mut result = append("Containerfile", CONTAINERFILE, 0o644);
    for (name, text) in GUEST_FILES {
        // Unit files must not be executable (systemd-analyze verify warns of it in every report).
        let mode = if name.ends_with(".service") { 0o644 } else { 0o755 };
        result = result.and_then(|()| append(name, text, mode));
    }
    result.map_err(ctx)?;
    let context = context.into_inner().map_err(io("write the VM image build context", FIX_SPACE))?;
    let labels = HashMap::from([(LABEL_INPUTS.to_string(), hash.to_string()), (LABEL_SUITE.to_string(), base.suite.name().to_string())]);
    let buildargs = HashMap::from([("BASE".to_string(), base.tag.clone())]);
    match run_build(engine, context, tag, &buildargs, &labels, progress).await {
        Ok(_) => {}
        Err(BuildFailure::Step { message, .. }) => return Err(VmImageError::Build { tag: tag.into(), base: base.tag.clone(), message }),
        Err(BuildFailure::Engine(source)) => return Err(VmImageError::Engine { operation: format!("build image {tag}"), source }),
    }
    progress.finish(&format!("built {tag} in {:.0} s", started.elapsed().as_secs_f64()));
    Ok(())
}

/// Unpack the filesystem of `tag` into `tree` (GNU tar, as root: ownership and device nodes
/// kept); returns the size of the stream.
async fn export(engine: &Engine, tag: &str, tree: &Path) -> Result<u64, VmImageError> {
    let docker = engine.docker();
    let api = |operation: String| move |e| VmImageError::Engine { operation: operation.clone(), source: EngineError::api(operation, e) };
    let created = docker
        .create_container(
            None::<bollard::query_parameters::CreateContainerOptions>,
            bollard::models::ContainerCreateBody {
                image: Some(tag.to_string()),
                labels: Some(crate::target::reaper::labels(false)),
                cmd: Some(vec!["/bin/true".into()]),
                ..Default::default()
            },
        )
        .await
        .map_err(api(format!("create a container of {tag} to export its filesystem")))?;
    let result = async {
        let mut tar = tokio::process::Command::new("tar")
            .args(["-x", "--numeric-owner", "-C"])
            .arg(tree)
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io("run tar", "install GNU tar"))?;
        let mut stdin = tar.stdin.take().expect("piped");
        let mut stream = docker.export_container(&created.id);
        let mut bytes = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(api(format!("export the filesystem of {tag}")))?;
            bytes += chunk.len() as u64;
            stdin.write_all(&chunk).await.map_err(io(format!("unpack the filesystem of {tag}"), FIX_SPACE))?;
        }
        drop(stdin);
        let out = tar.wait_with_output().await.map_err(io("wait for tar", FIX_SPACE))?;
        if !out.status.success() {
            return Err(VmImageError::Tool {
                operation: format!("tar -x of {tag}'s filesystem"),
                detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                fix: FIX_SPACE,
            });
        }
        Ok(bytes)
    }
    .await;
    let _ = docker.remove_container(&created.id, Some(RemoveContainerOptionsBuilder::default().force(true).build())).await;
    result
}

/// A crashed build's work directory (`.HASH-XXXX`) is removed once it is this old: a younger
/// one may belong to a build in progress.
const STALE_WORK: std::time::Duration = std::time::Duration::from_secs(3600);

/// Which entries of the VM disk directory (`names`, with their age) `unitlab clean` removes:
/// disks of another [`DISK_VERSION`], disks whose base image is no longer on the engine (their
/// hash is not in `live`), and old work directories of crashed builds. Anything it does not
/// recognise stays.
pub fn stale_disks<'a>(names: &'a [(String, std::time::Duration)], live: &std::collections::HashSet<String>) -> Vec<&'a str> {
    names
        .iter()
        .filter(|(name, age)| match name.strip_prefix('.') {
            Some(work) => work.len() > 17 && work.as_bytes()[16] == b'-' && *age >= STALE_WORK,
            None => match name.split_once('-') {
                Some((hash, version)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    version != DISK_VERSION || !live.contains(hash)
                }
                _ => false,
            },
        })
        .map(|(name, _)| name.as_str())
        .collect()
}

/// `unitlab clean`: remove the VM disks no image on the engine can boot any more (see
/// [`stale_disks`]). Returns what it removed.
pub async fn prune_vm_disks(engine: &Engine) -> Result<Vec<PathBuf>, VmImageError> {
    let dir = vm_root().join("images");
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(Vec::new()) };
    let mut live = std::collections::HashSet::new();
    for label in [LABEL_INPUTS, crate::target::packages::LABEL_PACKAGES] {
        let images = images_labelled(engine, label)
            .await
            .map_err(|source| VmImageError::Engine { operation: "find the VM disks still in use".into(), source })?;
        live.extend(images.iter().map(|img| vm_hash(&img.id)));
    }
    let names: Vec<(String, std::time::Duration)> = entries
        .flatten()
        .map(|e| {
            let age = e.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok()).unwrap_or_default();
            (e.file_name().to_string_lossy().into_owned(), age)
        })
        .collect();
    let mut removed = Vec::new();
    for name in stale_disks(&names, &live) {
        let path = dir.join(name);
        std::fs::remove_dir_all(&path).map_err(io(format!("remove the stale VM disk {}", path.display()), FIX_SPACE))?;
        removed.push(path);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_disks_are_those_of_gone_images_old_versions_and_old_work_directories() {
        let hour = std::time::Duration::from_secs(3600);
        let minute = std::time::Duration::from_secs(60);
        let (a, b) = (vm_hash("sha256:a"), vm_hash("sha256:b"));
        let names: Vec<(String, std::time::Duration)> = [
            (format!("{a}-{DISK_VERSION}"), hour),
            (format!("{b}-{DISK_VERSION}"), hour),
            (format!("{a}-d1"), hour),
            (format!(".{a}-x1y2z3"), minute),
            (format!(".{b}-x1y2z3"), 2 * hour),
            ("notes.txt".to_string(), hour),
            ("run".to_string(), hour),
        ]
        .into_iter()
        .collect();
        let live = std::collections::HashSet::from([a.clone()]);
        assert_eq!(stale_disks(&names, &live), [format!("{b}-{DISK_VERSION}"), format!("{a}-d1"), format!(".{b}-x1y2z3")]);
    }

    #[test]
    fn the_hash_follows_the_base_image() {
        assert_ne!(vm_hash("sha256:1"), vm_hash("sha256:2"));
        assert_eq!(vm_hash("sha256:1"), vm_hash("sha256:1"));
    }

    #[test]
    fn the_recipe_installs_a_kernel_and_the_agent_and_ships_its_files() {
        assert!(CONTAINERFILE.contains("linux-image-amd64") && CONTAINERFILE.contains("qemu-guest-agent"));
        for (name, _) in GUEST_FILES {
            assert!(CONTAINERFILE.contains(name), "{name} is copied into the image");
        }
        assert!(GUEST_FILES[0].1.contains("unitlab.manager="), "the init reads the manager settings");
    }
}
