//! A target's resource ceilings: how many processes and how much memory the whole container may
//! use. They exist so that a fork bomb or a leak in a scenario stops at the target, not at the
//! host; a scenario that needs more (or wants less, to provoke a fault) says so in `[limits]`,
//! and targets are shared only among scenarios with the same ceilings.
//!
//! Plain data, no engine: the scenario validator parses and bounds the values, the container
//! layer applies them.

/// Processes (pids cgroup) and memory (memory cgroup, no swap beyond it) of one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Limits {
    pub pids: i64,
    /// Bytes.
    pub memory: i64,
}

/// Ample for systemd, journald, dbus and a few services; far below the host's.
pub const DEFAULT_PIDS: i64 = 1024;
pub const DEFAULT_MEMORY: i64 = 512 * MIB;

/// Bounds for `[limits]`: below the minimums systemd itself cannot boot reliably (measured
/// idle: about 25 processes and 40 MiB on 252 and 257); above the maximums a scenario is no
/// longer contained on a machine of this size.
pub const PIDS_RANGE: std::ops::RangeInclusive<i64> = 64..=32768;
pub const MEMORY_RANGE: std::ops::RangeInclusive<i64> = (128 * MIB)..=(8 * 1024 * MIB);

const KIB: i64 = 1024;
const MIB: i64 = 1024 * KIB;

impl Default for Limits {
    fn default() -> Self {
        Limits { pids: DEFAULT_PIDS, memory: DEFAULT_MEMORY }
    }
}

impl Limits {
    /// "pids 1024, memory 512M": for target names in reports and pool keys.
    pub fn describe(&self) -> String {
        format!("pids {}, memory {}", self.pids, format_size(self.memory))
    }

    pub fn is_default(&self) -> bool {
        *self == Limits::default()
    }
}

/// A size as written in `[limits] memory`: an integer with a K, M or G suffix (powers of 1024,
/// as systemd's MemoryMax= reads them), e.g. "768M" or "1G". A bare number is refused: bytes
/// are never what was meant for a container's memory.
pub fn parse_size(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => return Err(format!("`{t}` has no unit: write e.g. \"768M\" or \"1G\"")),
    };
    let factor = match unit {
        "K" | "k" => KIB,
        "M" | "m" => MIB,
        "G" | "g" => 1024 * MIB,
        other => return Err(format!("unknown size unit `{other}` in `{t}`: use K, M or G (powers of 1024)")),
    };
    let n: i64 = digits.parse().map_err(|_| format!("`{t}` does not start with a whole number"))?;
    n.checked_mul(factor).ok_or_else(|| format!("`{t}` is too large"))
}

/// Bytes as the shortest exact K/M/G spelling.
pub fn format_size(bytes: i64) -> String {
    for (factor, unit) in [(1024 * MIB, "G"), (MIB, "M"), (KIB, "K")] {
        if bytes % factor == 0 {
            return format!("{}{unit}", bytes / factor);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_powers_of_1024() {
        assert_eq!(parse_size("768M"), Ok(768 * MIB));
        assert_eq!(parse_size("1G"), Ok(1024 * MIB));
        assert_eq!(parse_size("2048k"), Ok(2 * MIB));
        assert!(parse_size("512").unwrap_err().contains("no unit"));
        assert!(parse_size("1.5G").unwrap_err().contains("unknown size unit"));
        assert!(parse_size("M").unwrap_err().contains("whole number"));
        assert!(parse_size("99999999999999999G").unwrap_err().contains("too large"));
    }

    #[test]
    fn sizes_format_back() {
        assert_eq!(format_size(DEFAULT_MEMORY), "512M");
        assert_eq!(format_size(3 * 1024 * MIB), "3G");
        assert_eq!(format_size(1536), "1536B");
        assert_eq!(Limits::default().describe(), "pids 1024, memory 512M");
    }
}
