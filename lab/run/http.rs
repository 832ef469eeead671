//! HTTP to the services in a target: probes, waits and buggy-server's control endpoint.
//!
//! Two routes. **Direct**: reqwest from the lab to the target's address on the engine's network,
//! with a per-request timeout: no exec, so fifty cells can be faulted at one instant and "time to
//! healthy" can be sampled every 20 ms. **In the target**: `curl` run inside it, for a server
//! bound to 127.0.0.1 (reachable only from inside), or one the lab knows nothing about. The
//! route of a port is decided from the scenario's units: a `--listen` on a loopback address
//! means in the target, any other address means direct.

use std::net::IpAddr;
use std::time::Duration;

pub use crate::observe::Answer;
use crate::target::{Target, TargetError};

/// How a port of the target is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Direct(IpAddr),
    InTarget,
}

impl Route {
    /// The route to a server that listens on `listen` (`ADDR:PORT` as given to `--listen`, or
    /// `None` when unknown), for a target at `address`.
    pub fn for_listen(listen: Option<&str>, address: Option<IpAddr>) -> Route {
        let host = listen.and_then(|l| l.rsplit_once(':')).map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'));
        let loopback = match host {
            None => true,
            Some("localhost") => true,
            Some(h) => h.parse::<IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(true),
        };
        match (loopback, address) {
            (false, Some(ip)) => Route::Direct(ip),
            _ => Route::InTarget,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Route::Direct(_) => "from the lab",
            Route::InTarget => "from inside the target",
        }
    }
}

/// Deadline of the exec that runs curl, beyond curl's own timeout.
const EXEC_SLACK: Duration = Duration::from_secs(30);

/// An HTTP client for targets.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
}

impl Default for Http {
    fn default() -> Self {
        Http::new()
    }
}

impl Http {
    pub fn new() -> Http {
        // The lab talks to its own targets only: never through a proxy from the environment.
        let client = reqwest::Client::builder().no_proxy().build().unwrap_or_default();
        Http { client }
    }

    /// `GET http://HOST:PORT PATH` within `timeout`.
    pub async fn get(&self, target: &Target, route: Route, port: u16, path: &str, timeout: Duration) -> Result<Answer, TargetError> {
        self.request(target, route, "GET", port, path, timeout).await
    }

    /// `POST http://HOST:PORT PATH` (empty body) within `timeout`.
    pub async fn post(&self, target: &Target, route: Route, port: u16, path: &str, timeout: Duration) -> Result<Answer, TargetError> {
        self.request(target, route, "POST", port, path, timeout).await
    }

    async fn request(&self, target: &Target, route: Route, method: &str, port: u16, path: &str, timeout: Duration) -> Result<Answer, TargetError> {
        match route {
            Route::Direct(ip) => {
                let host = match ip {
                    IpAddr::V4(v4) => v4.to_string(),
                    IpAddr::V6(v6) => format!("[{v6}]"),
                };
                let url = format!("http://{host}:{port}{path}");
                let request = match method {
                    "POST" => self.client.post(&url),
                    _ => self.client.get(&url),
                };
                Ok(match request.timeout(timeout).send().await {
                    Ok(response) => Answer::Status(response.status().as_u16()),
                    Err(e) => classify(&e),
                })
            }
            Route::InTarget => {
                let url = format!("http://127.0.0.1:{port}{path}");
                let max = format!("{:.3}", timeout.as_secs_f64());
                let argv = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", method, "--max-time", &max, &url];
                let out = match tokio::time::timeout(timeout + EXEC_SLACK, target.exec(&argv)).await {
                    Ok(out) => out?,
                    Err(_) => return Ok(Answer::Other(format!("curl inside {} did not return", target.name()))),
                };
                Ok(match out.exit_code {
                    0 => Answer::Status(out.stdout.trim().parse().unwrap_or(0)),
                    7 => Answer::Refused,
                    28 => Answer::Timeout,
                    code => Answer::Other(format!("curl exit {code}: {}", out.stderr.split_whitespace().collect::<Vec<_>>().join(" "))),
                })
            }
        }
    }
}

/// A reqwest error as what the probe saw.
fn classify(e: &reqwest::Error) -> Answer {
    if e.is_timeout() {
        return Answer::Timeout;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return Answer::Refused,
                std::io::ErrorKind::TimedOut => return Answer::Timeout,
                _ => {}
            }
        }
        source = err.source();
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        text.push_str(&format!(": {err}"));
        source = err.source();
    }
    Answer::Other(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_listeners_are_reached_from_inside_and_the_rest_directly() {
        let ip: IpAddr = "172.17.0.5".parse().unwrap();
        assert_eq!(Route::for_listen(Some("127.0.0.1:8080"), Some(ip)), Route::InTarget);
        assert_eq!(Route::for_listen(Some("localhost:8080"), Some(ip)), Route::InTarget);
        assert_eq!(Route::for_listen(Some("[::1]:8080"), Some(ip)), Route::InTarget);
        assert_eq!(Route::for_listen(Some("0.0.0.0:8080"), Some(ip)), Route::Direct(ip));
        assert_eq!(Route::for_listen(Some("[::]:8080"), Some(ip)), Route::Direct(ip));
        assert_eq!(Route::for_listen(None, Some(ip)), Route::InTarget, "an unknown server is probed where it surely answers");
        assert_eq!(Route::for_listen(Some("0.0.0.0:8080"), None), Route::InTarget, "no address known: from inside");
    }

    #[tokio::test]
    async fn a_closed_port_is_refused_and_a_silent_one_times_out() {
        let http = Http::new();
        // A port that was just free: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}/");
        let e = http.client.get(&url).timeout(Duration::from_secs(2)).send().await.unwrap_err();
        assert_eq!(classify(&e), Answer::Refused);
        // A listener that accepts and never answers.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}/", silent.local_addr().unwrap().port());
        let e = http.client.get(&url).timeout(Duration::from_millis(200)).send().await.unwrap_err();
        assert_eq!(classify(&e), Answer::Timeout);
    }
}
