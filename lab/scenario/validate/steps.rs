//! `[[steps]]`: which keys each `do = ...` takes, the references to units and to the fault a
//! measurement counts from, and the values of every step kind.

use std::ops::Range;

use toml::Spanned;

use super::resources::{check_heal, check_resource, Held, RESOURCE_WORDS};
use super::units::any_unit_name;
use super::{Checker, DEFAULT_CONTROL_PORT, DEFAULT_PROBE_TIMEOUT, DEFAULT_WAIT};
use crate::scenario::model::*;
use crate::scenario::raw::{RawScenario, RawStep, Scalar};
use crate::systemd::directives;
use crate::systemd::{no_restart_window, settle_window, ActiveState, CountedFrom, KillWhom, MainExit, ManagerSettings, ServiceResult, Signal, SubState};

/// Step kinds: (`do` word, keys it accepts besides `do`, keys it requires). A fault aimed at
/// units takes `unit` or `units` (one of them, checked in [`targets`]).
const STEP_KINDS: &[(&str, &[&str], &[&str])] = &[
    ("start", &["unit", "no_block"], &["unit"]),
    ("stop", &["unit", "units"], &[]),
    ("restart", &["unit", "units"], &[]),
    ("kill", &["unit", "units", "signal", "whom"], &[]),
    ("signal", &["unit", "units", "signal"], &["signal"]),
    ("freeze", &["unit", "units"], &[]),
    ("thaw", &["unit", "units"], &[]),
    ("pause", &["duration"], &["duration"]),
    ("fault", &["unit", "units", "kind", "part", "code", "signal", "after", "port"], &["kind"]),
    ("oom", &["unit", "limit", "name"], &["unit"]),
    ("network", &["unit", "port", "peer", "action", "percent", "delay", "direction", "duration", "name"], &["action"]),
    ("disk-full", &["unit", "path", "duration", "name"], &["unit", "path"]),
    ("cpu-starve", &["unit", "duration", "name"], &["unit"]),
    ("heal", &["name"], &[]),
    ("wait-state", &["unit", "active", "sub", "within"], &["unit"]),
    ("wait-journal", &["unit", "contains", "matches", "within"], &[]),
    ("wait-http", &["port", "path", "status", "within"], &["port"]),
    ("settle", &["unit", "window"], &["unit"]),
    ("observe", &["what", "unit", "within", "window", "port", "path", "timeout"], &["what"]),
    ("expect", &["unit", "active", "sub", "result", "n_restarts", "exit_code", "exit_signal", "core_dumped"], &["unit"]),
    ("probe", &["port", "path", "expect", "timeout"], &["port"]),
    ("expect-restart", &["unit", "within"], &["unit", "within"]),
    ("expect-no-restart", &["unit", "window"], &["unit"]),
    ("expect-recovery", &["unit", "within", "port", "path"], &["unit", "within"]),
    ("expect-journal", &["unit", "contains", "not_contains", "matches", "not_matches"], &[]),
];

/// What `do = "observe"` can record.
const OBSERVE_WHAT: &[&str] = &["state", "restart", "http"];

pub(super) fn check_steps(
    c: &mut Checker<'_>,
    raw: &RawScenario,
    units: &[(Range<usize>, UnitSpec)],
    manager: &ManagerSettings,
) -> Vec<Step> {
    if raw.steps_written == 0 {
        // Steps that failed to deserialise were reported already; only an absent or empty
        // list is a problem of its own.
        {
            c.error(
                raw.steps_span.clone().unwrap_or(0..0),
                "the scenario has no steps",
                "add [[steps]] tables, e.g. `do = \"start\"` and `unit = \"web\"`: nothing runs without them",
            );
        }
    }
    let mut steps = Vec::new();
    let mut last_fault: Option<usize> = None;
    let mut held = Held::default();
    for (span, s) in &raw.steps {
        if let Some(kind) = check_step(c, span, s, units, manager, last_fault, &mut held) {
            let location = c.location(&s.action.as_ref().map_or(span.clone(), |a| a.span()));
            if matches!(kind, StepKind::Fault(_)) {
                last_fault = Some(steps.len());
            }
            if let StepKind::Fault(Fault::Resource(r)) = &kind {
                held.record(steps.len(), r);
            }
            steps.push(Step { location, kind });
        } else if s.action.as_ref().and_then(|a| fault_word(a.as_ref())).is_some() {
            if s.action.as_ref().is_some_and(|a| RESOURCE_WORDS.contains(&a.as_ref().as_str())) {
                held.record_broken(s);
            }
            // A broken fault step still counts as "a fault before", so that the steps after it
            // do not get a second, misleading error.
            last_fault = Some(steps.len());
        }
    }
    steps
}

