//! Second parsing step: raw structs -> the checked [`Scenario`], collecting every error and
//! warning of the file. Errors are things that make the scenario meaningless (a step naming a
//! unit that does not exist, a relative program path, a bad duration); warnings are things
//! systemd itself would only log and ignore (a misspelt directive), which a lab scenario may
//! want to show happening. `units` checks `[[units]]` (directives or unit-file text), `steps`
//! checks `[[steps]]`; the top level, `[manager]` and `[[files]]` are checked here.

mod resources;
mod source;
mod steps;
mod units;

pub use source::{MAX_SOURCE_BYTES, MAX_SOURCE_FILES};
pub use steps::{listen_address, listen_port};
pub use units::MAX_UNIT_FILE_BYTES;

use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::diagnostic::{Diagnostic, Severity, SourceMap};
use super::model::*;
use super::raw::{DirectiveValue, RawFile, RawLimits, RawScenario, Scalar, Section};
use crate::systemd::directives;
use crate::systemd::{parse_duration, parse_timespan, Directive, ManagerSettings, Signal, Suite};
use crate::target::limits::{self, Limits};

/// The longest duration a step may give (`within`, `window`, `duration`, `after`, `timeout`):
/// it keeps every deadline the runner computes representable, and no test needs more.
pub const MAX_STEP_DURATION: Duration = Duration::from_secs(24 * 3600);
/// Deadline of a wait step without `within`.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);
/// Timeout of a probe without `timeout`.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// buggy-server's default listening port, used by `fault` steps without `port`.
pub const DEFAULT_CONTROL_PORT: u16 = 8080;

pub(super) struct Checker<'a> {
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
            Ok(d) if d > MAX_STEP_DURATION => {
                self.error(
                    value.span(),
                    format!("duration `{}` is longer than a scenario step may take ({})", value.as_ref(), crate::systemd::format_duration(MAX_STEP_DURATION)),
                    "a step waits, watches or faults for at most a day; split a soak test into several scenarios",
                );
                None
            }
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
    let description = match &raw.description {
        Some(d) if d.as_ref().chars().any(char::is_control) => {
            c.error(d.span(), "the description holds a control character", "one line of plain text: it is printed in every report");
            String::new()
        }
        Some(d) => d.as_ref().clone(),
        None => String::new(),
    };

    let suites = match &raw.suites {
        None => Suite::DEFAULT.to_vec(),
        Some(list) => {
            if list.as_ref().is_empty() {
                c.error(list.span(), "`suites` is empty", "leave `suites` out to run on bookworm and trixie (or the `--suite`s given), or name at least one");
            }
            let mut out = Vec::new();
            for s in list.as_ref() {
                match s.as_ref().parse::<Suite>() {
                    Ok(suite) if out.contains(&suite) => {
                        c.error(s.span(), format!("suite `{suite}` is listed twice"), "name each suite once");
                    }
                    Ok(suite) => out.push(suite),
                    Err(e) => c.error(s.span(), e, Suite::all_described()),
                }
            }
            out
        }
    };

    let fixtures = raw.fixtures.as_ref().map(|list| {
        if list.as_ref().is_empty() {
            c.error(list.span(), "`fixtures` is empty", "leave `fixtures` out to run on a container (or on --fixture), or name at least one of container, vm");
        }
        let mut out = Vec::new();
        for f in list.as_ref() {
            match f.as_ref().parse::<crate::target::Fixture>() {
                Ok(fixture) if out.contains(&fixture) => {
                    c.error(f.span(), format!("fixture `{fixture}` is listed twice"), "name each fixture once");
                }
                Ok(fixture) => out.push(fixture),
                Err(e) => c.error(f.span(), e, "container (systemd in a Docker container) or vm (a QEMU machine with Debian's kernel)"),
            }
        }
        out
    });

    let manager = check_manager(&mut c, raw.manager.as_ref());
    let limits = check_limits(&mut c, raw.limits.as_ref());
    let packages = check_packages(&mut c, raw.packages.as_ref());
    let files = check_files(&mut c, &raw.files);
    let units = units::check_units(&mut c, &raw.units, &suites);
    let steps = steps::check_steps(&mut c, &raw, &units, &manager);

    let mut diags = c.diags;
    diags.sort_by_key(|d| (d.path != map.path(), d.line, d.col));
    if super::diagnostic::has_errors(&diags) {
        return (None, diags);
    }
    let scenario = Scenario {
        path: map.path().to_path_buf(),
        name: name.expect("no error means a name"),
        description,
        suites_listed: raw.suites.is_some(),
        suites,
        fixtures,
        shared_target: raw.shared_target.is_none_or(|s| s.into_inner()),
        snapshot: raw.snapshot.is_some_and(|s| s.into_inner()),
        manager,
        limits,
        packages,
        files,
        units: units.into_iter().map(|(_, u)| u).collect(),
        steps,
    };
    (Some(scenario), diags)
}

