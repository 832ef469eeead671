//! The exec channel into a VM: the QEMU guest agent (`qemu-ga`, Debian's `qemu-guest-agent`)
//! on a virtio-serial port whose host end is a UNIX socket. `guest-exec` starts a command
//! (argv, stdin as `input-data`, output captured), `guest-exec-status` reports its end with the
//! output. No network is involved, in the guest or on the host.
//!
//! The agent answers one request at a time, in order, on one connection: requests are
//! serialised by a lock. After any failure mid-request the connection is dropped and the next
//! request opens a new one and resynchronises with `guest-sync-delimited` (its answer starts
//! with a 0xFF byte, which tells it apart from an answer to an abandoned request).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

/// One request's answer may take this long (the agent answers at once; a loaded TCG guest
/// takes a while to be scheduled).
const REQUEST_DEADLINE: Duration = Duration::from_secs(30);
/// How often a running command's status is asked for, at first and at most.
const POLL_FIRST: Duration = Duration::from_millis(2);
const POLL_MAX: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("guest agent {operation} ({socket}): {source}")]
    Io {
        operation: String,
        socket: String,
        #[source]
        source: std::io::Error,
    },
    #[error("guest agent {operation}: no answer within {seconds} s")]
    Timeout { operation: String, seconds: u64 },
    #[error("guest agent {operation}: {detail}")]
    Refused { operation: String, detail: String },
}

struct Conn {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

/// A client of one VM's guest agent.
pub struct Agent {
    socket: PathBuf,
    conn: tokio::sync::Mutex<Option<Conn>>,
}

/// A finished command.
#[derive(Debug, Clone, Default)]
pub struct Finished {
    pub exit_code: i64,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn unb64(v: Option<&Value>) -> Vec<u8> {
    v.and_then(Value::as_str).and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok()).unwrap_or_default()
}

impl Agent {
    pub fn new(socket: PathBuf) -> Agent {
        Agent { socket, conn: tokio::sync::Mutex::new(None) }
    }

    fn io(&self, operation: &str, source: std::io::Error) -> AgentError {
        AgentError::Io { operation: operation.into(), socket: self.socket.display().to_string(), source }
    }

    /// Open the connection and wait until the agent answers a sync, up to `deadline` (the agent
    /// starts with the guest's early boot; until then the request waits in the port).
    async fn open(&self, deadline: Instant) -> Result<Conn, AgentError> {
        let stream = UnixStream::connect(&self.socket).await.map_err(|e| self.io("connect", e))?;
        let (r, mut writer) = stream.into_split();
        let mut reader = BufReader::new(r);
        let id: u64 = fastrand_id();
        // A raw 0xFF byte first: it resets the agent's parser, whatever an abandoned request
        // left half-written.
        let mut bytes = vec![0xFF];
        bytes.extend_from_slice(format!("{}\n", json!({"execute": "guest-sync-delimited", "arguments": {"id": id}})).as_bytes());
        writer.write_all(&bytes).await.map_err(|e| self.io("sync", e))?;
        let wait = async {
            loop {
                // Skip to the delimiter, then read the answer's line.
                let mut byte = [0u8; 1];
                loop {
                    reader.read_exact(&mut byte).await.map_err(|e| self.io("sync", e))?;
                    if byte[0] == 0xFF {
                        break;
                    }
                }
                let mut line = String::new();
                reader.read_line(&mut line).await.map_err(|e| self.io("sync", e))?;
                let value: Value = serde_json::from_str(line.trim()).unwrap_or(Value::Null);
                if value.get("return").and_then(Value::as_u64) == Some(id) {
                    return Ok::<(), AgentError>(());
                }
            }
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, wait).await {
            Ok(r) => r?,
            Err(_) => return Err(AgentError::Timeout { operation: "sync".into(), seconds: remaining.as_secs().max(1) }),
        }
        Ok(Conn { reader, writer })
    }

