//! One documented table measured on several suites, as one cross-version table: each cell's
//! observation per systemd version, where the versions differ, and why (each version's
//! observed value against the documented one, with its facts and the reviewed explanation).
//! Derived from the per-suite [`TableReport`]s at render time: the JSON report keeps those as
//! they are (one per table and suite), so its schema does not change.

use std::fmt::Write as _;

use crate::systemd::Suite;
use crate::verdict::{CellVerdict, TableReport};

/// One table across suites, in version order (oldest systemd first).
pub(crate) struct CrossTable<'a> {
    pub per_suite: Vec<&'a TableReport>,
}

/// A cell across the suites: each suite's verdict, in the table's suite order.
pub(crate) struct CrossCell<'a> {
    pub row: &'a str,
    pub column: &'a str,
    pub documented: &'a str,
    pub documented_mark: &'a str,
    pub verdicts: Vec<(&'a TableReport, &'a CellVerdict)>,
}

impl CrossCell<'_> {
    /// The versions observed different things.
    pub fn differs(&self) -> bool {
        self.verdicts.windows(2).any(|w| w[0].1.observed != w[1].1.observed)
    }

    /// Every version disagrees with the documentation, all in the same way.
    pub fn disagrees_everywhere(&self) -> bool {
        !self.differs() && self.verdicts.iter().all(|(_, c)| !c.agrees)
    }
}

fn suite_order(name: &str) -> usize {
    Suite::ALL.iter().position(|s| s.name() == name).unwrap_or(usize::MAX)
}

/// "systemd 252 (252.39-1~deb12u2)" -> "252".
fn major(systemd: &str) -> &str {
    systemd.split_whitespace().nth(1).unwrap_or(systemd)
}

/// The tables measured on more than one suite, each as one cross-version table (in the order
/// the tables first appear).
pub(crate) fn cross_tables(tables: &[TableReport]) -> Vec<CrossTable<'_>> {
    let mut names: Vec<&str> = Vec::new();
    for t in tables {
        if !names.contains(&t.table.as_str()) {
            names.push(&t.table);
        }
    }
    names
        .into_iter()
        .filter_map(|name| {
            let mut per_suite: Vec<&TableReport> = tables.iter().filter(|t| t.table == name).collect();
            per_suite.sort_by_key(|t| suite_order(&t.suite));
            (per_suite.len() > 1).then_some(CrossTable { per_suite })
        })
        .collect()
}

impl<'a> CrossTable<'a> {
    fn first(&self) -> &'a TableReport {
        self.per_suite[0]
    }

    /// "bullseye 247, bookworm 252, ...".
    pub fn versions(&self) -> String {
        self.per_suite.iter().map(|t| format!("{} {}", t.suite, major(&t.systemd))).collect::<Vec<_>>().join(", ")
    }

    pub fn cell(&self, row: &'a str, column: &'a str) -> Option<CrossCell<'a>> {
        let verdicts: Vec<(&TableReport, &CellVerdict)> = self.per_suite.iter().filter_map(|t| t.cell(row, column).map(|c| (*t, c))).collect();
        let first = verdicts.first()?.1;
        Some(CrossCell { row, column, documented: &first.documented, documented_mark: &first.documented_mark, verdicts })
    }

    pub fn cells(&self) -> Vec<CrossCell<'a>> {
        let t = self.first();
        t.rows.iter().flat_map(|r| t.columns.iter().map(move |c| (r, c))).filter_map(|(r, c)| self.cell(r, c)).collect()
    }

    /// A grid cell: the one observed mark when every version agrees (`*` when that disagrees
    /// with the documentation), else each version's mark, `!` first.
    fn mark(&self, cell: &CrossCell<'_>) -> String {
        if cell.differs() {
            let marks: Vec<String> = cell.verdicts.iter().map(|(t, c)| format!("{}:{}", major(&t.systemd), c.observed_mark)).collect();
            format!("!{}", marks.join(" "))
        } else {
            let c = cell.verdicts[0].1;
            format!("{}{}", c.observed_mark, if c.agrees { "" } else { "*" })
        }
    }

    fn title(&self, c: &CrossCell<'_>) -> String {
        match self.first().table.as_str() {
            "restart" => format!("Restart={} after {}", c.column, c.row),
            "type" => format!("{} program with Type={}", c.row, c.column),
            _ => format!("{} {} / {} {}", self.first().row_heading, c.row, self.first().column_heading, c.column),
        }
    }

    /// The reasons, one line per version: observed value, against the documentation, facts.
    fn reasons(&self, c: &CrossCell<'_>) -> Vec<String> {
        c.verdicts
            .iter()
            .map(|(t, v)| {
                let judged = if v.agrees {
                    "as documented"
                } else if v.as_expected {
                    "reviewed deviation"
                } else {
                    "UNREVIEWED"
                };
                format!("{} ({}): {} — {judged}; {}", t.suite, major(&t.systemd), v.observed, v.detail)
            })
            .collect()
    }

    /// "35 cells: 35 the same on every version (30 as documented, 5 not), 0 differ".
    pub fn tally(&self) -> String {
        let cells = self.cells();
        let differ = cells.iter().filter(|c| c.differs()).count();
        let same_agree = cells.iter().filter(|c| !c.differs() && c.verdicts.iter().all(|(_, v)| v.agrees)).count();
        format!(
            "{} cells: {} the same on every version ({} as documented, {} not), {} differ between versions",
            cells.len(),
            cells.len() - differ,
            same_agree,
            cells.len() - differ - same_agree,
            differ
        )
    }
}