/// The lines a directive value renders, each checked so that it stays one line of one
/// directive: a line break would start another directive (`RestartSec = "1s\nExecStartPre=..."`
/// smuggles in a command), a NUL or other control character cannot be written to a unit file,
/// and a float would be re-spelt by the lab (`1e3`, `inf`) rather than written as given.
pub(super) fn scalar_lines(c: &mut Checker<'_>, value: &Spanned<DirectiveValue>) -> Vec<(Range<usize>, Scalar)> {
    let lines: Vec<(Range<usize>, Scalar)> = match value.as_ref() {
        DirectiveValue::One(s) => vec![(value.span(), s.clone())],
        DirectiveValue::Many(items) => {
            if items.is_empty() {
                c.error(value.span(), "an empty array renders no line", "write \"\" for an empty assignment (which resets the directive)");
            }
            items.iter().map(|s| (s.span(), s.as_ref().clone())).collect()
        }
    };
    lines
        .into_iter()
        .filter(|(span, scalar)| match scalar {
            Scalar::Str(text) if text.chars().any(|ch| ch.is_control() && ch != '\t') => {
                let what = if text.contains(['\n', '\r']) { "a line break" } else { "a control character" };
                c.error(
                    span.clone(),
                    format!("directive value holds {what}"),
                    "a value is one line of the unit file: what follows a line break would be read as another directive; split it into an array for several lines of the same directive",
                );
                false
            }
            Scalar::Float(_) => {
                c.error(span.clone(), "a float is not written verbatim", "write the value as a string, exactly as systemd should read it, e.g. \"1.5s\"");
                false
            }
            _ => true,
        })
        .collect()
}

/// A directive name is letters, digits, `_`, `-` and `.` starting with a letter (every name
/// systemd knows, and `X-` extensions): anything else, written as a quoted TOML key, would be
/// written into the unit file as is (a quoted key with a line break adds a directive).
pub(super) fn directive_name_ok(c: &mut Checker<'_>, key: &Spanned<String>) -> bool {
    let k = key.as_ref();
    let ok = k.chars().next().is_some_and(|ch| ch.is_ascii_alphabetic()) && k.chars().all(|ch| ch.is_ascii_alphanumeric() || "_-.".contains(ch));
    if !ok {
        c.error(key.span(), format!("{k:?} is not a directive name"), "directive names are letters, digits, `_`, `-` and `.`, starting with a letter");
    }
    ok
}

/// Where a scenario may not place a file: the kernel's interfaces (writing there changes the
/// host's state, not the target's files) and the lab's own runtime directory.
const FORBIDDEN_FILE_ROOTS: &[&str] = &["/proc", "/sys", "/dev", "/run/unitlab"];

