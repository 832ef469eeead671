//! Diagnostics: what is wrong in a scenario file, where (file:line:col, 1-based) and what to do,
//! rendered like rustc/miette so that a user can jump to the spot from a terminal.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// How bad a diagnostic is. Errors stop a scenario from running (`unitlab run` exits 2);
/// warnings are printed and the scenario runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

impl Severity {
    /// `error` or `warning`, as printed and as written in `# expect:` lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// The file as it was named to the loader (relative paths stay relative, for readable output).
    pub path: PathBuf,
    /// 1-based line of the offending key or value; 0 when the problem has no position (an
    /// unreadable file, an empty directory).
    pub line: usize,
    /// 1-based column, counted in characters; 0 when `line` is 0.
    pub col: usize,
    /// How many characters to underline on `line` (at least 1 when there is a position).
    pub len: usize,
    /// What is wrong, in one line.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
    /// The text of `line`, for rendering without the source at hand.
    pub source_line: Option<String>,
}

impl Diagnostic {
    /// A diagnostic that points nowhere inside the file.
    pub fn whole_file(severity: Severity, path: &Path, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity,
            path: path.to_path_buf(),
            line: 0,
            col: 0,
            len: 0,
            message: message.into(),
            hint: None,
            source_line: None,
        }
    }

    /// Add or replace the hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    /// True for [`Severity::Error`].
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `path:line:col` (or just the path when there is no position), printable: a file name
    /// can hold terminal escapes, which must not reach the terminal.
    pub fn location(&self) -> String {
        let path = printable(&self.path.display().to_string()).into_owned();
        if self.line == 0 {
            path
        } else {
            format!("{path}:{}:{}", self.line, self.col)
        }
    }
}

/// Text made safe for a terminal: control characters other than a tab (ANSI escapes, a
/// carriage return, NUL) are shown as `\u{1b}` escapes instead of acting on the terminal.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return std::borrow::Cow::Borrowed(text);
    }
    let escaped = text.chars().map(|c| if c.is_control() && c != '\t' { c.escape_unicode().to_string() } else { c.to_string() }).collect();
    std::borrow::Cow::Owned(escaped)
}

/// True when any diagnostic is an error.
pub fn has_errors(diagnostics: &[Diagnostic]) -> bool {
    diagnostics.iter().any(Diagnostic::is_error)
}

/// Renders like rustc:
///
/// ```text
/// error: invalid Restart= value `Always`
///   --> scenarios/x.toml:12:11
///    |
/// 12 | Restart = "Always"
///    |           ^^^^^^^^
///    = hint: systemd is case-sensitive: did you mean `always`?
/// ```
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: {}", self.severity, printable(&self.message))?;
        let width = if self.line == 0 { 1 } else { self.line.to_string().len() };
        let pad = " ".repeat(width);
        writeln!(f, "{pad}--> {}", self.location())?;
        if let (true, Some(text)) = (self.line > 0, &self.source_line) {
            let text = printable(text);
            writeln!(f, "{pad} |")?;
            writeln!(f, "{} | {}", self.line, text)?;
            // Tabs are kept under the caret's lead so that the caret lines up in a terminal.
            let lead: String = text
                .chars()
                .take(self.col.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            writeln!(f, "{pad} | {lead}{}", "^".repeat(self.len.max(1)))?;
        }
        if let Some(hint) = &self.hint {
            writeln!(f, "{pad} = hint: {}", printable(hint))?;
        }
        Ok(())
    }
}

/// Render a list of diagnostics, separated by blank lines, followed by a summary line
/// (`error: 2 errors, 1 warning`), or nothing when the list is empty.
pub fn render_all(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        out.push_str(&d.to_string());
        out.push('\n');
    }
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    if !diagnostics.is_empty() {
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        let head = if errors > 0 { "error" } else { "warning" };
        out.push_str(&format!("{head}: {}, {}\n", plural(errors, "error"), plural(warnings, "warning")));
    }
    out
}

