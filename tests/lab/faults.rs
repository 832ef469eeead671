//! The resource faults (`oom`, `network`, `disk-full`, `cpu-starve`, `heal`) through the real
//! binary on both suites: each example holds, with the outcome measured on this host, every
//! fault is let go (its note on the timeline), `delay` says plainly when the kernel has no
//! netem, and killing the lab (SIGKILL or SIGTERM) while a fault holds leaves nothing behind:
//! no container, and on the host no process, cgroup, mount or nftables table of it.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rstest::rstest;

use crate::bin::{repo, text, unitlab, BIN};

const EXAMPLES: [&str; 4] = ["oom-restart-on-abort", "network-partition", "disk-full", "cpu-starve"];

/// Whether the host runs cgroup v2 only: then systemd sees OOM kills (memory.events).
fn unified_host() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// What the timeline's lab notes of a unit say, in order.
fn notes(result: &serde_json::Value, unit: &str) -> Vec<String> {
    result["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "lab" && e["unit"] == unit)
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect()
}

#[rstest]
#[case::bookworm("bookworm")]
#[case::trixie("trixie")]
fn the_resource_fault_examples_hold_and_every_fault_is_let_go(#[case] suite: &str) {
    let files: Vec<String> = EXAMPLES.iter().map(|e| format!("scenarios/examples/{e}.toml")).collect();
    let mut args = vec!["run"];
    args.extend(files.iter().map(String::as_str));
    args.extend(["--suite", suite, "--format", "json"]);
    let out = unitlab(&args, None);
    let stdout = text(&out.stdout);
    let report: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{stdout}\nstderr:\n{}", text(&out.stderr)));
    let results = report["results"].as_array().unwrap();
    let failures: Vec<String> =
        results.iter().filter(|r| r["outcome"] != "pass").map(|r| format!("{} {}: {} {}", r["name"], r["outcome"], r["error"], r["checks"])).collect();
    assert_eq!(out.status.code(), Some(0), "failures: {failures:#?}\nstderr:\n{}", text(&out.stderr));
    let result = |name: &str| results.iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("no result for {name}"));

    // oom: the OOM killer's SIGKILL; what systemd makes of it depends on whether it can see
    // the kill (cgroup v2) or not (v1: a plain signal, which Restart=on-abort restarts).
    let oom = result("oom-restart-on-abort");
    for o in oom["observations"].as_array().unwrap() {
        if unified_host() {
            assert_eq!(o["result"], "oom-kill", "{o}");
        } else {
            assert_eq!(o["result"], "signal", "cgroup v1: systemd cannot see the OOM kill: {o}");
            assert_eq!(o["restarted"], true, "Result=signal is an unclean signal: on-abort restarts: {o}");
        }
    }
    for unit in ["oom-restart-on-abort.stop.service", "oom-restart-on-abort.cont.service"] {
        let n = notes(oom, unit);
        assert!(n.iter().any(|a| a.contains("MemoryMax=32M): in place (old=infinity)")), "{unit}: {n:#?}");
        assert!(n.iter().any(|a| a.ends_with("healed at the end of the scenario")), "the limit is restored: {unit}: {n:#?}");
    }

    // network: the named drop is healed by its step, the reject by its duration.
    let net = notes(result("network-partition"), "network-partition.web.service");
    assert!(net.iter().any(|a| a == "network: drop traffic of port 8093 (both): healed"), "{net:#?}");
    assert!(net.iter().any(|a| a == "network: reject traffic of port 8093 (both) for 2s: healed after 2s"), "{net:#?}");

    // disk-full: the writer failed on ENOSPC (the check in the example) and the disk was healed.
    let disk = notes(result("disk-full"), "disk-full.writer.service");
    assert!(disk.iter().any(|a| a.starts_with("disk-full /var/lib/unitlab-disk-full-demo for writer: in place (unitlab-disk-full")), "{disk:#?}");
    assert!(disk.iter().any(|a| a == "disk-full /var/lib/unitlab-disk-full-demo for writer: healed"), "{disk:#?}");

    // cpu-starve: the watchdog fired under starvation, the burners stopped at the heal.
    let cpu = result("cpu-starve");
    let n = notes(cpu, "cpu-starve.worker.service");
    assert!(n.iter().any(|a| a.starts_with("cpu-starve worker: in place (cpu ")), "{n:#?}");
    assert!(n.iter().any(|a| a == "cpu-starve worker: healed"), "{n:#?}");
    let watchdog = cpu["timeline"].as_array().unwrap().iter().any(|e| e["kind"] == "failed" && e["result"] == "watchdog");
    assert!(watchdog, "the starved worker must fail with Result=watchdog");
}

