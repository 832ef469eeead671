//! Signals as a scenario names them (`SIGTERM`, `TERM`, `term`, `15`, `SIGRTMIN+3`), checked
//! against Linux's numbering: the target is always a Linux systemd, whatever the host is.

use std::fmt;

/// Linux's standard signals (x86/arm generic numbering), canonical names without `SIG`.
const NAMES: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("PWR", 30),
    ("SYS", 31),
];
/// Aliases accepted on input, never printed.
const ALIASES: &[(&str, i32)] = &[("IOT", 6), ("POLL", 29), ("CLD", 17)];

/// glibc's (and so systemd's) first real-time signal; 32 and 33 are reserved by glibc.
pub const SIGRTMIN: i32 = 34;
/// Linux's last signal.
pub const SIGRTMAX: i32 = 64;

/// A signal number valid on Linux (1..=64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signal(i32);

impl Signal {
    pub const HUP: Signal = Signal(1);
    pub const INT: Signal = Signal(2);
    pub const ABRT: Signal = Signal(6);
    pub const KILL: Signal = Signal(9);
    pub const SEGV: Signal = Signal(11);
    pub const TERM: Signal = Signal(15);
    pub const CONT: Signal = Signal(18);
    pub const STOP: Signal = Signal(19);

    /// The signal with this number, if Linux has one.
    pub fn from_number(n: i32) -> Option<Signal> {
        (1..=SIGRTMAX).contains(&n).then_some(Signal(n))
    }

    /// The number, as `kill(2)` and `ExecMainStatus=` of a killed process use it.
    pub fn number(self) -> i32 {
        self.0
    }

    /// The name without `SIG` (`TERM`, `RTMIN+3`), or the number for 32 and 33.
    pub fn name(self) -> String {
        if let Some((name, _)) = NAMES.iter().find(|(_, n)| *n == self.0) {
            return (*name).to_string();
        }
        match self.0 {
            SIGRTMIN => "RTMIN".to_string(),
            n if n > SIGRTMIN => format!("RTMIN+{}", n - SIGRTMIN),
            n => n.to_string(),
        }
    }

    /// Parse `SIGTERM`, `TERM`, `sigterm`, `15`, `SIGRTMIN+3`, `RTMAX-1`.
    pub fn parse(text: &str) -> Result<Signal, String> {
        let text = text.trim();
        if let Ok(n) = text.parse::<i32>() {
            return Signal::from_number(n).ok_or_else(|| format!("signal number {n} is out of range 1..={SIGRTMAX}"));
        }
        let upper = text.to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        if let Some((_, n)) = NAMES.iter().chain(ALIASES).find(|(name, _)| *name == bare) {
            return Ok(Signal(*n));
        }
        let realtime = |base: i32, rest: &str| -> Option<i32> {
            let n = if rest.is_empty() {
                base
            } else if let Some(k) = rest.strip_prefix('+') {
                base + k.parse::<i32>().ok()?
            } else if let Some(k) = rest.strip_prefix('-') {
                base - k.parse::<i32>().ok()?
            } else {
                return None;
            };
            (SIGRTMIN..=SIGRTMAX).contains(&n).then_some(n)
        };
        let rt = if let Some(rest) = bare.strip_prefix("RTMIN") {
            realtime(SIGRTMIN, rest)
        } else if let Some(rest) = bare.strip_prefix("RTMAX") {
            realtime(SIGRTMAX, rest)
        } else {
            None
        };
        rt.map(Signal).ok_or_else(|| format!("`{text}` is not a Linux signal"))
    }

    /// The closest known name to a misspelt one, for hints (`SIGTREM` -> `SIGTERM`).
    pub fn suggest(text: &str) -> Option<String> {
        let upper = text.trim().to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        NAMES
            .iter()
            .map(|(name, _)| (strsim::damerau_levenshtein(bare, name), name))
            .filter(|(d, _)| *d <= 2)
            .min()
            .map(|(_, name)| format!("SIG{name}"))
    }
}

impl fmt::Display for Signal {
    /// `SIGTERM`, as systemd prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIG{}", self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("SIGTERM", 15)]
    #[case("TERM", 15)]
    #[case("sigterm", 15)]
    #[case("segv", 11)]
    #[case("9", 9)]
    #[case("SIGRTMIN+3", 37)]
    #[case("RTMAX-1", 63)]
    #[case("IOT", 6)]
    #[case("SIGSTOP", 19)]
    fn parses_names_and_numbers(#[case] text: &str, #[case] n: i32) {
        assert_eq!(Signal::parse(text).map(Signal::number), Ok(n));
    }

    #[rstest]
    #[case("SIGTREM")]
    #[case("0")]
    #[case("65")]
    #[case("RTMIN+31")]
    #[case("RTMIN3")]
    #[case("")]
    fn rejects_non_signals(#[case] text: &str) {
        assert!(Signal::parse(text).is_err(), "{text}");
    }

    #[test]
    fn prints_as_systemd_does_and_suggests() {
        assert_eq!(Signal::ABRT.to_string(), "SIGABRT");
        assert_eq!(Signal::from_number(37).unwrap().to_string(), "SIGRTMIN+3");
        assert_eq!(Signal::suggest("SIGTREM").as_deref(), Some("SIGTERM"));
        assert_eq!(Signal::suggest("banana"), None);
    }
}