/// For a terminal: the grid of observations (documented row above each observed row), then
/// every cell where versions differ and every disagreement shared by all, with the reasons.
pub(crate) fn human(x: &CrossTable<'_>) -> String {
    let t = x.first();
    let mut out = String::new();
    let _ = writeln!(out, "{} across systemd versions: {}", t.title, x.versions());
    let _ = writeln!(
        out,
        "rows: {}; columns: {}; top documented, bottom observed; one mark when every version observed the same (* = not as documented), else `!` and each version's mark\n",
        t.row_heading, t.column_heading
    );
    let grid: Vec<(String, Vec<String>, Vec<String>)> = t
        .rows
        .iter()
        .map(|row| {
            let doc = t.columns.iter().map(|col| x.cell(row, col).map(|c| c.documented_mark.to_string()).unwrap_or_else(|| "-".into())).collect();
            let obs = t.columns.iter().map(|col| x.cell(row, col).map(|c| x.mark(&c)).unwrap_or_else(|| "-".into())).collect();
            (row.clone(), doc, obs)
        })
        .collect();
    let widths: Vec<usize> = (0..t.columns.len())
        .map(|i| grid.iter().flat_map(|(_, d, o)| [d[i].chars().count(), o[i].chars().count()]).chain([t.columns[i].chars().count()]).max().unwrap_or(1) + 2)
        .collect();
    let row_w = t.rows.iter().map(|r| r.len()).max().unwrap_or(0).max(t.row_heading.len());
    let line = |cells: &[String]| cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect::<String>().trim_end().to_string();
    let _ = writeln!(out, "{:<row_w$} {:>10}  {}", t.row_heading, "", line(&t.columns));
    for (row, doc, obs) in &grid {
        let _ = writeln!(out, "{row:<row_w$} {:>10}  {}", "documented", line(doc));
        let _ = writeln!(out, "{:<row_w$} {:>10}  {}", "", "observed", line(obs));
    }
    let _ = writeln!(out, "\n{}", x.tally());
    let cells = x.cells();
    for c in cells.iter().filter(|c| c.differs()) {
        let _ = writeln!(out, "\n! {} differs between versions (documented {}):", x.title(c), c.documented);
        for r in x.reasons(c) {
            let _ = writeln!(out, "    {r}");
        }
        for (t, v) in &c.verdicts {
            if let Some(e) = v.explanation.as_ref().filter(|_| !v.agrees) {
                for (i, l) in super::tables::wrap(e, 88).into_iter().enumerate() {
                    let _ = writeln!(out, "    {}{l}", if i == 0 { format!("why on {}: ", t.suite) } else { "  ".into() });
                }
            }
        }
    }
    for c in cells.iter().filter(|c| c.disagrees_everywhere()) {
        let v = c.verdicts[0].1;
        let _ = writeln!(out, "\n* {}: documented {}, observed {} on every version", x.title(c), c.documented, v.observed);
        if let Some(e) = &v.explanation {
            for l in super::tables::wrap(e, 92) {
                let _ = writeln!(out, "    {l}");
            }
        }
    }
    out
}

/// Markdown: the observed grid, disagreements in bold with the documented value, cells that
/// differ between versions as each version's value; then the reasons.
pub(crate) fn markdown(x: &CrossTable<'_>) -> String {
    let t = x.first();
    let mut out = String::new();
    let _ = writeln!(out, "### {} across systemd versions ({})\n", t.title, x.versions());
    let _ = writeln!(out, "| {} \\ {} | {} |", t.row_heading, t.column_heading, t.columns.join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(t.columns.len()));
    for row in &t.rows {
        let cells: Vec<String> = t
            .columns
            .iter()
            .map(|col| match x.cell(row, col) {
                Some(c) if c.differs() => {
                    let each: Vec<String> = c.verdicts.iter().map(|(t, v)| format!("{}: {}", major(&t.systemd), v.observed_mark)).collect();
                    format!("**differs**: {} (doc {})", each.join(", "), c.documented_mark)
                }
                Some(c) if c.verdicts[0].1.agrees => c.verdicts[0].1.observed_mark.clone(),
                Some(c) => format!("**{}** (doc {})", c.verdicts[0].1.observed_mark, c.documented_mark),
                None => "-".into(),
            })
            .collect();
        let _ = writeln!(out, "| {row} | {} |", cells.join(" | "));
    }
    let _ = writeln!(out, "\n{}.\n", x.tally());
    for c in x.cells().iter().filter(|c| c.differs()) {
        let _ = writeln!(out, "- **{}** differs between versions (documented {}):", x.title(c), c.documented);
        for r in x.reasons(c) {
            let _ = writeln!(out, "  - {r}");
        }
    }
    out.push('\n');
    out
}

