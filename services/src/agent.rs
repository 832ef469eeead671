//! unitlab-agent: the lab's command channel inside a container target.
//!
//! Every command the lab runs in a target (systemctl, journalctl, file writes, probes) used to
//! be one `docker exec`: an exec created and started through the engine, runc entering the
//! container's namespaces, a shim to reap it. Measured here (2 cores, fuse-overlayfs), that is
//! about 60 ms of CPU each, and a run of the shipped scenarios made 1328 of them. The lab now
//! starts this program once per target (one `docker exec -i`) and sends it the commands over
//! its stdin; each one costs a fork and an exec inside the target instead.
//!
//! Commands run concurrently, each in its own thread, with the environment, working directory
//! and user the agent was started with (the same as a `docker exec`). A command's stdin is
//! what the lab sent (then end of file), or /dev/null; its stdout and stderr are collected
//! whole and sent back with its exit code (128 + N when signal N ended it; 127 when the program
//! does not exist, 126 when it cannot be run, as a shell reports them).
//!
//! Wire format, little-endian, both ways over the exec's stdin and stdout:
//! - request: `u64 id`, `u32 argc`, argc times (`u32 len`, bytes), then `u32 stdin_len`
//!   (`u32::MAX`: no stdin) and that many bytes;
//! - reply: `u64 id`, `i32 exit code`, `u32 len` + stdout, `u32 len` + stderr.
//!
//! A reply with exit code `i32::MIN` means the agent could not start the command at all (no
//! thread or process could be created: the target's pids ceiling is reached, as under a fork
//! bomb); the lab then runs it through `docker exec`, which can still join a full cgroup (the
//! kernel's pids limit stops forks inside a cgroup, not processes moved into it).
//!
//! A hello reply (id `u64::MAX`, stdout `unitlab-agent 1`) says the agent is up. End of file on
//! stdin (the lab went away, or closed the channel) ends the agent at once; commands still
//! running go on, as they would after a `docker exec` whose client died.

use std::io::{self, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// The id of the hello reply.
const HELLO_ID: u64 = u64::MAX;
/// The stdin length that means "no stdin" (/dev/null).
const NO_STDIN: u32 = u32::MAX;
/// The exit code of "could not start it: run it another way".
const CANNOT_START: i32 = i32::MIN;
/// Protocol name and version, in the hello reply.
const HELLO: &[u8] = b"unitlab-agent 1";

struct Request {
    id: u64,
    argv: Vec<Vec<u8>>,
    stdin: Option<Vec<u8>>,
}

type Out = Arc<Mutex<io::Stdout>>;

fn main() {
    let out: Out = Arc::new(Mutex::new(io::stdout()));
    reply(&out, HELLO_ID, 0, HELLO, b"");
    let mut input = BufReader::new(io::stdin().lock());
    loop {
        match read_request(&mut input) {
            Ok(Some(request)) => dispatch(request, &out),
            // End of file: the lab closed the channel.
            Ok(None) => std::process::exit(0),
            Err(e) => {
                eprintln!("unitlab-agent: malformed request: {e}");
                std::process::exit(2);
            }
        }
    }
}

/// Run the request in a thread of its own; when no thread can be had (a pids limit reached),
/// tell the lab to run it another way rather than dying.
fn dispatch(request: Request, out: &Out) {
    let id = request.id;
    let shared = Arc::clone(out);
    if let Err(e) = std::thread::Builder::new().spawn(move || run(request, &shared)) {
        reply(out, id, CANNOT_START, b"", format!("unitlab-agent: cannot start a thread for the command: {e}").as_bytes());
    }
}

fn run(request: Request, out: &Out) {
    let Some((program, args)) = request.argv.split_first() else {
        reply(out, request.id, 126, b"", b"unitlab-agent: empty command");
        return;
    };
    let program = bytes_to_os(program);
    let mut command = Command::new(&program);
    command
        .args(args.iter().map(|a| bytes_to_os(a)))
        .stdin(if request.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            let code = match e.raw_os_error() {
                Some(libc::EAGAIN | libc::ENOMEM) => CANNOT_START,
                _ if e.kind() == io::ErrorKind::NotFound => 127,
                _ => 126,
            };
            let message = format!("unitlab-agent: exec {}: {e}", program.to_string_lossy());
            reply(out, request.id, code, b"", message.as_bytes());
            return;
        }
    };
    // Stdin is written beside the reading (wait_with_output reads stdout and stderr together),
    // so that a command that answers before it has read all its input cannot deadlock.
    // Without a thread to spare, stdin is written first: the lab's commands that take input
    // (tar, cat into a file) read it all before they write anything.
    // A command that exits without reading its input closes the pipe: not an error.
    let writer = match (child.stdin.take(), request.stdin) {
        (Some(pipe), Some(data)) => {
            let shared = Arc::new(Mutex::new(Some((pipe, data))));
            let theirs = Arc::clone(&shared);
            match std::thread::Builder::new().spawn(move || feed(&theirs)) {
                Ok(handle) => Some(handle),
                Err(_) => {
                    feed(&shared);
                    None
                }
            }
        }
        _ => None,
    };
    let done = child.wait_with_output();
    if let Some(handle) = writer {
        let _ = handle.join();
    }
    match done {
        Ok(output) => {
            let code = output.status.code().unwrap_or_else(|| 128 + output.status.signal().unwrap_or(0));
            reply(out, request.id, code, &output.stdout, &output.stderr);
        }
        Err(e) => reply(out, request.id, 126, b"", format!("unitlab-agent: wait for the command: {e}").as_bytes()),
    }
}

