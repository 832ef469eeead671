//! Process shapes: how the process relates to the one systemd started. Foreground stays
//! that process; forking is the classic double-fork daemon whose first process exits
//! once the daemon listens; oneshot serves for a while, then exits with a chosen code.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use crate::duration::show;
use crate::log::event;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shape {
    Foreground,
    Forking,
    Oneshot,
}

/// The daemon's end of the pipe the waiting parent reads; `ready()` releases the parent.
pub struct ParentLink(fs::File);

impl ParentLink {
    pub fn ready(mut self) {
        let _ = writeln!(self.0, "{}", std::process::id());
        // Dropping closes our end; the parent has what it waits for.
    }
}

/// Double fork + setsid. Must run before any thread exists (fork copies only the calling
/// thread). Returns only in the daemon; the original process waits for the daemon's
/// readiness and exits 0, or exits 1 if the daemon died first.
pub fn daemonize() -> Result<ParentLink, String> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fresh fds we take ownership of right away.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe2: {}", std::io::Error::last_os_error()));
    }
    let (read_end, write_end) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: single-threaded at this point (checked by the caller's ordering).
    match unsafe { libc::fork() } {
        -1 => Err(format!("fork: {}", std::io::Error::last_os_error())),
        0 => {
            drop(read_end);
            // A new session: no controlling terminal, not killed with the starter's group.
            if unsafe { libc::setsid() } < 0 {
                event!("setsid failed: {}", std::io::Error::last_os_error());
                unsafe { libc::_exit(1) };
            }
            // Second fork: the daemon is not a session leader, so it can never
            // reacquire a controlling terminal.
            match unsafe { libc::fork() } {
                -1 => {
                    event!("second fork failed: {}", std::io::Error::last_os_error());
                    unsafe { libc::_exit(1) }
                }
                0 => {
                    let _ = std::env::set_current_dir("/");
                    unsafe { libc::umask(0o022) };
                    redirect_stdin();
                    // stdout/stderr stay: under systemd they are the journal stream,
                    // and the daemon's events belong there.
                    event!("daemon process {} started (session {})", std::process::id(), unsafe { libc::getsid(0) });
                    Ok(ParentLink(fs::File::from(write_end)))
                }
                _ => unsafe { libc::_exit(0) },
            }
        }
        child => {
            drop(write_end);
            let mut status = 0;
            // Reap the intermediate child, which exits at once.
            unsafe { libc::waitpid(child, &mut status, 0) };
            let mut text = String::new();
            let _ = fs::File::from(read_end).read_to_string(&mut text);
            match text.trim().parse::<u32>() {
                Ok(pid) => {
                    event!("parent {} exiting: daemon {pid} is listening", std::process::id());
                    std::process::exit(0)
                }
                Err(_) => {
                    event!("parent {} exiting with 1: the daemon died before it was listening", std::process::id());
                    std::process::exit(1)
                }
            }
        }
    }
}

fn redirect_stdin() {
    if let Ok(null) = fs::File::open("/dev/null") {
        use std::os::fd::AsRawFd;
        unsafe { libc::dup2(null.as_raw_fd(), 0) };
    }
}

/// Written via a temporary file and rename, so systemd never reads a half-written pid.
pub fn write_pid_file(path: &Path) -> Result<(), String> {
    let tmp = path.with_extension("pid.tmp");
    fs::write(&tmp, format!("{}\n", std::process::id()))
        .and_then(|_| fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write pid file {}: {e}", path.display()))
}

/// The oneshot's "work" is serving for `work`; then the process exits with `code`.
pub fn finish_oneshot_after(work: Duration, code: u8) {
    std::thread::Builder::new()
        .name("oneshot".into())
        .spawn(move || {
            std::thread::sleep(work);
            event!("oneshot work done after {}, exiting with code {code}", show(work));
            std::process::exit(i32::from(code));
        })
        .expect("spawning the oneshot timer thread");
}
