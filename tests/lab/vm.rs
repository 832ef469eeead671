//! The VM fixture against real systemd: a QEMU machine boots the suite's image with Debian's
//! kernel, and the Target API works on it as on a container (exec, files, properties, the
//! followed journal, pause); nothing is left after teardown.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::io::AsyncBufReadExt;
use unitlab::{Fixture, Suite, Target, TargetOptions};

/// QEMU processes whose command line names this VM.
fn qemu_processes(name: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.starts_with("qemu-system") && cmdline.contains(name) {
            found.push(pid);
        }
    }
    found
}

pub async fn boot_vm(suite: Suite, purpose: &str) -> Target {
    let image = crate::support::image(suite).await;
    let engine = crate::support::engine().await;
    let opts = TargetOptions { purpose: purpose.into(), fixture: Fixture::Vm, ..Default::default() };
    let started = Instant::now();
    let target = Target::boot(&engine, &image, opts).await.unwrap_or_else(|e| panic!("booting a {suite} VM: {e}"));
    eprintln!("{suite} VM booted to running in {:.1} s ({:.1} s with the disk)", target.boot_time().as_secs_f64(), started.elapsed().as_secs_f64());
    target
}

#[tokio::test]
async fn a_vm_boots_runs_commands_follows_its_journal_pauses_and_leaves_nothing() {
    let target = boot_vm(Suite::Bookworm, "vm-test").await;
    assert_eq!(target.fixture(), Fixture::Vm);
    assert_eq!(target.systemd_major(), Some(252), "{}", target.systemd_version());
    let virt = target.exec(&["systemd-detect-virt"]).await.unwrap();
    assert_eq!(virt.stdout.trim(), "qemu", "systemd must see a VM, not a container: {virt:?}");
    let out = target.exec(&["sh", "-c", "echo out; echo err >&2; exit 7"]).await.unwrap();
    assert_eq!((out.exit_code, out.stdout.as_str(), out.stderr.as_str()), (7, "out\n", "err\n"));

    let content = b"a $b 'c' \"d\"\n\x00binary";
    target.write_file("/run/unitlab/probe.bin", content, 0o640).await.unwrap();
    let back = target.exec(&["sh", "-c", "od -An -tx1 /run/unitlab/probe.bin | tr -d ' \\n'; echo; stat -c %a /run/unitlab/probe.bin"]).await.unwrap();
    let hex: String = content.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(back.stdout, format!("{hex}\n640\n"));

    let unit = "[Unit]\nDescription=unitlab probe\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/echo unitlab-probe-marker\n";
    target.write_files(&[("/etc/systemd/system/probe.service".into(), unit.as_bytes().to_vec(), 0o644)]).await.unwrap();
    target.exec_ok(&["systemctl", "daemon-reload"]).await.unwrap();
    let after = format!("--after-cursor={}", target.journal_cursor().await.unwrap());
    let mut journal = target.follow_journal(&[&after, "-u", "probe.service"]).await.unwrap();
    let before = unitlab::observe::monotonic_now_usec();
    target.exec_ok(&["systemctl", "start", "probe.service"]).await.unwrap();
    let after_start = unitlab::observe::monotonic_now_usec();
    let entry = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(entry) = journal.next().await {
            let entry = entry.unwrap();
            if entry.get("MESSAGE").and_then(|m| m.as_str()) == Some("unitlab-probe-marker") {
                return entry;
            }
        }
        panic!("the followed journal ended");
    })
    .await
    .expect("the probe's line within 30 s");
    // The guest's clock is moved onto the lab's: the line was logged while the start ran.
    let at = unitlab::observe::entry_monotonic_usec(&entry).unwrap();
    let slack = 200_000;
    assert!(at + slack >= before && at <= after_start + slack, "logged at {at}, start ran {before}..{after_start} (lab clock, µs)");
    let props = target.unit_properties("probe.service", &["ActiveState", "Result"]).await.unwrap();
    assert_eq!(props["ActiveState"], "active");
    drop(journal);

    target.pause().await.unwrap();
    assert_eq!(target.state().await.unwrap(), unitlab::target::TargetState::Paused);
    tokio::time::sleep(Duration::from_millis(500)).await;
    target.unpause().await.unwrap();
    assert_eq!(target.state().await.unwrap(), unitlab::target::TargetState::Running);
    target.exec_ok(&["true"]).await.unwrap();

    let name = target.name().to_string();
    let dir = target.vm().unwrap().dir().to_path_buf();
    assert_eq!(qemu_processes(&name).len(), 1, "one QEMU runs this VM");
    target.teardown().await.unwrap();
    assert!(qemu_processes(&name).is_empty(), "teardown must end QEMU");
    assert!(!dir.exists(), "teardown must remove {}", dir.display());
}

