//! A unit given as unit-file text (`[[units]] text = '''...'''`), for replaying a unit exactly as
//! someone wrote it: typos, misplaced directives and a relative `ExecStart=` included. Only the
//! shape is parsed here (sections, `Key=Value` lines, continuations); what the directives mean
//! is left to systemd, and `validate` turns what it would complain about into warnings.

use std::ops::Range;

/// One `Key=Value` line of the text, with the byte range of its key inside the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextLine {
    pub section: String,
    pub key: String,
    pub value: String,
    pub key_span: Range<usize>,
}

/// Something in the text the lab cannot carry into a rendered unit, with its byte range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextProblem {
    pub span: Range<usize>,
    pub message: String,
    /// Whether the lab cannot render it at all (an error), or systemd would merely ignore it.
    pub fatal: bool,
}

/// The sections a rendered service unit can hold.
pub const SECTIONS: &[&str] = &["Unit", "Service", "Install"];

/// The unit types a scenario may install from a file, and the sections each has
/// (systemd.unit(5) and the type's own page).
pub const UNIT_TYPES: &[(&str, &[&str])] = &[
    ("service", &["Unit", "Service", "Install"]),
    ("socket", &["Unit", "Socket", "Install"]),
    ("timer", &["Unit", "Timer", "Install"]),
    ("path", &["Unit", "Path", "Install"]),
    ("target", &["Unit", "Install"]),
];

/// The sections a unit of type `suffix` (`socket`) has, when it is one of [`UNIT_TYPES`].
pub fn sections_of(suffix: &str) -> Option<&'static [&'static str]> {
    UNIT_TYPES.iter().find(|(t, _)| *t == suffix).map(|(_, s)| *s)
}

/// [`parse_unit_text_in`] for a service unit given as text, which the lab renders: a section
/// it cannot render is fatal.
pub fn parse_unit_text(text: &str) -> (Vec<TextLine>, Vec<TextProblem>) {
    parse_unit_text_in(text, SECTIONS, true)
}

/// Split unit-file text into directive lines, as systemd's parser reads them: blank lines and
/// `#`/`;` comments are skipped, a trailing `\` continues the line (joined with a space), a
/// `[Section]` header switches section. A line without `=` is reported (systemd logs "Missing
/// '=', ignoring line.") and left out; a directive before any section header likewise. A
/// section not in `sections` is a problem, fatal when `unknown_fatal` (the lab renders the
/// text), else systemd's own "Unknown section ..., ignoring" (a file installed as written);
/// `X-` sections are systemd's extension mechanism and never reported.
pub fn parse_unit_text_in(text: &str, sections: &[&str], unknown_fatal: bool) -> (Vec<TextLine>, Vec<TextProblem>) {
    let mut lines = Vec::new();
    let mut problems = Vec::new();
    let mut section: Option<String> = None;
    let mut offset = 0;
    let mut pending: Option<(usize, String)> = None;
    for raw in text.split_inclusive('\n') {
        let start = offset;
        offset += raw.len();
        let body = raw.trim_end_matches(['\n', '\r']);
        let (line_start, joined) = match pending.take() {
            Some((s, mut acc)) => {
                acc.push(' ');
                acc.push_str(body.trim_start());
                (s, acc)
            }
            None => {
                let lead = body.len() - body.trim_start().len();
                (start + lead, body.trim_start().to_string())
            }
        };
        if joined.is_empty() || joined.starts_with('#') || joined.starts_with(';') {
            continue;
        }
        if let Some(stripped) = joined.strip_suffix('\\') {
            pending = Some((line_start, stripped.to_string()));
            continue;
        }
        let line = joined.trim_end();
        let span = line_start..line_start + line.len().min(body.len());
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            if unknown_fatal && !sections.contains(&name) {
                problems.push(TextProblem {
                    span,
                    message: format!("section [{name}]: a service unit given as text may hold [Unit], [Service] and [Install] only"),
                    fatal: true,
                });
            } else if !sections.contains(&name) && !name.starts_with("X-") {
                let list = sections.iter().map(|s| format!("[{s}]")).collect::<Vec<_>>().join(", ");
                problems.push(TextProblem {
                    span,
                    message: format!("section [{name}] is not one of this unit type's ({list}): systemd logs \"Unknown section '{name}'. Ignoring.\""),
                    fatal: false,
                });
            }
            section = Some(name.to_string());
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            problems.push(TextProblem { span, message: format!("line `{line}` has no `=`: systemd logs \"Missing '=', ignoring line.\""), fatal: false });
            continue;
        };
        let Some(section) = section.clone() else {
            problems.push(TextProblem { span, message: format!("`{line}` comes before any [Section]: systemd ignores it"), fatal: false });
            continue;
        };
        let key = key.trim_end();
        lines.push(TextLine {
            section,
            key: key.to_string(),
            value: value.trim_start().to_string(),
            key_span: line_start..line_start + key.len(),
        });
    }
    (lines, problems)
}

