//! The command channel to a container target: one long-lived exec of the image's agent
//! (services/src/agent.rs) that runs the lab's commands, instead of one `docker exec` each.
//!
//! Why: a `docker exec` costs about 60 ms of CPU here (the engine, containerd, runc entering
//! the namespaces, a shim), and a run of the shipped scenarios made 1328 of them (`docker
//! events --filter event=exec_start`): on two cores
//! that CPU was what the scenarios waited for. Through the agent a command costs a fork and an
//! exec inside the target.
//!
//! Framing (encode a request, cut replies out of the byte stream) is synchronous and tested
//! here; the async side is one writer under a lock and one reader task that hands each reply
//! to whoever waits for it. When the channel closes (the agent or the target died), a command
//! still waiting gets [`ChannelClosed`], and the target runs later commands through plain
//! `docker exec` again (see `Target::exec_with_stdin`), so a lost channel never hides a dead
//! target nor breaks a live one.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::container::LogOutput;
use futures_util::StreamExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;

use crate::target::engine::{AttachedExec, Engine, EngineError};

/// Where the image installs the agent (the Containerfile's COPY).
pub const AGENT_PATH: &str = "/usr/libexec/unitlab/agent";
/// The id of the agent's hello reply.
const HELLO_ID: u64 = u64::MAX;
/// What the hello reply carries: protocol name and version.
const HELLO: &[u8] = b"unitlab-agent 1";
/// The exit code of a reply that means "the agent could not start the command" (the target's
/// pids ceiling is reached): it is run through `docker exec` instead, which can still enter.
pub const CANNOT_START: i32 = i32::MIN;
/// The stdin length that means "no stdin".
const NO_STDIN: u32 = u32::MAX;
/// The agent answers its hello in milliseconds once the exec runs; this only trips on an
/// engine that cannot start it.
const HELLO_DEADLINE: Duration = Duration::from_secs(15);
/// A reply bigger than this is a broken or hostile agent, not output: the channel closes.
const MAX_REPLY: usize = 256 << 20;

/// A command's result as the agent reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub id: u64,
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// The channel closed before this command's reply came: why, as far as the lab knows.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the command channel to {target} closed: {why}")]
pub struct ChannelClosed {
    pub target: String,
    pub why: String,
}

/// One request's bytes: id, argv, stdin (see services/src/agent.rs for the format).
pub fn encode_request(id: u64, argv: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    let args: usize = argv.iter().map(|a| 4 + a.len()).sum();
    let mut frame = Vec::with_capacity(16 + args + stdin.map_or(0, <[u8]>::len));
    frame.extend_from_slice(&id.to_le_bytes());
    frame.extend_from_slice(&(argv.len() as u32).to_le_bytes());
    for arg in argv {
        frame.extend_from_slice(&(arg.len() as u32).to_le_bytes());
        frame.extend_from_slice(arg.as_bytes());
    }
    match stdin {
        None => frame.extend_from_slice(&NO_STDIN.to_le_bytes()),
        Some(data) => {
            frame.extend_from_slice(&(data.len() as u32).to_le_bytes());
            frame.extend_from_slice(data);
        }
    }
    frame
}

/// Cut the first complete reply off the front of `buf`: `Ok(None)` while it is incomplete,
/// `Err` when it declares a size no agent sends.
pub fn take_reply(buf: &mut Vec<u8>) -> Result<Option<Reply>, String> {
    let u32_at = |at: usize| -> Option<usize> { buf.get(at..at + 4).map(|b| u32::from_le_bytes(b.try_into().unwrap()) as usize) };
    let Some(out_len) = u32_at(12) else { return Ok(None) };
    if out_len > MAX_REPLY {
        return Err(format!("a reply declares {out_len} bytes of output"));
    }
    let Some(err_len) = u32_at(16 + out_len) else { return Ok(None) };
    if err_len > MAX_REPLY {
        return Err(format!("a reply declares {err_len} bytes of error output"));
    }
    let end = 20 + out_len + err_len;
    if buf.len() < end {
        return Ok(None);
    }
    let reply = Reply {
        id: u64::from_le_bytes(buf[0..8].try_into().unwrap()),
        exit_code: i32::from_le_bytes(buf[8..12].try_into().unwrap()),
        stdout: buf[16..16 + out_len].to_vec(),
        stderr: buf[20 + out_len..end].to_vec(),
    };
    buf.drain(..end);
    Ok(Some(reply))
}