fn fault_word(w: &str) -> Option<&str> {
    ["fault", "signal", "freeze", "thaw", "pause", "stop", "restart", "kill", "heal"].contains(&w).then_some(w).or_else(|| RESOURCE_WORDS.contains(&w).then_some(w))
}

fn resolve(c: &mut Checker<'_>, value: &Spanned<String>, units: &[(Range<usize>, UnitSpec)]) -> Option<UnitName> {
    let written = value.as_ref();
    if let Ok(name) = any_unit_name(written) {
        if units.iter().any(|(_, u)| u.name == name) {
            return Some(name);
        }
    }
    let stem = written.trim_end_matches(".service");
    if c.broken_units.iter().any(|b| b.trim_end_matches(".service") == stem) {
        return None;
    }
    let stems: Vec<&str> = units.iter().map(|(_, u)| u.name.stem()).collect();
    let hint = match directives::suggest(written.trim_end_matches(".service"), &stems) {
        Some(s) => format!("did you mean `{s}`?"),
        None if stems.is_empty() => "define it with a [[units]] table".into(),
        None => format!("units of this scenario: {}", stems.join(", ")),
    };
    c.error(value.span(), format!("no unit `{written}` in this scenario"), hint);
    None
}

fn check_step(
    c: &mut Checker<'_>,
    span: &Range<usize>,
    s: &RawStep,
    units: &[(Range<usize>, UnitSpec)],
    manager: &ManagerSettings,
    last_fault: Option<usize>,
    held: &mut Held,
) -> Option<StepKind> {
    let Some(action) = &s.action else {
        c.error(span.clone(), "step without `do`", format!("start the step with `do = \"...\"`, one of: {}", words()));
        return None;
    };
    let word = action.as_ref().as_str();
    let Some(&(_, allowed, required)) = STEP_KINDS.iter().find(|(w, _, _)| *w == word) else {
        let all: Vec<&str> = STEP_KINDS.iter().map(|(w, _, _)| *w).collect();
        let hint = match directives::suggest(word, &all) {
            Some(sug) => format!("did you mean `{sug}`?"),
            None => format!("one of: {}", words()),
        };
        c.error(action.span(), format!("unknown step `do = \"{word}\"`"), hint);
        return None;
    };
    let present = s.present();
    let mut ok = true;
    for (key, kspan) in &present {
        if *key != "do" && !allowed.contains(key) {
            c.error(kspan.clone(), format!("`{key}` does not apply to `do = \"{word}\"`"), format!("`{word}` takes: {}", allowed.join(", ")));
            ok = false;
        }
    }
    for key in required {
        if !present.iter().any(|(k, _)| k == key) {
            c.error(action.span(), format!("`do = \"{word}\"` needs `{key}`"), format!("add `{key} = ...` to this step; `{word}` takes: {}", allowed.join(", ")));
            ok = false;
        }
    }
    if !ok {
        return None;
    }
    let unit = match &s.unit {
        Some(u) => Some(resolve(c, u, units)?),
        None => None,
    };
    let need_unit = || unit.clone().expect("required keys were checked");
    let since = |c: &mut Checker<'_>| -> Option<usize> {
        if last_fault.is_none() {
            c.error(
                action.span(),
                format!("`{word}` measures from the previous fault step, and there is none before it"),
                "add a fault step (fault, signal, kill, stop, restart, freeze, pause, oom, network, disk-full, cpu-starve, heal) before it",
            );
        }
        last_fault
    };
    let spec_of = |name: &UnitName| &units.iter().find(|(_, u)| &u.name == name).expect("resolved").1;
    let kind = match word {
        "start" => StepKind::Start { unit: need_unit(), no_block: s.no_block.as_ref().is_some_and(|b| *b.as_ref()) },
        "stop" => StepKind::Fault(Fault::Stop { units: targets(c, action, s, unit.as_ref(), units)? }),
        "restart" => StepKind::Fault(Fault::Restart { units: targets(c, action, s, unit.as_ref(), units)? }),
        "kill" => {
            let units = targets(c, action, s, unit.as_ref(), units)?;
            let signal = match &s.signal {
                Some(sig) => c.signal(sig)?,
                None => Signal::TERM,
            };
            let whom = match &s.whom {
                None => KillWhom::All,
                Some(w) => match w.as_ref().parse::<KillWhom>() {
                    Ok(whom) => whom,
                    Err(()) => {
                        c.error(w.span(), format!("unknown `whom = \"{}\"`", w.as_ref()), "one of: all, main, control (systemctl kill --kill-whom=)");
                        return None;
                    }
                },
            };
            StepKind::Fault(Fault::Kill { units, signal, whom })
        }
        "signal" => {
            let units = targets(c, action, s, unit.as_ref(), units)?;
            StepKind::Fault(Fault::Signal { units, signal: c.signal(s.signal.as_ref()?)? })
        }
        "freeze" => StepKind::Fault(Fault::Freeze { units: targets(c, action, s, unit.as_ref(), units)? }),
        "thaw" => StepKind::Fault(Fault::Thaw { units: targets(c, action, s, unit.as_ref(), units)? }),
        "pause" => StepKind::Fault(Fault::PauseTarget { duration: c.duration(s.duration.as_ref()?)? }),
        "fault" => {
            let named = targets(c, action, s, unit.as_ref(), units)?;
            StepKind::Fault(check_control_fault(c, s, named, units)?)
        }
        w if RESOURCE_WORDS.contains(&w) => StepKind::Fault(check_resource(c, w, action, s, unit, &spec_of, held)?),
        "heal" => StepKind::Fault(check_heal(c, action, s, held)?),
        "wait-state" => {
            let active = match &s.active { Some(a) => Some(c.word(a, "ActiveState", ActiveState::ALL)?), None => None };
            let sub = match &s.sub { Some(a) => Some(c.word(a, "SubState", SubState::ALL)?), None => None };
            if active.is_none() && sub.is_none() {
                c.error(action.span(), "`wait-state` needs `active` and/or `sub`", "e.g. `active = \"active\"` and `sub = \"running\"`");
                return None;
            }
            StepKind::Wait(Wait::State { unit: need_unit(), active, sub, within: c.opt_duration(&s.within, DEFAULT_WAIT)? })
        }
        "wait-journal" => {
            let matcher = one_matcher(c, action, &[("contains", &s.contains, false), ("matches", &s.matches, true)])?.1;
            StepKind::Wait(Wait::Journal { unit, matcher, within: c.opt_duration(&s.within, DEFAULT_WAIT)? })
        }
        "wait-http" => {
            let port = c.port(s.port.as_ref()?)?;
            let status = match &s.status { Some(st) => c.status(st)?, None => 200 };
            StepKind::Wait(Wait::Http { port, path: http_path(c, &s.path, "/")?, status, within: c.opt_duration(&s.within, DEFAULT_WAIT)? })
        }
        "settle" => {
            let unit = need_unit();
            let (window, window_source) = match &s.window {
                Some(w) => (c.duration(w)?, WindowSource::Explicit),
                None => {
                    let d = settle_window(&spec_of(&unit).file, manager);
                    (d.window, WindowSource::Derived(d.text))
                }
            };
            StepKind::Settle { unit, window, window_source }
        }
        "observe" => StepKind::Observe(check_observe(c, action, s, unit, units, manager, last_fault)?),
        "probe" => {
            let port = c.port(s.port.as_ref()?)?;
            let expect = match &s.expect {
                None => HttpExpect::Status(200),
                Some(e) => match e.as_ref() {
                    Scalar::Int(n) => HttpExpect::Status(c.status(&Spanned::new(e.span(), *n))?),
                    Scalar::Str(t) if t == "refused" => HttpExpect::Refused,
                    Scalar::Str(t) if t == "timeout" => HttpExpect::Timeout,
                    _ => {
                        c.error(e.span(), "invalid probe `expect`", "a status (200, 503, ...), \"refused\" or \"timeout\"");
                        return None;
                    }
                },
            };
            let timeout = c.opt_duration(&s.timeout, DEFAULT_PROBE_TIMEOUT)?;
            StepKind::Expect(Expectation::Http { port, path: http_path(c, &s.path, "/")?, expect, timeout })
        }
        "expect" => StepKind::Expect(check_properties(c, action, s, need_unit())?),
        "expect-restart" => {
            let within = c.duration(s.within.as_ref()?)?;
            StepKind::Expect(Expectation::RestartedWithin { unit: need_unit(), within, since_step: since(c)? })
        }
        "expect-no-restart" => {
            let unit = need_unit();
            let (window, window_source) = match &s.window {
                Some(w) => (c.duration(w)?, WindowSource::Explicit),
                None => {
                    let d = no_restart_window(&spec_of(&unit).file, manager, CountedFrom::Now);
                    (d.window, WindowSource::Derived(d.text))
                }
            };
            StepKind::Expect(Expectation::NoRestart { unit, window, window_source })
        }
        "expect-recovery" => {
            let within = c.duration(s.within.as_ref()?)?;
            let http = match &s.port {
                Some(p) => Some((c.port(p)?, http_path(c, &s.path, "/healthz")?)),
                None => {
                    if let Some(p) = &s.path {
                        c.error(p.span(), "`path` without `port`", "add `port = 8080` to check HTTP health after the restart, or drop `path`");
                        return None;
                    }
                    None
                }
            };
            StepKind::Expect(Expectation::Recovery { unit: need_unit(), http, within, since_step: since(c)? })
        }
        "expect-journal" => {
            let (present, matcher) = one_matcher(
                c,
                action,
                &[("contains", &s.contains, false), ("not_contains", &s.not_contains, false), ("matches", &s.matches, true), ("not_matches", &s.not_matches, true)],
            )?;
            StepKind::Expect(Expectation::Journal { unit, matcher, present })
        }
        _ => unreachable!("every word of STEP_KINDS is handled"),
    };
    Some(kind)
}