/// QEMU processes whose parent is `pid`.
fn qemu_children_of(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else { continue };
        let ppid: Option<u32> = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok());
        if ppid == Some(pid) && stat.contains("(qemu-system-x86") {
            found.push(child);
        }
    }
    found
}

/// SIGKILL of the lab while its VM runs: the kernel kills QEMU with it (PR_SET_PDEATHSIG),
/// no overlay is left (it was unlinked once QEMU opened it), and the run directory is removed
/// by the next VM boot's sweep.
#[tokio::test]
async fn sigkill_of_unitlab_leaves_no_qemu_and_no_overlay() {
    crate::support::image(Suite::Bookworm).await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_unitlab"))
        .args(["shell", "--fixture", "vm", "--suite", "bookworm", "--", "sleep", "600"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    // The lab says when systemd runs (its progress line); by then the guest runs the command
    // and the overlay's name is gone.
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let said = tokio::time::timeout(Duration::from_secs(240), async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            if line.contains("running after") {
                return line;
            }
        }
        panic!("unitlab shell ended before its VM ran");
    })
    .await
    .expect("the VM runs within 240 s");
    eprintln!("{said}");
    let runs = unitlab::target::vm::image::vm_root().join("run");
    let qemu = *qemu_children_of(pid).first().expect("the lab's QEMU runs");
    let dir = std::fs::read_dir(&runs)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| std::fs::read_to_string(p.join("owner")).is_ok_and(|o| o.split_whitespace().next() == Some(&pid.to_string())))
        .expect("the VM's run directory names its owner");
    assert!(!dir.join("overlay.qcow2").exists(), "the overlay is unlinked once QEMU has it open");
    let killed = Instant::now();
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    while std::path::Path::new(&format!("/proc/{qemu}")).exists() {
        // A zombie until its new parent reaps it; a zombie holds no files.
        let state = std::fs::read_to_string(format!("/proc/{qemu}/stat")).unwrap_or_default();
        if state.contains(") Z ") {
            break;
        }
        assert!(killed.elapsed() < Duration::from_secs(5), "QEMU {qemu} still runs {:?} after the lab was SIGKILLed", killed.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("QEMU of a SIGKILLed unitlab gone {:.2} s after the kill", killed.elapsed().as_secs_f64());
    let overlays: Vec<String> = std::fs::read_dir(&dir).map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.contains("qcow2")).collect()).unwrap_or_default();
    assert!(overlays.is_empty(), "overlay left behind: {overlays:?}");
    unitlab::target::vm::machine::sweep();
    assert!(!dir.exists(), "the next sweep removes the run directory {} of a dead lab", dir.display());
}

/// The Restart= table on one bookworm VM, through the runner like on a container: every cell
/// agrees with the documented table (systemd.service(5)), or deviates exactly as reviewed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_restart_table_holds_on_a_bookworm_vm() {
    use unitlab::tables::{self, judge::judge_cell, oracle, Table};
    crate::support::image(Suite::Bookworm).await;
    let engine = crate::support::engine().await;
    let report = tables::measure_on(&engine, &[Table::Restart], &[Suite::Bookworm], &[Fixture::Vm], false, &unitlab::progress::Lines, &|_| {})
        .await
        .unwrap_or_else(|e| panic!("measuring the Restart= table on a bookworm VM: {e}"));
    println!("bookworm VM: {} cells measured in {:.1} s wall, boot included", report.results.len(), report.duration.as_secs_f64());
    let cells = tables::cells::cell_files(&[Table::Restart], &[Suite::Bookworm]);
    assert_eq!(report.results.len(), cells.len(), "one result per cell");
    let mut problems = Vec::new();
    for (key, _) in &cells {
        let name = tables::cells::scenario_name(*key);
        let r = report.results.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("{name} was not measured"));
        assert_eq!(r.fixture, "vm", "{name} ran on a VM");
        if r.outcome == unitlab::verdict::Outcome::Error {
            problems.push(format!("{name}: the lab could not measure it: {}", r.error.as_deref().unwrap_or("")));
            continue;
        }
        let v = judge_cell(*key, r, 252);
        let context = format!("{name}: documented {}, observed {} ({})", v.documented, v.observed, v.detail);
        match oracle::deviation(*key, 252) {
            Some(d) if v.observed != d.observed => problems.push(format!("reviewed deviation no longer holds: {context}")),
            None if !v.agrees => problems.push(format!("disagrees with the documented table: {context}")),
            _ => {}
        }
    }
    assert!(problems.is_empty(), "{} cell(s):\n{}", problems.len(), problems.join("\n"));
}
