//! A deliberately tiny HTTP/1.1 server on std::net: one thread accepts, one thread per
//! connection answers one request and closes. Hand-written so that each part (accept
//! loop, handlers) has exactly one place where a hang fault stops it.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::control;
use crate::faults;
use crate::log::event;
use crate::state::{block_forever, Shared};

/// A slow or silent client must not pin a handler thread for ever; only our own hang
/// faults may do that.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_HEAD: usize = 16 * 1024;

pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
}

pub struct Response {
    pub status: u16,
    pub body: String,
}

impl Response {
    pub fn new(status: u16, body: impl Into<String>) -> Response {
        Response { status, body: body.into() }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

pub fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    // std's TcpListener sets SO_REUSEADDR, so a restart right after a kill can rebind
    // while old connections sit in TIME_WAIT.
    TcpListener::bind(addr).map_err(|e| format!("cannot bind {addr}: {e}"))
}

/// Runs the accept loop on the calling thread. Returns only after close-listener; the
/// listener is closed by then.
pub fn serve(listener: TcpListener, shared: Arc<Shared>) {
    shared.listener_fd.store(listener.as_raw_fd(), Ordering::SeqCst);
    let mut last_emfile_log: Option<Instant> = None;
    loop {
        if shared.listener_fd.load(Ordering::SeqCst) < 0 {
            break;
        }
        if shared.hang_accept.load(Ordering::SeqCst) {
            // The listening socket stays open: the kernel keeps completing handshakes
            // into the backlog, so clients connect and then wait for ever.
            event!("accept loop hung");
            block_forever();
        }
        if shared.fd_leak.load(Ordering::SeqCst) {
            // The leak of exhaust-fds takes every fd freed since the last round, right
            // before accept() would reserve one (see faults::exhaust_fds).
            let (taken, _) = faults::leak_free_fds();
            if taken > 0 {
                event!("exhaust-fds: took {taken} freed file descriptors");
            }
        }
        match listener.accept() {
            Ok((stream, _peer)) => {
                if shared.listener_fd.load(Ordering::SeqCst) < 0 {
                    break;
                }
                if shared.fd_leak.load(Ordering::SeqCst) {
                    // A freed fd let this one in; the leak keeps it, unanswered, like the
                    // rest (a handler closing it would free the fd for the next accept).
                    event!("exhaust-fds: leaked an accepted connection");
                    std::mem::forget(stream);
                    continue;
                }
                if shared.hang_accept.load(Ordering::SeqCst) {
                    event!("accept loop hung (holding a just-accepted connection)");
                    let _held = stream;
                    block_forever();
                }
                let shared = Arc::clone(&shared);
                if let Err(e) = std::thread::Builder::new()
                    .name("handler".into())
                    .spawn(move || handle(stream, &shared))
                {
                    event!("cannot start a handler thread: {e}; connection dropped");
                }
            }
            Err(_) if shared.listener_fd.load(Ordering::SeqCst) < 0 => break,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) => {
                // The pending connection stays in the backlog; retrying at once would
                // spin, so back off. Logged once a second at most to keep the journal sane.
                if last_emfile_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                    event!("accept failed: {e}; connections wait in the backlog");
                    last_emfile_log = Some(Instant::now());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted || e.raw_os_error() == Some(libc::ECONNABORTED) => {}
            Err(e) => {
                event!("accept failed: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    drop(listener);
    shared.listener_closed.store(true, Ordering::SeqCst);
    event!("listener closed: new connections are refused, the process stays alive");
}

fn handle(mut stream: TcpStream, shared: &Arc<Shared>) {
    let _ = stream.set_read_timeout(Some(CLIENT_TIMEOUT));
    let _ = stream.set_write_timeout(Some(CLIENT_TIMEOUT));
    let request = match read_request(&mut stream) {
        Ok(r) => r,
        Err(e) => {
            if e.kind() != io::ErrorKind::UnexpectedEof {
                let _ = write_response(&mut stream, &Response::new(400, format!("bad request: {e}\n")));
            }
            return;
        }
    };
    if request.path.starts_with("/control/") {
        // The lab's back door: never counted, never subject to handler hangs (only an
        // accept hang or a dead process can make it unreachable).
        let (response, after) = control::handle(&request, shared);
        let _ = write_response(&mut stream, &response);
        let _ = stream.shutdown(std::net::Shutdown::Both);
        drop(stream);
        if let Some(action) = after {
            action(shared);
        }
        return;
    }
    let n = shared.requests.fetch_add(1, Ordering::SeqCst) + 1;
    faults::on_request_arrival(shared, n);
    if shared.hang_handlers.load(Ordering::SeqCst) {
        event!("handler hung on request {n} ({} {})", request.method, request.path);
        let _held = stream;
        block_forever();
    }
    let response = route(&request, shared, n);
    let _ = write_response(&mut stream, &response);
    let _ = stream.shutdown(std::net::Shutdown::Both);
    drop(stream);
    faults::on_request_done(shared, n);
}

fn route(request: &Request, shared: &Shared, n: u64) -> Response {
    let get = request.method == "GET" || request.method == "HEAD";
    match request.path.as_str() {
        "/" if get => Response::new(200, format!("buggy-server pid={} request={n}\n", std::process::id())),
        "/healthz" if get => {
            if shared.unhealthy.load(Ordering::SeqCst) {
                Response::new(503, "unhealthy\n")
            } else {
                Response::new(200, "ok\n")
            }
        }
        "/" | "/healthz" => Response::new(405, "use GET\n"),
        _ => Response::new(404, "not found\n"),
    }
}

fn read_request(stream: &mut TcpStream) -> io::Result<Request> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "request head too large"));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let mut parts = first.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("malformed request line {first:?}")));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("unsupported version {version:?}")));
    }
    // Bodies are ignored, but read (bounded) so the client does not get a reset for
    // unread data when we close.
    let content_length: usize = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    let mut remaining = content_length.min(MAX_HEAD).saturating_sub(buf.len() - head_end - 4);
    while remaining > 0 {
        let n = stream.read(&mut chunk[..remaining.min(1024)])?;
        if n == 0 {
            break;
        }
        remaining -= n;
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Ok(Request { method: method.to_string(), path: path.to_string(), query: query.to_string() })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn write_response(stream: &mut TcpStream, r: &Response) -> io::Result<()> {
    let text = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        r.status,
        reason(r.status),
        r.body.len(),
        r.body
    );
    stream.write_all(text.as_bytes())?;
    stream.flush()
}

