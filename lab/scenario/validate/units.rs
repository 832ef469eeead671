//! `[[units]]`: a unit given as directives (`exec` and section tables), as unit-file text, as a
//! unit file on the host (`file`), or by name only (a unit already on the target, with an
//! optional drop-in); its name, and the directive names and closed-set values systemd would
//! ignore or refuse.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::{scalar_lines, Checker};
use crate::scenario::diagnostic::SourceMap;
use crate::scenario::model::*;
use crate::scenario::raw::RawUnit;
use crate::scenario::unit_text;
use crate::systemd::directives;
use crate::systemd::{exec_line, Directive, RestartPolicy, ServiceType, Suite, UnitFile};

/// The largest unit file read from disk: a unit file is a page of text, so anything bigger
/// was named by mistake.
pub const MAX_UNIT_FILE_BYTES: u64 = 1 << 20;

/// The unit types systemd has that scenarios cannot install (only [`unit_text::UNIT_TYPES`]).
const OTHER_UNIT_TYPES: &[&str] = &["mount", "slice", "scope", "device", "swap", "automount"];

/// Normalise a unit name as written (`web` or `web.service`) and check it is a name systemd
/// accepts for a service (unit_name_is_valid(): at most 255 characters of `[A-Za-z0-9:_.\-]`,
/// one `@` for an instance).
pub(super) fn unit_name(text: &str) -> Result<UnitName, String> {
    let full = if text.ends_with(".service") { text.to_string() } else { format!("{text}.service") };
    if let Some((_, suffix)) = text.rsplit_once('.') {
        if !text.ends_with(".service") && (OTHER_UNIT_TYPES.contains(&suffix) || unit_text::sections_of(suffix).is_some()) {
            return Err(format!("`{text}` is a .{suffix} unit; `exec` and `text` define services only (install other types with `file`)"));
        }
    }
    let stem = full.strip_suffix(".service").unwrap_or(&full);
    check_stem(stem, &full)?;
    Ok(UnitName(full))
}

/// A unit name of any type a scenario can install or name (`app.socket`, `nginx`,
/// `web.service`); a name without a known type suffix is a service, as in [`unit_name`].
pub(super) fn any_unit_name(text: &str) -> Result<UnitName, String> {
    match text.rsplit_once('.') {
        Some((stem, suffix)) if suffix != "service" && unit_text::sections_of(suffix).is_some() => {
            check_stem(stem, text)?;
            Ok(UnitName(text.to_string()))
        }
        Some((_, suffix)) if OTHER_UNIT_TYPES.contains(&suffix) => {
            let types: Vec<&str> = unit_text::UNIT_TYPES.iter().map(|(t, _)| *t).collect();
            Err(format!("`{text}` is a .{suffix} unit; scenarios handle .{} units", types.join(", .")))
        }
        _ => unit_name(text),
    }
}

fn check_stem(stem: &str, full: &str) -> Result<(), String> {
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
    Ok(())
}

/// The unit type of a full name (`socket` for `app.socket`).
fn unit_type(name: &UnitName) -> &str {
    name.as_str().rsplit_once('.').map_or("service", |(_, t)| t)
}

