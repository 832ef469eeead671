//! `unitlab doctor`: is this machine ready to run the lab? Each check says what it found and,
//! when it fails, the command that fixes it. The checks never hang: the engine connection has
//! a deadline and a test boot has its own.

use std::time::Duration;

use crate::target::engine::{CgroupVersion, Engine};
use crate::systemd::Suite;
use crate::target::image;
use crate::target::reaper;
use crate::target::{Target, TargetOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub detail: String,
    pub fix: Option<String>,
}

impl Check {
    pub(crate) fn ok(name: &str, detail: impl Into<String>) -> Check {
        Check { name: name.into(), status: Status::Ok, detail: detail.into(), fix: None }
    }
    pub(crate) fn warn(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { name: name.into(), status: Status::Warn, detail: detail.into(), fix: Some(fix.into()) }
    }
    pub(crate) fn fail(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { name: name.into(), status: Status::Fail, detail: detail.into(), fix: Some(fix.into()) }
    }
}

/// A test boot gets less time than a normal one: the doctor must answer promptly.
const DOCTOR_BOOT_DEADLINE: Duration = Duration::from_secs(15);

/// Run every check, in order; later checks that need the engine are skipped when it is absent.
pub async fn run_checks(suites: &[Suite]) -> Vec<Check> {
    let mut checks = Vec::new();
    let engine = match Engine::connect().await {
        Ok(engine) => {
            let i = engine.info();
            checks.push(Check::ok(
                "engine",
                format!("Docker Engine {} (API {}) at {}", i.server_version, i.api_version, i.endpoint),
            ));
            engine
        }
        Err(e) => {
            let msg = e.to_string();
            let (detail, fix) = msg.split_once("\n  fix: ").unwrap_or((&msg, "start dockerd"));
            checks.push(Check::fail("engine", detail, fix));
            return checks;
        }
    };
    let i = engine.info();
    checks.push(match i.cgroup_version {
        CgroupVersion::V1 => Check::ok(
            "cgroup",
            format!("cgroup v1 ({} driver): targets get a private cgroup namespace and mount their own hierarchies", i.cgroup_driver),
        ),
        CgroupVersion::V2 => Check::warn(
            "cgroup",
            "cgroup v2: targets use a private cgroup namespace; this layout is not verified on this workplace's hosts (v1)",
            "if a test boot below fails, report the target's `journalctl -b` output",
        ),
    });
    if i.cgroup_version == CgroupVersion::V1 && i.local {
        checks.push(unjoined_hierarchies_check(
            &std::fs::read_to_string("/proc/cgroups").unwrap_or_default(),
            &std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default(),
        ));
    }
    let needs_v2: Vec<Suite> = suites.iter().copied().filter(|s| s.needs_cgroup_v2()).collect();
    if i.cgroup_version == CgroupVersion::V1 && i.local && !needs_v2.is_empty() {
        checks.push(unified_check(&needs_v2, &std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default()));
    }
    if i.local {
        if let Some(check) = room_check(crate::target::capacity::limit(), crate::target::capacity::in_use(0)) {
            checks.push(check);
        }
    }
    let present = image::present_images(&engine).await.unwrap_or_default();
    let mut bootable = Vec::new();
    for suite in suites {
        let tag = suite.target_tag();
        match present.get(&tag) {
            Some(id) => {
                checks.push(Check::ok(&format!("image {suite}"), format!("{tag} present ({})", short(id))));
                bootable.push((*suite, id.clone(), tag));
            }
            None => checks.push(Check::fail(
                &format!("image {suite}"),
                format!("{tag} is not built"),
                format!("`unitlab image build --suite {suite}` (every command that needs it also builds it on first use)"),
            )),
        }
    }
    for (suite, id, tag) in bootable {
        let image = image::ImageRef { suite, tag: tag.clone(), id, inputs_hash: String::new(), reused: true };
        let opts = TargetOptions { purpose: "doctor".into(), boot_deadline: DOCTOR_BOOT_DEADLINE, ..Default::default() };
        checks.push(match Target::boot(&engine, &image, opts).await {
            Ok(target) => {
                let c = Check::ok(
                    &format!("boot {suite}"),
                    format!("{} running after {:.2} s", target.systemd_version(), target.boot_time().as_secs_f64()),
                );
                if let Err(e) = target.teardown().await {
                    Check::fail(&format!("boot {suite}"), format!("booted, but teardown failed: {e}"), "`unitlab clean`")
                } else {
                    c
                }
            }
            Err(e) => {
                // An error that names its own fix (a suite this host cannot boot) keeps it.
                let msg = e.to_string();
                match msg.split_once("\n  fix: ") {
                    Some((detail, fix)) => Check::fail(&format!("boot {suite}"), detail, fix),
                    None => Check::fail(&format!("boot {suite}"), msg, format!("rebuild the image: `unitlab image build --suite {suite} --force`")),
                }
            }
        });
    }
    match reaper::list_lab_containers(&engine).await {
        Ok(list) => {
            let orphans = list.iter().filter(|c| c.is_orphan()).count();
            checks.push(if orphans == 0 {
                Check::ok("leftovers", format!("no orphaned lab containers ({} owned by live runs)", list.len()))
            } else {
                Check::warn("leftovers", format!("{orphans} lab container(s) whose run has ended (kept targets included)"), "`unitlab clean`")
            });
        }
        Err(e) => checks.push(Check::fail("leftovers", e.to_string(), "check the engine")),
    }
    checks
}