fn words() -> String {
    STEP_KINDS.iter().map(|(w, _, _)| *w).collect::<Vec<_>>().join(", ")
}

fn http_path(c: &mut Checker<'_>, path: &Option<Spanned<String>>, default: &str) -> Option<String> {
    match path {
        None => Some(default.to_string()),
        Some(p) if p.as_ref().starts_with('/') && !p.as_ref().chars().any(|ch| ch.is_whitespace() || ch.is_control()) => Some(p.as_ref().clone()),
        Some(p) => {
            c.error(p.span(), format!("invalid HTTP path `{}`", p.as_ref()), "a path starts with `/` and has no spaces, e.g. \"/healthz\"");
            None
        }
    }
}

/// Exactly one of the matcher keys; returns (present = not a `not_` key, matcher).
fn one_matcher(
    c: &mut Checker<'_>,
    action: &Spanned<String>,
    options: &[(&str, &Option<Spanned<String>>, bool)],
) -> Option<(bool, TextMatch)> {
    let given: Vec<_> = options.iter().filter(|(_, v, _)| v.is_some()).collect();
    let names: Vec<&str> = options.iter().map(|(k, _, _)| *k).collect();
    match given.as_slice() {
        [(key, Some(v), is_regex)] => {
            let matcher = if *is_regex { TextMatch::Regex(c.regex(v)?) } else { TextMatch::Contains(v.as_ref().clone()) };
            // A pattern every line matches makes a check that cannot fail (or never hold).
            if matcher.is_match("") {
                c.error(v.span(), format!("`{key}` matches every line, so this check cannot tell anything"), "write the text (or pattern) of the line that must (or must not) appear");
                return None;
            }
            Some((!key.starts_with("not_"), matcher))
        }
        [] => {
            c.error(action.span(), format!("`do = \"{}\"` needs one of {}", action.as_ref(), names.join(", ")), "e.g. `contains = \"Watchdog timeout\"`");
            None
        }
        [_, (key, Some(v), _), ..] => {
            c.error(v.span(), format!("`{key}` given together with `{}`", given[0].0), "one matcher per step: split it into two steps");
            None
        }
        _ => None,
    }
}

