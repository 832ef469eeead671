//! A target is not a door to the host (issue 13). Each test tries, from inside a booted
//! target as root, an escape that worked when targets had the host's /sys/fs/cgroup bound
//! read-write, host cgroup namespace, no seccomp and no limits, and asserts it fails now.

use unitlab::Suite;

/// Run a shell line in the target as root; (exit code, stdout + stderr).
async fn sh(target: &unitlab::Target, line: &str) -> (i64, String) {
    let out = target.exec(&["sh", "-c", line]).await.unwrap();
    (out.exit_code, format!("{}{}", out.stdout, out.stderr))
}

#[tokio::test]
async fn a_target_sees_only_its_own_cgroups_and_no_release_agent() {
    let (_e1, a) = crate::support::boot(Suite::Bookworm, "isolation-a").await;
    let (_e2, b) = crate::support::boot(Suite::Bookworm, "isolation-b").await;

    // Every hierarchy's visible root is the target's own cgroup.
    let (_, cgroups) = sh(&a, "cat /proc/1/cgroup").await;
    for line in cgroups.lines() {
        assert!(line.ends_with(":/") || line.ends_with(":/init.scope"), "PID 1 must be at its namespace's root, got {line:?}");
    }
    // release_agent (cgroup v1's run-this-on-the-host hook) exists only in a hierarchy's real
    // root; not in anything the target can mount or reach.
    let (_, found) = sh(&a, "find /sys/fs/cgroup -maxdepth 2 -name release_agent 2>/dev/null | head -5").await;
    assert_eq!(found.trim(), "", "release_agent visible in the target");
    let (code, out) = sh(&a, "mkdir -p /tmp/cg && mount -t cgroup -o memory cgroup /tmp/cg && ls /tmp/cg").await;
    assert!(code != 0 || !out.contains("release_agent"), "a fresh mount of the memory hierarchy reached its real root:\n{out}");

    // The other target's cgroups are nowhere in this one (it froze its neighbour before by
    // writing the neighbour's freezer.state).
    let (_, hits) = sh(&a, &format!("grep -rl {} /sys/fs/cgroup 2>/dev/null | head -3; find /sys/fs/cgroup -name '*{}*' | head -3", b.id(), &b.id()[..12])).await;
    assert_eq!(hits.trim(), "", "the neighbour's cgroups are visible");
    let (code, _) = sh(&a, "test -e /sys/fs/cgroup/freezer/docker").await;
    assert_ne!(code, 0, "the host's docker cgroup tree is visible");
    a.teardown().await.unwrap();
    b.teardown().await.unwrap();
}

#[tokio::test]
async fn a_target_is_limited_and_filtered() {
    let (_engine, t) = crate::support::boot(Suite::Trixie, "isolation-limits").await;
    let (_, pids) = sh(&t, "cat /sys/fs/cgroup/pids/pids.max").await;
    assert_eq!(pids.trim(), unitlab::target::limits::DEFAULT_PIDS.to_string(), "process limit");
    let (_, mem) = sh(&t, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes").await;
    assert_eq!(mem.trim(), unitlab::target::limits::DEFAULT_MEMORY.to_string(), "memory limit");
    // The engine's default seccomp filter is on (mode 2), for PID 1 and what it starts.
    let (_, status) = sh(&t, "grep '^Seccomp:' /proc/1/status").await;
    assert_eq!(status.split_whitespace().nth(1), Some("2"), "seccomp: {status}");
    // Capabilities: exactly the measured set (CapBnd of PID 1).
    let (_, bnd) = sh(&t, "grep '^CapBnd:' /proc/1/status").await;
    let mask = u64::from_str_radix(bnd.split_whitespace().nth(1).unwrap(), 16).unwrap();
    let bit = |name: &str| -> u64 {
        let n = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP", "LINUX_IMMUTABLE",
            "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT",
            "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE",
            "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP"]
            .iter()
            .position(|c| *c == name)
            .unwrap_or_else(|| panic!("{name}"));
        1 << n
    };
    let want = unitlab::target::container::CAPABILITIES.iter().fold(0, |m, c| m | bit(c));
    assert_eq!(mask, want, "CapBnd {bnd}");
    // A fork bomb stops at the target's limit: 1100 sleeps asked for in a transient unit
    // without systemd's own TasksMax= (which would stop it first, at 15% of the limit), and
    // dash reports the forks the limit refused ("can't fork" / "Cannot fork"). Once the sleeps
    // end the target works again.
    let (code, out) = sh(&t, "systemd-run --unit=bomb --quiet -p TasksMax=infinity sh -c 'i=0; while [ $i -lt 1100 ]; do sleep 4 & i=$((i+1)); done; wait'").await;
    assert_eq!(code, 0, "{out}");
    let mut refused = 0;
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        // An exec may itself be refused while the bomb holds every process slot.
        if let Ok(out) = t.exec(&["sh", "-c", "journalctl -u bomb --no-pager -o cat | grep -ciE \"can.t fork|cannot fork\""]).await {
            refused = out.stdout.trim().parse().unwrap_or(0);
            if refused > 0 && t.exec(&["systemctl", "is-active", "--quiet", "bomb"]).await.is_ok_and(|o| !o.success()) {
                break;
            }
        }
    }
    assert!(refused > 0, "the limit of {} processes refused none of 1100 forks", unitlab::target::limits::DEFAULT_PIDS);
    // Still a working systemd: a unit starts and stops.
    let (code, out) = sh(&t, "systemctl reset-failed bomb; systemd-run --wait --quiet true && systemctl is-system-running").await;
    assert_eq!((code, out.trim()), (0, "running"));
    t.teardown().await.unwrap();
}
