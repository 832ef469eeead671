//! The documented tables in a report: documented and observed side by side as grids, and every
//! disagreement explained, for the terminal, Markdown and HTML. Generic over the table: rows,
//! columns and each cell's marks come from the [`TableReport`].

use std::fmt::Write as _;

use crate::verdict::{CellVerdict, TableReport};

use super::html::escape as html_escape;

/// Width of a grid column for the terminal.
fn width(t: &TableReport) -> usize {
    let marks = t.cells.iter().flat_map(|c| [c.documented_mark.len(), c.observed_mark.len() + 1]).max().unwrap_or(1);
    let heads = t.columns.iter().map(|c| c.len()).max().unwrap_or(1);
    marks.max(heads) + 2
}

fn mark_or_dash<'a>(t: &'a TableReport, row: &str, column: &str, f: impl Fn(&'a CellVerdict) -> String) -> String {
    t.cell(row, column).map(f).unwrap_or_else(|| "-".into())
}

/// "47 of 51 cells agree with the documentation; 4 disagree (4 reviewed, 0 not)"; a table
/// with cells the documentation says nothing about counts those apart, and, when it has a
/// source rule, says how many cells follow it.
pub(crate) fn tally(t: &TableReport) -> String {
    let disagree: Vec<&CellVerdict> = t.cells.iter().filter(|c| !c.agrees && !silent(c)).collect();
    let silent_n = t.cells.iter().filter(|c| silent(c)).count();
    let mut text = format!(
        "{} of {} cells agree with the documentation; {} disagree ({} reviewed, {} not)",
        t.cells.len() - disagree.len() - silent_n,
        t.cells.len(),
        disagree.len(),
        disagree.iter().filter(|c| c.as_expected).count(),
        disagree.iter().filter(|c| !c.as_expected).count(),
    );
    if silent_n > 0 {
        text.push_str(&format!("; the documentation says nothing about {silent_n}"));
    }
    if t.cells.iter().any(|c| c.source.is_some()) {
        let follow = t.cells.iter().filter(|c| c.as_expected).count();
        text.push_str(&format!("; {follow} of {} follow systemd's source rule", t.cells.len()));
    }
    text
}

/// How a disagreeing cell is named: "Restart=on-abort after watchdog".
fn cell_title(t: &TableReport, c: &CellVerdict) -> String {
    match t.table.as_str() {
        "restart" => format!("Restart={} after {}", c.column, c.row),
        "type" => format!("{} program with Type={}", c.row, c.column),
        "results" => format!("Restart={} after {} (Result {})", c.column, c.row, c.result.as_deref().unwrap_or("none")),
        _ => format!("{} {} / {} {}", t.row_heading, c.row, t.column_heading, c.column),
    }
}

/// The grids for a terminal: documented and observed rows under each other, `*` marking a
/// disagreement; then the method and each disagreement explained.
pub(crate) fn human(t: &TableReport) -> String {
    let mut out = String::new();
    let w = width(t);
    let row_w = t.rows.iter().map(|r| r.len()).max().unwrap_or(0).max(t.row_heading.len());
    let _ = writeln!(out, "{} on {} — {}", t.title, t.suite, t.systemd);
    let _ = writeln!(out, "rows: {}; columns: {}; top documented, bottom observed; * marks a disagreement{}\n", t.row_heading, t.column_heading, if t.cells.iter().any(silent) { "; ? the documentation says nothing" } else { "" });
    let _ = writeln!(out, "{:<row_w$} {:>10}  {}", t.row_heading, "", t.columns.iter().map(|c| format!("{c:<w$}")).collect::<String>());
    for row in &t.rows {
        let doc: String = t.columns.iter().map(|col| format!("{:<w$}", mark_or_dash(t, row, col, |c| c.documented_mark.clone()))).collect();
        let obs: String = t
            .columns
            .iter()
            .map(|col| format!("{:<w$}", mark_or_dash(t, row, col, |c| format!("{}{}", c.observed_mark, if c.agrees || silent(c) { "" } else { "*" }))))
            .collect();
        let _ = writeln!(out, "{row:<row_w$} {:>10}  {}", "documented", doc.trim_end());
        let _ = writeln!(out, "{:<row_w$} {:>10}  {}", "", "observed", obs.trim_end());
    }
    let _ = writeln!(out, "\n{}", tally(t));
    for m in &t.method {
        for (i, line) in wrap(m, 92).into_iter().enumerate() {
            let _ = writeln!(out, "{}{line}", if i == 0 { "  - " } else { "    " });
        }
    }
    for c in t.cells.iter().filter(|c| !c.agrees || c.explanation.is_some()) {
        let _ = writeln!(out, "\n* {}: documented {}, observed {} ({})", cell_title(t, c), c.documented, c.observed, c.detail);
        if let Some(e) = &c.explanation {
            for line in wrap(e, 92) {
                let _ = writeln!(out, "    {line}");
            }
        }
    }
    out
}

fn silent(c: &CellVerdict) -> bool {
    c.documented == crate::tables::judge::SILENT
}

/// The Result(s) a results-table row ended with, beside the source's when they differ:
/// "signal (source: oom-kill)". None for tables without Results.
fn row_result(t: &TableReport, row: &str) -> Option<String> {
    let cells: Vec<&CellVerdict> = t.cells.iter().filter(|c| c.row == row && c.expected_result.is_some()).collect();
    let expected = cells.first()?.expected_result.clone()?;
    let mut seen: Vec<String> = cells.iter().map(|c| c.result.clone().unwrap_or_else(|| "none".into())).collect();
    seen.sort();
    seen.dedup();
    let seen = seen.join(" / ");
    Some(if seen == expected { seen } else { format!("{seen} (source: {expected})") })
}

