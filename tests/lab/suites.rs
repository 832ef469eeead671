//! The suites beyond bookworm and trixie, on this host: each boots with the systemd it is
//! named for, runs the (static) buggy server, and shows the version facts the lab relies on:
//! `systemctl kill`'s option name on 247, systemd from backports on bookworm-backports, and
//! sid's systemd 262 on a cgroup2 hierarchy of the target's own.

use rstest::rstest;
use unitlab::Suite;

#[rstest]
#[case::bullseye(Suite::Bullseye)]
#[case::bookworm_backports(Suite::BookwormBackports)]
#[case::sid(Suite::Sid)]
#[tokio::test]
async fn boots_with_its_systemd_and_runs_the_buggy_server(#[case] suite: Suite) {
    let (_engine, target) = crate::support::boot(suite, "suite-test").await;
    println!("{suite}: {} running after {:.2} s", target.systemd_version(), target.boot_time().as_secs_f64());
    assert_eq!(target.systemd_major(), Some(suite.systemd()), "systemd version line: {}", target.systemd_version());
    let state = target.exec(&["systemctl", "is-system-running"]).await.unwrap();
    assert_eq!(state.stdout.trim(), "running", "stderr: {}", state.stderr);
    // One binary for every suite: a dynamically linked one fails on bullseye's older glibc.
    let modes = target.exec(&["/usr/local/bin/buggy-server", "--list-modes"]).await.unwrap();
    assert!(modes.success() && modes.stdout.trim_start().starts_with('['), "buggy-server on {suite}: {}", modes.stderr);
    // The option name the lab passes to `systemctl kill` exists there.
    let opt = format!("{}=main", suite.kill_whom_option());
    let unit = target.exec(&["systemd-run", "--unit", "kill-probe", "sleep", "300"]).await.unwrap();
    assert!(unit.success(), "{}", unit.stderr);
    let kill = target.exec(&["systemctl", "kill", &opt, "--signal=KILL", "kill-probe"]).await.unwrap();
    assert!(kill.success(), "systemctl kill {opt} on {suite}: {}", kill.stderr);
    target.teardown().await.unwrap();
}

#[tokio::test]
async fn systemd_247_knows_only_kill_who() {
    let (_engine, target) = crate::support::boot(Suite::Bullseye, "suite-test").await;
    let out = target.exec(&["systemctl", "kill", "--kill-whom=main", "--signal=0", "dbus"]).await.unwrap();
    assert!(!out.success() && out.stderr.contains("kill-whom"), "247 must refuse --kill-whom= (the lab uses --kill-who= there): {}", out.stderr);
    target.teardown().await.unwrap();
}

#[tokio::test]
async fn bookworm_backports_has_systemd_from_backports_on_bookworm() {
    let (_engine, target) = crate::support::boot(Suite::BookwormBackports, "suite-test").await;
    let pkg = target.exec(&["dpkg-query", "-W", "-f", "${Version}", "systemd"]).await.unwrap();
    assert!(pkg.stdout.contains("~bpo12"), "systemd should come from bookworm-backports: {}", pkg.stdout);
    let os = target.exec(&["cat", "/etc/debian_version"]).await.unwrap();
    assert!(os.stdout.starts_with("12."), "the base stays bookworm: {}", os.stdout);
    target.teardown().await.unwrap();
}

