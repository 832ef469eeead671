//! Target images: one per Debian suite, built without a registry.
//!
//! Base: `debian:<suite>` when the engine has it or can pull it; otherwise a minimal rootfs
//! bootstrapped from Debian's packages with debootstrap and imported as `unitlab-base:<suite>`.
//! On top, the project's `Containerfile` adds systemd, the buggy servers and the PID 1 setup.
//! The result is tagged `unitlab-target:<suite>-<inputs hash>` (and `unitlab-target:<suite>`
//! for the latest build), so an unchanged image is found and reused in well under a second and
//! images of different builds (debug and release buggy-server binaries) coexist.
//!
//! Building takes a host-wide lock per suite: on a fresh machine every process that needs an
//! image (the test binaries, the CLI runs they start) would otherwise debootstrap its own.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bollard::query_parameters::{BuildImageOptionsBuilder, CreateImageOptionsBuilder};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::target::artifacts::{Artifacts, ArtifactsError};
use crate::target::engine::{Engine, EngineError};
use crate::progress::Progress;
use crate::systemd::Suite;

/// The Containerfile is compiled into the binary, so the lab builds the same image wherever
/// it runs from.
pub const CONTAINERFILE: &str = include_str!("../../Containerfile");

/// Bump when the way images are assembled changes in a way the inputs do not show.
const RECIPE_VERSION: &str = "unitlab-image-v1";

pub const LABEL_INPUTS: &str = "unitlab.image.inputs";
pub const LABEL_SUITE: &str = "unitlab.image.suite";

/// A pull that cannot reach a registry fails in milliseconds here; this only bounds a slow one.
const PULL_DEADLINE: Duration = Duration::from_secs(60);

/// A built target image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub suite: Suite,
    pub tag: String,
    pub id: String,
    pub inputs_hash: String,
    /// True when an existing image was reused rather than built.
    pub reused: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Artifacts(#[from] ArtifactsError),
    #[error(
        "building the {suite} base needs debootstrap, which is missing, and this process is not root so it cannot install it\n  \
         fix: `sudo apt-get install debootstrap`, then run the command again"
    )]
    NoDebootstrap { suite: Suite },
    #[error("debootstrap needs root to build the {suite} base (it chroots and creates device nodes)\n  fix: run as root, or import a base yourself as {tag}")]
    NotRoot { suite: Suite, tag: String },
    #[error("{operation} failed (exit {code}):\n{tail}\n  fix: {fix}")]
    Tool { operation: String, code: i32, tail: String, fix: String },
    #[error("{operation}: {source}")]
    Io {
        operation: String,
        #[source]
        source: std::io::Error,
    },
    #[error("image build for {suite} failed: {message}\n  fix: read the build log above; `unitlab image build --suite {suite}` retries")]
    Build { suite: Suite, message: String },
    #[error("image {tag} was built but cannot be found: {detail}")]
    Missing { tag: String, detail: String },
}

fn io(operation: impl Into<String>) -> impl FnOnce(std::io::Error) -> ImageError {
    let operation = operation.into();
    move |source| ImageError::Io { operation, source }
}

