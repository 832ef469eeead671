//! Running the real `unitlab` binary from a test, from the repository's root.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_unitlab");
/// An engine address where nothing answers: any contact with the engine turns into exit 3.
pub const NO_ENGINE: &str = "unix:///nonexistent.sock";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run `unitlab ARGS` (with `DOCKER_HOST` set when given) and collect its output.
pub fn unitlab(args: &[&str], docker_host: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(repo()).env("NO_COLOR", "1");
    if let Some(host) = docker_host {
        cmd.env("DOCKER_HOST", host);
    }
    cmd.output().unwrap_or_else(|e| panic!("running {BIN}: {e}"))
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
