//! Second parsing step: raw structs -> the checked [`Scenario`], collecting every error and
//! warning of the file. Errors are things that make the scenario meaningless (a step naming a
//! unit that does not exist, a relative program path, a bad duration); warnings are things
//! systemd itself would only log and ignore (a misspelt directive), which a lab scenario may
//! want to show happening.

use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::diagnostic::{Diagnostic, Severity, SourceMap};
use crate::systemd::directives;
use crate::systemd::{parse_duration, parse_timespan};
use super::model::*;
use super::unit_text;
use super::raw::{DirectiveValue, RawFile, RawScenario, RawStep, RawUnit, Scalar, Section};
use crate::systemd::derive_no_restart_window;
use crate::systemd::Suite;
use crate::systemd::unit::{exec_line, Directive, UnitFile};

/// Deadline of a wait step without `within`.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);
/// Timeout of a probe without `timeout`.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// buggy-server's default listening port, used by `fault` steps without `port`.
pub const DEFAULT_CONTROL_PORT: u16 = 8080;

/// Step kinds: (`do` word, keys it accepts besides `do`, keys it requires).
const STEP_KINDS: &[(&str, &[&str], &[&str])] = &[
    ("start", &["unit"], &["unit"]),
    ("stop", &["unit"], &["unit"]),
    ("restart", &["unit"], &["unit"]),
    ("kill", &["unit", "signal", "whom"], &["unit"]),
    ("signal", &["unit", "signal"], &["unit", "signal"]),
    ("freeze", &["unit"], &["unit"]),
    ("thaw", &["unit"], &["unit"]),
    ("pause", &["duration"], &["duration"]),
    ("fault", &["unit", "kind", "part", "code", "signal", "after", "port"], &["unit", "kind"]),
    ("wait-state", &["unit", "active", "sub", "within"], &["unit"]),
    ("wait-journal", &["unit", "contains", "matches", "within"], &[]),
    ("wait-http", &["port", "path", "status", "within"], &["port"]),
    ("expect", &["unit", "active", "sub", "result", "n_restarts", "exit_code", "exit_signal", "core_dumped"], &["unit"]),
    ("probe", &["port", "path", "expect", "timeout"], &["port"]),
    ("expect-restart", &["unit", "within"], &["unit", "within"]),
    ("expect-no-restart", &["unit", "window"], &["unit"]),
    ("expect-recovery", &["unit", "within", "port", "path"], &["unit", "within"]),
    ("expect-journal", &["unit", "contains", "not_contains", "matches", "not_matches"], &[]),
];

struct Checker<'a> {
    map: &'a SourceMap<'a>,
    diags: Vec<Diagnostic>,
    allow_unknown_directives: bool,
    allow_invalid_values: bool,
    /// Names written in `[[units]]`, valid or not: a reference to a unit that failed
    /// validation is not reported again (the unit's own error says what to fix).
    broken_units: Vec<String>,
}

