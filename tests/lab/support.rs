//! Shared fixtures for the integration tests: images built once per test binary, targets
//! booted on demand. Each test builds its own `Engine` because bollard's connection pool
//! belongs to the runtime that created it, and every `#[tokio::test]` has its own runtime.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Mutex;

use unitlab::progress::Lines;
use unitlab::{Engine, ImageRef, Suite, Target, TargetOptions};

static IMAGES: Mutex<Option<HashMap<Suite, ImageRef>>> = Mutex::new(None);
/// Serialises image builds: concurrent tests asking for the same image wait for one build.
static BUILD: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub async fn engine() -> Engine {
    Engine::connect().await.expect("a Docker Engine must answer for the integration tests (see .ci/run)")
}

/// The target image of `suite`, built on first use.
pub async fn image(suite: Suite) -> ImageRef {
    let _guard = BUILD.lock().await;
    if let Some(img) = IMAGES.lock().unwrap().get_or_insert_with(HashMap::new).get(&suite) {
        return img.clone();
    }
    let img = unitlab::ensure_image(&engine().await, suite, false, &Lines)
        .await
        .unwrap_or_else(|e| panic!("building the {suite} image: {e}"));
    IMAGES.lock().unwrap().get_or_insert_with(HashMap::new).insert(suite, img.clone());
    img
}

/// Boot a fresh target of `suite`.
pub async fn boot(suite: Suite, purpose: &str) -> (Engine, Target) {
    let image = image(suite).await;
    let engine = engine().await;
    let opts = TargetOptions { purpose: purpose.into(), ..Default::default() };
    let target = Target::boot(&engine, &image, opts)
        .await
        .unwrap_or_else(|e| panic!("booting a {suite} target: {e}"));
    (engine, target)
}

/// Run `argv` in container `id` through the engine (not through a lab target: for tests that
/// watch a target the lab under test owns) and return its stdout.
pub async fn docker_exec(engine: &Engine, id: &str, argv: &[&str]) -> String {
    use bollard::exec::{CreateExecOptions, StartExecResults};
    use futures_util::StreamExt;
    let exec = engine
        .docker()
        .create_exec(id, CreateExecOptions { attach_stdout: Some(true), cmd: Some(argv.iter().map(|s| s.to_string()).collect()), ..Default::default() })
        .await
        .unwrap_or_else(|e| panic!("create exec {argv:?} in {id}: {e}"));
    let mut out = String::new();
    if let Ok(StartExecResults::Attached { mut output, .. }) = engine.docker().start_exec(&exec.id, None).await {
        while let Some(Ok(chunk)) = output.next().await {
            out.push_str(&chunk.to_string());
        }
    }
    out
}
