//! Room on this host for one more container target: inotify instances.
//!
//! Every systemd takes inotify instances (measured here: 6 per idle target: PID 1's watches,
//! journald, the ask-password `.path` units), and the kernel allows
//! `fs.inotify.max_user_instances` per user, 128 by default, where every container's root is
//! the host's root. When they run out, a booting systemd's `.path` units fail (the target comes
//! up "degraded": `systemd-ask-password-console.path ... failed`) and an exec cannot start:
//! measured here with the 72 shipped (scenario, suite) jobs started at once. So a container
//! boot first waits until the host has room for it, as targets of finished scenarios go; the
//! count is read from /proc, so it covers every process of the host, other labs included.
//!
//! Counting needs to read other processes' /proc/PID/fd (root, as the engine needs anyway);
//! where that is not possible the check is skipped, as it was before it existed.

use std::time::{Duration, Instant};

/// Instances one target is allowed for: the 6 measured, and room for units that watch paths.
pub const PER_TARGET: usize = 8;
/// Instances left to the rest of the host (editors, the engine, other tools).
const RESERVE: usize = 8;
const LIMIT_FILE: &str = "/proc/sys/fs/inotify/max_user_instances";
/// How often a waiting boot counts again: targets go when scenarios end, seconds apart.
const POLL: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
#[error(
    "no room for another target on this host after waiting {waited} s: {in_use} of the {limit} inotify instances a user may hold \
     are in use (fs.inotify.max_user_instances), and a systemd needs about {PER_TARGET}\n  \
     fix: raise the limit (`sysctl -w fs.inotify.max_user_instances=1024`), run fewer scenarios at once (`--jobs N`), \
     or remove leftover targets (`unitlab clean`)"
)]
pub struct NoRoom {
    pub limit: usize,
    pub in_use: usize,
    pub waited: u64,
}

/// Whether a boot may go ahead with `in_use` of `limit` instances taken while up to `booting`
/// targets (this one included) may be starting at the same moment, their instances not yet
/// opened.
pub fn has_room(limit: usize, in_use: usize, booting: usize) -> bool {
    limit.saturating_sub(in_use) >= PER_TARGET * booting.max(1) + RESERVE
}

/// Whether the limit leaves room for a single target at all on an otherwise idle host.
pub fn fits_one(limit: usize) -> bool {
    limit >= PER_TARGET + RESERVE
}

/// The per-user limit, if it can be read.
pub fn limit() -> Option<usize> {
    std::fs::read_to_string(LIMIT_FILE).ok()?.trim().parse().ok()
}

/// Inotify instances held by processes of `uid` (the containers' root is the host's: 0), or
/// `None` when other processes' descriptors cannot be read.
pub fn in_use(uid: u32) -> Option<usize> {
    use std::os::unix::fs::MetadataExt;
    let mut count = 0;
    let mut readable = false;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let proc_dir = entry.path();
        if std::fs::metadata(&proc_dir).map(|m| m.uid()).ok() != Some(uid) {
            continue;
        }
        // A process that ended meanwhile, or one not ours to read: skipped.
        let Ok(fds) = std::fs::read_dir(proc_dir.join("fd")) else { continue };
        readable = true;
        count += fds
            .flatten()
            .filter(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == "anon_inode:inotify"))
            .count();
    }
    readable.then_some(count)
}

/// Wait until the host has room for one more target, `booting` of which may start at once.
pub async fn wait_for_room(booting: usize, patience: Duration) -> Result<(), NoRoom> {
    let Some(limit) = limit() else { return Ok(()) };
    let started = Instant::now();
    let mut said = false;
    loop {
        let Some(used) = tokio::task::spawn_blocking(|| in_use(0)).await.ok().flatten() else { return Ok(()) };
        if has_room(limit, used, booting) || !fits_one(limit) {
            if said {
                tracing::info!(waited_ms = started.elapsed().as_millis() as u64, used, limit, "room for a target");
            }
            return Ok(());
        }
        if started.elapsed() >= patience {
            return Err(NoRoom { limit, in_use: used, waited: started.elapsed().as_secs() });
        }
        if !said {
            tracing::info!(used, limit, "waiting for inotify instances before booting a target");
            said = true;
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_counts_every_boot_that_may_be_starting_and_keeps_a_reserve() {
        // The default limit with two idle targets up (12 in use) and two boot slots.
        assert!(has_room(128, 12, 2));
        // 15 targets up: 128 - 90 = 38 >= 2 * 8 + 8.
        assert!(has_room(128, 90, 2));
        // 110 in use: 18 free is too little for two boots at once (2 * 8 + 8), enough for one.
        assert!(!has_room(128, 110, 2));
        assert!(has_room(128, 110, 1));
        assert!(!has_room(128, 128, 1));
        assert!(!has_room(16, 200, 1), "over the limit (a raised then lowered limit) is no room");
    }

    #[test]
    fn a_limit_too_small_for_one_target_is_not_waited_on() {
        assert!(!fits_one(8));
        assert!(fits_one(128));
    }

    #[test]
    fn this_process_is_counted_when_it_holds_an_instance() {
        // SAFETY: inotify_init1 has no preconditions; the fd is closed below.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
        assert!(fd >= 0);
        let uid = unsafe { libc::getuid() };
        let with = in_use(uid).expect("our own descriptors are readable");
        unsafe { libc::close(fd) };
        assert!(with >= 1, "our own inotify instance must be counted");
    }
}