/// Write a command's stdin and close it (whoever gets to it first: the thread, or the caller
/// when no thread could be had).
fn feed(slot: &Mutex<Option<(std::process::ChildStdin, Vec<u8>)>>) {
    let taken = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some((mut pipe, data)) = taken {
        let _ = pipe.write_all(&data);
    }
}

fn bytes_to_os(bytes: &[u8]) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStringExt;
    std::ffi::OsString::from_vec(bytes.to_vec())
}

/// Write one reply as a single buffer under the lock, so that replies never interleave.
fn reply(out: &Out, id: u64, code: i32, stdout: &[u8], stderr: &[u8]) {
    let mut frame = Vec::with_capacity(20 + stdout.len() + stderr.len());
    frame.extend_from_slice(&id.to_le_bytes());
    frame.extend_from_slice(&code.to_le_bytes());
    for part in [stdout, stderr] {
        frame.extend_from_slice(&(part.len().min(u32::MAX as usize - 1) as u32).to_le_bytes());
        frame.extend_from_slice(&part[..part.len().min(u32::MAX as usize - 1)]);
    }
    let mut out = out.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    // The lab reading the other end went away: nothing is left to tell.
    if out.write_all(&frame).and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

/// Read one request; `None` at a clean end of file between requests.
fn read_request(input: &mut impl Read) -> io::Result<Option<Request>> {
    let mut id = [0u8; 8];
    match input.read_exact(&mut id) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let argc = read_u32(input)?;
    let mut argv = Vec::with_capacity(argc.min(4096) as usize);
    for _ in 0..argc {
        let len = read_u32(input)?;
        argv.push(read_bytes(input, len)?);
    }
    let stdin = match read_u32(input)? {
        NO_STDIN => None,
        len => Some(read_bytes(input, len)?),
    };
    Ok(Some(Request { id: u64::from_le_bytes(id), argv, stdin }))
}

fn read_u32(input: &mut impl Read) -> io::Result<u32> {
    let mut b = [0u8; 4];
    input.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn read_bytes(input: &mut impl Read, len: u32) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    input.take(u64::from(len)).read_to_end(&mut buf)?;
    if buf.len() != len as usize {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "request cut short"));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(id: u64, argv: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
        let mut f = id.to_le_bytes().to_vec();
        f.extend_from_slice(&(argv.len() as u32).to_le_bytes());
        for a in argv {
            f.extend_from_slice(&(a.len() as u32).to_le_bytes());
            f.extend_from_slice(a.as_bytes());
        }
        match stdin {
            None => f.extend_from_slice(&NO_STDIN.to_le_bytes()),
            Some(data) => {
                f.extend_from_slice(&(data.len() as u32).to_le_bytes());
                f.extend_from_slice(data);
            }
        }
        f
    }

    #[test]
    fn requests_parse_and_end_of_file_between_them_is_clean() {
        let mut bytes = frame(7, &["sh", "-c", "cat"], Some(b"abc"));
        bytes.extend(frame(8, &["true"], None));
        let mut input = bytes.as_slice();
        let first = read_request(&mut input).unwrap().unwrap();
        assert_eq!((first.id, first.argv.len(), first.stdin.as_deref()), (7, 3, Some(&b"abc"[..])));
        let second = read_request(&mut input).unwrap().unwrap();
        assert_eq!((second.id, second.argv, second.stdin), (8, vec![b"true".to_vec()], None));
        assert!(read_request(&mut input).unwrap().is_none());
    }

    #[test]
    fn a_request_cut_short_is_an_error_not_a_command() {
        let bytes = frame(1, &["systemctl", "start", "x"], None);
        let mut input = &bytes[..bytes.len() - 6];
        assert!(read_request(&mut input).is_err());
    }
}
