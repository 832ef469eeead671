//! The connection to a Docker Engine: connecting with a deadline, version negotiation, and the
//! facts about the engine the rest of the lab needs (API version, cgroup version).
//!
//! Part of the async target layer: everything that talks to the engine goes through
//! [`Engine`], so every engine error names the operation that failed.

use std::time::Duration;

use bollard::Docker;

/// How long `connect` waits for the engine before it says it is not there. The doctor's
/// contract is "no engine -> clear error within 5 s", so this stays well below that.
pub const CONNECT_DEADLINE: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "cannot reach the Docker Engine at {endpoint}: {reason}\n  \
         fix: start it (`systemctl start docker`, or `dockerd &` by hand), or point DOCKER_HOST at a running engine"
    )]
    Unreachable { endpoint: String, reason: String },
    #[error("Docker Engine did not answer {operation} within {seconds} s (endpoint {endpoint})\n  fix: check that dockerd is healthy (`docker info`)")]
    Timeout { operation: &'static str, endpoint: String, seconds: u64 },
    #[error("Docker Engine {operation} failed: {source}")]
    Api {
        operation: String,
        #[source]
        source: bollard::errors::Error,
    },
}

impl EngineError {
    /// Wrap a bollard error with the operation and object it concerned.
    pub fn api(operation: impl Into<String>, source: bollard::errors::Error) -> Self {
        EngineError::Api { operation: operation.into(), source }
    }
}

/// Cgroup hierarchy of the engine's host: it decides how a systemd target is mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum CgroupVersion {
    V1,
    V2,
}

impl std::fmt::Display for CgroupVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CgroupVersion::V1 => "v1",
            CgroupVersion::V2 => "v2",
        })
    }
}

/// What the lab knows about the engine once connected.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EngineInfo {
    pub endpoint: String,
    pub server_version: String,
    pub api_version: String,
    pub cgroup_version: CgroupVersion,
    pub cgroup_driver: String,
    pub storage_driver: String,
    /// The engine runs on this host (a UNIX socket, or TCP to a loopback address), so its
    /// containers' addresses are reachable from the lab.
    pub local: bool,
}

/// Whether `DOCKER_HOST`-style `endpoint` is an engine on this host.
pub fn endpoint_is_local(endpoint: &str) -> bool {
    if endpoint.starts_with("unix://") {
        return true;
    }
    let Some(rest) = endpoint.strip_prefix("tcp://").or_else(|| endpoint.strip_prefix("http://")) else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A connected, version-negotiated engine. Cheap to clone (bollard's client is shared).
#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    info: EngineInfo,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("info", &self.info).finish()
    }
}

fn endpoint() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_string())
}

async fn within<T>(
    operation: &'static str,
    deadline: Duration,
    fut: impl std::future::Future<Output = Result<T, bollard::errors::Error>>,
) -> Result<T, EngineError> {
    match tokio::time::timeout(deadline, fut).await {
        Err(_) => Err(EngineError::Timeout { operation, endpoint: endpoint(), seconds: deadline.as_secs() }),
        Ok(Err(e)) => Err(EngineError::Unreachable { endpoint: endpoint(), reason: e.to_string() }),
        Ok(Ok(v)) => Ok(v),
    }
}

impl Engine {
    /// Connect to the local engine (DOCKER_HOST respected), negotiate the API version (the
    /// engines here speak 1.41, older than bollard's default) and read the engine facts.
    pub async fn connect() -> Result<Engine, EngineError> {
        // DOCKER_HOST decides: unix:// or tcp:// (http://). ssh:// is not built in: forward
        // the remote socket instead, which also keeps the engine's API off the network.
        let docker = Docker::connect_with_defaults().map_err(|e| {
            let reason = if endpoint().starts_with("ssh://") {
                "ssh:// engines are not supported; forward the engine's socket with                  `ssh -nNT -L /tmp/docker.sock:/var/run/docker.sock HOST` and set DOCKER_HOST=unix:///tmp/docker.sock"
                    .to_string()
            } else {
                e.to_string()
            };
            EngineError::Unreachable { endpoint: endpoint(), reason }
        })?;
        let docker = within("version negotiation", CONNECT_DEADLINE, docker.negotiate_version()).await?;
        let version = within("GET /version", CONNECT_DEADLINE, docker.version()).await?;
        let info = within("GET /info", CONNECT_DEADLINE, docker.info()).await?;
        let cgroup_version = match info.cgroup_version.map(|v| v.to_string()) {
            Some(v) if v == "2" => CgroupVersion::V2,
            _ => CgroupVersion::V1,
        };
        let info = EngineInfo {
            endpoint: endpoint(),
            server_version: version.version.unwrap_or_else(|| "unknown".into()),
            api_version: version.api_version.unwrap_or_else(|| "unknown".into()),
            cgroup_version,
            cgroup_driver: info.cgroup_driver.map(|d| d.to_string()).unwrap_or_default(),
            storage_driver: info.driver.unwrap_or_default(),
            local: endpoint_is_local(&endpoint()),
        };
        Ok(Engine { docker, info })
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    pub fn info(&self) -> &EngineInfo {
        &self.info
    }

    /// Create and start `cmd` in container `container` with its stdout and stderr attached,
    /// and its stdin when `stdin` is set; `what` names the operation in errors.
    pub(crate) async fn start_attached(&self, container: &str, cmd: Vec<String>, stdin: bool, what: &str) -> Result<AttachedExec, EngineError> {
        use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
        let exec = self
            .docker
            .create_exec(
                container,
                CreateExecOptions {
                    attach_stdin: Some(stdin),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(cmd),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| EngineError::api(what.to_string(), e))?;
        let started = self
            .docker
            .start_exec(&exec.id, Some(StartExecOptions { output_capacity: Some(1 << 20), ..Default::default() }))
            .await
            .map_err(|e| EngineError::api(what.to_string(), e))?;
        match started {
            StartExecResults::Attached { output, input } => Ok(AttachedExec { id: exec.id, output, input }),
            StartExecResults::Detached => Err(EngineError::api(
                what.to_string(),
                bollard::errors::Error::DockerStreamError { error: "exec started detached".into() },
            )),
        }
    }
}

/// An exec started by [`Engine::start_attached`]: its id (for its exit code) and its streams.
pub(crate) struct AttachedExec {
    pub id: String,
    pub output: std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<bollard::container::LogOutput, bollard::errors::Error>> + Send>>,
    pub input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
}

#[cfg(test)]
mod tests {
    use super::endpoint_is_local;

    #[test]
    fn local_endpoints_are_sockets_and_loopback_tcp() {
        for local in ["unix:///var/run/docker.sock", "tcp://127.0.0.1:2375", "tcp://localhost:2375", "http://[::1]:2375", "tcp://127.0.0.2:1"] {
            assert!(endpoint_is_local(local), "{local}");
        }
        for remote in ["tcp://10.0.0.5:2375", "tcp://builder.example:2376", "ssh://me@host", "npipe:////./pipe/docker_engine", ""] {
            assert!(!endpoint_is_local(remote), "{remote}");
        }
    }
}