/// Suites whose systemd needs cgroup v2 boot on a v1 host only when it also mounts the unified
/// hierarchy (the engine then gives each container a cgroup there; see
/// `container::CGROUP2_INIT`). The test boot confirms it; this says why beforehand.
fn unified_check(suites: &[Suite], mountinfo: &str) -> Check {
    let names = suites.iter().map(|s| s.described()).collect::<Vec<_>>().join(", ");
    let unified = mountinfo.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        post.starts_with("cgroup2 ").then(|| pre.split(' ').nth(4).unwrap_or("?").to_string())
    });
    match unified {
        Some(at) => Check::ok("cgroup v2", format!("{names}: booted on the host's unified cgroup2 hierarchy ({at}), in the target's own cgroup")),
        None => Check::fail(
            "cgroup v2",
            format!("{names} needs cgroup v2 (systemd 258 dropped v1), and this cgroup v1 host mounts no cgroup2 hierarchy for the engine to place containers in"),
            "boot the host with cgroup v2 (systemd.unified_cgroup_hierarchy=1) or the hybrid layout (a cgroup2 mount at /sys/fs/cgroup/unified), or run these suites on the VM fixture",
        ),
    }
}

/// How many targets fit in the host's inotify instances (see `target::capacity`); `None`
/// where the limit or the use cannot be read.
fn room_check(limit: Option<usize>, in_use: Option<usize>) -> Option<Check> {
    use crate::target::capacity::PER_TARGET;
    let (limit, in_use) = (limit?, in_use?);
    let room = limit.saturating_sub(in_use) / PER_TARGET;
    let detail = format!("{in_use} of {limit} inotify instances in use (fs.inotify.max_user_instances): room for about {room} more targets at about {PER_TARGET} each");
    let fix = "`sysctl -w fs.inotify.max_user_instances=1024`; until then boots wait for room as targets go";
    Some(if room >= 8 { Check::ok("targets at once", detail) } else { Check::warn("targets at once", detail, fix) })
}

fn short(id: &str) -> &str {
    let id = id.trim_start_matches("sha256:");
    &id[..id.len().min(12)]
}

/// A cgroup v1 hierarchy that exists but is mounted nowhere on the host is one the engine does
/// not place containers in: a target sits at its real root and, with CAP_SYS_ADMIN, can mount
/// it and write its release_agent (a command the kernel runs on the host). Targets cannot
/// create hierarchies (they are in a private cgroup namespace), but a less confined process
/// on the host can (seen here: an older lab's targets, with the host's cgroup namespace).
fn unjoined_hierarchies_check(proc_cgroups: &str, mountinfo: &str) -> Check {
    let mounted: Vec<&str> = mountinfo
        .lines()
        .filter(|l| l.contains(" - cgroup "))
        .flat_map(|l| l.rsplit(' ').next().unwrap_or("").split(','))
        .collect();
    let unjoined: Vec<&str> = proc_cgroups
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 4 && f[1] != "0" && !mounted.contains(&f[0])).then_some(f[0])
        })
        .collect();
    if unjoined.is_empty() {
        Check::ok("cgroup roots", "every cgroup v1 hierarchy is mounted on the host, so targets sit below its root")
    } else {
        Check::fail(
            "cgroup roots",
            format!(
                "cgroup v1 hierarchies exist that the host does not mount ({}): a target would sit at their root and could write release_agent",
                unjoined.join(", ")
            ),
            "find and stop what created them (a container with the host's cgroup namespace), or mount them under /sys/fs/cgroup so the engine places containers below their root",
        )
    }
}

#[cfg(test)]
mod unjoined_tests {
    use super::*;

    const MOUNTINFO: &str = "30 25 0:26 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory\n\
                             31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";

    #[test]
    fn room_for_targets_is_a_warning_below_eight_and_silent_when_unreadable() {
        assert_eq!(room_check(Some(128), Some(12)).unwrap().status, Status::Ok);
        let tight = room_check(Some(128), Some(100)).unwrap();
        assert_eq!(tight.status, Status::Warn);
        assert!(tight.detail.contains("room for about 3 more targets"), "{}", tight.detail);
        assert!(tight.fix.unwrap().contains("max_user_instances"));
        assert!(room_check(None, Some(1)).is_none() && room_check(Some(128), None).is_none());
    }

    #[test]
    fn cgroup_v2_suites_need_a_unified_mount_on_a_v1_host() {
        let hybrid = format!("{MOUNTINFO}35 25 0:30 / /sys/fs/cgroup/unified rw,relatime shared:10 - cgroup2 cgroup2 rw\n");
        let c = unified_check(&[Suite::Sid], &hybrid);
        assert_eq!(c.status, Status::Ok);
        assert!(c.detail.contains("/sys/fs/cgroup/unified"), "{}", c.detail);
        let c = unified_check(&[Suite::Sid], MOUNTINFO);
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.contains("sid (systemd 262)") && c.fix.as_deref().unwrap().contains("VM fixture"), "{c:?}");
    }

    #[test]
    fn an_existing_hierarchy_the_host_does_not_mount_fails_the_check() {
        let clean = "#subsys_name\thierarchy\tnum_cgroups\tenabled\nmemory\t4\t35\t1\ncpu\t2\t1\t1\ncpuacct\t2\t1\t1\nhugetlb\t0\t1\t1\n";
        assert_eq!(unjoined_hierarchies_check(clean, MOUNTINFO).status, Status::Ok, "hierarchy 0: not attached, nothing to reach");
        let dirty = format!("{clean}perf_event\t587\t2\t1\n");
        let c = unjoined_hierarchies_check(&dirty, MOUNTINFO);
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.contains("perf_event"), "{}", c.detail);
    }
}
