//! `[[units]]`: a unit given as directives (`exec` and section tables) or as unit-file text,
//! its name, and the directive names and closed-set values systemd would ignore or refuse.

use std::ops::Range;

use toml::Spanned;

use super::{scalar_lines, Checker};
use crate::scenario::model::*;
use crate::scenario::raw::RawUnit;
use crate::scenario::unit_text;
use crate::systemd::directives;
use crate::systemd::{exec_line, Directive, RestartPolicy, ServiceType, Suite, UnitFile};

/// Normalise a unit name as written (`web` or `web.service`) and check it is a name systemd
/// accepts for a service (unit_name_is_valid(): at most 255 characters of `[A-Za-z0-9:_.\-]`,
/// one `@` for an instance).
pub(super) fn unit_name(text: &str) -> Result<UnitName, String> {
    let full = if text.ends_with(".service") { text.to_string() } else { format!("{text}.service") };
    if let Some((_, suffix)) = text.rsplit_once('.') {
        if !text.ends_with(".service") && ["socket", "timer", "target", "path", "mount", "slice", "scope", "device", "swap", "automount"].contains(&suffix) {
            return Err(format!("`{text}` is a .{suffix} unit; scenarios define services only"));
        }
    }
    let stem = full.strip_suffix(".service").unwrap_or(&full);
    if stem.is_empty() {
        return Err("the name is empty".into());
    }
    if full.len() > 255 {
        return Err("a unit name is at most 255 characters".into());
    }
    if let Some(bad) = stem.chars().find(|ch| !(ch.is_ascii_alphanumeric() || ":_.-@\\".contains(*ch))) {
        return Err(format!("`{bad}` is not allowed in a unit name (only A-Z a-z 0-9 : _ . - \\ and one @)"));
    }
    match stem.matches('@').count() {
        0 => {}
        1 if stem.starts_with('@') => return Err("a unit name cannot start with `@`".into()),
        1 if stem.ends_with('@') => {
            return Err(format!("`{full}` is a template, which cannot be started; name an instance such as `{stem}1`"))
        }
        1 => {}
        _ => return Err("a unit name has at most one `@`".into()),
    }
    Ok(UnitName(full))
}

