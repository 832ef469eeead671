//! Host-wide boot slots: at most one systemd boot per core at a time, across every unitlab
//! process on the machine.
//!
//! Booting is the one CPU-bound thing a target does (about a core-second of systemd starting
//! its units); everything after it waits on timers. The runner already bounds boots within one
//! process, but `cargo test` runs many processes at once (the test binary's threads, and the
//! CLI runs they start), and so do CI jobs sharing a host: 40 simultaneous boots on 2 cores
//! each took longer than the 30 s boot deadline. A slot is an flock on one of N files in the
//! temp directory, so a process that dies however it dies gives its slot back.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::PathBuf;
use std::time::Duration;

/// How often a waiting boot looks for a free slot. flock cannot wait for "any one of N
/// files", so waiting is polling; a boot takes hundreds of milliseconds, so 20 ms adds little.
const POLL: Duration = Duration::from_millis(20);

/// A held boot slot; dropping it frees the slot (and this process's turn).
#[derive(Debug)]
pub struct BootSlot {
    _file: File,
    _turn: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// This process's boots take their turns in the order they asked (tokio's semaphore is
/// first-come first-served), before they poll the host-wide slots, which serve whoever polls
/// first. The runner asks in its job order, longest scenario first, so the order holds.
fn turns(count: usize) -> std::sync::Arc<tokio::sync::Semaphore> {
    static TURNS: std::sync::OnceLock<std::sync::Arc<tokio::sync::Semaphore>> = std::sync::OnceLock::new();
    TURNS.get_or_init(|| std::sync::Arc::new(tokio::sync::Semaphore::new(count))).clone()
}

#[derive(Debug, thiserror::Error)]
#[error("take a boot slot ({path}): {source}\n  fix: check that the temp directory is writable, or set UNITLAB_BOOT_SLOTS=0 to boot without slots")]
pub struct SlotError {
    path: String,
    #[source]
    source: std::io::Error,
}

/// How many boots may run at once on this host: `UNITLAB_BOOT_SLOTS` when set (0 turns the
/// limit off), else the number of cores.
pub fn slot_count() -> usize {
    match std::env::var("UNITLAB_BOOT_SLOTS").ok().and_then(|v| v.trim().parse::<usize>().ok()) {
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(2, |n| n.get()),
    }
}

fn slot_dir() -> PathBuf {
    std::env::temp_dir().join("unitlab-boot-slots")
}

/// Wait for a free boot slot. `None` when slots are turned off.
pub async fn acquire() -> Result<Option<BootSlot>, SlotError> {
    let count = slot_count();
    if count == 0 {
        return Ok(None);
    }
    let turn = turns(count).acquire_owned().await.expect("the turns semaphore is never closed");
    let slot = acquire_in(slot_dir(), count).await?;
    Ok(slot.map(|s| BootSlot { _turn: Some(turn), ..s }))
}

async fn acquire_in(dir: PathBuf, count: usize) -> Result<Option<BootSlot>, SlotError> {
    if count == 0 {
        return Ok(None);
    }
    std::fs::create_dir_all(&dir).map_err(|source| SlotError { path: dir.display().to_string(), source })?;
    let mut files = Vec::with_capacity(count);
    for i in 0..count {
        let path = dir.join(format!("slot-{i}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| SlotError { path: path.display().to_string(), source })?;
        files.push((path, file));
    }
    // Start at a different slot in each process so that waiters do not all test slot 0 first.
    let start = std::process::id() as usize % count;
    let mut waited = false;
    loop {
        for k in 0..count {
            let (path, file) = &files[(start + k) % count];
            match file.try_lock() {
                Ok(()) => {
                    if waited {
                        tracing::debug!(slot = %path.display(), "boot slot free after waiting");
                    }
                    let (_, file) = files.swap_remove((start + k) % count);
                    return Ok(Some(BootSlot { _file: file, _turn: None }));
                }
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(source)) => {
                    return Err(SlotError { path: path.display().to_string(), source });
                }
            }
        }
        waited = true;
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_are_exclusive_and_freed_on_drop() {
        // One slot, in a private directory, so that the test does not meet real boots.
        let dir = tempfile::tempdir().unwrap();
        let first = acquire_in(dir.path().into(), 1).await.unwrap().expect("slots are on");
        let second = tokio::time::timeout(Duration::from_millis(200), acquire_in(dir.path().into(), 1)).await;
        assert!(second.is_err(), "a second boot must wait while the only slot is held");
        drop(first);
        let third = tokio::time::timeout(Duration::from_secs(2), acquire_in(dir.path().into(), 1)).await;
        assert!(matches!(third, Ok(Ok(Some(_)))), "the slot must be free once dropped");
        assert!(acquire_in(dir.path().into(), 0).await.unwrap().is_none(), "0 slots turns the limit off");
    }
}
