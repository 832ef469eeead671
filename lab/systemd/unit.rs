//! Unit files: rendering `[Unit]`/`[Service]`/`[Install]` sections from directive lists, and
//! escaping a program's argv for `ExecStart=` so that any argument survives systemd's
//! command-line parsing unchanged (spaces, quotes, backslashes, `$`, `%`, a lone `;`).
//!
//! Directives are kept as an ordered open list and written verbatim: the lab must be able to
//! express any directive systemd knows, including misspelt ones (to show what systemd does
//! with them), so nothing here validates names or values.

use std::fmt::Write as _;

/// One `Key=Value` line. Repeating a key is meaningful in unit files (e.g. `ExecStartPre=`),
/// so this is a list, not a map.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Directive {
    pub key: String,
    pub value: String,
}

impl Directive {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Directive {
        Directive { key: key.into(), value: value.into() }
    }
}

/// A unit file's content, section by section.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UnitFile {
    pub unit: Vec<Directive>,
    pub service: Vec<Directive>,
    pub install: Vec<Directive>,
}

impl UnitFile {
    /// Render as a unit file. Empty sections are left out, except `[Service]`, which a
    /// service unit always has.
    pub fn render(&self) -> String {
        self.render_sections(true)
    }

    /// No directive in any section.
    pub fn is_empty(&self) -> bool {
        self.unit.is_empty() && self.service.is_empty() && self.install.is_empty()
    }

    /// Render only the sections that hold directives: a drop-in, which may be for a unit of
    /// another type than a service (an empty `[Service]` there is an unknown section to
    /// systemd).
    pub fn render_present(&self) -> String {
        self.render_sections(false)
    }

    fn render_sections(&self, keep_empty_service: bool) -> String {
        let mut out = String::new();
        for (name, directives, keep_empty) in [
            ("Unit", &self.unit, false),
            ("Service", &self.service, keep_empty_service),
            ("Install", &self.install, false),
        ] {
            if directives.is_empty() && !keep_empty {
                continue;
            }
            if !out.is_empty() {
                out.push('\n');
            }
            let _ = writeln!(out, "[{name}]");
            for d in directives {
                let _ = writeln!(out, "{}={}", d.key, d.value);
            }
        }
        out
    }

    /// The last value given for `key` in `[Service]` (later assignments win in systemd).
    pub fn service_value(&self, key: &str) -> Option<&str> {
        self.service.iter().rev().find(|d| d.key == key).map(|d| d.value.as_str())
    }

    /// The last value given for `key` in `[Unit]`.
    pub fn unit_value(&self, key: &str) -> Option<&str> {
        self.unit.iter().rev().find(|d| d.key == key).map(|d| d.value.as_str())
    }
}

/// Escape one argument for an `ExecStart=`-style command line.
///
/// systemd splits on whitespace, honours double and single quotes with C-style escapes, expands
/// `$VAR`/`${VAR}` (literal `$` is `$$`) and `%` specifiers (literal `%` is `%%`), and treats a
/// lone `;` as a command separator (literal is `\;`). Arguments that need none of this are
/// written bare so that rendered units stay readable.
pub fn escape_arg(arg: &str) -> String {
    if arg == ";" {
        return "\\;".to_string();
    }
    let needs_quotes = arg.is_empty()
        || arg.chars().any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\') || c.is_control());
    let mut out = String::with_capacity(arg.len() + 2);
    if needs_quotes {
        out.push('"');
    }
    for c in arg.chars() {
        match c {
            '$' => out.push_str("$$"),
            '%' => out.push_str("%%"),
            '"' if needs_quotes => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    if needs_quotes {
        out.push('"');
    }
    out
}

/// Escape a whole argv (program first) for `ExecStart=`.
pub fn exec_line(argv: &[String]) -> String {
    argv.iter().map(|a| escape_arg(a)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_arguments_stay_bare() {
        let argv: Vec<String> = ["/usr/local/bin/buggy-server", "--listen", "0.0.0.0:8080"].map(String::from).to_vec();
        assert_eq!(exec_line(&argv), "/usr/local/bin/buggy-server --listen 0.0.0.0:8080");
    }

    #[test]
    fn specials_are_escaped_for_systemd() {
        assert_eq!(escape_arg("a b"), "\"a b\"");
        assert_eq!(escape_arg("$HOME"), "$$HOME");
        assert_eq!(escape_arg("100%"), "100%%");
        assert_eq!(escape_arg("say \"hi\""), "\"say \\\"hi\\\"\"");
        assert_eq!(escape_arg("it's"), "\"it's\"");
        assert_eq!(escape_arg("back\\slash"), "\"back\\\\slash\"");
        assert_eq!(escape_arg(""), "\"\"");
        assert_eq!(escape_arg(";"), "\\;");
        assert_eq!(escape_arg("two\nlines"), "\"two\\nlines\"");
    }

    #[test]
    fn rendering_keeps_order_and_repeats() {
        let unit = UnitFile {
            unit: vec![Directive::new("Description", "x")],
            service: vec![
                Directive::new("ExecStartPre", "/bin/true"),
                Directive::new("ExecStartPre", "/bin/echo 2"),
                Directive::new("Restart", "on-failure"),
                Directive::new("Restart", "always"),
            ],
            install: vec![],
        };
        assert_eq!(
            unit.render(),
            "[Unit]\nDescription=x\n\n[Service]\nExecStartPre=/bin/true\nExecStartPre=/bin/echo 2\nRestart=on-failure\nRestart=always\n"
        );
        assert_eq!(unit.service_value("Restart"), Some("always"), "the last assignment wins");
        let drop_in = UnitFile { unit: vec![Directive::new("After", "x.service")], ..Default::default() };
        assert_eq!(drop_in.render_present(), "[Unit]\nAfter=x.service\n", "no empty [Service] in a drop-in");
        assert_eq!(drop_in.render(), "[Unit]\nAfter=x.service\n\n[Service]\n");
        assert!(!drop_in.is_empty() && UnitFile::default().is_empty());
    }
}
