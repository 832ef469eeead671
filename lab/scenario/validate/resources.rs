//! The resource faults (`oom`, `network`, `disk-full`, `cpu-starve`) and `heal`: their values,
//! and which earlier fault a `heal` undoes.

use toml::Spanned;

use super::Checker;
use crate::scenario::model::*;
use crate::scenario::raw::RawStep;

/// The `do` words of the resource faults.
pub(super) const RESOURCE_WORDS: &[&str] = &["oom", "network", "disk-full", "cpu-starve"];

/// Directories a `disk-full` fault may not cover: hiding them under a small filesystem breaks
/// the target itself (its programs, its configuration, systemd's runtime state), not the unit.
const DISK_FULL_FORBIDDEN: &[&str] = &["/", "/bin", "/boot", "/etc", "/lib", "/lib64", "/run", "/sbin", "/usr", "/var"];
/// Prefixes a `disk-full` path may not start with, for the same reason.
const DISK_FULL_FORBIDDEN_BELOW: &[&str] = &["/usr", "/etc", "/run/systemd", "/run/unitlab", "/proc", "/sys", "/dev"];

/// The resource faults written so far, for `heal` to find its fault.
#[derive(Default)]
pub(super) struct Held {
    /// (name, step index, unit, healed by an earlier `heal`).
    faults: Vec<(Option<String>, usize, Option<UnitName>, bool)>,
    /// Names of resource fault steps that failed validation: a `heal` naming one is not
    /// reported again.
    broken: Vec<String>,
    /// A resource fault without a name failed validation.
    broken_unnamed: bool,
}

impl Held {
    pub(super) fn record(&mut self, step: usize, fault: &ResourceFault) {
        self.faults.push((fault.name.clone(), step, fault.unit.clone(), false));
    }

    pub(super) fn record_broken(&mut self, s: &RawStep) {
        match &s.fault_name {
            Some(n) => self.broken.push(n.as_ref().clone()),
            None => self.broken_unnamed = true,
        }
    }
}

/// `name = "..."` of a resource fault: a word, unique among the scenario's faults.
fn fault_name(c: &mut Checker<'_>, s: &RawStep, held: &Held) -> Option<Option<String>> {
    let Some(name) = &s.fault_name else { return Some(None) };
    let text = name.as_ref();
    let ok = !text.is_empty() && text.len() <= 64 && text.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-' || ch == '_');
    if !ok {
        c.error(name.span(), format!("invalid fault name `{text}`"), "a fault name is [a-z0-9_-], 1..64 characters, e.g. \"db-link\"");
        return None;
    }
    if held.faults.iter().any(|(n, ..)| n.as_deref() == Some(text.as_str())) {
        c.error(name.span(), format!("a fault named `{text}` was defined before"), "give each fault its own name: a `heal` names exactly one");
        return None;
    }
    Some(Some(text.clone()))
}

/// A resource fault step. `unit` is the resolved `unit` key, `spec` finds a unit's definition.
pub(super) fn check_resource<'u>(
    c: &mut Checker<'_>,
    word: &str,
    action: &Spanned<String>,
    s: &RawStep,
    unit: Option<UnitName>,
    spec: &dyn Fn(&UnitName) -> &'u UnitSpec,
    held: &Held,
) -> Option<Fault> {
    let name = fault_name(c, s, held)?;
    let duration = match &s.duration {
        Some(d) => {
            let d = c.duration(d)?;
            Some(d)
        }
        None => None,
    };
    let kind = match word {
        "oom" => {
            let unit = unit.as_ref().expect("required");
            ResourceKind::Oom { limit: oom_limit(c, s, spec(unit))? }
        }
        "network" => ResourceKind::Network(network(c, action, s, unit.as_ref().map(spec))?),
        "disk-full" => {
            let path = s.path.as_ref().expect("required");
            ResourceKind::DiskFull { path: disk_full_path(c, path)? }
        }
        _ => ResourceKind::CpuStarve,
    };
    if let Some(d) = duration {
        if d.is_zero() {
            c.error(s.duration.as_ref().expect("given").span(), "a fault held for 0s is no fault", "give a positive `duration`, or leave it out to hold the fault until a `heal` step or the end of the scenario");
            return None;
        }
    }
    Some(Fault::Resource(ResourceFault { name, unit, kind, duration }))
}