/// A path inside the target that a scenario may write: absolute, no `..` (it would escape any
/// claim made on the path), not under the kernel's interfaces. `Err` says why not.
pub(super) fn check_target_path(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    if !path.is_absolute() {
        return Err(format!("file path `{text}` is not absolute"));
    }
    if text.contains('\0') || text.chars().any(char::is_control) {
        return Err(format!("file path {text:?} holds a control character"));
    }
    if path.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        return Err(format!("file path `{text}` climbs with `..`"));
    }
    if let Some(root) = FORBIDDEN_FILE_ROOTS.iter().find(|r| path.starts_with(r)) {
        return Err(format!("file path `{text}` is under {root}, which is the kernel's (or the lab's), not the target's files"));
    }
    if path.parent().is_none() {
        return Err("file path `/` is the root directory".to_string());
    }
    Ok(path)
}

/// `packages`: names as Debian policy allows them (lower case letters, digits, `+`, `-`, `.`;
/// at least two characters, starting with a letter or digit), so that each reaches apt as one
/// word; each once. Whether the suite has the package is apt's answer, at image build.
fn check_packages(c: &mut Checker<'_>, list: Option<&Spanned<Vec<Spanned<String>>>>) -> Vec<String> {
    let Some(list) = list else { return Vec::new() };
    if list.as_ref().is_empty() {
        c.error(list.span(), "`packages` is empty", "leave `packages` out, or name the Debian packages to install (\"nginx\")");
    }
    let mut out: Vec<String> = Vec::new();
    for p in list.as_ref() {
        let name = p.as_ref();
        let ok = name.len() >= 2
            && name.starts_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
            && name.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "+-.".contains(ch));
        if !ok {
            c.error(p.span(), format!("`{name}` is not a Debian package name"), "package names are lower case letters, digits, `+`, `-` and `.`, at least two characters (e.g. \"openssh-server\"); no versions or options");
        } else if out.iter().any(|o| o == name) {
            c.error(p.span(), format!("package `{name}` is listed twice"), "name each package once");
        } else {
            out.push(name.clone());
        }
    }
    out.sort();
    out
}

