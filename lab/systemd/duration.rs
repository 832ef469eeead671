//! systemd-style time spans: `250ms`, `2s`, `1.5s`, `1min 30s`, `1h30min`, a bare number meaning
//! seconds, and `infinity`. The same grammar is used for the scenario's own durations
//! (`within = "5s"`) and for reading timers out of rendered units (`RestartSec=`), so that
//! a value means the same thing to the lab as to systemd (`parse_sec()` in systemd's
//! `time-util.c`).

use std::fmt;
use std::time::Duration;

/// Why a time span does not parse; the message is meant to follow "invalid duration `x`: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("it is empty")]
    Empty,
    #[error("`{0}` is not a time unit (use ms, s, min, h, ...)")]
    UnknownUnit(String),
    #[error("a number is missing before `{0}`")]
    MissingNumber(String),
    #[error("`{0}` is not a number")]
    BadNumber(String),
    #[error("it is too large")]
    Overflow,
    #[error("`infinity` is not allowed here")]
    Infinity,
}

/// A parsed time span as a unit file may hold it: finite, or `infinity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timespan {
    Finite(Duration),
    Infinity,
}

/// (unit spellings, nanoseconds) as systemd accepts them. `m` is minutes and `M` months,
/// exactly as in systemd, so matching is case-sensitive.
const UNITS: &[(&[&str], u128)] = &[
    (&["ns", "nsec"], 1),
    (&["us", "usec", "µs", "μs"], 1_000),
    (&["ms", "msec"], 1_000_000),
    (&["s", "sec", "second", "seconds"], 1_000_000_000),
    (&["m", "min", "minute", "minutes"], 60_000_000_000),
    (&["h", "hr", "hour", "hours"], 3_600_000_000_000),
    (&["d", "day", "days"], 86_400_000_000_000),
    (&["w", "week", "weeks"], 604_800_000_000_000),
    (&["M", "month", "months"], 2_629_800_000_000_000),
    (&["y", "year", "years"], 31_557_600_000_000_000),
];

/// Parse a time span, `infinity` included.
pub fn parse_timespan(text: &str) -> Result<Timespan, DurationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    if text == "infinity" {
        return Ok(Timespan::Infinity);
    }
    let mut rest = text;
    let mut total_ns: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let after = after.trim_start();
        let unit_len = after.find(|c: char| c.is_ascii_digit() || c == '.' || c.is_whitespace()).unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        if number.is_empty() {
            let known = UNITS.iter().any(|(names, _)| names.contains(&unit));
            return Err(if known || unit.starts_with('-') {
                DurationError::MissingNumber(unit.to_string())
            } else {
                DurationError::UnknownUnit(unit.to_string())
            });
        }
        let scale = if unit.is_empty() {
            1_000_000_000
        } else {
            UNITS
                .iter()
                .find(|(names, _)| names.contains(&unit))
                .map(|&(_, ns)| ns)
                .ok_or_else(|| DurationError::UnknownUnit(unit.to_string()))?
        };
        total_ns = total_ns.checked_add(scaled(number, scale)?).ok_or(DurationError::Overflow)?;
        rest = after.trim_start();
    }
    let secs = u64::try_from(total_ns / 1_000_000_000).map_err(|_| DurationError::Overflow)?;
    Ok(Timespan::Finite(Duration::new(secs, (total_ns % 1_000_000_000) as u32)))
}

/// `number` (digits with at most one `.`) times `scale` nanoseconds, without floating point so
/// that `1.1s` is exactly 1.1 s.
fn scaled(number: &str, scale: u128) -> Result<u128, DurationError> {
    let bad = || DurationError::BadNumber(number.to_string());
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
        return Err(bad());
    }
    let int: u128 = if int.is_empty() { 0 } else { int.parse().map_err(|_| DurationError::Overflow)? };
    let mut value = int.checked_mul(scale).ok_or(DurationError::Overflow)?;
    let mut place = scale;
    for digit in frac.chars() {
        place /= 10;
        value = value.checked_add(u128::from(digit.to_digit(10).ok_or_else(bad)?) * place).ok_or(DurationError::Overflow)?;
    }
    Ok(value)
}