impl Checker<'_> {
    fn error(&mut self, span: Range<usize>, message: impl Into<String>, hint: impl Into<String>) {
        let d = self.map.error(span, message).with_hint(hint);
        self.diags.push(d);
    }

    fn warning(&mut self, span: Range<usize>, message: impl Into<String>, hint: impl Into<String>) {
        let d = self.map.warning(span, message).with_hint(hint);
        self.diags.push(d);
    }

    /// Values systemd would refuse or ignore: errors, unless the scenario opted to show them.
    fn invalid_value(&mut self, span: Range<usize>, message: impl Into<String>, hint: impl Into<String>) {
        let severity = if self.allow_invalid_values { Severity::Warning } else { Severity::Error };
        let d = self.map.diagnostic(severity, span, message).with_hint(hint);
        self.diags.push(d);
    }

    fn location(&self, span: &Range<usize>) -> Location {
        let (line, col) = self.map.position(span.start);
        Location { path: self.map.path().to_path_buf(), line, col }
    }

    fn duration(&mut self, value: &Spanned<String>) -> Option<Duration> {
        match parse_duration(value.as_ref()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(
                    value.span(),
                    format!("invalid duration `{}`: {e}", value.as_ref()),
                    "write a systemd time span such as \"250ms\", \"5s\", \"1.5s\" or \"1min\"",
                );
                None
            }
        }
    }

    fn opt_duration(&mut self, value: &Option<Spanned<String>>, default: Duration) -> Option<Duration> {
        match value {
            Some(v) => self.duration(v),
            None => Some(default),
        }
    }

    fn port(&mut self, value: &Spanned<i64>) -> Option<u16> {
        match u16::try_from(*value.as_ref()) {
            Ok(p) if p > 0 => Some(p),
            _ => {
                self.error(value.span(), format!("invalid port {}", value.as_ref()), "a TCP port is 1..=65535");
                None
            }
        }
    }

    fn status(&mut self, value: &Spanned<i64>) -> Option<u16> {
        match u16::try_from(*value.as_ref()) {
            Ok(s) if (100..=599).contains(&s) => Some(s),
            _ => {
                self.error(
                    value.span(),
                    format!("invalid HTTP status {}", value.as_ref()),
                    "an HTTP status is 100..=599 (buggy-server answers 200, 202, 400, 404, 405, 503)",
                );
                None
            }
        }
    }

    fn signal(&mut self, value: &Spanned<Scalar>) -> Option<Signal> {
        let parsed = match value.as_ref() {
            Scalar::Str(s) => Signal::parse(s),
            Scalar::Int(n) => i32::try_from(*n)
                .ok()
                .and_then(Signal::from_number)
                .ok_or_else(|| format!("signal number {n} is out of range 1..=64")),
            _ => Err("a signal is a name (\"SIGTERM\", \"TERM\") or a number".to_string()),
        };
        match parsed {
            Ok(s) => Some(s),
            Err(e) => {
                let hint = match value.as_ref() {
                    Scalar::Str(s) => Signal::suggest(s).map(|s| format!("did you mean `{s}`?")),
                    _ => None,
                }
                .unwrap_or_else(|| "write a signal name such as \"SIGTERM\", \"KILL\" or \"SIGRTMIN+3\", or a number".into());
                self.error(value.span(), format!("invalid signal: {e}"), hint);
                None
            }
        }
    }

    fn word<T: std::str::FromStr + Copy + std::fmt::Display>(
        &mut self,
        value: &Spanned<String>,
        what: &str,
        all: &[T],
    ) -> Option<T> {
        if let Ok(v) = value.as_ref().parse::<T>() {
            return Some(v);
        }
        let words: Vec<String> = all.iter().map(|v| v.to_string()).collect();
        let refs: Vec<&str> = words.iter().map(String::as_str).collect();
        let hint = match directives::suggest(value.as_ref(), &refs) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("one of: {}", words.join(", ")),
        };
        self.error(value.span(), format!("unknown {what} `{}`", value.as_ref()), hint);
        None
    }

    fn regex(&mut self, value: &Spanned<String>) -> Option<regex::Regex> {
        match regex::Regex::new(value.as_ref()) {
            Ok(r) => Some(r),
            Err(e) => {
                let detail = e.to_string();
                let last = detail.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
                let last = last.trim_start_matches("error: ").to_string();
                self.error(value.span(), format!("invalid regular expression: {last}"), "Rust `regex` syntax; use `contains` for a plain substring");
                None
            }
        }
    }
}

