//! The files from `services/` that go into a target image: the `buggy-server` binary, the
//! `unitlab-agent` binary (the lab's command channel, see services/src/agent.rs; built by the
//! same crate, so it is always found beside buggy-server) and the watchdog sidecar script.
//!
//! The sidecar is compiled into the lab. The binary is a build product of another crate of
//! this workspace, so it is found at run time: `UNITLAB_BUGGY_SERVER` if set; else the static
//! build beside the running executable's target directory (`target/<host triple>/<profile>/`,
//! found from `target/<profile>/` and from test binaries one level down in `deps/`) when it is
//! newer than the services sources; else it is built with cargo from the workspace this lab
//! was compiled in, so a fresh checkout needs no extra step.
//!
//! Static (glibc's static-pie, `-C target-feature=+crt-static`), because one binary goes into
//! every suite's image and a dynamic one needs the build host's glibc: bullseye's 2.31 refused
//! the binary built against bookworm's 2.36 ("version `GLIBC_2.34' not found"). Cargo applies
//! those flags to the one crate only when `--target` is given (build scripts and proc macros
//! stay dynamic), hence the host triple in the path.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::SystemTime;

use crate::progress::Progress;

pub const SIDECAR: &str = include_str!("../../services/sidecar/watchdog-sidecar.sh");

/// Where this lab's workspace was at compile time (used to build the servers when missing).
const WORKSPACE: &str = env!("CARGO_MANIFEST_DIR");

#[derive(Debug, Clone)]
pub struct Artifacts {
    pub buggy_server: Vec<u8>,
    pub buggy_server_path: PathBuf,
    pub agent: Vec<u8>,
    pub sidecar: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ArtifactsError {
    #[error("UNITLAB_BUGGY_SERVER points at {path}, which cannot be read: {source}\n  fix: point it at a built buggy-server binary, or unset it")]
    Override {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the buggy-server binary was not found beside {exe} and there is no workspace at {workspace} to build it from\n  \
         fix: build it (`RUSTFLAGS=\"-C target-feature=+crt-static\" cargo build -p buggy-server --target {HOST_TRIPLE}`) and set UNITLAB_BUGGY_SERVER to its path"
    )]
    NotFound { exe: PathBuf, workspace: PathBuf },
    #[error("building buggy-server with cargo failed (exit {code}):\n{stderr}\n  fix: run `cargo build -p buggy-server` in {workspace} and fix what it reports")]
    Build { code: i32, stderr: String, workspace: PathBuf },
    #[error("{operation}: {source}")]
    Io {
        operation: String,
        #[source]
        source: std::io::Error,
    },
}

/// Find (or build) the service artifacts.
pub fn locate(progress: &dyn Progress) -> Result<Artifacts, ArtifactsError> {
    let path = binary_path(progress)?;
    let buggy_server = std::fs::read(&path).map_err(|source| ArtifactsError::Io {
        operation: format!("read {}", path.display()),
        source,
    })?;
    let agent_path = agent_beside(&path);
    let agent = std::fs::read(&agent_path).map_err(|source| ArtifactsError::Io {
        operation: format!("read {} (the command channel, built beside buggy-server by the same crate)", agent_path.display()),
        source,
    })?;
    Ok(Artifacts { buggy_server, buggy_server_path: path, agent, sidecar: SIDECAR.to_string() })
}

/// The agent binary of a buggy-server build: the other binary of the same crate, same folder.
fn agent_beside(buggy_server: &Path) -> PathBuf {
    buggy_server.with_file_name("unitlab-agent")
}

fn binary_path(progress: &dyn Progress) -> Result<PathBuf, ArtifactsError> {
    if let Some(p) = std::env::var_os("UNITLAB_BUGGY_SERVER") {
        let p = PathBuf::from(p);
        std::fs::metadata(&p).map_err(|source| ArtifactsError::Override { path: p.clone(), source })?;
        return Ok(p);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let workspace = PathBuf::from(WORKSPACE);
    let sources_changed = newest_mtime(&workspace.join("services"));
    // target/<profile>/unitlab or target/<profile>/deps/<test> -> target/<triple>/<profile>/.
    let candidates = exe.ancestors().skip(1).take(2).filter_map(|dir| {
        let profile = dir.file_name()?;
        Some(dir.parent()?.join(HOST_TRIPLE).join(profile).join("buggy-server"))
    });
    // A binary that exists and is not older than the sources; with no sources beside us (an
    // installed lab) whatever binary is there is the one.
    let fresh = |path: &Path| {
        std::fs::metadata(path).is_ok_and(|meta| sources_changed.is_none_or(|changed| meta.modified().is_ok_and(|built| built >= changed)))
    };
    for candidate in candidates {
        if fresh(&candidate) && fresh(&agent_beside(&candidate)) {
            return Ok(candidate);
        }
    }
    if !workspace.join("services").join("Cargo.toml").is_file() {
        return Err(ArtifactsError::NotFound { exe, workspace });
    }
    build_with_cargo(&workspace, &exe, progress)
}

/// Newest modification time of any file under `dir` (None when the directory is absent).
fn newest_mtime(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).ok()?.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(path);
            } else if let Ok(m) = meta.modified() {
                newest = newest.max(Some(m));
            }
        }
    }
    newest
}

/// The triple the static build names (`--target`): this host's, which the lab runs on.
const HOST_TRIPLE: &str = if cfg!(target_arch = "aarch64") { "aarch64-unknown-linux-gnu" } else { "x86_64-unknown-linux-gnu" };

/// `cargo build -p buggy-server` in the lab's own profile, statically linked (see the module
/// doc), reading the binary's path from cargo's JSON messages rather than guessing it.
fn build_with_cargo(workspace: &Path, exe: &Path, progress: &dyn Progress) -> Result<PathBuf, ArtifactsError> {
    progress.step("building buggy-server and unitlab-agent with cargo, statically linked (a binary is missing or older than its sources)");
    let release = exe.components().any(|c| c.as_os_str() == "release");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.current_dir(workspace)
        .args(["build", "-p", "buggy-server", "--bin", "buggy-server", "--bin", "unitlab-agent", "--target", HOST_TRIPLE, "--message-format=json-render-diagnostics"])
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if release {
        cmd.arg("--release");
    }
    let out = cmd.output().map_err(|source| ArtifactsError::Io { operation: "run cargo build -p buggy-server".into(), source })?;
    if !out.status.success() {
        return Err(ArtifactsError::Build {
            code: out.status.code().unwrap_or(-1),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            workspace: workspace.to_path_buf(),
        });
    }
    let path = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"]["name"] == "buggy-server")
        .find_map(|v| v["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| ArtifactsError::NotFound { exe: exe.to_path_buf(), workspace: workspace.to_path_buf() })?;
    progress.finish(&format!("built {}", path.display()));
    Ok(path)
}
