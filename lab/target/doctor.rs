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
    fn ok(name: &str, detail: impl Into<String>) -> Check {
        Check { name: name.into(), status: Status::Ok, detail: detail.into(), fix: None }
    }
    fn warn(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { name: name.into(), status: Status::Warn, detail: detail.into(), fix: Some(fix.into()) }
    }
    fn fail(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
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
            Err(e) => Check::fail(
                &format!("boot {suite}"),
                e.to_string(),
                format!("rebuild the image: `unitlab image build --suite {suite} --force`"),
            ),
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

fn short(id: &str) -> &str {
    let id = id.trim_start_matches("sha256:");
    &id[..id.len().min(12)]
}
