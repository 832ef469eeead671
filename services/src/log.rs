//! Event log on stderr. systemd files a service's stderr into the journal, and the lab
//! matches these lines, so every line starts with the stable prefix `buggy-server: `.

use std::fmt;
use std::io::Write;

pub const PREFIX: &str = "buggy-server: ";

/// One line per event, written with one `write` call: stderr is unbuffered, so `writeln!`
/// would write each piece of the format on its own, and the lock only keeps this process's
/// threads apart. A forking server's parent and daemon share one stderr (one journal stream),
/// and their pieces interleaved mid-line (seen in CI: "READY=1 MAINPID=21669buggy-server:
/// sentparent ..."). A single write of a line this short to a pipe is atomic (under PIPE_BUF).
pub fn emit(args: fmt::Arguments<'_>) {
    let line = format!("{PREFIX}{args}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

macro_rules! event {
    ($($arg:tt)*) => { $crate::log::emit(format_args!($($arg)*)) };
}
pub(crate) use event;