/// Return the target image for `suite`, building whatever is missing or stale. With `force`,
/// rebuild even when the inputs are unchanged.
pub async fn ensure_image(
    engine: &Engine,
    suite: Suite,
    force: bool,
    progress: &dyn Progress,
) -> Result<ImageRef, ImageError> {
    let artifacts = crate::target::artifacts::locate(progress)?;
    // Fast path without the lock: the image of these inputs exists (the base is only looked
    // up, never built, when it exists).
    if !force {
        if let Some(found) = existing(engine, suite, &artifacts).await? {
            return Ok(found);
        }
    }
    let _lock = BuildLock::acquire(suite, progress).await?;
    // Another process may have built it while this one waited for the lock.
    if !force {
        if let Some(found) = existing(engine, suite, &artifacts).await? {
            return Ok(found);
        }
    }
    let base = ensure_base(engine, suite, progress).await?;
    let inputs_hash = inputs_hash(suite, &base.1, &artifacts);
    let tag = inputs_tag(suite, &inputs_hash);
    build_target(engine, suite, &base.0, &tag, &inputs_hash, &artifacts, progress).await?;
    let id = image_with_inputs(engine, &tag, &inputs_hash)
        .await?
        .ok_or_else(|| ImageError::Missing { tag: tag.clone(), detail: "its inputs label does not match".into() })?;
    // The plain suite tag follows the latest build, for `docker run` by hand and the doctor.
    let (repo, latest) = suite.target_tag().split_once(':').map(|(r, t)| (r.to_string(), t.to_string())).expect("tag has a colon");
    let opts = bollard::query_parameters::TagImageOptionsBuilder::default().repo(&repo).tag(&latest).build();
    engine
        .docker()
        .tag_image(&id, Some(opts))
        .await
        .map_err(|e| EngineError::api(format!("tag {tag} as {}", suite.target_tag()), e))?;
    Ok(ImageRef { suite, tag, id, inputs_hash, reused: false })
}

/// The tag of the target image built from `inputs_hash`.
pub fn inputs_tag(suite: Suite, inputs_hash: &str) -> String {
    format!("{}-{inputs_hash}", suite.target_tag())
}

/// The image for these artifacts if its base and the image itself both exist already.
async fn existing(engine: &Engine, suite: Suite, artifacts: &Artifacts) -> Result<Option<ImageRef>, ImageError> {
    let Some(base) = existing_base(engine, suite).await else { return Ok(None) };
    let inputs_hash = inputs_hash(suite, &base.1, artifacts);
    let tag = inputs_tag(suite, &inputs_hash);
    Ok(image_with_inputs(engine, &tag, &inputs_hash).await?.map(|id| {
        tracing::debug!(tag = %tag, "image unchanged, reused");
        ImageRef { suite, tag, id, inputs_hash, reused: true }
    }))
}

/// A host-wide lock on building `suite`'s images: an flock on a file in the temp directory,
/// released by the kernel when the holder exits however it exits.
pub(crate) struct BuildLock {
    _file: std::fs::File,
}

impl BuildLock {
    pub(crate) async fn acquire(suite: Suite, progress: &dyn Progress) -> Result<BuildLock, ImageError> {
        Self::acquire_named(suite.name(), &format!("building the {} image", suite.name()), progress).await
    }