/// Check a raw scenario. Returns the scenario when there is no error, and all diagnostics
/// (warnings included) in file order.
pub fn validate(map: &SourceMap<'_>, raw: RawScenario) -> (Option<Scenario>, Vec<Diagnostic>) {
    let mut c = Checker {
        map,
        diags: Vec::new(),
        allow_unknown_directives: raw.allow_unknown_directives.as_ref().is_some_and(|b| *b.as_ref()),
        allow_invalid_values: raw.allow_invalid_values.as_ref().is_some_and(|b| *b.as_ref()),
        // Valid units resolve first, so every name written may be listed here.
        broken_units: raw.unit_names.clone(),
    };

    let name = match &raw.name {
        None => {
            c.error(0..0, "missing top-level key `name`", "add `name = \"my-scenario\"` at the top of the file");
            None
        }
        Some(n) => {
            let s = n.as_ref();
            let ok = !s.is_empty()
                && s.len() <= 64
                && s.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-' || ch == '_');
            if !ok {
                c.error(n.span(), format!("invalid scenario name `{s}`"), "1 to 64 characters of a-z, 0-9, `-` and `_` (it namespaces unit names)");
            }
            ok.then(|| s.clone())
        }
    };
    let description = raw.description.as_ref().map(|d| d.as_ref().clone()).unwrap_or_default();

    let suites = match &raw.suites {
        None => Suite::ALL.to_vec(),
        Some(list) => {
            if list.as_ref().is_empty() {
                c.error(list.span(), "`suites` is empty", "leave `suites` out to run on bookworm and trixie, or name at least one");
            }
            let mut out = Vec::new();
            for s in list.as_ref() {
                match s.as_ref().parse::<Suite>() {
                    Ok(suite) if out.contains(&suite) => {
                        c.error(s.span(), format!("suite `{suite}` is listed twice"), "name each suite once");
                    }
                    Ok(suite) => out.push(suite),
                    Err(e) => c.error(s.span(), e, "bookworm (systemd 252) or trixie (systemd 257)"),
                }
            }
            out
        }
    };

    let manager = check_manager(&mut c, raw.manager.as_ref());
    if let (Some(shared), false) = (&raw.shared_target, manager.is_empty()) {
        if *shared.as_ref() {
            c.warning(
                shared.span(),
                "`shared_target = true` is overridden: [manager] settings need a pristine target",
                "remove `shared_target`, or the [manager] table if the scenario should share a target",
            );
        }
    }

    let files = check_files(&mut c, &raw.files);
    let units = check_units(&mut c, &raw.units, &suites);
    let steps = check_steps(&mut c, &raw, &units, &manager);

    let mut diags = c.diags;
    diags.sort_by_key(|d| (d.line, d.col));
    if super::diagnostic::has_errors(&diags) {
        return (None, diags);
    }
    let scenario = Scenario {
        path: map.path().to_path_buf(),
        name: name.expect("no error means a name"),
        description,
        suites,
        shared_target: raw.shared_target.is_none_or(|s| s.into_inner()),
        snapshot: raw.snapshot.is_some_and(|s| s.into_inner()),
        manager,
        files,
        units: units.into_iter().map(|(_, u)| u).collect(),
        steps,
    };
    (Some(scenario), diags)
}

fn scalar_lines(c: &mut Checker<'_>, value: &Spanned<DirectiveValue>) -> Vec<(Range<usize>, Scalar)> {
    match value.as_ref() {
        DirectiveValue::One(s) => vec![(value.span(), s.clone())],
        DirectiveValue::Many(items) => {
            if items.is_empty() {
                c.error(value.span(), "an empty array renders no line", "write \"\" for an empty assignment (which resets the directive)");
            }
            items.iter().map(|s| (s.span(), s.as_ref().clone())).collect()
        }
    }
}

fn check_manager(c: &mut Checker<'_>, section: Option<&Spanned<Section>>) -> ManagerSettings {
    let mut out = ManagerSettings::default();
    let Some(section) = section else { return out };
    for (key, value) in &section.as_ref().0 {
        let k = key.as_ref();
        if !directives::MANAGER.contains(&k.as_str()) && !c.allow_unknown_directives {
            let hint = match directives::suggest(k, directives::MANAGER) {
                Some(s) => format!("did you mean `{s}`? (systemd ignores unknown [Manager] keys)"),
                None => "systemd ignores unknown [Manager] keys; set `allow_unknown_directives = true` to keep it quietly".into(),
            };
            c.warning(key.span(), format!("unknown [Manager] setting `{k}`"), hint);
        }
        for (span, scalar) in scalar_lines(c, value) {
            let text = scalar.render();
            if k.ends_with("Sec") && !text.is_empty() && parse_timespan(&text).is_err() {
                c.invalid_value(span.clone(), format!("invalid time span `{text}` for {k}="), "systemd ignores it: write e.g. \"5s\" or \"250ms\"");
            }
            out.directives.push(Directive::new(k.clone(), text));
        }
    }
    out
}

fn check_files(c: &mut Checker<'_>, files: &[(Range<usize>, RawFile)]) -> Vec<ExtraFile> {
    let mut out: Vec<ExtraFile> = Vec::new();
    for (_, f) in files {
        let path = PathBuf::from(f.path.as_ref());
        if !path.is_absolute() {
            c.error(f.path.span(), format!("file path `{}` is not absolute", f.path.as_ref()), "write the full path inside the target, e.g. \"/etc/buggy/config\"");
            continue;
        }
        if out.iter().any(|o| o.path == path) {
            c.error(f.path.span(), format!("file `{}` is given twice", path.display()), "merge the two entries");
            continue;
        }
        let mode = match &f.mode {
            None => Some(0o644),
            Some(m) => {
                let parsed = match m.as_ref() {
                    Scalar::Str(s) => u32::from_str_radix(s.trim_start_matches("0o"), 8).ok(),
                    Scalar::Int(i) => u32::try_from(*i).ok(),
                    _ => None,
                };
                match parsed.filter(|m| *m <= 0o7777) {
                    Some(m) => Some(m),
                    None => {
                        c.error(m.span(), "invalid file mode", "an octal string such as \"0755\", or a TOML octal integer 0o755");
                        None
                    }
                }
            }
        };
        if let Some(mode) = mode {
            out.push(ExtraFile { path, content: f.content.as_ref().clone(), mode });
        }
    }
    out
}

