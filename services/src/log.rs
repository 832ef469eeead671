//! Event log on stderr. systemd files a service's stderr into the journal, and the lab
//! matches these lines, so every line starts with the stable prefix `buggy-server: `.

use std::fmt;
use std::io::Write;

pub const PREFIX: &str = "buggy-server: ";

/// One line per event; the stderr lock keeps lines from different threads whole.
pub fn emit(args: fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{PREFIX}{args}");
}

macro_rules! event {
    ($($arg:tt)*) => { $crate::log::emit(format_args!($($arg)*)) };
}
pub(crate) use event;