/// HTML: the cross-version grid, a cell that differs listing each version's value (its
/// `title` the facts), before each suite's own grid.
pub(crate) fn html(x: &CrossTable<'_>) -> String {
    use super::html::escape;
    let t = x.first();
    let mut out = String::new();
    let _ = writeln!(out, "<section class=\"table\"><h2>{} <small>across {}</small></h2>", escape(&t.title), escape(&x.versions()));
    let _ = writeln!(out, "<p class=\"meta\">{}</p>", escape(&x.tally()));
    let _ = write!(out, "<table class=\"grid\"><thead><tr><th>{} \\ {}</th>", escape(&t.row_heading), escape(&t.column_heading));
    for col in &t.columns {
        let _ = write!(out, "<th>{}</th>", escape(col));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &t.rows {
        let _ = write!(out, "<tr><th>{}</th>", escape(row));
        for col in &t.columns {
            match x.cell(row, col) {
                Some(c) if c.differs() => {
                    let each: Vec<String> = c
                        .verdicts
                        .iter()
                        .map(|(t, v)| format!("<span class=\"obs\" title=\"{}\">{} {}</span>", escape(&v.detail), escape(major(&t.systemd)), escape(&v.observed_mark)))
                        .collect();
                    let _ = write!(out, "<td class=\"disagree\">{}<span class=\"doc\">doc {}</span></td>", each.join(" "), escape(c.documented_mark));
                }
                Some(c) => {
                    let v = c.verdicts[0].1;
                    let class = if v.agrees { "agree" } else { "reviewed" };
                    let _ = write!(out, "<td class=\"{class}\"><span class=\"obs\">{}</span><span class=\"doc\">doc {}</span></td>", escape(&v.observed_mark), escape(c.documented_mark));
                }
                None => out.push_str("<td>-</td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
    for c in x.cells().iter().filter(|c| c.differs()) {
        let _ = writeln!(out, "<p class=\"deviation\"><b>{}</b> differs between versions (documented {}):</p><ul>", escape(&x.title(c)), escape(c.documented));
        for r in x.reasons(c) {
            let _ = write!(out, "<li>{}</li>", escape(&r));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    fn on(suite: &str, systemd: &str, observed_restart: bool) -> TableReport {
        let mut t = fixtures::table();
        t.suite = suite.into();
        t.systemd = format!("systemd {systemd} (x)");
        let c = t.cells.iter_mut().find(|c| c.column == "on-abort").unwrap();
        c.observed_mark = if observed_restart { "X" } else { "." }.into();
        c.observed = if observed_restart { "restart" } else { "no restart" }.into();
        c.agrees = !observed_restart;
        c.as_expected = true;
        c.explanation = observed_restart.then(|| format!("reviewed on {systemd}"));
        c.detail = format!("Result=watchdog on {suite}");
        t
    }

    #[test]
    fn versions_that_differ_are_marked_with_each_versions_reason() {
        // Given out of order: the table follows the version order.
        let tables = vec![on("trixie", "257", true), on("bullseye", "247", false), on("bookworm", "252", true)];
        let x = cross_tables(&tables);
        assert_eq!(x.len(), 1, "one table, three suites: one cross table");
        assert_eq!(x[0].versions(), "bullseye 247, bookworm 252, trixie 257");
        let text = human(&x[0]);
        assert!(text.contains("!247:. 252:X 257:X"), "{text}");
        assert!(text.contains("! Restart=on-abort after watchdog differs between versions (documented no restart):"), "{text}");
        assert!(text.contains("bullseye (247): no restart — as documented; Result=watchdog on bullseye"), "{text}");
        assert!(text.contains("trixie (257): restart — reviewed deviation"), "{text}");
        assert!(text.contains("why on trixie: reviewed on 257"), "{text}");
        assert!(text.contains("2 cells: 1 the same on every version (1 as documented, 0 not), 1 differ between versions"), "{text}");
        let md = markdown(&x[0]);
        assert!(md.contains("| watchdog | . | **differs**: 247: ., 252: X, 257: X (doc .) |"), "{md}");
        let page = html(&x[0]);
        assert!(page.contains("<td class=\"disagree\"><span class=\"obs\" title=\"Result=watchdog on bullseye\">247 .</span>"), "{page}");
        assert!(page.contains("<li>trixie (257): restart — reviewed deviation; Result=watchdog on trixie</li>"), "{page}");
    }

    #[test]
    fn a_disagreement_shared_by_every_version_is_explained_once() {
        let tables = vec![on("bookworm", "252", true), on("trixie", "257", true)];
        let x = cross_tables(&tables);
        let text = human(&x[0]);
        assert!(text.lines().any(|l| l.trim_start().starts_with("observed  .   X*")), "{text}");
        assert!(text.contains("* Restart=on-abort after watchdog: documented no restart, observed restart on every version"), "{text}");
        assert!(text.contains("reviewed on 252") && !text.contains("reviewed on 257"), "explained once:\n{text}");
    }

    #[test]
    fn one_suite_makes_no_cross_table() {
        assert!(cross_tables(&[fixtures::table()]).is_empty());
    }
}