    /// The lock named `what` (a suite's images, `base-<release>` for a Debian base that
    /// several suites share, `host-tools` for installing the host's tools); `doing` says what
    /// its holder does, for the message shown while waiting.
    pub(crate) async fn acquire_named(what: &str, doing: &str, progress: &dyn Progress) -> Result<BuildLock, ImageError> {
        let path = std::env::temp_dir().join(format!("unitlab-image-{what}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(format!("open the image build lock {}", path.display())))?;
        match file.try_lock() {
            Ok(()) => return Ok(BuildLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(io(format!("lock {}", path.display()))(e));
            }
        }
        progress.step(&format!("waiting for another unitlab process that is {doing} ({})", path.display()));
        let shown = path.display().to_string();
        let file = tokio::task::spawn_blocking(move || file.lock().map(|()| file))
            .await
            .expect("the lock task does not panic")
            .map_err(io(format!("lock {shown}")))?;
        progress.finish(&format!("the other process finished {doing}"));
        Ok(BuildLock { _file: file })
    }
}

/// The image id of `tag` if it exists and carries `inputs` as its inputs label.
pub(crate) async fn image_with_inputs(engine: &Engine, tag: &str, inputs: &str) -> Result<Option<String>, ImageError> {
    match engine.docker().inspect_image(tag).await {
        Ok(img) => {
            let matches = img
                .config
                .and_then(|c| c.labels)
                .and_then(|l| l.get(LABEL_INPUTS).cloned())
                .is_some_and(|h| h == inputs);
            Ok(if matches { img.id } else { None })
        }
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
        Err(e) => Err(EngineError::api(format!("inspect image {tag}"), e).into()),
    }
}

/// Which images of the lab exist (for the doctor): tag -> id.
pub async fn present_images(engine: &Engine) -> Result<HashMap<String, String>, ImageError> {
    let mut found = HashMap::new();
    for suite in Suite::ALL {
        for tag in [suite.target_tag(), suite.base_tag()] {
            match engine.docker().inspect_image(&tag).await {
                Ok(img) => {
                    found.insert(tag, img.id.unwrap_or_default());
                }
                Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
                Err(e) => return Err(EngineError::api(format!("inspect image {tag}"), e).into()),
            }
        }
    }
    Ok(found)
}

/// The engine's images that carry `label` (any value): the lab's target images
/// ([`LABEL_INPUTS`]) or its packages images.
pub async fn images_labelled(engine: &Engine, label: &str) -> Result<Vec<bollard::models::ImageSummary>, EngineError> {
    let filters = HashMap::from([("label", vec![label])]);
    let opts = bollard::query_parameters::ListImagesOptionsBuilder::default().filters(&filters).build();
    engine.docker().list_images(Some(opts)).await.map_err(|e| EngineError::api(format!("list the images labelled {label}"), e))
}

/// Remove lab target images that a later build has superseded: untagged ones (a rebuild with
/// `--force` took their tag) and, with `older_builds`, also the builds that are not tagged
/// `unitlab-target:<suite>` (the latest build of the suite). No image a container uses is
/// removed. Older builds go only on request (`unitlab clean --all`): builds of different
/// buggy-server binaries (debug, release, `cargo test`'s) are meant to coexist, and another
/// lab process may be about to boot one (seen: `clean` in one test removed the image the other
/// tests of the run were booting). Returns what was removed (a tag, or an image id).
pub async fn prune_superseded(engine: &Engine, older_builds: bool) -> Result<Vec<String>, ImageError> {
    let images = images_labelled(engine, LABEL_INPUTS).await?;
    let latest: Vec<String> = Suite::ALL.iter().map(|s| s.target_tag()).collect();
    let mut removed = Vec::new();
    for img in images {
        let untagged = img.repo_tags.iter().all(|t| t == "<none>:<none>");
        if img.repo_tags.iter().any(|t| latest.contains(t)) || (!untagged && !older_builds) {
            continue;
        }
        let names: Vec<String> = if untagged {
            vec![img.id.clone()]
        } else {
            img.repo_tags.clone()
        };
        for name in names {
            match engine.docker().remove_image(&name, None::<bollard::query_parameters::RemoveImageOptions>, None).await {
                Ok(_) => removed.push(name),
                // In use by a container (kept target, a run in progress): leave it.
                Err(bollard::errors::Error::DockerResponseServerError { status_code: 409, .. }) => {}
                Err(e) => return Err(EngineError::api(format!("remove superseded image {name}"), e).into()),
            }
        }
    }
    Ok(removed)
}

fn inputs_hash(suite: Suite, base_id: &str, artifacts: &Artifacts) -> String {
    let mut h = Sha256::new();
    for part in [
        RECIPE_VERSION.as_bytes(),
        suite.name().as_bytes(),
        base_id.as_bytes(),
        CONTAINERFILE.as_bytes(),
        &artifacts.buggy_server,
        &artifacts.agent,
        artifacts.sidecar.as_bytes(),
    ] {
        // Length-prefix every part so that moving bytes between parts changes the hash.
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    hex::encode(h.finalize())[..16].to_string()
}

/// The Debian base of `suite` if the engine has one: (reference, image id).
async fn existing_base(engine: &Engine, suite: Suite) -> Option<(String, String)> {
    for candidate in [format!("debian:{}", suite.recipe().base), suite.base_tag()] {
        if let Ok(img) = engine.docker().inspect_image(&candidate).await {
            return Some((candidate, img.id.unwrap_or_default()));
        }
    }
    None
}

/// Make sure a Debian base exists for `suite`; returns (reference, image id).
async fn ensure_base(engine: &Engine, suite: Suite, progress: &dyn Progress) -> Result<(String, String), ImageError> {
    let docker = engine.docker();
    if let Some(found) = existing_base(engine, suite).await {
        return Ok(found);
    }
    // Suites that share a base (bookworm, bookworm-backports) must not bootstrap it twice.
    let base = suite.recipe().base;
    let _lock = BuildLock::acquire_named(&format!("base-{base}"), &format!("building the Debian {base} base image"), progress).await?;
    if let Some(found) = existing_base(engine, suite).await {
        return Ok(found);
    }
    let official = format!("debian:{base}");
    progress.step(&format!("pulling {official}"));
    if try_pull(engine, &official).await {
        if let Ok(img) = docker.inspect_image(&official).await {
            progress.finish(&format!("pulled {official}"));
            return Ok((official, img.id.unwrap_or_default()));
        }
    }
    progress.finish(&format!("{official} cannot be pulled (no registry): bootstrapping it from Debian's packages"));
    bootstrap_base(engine, suite, progress).await?;
    let tag = suite.base_tag();
    let img = docker
        .inspect_image(&tag)
        .await
        .map_err(|e| ImageError::Missing { tag: tag.clone(), detail: e.to_string() })?;
    Ok((tag, img.id.unwrap_or_default()))
}

async fn try_pull(engine: &Engine, reference: &str) -> bool {
    let opts = CreateImageOptionsBuilder::default().from_image(reference).build();
    let pull = async {
        let mut stream = engine.docker().create_image(Some(opts), None, None);
        while let Some(item) = stream.next().await {
            if item.is_err() {
                return false;
            }
        }
        true
    };
    tokio::time::timeout(PULL_DEADLINE, pull).await.unwrap_or(false)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// How long the host's apt-get waits for a lock another apt holds (apt 1.9.11 and newer).
const APT_LOCK_TIMEOUT: &str = "DPkg::Lock::Timeout=300";

/// Make sure the host has each `(program, Debian package)`: as root with apt, the missing ones
/// are installed (once, with progress), as the README's fresh machine (Docker and root) needs;
/// otherwise the error names the packages to install.
pub(crate) async fn install_host_tools(tools: &[(&str, &str)], progress: &dyn Progress) -> Result<(), ImageError> {
    let missing = || -> Vec<&str> { tools.iter().filter(|(program, _)| find_in_path(program).is_none()).map(|(_, package)| *package).collect() };
    if missing().is_empty() {
        return Ok(());
    }
    // Several lab processes (the tests run VM tests side by side) find the same tools missing
    // at once; apt-get takes its lock without waiting, so all but one failed with "Could not
    // get lock /var/lib/apt/lists/lock" on a fresh machine. One installs, the others wait
    // for it here and then find nothing missing.
    let _lock = BuildLock::acquire_named("host-tools", "installing the host's tools with apt-get", progress).await?;
    let missing = missing();
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    if !is_root() || find_in_path("apt-get").is_none() {
        return Err(ImageError::Tool {
            operation: format!("find {}", tools.iter().map(|(p, _)| *p).collect::<Vec<_>>().join(", ")),
            code: -1,
            tail: format!("  not on PATH: {list} (as Debian packages)"),
            fix: format!("install them: `sudo apt-get install {list}` (the lab does this itself when it runs as root with apt)"),
        });
    }
    progress.step(&format!("installing {list} with apt-get"));
    // Another program's apt (not a lab process) is waited for too, up to five minutes.
    let mut update = tokio::process::Command::new("apt-get");
    update.args(["update", "-q", "-o", APT_LOCK_TIMEOUT]);
    run_logged(update, "apt-get update", "check the host's apt sources", progress).await?;
    let mut install = tokio::process::Command::new("apt-get");
    install.args(["install", "-y", "-q", "--no-install-recommends", "-o", APT_LOCK_TIMEOUT]).args(&missing).env("DEBIAN_FRONTEND", "noninteractive");
    run_logged(install, &format!("apt-get install {list}"), &format!("install them by hand: `apt-get install {list}`"), progress).await?;
    progress.finish(&format!("{list} installed"));
    Ok(())
}

/// Run a command, streaming its output lines to `progress`; on failure return the tail.
async fn run_logged(
    mut cmd: tokio::process::Command,
    operation: &str,
    fix: &str,
    progress: &dyn Progress,
) -> Result<(), ImageError> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null()).kill_on_drop(true);
    let mut child = cmd.spawn().map_err(io(format!("start {operation}")))?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let mut lines = Box::pin(futures_util::stream::select(
        tokio_stream_lines(BufReader::new(stdout)),
        tokio_stream_lines(BufReader::new(stderr)),
    ));
    let mut tail: Vec<String> = Vec::new();
    while let Some(line) = lines.next().await {
        progress.detail(&line);
        tail.push(line);
        if tail.len() > 15 {
            tail.remove(0);
        }
    }
    let status = child.wait().await.map_err(io(format!("wait for {operation}")))?;
    if !status.success() {
        return Err(ImageError::Tool {
            operation: operation.to_string(),
            code: status.code().unwrap_or(-1),
            tail: tail.join("\n"),
            fix: fix.to_string(),
        });
    }
    Ok(())
}

fn tokio_stream_lines<R: tokio::io::AsyncBufRead + Unpin + Send + 'static>(
    reader: R,
) -> impl futures_util::Stream<Item = String> + Send {
    futures_util::stream::unfold(reader.lines(), |mut lines| async move {
        match lines.next_line().await {
            Ok(Some(line)) => Some((line, lines)),
            _ => None,
        }
    })
}

/// Bootstrap a minimal Debian rootfs and import it as `unitlab-base:<suite>`.
async fn bootstrap_base(engine: &Engine, suite: Suite, progress: &dyn Progress) -> Result<(), ImageError> {
    if !is_root() {
        return Err(if find_in_path("debootstrap").is_none() {
            ImageError::NoDebootstrap { suite }
        } else {
            ImageError::NotRoot { suite, tag: suite.base_tag() }
        });
    }
    install_host_tools(&[("debootstrap", "debootstrap")], progress).await?;
    let work = tempfile::Builder::new()
        .prefix("unitlab-rootfs-")
        .tempdir()
        .map_err(io("create a directory for the rootfs"))?;
    let rootfs = work.path().join("rootfs");
    let started = Instant::now();
    let release = suite.recipe().base;
    progress.step(&format!("bootstrapping a minimal Debian {release} with debootstrap (about a minute)"));
    let mut cmd = tokio::process::Command::new(find_in_path("debootstrap").expect("checked above"));
    cmd.args(["--variant=minbase", release]).arg(&rootfs);
    // The host's own mirror, so that whatever apt reaches here, debootstrap reaches too.
    if let Some(mirror) = std::env::var("UNITLAB_DEBIAN_MIRROR").ok().or_else(host_debian_mirror) {
        cmd.arg(mirror);
    }
    run_logged(
        cmd,
        &format!("debootstrap {release}"),
        "check that Debian's package mirror is reachable (apt-get update), or set UNITLAB_DEBIAN_MIRROR",
        progress,
    )
    .await?;
    progress.finish(&format!("bootstrapped {release} in {:.0} s", started.elapsed().as_secs_f64()));
    progress.step(&format!("importing the rootfs as {}", suite.base_tag()));
    import_rootfs(engine, &rootfs, suite).await?;
    progress.finish(&format!("imported {}", suite.base_tag()));
    Ok(())
}

/// The first plain Debian archive URI in the host's apt sources (deb822 or one-line format).
fn host_debian_mirror() -> Option<String> {
    let mut texts = Vec::new();
    if let Ok(t) = std::fs::read_to_string("/etc/apt/sources.list") {
        texts.push(t);
    }
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut paths: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            let ext_ok = p.extension().is_some_and(|e| e == "sources" || e == "list");
            if ext_ok {
                if let Ok(t) = std::fs::read_to_string(&p) {
                    texts.push(t);
                }
            }
        }
    }
    texts.iter().find_map(|t| parse_debian_mirror(t))
}