pub(super) fn check_units(c: &mut Checker<'_>, units: &[(Range<usize>, RawUnit)], suites: &[Suite]) -> Vec<(Range<usize>, UnitSpec)> {
    let mut out: Vec<(Range<usize>, UnitSpec)> = Vec::new();
    let mut seen: Vec<UnitName> = Vec::new();
    for (span, u) in units {
        let name = match unit_name(u.name.as_ref()) {
            Ok(n) => n,
            Err(e) => {
                c.error(u.name.span(), format!("invalid unit name `{}`: {e}", u.name.as_ref()), "name the service like `web` or `web.service`");
                continue;
            }
        };
        if seen.contains(&name) {
            c.error(u.name.span(), format!("unit `{name}` is defined twice"), "give each [[units]] entry its own name");
            continue;
        }
        seen.push(name.clone());
        if let Some(text) = &u.text {
            if let Some(spec) = check_unit_text(c, span, u, text, name) {
                out.push((span.clone(), spec));
            }
            continue;
        }
        let Some(exec) = &u.exec else {
            c.error(span.clone(), "missing field `exec`", "add `exec = [\"/usr/local/bin/buggy-server\", ...]`: the program and its arguments");
            continue;
        };
        let argv: Vec<String> = exec.as_ref().iter().map(|a| a.as_ref().clone()).collect();
        let mut ok = true;
        for arg in exec.as_ref() {
            if arg.as_ref().contains('\0') {
                c.error(arg.span(), "an argument holds a NUL byte", "a program's arguments cannot contain NUL: systemd (and execve) would cut the argument there");
                ok = false;
            }
        }
        match exec.as_ref().first() {
            None => {
                c.error(exec.span(), "`exec` is empty", "give the program and its arguments: [\"/usr/local/bin/buggy-server\", \"--listen\", \"0.0.0.0:8080\"]");
                ok = false;
            }
            Some(prog) if !prog.as_ref().starts_with('/') => {
                c.error(
                    prog.span(),
                    format!("program `{}` is not an absolute path", prog.as_ref()),
                    "write the full path, e.g. \"/usr/local/bin/buggy-server\" (systemd prefixes such as `-` or `+` are not supported in `exec`)",
                );
                ok = false;
            }
            Some(_) => {}
        }
        let mut file = UnitFile::default();
        file.service.push(Directive::new("ExecStart", exec_line(&argv)));
        let mut service_type = ServiceType::Simple;
        let mut restart = RestartPolicy::No;
        let mut restart_span: Option<(Range<usize>, RestartPolicy)> = None;
        for (section_name, section, known) in [
            ("Unit", &u.unit, directives::UNIT),
            ("Service", &u.service, directives::SERVICE),
            ("Install", &u.install, directives::INSTALL),
        ] {
            let Some(section) = section else { continue };
            for (key, value) in &section.as_ref().0 {
                let k = key.as_ref().as_str();
                if !super::directive_name_ok(c, key) {
                    ok = false;
                    continue;
                }
                check_directive_name(c, section_name, key, known, suites);
                if section_name == "Service" && k == "ExecStart" {
                    c.error(key.span(), "ExecStart= in [units.Service]: the command is written with `exec`", "remove ExecStart= and put the argv in `exec = [...]` (it is escaped for you)");
                    ok = false;
                    continue;
                }
                for (vspan, scalar) in scalar_lines(c, value) {
                    let text = scalar.render();
                    if section_name == "Service" && k == "Type" {
                        if text.is_empty() {
                            service_type = ServiceType::Simple;
                        } else if let Some(t) = closed_value(c, vspan.clone(), "Type", &text, ServiceType::ALL, "the unit stays Type=simple") {
                            if t == ServiceType::NotifyReload && suites.contains(&Suite::Bookworm) {
                                c.warning(vspan.clone(), "Type=notify-reload needs systemd 253+; bookworm's 252 ignores it", "add `suites = [\"trixie\"]`");
                            }
                            service_type = t;
                        }
                    }
                    if section_name == "Service" && k == "Restart" {
                        if text.is_empty() {
                            restart = RestartPolicy::No;
                            restart_span = None;
                        } else if let Some(r) = closed_value(c, vspan.clone(), "Restart", &text, RestartPolicy::ALL, "the unit keeps its previous Restart= (default no)") {
                            restart = r;
                            restart_span = Some((vspan.clone(), r));
                        }
                    }
                    let line = Directive::new(k, text);
                    match section_name {
                        "Unit" => file.unit.push(line),
                        "Service" => file.service.push(line),
                        _ => file.install.push(line),
                    }
                }
            }
        }
        if let (ServiceType::Oneshot, Some((span, r @ (RestartPolicy::Always | RestartPolicy::OnSuccess)))) = (service_type, &restart_span) {
            c.invalid_value(
                span.clone(),
                format!("Restart={r} is refused for Type=oneshot: systemd will not load the unit"),
                "use Restart=on-failure (or no), or another Type=",
            );
        }
        if ok {
            let location = c.location(span);
            out.push((span.clone(), UnitSpec { name, exec: argv, file, service_type, restart, location }));
        }
    }
    out
}