#[derive(Default)]
struct Pending {
    waiters: HashMap<u64, oneshot::Sender<Reply>>,
    /// Set once the channel closed: why.
    closed: Option<String>,
}

struct Shared {
    target: String,
    pending: Mutex<Pending>,
}

impl Shared {
    /// Mark the channel closed and wake every waiter (their senders drop).
    fn close(&self, why: String) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if p.closed.is_none() {
            tracing::debug!(target = %self.target, why = %why, "command channel closed");
            p.closed = Some(why);
        }
        p.waiters.clear();
    }

    fn closed(&self) -> Option<String> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).closed.clone()
    }
}

/// An open channel; dropping it closes the agent's stdin, which ends the agent.
pub struct Channel {
    shared: Arc<Shared>,
    writer: tokio::sync::Mutex<Pin<Box<dyn AsyncWrite + Send>>>,
    next: AtomicU64,
    reader: tokio::task::JoinHandle<()>,
}

impl Channel {
    /// Start the agent in container `id` (called `name` in messages) and wait for its hello.
    pub async fn open(engine: &Engine, id: &str, name: &str) -> Result<Channel, EngineError> {
        let what = || format!("start the command channel ({AGENT_PATH}) in {name}");
        let AttachedExec { mut output, input, .. } = engine.start_attached(id, vec![AGENT_PATH.to_string()], true, &what()).await?;
        let shared = Arc::new(Shared { target: name.to_string(), pending: Mutex::new(Pending::default()) });
        let (hello_tx, hello_rx) = oneshot::channel();
        shared.pending.lock().unwrap().waiters.insert(HELLO_ID, hello_tx);
        let reader_shared = Arc::clone(&shared);
        let reader = tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut agent_said = String::new();
            let why = loop {
                match output.next().await {
                    None => break format!("the agent's output ended{}", said(&agent_said)),
                    Some(Err(e)) => break format!("reading the agent's output: {e}{}", said(&agent_said)),
                    Some(Ok(LogOutput::StdErr { message })) => {
                        agent_said.push_str(&String::from_utf8_lossy(&message));
                    }
                    Some(Ok(LogOutput::StdOut { message } | LogOutput::Console { message })) => {
                        buf.extend_from_slice(&message);
                        let mut broken = None;
                        loop {
                            match take_reply(&mut buf) {
                                Ok(Some(reply)) => {
                                    let waiter = reader_shared.pending.lock().unwrap_or_else(|e| e.into_inner()).waiters.remove(&reply.id);
                                    // A waiter that gave up (a timeout around the command) is gone: fine.
                                    if let Some(tx) = waiter {
                                        let _ = tx.send(reply);
                                    }
                                }
                                Ok(None) => break,
                                Err(e) => {
                                    broken = Some(e);
                                    break;
                                }
                            }
                        }
                        if let Some(e) = broken {
                            break e;
                        }
                    }
                    Some(Ok(LogOutput::StdIn { .. })) => {}
                }
            };
            reader_shared.close(why);
        });
        let channel = Channel { shared, writer: tokio::sync::Mutex::new(input), next: AtomicU64::new(0), reader };
        match tokio::time::timeout(HELLO_DEADLINE, hello_rx).await {
            Ok(Ok(hello)) if hello.stdout == HELLO => Ok(channel),
            Ok(Ok(hello)) => Err(channel_error(what(), format!("unexpected hello {:?}", String::from_utf8_lossy(&hello.stdout)))),
            Ok(Err(_)) => Err(channel_error(what(), channel.shared.closed().unwrap_or_default())),
            Err(_) => Err(channel_error(what(), format!("no hello within {} s", HELLO_DEADLINE.as_secs()))),
        }
    }

    /// Close the channel for `why`: commands waiting get [`ChannelClosed`], later ones go
    /// through plain `docker exec`. For a target frozen from outside, where the agent cannot
    /// answer but the engine refuses an exec at once.
    pub fn abandon(&self, why: String) {
        self.shared.close(why);
    }

    /// Whether the channel closed (later commands go through plain `docker exec`).
    pub fn is_closed(&self) -> bool {
        self.shared.closed().is_some()
    }

    /// Run `argv` with `stdin` through the agent.
    pub async fn run(&self, argv: &[&str], stdin: Option<&[u8]>) -> Result<Reply, ChannelClosed> {
        let closed = |why: String| ChannelClosed { target: self.shared.target.clone(), why };
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut p = self.shared.pending.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(why) = &p.closed {
                return Err(closed(why.clone()));
            }
            p.waiters.insert(id, tx);
        }
        let frame = encode_request(id, argv, stdin);
        let written = {
            let mut w = self.writer.lock().await;
            match w.write_all(&frame).await {
                Ok(()) => w.flush().await,
                Err(e) => Err(e),
            }
        };
        if let Err(e) = written {
            self.shared.close(format!("writing to the agent: {e}"));
        }
        rx.await.map_err(|_| closed(self.shared.closed().unwrap_or_else(|| "the reply was lost".into())))
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn said(stderr: &str) -> String {
    let tail = stderr.trim();
    if tail.is_empty() {
        String::new()
    } else {
        format!(" (the agent said: {})", tail.lines().last().unwrap_or(tail))
    }
}