/// Turns byte offsets of one source text into diagnostics with line, column and the line's text.
#[derive(Debug, Clone)]
pub struct SourceMap<'a> {
    path: &'a Path,
    source: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> SourceMap<'a> {
    pub fn new(path: &'a Path, source: &'a str) -> SourceMap<'a> {
        let mut line_starts = vec![0];
        line_starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        SourceMap { path, source, line_starts }
    }

    /// The text the offsets point into.
    pub fn source(&self) -> &'a str {
        self.source
    }

    /// The file the offsets belong to.
    pub fn path(&self) -> &Path {
        self.path
    }

    /// 1-based (line, column in characters) of a byte offset.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.source.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let col = self.source[start..floor_char_boundary(self.source, offset)].chars().count() + 1;
        (line + 1, col)
    }

    fn line_text(&self, line: usize) -> &'a str {
        let start = self.line_starts[line - 1];
        let end = self.line_starts.get(line).map_or(self.source.len(), |&e| e - 1);
        self.source[start..end].trim_end_matches('\r')
    }

    /// A diagnostic underlining `span` (only its first line when it spans several).
    pub fn diagnostic(&self, severity: Severity, span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        let (line, col) = self.position(span.start);
        let text = self.line_text(line);
        let end = floor_char_boundary(self.source, span.end.min(self.source.len()));
        let start = floor_char_boundary(self.source, span.start.min(end));
        let first_line = self.source[start..end].split('\n').next().unwrap_or("");
        let remaining = text.chars().count().saturating_sub(col - 1);
        let len = first_line.chars().count().min(remaining).max(1);
        Diagnostic {
            severity,
            path: self.path.to_path_buf(),
            line,
            col,
            len,
            message: message.into(),
            hint: None,
            source_line: Some(text.to_string()),
        }
    }

    pub fn error(&self, span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        self.diagnostic(Severity::Error, span, message)
    }

    pub fn warning(&self, span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        self.diagnostic(Severity::Warning, span, message)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_in_names_and_text_are_shown_not_obeyed() {
        let d = Diagnostic::whole_file(Severity::Error, Path::new("\u{1b}[31mred.toml"), "bad \u{1b}[2J thing");
        let out = d.to_string();
        assert!(!out.contains('\u{1b}'), "{out:?}");
        assert!(out.contains("\\u{1b}[31mred.toml") && out.contains("bad \\u{1b}[2J thing"), "{out}");
        assert_eq!(printable("tab\tok"), "tab\tok");
    }

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let src = "a = 1\nnamé = \"x\"\n";
        let map = SourceMap::new(Path::new("x.toml"), src);
        assert_eq!(map.position(0), (1, 1));
        assert_eq!(map.position(6), (2, 1));
        let x = src.find("\"x\"").unwrap();
        assert_eq!(map.position(x), (2, 8), "é is one column, not two bytes");
    }

    #[test]
    fn renders_like_rustc() {
        let src = "name = \"x\"\n\n[[units]]\nRestart = \"Always\"\n";
        let map = SourceMap::new(Path::new("scenarios/x.toml"), src);
        let at = src.find("\"Always\"").unwrap();
        let d = map.error(at..at + 8, "invalid Restart= value `Always`").with_hint("did you mean `always`?");
        assert_eq!(
            d.to_string(),
            "error: invalid Restart= value `Always`\n --> scenarios/x.toml:4:11\n  |\n4 | Restart = \"Always\"\n  |           ^^^^^^^^\n  = hint: did you mean `always`?\n"
        );
    }

    #[test]
    fn multi_line_spans_underline_to_the_end_of_the_first_line() {
        let src = "a = [\n 1,\n]\n";
        let map = SourceMap::new(Path::new("x.toml"), src);
        let d = map.warning(4..src.len(), "m");
        assert_eq!((d.line, d.col, d.len), (1, 5, 1));
    }

    #[test]
    fn summary_counts_errors_and_warnings() {
        let p = Path::new("x.toml");
        let all = vec![
            Diagnostic::whole_file(Severity::Error, p, "a"),
            Diagnostic::whole_file(Severity::Warning, p, "b"),
        ];
        assert!(render_all(&all).ends_with("error: 1 error, 1 warning\n"));
        assert!(has_errors(&all));
        assert_eq!(render_all(&[]), "");
    }
}