fn check_control_fault(c: &mut Checker<'_>, s: &RawStep, named: Vec<UnitName>, units: &[(Range<usize>, UnitSpec)]) -> Option<Fault> {
    let kind = s.kind.as_ref().expect("required");
    const KINDS: &[&str] = &["hang", "exit", "signal", "stop-watchdog", "close-listener", "exhaust-fds", "unhealthy", "watchdog-trigger"];
    // Which parameter each kind takes (services/README.md, "Control endpoint").
    let param = match kind.as_ref().as_str() {
        "hang" => Some("part"),
        "exit" => Some("code"),
        "signal" => Some("signal"),
        k if KINDS.contains(&k) => None,
        other => {
            let hint = match directives::suggest(other, KINDS) {
                Some(sug) => format!("did you mean `{sug}`?"),
                None => format!("one of: {}", KINDS.join(", ")),
            };
            c.error(kind.span(), format!("unknown fault kind `{other}`"), hint);
            return None;
        }
    };
    let k = kind.as_ref().as_str();
    let mut ok = true;
    for (name, span) in [("part", s.part.as_ref().map(|v| v.span())), ("code", s.code.as_ref().map(|v| v.span())), ("signal", s.signal.as_ref().map(|v| v.span()))] {
        match (span, param == Some(name)) {
            (Some(span), false) => {
                c.error(span, format!("`{name}` does not go with `kind = \"{k}\"`"), "part goes with hang, code with exit, signal with signal");
                ok = false;
            }
            (None, true) => {
                c.error(kind.span(), format!("`kind = \"{k}\"` needs `{name}`"), match name {
                    "part" => "add `part = \"handlers\"` (accept, handlers, watchdog or all; comma-separated)",
                    "code" => "add `code = 3` (0..=255)",
                    _ => "add `signal = \"SEGV\"`",
                });
                ok = false;
            }
            _ => {}
        }
    }
    if !ok {
        return None;
    }
    let fault = match k {
        "hang" => {
            let part = s.part.as_ref().expect("checked");
            let mut parts = Vec::new();
            for p in part.as_ref().split(',') {
                match p.trim().parse::<HangPart>() {
                    Ok(hp) if !parts.contains(&hp) => parts.push(hp),
                    Ok(_) => {}
                    Err(()) => {
                        c.error(part.span(), format!("unknown hang part `{}`", p.trim()), "accept, handlers, watchdog or all, comma-separated");
                        return None;
                    }
                }
            }
            ControlFault::Hang(parts)
        }
        "exit" => {
            let code = s.code.as_ref().expect("checked");
            match u8::try_from(*code.as_ref()) {
                Ok(n) => ControlFault::Exit(n),
                Err(_) => {
                    c.error(code.span(), format!("exit code {} is out of range", code.as_ref()), "an exit code is 0..=255");
                    return None;
                }
            }
        }
        "signal" => ControlFault::Signal(c.signal(s.signal.as_ref().expect("checked"))?),
        "stop-watchdog" => ControlFault::StopWatchdog,
        "close-listener" => ControlFault::CloseListener,
        "exhaust-fds" => ControlFault::ExhaustFds,
        "unhealthy" => ControlFault::Unhealthy,
        _ => ControlFault::WatchdogTrigger,
    };
    let written = match &s.port { Some(p) => Some(c.port(p)?), None => None };
    let mut targets = Vec::new();
    for name in named {
        // Each unit's server is reached on the port its `--listen` names, unless one port is
        // written for a single unit; buggy-server's default port otherwise.
        let spec = &units.iter().find(|(_, u)| u.name == name).expect("resolved").1;
        let port = match (written, s.units.as_ref(), listen_port(&spec.exec)) {
            (Some(p), None, _) => p,
            (Some(_), Some(list), _) => {
                c.error(list.span(), "`port` with `units`: each unit's server is reached on the port its `--listen` names", "drop `port`, or fault one unit per step");
                return None;
            }
            (None, _, Some(p)) => p,
            (None, _, None) => DEFAULT_CONTROL_PORT,
        };
        targets.push((name, port));
    }
    let after = match &s.after {
        Some(a) => {
            let d = c.duration(a)?;
            // buggy-server reads `after` down to the millisecond; a finer value would be refused
            // at run time.
            if d.subsec_nanos() % 1_000_000 != 0 {
                c.error(a.span(), format!("`after = \"{}\"` is finer than a millisecond", a.as_ref()), "buggy-server counts `after` in whole milliseconds, e.g. \"250ms\" or \"1.5s\"");
                return None;
            }
            Some(d)
        }
        None => None,
    };
    Some(Fault::Control { targets, fault, after })
}

