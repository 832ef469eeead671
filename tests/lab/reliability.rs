//! What happens when the lab or its target dies mid-scenario, through the real binary: a lab
//! SIGKILLed while its target is paused leaves nothing behind (the pause guard removes the
//! frozen target), and a target killed or frozen from outside ends the run with exit 3 within
//! seconds, naming the container, instead of running into the step's deadline.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::models::EventMessage;
use bollard::query_parameters::EventsOptionsBuilder;
use futures_util::{Stream, StreamExt};
use unitlab::target::reaper;
use unitlab::{Engine, Suite};

fn events(engine: &Engine) -> impl Stream<Item = EventMessage> + Unpin + '_ {
    let filters = HashMap::from([("type", vec!["container"]), ("label", vec![reaper::LABEL_RUN])]);
    Box::pin(engine.docker().events(Some(EventsOptionsBuilder::default().filters(&filters).build())).filter_map(|e| futures_util::future::ready(e.ok())))
}

/// The next event of a container owned by `pid` whose action starts with `action`; its id.
async fn next(events: &mut (impl Stream<Item = EventMessage> + Unpin), pid: u32, action: &str, within: Duration) -> String {
    let owned = |e: &EventMessage| e.actor.as_ref().and_then(|a| a.attributes.as_ref()).and_then(|a| a.get(reaper::LABEL_OWNER_PID)).and_then(|p| p.parse::<u32>().ok()) == Some(pid);
    tokio::time::timeout(within, async {
        while let Some(e) = events.next().await {
            if owned(&e) && e.action.as_deref().is_some_and(|a| a.starts_with(action)) {
                return e.actor.and_then(|a| a.id).unwrap_or_default();
            }
        }
        panic!("event stream ended")
    })
    .await
    .unwrap_or_else(|_| panic!("no `{action}` event for a container of pid {pid} within {within:?}"))
}

/// Start `unitlab run FILE` (a scenario written to a temporary directory) in the background.
fn spawn_run(dir: &std::path::Path, scenario: &str) -> tokio::process::Child {
    let file = dir.join("s.toml");
    std::fs::write(&file, scenario).unwrap();
    tokio::process::Command::new(crate::bin::BIN)
        .args(["run", file.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

const PAUSED: &str = r#"
name = "paused-for-a-minute"
suites = ["bookworm"]
shared_target = false
[[units]]
name = "web"
exec = ["/usr/local/bin/buggy-server", "--listen", "0.0.0.0:8181"]
[[steps]]
do = "start"
unit = "web"
[[steps]]
do = "pause"
duration = "60s"
"#;

#[tokio::test]
async fn sigkill_of_the_lab_during_a_pause_leaves_no_container() {
    crate::support::image(Suite::Bookworm).await;
    let engine = crate::support::engine().await;
    let mut events = events(&engine);
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_run(dir.path(), PAUSED);
    let pid = child.id().unwrap();
    let id = next(&mut events, pid, "pause", Duration::from_secs(120)).await;
    let killed = Instant::now();
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    next(&mut events, pid, "destroy", Duration::from_secs(30)).await;
    eprintln!("paused target of a SIGKILLed unitlab removed {:.2} s after the kill", killed.elapsed().as_secs_f64());
    let gone = engine.docker().inspect_container(&id, None).await;
    assert!(matches!(gone, Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })), "{gone:?}");
}

const LONG_WINDOW: &str = r#"
name = "a-long-window"
suites = ["bookworm"]
shared_target = false
[[units]]
name = "web"
exec = ["/usr/local/bin/buggy-server", "--listen", "0.0.0.0:8182"]
[[steps]]
do = "start"
unit = "web"
[[steps]]
do = "expect-no-restart"
unit = "web"
window = "300s"
"#;

/// The target dies (or is frozen) from outside while the lab watches a 300 s window: the lab
/// says so within seconds, exit 3, naming the container.
async fn outside_event_ends_the_run(freeze: bool) {
    crate::support::image(Suite::Bookworm).await;
    let engine = crate::support::engine().await;
    let mut events = events(&engine);
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_run(dir.path(), LONG_WINDOW);
    let pid = child.id().unwrap();
    // The window begins right after the blocking `systemctl start` returned: once the unit is
    // active (the lab's commands go through one long-lived channel, so no exec ends to say so).
    let id = next(&mut events, pid, "start", Duration::from_secs(120)).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while crate::support::docker_exec(&engine, &id, &["systemctl", "is-active", "a-long-window.web.service"]).await.trim() != "active" {
        assert!(Instant::now() < deadline, "a-long-window.web.service never became active in {id}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let info = engine.docker().inspect_container(&id, None).await.unwrap();
    let name = info.name.unwrap_or_default().trim_start_matches('/').to_string();
    let hit = Instant::now();
    if freeze {
        // As an operator would: `docker pause` again when the cgroup v1 freezer gives up
        // ("unable to freeze", see Target::pause).
        let mut tries = 0;
        while let Err(e) = engine.docker().pause_container(&id).await {
            tries += 1;
            assert!(tries < 5 && e.to_string().contains("unable to freeze"), "docker pause: {e}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    } else {
        engine.docker().kill_container(&id, None::<bollard::query_parameters::KillContainerOptions>).await.unwrap();
    }
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await.expect("the lab ends well before the window").unwrap();
    let took = hit.elapsed();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("target {} from outside: the lab ended {:.2} s later", if freeze { "frozen" } else { "killed" }, took.as_secs_f64());
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains(&name), "the report names the container {name}:\n{text}");
    assert!(took < Duration::from_secs(30), "noticed after {took:?}, not at the window's end:\n{text}");
    if freeze {
        // The lab removes what it started, frozen or not.
        let _ = engine.docker().unpause_container(&id).await;
    }
}

#[tokio::test]
async fn a_target_killed_from_outside_ends_the_run_with_exit_3() {
    outside_event_ends_the_run(false).await;
}

#[tokio::test]
async fn a_target_frozen_from_outside_ends_the_run_with_exit_3() {
    outside_event_ends_the_run(true).await;
}

const OVERWRITES_CURL: &str = r##"
name = "overwrites-curl"
suites = ["bookworm"]
[[files]]
path = "/usr/bin/curl"
mode = "0755"
content = "#!/bin/sh\nexit 42\n"
[[units]]
name = "web"
exec = ["/usr/local/bin/buggy-server", "--listen", "0.0.0.0:8184"]
[units.Service]
Type = "notify"
[[steps]]
do = "start"
unit = "web"
[[steps]]
do = "probe"
port = 8184
"##;

const NEEDS_CURL: &str = r#"
name = "needs-curl"
suites = ["bookworm"]
[[units]]
name = "web"
exec = ["/usr/local/bin/buggy-server", "--listen", "127.0.0.1:8185"]
[units.Service]
Type = "notify"
[[steps]]
do = "start"
unit = "web"
[[steps]]
# A server on loopback is probed with curl inside the target: it must be the image's curl.
do = "probe"
port = 8185
"#;

#[test]
fn a_scenario_that_overwrites_an_image_file_gets_a_target_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.toml"), OVERWRITES_CURL).unwrap();
    std::fs::write(dir.path().join("b.toml"), NEEDS_CURL).unwrap();
    let out = crate::bin::unitlab(&["run", dir.path().to_str().unwrap(), "--format", "json"], None);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", crate::bin::text(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let a = report["results"].as_array().unwrap().iter().find(|r| r["name"] == "overwrites-curl").unwrap();
    let warning = a["warnings"][0].as_str().unwrap();
    assert!(warning.contains("/usr/bin/curl") && warning.contains("a target of its own"), "{warning}");
}