/// Normalise a unit name as written (`web` or `web.service`) and check it is a name systemd
/// accepts for a service (unit_name_is_valid(): at most 255 characters of `[A-Za-z0-9:_.\-]`,
/// one `@` for an instance).
fn unit_name(text: &str) -> Result<UnitName, String> {
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

fn check_units(c: &mut Checker<'_>, units: &[(Range<usize>, RawUnit)], suites: &[Suite]) -> Vec<(Range<usize>, UnitSpec)> {
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

fn check_steps(
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
    for (span, s) in &raw.steps {
        if let Some(kind) = check_step(c, span, s, units, manager, last_fault) {
            let location = c.location(&s.action.as_ref().map_or(span.clone(), |a| a.span()));
            if matches!(kind, StepKind::Fault(_)) {
                last_fault = Some(steps.len());
            }
            steps.push(Step { location, kind });
        } else if s.action.as_ref().and_then(|a| fault_word(a.as_ref())).is_some() {
            // A broken fault step still counts as "a fault before", so that the steps after it
            // do not get a second, misleading error.
            last_fault = Some(steps.len());
        }
    }
    steps
}

fn fault_word(w: &str) -> Option<&str> {
    ["fault", "signal", "freeze", "thaw", "pause", "stop", "restart", "kill"].contains(&w).then_some(w)
}

fn resolve(c: &mut Checker<'_>, value: &Spanned<String>, units: &[(Range<usize>, UnitSpec)]) -> Option<UnitName> {
    let written = value.as_ref();
    if let Ok(name) = unit_name(written) {
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
                "add a fault step (fault, signal, kill, stop, restart, freeze, pause) before it",
            );
        }
        last_fault
    };
    let kind = match word {
        "start" => StepKind::Start { unit: need_unit() },
        "stop" => StepKind::Fault(Fault::Stop { unit: need_unit() }),
        "restart" => StepKind::Fault(Fault::Restart { unit: need_unit() }),
        "kill" => {
            let signal = match &s.signal {
                Some(sig) => c.signal(sig)?,
                None => Signal::TERM,
            };
            let whom = match &s.whom {
                None => KillWhom::All,
                Some(w) => match w.as_ref().as_str() {
                    "all" => KillWhom::All,
                    "main" => KillWhom::Main,
                    "control" => KillWhom::Control,
                    other => {
                        c.error(w.span(), format!("unknown `whom = \"{other}\"`"), "one of: all, main, control (systemctl kill --kill-whom=)");
                        return None;
                    }
                },
            };
            StepKind::Fault(Fault::Kill { unit: need_unit(), signal, whom })
        }
        "signal" => StepKind::Fault(Fault::Signal { unit: need_unit(), signal: c.signal(s.signal.as_ref()?)? }),
        "freeze" => StepKind::Fault(Fault::Freeze { unit: need_unit() }),
        "thaw" => StepKind::Fault(Fault::Thaw { unit: need_unit() }),
        "pause" => StepKind::Fault(Fault::PauseTarget { duration: c.duration(s.duration.as_ref()?)? }),
        "fault" => StepKind::Fault(check_control_fault(c, s, need_unit())?),
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
                    let spec = &units.iter().find(|(_, u)| u.name == unit).expect("resolved").1;
                    let d = derive_no_restart_window(&spec.file, manager);
                    (d.window, WindowSource::Derived(d.to_string()))
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
        Some(p) if p.as_ref().starts_with('/') && !p.as_ref().chars().any(char::is_whitespace) => Some(p.as_ref().clone()),
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

fn check_control_fault(c: &mut Checker<'_>, s: &RawStep, unit: UnitName) -> Option<Fault> {
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
    let port = match &s.port { Some(p) => c.port(p)?, None => DEFAULT_CONTROL_PORT };
    let after = match &s.after { Some(a) => Some(c.duration(a)?), None => None };
    Some(Fault::Control { unit, port, fault, after })
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