/// Parse a finite time span (the scenario's own durations: `within`, `after`, `duration`).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    match parse_timespan(text)? {
        Timespan::Finite(d) => Ok(d),
        Timespan::Infinity => Err(DurationError::Infinity),
    }
}

/// Formats a duration the way systemd and this module write it: `100ms`, `2s`, `1.5s`,
/// `1min 30s`. [`parse_duration`] reads every output back to the same value.
pub struct DisplayDuration(pub Duration);

impl fmt::Display for DisplayDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.is_zero() {
            return f.write_str("0");
        }
        let ns = d.as_nanos();
        if !ns.is_multiple_of(1_000) {
            return write!(f, "{ns}ns");
        }
        if d < Duration::from_millis(1) {
            return write!(f, "{}us", ns / 1_000);
        }
        if d < Duration::from_secs(1) {
            let us = ns / 1_000;
            return if us.is_multiple_of(1_000) { write!(f, "{}ms", us / 1_000) } else { write!(f, "{}us", us) };
        }
        let secs = d.as_secs();
        let (min, sec) = (secs / 60, secs % 60);
        let frac = d.subsec_nanos();
        let mut parts = Vec::new();
        if min > 0 {
            parts.push(format!("{min}min"));
        }
        if sec > 0 || frac > 0 {
            if frac == 0 {
                parts.push(format!("{sec}s"));
            } else {
                let digits = format!("{frac:09}");
                parts.push(format!("{sec}.{}s", digits.trim_end_matches('0')));
            }
        }
        f.write_str(&parts.join(" "))
    }
}

/// Shorthand for `DisplayDuration(d).to_string()`.
pub fn format_duration(d: Duration) -> String {
    DisplayDuration(d).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("250ms", Duration::from_millis(250))]
    #[case("2s", Duration::from_secs(2))]
    #[case("1.5s", Duration::from_millis(1500))]
    #[case("1.1s", Duration::from_millis(1100))]
    #[case("1min", Duration::from_secs(60))]
    #[case("1min 30s", Duration::from_secs(90))]
    #[case("1h30min", Duration::from_secs(5400))]
    #[case("5", Duration::from_secs(5))]
    #[case(" 100 ms ", Duration::from_millis(100))]
    #[case("500us", Duration::from_micros(500))]
    #[case("0", Duration::ZERO)]
    #[case(".5s", Duration::from_millis(500))]
    #[case("2d", Duration::from_secs(172_800))]
    // A bare number after a unit is seconds, as in systemd: 2 s + 5 s.
    #[case("2sec5", Duration::from_secs(7))]
    fn parses_systemd_time_spans(#[case] text: &str, #[case] expected: Duration) {
        assert_eq!(parse_duration(text), Ok(expected));
    }

    #[rstest]
    #[case("", DurationError::Empty)]
    #[case("5 seconds ago", DurationError::UnknownUnit("ago".into()))]
    #[case("ms", DurationError::MissingNumber("ms".into()))]
    #[case("1..5s", DurationError::BadNumber("1..5".into()))]
    #[case("2S", DurationError::UnknownUnit("S".into()))]
    #[case("infinity", DurationError::Infinity)]
    #[case("-1s", DurationError::MissingNumber("-".into()))]
    fn rejects_what_systemd_rejects(#[case] text: &str, #[case] expected: DurationError) {
        assert_eq!(parse_duration(text), Err(expected));
    }

    #[test]
    fn infinity_is_a_timespan() {
        assert_eq!(parse_timespan("infinity"), Ok(Timespan::Infinity));
    }

    #[rstest]
    #[case(Duration::from_millis(100), "100ms")]
    #[case(Duration::from_millis(1500), "1.5s")]
    #[case(Duration::from_secs(90), "1min 30s")]
    #[case(Duration::from_micros(250), "250us")]
    #[case(Duration::ZERO, "0")]
    fn formats_and_reads_back(#[case] d: Duration, #[case] text: &str) {
        assert_eq!(format_duration(d), text);
        assert_eq!(parse_duration(text), Ok(d));
    }
}
