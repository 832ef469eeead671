//! The HTML report: one self-contained page (inline CSS and SVG, no script, nothing fetched)
//! that can be attached to a CI run and opened anywhere. A summary table links to one section
//! per scenario: verdict, timings, warnings, the timeline chart, the checks with the journal
//! around each failure, and the raw events and unit files folded away.

use std::fmt::Write as _;

use crate::verdict::{Outcome, RunReport, ScenarioResult};

use super::svg;
use super::text::{self, Tally};

/// Text and attribute values made inert: journal lines contain `<`, `&` and quotes.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #212529; margin: 24px auto; max-width: 1000px; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 0; display: flex; gap: 10px; align-items: baseline; flex-wrap: wrap; }
h2 small { font-size: 13px; font-weight: normal; color: #495057; }
h3 { font-size: 14px; margin: 14px 0 6px; }
.meta { color: #495057; margin: 0 0 16px; }
.badge { display: inline-block; font-size: 12px; font-weight: 700; padding: 1px 8px; border-radius: 10px; color: white; letter-spacing: .04em; }
.badge.pass { background: #2f9e44; } .badge.fail { background: #e03131; } .badge.error { background: #e67700; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 10px; border-bottom: 1px solid #dee2e6; vertical-align: top; }
th { background: #f1f3f5; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.summary tr.fail td:first-child, table.summary tr.error td:first-child { font-weight: 600; }
section.scenario { border: 1px solid #dee2e6; border-left: 6px solid #2f9e44; border-radius: 6px; padding: 12px 16px; margin: 18px 0; }
section.scenario.fail { border-left-color: #e03131; } section.scenario.error { border-left-color: #e67700; }
.desc { margin: 4px 0 0; color: #343a40; } .path { font-family: ui-monospace, monospace; color: #495057; font-size: 12px; }
.timings { display: flex; gap: 18px; flex-wrap: wrap; margin: 8px 0; }
.timings div { background: #f1f3f5; border-radius: 4px; padding: 2px 8px; }
.timings b { font-variant-numeric: tabular-nums; }
ul.warnings { margin: 6px 0; padding-left: 18px; color: #8a5300; font-family: ui-monospace, monospace; font-size: 12px; }
pre { background: #f8f9fa; border: 1px solid #e9ecef; border-radius: 4px; padding: 6px 8px; margin: 4px 0; font-size: 12px; white-space: pre-wrap; word-break: break-word; }
pre.error { border-color: #ffc078; background: #fff4e6; }
figure { margin: 10px 0; overflow-x: auto; } svg.timeline, svg.legend { display: block; max-width: 100%; height: auto; }
ol.checks { list-style: none; padding: 0; margin: 6px 0; }
li.check { padding: 3px 8px; border-radius: 4px; margin: 3px 0; }
li.check.pass { background: #ebfbee; } li.check.fail { background: #fff5f5; border: 1px solid #ffc9c9; }
li.check .verdict { font-weight: 700; margin-right: 6px; } li.check.pass .verdict { color: #2f9e44; } li.check.fail .verdict { color: #e03131; }
li.check .held { font-family: ui-monospace, monospace; font-size: 12px; margin-left: 8px; }
li.check .where { font-family: ui-monospace, monospace; font-size: 12px; color: #495057; }
dl.eo { display: grid; grid-template-columns: max-content 1fr; gap: 0 10px; margin: 4px 0; } dl.eo dt { color: #495057; } dl.eo dd { margin: 0; font-family: ui-monospace, monospace; }
details { margin: 6px 0; } summary { cursor: pointer; color: #1971c2; }
table.events td { font-family: ui-monospace, monospace; font-size: 12px; padding: 1px 8px; }
tr.ev-lab td { color: #c92a2a; }
section.table { margin: 18px 0; } table.grid { width: auto; } table.grid td { text-align: center; font-family: ui-monospace, monospace; font-size: 12px; }
table.grid td a { color: inherit; text-decoration: none; } table.grid .obs { display: block; font-weight: 700; } table.grid .doc { display: block; color: #868e96; font-size: 11px; }
table.grid td.agree { background: #ebfbee; } table.grid td.reviewed { background: #fff9db; } table.grid td.disagree { background: #ffe3e3; }
ul.method { color: #495057; font-size: 13px; } p.deviation { font-size: 13px; }
"#;

pub(super) fn render(report: &RunReport) -> String {
    let mut out = String::new();
    let word = text::outcome_word(report.outcome);
    let _ = writeln!(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">");
    let _ = writeln!(out, "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    let _ = writeln!(out, "<title>unitlab run: {word}</title>\n<style>{STYLE}</style>\n</head>\n<body>");
    let _ = writeln!(
        out,
        "<header><h1>unitlab run <span class=\"badge {}\">{word}</span></h1><p class=\"meta\">{} in {} · unitlab {} · report schema {}</p></header>",
        class(report.outcome),
        escape(&Tally::of(report).sentence()),
        text::duration(report.duration),
        escape(&report.unitlab_version),
        report.schema
    );
    for x in super::versions::cross_tables(&report.tables) {
        out.push_str(&super::versions::html(&x));
    }
    for t in &report.tables {
        // A cell links to its scenario's section on the same suite.
        let anchor = |scenario: &str| report.results.iter().position(|r| r.name == scenario && r.suite == t.suite).map(|i| format!("s{i}"));
        out.push_str(&super::tables::html(t, anchor));
    }
    summary(&mut out, report);
    if !report.results.is_empty() {
        out.push_str("<figure class=\"legend\">");
        out.push_str(&svg::legend());
        out.push_str("</figure>\n");
    }
    for (i, r) in report.results.iter().enumerate() {
        scenario(&mut out, i, r);
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn class(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Fail => "fail",
        Outcome::Error => "error",
    }
}

fn summary(out: &mut String, report: &RunReport) {
    if report.results.is_empty() {
        return;
    }
    out.push_str("<table class=\"summary\">\n<thead><tr><th>Scenario</th><th>Suite</th><th>systemd</th><th>Outcome</th><th class=\"num\">Checks</th><th class=\"num\">Duration</th></tr></thead>\n<tbody>\n");
    for (i, r) in report.results.iter().enumerate() {
        let _ = writeln!(
            out,
            "<tr class=\"{c}\"><td><a href=\"#s{i}\">{}</a></td><td>{}</td><td>{}</td><td><span class=\"badge {c}\">{}</span></td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            escape(&r.name),
            escape(&r.suite),
            escape(&text::systemd_short(&r.systemd)),
            text::outcome_word(r.outcome),
            text::checks(r),
            text::duration(r.duration),
            c = class(r.outcome),
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

fn scenario(out: &mut String, i: usize, r: &ScenarioResult) {
    let c = class(r.outcome);
    let _ = writeln!(out, "<section class=\"scenario {c}\" id=\"s{i}\">");
    let _ = writeln!(
        out,
        "<h2><span class=\"badge {c}\">{}</span> {} <small>{} · <span title=\"{}\">{}</span> · {} · {} checks passed</small></h2>",
        text::outcome_word(r.outcome),
        escape(&r.name),
        escape(&r.suite),
        escape(&r.systemd),
        escape(&text::systemd_short(&r.systemd)),
        text::duration(r.duration),
        text::checks(r),
    );
    if !r.description.is_empty() {
        let _ = writeln!(out, "<p class=\"desc\">{}</p>", escape(&r.description));
    }
    let _ = writeln!(out, "<div class=\"path\">{}</div>", escape(&r.path.display().to_string()));
    if !r.timings.is_empty() {
        out.push_str("<div class=\"timings\">");
        for t in &r.timings {
            let _ = write!(out, "<div>{} <b>{}</b> <span class=\"path\">{}</span></div>", escape(&t.name), text::precise(t.value), escape(&t.unit));
        }
        out.push_str("</div>\n");
    }
    if let Some(error) = &r.error {
        let _ = writeln!(out, "<h3>The lab could not run this scenario</h3>\n<pre class=\"error\">{}</pre>", escape(error));
    }
    if !r.warnings.is_empty() {
        out.push_str("<ul class=\"warnings\">");
        for w in &r.warnings {
            let _ = write!(out, "<li>{}</li>", escape(w));
        }
        out.push_str("</ul>\n");
    }
    if !r.timeline.is_empty() || !r.checks.is_empty() {
        out.push_str("<figure>");
        out.push_str(&svg::timeline(r));
        out.push_str("</figure>\n");
    }
    checks(out, r);
    if !r.timeline.is_empty() {
        let _ = writeln!(out, "<details><summary>Events ({})</summary>\n<table class=\"events\">", r.timeline.len());
        for e in &r.timeline {
            let lab = matches!(e.kind, crate::observe::EventKind::Lab { .. });
            let _ = writeln!(
                out,
                "<tr{}><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
                if lab { " class=\"ev-lab\"" } else { "" },
                text::precise(e.at),
                escape(&e.unit),
                escape(&e.message)
            );
        }
        out.push_str("</table></details>\n");
    }
    for (unit, body) in &r.units {
        let _ = writeln!(out, "<details><summary>Unit file {}</summary><pre>{}</pre></details>", escape(unit), escape(body));
    }
    if let Some(snapshot) = &r.snapshot {
        let _ = writeln!(out, "<details><summary>Journal snapshot</summary><pre>{}</pre></details>", escape(snapshot));
    }
    out.push_str("</section>\n");
}

fn checks(out: &mut String, r: &ScenarioResult) {
    if r.checks.is_empty() {
        return;
    }
    out.push_str("<ol class=\"checks\">\n");
    for c in &r.checks {
        let (class, verdict) = if c.passed { ("pass", "✓ pass") } else { ("fail", "✗ FAIL") };
        let _ = write!(
            out,
            "<li class=\"check {class}\"><span class=\"verdict\">{verdict}</span>step {} <b>{}</b> <span class=\"where\">{} · at {}</span>",
            c.step,
            escape(&c.kind),
            escape(&c.location.to_string()),
            text::precise(c.at)
        );
        if c.passed {
            // A check that held needs one line; the space goes to the failures.
            let _ = write!(out, " <span class=\"held\">{}", escape(&c.expected));
            if c.observed != c.expected {
                let _ = write!(out, " · observed {}", escape(&c.observed));
            }
            out.push_str("</span>");
        } else {
            let _ = write!(
                out,
                "<dl class=\"eo\"><dt>expected</dt><dd>{}</dd><dt>observed</dt><dd>{}</dd></dl>",
                escape(&c.expected),
                escape(&c.observed)
            );
        }
        if !c.journal_context.is_empty() {
            let _ = write!(out, "<pre class=\"journal\">{}</pre>", escape(&c.journal_context.join("\n")));
        }
        out.push_str("</li>\n");
    }
    out.push_str("</ol>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    #[test]
    fn text_is_escaped_everywhere() {
        let mut r = fixtures::failing();
        r.name = "<script>alert('x')</script>".into();
        let html = render(&RunReport::new(vec![r], std::time::Duration::ZERO));
        assert!(!html.contains("<script"), "markup from data leaked");
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        assert!(html.contains("A hung server is killed by the watchdog &lt;and&gt; restarted &quot;quickly&quot;"));
        assert!(html.contains("pinger: GET /health &lt;200 &amp; &quot;ok&quot;&gt;"));
        assert_eq!(escape(r#"a<b>&"c'"#), "a&lt;b&gt;&amp;&quot;c&#39;");
    }

    #[test]
    fn the_page_is_self_contained() {
        let html = render(&fixtures::report());
        for banned in ["<script", "<link", "src=", "@import", "url("] {
            assert!(!html.contains(banned), "{banned} in the page");
        }
        // The only URL is the SVG namespace, which is a name, not a fetch.
        let urls: Vec<&str> = html.match_indices("http").map(|(i, _)| html.get(i..i + 26).unwrap_or(&html[i..])).collect();
        assert!(urls.iter().all(|u| u.starts_with("http://www.w3.org/2000/svg")), "{urls:?}");
    }

    #[test]
    fn each_scenario_has_its_section_and_failures_their_journal() {
        let html = render(&fixtures::report());
        assert_eq!(html.matches("<section class=\"scenario ").count(), 3);
        assert_eq!(html.matches("<svg class=\"timeline\"").count(), 2, "no chart for the scenario without events");
        assert!(html.contains("<pre class=\"error\">waiting for web.service to be active: timed out after 30s\ncontainer unitlab-trixie-3f2a</pre>"));
        assert!(html.contains("<pre class=\"journal\">web.service: Watchdog timeout (limit 2s)!\nweb.service: Killing process 212"));
        assert_eq!(html.matches("<li class=\"check fail\">").count(), 2);
        assert_eq!(html.matches("<li class=\"check pass\">").count(), 3);
        assert!(html.contains("<a href=\"#s1\">watchdog-hang</a>"));
    }
}