/// The port of a `--listen ADDR:PORT` (or `--listen=ADDR:PORT`) argument: buggy-server's flag.
pub fn listen_port(exec: &[String]) -> Option<u16> {
    listen_address(exec).and_then(|a| a.rsplit_once(':')).and_then(|(_, p)| p.parse().ok())
}

/// The `ADDR:PORT` of a `--listen` argument.
pub fn listen_address(exec: &[String]) -> Option<&str> {
    let mut args = exec.iter();
    while let Some(arg) = args.next() {
        if arg == "--listen" {
            return args.next().map(String::as_str);
        }
        if let Some(value) = arg.strip_prefix("--listen=") {
            return Some(value);
        }
    }
    None
}

/// The units a fault is aimed at: `unit = "x"` or `units = ["x", "y"]`, exactly one of them.
fn targets(
    c: &mut Checker<'_>,
    action: &Spanned<String>,
    s: &RawStep,
    unit: Option<&UnitName>,
    units: &[(Range<usize>, UnitSpec)],
) -> Option<Vec<UnitName>> {
    match (unit, &s.units) {
        (Some(u), None) => Some(vec![u.clone()]),
        (None, Some(list)) => {
            if list.as_ref().is_empty() {
                c.error(list.span(), "`units` is empty", "name at least one unit, or use `unit = \"...\"`");
                return None;
            }
            let mut out: Vec<UnitName> = Vec::new();
            for written in list.as_ref() {
                let name = resolve(c, written, units)?;
                if out.contains(&name) {
                    c.error(written.span(), format!("unit `{name}` is listed twice"), "name each unit once");
                    return None;
                }
                out.push(name);
            }
            Some(out)
        }
        (Some(_), Some(list)) => {
            c.error(list.span(), "`unit` and `units` in one step", "one unit: `unit = \"x\"`; several hit at the same instant: `units = [\"x\", \"y\"]`");
            None
        }
        (None, None) => {
            c.error(action.span(), format!("`do = \"{}\"` needs `unit` or `units`", action.as_ref()), "add `unit = \"web\"` (or `units = [...]` to hit several units at one instant)");
            None
        }
    }
}