/// Where the server reaches itself: a wildcard bind is probed on the loopback address of
/// the same family.
pub fn self_address(bound: SocketAddr) -> SocketAddr {
    let mut a = bound;
    if a.ip().is_unspecified() {
        a.set_ip(if a.is_ipv4() { Ipv4Addr::LOCALHOST.into() } else { Ipv6Addr::LOCALHOST.into() });
    }
    a
}

/// GET /healthz with one deadline over connect, send and receive. Ok only for a 200.
pub fn probe_health(addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let left = || deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_write_timeout(Some(left())).map_err(|e| e.to_string())?;
    s.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 256];
    while !buf.contains(&b'\n') {
        s.set_read_timeout(Some(left())).map_err(|e| e.to_string())?;
        match s.read(&mut chunk) {
            Ok(0) => return Err("connection closed without an answer".into()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Err(format!("no answer within {}", crate::duration::show(timeout)))
            }
            Err(e) => return Err(format!("receive: {e}")),
        }
        if Instant::now() >= deadline {
            return Err(format!("no answer within {}", crate::duration::show(timeout)));
        }
    }
    let line = String::from_utf8_lossy(&buf);
    let status = line.split(' ').nth(1).unwrap_or("");
    if status == "200" {
        Ok(())
    } else {
        Err(format!("status {status}"))
    }
}
