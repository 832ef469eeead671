//! The user's own service on real systemd: a unit file of another type than a service
//! (`[[units]] file`, a timer activating a service from its own file), host files and
//! directories copied byte for byte with their modes (`[[files]] source`, checked by hash and
//! `stat` inside the target), a drop-in on a unit already on the target (the shipped example),
//! and a unit named but not on the target, which ends the scenario with an error naming it.

use rstest::rstest;
use sha2::{Digest, Sha256};

use crate::bin::{repo, text, unitlab};

/// 1 MiB of every byte value, NUL and 0xff included, in a pseudo-random order: any content,
/// not text.
fn blob() -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

fn write(path: &std::path::Path, bytes: &[u8], mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

const BYTES: &str = r#"
name = "own-bytes"
description = "a blob, a directory and a timer with its service, all from host files"

[[files]]
path = "/opt/own/blob"
source = "blob"

[[files]]
path = "/opt/own/forced"
source = "blob"
mode = "0700"

[[files]]
path = "/opt/own/tool"
source = "tool"

[[units]]
file = "units/own-tick.timer"

[[units]]
file = "units/own-tick.service"

[[steps]]
do = "start"
unit = "own-tick.timer"

[[steps]]
do = "wait-journal"
unit = "own-tick"
contains = "tool ran"
within = "15s"

[[steps]]
do = "expect-journal"
unit = "own-tick"
contains = "HASH  /opt/own/blob"

[[steps]]
do = "expect-journal"
unit = "own-tick"
contains = "HASH  /opt/own/forced"

[[steps]]
do = "expect-journal"
unit = "own-tick"
contains = "640 /opt/own/blob"

[[steps]]
do = "expect-journal"
unit = "own-tick"
contains = "700 /opt/own/forced"

[[steps]]
do = "expect-journal"
unit = "own-tick"
contains = "750 /opt/own/tool/run.sh"

[[steps]]
do = "expect-journal"
unit = "own-tick"
contains = "600 /opt/own/tool/data/x.txt"
"#;

const TIMER: &str = "[Unit]\nDescription=own-tick timer, from its own file\n\n[Timer]\nOnActiveSec=500ms\nAccuracySec=1ms\n";
const SERVICE: &str = "[Unit]\nDescription=own-tick: report what the files look like in the target\n\n[Service]\nType=oneshot\n\
ExecStart=/usr/bin/sha256sum /opt/own/blob /opt/own/forced\n\
ExecStart=/usr/bin/stat -c \"%%a %%n\" /opt/own/blob /opt/own/forced /opt/own/tool/run.sh /opt/own/tool/data/x.txt\n\
ExecStart=/opt/own/tool/run.sh\n";

const MISSING: &str = r#"
name = "own-missing"
description = "a unit named but not on the target"

[[units]]
name = "own-no-such-unit"

[units.Service]
Restart = "on-failure"

[[steps]]
do = "start"
unit = "own-no-such-unit"
"#;

fn results(out: &std::process::Output) -> Vec<serde_json::Value> {
    let stdout = text(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{stdout}\nstderr:\n{}", text(&out.stderr)));
    report["results"].as_array().unwrap().clone()
}

#[rstest]
#[case::bookworm("bookworm")]
#[case::trixie("trixie")]
fn own_unit_files_host_files_and_drop_ins_run_as_written(#[case] suite: &str) {
    let dir = tempfile::tempdir().unwrap();
    let blob = blob();
    write(&dir.path().join("blob"), &blob, 0o640);
    write(&dir.path().join("tool/run.sh"), b"#!/bin/sh\necho tool ran\n", 0o750);
    write(&dir.path().join("tool/data/x.txt"), b"x\n", 0o600);
    write(&dir.path().join("units/own-tick.timer"), TIMER.as_bytes(), 0o644);
    write(&dir.path().join("units/own-tick.service"), SERVICE.as_bytes(), 0o644);
    let hash = hex::encode(Sha256::digest(&blob));
    let scenario = dir.path().join("own-bytes.toml");
    std::fs::write(&scenario, BYTES.replace("HASH", &hash)).unwrap();

    let out = unitlab(&["run", "scenarios/examples/own-service.toml", scenario.to_str().unwrap(), "--suite", suite, "--format", "json"], None);
    let results = results(&out);
    let failures: Vec<String> =
        results.iter().filter(|r| r["outcome"] != "pass").map(|r| format!("{} {}: {} {}", r["name"], r["outcome"], r["error"], r["checks"])).collect();
    assert_eq!(out.status.code(), Some(0), "failures: {failures:#?}\nstderr:\n{}", text(&out.stderr));
    assert_eq!(results.len(), 2);

    let example = results.iter().find(|r| r["name"] == "own-service").unwrap();
    let units: Vec<(String, String)> = serde_json::from_value(example["units"].clone()).unwrap();
    let own_web = std::fs::read_to_string(repo().join("scenarios/examples/own-service/units/own-web.service")).unwrap();
    assert_eq!(units[0], ("own-web.service".to_string(), own_web), "installed as written, under its own name");
    assert_eq!(
        units[1],
        ("own-sidecar.service".to_string(), "# drop-in /etc/systemd/system/own-sidecar.service.d/unitlab.conf\n[Service]\nRestart=on-failure\n".to_string())
    );
    // The drop-in is what makes the packaged unit restart: the check can fail.
    assert!(example["checks"].as_array().unwrap().iter().any(|c| c["kind"] == "expect-restart" && c["passed"] == true));

    let bytes = results.iter().find(|r| r["name"] == "own-bytes").unwrap();
    assert_eq!(bytes["checks"].as_array().unwrap().len(), 6, "{}", bytes["checks"]);
    let unit_names: Vec<&str> = bytes["units"].as_array().unwrap().iter().map(|u| u[0].as_str().unwrap()).collect();
    assert_eq!(unit_names, ["own-tick.timer", "own-tick.service"], "no namespacing for units from files");
    let warnings: Vec<&str> = bytes["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    assert!(warnings.is_empty(), "the files are valid: systemd-analyze verify says nothing: {warnings:?}");
}

#[rstest]
#[case::bookworm("bookworm")]
#[case::trixie("trixie")]
fn a_named_unit_that_is_not_on_the_target_is_an_error_naming_it(#[case] suite: &str) {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("own-missing.toml");
    std::fs::write(&scenario, MISSING).unwrap();
    let out = unitlab(&["run", scenario.to_str().unwrap(), "--suite", suite, "--format", "json"], None);
    let results = results(&out);
    assert_eq!(out.status.code(), Some(3), "stderr:\n{}", text(&out.stderr));
    let error = results[0]["error"].as_str().unwrap_or_default();
    assert!(error.contains(&format!("unit own-no-such-unit.service is not on the {suite} target")), "{error}");
    assert!(results[0]["checks"].as_array().unwrap().is_empty(), "no step ran: {}", results[0]["checks"]);
}

const HELLO: &str = r#"
name = "own-packages"
description = "GNU hello from Debian's archive, run as a service"
packages = ["hello"]

[[units]]
name = "greet"
exec = ["/usr/bin/hello", "--greeting=hello from a package"]

[units.Service]
Type = "oneshot"

[[steps]]
do = "start"
unit = "greet"

[[steps]]
do = "expect-journal"
unit = "greet"
contains = "hello from a package"
"#;

/// `packages`: the derived image is built once (apt in a build on the suite's image), then
/// found again by its inputs hash in under a second; the scenario runs the package's program;
/// an unknown package is an error naming it and the suite.
#[rstest]
#[case::bookworm(unitlab::Suite::Bookworm)]
#[case::trixie(unitlab::Suite::Trixie)]
#[tokio::test]
async fn packages_make_a_derived_image_reused_by_hash(#[case] suite: unitlab::Suite) {
    use unitlab::target::packages::{ensure_packages_image, PackagesError};
    let base = crate::support::image(suite).await;
    let engine = crate::support::engine().await;
    let hello = vec!["hello".to_string()];
    let built = ensure_packages_image(&engine, &base, &hello, &unitlab::progress::Lines).await.unwrap_or_else(|e| panic!("{e}"));
    let started = std::time::Instant::now();
    let again = ensure_packages_image(&engine, &base, &hello, &unitlab::progress::Lines).await.unwrap();
    let reuse = started.elapsed();
    println!("{suite}: packages image {} reused in {:.3} s", again.tag, reuse.as_secs_f64());
    assert!(again.reused && again.id == built.id, "the second call finds the first one's image");
    assert!(reuse < std::time::Duration::from_secs(1), "reused in {reuse:?}");
    assert!(again.tag.starts_with(&format!("unitlab-packages:{suite}-")), "{}", again.tag);

    let unknown = vec!["hello".to_string(), "unitlab-no-such-package".to_string()];
    match ensure_packages_image(&engine, &base, &unknown, &unitlab::progress::Silent).await {
        Err(e @ PackagesError::Unknown { .. }) => {
            let text = e.to_string();
            assert!(text.contains("`unitlab-no-such-package`") && text.contains(&format!("{suite}'s archive")), "{text}");
        }
        other => panic!("expected an unknown package error, got {other:?}"),
    }

    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("own-packages.toml");
    std::fs::write(&scenario, HELLO).unwrap();
    let out = unitlab(&["run", scenario.to_str().unwrap(), "--suite", suite.name(), "--format", "json"], None);
    let results = results(&out);
    assert_eq!(out.status.code(), Some(0), "{:#?}\nstderr:\n{}", results, text(&out.stderr));
    assert_eq!(results[0]["outcome"], "pass");
}