fn check_manager(c: &mut Checker<'_>, section: Option<&Spanned<Section>>) -> ManagerSettings {
    let mut out = ManagerSettings::default();
    let Some(section) = section else { return out };
    for (key, value) in &section.as_ref().0 {
        let k = key.as_ref();
        if !directive_name_ok(c, key) {
            continue;
        }
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

/// `[limits]`: each value within bounds that still boot systemd and still contain a scenario.
fn check_limits(c: &mut Checker<'_>, section: Option<&Spanned<RawLimits>>) -> Limits {
    let mut out = Limits::default();
    let Some(section) = section else { return out };
    let raw = section.as_ref();
    if let Some(p) = &raw.pids {
        let (lo, hi) = (limits::PIDS_RANGE.start(), limits::PIDS_RANGE.end());
        if limits::PIDS_RANGE.contains(p.as_ref()) {
            out.pids = *p.as_ref();
        } else {
            c.error(p.span(), format!("`pids = {}` is outside {lo}..={hi}", p.as_ref()), format!("systemd needs about 25 processes to boot; the default is {}", limits::DEFAULT_PIDS));
        }
    }
    if let Some(m) = &raw.memory {
        let (lo, hi) = (limits::format_size(*limits::MEMORY_RANGE.start()), limits::format_size(*limits::MEMORY_RANGE.end()));
        match limits::parse_size(m.as_ref()) {
            Ok(bytes) if limits::MEMORY_RANGE.contains(&bytes) => out.memory = bytes,
            Ok(_) => c.error(m.span(), format!("`memory = \"{}\"` is outside {lo}..={hi}", m.as_ref()), format!("the default is {}", limits::format_size(limits::DEFAULT_MEMORY))),
            Err(why) => c.error(m.span(), format!("invalid memory size: {why}"), "write e.g. memory = \"768M\""),
        }
    }
    out
}

fn check_files(c: &mut Checker<'_>, files: &[(Range<usize>, RawFile)]) -> Vec<ExtraFile> {
    let mut out: Vec<ExtraFile> = Vec::new();
    let mut budget = source::Budget::default();
    for (span, f) in files {
        let path = match check_target_path(f.path.as_ref()) {
            Ok(p) => p,
            Err(why) => {
                c.error(f.path.span(), why, "write a full, plain path inside the target, e.g. \"/etc/buggy/config\"");
                continue;
            }
        };
        if out.iter().any(|o| o.path == path) {
            c.error(f.path.span(), format!("file `{}` is given twice", path.display()), "merge the two entries");
            continue;
        }
        let mode = match &f.mode {
            None => Some(None),
            Some(m) => {
                // A TOML integer is octal only when written `0o...`: `mode = 644` is the decimal
                // 644 (0o1204), which is never what was meant.
                let written = &c.map.source()[m.span()];
                let parsed = match m.as_ref() {
                    Scalar::Str(s) => {
                        let digits = s.strip_prefix("0o").unwrap_or(s);
                        (!digits.is_empty() && digits.chars().all(|d| ('0'..='7').contains(&d))).then(|| u32::from_str_radix(digits, 8).ok()).flatten()
                    }
                    Scalar::Int(i) if written.trim_start().starts_with("0o") => u32::try_from(*i).ok(),
                    _ => None,
                };
                match parsed.filter(|m| *m <= 0o7777) {
                    Some(m) => Some(Some(m)),
                    None => {
                        c.error(m.span(), format!("invalid file mode `{}`", written.trim()), "an octal string such as \"0755\", or a TOML octal integer 0o755 (a plain 644 is decimal)");
                        None
                    }
                }
            }
        };
        let Some(mode) = mode else { continue };
        // (path in the target, bytes, mode of the source on the host)
        let placed: Vec<(PathBuf, Vec<u8>, Option<u32>)> = match (&f.content, &f.source) {
            (Some(_), Some(s)) => {
                c.error(s.span(), "`content` and `source` in one [[files]] entry", "the bytes come from one of them: remove the other");
                continue;
            }
            (None, None) => {
                c.error(span.clone(), "missing `content` or `source`", "add `content = \"...\"` (the file's text) or `source = \"bin/app\"` (a host file or directory, relative to the scenario file)");
                continue;
            }
            (Some(text), None) => vec![(path.clone(), text.as_ref().clone().into_bytes(), None)],
            (None, Some(s)) => {
                let written = s.as_ref();
                if written.is_empty() || std::path::Path::new(written).is_absolute() {
                    c.error(s.span(), format!("source `{written}` is not relative"), "name the host file or directory relative to the scenario file, e.g. \"bin/app\"");
                    continue;
                }
                let host = units::scenario_dir(c.map).join(written);
                match source::read_source(&host, &mut budget) {
                    Err(why) => {
                        c.error(s.span(), why, format!("the path is relative to the scenario file; sources are regular files or directories of them, {} MiB at most for the whole scenario", source::MAX_SOURCE_BYTES >> 20));
                        continue;
                    }
                    Ok(source::Source::File(file)) => vec![(path.clone(), file.bytes, Some(file.mode))],
                    Ok(source::Source::Dir(_)) if mode.is_some() => {
                        let m = f.mode.as_ref().expect("a mode was parsed");
                        c.error(m.span(), format!("`mode` with a source directory (`{written}`)"), "a directory's files keep their own modes: remove `mode`, or name one file as `source`");
                        continue;
                    }
                    Ok(source::Source::Dir(files)) => files.into_iter().map(|file| (path.join(&file.relative), file.bytes, Some(file.mode))).collect(),
                }
            }
        };
        for (target, bytes, own_mode) in placed {
            if let Err(why) = check_target_path(&target.display().to_string()) {
                c.error(f.source.as_ref().map_or(f.path.span(), |s| s.span()), why, "rename the host file: its path below the source directory becomes its path in the target");
                continue;
            }
            if out.iter().any(|o| o.path == target) {
                c.error(f.path.span(), format!("file `{}` is given twice", target.display()), "merge the two entries, or place the directory elsewhere");
                continue;
            }
            out.push(ExtraFile { path: target, content: bytes, mode: mode.or(own_mode).unwrap_or(0o644) });
        }
    }
    out
}