/// `delay` needs the kernel's netem. Where the kernel has it (its config says so), a delayed
/// port answers late; where it does not, the run ends with exit 3 and says why, instead of
/// running without a delay.
#[test]
fn delay_works_or_says_the_kernel_has_no_netem() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("delay.toml");
    std::fs::write(
        &file,
        r#"name = "faults-delay"
suites = ["bookworm"]
[[units]]
name = "web"
exec = ["/usr/local/bin/buggy-server", "--listen", "0.0.0.0:8096"]
[units.Service]
Type = "notify"
[[steps]]
do = "start"
unit = "web"
[[steps]]
do = "network"
unit = "web"
action = "delay"
delay = "500ms"
[[steps]]
do = "probe"
port = 8096
path = "/healthz"
expect = "timeout"
timeout = "200ms"
[[steps]]
do = "probe"
port = 8096
path = "/healthz"
expect = 200
timeout = "5s"
"#,
    )
    .unwrap();
    let out = unitlab(&["run", file.to_str().unwrap()], None);
    let stdout = text(&out.stdout);
    let config = std::process::Command::new("sh").args(["-c", "zcat /proc/config.gz 2>/dev/null || cat /boot/config-$(uname -r) 2>/dev/null"]).output().unwrap();
    let config = text(&config.stdout);
    if config.contains("# CONFIG_NET_SCH_NETEM is not set") {
        assert_eq!(out.status.code(), Some(3), "{stdout}\n{}", text(&out.stderr));
        assert!(stdout.contains("needs the kernel's netem queueing discipline (sch_netem)"), "{stdout}");
        assert!(stdout.contains("fix: "), "{stdout}");
    } else {
        assert_eq!(out.status.code(), Some(0), "netem is available (or modular) here: the delay must hold\n{stdout}\n{}", text(&out.stderr));
    }
}

/// A scenario that puts one fault in place and then waits far longer than the test, so that
/// the lab is killed while the fault holds.
fn holding_scenario(kind: &str, port: u16) -> String {
    let fault = match kind {
        "oom" => "do = \"oom\"\nunit = \"web\"\nlimit = \"32M\"".to_string(),
        "network" => "do = \"network\"\nunit = \"web\"\naction = \"drop\"".to_string(),
        "disk-full" => format!("do = \"disk-full\"\nunit = \"web\"\npath = \"/var/lib/unitlab-kill-{port}\""),
        _ => "do = \"cpu-starve\"\nunit = \"web\"".to_string(),
    };
    format!(
        r#"name = "faults-kill-{port}"
suites = ["bookworm"]
[[units]]
name = "web"
exec = ["/usr/local/bin/buggy-server", "--listen", "0.0.0.0:{port}"]
[units.Service]
Type = "notify"
StateDirectory = "unitlab-kill-{port}"
[[steps]]
do = "start"
unit = "web"
[[steps]]
{fault}
[[steps]]
do = "wait-journal"
contains = "a line nothing ever logs"
within = "10min"
"#
    )
}

/// A shell test, inside the container, that holds while the fault is in place.
fn in_place_check(kind: &str, port: u16) -> String {
    match kind {
        "oom" => format!("grep -q 33554432 /run/systemd/system.control/faults-kill-{port}.web.service.d/50-MemoryMax.conf"),
        "network" => "nft list tables | grep -q unitlab_".to_string(),
        "disk-full" => "grep -q unitlab-disk-full /proc/mounts".to_string(),
        _ => format!("systemctl is-active -q unitlab-faults-kill-{port}-2.service"),
    }
}

fn docker(args: &[&str]) -> std::process::Output {
    std::process::Command::new("docker").args(args).output().expect("the docker CLI")
}

/// The lab container owned by `pid`, if any.
fn container_of(pid: u32) -> Option<String> {
    let out = docker(&["ps", "-aq", "--no-trunc", "--filter", &format!("label=unitlab.owner.pid={pid}")]);
    text(&out.stdout).lines().next().map(str::to_string)
}

/// What the host still holds of a container: processes in its cgroups, its cgroup
/// directories, fault mounts, nftables tables of the lab.
fn host_residue(id: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cgroup = std::fs::read_to_string(entry.path().join("cgroup")).unwrap_or_default();
        if cgroup.contains(id) {
            found.push(format!("process {} in the container's cgroup", entry.file_name().to_string_lossy()));
        }
    }
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        for place in [format!("docker/{id}"), format!("system.slice/docker-{id}.scope")] {
            let dir = hierarchy.path().join(place);
            if dir.exists() {
                found.push(format!("cgroup {}", dir.display()));
            }
        }
    }
    if std::fs::read_to_string("/proc/self/mountinfo").unwrap().contains("unitlab-disk-full") {
        found.push("a disk-full mount on the host".into());
    }
    if let Ok(out) = std::process::Command::new("nft").args(["list", "tables"]).output() {
        if text(&out.stdout).contains("unitlab_") {
            found.push(format!("nftables on the host: {}", text(&out.stdout).trim()));
        }
    }
    found
}