/// `limit` of an `oom` fault, else the unit's own `MemoryMax=` (or `MemoryLimit=`), else
/// [`DEFAULT_OOM_LIMIT`]. `None` means "the unit's own limit, left as it is".
fn oom_limit(c: &mut Checker<'_>, s: &RawStep, spec: &UnitSpec) -> Option<Option<u64>> {
    if let Some(limit) = &s.limit {
        let bytes = match parse_bytes(limit.as_ref()) {
            Ok(b) => b,
            Err(e) => {
                c.error(limit.span(), format!("invalid memory size `{}`: {e}", limit.as_ref()), "write a size as systemd does: \"64M\", \"512K\", \"1G\" (base 1024) or bytes");
                return None;
            }
        };
        if !(4 * 1024 * 1024..=MAX_OOM_LIMIT).contains(&bytes) {
            c.error(
                limit.span(),
                format!("memory limit `{}` is outside 4M..=256M", limit.as_ref()),
                "the lab allocates a little beyond the limit inside the target (512M in all); below 4M systemd itself may not fit the unit's start",
            );
            return None;
        }
        return Some(Some(bytes));
    }
    let own = spec.file.service_value("MemoryMax").or_else(|| spec.file.service_value("MemoryLimit"));
    match own.map(parse_bytes) {
        None => Some(Some(DEFAULT_OOM_LIMIT)),
        Some(Ok(b)) if b <= MAX_OOM_LIMIT => Some(None),
        Some(_) => {
            c.error(
                s.action.as_ref().expect("present").span(),
                format!("unit `{}` sets a memory limit the lab cannot exceed inside the target (`{}`)", spec.name, own.unwrap_or("")),
                "give `limit = \"64M\"` (at most 256M): the fault sets it for its life with `systemctl set-property --runtime`",
            );
            None
        }
    }
}

/// A size in systemd's syntax: bytes, or a number with K, M, G or T (base 1024).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (number, factor) = match t.char_indices().last() {
        Some((i, 'K')) => (&t[..i], 1u64 << 10),
        Some((i, 'M')) => (&t[..i], 1 << 20),
        Some((i, 'G')) => (&t[..i], 1 << 30),
        Some((i, 'T')) => (&t[..i], 1 << 40),
        Some(_) => (t, 1),
        None => return Err("empty".into()),
    };
    let n: u64 = number.trim().parse().map_err(|_| format!("`{number}` is not a whole number"))?;
    n.checked_mul(factor).ok_or_else(|| "too large".to_string())
}

fn network(c: &mut Checker<'_>, action: &Spanned<String>, s: &RawStep, spec: Option<&UnitSpec>) -> Option<NetworkFault> {
    let traffic = s.traffic.as_ref().expect("required");
    let mut ok = true;
    let word = traffic.as_ref().as_str();
    // Which parameter each action takes, and the error for it elsewhere.
    for (key, span, belongs) in [("percent", s.percent.as_ref().map(|p| p.span()), "loss"), ("delay", s.delay.as_ref().map(|d| d.span()), "delay")] {
        match span {
            Some(span) if word != belongs => {
                c.error(span, format!("`{key}` does not go with `action = \"{word}\"`"), format!("`{key}` goes with `action = \"{belongs}\"`"));
                ok = false;
            }
            None if word == belongs => {
                let example = if key == "percent" { "percent = 30" } else { "delay = \"200ms\"" };
                c.error(traffic.span(), format!("`action = \"{word}\"` needs `{key}`"), format!("add `{example}`"));
                ok = false;
            }
            _ => {}
        }
    }
    if !ok {
        return None;
    }
    let action_value = match word {
        "drop" => NetAction::Drop,
        "reject" => NetAction::Reject,
        "loss" => {
            let p = s.percent.as_ref().expect("checked");
            match u8::try_from(*p.as_ref()) {
                Ok(n) if (1..=100).contains(&n) => NetAction::Loss(n),
                _ => {
                    c.error(p.span(), format!("loss of {}% is out of range", p.as_ref()), "a percentage of packets, 1..=100 (100 is `action = \"drop\"`)");
                    return None;
                }
            }
        }
        "delay" => {
            let d = s.delay.as_ref().expect("checked");
            let delay = c.duration(d)?;
            if delay.is_zero() || delay > std::time::Duration::from_secs(60) {
                c.error(d.span(), format!("delay `{}` is outside 1ms..=60s", d.as_ref()), "e.g. `delay = \"200ms\"`");
                return None;
            }
            NetAction::Delay(delay)
        }
        other => {
            const ACTIONS: &[&str] = &["drop", "reject", "loss", "delay"];
            let hint = match crate::systemd::directives::suggest(other, ACTIONS) {
                Some(sug) => format!("did you mean `{sug}`?"),
                None => format!("one of: {}", ACTIONS.join(", ")),
            };
            c.error(traffic.span(), format!("unknown network action `{other}`"), hint);
            return None;
        }
    };
    let peer = match &s.peer {
        Some(p) => match p.as_ref().parse::<std::net::IpAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                c.error(p.span(), format!("invalid peer address `{}`", p.as_ref()), "an IPv4 or IPv6 address, e.g. \"172.17.0.1\" (names are not resolved)");
                return None;
            }
        },
        None => None,
    };
    let port = match (&s.port, spec) {
        (Some(p), _) => Some(c.port(p)?),
        (None, Some(spec)) => match super::listen_port(&spec.exec) {
            Some(p) => Some(p),
            None if peer.is_some() => None,
            None => {
                c.error(
                    s.unit.as_ref().expect("given").span(),
                    format!("unit `{}` listens on no port the lab can read (no `--listen ADDR:PORT` in `exec`)", spec.name),
                    "add `port = 8080`, the port its traffic goes to, or `peer = \"ADDRESS\"`",
                );
                return None;
            }
        },
        (None, None) => None,
    };
    if port.is_none() && peer.is_none() {
        c.error(action.span(), "`do = \"network\"` needs traffic to act on", "add `unit = \"web\"` (its `--listen` port), `port = 8080`, or `peer = \"172.17.0.1\"`");
        return None;
    }
    let direction = match &s.direction {
        Some(d) => c.word(d, "direction", Direction::ALL)?,
        None if matches!(action_value, NetAction::Delay(_)) => Direction::Out,
        None => Direction::Both,
    };
    if matches!(action_value, NetAction::Delay(_)) && direction != Direction::Out {
        c.error(
            s.direction.as_ref().expect("only a written direction differs").span(),
            format!("`delay` cannot hold back `{direction}` traffic: netem delays what leaves the target"),
            "leave `direction` out (or write \"out\"): every round trip with the port or peer is longer by the delay",
        );
        return None;
    }
    Some(NetworkFault { action: action_value, port, peer, direction })
}

