//! Durations as the flags and the control endpoint write them: systemd's style, so a
//! scenario author can copy values between unit files and flags (`500ms`, `2s`, `1.5s`,
//! `1min`; a bare number means seconds, as in `WatchdogSec=2`).

use std::time::Duration;

pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (expected e.g. 250ms, 2s, 1.5s, 1min)"))?;
    let scale = match unit.trim() {
        "" | "s" | "sec" => 1.0,
        "ms" | "msec" => 1e-3,
        "us" | "usec" => 1e-6,
        "m" | "min" => 60.0,
        "h" | "hr" => 3600.0,
        other => return Err(format!("{text:?}: unknown duration unit {other:?} (use us, ms, s, min, h)")),
    };
    let secs = value * scale;
    if !secs.is_finite() || secs > 1e9 {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Short form used in log lines and the mode list, the inverse of `parse` for whole
/// milliseconds.
pub fn show(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("1min"), Ok(Duration::from_secs(60)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert!(parse("fast").unwrap_err().contains("not a duration"));
        assert!(parse("3 weeks").unwrap_err().contains("unknown duration unit"));
        assert_eq!(show(Duration::from_millis(1500)), "1500ms");
        assert_eq!(show(Duration::from_secs(3)), "3s");
    }
}