/// Markdown: the observed grid with disagreements in bold and the documented value beside;
/// a table with Results gets the Result each row ended with as its first column.
pub(crate) fn markdown(t: &TableReport) -> String {
    let mut out = String::new();
    let with_results = t.cells.iter().any(|c| c.expected_result.is_some());
    let _ = writeln!(out, "### {} on {} ({})\n", t.title, t.suite, t.systemd);
    let result_head = if with_results { " Result |" } else { "" };
    let _ = writeln!(out, "| {} \\ {} |{result_head} {} |", t.row_heading, t.column_heading, t.columns.join(" | "));
    let _ = writeln!(out, "|---|{}{}", if with_results { "---|" } else { "" }, "---|".repeat(t.columns.len()));
    for row in &t.rows {
        let cells: Vec<String> = t
            .columns
            .iter()
            .map(|col| match t.cell(row, col) {
                Some(c) if c.agrees => c.observed_mark.clone(),
                Some(c) if silent(c) => format!("{} (doc ?)", c.observed_mark),
                Some(c) => format!("**{}** (doc {})", c.observed_mark, c.documented_mark),
                None => "-".into(),
            })
            .collect();
        let result = if with_results { format!(" {} |", row_result(t, row).unwrap_or_else(|| "-".into())) } else { String::new() };
        let _ = writeln!(out, "| {row} |{result} {} |", cells.join(" | "));
    }
    let _ = writeln!(out, "\n{}.\n", tally(t));
    let dis: Vec<&CellVerdict> = t.cells.iter().filter(|c| !c.agrees || c.explanation.is_some()).collect();
    if !dis.is_empty() {
        let _ = writeln!(out, "Disagreements:\n");
        for c in dis {
            let _ = writeln!(out, "- **{}**: documented {}, observed {}. {}", cell_title(t, c), c.documented, c.observed, c.explanation.as_deref().unwrap_or(""));
        }
        out.push('\n');
    }
    out
}

/// HTML: one grid per table, each cell documented over observed, disagreements highlighted
/// and linked to the cell's scenario section.
pub(crate) fn html(t: &TableReport, anchor: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "<section class=\"table\"><h2>{} <small>{} · {}</small></h2>", html_escape(&t.title), html_escape(&t.suite), html_escape(&t.systemd));
    let _ = writeln!(out, "<p class=\"meta\">{}</p>", html_escape(&tally(t)));
    let _ = write!(out, "<table class=\"grid\"><thead><tr><th>{} \\ {}</th>", html_escape(&t.row_heading), html_escape(&t.column_heading));
    for col in &t.columns {
        let _ = write!(out, "<th>{}</th>", html_escape(col));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &t.rows {
        let _ = write!(out, "<tr><th>{}</th>", html_escape(row));
        for col in &t.columns {
            match t.cell(row, col) {
                Some(c) => {
                    let class = if c.agrees { "agree" } else if c.as_expected { "reviewed" } else { "disagree" };
                    let body = format!(
                        "<span class=\"obs\">{}</span><span class=\"doc\">doc {}</span>",
                        html_escape(&c.observed_mark),
                        html_escape(&c.documented_mark)
                    );
                    let body = match anchor(&c.scenario) {
                        Some(id) => format!("<a href=\"#{id}\">{body}</a>"),
                        None => body,
                    };
                    let _ = write!(out, "<td class=\"{class}\" title=\"{}\">{body}</td>", html_escape(&c.detail));
                }
                None => out.push_str("<td>-</td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n<ul class=\"method\">");
    for m in &t.method {
        let _ = write!(out, "<li>{}</li>", html_escape(m));
    }
    out.push_str("</ul>\n");
    for c in t.cells.iter().filter(|c| !c.agrees || c.explanation.is_some()) {
        let _ = writeln!(
            out,
            "<p class=\"deviation\"><b>{}</b>: documented {}, observed {}. {}</p>",
            html_escape(&cell_title(t, c)),
            html_escape(&c.documented),
            html_escape(&c.observed),
            html_escape(c.explanation.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</section>\n");
    out
}

pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    #[test]
    fn grids_show_documented_over_observed_and_explain_disagreements() {
        let t = fixtures::table();
        let text = human(&t);
        let grid: Vec<&str> = text.lines().filter(|l| l.contains("documented") || l.contains("observed")).collect();
        assert!(grid[1].starts_with("watchdog   documented  .         ."), "{text}");
        assert!(grid[2].ends_with("observed  .         X*"), "{text}");
        assert!(text.contains("* Restart=on-abort after watchdog: documented no restart, observed restart"), "{text}");
        assert!(text.contains("1 of 2 cells agree with the documentation; 1 disagree (0 reviewed, 1 not)"), "{text}");
        let md = markdown(&t);
        assert!(md.contains("| watchdog | . | **X** (doc .) |"), "{md}");
        let page = html(&t, |s| Some(format!("s-{s}")));
        assert!(page.contains("<td class=\"disagree\""), "{page}");
        assert!(page.contains("href=\"#s-restart-on-abort-watchdog\""), "{page}");
    }
}