fn disk_full_path(c: &mut Checker<'_>, path: &Spanned<String>) -> Option<std::path::PathBuf> {
    let text = path.as_ref().trim_end_matches('/');
    let text = if text.is_empty() { "/" } else { text };
    let hint = "a directory the unit writes to, e.g. \"/var/lib/app\" or \"/var/log/app\"";
    if DISK_FULL_FORBIDDEN.contains(&text) || DISK_FULL_FORBIDDEN_BELOW.iter().any(|r| std::path::Path::new(text).starts_with(r)) {
        c.error(path.span(), format!("`disk-full` cannot cover `{}`: a small filesystem there breaks the target itself, not only the unit", path.as_ref()), hint);
        return None;
    }
    match super::check_target_path(text) {
        Ok(p) => Some(p),
        Err(e) => {
            c.error(path.span(), e.replace("file path", "disk-full path"), hint);
            None
        }
    }
}

/// `do = "heal"`: the resource fault it undoes (by `name`, else the latest one not healed yet).
pub(super) fn check_heal(c: &mut Checker<'_>, action: &Spanned<String>, s: &RawStep, held: &mut Held) -> Option<Fault> {
    let index = match &s.fault_name {
        Some(name) => {
            let found = held.faults.iter().rposition(|(n, ..)| n.as_deref() == Some(name.as_ref().as_str()));
            match found {
                Some(i) => i,
                None if held.broken.contains(name.as_ref()) => return None,
                None => {
                    let names: Vec<&str> = held.faults.iter().filter_map(|(n, ..)| n.as_deref()).collect();
                    let hint = match crate::systemd::directives::suggest(name.as_ref(), &names) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None if names.is_empty() => "name the fault with `name = \"...\"` on its step, before this one".into(),
                        None => format!("faults named before this step: {}", names.join(", ")),
                    };
                    c.error(name.span(), format!("no fault named `{}` before this step", name.as_ref()), hint);
                    return None;
                }
            }
        }
        None => match held.faults.iter().rposition(|f| !f.3) {
            Some(i) => i,
            None if held.broken_unnamed || !held.broken.is_empty() => return None,
            None => {
                c.error(action.span(), "`heal` has no fault to undo", "put an oom, network, disk-full or cpu-starve step before it (each heal undoes one)");
                return None;
            }
        },
    };
    let (_, step, unit, healed) = &mut held.faults[index];
    if *healed {
        let span = s.fault_name.as_ref().map_or(action.span(), |n| n.span());
        c.error(span, "this fault was healed by an earlier `heal` step", "each fault is healed once; remove this step");
        return None;
    }
    *healed = true;
    Some(Fault::Heal { step: *step, unit: unit.clone() })
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes_read_as_systemd_reads_them() {
        assert_eq!(parse_bytes("64M"), Ok(64 << 20));
        assert_eq!(parse_bytes("512K"), Ok(512 << 10));
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("64MB").is_err());
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("").is_err());
    }
}