/// `do = "observe"`: which value to record, and the keys that go with it.
fn check_observe(
    c: &mut Checker<'_>,
    action: &Spanned<String>,
    s: &RawStep,
    unit: Option<UnitName>,
    units: &[(Range<usize>, UnitSpec)],
    manager: &ManagerSettings,
    last_fault: Option<usize>,
) -> Option<Observe> {
    let what = s.what.as_ref().expect("required");
    let keys: &[&str] = match what.as_ref().as_str() {
        "state" => &["unit"],
        "restart" => &["unit", "within", "window"],
        "http" => &["port", "path", "timeout"],
        other => {
            let hint = match directives::suggest(other, OBSERVE_WHAT) {
                Some(sug) => format!("did you mean `{sug}`?"),
                None => format!("one of: {}", OBSERVE_WHAT.join(", ")),
            };
            c.error(what.span(), format!("unknown observation `what = \"{other}\"`"), hint);
            return None;
        }
    };
    let w = what.as_ref().as_str();
    let mut ok = true;
    for (key, span) in s.present() {
        if !["do", "what"].contains(&key) && !keys.contains(&key) {
            c.error(span, format!("`{key}` does not apply to `what = \"{w}\"`"), format!("`observe` of {w} takes: {}", keys.join(", ")));
            ok = false;
        }
    }
    let needs_unit = keys.contains(&"unit");
    if needs_unit && unit.is_none() {
        c.error(action.span(), format!("`what = \"{w}\"` needs `unit`"), "add `unit = \"web\"`");
        ok = false;
    }
    if w == "http" && s.port.is_none() {
        c.error(action.span(), "`what = \"http\"` needs `port`", "add `port = 8080`");
        ok = false;
    }
    if !ok {
        return None;
    }
    Some(match w {
        "state" => Observe::State { unit: unit.expect("checked") },
        "restart" => {
            let unit = unit.expect("checked");
            let within = c.opt_duration(&s.within, DEFAULT_WAIT)?;
            let (window, window_source) = match &s.window {
                Some(win) => (c.duration(win)?, WindowSource::Explicit),
                None => {
                    let spec = &units.iter().find(|(_, u)| u.name == unit).expect("resolved").1;
                    let d = no_restart_window(&spec.file, manager, CountedFrom::Failure);
                    (d.window, WindowSource::Derived(d.text))
                }
            };
            Observe::Restart { unit, within, window, window_source, since_step: last_fault }
        }
        _ => {
            let port = c.port(s.port.as_ref().expect("checked"))?;
            Observe::Http { port, path: http_path(c, &s.path, "/")?, timeout: c.opt_duration(&s.timeout, DEFAULT_PROBE_TIMEOUT)? }
        }
    })
}