pub(super) fn check_units(c: &mut Checker<'_>, units: &[(Range<usize>, RawUnit)], suites: &[Suite]) -> Vec<(Range<usize>, UnitSpec)> {
    let mut out: Vec<(Range<usize>, UnitSpec)> = Vec::new();
    let mut seen: Vec<UnitName> = Vec::new();
    for (span, u) in units {
        if let Some(file) = &u.file {
            if let Some(spec) = check_unit_file(c, span, u, file, suites) {
                if seen.contains(&spec.name) {
                    c.error(file.span(), format!("unit `{}` is defined twice", spec.name), "give each [[units]] entry its own name");
                } else {
                    seen.push(spec.name.clone());
                    out.push((span.clone(), spec));
                }
            }
            continue;
        }
        let Some(written) = &u.name else {
            c.error(span.clone(), "missing field `name`", "add `name = \"...\"`, or `file = \"units/NAME.service\"` to install a unit file");
            continue;
        };
        // Only a unit already on the target may be of another type than a service.
        let installed = u.exec.is_none() && u.text.is_none();
        let named = if installed { any_unit_name(written.as_ref()) } else { unit_name(written.as_ref()) };
        let name = match named {
            Ok(n) => n,
            Err(e) => {
                c.error(written.span(), format!("invalid unit name `{}`: {e}", written.as_ref()), "name the service like `web` or `web.service`");
                continue;
            }
        };
        if seen.contains(&name) {
            c.error(written.span(), format!("unit `{name}` is defined twice"), "give each [[units]] entry its own name");
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
            if let Some(spec) = check_installed(c, span, u, name, suites) {
                out.push((span.clone(), spec));
            }
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
        let Some(mut sections) = check_sections(c, u, suites, false) else { continue };
        sections.file.service.insert(0, Directive::new("ExecStart", exec_line(&argv)));
        if ok {
            let location = c.location(span);
            let Sections { file, service_type, restart } = sections;
            out.push((span.clone(), UnitSpec { name, origin: UnitOrigin::Rendered, exec: argv, file, service_type, restart, location }));
        }
    }
    out
}

/// The directives of an entry's section tables, checked.
struct Sections {
    file: UnitFile,
    service_type: ServiceType,
    restart: RestartPolicy,
}

/// Check `[units.Unit]`, `[units.Service]` and `[units.Install]`; `None` when one is unusable.
/// `ExecStart` belongs in `exec`, except in a drop-in (`drop_in`), where resetting and
/// replacing a packaged unit's command (`ExecStart = ["", "/usr/sbin/x -d"]`) is what one does.
fn check_sections(c: &mut Checker<'_>, u: &RawUnit, suites: &[Suite], drop_in: bool) -> Option<Sections> {
    let mut ok = true;
    let mut file = UnitFile::default();
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
            if section_name == "Service" && k == "ExecStart" && !drop_in {
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
                        // Measured: 252 does not know it, 254 does (NEWS: 253).
                        if t == ServiceType::NotifyReload {
                            let older = Suite::older_than(suites, 254);
                            if !older.is_empty() {
                                c.warning(
                                    vspan.clone(),
                                    format!("Type=notify-reload needs systemd 253+; {}", too_old(&older)),
                                    suites_hint(suites, 254),
                                );
                            }
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
    // A drop-in cannot tell: the packaged unit's own Type= is not known here.
    if let (false, ServiceType::Oneshot, Some((span, r @ (RestartPolicy::Always | RestartPolicy::OnSuccess)))) = (drop_in, service_type, &restart_span) {
        c.invalid_value(
            span.clone(),
            format!("Restart={r} is refused for Type=oneshot: systemd will not load the unit"),
            "use Restart=on-failure (or no), or another Type=",
        );
    }
    ok.then_some(Sections { file, service_type, restart })
}

/// A `[[units]]` entry with only `name` (and section tables): a unit already on the target,
/// from the image or a package. The lab cannot see its file here, so only the drop-in's own
/// directives are checked; `Type`/`Restart` read from them are what the drop-in sets.
fn check_installed(c: &mut Checker<'_>, span: &Range<usize>, u: &RawUnit, name: UnitName, suites: &[Suite]) -> Option<UnitSpec> {
    let kind = unit_type(&name).to_string();
    if kind != "service" {
        if let Some(service) = &u.service {
            c.error(
                service.span(),
                format!("[units.Service] in a drop-in for `{name}`: a .{kind} unit has no [Service] section"),
                "give [units.Unit] or [units.Install] only, or change the service the unit activates under its own name",
            );
            return None;
        }
    }
    let sections = check_sections(c, u, suites, true)?;
    let Sections { file, service_type, restart } = sections;
    Some(UnitSpec { name, origin: UnitOrigin::Installed, exec: Vec::new(), file, service_type, restart, location: c.location(span) })
}

/// The directory scenario-relative paths start from: the scenario file's own.
pub(super) fn scenario_dir(map: &SourceMap<'_>) -> PathBuf {
    match map.path().parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A `[[units]]` entry with `file`: the unit file is read here, at validation, so a missing
/// or unreadable one stops the run before any container starts, and what is installed is
/// exactly what was checked. Its directives get the same warnings as `text` (systemd's
/// reactions, shown at the file's own line:col), and it is installed under its own name.
fn check_unit_file(c: &mut Checker<'_>, span: &Range<usize>, u: &RawUnit, file: &Spanned<String>, suites: &[Suite]) -> Option<UnitSpec> {
    let mut ok = true;
    for (present, key) in [(u.exec.is_some(), "exec"), (u.text.is_some(), "text"), (u.unit.is_some(), "Unit"), (u.service.is_some(), "Service"), (u.install.is_some(), "Install")] {
        if present {
            c.error(
                file.span(),
                format!("`file` and `{key}` in one [[units]] entry"),
                "the file is installed as written: change it there (a drop-in on a unit already on the target is `name` with section tables)",
            );
            ok = false;
        }
    }
    let written = file.as_ref();
    let relative = Path::new(written);
    if written.is_empty() || relative.is_absolute() {
        c.error(file.span(), format!("unit file path `{written}` is not relative"), "name the file relative to the scenario file, e.g. \"units/app.service\"");
        return None;
    }
    let file_name = relative.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let name = match any_unit_name(file_name) {
        Ok(n) if n.as_str() == file_name => n,
        Ok(_) => {
            let types: Vec<&str> = unit_text::UNIT_TYPES.iter().map(|(t, _)| *t).collect();
            c.error(file.span(), format!("file name `{file_name}` is not a unit name: the unit is installed under it"), format!("name the file after its unit, ending in .{}", types.join(", .")));
            return None;
        }
        Err(e) => {
            c.error(file.span(), format!("file name `{file_name}` is not a unit name: {e}"), "the unit is installed under the file's name: rename the file");
            return None;
        }
    };
    if let Some(n) = &u.name {
        if any_unit_name(n.as_ref()).ok().as_ref() != Some(&name) {
            c.error(n.span(), format!("`name` is `{}` but the file installs `{name}`", n.as_ref()), "leave `name` out: a unit file is installed under its own file name");
            ok = false;
        }
    }
    let host = scenario_dir(c.map).join(relative);
    let text = match read_unit_file(&host) {
        Ok(t) => t,
        Err(why) => {
            c.error(file.span(), format!("cannot read unit file `{}`: {why}", host.display()), "the path is relative to the scenario file; check it exists and is readable");
            return None;
        }
    };
    let kind = unit_type(&name);
    let sections = unit_text::sections_of(kind).expect("any_unit_name accepts known types only");
    let (lines, problems) = unit_text::parse_unit_text_in(&text, sections, false);
    // systemd's reactions belong to the unit file's own lines, so they are reported there.
    let unit_map = SourceMap::new(&host, &text);
    let mut inner = Checker {
        map: &unit_map,
        diags: Vec::new(),
        allow_unknown_directives: c.allow_unknown_directives,
        allow_invalid_values: c.allow_invalid_values,
        broken_units: Vec::new(),
    };
    let checked = check_text_lines(&mut inner, &text, 0..text.len(), &mut |_, span| span, &lines, problems, kind == "service", true, suites);
    c.diags.extend(inner.diags);
    let checked = checked?;
    ok.then(|| UnitSpec {
        name,
        origin: UnitOrigin::File { source: host, text },
        exec: checked.exec,
        file: checked.file,
        service_type: checked.service_type,
        restart: checked.restart,
        location: c.location(span),
    })
}

/// A unit file's text: a regular file of at most [`MAX_UNIT_FILE_BYTES`], UTF-8.
fn read_unit_file(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("it is not a regular file".into());
    }
    if meta.len() > MAX_UNIT_FILE_BYTES {
        return Err(format!("it is {} bytes, over the limit of {MAX_UNIT_FILE_BYTES} for a unit file", meta.len()));
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| format!("it is not UTF-8 (first bad byte at offset {})", e.utf8_error().valid_up_to()))
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
    let mut locate = |needle: &str, _: Range<usize>| -> Range<usize> {
        match source[search_from.min(source.len())..].find(needle) {
            Some(i) if !needle.is_empty() => {
                let start = search_from + i;
                search_from = start + needle.len();
                value_span.start + start..value_span.start + start + needle.len()
            }
            _ => value_span.clone(),
        }
    };
    let checked = check_text_lines(c, text.as_ref(), value_span.clone(), &mut locate, &lines, problems, true, false, &[]);
    let checked = checked?;
    ok.then(|| UnitSpec {
        name,
        origin: UnitOrigin::Rendered,
        exec: checked.exec,
        file: checked.file,
        service_type: checked.service_type,
        restart: checked.restart,
        location: c.location(span),
    })
}

/// What the lab reads from a unit's text: its `[Unit]`/`[Service]`/`[Install]` directives
/// (for the windows derived from its timers), Type=, Restart= and the ExecStart= words.
struct TextChecked {
    file: UnitFile,
    service_type: ServiceType,
    restart: RestartPolicy,
    exec: Vec<String>,
}

/// The checks shared by `text` and `file` units: every problem of the text and every
/// directive systemd would ignore or refuse is a warning (a fatal problem an error).
/// `locate(written, span in the text)` gives the span to report at; `value_span` stands for
/// the whole text. Service-only checks (Type=, Restart=, ExecStart=) run when `service`.
#[allow(clippy::too_many_arguments)]
fn check_text_lines(
    c: &mut Checker<'_>,
    text: &str,
    value_span: Range<usize>,
    locate: &mut dyn FnMut(&str, Range<usize>) -> Range<usize>,
    lines: &[unit_text::TextLine],
    problems: Vec<unit_text::TextProblem>,
    service: bool,
    verbatim: bool,
    suites: &[Suite],
) -> Option<TextChecked> {
    let mut ok = true;
    let mut problems = problems.into_iter().peekable();
    let allow_invalid = std::mem::replace(&mut c.allow_invalid_values, true);
    let mut file = UnitFile::default();
    let mut service_type = ServiceType::Simple;
    let mut restart = RestartPolicy::No;
    let mut exec_start: Option<(Range<usize>, String)> = None;
    for line in lines {
        // Problems before this line, in text order, so the lookup moves forward only.
        while let Some(p) = problems.next_if(|p| p.span.start < line.key_span.start) {
            ok &= report_text_problem(c, locate, text, &p, verbatim);
        }
        let key_span = locate(&line.key, line.key_span.clone());
        let key = Spanned::new(key_span.clone(), line.key.clone());
        let known = match line.section.as_str() {
            "Unit" => directives::UNIT,
            "Service" => directives::SERVICE,
            "Install" => directives::INSTALL,
            // [Socket], [Timer], [Path] and X- sections: no list of names here; systemd-analyze
            // verify reports what it does not know.
            _ => continue,
        };
        check_directive_name(c, &line.section, &key, known, suites);
        if line.section == "Service" && service {
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
        ok &= report_text_problem(c, locate, text, &p, verbatim);
    }
    c.allow_invalid_values = allow_invalid;
    let exec: Vec<String> = match &exec_start {
        None if service => {
            c.warning(value_span.clone(), "no ExecStart= in [Service]: systemd refuses to start a service without one", "add ExecStart=, unless the refusal is the point");
            Vec::new()
        }
        None => Vec::new(),
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
    ok.then_some(TextChecked { file, service_type, restart, exec })
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

/// "bookworm's 252 ignores it" or "bullseye's 247 and bookworm's 252 ignore it".
fn too_old(suites: &[Suite]) -> String {
    let who = suites.iter().map(|s| format!("{}'s {}", s.name(), s.systemd())).collect::<Vec<_>>().join(" and ");
    format!("{who} {}", if suites.len() == 1 { "ignores it" } else { "ignore it" })
}

/// The `suites = [...]` line that keeps the scenario's suites whose systemd is `since` or newer
/// (all of the lab's newer suites when none of the scenario's is).
fn suites_hint(suites: &[Suite], since: u32) -> String {
    let mut keep: Vec<Suite> = suites.iter().copied().filter(|s| s.systemd() >= since).collect();
    if keep.is_empty() {
        keep = Suite::ALL.iter().copied().filter(|s| s.systemd() >= since).collect();
    }
    format!("add `suites = [{}]`", keep.iter().map(|s| format!("\"{}\"", s.name())).collect::<Vec<_>>().join(", "))
}

fn check_directive_name(c: &mut Checker<'_>, section: &str, key: &Spanned<String>, known: &[&str], suites: &[Suite]) {
    let k = key.as_ref().as_str();
    if let Some(since) = directives::first_known(section, k) {
        let older = Suite::older_than(suites, since);
        if !older.is_empty() {
            c.warning(
                key.span(),
                format!("{k}= exists from systemd {since} among the lab's suites; {}", too_old(&older)),
                format!("{}, or accept that {} behaves as without it", suites_hint(suites, since), older.iter().map(|s| s.name()).collect::<Vec<_>>().join(" and ")),
            );
        }
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
fn report_text_problem(c: &mut Checker<'_>, locate: &mut dyn FnMut(&str, Range<usize>) -> Range<usize>, text: &str, p: &unit_text::TextProblem, verbatim: bool) -> bool {
    let s = locate(&text[p.span.clone()], p.span.clone());
    if p.fatal {
        c.error(s, p.message.clone(), "write the other units separately, or leave the section out");
        false
    } else {
        let hint = if verbatim { "installed as written; systemd ignores it" } else { "kept out of the rendered unit, as systemd would ignore it" };
        c.warning(s, p.message.clone(), hint);
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
        assert!(unit_name("app.socket").unwrap_err().contains("install other types with `file`"));
        assert_eq!(any_unit_name("app.socket").unwrap().as_str(), "app.socket");
        assert_eq!(any_unit_name("nginx").unwrap().as_str(), "nginx.service");
        assert!(any_unit_name("data.mount").unwrap_err().contains(".mount unit"));
        assert!(any_unit_name("bad name.timer").is_err());
    }

    type Loaded = Result<(Scenario, Vec<crate::scenario::Diagnostic>), Vec<crate::scenario::Diagnostic>>;

    /// A scenario file in a fresh directory with the given files beside it.
    fn scenario_with(files: &[(&str, &str)], toml: &str) -> (tempfile::TempDir, Loaded) {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let path = dir.path().join("s.toml");
        std::fs::write(&path, toml).unwrap();
        let loaded = crate::scenario::load_file(&path);
        (dir, loaded)
    }

    const SOCKET: &str = "[Socket]\nListenStream=127.0.0.1:8089\n";
    const SERVICE: &str = "[Service]\nType=notify\nRestart=on-failure\nRestartSec=2s\nExecStart=/usr/local/bin/buggy-server --listen 0.0.0.0:8089\n";

    #[test]
    fn unit_files_are_kept_verbatim_under_their_own_names() {
        let toml = "name = \"s\"\n[[units]]\nfile = \"units/app.socket\"\n[[units]]\nfile = \"units/app.service\"\n[[steps]]\ndo = \"start\"\nunit = \"app.socket\"\n[[steps]]\ndo = \"expect-no-restart\"\nunit = \"app\"\n";
        let (_dir, loaded) = scenario_with(&[("units/app.socket", SOCKET), ("units/app.service", SERVICE)], toml);
        let (s, warnings) = loaded.unwrap_or_else(|d| panic!("{d:?}"));
        assert!(warnings.is_empty(), "{warnings:?}");
        let (socket, service) = (&s.units()[0], &s.units()[1]);
        assert_eq!(socket.name.as_str(), "app.socket");
        assert!(matches!(&socket.origin, UnitOrigin::File { text, .. } if text == SOCKET));
        assert_eq!((service.service_type, service.restart), (ServiceType::Notify, RestartPolicy::OnFailure));
        assert_eq!(service.exec[2], "0.0.0.0:8089", "ExecStart's words, for the port the unit claims");
        assert_eq!(service.file.service_value("RestartSec"), Some("2s"), "the derived windows read the file's timers");
        let installs = s.unit_installs(|n| format!("s.{n}"));
        let got: Vec<(&str, &str, &str)> = installs.iter().map(|i| (i.unit.as_str(), i.path.as_str(), i.text.as_str())).collect();
        assert_eq!(got, [("app.socket", "/etc/systemd/system/app.socket", SOCKET), ("app.service", "/etc/systemd/system/app.service", SERVICE)]);
        assert!(!s.needs_pristine_target(), "units from files share targets, by claim");
    }

    #[test]
    fn a_named_unit_gets_a_drop_in_and_a_target_of_its_own() {
        let toml = "name = \"s\"\n[[units]]\nname = \"nginx\"\n[units.Service]\nRestart = \"on-failure\"\nExecStart = [\"\", \"/usr/sbin/nginx -g 'daemon off;'\"]\n[[units]]\nname = \"ssh.socket\"\n[[steps]]\ndo = \"start\"\nunit = \"nginx\"\n";
        let (_dir, loaded) = scenario_with(&[], toml);
        let (s, _) = loaded.unwrap_or_else(|d| panic!("{d:?}"));
        assert_eq!(s.units()[0].origin, UnitOrigin::Installed);
        assert_eq!(s.units()[0].restart, RestartPolicy::OnFailure);
        assert!(s.needs_pristine_target(), "an installed unit cannot be renamed apart from other scenarios");
        let installs = s.unit_installs(|n| format!("s.{n}"));
        assert_eq!(installs.len(), 1, "ssh.socket has no table: nothing to write");
        assert_eq!(installs[0].path, "/etc/systemd/system/nginx.service.d/unitlab.conf");
        assert_eq!(installs[0].text, "[Service]\nRestart=on-failure\nExecStart=\nExecStart=/usr/sbin/nginx -g 'daemon off;'\n");
    }

    #[test]
    fn file_sources_are_read_at_validation() {
        use std::os::unix::fs::PermissionsExt;
        let toml = "name = \"s\"\n[[files]]\npath = \"/opt/app\"\nsource = \"bin\"\n[[files]]\npath = \"/usr/local/bin/one\"\nsource = \"bin/run\"\nmode = 0o700\n[[units]]\nname = \"web\"\nexec = [\"/opt/app/run\"]\n[[steps]]\ndo = \"start\"\nunit = \"web\"\n";
        let (dir, _) = scenario_with(&[("bin/run", "#!/bin/sh\n"), ("bin/etc/conf", "a=1\n")], "");
        std::fs::set_permissions(dir.path().join("bin/run"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(&path, toml).unwrap();
        let (s, _) = crate::scenario::load_file(&path).unwrap_or_else(|d| panic!("{d:?}"));
        let got: Vec<(String, &[u8], u32)> = s.files.iter().map(|f| (f.path.display().to_string(), f.content.as_slice(), f.mode)).collect();
        assert_eq!(
            got,
            [
                ("/opt/app/etc/conf".to_string(), &b"a=1\n"[..], 0o644),
                ("/opt/app/run".to_string(), &b"#!/bin/sh\n"[..], 0o755),
                ("/usr/local/bin/one".to_string(), &b"#!/bin/sh\n"[..], 0o700),
            ]
        );
    }

}