    /// Wait until the agent answers (boot), up to `deadline`.
    pub async fn wait_ready(&self, deadline: Instant) -> Result<(), AgentError> {
        let mut guard = self.conn.lock().await;
        if guard.is_none() {
            *guard = Some(self.open(deadline).await?);
        }
        Ok(())
    }

    /// One request and its `return` value.
    pub async fn request(&self, command: &str, arguments: Value) -> Result<Value, AgentError> {
        let mut guard = self.conn.lock().await;
        if guard.is_none() {
            *guard = Some(self.open(Instant::now() + REQUEST_DEADLINE).await?);
        }
        let conn = guard.as_mut().expect("opened above");
        let line = format!("{}\n", json!({"execute": command, "arguments": arguments}));
        let exchange = async {
            conn.writer.write_all(line.as_bytes()).await.map_err(|e| self.io(command, e))?;
            let mut reply = String::new();
            let n = conn.reader.read_line(&mut reply).await.map_err(|e| self.io(command, e))?;
            if n == 0 {
                return Err(self.io(command, std::io::ErrorKind::UnexpectedEof.into()));
            }
            serde_json::from_str::<Value>(reply.trim())
                .map_err(|e| AgentError::Refused { operation: command.into(), detail: format!("unreadable answer {reply:?}: {e}") })
        };
        let value = match tokio::time::timeout(REQUEST_DEADLINE, exchange).await {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                *guard = None;
                return Err(e);
            }
            Err(_) => {
                *guard = None;
                return Err(AgentError::Timeout { operation: command.into(), seconds: REQUEST_DEADLINE.as_secs() });
            }
        };
        if let Some(ret) = value.get("return") {
            return Ok(ret.clone());
        }
        Err(AgentError::Refused { operation: command.into(), detail: value.get("error").unwrap_or(&value).to_string() })
    }

    /// Start a command; its pid in the guest.
    pub async fn spawn(&self, argv: &[&str], stdin: Option<&[u8]>, capture: bool) -> Result<i64, AgentError> {
        let (path, args) = argv.split_first().ok_or_else(|| AgentError::Refused { operation: "guest-exec".into(), detail: "empty argv".into() })?;
        let mut arguments = json!({"path": path, "arg": args, "capture-output": capture});
        if let Some(data) = stdin {
            arguments["input-data"] = Value::String(b64(data));
        }
        let ret = self.request("guest-exec", arguments).await?;
        ret.get("pid")
            .and_then(Value::as_i64)
            .ok_or_else(|| AgentError::Refused { operation: "guest-exec".into(), detail: format!("no pid in {ret}") })
    }

    /// Wait for a started command to end; its exit code (128 + signal when killed, as a shell
    /// reports it) and captured output.
    pub async fn wait(&self, pid: i64) -> Result<Finished, AgentError> {
        let mut every = POLL_FIRST;
        loop {
            let status = self.request("guest-exec-status", json!({"pid": pid})).await?;
            if status.get("exited").and_then(Value::as_bool) == Some(true) {
                let exit_code = match (status.get("exitcode").and_then(Value::as_i64), status.get("signal").and_then(Value::as_i64)) {
                    (Some(code), _) => code,
                    (None, Some(signal)) => 128 + signal,
                    (None, None) => -1,
                };
                return Ok(Finished { exit_code, stdout: unb64(status.get("out-data")), stderr: unb64(status.get("err-data")) });
            }
            tokio::time::sleep(every).await;
            every = (every * 2).min(POLL_MAX);
        }
    }

    /// Run a command to its end.
    pub async fn run(&self, argv: &[&str], stdin: Option<&[u8]>) -> Result<Finished, AgentError> {
        let pid = self.spawn(argv, stdin, true).await?;
        self.wait(pid).await
    }
}

/// A request id nobody else uses on this connection.
fn fastrand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos() as u64).unwrap_or(0);
    (nanos << 20) ^ NEXT.fetch_add(1, Ordering::Relaxed)
}