/// Start `unitlab run` on a scenario holding `kind`, wait until the fault is in place, send
/// `signal`, and check that the container and everything of it on the host are gone.
async fn kill_during(kind: &str, port: u16, signal: i32) {
    crate::support::image(unitlab::Suite::Bookworm).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{kind}.toml"));
    std::fs::write(&file, holding_scenario(kind, port)).unwrap();
    let mut child = tokio::process::Command::new(BIN)
        .args(["run", file.to_str().unwrap()])
        .current_dir(repo())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let check = in_place_check(kind, port);
    let deadline = Instant::now() + Duration::from_secs(120);
    let id = loop {
        assert!(Instant::now() < deadline, "{kind}: the fault was not in place within 120 s");
        if let Some(id) = container_of(pid) {
            if docker(&["exec", &id, "sh", "-c", &check]).status.success() {
                break id;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid as i32, signal) }, 0);
    let killed = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait()).await.expect("the lab exits").unwrap();
    if signal == libc::SIGTERM {
        assert_eq!(status.code(), Some(130), "{kind}: SIGTERM ends the lab with 130 after removing its targets");
    }
    // SIGKILL: the tether powers the target off and the engine removes it (60 s promise).
    while container_of(pid).is_some() {
        assert!(killed.elapsed() < Duration::from_secs(60), "{kind}: container of the killed lab still there after 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The engine reports the container gone before the kernel has always freed its cgroups.
    let mut residue = host_residue(&id);
    while !residue.is_empty() && killed.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        residue = host_residue(&id);
    }
    assert!(residue.is_empty(), "{kind} (signal {signal}): left behind on the host: {residue:#?}");
    eprintln!("{kind}: lab killed with signal {signal} during the fault; container and host clean {:.2} s later", killed.elapsed().as_secs_f64());
}

#[tokio::test]
async fn killing_the_lab_during_each_fault_leaves_nothing_behind() {
    for (i, kind) in ["oom", "network", "disk-full", "cpu-starve"].into_iter().enumerate() {
        let port = 8097 + 2 * i as u16;
        // Both ways the lab can be ended from outside, at once: SIGKILL (the tether) and
        // SIGTERM (the lab's own clean-up).
        tokio::join!(kill_during(kind, port, libc::SIGKILL), kill_during(kind, port + 1, libc::SIGTERM));
    }
}

/// "Time to healthy" is sampled every 20 ms from the lab even while each attempt hangs: a
/// port dropped for 2 s right before a restart answers again the moment the drop is healed,
/// and the measured time says so (sequential attempts of 1 s each would report up to a
/// second later).
#[test]
fn time_to_healthy_follows_a_heal_within_its_sampling() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("healthy.toml");
    std::fs::write(
        &file,
        r#"name = "faults-healthy-sampling"
suites = ["bookworm"]
[[units]]
name = "web"
exec = ["/usr/local/bin/buggy-server", "--listen", "0.0.0.0:8094"]
[units.Service]
Type = "notify"
[[steps]]
do = "start"
unit = "web"
[[steps]]
do = "network"
unit = "web"
action = "drop"
duration = "2s"
[[steps]]
do = "restart"
unit = "web"
[[steps]]
do = "expect-recovery"
unit = "web"
within = "6s"
port = 8094
"#,
    )
    .unwrap();
    let out = unitlab(&["run", file.to_str().unwrap(), "--format", "json"], None);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let r = &report["results"][0];
    let healthy = r["timings"].as_array().unwrap().iter().find(|t| t["name"] == "time to healthy").unwrap()["value"].as_f64().unwrap();
    let note = |prefix: &str| {
        r["timeline"].as_array().unwrap().iter().find(|e| e["kind"] == "lab" && e["action"].as_str().unwrap().starts_with(prefix)).unwrap()["at"].as_f64().unwrap()
    };
    let restart = note("fault: systemctl restart");
    let healed = note("network: drop traffic of port 8094 (both) for 2s: healed");
    let late = restart + healthy - healed;
    // The heal's note is written once its command has returned, so the first 200 may come a
    // little before it; after it, one sampling interval plus a request.
    assert!(late < 0.15, "healthy {late:.3} s after the heal (restart at {restart}, healthy after {healthy}, healed at {healed})");
    assert!(late > -0.2, "healthy before the drop was healed? {late:.3} s");
}