fn parse_debian_mirror(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .flat_map(|l| {
            let uris: Vec<&str> = if let Some(rest) = l.strip_prefix("URIs:") {
                rest.split_whitespace().collect()
            } else if l.starts_with("deb ") {
                l.split_whitespace().filter(|w| w.contains("://")).take(1).collect()
            } else {
                Vec::new()
            };
            uris.into_iter().map(str::to_string).collect::<Vec<_>>()
        })
        .find(|u| u.trim_end_matches('/').ends_with("/debian"))
}

/// Stream `tar -c` of the rootfs into the engine's image import. GNU tar rather than the tar
/// crate because a rootfs holds device nodes, hard links and ownership that must survive.
async fn import_rootfs(engine: &Engine, rootfs: &Path, suite: Suite) -> Result<(), ImageError> {
    let mut tar = tokio::process::Command::new("tar");
    tar.arg("-C")
        .arg(rootfs)
        .args(["--numeric-owner", "-c", "."])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = tar.spawn().map_err(io("start tar for the rootfs import"))?;
    let stdout = child.stdout.take().expect("piped");
    let body = tokio_util::io::ReaderStream::new(stdout);
    let opts = CreateImageOptionsBuilder::default()
        .from_src("-")
        .repo("unitlab-base")
        .tag(suite.recipe().base)
        .build();
    let mut stream = engine.docker().create_image(
        Some(opts),
        Some(bollard::body_try_stream(body)),
        None,
    );
    while let Some(item) = stream.next().await {
        item.map_err(|e| EngineError::api(format!("import rootfs as {}", suite.base_tag()), e))?;
    }
    let out = child.wait_with_output().await.map_err(io("wait for tar"))?;
    if !out.status.success() {
        return Err(ImageError::Tool {
            operation: "tar of the rootfs".into(),
            code: out.status.code().unwrap_or(-1),
            tail: String::from_utf8_lossy(&out.stderr).into_owned(),
            fix: "check free disk space under the temp directory".into(),
        });
    }
    Ok(())
}

