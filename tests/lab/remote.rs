//! An engine reached through `DOCKER_HOST=tcp://...` (issue 14: beyond one machine). The
//! engine's UNIX socket is forwarded to a TCP port by the test itself, as `socat` or an SSH
//! tunnel would: once on loopback (the engine is on this host, probes go from the lab straight
//! to the container) and once on the host's own non-loopback address, which the lab must treat
//! as another machine's engine (its container network is unreachable, so probes go through
//! curl inside the target). Both runs must pass and leave no container behind.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use tokio::net::{TcpListener, UnixStream};

use crate::bin::{repo, text, BIN};

const SOCKET: &str = "/var/run/docker.sock";

/// Forward TCP connections on `ip` (port chosen by the kernel) to the engine's socket.
async fn forward_engine(ip: IpAddr) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind((ip, 0)).await.expect("bind the forwarding port");
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut unix) = UnixStream::connect(SOCKET).await {
                    let _ = tokio::io::copy_bidirectional(&mut tcp, &mut unix).await;
                }
            });
        }
    });
    (addr, task)
}

/// This host's address on its default route (no packet is sent: a UDP connect only picks it).
fn non_loopback_address() -> IpAddr {
    let probe = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    probe.connect((Ipv4Addr::new(203, 0, 113, 1), 9)).expect("a default route to pick an address from");
    let ip = probe.local_addr().unwrap().ip();
    assert!(!ip.is_loopback() && !ip.is_unspecified(), "this host needs a non-loopback address for the test, got {ip}");
    ip
}

/// Run the scenario through `endpoint`; its JSON report and the pid of the run.
async fn run_through(endpoint: &str, scenario: &std::path::Path) -> (serde_json::Value, u32) {
    let child = tokio::process::Command::new(BIN)
        .args(["run", scenario.to_str().unwrap(), "--suite", "bookworm", "--format", "json"])
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .env("DOCKER_HOST", endpoint)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let out = tokio::time::timeout(Duration::from_secs(180), child.wait_with_output()).await.expect("the run ends").unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "through {endpoint}:\n{stdout}\nstderr:\n{}", text(&out.stderr));
    (serde_json::from_str(&stdout).unwrap(), pid)
}

fn probe_observed(report: &serde_json::Value) -> String {
    report["results"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "probe")
        .map(|c| c["observed"].as_str().unwrap().to_string())
        .expect("the scenario has a probe")
}

#[tokio::test]
async fn an_engine_over_tcp_runs_scenarios_with_the_right_http_route_and_leaves_nothing() {
    crate::support::image(unitlab::Suite::Bookworm).await;
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("remote-engine.toml");
    std::fs::write(
        &scenario,
        r#"name = "remote-engine"
description = "a server probed over the route the engine's location allows"

[[units]]
name = "web"
exec = ["/usr/local/bin/buggy-server", "--listen", "0.0.0.0:8301"]

[units.Service]
Type = "notify"

[[steps]]
do = "start"
unit = "web"

[[steps]]
do = "probe"
port = 8301
path = "/healthz"
expect = 200
"#,
    )
    .unwrap();

    let (loopback, task) = forward_engine(IpAddr::V4(Ipv4Addr::LOCALHOST)).await;
    let (report, first) = run_through(&format!("tcp://{loopback}"), &scenario).await;
    assert_eq!(probe_observed(&report), "GET :8301/healthz: 200 (from the lab)", "an engine on loopback is this host's");
    task.abort();

    let (elsewhere, task) = forward_engine(non_loopback_address()).await;
    let (report, second) = run_through(&format!("tcp://{elsewhere}"), &scenario).await;
    assert_eq!(
        probe_observed(&report),
        "GET :8301/healthz: 200 (from inside the target)",
        "an engine at a non-loopback address is treated as another machine's"
    );
    task.abort();

    // Every target of both runs is gone (teardown went through the forwarded engine too).
    let engine = crate::support::engine().await;
    let left = unitlab::target::reaper::list_lab_containers(&engine).await.unwrap();
    let mine: Vec<_> = left.iter().filter(|c| c.owner.as_ref().is_some_and(|o| o.pid == first || o.pid == second)).collect();
    assert!(mine.is_empty(), "containers left behind by the runs: {mine:?}");
}