/// sid's systemd needs cgroup v2: it gets a cgroup2 mount that begins at the target's own
/// cgroup (no process of another PID namespace in it, no foreign child cgroups), and the
/// engine's limits still hold (they live in the v1 hierarchies the target does not mount).
#[tokio::test]
async fn sid_runs_on_a_cgroup2_tree_of_its_own() {
    let (_engine, target) = crate::support::boot(Suite::Sid, "suite-test").await;
    let fs = target.exec(&["stat", "-f", "-c", "%T", "/sys/fs/cgroup"]).await.unwrap();
    assert_eq!(fs.stdout.trim(), "cgroup2fs");
    let procs = target.exec(&["sh", "-c", "cat /sys/fs/cgroup/cgroup.procs /sys/fs/cgroup/*/cgroup.procs /sys/fs/cgroup/*/*/cgroup.procs"]).await.unwrap();
    assert!(!procs.stdout.lines().any(|l| l.trim() == "0"), "a process of another PID namespace is visible:\n{}", procs.stdout);
    let top = target.exec(&["sh", "-c", "ls -d /sys/fs/cgroup/*/ | xargs -n1 basename | sort | tr '\\n' ' '"]).await.unwrap();
    for name in top.stdout.split_whitespace() {
        assert!(name == "init.scope" || name.ends_with(".slice") || name.ends_with(".mount"), "a cgroup systemd did not make: {name} (all: {})", top.stdout);
    }
    // No release_agent anywhere in v2, and the v1 hierarchies are not mounted in the target.
    let agent = target.exec(&["sh", "-c", "find /sys/fs/cgroup -name release_agent | head -1; grep -c ' - cgroup ' /proc/self/mountinfo"]).await.unwrap();
    assert_eq!(agent.stdout.trim(), "0", "{}", agent.stdout);
    // A v1 hierarchy mounted by hand also begins at the target's own cgroup (no release_agent).
    let v1 = target.exec(&["sh", "-c", "mkdir -p /tmp/cg && mount -t cgroup -o memory cgroup /tmp/cg && ls /tmp/cg; umount /tmp/cg"]).await.unwrap();
    assert!(!v1.stdout.contains("release_agent"), "a fresh mount of the memory hierarchy reached its real root:\n{}", v1.stdout);
    // The engine's process limit still stops a fork bomb (systemd has no pids controller on
    // this cgroup2 tree, so only the target's v1 limit can): as in tests/lab/isolation.rs.
    let bomb = target
        .exec(&["sh", "-c", "systemd-run --unit=bomb --quiet sh -c 'i=0; while [ $i -lt 1100 ]; do sleep 4 & i=$((i+1)); done; wait'"])
        .await
        .unwrap();
    assert!(bomb.success(), "{}", bomb.stderr);
    let mut refused = 0;
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        if let Ok(out) = target.exec(&["sh", "-c", "journalctl -u bomb --no-pager -o cat | grep -ciE \"can.t fork|cannot fork\""]).await {
            refused = out.stdout.trim().parse().unwrap_or(0);
            if refused > 0 && target.exec(&["systemctl", "is-active", "--quiet", "bomb"]).await.is_ok_and(|o| !o.success()) {
                break;
            }
        }
    }
    assert!(refused > 0, "the limit of {} processes refused none of 1100 forks", unitlab::target::limits::DEFAULT_PIDS);
    target.teardown().await.unwrap();
}

/// Where the engine does not give a container a cgroup2 of its own (simulated with the host's
/// cgroup namespace, whose cgroup2 root holds every process of the host), sid's start-up must
/// refuse to start systemd and leave the reason for the lab to report, not boot systemd on
/// the host's tree.
#[tokio::test]
async fn the_cgroup2_start_up_refuses_a_tree_that_is_not_the_targets_own() {
    use bollard::models::{ContainerCreateBody, HostConfig, HostConfigCgroupnsModeEnum};
    let image = crate::support::image(Suite::Sid).await;
    let engine = crate::support::engine().await;
    let docker = engine.docker();
    let config = ContainerCreateBody {
        image: Some(image.id.clone()),
        labels: Some(unitlab::target::reaper::labels(false)),
        cmd: Some(unitlab::target::container::init_command(Suite::Sid)),
        host_config: Some(HostConfig {
            cgroupns_mode: Some(HostConfigCgroupnsModeEnum::HOST),
            cap_drop: Some(vec!["ALL".into()]),
            cap_add: Some(vec!["SYS_ADMIN".into()]),
            tmpfs: Some([("/sys/fs/cgroup".to_string(), String::new()), ("/run".to_string(), String::new())].into()),
            auto_remove: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    };
    let id = docker.create_container(None::<bollard::query_parameters::CreateContainerOptions>, config).await.unwrap().id;
    docker.start_container(&id, None::<bollard::query_parameters::StartContainerOptions>).await.unwrap();
    let mut reason = String::new();
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let exec = docker
            .create_exec(&id, bollard::exec::CreateExecOptions { cmd: Some(vec!["cat", unitlab::target::container::CGROUP2_REFUSED]), attach_stdout: Some(true), ..Default::default() })
            .await
            .unwrap();
        if let bollard::exec::StartExecResults::Attached { mut output, .. } = docker.start_exec(&exec.id, None).await.unwrap() {
            use futures_util::StreamExt;
            while let Some(Ok(chunk)) = output.next().await {
                reason.push_str(&chunk.to_string());
            }
        }
        if !reason.is_empty() {
            break;
        }
    }
    let comm = docker
        .create_exec(&id, bollard::exec::CreateExecOptions { cmd: Some(vec!["cat", "/proc/1/comm"]), attach_stdout: Some(true), ..Default::default() })
        .await
        .unwrap();
    let mut pid1 = String::new();
    if let bollard::exec::StartExecResults::Attached { mut output, .. } = docker.start_exec(&comm.id, None).await.unwrap() {
        use futures_util::StreamExt;
        while let Some(Ok(chunk)) = output.next().await {
            pid1.push_str(&chunk.to_string());
        }
    }
    let _ = docker.remove_container(&id, Some(bollard::query_parameters::RemoveContainerOptionsBuilder::default().force(true).build())).await;
    assert!(reason.contains("not place it in a cgroup v2 of its own"), "refusal reason: {reason:?}");
    assert_eq!(pid1.trim(), "sleep", "systemd must not have started");
}