fn channel_error(what: String, why: String) -> EngineError {
    EngineError::api(what, bollard::errors::Error::DockerStreamError { error: why })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply_bytes(id: u64, code: i32, out: &[u8], err: &[u8]) -> Vec<u8> {
        let mut b = id.to_le_bytes().to_vec();
        b.extend_from_slice(&code.to_le_bytes());
        b.extend_from_slice(&(out.len() as u32).to_le_bytes());
        b.extend_from_slice(out);
        b.extend_from_slice(&(err.len() as u32).to_le_bytes());
        b.extend_from_slice(err);
        b
    }

    #[test]
    fn requests_carry_id_argv_and_stdin_or_its_absence() {
        let f = encode_request(3, &["sh", "-c"], None);
        assert_eq!(&f[..8], &3u64.to_le_bytes());
        assert_eq!(&f[8..12], &2u32.to_le_bytes());
        assert_eq!(&f[12..18], b"\x02\0\0\0sh");
        assert_eq!(&f[f.len() - 4..], &u32::MAX.to_le_bytes(), "no stdin is u32::MAX, not an empty one");
        let g = encode_request(3, &[], Some(b""));
        assert_eq!(&g[g.len() - 4..], &0u32.to_le_bytes(), "an empty stdin is sent as such");
    }

    #[test]
    fn replies_are_cut_out_of_a_stream_however_it_is_chunked() {
        let mut stream = reply_bytes(1, 0, b"active\n", b"");
        stream.extend(reply_bytes(2, 137, b"", b"killed"));
        // Fed one byte at a time, as the engine may chunk it, the same two replies come out.
        let mut buf = Vec::new();
        let mut got = Vec::new();
        for byte in stream {
            buf.push(byte);
            while let Some(r) = take_reply(&mut buf).unwrap() {
                got.push(r);
            }
        }
        assert!(buf.is_empty());
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].id, got[0].exit_code, got[0].stdout.as_slice()), (1, 0, &b"active\n"[..]));
        assert_eq!((got[1].id, got[1].exit_code, got[1].stderr.as_slice()), (2, 137, &b"killed"[..]));
    }

    #[test]
    fn an_absurd_length_closes_the_channel_instead_of_buffering_forever() {
        let mut buf = 9u64.to_le_bytes().to_vec();
        buf.extend_from_slice(&0i32.to_le_bytes());
        buf.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(take_reply(&mut buf).unwrap_err().contains("declares"));
    }
}