/// A tar archive (the build context) holding the Containerfile and the service artifacts.
fn build_context(artifacts: &Artifacts) -> Result<Vec<u8>, ImageError> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8], mode: u32| -> std::io::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_mtime(0);
        header.set_cksum();
        builder.append_data(&mut header, name, data)
    };
    add("Containerfile", CONTAINERFILE.as_bytes(), 0o644).map_err(io("write the build context"))?;
    add("buggy-server", &artifacts.buggy_server, 0o755).map_err(io("write the build context"))?;
    add("unitlab-agent", &artifacts.agent, 0o755).map_err(io("write the build context"))?;
    add("watchdog-sidecar", artifacts.sidecar.as_bytes(), 0o755).map_err(io("write the build context"))?;
    builder.into_inner().map_err(io("finish the build context"))
}

/// Why a `docker build` failed: one of the Containerfile's steps (its message, and the build's
/// whole output for callers that read it), or the engine itself.
pub(crate) enum BuildFailure {
    Step { message: String, log: String },
    Engine(EngineError),
}

/// `docker build` of `context` (a tar holding a `Containerfile`) as `tag`, streaming the build's
/// output lines to `progress`; the build's whole output on success. One place for the target,
/// packages and VM images.
pub(crate) async fn run_build(
    engine: &Engine,
    context: Vec<u8>,
    tag: &str,
    buildargs: &HashMap<String, String>,
    labels: &HashMap<String, String>,
    progress: &dyn Progress,
) -> Result<String, BuildFailure> {
    let opts = BuildImageOptionsBuilder::default()
        .dockerfile("Containerfile")
        .t(tag)
        .rm(true)
        .forcerm(true)
        .buildargs(buildargs)
        .labels(labels)
        .build();
    let mut stream = engine.docker().build_image(opts, None, Some(bollard::body_full(context.into())));
    let mut log = String::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(line) = info.stream.as_deref().map(str::trim_end).filter(|l| !l.is_empty()) {
                    progress.detail(line);
                    log.push_str(line);
                    log.push('\n');
                }
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => return Err(BuildFailure::Step { message: error, log }),
            Err(e) => return Err(BuildFailure::Engine(EngineError::api(format!("build image {tag}"), e))),
        }
    }
    Ok(log)
}

