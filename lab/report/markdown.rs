//! The Markdown report, for pull-request comments and CI job summaries: a summary table,
//! then one section per scenario that did not pass with what a reviewer needs to act on it.

use std::fmt::Write as _;

use crate::verdict::{Outcome, RunReport, ScenarioResult};

use super::text::{self, Tally};

pub(super) fn render(report: &RunReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# unitlab run: {}\n", text::outcome_word(report.outcome));
    let _ = writeln!(
        out,
        "{} in {} (unitlab {}).\n",
        Tally::of(report).sentence(),
        text::duration(report.duration),
        escape(&report.unitlab_version)
    );
    // Across suites first (each cell per version, where they differ and why), then each
    // suite's own grid.
    for x in super::versions::cross_tables(&report.tables) {
        out.push_str(&super::versions::markdown(&x));
    }
    for t in &report.tables {
        out.push_str(&super::tables::markdown(t));
    }
    if report.results.is_empty() {
        return out;
    }
    let _ = writeln!(out, "| Scenario | Suite | systemd | Outcome | Checks | Duration |");
    let _ = writeln!(out, "|---|---|---|---|---|---:|");
    for r in &report.results {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            escape(&r.name),
            escape(&r.suite),
            escape(&text::systemd_short(&r.systemd)),
            outcome(r.outcome),
            text::checks(r),
            text::duration(r.duration),
        );
    }
    out.push('\n');
    for r in report.results.iter().filter(|r| r.outcome != Outcome::Pass) {
        section(&mut out, r);
    }
    // Every block ends with a blank line to separate it from the next; the document ends with
    // one newline.
    let end = out.trim_end().len();
    out.truncate(end);
    out.push('\n');
    out
}

fn outcome(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "✅ pass",
        Outcome::Fail => "❌ fail",
        Outcome::Error => "⚠️ error",
    }
}

fn section(out: &mut String, r: &ScenarioResult) {
    let _ = writeln!(out, "## {} {} ({})\n", outcome(r.outcome), inline(&r.name), escape(&r.suite));
    let mut about = format!("{}, {}", inline(&r.path.display().to_string()), text::systemd_short(&r.systemd));
    if !r.description.is_empty() {
        about = format!("{}: {about}", escape(r.description.trim()));
    }
    let _ = writeln!(out, "{about}\n");
    if let Some(error) = &r.error {
        let _ = writeln!(out, "The lab could not run this scenario:\n");
        code_block(out, error.lines());
    }
    if !r.warnings.is_empty() {
        let _ = writeln!(out, "Warnings:\n");
        code_block(out, r.warnings.iter().map(String::as_str));
    }
    for c in r.failed_checks() {
        let _ = writeln!(out, "### Step {} `{}` at {}\n", c.step, c.kind, inline(&c.location.to_string()));
        let _ = writeln!(out, "- **expected:** {}", inline(&c.expected));
        let _ = writeln!(out, "- **observed:** {}", inline(&c.observed));
        let _ = writeln!(out, "- **decided at:** {}\n", text::precise(c.at));
        if !c.journal_context.is_empty() {
            code_block(out, c.journal_context.iter().map(String::as_str));
        }
    }
}

/// A fenced block that no line of `lines` can close early: the fence is longer than any run
/// of backticks inside.
fn code_block<'a>(out: &mut String, lines: impl Iterator<Item = &'a str> + Clone) {
    let longest = lines.clone().map(|l| longest_run(l, '`')).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    let _ = writeln!(out, "{fence}text");
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "{fence}\n");
}

fn longest_run(s: &str, ch: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for c in s.chars() {
        run = if c == ch { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// Inline code that survives backticks in the text.
fn inline(s: &str) -> String {
    let fence = "`".repeat(longest_run(s, '`') + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') { " " } else { "" };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// Prose and table cells: the punctuation that starts Markdown emphasis, links, code or HTML
/// escaped so a name cannot become markup, on one line so it cannot end a table row.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '|' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    #[test]
    fn rendering_is_a_stable_contract() {
        insta::assert_snapshot!("markdown", render(&fixtures::report()));
    }

    #[test]
    fn a_passing_run_is_only_the_table() {
        let report = RunReport::new(vec![fixtures::passing()], std::time::Duration::from_secs(4));
        let out = render(&report);
        assert!(out.starts_with("# unitlab run: PASS\n"), "{out}");
        assert!(out.contains("| restart-on-failure | bookworm | systemd 252 | ✅ pass | 2/2 | 3.2s |"), "{out}");
        assert!(!out.contains("\n## "), "{out}");
    }

    #[test]
    fn text_cannot_break_out_of_tables_or_code_blocks() {
        let mut r = fixtures::failing();
        r.name = "pipe|name".into();
        r.description = "<b>bold</b> | *x*".into();
        r.checks[1].observed = "a ` tick".into();
        r.checks[1].journal_context = vec!["```".into(), "after".into()];
        let out = render(&RunReport::new(vec![r], std::time::Duration::ZERO));
        assert!(out.contains("| pipe\\|name | trixie |"), "{out}");
        assert!(out.contains("\\<b>bold\\</b> \\| \\*x\\*: `scenarios"), "{out}");
        assert!(out.contains("- **observed:** ``a ` tick``"), "{out}");
        assert!(out.contains("````text\n```\nafter\n````"), "{out}");
        assert_eq!(inline("a`b"), "``a`b``");
    }
}