/// How systemd reads the program of an `ExecStart=` value: leading `@-:+!` prefixes dropped,
/// then the first word. systemd.service(5): it must be an absolute path or a plain file name
/// (no `/`), searched in systemd's fixed path. Returns the program and whether it is usable.
pub fn exec_program(value: &str) -> (String, bool) {
    let rest = value.trim_start().trim_start_matches(['@', '-', ':', '+', '!']);
    let program = rest.split_whitespace().next().unwrap_or("").trim_matches('"').to_string();
    let usable = !program.is_empty() && (program.starts_with('/') || !program.contains('/'));
    (program, usable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_keys_and_values_are_kept_verbatim() {
        let text = "[Unit]\nDescription=Watchdogged\n\n# comment\n[Service]\nType=notify\nExecStart=usr/bin/watchdogged\nStartLimitAction=stop\n";
        let (lines, problems) = parse_unit_text(text);
        assert!(problems.is_empty(), "{problems:?}");
        let got: Vec<(&str, &str, &str)> = lines.iter().map(|l| (l.section.as_str(), l.key.as_str(), l.value.as_str())).collect();
        assert_eq!(
            got,
            [
                ("Unit", "Description", "Watchdogged"),
                ("Service", "Type", "notify"),
                ("Service", "ExecStart", "usr/bin/watchdogged"),
                ("Service", "StartLimitAction", "stop"),
            ]
        );
        assert_eq!(&text[lines[2].key_span.clone()], "ExecStart");
    }

    #[test]
    fn continuations_join_and_spaces_around_equals_are_dropped() {
        let (lines, _) = parse_unit_text("[Service]\nExecStart=/bin/echo a \\\n  b\nRestart = always\n");
        assert_eq!(lines[0].value, "/bin/echo a  b");
        assert_eq!((lines[1].key.as_str(), lines[1].value.as_str()), ("Restart", "always"));
    }

    #[test]
    fn problems_are_reported_with_their_fatality() {
        let (lines, problems) = parse_unit_text("Orphan=1\n[Service]\nnot a directive\n[Socket]\nListenStream=80\n");
        assert_eq!(lines.len(), 1, "the [Socket] line is parsed but its section is refused");
        let fatal: Vec<bool> = problems.iter().map(|p| p.fatal).collect();
        assert_eq!(fatal, [false, false, true]);
        assert!(problems[1].message.contains("Missing '='"));
    }

    #[test]
    fn a_file_of_another_type_keeps_its_own_sections() {
        let text = "[Unit]\nDescription=s\n[Socket]\nListenStream=8089\n[Service]\nType=simple\n[X-Mine]\nA=1\n";
        let (lines, problems) = parse_unit_text_in(text, sections_of("socket").unwrap(), false);
        assert_eq!(lines.iter().map(|l| l.section.as_str()).collect::<Vec<_>>(), ["Unit", "Socket", "Service", "X-Mine"]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(!problems[0].fatal && problems[0].message.contains("Unknown section 'Service'"), "{problems:?}");
        assert_eq!(&text[problems[0].span.clone()], "[Service]");
        assert!(sections_of("mount").is_none());
    }

    #[test]
    fn exec_program_follows_systemds_rule() {
        assert_eq!(exec_program("usr/bin/watchdogged"), ("usr/bin/watchdogged".into(), false));
        assert_eq!(exec_program("-/usr/bin/sshd -D"), ("/usr/bin/sshd".into(), true));
        assert_eq!(exec_program("sleep 5"), ("sleep".into(), true));
        assert_eq!(exec_program(""), (String::new(), false));
    }
}