/// A `[[units]]` entry given as unit-file text: replayed as written. The directives go to
/// systemd verbatim; whatever systemd would ignore or refuse (unknown or misplaced names,
/// invalid `Type=`/`Restart=` values, a missing or relative `ExecStart=`) is a warning, since
/// showing what systemd makes of it is the point. Only what the lab cannot render is an error.
fn check_unit_text(
    c: &mut Checker<'_>,
    span: &Range<usize>,
    u: &RawUnit,
    text: &Spanned<String>,
    name: UnitName,
) -> Option<UnitSpec> {
    let mut ok = true;
    for (present, key) in [(u.exec.is_some(), "exec"), (u.unit.is_some(), "Unit"), (u.service.is_some(), "Service"), (u.install.is_some(), "Install")] {
        if present {
            c.error(text.span(), format!("`text` and `{key}` in one [[units]] entry"), "give the whole unit as `text`, or use `exec` and the section tables, not both");
            ok = false;
        }
    }
    let (lines, problems) = unit_text::parse_unit_text(text.as_ref());
    // Each line is looked up in the file in order (exact for a literal string, which has no
    // escapes), falling back to the whole value.
    let value_span = text.span();
    let source = &c.map.source()[value_span.clone()];
    let mut search_from = 0;
    let mut locate = |needle: &str| -> Range<usize> {
        match source[search_from.min(source.len())..].find(needle) {
            Some(i) if !needle.is_empty() => {
                let start = search_from + i;
                search_from = start + needle.len();
                value_span.start + start..value_span.start + start + needle.len()
            }
            _ => value_span.clone(),
        }
    };
    let mut problems = problems.into_iter().peekable();
    let allow_invalid = std::mem::replace(&mut c.allow_invalid_values, true);
    let mut file = UnitFile::default();
    let mut service_type = ServiceType::Simple;
    let mut restart = RestartPolicy::No;
    let mut exec_start: Option<(Range<usize>, String)> = None;
    for line in &lines {
        // Problems before this line, in text order, so the lookup moves forward only.
        while let Some(p) = problems.next_if(|p| p.span.start < line.key_span.start) {
            ok &= report_text_problem(c, &mut locate, text.as_ref(), &p);
        }
        let key_span = locate(&line.key);
        let key = Spanned::new(key_span.clone(), line.key.clone());
        let known = match line.section.as_str() {
            "Unit" => directives::UNIT,
            "Service" => directives::SERVICE,
            _ => directives::INSTALL,
        };
        check_directive_name(c, &line.section, &key, known, &[]);
        if line.section == "Service" {
            match line.key.as_str() {
                "Type" if line.value.is_empty() => service_type = ServiceType::Simple,
                "Type" => {
                    if let Some(t) = closed_value(c, key_span.clone(), "Type", &line.value, ServiceType::ALL, "the unit stays Type=simple") {
                        service_type = t;
                    }
                }
                "Restart" if line.value.is_empty() => restart = RestartPolicy::No,
                "Restart" => {
                    if let Some(r) = closed_value(c, key_span.clone(), "Restart", &line.value, RestartPolicy::ALL, "the unit keeps its previous Restart= (default no)") {
                        restart = r;
                    }
                }
                "ExecStart" if line.value.is_empty() => exec_start = None,
                "ExecStart" => exec_start = Some((key_span.clone(), line.value.clone())),
                _ => {}
            }
        }
        let d = Directive::new(line.key.clone(), line.value.clone());
        match line.section.as_str() {
            "Unit" => file.unit.push(d),
            "Service" => file.service.push(d),
            _ => file.install.push(d),
        }
    }
    for p in problems {
        ok &= report_text_problem(c, &mut locate, text.as_ref(), &p);
    }
    c.allow_invalid_values = allow_invalid;
    let exec: Vec<String> = match &exec_start {
        None => {
            c.warning(value_span.clone(), "no ExecStart= in [Service]: systemd refuses to start a service without one", "add ExecStart=, unless the refusal is the point");
            Vec::new()
        }
        Some((key_span, value)) => {
            let (program, usable) = unit_text::exec_program(value);
            if !usable {
                c.warning(
                    key_span.clone(),
                    format!("ExecStart= program `{program}` is neither an absolute path nor a plain file name: systemd.service(5) refuses it"),
                    "write an absolute path, unless the refusal is the point",
                );
            }
            value.split_whitespace().map(str::to_string).collect()
        }
    };
    if let (ServiceType::Oneshot, RestartPolicy::Always | RestartPolicy::OnSuccess) = (service_type, restart) {
        c.warning(value_span.clone(), format!("Restart={restart} is refused for Type=oneshot: systemd will not load the unit"), "use Restart=on-failure (or no), or another Type=");
    }
    ok.then(|| UnitSpec { name, exec, file, service_type, restart, location: c.location(span) })
}