fn check_properties(c: &mut Checker<'_>, action: &Spanned<String>, s: &RawStep, unit: UnitName) -> Option<Expectation> {
    let mut checks = Vec::new();
    let mut ok = true;
    if let Some(a) = &s.active {
        match c.word(a, "ActiveState", ActiveState::ALL) { Some(v) => checks.push(PropertyCheck::ActiveState(v)), None => ok = false }
    }
    if let Some(a) = &s.sub {
        match c.word(a, "SubState", SubState::ALL) { Some(v) => checks.push(PropertyCheck::SubState(v)), None => ok = false }
    }
    if let Some(a) = &s.result {
        match c.word(a, "Result", ServiceResult::ALL) { Some(v) => checks.push(PropertyCheck::Result(v)), None => ok = false }
    }
    if let Some(n) = &s.n_restarts {
        let parsed = match n.as_ref() {
            Scalar::Int(i) => u64::try_from(*i).map(CountRange::exactly).map_err(|_| "a count cannot be negative".to_string()),
            Scalar::Str(t) => CountRange::parse(t),
            _ => Err("a count is an integer or a string such as \">=1\" or \"1..3\"".to_string()),
        };
        match parsed {
            Ok(r) => checks.push(PropertyCheck::NRestarts(r)),
            Err(e) => {
                c.error(n.span(), format!("invalid n_restarts: {e}"), "write 2, \">=1\", \">1\", \"<=3\", \"<3\" or \"1..3\" (both ends included)");
                ok = false;
            }
        }
    }
    match (&s.exit_code, &s.exit_signal, &s.core_dumped) {
        (Some(code), Some(sig), _) => {
            c.error(sig.span(), "`exit_signal` given together with `exit_code`", "a main process either exited with a code or was killed by a signal");
            let _ = code;
            ok = false;
        }
        (Some(code), None, Some(core)) => {
            c.error(core.span(), "`core_dumped` goes with `exit_signal`", "only a process killed by a signal can dump core");
            let _ = code;
            ok = false;
        }
        (Some(code), None, None) => match u8::try_from(*code.as_ref()) {
            Ok(n) => checks.push(PropertyCheck::MainExit(MainExit::Exited(n))),
            Err(_) => {
                c.error(code.span(), format!("exit code {} is out of range", code.as_ref()), "an exit code is 0..=255");
                ok = false;
            }
        },
        (None, Some(sig), core) => match c.signal(sig) {
            Some(signal) => checks.push(PropertyCheck::MainExit(MainExit::Killed { signal, dumped: core.as_ref().map(|b| *b.as_ref()) })),
            None => ok = false,
        },
        (None, None, Some(core)) => {
            c.error(core.span(), "`core_dumped` goes with `exit_signal`", "add `exit_signal = \"SEGV\"` (or the signal expected)");
            ok = false;
        }
        (None, None, None) => {}
    }
    if !ok {
        return None;
    }
    if checks.is_empty() {
        c.error(action.span(), "`do = \"expect\"` checks nothing", "add active, sub, result, n_restarts, exit_code or exit_signal");
        return None;
    }
    Some(Expectation::Unit { unit, checks })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_word_requires_only_keys_it_accepts() {
        for (word, allowed, required) in STEP_KINDS {
            for r in *required {
                assert!(allowed.contains(r), "{word}: required `{r}` is not accepted");
            }
            for a in *allowed {
                assert!(RawStep::KEYS.contains(a), "{word}: `{a}` is not a RawStep key");
            }
        }
    }
}