async fn build_target(
    engine: &Engine,
    suite: Suite,
    base: &str,
    tag: &str,
    inputs_hash: &str,
    artifacts: &Artifacts,
    progress: &dyn Progress,
) -> Result<(), ImageError> {
    let started = Instant::now();
    progress.step(&format!("building {tag} from the Containerfile on {base}"));
    let context = build_context(artifacts)?;
    let mut buildargs = HashMap::from([("BASE".to_string(), base.to_string())]);
    if let Some(from) = suite.recipe().systemd_from {
        buildargs.insert("SYSTEMD_FROM".to_string(), from.to_string());
    }
    let labels = HashMap::from([
        (LABEL_INPUTS.to_string(), inputs_hash.to_string()),
        (LABEL_SUITE.to_string(), suite.name().to_string()),
    ]);
    match run_build(engine, context, tag, &buildargs, &labels, progress).await {
        Ok(_) => {}
        Err(BuildFailure::Step { message, .. }) => return Err(ImageError::Build { suite, message }),
        Err(BuildFailure::Engine(e)) => return Err(e.into()),
    }
    progress.finish(&format!("built {tag} in {:.0} s", started.elapsed().as_secs_f64()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_is_read_from_deb822_and_one_line_sources() {
        let deb822 = "Types: deb\n# URIs: http://old.example/debian\nURIs: http://mirror.example/debian\nSuites: bookworm\n\nTypes: deb\nURIs: http://mirror.example/debian-security\n";
        assert_eq!(parse_debian_mirror(deb822).as_deref(), Some("http://mirror.example/debian"));
        let oneline = "deb [arch=amd64] http://m.example/debian/ bookworm main\n";
        assert_eq!(parse_debian_mirror(oneline).as_deref(), Some("http://m.example/debian/"));
        assert_eq!(parse_debian_mirror("deb http://m.example/debian-security bookworm-security main"), None);
    }

    #[test]
    fn inputs_hash_changes_with_every_input() {
        let a = Artifacts { buggy_server: vec![1, 2, 3], agent: vec![5], sidecar: "x".into(), buggy_server_path: PathBuf::new() };
        let base = inputs_hash(Suite::Bookworm, "sha256:1", &a);
        assert_eq!(base, inputs_hash(Suite::Bookworm, "sha256:1", &a), "stable for equal inputs");
        assert_ne!(base, inputs_hash(Suite::Trixie, "sha256:1", &a));
        assert_ne!(base, inputs_hash(Suite::Bookworm, "sha256:2", &a));
        let b = Artifacts { buggy_server: vec![1, 2, 4], ..a.clone() };
        assert_ne!(base, inputs_hash(Suite::Bookworm, "sha256:1", &b));
        let c = Artifacts { sidecar: "y".into(), ..a.clone() };
        assert_ne!(base, inputs_hash(Suite::Bookworm, "sha256:1", &c));
        let d = Artifacts { agent: vec![6], ..a.clone() };
        assert_ne!(base, inputs_hash(Suite::Bookworm, "sha256:1", &d));
    }

    #[test]
    fn suites_parse_and_name_their_tags() {
        assert_eq!("trixie".parse::<Suite>(), Ok(Suite::Trixie));
        assert!("buster".parse::<Suite>().unwrap_err().contains("bookworm, bookworm-backports, trixie"));
        assert_eq!(Suite::Bookworm.target_tag(), "unitlab-target:bookworm");
    }

    #[test]
    fn containerfile_makes_systemd_pid_1_with_the_halt_signal() {
        assert!(CONTAINERFILE.contains("STOPSIGNAL SIGRTMIN+3"));
        assert!(CONTAINERFILE.contains("/sbin/init"));
        assert!(CONTAINERFILE.contains("buggy-server"));
    }
}