/// A closed-set value (`Type=`, `Restart=`): systemd logs "Failed to parse ..., ignoring" for
/// anything else, so it is an error (or a warning with `allow_invalid_values`).
fn closed_value<T: Copy + std::fmt::Display + std::str::FromStr>(
    c: &mut Checker<'_>,
    span: Range<usize>,
    key: &str,
    text: &str,
    all: &[T],
    consequence: &str,
) -> Option<T> {
    if let Ok(v) = text.parse::<T>() {
        return Some(v);
    }
    let words: Vec<String> = all.iter().map(|v| v.to_string()).collect();
    let hint = if let Some(w) = words.iter().find(|w| w.eq_ignore_ascii_case(text)) {
        format!("systemd is case-sensitive: did you mean `{w}`?")
    } else {
        let refs: Vec<&str> = words.iter().map(String::as_str).collect();
        match directives::suggest(text, &refs) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("one of: {}", words.join(", ")),
        }
    };
    c.invalid_value(span, format!("invalid {key}= value `{text}`: systemd ignores this line and {consequence}"), hint);
    None
}

fn check_directive_name(c: &mut Checker<'_>, section: &str, key: &Spanned<String>, known: &[&str], suites: &[Suite]) {
    let k = key.as_ref().as_str();
    if section == "Service" && ["RestartSteps", "RestartMaxDelaySec", "RestartMode"].contains(&k) && suites.contains(&Suite::Bookworm) {
        c.warning(key.span(), format!("{k}= exists from systemd 254; bookworm's 252 ignores it"), "add `suites = [\"trixie\"]`, or accept that bookworm behaves as without it");
    }
    if known.contains(&k) || k.starts_with("X-") || c.allow_unknown_directives {
        return;
    }
    let ignoring = format!("systemd logs \"Unknown key name '{k}' in section '{section}', ignoring.\"");
    if section == "Service" && k == "StartLimitIntervalSec" {
        c.warning(
            key.span(),
            format!("{k}= is ignored in [Service]: {ignoring}"),
            "move it to [units.Unit] (in [Service] only the legacy StartLimitInterval= is accepted)",
        );
    } else if let Some(home) = directives::home_section(k) {
        c.warning(key.span(), format!("{k}= belongs in [{home}], not [{section}]: {ignoring}"), format!("move it to [units.{home}]"));
    } else if let Some(s) = directives::suggest(k, known) {
        c.warning(key.span(), format!("unknown directive {k}= in [{section}]: {ignoring}"), format!("did you mean `{s}`? (set `allow_unknown_directives = true` if the typo is the point)"));
    } else {
        c.warning(key.span(), format!("unknown directive {k}= in [{section}]: {ignoring}"), "check the name in systemd.directives(7), or set `allow_unknown_directives = true`");
    }
}

/// Report one problem of a unit given as text; returns false when it is fatal.
fn report_text_problem(
    c: &mut Checker<'_>,
    locate: &mut dyn FnMut(&str) -> Range<usize>,
    text: &str,
    p: &unit_text::TextProblem,
) -> bool {
    let s = locate(&text[p.span.clone()]);
    if p.fatal {
        c.error(s, p.message.clone(), "write the other units separately, or leave the section out");
        false
    } else {
        c.warning(s, p.message.clone(), "kept out of the rendered unit, as systemd would ignore it");
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_names_follow_systemd() {
        assert_eq!(unit_name("web").unwrap().as_str(), "web.service");
        assert_eq!(unit_name("web.service").unwrap().as_str(), "web.service");
        assert_eq!(unit_name("getty@tty1").unwrap().as_str(), "getty@tty1.service");
        assert!(unit_name("web server").unwrap_err().contains("` ` is not allowed"));
        assert!(unit_name("web@").unwrap_err().contains("template"));
        assert!(unit_name("web.socket").unwrap_err().contains("services only"));
        assert!(unit_name("").is_err());
        assert!(unit_name(&"a".repeat(250)).unwrap_err().contains("255"));
    }

}
